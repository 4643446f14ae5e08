//! A fixed op history and the state hash it must produce on every platform.
//! The native unit tests and the in-browser suite both check it, so a
//! difference between native and wasm (or an accidental change of the
//! canonical state encoding) fails loudly.

use crate::core::ballot;
use crate::core::hlc::Hlc;
use crate::core::op::{
    AuctionTerms, Command, ConfigValue, Funding, NewProposal, NewSubTask, NewTask, NewTeamTask, OpBody, OpId,
    ProposalKind, SignedOp, TaskSchema, VerifiedOp,
};
use crate::core::replica::Replica;
use crate::core::ring::{self, VotingSecret};
use crate::identity::Identity;

/// Hex of `golden_replica().state_hash()`.
pub const GOLDEN_STATE_HASH: &str = "2a0b22a43848f68ac9471c0d4e2bce0e3625d256c9e59ce7a66e48803931827b";

const T0: u64 = 1_700_000_000_000;

struct Chain {
    key: Identity,
    seq: u64,
    prev: OpId,
}

impl Chain {
    fn new(seed: u8) -> Chain {
        Chain { key: Identity::from_seed([seed; 32]), seq: 0, prev: OpId::ZERO }
    }

    fn op(&mut self, ms: u64, channel: &str, body: OpBody) -> Option<VerifiedOp> {
        self.seq += 1;
        let op = SignedOp::create(&self.key, self.seq, self.prev, Hlc::new(ms, 0), channel, body).ok()?;
        self.prev = op.id();
        Some(op)
    }
}

fn task(title: &str, reward: u64, auction: Option<AuctionTerms>) -> OpBody {
    OpBody::TaskCreate(NewTask {
        schema: if auction.is_some() { TaskSchema::TaskV2 } else { TaskSchema::TaskV1 },
        title: title.into(),
        description: "golden".into(),
        reward,
        tags: vec!["rust".into(), "wasm".into()],
        required_tools: vec!["gh".into()],
        funding: Funding::Creator,
        auction,
    })
}

/// The golden history: channels, a paid task, a lost concurrent claim, an
/// auction with a rebid and a close, a team task run to completion, reputation
/// decay across days, governance (a weighted, executed config change and a
/// proposal without votes, a published X25519 key), and an equivocation.
pub fn golden_history() -> Vec<VerifiedOp> {
    let (mut a, mut b, mut c, mut d) = (Chain::new(11), Chain::new(12), Chain::new(13), Chain::new(14));
    let day = crate::core::reputation::DAY_MS;
    let mut out: Vec<Option<VerifiedOp>> = Vec::new();
    out.push(a.op(T0, "dev", OpBody::ChannelCreate { description: "dev".into() }));
    out.push(b.op(T0 + 1, "dev", OpBody::ChannelSubscribe));
    let t1 = a.op(T0 + 2, "dev", task("paid", 125, None));
    let t1id = t1.as_ref().map(|o| o.id()).unwrap_or_default();
    out.push(t1);
    out.push(b.op(T0 + 3, "dev", OpBody::TaskClaim { task: t1id }));
    out.push(c.op(T0 + 3, "dev", OpBody::TaskClaim { task: t1id }));
    out.push(b.op(T0 + 4, "dev", OpBody::TaskStart { task: t1id }));
    out.push(b.op(T0 + 5, "dev", OpBody::TaskComplete { task: t1id }));
    let t2 =
        a.op(T0 + day, "dev", task("auction", 0, Some(AuctionTerms { max_reward: 100, deadline_ms: T0 + day + 1000 })));
    let t2id = t2.as_ref().map(|o| o.id()).unwrap_or_default();
    out.push(t2);
    for (ch, amount, days) in [(0u8, 90, 3), (1, 70, 2), (0, 60, 4)] {
        let who = if ch == 0 { &mut b } else { &mut c };
        let ms = T0 + day + 10 + who.seq;
        out.push(who.op(ms, "dev", OpBody::Bid { task: t2id, amount, estimated_days: days }));
    }
    out.push(d.op(T0 + day + 1001, "dev", OpBody::AuctionClose { task: t2id }));
    out.push(c.op(T0 + 2 * day, "global", OpBody::SkillsSet { skills: vec!["Rust".into()] }));
    let team = a.op(
        T0 + 2 * day + 1,
        "dev",
        OpBody::TeamTaskCreate(NewTeamTask {
            title: "team".into(),
            description: String::new(),
            subtasks: vec![NewSubTask {
                title: "core".into(),
                description: String::new(),
                required_skills: vec!["rust".into()],
                reward: 40,
            }],
            coordinator_bonus: 5,
            max_team_size: 3,
        }),
    );
    let team_id = team.as_ref().map(|o| o.id()).unwrap_or_default();
    out.push(team);
    out.push(d.op(T0 + 2 * day + 2, "dev", OpBody::TeamClaim { task: team_id }));
    out.push(c.op(T0 + 2 * day + 3, "dev", OpBody::TeamApply { task: team_id }));
    out.push(d.op(T0 + 2 * day + 4, "dev", OpBody::TeamAccept { task: team_id, applicant: c.key.node_id() }));
    out.push(c.op(T0 + 2 * day + 5, "dev", OpBody::SubTaskComplete { task: team_id, index: 0 }));
    // Governance: a tagged config change approved by weight and executed,
    // and a proposal closed with no votes.
    let prop = a.op(
        T0 + 3 * day,
        "dev",
        OpBody::ProposalCreate(NewProposal {
            kind: ProposalKind::ConfigChange,
            title: "raise tax".into(),
            description: String::new(),
            tags: vec!["rust".into()],
            command: Some(Command::ConfigChange { key: "tax_bps".into(), value: ConfigValue::Int(300) }),
        }),
    );
    let prop_id = prop.as_ref().map(|o| o.id()).unwrap_or_default();
    out.push(prop);
    out.push(b.op(T0 + 3 * day + 1, "dev", OpBody::Vote { proposal: prop_id, yes: false }));
    out.push(c.op(T0 + 3 * day + 2, "dev", OpBody::Vote { proposal: prop_id, yes: true }));
    out.push(d.op(T0 + 3 * day + 3, "dev", OpBody::ProposalClose { proposal: prop_id }));
    // Rule `ratify_every_change`: three of the five validators ratify it.
    for who in [&mut a, &mut b, &mut c] {
        out.push(who.op(T0 + 3 * day + 4, "dev", OpBody::Ratify { proposal: prop_id }));
    }
    let empty = d.op(
        T0 + 3 * day + 4,
        "global",
        OpBody::ProposalCreate(NewProposal {
            kind: ProposalKind::Generic,
            title: "nobody votes".into(),
            description: String::new(),
            tags: vec![],
            command: None,
        }),
    );
    let empty_id = empty.as_ref().map(|o| o.id()).unwrap_or_default();
    out.push(empty);
    out.push(d.op(T0 + 3 * day + 5, "global", OpBody::ProposalClose { proposal: empty_id }));
    out.push(b.op(T0 + 3 * day + 6, "global", OpBody::KeyPublish { x25519: b.key.x25519_public() }));
    // Self-upgrade: the flat-tax module in two pieces (published out of
    // order), a code_upgrade ratified by a quorum of validators, and a paid
    // task completed under the new tax (5 % of 40 = 2 instead of 3 % = 1).
    let module = crate::core::upgrade::examples::FLAT_TAX;
    let hash = crate::core::upgrade::module_hash(module);
    let half = module.len() / 2;
    for (n, (i, piece)) in [(1u16, &module[half..]), (0, &module[..half])].into_iter().enumerate() {
        let body = OpBody::ModulePiece { module: hash, index: i, count: 2, bytes: piece.to_vec() };
        out.push(a.op(T0 + 4 * day + n as u64, "global", body));
    }
    let up = a.op(
        T0 + 4 * day + 2,
        "global",
        OpBody::ProposalCreate(NewProposal {
            kind: ProposalKind::CodeUpgrade,
            title: "flat tax".into(),
            description: String::new(),
            tags: vec![],
            command: Some(Command::CodeUpgrade { module_sha256: hash, policy: crate::core::upgrade::Policy::Tax }),
        }),
    );
    let up_id = up.as_ref().map(|o| o.id()).unwrap_or_default();
    out.push(up);
    out.push(b.op(T0 + 4 * day + 3, "global", OpBody::Vote { proposal: up_id, yes: true }));
    out.push(d.op(T0 + 4 * day + 4, "global", OpBody::ProposalClose { proposal: up_id }));
    for (i, who) in [&mut a, &mut b, &mut c].into_iter().enumerate() {
        out.push(who.op(T0 + 4 * day + 5 + i as u64, "global", OpBody::Ratify { proposal: up_id }));
    }
    let t3 = b.op(T0 + 4 * day + 10, "dev", task("taxed by module", 40, None));
    let t3id = t3.as_ref().map(|o| o.id()).unwrap_or_default();
    out.push(t3);
    out.push(c.op(T0 + 4 * day + 11, "dev", OpBody::TaskClaim { task: t3id }));
    out.push(c.op(T0 + 4 * day + 12, "dev", OpBody::TaskStart { task: t3id }));
    out.push(c.op(T0 + 4 * day + 13, "dev", OpBody::TaskComplete { task: t3id }));
    // None only if signing fails, which the golden hash would show.
    let _ = anonymous_ballot(&mut out, [&mut a, &mut b, &mut c, &mut d], day);
    // Immune system: d signs two ops at one seq; a publishes the evidence
    // and d is slashed.
    let fork_a = d.op(T0 + 6 * day, "global", OpBody::SkillsSet { skills: vec!["fork-a".into()] });
    if let Some(fa) = &fork_a {
        let body = OpBody::SkillsSet { skills: vec!["fork-b".into()] };
        let fork_b = SignedOp::create(&d.key, d.seq, fa.op().prev, Hlc::new(T0 + 6 * day + 1, 0), "global", body).ok();
        if let Some(fb) = &fork_b {
            let evidence = OpBody::Evidence { first: fa.bytes().to_vec(), second: fb.bytes().to_vec() };
            out.push(a.op(T0 + 6 * day + 2, "global", evidence));
        }
        out.push(fork_b);
    }
    out.push(fork_a);
    // Equivocation by e: two different ops at seq 1.
    let mut e = Chain::new(15);
    out.push(e.op(T0 + 2 * day + 6, "dev", OpBody::ChannelSubscribe));
    out.push(
        SignedOp::create(&e.key, 1, OpId::ZERO, Hlc::new(T0 + 2 * day + 7, 0), "dev", OpBody::ChannelUnsubscribe).ok(),
    );
    out.into_iter().flatten().collect()
}

/// Anonymous ballot: four voting keys, a proposal, one anonymous vote
/// (carried by a fresh key) and one linked public vote, then the close.
fn anonymous_ballot(out: &mut Vec<Option<VerifiedOp>>, people: [&mut Chain; 4], day: u64) -> Option<()> {
    let [a, b, c, d] = people;
    for who in [&mut *a, &mut *b, &mut *c, &mut *d] {
        let secret = VotingSecret::from_seed(&who.key.seed());
        let proof = ballot::prove_possession(&secret, &who.key.node_id()).ok()?;
        out.push(who.op(T0 + 5 * day, "global", OpBody::VotingKeyPublish { key: secret.public(), proof }));
    }
    let secret_ballot = a.op(
        T0 + 5 * day + 1,
        "global",
        OpBody::ProposalCreate(NewProposal {
            kind: ProposalKind::Generic,
            title: "secret ballot".into(),
            description: String::new(),
            tags: vec![],
            command: None,
        }),
    )?;
    let sb = secret_ballot.id();
    out.push(Some(secret_ballot));
    let mut so_far = Replica::open();
    for op in out.iter().flatten() {
        so_far.receive_verified(op.clone(), u64::MAX / 2);
    }
    let rings = so_far.state().gov.proposals.get(&sb)?.ballot.clone();
    let carrier = Identity::from_seed([20; 32]);
    let ring_b = *rings.ring_of.get(&b.key.node_id())?;
    let message = ballot::anonymous_message(&carrier.node_id(), true, ring_b);
    let members = &rings.rings.get(usize::from(ring_b))?.members;
    let signature = ring::sign(&VotingSecret::from_seed(&b.key.seed()), members, &sb.0, &message, &[1; 32]).ok()?;
    let body = OpBody::AnonymousVote { proposal: sb, yes: true, ring: ring_b, signature };
    out.push(SignedOp::create(&carrier, 1, OpId::ZERO, Hlc::new(T0 + 5 * day + 2, 0), "global", body).ok());
    let c_secret = VotingSecret::from_seed(&c.key.seed());
    let link =
        ring::sign(&c_secret, &[c_secret.public()], &sb.0, &ballot::link_message(&c.key.node_id()), &[2; 32]).ok()?;
    out.push(c.op(T0 + 5 * day + 3, "global", OpBody::LinkedVote { proposal: sb, yes: false, link }));
    out.push(d.op(T0 + 5 * day + 4, "global", OpBody::ProposalClose { proposal: sb }));
    Some(())
}

/// A replica fed the golden history in a fixed scrambled order.
pub fn golden_replica() -> Replica {
    let mut ops = golden_history();
    // A fixed permutation: reverse, then rotate by 5.
    ops.reverse();
    let k = 5 % ops.len().max(1);
    ops.rotate_left(k);
    let mut r = Replica::open_every(4);
    for op in ops {
        r.receive_verified(op, u64::MAX / 2);
    }
    r
}

/// Hex of the golden replica's state hash (for the browser test).
pub fn golden_state_hash_hex() -> String {
    hex::encode(golden_replica().state_hash())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn golden_history_gives_the_golden_state_hash() {
        let ops = golden_history();
        assert_eq!(ops.len(), 53);
        let mut in_order = Replica::open();
        for op in &ops {
            in_order.receive_verified(op.clone(), u64::MAX / 2);
        }
        let hash = golden_state_hash_hex();
        assert_eq!(hex::encode(in_order.state_hash()), hash);
        let s = in_order.state();
        assert!(s.sp_conserved());
        assert_eq!(in_order.equivocators().len(), 2, "e at seq 1 and d (slashed)");
        use crate::core::state::TaskStatus;
        use crate::core::teams::TeamStatus;
        let statuses: Vec<TaskStatus> = s.tasks.values().map(|t| t.status).collect();
        assert!(statuses.contains(&TaskStatus::Completed));
        assert!(statuses.contains(&TaskStatus::Claimed), "auction awarded");
        assert!(s.teams.values().all(|t| t.status == TeamStatus::Completed));
        let rejected: Vec<String> = in_order.snapshot().rejected.iter().map(|r| format!("{r:?}")).collect();
        assert_eq!(rejected.len(), 1, "the losing claim: {rejected:#?}");
        assert_eq!(s.params.tax_bps, 300, "the config change executed");
        assert_eq!(s.gov.execution_log.len(), 2);
        let up = &s.gov.execution_log[1];
        assert!(up.result.success, "{}", up.result.message);
        use crate::core::upgrade::{Policy, examples};
        let flat = crate::core::upgrade::ModuleHash(crate::core::upgrade::module_hash(examples::FLAT_TAX));
        assert_eq!(s.upgrades.policies.active.get(&Policy::Tax), Some(&flat));
        assert_eq!(s.upgrades.history.len(), 1);
        let taxed = s.tasks.values().find(|t| t.title == "taxed by module").expect("task");
        assert_eq!(taxed.status, TaskStatus::Completed);
        assert!(s.upgrades.pending.is_empty() && s.upgrades.modules.len() == 1);
        assert_eq!(s.gov.proposals.len(), 4);
        assert_eq!(s.tools.keys.len(), 1);
        // The anonymous ballot: one anonymous yes, one linked public no.
        assert_eq!(s.gov.voting_keys.len(), 4);
        let sb = s.gov.proposals.values().find(|p| p.title == "secret ballot").expect("proposal");
        let t = sb.tally.as_ref().expect("closed");
        assert_eq!((t.anonymous.total, t.anonymous.yes, t.details.len()), (1, 1, 1));
        assert_eq!(sb.ballot.public_images.len(), 1);
        // The immune system: d was slashed once, e (no account) never.
        let slashed: Vec<_> = s.ledger.accounts.values().filter(|a| a.slashed_at_seq.is_some()).collect();
        assert_eq!(slashed.len(), 1);
        assert_eq!(slashed[0].reputation.total, 0);
        assert_eq!(hash, GOLDEN_STATE_HASH, "canonical state encoding changed");
    }
}
