//! The Network view's immune-system card: this node's vital signs against
//! its targets, the problems that persist, the open remedy proposals, and
//! the identities slashed for equivocating.

use crate::ctx::ctx;
use leptos::prelude::*;
use node_wasm::health::Problem;

fn label(p: Problem) -> &'static str {
    match p {
        Problem::LowConnectivity => "proven peers (at least)",
        Problem::HighLatency => "op propagation, median ms (at most)",
        Problem::MessageLoss => "promised pieces lost, ‱ (at most)",
        Problem::Overload => "ops a minute (at most)",
    }
}

#[component]
pub fn HealthCard() -> impl IntoView {
    let c = ctx();
    let report = Memo::new(move |_| {
        c.track_any();
        c.ledger.with_value(|l| l.health())
    });
    let slashed = Memo::new(move |_| {
        c.track_any();
        c.peek_state(|st| {
            st.ledger
                .accounts
                .iter()
                .filter_map(|(id, a)| a.slashed_at_seq.map(|s| (id.short(), s, a.banned_until_ms)))
                .collect::<Vec<_>>()
        })
    });
    view! {
        <section class="card" aria-labelledby="h-health">
            <h2 id="h-health">"Immune system"</h2>
            <table id="health"><thead><tr><th scope="col">"Measure"</th><th scope="col">"Now"</th><th scope="col">"Target"</th><th scope="col">"Status"</th></tr></thead>
            <tbody>
                {move || report.get().vitals.into_iter().map(|v| view! {
                    <tr data-problem=v.problem.name()>
                        <th scope="row">{label(v.problem)}</th>
                        <td class="num">{v.current.map_or("–".to_string(), |x| x.to_string())}</td>
                        <td class="num">{v.target}</td>
                        <td class=if v.ok { "ok" } else { "error" }>{if v.ok { "ok".to_string() } else {
                            format!("{} for {} cycle(s)", v.problem.name().replace('_', " "), v.streak)
                        }}</td>
                    </tr>
                }).collect_view()}
            </tbody></table>
            <p class="muted">{move || format!("Peers each node aims to keep (net_target_degree): {}", report.get().net_target_degree)}</p>
            {move || report.get().pending.map(|p| view! {
                <p id="remedy-pending">{format!("A remedy for {} will be proposed when this node's turn comes, unless one is open by then.", p.replace('_', " "))}</p>
            })}
            {move || {
                let open = report.get().open_remedies;
                (!open.is_empty()).then(|| view! {
                    <p>"Open remedies:"</p>
                    <ul id="open-remedies">{open.into_iter().map(|(_, title)| view! { <li>{title}</li> }).collect_view()}</ul>
                })
            }}
            {move || {
                let s = slashed.get();
                (!s.is_empty()).then(|| view! {
                    <p>"Slashed for equivocating (proven by evidence):"</p>
                    <ul id="slashed">{s.into_iter().map(|(id, seq, until)| view! {
                        <li><code>{id}</code>{format!(" at seq {seq}; not a validator: {}", crate::fmt::countdown(until, c.now.get_untracked()))}</li>
                    }).collect_view()}</ul>
                })
            }}
        </section>
    }
}
