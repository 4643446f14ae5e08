//! Governance between three real browser nodes: a config change passes and
//! every node applies it; a split_channel network operation is ratified by
//! 2 of 3 validators and every node shows the same split; a webhook common
//! tool is used by the assignee of a task against a local HTTP server once
//! a majority of its custodians granted their shares of its key, and
//! refused to everyone else, with the secret never in an op.

use e2e::{Browser, NodePage, Rendezvous, knows_proposal, mesh_of_three, serial, wait_all, wait_until};
use serde_json::{Value, json};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const TIMEOUT: Duration = Duration::from_secs(45);

async fn all_vote_yes(nodes: &[&NodePage], id: &str) {
    for n in nodes {
        knows_proposal(n, id).await;
        let _: String = n.call("return window.synapse.vote(arguments[0], true);", vec![json!(id)]).await;
    }
    wait_all(
        nodes,
        "three votes everywhere",
        &format!("Object.keys(window.synapse.state().state.gov.proposals['{id}'].votes).length"),
        |v| v == &json!(3),
    )
    .await;
}

/// A one-route HTTP server that records the Authorization header of each
/// POST and answers CORS preflights.
async fn webhook_server() -> (String, Arc<Mutex<Vec<String>>>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind the webhook server");
    let url = format!("http://{}/hook", listener.local_addr().expect("address"));
    let seen = Arc::new(Mutex::new(vec![]));
    let s2 = seen.clone();
    tokio::spawn(async move {
        while let Ok((mut sock, _)) = listener.accept().await {
            let seen = s2.clone();
            tokio::spawn(async move {
                let mut buf = vec![0u8; 16 * 1024];
                let n = sock.read(&mut buf).await.unwrap_or(0);
                let req = String::from_utf8_lossy(&buf[..n]).to_string();
                if req.starts_with("POST") {
                    let auth = req
                        .lines()
                        .find(|l| l.to_ascii_lowercase().starts_with("authorization:"))
                        .map(|l| l["authorization:".len()..].trim().to_string())
                        .unwrap_or_default();
                    seen.lock().expect("lock").push(auth);
                }
                let resp = "HTTP/1.1 200 OK\r\nAccess-Control-Allow-Origin: *\r\n\
                    Access-Control-Allow-Methods: POST, OPTIONS\r\n\
                    Access-Control-Allow-Headers: authorization, content-type\r\n\
                    Content-Length: 2\r\nConnection: close\r\n\r\nok";
                let _ = sock.write_all(resp.as_bytes()).await;
            });
        }
    });
    (url, seen)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn config_change_split_channel_and_a_webhook_tool() {
    let _serial = serial().await;
    let rdv = Rendezvous::start();
    let browser = Browser::start().await;
    let (a, b, c) = mesh_of_three(&browser, &rdv, "g").await;
    let nodes = [&a, &b, &c];
    wait_all(
        &nodes,
        "every node's X25519 key published",
        "Object.keys(window.synapse.state().state.tools.keys).length",
        |v| v == &json!(3),
    )
    .await;

    // 1. A config change passes and every node shows the new value.
    let p: String = a
        .eval(
            "window.synapse.propose('global', {kind: 'config_change', title: 'Raise the tax to 3%', \
             command: {operation: 'config_change', key: 'tax_bps', value: {type: 'int', value: 300}}})",
        )
        .await;
    all_vote_yes(&nodes, &p).await;
    let _: String = a.call("return window.synapse.closeProposal(arguments[0]);", vec![json!(p)]).await;
    // Rule `ratify_every_change`: two of the three validators ratify it.
    let status = format!("window.synapse.state().state.gov.proposals['{p}'].status");
    wait_all(&nodes, "the config change pending ratification", &status, |v| v == &json!("pending_ratification")).await;
    for n in [&b, &c] {
        let _: String = n.call("return window.synapse.ratify(arguments[0]);", vec![json!(p)]).await;
    }
    wait_all(&nodes, "tax_bps = 300 everywhere", "window.synapse.state().state.params.tax_bps", |v| v == &json!(300))
        .await;

    // 2. split_channel as a network operation, ratified by 2 of 3 validators.
    let _: String = a.eval("window.synapse.createChannel('big', 'to be split')").await;
    wait_all(&nodes, "channel big", "'big' in window.synapse.state().state.channels", |v| v == &json!(true)).await;
    for (title, tag) in [("Button styles", "ui"), ("Index tuning", "db")] {
        let _: String = a
            .call(
                "return window.synapse.createTask('big', arguments[0]);",
                vec![json!({"title": title, "reward": 0, "tags": [tag]})],
            )
            .await;
    }
    let p: String = a
        .eval(
            "window.synapse.propose('global', {kind: 'network_operation', title: 'Split big by tag', \
             command: {operation: 'split_channel', target: 'big', logic: 'by_tag', \
             parts: [{channel: 'big-ui', keys: ['ui']}, {channel: 'big-db', keys: ['db']}]}})",
        )
        .await;
    all_vote_yes(&nodes, &p).await;
    let _: String = a.call("return window.synapse.closeProposal(arguments[0]);", vec![json!(p)]).await;
    let status = format!("window.synapse.state().state.gov.proposals['{p}'].status");
    wait_all(&nodes, "the split pending ratification", &status, |v| v == &json!("pending_ratification")).await;
    for n in [&b, &c] {
        let _: String = n.call("return window.synapse.ratify(arguments[0]);", vec![json!(p)]).await;
    }
    wait_all(
        &nodes,
        "the split executed and the tasks moved everywhere",
        "Object.values(window.synapse.state().state.tasks).map(t => t.title + '@' + t.channel).sort().join(',')",
        |v| v == &json!("Button styles@big-ui,Index tuning@big-db"),
    )
    .await;
    let log: Value = a.eval("window.synapse.state().state.gov.execution_log").await;
    let entry = log.as_array().and_then(|l| l.iter().find(|e| e["proposal"] == json!(p))).cloned().unwrap_or_default();
    assert_eq!(entry["ratified_by"].as_array().map(Vec::len), Some(2), "ratified by 2 validators: {entry}");

    // 3. A webhook tool: only the assignee of a task that lists it may use it.
    let (url, calls) = webhook_server().await;
    let secret = "s3cr3t-webhook-token";
    let _: String = a.eval("window.synapse.createChannel('tools', 'shared tools')").await;
    for n in [&b, &c] {
        wait_until(TIMEOUT, "channel tools", async || {
            let ok: bool = n.eval("'tools' in window.synapse.state().state.channels").await;
            if ok { Ok(()) } else { Err(()) }
        })
        .await;
        let _: String = n.eval("window.synapse.subscribe('tools')").await;
    }
    wait_all(&nodes, "3 members of tools", "window.synapse.state().state.channels.tools.members.length", |v| {
        v == &json!(3)
    })
    .await;
    let p: String = a
        .call(
            "return window.synapse.proposeTool('tools', arguments[0]);",
            vec![json!({"tool_id": "hook", "tool_type": "webhook", "webhook_url": url, "monthly_cost_sp": 0, "secret": secret})],
        )
        .await;
    all_vote_yes(&nodes, &p).await;
    let _: String = a.call("return window.synapse.closeProposal(arguments[0]);", vec![json!(p)]).await;
    wait_all(
        &nodes,
        "pending ratification",
        &format!("window.synapse.state().state.gov.proposals['{p}'].status"),
        |v| v == &json!("pending_ratification"),
    )
    .await;
    for n in [&b, &c] {
        let _: String = n.call("return window.synapse.ratify(arguments[0]);", vec![json!(p)]).await;
    }
    wait_all(&nodes, "tool hook active", "(window.synapse.state().state.tools.tools.hook || {}).status", |v| {
        v == &json!("active")
    })
    .await;
    let task: String = a
        .eval("window.synapse.createTask('tools', {title: 'Ping the hook', reward: 0, required_tools: ['hook']})")
        .await;
    wait_until(TIMEOUT, "b to see the task", async || {
        let ok: bool = b.call("return arguments[0] in window.synapse.state().state.tasks;", vec![json!(task)]).await;
        if ok { Ok(()) } else { Err(()) }
    })
    .await;
    let _: String = b.call("return window.synapse.claimTask(arguments[0]);", vec![json!(task)]).await;
    let _: String = b.call("return window.synapse.startTask(arguments[0]);", vec![json!(task)]).await;
    // Rule `tool_grant`: the custodians' nodes (the validators) hand their
    // shares of the key to the assignee; a majority of them is needed.
    let custody = format!(
        "(() => {{ const t = window.synapse.state().state.tools.tools.hook; \
         return [t.secret.recipients.length, Object.keys((t.grants || {{}})['{task}'] || {{}}).length]; }})()"
    );
    wait_until(TIMEOUT, "a majority of the custodians to grant their shares to b", async || {
        let v: Value = b.eval(&custody).await;
        let (n, granted) = (v[0].as_u64().unwrap_or(0), v[1].as_u64().unwrap_or(0));
        if n >= 2 && granted > n / 2 { Ok(()) } else { Err(v) }
    })
    .await;
    let used: Value = b.call("return window.synapse.useTool('hook', arguments[0]);", vec![json!(task)]).await;
    assert_eq!(used["status"], json!(200), "the assignee's webhook call: {used}");
    assert_eq!(calls.lock().expect("lock").clone(), vec![format!("Bearer {secret}")]);
    for n in [&a, &c] {
        wait_until(TIMEOUT, "the task to be in progress here", async || {
            let s: Value = n
                .call("return (window.synapse.state().state.tasks[arguments[0]] || {}).status;", vec![json!(task)])
                .await;
            if s == json!("in_progress") { Ok(()) } else { Err(s) }
        })
        .await;
        let refused: String = n
            .call(
                "return window.synapse.useTool('hook', arguments[0]).then(() => 'used', e => e.message);",
                vec![json!(task)],
            )
            .await;
        assert_ne!(refused, "used", "only the assignee may use the tool");
    }
    assert_eq!(calls.lock().expect("lock").len(), 1, "refused callers made no call");
    // The secret is in no node's state (grants included), in clear or hex;
    // the ops themselves are checked natively
    // (`tool_plaintext_never_appears_in_ops_snapshot_or_state`).
    let hex: String = secret.bytes().map(|b| format!("{b:02x}")).collect();
    for n in nodes {
        let state: String = n.eval("JSON.stringify(window.synapse.state())").await;
        assert!(!state.contains(secret) && !state.contains(&hex), "plaintext secret in the replicated state");
    }
    for n in [a, b, c] {
        n.close().await;
    }
}
