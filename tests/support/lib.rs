//! Harness for the end-to-end tests: a real collector and real agents in
//! this process, on loopback ports the OS picks, with temporary data
//! directories. Waiting is always on a condition with a deadline.

pub mod browser;
pub mod databases;
pub mod process;
pub mod raw_agent;
mod small_disk;
pub mod tsdb;

use std::future::Future;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use serde::de::DeserializeOwned;
use watchpost_agent::{AgentConfig, RunningAgent};
use watchpost_collector::rules::RuleSet;
use watchpost_collector::{Collector, CollectorConfig};

pub use watchpost_model::api;

/// A collector config for tests: ports picked by the OS, fast heartbeats.
pub fn collector_config(data_dir: &Path) -> CollectorConfig {
    CollectorConfig {
        grpc_listen: "127.0.0.1:0".parse().expect("valid address"),
        http_listen: "127.0.0.1:0".parse().expect("valid address"),
        data_dir: data_dir.to_path_buf(),
        heartbeat: Duration::from_millis(300),
        // Most tests are about other things; tests/security.rs runs strict.
        security: watchpost_collector::config::SecurityConfig::open(),
        // A shared machine's disk may be nearly full: keep the collector's
        // own disk fault out of tests about other things.
        min_free: test_min_free(),
        ..Default::default()
    }
}

/// What tests keep free on the data directory's disk (64 MiB).
pub fn test_min_free() -> watchpost_collector::health::MinFree {
    watchpost_collector::health::MinFree::parse("64MiB").expect("a size")
}

/// Starts a collector with the rules in `rules` (TOML text).
pub async fn start_collector(data_dir: &Path, rules: &str) -> Collector {
    let set = RuleSet::parse(rules, "test-rules.toml").expect("test rules are valid");
    Collector::start(collector_config(data_dir), set)
        .await
        .expect("collector starts")
}

/// An agent that reads `*.prom` files from `textfile_dir` (and the host if
/// `host` is true) every `interval`, reporting as `hostname`.
pub fn start_agent(
    collector: &Collector,
    hostname: &str,
    textfile_dir: Option<&Path>,
    host: bool,
    interval: Duration,
) -> RunningAgent {
    start_agent_to(
        &format!("http://{}", collector.grpc_addr()),
        hostname,
        textfile_dir,
        host,
        interval,
    )
}

/// As [`start_agent`], for a collector at `url` (e.g. a separate process).
pub fn start_agent_to(
    url: &str,
    hostname: &str,
    textfile_dir: Option<&Path>,
    host: bool,
    interval: Duration,
) -> RunningAgent {
    let mut c = AgentConfig::local(url);
    c.hostname = Some(hostname.to_string());
    c.interval = interval;
    c.heartbeat = Duration::from_millis(300);
    c.host.enabled = host;
    c.textfile_dir = textfile_dir.map(Path::to_path_buf);
    watchpost_agent::start(c)
}

/// Replaces a textfile atomically (the agent never reads half a file).
pub fn write_textfile(dir: &Path, name: &str, text: &str) {
    let tmp: PathBuf = dir.join(format!(".{name}.tmp"));
    std::fs::write(&tmp, text).expect("write textfile");
    std::fs::rename(&tmp, dir.join(name)).expect("rename textfile");
}

/// GETs a JSON answer from the collector's API.
pub async fn get<T: DeserializeOwned>(collector: &Collector, path_and_query: &str) -> T {
    let url = format!("http://{}{}", collector.http_addr(), path_and_query);
    let resp = reqwest::get(&url)
        .await
        .unwrap_or_else(|e| panic!("GET {url}: {e}"));
    let status = resp.status();
    let body = resp.text().await.expect("body");
    assert!(status.is_success(), "GET {url}: {status}: {body}");
    serde_json::from_str(&body).unwrap_or_else(|e| panic!("GET {url}: {e}: {body}"))
}

/// GETs and returns the status and raw body (for error checks).
pub async fn get_raw(collector: &Collector, path_and_query: &str) -> (u16, String) {
    let url = format!("http://{}{}", collector.http_addr(), path_and_query);
    let resp = reqwest::get(&url)
        .await
        .unwrap_or_else(|e| panic!("GET {url}: {e}"));
    (resp.status().as_u16(), resp.text().await.expect("body"))
}

/// POSTs a JSON body and returns the status and raw answer.
pub async fn post_raw(collector: &Collector, path: &str, body: &str) -> (u16, String) {
    let url = format!("http://{}{}", collector.http_addr(), path);
    let resp = reqwest::Client::new()
        .post(&url)
        .header("content-type", "application/json")
        .body(body.to_string())
        .send()
        .await
        .unwrap_or_else(|e| panic!("POST {url}: {e}"));
    (resp.status().as_u16(), resp.text().await.expect("body"))
}

/// POSTs a JSON body and parses a successful answer.
pub async fn post<T: DeserializeOwned>(collector: &Collector, path: &str, body: &str) -> T {
    let (status, text) = post_raw(collector, path, body).await;
    assert!((200..300).contains(&status), "POST {path}: {status}: {text}");
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("POST {path}: {e}: {text}"))
}

/// Polls `probe` until it yields `Some`, or panics after `limit` naming `what`.
pub async fn wait_for<T, F, Fut>(what: &str, limit: Duration, mut probe: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let deadline = Instant::now() + limit;
    loop {
        if let Some(v) = probe().await {
            return v;
        }
        assert!(
            Instant::now() < deadline,
            "timed out after {limit:?} waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Faults of `rule` on `host`, newest first.
pub async fn faults_of(collector: &Collector, rule: &str, host: &str) -> Vec<api::Fault> {
    let all: Vec<api::Fault> = get(collector, &format!("/api/v1/faults?host={host}")).await;
    all.into_iter().filter(|f| f.rule == rule).collect()
}

/// Waits for the newest fault of `rule` on `host` to exist.
pub async fn first_fault(collector: &Collector, rule: &str, host: &str, limit: Duration) -> api::Fault {
    wait_for(&format!("a {rule} fault on {host}"), limit, || async {
        faults_of(collector, rule, host).await.into_iter().next()
    })
    .await
}

/// Waits for fault `id` to reach `status`, and returns it with its timeline.
pub async fn fault_in_status(
    collector: &Collector,
    id: i64,
    status: api::FaultStatus,
    limit: Duration,
) -> api::Fault {
    wait_for(
        &format!("fault {id} to be {}", status.as_str()),
        limit,
        || async {
            let f: api::Fault = get(collector, &format!("/api/v1/faults/{id}")).await;
            (f.status == status).then_some(f)
        },
    )
    .await
}

/// Waits for the latest value of the series selected by `query` (e.g.
/// `metric=m&label=v`) to be `value`.
pub async fn latest_value(collector: &Collector, query: &str, value: f64, limit: Duration) {
    wait_for(&format!("{query} to read {value}"), limit, || async {
        let s: Vec<api::Series> = get(collector, &format!("/api/v1/series?{query}")).await;
        (s.first()?.last_value == Some(value)).then_some(())
    })
    .await
}

/// Waits for the latest value of the series selected by `query` to be one
/// `ok` accepts, and returns it.
pub async fn value_where(
    collector: &Collector,
    query: &str,
    limit: Duration,
    ok: impl Fn(f64) -> bool,
) -> f64 {
    wait_for(&format!("{query} to read an expected value"), limit, || async {
        let s: Vec<api::Series> = get(collector, &format!("/api/v1/series?{query}")).await;
        s.first()?.last_value.filter(|v| ok(*v))
    })
    .await
}

/// A collector with the shipped `rules_file` (`for` cut to a second) and an
/// agent called `hostname` watching what `agent_tables` declare (its host
/// metrics off), at a 1 s interval.
pub async fn collector_and_agent(
    rules_file: &str,
    hostname: &str,
    agent_tables: &str,
) -> (tempfile::TempDir, Collector, watchpost_agent::RunningAgent) {
    let data = tempfile::tempdir().expect("tempdir");
    let collector = start_collector(data.path(), &shipped_rules(rules_file, "1s")).await;
    let text = format!(
        "[agent]\ncollector = \"http://{}\"\nhostname = \"{hostname}\"\ninterval = \"1s\"\n\n[host]\nenabled = false\n\n{agent_tables}",
        collector.grpc_addr()
    );
    let config = watchpost_agent::AgentConfig::parse(&text).unwrap_or_else(|e| panic!("{e}\n{text}"));
    let agent = watchpost_agent::start(config);
    (data, collector, agent)
}

/// A collector config from TOML text (as in a `collector.toml`), with the
/// test's ports, data directory and fast heartbeats.
pub fn collector_config_from(data_dir: &Path, toml: &str) -> CollectorConfig {
    let parsed = CollectorConfig::parse(toml, data_dir).unwrap_or_else(|e| panic!("test config: {e}"));
    CollectorConfig {
        grpc_listen: "127.0.0.1:0".parse().expect("valid address"),
        http_listen: "127.0.0.1:0".parse().expect("valid address"),
        data_dir: data_dir.to_path_buf(),
        heartbeat: Duration::from_millis(300),
        security: if toml.contains("[security]") {
            parsed.security
        } else {
            watchpost_collector::config::SecurityConfig::open()
        },
        min_free: if toml.contains("min_free") {
            parsed.min_free
        } else {
            test_min_free()
        },
        ..parsed
    }
}

/// One request an HTTP [`Receiver`] got.
#[derive(Debug, Clone)]
pub struct Received {
    /// Path and query.
    pub uri: String,
    /// Headers (lower-case names).
    pub headers: std::collections::HashMap<String, String>,
    /// Raw body.
    pub body: Vec<u8>,
}

impl Received {
    /// The body as JSON.
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).unwrap_or_else(|e| panic!("body is not JSON: {e}"))
    }

    /// A query parameter (percent-decoded).
    pub fn query(&self, name: &str) -> Option<String> {
        let url = reqwest::Url::parse(&format!("http://x{}", self.uri)).ok()?;
        url.query_pairs()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.into_owned())
    }
}

type Answer = std::sync::Arc<std::sync::Mutex<(u16, String)>>;

/// An HTTP server on loopback standing in for a webhook or a chat robot:
/// records every request and answers with a status and body the test sets.
pub struct Receiver {
    addr: std::net::SocketAddr,
    seen: std::sync::Arc<std::sync::Mutex<Vec<Received>>>,
    answer: Answer,
    task: tokio::task::JoinHandle<()>,
}

impl Receiver {
    /// Starts answering every POST with 200 and `body`.
    pub async fn start(body: &str) -> Receiver {
        let seen: std::sync::Arc<std::sync::Mutex<Vec<Received>>> = Default::default();
        let answer: Answer = std::sync::Arc::new(std::sync::Mutex::new((200, body.to_string())));
        let (s, a) = (seen.clone(), answer.clone());
        let app = axum::Router::new().fallback(move |req: axum::extract::Request| {
            let (s, a) = (s.clone(), a.clone());
            async move {
                let uri = req.uri().to_string();
                let headers = req
                    .headers()
                    .iter()
                    .map(|(k, v)| (k.as_str().to_string(), v.to_str().unwrap_or("").to_string()))
                    .collect();
                let body = axum::body::to_bytes(req.into_body(), 1 << 20)
                    .await
                    .map(|b| b.to_vec())
                    .unwrap_or_default();
                let (status, text) = a.lock().expect("answer").clone();
                if status < 300 {
                    s.lock().expect("seen").push(Received { uri, headers, body });
                }
                (
                    axum::http::StatusCode::from_u16(status).expect("status"),
                    [(axum::http::header::CONTENT_TYPE, "application/json")],
                    text,
                )
            }
        });
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind receiver");
        let addr = listener.local_addr().expect("addr");
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Receiver {
            addr,
            seen,
            answer,
            task,
        }
    }

    /// A URL on this receiver.
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// Requests accepted so far (those answered with a 2xx).
    pub fn requests(&self) -> Vec<Received> {
        self.seen.lock().expect("seen").clone()
    }

    /// Answers from now on with `status` and `body`.
    pub fn answer(&self, status: u16, body: &str) {
        *self.answer.lock().expect("answer") = (status, body.to_string());
    }
}

impl Drop for Receiver {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Where the project's test peers live, installing them first if needed
/// (`tests/peers/setup.sh`). A peer that cannot be installed fails the test.
pub fn peers_dir() -> PathBuf {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let dir = root.join("target/peers");
    let ready = [
        "venv/bin/python",
        "tls/server.pem",
        // tests/peers/snmprec.py's VERSION: older recordings are written again.
        "snmprec/.version-2",
    ]
    .iter()
    .all(|f| dir.join(f).exists())
        && Path::new("/usr/sbin/snmpd").exists()
        && Path::new("/usr/bin/faketime").exists()
        && Path::new("/usr/bin/prometheus").exists()
        && Path::new("/usr/bin/victoria-metrics").exists()
        && Path::new("/usr/bin/chromium").exists()
        && Path::new("/usr/bin/chromedriver").exists()
        && Path::new("/usr/sbin/mariadbd").exists()
        && Path::new("/usr/lib/postgresql").exists()
        && Path::new("/usr/bin/redis-server").exists()
        && Path::new("/usr/sbin/nginx").exists();
    if !ready {
        let out = std::process::Command::new("bash")
            .arg(root.join("tests/peers/setup.sh"))
            .output()
            .expect("run tests/peers/setup.sh");
        assert!(
            out.status.success(),
            "installing the test peers failed (tests/peers/setup.sh):\n{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    dir
}

/// The aiosmtpd server of `tests/peers/smtp_sink.py` on a loopback port;
/// killed when dropped.
pub struct SmtpSink {
    /// Its port.
    pub port: u16,
    /// The CA that signed its certificate (PEM file).
    pub ca_file: PathBuf,
    dir: tempfile::TempDir,
    child: std::process::Child,
}

impl SmtpSink {
    /// Starts it; with `auth` it requires that login, with `starttls` it
    /// requires STARTTLS.
    pub fn start(auth: Option<(&str, &str)>, starttls: bool) -> SmtpSink {
        use std::io::BufRead;
        let peers = peers_dir();
        let dir = tempfile::tempdir().expect("mail dir");
        let root = Path::new(env!("CARGO_MANIFEST_DIR"));
        // The port is picked free here and bound by the sink a moment
        // later; another test's listener can take it in between, so a
        // sink that could not bind is started again on another port.
        let mut last = String::new();
        for _ in 0..5 {
            let port = std::net::TcpListener::bind("127.0.0.1:0")
                .and_then(|l| l.local_addr())
                .expect("free port")
                .port();
            let mut cmd = std::process::Command::new(peers.join("venv/bin/python"));
            cmd.arg(root.join("tests/peers/smtp_sink.py"))
                .args(["--port", &port.to_string(), "--dir"])
                .arg(dir.path())
                .stdout(std::process::Stdio::piped());
            if let Some((u, p)) = auth {
                cmd.args(["--auth", &format!("{u}:{p}")]);
            }
            if starttls {
                cmd.arg("--starttls")
                    .arg(peers.join("tls/server.pem"))
                    .arg(peers.join("tls/server.key"));
            }
            let mut child = cmd.spawn().expect("start the SMTP sink");
            let stdout = child.stdout.take().expect("stdout");
            let mut line = String::new();
            std::io::BufReader::new(stdout)
                .read_line(&mut line)
                .expect("SMTP sink output");
            if line.starts_with("ready") {
                return SmtpSink {
                    port,
                    ca_file: peers.join("tls/ca.pem"),
                    dir,
                    child,
                };
            }
            let _ = child.kill();
            let _ = child.wait();
            last = line;
        }
        panic!("SMTP sink did not start in 5 tries (its error is above): {last:?}");
    }

    /// Mail received so far, in order, as the sink decoded it.
    pub fn mails(&self) -> Vec<serde_json::Value> {
        let mut names: Vec<PathBuf> = std::fs::read_dir(self.dir.path())
            .expect("mail dir")
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|x| x == "json"))
            .collect();
        names.sort();
        names
            .iter()
            .map(|p| serde_json::from_slice(&std::fs::read(p).expect("mail")).expect("mail JSON"))
            .collect()
    }
}

impl Drop for SmtpSink {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A free UDP port on 127.0.0.1 (free when asked; good enough for tests).
pub fn free_udp_port() -> u16 {
    std::net::UdpSocket::bind("127.0.0.1:0")
        .and_then(|s| s.local_addr())
        .expect("free UDP port")
        .port()
}

/// Runs a net-snmp command-line tool (numeric OIDs, no MIB files) and
/// returns its output; panics with its error output when it fails.
pub fn snmp_tool(tool: &str, args: &[&str]) -> String {
    let scratch = std::env::temp_dir().join("watchpost-snmp-tools");
    let out = std::process::Command::new(tool)
        .args(args)
        .env("MIBS", "")
        .env("SNMP_PERSISTENT_DIR", &scratch)
        .output()
        .unwrap_or_else(|e| panic!("run {tool} (installed by tests/peers/setup.sh): {e}"));
    assert!(
        out.status.success(),
        "{tool} {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// The value `snmpget -Oqv` prints for one OID.
pub fn snmp_get_value(port: u16, community: &str, oid: &str) -> String {
    let target = format!("127.0.0.1:{port}");
    snmp_tool(
        "snmpget",
        &["-v2c", "-c", community, "-On", "-Oqv", "-t", "2", &target, oid],
    )
    .trim()
    .to_string()
}

fn wait_until_snmp_answers(port: u16, community: &str, child: &mut std::process::Child, what: &str) {
    let target = format!("127.0.0.1:{port}");
    // Up to 60 s: snmpsim indexes a new recording set before it answers.
    for _ in 0..600 {
        if let Ok(Some(status)) = child.try_wait() {
            panic!("{what} exited at start: {status}");
        }
        let ok = std::process::Command::new("snmpget")
            .args([
                "-v2c",
                "-c",
                community,
                "-t",
                "0.2",
                "-r",
                "0",
                &target,
                "1.3.6.1.2.1.1.3.0",
            ])
            .env("MIBS", "")
            .env(
                "SNMP_PERSISTENT_DIR",
                std::env::temp_dir().join("watchpost-snmp-tools"),
            )
            .output()
            .is_ok_and(|o| o.status.success());
        if ok {
            return;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    panic!("{what} did not answer on 127.0.0.1:{port} within 60 s");
}

/// net-snmp's `snmpd` on a loopback port, with a v2c community and a v3
/// authPriv user (SHA-256, AES-128); killed when dropped.
pub struct Snmpd {
    /// Its UDP port.
    pub port: u16,
    _dir: tempfile::TempDir,
    child: std::process::Child,
}

impl Snmpd {
    /// v2c community.
    pub const COMMUNITY: &'static str = "wptest";
    /// v3 user.
    pub const USER: &'static str = "wpuser";
    /// v3 authentication password (SHA-256).
    pub const AUTH: &'static str = "authpass123";
    /// v3 privacy password (AES-128).
    pub const PRIV: &'static str = "privpass123";

    /// Starts it on a free port.
    pub fn start() -> Snmpd {
        Self::start_on(free_udp_port())
    }

    /// Starts it on `port` (to restart a device at the same address).
    pub fn start_on(port: u16) -> Snmpd {
        let _ = peers_dir();
        let dir = tempfile::tempdir().expect("snmpd dir");
        let conf = dir.path().join("snmpd.conf");
        std::fs::write(
            &conf,
            format!(
                "rocommunity {} 127.0.0.1\ncreateUser {} SHA-256 {} AES {}\nrouser {} priv\nsysName watchpost-test\ndontLogTCPWrappersConnects yes\n",
                Self::COMMUNITY,
                Self::USER,
                Self::AUTH,
                Self::PRIV,
                Self::USER
            ),
        )
        .expect("write snmpd.conf");
        let mut child = std::process::Command::new("/usr/sbin/snmpd")
            .args(["-f", "-Ln", "-C", "-c"])
            .arg(&conf)
            .arg("-p")
            .arg(dir.path().join("snmpd.pid"))
            .arg(format!("udp:127.0.0.1:{port}"))
            .env("MIBS", "")
            .env("SNMP_PERSISTENT_DIR", dir.path().join("persist"))
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("start snmpd (installed by tests/peers/setup.sh)");
        wait_until_snmp_answers(port, Self::COMMUNITY, &mut child, "snmpd");
        Snmpd {
            port,
            _dir: dir,
            child,
        }
    }
}

impl Drop for Snmpd {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// snmpsim serving the simulated devices of `tests/peers/snmprec.py` (the
/// community is the device's file name, e.g. `huawei-s5735`); killed when
/// dropped.
pub struct Snmpsim {
    /// Its UDP port.
    pub port: u16,
    child: std::process::Child,
    _dirs: [tempfile::TempDir; 2],
}

impl Snmpsim {
    /// Starts it serving the named recordings (file names without
    /// `.snmprec`); returns once it answers. The simulator is
    /// single-threaded: give a big device its own instance so that its
    /// walks do not starve the others.
    pub fn start(devices: &[&str]) -> Snmpsim {
        let peers = peers_dir();
        // Copies, not links: snmpsim names a community after the real path.
        let data = tempfile::tempdir().expect("snmpsim data dir");
        for d in devices {
            let file = format!("{d}.snmprec");
            std::fs::copy(peers.join("snmprec").join(&file), data.path().join(&file))
                .expect("copy a recording");
        }
        let port = free_udp_port();
        let cache = tempfile::tempdir().expect("snmpsim cache dir");
        let mut child = std::process::Command::new(peers.join("venv/bin/snmpsim-command-responder"))
            .arg(format!("--data-dir={}", data.path().display()))
            .arg(format!("--agent-udpv4-endpoint=127.0.0.1:{port}"))
            // Its own index cache: two simulators indexing one cache collide.
            .arg(format!("--cache-dir={}", cache.path().display()))
            .arg("--logging-method=null")
            // snmpsim refuses to run as root unless told which user to stay.
            .args(if is_root() {
                &["--process-user=root", "--process-group=root"][..]
            } else {
                &[]
            })
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("start snmpsim (installed by tests/peers/setup.sh)");
        wait_until_snmp_answers(port, devices[0], &mut child, "snmpsim");
        Snmpsim {
            port,
            child,
            _dirs: [data, cache],
        }
    }
}

impl Drop for Snmpsim {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn is_root() -> bool {
    std::fs::read_to_string("/proc/self/status").is_ok_and(|s| {
        s.lines()
            .find(|l| l.starts_with("Uid:"))
            .and_then(|l| l.split_whitespace().nth(1))
            == Some("0")
    })
}

/// The pymodbus sensor of `tests/peers/modbus_sim.py` on a loopback port
/// (unit 1; input registers preset from `inputs`); killed when dropped.
pub struct ModbusSim {
    /// Its TCP port.
    pub port: u16,
    child: std::process::Child,
}

impl ModbusSim {
    /// Starts it; returns once it listens.
    pub fn start(inputs: &[(u16, u16)]) -> ModbusSim {
        use std::io::BufRead;
        let peers = peers_dir();
        let root = Path::new(env!("CARGO_MANIFEST_DIR"));
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("free port")
            .port();
        let mut cmd = std::process::Command::new(peers.join("venv/bin/python"));
        cmd.arg(root.join("tests/peers/modbus_sim.py"))
            .args(["--port", &port.to_string()])
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::null());
        for (a, v) in inputs {
            cmd.args(["--input", &format!("{a}={v}")]);
        }
        let mut child = cmd.spawn().expect("start the Modbus simulator");
        let stdout = child.stdout.take().expect("stdout");
        let mut line = String::new();
        std::io::BufReader::new(stdout)
            .read_line(&mut line)
            .expect("Modbus simulator output");
        assert!(
            line.starts_with("ready"),
            "Modbus simulator did not start: {line:?}"
        );
        ModbusSim { port, child }
    }
}

impl Drop for ModbusSim {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A shipped rule file (`examples/rules/<file>`) with every `for` shortened
/// to `wait`, so that tests exercise the shipped rules without waiting
/// minutes.
pub fn shipped_rules(file: &str, wait: &str) -> String {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let text = std::fs::read_to_string(root.join("examples/rules").join(file)).expect("shipped rules");
    let mut out = String::new();
    for line in text.lines() {
        let mut l = line.to_string();
        for d in ["30s", "1m", "2m", "5m", "10m", "15m"] {
            l = l.replace(&format!("for = \"{d}\""), &format!("for = \"{wait}\""));
        }
        out.push_str(&l);
        out.push('\n');
    }
    out
}
