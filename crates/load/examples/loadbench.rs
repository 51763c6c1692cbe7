//! Benchmarks `podscale emulate --instant` capacity and `podscale load` against wrk,
//! from one binary so that a release build needs neither the CLI nor kube.
//!
//! ```text
//! cargo run --release -p podscale-load --example loadbench -- serve [--instant]
//! cargo run --release -p podscale-load --example loadbench -- load URL (rate R | closed N) SECONDS
//! ```
//! `serve` prints `listening ADDR` and serves until killed (the model file in
//! `LOADBENCH_MODEL` if set). `load` sends `LOADBENCH_MAX_TOKENS` (16) per request,
//! streamed when `LOADBENCH_STREAM` is set, over HTTP/2 (h2c) when `LOADBENCH_HTTP2` is
//! set (the optional last argument is then the connection count, as for HTTP/1.1).
//! `load` prints the JSON report
//! and the process's peak RSS (VmHWM). `crates/load/bench.sh` runs the comparison.
use std::net::SocketAddr;

use podscale_emulate::{Config as EmuConfig, Emulator};
use podscale_load::{Config, Mode};
use podscale_model::Model;
use podscale_sim::traffic::Pattern;

fn peak_rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
        })
        .unwrap_or(0)
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    match args.first().map(String::as_str) {
        Some("serve") => rt.block_on(async {
            let model = match std::env::var("LOADBENCH_MODEL") {
                Ok(path) => Model::load(Some(&std::fs::read_to_string(&path)?), &path)?,
                Err(_) => Model::default_model(),
            };
            let mut c = EmuConfig::new(SocketAddr::from(([127, 0, 0, 1], 0)), model);
            c.instant = args.iter().any(|a| a == "--instant");
            c.cpu_scale = 0.0;
            let emu = Emulator::start(c).await?;
            println!("listening {}", emu.local_addr());
            std::future::pending::<()>().await;
            Ok(())
        }),
        Some("load") if args.len() == 5 || args.len() == 6 => {
            let n: f64 = args[3].parse()?;
            let secs: f64 = args[4].parse()?;
            let mode = match args[2].as_str() {
                "rate" => Mode::Open {
                    pattern: Pattern::Constant { rate: n },
                },
                _ => Mode::Closed {
                    concurrency: n as usize,
                },
            };
            let mut cfg = Config::new(&args[1], mode, secs)?;
            cfg.shape.max_tokens = std::env::var("LOADBENCH_MAX_TOKENS")
                .ok()
                .and_then(|v| v.parse().ok())
                .unwrap_or(16);
            cfg.shape.stream = std::env::var_os("LOADBENCH_STREAM").is_some();
            cfg.http2 = std::env::var_os("LOADBENCH_HTTP2").is_some();
            if let Some(c) = args.get(5) {
                cfg.connections = c.parse()?;
            }
            let report = rt.block_on(podscale_load::run(cfg, &mut |_| {}))?;
            println!("{}", serde_json::to_string(&report)?);
            println!("peak_rss_kib {}", peak_rss_kib());
            Ok(())
        }
        _ => Err(
            "usage: loadbench serve [--instant] | loadbench load URL (rate R | closed N) SECONDS"
                .into(),
        ),
    }
}
