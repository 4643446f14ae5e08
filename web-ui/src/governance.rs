//! The Governance view: proposals with live weighted tallies and each
//! voter's weight, voting, closing, ratification progress, the validator
//! set and the execution log.

use crate::action::{Action, Feedback, Submit};
use crate::ctx::ctx;
use crate::field::Field;
use crate::fmt::who;
use leptos::prelude::*;
use node_wasm::core::governance::{CONFIG_KEYS, ExecEntry, ProposalStatus, display_milli};
use node_wasm::core::op::{Command, ConfigValue, OpId, ProposalKind};
use node_wasm::identity::NodeId;
use node_wasm::service::Domain;
use node_wasm::service::governance::{self as service, ProposalRow, ProposalSpec, Step};

#[component]
pub fn GovernanceView() -> impl IntoView {
    let c = ctx();
    // Live tallies decay with time: re-read every second as well.
    let rows = Memo::new(move |_| {
        let now = c.now.get();
        c.read(Domain::Governance, |st| service::proposals(st, now))
    });
    let validators = Memo::new(move |_| c.read(Domain::Governance, |st| st.gov.validators.clone()));
    let log = Memo::new(move |_| {
        c.read(Domain::Governance, |st| {
            st.gov.execution_log.iter().rev().take(100).cloned().collect::<Vec<ExecEntry>>()
        })
    });
    let config = Memo::new(move |_| c.read(Domain::Governance, |st| (st.gov.config_version, st.params)));
    let act = Action::new();

    view! {
        <NewProposalForm />
        <section class="card" aria-labelledby="h-proposals">
            <h2 id="h-proposals">"Proposals " <span class="count">{move || rows.with(Vec::len)}</span></h2>
            <Feedback action=act id="gov-feedback" />
            <div id="proposals">
                {move || rows.with(Vec::is_empty).then(|| view! { <p class="muted">"No proposals yet."</p> })}
                {move || rows.get().into_iter().map(|r| view! { <ProposalCard row=r act=act /> }).collect_view()}
            </div>
        </section>
        <div class="grid2">
            <section class="card" aria-labelledby="h-validators">
                <h2 id="h-validators">"Validators " <span class="count">{move || validators.with(Vec::len)}</span></h2>
                <p class="muted">"Recomputed at each proposal close: the most reputable nodes ratify network operations."</p>
                <ul class="plain" id="validators">
                    {move || validators.get().into_iter().map(|v| view! { <li><code>{who(&v, &c.me)}</code></li> }).collect_view()}
                </ul>
            </section>
            <section class="card" aria-labelledby="h-config">
                <h2 id="h-config">"Configuration " <span class="count">{move || format!("v{}", config.get().0)}</span></h2>
                <dl class="stats" id="config">
                    {move || {
                        let p = config.get().1;
                        [("initial_sp", p.initial_sp), ("tax_bps", p.tax_bps), ("task_reputation_milli", p.task_reputation_milli),
                         ("vote_reputation_milli", p.vote_reputation_milli), ("proposal_min_voting_seconds", p.proposal_min_voting_seconds),
                         ("proposal_auto_close_after_seconds", p.proposal_auto_close_after_seconds), ("validator_set_size", p.validator_set_size)]
                            .into_iter().map(|(k, v)| view! { <div><dt>{k}</dt><dd data-key=k>{v}</dd></div> }).collect_view()
                    }}
                </dl>
            </section>
        </div>
        <section class="card" aria-labelledby="h-log">
            <h2 id="h-log">"Execution log"</h2>
            <div class="scroll-x"><table id="execution-log">
                <thead><tr><th scope="col">"#"</th><th scope="col">"Command"</th><th scope="col">"Ratified by"</th><th scope="col">"Result"</th></tr></thead>
                <tbody>
                    {move || log.get().into_iter().map(|e| view! {
                        <tr>
                            <td class="num">{e.index}</td>
                            <td>{e.command.name()}</td>
                            <td>{if e.ratified_by.is_empty() { "–".to_string() } else { e.ratified_by.len().to_string() }}</td>
                            <td class=if e.result.success { "ok" } else { "error" }>{e.result.message.clone()}</td>
                        </tr>
                    }).collect_view()}
                </tbody>
            </table></div>
        </section>
    }
}

#[component]
fn ProposalCard(row: ProposalRow, act: Action) -> impl IntoView {
    let c = ctx();
    let me: NodeId = c.me;
    let p = row.proposal.clone();
    let id: OpId = p.id;
    let t = row.tally;
    let (ratify_need, closable_in, deadline_in) = (row.ratification_quorum, row.closable_in_ms, row.deadline_in_ms);
    let counted = t.yes_weight_milli.saturating_add(t.no_weight_milli);
    let quorum_pct = if t.quorum_weight_milli == 0 {
        100.0
    } else {
        (counted as f64 * 100.0 / t.quorum_weight_milli as f64).min(100.0)
    };
    // No votes yet: a neutral bar, not a fully red one (which reads as 100 % no).
    let no_votes = t.yes_weight_milli == 0 && t.no_weight_milli == 0;
    let total = (t.yes_weight_milli + t.no_weight_milli).max(1);
    let yes_pct = t.yes_weight_milli as f64 * 100.0 / total as f64;
    let status = p.status.name();
    let open = p.status == ProposalStatus::Open;
    let pending = p.status == ProposalStatus::PendingRatification;
    let can_ratify = pending && p.validators.contains(&me) && !p.ratifications.contains(&me);
    let my_vote = p.votes.get(&me).copied();
    // Rule `rings_fixed_at_open`: whether this identity may vote
    // anonymously here, and among how many.
    let my_ring = p.ballot.ring_of.get(&me).and_then(|i| p.ballot.rings.get(usize::from(*i))).map(|r| r.members.len());
    let anon = t.anonymous.clone();
    let vote_anonymously = move |yes: bool| {
        act.run(move || {
            c.vote_anonymously(id, yes)?;
            Ok(format!(
                "Anonymous {} vote sent: it passes through a few peers before it spreads, and shows in the tally in a few seconds.",
                if yes { "yes" } else { "no" }
            ))
        })
    };
    let vote = move |yes: bool| {
        act.run(move || {
            c.run_as_me(|st, me| service::step(st, me, id, Step::Vote(yes)))?;
            Ok(format!("Voted {}.", if yes { "yes" } else { "no" }))
        })
    };
    view! {
        <article class="proposal" data-proposal=id.to_text() data-status=status>
            <h3>{p.title.clone()} " " <span class=format!("badge st-{status}")>{status.replace('_', " ")}</span></h3>
            <p class="muted">{format!("{} · {} · by {}{}", p.kind.name(), p.channel, who(&p.proposer, &me),
                p.command.as_ref().map(|c| format!(" · command {}", describe(c))).unwrap_or_default())}</p>
            <div class="tally" aria-label=if no_votes { "no votes yet".to_string() } else { format!("yes {} against no {}", display_milli(t.yes_weight_milli), display_milli(t.no_weight_milli)) }>
                <div class=if no_votes { "bar empty" } else { "bar" }><div class="yes" style=format!("width:{yes_pct:.1}%")></div></div>
                <span class="tally-text">{format!("yes {} · no {} · {}", display_milli(t.yes_weight_milli), display_milli(t.no_weight_milli),
                    format!("{:?}", t.outcome).to_lowercase())}</span>
            </div>
            <p class="quorum" aria-label="quorum">
                <progress max="100" value=format!("{quorum_pct:.0}")></progress>
                {format!(" Quorum: members' votes weigh {} of the {} needed ({} of all members' weight)",
                    display_milli(counted), display_milli(t.quorum_weight_milli), display_milli(t.eligible_weight_milli))}
            </p>
            {open.then(|| view! {
                <p class="time-left">{if closable_in > 0 {
                    format!("Voting period: {} left before anyone may close it; the vote ends in {}.", span(closable_in), span(deadline_in))
                } else if deadline_in > 0 {
                    format!("May be closed once the quorum is reached; the vote ends in {}.", span(deadline_in))
                } else {
                    "The vote has ended: it closes at the next deadline check.".to_string()
                }}</p>
            })}
            {(!t.details.is_empty()).then(|| view! {
                <details>
                    <summary>{format!("{} voter(s)", t.details.len())}</summary>
                    <table class="voters">
                        <thead><tr><th scope="col">"Voter"</th><th scope="col">"Vote"</th><th scope="col">"Reputation"</th><th scope="col">"Weight"</th><th scope="col">"Tags matched"</th></tr></thead>
                        <tbody>{t.details.iter().map(|d| view! {
                            <tr><td><code>{who(&d.voter, &me)}</code></td><td>{if d.yes { "yes" } else { "no" }}{(!d.counted).then_some(" (not counted: not a member)")}</td>
                                <td class="num">{display_milli(d.reputation_milli)}</td><td class="num">{display_milli(d.weight_milli)}</td>
                                <td>{d.tags_matched.join(", ")}</td></tr>
                        }).collect_view()}</tbody>
                    </table>
                </details>
            })}
            {(anon.total > 0).then(|| view! {
                <p class="anonymous-tally" aria-label="anonymous votes">{format!(
                    "Anonymous: {} vote(s), yes {} · no {} (by tier: {})",
                    anon.total, anon.yes, anon.no,
                    anon.by_tier.iter().map(|(t, [y, n])| format!("{t} {y} yes / {n} no")).collect::<Vec<_>>().join(", ")
                )}</p>
            })}
            {(pending || !p.validators.is_empty()).then(|| view! {
                <p class="ratification">{format!("Ratifications {} / {} needed (of {} validators)", p.ratifications.len(), ratify_need, p.validators.len())}</p>
            })}
            <div class="actions">
                {open.then(|| view! {
                    <button type="button" class="small vote-yes" aria-pressed=(my_vote == Some(true)).to_string() disabled=move || act.pending() on:click=move |_| vote(true)>"Vote yes"</button>
                    <button type="button" class="small secondary vote-no" aria-pressed=(my_vote == Some(false)).to_string() disabled=move || act.pending() on:click=move |_| vote(false)>"Vote no"</button>
                    {my_ring.map(|n| view! {
                        <button type="button" class="small secondary vote-anon-yes" title=format!("Your vote is signed by a ring of {n} members: nobody can tell which one")
                            disabled=move || act.pending() on:click=move |_| vote_anonymously(true)>"Yes, anonymously"</button>
                        <button type="button" class="small secondary vote-anon-no" title=format!("Your vote is signed by a ring of {n} members: nobody can tell which one")
                            disabled=move || act.pending() on:click=move |_| vote_anonymously(false)>"No, anonymously"</button>
                    })}
                    <button type="button" class="small secondary close" disabled=move || act.pending() on:click=move |_| act.run(move || {
                        c.run_as_me(|st, me| service::step(st, me, id, Step::Close))?;
                        Ok("Proposal closed.".into())
                    })>"Close"</button>
                })}
                {can_ratify.then(|| view! {
                    <button type="button" class="small ratify" disabled=move || act.pending() on:click=move |_| act.run(move || {
                        c.run_as_me(|st, me| service::step(st, me, id, Step::Ratify))?;
                        Ok("Ratified.".into())
                    })>"Ratify"</button>
                })}
            </div>
        </article>
    }
}

/// A duration for people: "5 h 12 min", "3 min", "40 s".
fn span(ms: u64) -> String {
    let s = ms / 1000;
    match s {
        0..60 => format!("{s} s"),
        60..3600 => format!("{} min", s / 60),
        3600..86_400 => format!("{} h {} min", s / 3600, s % 3600 / 60),
        _ => format!("{} d {} h", s / 86_400, s % 86_400 / 3600),
    }
}

/// A one-line description of a command.
pub fn describe(c: &Command) -> String {
    match c {
        Command::ConfigChange { key, value } => format!("config_change {key} = {}", show_value(value)),
        Command::AcquireCommonTool(t) => format!("acquire tool {} in {}", t.tool_id, t.channel),
        Command::CodeUpgrade { module_sha256, policy } if *module_sha256 == [0; 32] => {
            format!("code_upgrade {} → built-in", policy.name())
        }
        Command::CodeUpgrade { module_sha256, policy } => {
            format!("code_upgrade {} → {}…", policy.name(), hex_prefix(module_sha256))
        }
        other => other.name().to_string(),
    }
}

fn hex_prefix(b: &[u8]) -> String {
    b.iter().take(6).map(|x| format!("{x:02x}")).collect()
}

fn show_value(v: &ConfigValue) -> String {
    match v {
        ConfigValue::Int(i) => i.to_string(),
        ConfigValue::Bool(b) => b.to_string(),
        ConfigValue::Text(t) => format!("{t:?}"),
    }
}

#[component]
fn NewProposalForm() -> impl IntoView {
    let c = ctx();
    let channel = RwSignal::new("global".to_string());
    let kind = RwSignal::new("generic".to_string());
    let title = RwSignal::new(String::new());
    let description = RwSignal::new(String::new());
    let key = RwSignal::new(CONFIG_KEYS[1].to_string());
    let value = RwSignal::new(String::new());
    let create = Action::new();
    let submit = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        let (ch, k, ti, de, ke, va) = (
            channel.get_untracked(),
            kind.get_untracked(),
            title.get_untracked(),
            description.get_untracked(),
            key.get_untracked(),
            value.get_untracked(),
        );
        create.run(move || {
            let (kind, command) = if k == "config_change" {
                (ProposalKind::ConfigChange, Some(service::config_change(&ke, &va)?))
            } else {
                (ProposalKind::Generic, None)
            };
            let spec = ProposalSpec { kind, title: ti.trim().to_string(), description: de, tags: vec![], command };
            let id = c.run(|_| service::propose(ch.trim(), spec))?;
            title.set(String::new());
            Ok(format!("Proposal {} created.", id.short()))
        });
    };
    view! {
        <section class="card" aria-labelledby="h-new-proposal">
            <h2 id="h-new-proposal">"New proposal"</h2>
            <form id="proposal-form" class="fields" on:submit=submit>
                <Field label="Channel" id="proposal-channel" value=channel required=true />
                <label>"Kind"
                    <select id="proposal-kind" on:change=move |ev| kind.set(event_target_value(&ev)) prop:value=move || kind.get()>
                        <option value="generic">"generic (no effect)"</option>
                        <option value="config_change">"config change"</option>
                    </select>
                </label>
                <Field label="Title" id="proposal-title" value=title required=true />
                <Field label="Description" id="proposal-description" value=description wide=true />
                {move || (kind.get() == "config_change").then(|| view! {
                    <label>"Key"
                        <select id="proposal-key" on:change=move |ev| key.set(event_target_value(&ev)) prop:value=move || key.get()>
                            {CONFIG_KEYS.iter().map(|k| view! { <option value=*k>{*k}</option> }).collect_view()}
                        </select>
                    </label>
                    <Field label="New value" id="proposal-value" value=value numeric=true required=true />
                })}
                <Submit action=create label="Propose" id="proposal-create" />
            </form>
            <Feedback action=create id="proposal-feedback" />
        </section>
    }
}
