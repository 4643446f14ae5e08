//! Which parts of the page an applied op can change, so that listeners
//! (`synapse.on('tasks', cb)`, the UI's per-domain triggers) run only when
//! their domain changed instead of after every op.
//!
//! Computed from the op body alone (plus whether the author is new, which
//! mints SP), so it is cheap enough to run on every op. It over-approximates
//! on purpose: a missed event leaves a stale view, a spare one costs a
//! re-render.

use crate::core::op::OpBody;
use crate::core::state::State;
use crate::identity::NodeId;

/// A domain of the page and of the API's events.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Domain {
    /// Tasks, auctions, team tasks and skill profiles.
    Tasks,
    /// Proposals, votes, validators, configuration, reputation.
    Governance,
    /// Balances, treasuries, escrow, minting.
    Economy,
    /// Channels and their members.
    Channels,
    /// Published keys and common tools.
    Tools,
    /// Policy modules and active policies.
    Upgrades,
    /// Peers, the rendezvous, storage and chain status (not ops).
    Network,
    /// The optional agent's suggestions and status (not ops).
    Agent,
}

impl Domain {
    pub const ALL: [Domain; 8] = [
        Domain::Tasks,
        Domain::Governance,
        Domain::Economy,
        Domain::Channels,
        Domain::Tools,
        Domain::Upgrades,
        Domain::Network,
        Domain::Agent,
    ];

    /// The event name (`synapse.on(name, cb)`).
    pub fn name(self) -> &'static str {
        match self {
            Domain::Tasks => "tasks",
            Domain::Governance => "governance",
            Domain::Economy => "economy",
            Domain::Channels => "channels",
            Domain::Tools => "tools",
            Domain::Upgrades => "upgrades",
            Domain::Network => "network",
            Domain::Agent => "agent",
        }
    }

    pub fn parse(name: &str) -> Option<Domain> {
        Domain::ALL.into_iter().find(|d| d.name() == name)
    }

    fn bit(self) -> u8 {
        1 << (self as u8)
    }
}

/// A set of domains (a bit set; `Copy`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct DomainSet(u8);

impl DomainSet {
    pub const EMPTY: DomainSet = DomainSet(0);

    /// Every domain ops can change (all but [`Domain::Network`] and
    /// [`Domain::Agent`]).
    pub const fn all_ops() -> DomainSet {
        DomainSet(0x3f)
    }

    pub fn of(domains: &[Domain]) -> DomainSet {
        DomainSet(domains.iter().fold(0, |b, d| b | d.bit()))
    }

    pub fn contains(self, d: Domain) -> bool {
        self.0 & d.bit() != 0
    }

    pub fn insert(&mut self, d: Domain) {
        self.0 |= d.bit();
    }

    pub fn union(self, other: DomainSet) -> DomainSet {
        DomainSet(self.0 | other.0)
    }

    pub fn is_empty(self) -> bool {
        self.0 == 0
    }

    pub fn iter(self) -> impl Iterator<Item = Domain> {
        Domain::ALL.into_iter().filter(move |d| self.contains(*d))
    }
}

/// The domains an op with `body` changes when applied (whoever wrote it).
/// Closing, expiring or ratifying a proposal may execute any governance
/// command (split channels and move their tasks, install a tool or a
/// policy, change the tax), so those touch every op domain.
pub fn domains_of(body: &OpBody) -> DomainSet {
    use Domain::*;
    let d = |ds: &[Domain]| DomainSet::of(ds);
    match body {
        OpBody::ChannelCreate { .. } => d(&[Channels, Economy]), // a new treasury
        OpBody::ChannelSubscribe | OpBody::ChannelUnsubscribe => d(&[Channels]),
        OpBody::TaskClaim { .. } | OpBody::TaskStart { .. } | OpBody::Bid { .. } => d(&[Tasks]),
        OpBody::TaskCreate(_) | OpBody::TaskDelete { .. } | OpBody::AuctionClose { .. } => d(&[Tasks, Economy]),
        // Payouts, taxes and reputation (which weighs votes).
        OpBody::TaskComplete { .. } | OpBody::SubTaskComplete { .. } => d(&[Tasks, Economy, Governance]),
        OpBody::SkillsSet { .. } | OpBody::TeamClaim { .. } | OpBody::TeamApply { .. } => d(&[Tasks]),
        OpBody::TeamTaskCreate(_) => d(&[Tasks, Economy]),
        // A team that starts gets its workspace channel.
        OpBody::TeamAccept { .. } => d(&[Tasks, Channels]),
        OpBody::ProposalCreate(_)
        | OpBody::Vote { .. }
        | OpBody::LinkedVote { .. }
        | OpBody::AnonymousVote { .. }
        | OpBody::VotingKeyPublish { .. } => d(&[Governance]),
        OpBody::ProposalClose { .. } | OpBody::ProposalExpire { .. } | OpBody::Ratify { .. } => {
            d(&[Tasks, Governance, Economy, Channels, Tools, Upgrades])
        }
        OpBody::KeyPublish { .. } => d(&[Tools]),
        OpBody::ToolUpkeep { .. } => d(&[Tools, Economy]),
        OpBody::ToolGrant { .. } => d(&[Tools]),
        OpBody::ModulePiece { .. } => d(&[Upgrades]),
        OpBody::Admit { .. } => d(&[Economy, Governance]),
        // Reputation and the validator set.
        OpBody::Evidence { .. } => d(&[Economy, Governance, Network]),
        // Finality is shown in the Network view.
        OpBody::Checkpoint(_) => d(&[Network]),
    }
}

/// The domains an op by `author` changes when applied to `before`: its
/// body's, plus the economy when it is the author's first op (which mints
/// the author's initial SP).
pub fn touched(before: &State, author: &NodeId, body: &OpBody) -> DomainSet {
    let mut set = domains_of(body);
    if !before.ledger.accounts.contains_key(author) {
        set.insert(Domain::Economy);
    }
    set
}

/// A change counter per domain. The ledger bumps it as ops apply; each
/// listener keeps the copy it last saw and asks what changed since, so any
/// number of listeners can follow one ledger without sharing a queue.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Generations([u64; Domain::ALL.len()]);

impl Generations {
    pub fn bump(&mut self, set: DomainSet) {
        for d in set.iter() {
            self.0[d as usize] = self.0[d as usize].wrapping_add(1);
        }
    }

    /// The domains bumped since `earlier`.
    pub fn since(&self, earlier: &Generations) -> DomainSet {
        let mut set = DomainSet::EMPTY;
        for d in Domain::ALL {
            if self.0[d as usize] != earlier.0[d as usize] {
                set.insert(d);
            }
        }
        set
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::op::{OpId, TaskId};

    #[test]
    fn names_round_trip_and_unknown_names_are_none() {
        for d in Domain::ALL {
            assert_eq!(Domain::parse(d.name()), Some(d));
        }
        assert_eq!(Domain::parse("change"), None);
        assert_eq!(Domain::parse("Tasks"), None);
    }

    #[test]
    fn each_op_names_its_domains() {
        let t = TaskId::ZERO;
        assert_eq!(domains_of(&OpBody::TaskClaim { task: t }), DomainSet::of(&[Domain::Tasks]));
        assert!(domains_of(&OpBody::TaskComplete { task: t }).contains(Domain::Economy));
        assert!(domains_of(&OpBody::Vote { proposal: OpId::ZERO, yes: true }).contains(Domain::Governance));
        assert!(!domains_of(&OpBody::Vote { proposal: OpId::ZERO, yes: true }).contains(Domain::Tasks));
        assert_eq!(domains_of(&OpBody::ChannelSubscribe), DomainSet::of(&[Domain::Channels]));
        assert_eq!(domains_of(&OpBody::KeyPublish { x25519: [0; 32] }), DomainSet::of(&[Domain::Tools]));
        let piece = OpBody::ModulePiece { module: [0; 32], index: 0, count: 1, bytes: vec![] };
        assert_eq!(domains_of(&piece), DomainSet::of(&[Domain::Upgrades]));
        // A close may execute any command: every op domain, never the
        // network or the agent (neither is made of ops).
        let close = domains_of(&OpBody::ProposalClose { proposal: OpId::ZERO });
        let not_ops = [Domain::Network, Domain::Agent];
        assert!(Domain::ALL.iter().filter(|d| !not_ops.contains(d)).all(|d| close.contains(*d)));
        assert!(not_ops.iter().all(|d| !close.contains(*d)));
        assert_eq!(close, DomainSet::all_ops());
    }

    #[test]
    fn a_first_op_also_touches_the_economy() {
        let st = State::genesis();
        let who = crate::identity::Identity::from_seed([3; 32]).node_id();
        assert!(touched(&st, &who, &OpBody::ChannelSubscribe).contains(Domain::Economy));
        assert!(!domains_of(&OpBody::ChannelSubscribe).contains(Domain::Economy));
    }

    #[test]
    fn generations_report_what_changed_since() {
        let mut g = Generations::default();
        let seen = g;
        g.bump(DomainSet::of(&[Domain::Tasks, Domain::Economy]));
        let changed = g.since(&seen);
        assert_eq!(changed.iter().collect::<Vec<_>>(), vec![Domain::Tasks, Domain::Economy]);
        assert!(g.since(&g).is_empty());
    }
}
