//! The Watchpost agent: collects the host's metrics (and `*.prom` text
//! files) on a fixed interval and streams them to a collector.
//!
//! Two parts with one channel between them: a collection thread that
//! gathers rounds from the [`sources`] (blocking reads of `/proc` stay off
//! the async runtime) and the [`link`] task that owns the gRPC stream,
//! numbering, the [`spool`] and acknowledgements.

pub mod config;
pub mod inventory;
pub mod link;
pub mod series;
pub mod sources;
pub mod spool;
pub mod time;

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use tokio::sync::{mpsc, watch};
use watchpost_proto::v1::{Hello, PROTOCOL_VERSION};

pub use config::AgentConfig;
use series::{Round, SeriesRegistry};
use sources::{Mode, Sources};
use time::now_ms;

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

/// Runs `task` on a new thread with its own current-thread runtime, so that
/// a source's network waits never touch the link's runtime.
pub(crate) fn spawn_runtime_thread(name: &str, task: impl std::future::Future<Output = ()> + Send + 'static) {
    let thread_name = name.to_string();
    let spawned = std::thread::Builder::new()
        .name(thread_name.clone())
        .spawn(
            move || match tokio::runtime::Builder::new_current_thread().enable_all().build() {
                Ok(rt) => rt.block_on(task),
                Err(e) => tracing::error!(thread = %thread_name, error = %e, "cannot start a runtime"),
            },
        );
    if let Err(e) = spawned {
        tracing::error!(thread = %name, error = %e, "cannot start a thread");
    }
}

/// Starts an agent: the collection thread and the link task. A spool
/// directory that cannot be opened is logged and replaced by a memory
/// buffer; [`start_with`] lets the caller refuse to run instead.
pub fn start(config: AgentConfig) -> RunningAgent {
    let spool = match spool::Spool::open(&config.spool) {
        Ok(s) => s,
        Err(e) => {
            tracing::error!(error = %e, "spool unusable: buffering in memory only");
            spool::Spool::memory(config.spool.memory_batches)
        }
    };
    start_with(config, spool)
}

/// Starts an agent over an opened spool.
pub fn start_with(config: AgentConfig, spool: spool::Spool) -> RunningAgent {
    let hostname = config.hostname.clone().unwrap_or_else(os_hostname);
    let id = config.id.clone().unwrap_or_else(|| hostname.clone());
    let hello = Hello {
        agent_id: id.clone(),
        hostname: hostname.clone(),
        version: VERSION.to_string(),
        labels: config.labels.clone().into_iter().collect(),
        auth_token: config.credential(),
        enroll_token: config.enroll_token.clone(),
        protocol_version: PROTOCOL_VERSION,
        heartbeat_interval_ms: config.heartbeat.as_millis().min(u128::from(u32::MAX)) as u32,
        sent_at_ms: 0,
    };
    let inventory = Arc::new(inventory::Board::default());
    let link_config = link::LinkConfig {
        collector: config.collector.clone(),
        hello,
        heartbeat: config.heartbeat,
        inventory: inventory.clone(),
        tls: config.tls.clone(),
        credential_file: config.credential_file.clone(),
    };
    let (round_tx, round_rx) = mpsc::channel::<Round>(16);
    let (shutdown, shutdown_rx) = watch::channel(false);
    spawn_collection(config, round_tx, spool.stats(), inventory);
    let task = tokio::spawn(link::run(link_config, spool, round_rx, shutdown_rx));
    RunningAgent {
        shutdown,
        task,
        id,
        hostname,
    }
}

fn spawn_collection(
    config: AgentConfig,
    rounds: mpsc::Sender<Round>,
    spool: Arc<spool::SpoolStats>,
    inventory: Arc<inventory::Board>,
) {
    let spawned = std::thread::Builder::new()
        .name("watchpost-collect".into())
        .spawn(move || {
            let mut registry = SeriesRegistry::new(config.labels.clone());
            let mut own = OwnMetrics::new(&mut registry, spool, config.spool.dir.clone());
            // Sources on their own schedule (probes, SNMP, Modbus) publish
            // here and wake us.
            let (wake_tx, wake) = std::sync::mpsc::sync_channel::<()>(1);
            let published = series::Published::with_inventory(wake_tx, inventory);
            let mut reader = series::PublishedReader::default();
            let mut sources = Sources::start(&config, &mut registry, &published, Mode::Stream);
            let mut next = Instant::now();
            let mut capacity = 64;
            let mut full_round = true;
            loop {
                let mut round = Round {
                    timestamp_ms: now_ms(),
                    definitions: Vec::new(),
                    samples: Vec::with_capacity(capacity),
                    offsets_ms: Vec::new(),
                    texts: Vec::new(),
                };
                if !full_round {
                    // Woken early: send only what was published.
                    reader.collect(&published, &mut registry, &mut round);
                    round.definitions = registry.take_new();
                    if !round.samples.is_empty() && rounds.blocking_send(round).is_err() {
                        return;
                    }
                    full_round = wait(&wake, next);
                    continue;
                }
                sources.collect(&mut registry, &mut round);
                reader.collect(&published, &mut registry, &mut round);
                own.collect(&mut round);
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
                full_round = wait(&wake, next);
                if rounds.is_closed() {
                    return;
                }
            }
        });
    if let Err(e) = spawned {
        tracing::error!(error = %e, "cannot start the collection thread");
    }
}

/// Collects once from every configured source and returns the samples as
/// text lines, `metric{label="value",...} value`, sorted. For
/// `watchpost-agent --once`: an operator checks a probe, a switch or a
/// sensor from the poller host without a collector. Host rates need two
/// readings, so the host is read twice, a second apart. Returns when every
/// probe, SNMP device and Modbus device has reported once, or after `wait`.
pub fn collect_once(config: AgentConfig, wait: Duration) -> Vec<String> {
    let mut registry = SeriesRegistry::new(config.labels.clone());
    let (wake_tx, _wake) = std::sync::mpsc::sync_channel::<()>(1);
    let published = series::Published::new(wake_tx);
    let mut sources = Sources::start(&config, &mut registry, &published, Mode::Once { wait });
    let mut round = Round {
        timestamp_ms: now_ms(),
        ..Default::default()
    };
    // Host rates need two readings: this first one only primes them.
    if let Some(h) = sources.host.as_mut() {
        h.collect(&mut registry, &mut round);
    }
    let mut expected: Vec<(&str, String)> = config
        .snmp
        .devices
        .iter()
        .map(|d| ("snmp_up", d.name.clone()))
        .collect();
    expected.extend(
        config
            .modbus
            .devices
            .iter()
            .map(|d| ("modbus_up", d.name.clone())),
    );
    let mut measured: Vec<series::Measured> = Vec::new();
    let deadline = Instant::now() + wait;
    let started = Instant::now();
    loop {
        measured.extend(published.take_all());
        let devices_done = expected.iter().all(|(metric, device)| {
            measured
                .iter()
                .any(|m| m.metric == *metric && m.labels.iter().any(|(k, v)| k == "device" && v == device))
        });
        let probes_done = sources
            .probes
            .as_ref()
            .is_none_or(sources::probe::ProbeSource::has_results);
        let host_done = sources.host.is_none() || started.elapsed() >= Duration::from_secs(1);
        if (devices_done && probes_done && host_done) || Instant::now() >= deadline {
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let mut round = Round {
        timestamp_ms: now_ms(),
        ..Default::default()
    };
    sources.collect(&mut registry, &mut round);
    measured.extend(published.take_all());
    series::PublishedReader::default().add(measured, &mut registry, &mut round);
    let definitions: std::collections::HashMap<u32, watchpost_proto::v1::SeriesDefinition> =
        registry.take_new().into_iter().map(|d| (d.id, d)).collect();
    let mut lines: Vec<String> = round
        .samples
        .iter()
        .filter_map(|(id, value)| {
            let d = definitions.get(id)?;
            let labels: Vec<String> = d
                .labels
                .iter()
                .map(|l| format!("{}={:?}", l.name, l.value))
                .collect();
            Some(format!("{}{{{}}} {value}", d.metric, labels.join(",")))
        })
        .collect();
    lines.sort();
    lines.dedup();
    lines
}

/// Sleeps until `next` (true: time for a full round) or until a source
/// publishes (false), then lets a burst of publications gather for 50 ms.
fn wait(wake: &std::sync::mpsc::Receiver<()>, next: Instant) -> bool {
    let now = Instant::now();
    if next <= now {
        return true;
    }
    match wake.recv_timeout(next - now) {
        Ok(()) => {
            let gather = Instant::now() + Duration::from_millis(50);
            if gather >= next {
                std::thread::sleep(next.saturating_duration_since(Instant::now()));
                return true;
            }
            std::thread::sleep(Duration::from_millis(50));
            false
        }
        Err(std::sync::mpsc::RecvTimeoutError::Timeout) => true,
        // No source holds a sender any more: plain sleeping.
        Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => {
            std::thread::sleep(next.saturating_duration_since(Instant::now()));
            true
        }
    }
}

/// The agent's figures about itself, sent with every full round:
/// `agent_rounds_total` (full rounds since the agent started: a gap in it
/// at the collector is lost data), the spool's `agent_spool_*`, and with a
/// spool directory `agent_spool_disk_free_bytes` (space left to spool on,
/// for a rule to warn before it fills).
struct OwnMetrics {
    rounds: u64,
    ids: [u32; 6],
    spool: Arc<spool::SpoolStats>,
    disk: Option<(std::path::PathBuf, u32)>,
}

impl OwnMetrics {
    const NAMES: [&str; 6] = [
        "agent_rounds_total",
        "agent_spool_bytes",
        "agent_spool_pending_batches",
        "agent_spool_dropped_batches_total",
        "agent_spool_dropped_samples_total",
        "agent_spool_quarantined_segments_total",
    ];

    fn new(
        registry: &mut SeriesRegistry,
        spool: Arc<spool::SpoolStats>,
        dir: Option<std::path::PathBuf>,
    ) -> OwnMetrics {
        OwnMetrics {
            rounds: 0,
            ids: Self::NAMES.map(|m| registry.define(m, &[])),
            spool,
            disk: dir.map(|d| (d, registry.define("agent_spool_disk_free_bytes", &[]))),
        }
    }

    fn collect(&mut self, round: &mut Round) {
        self.rounds += 1;
        let s = &self.spool;
        let values = [
            self.rounds,
            s.bytes.load(Ordering::Relaxed),
            s.pending_batches.load(Ordering::Relaxed),
            s.dropped_batches.load(Ordering::Relaxed),
            s.dropped_samples.load(Ordering::Relaxed),
            s.quarantined_segments.load(Ordering::Relaxed),
        ];
        let at = round.timestamp_ms;
        // The agent's own spool directory, on a local disk: read inline.
        let free = self.disk.as_ref().and_then(|(dir, id)| {
            let st = sources::host::statfs::statvfs(&dir.to_string_lossy())?;
            Some((*id, st.bavail.saturating_mul(st.frsize)))
        });
        for (id, v) in self.ids.iter().copied().zip(values).chain(free) {
            if round.offsets_ms.is_empty() {
                round.samples.push((id, v as f64));
            } else {
                round.push_at(id, v as f64, at);
            }
        }
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
