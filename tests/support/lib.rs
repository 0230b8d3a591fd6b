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
    let mut c = AgentConfig::local(&format!("http://{}", collector.grpc_addr()));
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
