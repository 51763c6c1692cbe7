//! Parser throughput (MB/s, one thread) on ~10 MB of vLLM-like fleet exposition, side
//! by side with the `prometheus-parse` crate. `prometheus-parse` silently drops every
//! name containing ':' (all of vLLM's), so the comparison runs on the colon-free
//! variant of the same text; `prometheus-parse` is a dev-dependency used only here.
//!
//! `cargo bench -p podscale-metrics --bench exposition`
#[path = "support/gen_exposition.rs"]
mod gen_exposition;

use std::hint::black_box;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use podscale_metrics::exposition::{Entry, Format, Parser};

const SIZE: usize = 10 * 1024 * 1024;

/// Parses and sums the values (labels validated, decoded only on demand).
fn ours(text: &str) -> (usize, f64) {
    let mut n = 0;
    let mut sum = 0.0;
    for e in Parser::new(text, Format::Text) {
        if let Ok(Entry::Sample(s)) = e {
            n += 1;
            sum += s.value;
        }
    }
    (n, sum)
}

/// Parses and decodes every label pair too, as a parser that builds label maps does.
fn ours_with_labels(text: &str) -> (usize, usize) {
    let mut n = 0;
    let mut bytes = 0;
    for e in Parser::new(text, Format::Text) {
        if let Ok(Entry::Sample(s)) = e {
            n += 1;
            for (k, v) in s.labels.iter() {
                bytes += k.len() + v.len();
            }
        }
    }
    (n, bytes)
}

fn prometheus_parse(text: &str) -> usize {
    let lines = text.lines().map(|l| Ok(l.to_owned()));
    prometheus_parse::Scrape::parse(lines)
        .map(|s| s.samples.len())
        .unwrap_or(0)
}

fn bench(c: &mut Criterion) {
    let text = gen_exposition::generate(SIZE, false);
    let colon_free = gen_exposition::generate(SIZE, true);
    let mut g = c.benchmark_group("exposition");
    g.sample_size(10);
    g.throughput(Throughput::Bytes(text.len() as u64));
    g.bench_function("podscale/vllm", |b| b.iter(|| ours(black_box(&text))));
    g.bench_function("podscale+labels/vllm", |b| {
        b.iter(|| ours_with_labels(black_box(&text)))
    });
    g.throughput(Throughput::Bytes(colon_free.len() as u64));
    g.bench_function("podscale/colon-free", |b| {
        b.iter(|| ours(black_box(&colon_free)))
    });
    g.bench_function("podscale+labels/colon-free", |b| {
        b.iter(|| ours_with_labels(black_box(&colon_free)))
    });
    g.bench_function("prometheus-parse/colon-free", |b| {
        b.iter(|| prometheus_parse(black_box(&colon_free)))
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
