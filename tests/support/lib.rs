//! Harness for the end-to-end tests: a real collector and real agents in
//! this process, on loopback ports the OS picks, with temporary data
//! directories. Waiting is always on a condition with a deadline.

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
        ..Default::default()
    }
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

/// A collector config from TOML text (as in a `collector.toml`), with the
/// test's ports, data directory and fast heartbeats.
pub fn collector_config_from(data_dir: &Path, toml: &str) -> CollectorConfig {
    let parsed = CollectorConfig::parse(toml, data_dir).unwrap_or_else(|e| panic!("test config: {e}"));
    CollectorConfig {
        grpc_listen: "127.0.0.1:0".parse().expect("valid address"),
        http_listen: "127.0.0.1:0".parse().expect("valid address"),
        data_dir: data_dir.to_path_buf(),
        heartbeat: Duration::from_millis(300),
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
    if !dir.join("venv/bin/python").exists() || !dir.join("tls/server.pem").exists() {
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
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("free port")
            .port();
        let root = Path::new(env!("CARGO_MANIFEST_DIR"));
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
        assert!(line.starts_with("ready"), "SMTP sink did not start: {line:?}");
        SmtpSink {
            port,
            ca_file: peers.join("tls/ca.pem"),
            dir,
            child,
        }
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
