//! What the benchmarks share: the workspace's own binaries beside this
//! one, a `watchpost-collector` process with a data directory of its own,
//! and a simulated agent over the real protocol that counts acks. Built
//! on the test harness (`watchpost_tests::process`, `raw_agent`), so the
//! tests and the benchmarks start the collector the same way.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context, bail};
use tokio::sync::{mpsc, watch};
use watchpost_proto::v1::{
    AgentMessage, Batch, SeriesDefinition, SeriesDefinitions, agent_message, collector_message,
};
use watchpost_tests::process::{ChildProcess, CollectorProcess, wait_http_ok};
use watchpost_tests::raw_agent::{RawAgent, agent_message, hello};

/// A binary of this workspace beside the running bench (`target/release/NAME`).
pub fn sibling_binary(name: &str) -> anyhow::Result<PathBuf> {
    let exe = std::env::current_exe()?;
    let path = exe.parent().context("bench binary has no directory")?.join(name);
    if !path.exists() {
        bail!(
            "{} not found: run `cargo build --release --workspace` first",
            path.display()
        );
    }
    Ok(path)
}

/// A `watchpost-collector` process with its own data directory.
pub struct CollectorProc {
    pub proc: ChildProcess,
    /// Where agents connect (`http://` or `https://`).
    pub grpc: String,
    /// The API's base URL.
    pub http: String,
    _dir: tempfile::TempDir,
}

pub async fn start_collector(rules_toml: &str) -> anyhow::Result<CollectorProc> {
    start_collector_with(rules_toml, "").await
}

/// The CA simulated agents trust when the collector's URL is `https://`.
pub static BENCH_CA: std::sync::OnceLock<Vec<u8>> = std::sync::OnceLock::new();

/// A collector with `extra` TOML appended to its config (e.g. `[tls]`);
/// with `[tls]` its gRPC URL is `https://`.
pub async fn start_collector_with(rules_toml: &str, extra: &str) -> anyhow::Result<CollectorProc> {
    let dir = tempfile::tempdir()?;
    std::fs::create_dir_all(dir.path().join("rules"))?;
    std::fs::write(dir.path().join("rules/bench.toml"), rules_toml)?;
    std::fs::write(
        dir.path().join("collector.toml"),
        format!(
            "[collector]\ndata_dir = \"data\"\nrules = [\"rules/*.toml\"]\nwindow = \"2h\"\nmax_series_per_agent = 1000000\n\n# Simulated agents and the bench's own reads: no enrolment, no users.\n[security]\nagents = \"open\"\napi = \"open\"\n\n{extra}"
        ),
    )?;
    let config = dir.path().join("collector.toml").to_string_lossy().to_string();
    let c = CollectorProcess::new(sibling_binary("watchpost-collector")?, &["--config", &config]);
    let proc = c.start();
    let http = c.api();
    wait_http_ok(&format!("{http}/healthz"), Duration::from_secs(20))
        .await
        .map_err(anyhow::Error::msg)?;
    let scheme = if extra.contains("[tls]") { "https" } else { "http" };
    Ok(CollectorProc {
        proc,
        grpc: format!("{scheme}://{}", c.grpc_addr()),
        http,
        _dir: dir,
    })
}

/// A minimal agent over the real protocol.
pub struct SimAgent {
    tx: mpsc::Sender<AgentMessage>,
    acked: watch::Receiver<u64>,
    /// The collector's last applied sequence for this agent id, from the welcome.
    pub last_sequence: u64,
}

impl SimAgent {
    pub async fn connect(grpc: &str, id: &str, defs: Vec<SeriesDefinition>) -> anyhow::Result<SimAgent> {
        let ca = if grpc.starts_with("https://") {
            Some(BENCH_CA.get().context("no CA for an https collector")?.as_slice())
        } else {
            None
        };
        let raw = RawAgent::open(grpc, ca, hello(id, "bench", 3000))
            .await
            .map_err(anyhow::Error::msg)?;
        let (tx, mut inbound) = (raw.tx, raw.rx);
        let first = inbound.message().await?.and_then(|m| m.body);
        let Some(collector_message::Body::Welcome(welcome)) = first else {
            bail!("no welcome: {first:?}");
        };
        let (ack_tx, acked) = watch::channel(0u64);
        tokio::spawn(async move {
            while let Ok(Some(m)) = inbound.message().await {
                match m.body {
                    Some(collector_message::Body::Ack(a)) => {
                        ack_tx.send_replace(a.sequence);
                    }
                    Some(collector_message::Body::Error(e)) => {
                        eprintln!("collector error: {} ({})", e.message, e.code);
                        return;
                    }
                    _ => {}
                }
            }
        });
        for chunk in defs.chunks(2000) {
            tx.send(agent_message(agent_message::Body::Definitions(
                SeriesDefinitions {
                    series: chunk.to_vec(),
                },
            )))
            .await?;
        }
        Ok(SimAgent {
            tx,
            acked,
            last_sequence: welcome.last_sequence,
        })
    }

    pub async fn send(&mut self, batch: Batch) -> anyhow::Result<()> {
        self.tx
            .send(agent_message(agent_message::Body::Batch(batch)))
            .await
            .context("stream closed")
    }

    pub async fn wait_acked(&mut self, seq: u64) -> anyhow::Result<()> {
        self.acked
            .wait_for(|a| *a >= seq)
            .await
            .context("stream closed before ack")?;
        Ok(())
    }
}
