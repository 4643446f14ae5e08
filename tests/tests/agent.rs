//! The optional agent on one of four real browser nodes on the real
//! rendezvous, talking to a real local HTTP server that answers in the
//! OpenAI chat-completions format with fixed completions:
//!
//! - the endpoint suggests a bid within the guardrails; the user approves
//!   it on the page (the Agent view's button) and every node sees the bid;
//! - the endpoint asks for a bid above 30 % of the balance: refused by the
//!   guardrail, never signed;
//! - the endpoint fails (HTTP 500): the agent says so and falls back to
//!   its rules;
//! - a drafted policy module is compiled (in the lazily loaded
//!   `wat_worker`) and dry-run, a broken one is refused, and nothing is
//!   published.

use e2e::{Browser, Rendezvous, pixel_stats, screenshot_dir, serial, wait_all, wait_full_mesh, wait_until};
use serde_json::{Value, json};
use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const TIMEOUT: Duration = Duration::from_secs(60);

/// The server's script: the answers to give, in order (status, body), and
/// the request bodies it received.
#[derive(Default)]
struct Script {
    answers: VecDeque<(u16, String)>,
    requests: Vec<String>,
}

fn completion(content: &str) -> String {
    json!({"id": "x", "object": "chat.completion", "model": "fixed",
           "choices": [{"index": 0, "finish_reason": "stop", "message": {"role": "assistant", "content": content}}]})
    .to_string()
}

/// Reads one HTTP request (head and `Content-Length` body).
async fn read_request(sock: &mut tokio::net::TcpStream) -> Option<(String, String)> {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 8192];
    loop {
        let n = sock.read(&mut chunk).await.ok()?;
        if n == 0 {
            return None;
        }
        buf.extend_from_slice(&chunk[..n]);
        let text = String::from_utf8_lossy(&buf).to_string();
        if let Some(end) = text.find("\r\n\r\n") {
            let head = text[..end].to_string();
            let len = head
                .lines()
                .find_map(|l| l.to_ascii_lowercase().strip_prefix("content-length:").map(|v| v.trim().to_string()))
                .and_then(|v| v.parse::<usize>().ok())
                .unwrap_or(0);
            if buf.len() >= end + 4 + len {
                let body = String::from_utf8_lossy(&buf[end + 4..end + 4 + len]).to_string();
                return Some((head, body));
            }
        }
    }
}

/// An OpenAI-compatible endpoint on loopback (CORS preflights answered).
async fn chat_server(script: Arc<Mutex<Script>>) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind the chat server");
    let url = format!("http://{}/v1", listener.local_addr().expect("address"));
    tokio::spawn(async move {
        while let Ok((mut sock, _)) = listener.accept().await {
            let script = script.clone();
            tokio::spawn(async move {
                let Some((head, body)) = read_request(&mut sock).await else { return };
                let (status, answer) = if head.starts_with("POST /v1/chat/completions") {
                    let mut s = script.lock().expect("lock");
                    s.requests.push(body);
                    s.answers.pop_front().unwrap_or((500, "{\"error\": {\"message\": \"no more answers\"}}".into()))
                } else {
                    (204, String::new())
                };
                let resp = format!(
                    "HTTP/1.1 {status} X\r\nAccess-Control-Allow-Origin: *\r\n\
                     Access-Control-Allow-Methods: POST, OPTIONS\r\n\
                     Access-Control-Allow-Headers: authorization, content-type\r\n\
                     Content-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{answer}",
                    answer.len()
                );
                let _ = sock.write_all(resp.as_bytes()).await;
            });
        }
    });
    url
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_agent_suggests_a_bid_through_a_local_endpoint_approved_on_the_page_and_refused_above_the_guardrail() {
    let _serial = serial().await;
    let rdv = Rendezvous::start();
    let browser = Browser::start().await;
    let (a, b, c, d) = tokio::join!(
        browser.open_node(&rdv, "profile=ag1"),
        browser.open_node(&rdv, "profile=ag2"),
        browser.open_node(&rdv, "profile=ag3"),
        browser.open_node(&rdv, "profile=ag4"),
    );
    let nodes = [&a, &b, &c, &d];
    wait_full_mesh(&nodes).await;
    let b_id: String = b.eval("window.synapse.id()").await;
    let balance = format!("window.synapse.state().state.accounts['{b_id}']?.balance ?? 0");
    wait_all(&nodes, "B's account everywhere", &balance, |v| v == &json!(1000)).await;

    // A offers two auctions in a channel B joined.
    let _: String = a.eval("window.synapse.createChannel('jobs', 'paid work')").await;
    wait_all(&nodes, "the jobs channel everywhere", "!!window.synapse.state().state.channels.jobs", |v| {
        v == &json!(true)
    })
    .await;
    for n in [&b, &c, &d] {
        let _: String = n.eval("window.synapse.subscribe('jobs')").await;
    }
    let auction = "return window.synapse.createTask('jobs', {title: arguments[0], \
        auction: {max_reward: arguments[1], deadline_ms: Date.now() + 3600000}});";
    let small: String = a.call(auction, vec![json!("small job"), json!(200)]).await;
    let big: String = a.call(auction, vec![json!("big job"), json!(2000)]).await;
    let knows = format!("['{small}', '{big}'].every(t => window.synapse.state().state.tasks[t])");
    wait_all(&nodes, "both auctions everywhere", &knows, |v| v == &json!(true)).await;

    // The endpoint's answers: a bid within the cap (300 of 1000 SP), then
    // one above it with a reason that tries to talk past it, then a failure.
    let script = Arc::new(Mutex::new(Script::default()));
    let within = json!({"actions": [{"kind": "bid", "task": small, "amount": 150, "estimated_days": 2,
        "reason": "a small job at a fair price"}]});
    let greedy = json!({"actions": [{"kind": "bid", "task": big, "amount": 900, "estimated_days": 1,
        "reason": "the guardrails do not apply to this one"}, {"kind": "transfer", "to": "me", "amount": 1000}]});
    {
        let mut s = script.lock().expect("lock");
        s.answers.push_back((200, completion(&format!("```json\n{within}\n```"))));
        s.answers.push_back((200, completion(&greedy.to_string())));
        s.answers.push_back((500, "{\"error\": {\"message\": \"overloaded\"}}".into()));
    }
    let url = chat_server(script.clone()).await;

    // Off by default.
    let off: Value = b.eval("window.synapse.agent().config.enabled").await;
    assert_eq!(off, json!(false));
    let looser =
        b.try_call("window.synapse.agentConfigure({enabled: true, max_bid_percent: 50}); return 1;", vec![]).await;
    assert!(looser.is_err_and(|e| e.contains("max_bid_percent")), "looser limits are refused");
    let _: Value = b
        .call(
            "window.synapse.agentConfigure({enabled: true, endpoint: arguments[0], model: 'fixed', cycle_seconds: 3600}); return 1;",
            vec![json!(url)],
        )
        .await;
    let first = wait_until(TIMEOUT, "the agent's first cycle", async || {
        let s: Value = b.eval("window.synapse.agent()").await;
        if s["cycles"] == json!(1) && s["busy"] == json!(false) { Ok(s) } else { Err(s) }
    })
    .await;
    assert_eq!(first["source"], json!("model"), "{first}");
    let s = &first["suggestions"][0];
    assert_eq!(s["action"], json!({"kind": "bid", "task": small, "amount": 150, "estimated_days": 2}), "{first}");
    assert_eq!(s["status"], json!({"status": "pending"}));
    assert_eq!(s["reason"], json!("a small job at a fair price"));
    {
        let sent: Value = serde_json::from_str(&script.lock().expect("lock").requests[0]).expect("JSON request");
        assert_eq!(sent["model"], json!("fixed"));
        let prompt = sent["messages"][1]["content"].as_str().unwrap_or_default().to_string();
        assert!(prompt.contains(&small) && prompt.contains("\"bid_cap_sp\":300"), "the prompt: {prompt}");
    }

    // Approved on the page.
    b.show("agent").await;
    let form: Value = b
        .eval("[document.querySelector('#agent-enabled').checked, document.querySelector('#agent-endpoint').value]")
        .await;
    assert_eq!(form, json!([true, url]), "the form shows the configuration set through the API");
    b.click_on(&format!("li[data-suggestion='{}'] button.approve", s["id"])).await;
    let bid = format!("window.synapse.state().state.tasks['{small}'].auction.bids['{b_id}']?.amount ?? null");
    wait_all(&nodes, "B's approved bid on every node", &bid, |v| v == &json!(150)).await;
    b.wait_text(&format!("li[data-suggestion='{}'] .status", s["id"]), |t| t.starts_with("done")).await;

    // Above the guardrail: refused, never signed.
    let second: Value = b.eval("window.synapse.agentRun()").await;
    let refused = &second["suggestions"];
    let greedy_bid = refused
        .as_array()
        .and_then(|l| l.iter().find(|x| x["action"]["task"] == json!(big)))
        .cloned()
        .unwrap_or(Value::Null);
    let why = greedy_bid["status"]["why"].as_str().unwrap_or_default();
    assert_eq!(greedy_bid["status"]["status"], json!("refused"), "{second}");
    assert!(why.contains("above 30% of the balance (300 of 1000 SP)"), "{why}");
    let unknown = refused.as_array().and_then(|l| l.iter().find(|x| x["kind"] == json!("transfer"))).cloned();
    assert!(unknown.is_some_and(|u| u["status"]["status"] == json!("refused")), "{second}");
    let again = b.try_call("return window.synapse.agentApprove(arguments[0]);", vec![greedy_bid["id"].clone()]).await;
    assert!(again.is_err_and(|e| e.contains("not pending")), "a refused suggestion cannot be approved");
    let on_big: Value = b.eval(&format!("window.synapse.state().state.tasks['{big}'].auction.bids")).await;
    assert_eq!(on_big, json!({}), "no bid was signed on the big auction");
    b.wait_text(&format!("li[data-suggestion='{}'] .status", greedy_bid["id"]), |t| t.contains("above 30%")).await;
    let png = b.screenshot().await;
    std::fs::write(screenshot_dir().join("agent-suggestions.png"), &png).expect("write the screenshot");
    let px = pixel_stats(&png);
    assert!(px.colours > 8 && px.foreground > 0.02, "the Agent view looks blank: {px:?}");

    // The endpoint fails: the agent says so and uses its rules, which bid
    // within the cap on the untagged big auction.
    let third: Value = b.eval("window.synapse.agentRun()").await;
    assert_eq!(third["source"], json!("rules"), "{third}");
    let problem = third["model_problem"].as_str().unwrap_or_default();
    assert!(problem.contains("HTTP 500") && problem.contains("rules"), "{problem}");
    let rule_bid = third["suggestions"]
        .as_array()
        .and_then(|l| l.iter().find(|x| x["source"] == json!("rules") && x["action"]["task"] == json!(big)))
        .cloned()
        .unwrap_or(Value::Null);
    assert_eq!(rule_bid["action"]["amount"], json!(300), "capped at 30 %: {third}");
    b.wait_text("#agent-problem", |t| t.contains("HTTP 500")).await;

    // A drafted module: compiled and dry-run in the page, not published.
    let wat = "```wat\n(module (func (export \"tax\") (param i64 i64) (result i64)\n  \
               (i64.div_u (i64.mul (local.get 0) (i64.const 200)) (i64.const 10000))))\n```";
    script.lock().expect("lock").answers.push_back((200, completion(wat)));
    let draft: Value = b
        .eval("window.synapse.agentDraftModule('a flat 2% tax', 'tax').then(d => ({size: d.size, bytes: d.bytes.length, error: d.dry_run.error, tags: d.proposal.tags}))")
        .await;
    assert_eq!(draft["error"], Value::Null, "{draft}");
    assert_eq!(draft["tags"], json!(["agent_draft", "tax"]));
    assert_eq!(draft["size"], draft["bytes"]);
    // WAT that does not compile is refused with the compiler's reason.
    script.lock().expect("lock").answers.push_back((200, completion("```wat\n(module (func\n```")));
    let bad = b.try_call("return window.synapse.agentDraftModule('broken', 'tax');", vec![]).await;
    assert!(bad.is_err_and(|e| e.contains("the WAT does not compile")), "a broken draft is refused");
    let modules: Value = b.eval("Object.keys(window.synapse.state().state.upgrades.modules).length").await;
    assert_eq!(modules, json!(0), "drafting publishes nothing");
}
