//! The Synapse-NG page: starts this tab's node and shows it.
//!
//! The UI only reads the node (snapshots refreshed on every change
//! notification) and calls its API; it holds no protocol state of its own.

use leptos::prelude::*;
use node_wasm::runtime::Node;
use node_wasm::runtime::ledger::Ledger;

fn main() {
    console_error_panic_hook::set_once();
    mount_to_body(App);
}

/// Node start-up as the page sees it.
#[derive(Clone)]
enum Boot {
    Starting,
    Failed(String),
    Running,
}

#[component]
fn App() -> impl IntoView {
    let node: RwSignal<Option<Node>, LocalStorage> = RwSignal::new_local(None);
    let ledger: RwSignal<Option<Ledger>, LocalStorage> = RwSignal::new_local(None);
    let boot: RwSignal<Boot, LocalStorage> = RwSignal::new_local(Boot::Starting);
    // Bumped whenever the node reports a change; views read it to refresh.
    let tick = RwSignal::new(0u64);

    wasm_bindgen_futures::spawn_local(async move {
        match node_wasm::runtime::start().await {
            Ok((n, l)) => {
                n.subscribe(std::rc::Rc::new(move || tick.update(|t| *t += 1)));
                node.set(Some(n));
                ledger.set(Some(l));
                boot.set(Boot::Running);
            }
            Err(e) => boot.set(Boot::Failed(e)),
        }
    });

    view! {
        <header>
            <h1>"Synapse-NG"</h1>
            <p class="tagline">"a browser node of a decentralized network"</p>
        </header>
        {move || match boot.get() {
            Boot::Starting => view! { <p class="notice" id="boot">"Starting node…"</p> }.into_any(),
            Boot::Failed(e) => view! { <p class="error" id="boot">"The node could not start: " {e}</p> }.into_any(),
            Boot::Running => view! { <NodeView node=node tick=tick /> <StateView ledger=ledger tick=tick /> }.into_any(),
        }}
    }
}

/// Reads the node inside a reactive view: subscribing to `tick` makes the
/// view re-run after every change the node reports.
fn read<T: Default>(node: RwSignal<Option<Node>, LocalStorage>, tick: RwSignal<u64>, f: impl Fn(&Node) -> T) -> T {
    tick.get();
    node.with(|n| n.as_ref().map(f)).unwrap_or_default()
}

#[component]
fn NodeView(node: RwSignal<Option<Node>, LocalStorage>, tick: RwSignal<u64>) -> impl IntoView {
    let id = move || read(node, tick, |n| n.id().to_text());
    let rdv = move || read(node, tick, Node::rendezvous_status);
    let peers = move || read(node, tick, Node::peer_infos);
    let hellos = move || read(node, tick, Node::hellos);
    let stats = move || read(node, tick, Node::stats);

    let text = RwSignal::new(String::new());
    let feedback = RwSignal::new(String::new());
    let send = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        let t = text.get();
        let r = node.with(|n| n.as_ref().map(|n| n.send_hello(&t)));
        match r {
            Some(Ok(count)) => {
                feedback.set(format!("Signed and sent to {count} peer(s)."));
                text.set(String::new());
            }
            Some(Err(e)) => feedback.set(format!("Not sent: {e}")),
            None => {}
        }
    };

    view! {
        <section class="card">
            <h2>"This node"</h2>
            <p>"Node id " <code id="node-id" class="id">{id}</code></p>
            <p>
                "Rendezvous "
                <span id="rendezvous-state" class=move || format!("badge {}", rdv().state)>{move || rdv().state}</span>
                " " <span class="muted">{move || rdv().url}</span>
                {move || rdv().last_error.map(|e| view! { <span class="muted">" (" {e} ")"</span> })}
            </p>
            <p class="muted">
                {move || {
                    let s = stats();
                    format!(
                        "{} connections made · {} channels opened · {} peers proven · {} proofs rejected · {} frames in / {} out",
                        s.connections_created, s.channels_opened, s.peers_proven, s.proofs_rejected, s.frames_in, s.frames_out
                    )
                }}
            </p>
        </section>
        <section class="card">
            <h2>"Peers " <span class="count">{move || peers().len()}</span></h2>
            {move || {
                let ps = peers();
                if ps.is_empty() {
                    view! { <p class="muted" id="no-peers">"No peers yet. Open this page in another browser profile (or with ?profile=other)."</p> }.into_any()
                } else {
                    view! {
                        <table id="peers">
                            <thead><tr><th>"Node"</th><th>"State"</th><th>"Connection"</th><th>"RTT"</th></tr></thead>
                            <tbody>
                                {ps.into_iter().map(|p| view! {
                                    <tr>
                                        <td><code class="id" title=p.id.to_text()>{p.id.short()}</code></td>
                                        <td><span class=format!("badge {:?}", p.state).to_lowercase()>{format!("{:?}", p.state).to_lowercase()}</span></td>
                                        <td>{p.connection}</td>
                                        <td>{p.rtt_ms.map(|r| format!("{r:.0} ms")).unwrap_or_else(|| "–".into())}</td>
                                    </tr>
                                }).collect_view()}
                            </tbody>
                        </table>
                    }.into_any()
                }
            }}
        </section>
        <section class="card">
            <h2>"Signed hellos"</h2>
            <form on:submit=send id="hello-form">
                <input id="hello-text" type="text" maxlength="1000" placeholder="Say hello to your peers"
                    prop:value=move || text.get()
                    on:input=move |ev| text.set(event_target_value(&ev)) />
                <button type="submit">"Sign & send"</button>
            </form>
            <p class="muted" id="hello-feedback">{move || feedback.get()}</p>
            <ul id="hellos">
                {move || hellos().into_iter().rev().map(|h| view! {
                    <li>
                        <span class="badge verified" title="signature verified">"✔ verified"</span>
                        " " <code class="id" title=h.from.to_text()>{h.from.short()}</code>
                        ": " <span class="hello-text">{h.text}</span>
                    </li>
                }).collect_view()}
            </ul>
        </section>
    }
}

#[component]
fn StateView(ledger: RwSignal<Option<Ledger>, LocalStorage>, tick: RwSignal<u64>) -> impl IntoView {
    let snap = move || {
        tick.get();
        ledger.with(|l| l.as_ref().map(|l| l.snapshot()))
    };
    view! {
        {move || snap().map(|s| {
            let st = s.state;
            let tasks: Vec<_> = st.tasks.values().map(|t| (t.title.clone(), t.status, t.reward, t.channel.clone())).collect();
            view! {
                <section class="card">
                    <h2>"Replicated state"</h2>
                    <p class="muted">
                        "state hash " <code id="state-hash">{s.state_hash[..16].to_string()}</code>
                        {format!(" · {} ops applied · {} rejected · {} accounts · {} channels · {} SP minted",
                            st.applied, st.rejected, st.accounts.len(), st.channels.len(), st.minted)}
                    </p>
                    <table id="tasks">
                        <thead><tr><th>"Task"</th><th>"Channel"</th><th>"Status"</th><th>"Reward"</th></tr></thead>
                        <tbody>
                            {tasks.into_iter().map(|(title, status, reward, channel)| view! {
                                <tr><td>{title}</td><td>{channel}</td><td>{format!("{status:?}").to_lowercase()}</td><td>{reward} " SP"</td></tr>
                            }).collect_view()}
                        </tbody>
                    </table>
                </section>
            }
        })}
    }
}
