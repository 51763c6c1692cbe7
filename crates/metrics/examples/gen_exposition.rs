//! Writes the benchmark's vLLM-like fleet exposition to standard output.
//!
//! `cargo run --release -p podscale-metrics --example gen_exposition -- [MB] [--colon-free]`
#[path = "../benches/support/gen_exposition.rs"]
mod gen_exposition;

use std::io::Write as _;

fn main() -> std::io::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let mb: usize = args.iter().find_map(|a| a.parse().ok()).unwrap_or(10);
    let colon_free = args.iter().any(|a| a == "--colon-free");
    let text = gen_exposition::generate(mb * 1024 * 1024, colon_free);
    std::io::stdout().write_all(text.as_bytes())
}
