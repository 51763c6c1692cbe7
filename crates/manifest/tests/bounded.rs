//! Memory stays bounded whatever aliases a YAML file uses.
//!
//! The workspace forbids `unsafe` (so no counting `#[global_allocator]` here): instead
//! this test binary runs itself again, as a child process under `prlimit --as`, where
//! a property test throws generated alias-heavy YAML at the reader. Going past the
//! address-space limit makes an allocation fail, which aborts the child; the parent
//! asserts it exited cleanly and that its peak resident memory (`VmHWM`) stayed under
//! a bound. Each generated input is at most a few MB, yet unbounded expansion of its
//! aliases would need terabytes.
use std::cell::Cell;
use std::process::Command;

use podscale_manifest::parse_documents;
use proptest::prelude::*;
use proptest::test_runner::{Config, TestRunner};

/// Address space the child may use: far more than a bounded parse needs, far less
/// than an unbounded expansion of the inputs below.
const ADDRESS_SPACE: u64 = 2 << 30;
/// Peak resident memory the child may reach.
const MAX_RSS_KB: u64 = 1 << 20;
/// Set in the child's environment to make `child` do the work.
const CHILD: &str = "PODSCALE_BOUNDED_CHILD";

/// One construct of a generated document, referring to anchors defined earlier.
#[derive(Debug, Clone)]
enum Step {
    /// `aN: &aN "xxx…"`: a scalar of the given size.
    Scalar(usize),
    /// `aN: &aN [*aI, *aJ, …]`.
    Seq(Vec<usize>),
    /// `aN: &aN {<<: [*aI, …], kN: v}`: merge keys.
    Merge(Vec<usize>),
    /// `aN: &aN {*aI: 1, …}`: aliases as keys.
    Keys(Vec<usize>),
    /// `aN: &aN [&bN [&cN [*aI]]]`: anchors nested in anchors.
    Nested(usize),
}

fn step() -> impl Strategy<Value = Step> {
    let refs = || prop::collection::vec(0usize..64, 1..24);
    prop_oneof![
        prop_oneof![Just(0usize), 1usize..64, Just(1 << 20)].prop_map(Step::Scalar),
        refs().prop_map(Step::Seq),
        refs().prop_map(Step::Merge),
        refs().prop_map(Step::Keys),
        (0usize..64).prop_map(Step::Nested),
    ]
}

/// Renders steps as YAML; a reference picks among the anchors defined so far.
fn render(steps: &[Step]) -> String {
    let mut out = String::from("a0: &a0 {k: v}\n");
    for (n, step) in steps.iter().enumerate() {
        let n = n + 1;
        let pick = |i: &usize| i % n;
        let line = match step {
            Step::Scalar(size) => format!("a{n}: &a{n} \"{}\"", "x".repeat(*size)),
            Step::Seq(refs) => {
                let items: Vec<String> = refs.iter().map(|i| format!("*a{}", pick(i))).collect();
                format!("a{n}: &a{n} [{}]", items.join(", "))
            }
            Step::Merge(refs) => {
                let items: Vec<String> = refs.iter().map(|i| format!("*a{}", pick(i))).collect();
                format!("a{n}: &a{n} {{<<: [{}], k{n}: v}}", items.join(", "))
            }
            Step::Keys(refs) => {
                let items: Vec<String> = refs
                    .iter()
                    .enumerate()
                    .map(|(j, i)| format!("*a{} : {j}", pick(i)))
                    .collect();
                format!("a{n}: &a{n} {{{}}}", items.join(", "))
            }
            Step::Nested(i) => format!("a{n}: &a{n} [&b{n} [&c{n} [*a{}]]]", pick(i)),
        };
        out.push_str(&line);
        out.push('\n');
    }
    out
}

/// The child's work: parse many generated documents (most are refused; some parse).
#[test]
fn child() {
    if std::env::var_os(CHILD).is_none() {
        return;
    }
    let mut runner = TestRunner::new(Config {
        cases: 200,
        failure_persistence: None,
        ..Config::default()
    });
    let steps = prop::collection::vec(step(), 1..40);
    let (accepted, refused) = (Cell::new(0u32), Cell::new(0u32));
    runner
        .run(&steps, |steps| {
            let source = render(&steps);
            // Ok or a clear error: both fine; what matters is the memory it took.
            match parse_documents(&source, "bomb.yaml") {
                Ok(_) => accepted.set(accepted.get() + 1),
                Err(_) => refused.set(refused.get() + 1),
            }
            Ok(())
        })
        .expect("no case panics");
    println!("CASES {} {}", accepted.get(), refused.get());
    let status = std::fs::read_to_string("/proc/self/status").expect("reads status");
    let hwm = status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .expect("VmHWM");
    println!("PEAK_RSS_KB {}", hwm.trim().trim_end_matches(" kB"));
}

#[test]
fn generated_alias_bombs_stay_within_bounded_memory() {
    let exe = std::env::current_exe().expect("current exe");
    let out = Command::new("prlimit")
        .arg(format!("--as={ADDRESS_SPACE}"))
        .arg(&exe)
        .args(["--exact", "child", "--nocapture", "--test-threads=1"])
        .env(CHILD, "1")
        .output()
        .expect("prlimit runs (util-linux)");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "child failed ({:?}): {stdout}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    let reported = |tag: &str| -> Vec<u64> {
        let (_, rest) = stdout
            .split_once(tag)
            .unwrap_or_else(|| panic!("no {tag} reported: {stdout}"));
        let line = rest.lines().next().unwrap_or_default();
        line.split_whitespace()
            .map(|n| n.parse().expect("a number"))
            .collect()
    };
    let peak = reported("PEAK_RSS_KB ")[0];
    assert!(peak < MAX_RSS_KB, "peak RSS {peak} kB");
    // The generator makes both documents that are read and ones that are refused.
    let cases = reported("CASES ");
    assert!(cases[0] > 0 && cases[1] > 0, "accepted, refused: {cases:?}");
    eprintln!(
        "peak RSS {peak} kB; accepted {}, refused {}",
        cases[0], cases[1]
    );
}

#[test]
fn the_bound_catches_an_unbounded_expansion() {
    // The harness itself must be able to fail: the same child, with a document whose
    // expansion is not bounded by the reader (a plain 3 GB string built in the test),
    // is killed by the address-space limit.
    if std::env::var_os(CHILD).is_some() {
        let big = "x".repeat(3 << 30);
        assert_eq!(big.len(), 3 << 30);
        return;
    }
    let exe = std::env::current_exe().expect("current exe");
    let out = Command::new("prlimit")
        .arg(format!("--as={ADDRESS_SPACE}"))
        .arg(&exe)
        .args([
            "--exact",
            "the_bound_catches_an_unbounded_expansion",
            "--test-threads=1",
        ])
        .env(CHILD, "1")
        .output()
        .expect("prlimit runs");
    assert!(!out.status.success(), "a 3 GB allocation must not fit");
}
