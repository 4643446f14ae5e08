//! Whole-node simulator CLI: N full nodes (peer manager, router, replica,
//! deadline keeper) on simulated links, deterministic from `--seed`.
//!
//! ```text
//! cargo run --release -p node-wasm --features sim --example nodesim -- \
//!     --nodes 1000 --ops 300 --latency-ms 20 --jitter-ms 10 --seed 1
//! ```
//! Flags: --nodes N --seed S --latency-ms MS --jitter-ms MS --loss P
//! --welcome K (members the rendezvous lists to a joiner) --degree D
//! (target degree) --join-interval-ms MS --ops N --op-interval-ms MS
//! --churn P --churn-down-ms MS --partition-ms MS --malicious N
//! --behaviour silent|garbage|equivocator|time_traveller|... --settle-limit-ms MS
//! --epoch-seconds S (finality: the first --validators N nodes, default 7,
//! found the network and sign checkpoints) --prune 0|1 --late-joiners N
//! (join after the op phase from a peer's checkpoint)
//!
//! Prints the report as JSON (and the wall time it took); exits 1 if the
//! honest nodes did not converge.

use node_wasm::nodesim::{SimConfig, run};
use std::process::ExitCode;
use std::time::Instant;

fn parse(args: &[String]) -> Result<SimConfig, String> {
    let mut c = SimConfig::default();
    let (mut epoch, mut validators) = (0, 7);
    let mut it = args.iter();
    while let Some(flag) = it.next() {
        let v = it.next().ok_or_else(|| format!("{flag} needs a value"))?;
        let num = |v: &str| v.parse::<u64>().map_err(|e| format!("{flag}: {e}"));
        let frac = |v: &str| {
            v.parse::<f64>().ok().filter(|x| (0.0..=1.0).contains(x)).ok_or_else(|| format!("{flag}: want 0..=1"))
        };
        match flag.as_str() {
            "--nodes" => c.nodes = num(v)? as usize,
            "--seed" => c.seed = num(v)?,
            "--latency-ms" => c.latency_ms = num(v)?,
            "--jitter-ms" => c.jitter_ms = num(v)?,
            "--loss" => c.loss = frac(v)?,
            "--welcome" => c.welcome = num(v)? as usize,
            "--degree" => c.target_degree = num(v)? as usize,
            "--join-interval-ms" => c.join_interval_ms = num(v)?,
            "--ops" => c.ops = num(v)? as usize,
            "--op-interval-ms" => c.op_interval_ms = num(v)?,
            "--churn" => c.churn = frac(v)?,
            "--churn-down-ms" => c.churn_down_ms = num(v)?,
            "--partition-ms" => c.partition_ms = num(v)?,
            "--malicious" => c.malicious = num(v)? as usize,
            "--behaviour" => c.malicious_behaviour = v.clone(),
            "--settle-limit-ms" => c.settle_limit_ms = num(v)?,
            "--epoch-seconds" => epoch = num(v)?,
            "--validators" => validators = num(v)? as usize,
            "--prune" => c.prune = num(v)? != 0,
            "--late-joiners" => c.late_joiners = num(v)? as usize,
            other => return Err(format!("unknown flag {other}")),
        }
    }
    if epoch > 0 {
        let founders: Vec<usize> = (0..validators.min(c.nodes)).collect();
        c = c.with_finality(epoch, &founders);
    }
    Ok(c)
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let cfg = match parse(&args) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("nodesim: {e}");
            return ExitCode::from(2);
        }
    };
    let started = Instant::now();
    match run(&cfg) {
        Ok(r) => {
            println!("{}", serde_json::to_string_pretty(&r).unwrap_or_default());
            println!("wall_s: {:.1}", started.elapsed().as_secs_f64());
            if r.converged { ExitCode::SUCCESS } else { ExitCode::FAILURE }
        }
        Err(e) => {
            eprintln!("nodesim: {e}");
            ExitCode::from(2)
        }
    }
}
