//! The Watchpost agent: collects the host's metrics (and `*.prom` text
//! files) on a fixed interval and streams them to a collector.
//!
//! Two parts with one channel between them: a collection thread (blocking
//! reads of `/proc` and `statvfs` stay off the async runtime, and a hung
//! mount cannot stall the stream) and the [`link`] task that owns the gRPC
//! stream, numbering, buffering and acknowledgements.

pub mod config;
pub mod host;
pub mod link;
pub mod probe;
pub mod series;
pub mod textfile;

use std::time::Instant;

use tokio::sync::{mpsc, watch};
use watchpost_proto::v1::{Hello, PROTOCOL_VERSION};

pub use config::AgentConfig;
use series::{Round, SeriesRegistry};

/// The agent's software version, sent in its hello.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");

/// An agent running on the current tokio runtime.
pub struct RunningAgent {
    shutdown: watch::Sender<bool>,
    task: tokio::task::JoinHandle<()>,
    /// The id it sends in its hello.
    pub id: String,
    /// The hostname it reports.
    pub hostname: String,
}

impl RunningAgent {
    /// Stops collecting and closes the stream.
    pub async fn stop(self) {
        let _ = self.shutdown.send(true);
        let _ = self.task.await;
    }

    /// Ends the agent at once, as a crash would: no goodbye to the collector.
    pub fn kill(self) {
        self.task.abort();
    }

    /// Waits until the agent ends by itself (it does not, unless stopped).
    pub async fn wait(self) {
        let _ = self.task.await;
    }
}

/// The hostname the OS reports, or `"unknown"`.
pub fn os_hostname() -> String {
    sysinfo::System::host_name().unwrap_or_else(|_| "unknown".to_string())
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

/// Starts an agent: the collection thread and the link task.
pub fn start(config: AgentConfig) -> RunningAgent {
    let hostname = config.hostname.clone().unwrap_or_else(os_hostname);
    let id = config.id.clone().unwrap_or_else(|| hostname.clone());
    let hello = Hello {
        agent_id: id.clone(),
        hostname: hostname.clone(),
        version: VERSION.to_string(),
        labels: config.labels.clone().into_iter().collect(),
        auth_token: config.auth_token.clone(),
        protocol_version: PROTOCOL_VERSION,
        heartbeat_interval_ms: config.heartbeat.as_millis().min(u128::from(u32::MAX)) as u32,
    };
    let link_config = link::LinkConfig {
        collector: config.collector.clone(),
        hello,
        heartbeat: config.heartbeat,
        buffer_batches: config.buffer_batches,
    };
    let (round_tx, round_rx) = mpsc::channel::<Round>(16);
    let (shutdown, shutdown_rx) = watch::channel(false);
    spawn_collection(config, round_tx);
    let task = tokio::spawn(link::run(link_config, round_rx, shutdown_rx));
    RunningAgent {
        shutdown,
        task,
        id,
        hostname,
    }
}

fn spawn_collection(config: AgentConfig, rounds: mpsc::Sender<Round>) {
    let spawned = std::thread::Builder::new()
        .name("watchpost-collect".into())
        .spawn(move || {
            let mut registry = SeriesRegistry::new(config.labels.clone());
            let mut host = config
                .host
                .enabled
                .then(|| host::HostCollector::new(config.host.clone(), &mut registry));
            let mut textfile = config.textfile_dir.as_deref().map(textfile::TextfileSource::new);
            let mut probes = (!config.probes.is_empty())
                .then(|| probe::ProbeSource::start(config.probes.clone(), config.interval));
            let mut next = Instant::now();
            let mut capacity = 64;
            loop {
                let mut round = Round {
                    timestamp_ms: now_ms(),
                    definitions: Vec::new(),
                    samples: Vec::with_capacity(capacity),
                };
                if let Some(h) = host.as_mut() {
                    h.collect(&mut registry, &mut round);
                }
                if let Some(t) = textfile.as_mut() {
                    t.collect(&mut registry, &mut round);
                }
                if let Some(p) = probes.as_mut() {
                    p.collect(&mut registry, &mut round);
                }
                round.definitions = registry.take_new();
                capacity = round.samples.len().max(capacity);
                if rounds.blocking_send(round).is_err() {
                    return; // the link is gone: the agent is stopping
                }
                next += config.interval;
                let now = Instant::now();
                if next <= now {
                    // We fell behind (suspend, overload): skip missed rounds rather than burst.
                    next = now + config.interval;
                }
                std::thread::sleep(next - now);
                if rounds.is_closed() {
                    return;
                }
            }
        });
    if let Err(e) = spawned {
        tracing::error!(error = %e, "cannot start the collection thread");
    }
}

/// Waits for SIGINT or SIGTERM.
pub async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term = match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(t) => t,
            Err(_) => {
                let _ = ctrl_c.await;
                return;
            }
        };
        tokio::select! {
            _ = ctrl_c => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    {
        let _ = ctrl_c.await;
    }
}
