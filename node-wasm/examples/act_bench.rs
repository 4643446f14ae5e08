//! Cost of signing one own op (`Replica::act`) as the state grows, with and
//! without finality: a lone node creates one task per op, 10 ms of op time
//! apart, and (with finality) signs each due checkpoint as the browser's
//! ledger does.
//!
//! ```text
//! cargo run --release -p node-wasm --example act_bench -- 30000
//! ```

use node_wasm::Identity;
use node_wasm::core::genesis::Genesis;
use node_wasm::core::op::{Funding, NewTask, OpBody, TaskSchema};
use node_wasm::core::replica::Replica;
use node_wasm::core::rules::Rules;
use std::time::Instant;

const T0: u64 = 1_700_000_000_000;

fn task(i: usize) -> OpBody {
    OpBody::TaskCreate(NewTask {
        schema: TaskSchema::TaskV1,
        title: format!("bulk task {i}"),
        description: String::new(),
        reward: 0,
        tags: vec![format!("t{}", i % 7)],
        required_tools: vec![],
        funding: Funding::Creator,
        auction: None,
    })
}

fn run(n: usize, epoch_seconds: u64) {
    let me = Identity::from_seed([1; 32]);
    let g = Genesis {
        founders: vec![me.node_id()],
        rules: Rules { epoch_seconds, ..Rules::open() },
        ..Genesis::open("act bench")
    };
    let mut r = Replica::with_genesis(&g);
    let mut now = T0;
    r.act(&me, "bulk", OpBody::ChannelCreate { description: String::new() }, now).expect("channel");
    let (mut act_ms, mut tick_ms) = (0.0, 0.0);
    let mut window = Vec::new();
    for i in 0..n {
        now += 10;
        let t = Instant::now();
        r.act(&me, "bulk", task(i), now).expect("task");
        let a = t.elapsed().as_secs_f64() * 1e3;
        act_ms += a;
        let t = Instant::now();
        if let Some(body) = r.checkpoint_due(&me.node_id(), now) {
            r.act(&me, "global", body, now).expect("vote");
        }
        r.tick(now);
        tick_ms += t.elapsed().as_secs_f64() * 1e3;
        window.push(a);
        if (i + 1) % (n / 5).max(1) == 0 {
            window.sort_by(|a, b| a.total_cmp(b));
            let p50 = window[window.len() / 2];
            println!(
                "| {} | {} | {p50:.3} | {:.3} | {:.1} | {:.1} |",
                if epoch_seconds == 0 { "off" } else { "on" },
                i + 1,
                window[window.len() * 99 / 100],
                act_ms,
                tick_ms
            );
            window.clear();
        }
    }
}

fn main() {
    let n = std::env::args().nth(1).and_then(|a| a.parse().ok()).unwrap_or(30_000);
    println!("| finality | tasks | act p50 (ms) | act p99 (ms) | act total (ms) | votes + tick total (ms) |");
    println!("|---|---|---|---|---|---|");
    run(n, 0);
    run(n, 5);
}
