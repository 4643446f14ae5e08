//! The admission ticket (rule `admission_ticket`, `core::genesis`): whether
//! this identity still needs one, the command that publishes it, and the
//! status the JS API (`synapse.admission()`) and the UI show while the
//! page searches for it (`runtime::admission` drives the search).

use super::{Intent, Result};
use crate::core::genesis::ticket_valid;
use crate::core::op::OpBody;
use crate::core::reject::Reject;
use crate::core::state::State;
use crate::identity::NodeId;
use serde::Serialize;

/// The channel admission ops are signed in.
pub const CHANNEL: &str = "global";

/// The leading zero bits `me` must still find a ticket for: `None` when the
/// network needs no ticket (`admission_bits = 0`) or `me` has an account.
pub fn needed(st: &State, me: &NodeId) -> Option<u8> {
    let bits = st.params.rules.admission_bits;
    (bits > 0 && !st.ledger.accounts.contains_key(me)).then_some(bits)
}

/// Admits `me` with ticket `nonce` (an `admit` op in `global`). Refused when
/// no ticket is needed or the nonce is not a valid ticket for `me` on this
/// network.
pub fn admit(st: &State, me: &NodeId, nonce: u64) -> Result<Intent> {
    let bits = st.params.rules.admission_bits;
    if bits == 0 {
        return Err("this network admits every identity without a ticket".into());
    }
    if st.ledger.accounts.contains_key(me) {
        return Err(Reject::AlreadyAdmitted.to_string());
    }
    if !ticket_valid(&st.genesis, me, nonce, bits) {
        return Err(Reject::BadTicket { bits }.to_string());
    }
    Ok(Intent::new(CHANNEL, OpBody::Admit { nonce }))
}

/// Where this identity's admission stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Phase {
    /// The network needs no ticket (`admission_bits = 0`).
    NotNeeded,
    /// Searching for a ticket (proof of work).
    Computing,
    /// A ticket was found; its `admit` op is being signed, stored and published.
    Publishing,
    /// This identity has an account on the network.
    Admitted,
}

/// What the page knows about its own search (not in the replicated state).
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Search {
    /// Nonces tried so far.
    pub tried: u64,
    /// Hashes per second measured so far (0: not known yet).
    pub rate: f64,
    /// A valid ticket was found and is not folded yet.
    pub found: bool,
    /// The `admit` op is signed but not yet committed and published.
    pub uncommitted: bool,
}

/// `synapse.admission()`: `expected = 2^bits` tries on average; `percent` is
/// `min(99, tried · 100 / expected)` while computing and 100 once a ticket
/// is found; `seconds_left` estimates the rest from the hash rate.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct AdmissionStatus {
    pub state: Phase,
    pub bits: u8,
    pub tried: u64,
    pub expected: u64,
    pub percent: u8,
    /// Hashes per second (0 when not searching or not measured yet).
    pub rate: f64,
    /// About how many seconds the search still needs at this rate (null
    /// when not computing or the rate is not known yet).
    pub seconds_left: Option<u64>,
}

/// The status of `me`'s admission on the network of `st`.
pub fn status(st: &State, me: &NodeId, search: &Search) -> AdmissionStatus {
    let bits = st.params.rules.admission_bits;
    let expected = 1u64 << bits.min(63);
    let done = |state| AdmissionStatus {
        state,
        bits,
        tried: search.tried,
        expected,
        percent: 100,
        rate: 0.0,
        seconds_left: None,
    };
    if bits == 0 {
        return done(Phase::NotNeeded);
    }
    if st.ledger.accounts.contains_key(me) {
        return done(if search.uncommitted { Phase::Publishing } else { Phase::Admitted });
    }
    if search.found {
        return done(Phase::Publishing);
    }
    let percent = (u128::from(search.tried) * 100 / u128::from(expected)).min(99) as u8;
    let seconds_left = (search.rate > 0.0).then(|| {
        let rest = expected.saturating_sub(search.tried).max(expected / 100);
        (rest as f64 / search.rate).ceil() as u64
    });
    AdmissionStatus {
        state: Phase::Computing,
        bits,
        tried: search.tried,
        expected,
        percent,
        rate: search.rate,
        seconds_left,
    }
}

/// What the page shows while this identity is not admitted yet (`None`
/// once it is, or when no ticket is needed): "Admitting this identity to
/// the network: proof of work 43 % (about 12 s left)".
pub fn progress_sentence(s: &AdmissionStatus) -> Option<String> {
    match s.state {
        Phase::NotNeeded | Phase::Admitted => None,
        Phase::Publishing => Some("Admitting this identity to the network: ticket found, publishing it…".to_owned()),
        Phase::Computing => {
            let left = match s.seconds_left {
                Some(0 | 1) => "about 1 s left".to_owned(),
                Some(n) if n < 120 => format!("about {n} s left"),
                Some(n) => format!("about {} min left", n.div_ceil(60)),
                None => "estimating the time left".to_owned(),
            };
            Some(format!("Admitting this identity to the network: proof of work {} % ({left})", s.percent))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::genesis::{Genesis, find_ticket};
    use crate::core::replica::Replica;
    use crate::core::rules::Rules;
    use crate::identity::Identity;
    use crate::service::testkit::{T0, World};
    use crate::service::{Signer, channels};
    use std::cell::{Cell, RefCell};

    fn world(bits: u8) -> World {
        let g = Genesis { rules: Rules { admission_bits: bits, ..Rules::open() }, ..Genesis::open("ticket") };
        World {
            replica: RefCell::new(Replica::with_genesis(&g)),
            people: (1..=2).map(|s| Identity::from_seed([s; 32])).collect(),
            acting: Cell::new(0),
            now: Cell::new(T0),
        }
    }

    fn ticket(w: &World, who: usize) -> u64 {
        let (g, bits) = w.read(|st| (st.genesis, st.params.rules.admission_bits));
        find_ticket(&g, &w.id(who), bits, 0, 1 << 20).expect("a ticket within 2^20 tries")
    }

    #[test]
    fn an_identity_acts_only_after_its_admit_op() {
        let w = world(8);
        let me = w.id(0);
        assert_eq!(w.read(|st| needed(st, &me)), Some(8));
        let refused = w.as_(0).run(|_| channels::create("dev", "before")).unwrap_err();
        assert_eq!(refused, Reject::NotAdmitted.to_string());
        assert!(w.read(|st| st.ledger.accounts.is_empty()), "a refused op mints nothing");

        let nonce = ticket(&w, 0);
        // A nonce that is not a ticket is refused before anything is signed.
        let bad = (0..).find(|n| !ticket_valid(&w.read(|st| st.genesis), &me, *n, 8)).expect("a bad nonce");
        assert_eq!(w.read(|st| admit(st, &me, bad)).unwrap_err(), Reject::BadTicket { bits: 8 }.to_string());
        // Another identity's ticket does not admit this one.
        let theirs = ticket(&w, 1);
        if !ticket_valid(&w.read(|st| st.genesis), &me, theirs, 8) {
            assert!(w.read(|st| admit(st, &me, theirs)).is_err());
        }

        w.as_(0).run(|st| admit(st, &me, nonce)).expect("admitted");
        assert_eq!(w.read(|st| needed(st, &me)), None);
        assert!(w.read(|st| st.ledger.accounts.contains_key(&me)), "the admit op mints the account");
        w.as_(0).run(|_| channels::create("dev", "after")).expect("acts once admitted");
        assert!(w.read(|st| st.ledger.channels.contains_key("dev")));
        assert_eq!(w.read(|st| admit(st, &me, nonce)).unwrap_err(), Reject::AlreadyAdmitted.to_string());
        // Bob is still outside.
        assert_eq!(w.as_(1).run(|_| channels::subscribe("dev")).unwrap_err(), Reject::NotAdmitted.to_string());
    }

    #[test]
    fn a_network_without_tickets_needs_no_admission() {
        let w = world(0);
        let me = w.id(0);
        assert_eq!(w.read(|st| needed(st, &me)), None);
        assert!(w.read(|st| admit(st, &me, 0)).is_err());
        w.as_(0).run(|_| channels::create("dev", "at once")).expect("the first op admits");
        let s = w.read(|st| status(st, &me, &Search::default()));
        assert_eq!((s.state, s.percent), (Phase::NotNeeded, 100));
    }

    #[test]
    fn the_status_follows_the_search_and_the_state() {
        let w = world(10);
        let me = w.id(0);
        let at = |search: Search| w.read(|st| status(st, &me, &search));
        let s = at(Search { tried: 256, rate: 1024.0, ..Search::default() });
        assert_eq!((s.state, s.bits, s.expected, s.percent), (Phase::Computing, 10, 1024, 25));
        assert_eq!(s.seconds_left, Some(1), "768 tries left at 1024/s");
        assert_eq!(at(Search::default()).seconds_left, None, "no rate yet");
        assert_eq!(at(Search { tried: 5000, ..Search::default() }).percent, 99, "never 100 while computing");
        let found = at(Search { tried: 700, found: true, ..Search::default() });
        assert_eq!((found.state, found.percent), (Phase::Publishing, 100));
        let nonce = ticket(&w, 0);
        w.as_(0).run(|st| admit(st, &me, nonce)).expect("admitted");
        assert_eq!(at(Search { uncommitted: true, ..Search::default() }).state, Phase::Publishing);
        let s = at(Search::default());
        assert_eq!((s.state, s.percent), (Phase::Admitted, 100));
        assert_eq!(progress_sentence(&s), None, "the bar disappears once admitted");
        let json = serde_json::to_value(&s).expect("json");
        assert_eq!(json["state"], "admitted");
        assert_eq!(json["expected"], 1024);
    }

    #[test]
    fn the_sentence_says_the_percentage_and_the_time_left() {
        let at = |state, percent, seconds_left| AdmissionStatus {
            state,
            bits: 22,
            tried: 0,
            expected: 1 << 22,
            percent,
            rate: 1e6,
            seconds_left,
        };
        assert_eq!(
            progress_sentence(&at(Phase::Computing, 43, Some(3))).as_deref(),
            Some("Admitting this identity to the network: proof of work 43 % (about 3 s left)")
        );
        let s = |state, seconds| progress_sentence(&at(state, 5, seconds)).unwrap_or_default();
        assert!(s(Phase::Computing, None).ends_with("(estimating the time left)"));
        assert!(s(Phase::Computing, Some(600)).ends_with("(about 10 min left)"));
        assert!(s(Phase::Publishing, None).contains("publishing"));
        assert_eq!(progress_sentence(&at(Phase::NotNeeded, 100, None)), None);
    }
}
