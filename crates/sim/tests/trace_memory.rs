//! The trace reader's memory is bounded whatever the file holds: hostile inputs (no line
//! break, endless input, random bytes, long lines, endless blank lines) are read in a
//! child process under an address-space limit (`ulimit -v`), where reading a file whole
//! would fail to allocate and abort. A control run of the same child that does read a
//! file whole proves the limit bites.
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::Command;

use podscale_sim::trace::{RequestReader, scan};
use podscale_sim::{TraceSource, Traffic, TrafficOptions, TrafficSpec};
use rand::rngs::ChaCha8Rng;
use rand::{RngExt as _, SeedableRng as _};

/// Address space the child may use, in KiB: far above what reading a trace line by line
/// needs, far below what reading `/dev/zero` or a 300 MB line would take.
const LIMIT_KIB: u64 = 400 * 1024;

const CHILD: &str = "PODSCALE_TRACE_MEMORY_CHILD";

/// Runs this test binary's test `name` in a child under the limit, with `mode` in the
/// environment; returns (success, stdout, stderr).
fn child(name: &str, mode: &str) -> (bool, String, String) {
    let exe = std::env::current_exe().expect("test binary");
    let out = Command::new("sh")
        .arg("-c")
        .arg(format!(
            "ulimit -v {LIMIT_KIB} && exec \"$0\" --exact {name} --nocapture --test-threads=1"
        ))
        .arg(exe)
        .env(CHILD, mode)
        .output()
        .expect("runs sh");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn write(dir: &Path, name: &str, bytes: &[u8]) -> PathBuf {
    let path = dir.join(name);
    std::fs::File::create(&path)
        .and_then(|mut f| f.write_all(bytes))
        .expect("writes");
    path
}

/// Hostile and random traffic files: each is scanned, streamed and prepared as traffic.
fn inputs(dir: &Path) -> Vec<PathBuf> {
    let mut rng = ChaCha8Rng::seed_from_u64(8);
    let mut files = vec![PathBuf::from("/dev/zero"), PathBuf::from("/dev/urandom")];
    // One 300 MB line after a valid header and row (sparse: the file takes no disk).
    let path = dir.join("long-line.csv");
    let mut f = std::fs::File::create(&path).expect("creates");
    f.write_all(b"timestamp_seconds\n0\n").expect("writes");
    f.set_len(300 << 20).expect("extends");
    files.push(path);
    for i in 0..200 {
        let mut text = Vec::new();
        match rng.random_range(0..3) {
            0 => text.extend_from_slice(b"timestamp_seconds,input_tokens,output_tokens\n"),
            1 => text.extend_from_slice(b"timestamp_seconds,requests_per_second\n"),
            _ => {}
        }
        let lines = rng.random_range(0..50);
        let mut t = 0.0;
        for _ in 0..lines {
            match rng.random_range(0..10) {
                // Valid-looking rows, sorted or not.
                0..=4 => {
                    t += rng.random_range(-1.0..10.0);
                    text.extend_from_slice(
                        format!(
                            "{t},{},{}\n",
                            rng.random_range(0..5000),
                            rng.random_range(0..900)
                        )
                        .as_bytes(),
                    );
                }
                // A long line, maybe without its line break.
                5 => text.extend(std::iter::repeat_n(b'7', rng.random_range(1..20_000))),
                // Random bytes.
                6 => text.extend((0..rng.random_range(1..200)).map(|_| rng.random::<u8>())),
                // Blank lines, numbers out of range.
                7 => text.extend_from_slice(b"\n\n\r\n"),
                8 => text.extend_from_slice(b"1e308,1e9,4294967296\n"),
                _ => text.extend_from_slice(b"NaN,inf,-1\n"),
            }
        }
        files.push(write(dir, &format!("fuzz-{i}.csv"), &text));
    }
    files
}

#[test]
fn reading_hostile_traces_stays_within_a_memory_limit() {
    if std::env::var(CHILD).is_ok() {
        return; // the child's own run of this test
    }
    let (ok, stdout, stderr) = child("child_reads_every_input", "bounded");
    assert!(
        ok,
        "the reader exceeded the memory limit:\n{stdout}\n{stderr}"
    );
    assert!(
        stdout.contains("read 203 inputs"),
        "the child did not read every input:\n{stdout}\n{stderr}"
    );
    // Control: reading /dev/zero whole under the same limit fails, so the limit is real.
    let (_, stdout, stderr) = child("child_reads_every_input", "unbounded");
    assert!(
        stdout.contains("the whole read failed") || stderr.contains("memory allocation"),
        "reading /dev/zero whole fit in the limit:\n{stdout}\n{stderr}"
    );
}

#[test]
fn child_reads_every_input() {
    let Ok(mode) = std::env::var(CHILD) else {
        return; // only meaningful in the child
    };
    if mode == "unbounded" {
        match std::fs::read("/dev/zero") {
            Ok(bytes) => println!("read all {} bytes", bytes.len()),
            Err(e) => println!("the whole read failed: {e}"),
        }
        return;
    }
    let dir = std::env::temp_dir().join(format!("podscale-trace-memory-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let files = inputs(&dir);
    for path in &files {
        let source = TraceSource::Path(path.clone());
        // Whatever the outcome, it is an answer, not an allocation failure.
        if let Ok(info) = scan(&source, 1_000_000) {
            let mut reader = RequestReader::open(&source, info.first_timestamp).expect("opens");
            while let Ok(Some(_)) = reader.next_request() {}
        }
        let _ = Traffic::prepare(&TrafficSpec::Trace(source), TrafficOptions::default());
    }
    let _ = std::fs::remove_dir_all(&dir);
    println!("read {} inputs", files.len());
}
