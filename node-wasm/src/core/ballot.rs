//! The anonymous ballot of a proposal: one vote per member, no name on it.
//!
//! Rules, by name (each in `docs/PROTOCOL.md`, "Anonymous votes"):
//!
//! - **voting_key_publish**: a member publishes a Ristretto voting key with
//!   a proof that it knows the secret (a one-member ring signature bound to
//!   its identity), once; nobody can publish another's key as its own.
//! - **rings_fixed_at_open**: when a proposal is created, the members
//!   (rule `member`) that have a voting key are split by reputation tier
//!   (novice up to 50 points, intermediate up to 150, expert above) into
//!   rings of at most [`MAX_ANON_RING`] keys, sorted by key. Later
//!   reputation, keys or members change nothing for that proposal.
//! - **anonymous_vote**: a vote signed by a ring on the proposal, carried by
//!   an op of a fresh, single-use key (seq 1) that is minted nothing. The
//!   ring signature binds that key, the vote and the ring, so it cannot be
//!   moved to another op.
//! - **one_vote_per_member**: every ballot carries the member's key image
//!   for the proposal; the fold refuses an image it has seen on that
//!   proposal, anonymous or public. A ring member's public vote must
//!   therefore carry its image too (a `linked_vote`, a one-member ring
//!   signature under the key fixed at open), so nobody votes both ways.
//! - **anonymous_weight**: an anonymous vote weighs its tier (1.0, 1.5,
//!   2.0), fixed at open.
//!
//! This module is a sub-state of governance and does not import it.

use crate::codec::Writer;
use crate::core::ledger::Account;
use crate::core::op::MAX_ANON_RING;
use crate::core::reject::Reject;
use crate::core::ring::{self, KeyImage, RingSignature, VotingKey, VotingSecret};
use crate::core::rules::Rules;
use crate::identity::NodeId;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::collections::{BTreeMap, BTreeSet};

/// Rings one proposal holds at most: with [`MAX_ANON_RING`] keys each, the
/// 4,096 members with the most reputation get an anonymous ballot (the
/// bound keeps a proposal's state and its creation cost finite).
pub const MAX_ANON_RINGS: usize = 64;

/// The smallest ring a tier gets on its own (see [`rings_at_open`]).
pub const MIN_ANON_RING: usize = 4;

/// Reputation tiers of the anonymous ballot (the original's thresholds).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Tier {
    /// Up to 50 reputation points: weight 1.0.
    Novice,
    /// Up to 150 points: weight 1.5.
    Intermediate,
    /// Above 150 points: weight 2.0.
    Expert,
}

impl Tier {
    /// The tier of a reputation total (milli-points).
    pub fn of(total_milli: u64) -> Tier {
        if total_milli <= 50_000 {
            Tier::Novice
        } else if total_milli <= 150_000 {
            Tier::Intermediate
        } else {
            Tier::Expert
        }
    }

    /// Rule `anonymous_weight`, milli-units.
    pub fn weight_milli(self) -> u64 {
        match self {
            Tier::Novice => 1000,
            Tier::Intermediate => 1500,
            Tier::Expert => 2000,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Tier::Novice => "novice",
            Tier::Intermediate => "intermediate",
            Tier::Expert => "expert",
        }
    }

    fn code(self) -> u8 {
        self as u8
    }
}

/// One ring of a proposal's anonymous ballot.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AnonRing {
    pub tier: Tier,
    /// Sorted, distinct: the ring exactly as signatures hash it.
    pub members: Vec<VotingKey>,
}

/// One anonymous vote as the fold keeps it: its image names nobody.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AnonBallot {
    pub yes: bool,
    pub ring: u16,
}

/// A proposal's anonymous ballot.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Ballot {
    pub rings: Vec<AnonRing>,
    /// Ring members by identity (the ring each one is in): whose public
    /// vote must be linked.
    pub ring_of: BTreeMap<NodeId, u16>,
    /// Anonymous votes by key image.
    pub anonymous: BTreeMap<KeyImage, AnonBallot>,
    /// Images of ring members that voted publicly.
    pub public_images: BTreeSet<KeyImage>,
}

/// The anonymous part of a tally.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct AnonymousTally {
    pub total: u64,
    pub yes: u64,
    pub no: u64,
    pub yes_weight_milli: u64,
    pub no_weight_milli: u64,
    /// Tier name to `[yes, no]`.
    pub by_tier: BTreeMap<String, [u64; 2]>,
}

const POSSESSION_DOMAIN: &[u8] = b"synapse-ng/voting-key/possession/v1";
const ANONYMOUS_DOMAIN: &[u8] = b"synapse-ng/vote/anonymous/v1";
const LINK_DOMAIN: &[u8] = b"synapse-ng/vote/public-link/v1";

/// The "event" a possession proof is made on: per identity, so the image
/// it shows links to nothing else.
fn possession_event(author: &NodeId) -> [u8; 32] {
    Sha256::new().chain_update(POSSESSION_DOMAIN).chain_update(author.0).finalize().into()
}

/// Rule `voting_key_publish`: the proof that `author` holds `secret`.
pub fn prove_possession(secret: &VotingSecret, author: &NodeId) -> Result<RingSignature, ring::RingError> {
    ring::sign(secret, &[secret.public()], &possession_event(author), POSSESSION_DOMAIN, &author.0)
}

/// Checks a possession proof.
pub fn check_possession(key: &VotingKey, author: &NodeId, proof: &RingSignature) -> Result<(), Reject> {
    ring::verify(proof, &[*key], &possession_event(author), POSSESSION_DOMAIN)
        .map(|_| ())
        .map_err(|e| Reject::BadVotingKey(e.to_string()))
}

/// What an anonymous vote's ring signature signs: the op's (fresh) author,
/// the vote and the ring's index.
pub fn anonymous_message(author: &NodeId, yes: bool, ring: u16) -> Vec<u8> {
    let mut m = Vec::with_capacity(ANONYMOUS_DOMAIN.len() + 35);
    m.extend_from_slice(ANONYMOUS_DOMAIN);
    m.extend_from_slice(&author.0);
    m.push(u8::from(yes));
    m.extend_from_slice(&ring.to_be_bytes());
    m
}

/// What a public vote's link signs: its author (the vote itself may change
/// with a re-vote; the image may not).
pub fn link_message(author: &NodeId) -> Vec<u8> {
    let mut m = LINK_DOMAIN.to_vec();
    m.extend_from_slice(&author.0);
    m
}

/// Rule `rings_fixed_at_open`: the rings of a proposal created at `at_ms`.
/// A tier with fewer than [`MIN_ANON_RING`] members joins the tier below
/// (and weighs as that tier): a ring of one or two would name its voters.
/// A tier larger than [`MAX_ANON_RING`] is cut into rings of near-equal
/// size, so no ring is left tiny.
pub fn rings_at_open(
    accounts: &BTreeMap<NodeId, Account>,
    keys: &BTreeMap<NodeId, VotingKey>,
    rules: &Rules,
    at_ms: u64,
) -> Ballot {
    let mut by_tier: BTreeMap<Tier, Vec<(u64, VotingKey, NodeId)>> = BTreeMap::new();
    for (id, key) in keys {
        let Some(a) = accounts.get(id) else { continue };
        let total = a.reputation.at(at_ms).total;
        if rules.is_member(a.founder, total) {
            by_tier.entry(Tier::of(total)).or_default().push((total, *key, *id));
        }
    }
    let mut ballot = Ballot::default();
    let mut carried: Vec<(u64, VotingKey, NodeId)> = Vec::new();
    let lowest = by_tier.keys().next().copied();
    // Highest tier first, so that the cap drops the least reputed.
    for (tier, mut members) in by_tier.into_iter().rev() {
        members.append(&mut carried);
        if members.len() < MIN_ANON_RING && Some(tier) != lowest {
            carried = members;
            continue;
        }
        members.sort_by(|a, b| b.0.cmp(&a.0).then(a.1.cmp(&b.1)));
        members.truncate((MAX_ANON_RINGS - ballot.rings.len()) * MAX_ANON_RING);
        members.sort_by_key(|m| m.1);
        let rings = members.len().div_ceil(MAX_ANON_RING);
        let mut rest = &members[..];
        for k in 0..rings {
            let (chunk, tail) = rest.split_at(rest.len() / (rings - k));
            rest = tail;
            let index = ballot.rings.len() as u16;
            for (_, _, id) in chunk {
                ballot.ring_of.insert(*id, index);
            }
            ballot.rings.push(AnonRing { tier, members: chunk.iter().map(|m| m.1).collect() });
        }
    }
    ballot
}

/// (op id, ring digest) → the image a valid signature showed.
type Memo = BTreeMap<([u8; 32], [u8; 32]), Option<KeyImage>>;

thread_local! {
    /// Ring signatures already checked, by (op id, ring digest): a refold
    /// or the validator's check before forwarding then costs one lookup.
    /// A pure function's memo: any content gives the same results.
    static VERIFIED: std::cell::RefCell<Memo> = const { std::cell::RefCell::new(BTreeMap::new()) };
}

/// Entries the memo keeps before it starts over.
const MEMO_MAX: usize = 8192;

/// A ring signature's verification, memoised by `key` (the op's id).
fn verify_memo(
    key: [u8; 32],
    sig: &RingSignature,
    ring: &[VotingKey],
    event: &[u8; 32],
    msg: &[u8],
) -> Option<KeyImage> {
    let digest = ring::ring_digest(ring);
    if let Some(hit) = VERIFIED.with(|m| m.borrow().get(&(key, digest)).copied()) {
        return hit;
    }
    let r = ring::verify(sig, ring, event, msg).ok();
    VERIFIED.with(|m| {
        let mut m = m.borrow_mut();
        if m.len() >= MEMO_MAX {
            m.clear();
        }
        m.insert((key, digest), r);
    });
    r
}

impl Ballot {
    /// Rule `anonymous_vote` and `one_vote_per_member` for an anonymous vote
    /// carried by op `op_id` of `author` on `proposal`.
    pub fn anonymous_vote(
        &mut self,
        op_id: [u8; 32],
        author: &NodeId,
        proposal: &[u8; 32],
        yes: bool,
        ring: u16,
        sig: &RingSignature,
    ) -> Result<(), Reject> {
        let image = self.check_anonymous(op_id, author, proposal, yes, ring, sig)?;
        self.anonymous.insert(image, AnonBallot { yes, ring });
        Ok(())
    }

    /// The checks of [`Ballot::anonymous_vote`] without recording it (the
    /// router's validator runs them before forwarding).
    pub fn check_anonymous(
        &self,
        op_id: [u8; 32],
        author: &NodeId,
        proposal: &[u8; 32],
        yes: bool,
        ring: u16,
        sig: &RingSignature,
    ) -> Result<KeyImage, Reject> {
        let members = &self.rings.get(usize::from(ring)).ok_or(Reject::NoSuchRing(ring))?.members;
        let image = verify_memo(op_id, sig, members, proposal, &anonymous_message(author, yes, ring))
            .ok_or(Reject::BadRingSignature)?;
        if self.anonymous.contains_key(&image) || self.public_images.contains(&image) {
            return Err(Reject::AlreadyVoted);
        }
        Ok(image)
    }

    /// Rule `one_vote_per_member` for a public vote by `author`: a ring
    /// member must link it (`link`, under `key`, its voting key); others
    /// must not.
    pub fn public_vote(
        &mut self,
        op_id: [u8; 32],
        author: &NodeId,
        key: Option<&VotingKey>,
        proposal: &[u8; 32],
        link: Option<&RingSignature>,
    ) -> Result<(), Reject> {
        let member = self.ring_of.contains_key(author);
        match (member, link, key) {
            (false, None, _) => Ok(()),
            (false, Some(_), _) => Err(Reject::LinkNotExpected),
            (true, None, _) | (true, Some(_), None) => Err(Reject::LinkRequired),
            (true, Some(sig), Some(key)) => {
                let image = verify_memo(op_id, sig, &[*key], proposal, &link_message(author))
                    .ok_or(Reject::BadRingSignature)?;
                if self.anonymous.contains_key(&image) {
                    return Err(Reject::AlreadyVoted);
                }
                self.public_images.insert(image);
                Ok(())
            }
        }
    }

    /// The anonymous part of the tally.
    pub fn tally(&self) -> AnonymousTally {
        let mut t = AnonymousTally::default();
        for b in self.anonymous.values() {
            let Some(ring) = self.rings.get(usize::from(b.ring)) else { continue };
            let w = ring.tier.weight_milli();
            // Counts are bounded by the ballots a proposal can hold (4,096).
            t.total = t.total.saturating_add(1);
            let [yes, no] = t.by_tier.entry(ring.tier.name().to_owned()).or_default();
            if b.yes {
                t.yes = t.yes.saturating_add(1);
                *yes = yes.saturating_add(1);
                t.yes_weight_milli = t.yes_weight_milli.saturating_add(w);
            } else {
                t.no = t.no.saturating_add(1);
                *no = no.saturating_add(1);
                t.no_weight_milli = t.no_weight_milli.saturating_add(w);
            }
        }
        t
    }

    /// The canonical encoding (part of the state hash).
    pub fn encode_canonical(&self, w: &mut Writer) {
        w.u64(self.rings.len() as u64);
        for r in &self.rings {
            w.u8(r.tier.code()).u64(r.members.len() as u64);
            for k in &r.members {
                w.raw(&k.0);
            }
        }
        w.u64(self.ring_of.len() as u64);
        for (id, i) in &self.ring_of {
            w.raw(&id.0).u16(*i);
        }
        w.u64(self.anonymous.len() as u64);
        for (image, b) in &self.anonymous {
            w.raw(&image.0).u8(u8::from(b.yes)).u16(b.ring);
        }
        w.u64(self.public_images.len() as u64);
        for image in &self.public_images {
            w.raw(&image.0);
        }
    }
}

impl AnonymousTally {
    pub fn encode_canonical(&self, w: &mut Writer) {
        w.u64(self.total).u64(self.yes).u64(self.no).u64(self.yes_weight_milli).u64(self.no_weight_milli);
        w.u64(self.by_tier.len() as u64);
        for (tier, [y, n]) in &self.by_tier {
            w.str(tier).u64(*y).u64(*n);
        }
    }
}
