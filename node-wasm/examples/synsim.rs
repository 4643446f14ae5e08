//! SynapseSub simulator CLI.
//!
//! ```text
//! cargo run -p node-wasm --example synsim -- --nodes 1000 --degree 10 \
//!     --latency-ms 20 --jitter-ms 80 --messages 100 --seed 1 --mode both
//! ```
//! Flags: --nodes N --degree D --latency-ms MS --jitter-ms MS --loss P
//! --partition START-END (ms; split in halves) --churn P --churn-down-ms MS
//! --malicious P --seed S --messages M --interval-ms MS --settle-ms MS
//! --payload BYTES --mode synapsesub|flood|both
//! --crash P (fraction of honest nodes that crash once, down --churn-down-ms)
//! --crash-lost K (own messages a crash loses) --durable yes|no (whether
//! nodes store their own messages before publishing them; default yes)

use node_wasm::pubsub::Mode;
use node_wasm::pubsub::sim::{SimConfig, run};
use std::process::ExitCode;

fn parse(args: &[String]) -> Result<(SimConfig, Vec<Mode>), String> {
    let mut c = SimConfig::default();
    let mut modes = vec![Mode::SynapseSub];
    let mut it = args.iter();
    while let Some(flag) = it.next() {
        let v = it.next().ok_or_else(|| format!("{flag} needs a value"))?;
        let num = |v: &str| v.parse::<u64>().map_err(|e| format!("{flag}: {e}"));
        let frac = |v: &str| {
            v.parse::<f64>().ok().filter(|x| (0.0..=1.0).contains(x)).ok_or_else(|| format!("{flag}: want 0..=1"))
        };
        match flag.as_str() {
            "--nodes" => c.nodes = num(v)? as usize,
            "--degree" => c.degree = num(v)? as usize,
            "--latency-ms" => c.latency_ms = num(v)?,
            "--jitter-ms" => c.jitter_ms = num(v)?,
            "--loss" => c.loss = frac(v)?,
            "--partition" => {
                let (a, b) = v.split_once('-').ok_or("--partition wants START-END")?;
                c.partition = Some((num(a)?, num(b)?));
            }
            "--churn" => c.churn = frac(v)?,
            "--churn-down-ms" => c.churn_down_ms = num(v)?,
            "--malicious" => c.malicious = frac(v)?,
            "--seed" => c.seed = num(v)?,
            "--messages" => c.messages = num(v)? as usize,
            "--interval-ms" => c.publish_interval_ms = num(v)?,
            "--settle-ms" => c.settle_ms = num(v)?,
            "--payload" => c.payload_bytes = num(v)? as usize,
            "--crash" => c.crash = frac(v)?,
            "--crash-lost" => c.crash_lost = num(v)?,
            "--durable" => {
                c.durable_before_publish = match v.as_str() {
                    "yes" => true,
                    "no" => false,
                    d => return Err(format!("--durable: want yes or no, not {d}")),
                }
            }
            "--mode" => {
                modes = match v.as_str() {
                    "synapsesub" => vec![Mode::SynapseSub],
                    "flood" => vec![Mode::Flood],
                    "both" => vec![Mode::SynapseSub, Mode::Flood],
                    m => return Err(format!("unknown mode {m}")),
                }
            }
            f => return Err(format!("unknown flag {f}")),
        }
    }
    if c.nodes < 2 {
        return Err("--nodes must be at least 2".into());
    }
    Ok((c, modes))
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (cfg, modes) = match parse(&args) {
        Ok(x) => x,
        Err(e) => {
            eprintln!("synsim: {e}");
            return ExitCode::from(2);
        }
    };
    println!("{cfg:?}");
    for mode in modes {
        let report = run(SimConfig { mode, ..cfg.clone() });
        println!("\n{report}");
    }
    ExitCode::SUCCESS
}
