//! The whole-node simulator: N full nodes (peer manager, SynapseSub router,
//! replica, deadline keeper) on simulated links with latency, jitter, loss,
//! a partition and churn, driven by simulated time and deterministic from a
//! seed. It reports delivery, latency, convergence time and whether every
//! honest node ends with the same state hash.
//!
//! Everything above the browser is the real code; only the
//! RTCPeerConnection is a [`FakeBrowser`](crate::peers::fake::FakeBrowser)
//! and the network a [`Net`]. Attack scenarios plug in a
//! [`behaviour::Behaviour`] for some nodes.
//!
//! CLI: `cargo run --release -p node-wasm --features sim --example nodesim`.

pub mod behaviour;
pub mod node;

#[cfg(test)]
mod tests;

use crate::core::genesis::Genesis;
use crate::core::governance::ProposalStatus;
use crate::core::op::{
    AuctionTerms, Command, ConfigValue, Funding, NewProposal, NewTask, OpBody, ProposalKind, TaskSchema,
};
use crate::core::state::{AuctionStatus, TaskStatus};
use crate::peers::NodeConfig;
use crate::peers::net::{Net, NetConfig};
use crate::pubsub::rng::SplitMix64;
use behaviour::Behaviour;
use node::{Arrivals, EPOCH_MS, FullNode};
use serde::Serialize;
use std::cell::RefCell;
use std::collections::BTreeSet;
use std::rc::Rc;

/// The channel the workload uses.
pub const SIM_CHANNEL: &str = "sim";

/// Simulation parameters (the CLI flags of `examples/nodesim.rs`).
#[derive(Debug, Clone)]
pub struct SimConfig {
    pub nodes: usize,
    pub seed: u64,
    pub latency_ms: u64,
    pub jitter_ms: u64,
    /// Probability a frame's first transmission is lost (costs a
    /// retransmission delay).
    pub loss: f64,
    /// Members the rendezvous lists to each joiner.
    pub welcome: usize,
    /// Peers learned from records are dialled up to this many.
    pub target_degree: usize,
    /// One node joins every this many ms.
    pub join_interval_ms: u64,
    /// Ops published by random honest nodes.
    pub ops: usize,
    pub op_interval_ms: u64,
    /// Fraction of honest nodes that go offline once during the op phase.
    pub churn: f64,
    pub churn_down_ms: u64,
    /// Split the network in two halves for this long, mid op phase.
    pub partition_ms: u64,
    /// Nodes running `malicious_behaviour` (the last ones).
    pub malicious: usize,
    pub malicious_behaviour: String,
    /// Give up converging after this long past the last op.
    pub settle_limit_ms: u64,
    /// The network's genesis (`None`: one with every safeguard off). With
    /// no founders listed, the honest nodes are its founders.
    pub genesis: Option<Genesis>,
    /// What honest nodes do: `tasks` (tasks, claims, auctions) or
    /// `governance` (proposals, votes, closes, ratifications).
    pub workload: String,
    /// The malicious nodes sign their ops with keys ground to the lowest
    /// node ids (below every honest one), as an attacker would to win the
    /// validator set's tie-break.
    pub malicious_low_ids: bool,
    /// Nodes drop ops below each final checkpoint (rules `prune_final`,
    /// `final_floor`) instead of keeping the whole history.
    pub prune: bool,
    /// The last this many honest nodes join only after the op phase, from
    /// a peer's final checkpoint (snapshot join).
    pub late_joiners: usize,
}

impl SimConfig {
    /// A network with finality: the default rules with no admission work,
    /// epochs of `epoch_seconds`, and sim nodes `founders` as its founders
    /// (the validators, at most `validator_set_size` of them).
    pub fn with_finality(self, epoch_seconds: u64, founders: &[usize]) -> SimConfig {
        use crate::core::genesis::GenesisConfig;
        use crate::core::rules::Rules;
        let genesis = Genesis {
            name: "finality".into(),
            founders: founders.iter().map(|&i| crate::peers::net::sim_identity(i).node_id()).collect(),
            config: GenesisConfig::safe(),
            rules: Rules { admission_bits: 0, voting_floor_seconds: 1, epoch_seconds, ..Rules::default() },
        };
        SimConfig { genesis: Some(genesis), ..self }
    }
}

impl Default for SimConfig {
    fn default() -> Self {
        SimConfig {
            nodes: 50,
            seed: 1,
            latency_ms: 20,
            jitter_ms: 10,
            loss: 0.0,
            welcome: 8,
            target_degree: 8,
            join_interval_ms: 20,
            ops: 100,
            op_interval_ms: 50,
            churn: 0.0,
            churn_down_ms: 3_000,
            partition_ms: 0,
            malicious: 0,
            malicious_behaviour: "silent".into(),
            settle_limit_ms: 60_000,
            genesis: None,
            workload: "tasks".into(),
            malicious_low_ids: false,
            prune: false,
            late_joiners: 0,
        }
    }
}

/// What a run measured.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Report {
    pub nodes: usize,
    pub honest: usize,
    pub malicious: usize,
    pub ops_published: usize,
    /// Ops a node's own replica refused before signing (e.g. claiming a
    /// task it had not heard of yet).
    pub ops_refused_locally: usize,
    /// Share of (honest op, honest online node) pairs folded at the end.
    pub delivery: f64,
    pub latency_p50_ms: u64,
    pub latency_p99_ms: u64,
    pub latency_max_ms: u64,
    /// Every honest online node holds the same state hash.
    pub converged: bool,
    /// From the last op to the moment all honest states were equal.
    pub convergence_ms: Option<u64>,
    pub distinct_state_hashes: usize,
    pub avg_degree: f64,
    pub frames: u64,
    pub bytes_per_node_per_op: u64,
    /// Ops the deadline keepers published (auction closes).
    pub deadline_ops: u64,
    /// Auctions whose deadline passed and that a close op ended.
    pub auctions_closed: usize,
    /// Ops honest validators rejected.
    pub invalid_ops_rejected: u64,
    /// Honest nodes that recorded an equivocator.
    pub nodes_seeing_equivocation: usize,
    pub churned: usize,
    pub sim_ms: u64,
    /// Checkpoints the honest validators signed.
    pub checkpoint_votes: u64,
    /// The lowest and highest last final epoch over the honest online
    /// nodes (`None`: some node has none).
    pub final_epoch_min: Option<u64>,
    pub final_epoch_max: Option<u64>,
    /// Every honest node whose last final epoch is the highest one holds
    /// the same final state hash.
    pub final_hashes_agree: bool,
    /// Ops the honest replicas hold back for being too far in the future.
    pub future_ops_held: usize,
    /// Checkpoints honest nodes adopted from peers (snapshot join).
    pub snapshot_joins: u64,
    /// Ops held in the largest and smallest honest replica.
    pub ops_held_max: usize,
    pub ops_held_min: usize,
}

/// Runs one simulation.
pub fn run(cfg: &SimConfig) -> Result<Report, String> {
    run_with_state(cfg).map(|(r, _)| r)
}

/// Runs one simulation; also returns the state the first honest node
/// ends with (equal to every honest node's when the report says so).
pub fn run_with_state(cfg: &SimConfig) -> Result<(Report, crate::core::state::State), String> {
    let malicious = cfg.malicious.min(cfg.nodes);
    if behaviour::by_name(&cfg.malicious_behaviour).is_none() {
        return Err(format!(
            "unknown behaviour {:?}: use honest, silent, garbage, equivocator, sybil_voter, takeover, task_farmer, time_traveller or late_forker",
            cfg.malicious_behaviour
        ));
    }
    if cfg.nodes < 2 {
        return Err("at least 2 nodes".into());
    }
    if !["tasks", "governance"].contains(&cfg.workload.as_str()) {
        return Err(format!("unknown workload {:?}: use tasks or governance", cfg.workload));
    }
    let genesis = match &cfg.genesis {
        None => Genesis::open("sim"),
        Some(g) if g.founders.is_empty() => Genesis {
            founders: (0..cfg.nodes - malicious)
                .take(64)
                .map(|i| crate::peers::net::sim_identity(i).node_id())
                .collect(),
            ..g.clone()
        },
        Some(g) => g.clone(),
    };
    genesis.validate()?;
    let mut ground = if cfg.malicious_low_ids { low_id_identities(malicious, &genesis) } else { vec![] }.into_iter();
    let arrivals = Rc::new(RefCell::new(Arrivals::default()));
    let apps: Vec<FullNode> = (0..cfg.nodes)
        .map(|i| {
            let b: Box<dyn Behaviour> = if i >= cfg.nodes - malicious {
                behaviour::by_name(&cfg.malicious_behaviour).unwrap_or(Box::new(behaviour::Honest))
            } else {
                Box::new(behaviour::Honest)
            };
            let seed = cfg.seed ^ (i as u64) << 20;
            let identity = match (i >= cfg.nodes - malicious).then(|| ground.next()).flatten() {
                Some(ground) => ground,
                None => crate::peers::net::sim_identity(i),
            };
            FullNode::new(identity, &genesis, b, arrivals.clone(), seed)
        })
        .collect();
    let peer_cfg = NodeConfig { target_degree: cfg.target_degree, genesis: genesis.hash().0, ..NodeConfig::default() };
    let net_cfg = NetConfig {
        latency_ms: cfg.latency_ms,
        jitter_ms: cfg.jitter_ms,
        loss: cfg.loss,
        welcome: Some(cfg.welcome),
        seed: cfg.seed,
    };
    let mut net = Net::with_apps(peer_cfg, net_cfg, apps);
    let mut rng = SplitMix64::new(cfg.seed);
    let late: Vec<usize> = (0..cfg.nodes - malicious).rev().take(cfg.late_joiners).collect();
    for i in 0..cfg.nodes {
        net.nodes[i].app.prune = cfg.prune;
    }

    // Join phase.
    for i in 0..cfg.nodes {
        if late.contains(&i) {
            net.go_silent(i);
            continue;
        }
        net.join(i);
        let t = net.now + cfg.join_interval_ms;
        net.run_until(t);
    }
    let t = net.now + 3_000;
    net.run_until(t);
    let honest: Vec<usize> = (0..cfg.nodes).filter(|&i| net.nodes[i].app.honest()).collect();
    let Some(&first) = honest.first() else { return Err("no honest node".into()) };
    net_act(&mut net, first, SIM_CHANNEL, OpBody::ChannelCreate { description: "simulation".into() })
        .map_err(|e| format!("creating the channel: {e}"))?;
    let t = net.now + 2_000;
    net.run_until(t);

    // Op phase, with churn and an optional partition.
    let op_start = net.now;
    let phase = cfg.ops as u64 * cfg.op_interval_ms;
    let candidates: Vec<usize> = honest.iter().copied().filter(|&i| i != first).collect();
    let k = (candidates.len() as f64 * cfg.churn).round() as usize;
    let mut churn_plan: Vec<(u64, usize)> = vec![];
    for i in rng.choose(&candidates, k) {
        churn_plan.push((op_start + rng.below(phase.max(1)), i));
    }
    churn_plan.sort();
    let churned = churn_plan.len();
    let mut back: Vec<(u64, usize)> = vec![];
    let partition = (cfg.partition_ms > 0).then(|| (op_start + phase / 4, op_start + phase / 4 + cfg.partition_ms));
    let mut partitioned = false;
    let (mut published, mut refused) = (0usize, 0usize);
    for k in 0..cfg.ops {
        let at = op_start + k as u64 * cfg.op_interval_ms;
        net.run_until(at);
        while let Some(&(t, i)) = churn_plan.first()
            && t <= net.now
        {
            churn_plan.remove(0);
            net.go_offline(i);
            back.push((t + cfg.churn_down_ms, i));
        }
        back.retain(|&(t, i)| {
            if t <= net.now {
                net.come_online(i);
                net.nodes[i].app.restart(cfg.seed ^ t, net.now);
                false
            } else {
                true
            }
        });
        if let Some((from, to)) = partition {
            if !partitioned && net.now >= from && net.now < to {
                split(&mut net, true);
                partitioned = true;
            } else if partitioned && net.now >= to {
                split(&mut net, false);
                partitioned = false;
            }
        }
        let online: Vec<usize> = honest.iter().copied().filter(|&i| net.nodes[i].online).collect();
        if online.is_empty() {
            continue;
        }
        let i = online[rng.below(online.len() as u64) as usize];
        let body = if cfg.workload == "governance" {
            governance_workload(&net.nodes[i].app, &mut rng, net.now)
        } else {
            workload(&net.nodes[i].app, &mut rng, net.now)
        };
        match net_act(&mut net, i, SIM_CHANNEL, body) {
            Ok(()) => published += 1,
            Err(_) => refused += 1,
        }
    }
    let last_op = net.now;
    if partitioned {
        split(&mut net, false);
    }
    for (_, i) in back.drain(..) {
        net.come_online(i);
        net.nodes[i].app.restart(cfg.seed ^ 7, net.now);
    }
    // Late joiners start from a peer's checkpoint.
    for &i in &late {
        net.nodes[i].app.join_from_snapshot();
        net.come_online(i);
        let t = net.now + cfg.join_interval_ms;
        net.run_until(t);
    }

    // Settle: run until every honest node holds the same state.
    let mut convergence_ms = None;
    let mut distinct = 0;
    let deadline = last_op + cfg.settle_limit_ms;
    while net.now < deadline {
        let t = net.now + 250;
        net.run_until(t);
        distinct = distinct_hashes(&mut net, &honest);
        if distinct == 1 {
            convergence_ms = Some(net.now - last_op);
            break;
        }
    }

    let a = arrivals.borrow();
    let mut lat = a.latencies.clone();
    lat.sort_unstable();
    let pct = |p: usize| if lat.is_empty() { 0 } else { lat[(lat.len() - 1) * p / 100] };
    let honest_ids: BTreeSet<_> = honest.iter().map(|&i| net.id(i)).collect();
    let honest_ops = a
        .published
        .keys()
        .filter(|id| net.nodes[first].app.replica.store().get(id).is_some_and(|v| honest_ids.contains(&v.op().author)))
        .count();
    let delivered: u64 = honest
        .iter()
        .map(|&i| {
            let r = &net.nodes[i].app.replica;
            // Pruned under a final checkpoint counts: the state has it.
            let has = |id: &crate::core::op::OpId| {
                r.contains(id) || a.chain_pos.get(id).is_some_and(|(au, s)| r.is_final(au, *s))
            };
            a.published.keys().filter(|id| has(id)).count() as u64
        })
        .sum();
    let total_pairs = (a.published.len() * honest.len()).max(1) as f64;
    let degree: usize = (0..cfg.nodes).map(|i| net.proven(i).len()).sum();
    let report = Report {
        nodes: cfg.nodes,
        honest: honest.len(),
        malicious,
        ops_published: published,
        ops_refused_locally: refused,
        delivery: delivered as f64 / total_pairs,
        latency_p50_ms: pct(50),
        latency_p99_ms: pct(99),
        latency_max_ms: lat.last().copied().unwrap_or(0),
        converged: convergence_ms.is_some(),
        convergence_ms,
        distinct_state_hashes: distinct,
        avg_degree: degree as f64 / cfg.nodes as f64,
        frames: net.frames,
        bytes_per_node_per_op: net.bytes / (cfg.nodes as u64 * (published as u64).max(1)),
        deadline_ops: honest.iter().map(|&i| net.nodes[i].app.deadline_ops).sum(),
        auctions_closed: net.nodes[first]
            .app
            .replica
            .state()
            .tasks
            .values()
            .filter(|t| t.auction.as_ref().is_some_and(|a| !matches!(a.status, AuctionStatus::Open)))
            .count(),
        invalid_ops_rejected: honest.iter().map(|&i| net.nodes[i].app.invalid).sum(),
        nodes_seeing_equivocation: honest
            .iter()
            .filter(|&&i| !net.nodes[i].app.replica.equivocators().is_empty())
            .count(),
        churned,
        sim_ms: net.now,
        checkpoint_votes: honest.iter().map(|&i| net.nodes[i].app.checkpoint_votes).sum(),
        final_epoch_min: None,
        final_epoch_max: None,
        final_hashes_agree: true,
        future_ops_held: honest.iter().map(|&i| net.nodes[i].app.replica.held_len()).sum(),
        snapshot_joins: honest.iter().map(|&i| net.nodes[i].app.snapshot_joins).sum(),
        ops_held_max: honest.iter().map(|&i| net.nodes[i].app.replica.store().len()).max().unwrap_or(0),
        ops_held_min: honest.iter().map(|&i| net.nodes[i].app.replica.store().len()).min().unwrap_or(0),
    };
    let finals: Vec<_> = honest
        .iter()
        .filter(|&&i| net.nodes[i].online)
        .map(|&i| net.nodes[i].app.replica.last_final().map(|f| (f.epoch, f.state_hash)))
        .collect();
    let report = Report {
        final_epoch_min: finals.iter().map(|f| f.map(|f| f.0)).min().flatten(),
        final_epoch_max: finals.iter().filter_map(|f| f.map(|f| f.0)).max(),
        final_hashes_agree: {
            let top = finals.iter().filter_map(|f| *f).max_by_key(|f| f.0);
            finals.iter().filter_map(|f| *f).filter(|f| Some(f.0) == top.map(|t| t.0)).all(|f| Some(f) == top)
        },
        ..report
    };
    let _ = honest_ops;
    Ok((report, net.nodes[first].app.replica.state().clone()))
}

/// Node `i` signs and publishes `body` on `channel`; its outputs run.
fn net_act(net: &mut Net<FullNode>, i: usize, channel: &str, body: OpBody) -> Result<(), String> {
    let now = net.now;
    net.with_node(i, |peers, app| app.act(peers, channel, body, now).map(|_| ()))
}

/// The next op of the workload at node `app`: mostly tasks, some claims
/// of open tasks, some auctions (which the deadline keepers close).
fn workload(app: &FullNode, rng: &mut SplitMix64, now: u64) -> OpBody {
    let roll = rng.below(10);
    if roll < 2 {
        let me = app.id();
        let open: Vec<_> = app
            .replica
            .state()
            .tasks
            .values()
            .filter(|t| t.status == TaskStatus::Open && t.owner != me)
            .map(|t| t.id)
            .collect();
        if !open.is_empty() {
            let task = open[rng.below(open.len() as u64) as usize];
            return OpBody::TaskClaim { task };
        }
    }
    let auction = (roll == 9).then_some(AuctionTerms { max_reward: 5, deadline_ms: EPOCH_MS + now + 3_000 });
    OpBody::TaskCreate(NewTask {
        schema: TaskSchema::TaskV2,
        title: format!("task {}", rng.next_u64() % 1_000_000),
        description: String::new(),
        reward: 0,
        tags: vec!["sim".into()],
        required_tools: vec![],
        funding: Funding::Creator,
        auction,
    })
}

/// `k` identities with the lowest node ids among 20,000 candidate keys, all
/// below every founder's: what grinding keys for the tie-break buys.
fn low_id_identities(k: usize, genesis: &Genesis) -> Vec<crate::identity::Identity> {
    let mut keys: Vec<(crate::identity::NodeId, [u8; 32])> = (0..20_000u32)
        .map(|i| {
            let mut seed = [0xa5u8; 32];
            seed[..4].copy_from_slice(&i.to_le_bytes());
            (crate::identity::Identity::from_seed(seed).node_id(), seed)
        })
        .filter(|(id, _)| genesis.founders.iter().all(|f| id < f))
        .collect();
    keys.sort();
    keys.into_iter().take(k).map(|(_, seed)| crate::identity::Identity::from_seed(seed)).collect()
}

/// The next op of the governance workload at honest node `app`, the first
/// that applies: ratify a pending proposal it validates, vote on an open
/// one (yes on a founder's, no on anyone else's: honest members judge),
/// close a founder's whose voting period is over, else propose a tax
/// change or a generic proposal.
fn governance_workload(app: &FullNode, rng: &mut SplitMix64, now: u64) -> OpBody {
    let st = app.replica.state();
    let me = app.id();
    let wall = EPOCH_MS + now;
    let founder = |id: &crate::identity::NodeId| st.ledger.accounts.get(id).is_some_and(|a| a.founder);
    let ps: Vec<_> = st.gov.proposals.values().collect();
    if let Some(p) = ps.iter().find(|p| {
        p.status == ProposalStatus::PendingRatification && p.validators.contains(&me) && !p.ratifications.contains(&me)
    }) {
        return OpBody::Ratify { proposal: p.id };
    }
    if let Some(p) =
        ps.iter().find(|p| p.status == ProposalStatus::Open && !p.votes.contains_key(&me) && wall <= p.deadline_ms)
    {
        return OpBody::Vote { proposal: p.id, yes: founder(&p.proposer) };
    }
    let closable: Vec<_> = ps
        .iter()
        .filter(|p| p.status == ProposalStatus::Open && founder(&p.proposer) && p.closable_ms <= wall)
        .collect();
    if !closable.is_empty() && rng.below(2) == 0 {
        return OpBody::ProposalClose { proposal: closable[rng.below(closable.len() as u64) as usize].id };
    }
    let open_mine = ps.iter().filter(|p| p.status == ProposalStatus::Open).count();
    let (kind, command) = if open_mine < 3 && rng.below(2) == 0 {
        let v = 100 + rng.below(300);
        (ProposalKind::ConfigChange, Some(Command::ConfigChange { key: "tax_bps".into(), value: ConfigValue::Int(v) }))
    } else {
        (ProposalKind::Generic, None)
    };
    OpBody::ProposalCreate(NewProposal {
        kind,
        title: format!("proposal {}", rng.next_u64() % 1_000_000),
        description: String::new(),
        tags: vec![],
        command,
    })
}

/// Cuts (or heals) every link between the two halves of the network.
fn split(net: &mut Net<FullNode>, cut: bool) {
    let n = net.nodes.len();
    for a in 0..n / 2 {
        for b in n / 2..n {
            if cut {
                net.cut(a, b);
            } else {
                net.heal(a, b);
            }
        }
    }
}

/// How many different state hashes the honest online nodes hold.
fn distinct_hashes(net: &mut Net<FullNode>, honest: &[usize]) -> usize {
    let mut seen = BTreeSet::new();
    for &i in honest {
        if net.nodes[i].online {
            seen.insert(net.nodes[i].app.replica.state_hash());
        }
    }
    seen.len()
}
