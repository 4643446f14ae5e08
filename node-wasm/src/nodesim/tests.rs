//! Whole-node scenarios, small enough for every test run.

use super::*;

fn small() -> SimConfig {
    SimConfig { nodes: 12, ops: 40, op_interval_ms: 50, ..SimConfig::default() }
}

#[test]
fn sim_whole_nodes_converge_to_one_state() {
    let r = run(&small()).unwrap();
    assert!(r.converged, "{r:?}");
    assert_eq!(r.distinct_state_hashes, 1);
    assert!(r.ops_published >= 30, "{r:?}");
    assert!((r.delivery - 1.0).abs() < 1e-9, "every op everywhere: {r:?}");
    assert!(r.avg_degree >= 3.0, "{r:?}");
}

#[test]
fn sim_is_deterministic_from_its_seed() {
    let a = run(&small()).unwrap();
    let b = run(&small()).unwrap();
    assert_eq!(a, b);
    let c = run(&SimConfig { seed: 2, ..small() }).unwrap();
    assert_ne!(a.frames, c.frames, "another seed, another run");
}

#[test]
fn sim_deadline_keepers_close_auctions() {
    let r = run(&SimConfig { ops: 80, op_interval_ms: 200, ..small() }).unwrap();
    assert!(r.converged, "{r:?}");
    assert!(r.deadline_ops > 0, "an auction was closed by a keeper: {r:?}");
}

#[test]
fn sim_churn_loss_and_a_partition_still_converge() {
    let cfg = SimConfig {
        nodes: 16,
        ops: 60,
        loss: 0.05,
        churn: 0.25,
        churn_down_ms: 1_500,
        partition_ms: 1_000,
        ..SimConfig::default()
    };
    let r = run(&cfg).unwrap();
    assert!(r.churned > 0, "{r:?}");
    assert!(r.converged, "{r:?}");
    assert!((r.delivery - 1.0).abs() < 1e-9, "{r:?}");
}

#[test]
fn sim_silent_and_garbage_nodes_do_not_split_the_honest_state() {
    for behaviour in ["silent", "garbage"] {
        let cfg = SimConfig { malicious: 3, malicious_behaviour: behaviour.into(), ..small() };
        let r = run(&cfg).unwrap();
        assert!(r.converged, "{behaviour}: {r:?}");
        assert!((r.delivery - 1.0).abs() < 1e-9, "{behaviour}: {r:?}");
    }
}

#[test]
fn sim_an_equivocator_is_seen_by_every_honest_node() {
    let cfg = SimConfig { malicious: 1, malicious_behaviour: "equivocator".into(), ..small() };
    let r = run(&cfg).unwrap();
    assert!(r.converged, "{r:?}");
    assert_eq!(r.nodes_seeing_equivocation, r.honest, "{r:?}");
}

#[test]
fn sim_refuses_bad_parameters() {
    assert!(run(&SimConfig { malicious_behaviour: "nope".into(), ..small() }).is_err());
    assert!(run(&SimConfig { nodes: 1, ..small() }).is_err());
}

// ---- a network of strangers: 20 % malicious identities --------------------

/// A governance network with the default rules, but short periods from its
/// own genesis (a 2 s minimum vote, 8 s to the deadline) and an 8-bit
/// admission ticket so a test run stays fast; the honest nodes are its
/// founders. 12 honest nodes and 3 malicious ones (20 %).
fn strangers(behaviour: &str) -> SimConfig {
    use crate::core::genesis::{Genesis, GenesisConfig};
    use crate::core::rules::Rules;
    let genesis = Genesis {
        name: "strangers".into(),
        founders: vec![],
        config: GenesisConfig {
            proposal_min_voting_seconds: 2,
            proposal_auto_close_after_seconds: 8,
            ..GenesisConfig::safe()
        },
        rules: Rules { admission_bits: 8, voting_floor_seconds: 1, ..Rules::default() },
    };
    SimConfig {
        nodes: 15,
        malicious: 3,
        malicious_behaviour: behaviour.into(),
        ops: 160,
        op_interval_ms: 100,
        genesis: Some(genesis),
        workload: "governance".into(),
        ..SimConfig::default()
    }
}

/// What must hold whatever the attack: one honest state, and nothing a
/// non-founder proposed was ever executed or changed the validator set.
fn honest_outcomes_hold(r: &Report, st: &crate::core::state::State) {
    assert!(r.converged && r.distinct_state_hashes == 1, "{r:?}");
    let founder = |id: &NodeId| st.ledger.accounts.get(id).is_some_and(|a| a.founder);
    for e in &st.gov.execution_log {
        assert!(founder(&st.gov.proposals[&e.proposal].proposer), "an attacker's proposal executed: {e:?}");
        assert!(e.ratified_by.len() >= st.gov.proposals[&e.proposal].quorum(&st.params.rules));
    }
    assert_eq!(st.params.validator_set_size, 7);
    assert!(st.gov.validators.iter().all(founder), "a non-founder validator: {:?}", st.gov.validators);
    assert!(st.sp_conserved());
}

use crate::identity::NodeId;

#[test]
fn sim_sybil_swarm_flooding_votes_changes_no_honest_outcome() {
    let (r, st) = run_with_state(&strangers("sybil_voter")).unwrap();
    honest_outcomes_hold(&r, &st);
    let sybil = |id: &NodeId| st.ledger.accounts.get(id).is_some_and(|a| !a.founder);
    // The swarm paid its tickets and voted no on everything ...
    let sybil_votes: usize = st.gov.proposals.values().map(|p| p.votes.keys().filter(|v| sybil(v)).count()).sum();
    assert!(sybil_votes > 10, "the swarm voted: {sybil_votes}");
    // ... and not one of those votes counted: honest changes passed.
    for p in st.gov.proposals.values().filter_map(|p| p.tally.as_ref()) {
        assert!(p.details.iter().all(|d| d.counted != sybil(&d.voter)), "{p:?}");
    }
    assert!(st.gov.execution_log.iter().any(|e| e.result.success), "an honest config change executed");
    assert!(st.gov.config_version >= 1);
}

#[test]
fn sim_one_identity_trying_the_three_call_takeover_changes_nothing() {
    let (r, st) = run_with_state(&strangers("takeover")).unwrap();
    honest_outcomes_hold(&r, &st);
    let attacks: Vec<_> = st.gov.proposals.values().filter(|p| p.title == "one validator").collect();
    assert_eq!(attacks.len(), 3, "each attacker proposed it");
    for p in attacks {
        assert!(p.execution.is_none() && p.ratifications.is_empty(), "{p:?}");
    }
}

#[test]
fn sim_keys_ground_to_low_ids_never_enter_the_validator_set() {
    let cfg = SimConfig { malicious_low_ids: true, ..strangers("sybil_voter") };
    let (r, st) = run_with_state(&cfg).unwrap();
    honest_outcomes_hold(&r, &st);
    let (ground, founders): (Vec<_>, Vec<_>) = st.ledger.accounts.iter().partition(|(_, a)| !a.founder);
    assert_eq!(ground.len(), 3, "the ground keys were admitted");
    for (g, _) in &ground {
        assert!(founders.iter().all(|(f, _)| g < f), "every ground id is below every founder's");
    }
    let closes = st.gov.proposals.values().filter(|p| p.closed.is_some()).count();
    assert!(closes > 0, "validator sets were computed at closes");
}

#[test]
fn sim_colluding_keys_trading_tasks_earn_no_reputation_and_no_validator_seat() {
    let (r, st) = run_with_state(&strangers("task_farmer")).unwrap();
    honest_outcomes_hold(&r, &st);
    let farmers: Vec<_> = st.ledger.accounts.iter().filter(|(_, a)| !a.founder).collect();
    assert_eq!(farmers.len(), 3, "the farmers were admitted");
    let farmed = st.tasks.values().filter(|t| t.status == TaskStatus::Completed && t.reward > 0).count();
    assert!(farmed >= 2, "tasks paid between farmers: {farmed}");
    for (id, a) in farmers {
        assert_eq!(a.reputation.total, 0, "{id:?} earned reputation from its accomplices");
    }
}

/// Validators sign checkpoints every 2 s of op time. `founders` lists the
/// sim nodes that found the network (the validators: at most 7).
fn with_finality(nodes: usize, founders: &[usize]) -> SimConfig {
    SimConfig { nodes, ops: 150, op_interval_ms: 100, settle_limit_ms: 20_000, ..SimConfig::default() }
        .with_finality(2, founders)
}

#[test]
fn sim_validators_make_epochs_final_through_churn_and_loss_and_agree() {
    let cfg = SimConfig { churn: 0.3, churn_down_ms: 3_000, loss: 0.02, ..with_finality(20, &[0, 1, 2, 3, 4, 5, 6]) };
    let r = run(&cfg).unwrap();
    assert!(r.converged && r.distinct_state_hashes == 1, "{r:?}");
    assert!(r.checkpoint_votes >= 7 * 5, "validators signed: {r:?}");
    let (lo, hi) = (r.final_epoch_min.expect("every node has a final checkpoint"), r.final_epoch_max.unwrap());
    assert!(hi >= lo && r.final_hashes_agree, "{r:?}");
    // The op phase lasted 15 s: most of it is final everywhere.
    let start = crate::nodesim::node::EPOCH_MS / 2_000;
    assert!(lo >= start + 5, "final epochs: {lo}..{hi} from {start}");
}

#[test]
fn sim_validators_offline_below_quorum_stall_finality_not_ops() {
    // Seven founders, three of them silent: 4 of 7 signers, quorum 5.
    let cfg =
        SimConfig { malicious: 3, malicious_behaviour: "silent".into(), ..with_finality(10, &[0, 1, 2, 3, 7, 8, 9]) };
    let r = run(&cfg).unwrap();
    assert!(r.converged && r.distinct_state_hashes == 1, "{r:?}");
    assert!(r.ops_published >= 100 && (r.delivery - 1.0).abs() < 1e-9, "ops go on: {r:?}");
    assert!(r.checkpoint_votes > 0, "the online validators signed: {r:?}");
    assert_eq!(r.final_epoch_max, None, "nothing is final without a quorum: {r:?}");
}

#[test]
fn sim_ops_dated_in_the_future_are_neither_forwarded_nor_kept() {
    let cfg = SimConfig { malicious: 2, malicious_behaviour: "time_traveller".into(), ..small() };
    let r = run(&cfg).unwrap();
    assert!(r.converged && r.distinct_state_hashes == 1, "{r:?}");
    assert_eq!(r.future_ops_held, 0, "{r:?}");
}

#[test]
fn sim_late_joiners_start_from_snapshots_and_match_full_replayers() {
    // Nodes keep their history (archives), so early nodes replay it all;
    // the late ones fetch a checkpoint and fold only what came after.
    let cfg = SimConfig { late_joiners: 5, churn: 0.2, ..with_finality(20, &[0, 1, 2, 3, 4, 5, 6]) };
    let r = run(&cfg).unwrap();
    assert!(r.converged && r.distinct_state_hashes == 1, "{r:?}");
    assert!(r.snapshot_joins >= 5, "every late joiner started from a checkpoint: {r:?}");
    assert!(r.ops_held_min * 2 < r.ops_held_max, "late joiners hold only recent ops: {r:?}");
    assert!(r.final_hashes_agree, "{r:?}");
}

#[test]
fn sim_pruning_nodes_bound_storage_and_still_converge() {
    let cfg = SimConfig { prune: true, late_joiners: 3, churn: 0.2, ..with_finality(20, &[0, 1, 2, 3, 4, 5, 6]) };
    let r = run(&cfg).unwrap();
    assert!(r.converged && r.distinct_state_hashes == 1, "{r:?}");
    assert!(r.snapshot_joins >= 3, "late joiners could only start from a checkpoint: {r:?}");
    let archive = run(&SimConfig { prune: false, ..cfg }).unwrap();
    // Rule `prune_margin`: each node keeps the ops after the final
    // checkpoint before the last, so with epochs of 2 s in a 20 s run it
    // holds about a third less than an archive.
    assert!(r.ops_held_max * 3 < archive.ops_held_max * 2, "every node dropped what is final: {r:?} {archive:?}");
}

#[test]
fn sim_nodes_away_longer_than_peers_keep_ops_catch_up_from_a_checkpoint() {
    // Epochs of 2 s and pruning: peers drop ops two checkpoints back, so a
    // node down for 8 s returns to find every new op behind a gap. Rule
    // `catch_up_from_checkpoint` must still see that it lags (from the
    // votes behind the gap) and fetch a checkpoint.
    let cfg = SimConfig { prune: true, churn: 0.3, churn_down_ms: 8_000, ..with_finality(20, &[0, 1, 2, 3, 4, 5, 6]) };
    let r = run(&cfg).unwrap();
    assert!(r.converged && r.distinct_state_hashes == 1, "{r:?}");
    assert!(r.snapshot_joins >= 1, "returning nodes caught up from a checkpoint: {r:?}");
    assert!(r.final_hashes_agree, "{r:?}");
}

#[test]
fn sim_a_late_fork_at_a_seq_everyone_holds_still_reaches_every_node() {
    // A network without finality (a twin below a final head is ignored by
    // rule `fork_after_final`): the twin goes to one peer, catch-up must
    // carry it to all.
    let cfg = SimConfig { malicious: 1, malicious_behaviour: "late_forker".into(), ops: 120, ..small() };
    let r = run(&cfg).unwrap();
    assert!(r.converged && r.distinct_state_hashes == 1, "{r:?}");
    assert_eq!(r.nodes_seeing_equivocation, r.honest, "every honest node holds the evidence: {r:?}");
}
