//! The Economy view: balances, treasuries, a chart of SP flows over time,
//! and reputation per node with per-tag bars. The numbers come from
//! `node_wasm::service::economy` (which also says how the flow chart is
//! rebuilt from the state); this file only draws them.

use crate::ctx::ctx;
use crate::fmt::{clock, who};
use leptos::prelude::*;
use node_wasm::core::governance::display_milli;
use node_wasm::service::{Domain, economy};

const W: f64 = 600.0;
const H: f64 = 200.0;

fn points(v: &[u64], max: u64) -> String {
    let n = v.len().max(2) - 1;
    v.iter()
        .enumerate()
        .map(|(i, y)| format!("{:.1},{:.1}", i as f64 * W / n as f64, H - (*y as f64) * H / max.max(1) as f64))
        .collect::<Vec<_>>()
        .join(" ")
}

#[component]
pub fn EconomyView() -> impl IntoView {
    let c = ctx();
    // Reputation decays with time: re-read every second as well.
    let accounts = Memo::new(move |_| {
        let now = c.now.get();
        c.read_all(&[Domain::Economy, Domain::Governance], |st| economy::accounts(st, now))
    });
    let treasuries = Memo::new(move |_| c.read_all(&[Domain::Economy, Domain::Channels], economy::treasuries));
    let totals = Memo::new(move |_| {
        c.read(Domain::Economy, |st| {
            let t = economy::totals(st);
            (t.minted, t.escrow, t.tools_spent, t.tax_bps, t.conserved)
        })
    });
    let chart = Memo::new(move |_| {
        let now = c.now.get() / 10_000 * 10_000; // redraw at most every 10 s for time alone
        c.read_all(&[Domain::Economy, Domain::Tasks], |st| economy::flows(st, now))
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
                            <tr data-node=a.id.to_text()><td><code>{who(&a.id, &c.me)}</code></td><td class="num balance">{a.balance} " SP"</td><td class="num">{display_milli(a.reputation)}</td></tr>
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
                            <p><code>{who(&a.id, &c.me)}</code> <span class="muted">" total " {display_milli(a.reputation)}</span></p>
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
