//! The SP economy as the page shows it: balances with reputation,
//! treasuries, totals, and the flow of SP over time. Read models only:
//! SP moves as a consequence of other domains' ops (task escrow and
//! payout, taxes, tool upkeep), never by an economy command of its own.
//!
//! The ledger keeps no history of balances, so [`flows`] rebuilds the
//! chart from what the state records: each account's join time (its
//! initial mint), each task's creation (reward into escrow) and its last
//! update when completed (reward out of escrow: to the assignee, minus the
//! tax that goes to the channel treasury, computed at the current tax
//! rate) or deleted (refund). Team tasks and tool upkeep are not in it. It
//! is exact for fixed-reward tasks whose tax rate never changed, and a
//! close approximation otherwise.

use crate::core::economy::tax;
use crate::core::state::{State, TaskStatus};
use crate::identity::NodeId;

/// Points per series in the flow chart (the history is bucketed to this).
pub const BUCKETS: usize = 48;

/// One account: balance and reputation (total and per tag, at `now`).
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct AccountRow {
    pub id: NodeId,
    pub balance: u64,
    /// Reputation in milli-points, decayed to now.
    pub reputation: u64,
    pub tags: Vec<(String, u64)>,
}

/// Every account, richest first (ties by id).
pub fn accounts(st: &State, now_ms: u64) -> Vec<AccountRow> {
    let mut v: Vec<AccountRow> = st
        .ledger
        .accounts
        .iter()
        .map(|(id, a)| {
            let r = a.reputation.at(now_ms);
            AccountRow { id: *id, balance: a.balance, reputation: r.total, tags: r.tags.into_iter().collect() }
        })
        .collect();
    v.sort_by_key(|a| (std::cmp::Reverse(a.balance), a.id.0));
    v
}

/// `who`'s spendable SP (0 before its first op).
pub fn balance(st: &State, who: &NodeId) -> u64 {
    st.balance(who)
}

/// Every channel's treasury, by channel name.
pub fn treasuries(st: &State) -> Vec<(String, u64)> {
    st.ledger.channels.iter().map(|(n, ch)| (n.clone(), ch.treasury)).collect()
}

/// Network-wide SP totals.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
pub struct Totals {
    pub minted: u64,
    pub escrow: u64,
    /// Spent on common tools' upkeep (gone from circulation).
    pub tools_spent: u64,
    pub tax_bps: u64,
    /// Whether balances + treasuries + escrow + spent equal minted.
    pub conserved: bool,
}

pub fn totals(st: &State) -> Totals {
    Totals {
        minted: st.ledger.minted,
        escrow: st.ledger.escrow,
        tools_spent: st.tools.spent,
        tax_bps: st.params.tax_bps,
        conserved: st.sp_conserved(),
    }
}

/// Cumulative SP series over time, [`BUCKETS`] points each.
#[derive(Clone, Debug, PartialEq, Eq, Default, serde::Serialize)]
pub struct Flows {
    pub t0: u64,
    pub t1: u64,
    pub minted: Vec<u64>,
    pub escrow: Vec<u64>,
    pub paid: Vec<u64>,
    pub taxed: Vec<u64>,
}

/// Rebuilds the SP flow series from the state (see the module doc).
pub fn flows(st: &State, now_ms: u64) -> Flows {
    // (time, minted, escrow delta, paid, taxed)
    let mut ev: Vec<(u64, i128, i128, u64, u64)> = vec![];
    let initial = st.params.initial_sp;
    for a in st.ledger.accounts.values() {
        ev.push((a.joined.ms, initial as i128, 0, 0, 0));
    }
    for t in st.tasks.values() {
        let reward = t.reward as i128;
        if reward == 0 {
            continue;
        }
        ev.push((t.created.ms, 0, reward, 0, 0));
        match t.status {
            TaskStatus::Completed => {
                let tx = tax(t.reward, st.params.tax_bps);
                ev.push((t.updated.ms, 0, -reward, t.reward - tx, tx));
            }
            TaskStatus::Deleted => ev.push((t.updated.ms, 0, -reward, 0, 0)),
            _ => {}
        }
    }
    // Stable: equal times keep state order, so every node draws the same.
    ev.sort_by_key(|e| e.0);
    let (Some(first), Some(last)) = (ev.first(), ev.last()) else { return Flows::default() };
    let t0 = first.0;
    let t1 = now_ms.max(last.0).max(t0 + 1);
    let mut f = Flows { t0, t1, ..Default::default() };
    let (mut m, mut e, mut p, mut x) = (0i128, 0i128, 0u64, 0u64);
    let mut i = 0;
    for b in 1..=BUCKETS {
        let until = t0 + (t1 - t0) * b as u64 / BUCKETS as u64;
        while let Some(next) = ev.get(i).filter(|n| n.0 <= until) {
            m += next.1;
            e += next.2;
            p += next.3;
            x += next.4;
            i += 1;
        }
        f.minted.push(m.max(0) as u64);
        f.escrow.push(e.max(0) as u64);
        f.paid.push(p);
        f.taxed.push(x);
    }
    f
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::service::testkit::World;
    use crate::service::{Signer, tasks};

    #[test]
    fn an_empty_network_has_no_flows_and_no_accounts() {
        let st = State::genesis();
        assert_eq!(flows(&st, 5), Flows::default());
        assert!(accounts(&st, 0).is_empty());
        assert_eq!(balance(&st, &crate::identity::Identity::from_seed([9; 32]).node_id()), 0);
        assert!(totals(&st).conserved);
    }

    #[test]
    fn a_completed_task_shows_as_paid_and_taxed() {
        let w = World::dev();
        let spec = tasks::TaskSpec { title: "t".into(), reward: 100, ..Default::default() };
        let t = w.as_(0).run(|_| tasks::create("dev", spec)).expect("task");
        for s in [tasks::Step::Claim, tasks::Step::Start, tasks::Step::Complete] {
            w.as_(1).run(|st| tasks::step(st, t, s)).expect("step");
        }
        let (f, tot, rows) = w.read(|st| (flows(st, w.now.get()), totals(st), accounts(st, w.now.get())));
        assert_eq!(f.minted.len(), BUCKETS);
        let (paid, taxed) = (f.paid[BUCKETS - 1], f.taxed[BUCKETS - 1]);
        assert_eq!(paid + taxed, 100);
        assert_eq!(f.escrow[BUCKETS - 1], 0);
        assert!(tot.conserved && tot.escrow == 0 && tot.minted == 2 * 1000);
        assert_eq!(rows[0].id, w.id(1), "Bob got paid, so he is richest");
        let dev = w.read(treasuries).into_iter().find(|(n, _)| n == "dev").map(|x| x.1);
        assert_eq!(dev, Some(taxed));
    }
}
