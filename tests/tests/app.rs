//! The app UI end to end: three real browser nodes over real WebRTC, driven
//! through the page (typing into its forms, clicking its buttons), with
//! every scenario checked both in each node's replicated state
//! (`window.synapse.state()`) and in what each page shows.
//!
//! 1. A 30 SP task created, claimed, started and completed from the board:
//!    970 / 1029 / treasury 1 everywhere; then a screenshot of each view,
//!    and one at phone width, each checked not blank.
//! 2. An auction created from the form, two bids from the detail panel, a
//!    live countdown, and the award published by a deadline keeper.
//! 3. A config_change proposal created, voted and closed from the
//!    governance view; then a page reload that keeps its id and catches up.
//! 4. A policy module activated by a ratified code upgrade, shown by every
//!    page's Upgrades view.

use e2e::{Browser, NodePage, Rendezvous, pixel_stats, screenshot_dir, serial, wait_until};
use serde_json::{Value, json};
use std::time::Duration;

const TIMEOUT: Duration = Duration::from_secs(45);

/// Evaluates `expr` on every node until `ok` holds for all, with the same
/// state hash everywhere.
async fn wait_all(nodes: &[&NodePage], what: &str, expr: &str, args: Vec<Value>, ok: impl Fn(&Value) -> bool) {
    let script = format!("return [({expr}), window.synapse.stateHash()];");
    wait_until(TIMEOUT, what, async || {
        let mut seen = vec![];
        for n in nodes {
            seen.push(n.call::<Value>(&script, args.clone()).await);
        }
        if seen.iter().all(|v| ok(&v[0]) && v[1] == seen[0][1]) { Ok(()) } else { Err(seen) }
    })
    .await;
}

/// Creates channel `name` from the Channels view of `owner`, and has each
/// of `joiners` join it from theirs.
async fn channel_via_ui(owner: &NodePage, joiners: &[&NodePage], name: &str) {
    owner.show("channels").await;
    owner.type_into("#channel-name", name).await;
    owner.type_into("#channel-description", "made from the UI").await;
    owner.click_on("#channel-create").await;
    owner.wait_text("#channel-feedback", |t| t.contains("created")).await;
    for n in joiners {
        n.show("channels").await;
        n.click_on(&format!("tr[data-channel='{name}'] button.join")).await;
        n.wait_text(&format!("tr[data-channel='{name}'] button"), |t| t == "Leave").await;
    }
}

/// The id of the task titled `title` once `node` knows it.
async fn task_id(node: &NodePage, title: &str) -> String {
    wait_until(TIMEOUT, "the task to be known", async || {
        let id: Option<String> = node
            .call(
                "const t = Object.values(window.synapse.state().state.tasks).find(t => t.title === arguments[0]); \
                 return t ? t.id : null;",
                vec![json!(title)],
            )
            .await;
        id.ok_or(())
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn task_lifecycle_from_the_board_with_escrow_and_tax_then_screenshots() {
    let _serial = serial().await;
    let rdv = Rendezvous::start();
    let browser = Browser::start().await;
    let (a, b, c) = e2e::mesh_of_three(&browser, &rdv, "ui-t").await;
    let nodes = [&a, &b, &c];
    let (ia, ib) = (a.id().await, b.id().await);
    channel_via_ui(&a, &[&b], "dev").await;

    // A refused op says why, next to the form.
    a.show("tasks").await;
    a.type_into("#task-channel", "dev").await;
    a.type_into("#task-title", "Too expensive").await;
    a.type_into("#task-reward", "5000").await;
    a.click_on("#task-create").await;
    let refusal = a.wait_text("#task-feedback", |t| t.starts_with("Refused")).await;
    assert!(refusal.len() > "Refused: ".len() + 5, "a sentence, not a code: {refusal:?}");

    a.type_into("#task-title", "Write docs").await;
    a.type_into("#task-reward", "30").await;
    a.type_into("#task-tags", "docs").await;
    a.click_on("#task-create").await;
    a.wait_text("#task-feedback", |t| t.contains("created")).await;
    let task = task_id(&a, "Write docs").await;
    let row = format!("[data-task='{task}']");

    b.show("tasks").await;
    for step in ["claim", "start", "complete"] {
        b.click_on(&format!("{row} button.{step}")).await;
        b.wait_text("#board-feedback", |t| t.to_lowercase().starts_with(step)).await;
    }
    wait_all(
        &nodes,
        "970 / 1029 / treasury 1 and completed everywhere",
        "(() => { const s = window.synapse.state().state; const [a, b, t] = arguments; \
          return [s.accounts[a].balance, s.accounts[b].balance, s.channels.dev.treasury, s.tasks[t].status]; })()",
        vec![json!(ia), json!(ib), json!(task)],
        |v| v == &json!([970, 1029, 1, "completed"]),
    )
    .await;
    // Every page shows it: the row's status on the board, the balances and
    // the treasury in the economy view.
    for n in nodes {
        n.show("tasks").await;
        n.click_on("#lane-completed").await;
        n.wait_text(&format!("#task-list {row} .badge"), |t| t == "completed").await;
        n.show("economy").await;
        n.wait_text(&format!("#balances tr[data-node='{ia}'] .balance"), |t| t == "970 SP").await;
        n.wait_text(&format!("#balances tr[data-node='{ib}'] .balance"), |t| t == "1029 SP").await;
        n.wait_text("#treasuries tr[data-channel='dev'] .treasury", |t| t == "1 SP").await;
    }

    // A screenshot of each view, then the board at phone width.
    let dir = screenshot_dir();
    a.set_window_size(1280, 1000).await;
    for view in ["network", "channels", "tasks", "governance", "economy", "tools", "upgrades", "agent"] {
        a.show(view).await;
        let _: bool = a
            .call("return new Promise(r => requestAnimationFrame(() => requestAnimationFrame(() => r(true))));", vec![])
            .await;
        let png = a.screenshot().await;
        std::fs::write(dir.join(format!("{view}.png")), &png).expect("write the screenshot");
        let s = pixel_stats(&png);
        assert!(s.colours > 8 && s.foreground > 0.02, "{view} looks blank: {s:?}");
    }
    a.set_window_size(390, 844).await;
    a.show("tasks").await;
    let _: bool = a
        .call("return new Promise(r => requestAnimationFrame(() => requestAnimationFrame(() => r(true))));", vec![])
        .await;
    let png = a.screenshot().await;
    std::fs::write(dir.join("tasks-390.png"), &png).expect("write the screenshot");
    let s = pixel_stats(&png);
    assert!(s.colours > 8 && s.foreground > 0.02 && s.width <= 420, "narrow tasks view: {s:?}");
    let overflow: Vec<f64> = a.eval("[document.documentElement.scrollWidth, window.innerWidth]").await;
    assert!(overflow[0] <= overflow[1] + 1.0, "no sideways scrolling at phone width: {overflow:?}");

    for n in [a, b, c] {
        n.close().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_auction_from_the_form_gets_two_bids_and_is_awarded_after_its_deadline() {
    let _serial = serial().await;
    let rdv = Rendezvous::start();
    let browser = Browser::start().await;
    let (a, b, c) = e2e::mesh_of_three(&browser, &rdv, "ui-a").await;
    let nodes = [&a, &b, &c];
    channel_via_ui(&a, &[], "market").await;
    a.show("tasks").await;
    a.type_into("#task-channel", "market").await;
    a.type_into("#task-title", "Design a logo").await;
    a.click_on("#task-auction").await;
    a.type_into("#task-max-reward", "50").await;
    a.type_into("#task-deadline", "20").await;
    a.click_on("#task-create").await;
    a.wait_text("#task-feedback", |t| t.contains("created")).await;
    let task = task_id(&a, "Design a logo").await;
    let row = format!("[data-task='{task}']");

    for (n, amount, days) in [(&b, "40", "2"), (&c, "30", "3")] {
        n.show("tasks").await;
        n.click_on(&format!("{row} button.bid")).await;
        n.wait_text("#auction-countdown", |t| t.ends_with("s left")).await;
        n.type_into("#bid-amount", amount).await;
        n.type_into("#bid-days", days).await;
        n.click_on("#bid-submit").await;
        n.wait_text("#bid-feedback", |t| t.contains("placed")).await;
    }
    // The owner's detail panel lists both bids while the countdown runs.
    a.click_on(&format!("{row} button.title")).await;
    wait_until(TIMEOUT, "a to list two bids", async || {
        let n: usize = a.eval("document.querySelectorAll('#bids tbody tr').length").await;
        if n == 2 { Ok(()) } else { Err(n) }
    })
    .await;

    // Nobody closes it by hand: a node's deadline keeper publishes the close.
    let (ia, ib, ic) = (a.id().await, b.id().await, c.id().await);
    wait_all(
        &nodes,
        "the same award everywhere",
        "(() => { const s = window.synapse.state().state; const t = s.tasks[arguments[0]]; \
          return [t.status, t.assignee, t.reward, s.accounts[arguments[1]].balance]; })()",
        vec![json!(task), json!(ia)],
        |v| v == &json!(["claimed", ib, 40, 960]) || v == &json!(["claimed", ic, 30, 970]),
    )
    .await;
    for n in nodes {
        n.show("tasks").await;
        n.wait_text(&format!("{row} .badge"), |t| t == "claimed").await;
    }
    a.click_on(&format!("{row} button.title")).await;
    a.wait_text("#task-detail", |t| t.contains("awarded to")).await;
    for n in [a, b, c] {
        n.close().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_config_change_passes_from_the_governance_view_and_a_reloaded_page_catches_up() {
    let _serial = serial().await;
    let rdv = Rendezvous::start();
    let browser = Browser::start().await;
    let (a, b, c) = e2e::mesh_of_three(&browser, &rdv, "ui-g").await;
    let nodes = [&a, &b, &c];

    a.show("governance").await;
    a.choose("#proposal-kind", "config_change").await;
    a.type_into("#proposal-title", "Raise the tax to 3%").await;
    a.choose("#proposal-key", "tax_bps").await;
    a.type_into("#proposal-value", "300").await;
    a.click_on("#proposal-create").await;
    a.wait_text("#proposal-feedback", |t| t.contains("created")).await;
    let p: String = wait_until(TIMEOUT, "the proposal id", async || {
        let id: Option<String> = a.eval("Object.keys(window.synapse.state().state.gov.proposals)[0] || null").await;
        id.ok_or(())
    })
    .await;
    let card = format!("[data-proposal='{p}']");
    // No votes yet: a neutral bar, not a fully red one.
    a.wait_text(&format!("{card} .tally[aria-label='no votes yet'] .bar.empty"), |_| true).await;
    for n in nodes {
        n.show("governance").await;
        n.click_on(&format!("{card} button.vote-yes")).await;
        n.wait_text("#gov-feedback", |t| t.contains("Voted yes")).await;
    }
    wait_all(
        &nodes,
        "three votes everywhere",
        "Object.keys(window.synapse.state().state.gov.proposals[arguments[0]].votes).length",
        vec![json!(p)],
        |v| v == &json!(3),
    )
    .await;
    for n in nodes {
        n.wait_text(&format!("{card} summary"), |t| t == "3 voter(s)").await;
        n.wait_text(&format!("{card} .tally-text"), |t| t.contains("approved") && t.contains("no 0.00")).await;
        n.wait_text(&format!("{card} .bar:not(.empty)"), |_| true).await;
    }
    a.click_on(&format!("{card} button.close")).await;
    // Rule `ratify_every_change`: two of the three validators ratify it.
    for n in &nodes[1..] {
        n.wait_text(&format!("{card} .ratification"), |t| t.contains("0 / 2") || t.contains("1 / 2")).await;
        n.click_on(&format!("{card} button.ratify")).await;
        n.wait_text("#gov-feedback", |t| t.contains("Ratified")).await;
    }
    wait_all(
        &nodes,
        "tax_bps = 300 everywhere",
        "[window.synapse.state().state.params.tax_bps, window.synapse.state().state.gov.execution_log.length]",
        vec![],
        |v| v == &json!([300, 1]),
    )
    .await;
    for n in nodes {
        n.wait_text("#config dd[data-key='tax_bps']", |t| t == "300").await;
        n.wait_text("#execution-log tbody", |t| t.contains("config_change")).await;
    }

    // c goes away; a creates a task meanwhile; c comes back as the same node.
    let idc = c.id().await;
    let url = rdv.page_url("profile=ui-g3");
    c.goto("about:blank").await;
    let _: String = a.eval("window.synapse.createChannel('later', 'while c was away')").await;
    let _: String = a.eval("window.synapse.createTask('later', {title: 'made while c was away', reward: 5})").await;
    wait_all(
        &[&a, &b],
        "a and b to hold the new task",
        "Object.keys(window.synapse.state().state.tasks).length",
        vec![],
        |v| v == &json!(1),
    )
    .await;
    c.goto(&url).await;
    c.wait_ready(TIMEOUT).await;
    assert_eq!(c.id().await, idc, "a reloaded page is the same node");
    c.wait_text("#boot", |t| t.contains("stored ops loaded") && !t.contains(" 0 stored ops")).await;
    wait_all(
        &nodes,
        "c to catch up",
        "window.synapse.state().state.params.tax_bps + '/' + Object.keys(window.synapse.state().state.tasks).length",
        vec![],
        |v| v == &json!("300/1"),
    )
    .await;
    c.show("tasks").await;
    c.wait_text("#task-list", |t| t.contains("made while c was away")).await;
    c.show("governance").await;
    c.wait_text("#config dd[data-key='tax_bps']", |t| t == "300").await;
    for n in [a, b, c] {
        n.close().await;
    }
}

/// The Upgrades view on the self-upgrade path: on one page the quadratic
/// vote-weight module is chosen, dry-run against the live state (the page
/// shows the weights it would give) and published as pieces from the view;
/// it is then proposed, voted and ratified through the JS API; every page's
/// Upgrades view shows the active policy, the proposal and the upgrade.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_upgrades_view_shows_an_activated_policy() {
    let _serial = serial().await;
    let rdv = Rendezvous::start();
    let browser = Browser::start().await;
    let (a, b, c) = e2e::mesh_of_three(&browser, &rdv, "ui-u").await;
    let nodes = [&a, &b, &c];
    for n in nodes {
        n.show("upgrades").await;
        n.wait_text("#policies-none", |t| t.contains("built-in")).await;
    }
    // The workbench: choose the example, dry run, publish.
    a.choose("#module-example", "quadratic_vote").await;
    a.wait_text("#module-loaded", |t| t.contains("quadratic_vote")).await;
    a.click_on("#dry-run").await;
    a.wait_text("#dry-run-feedback", |t| t.contains("change(s) against the current state")).await;
    let samples = a.wait_text("#dry-run-samples", |t| t.contains("4 reputation points")).await;
    assert!(samples.contains("3.00"), "1 + √4 = 3.00 with the module: {samples}");
    a.choose("#module-policy", "tax").await;
    a.click_on("#dry-run").await;
    a.wait_text("#dry-run-feedback", |t| t.contains("module_missing_export")).await;
    a.choose("#module-policy", "vote_weight").await;
    a.click_on("#publish-module").await;
    a.wait_text("#publish-feedback", |t| t.contains("Published module")).await;
    let module: String = a.eval("Object.keys(window.synapse.state().state.upgrades.modules)[0] || ''").await;
    assert_eq!(module.len(), 64, "the module is assembled on the publishing node");
    let present = format!("'{module}' in window.synapse.state().state.upgrades.modules");
    wait_all(&nodes, "the module everywhere", &present, vec![], |v| v == &json!(true)).await;
    let p: String = a
        .call(
            "return window.synapse.proposeUpgrade('global', {title: 'quadratic votes', module: arguments[0], \
             policy: 'vote_weight'});",
            vec![json!(module)],
        )
        .await;
    for n in nodes {
        e2e::knows_proposal(n, &p).await;
        let _: String = n.call("return window.synapse.vote(arguments[0], true);", vec![json!(p)]).await;
    }
    let votes = format!("Object.keys(window.synapse.state().state.gov.proposals['{p}'].votes).length");
    wait_all(&nodes, "three votes", &votes, vec![], |v| v == &json!(3)).await;
    let _: String = a.call("return window.synapse.closeProposal(arguments[0]);", vec![json!(p)]).await;
    let status = format!("window.synapse.state().state.gov.proposals['{p}'].status");
    wait_all(&nodes, "awaiting ratification", &status, vec![], |v| v == "pending_ratification").await;
    for n in [&a, &b] {
        let _: String = n.call("return window.synapse.ratify(arguments[0]);", vec![json!(p)]).await;
    }
    wait_all(&nodes, "the upgrade executed", &status, vec![], |v| v == "executed").await;
    for n in nodes {
        n.wait_text("#policies", |t| t.contains("vote_weight") && t.contains(&module)).await;
        n.wait_text("#upgrade-proposals", |t| t.contains("quadratic votes") && t.contains("executed")).await;
        n.wait_text("#upgrade-log", |t| t.contains("code_upgrade")).await;
    }
    for n in [a, b, c] {
        n.close().await;
    }
}

/// Identity backup from the Network view: the page downloads the identity
/// file; another profile's page refuses to restore it over its own identity
/// until "replace" is ticked, then, after a reload, runs as that node.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn identity_backup_and_restore_from_the_network_view() {
    let _serial = serial().await;
    let rdv = Rendezvous::start();
    let browser = Browser::start().await;
    let (a, b) = tokio::join!(browser.open_node(&rdv, "profile=ui-id1"), browser.open_node(&rdv, "profile=ui-id2"));
    let id_a = a.id().await;
    let id_b = b.id().await;
    a.show("network").await;
    a.click_on("#export-identity").await;
    a.wait_text("#export-feedback", |t| t.contains("Downloaded synapse-ng-identity-")).await;
    // The same file, as the page made it, goes to b's file input.
    let file: String = a.eval("window.synapse.exportIdentity()").await;
    let path = std::env::temp_dir().join(format!("synapse-identity-{}.json", std::process::id()));
    std::fs::write(&path, &file).expect("write the identity file");
    b.show("network").await;
    let input = b.client().find(fantoccini::Locator::Css("#identity-file")).await.expect("the file input");
    input.send_keys(&path.to_string_lossy()).await.expect("choose the file");
    b.click_on("#import-identity").await;
    let refused = b.wait_text("#import-feedback", |t| t.contains("Refused")).await;
    assert!(refused.contains("already holds node"), "{refused}");
    b.click_on("#identity-replace").await;
    b.click_on("#import-identity").await;
    b.wait_text("#import-feedback", |t| t.contains("reload the page")).await;
    // a's tab closes; b's reloads as a.
    a.goto("about:blank").await;
    b.goto(&rdv.page_url("profile=ui-id2")).await;
    b.wait_ready(TIMEOUT).await;
    assert_eq!(b.id().await, id_a, "the restored identity runs after the reload");
    assert_ne!(id_a, id_b);
    b.wait_text("#boot", |t| t.contains(&id_a[..8])).await;
    let _ = std::fs::remove_file(&path);
    for n in [a, b] {
        n.close().await;
    }
}
