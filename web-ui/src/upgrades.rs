//! The Upgrades view: the network's policy versions, the modules it holds,
//! and a workbench to try a module (dry run against the live state), publish
//! it as pieces and propose its activation (`docs/UPGRADES.md`).

use crate::action::{Action, Feedback};
use crate::ctx::ctx;
use crate::governance::describe;
use leptos::prelude::*;
use node_wasm::core::op::{Command, ProposalKind};
use node_wasm::core::upgrade::{ModuleHash, Policy, examples, module_hash};
use node_wasm::core::upgrades::DryRun;
use node_wasm::runtime::modules::{dry_run, parse_policy, publish_module};
use node_wasm::service::Domain;
use node_wasm::service::upgrades::{self as service, UpgradeSpec};
use wasm_bindgen::JsCast;

/// A module short name for tables: `built-in` for the all-zero hash.
fn module_name(h: &ModuleHash) -> String {
    if *h == ModuleHash::BUILTIN {
        return "built-in".to_owned();
    }
    let known = examples::ALL.iter().find(|(_, _, b)| module_hash(b) == h.0).map(|(n, _, _)| *n);
    match known {
        Some(n) => format!("{}… ({n})", h.short()),
        None => format!("{}…", h.short()),
    }
}

/// Reads the first file of a file input as bytes.
async fn read_file(input: web_sys::HtmlInputElement) -> Result<(String, Vec<u8>), String> {
    let file = input.files().and_then(|f| f.get(0)).ok_or("no file chosen")?;
    let buf =
        wasm_bindgen_futures::JsFuture::from(file.array_buffer()).await.map_err(|_| "the file could not be read")?;
    Ok((file.name(), js_sys::Uint8Array::new(&buf).to_vec()))
}

#[component]
pub fn UpgradesView() -> impl IntoView {
    let c = ctx();
    let any_active = Memo::new(move |_| c.read(Domain::Upgrades, |st| !st.upgrades.policies.active.is_empty()));
    let versions = Memo::new(move |_| {
        c.read(Domain::Upgrades, |st| {
            let u = &st.upgrades;
            Policy::ALL
                .iter()
                .map(|p| {
                    let h = u.active(*p);
                    let falls = u.policies.fallbacks.get(&h).copied().unwrap_or(0);
                    let full = if h == ModuleHash::BUILTIN { String::new() } else { h.to_text() };
                    (p.name(), module_name(&h), full, falls)
                })
                .collect::<Vec<_>>()
        })
    });
    let modules = Memo::new(move |_| {
        c.read(Domain::Upgrades, |st| {
            let u = &st.upgrades;
            let mut rows: Vec<(String, String)> = u
                .modules
                .iter()
                .map(|(h, m)| {
                    (module_name(h), format!("{} bytes, assembled from pieces by {}…", m.size, m.assembled_by.short()))
                })
                .collect();
            for (h, by) in &u.pending {
                for (author, p) in by {
                    rows.push((
                        module_name(h),
                        format!("{} of {} pieces from {}…", p.received.len(), p.count, author.short()),
                    ));
                }
            }
            for (h, n) in &u.corrupt {
                rows.push((
                    module_name(h),
                    format!("{n} assembl{} did not match the hash", if *n == 1 { "y" } else { "ies" }),
                ));
            }
            rows
        })
    });
    let history = Memo::new(move |_| {
        c.read(Domain::Upgrades, |st| {
            st.upgrades
                .history
                .iter()
                .map(|a| (a.execution, a.policy.name(), module_name(&a.previous), module_name(&a.module)))
                .collect::<Vec<_>>()
        })
    });
    let proposals = Memo::new(move |_| {
        c.read(Domain::Governance, |st| {
            st.gov
                .proposals
                .values()
                .filter(|p| p.kind == ProposalKind::CodeUpgrade)
                .map(|p| {
                    let what = p.command.as_ref().map(describe).unwrap_or_default();
                    (p.title.clone(), what, p.status.name(), p.ratifications.len(), p.quorum(&st.params.rules))
                })
                .collect::<Vec<_>>()
        })
    });
    let log = Memo::new(move |_| {
        c.read(Domain::Governance, |st| {
            st.gov
                .execution_log
                .iter()
                .filter(|e| matches!(e.command, Command::CodeUpgrade { .. }))
                .map(|e| (e.index, describe(&e.command), e.result.success, e.result.message.clone()))
                .collect::<Vec<_>>()
        })
    });

    // The workbench: a module (an example or a file), a policy, then dry
    // run / publish / propose.
    let bytes: RwSignal<Option<(String, Vec<u8>)>, LocalStorage> = RwSignal::new_local(None);
    let policy = RwSignal::new("vote_weight".to_owned());
    let report: RwSignal<Option<DryRun>> = RwSignal::new(None);
    let title = RwSignal::new(String::new());
    let load = Action::new();
    let try_it = Action::new();
    let publish = Action::new();
    let propose = Action::new();
    let file_ref = NodeRef::<leptos::html::Input>::new();

    let pick_example = move |ev: leptos::ev::Event| {
        let name = event_target_value(&ev);
        report.set(None);
        if let Some((p, b)) = examples::get(&name) {
            bytes.set(Some((name.clone(), b.to_vec())));
            policy.set(p.name().to_owned());
            load.status.set(crate::action::Status::Done(format!("{name}: {} bytes", b.len())));
        }
    };
    let pick_file = move |_| {
        let Some(input) = file_ref.get() else { return };
        let input: web_sys::HtmlInputElement = input.unchecked_into();
        report.set(None);
        load.run_async(async move {
            let (name, b) = read_file(input).await?;
            let n = b.len();
            bytes.set(Some((name.clone(), b)));
            Ok(format!("{name}: {n} bytes"))
        });
    };
    let run_dry = move |_| {
        try_it.run(move || {
            let p = parse_policy(&policy.get_untracked())?;
            let b = bytes.with_untracked(|b| b.as_ref().map(|(_, b)| b.clone())).ok_or("choose a module first")?;
            let r = c.ledger.with_value(|l| dry_run(l, &b, p));
            let msg = match &r.error {
                Some(e) => Err(format!("{}: {}", e.code, e.message)),
                None => {
                    Ok(format!("{} change(s) against the current state, {} fallback(s)", r.changes.len(), r.faults))
                }
            };
            report.set(Some(r));
            msg
        });
    };
    let do_publish = move |_| {
        publish.run(move || {
            let b = bytes.with_untracked(|b| b.as_ref().map(|(_, b)| b.clone())).ok_or("choose a module first")?;
            let p = c.ledger.with_value(|l| publish_module(l, &b))?.report;
            Ok(if p.pieces_sent == 0 {
                format!("The network already has module {}….", p.module.short())
            } else {
                format!("Published module {}… as {} piece(s).", p.module.short(), p.pieces_sent)
            })
        });
    };
    let do_propose = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        propose.run(move || {
            let p = parse_policy(&policy.get_untracked())?;
            let b = bytes.with_untracked(|b| b.as_ref().map(|(_, b)| b.clone())).ok_or("choose a module first")?;
            let module = ModuleHash(module_hash(&b));
            let mut t = title.get_untracked();
            if t.trim().is_empty() {
                t = service::default_title(module, p);
            }
            let spec = UpgradeSpec {
                title: t,
                description: String::new(),
                tags: vec![],
                module: module.to_text(),
                policy: p.name().to_owned(),
            };
            let id = c.run(|_| service::propose("global", spec))?;
            title.set(String::new());
            Ok(format!("Proposed ({}…): vote on it under Governance; validators then ratify.", id.short()))
        });
    };
    let rollback = Action::new();
    let do_rollback = move |_| {
        rollback.run(move || {
            let p = parse_policy(&policy.get_untracked())?;
            let spec = UpgradeSpec {
                title: service::default_title(ModuleHash::BUILTIN, p),
                description: String::new(),
                tags: vec![],
                module: ModuleHash::BUILTIN.to_text(),
                policy: p.name().to_owned(),
            };
            let id = c.run(|_| service::propose("global", spec))?;
            Ok(format!("Rollback proposed ({}…).", id.short()))
        });
    };

    view! {
        <section class="card" aria-labelledby="h-policies">
            <h2 id="h-policies">"Policy versions"</h2>
            {move || (!any_active.get()).then(|| view! {
                <p class="muted" id="policies-none">"This network runs the built-in policies: no policy module is active."</p>
            })}
            <table id="policies">
                <thead><tr><th scope="col">"Policy"</th><th scope="col">"Active"</th><th scope="col">"Fallbacks"</th></tr></thead>
                <tbody>{move || versions.get().into_iter().map(|(p, m, full, f)| view! {
                    <tr><td>{p}</td><td><code class="id" title=full.clone()>{m}</code>" "<span class="hash">{full}</span></td><td class="num">{f}</td></tr>
                }).collect_view()}</tbody>
            </table>
        </section>
        <section class="card" aria-labelledby="h-workbench">
            <h2 id="h-workbench">"Try a module"</h2>
            <div class="form-row">
                <label for="module-example">"Example"</label>
                <select id="module-example" on:change=pick_example>
                    <option value="">"— choose —"</option>
                    {examples::ALL.iter().map(|(n, p, _)| view! { <option value=*n>{format!("{n} ({})", p.name())}</option> }).collect_view()}
                </select>
                <label for="module-file">"or a .wasm file"</label>
                <input id="module-file" type="file" accept=".wasm,application/wasm" node_ref=file_ref on:change=pick_file />
            </div>
            <Feedback action=load id="module-loaded" />
            <div class="form-row">
                <label for="module-policy">"Policy"</label>
                <select id="module-policy" prop:value=move || policy.get() on:change=move |ev| policy.set(event_target_value(&ev))>
                    {Policy::ALL.iter().map(|p| view! { <option value=p.name()>{p.name()}</option> }).collect_view()}
                </select>
                <button id="dry-run" type="button" on:click=run_dry disabled=move || try_it.pending()>"Dry run"</button>
                <button id="publish-module" type="button" on:click=do_publish disabled=move || publish.pending()>"Publish pieces"</button>
            </div>
            <Feedback action=try_it id="dry-run-feedback" />
            <Feedback action=publish id="publish-feedback" />
            {move || report.get().filter(|r| r.error.is_none()).map(|r| view! {
                <div id="dry-run-report">
                    <h3>"What would change now"</h3>
                    {if r.changes.is_empty() {
                        view! { <p class="muted">"No open proposal, task or auction would come out differently."</p> }.into_any()
                    } else {
                        view! { <table id="dry-run-changes">
                            <thead><tr><th scope="col">"Subject"</th><th scope="col">"Before"</th><th scope="col">"After"</th></tr></thead>
                            <tbody>{r.changes.into_iter().map(|ch| view! {
                                <tr><td>{ch.title}" "<span class="muted">{format!("({})", ch.status.replace('_', " "))}</span></td><td>{ch.before}</td><td>{ch.after}</td></tr>
                            }).collect_view()}</tbody>
                        </table> }.into_any()
                    }}
                    {(!r.samples.is_empty()).then(|| view! {
                        <table id="dry-run-samples">
                            <thead><tr><th scope="col">"Input"</th><th scope="col">"Now"</th><th scope="col">"With the module"</th></tr></thead>
                            <tbody>{r.samples.into_iter().map(|s| view! {
                                <tr><td>{s.input}</td><td class="num">{s.before}</td><td class="num">{s.after}</td></tr>
                            }).collect_view()}</tbody>
                        </table>
                    })}
                </div>
            })}
            <form on:submit=do_propose class="form-row">
                <label for="upgrade-title">"Proposal title"</label>
                <input id="upgrade-title" type="text" prop:value=move || title.get() on:input=move |ev| title.set(event_target_value(&ev)) placeholder="optional" />
                <button type="submit" id="propose-upgrade" disabled=move || propose.pending()>"Propose activation"</button>
                <button type="button" id="propose-rollback" on:click=do_rollback disabled=move || rollback.pending()>"Propose rollback to built-in"</button>
            </form>
            <Feedback action=propose id="propose-upgrade-feedback" />
            <Feedback action=rollback id="rollback-feedback" />
        </section>
        <section class="card" aria-labelledby="h-modules">
            <h2 id="h-modules">"Modules on the network"</h2>
            {move || {
                let rows = modules.get();
                if rows.is_empty() {
                    return view! { <p class="muted">"No module has been published."</p> }.into_any();
                }
                view! { <ul class="plain" id="modules">{rows.into_iter().map(|(m, d)| view! { <li><code class="id">{m}</code>" "{d}</li> }).collect_view()}</ul> }.into_any()
            }}
        </section>
        <section class="card" aria-labelledby="h-upgrade-proposals">
            <h2 id="h-upgrade-proposals">"Code upgrade proposals"</h2>
            {move || {
                let ps = proposals.get();
                if ps.is_empty() {
                    return view! { <p class="muted">"None yet."</p> }.into_any();
                }
                view! { <ul class="plain" id="upgrade-proposals">{ps.into_iter().map(|(t, w, s, r, q)| view! {
                    <li>{t} " " <span class="muted">{w}</span> " " <span class=format!("badge st-{s}")>{s.replace('_', " ")}</span> <span class="muted">{format!(" · ratifications {r} / {q}")}</span></li>
                }).collect_view()}</ul> }.into_any()
            }}
        </section>
        <section class="card" aria-labelledby="h-upgrade-history">
            <h2 id="h-upgrade-history">"Activation history"</h2>
            {move || {
                let h = history.get();
                if h.is_empty() {
                    return view! { <p class="muted">"The network runs the built-in policies: no module has been activated."</p> }.into_any();
                }
                view! { <table id="upgrade-history">
                    <thead><tr><th scope="col">"Log #"</th><th scope="col">"Policy"</th><th scope="col">"From"</th><th scope="col">"To"</th></tr></thead>
                    <tbody>{h.into_iter().map(|(i, p, from, to)| view! {
                        <tr><td class="num">{i}</td><td>{p}</td><td><code class="id">{from}</code></td><td><code class="id">{to}</code></td></tr>
                    }).collect_view()}</tbody>
                </table> }.into_any()
            }}
            {move || {
                let l = log.get();
                (!l.is_empty()).then(|| view! { <table id="upgrade-log">
                    <thead><tr><th scope="col">"#"</th><th scope="col">"Command"</th><th scope="col">"Result"</th></tr></thead>
                    <tbody>{l.into_iter().map(|(i, d, ok, m)| view! {
                        <tr><td class="num">{i}</td><td>{d}</td><td class=if ok { "ok" } else { "error" }>{m}</td></tr>
                    }).collect_view()}</tbody>
                </table> })
            }}
        </section>
    }
}
