//! The Network view's finality card: the current epoch, the last final
//! checkpoint, why the next one is not final yet, and what this node
//! stores (ops held, dropped, the saved checkpoint, a snapshot being
//! fetched).

use crate::ctx::ctx;
use leptos::prelude::*;

fn bytes(n: u64) -> String {
    match n {
        0..1_024 => format!("{n} B"),
        1_024..1_048_576 => format!("{:.1} KiB", n as f64 / 1_024.0),
        _ => format!("{:.1} MiB", n as f64 / 1_048_576.0),
    }
}

#[component]
pub fn FinalityCard() -> impl IntoView {
    let c = ctx();
    let status = Memo::new(move |_| {
        c.track_any();
        c.ledger.with_value(|l| l.finality_status())
    });
    let rows = move || {
        let s = status.get();
        let st = &s.storage;
        let mut rows: Vec<(&'static str, String)> = vec![];
        if !s.view.enabled {
            rows.push(("finality", "off on this network (its rules set no epoch)".into()));
        } else {
            rows.push(("epoch length", format!("{} s", s.view.epoch_seconds)));
            rows.push(("epoch being signed", s.view.current_epoch.map_or("–".into(), |e| e.to_string())));
            rows.push((
                "last final checkpoint",
                match s.view.final_epoch {
                    Some(e) => format!("epoch {e}, signed by {} validators", s.view.final_signers),
                    None => "none yet".into(),
                },
            ));
            rows.push(("late ops refused", s.view.late_ops.to_string()));
        }
        rows.push(("history", st.history.to_string()));
        rows.push(("ops held", st.ops_held.to_string()));
        rows.push(("ops dropped (final)", st.ops_pruned.to_string()));
        rows.push((
            "saved checkpoint",
            match st.saved_epoch {
                Some(e) => format!("epoch {e}, {}", bytes(st.checkpoint_bytes)),
                None => "none".into(),
            },
        ));
        rows.push(("router store", format!("{}, {} index entries", bytes(st.router_bytes), st.router_index)));
        if st.snapshot_joins > 0 {
            rows.push(("checkpoints adopted from peers", st.snapshot_joins.to_string()));
        }
        rows
    };
    view! {
        <section class="card" aria-labelledby="h-finality">
            <h2 id="h-finality">"Finality and storage"</h2>
            {move || status.get().view.waiting.map(|w| view! { <p id="finality-waiting" class="muted">{w}</p> })}
            {move || status.get().storage.fetching.map(|(got, total)| {
                let pct = (got * 100).checked_div(total).unwrap_or(0);
                view! {
                    <p id="snapshot-progress">"Fetching a checkpoint from a peer: " {bytes(got)} " of " {bytes(total)}
                        <progress max="100" value=pct.to_string()></progress></p>
                }
            })}
            <table id="finality"><tbody>
                {move || rows().into_iter().map(|(k, v)| view! { <tr><th scope="row">{k}</th><td>{v}</td></tr> }).collect_view()}
            </tbody></table>
        </section>
    }
}
