//! A native [`Signer`] for the service's tests: a replica and a few
//! identities acting on it in turn, with a clock that moves 1 s per op.

use super::{Intent, Result, Signer};
use crate::core::op::OpId;
use crate::core::replica::Replica;
use crate::core::state::State;
use crate::identity::{Identity, NodeId};
use std::cell::{Cell, RefCell};

pub const T0: u64 = 1_700_000_000_000;

pub struct World {
    pub replica: RefCell<Replica>,
    pub people: Vec<Identity>,
    /// Who signs next (an index into `people`).
    pub acting: Cell<usize>,
    pub now: Cell<u64>,
}

impl World {
    /// Alice (0) created channel `dev`; Bob (1) joined it.
    pub fn dev() -> World {
        let w = World {
            replica: RefCell::new(Replica::open()),
            people: (1..=3).map(|s| Identity::from_seed([s; 32])).collect(),
            acting: Cell::new(0),
            now: Cell::new(T0),
        };
        w.as_(0).run(|_| super::channels::create("dev", "dev work")).expect("dev channel");
        w.as_(1).run(|_| super::channels::subscribe("dev")).expect("bob joins dev");
        w
    }

    pub fn as_(&self, who: usize) -> &World {
        self.acting.set(who);
        self
    }

    pub fn id(&self, who: usize) -> NodeId {
        self.people[who].node_id()
    }

    pub fn state(&self) -> std::cell::Ref<'_, State> {
        std::cell::Ref::map(self.replica.borrow(), |r| r.state())
    }

    pub fn advance(&self, ms: u64) {
        self.now.set(self.now.get() + ms);
    }
}

impl Signer for World {
    fn read<T>(&self, f: impl FnOnce(&State) -> T) -> T {
        f(self.replica.borrow().state())
    }

    fn identity(&self) -> &Identity {
        &self.people[self.acting.get()]
    }

    fn sign(&self, intent: Intent) -> Result<OpId> {
        self.advance(1000);
        let me = &self.people[self.acting.get()];
        let op = self
            .replica
            .borrow_mut()
            .act(me, &intent.channel, intent.body, self.now.get())
            .map_err(|e| e.to_string())?;
        Ok(op.id())
    }
}
