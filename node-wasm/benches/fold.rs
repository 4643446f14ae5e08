//! Fold benchmarks: verify + apply throughput, incremental apply, the cost of
//! a late op that forces a re-fold, a full re-fold, and the tally of a
//! proposal with 1,000 voters.
//!
//! `CARGO_TARGET_DIR=... cargo bench -p node-wasm --bench fold`

// Criterion is native-only; on wasm32 (clippy --all-targets) this is empty.
#[cfg(not(target_arch = "wasm32"))]
mod native {
    use criterion::{BatchSize, Criterion, Throughput, criterion_group};
    use node_wasm::Identity;
    use node_wasm::core::hlc::Hlc;
    use node_wasm::core::op::{Funding, NewTask, OpBody, OpId, SignedOp, TaskSchema, VerifiedOp};
    use node_wasm::core::replica::Replica;

    use std::alloc::{GlobalAlloc, Layout, System};
    use std::sync::atomic::{AtomicUsize, Ordering};

    /// Counts live heap bytes so the bench can report memory per op.
    struct Counting;
    static LIVE: AtomicUsize = AtomicUsize::new(0);

    unsafe impl GlobalAlloc for Counting {
        unsafe fn alloc(&self, l: Layout) -> *mut u8 {
            LIVE.fetch_add(l.size(), Ordering::Relaxed);
            unsafe { System.alloc(l) }
        }
        unsafe fn dealloc(&self, p: *mut u8, l: Layout) {
            LIVE.fetch_sub(l.size(), Ordering::Relaxed);
            unsafe { System.dealloc(p, l) }
        }
    }

    #[global_allocator]
    static ALLOC: Counting = Counting;

    const T0: u64 = 1_700_000_000_000;
    const NOW: u64 = u64::MAX / 2;

    struct Chain {
        key: Identity,
        seq: u64,
        prev: OpId,
    }

    impl Chain {
        fn op(&mut self, ms: u64, channel: &str, body: OpBody) -> VerifiedOp {
            self.seq += 1;
            let op =
                SignedOp::create(&self.key, self.seq, self.prev, Hlc::new(ms, 0), channel, body).expect("bench op");
            self.prev = op.id();
            op
        }
    }

    /// A realistic history: one channel, `n` ops of task create/claim/start/
    /// complete cycles spread over 8 authors (owner and worker alternate).
    fn history(n: usize) -> Vec<VerifiedOp> {
        let mut chains: Vec<Chain> =
            (1..=8u8).map(|i| Chain { key: Identity::from_seed([i; 32]), seq: 0, prev: OpId::ZERO }).collect();
        let mut ops = vec![chains[0].op(T0, "dev", OpBody::ChannelCreate { description: String::new() })];
        let mut t = T0;
        let mut i = 0usize;
        while ops.len() < n {
            let owner = i % 8;
            let worker = (i + 3) % 8;
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
        ops.truncate(n);
        ops
    }

    fn bench(c: &mut Criterion) {
        let n = 10_000;
        let ops = history(n);
        let bytes: Vec<Vec<u8>> = ops.iter().map(|o| o.bytes().to_vec()).collect();

        let mut g = c.benchmark_group("fold");
        g.sample_size(10);
        g.throughput(Throughput::Elements(n as u64));
        g.bench_function("decode+verify+apply 10k ops, in order", |b| {
            b.iter_batched(
                Replica::new,
                |mut r| {
                    for op in &bytes {
                        r.receive(op, NOW).expect("valid op");
                    }
                    r
                },
                BatchSize::LargeInput,
            )
        });
        g.bench_function("apply 10k verified ops, in order", |b| {
            b.iter_batched(
                || (Replica::open(), ops.clone()),
                |(mut r, ops)| {
                    for op in ops {
                        r.receive_verified(op, NOW);
                    }
                    r
                },
                BatchSize::LargeInput,
            )
        });
        g.bench_function("apply 10k verified ops, reversed (batch)", |b| {
            b.iter_batched(
                || {
                    let mut v = ops.clone();
                    v.reverse();
                    (Replica::open(), v)
                },
                |(mut r, ops)| {
                    r.receive_batch(ops, NOW);
                    r
                },
                BatchSize::LargeInput,
            )
        });
        g.finish();

        // A late op sorting halfway back into 10k applied ops.
        let mut g = c.benchmark_group("late_op");
        g.sample_size(10);
        let mut late_author = Chain { key: Identity::from_seed([99; 32]), seq: 0, prev: OpId::ZERO };
        let mid = ops[n / 2].op().hlc.ms;
        let late = late_author.op(mid, "dev", OpBody::ChannelSubscribe);
        g.bench_function("late op re-folds ~5k of 10k ops", |b| {
            b.iter_batched(
                || {
                    let mut r = Replica::open();
                    r.receive_batch(ops.clone(), NOW);
                    r
                },
                |mut r| {
                    r.receive_verified(late.clone(), NOW);
                    r
                },
                BatchSize::LargeInput,
            )
        });
        g.finish();
    }

    fn bench_100k(c: &mut Criterion) {
        let n = 100_000;
        let before = LIVE.load(Ordering::Relaxed);
        let ops = history(n);
        let mut r = Replica::open();
        r.receive_batch(ops.clone(), NOW);
        let after = LIVE.load(Ordering::Relaxed);
        let ops_only = {
            let b = LIVE.load(Ordering::Relaxed);
            let copy = ops.clone();
            let a = LIVE.load(Ordering::Relaxed);
            drop(copy);
            a - b
        };
        // Live bytes now = the `ops` vector (kept for the bench) + the replica.
        let replica = after - before - ops_only;
        eprintln!(
            "memory: replica with {n} ops holds {} bytes live = {} bytes per op \
             (the ops alone, as decoded values with their bytes: {} bytes per op)",
            replica,
            replica / n,
            ops_only / n
        );
        drop(r);
        let mut g = c.benchmark_group("refold_100k");
        g.sample_size(10);
        g.throughput(Throughput::Elements(n as u64));
        g.bench_function("full fold of 100k verified ops", |b| {
            b.iter_batched(
                || (Replica::open(), ops.clone()),
                |(mut r, ops)| {
                    r.receive_batch(ops, NOW);
                    r
                },
                BatchSize::LargeInput,
            )
        });
        g.finish();
    }

    /// Rule `vote_outcome` with `quorum`: the tally of a proposal with
    /// 1,000 voters among 1,000 members (each with reputation on the
    /// proposal's tags), which also weighs every member for the quorum base.
    fn bench_tally(c: &mut Criterion) {
        use node_wasm::core::governance::{Proposal, ProposalStatus};
        use node_wasm::core::ledger::Account;
        use node_wasm::core::op::ProposalKind;
        use node_wasm::core::state::State;
        use std::collections::{BTreeMap, BTreeSet};
        let mut g = c.benchmark_group("tally");
        for (rules, mut st) in [("open rules", State::open()), ("default rules", State::genesis())] {
            let mut votes = BTreeMap::new();
            for i in 0..1_000u32 {
                let mut seed = [9u8; 32];
                seed[..4].copy_from_slice(&i.to_le_bytes());
                let id = Identity::from_seed(seed).node_id();
                let mut a = Account::new(1000, Hlc::new(T0, 0));
                let tags = ["rust".to_string(), "ui".to_string()];
                a.reputation.credit(T0, 10_000 + u64::from(i) * 37, &tags);
                st.ledger.accounts.insert(id, a);
                votes.insert(id, i % 3 != 0);
            }
            let p = Proposal {
                id: OpId([1; 32]),
                channel: "global".into(),
                proposer: Identity::from_seed([1; 32]).node_id(),
                kind: ProposalKind::Generic,
                title: "bench".into(),
                description: String::new(),
                tags: vec!["rust".into()],
                command: None,
                created: Hlc::new(T0, 0),
                closable_ms: T0,
                deadline_ms: T0 + 86_400_000,
                votes,
                status: ProposalStatus::Open,
                tally: None,
                closed: None,
                closed_automatically: false,
                validators: vec![],
                ratifications: BTreeSet::new(),
                execution: None,
                ballot: Default::default(),
            };
            let t = st.tally(&p, T0 + 3_600_000);
            assert_eq!(t.details.len(), 1_000);
            g.bench_function(format!("1,000 voters of 1,000 members ({rules})"), |b| {
                b.iter(|| st.tally(&p, T0 + 3_600_000))
            });
        }
        g.finish();
    }

    criterion_group!(benches, bench, bench_100k, bench_tally);
}

#[cfg(not(target_arch = "wasm32"))]
criterion::criterion_main!(native::benches);

#[cfg(target_arch = "wasm32")]
fn main() {}
