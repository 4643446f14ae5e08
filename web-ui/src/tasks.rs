//! The Tasks view: a create form, the board (lanes by status, each a
//! virtualized list), and the selected task's details with its auction.

use crate::action::{Action, Feedback, Submit};
use crate::ctx::{Ctx, ctx};
use crate::field::Field;
use crate::fmt::{countdown, list, sorted, sp, who};
use crate::teams::TeamsSection;
use crate::virtual_list::VirtualList;
use leptos::prelude::*;
use node_wasm::core::op::{AuctionTerms, Funding, OpId};
use node_wasm::core::state::{AuctionStatus, Task, TaskStatus};
use node_wasm::service::tasks::{self as service, Step, TaskSpec};
use node_wasm::service::{Domain, channels};
use std::sync::Arc;

/// Board row height (px); the CSS gives `.task-row` the same.
const ROW_HEIGHT: f64 = 64.0;

/// The board's lanes.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Lane {
    All,
    Open,
    Auction,
    Claimed,
    InProgress,
    Completed,
}

impl Lane {
    const ALL: [Lane; 6] = [Lane::All, Lane::Open, Lane::Auction, Lane::Claimed, Lane::InProgress, Lane::Completed];

    fn label(self) -> &'static str {
        match self {
            Lane::All => "All",
            Lane::Open => "Open",
            Lane::Auction => "Auction",
            Lane::Claimed => "Claimed",
            Lane::InProgress => "In progress",
            Lane::Completed => "Completed",
        }
    }

    fn slug(self) -> &'static str {
        match self {
            Lane::All => "all",
            Lane::Open => "open",
            Lane::Auction => "auction",
            Lane::Claimed => "claimed",
            Lane::InProgress => "in_progress",
            Lane::Completed => "completed",
        }
    }

    fn holds(self, s: TaskStatus) -> bool {
        match self {
            Lane::All => s != TaskStatus::Deleted,
            Lane::Open => s == TaskStatus::Open,
            Lane::Auction => s == TaskStatus::AuctionOpen,
            Lane::Claimed => s == TaskStatus::Claimed,
            Lane::InProgress => s == TaskStatus::InProgress,
            Lane::Completed => s == TaskStatus::Completed,
        }
    }
}

/// Runs a task op from a row button; the failure shows in the row and in
/// the board's feedback line.
fn task_button(
    c: Ctx,
    board: Action,
    failed: RwSignal<Option<(OpId, String)>>,
    task: OpId,
    title: String,
    verb: &'static str,
) {
    let step = match verb {
        "Claim" => Step::Claim,
        "Start" => Step::Start,
        "Complete" => Step::Complete,
        "Delete" => Step::Delete,
        _ => Step::CloseAuction,
    };
    board.run(move || match c.run(|st| service::step(st, task, step)) {
        Ok(_) => {
            failed.set(None);
            Ok(format!("{verb}: done for “{title}”."))
        }
        Err(e) => {
            failed.set(Some((task, e.clone())));
            Err(format!("{verb} “{title}”: {e}"))
        }
    });
}

#[component]
pub fn TasksView() -> impl IntoView {
    let c = ctx();
    let selected: RwSignal<Option<OpId>> = RwSignal::new(None);
    // Every live task, newest first: one pass over the state per tasks change.
    let tasks = Memo::new(move |_| c.read(Domain::Tasks, service::live));
    let lane = RwSignal::new(Lane::All);
    let lane_tasks = Memo::new(move |_| {
        let l = lane.get();
        tasks.with(
            |v| if l == Lane::All { v.clone() } else { v.iter().filter(|t| l.holds(t.status)).cloned().collect() },
        )
    });
    let counts = Memo::new(move |_| tasks.with(|v| Lane::ALL.map(|l| v.iter().filter(|t| l.holds(t.status)).count())));
    let board = Action::new();
    let failed: RwSignal<Option<(OpId, String)>> = RwSignal::new(None);

    let render = move |t: Arc<Task>| {
        let id = t.id;
        let title = t.title.clone();
        let me = c.me;
        let mine = t.owner == me;
        let assigned = t.assignee == Some(me);
        let mut verbs: Vec<&'static str> = vec![];
        match t.status {
            TaskStatus::Open => verbs.push("Claim"),
            TaskStatus::Claimed if assigned => verbs.push("Start"),
            TaskStatus::InProgress if assigned => verbs.push("Complete"),
            _ => {}
        }
        if t.status == TaskStatus::AuctionOpen {
            verbs.push("Bid");
        }
        if mine && matches!(t.status, TaskStatus::Open | TaskStatus::Claimed | TaskStatus::AuctionOpen) {
            verbs.push("Delete");
        }
        let deadline =
            t.auction.as_ref().filter(|a| matches!(a.status, AuctionStatus::Open)).map(|a| a.terms.deadline_ms);
        let meta = format!(
            "{} · {} SP{}{}",
            t.channel,
            t.auction.as_ref().filter(|_| t.status == TaskStatus::AuctionOpen).map_or(t.reward, |a| a.terms.max_reward),
            if t.status == TaskStatus::AuctionOpen { " max" } else { "" },
            t.assignee.map(|a| format!(" · {}", who(&a, &me))).unwrap_or_default()
        );
        let status = t.status.name();
        view! {
            <div class="task-row" data-task=id.to_text() data-status=status>
                <span class=format!("badge st-{status}")>{status.replace('_', " ")}</span>
                <button type="button" class="link title" on:click=move |_| selected.set(Some(id))
                    aria-label=format!("Details of {}", t.title)>{t.title.clone()}</button>
                <span class="muted meta">{meta}
                    {deadline.map(|d| view! { <span class="countdown">" · " {move || countdown(d, c.now.get())}</span> })}
                </span>
                <span class="actions">
                    {verbs.into_iter().map(|verb| {
                        let title = title.clone();
                        let cls = verb.to_lowercase();
                        let click = move |_| {
                            if verb == "Bid" {
                                selected.set(Some(id));
                            } else {
                                task_button(c, board, failed, id, title.clone(), verb);
                            }
                        };
                        view! {
                            <button type="button" class=format!("small {cls}") disabled=move || board.pending()
                                aria-label=format!("{verb} {}", t.title) on:click=click>{verb}</button>
                        }
                    }).collect_view()}
                </span>
                {move || failed.get().filter(|(f, _)| *f == id).map(|(_, e)| view! { <span class="error row-error" role="alert" title=e.clone()>{e.clone()}</span> })}
            </div>
        }
    };

    view! {
        <section class="card" aria-labelledby="h-board">
            <h2 id="h-board">"Board"</h2>
            <div class="lanes" role="group" aria-label="Show tasks by status">
                {Lane::ALL.into_iter().enumerate().map(|(i, l)| view! {
                    <button type="button" id=format!("lane-{}", l.slug())
                        aria-pressed=move || (lane.get() == l).to_string()
                        class=move || if lane.get() == l { "lane active" } else { "lane" }
                        on:click=move |_| lane.set(l)>
                        {l.label()} " " <span class="count">{move || counts.get()[i]}</span>
                    </button>
                }).collect_view()}
            </div>
            <Feedback action=board id="board-feedback" />
            <VirtualList items=lane_tasks row_height=ROW_HEIGHT height_px=448.0 render=render id="task-list"
                empty="No tasks here yet." />
        </section>
        {move || selected.get().map(|id| view! { <TaskDetail id=id close=move || selected.set(None) /> })}
        <CreateTask />
        <TeamsSection />
    }
}

#[component]
fn CreateTask() -> impl IntoView {
    let c = ctx();
    let channel = RwSignal::new(String::new());
    let title = RwSignal::new(String::new());
    let reward = RwSignal::new(String::new());
    let tags = RwSignal::new(String::new());
    let tools = RwSignal::new(String::new());
    let description = RwSignal::new(String::new());
    let treasury = RwSignal::new(false);
    let auction = RwSignal::new(false);
    let max_reward = RwSignal::new(String::new());
    let seconds = RwSignal::new("60".to_string());
    let create = Action::new();
    let channels = Memo::new(move |_| c.read(Domain::Channels, |st| channels::joined(st, &c.me)));
    let submit = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        let ch = channel.get_untracked().trim().to_string();
        let (ti, rw, tg, tl, de) = (
            title.get_untracked(),
            reward.get_untracked(),
            tags.get_untracked(),
            tools.get_untracked(),
            description.get_untracked(),
        );
        let (tr, au, mx, secs) =
            (treasury.get_untracked(), auction.get_untracked(), max_reward.get_untracked(), seconds.get_untracked());
        create.run(move || {
            let auction = if au {
                let max_reward = sp(&mx, "the maximum reward")?;
                let s: u64 = secs
                    .trim()
                    .parse()
                    .map_err(|_| "the auction length must be a whole number of seconds".to_string())?;
                Some(AuctionTerms { max_reward, deadline_ms: js_sys::Date::now() as u64 + s * 1000 })
            } else {
                None
            };
            let spec = TaskSpec {
                title: ti.trim().to_string(),
                description: de,
                reward: if au { 0 } else { sp(&rw, "the reward")? },
                tags: list(&tg),
                required_tools: list(&tl),
                funding: if tr { Funding::Treasury } else { Funding::Creator },
                auction,
            };
            let id = c.run(|_| service::create(&ch, spec))?;
            title.set(String::new());
            Ok(format!("Task created ({}); its reward is in escrow.", id.short()))
        });
    };
    view! {
        <section class="card" aria-labelledby="h-new-task">
            <h2 id="h-new-task">"New task"</h2>
            <form id="task-form" class="fields" on:submit=submit>
                <Field label="Channel" id="task-channel" value=channel required=true list="my-channels" />
                <datalist id="my-channels">{move || channels.get().into_iter().map(|n| view! { <option value=n /> }).collect_view()}</datalist>
                <Field label="Title" id="task-title" value=title required=true />
                <Field label="Reward (SP)" id="task-reward" value=reward numeric=true />
                <Field label="Tags" id="task-tags" value=tags placeholder="comma, separated" />
                <Field label="Required tools" id="task-tools" value=tools placeholder="tool ids" />
                <Field label="Description" id="task-description" value=description wide=true />
                <label class="check"><input id="task-treasury" type="checkbox"
                    prop:checked=move || treasury.get() on:change=move |ev| treasury.set(event_target_checked(&ev)) />
                    "Paid by the channel treasury"</label>
                <label class="check"><input id="task-auction" type="checkbox"
                    prop:checked=move || auction.get() on:change=move |ev| auction.set(event_target_checked(&ev)) />
                    "Auction"</label>
                {move || auction.get().then(|| view! {
                    <Field label="Max reward (SP)" id="task-max-reward" value=max_reward numeric=true />
                    <Field label="Bidding time (s)" id="task-deadline" value=seconds numeric=true />
                })}
                <Submit action=create label="Create task" id="task-create" />
            </form>
            <Feedback action=create id="task-feedback" />
        </section>
    }
}

/// The selected task: everything about it, its auction and a bid form.
#[component]
fn TaskDetail(id: OpId, close: impl Fn() + Clone + Send + Sync + 'static) -> impl IntoView {
    let c = ctx();
    let task = Memo::new(move |_| c.read(Domain::Tasks, |st| st.tasks.get(&id).cloned()));
    let amount = RwSignal::new(String::new());
    let days = RwSignal::new("1".to_string());
    let bid = Action::new();
    let close_auction = Action::new();
    let submit = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        let (a, d) = (amount.get_untracked(), days.get_untracked());
        bid.run(move || {
            let amount = sp(&a, "the bid")?;
            let estimated_days: u32 = d.trim().parse().map_err(|_| "days must be a whole number".to_string())?;
            c.run(|st| service::bid(st, id, amount, estimated_days))?;
            Ok(format!("Bid of {amount} SP placed."))
        });
    };
    view! {
        <section class="card detail" id="task-detail" aria-labelledby="h-task-detail">
            {move || match task.get() {
                None => view! { <p class="muted">"This task is not known here (yet)."</p> }.into_any(),
                Some(t) => {
                    let me = c.me;
                    let auction = t.auction.clone();
                    view! {
                        <h2 id="h-task-detail">{t.title.clone()}</h2>
                        <p class="muted">{format!("{} · {} · owner {} · {} SP in escrow · funded by {}",
                            t.channel, t.status.name().replace('_', " "), who(&t.owner, &me), t.escrow,
                            if t.funding == Funding::Treasury { "the treasury" } else { "its creator" })}</p>
                        {(!t.description.is_empty()).then(|| view! { <p>{t.description.clone()}</p> })}
                        <p>
                            {t.tags.iter().map(|g| view! { <span class="badge tag">{g.clone()}</span> " " }).collect_view()}
                            {t.required_tools.iter().map(|g| view! { <span class="badge tool">"tool: " {g.clone()}</span> " " }).collect_view()}
                        </p>
                        {t.assignee.map(|a| view! { <p>"Assignee " <code>{who(&a, &me)}</code></p> })}
                        {auction.map(|a| {
                            let deadline = a.terms.deadline_ms;
                            let status = match a.status {
                                AuctionStatus::Open => "open".to_string(),
                                AuctionStatus::Awarded { winner, amount } => format!("awarded to {} for {amount} SP", who(&winner, &me)),
                                AuctionStatus::Reopened => "closed without bids (reopened as a normal task)".to_string(),
                            };
                            let open = matches!(a.status, AuctionStatus::Open);
                            let bids: Vec<_> = a.bids.iter().map(|(n, b)| (*n, *b)).collect();
                            let bids = sorted(bids, |(n, b)| (b.amount, u64::from(b.estimated_days), n.0));
                            view! {
                                <h3>"Auction"</h3>
                                <p>{format!("max {} SP · {status} · ", a.terms.max_reward)}
                                    <span id="auction-countdown" class="countdown">{move || countdown(deadline, c.now.get())}</span></p>
                                <table id="bids">
                                    <thead><tr><th scope="col">"Bidder"</th><th scope="col">"Amount"</th><th scope="col">"Days"</th></tr></thead>
                                    <tbody>{bids.into_iter().map(|(n, b)| view! {
                                        <tr><td><code>{who(&n, &me)}</code></td><td class="num">{b.amount} " SP"</td><td class="num">{b.estimated_days}</td></tr>
                                    }).collect_view()}</tbody>
                                </table>
                                {open.then(|| view! {
                                    <form id="bid-form" class="fields" on:submit=submit>
                                        <Field label="Your bid (SP)" id="bid-amount" value=amount numeric=true required=true />
                                        <Field label="Estimated days" id="bid-days" value=days numeric=true />
                                        <Submit action=bid label="Bid" id="bid-submit" />
                                        <button type="button" class="secondary" id="auction-close" disabled=move || close_auction.pending()
                                            on:click=move |_| close_auction.run(move || {
                                                c.run(|st| service::step(st, id, Step::CloseAuction))?;
                                                Ok("Auction closed.".into())
                                            })>"Close auction"</button>
                                    </form>
                                })}
                                <Feedback action=bid id="bid-feedback" />
                                <Feedback action=close_auction />
                            }
                        })}
                    }.into_any()
                }
            }}
            <button type="button" class="secondary" on:click={
                let close = close.clone();
                move |_| close()
            }>"Close details"</button>
        </section>
    }
}
