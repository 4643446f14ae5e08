//! `window.synapse`, change events: `on(event, cb)`, `off(event, cb)` and
//! the older `onChange(cb)`. `change` fires after every visible change;
//! each domain event (`tasks`, `governance`, `economy`, `channels`,
//! `tools`, `upgrades`, `network`) only when that domain changed, so a
//! page can re-read just what it shows.

use super::SynapseNode;
use crate::runtime::events::ChangeFeed;
use crate::runtime::ledger::Ledger;
use crate::runtime::transport::Node;
use crate::service::Domain;
use std::cell::RefCell;
use std::collections::BTreeMap;
use std::rc::Rc;
use wasm_bindgen::JsCast;
use wasm_bindgen::prelude::*;

/// An event name `on`/`off` accept: `change`, or a domain.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Event {
    Change,
    Domain(Domain),
}

/// Checks an event name (so a typo is an error, not silence).
fn parse_event(name: &str) -> Result<Event, JsValue> {
    if name == "change" {
        return Ok(Event::Change);
    }
    Domain::parse(name).map(Event::Domain).ok_or_else(|| {
        let names: Vec<&str> = Domain::ALL.iter().map(|d| d.name()).collect();
        js_sys::Error::new(&format!("unknown event {name:?}: use \"change\" or one of {names:?}")).into()
    })
}

type Table = Rc<RefCell<BTreeMap<Event, Vec<js_sys::Function>>>>;

/// The listeners of every event, shared with the node's change hook.
#[derive(Clone)]
pub(super) struct Listeners(Table);

impl Listeners {
    /// One change hook on the node: it asks a [`ChangeFeed`] which domains
    /// changed, then calls every `change` listener and those of the changed
    /// domains (each from a copy of its list, so a listener may call `off`
    /// or `on` while it runs).
    pub(super) fn attach(node: &Node, ledger: &Ledger) -> Listeners {
        let table: Table = Default::default();
        let t = table.clone();
        let feed = RefCell::new(ChangeFeed::new(ledger));
        node.subscribe(Rc::new(move || {
            let changed = feed.borrow_mut().changed();
            let events = std::iter::once(Event::Change).chain(changed.iter().map(Event::Domain));
            for e in events {
                let now: Vec<js_sys::Function> = t.borrow().get(&e).cloned().unwrap_or_default();
                for f in now {
                    let _ = f.call0(&JsValue::NULL);
                }
            }
        }));
        Listeners(table)
    }

    fn remove(table: &Table, event: Event, f: &js_sys::Function) -> bool {
        let mut t = table.borrow_mut();
        let Some(v) = t.get_mut(&event) else { return false };
        match v.iter().position(|g| JsValue::from(g) == JsValue::from(f)) {
            Some(i) => {
                v.remove(i);
                true
            }
            None => false,
        }
    }
}

#[wasm_bindgen]
impl SynapseNode {
    /// Calls `callback()` after every change of `event`'s kind: `change`
    /// for any visible change (like `onChange`), a domain name for changes
    /// of that domain only. Returns a function that removes it. Throws on
    /// an unknown event name.
    #[wasm_bindgen(unchecked_return_type = "() => void")]
    pub fn on(
        &self,
        #[wasm_bindgen(unchecked_param_type = "SynapseEvent")] event: String,
        #[wasm_bindgen(unchecked_param_type = "() => void")] callback: js_sys::Function,
    ) -> Result<js_sys::Function, JsValue> {
        let event = parse_event(&event)?;
        self.listeners.0.borrow_mut().entry(event).or_default().push(callback.clone());
        let table = self.listeners.0.clone();
        let off = Closure::<dyn FnMut()>::new(move || {
            Listeners::remove(&table, event, &callback);
        });
        Ok(off.into_js_value().unchecked_into())
    }

    /// Removes a listener added with `on(event, callback)` (the same function
    /// object). Returns whether it was registered.
    pub fn off(
        &self,
        #[wasm_bindgen(unchecked_param_type = "SynapseEvent")] event: String,
        #[wasm_bindgen(unchecked_param_type = "() => void")] callback: js_sys::Function,
    ) -> Result<bool, JsValue> {
        let event = parse_event(&event)?;
        Ok(Listeners::remove(&self.listeners.0, event, &callback))
    }

    /// Calls `callback()` after every visible change of the node (for good:
    /// `on('change', cb)` returns a remover).
    #[wasm_bindgen(js_name = onChange)]
    pub fn on_change(&self, #[wasm_bindgen(unchecked_param_type = "() => void")] callback: js_sys::Function) {
        self.node.subscribe(Rc::new(move || {
            let _ = callback.call0(&JsValue::NULL);
        }));
    }
}
