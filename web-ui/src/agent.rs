//! The Agent view: the optional agent's settings (off by default), its
//! suggestions with their reasons (approve or dismiss each), and drafting a
//! policy module from a description. The guardrails, the policy and the
//! parsing are `node_wasm::agent`'s; this view only shows and asks.

use crate::action::{Action, Feedback, Submit};
use crate::ctx::ctx;
use crate::field::Field;
use leptos::prelude::*;
use node_wasm::agent::{self as agent, AgentConfig, Kind, Suggestion, SuggestionStatus};
use node_wasm::core::upgrade::Policy;
use node_wasm::runtime::ledger::Draft;
use node_wasm::runtime::modules::{parse_policy, publish_module};
use node_wasm::service::Domain;
use node_wasm::service::upgrades::{self as upgrades, UpgradeSpec};
use std::collections::BTreeSet;

/// One line saying what an action would do, with titles from the state.
fn describe(a: &agent::Action) -> String {
    let c = ctx();
    let title = |id: &node_wasm::core::op::OpId| {
        c.peek_state(|st| {
            st.tasks
                .get(id)
                .map(|t| t.title.clone())
                .or_else(|| st.gov.proposals.get(id).map(|p| p.title.clone()))
                .unwrap_or_else(|| format!("{}…", id.short()))
        })
    };
    match a {
        agent::Action::Claim { task } => format!("Claim {:?}", title(task)),
        agent::Action::Bid { task, amount, estimated_days } => {
            format!("Bid {amount} SP, {estimated_days} day(s), on {:?}", title(task))
        }
        agent::Action::Vote { proposal, yes } => {
            format!("Vote {} on {:?}", if *yes { "yes" } else { "no" }, title(proposal))
        }
        agent::Action::CreateTask { channel, title, reward, .. } => {
            format!("Create task {title:?} in {channel} for {reward} SP")
        }
    }
}

fn status_text(s: &SuggestionStatus) -> String {
    match s {
        SuggestionStatus::Pending => "waiting for you".into(),
        SuggestionStatus::Refused { why } => format!("refused: {why}"),
        SuggestionStatus::Done { op } => format!("done ({}…)", op.short()),
        SuggestionStatus::Failed { why } => format!("failed: {why}"),
        SuggestionStatus::Dismissed => "dismissed".into(),
        SuggestionStatus::Stale { why } => format!("no longer possible: {why}"),
    }
}

fn status_class(s: &SuggestionStatus) -> &'static str {
    match s {
        SuggestionStatus::Pending => "pending",
        SuggestionStatus::Refused { .. } => "refused",
        SuggestionStatus::Done { .. } => "done",
        SuggestionStatus::Failed { .. } => "failed",
        SuggestionStatus::Dismissed => "dismissed",
        SuggestionStatus::Stale { .. } => "stale",
    }
}

#[component]
fn SuggestionRow(s: Suggestion) -> impl IntoView {
    let c = ctx();
    let act = Action::new();
    let id = s.id;
    let pending = s.status == SuggestionStatus::Pending;
    let what = s.action.as_ref().map_or_else(|| format!("{:?} (not understood)", s.kind), describe);
    let approve = move |_| {
        act.run(move || {
            let op = c.ledger.with_value(|l| l.agent_approve(id))?;
            Ok(format!("Signed ({}…).", op.short()))
        })
    };
    let dismiss = move |_| act.run(move || c.ledger.with_value(|l| l.agent_dismiss(id)).map(|()| "Dismissed.".into()));
    let source = match s.source {
        agent::Source::Rules => "rules",
        agent::Source::Model => "model",
    };
    view! {
        <li class=format!("suggestion {}", status_class(&s.status)) data-suggestion=id data-status=status_class(&s.status)>
            <strong>{what}</strong>
            <span class="muted">{format!(" · {source}{}", if s.automatic { " · automatic" } else { "" })}</span>
            <p class="reason">{s.reason.clone()}</p>
            <p class="status">{status_text(&s.status)}</p>
            {pending.then(|| view! {
                <button type="button" class="approve" on:click=approve disabled=move || act.pending()>"Approve"</button>
                " "
                <button type="button" class="dismiss" on:click=dismiss disabled=move || act.pending()>"Dismiss"</button>
            })}
            <Feedback action=act />
        </li>
    }
}

fn kinds_text(k: &BTreeSet<Kind>) -> String {
    k.iter().map(|k| k.name()).collect::<Vec<_>>().join(", ")
}

fn parse_kinds(text: &str) -> Result<BTreeSet<Kind>, String> {
    text.split([',', ' '])
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(|s| Kind::parse(s).ok_or_else(|| format!("{s:?} is not a kind: use claim, bid, vote or create_task")))
        .collect()
}

#[component]
pub fn AgentView() -> impl IntoView {
    let c = ctx();
    let status = Memo::new(move |_| {
        c.track(Domain::Agent);
        c.ledger.with_value(|l| l.agent_status())
    });
    let enabled = RwSignal::new(false);
    let endpoint = RwSignal::new(String::new());
    let model = RwSignal::new(String::new());
    let api_key = RwSignal::new(String::new());
    let allowed = RwSignal::new(String::new());
    let auto = RwSignal::new(String::new());
    // The form follows the configuration whenever it changes (here or
    // through `agentConfigure`), not on every cycle, so typing is not lost.
    Effect::new(move |prev: Option<AgentConfig>| {
        let cfg = status.with(|s| s.config.clone());
        if prev.as_ref() != Some(&cfg) {
            enabled.set(cfg.enabled);
            endpoint.set(cfg.endpoint.clone().unwrap_or_default());
            model.set(cfg.model.clone());
            allowed.set(kinds_text(&cfg.allowed));
            auto.set(kinds_text(&cfg.auto));
        }
        cfg
    });
    let save = Action::new();
    let run = Action::new();
    let on_save = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        save.run(move || {
            let old = c.ledger.with_value(|l| l.agent_status()).config;
            let e = endpoint.get_untracked();
            let k = api_key.get_untracked();
            let cfg = AgentConfig {
                enabled: enabled.get_untracked(),
                endpoint: (!e.trim().is_empty()).then(|| e.trim().to_string()),
                model: model.get_untracked().trim().to_string(),
                api_key: (!k.is_empty()).then_some(k),
                allowed: parse_kinds(&allowed.get_untracked())?,
                auto: parse_kinds(&auto.get_untracked())?,
                ..old
            };
            c.ledger.with_value(|l| l.agent_configure(cfg))?;
            api_key.set(String::new());
            Ok(if enabled.get_untracked() {
                "Saved: the agent is on.".into()
            } else {
                "Saved: the agent is off.".into()
            })
        })
    };
    let on_run = move |_| {
        run.run_async(async move {
            let l = c.ledger.get_value();
            l.agent_run_now().await.map(|()| "Cycle done.".to_string())
        })
    };

    // Drafting a policy module.
    let description = RwSignal::new(String::new());
    let policy = RwSignal::new("tax".to_owned());
    let draft: RwSignal<Option<Draft>, LocalStorage> = RwSignal::new_local(None);
    let drafting = Action::new();
    let proposing = Action::new();
    let on_draft = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        draft.set(None);
        drafting.run_async(async move {
            let p = parse_policy(&policy.get_untracked())?;
            let l = c.ledger.get_value();
            let d = l.agent_draft(&description.get_untracked(), p).await?;
            let msg = match &d.dry_run.error {
                Some(e) => format!("Compiled ({} bytes), but the dry run failed: {}", d.size, e.message),
                None => format!(
                    "Compiled ({} bytes); {} change(s) against the current state.",
                    d.size,
                    d.dry_run.changes.len()
                ),
            };
            draft.set(Some(d));
            Ok(msg)
        });
    };
    let on_propose = move |_| {
        proposing.run(move || {
            let d = draft.with_untracked(|d| d.clone()).ok_or("draft a module first")?;
            c.ledger.with_value(|l| publish_module(l, &d.bytes))?;
            let p = d.proposal;
            let spec = UpgradeSpec {
                title: p.title,
                description: p.description,
                tags: p.tags,
                module: p.module,
                policy: p.policy,
            };
            let id = c.run(|_| upgrades::propose("global", spec))?;
            Ok(format!("Published and proposed ({}…): vote on it under Governance.", id.short()))
        })
    };

    view! {
        <h1>"Agent"</h1>
        <section class="card" aria-labelledby="h-agent-settings">
            <h2 id="h-agent-settings">"Settings"</h2>
            <p class="muted">"Off by default. It suggests; you approve. Whatever it (or a model) says, it never leaves you below "
                {agent::guardrails::RESERVE_FLOOR_SP}" SP and never bids above "{agent::guardrails::BID_CAP_MAX_PERCENT}" % of your balance."</p>
            <form id="agent-form" class="fields" on:submit=on_save>
                <label class="check"><input id="agent-enabled" type="checkbox" prop:checked=move || enabled.get()
                    on:change=move |ev| enabled.set(event_target_checked(&ev)) />" Enabled"</label>
                <Field label="Chat endpoint (OpenAI-compatible, optional)" id="agent-endpoint" value=endpoint kind="url"
                    placeholder="http://localhost:11434/v1" wide=true />
                <Field label="Model" id="agent-model" value=model />
                <Field label="API key (optional; kept in this page only, never saved)" id="agent-key" value=api_key kind="password" />
                <Field label="Allowed kinds" id="agent-allowed" value=allowed placeholder="claim, bid, vote" />
                <Field label="Run without asking" id="agent-auto" value=auto placeholder="(none)" />
                <Submit action=save label="Save" id="agent-save" />
            </form>
            <Feedback action=save id="agent-save-feedback" />
        </section>
        <section class="card" aria-labelledby="h-agent-suggestions">
            <h2 id="h-agent-suggestions">"Suggestions"</h2>
            <p id="agent-source">{move || {
                let s = status.get();
                let from = match s.source {
                    None => "No cycle yet.".to_string(),
                    Some(agent::Source::Rules) => format!("{} cycle(s); the last from the rules.", s.cycles),
                    Some(agent::Source::Model) => format!("{} cycle(s); the last from the model.", s.cycles),
                };
                if s.config.enabled { from } else { format!("{from} The agent is off.") }
            }}</p>
            {move || status.get().model_problem.map(|p| view! { <p class="error" id="agent-problem" role="status">{p}</p> })}
            <button type="button" id="agent-run" on:click=on_run disabled=move || run.pending()>"Run now"</button>
            <Feedback action=run />
            <ul id="agent-suggestions" class="suggestions">
                {move || status.get().suggestions.into_iter().map(|s| view! { <SuggestionRow s=s /> }).collect_view()}
            </ul>
        </section>
        <section class="card" aria-labelledby="h-agent-draft">
            <h2 id="h-agent-draft">"Draft a policy module"</h2>
            <p class="muted">"The endpoint writes WebAssembly text; this page compiles it and tries it against the live state. Nothing is published until you press Publish and propose."</p>
            <form id="agent-draft-form" class="fields" on:submit=on_draft>
                <Field label="What should it do?" id="agent-draft-description" value=description wide=true required=true />
                <label>"Policy "
                    <select id="agent-draft-policy" prop:value=move || policy.get() on:change=move |ev| policy.set(event_target_value(&ev))>
                        {Policy::ALL.into_iter().map(|p| view! { <option value=p.name()>{p.name()}</option> }).collect_view()}
                    </select>
                </label>
                <Submit action=drafting label="Draft" id="agent-draft" />
            </form>
            <Feedback action=drafting id="agent-draft-feedback" />
            {move || draft.with(|d| d.as_ref().map(|d| view! {
                <p>{format!("Proposal ready: {}", d.proposal.title)}</p>
                <pre id="agent-draft-wat">{d.wat.clone()}</pre>
                <button type="button" id="agent-draft-propose" on:click=on_propose disabled=move || proposing.pending()>"Publish and propose"</button>
                <Feedback action=proposing />
            }))}
        </section>
    }
}
