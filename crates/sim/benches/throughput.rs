//! Simulated requests per second, end to end (traffic generation, replicas, pipeline,
//! controller syncs through the engine, statistics).
//!
//! `cargo bench -p podscale-sim` prints one line per scenario. The last scenario replays
//! the 14-day ServeGen rate envelope from `../shared/traces` when it is there: its first
//! day by default, all 14 days with `PODSCALE_BENCH_FULL=1` (about 236 M requests).
use std::path::PathBuf;
use std::time::Instant;

use podscale_sim::replica::ServerParams;
use podscale_sim::{
    Model, Oracle, Policy, SimConfig, TraceSource, Traffic, TrafficOptions, TrafficSpec,
};

/// The seed CPU manifest with room for hundreds of replicas, so that a large load is
/// served rather than timed out (timeouts are cheap and would flatter the figure).
fn big_policy() -> Policy {
    let source = podscale_sim::policy::EMBEDDED_MANIFEST
        .replace("maxReplicas: 20", "maxReplicas: 1000")
        .replace("minReplicas: 2", "minReplicas: 10");
    Policy::from_source(&source, "inference-hpa-resource-1000.yaml")
        .expect("valid manifest")
        .remove(0)
}

fn bench(name: &str, policy: &Policy, spec: &TrafficSpec, options: TrafficOptions) {
    let traffic = match Traffic::prepare(spec, options) {
        Ok(t) => t,
        Err(e) => {
            println!("{name:<44} skipped: {e}");
            return;
        }
    };
    let cfg = SimConfig::new(Model::default_model());
    let oracle = Oracle::calibrate(
        &ServerParams::from_model(&cfg.model),
        &traffic.mix,
        &cfg.slo,
        cfg.seed,
    );
    let start = Instant::now();
    let out = podscale_sim::run(policy, &traffic, &cfg, oracle, &mut |_| {}).expect("runs");
    let secs = start.elapsed().as_secs_f64();
    let n = out.summary.requests;
    println!(
        "{name:<44} {n:>12} requests {secs:>8.2} s {:>10.2} M requests/s  (mean {:.0} replicas)",
        n as f64 / secs / 1e6,
        out.summary.mean_replicas,
    );
}

fn main() {
    // `cargo test --benches` runs this with `--bench`-less arguments: keep it quick then.
    let quick = !std::env::args().any(|a| a == "--bench");
    let full = std::env::var_os("PODSCALE_BENCH_FULL").is_some();
    println!("podscale-sim throughput (one core, one policy per run)");
    bench(
        "embedded Azure conv trace, seed CPU HPA",
        &Policy::embedded(),
        &TrafficSpec::Trace(TraceSource::Embedded),
        TrafficOptions::default(),
    );
    if quick {
        return;
    }
    bench(
        "constant 200 req/s for 1h, max 1000",
        &big_policy(),
        &TrafficSpec::Pattern("constant:rate=200".into()),
        TrafficOptions {
            duration: Some(3600.0),
            ..TrafficOptions::default()
        },
    );
    let envelope = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../../shared/traces/servegen_language_m_large_rate_10min.csv");
    let (label, duration) = if full {
        ("ServeGen m-large envelope, 14 days", None)
    } else {
        ("ServeGen m-large envelope, first day", Some(86_400.0))
    };
    bench(
        label,
        &big_policy(),
        &TrafficSpec::Trace(TraceSource::Path(envelope)),
        TrafficOptions {
            duration,
            ..TrafficOptions::default()
        },
    );
}
