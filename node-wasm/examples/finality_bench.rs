//! Finality benchmark, native: snapshot join against full replay, the
//! worst op an attacker can craft with and without finality, and what a
//! node stores after pruning.
//!
//! ```text
//! cargo run --release -p node-wasm --example finality_bench -- 10000 100000 1000000
//! ```
//!
//! History: task create/claim/start/complete cycles over 8 authors, one op
//! per ms; four founders (validators) sign the newest due epoch (epochs of
//! 10 s), then 1,000 more ops follow the checkpoint. Prints markdown.

use node_wasm::Identity;
use node_wasm::core::finality::Epochs;
use node_wasm::core::genesis::{Genesis, GenesisConfig};
use node_wasm::core::hlc::Hlc;
use node_wasm::core::op::{Funding, NewTask, OpBody, OpId, SignedOp, TaskSchema, VerifiedOp};
use node_wasm::core::replica::Replica;
use node_wasm::core::rules::Rules;
use node_wasm::core::snapshot::{Record, verify};
use std::time::Instant;

const T0: u64 = 1_700_000_000_000;
const NOW: u64 = u64::MAX / 2;
const RECENT: usize = 1_000;

struct Chain {
    key: Identity,
    seq: u64,
    prev: OpId,
}

impl Chain {
    fn op(&mut self, ms: u64, channel: &str, body: OpBody) -> VerifiedOp {
        self.seq += 1;
        let op = SignedOp::create(&self.key, self.seq, self.prev, Hlc::new(ms, 0), channel, body).expect("bench op");
        self.prev = op.id();
        op
    }
}

fn genesis() -> Genesis {
    Genesis {
        name: "finality bench".into(),
        founders: (1..=4u8).map(|i| Identity::from_seed([i; 32]).node_id()).collect(),
        config: GenesisConfig::safe(),
        rules: Rules { admission_bits: 0, voting_floor_seconds: 0, epoch_seconds: 10, ..Rules::default() },
    }
}

/// `n` ops from `t`, one per ms, appended to `ops`; returns the next time.
fn cycles(chains: &mut [Chain], ops: &mut Vec<VerifiedOp>, n: usize, mut t: u64) -> u64 {
    let start = ops.len();
    let mut i = start;
    while ops.len() < start + n {
        let (owner, worker) = (i % 8, (i + 3) % 8);
        t += 1;
        let create = chains[owner].op(
            t,
            "dev",
            OpBody::TaskCreate(NewTask {
                schema: TaskSchema::TaskV1,
                title: format!("task {i}"),
                description: "benchmark task".into(),
                reward: 1,
                tags: vec!["rust".into()],
                required_tools: vec![],
                funding: Funding::Creator,
                auction: None,
            }),
        );
        let task = create.id();
        ops.push(create);
        for body in [OpBody::TaskClaim { task }, OpBody::TaskStart { task }, OpBody::TaskComplete { task }] {
            t += 1;
            ops.push(chains[worker].op(t, "dev", body));
        }
        i += 1;
    }
    ops.truncate(start + n);
    t
}

fn ms(t: Instant) -> f64 {
    t.elapsed().as_secs_f64() * 1000.0
}

fn size(ops: &[VerifiedOp]) -> usize {
    ops.iter().map(|o| o.bytes().len()).sum()
}

fn run(n: usize) {
    let g = genesis();
    let epochs = Epochs::of(&g.rules).expect("finality on");
    let mut chains: Vec<Chain> =
        (1..=8u8).map(|i| Chain { key: Identity::from_seed([i; 32]), seq: 0, prev: OpId::ZERO }).collect();
    let mut history = vec![chains[0].op(T0, "dev", OpBody::ChannelCreate { description: String::new() })];
    let t = cycles(&mut chains, &mut history, n - 1, T0);
    // The validators sign the newest due epoch, which covers the history.
    let mut signer = Replica::with_genesis(&g);
    signer.receive_batch(history.iter().cloned(), NOW);
    let now = t + 2 * epochs.len_ms() + 1;
    let mut votes = vec![];
    for c in chains.iter_mut().take(4) {
        let body = signer.checkpoint_due(&c.key.node_id(), now).expect("a founder signs");
        let v = c.op(now, "global", body);
        signer.receive_verified(v.clone(), NOW);
        votes.push(v);
    }
    signer.tick(NOW);
    let f = signer.last_final().expect("final").clone();
    assert!(f.end_ms > t, "the checkpoint covers the whole history");
    let mut recent = votes.clone();
    cycles(&mut chains, &mut recent, RECENT, now + 10);
    for op in &recent[votes.len()..] {
        signer.receive_verified(op.clone(), NOW);
    }
    let all: Vec<Vec<u8>> = history.iter().chain(&recent).map(|o| o.bytes().to_vec()).collect();
    let full_bytes: usize = all.iter().map(Vec::len).sum();

    // Full replay: decode, verify and fold every op.
    let t_full = Instant::now();
    let mut full = Replica::with_genesis(&g);
    for b in &all {
        full.receive(b, NOW).expect("valid op");
    }
    full.tick(NOW);
    let full_ms = ms(t_full);
    assert_eq!(full.state_hash(), signer.state_hash());

    // Snapshot join: verify the checkpoint, then only the recent ops.
    let (rec, snap) = signer.export_final().expect("a final checkpoint");
    let rec_bytes = rec.encode();
    let recent_bytes: Vec<Vec<u8>> = recent.iter().map(|o| o.bytes().to_vec()).collect();
    let t_join = Instant::now();
    let rec2 = Record::decode(&rec_bytes).expect("record");
    let (f2, state) = verify(&g, &rec2, &snap).expect("verifies");
    let mut joined = Replica::from_checkpoint(f2, state, rec2.certificate, 1024);
    for b in &recent_bytes {
        joined.receive(b, NOW).expect("valid op");
    }
    joined.tick(NOW);
    let join_ms = ms(t_join);
    assert_eq!(joined.state_hash(), signer.state_hash());
    let join_bytes = rec_bytes.len() + snap.len() + recent_bytes.iter().map(Vec::len).sum::<usize>();

    // The attacker's best op: without finality, dated before everything
    // (the whole history re-folds); with it, dated right at the final end
    // (only what came after re-folds; anything earlier is late).
    let mut attacker = Chain { key: Identity::from_seed([66; 32]), seq: 0, prev: OpId::ZERO };
    let early = attacker.op(T0, "dev", OpBody::ChannelSubscribe);
    let mut attacker2 = Chain { key: Identity::from_seed([67; 32]), seq: 0, prev: OpId::ZERO };
    let at_end = attacker2.op(f.end_ms, "dev", OpBody::ChannelSubscribe);
    let before = full.fold_stats().applies;
    let t_worst_final = Instant::now();
    full.receive_verified(at_end, NOW);
    let worst_final_ms = ms(t_worst_final);
    let worst_final_applies = full.fold_stats().applies - before;
    let mut open = Replica::with_genesis(&Genesis { rules: Rules { epoch_seconds: 0, ..g.rules }, ..g.clone() });
    open.receive_batch(history.iter().chain(&recent).cloned(), NOW);
    let before = open.fold_stats().applies;
    let t_worst_open = Instant::now();
    open.receive_verified(early, NOW);
    let worst_open_ms = ms(t_worst_open);
    let worst_open_applies = open.fold_stats().applies - before;

    // Storage: an archive holds every op; a pruning node its state and the
    // ops after the checkpoint.
    let held_archive = signer.store().len();
    let pruned = signer.prune().len();
    let held_pruned = signer.store().len();
    let held_bytes: usize = signer.store().iter().map(|(_, o, _)| o.bytes().len()).sum();

    println!(
        "| {n} | {:.1} MB, {full_ms:.0} ms | {:.1} MB ({:.1} MB snapshot), {join_ms:.0} ms | {worst_open_applies} applies, {worst_open_ms:.1} ms | {worst_final_applies} applies, {worst_final_ms:.1} ms | {held_archive} ops, {:.1} MB | {held_pruned} ops ({pruned} dropped), {:.2} MB ops + {:.1} MB snapshot |",
        full_bytes as f64 / 1e6,
        join_bytes as f64 / 1e6,
        snap.len() as f64 / 1e6,
        size(&history) as f64 / 1e6 + size(&recent) as f64 / 1e6,
        held_bytes as f64 / 1e6,
        snap.len() as f64 / 1e6,
    );
}

fn main() {
    let sizes: Vec<usize> = std::env::args().skip(1).filter_map(|a| a.parse().ok()).collect();
    let sizes = if sizes.is_empty() { vec![10_000, 100_000] } else { sizes };
    println!(
        "| history ops | full replay: bytes, time | snapshot join: bytes, time | worst op, no finality | worst op, finality | archive holds | pruning node holds |"
    );
    println!("|---|---|---|---|---|---|---|");
    for n in sizes {
        run(n);
    }
}
