//! The WebSocket client of the rendezvous: authenticates by signing the
//! server's nonce, feeds the directory and relayed signals to the [`Node`],
//! and carries the node's outgoing signals. Reconnects with backoff (1 s
//! doubling to 30 s); peers already connected keep talking meanwhile.

use crate::console_log;
use crate::identity::NodeId;
use crate::runtime::transport::Node;
use crate::runtime::util::{random_u32, sleep_ms};
use crate::signaling::{ClientMsg, IceServer, ServerMsg, sign_challenge, url_host};
use std::cell::RefCell;
use std::rc::Rc;
use wasm_bindgen::JsCast;
use wasm_bindgen::prelude::*;
use wasm_bindgen_futures::spawn_local;
use web_sys::{CloseEvent, MessageEvent, WebSocket};

/// Keep-alive period; well under the server's TTL and idle timeout.
const PING_MS: u32 = 20_000;

struct Conn {
    ws: Option<WebSocket>,
    authenticated: bool,
    attempts: u32,
    /// Keeps the current socket's handlers alive.
    closures: Vec<Closure<dyn FnMut(JsValue)>>,
}

/// Connects `node` to the rendezvous at `url` (ws:// or wss://) and keeps it
/// connected.
pub fn start(node: Node, url: String) {
    let conn = Rc::new(RefCell::new(Conn { ws: None, authenticated: false, attempts: 0, closures: vec![] }));
    let c2 = conn.clone();
    node.set_signal_sink(Rc::new(move |to: NodeId, sig| {
        let c = c2.borrow();
        match (&c.ws, c.authenticated) {
            (Some(ws), true) => {
                let payload = match serde_json::to_value(&sig) {
                    Ok(v) => v,
                    Err(_) => return,
                };
                if let Ok(text) = serde_json::to_string(&ClientMsg::Signal { to, payload }) {
                    let _ = ws.send_with_str(&text);
                }
            }
            _ => console_log!("rendezvous not connected; signal to {} dropped", to.short()),
        }
    }));
    open(node.clone(), url.clone(), conn.clone());
    let c3 = conn.clone();
    spawn_local(async move {
        loop {
            sleep_ms(PING_MS).await;
            let c = c3.borrow();
            if let (Some(ws), true) = (&c.ws, c.authenticated)
                && let Ok(t) = serde_json::to_string(&ClientMsg::Ping)
            {
                let _ = ws.send_with_str(&t);
            }
        }
    });
}

fn open(node: Node, url: String, conn: Rc<RefCell<Conn>>) {
    node.set_rendezvous_status("connecting", &url, None);
    let ws = match WebSocket::new(&url) {
        Ok(ws) => ws,
        Err(e) => {
            node.set_rendezvous_status("disconnected", &url, Some(format!("cannot open: {e:?}")));
            retry(node, url, conn);
            return;
        }
    };
    let mut closures: Vec<Closure<dyn FnMut(JsValue)>> = vec![];

    let (n, c, u) = (node.clone(), conn.clone(), url.clone());
    let on_msg = Closure::wrap(Box::new(move |ev: JsValue| {
        let Ok(ev) = ev.dyn_into::<MessageEvent>() else {
            return;
        };
        let Some(text) = ev.data().as_string() else {
            return;
        };
        let msg: ServerMsg = match serde_json::from_str(&text) {
            Ok(m) => m,
            Err(e) => {
                console_log!("unreadable rendezvous message: {e}");
                return;
            }
        };
        on_message(&n, &c, &u, msg);
    }) as Box<dyn FnMut(JsValue)>);
    ws.set_onmessage(Some(on_msg.as_ref().unchecked_ref()));
    closures.push(on_msg);

    let (n, c, u) = (node.clone(), conn.clone(), url.clone());
    let on_close = Closure::wrap(Box::new(move |ev: JsValue| {
        let why = ev
            .dyn_into::<CloseEvent>()
            .map(|e| format!("closed ({}{}{})", e.code(), if e.reason().is_empty() { "" } else { ": " }, e.reason()))
            .unwrap_or_else(|_| "closed".into());
        {
            let mut cc = c.borrow_mut();
            cc.ws = None;
            cc.authenticated = false;
        }
        n.set_rendezvous_status("disconnected", &u, Some(why));
        retry(n.clone(), u.clone(), c.clone());
    }) as Box<dyn FnMut(JsValue)>);
    ws.set_onclose(Some(on_close.as_ref().unchecked_ref()));
    closures.push(on_close);

    let mut cc = conn.borrow_mut();
    cc.ws = Some(ws);
    cc.authenticated = false;
    // The previous socket's handlers may still be on the stack (we are
    // called from its onclose via retry's task), so they are released only
    // here, from a fresh task.
    cc.closures = closures;
}

fn retry(node: Node, url: String, conn: Rc<RefCell<Conn>>) {
    let delay = {
        let mut c = conn.borrow_mut();
        c.attempts += 1;
        1000u32.saturating_mul(1 << (c.attempts - 1).min(5)).min(30_000) + random_u32() % 500
    };
    spawn_local(async move {
        sleep_ms(delay).await;
        open(node, url, conn);
    });
}

fn send(conn: &Rc<RefCell<Conn>>, msg: &ClientMsg) {
    if let (Some(ws), Ok(text)) = (&conn.borrow().ws, serde_json::to_string(msg)) {
        let _ = ws.send_with_str(&text);
    }
}

/// The rendezvous handed out ICE servers: use them for new connections (unless
/// the page's `?ice=` overrides them), and ask for fresh TURN credentials at
/// half their lifetime.
fn on_ice(node: &Node, conn: &Rc<RefCell<Conn>>, ice: Vec<IceServer>, ttl_secs: u64) {
    if !ice.is_empty() {
        node.set_rendezvous_ice(ice);
    }
    if ttl_secs == 0 {
        return;
    }
    let renew_ms = (ttl_secs.saturating_mul(500)).clamp(5_000, u32::MAX as u64) as u32;
    let c = conn.clone();
    spawn_local(async move {
        sleep_ms(renew_ms).await;
        if c.borrow().authenticated {
            send(&c, &ClientMsg::Ice);
        }
    });
}

fn on_message(node: &Node, conn: &Rc<RefCell<Conn>>, url: &str, msg: ServerMsg) {
    match msg {
        ServerMsg::Challenge { nonce } => match sign_challenge(node.identity(), &nonce, &url_host(url)) {
            Ok(signature) => send(conn, &ClientMsg::Auth { id: node.id(), signature }),
            Err(e) => console_log!("bad challenge from the rendezvous: {e}"),
        },
        ServerMsg::Welcome { peers, ice, ice_ttl_secs, .. } => {
            {
                let mut c = conn.borrow_mut();
                c.authenticated = true;
                c.attempts = 0;
            }
            node.set_rendezvous_status("connected", url, None);
            on_ice(node, conn, ice, ice_ttl_secs);
            node.set_directory(peers);
        }
        ServerMsg::Ice { ice, ice_ttl_secs } => on_ice(node, conn, ice, ice_ttl_secs),
        ServerMsg::PeerJoined { id } => node.peer_joined(id),
        ServerMsg::PeerLeft { id } => node.peer_left(id),
        ServerMsg::Peers { peers } => node.set_directory(peers),
        ServerMsg::Signal { from, payload } => node.handle_signal(from, payload),
        ServerMsg::Pong => {}
        ServerMsg::Error { code, reason } => {
            console_log!("rendezvous refused: {} ({reason})", code.as_str());
            node.set_rendezvous_status(
                if conn.borrow().authenticated { "connected" } else { "connecting" },
                url,
                Some(format!("{}: {reason}", code.as_str())),
            );
        }
    }
}
