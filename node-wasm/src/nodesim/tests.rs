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
