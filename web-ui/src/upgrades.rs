//! The Upgrades view, kept small and isolated so it can grow with the
//! self-upgrade subsystem.
//!
//! It renders the network's policy versions when the state carries a
//! `policies` field (looked up in the state's JSON form: at the top level,
//! under `upgrades` or under `gov`, so this view compiles whatever the
//! core's layout; `{active: {policy: module}}` gives one row per policy),
//! and always lists the `code_upgrade` proposals and execution-log entries.

use crate::ctx::ctx;
use crate::governance::describe;
use leptos::prelude::*;
use node_wasm::core::op::{Command, ProposalKind};
use node_wasm::core::state::State;
use serde::Serialize;
use wasm_bindgen::JsValue;

/// `policies` from the state's JSON form, as (name, value) rows. The state
/// goes through the same JSON-compatible serializer as `synapse.state()`
/// (so no second serializer is compiled in); only `policies` is stringified.
fn policies(st: &State) -> Option<Vec<(String, String)>> {
    let v = st.serialize(&serde_wasm_bindgen::Serializer::json_compatible()).ok()?;
    let get = |o: &JsValue, k: &str| {
        js_sys::Reflect::get(o, &JsValue::from_str(k)).ok().filter(|x| !x.is_undefined() && !x.is_null())
    };
    let p = get(&v, "policies")
        .or_else(|| get(&v, "upgrades").and_then(|u| get(&u, "policies")))
        .or_else(|| get(&v, "gov").and_then(|g| get(&g, "policies")))?;
    let text = |x: &JsValue| {
        x.as_string().unwrap_or_else(|| js_sys::JSON::stringify(x).ok().and_then(|s| s.as_string()).unwrap_or_default())
    };
    // `{active: {policy: module}, fallbacks: {module: count}}`: one row per
    // active policy (none active = the built-in policies).
    if let Some(active) = get(&p, "active").filter(JsValue::is_object) {
        let mut rows: Vec<(String, String)> = js_sys::Object::entries(&js_sys::Object::from(active))
            .iter()
            .map(|e| {
                let e = js_sys::Array::from(&e);
                (e.get(0).as_string().unwrap_or_default(), text(&e.get(1)))
            })
            .collect();
        let fallbacks =
            get(&p, "fallbacks").filter(|f| js_sys::Object::keys(&js_sys::Object::from(f.clone())).length() > 0);
        if let Some(fb) = fallbacks {
            rows.push(("fallbacks (module → times the built-in was used)".into(), text(&fb)));
        }
        return Some(rows);
    }
    if js_sys::Array::is_array(&p) {
        return Some(js_sys::Array::from(&p).iter().enumerate().map(|(i, x)| (i.to_string(), text(&x))).collect());
    }
    if p.is_object() {
        let obj = js_sys::Object::from(p);
        return Some(
            js_sys::Object::entries(&obj)
                .iter()
                .map(|e| {
                    let e = js_sys::Array::from(&e);
                    (e.get(0).as_string().unwrap_or_default(), text(&e.get(1)))
                })
                .collect(),
        );
    }
    Some(vec![("policies".into(), text(&p))])
}

#[component]
pub fn UpgradesView() -> impl IntoView {
    let c = ctx();
    let policy_rows = Memo::new(move |_| c.with_state(policies));
    let log = Memo::new(move |_| {
        c.with_state(|st| {
            st.gov
                .execution_log
                .iter()
                .filter(|e| matches!(e.command, Command::CodeUpgrade { .. }))
                .map(|e| (e.index, describe(&e.command), e.result.success, e.result.message.clone()))
                .collect::<Vec<_>>()
        })
    });
    let proposals = Memo::new(move |_| {
        c.with_state(|st| {
            st.gov
                .proposals
                .values()
                .filter(|p| p.kind == ProposalKind::CodeUpgrade)
                .map(|p| (p.title.clone(), p.status.name(), p.ratifications.len(), p.quorum()))
                .collect::<Vec<_>>()
        })
    });
    view! {
        <section class="card" aria-labelledby="h-policies">
            <h2 id="h-policies">"Policy versions"</h2>
            {move || match policy_rows.get() {
                Some(rows) if !rows.is_empty() => view! {
                    <table id="policies">
                        <thead><tr><th scope="col">"Policy"</th><th scope="col">"Current"</th></tr></thead>
                        <tbody>{rows.into_iter().map(|(k, v)| view! { <tr><td>{k}</td><td><code class="id">{v}</code></td></tr> }).collect_view()}</tbody>
                    </table>
                }.into_any(),
                _ => view! { <p class="muted" id="policies-none">"This network runs the built-in policies: no policy module has been activated."</p> }.into_any(),
            }}
        </section>
        <section class="card" aria-labelledby="h-upgrade-proposals">
            <h2 id="h-upgrade-proposals">"Code upgrade proposals"</h2>
            {move || {
                let ps = proposals.get();
                if ps.is_empty() {
                    return view! { <p class="muted">"None yet. A code upgrade is proposed under Governance and ratified by validators."</p> }.into_any();
                }
                view! { <ul class="plain" id="upgrade-proposals">{ps.into_iter().map(|(t, s, r, q)| view! {
                    <li>{t} " " <span class=format!("badge st-{s}")>{s.replace('_', " ")}</span> <span class="muted">{format!(" · ratifications {r} / {q}")}</span></li>
                }).collect_view()}</ul> }.into_any()
            }}
        </section>
        <section class="card" aria-labelledby="h-upgrade-log">
            <h2 id="h-upgrade-log">"Executed upgrades"</h2>
            {move || {
                let l = log.get();
                if l.is_empty() {
                    return view! { <p class="muted">"No code upgrade has been executed."</p> }.into_any();
                }
                view! { <table id="upgrade-log">
                    <thead><tr><th scope="col">"#"</th><th scope="col">"Module"</th><th scope="col">"Result"</th></tr></thead>
                    <tbody>{l.into_iter().map(|(i, d, ok, m)| view! {
                        <tr><td class="num">{i}</td><td>{d}</td><td class=if ok { "ok" } else { "error" }>{m}</td></tr>
                    }).collect_view()}</tbody>
                </table> }.into_any()
            }}
        </section>
    }
}
