//! The Common tools view: the channel tools with their status and upkeep,
//! proposing a new tool (its secret sealed here, per member), and using a
//! tool for a task this node works on.

use crate::action::{Action, Feedback, Submit};
use crate::ctx::ctx;
use crate::field::Field;
use crate::fmt::{clock, sp};
use leptos::prelude::*;
use node_wasm::core::op::{OpId, ToolType};
use node_wasm::runtime::webhook::{self, Used};
use node_wasm::service::Domain;
use node_wasm::service::tools::{self as service, ToolSpec};

#[component]
pub fn ToolsView() -> impl IntoView {
    let c = ctx();
    // A tool row lists this node's in-progress tasks that may use it.
    let tools = Memo::new(move |_| c.read_all(&[Domain::Tools, Domain::Tasks], |st| service::list(st, &c.me)));
    let used = Action::new();
    view! {
        <section class="card" aria-labelledby="h-tools">
            <h2 id="h-tools">"Common tools " <span class="count">{move || tools.with(Vec::len)}</span></h2>
            <p class="muted">"A tool's credential is sealed to each channel member; only the assignee of an in-progress task that lists the tool can open it, here, in this browser."</p>
            <Feedback action=used id="tool-feedback" />
            <div class="scroll-x"><table id="tools">
                <thead><tr><th scope="col">"Tool"</th><th scope="col">"Channel"</th><th scope="col">"Type"</th><th scope="col">"Status"</th><th scope="col">"Upkeep"</th><th scope="col">"Use"</th></tr></thead>
                <tbody>
                    {move || tools.get().into_iter().map(|t| {
                        let tool_id = t.tool_id.clone();
                        let kind = if t.tool_type == ToolType::Webhook { "webhook" } else { "api_key" };
                        let status = t.status.name();
                        view! {
                            <tr data-tool=t.tool_id.clone()>
                                <td><strong>{t.tool_id.clone()}</strong> <span class="muted">" " {t.description.clone()}</span></td>
                                <td>{t.channel.clone()}</td>
                                <td>{kind}</td>
                                <td><span class=format!("badge st-{status}")>{status.replace('_', " ")}</span></td>
                                <td class="num">{format!("{} SP/month · paid until {}", t.monthly_cost_sp, clock(t.paid_until_ms))}</td>
                                <td>
                                    {if t.my_tasks.is_empty() {
                                        view! { <span class="muted">"no task of yours needs it"</span> }.into_any()
                                    } else {
                                        t.my_tasks.into_iter().map(|(task, title)| {
                                            let tool_id = tool_id.clone();
                                            view! {
                                                <button type="button" class="small use-tool" disabled=move || used.pending()
                                                    on:click=move |_| use_tool(used, tool_id.clone(), task)>{format!("Use for “{title}”")}</button>
                                            }
                                        }).collect_view().into_any()
                                    }}
                                </td>
                            </tr>
                        }
                    }).collect_view()}
                </tbody>
            </table></div>
        </section>
        <ProposeTool />
    }
}

/// Uses the tool for `task` as the JS API's `useTool` does (the service's
/// local check, then the key is shown or the webhook called).
fn use_tool(action: Action, tool_id: String, task: OpId) {
    let ledger = ctx().ledger.get_value();
    action.run_async(async move {
        match webhook::use_tool(&ledger, &tool_id, task).await? {
            Used::Key(k) => Ok(format!("Key: {k}")),
            Used::Status(status) => Ok(format!("Webhook answered HTTP {status}.")),
        }
    });
}

#[component]
fn ProposeTool() -> impl IntoView {
    let c = ctx();
    let channel = RwSignal::new(String::new());
    let tool_id = RwSignal::new(String::new());
    let kind = RwSignal::new("api_key".to_string());
    let url = RwSignal::new(String::new());
    let cost = RwSignal::new(String::new());
    let secret = RwSignal::new(String::new());
    let propose = Action::new();
    let submit = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        let (ch, id, k, u, co, se) = (
            channel.get_untracked().trim().to_string(),
            tool_id.get_untracked().trim().to_string(),
            kind.get_untracked(),
            url.get_untracked(),
            cost.get_untracked(),
            secret.get_untracked(),
        );
        propose.run(move || {
            let spec = ToolSpec {
                tool_id: id,
                description: String::new(),
                tool_type: if k == "webhook" { ToolType::Webhook } else { ToolType::ApiKey },
                webhook_url: u,
                monthly_cost_sp: sp(&co, "the monthly cost")?,
                secret: se,
                recipients: None,
                title: None,
            };
            let now = js_sys::Date::now() as u64;
            let proposal = c.peek_state(|st| service::propose(st, &mut rand_core::OsRng, now, &ch, spec))?;
            let sealed_to = proposal.sealed_to;
            c.run(|_| Ok(proposal.intent))?;
            secret.set(String::new());
            Ok(format!(
                "Proposed; its key is split among {sealed_to} custodian(s), a majority of whom hand it to \
                 the assignee of each task that needs the tool. Vote on it under Governance."
            ))
        });
    };
    view! {
        <section class="card" aria-labelledby="h-propose-tool">
            <h2 id="h-propose-tool">"Propose a tool"</h2>
            <form id="tool-form" class="fields" on:submit=submit>
                <Field label="Channel" id="tool-channel" value=channel required=true list="my-channels" />
                <Field label="Tool id" id="tool-id" value=tool_id required=true />
                <label>"Type"
                    <select id="tool-type" on:change=move |ev| kind.set(event_target_value(&ev)) prop:value=move || kind.get()>
                        <option value="api_key">"API key"</option>
                        <option value="webhook">"webhook"</option>
                    </select>
                </label>
                {move || (kind.get() == "webhook").then(|| view! {
                    <Field label="Webhook URL" id="tool-url" value=url kind="url" />
                })}
                <Field label="Monthly cost (SP)" id="tool-cost" value=cost numeric=true />
                <Field label="Secret" id="tool-secret" value=secret kind="password" required=true />
                <Submit action=propose label="Propose tool" id="tool-propose" />
            </form>
            <Feedback action=propose id="tool-propose-feedback" />
        </section>
    }
}
