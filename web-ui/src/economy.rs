//! The Economy view: balances, treasuries, a chart of SP flows over time,
//! and reputation per node with per-tag bars.
//!
//! The ledger keeps no history of balances, so the chart is rebuilt from
//! what the state records: each account's join time (its initial mint),
//! each task's creation (reward into escrow) and its last update when
//! completed (reward out of escrow: to the assignee, minus the tax that goes
//! to the channel treasury, computed at the current tax rate) or deleted
//! (refund). Team tasks and tool upkeep are not in it. It is exact for
//! fixed-reward tasks whose tax rate never changed, and a close
//! approximation otherwise.

use crate::ctx::ctx;
use crate::fmt::{clock, sorted, who};
use leptos::prelude::*;
use node_wasm::core::economy::tax;
use node_wasm::core::governance::display_milli;
use node_wasm::core::state::{State, TaskStatus};
use node_wasm::identity::NodeId;

/// Points per series in the chart (the history is bucketed to this).
const BUCKETS: usize = 48;
const W: f64 = 600.0;
const H: f64 = 200.0;

/// Cumulative SP series over time.
#[derive(Clone, PartialEq, Default)]
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
    if ev.is_empty() {
        return Flows::default();
    }
    let ev = sorted(ev, |e| (e.0, 0, [0; 32]));
    let t0 = ev[0].0;
    let t1 = now_ms.max(ev[ev.len() - 1].0).max(t0 + 1);
    let mut f = Flows { t0, t1, ..Default::default() };
    let (mut m, mut e, mut p, mut x) = (0i128, 0i128, 0u64, 0u64);
    let mut i = 0;
    for b in 1..=BUCKETS {
        let until = t0 + (t1 - t0) * b as u64 / BUCKETS as u64;
        while i < ev.len() && ev[i].0 <= until {
            m += ev[i].1;
            e += ev[i].2;
            p += ev[i].3;
            x += ev[i].4;
            i += 1;
        }
        f.minted.push(m.max(0) as u64);
        f.escrow.push(e.max(0) as u64);
        f.paid.push(p);
        f.taxed.push(x);
    }
    f
}

fn points(v: &[u64], max: u64) -> String {
    let n = v.len().max(2) - 1;
    v.iter()
        .enumerate()
        .map(|(i, y)| format!("{:.1},{:.1}", i as f64 * W / n as f64, H - (*y as f64) * H / max.max(1) as f64))
        .collect::<Vec<_>>()
        .join(" ")
}

#[derive(Clone, PartialEq)]
struct AccountRow {
    id: NodeId,
    balance: u64,
    total: u64,
    tags: Vec<(String, u64)>,
}

#[component]
pub fn EconomyView() -> impl IntoView {
    let c = ctx();
    let accounts = Memo::new(move |_| {
        let now = c.now.get();
        c.with_state(|st| {
            let v: Vec<AccountRow> = st
                .ledger
                .accounts
                .iter()
                .map(|(id, a)| {
                    let r = a.reputation.at(now);
                    AccountRow { id: *id, balance: a.balance, total: r.total, tags: r.tags.into_iter().collect() }
                })
                .collect();
            sorted(v, |a| (u64::MAX - a.balance, 0, a.id.0))
        })
    });
    let treasuries = Memo::new(move |_| {
        c.with_state(|st| st.ledger.channels.iter().map(|(n, ch)| (n.clone(), ch.treasury)).collect::<Vec<_>>())
    });
    let totals = Memo::new(move |_| {
        c.with_state(|st| (st.ledger.minted, st.ledger.escrow, st.tools.spent, st.params.tax_bps, st.sp_conserved()))
    });
    let chart = Memo::new(move |_| {
        let now = c.now.get() / 10_000 * 10_000; // redraw at most every 10 s for time alone
        c.with_state(|st| flows(st, now))
    });
    let max_tag =
        Memo::new(move |_| accounts.with(|v| v.iter().flat_map(|a| a.tags.iter().map(|t| t.1)).max().unwrap_or(1)));

    view! {
        <section class="card" aria-labelledby="h-sp">
            <h2 id="h-sp">"Synapse Points"</h2>
            <p class="muted" id="sp-totals">{move || {
                let (m, e, s, t, ok) = totals.get();
                format!("{m} SP minted · {e} SP in escrow · {s} SP spent on tools · tax {}.{:02} % · {}",
                    t / 100, t % 100, if ok { "conserved" } else { "NOT conserved" })
            }}</p>
            <div class="grid2">
                <div>
                    <h3>"Balances"</h3>
                    <div class="scroll-x"><table id="balances">
                        <thead><tr><th scope="col">"Node"</th><th scope="col">"Balance"</th><th scope="col">"Reputation"</th></tr></thead>
                        <tbody>{move || accounts.get().into_iter().map(|a| view! {
                            <tr data-node=a.id.to_text()><td><code>{who(&a.id, &c.me)}</code></td><td class="num balance">{a.balance} " SP"</td><td class="num">{display_milli(a.total)}</td></tr>
                        }).collect_view()}</tbody>
                    </table></div>
                </div>
                <div>
                    <h3>"Treasuries"</h3>
                    <table id="treasuries">
                        <thead><tr><th scope="col">"Channel"</th><th scope="col">"Treasury"</th></tr></thead>
                        <tbody>{move || treasuries.get().into_iter().map(|(n, t)| view! {
                            <tr data-channel=n.clone()><td>{n.clone()}</td><td class="num treasury">{t} " SP"</td></tr>
                        }).collect_view()}</tbody>
                    </table>
                </div>
            </div>
        </section>
        <section class="card" aria-labelledby="h-flows">
            <h2 id="h-flows">"SP flows over time"</h2>
            {move || {
                let f = chart.get();
                if f.minted.is_empty() {
                    return view! { <p class="muted">"No SP has moved yet."</p> }.into_any();
                }
                let max = f.minted.iter().chain(&f.escrow).chain(&f.paid).chain(&f.taxed).copied().max().unwrap_or(1);
                view! {
                    <svg id="flows-chart" class="chart" viewBox=format!("-40 -10 {} {}", W + 50.0, H + 30.0) role="img"
                        aria-label=format!("Cumulative SP: {} minted, {} paid, {} taxed; {} in escrow now",
                            f.minted.last().unwrap_or(&0), f.paid.last().unwrap_or(&0), f.taxed.last().unwrap_or(&0), f.escrow.last().unwrap_or(&0))>
                        <line x1="0" y1=H x2=W y2=H class="axis" />
                        <line x1="0" y1="0" x2="0" y2=H class="axis" />
                        <text x="-4" y="4" text-anchor="end" class="tick">{max}</text>
                        <text x="-4" y=H text-anchor="end" class="tick">"0"</text>
                        <text x="0" y=H + 16.0 class="tick">{clock(f.t0)}</text>
                        <text x=W y=H + 16.0 text-anchor="end" class="tick">{clock(f.t1)}</text>
                        <polyline class="series minted" points=points(&f.minted, max) />
                        <polyline class="series escrow" points=points(&f.escrow, max) />
                        <polyline class="series paid" points=points(&f.paid, max) />
                        <polyline class="series taxed" points=points(&f.taxed, max) />
                    </svg>
                    <p class="legend">
                        <span class="key minted">"minted"</span> <span class="key escrow">"in escrow"</span>
                        <span class="key paid">"paid to assignees"</span> <span class="key taxed">"tax to treasuries"</span>
                        <span class="muted">" · rebuilt from task and account times in the state (UTC)"</span>
                    </p>
                }.into_any()
            }}
        </section>
        <section class="card" aria-labelledby="h-rep">
            <h2 id="h-rep">"Reputation"</h2>
            <div id="reputation">
                {move || {
                    let max = max_tag.get();
                    accounts.get().into_iter().map(|a| view! {
                        <div class="rep">
                            <p><code>{who(&a.id, &c.me)}</code> <span class="muted">" total " {display_milli(a.total)}</span></p>
                            {a.tags.into_iter().map(|(tag, v)| view! {
                                <div class="tagbar">
                                    <span class="tagname">{tag.clone()}</span>
                                    <span class="bar"><span class="fill" style=format!("width:{:.1}%", v as f64 * 100.0 / max.max(1) as f64)></span></span>
                                    <span class="num">{display_milli(v)}</span>
                                </div>
                            }).collect_view()}
                        </div>
                    }).collect_view()
                }}
            </div>
        </section>
    }
}
