//! The SP ledger, the bottom layer of the state: accounts (balance,
//! reputation), the channels that hold treasuries, the escrow held for tasks
//! and the total ever minted. Every rule that moves SP moves it through the
//! functions here, so conservation (`State::sp_conserved`) has one place to
//! be right in.
//!
//! The ledger knows nothing of tasks or proposals: a rule above it says who
//! pays ([`Payer`]) and how much.

use crate::codec::Writer;
use crate::core::common::{Channel, hlc, list, nodes, opt_hlc, opt_node};
use crate::core::economy::Params;
use crate::core::hlc::Hlc;
use crate::core::op::GLOBAL_CHANNEL;
use crate::core::reject::{Payer, Reject};
use crate::core::reputation::{DAY_MS, Reputation};
use crate::core::rules::Rules;
use crate::identity::NodeId;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// One identity's ledger entry.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Account {
    /// Spendable SP.
    pub balance: u64,
    pub reputation: Reputation,
    /// Time of the first op folded for this identity (when it was minted).
    pub joined: Hlc,
    /// Listed as a founder in the genesis: a member and validator-eligible
    /// from the start.
    #[serde(default)]
    pub founder: bool,
    /// Rule `daily_reputation_cap`: the op-time day (`ms / DAY_MS`) of the
    /// last credit and what was credited on that day.
    #[serde(default)]
    pub earned_day: u64,
    #[serde(default)]
    pub earned_today_milli: u64,
    /// Rule `equivocation_evidence`: the seq at which this identity was
    /// proven to equivocate (its penalty applies once).
    #[serde(default)]
    pub slashed_at_seq: Option<u64>,
    /// Rule `equivocation_evidence`: not validator-eligible before this op
    /// time (ms).
    #[serde(default)]
    pub banned_until_ms: u64,
}

impl Account {
    /// A fresh account minted `sp` at `at`.
    pub fn new(sp: u64, at: Hlc) -> Account {
        Account {
            balance: sp,
            reputation: Reputation::new(at.ms),
            joined: at,
            founder: false,
            earned_day: 0,
            earned_today_milli: 0,
            slashed_at_seq: None,
            banned_until_ms: 0,
        }
    }

    /// Rule `member`: a founder, or an identity whose reputation at
    /// `at_ms` reaches `rules.member_reputation_milli`.
    pub fn is_member(&self, at_ms: u64, rules: &Rules) -> bool {
        self.founder || rules.is_member(false, self.reputation.at(at_ms).total)
    }

    /// Rule `validator_eligible`: a founder, or a member with
    /// `validator_reputation_milli` whose account is at least
    /// `validator_age_seconds` old at `at_ms`.
    /// Not while a penalty bans it (rule `equivocation_evidence`).
    pub fn is_validator_eligible(&self, at_ms: u64, rules: &Rules) -> bool {
        if at_ms < self.banned_until_ms {
            return false;
        }
        if self.founder {
            return true;
        }
        let age_ms = at_ms.saturating_sub(self.joined.ms);
        let rep = self.reputation.at(at_ms).total;
        rep >= rules.member_reputation_milli
            && rep >= rules.validator_reputation_milli
            && age_ms / 1000 >= rules.validator_age_seconds
    }
}

/// Accounts, channels (with their treasuries), escrow and minted SP.
/// Serialized flat into the state's JSON (`accounts`, `channels`, `minted`,
/// `escrow` as before the layers existed).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Ledger {
    pub accounts: BTreeMap<NodeId, Account>,
    pub channels: BTreeMap<String, Channel>,
    /// All SP ever minted.
    pub minted: u64,
    /// Sum of every task's escrow (kept for the conservation check).
    pub escrow: u64,
}

impl Ledger {
    /// The ledger before any op: no accounts, only the `global` channel.
    pub fn genesis() -> Ledger {
        Ledger {
            accounts: BTreeMap::new(),
            channels: BTreeMap::from([(
                GLOBAL_CHANNEL.to_owned(),
                Channel::new(None, "network-wide channel".to_owned(), Hlc::ZERO),
            )]),
            minted: 0,
            escrow: 0,
        }
    }

    /// Rule `mint_on_first_op`: `initial_sp` (config) for each identity, once.
    /// Checked (rule `checked_sp`): if `minted` would overflow, nobody is
    /// minted, no account is created and the op is refused with `overflow`
    /// (with `initial_sp` at most 10^6 this needs over 10^13 identities).
    pub fn mint_if_new(&mut self, author: NodeId, at: Hlc, initial_sp: u64) -> Result<(), Reject> {
        if self.accounts.contains_key(&author) {
            return Ok(());
        }
        self.minted = self.minted.checked_add(initial_sp).ok_or(Reject::Overflow("the SP minted in total"))?;
        self.accounts.insert(author, Account::new(initial_sp, at));
        Ok(())
    }

    /// Rule `member` for `who` (no account: not a member).
    pub fn is_member(&self, who: &NodeId, at_ms: u64, rules: &Rules) -> bool {
        self.accounts.get(who).is_some_and(|a| a.is_member(at_ms, rules))
    }

    /// Rule `vote_reputation`, +1 point (config) to the voter's `_total` for
    /// its first public vote on a proposal, folded at `at` (no tag credit).
    /// A voter that cannot be minted (see [`Ledger::mint_if_new`]) has no
    /// account to credit.
    ///
    /// Only a member earns it (a fresh key voting on everything earns
    /// nothing, so it cannot vote its way into membership).
    pub fn credit_public_vote(&mut self, voter: NodeId, at: Hlc, params: &Params) {
        if self.mint_if_new(voter, at, params.initial_sp).is_ok() && self.is_member(&voter, at.ms, &params.rules) {
            self.credit_reputation(&voter, at.ms, params.vote_reputation_milli, &[], &params.rules);
        }
    }

    /// Rule `paid_work_reputation`: completed work earns reputation only
    /// if it paid at least `rules.min_paid_reward` and whoever created it is
    /// a member other than the worker (two fresh keys trading reward-0
    /// tasks earn nothing). Returns whether it counts.
    pub fn work_earns_reputation(
        &self,
        worker: &NodeId,
        creator: &NodeId,
        reward: u64,
        at_ms: u64,
        rules: &Rules,
    ) -> bool {
        worker != creator && reward >= rules.min_paid_reward && self.is_member(creator, at_ms, rules)
    }

    /// Adds reputation to `who` (to `_total` and to each of `tags`), at most
    /// `rules.daily_reputation_cap_milli` per op-time day (rule
    /// `daily_reputation_cap`). Reputation saturates at `u64::MAX` (see
    /// [`Reputation::credit`]): no SP moves with it, so no invariant pairs
    /// it with another counter.
    pub fn credit_reputation(&mut self, who: &NodeId, at_ms: u64, milli: u64, tags: &[String], rules: &Rules) {
        if let Some(a) = self.accounts.get_mut(who) {
            let day = at_ms / DAY_MS;
            if a.earned_day != day {
                a.earned_day = day;
                a.earned_today_milli = 0;
            }
            let room = rules.daily_reputation_cap_milli.saturating_sub(a.earned_today_milli);
            let credit = milli.min(room);
            a.earned_today_milli = a.earned_today_milli.saturating_add(credit);
            if credit > 0 {
                a.reputation.credit(at_ms, credit, tags);
            }
        }
    }

    pub fn balance(&self, node: &NodeId) -> u64 {
        self.accounts.get(node).map_or(0, |a| a.balance)
    }

    pub fn treasury(&self, channel: &str) -> u64 {
        self.channels.get(channel).map_or(0, |c| c.treasury)
    }

    /// A channel that must exist for the op to do anything.
    pub fn channel(&self, name: &str) -> Result<&Channel, Reject> {
        self.channels.get(name).ok_or_else(|| Reject::NoSuchChannel(name.to_owned()))
    }

    /// What `payer` can spend.
    pub fn funds(&self, payer: &Payer) -> u64 {
        match payer {
            Payer::Node(n) => self.balance(n),
            Payer::Treasury(c) => self.treasury(c),
        }
    }

    /// Checks that `payer` can spend `amount` (rule `no_overspend`).
    pub fn check_funds(&self, payer: &Payer, amount: u64) -> Result<(), Reject> {
        let has = self.funds(payer);
        if has < amount {
            return Err(Reject::InsufficientFunds { payer: payer.clone(), has, needs: amount });
        }
        Ok(())
    }

    /// Checks that `amount` can move from `payer` into escrow: the payer
    /// has it (`insufficient_funds`) and the escrow total stays in `u64`
    /// (`overflow`). Changes nothing.
    pub fn check_escrow(&self, payer: &Payer, amount: u64) -> Result<(), Reject> {
        self.check_funds(payer, amount)?;
        self.escrow.checked_add(amount).ok_or(Reject::Overflow("the escrow total"))?;
        Ok(())
    }

    /// Moves `amount` from `payer` into escrow, all checked first
    /// ([`Ledger::check_escrow`]); on `Err` nothing moved.
    pub fn escrow_from(&mut self, payer: &Payer, amount: u64) -> Result<(), Reject> {
        self.check_escrow(payer, amount)?;
        let short = || Reject::InsufficientFunds { payer: payer.clone(), has: 0, needs: amount };
        let escrow = self.escrow.checked_add(amount).ok_or(Reject::Overflow("the escrow total"))?;
        let slot = match payer {
            Payer::Node(n) => self.accounts.get_mut(n).map(|a| &mut a.balance),
            Payer::Treasury(c) => self.channels.get_mut(c).map(|ch| &mut ch.treasury),
        };
        match slot {
            Some(v) => *v = v.checked_sub(amount).ok_or_else(short)?,
            None if amount == 0 => {}
            None => return Err(short()),
        }
        self.escrow = escrow;
        Ok(())
    }

    /// What `payee` holds if it can receive SP (an existing account or
    /// channel), else the reason it cannot.
    fn receivable(&self, payee: &Payer) -> Result<u64, Reject> {
        match payee {
            Payer::Node(n) => self.accounts.get(n).map(|a| a.balance).ok_or(Reject::NoAccount(*n)),
            Payer::Treasury(c) => self.treasury_of(c),
        }
    }

    fn treasury_of(&self, c: &str) -> Result<u64, Reject> {
        self.channels.get(c).map(|ch| ch.treasury).ok_or_else(|| Reject::NoSuchChannel(c.to_owned()))
    }

    /// Checks that every `(payee, amount)` of `payouts` can be paid out of
    /// escrow together: their sum is at most the escrow total, every payee
    /// exists and no payee's balance or treasury leaves `u64` (a payee listed
    /// twice is counted with both amounts). Changes nothing.
    pub fn check_release(&self, payouts: &[(Payer, u64)]) -> Result<(), Reject> {
        let mut total: u64 = 0;
        let mut after: Vec<(&Payer, u64)> = Vec::new();
        for (payee, amount) in payouts {
            total = total.checked_add(*amount).ok_or(Reject::Overflow("the SP paid out of escrow"))?;
            let i = match after.iter().position(|(p, _)| *p == payee) {
                Some(i) => i,
                None => {
                    after.push((payee, self.receivable(payee)?));
                    after.len() - 1
                }
            };
            after[i].1 = after[i].1.checked_add(*amount).ok_or(Reject::Overflow("a payee's SP"))?;
        }
        if total > self.escrow {
            return Err(Reject::Overflow("the escrow total (it holds less than the payout)"));
        }
        Ok(())
    }

    /// Pays every `(payee, amount)` of `payouts` out of escrow, all checked
    /// first ([`Ledger::check_release`]); on `Err` nothing moved.
    pub fn release(&mut self, payouts: &[(Payer, u64)]) -> Result<(), Reject> {
        self.check_release(payouts)?;
        for (payee, amount) in payouts {
            // Cannot fail after the check; `?` keeps it honest anyway.
            self.escrow = self.escrow.checked_sub(*amount).ok_or(Reject::Overflow("the escrow total"))?;
            let slot = match payee {
                Payer::Node(n) => self.accounts.get_mut(n).map(|a| &mut a.balance),
                Payer::Treasury(c) => self.channels.get_mut(c).map(|ch| &mut ch.treasury),
            };
            if let Some(v) = slot {
                *v = v.checked_add(*amount).ok_or(Reject::Overflow("a payee's SP"))?;
            }
        }
        Ok(())
    }

    /// Takes `cost` out of a channel treasury for good (tool upkeep leaves
    /// the economy); false, and nothing taken, if the treasury is short.
    pub fn spend_treasury(&mut self, channel: &str, cost: u64) -> bool {
        let Some(ch) = self.channels.get_mut(channel) else {
            return false;
        };
        match ch.treasury.checked_sub(cost) {
            Some(left) => {
                ch.treasury = left;
                true
            }
            None => false,
        }
    }

    /// The ledger's part of the canonical state encoding: accounts, then
    /// channels. (`minted` and `escrow` sit in the state's header, where
    /// they have always been, so the hash is unchanged.)
    pub(crate) fn encode_canonical(&self, w: &mut Writer) {
        w.u64(self.accounts.len() as u64);
        for (id, a) in &self.accounts {
            w.raw(&id.0).u64(a.balance);
            hlc(w, a.joined);
            w.u8(u8::from(a.founder)).u64(a.earned_day).u64(a.earned_today_milli);
            match a.slashed_at_seq {
                None => w.u8(0),
                Some(s) => w.u8(1).u64(s),
            };
            w.u64(a.banned_until_ms);
            let r = &a.reputation;
            w.u64(r.total).u64(r.anchor_ms).u64(r.tags.len() as u64);
            for (tag, v) in &r.tags {
                w.str(tag).u64(*v);
            }
        }
        w.u64(self.channels.len() as u64);
        for (name, c) in &self.channels {
            w.str(name);
            opt_node(w, c.steward.as_ref());
            w.str(&c.description);
            hlc(w, c.created);
            w.u64(c.treasury);
            nodes(w, c.members.iter());
            opt_hlc(w, c.dissolved);
            w.u8(u8::from(c.archived));
            list(w, &c.split_into);
            match &c.merged_into {
                None => {
                    w.u8(0);
                }
                Some(m) => {
                    w.u8(1).str(m);
                }
            }
        }
    }
}
