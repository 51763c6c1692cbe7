//! Test harness: a real Prometheus (Debian's `prometheus` package) started on a free
//! loopback port with its own config and data directory, tiny exporters it scrapes,
//! and loopback servers that misbehave on purpose. Everything listens on 127.0.0.1.
//!
//! Without `prometheus` (or `openssl`, for the TLS tests) on PATH these tests fail with
//! a message saying how to install it: a missing dependency never passes as a skip.
//! `bash .ci/run` (the README's test command) installs both.
#![allow(dead_code)]

use std::io::{Read as _, Write as _};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// A directory removed on drop.
pub struct TempDir(pub PathBuf);

impl TempDir {
    pub fn new(tag: &str) -> Self {
        static N: AtomicUsize = AtomicUsize::new(0);
        let dir = std::env::temp_dir().join(format!(
            "podscale-{tag}-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        ));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("create temp dir");
        Self(dir)
    }

    pub fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A free loopback port (never Prometheus's default 9090).
pub fn free_port() -> u16 {
    loop {
        let l = TcpListener::bind("127.0.0.1:0").expect("bind loopback");
        let port = l.local_addr().expect("local addr").port();
        if port != 9090 {
            return port;
        }
    }
}

/// The `prometheus` binary. Panics when it is not installed: the tests that need it
/// must run, never skip (the `Option` is for callers written when they could skip).
pub fn prometheus_binary() -> Option<PathBuf> {
    let found = std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|p| p.join("prometheus"))
            .find(|p| p.is_file())
    });
    assert!(
        found.is_some(),
        "prometheus is not on PATH: these tests run a real Prometheus. Install Debian's \
         package (apt-get install -y prometheus) or run `bash .ci/run`, which installs it."
    );
    found
}

/// The `promtool` binary next to `prometheus`.
pub fn promtool_binary(prometheus: &Path) -> PathBuf {
    prometheus.with_file_name("promtool")
}

/// A minimal HTTP/1.1 GET over a fresh connection: `(status, body)`.
pub fn http_get(port: u16, path: &str, authorization: Option<&str>) -> Option<(u16, String)> {
    let mut s = TcpStream::connect(("127.0.0.1", port)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    let auth = authorization.map_or(String::new(), |a| format!("Authorization: {a}\r\n"));
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n{auth}Connection: close\r\n\r\n"
    )
    .ok()?;
    let mut text = String::new();
    s.read_to_string(&mut text).ok()?;
    let status = text.split(' ').nth(1)?.parse().ok()?;
    let body = text
        .split_once("\r\n\r\n")
        .map_or("", |(_, b)| b)
        .to_owned();
    Some((status, body))
}

/// Percent-encodes a query-string value.
pub fn encode(s: &str) -> String {
    let mut out = String::new();
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// A running Prometheus, killed (and its data removed) on drop.
pub struct Prometheus {
    child: Child,
    pub port: u16,
    pub url: String,
    dir: TempDir,
    authorization: Option<String>,
}

/// How to start a Prometheus.
#[derive(Default)]
pub struct PrometheusOptions<'a> {
    /// `host:port` targets scraped every second (job `exporter`, labels honoured).
    pub targets: Vec<String>,
    /// Contents of `--web.config.file`.
    pub web_config: Option<&'a str>,
    /// The `Authorization` header the harness itself must send.
    pub authorization: Option<String>,
    /// OpenMetrics text backfilled with `promtool tsdb create-blocks-from openmetrics`.
    pub backfill: Option<String>,
    /// The web config serves TLS: readiness is then only "the port answers" (the
    /// harness speaks plain HTTP; Go answers it with a 400).
    pub tls: bool,
}

impl Prometheus {
    /// Starts Prometheus and waits (bounded) until it is ready; `None` to skip.
    pub fn start(opts: PrometheusOptions<'_>) -> Option<Self> {
        let binary = prometheus_binary()?;
        let dir = TempDir::new("prometheus");
        let data = dir.path().join("data");
        std::fs::create_dir_all(&data).expect("data dir");
        let targets: Vec<String> = opts.targets.iter().map(|t| format!("'{t}'")).collect();
        let config = format!(
            "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\n\
             scrape_configs:\n  - job_name: exporter\n    scrape_interval: 1s\n    scrape_timeout: 1s\n    \
             honor_labels: true\n    static_configs:\n      - targets: [{}]\n",
            targets.join(", ")
        );
        let config_file = dir.path().join("prometheus.yml");
        std::fs::write(&config_file, config).expect("write config");
        if let Some(om) = &opts.backfill {
            let input = dir.path().join("backfill.om");
            std::fs::write(&input, om).expect("write backfill");
            let out = Command::new(promtool_binary(&binary))
                .args(["tsdb", "create-blocks-from", "openmetrics"])
                .arg(&input)
                .arg(&data)
                .output()
                .expect("run promtool");
            assert!(
                out.status.success(),
                "promtool failed: {}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            );
        }
        let port = free_port();
        let log = std::fs::File::create(dir.path().join("prometheus.log")).expect("log file");
        let mut cmd = Command::new(&binary);
        cmd.arg(format!("--config.file={}", config_file.display()))
            .arg(format!("--storage.tsdb.path={}", data.display()))
            .arg(format!("--web.listen-address=127.0.0.1:{port}"))
            .arg("--log.level=warn")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log);
        if let Some(web) = opts.web_config {
            let web_file = dir.path().join("web.yml");
            std::fs::write(&web_file, web).expect("write web config");
            cmd.arg(format!("--web.config.file={}", web_file.display()));
        }
        let child = cmd.spawn().expect("start prometheus");
        let mut p = Self {
            child,
            port,
            url: format!("http://127.0.0.1:{port}"),
            dir,
            authorization: opts.authorization,
        };
        p.wait_ready(opts.tls);
        Some(p)
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("prometheus.log")).unwrap_or_default()
    }

    /// Polls `/-/ready` (at most 30 s): I/O waiting for a process to come up.
    fn wait_ready(&mut self, tls: bool) {
        let deadline = Instant::now() + Duration::from_secs(30);
        while Instant::now() < deadline {
            if let Ok(Some(status)) = self.child.try_wait() {
                panic!("prometheus exited with {status}:\n{}", self.log());
            }
            match http_get(self.port, "/-/ready", self.authorization.as_deref()) {
                Some((200, _)) => return,
                Some((400, _)) if tls => return,
                _ => {}
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        panic!("prometheus not ready after 30s:\n{}", self.log());
    }

    /// Polls an instant query (at most 30 s) until its result is not empty: waits for
    /// the first scrapes to land.
    pub fn wait_for(&self, query: &str) {
        let deadline = Instant::now() + Duration::from_secs(30);
        let path = format!("/api/v1/query?query={}", encode(query));
        while Instant::now() < deadline {
            if let Some((200, body)) = http_get(self.port, &path, self.authorization.as_deref())
                && !body.contains("\"result\":[]")
            {
                return;
            }
            std::thread::sleep(Duration::from_millis(200));
        }
        panic!("no result for {query} after 30s:\n{}", self.log());
    }
}

impl Drop for Prometheus {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The responder of a [`Server`]: from the request head (request line and headers),
/// the status, content type and body.
pub type Responder = dyn Fn(&str) -> (u16, String, String) + Send + Sync;

/// A minimal HTTP/1.1 server on a loopback port, one connection at a time, answering
/// with a responder; every request head is recorded. Stops on drop.
pub struct Server {
    pub port: u16,
    pub requests: Arc<Mutex<Vec<String>>>,
    stop: Arc<AtomicBool>,
}

impl Server {
    pub fn start(responder: Arc<Responder>) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind loopback");
        let port = listener.local_addr().expect("addr").port();
        let requests = Arc::new(Mutex::new(Vec::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let (r, st) = (Arc::clone(&requests), Arc::clone(&stop));
        std::thread::spawn(move || {
            for conn in listener.incoming() {
                if st.load(Ordering::Relaxed) {
                    break;
                }
                let Ok(mut conn) = conn else { continue };
                let _ = conn.set_read_timeout(Some(Duration::from_secs(5)));
                let mut head = Vec::new();
                let mut buf = [0u8; 4096];
                while !head.windows(4).any(|w| w == b"\r\n\r\n") {
                    match conn.read(&mut buf) {
                        Ok(0) | Err(_) => break,
                        Ok(n) => head.extend_from_slice(&buf[..n]),
                    }
                }
                let head = String::from_utf8_lossy(&head).into_owned();
                // A request body, if any, follows the head: read what Content-Length says.
                let length = head.lines().find_map(|l| {
                    l.to_ascii_lowercase()
                        .strip_prefix("content-length:")
                        .and_then(|v| v.trim().parse::<usize>().ok())
                });
                if let Some(len) = length {
                    let already = head.split_once("\r\n\r\n").map_or(0, |(_, b)| b.len());
                    let mut rest = vec![0u8; len.saturating_sub(already)];
                    let _ = conn.read_exact(&mut rest);
                }
                let (status, ct, body) = responder(&head);
                r.lock().expect("lock").push(head);
                let _ = write!(
                    conn,
                    "HTTP/1.1 {status} X\r\nContent-Type: {ct}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                    body.len()
                );
            }
        });
        Self {
            port,
            requests,
            stop,
        }
    }

    pub fn address(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        let _ = TcpStream::connect(("127.0.0.1", self.port));
    }
}

/// A [`Server`] that answers every request alike with a settable body: an exporter,
/// or a fake API with one answer.
pub struct Exporter {
    server: Server,
    pub port: u16,
    pub requests: Arc<Mutex<Vec<String>>>,
    body: Arc<Mutex<String>>,
}

impl Exporter {
    pub fn start(body: &str) -> Self {
        Self::with(200, "text/plain; version=0.0.4", body)
    }

    pub fn with(status: u16, content_type: &str, body: &str) -> Self {
        let state = Arc::new(Mutex::new(body.to_owned()));
        let s = Arc::clone(&state);
        let ct = content_type.to_owned();
        let server = Server::start(Arc::new(move |_: &str| {
            (status, ct.clone(), s.lock().expect("lock").clone())
        }));
        Self {
            port: server.port,
            requests: Arc::clone(&server.requests),
            server,
            body: state,
        }
    }

    pub fn set_body(&self, body: &str) {
        *self.body.lock().expect("lock") = body.to_owned();
    }

    pub fn address(&self) -> String {
        self.server.address()
    }
}

/// A loopback server that accepts connections and never answers: a hung endpoint.
pub struct Silent {
    pub port: u16,
    stop: Arc<AtomicBool>,
}

impl Silent {
    pub fn start() -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let port = listener.local_addr().expect("addr").port();
        let stop = Arc::new(AtomicBool::new(false));
        let st = Arc::clone(&stop);
        std::thread::spawn(move || {
            let mut held = Vec::new();
            for conn in listener.incoming() {
                if st.load(Ordering::Relaxed) {
                    break;
                }
                if let Ok(c) = conn {
                    held.push(c);
                }
            }
        });
        Self { port, stop }
    }
}

impl Drop for Silent {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        let _ = TcpStream::connect(("127.0.0.1", self.port));
    }
}

/// A loopback port nothing listens on (connection refused).
pub fn closed_port() -> u16 {
    free_port()
}

/// A private CA and a server certificate for 127.0.0.1 made with the `openssl` command,
/// or `None` when it is not installed. Returns (ca.pem, cert.pem, key.pem).
pub fn tls_files(dir: &Path) -> Option<(PathBuf, PathBuf, PathBuf)> {
    let run = |args: &[&str]| {
        Command::new("openssl")
            .args(args)
            .current_dir(dir)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
    };
    assert!(
        run(&["version"]),
        "openssl is not on PATH: the TLS tests make their certificates with it. Install it \
         (apt-get install -y openssl) or run `bash .ci/run`, which installs it."
    );
    std::fs::write(
        dir.join("leaf.ext"),
        "subjectAltName=IP:127.0.0.1\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n",
    )
    .ok()?;
    let ec = [
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:prime256v1",
        "-nodes",
    ];
    let ok = run(&[
        &["req", "-x509"][..],
        &ec,
        &[
            "-keyout",
            "ca.key",
            "-out",
            "ca.pem",
            "-days",
            "1",
            "-subj",
            "/CN=podscale test CA",
        ],
    ]
    .concat())
        && run(&[
            &["req"][..],
            &ec,
            &[
                "-keyout",
                "key.pem",
                "-out",
                "leaf.csr",
                "-subj",
                "/CN=127.0.0.1",
            ],
        ]
        .concat())
        && run(&[
            "x509",
            "-req",
            "-in",
            "leaf.csr",
            "-CA",
            "ca.pem",
            "-CAkey",
            "ca.key",
            "-CAcreateserial",
            "-out",
            "cert.pem",
            "-days",
            "1",
            "-extfile",
            "leaf.ext",
        ]);
    assert!(ok, "openssl could not make the test certificates");
    Some((
        dir.join("ca.pem"),
        dir.join("cert.pem"),
        dir.join("key.pem"),
    ))
}

/// A loopback server that answers every request with `status` and a body that never
/// ends (`chunk` repeated until the client goes away), optionally announcing
/// `content_length`. Counts the bytes it managed to send: a client that stops
/// reading at its limit makes that count stop growing.
pub struct Endless {
    pub port: u16,
    pub sent: Arc<AtomicUsize>,
    stop: Arc<AtomicBool>,
}

impl Endless {
    pub fn start(status: u16, content_length: Option<u64>, chunk: &'static [u8]) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind loopback");
        let port = listener.local_addr().expect("addr").port();
        let sent = Arc::new(AtomicUsize::new(0));
        let stop = Arc::new(AtomicBool::new(false));
        let (counter, st) = (Arc::clone(&sent), Arc::clone(&stop));
        std::thread::spawn(move || {
            for conn in listener.incoming() {
                if st.load(Ordering::Relaxed) {
                    break;
                }
                let Ok(mut conn) = conn else { continue };
                let mut head = Vec::new();
                let mut buf = [0u8; 4096];
                let _ = conn.set_read_timeout(Some(Duration::from_secs(5)));
                while !head.windows(4).any(|w| w == b"\r\n\r\n") {
                    match conn.read(&mut buf) {
                        Ok(0) | Err(_) => break,
                        Ok(n) => head.extend_from_slice(&buf[..n]),
                    }
                }
                let length =
                    content_length.map_or(String::new(), |n| format!("Content-Length: {n}\r\n"));
                let _ = write!(
                    conn,
                    "HTTP/1.1 {status} X\r\nContent-Type: application/json\r\n{length}Connection: close\r\n\r\n"
                );
                // Until the client closes the connection (a write then fails), or a
                // bound far past any limit under test.
                while counter.load(Ordering::Relaxed) < (4 << 30) {
                    if conn.write_all(chunk).is_err() {
                        break;
                    }
                    counter.fetch_add(chunk.len(), Ordering::Relaxed);
                }
            }
        });
        Self { port, sent, stop }
    }

    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }
}

impl Drop for Endless {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        let _ = TcpStream::connect(("127.0.0.1", self.port));
    }
}
