//! The WebSocket clients of the rendezvous servers: one per server the page
//! names (`?rendezvous=a,b`) plus the siblings a server advertises, at most
//! [`MAX_RENDEZVOUS`]. Each authenticates by signing the server's nonce and
//! host, feeds its directory and relayed signals to the [`Node`] under its
//! index, and carries the signals the peer manager routes through it.
//! Each reconnects on its own with backoff (1 s doubling to 30 s); peers
//! already connected keep talking meanwhile, and while any one server is
//! up new peers are still found.

use crate::console_log;
use crate::identity::NodeId;
use crate::peers::rendezvous_set::MAX_RENDEZVOUS;
use crate::runtime::transport::Node;
use crate::runtime::util::{random_u32, sleep_ms};
use crate::signaling::{
    ClientMsg, IceServer, ServerMsg, check_rendezvous_url, same_rendezvous, sign_challenge, url_host,
};
use std::cell::RefCell;
use std::rc::Rc;
use wasm_bindgen::JsCast;
use wasm_bindgen::prelude::*;
use wasm_bindgen_futures::spawn_local;
use web_sys::{CloseEvent, MessageEvent, WebSocket};

/// Keep-alive period; well under the server's TTL and idle timeout.
const PING_MS: u32 = 20_000;

struct Conn {
    /// The peer manager's index of this server.
    index: usize,
    url: String,
    ws: Option<WebSocket>,
    authenticated: bool,
    attempts: u32,
    /// Keeps the current socket's handlers alive.
    closures: Vec<Closure<dyn FnMut(JsValue)>>,
}

type Shared = Rc<RefCell<Conn>>;

/// Every server this page logs in to, in index order.
#[derive(Clone, Default)]
struct Servers(Rc<RefCell<Vec<Shared>>>);

/// Connects `node` to each rendezvous in `urls` (checked `ws://`/`wss://`
/// URLs) and keeps them connected.
pub fn start(node: Node, urls: Vec<String>) {
    let servers = Servers::default();
    for url in urls {
        add(&node, &servers, url);
    }
}

/// Adds a server unless it is known or the set is full (rule
/// `bounded_rendezvous_set`), and starts its connection.
fn add(node: &Node, servers: &Servers, url: String) {
    let conn = {
        let mut list = servers.0.borrow_mut();
        if list.len() >= MAX_RENDEZVOUS || list.iter().any(|c| same_rendezvous(&c.borrow().url, &url)) {
            return;
        }
        let conn = Rc::new(RefCell::new(Conn {
            index: list.len(),
            url,
            ws: None,
            authenticated: false,
            attempts: 0,
            closures: vec![],
        }));
        list.push(conn.clone());
        conn
    };
    let index = conn.borrow().index;
    let c2 = conn.clone();
    node.set_signal_sink_at(
        index,
        Rc::new(move |to: NodeId, sig| {
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
                _ => console_log!("rendezvous {} not connected; signal to {} dropped", c.url, to.short()),
            }
        }),
    );
    let c3 = conn.clone();
    node.set_directory_ask_at(
        index,
        Rc::new(move || {
            if c3.borrow().authenticated {
                send(&c3, &ClientMsg::List);
            }
        }),
    );
    open(node.clone(), servers.clone(), conn.clone());
    spawn_local(async move {
        loop {
            sleep_ms(PING_MS).await;
            let c = conn.borrow();
            if let (Some(ws), true) = (&c.ws, c.authenticated)
                && let Ok(t) = serde_json::to_string(&ClientMsg::Ping)
            {
                let _ = ws.send_with_str(&t);
            }
        }
    });
}

fn open(node: Node, servers: Servers, conn: Shared) {
    let (index, url) = {
        let c = conn.borrow();
        (c.index, c.url.clone())
    };
    node.set_rendezvous_status_at(index, "connecting", &url, None);
    let ws = match WebSocket::new(&url) {
        Ok(ws) => ws,
        Err(e) => {
            node.set_rendezvous_status_at(index, "disconnected", &url, Some(format!("cannot open: {e:?}")));
            retry(node, servers, conn);
            return;
        }
    };
    let mut closures: Vec<Closure<dyn FnMut(JsValue)>> = vec![];

    let (n, s, c) = (node.clone(), servers.clone(), conn.clone());
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
        on_message(&n, &s, &c, msg);
    }) as Box<dyn FnMut(JsValue)>);
    ws.set_onmessage(Some(on_msg.as_ref().unchecked_ref()));
    closures.push(on_msg);

    let (n, s, c) = (node.clone(), servers.clone(), conn.clone());
    let on_close = Closure::wrap(Box::new(move |ev: JsValue| {
        let why = ev
            .dyn_into::<CloseEvent>()
            .map(|e| format!("closed ({}{}{})", e.code(), if e.reason().is_empty() { "" } else { ": " }, e.reason()))
            .unwrap_or_else(|_| "closed".into());
        let (index, url) = {
            let mut cc = c.borrow_mut();
            cc.ws = None;
            cc.authenticated = false;
            (cc.index, cc.url.clone())
        };
        n.set_rendezvous_status_at(index, "disconnected", &url, Some(why));
        retry(n.clone(), s.clone(), c.clone());
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

fn retry(node: Node, servers: Servers, conn: Shared) {
    let delay = {
        let mut c = conn.borrow_mut();
        c.attempts += 1;
        1000u32.saturating_mul(1 << (c.attempts - 1).min(5)).min(30_000) + random_u32() % 500
    };
    spawn_local(async move {
        sleep_ms(delay).await;
        open(node, servers, conn);
    });
}

fn send(conn: &Shared, msg: &ClientMsg) {
    if let (Some(ws), Ok(text)) = (&conn.borrow().ws, serde_json::to_string(msg)) {
        let _ = ws.send_with_str(&text);
    }
}

/// A rendezvous handed out ICE servers: use them for new connections (unless
/// the page's own override them), and ask for fresh TURN credentials at
/// half their lifetime. With several servers the last handout wins: they
/// serve one network, so any one's TURN servers will do.
fn on_ice(node: &Node, conn: &Shared, ice: Vec<IceServer>, ttl_secs: u64) {
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

fn on_message(node: &Node, servers: &Servers, conn: &Shared, msg: ServerMsg) {
    let (index, url) = {
        let c = conn.borrow();
        (c.index, c.url.clone())
    };
    match msg {
        ServerMsg::Challenge { nonce } => match sign_challenge(node.identity(), &nonce, &url_host(&url)) {
            Ok(signature) => send(conn, &ClientMsg::Auth { id: node.id(), signature }),
            Err(e) => console_log!("bad challenge from the rendezvous: {e}"),
        },
        ServerMsg::Welcome { peers, ice, ice_ttl_secs, siblings, .. } => {
            {
                let mut c = conn.borrow_mut();
                c.authenticated = true;
                c.attempts = 0;
            }
            node.set_rendezvous_status_at(index, "connected", &url, None);
            on_ice(node, conn, ice, ice_ttl_secs);
            node.set_directory_at(index, peers);
            // Rule `rendezvous_siblings`: a server may name others of the
            // same network; each checked, at most MAX_RENDEZVOUS in all.
            for s in siblings.into_iter().take(MAX_RENDEZVOUS) {
                match check_rendezvous_url(&s) {
                    Ok(()) => add(node, servers, s),
                    Err(e) => console_log!("sibling from {url} ignored: {e}"),
                }
            }
        }
        ServerMsg::Ice { ice, ice_ttl_secs } => on_ice(node, conn, ice, ice_ttl_secs),
        ServerMsg::PeerJoined { id } => node.peer_joined_at(index, id),
        ServerMsg::PeerLeft { id } => node.peer_left_at(index, id),
        ServerMsg::Peers { peers } => node.directory_sample_at(index, peers),
        ServerMsg::Signal { from, payload } => node.handle_signal_at(index, from, payload),
        ServerMsg::Pong => {}
        ServerMsg::Error { code, reason } => {
            console_log!("rendezvous {url} refused: {} ({reason})", code.as_str());
            node.set_rendezvous_status_at(
                index,
                if conn.borrow().authenticated { "connected" } else { "connecting" },
                &url,
                Some(format!("{}: {reason}", code.as_str())),
            );
        }
    }
}
