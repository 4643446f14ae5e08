//! The Common tools view: the channel tools with their status and upkeep,
//! proposing a new tool (its secret sealed here, per member), and using a
//! tool for a task this node works on.

use crate::action::{Action, Feedback, Submit};
use crate::ctx::ctx;
use crate::field::Field;
use crate::fmt::{clock, sp};
use leptos::prelude::*;
use node_wasm::core::op::{Command, NewProposal, NewTool, OpBody, OpId, ProposalKind, ToolType};
use node_wasm::core::state::TaskStatus;
use node_wasm::core::tools::{open_tool_secret, seal_tool_secret, sealable_recipients};
use wasm_bindgen::{JsCast, JsValue};

#[derive(Clone, PartialEq)]
struct ToolRow {
    id: String,
    channel: String,
    kind: &'static str,
    status: &'static str,
    cost: u64,
    paid_until: u64,
    description: String,
    /// In-progress tasks assigned to this node that list the tool.
    my_tasks: Vec<(OpId, String)>,
}

/// POSTs `body` to `url` with the credential as a bearer token.
async fn call_webhook(url: String, secret: String, body: String) -> Result<u16, String> {
    let err = |e: JsValue| e.as_string().unwrap_or_else(|| format!("{e:?}"));
    let init = web_sys::RequestInit::new();
    init.set_method("POST");
    init.set_body(&JsValue::from_str(&body));
    let headers = web_sys::Headers::new().map_err(err)?;
    headers.set("Authorization", &format!("Bearer {secret}")).map_err(err)?;
    headers.set("Content-Type", "application/json").map_err(err)?;
    init.set_headers(&headers);
    let req = web_sys::Request::new_with_str_and_init(&url, &init).map_err(err)?;
    let window = web_sys::window().ok_or("no window")?;
    let resp = wasm_bindgen_futures::JsFuture::from(window.fetch_with_request(&req))
        .await
        .map_err(|e| format!("the webhook call failed: {}", err(e)))?;
    let resp: web_sys::Response = resp.dyn_into().map_err(|_| "not a response".to_string())?;
    Ok(resp.status())
}

#[component]
pub fn ToolsView() -> impl IntoView {
    let c = ctx();
    let tools = Memo::new(move |_| {
        c.with_state(|st| {
            st.tools
                .tools
                .values()
                .map(|t| ToolRow {
                    id: t.tool_id.clone(),
                    channel: t.channel.clone(),
                    kind: if t.tool_type == ToolType::Webhook { "webhook" } else { "api_key" },
                    status: t.status.name(),
                    cost: t.monthly_cost_sp,
                    paid_until: t.paid_until_ms,
                    description: t.description.clone(),
                    my_tasks: st
                        .tasks
                        .values()
                        .filter(|k| {
                            k.assignee == Some(c.me)
                                && k.status == TaskStatus::InProgress
                                && k.required_tools.contains(&t.tool_id)
                        })
                        .map(|k| (k.id, k.title.clone()))
                        .collect(),
                })
                .collect::<Vec<_>>()
        })
    });
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
                        let tool_id = t.id.clone();
                        view! {
                            <tr data-tool=t.id.clone()>
                                <td><strong>{t.id.clone()}</strong> <span class="muted">" " {t.description.clone()}</span></td>
                                <td>{t.channel.clone()}</td>
                                <td>{t.kind}</td>
                                <td><span class=format!("badge st-{}", t.status)>{t.status.replace('_', " ")}</span></td>
                                <td class="num">{format!("{} SP/month · paid until {}", t.cost, clock(t.paid_until))}</td>
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

/// Opens the tool's secret for `task` (local three-layer check) and uses
/// it: an API key is shown, a webhook is called.
fn use_tool(action: Action, tool_id: String, task: OpId) {
    let c = ctx();
    let opened = c.peek_state(|st| {
        let secret =
            c.node.with_value(|n| open_tool_secret(st, n.identity(), &tool_id, task)).map_err(|e| e.to_string())?;
        let meta = st.tools.tools.get(&tool_id).map(|t| (t.tool_type, t.webhook_url.clone())).ok_or("tool vanished")?;
        Ok::<_, String>((secret, meta))
    });
    match opened {
        Err(e) => action.fail(e),
        Ok((secret, (ToolType::ApiKey, _))) => action.run(move || Ok(format!("Key: {secret}"))),
        Ok((secret, (ToolType::Webhook, url))) => {
            let body = serde_json::json!({"tool": tool_id, "task": task.to_text(), "node": c.me.to_text()}).to_string();
            action.run_async(async move {
                let status = call_webhook(url, secret, body).await?;
                Ok(format!("Webhook answered HTTP {status}."))
            });
        }
    }
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
            let recipients = c.peek_state(|st| sealable_recipients(st, &ch));
            if recipients.is_empty() {
                return Err(format!("nobody in {ch} has published a key to seal the secret to"));
            }
            let mut rng = rand_core::OsRng;
            let sealed =
                seal_tool_secret(&mut rng, &id, se.as_bytes(), &recipients).ok_or("could not seal the secret")?;
            let tool = NewTool {
                channel: ch.clone(),
                tool_id: id.clone(),
                description: String::new(),
                tool_type: if k == "webhook" { ToolType::Webhook } else { ToolType::ApiKey },
                webhook_url: u,
                monthly_cost_sp: sp(&co, "the monthly cost")?,
                secret: sealed,
            };
            let p = NewProposal {
                kind: ProposalKind::NetworkOperation,
                title: format!("Acquire common tool {id}"),
                description: String::new(),
                tags: vec![],
                command: Some(Command::AcquireCommonTool(tool)),
            };
            c.act(&ch, OpBody::ProposalCreate(p))?;
            secret.set(String::new());
            Ok(format!("Proposed; sealed to {} member(s). Vote on it under Governance.", recipients.len()))
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
