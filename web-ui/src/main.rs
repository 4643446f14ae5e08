//! The Synapse-NG page: starts this tab's node and shows it, one view per
//! hash route (see docs/UI.md).
//!
//! The UI holds no protocol state and no protocol logic of its own: views
//! read the node and the replicated state through memos (re-run when their
//! domain changed, see `ctx.rs`) and act through `node_wasm::service`'s
//! commands — the ones the JS API runs — whose refusal sentences are shown
//! next to the action that caused them.

mod action;
mod admission;
mod agent;
mod channels;
mod ctx;
mod economy;
mod field;
mod finality;
mod fmt;
mod governance;
mod graph;
mod health;
mod identity;
mod network;
mod route;
mod tasks;
mod teams;
mod tools;
mod upgrades;
mod virtual_list;

use ctx::Ctx;
use leptos::prelude::*;
use node_wasm::runtime::util::{Stage, mark};
use node_wasm::service::Domain;
use route::{Route, use_route};

fn main() {
    console_error_panic_hook::set_once();
    mount_to_body(App);
}

/// Node start-up as the page sees it.
#[derive(Clone)]
enum Boot {
    Starting,
    Failed(String),
    Running(Ctx),
}

#[component]
fn App() -> impl IntoView {
    let boot: RwSignal<Boot, LocalStorage> = RwSignal::new_local(Boot::Starting);
    wasm_bindgen_futures::spawn_local(async move {
        match node_wasm::runtime::start().await {
            Ok((n, l)) => boot.set(Boot::Running(Ctx::new(n, l))),
            Err(e) => boot.set(Boot::Failed(e)),
        }
    });
    view! {
        <a class="skip" href="#main">"Skip to content"</a>
        <header>
            <h1>"Synapse-NG"</h1>
            <p class="tagline">"a browser node of a decentralized network"</p>
        </header>
        {move || match boot.get() {
            Boot::Starting => view! {
                <p class="notice" id="boot" role="status"><span class="spinner" aria-hidden="true"></span>
                    "Starting node… loading this profile's identity and its stored ops, then verifying them."</p>
            }.into_any(),
            Boot::Failed(e) => view! { <p class="error" id="boot" role="alert">"The node could not start: " {e}</p> }.into_any(),
            Boot::Running(c) => {
                provide_context(c);
                view! { <Shell /> }.into_any()
            }
        }}
    }
}

/// Navigation and the active view. Only the active view is mounted, so the
/// others cost nothing while hidden.
#[component]
fn Shell() -> impl IntoView {
    let c = ctx::ctx();
    let route = use_route();
    let loaded = c.ledger.with_value(|l| l.stats().ops_loaded);
    let summary = Memo::new(move |_| {
        let peers = c.with_node(|n| n.peers().len());
        // Ops applied changes with every op, whatever its domain.
        c.track_any();
        let (ops, tasks) = c.peek_state(|st| (st.applied, st.tasks.len()));
        (peers, ops, tasks)
    });
    // Milestones for the page-load benchmark (docs/BENCHMARKS.md, "UI"):
    // the app is interactive now; it shows a connected peer later.
    mark(Stage::UiReady);
    Effect::new(move |done: Option<bool>| {
        let connected = summary.get().0 > 0;
        if connected && done != Some(true) {
            mark(Stage::UiConnected);
        }
        connected || done == Some(true)
    });
    // A new view starts at its top, like a new page would.
    Effect::new(move |prev: Option<Route>| {
        let r = route.get();
        if prev.is_some_and(|p| p != r)
            && let Some(w) = web_sys::window()
        {
            w.scroll_to_with_x_and_y(0.0, 0.0);
        }
        r
    });
    view! {
        <p class="muted" id="boot" data-state="running">
            {format!("Node {} running · {loaded} stored ops loaded", c.me.short())}
            {move || { let (p, o, t) = summary.get(); format!(" · {p} peer(s) · {o} ops applied · {t} tasks") }}
        </p>
        <admission::AdmissionBar />
        {move || {
            c.track(Domain::Network);
            c.ledger.with_value(|l| l.storage_error()).map(|e| view! {
                <p class="error banner" id="storage-error" role="alert">{e}</p>
            })
        }}
        {move || {
            c.track(Domain::Network);
            c.ledger.with_value(|l| l.chain_status().sentence).map(|e| view! {
                <p class="error banner" id="chain-status" role="status">{e}</p>
            })
        }}
        <nav aria-label="Views">
            <ul>
                {Route::ALL.into_iter().map(|r| view! {
                    <li><a href=format!("#{}", r.slug()) id=format!("nav-{}", r.slug())
                        aria-current=move || (route.get() == r).then_some("page")>{r.label()}</a></li>
                }).collect_view()}
            </ul>
        </nav>
        <main id="main" tabindex="-1" data-view=move || route.get().slug()>
            {move || match route.get() {
                Route::Network => view! { <network::NetworkView /> }.into_any(),
                Route::Channels => view! { <channels::ChannelsView /> }.into_any(),
                Route::Tasks => view! { <tasks::TasksView /> }.into_any(),
                Route::Governance => view! { <governance::GovernanceView /> }.into_any(),
                Route::Economy => view! { <economy::EconomyView /> }.into_any(),
                Route::Tools => view! { <tools::ToolsView /> }.into_any(),
                Route::Upgrades => view! { <upgrades::UpgradesView /> }.into_any(),
                Route::Agent => view! { <agent::AgentView /> }.into_any(),
            }}
        </main>
    }
}
