//! The Watchpost collector: takes agent streams over gRPC, keeps a recent
//! window of every series in memory, evaluates rules as samples arrive and
//! on a clock, keeps fault records in SQLite, and serves the HTTP API.
//!
//! Data flow: [`ingest`] → [`store`] → [`rules`] → [`faults`] → [`db`] →
//! [`notify`]; [`http`] on top reads the store, the agent registry and the
//! database, and writes people's actions through [`faults`].
//! [`Collector::start`] wires the stages; the binary only parses flags.

pub mod access;
pub mod agents;
pub mod backup;
pub mod clock_offset;
pub mod config;
pub mod console;
pub mod db;
pub mod faults;
pub mod health;
pub mod history;
pub mod http;
pub mod ingest;
pub mod journal;
pub mod listen;
pub mod maintenance;
pub mod matchers;
pub mod notify;
pub mod oncall;
pub mod remote_write;
pub mod reports;
pub mod rules;
pub mod store;
pub mod telemetry;
pub mod template;
pub mod time;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;
use tokio::task::JoinHandle;

pub use config::CollectorConfig;
use db::Database;
use faults::{Command, FaultKey, Faults};
use rules::RuleSet;
use rules::engine::Engine;

/// The collector's software version.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");

pub use time::{Clock, SystemClock};

/// Why the collector could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// The database.
    #[error(transparent)]
    Db(#[from] db::DbError),
    /// A notification channel could not be set up.
    #[error("notifications: {0}")]
    Notify(String),
    /// The TLS certificate or key could not be used.
    #[error("tls: {0}")]
    Tls(String),
    /// The access database could not be opened.
    #[error(transparent)]
    Access(#[from] access::AccessError),
    /// The history directory could not be opened or read.
    #[error("history: {0}")]
    History(String),
    /// The samples journal could not be opened.
    #[error(transparent)]
    Journal(#[from] journal::JournalError),
    /// A `[[remote_write]]` destination could not be set up.
    #[error("{0}")]
    RemoteWrite(String),
    /// Another collector holds the data directory.
    #[error(
        "data directory {dir} is in use by another watchpost-collector ({holder}); stop it, or give this one another collector.data_dir"
    )]
    Locked {
        /// The data directory.
        dir: std::path::PathBuf,
        /// Who holds it, as its lock file says.
        holder: String,
    },
    /// The data directory's lock file could not be used.
    #[error("data directory {dir}: cannot take its lock file: {source}")]
    Lock {
        /// The data directory.
        dir: std::path::PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// A listener could not bind.
    #[error("cannot listen on {addr} ({what}): {source}")]
    Bind {
        /// gRPC or HTTP.
        what: &'static str,
        /// The address.
        addr: SocketAddr,
        /// Why.
        source: std::io::Error,
    },
}

/// The shared parts every stage reaches.
pub struct Core {
    /// Checked config.
    pub config: CollectorConfig,
    /// Hot store.
    pub store: Arc<store::HotStore>,
    /// Rule engine.
    pub engine: Engine,
    /// Durable records: reads.
    pub db: Database,
    /// The fault stage: every write to the durable record.
    pub faults: Faults,
    /// Applied samples, durable before their batch is acknowledged.
    pub journal: journal::Journal,
    /// Minute and hour rollups beyond the hot window.
    pub history: Arc<history::History>,
    /// Known agents.
    pub agents: agents::AgentRegistry,
    /// Users, tokens, agent credentials and the audit log.
    pub access: access::Access,
    /// Own metrics.
    pub telemetry: telemetry::Telemetry,
    /// The collector's own health: its disk, its writes, its channels.
    pub health: Arc<health::Health>,
    /// Where the collector's own faults go when they cannot be recorded.
    pub direct: tokio::sync::mpsc::UnboundedSender<notify::direct::DirectNotice>,
    /// The gRPC and the HTTP listener's admission.
    pub gates: [Arc<listen::Gate>; 2],
    /// Time source.
    pub clock: Arc<dyn Clock>,
    /// Each `[[remote_write]]` destination's counters.
    pub remote_write: Vec<Arc<remote_write::Stats>>,
    /// The web console's signed-in browsers.
    pub console: console::session::Sessions,
    /// Permits to apply a replayed batch (`collector.max_concurrent_replays`).
    pub replays: tokio::sync::Semaphore,
}

/// HTTP/2 receive window of an agent's stream and of its connection.
const RECEIVE_WINDOW: u32 = 256 * 1024;

/// A running collector.
pub struct Collector {
    core: Arc<Core>,
    /// Held for the process's life: one collector per data directory.
    _lock: std::fs::File,
    grpc_addr: SocketAddr,
    http_addr: SocketAddr,
    shutdown: watch::Sender<bool>,
    tasks: Vec<JoinHandle<()>>,
}

impl Collector {
    /// Opens the database, restores open faults, binds both listeners and
    /// starts serving. `rules` must already be checked.
    pub async fn start(config: CollectorConfig, rules: RuleSet) -> Result<Collector, StartError> {
        Self::start_with_clock(config, rules, Arc::new(SystemClock)).await
    }

    /// As [`Collector::start`], with a given clock.
    pub async fn start_with_clock(
        config: CollectorConfig,
        rules: RuleSet,
        clock: Arc<dyn Clock>,
    ) -> Result<Collector, StartError> {
        let lock = lock_data_dir(&config.data_dir)?;
        let health = Arc::new(health::Health::new(
            clock.clone(),
            &config.data_dir,
            config.min_free,
            config.notify.channel_failing_after_ms,
        ));
        let (faults, db) = Faults::open(
            &config.data_dir,
            faults::FaultSettings {
                policy: config.policy,
                calendar: config.calendar.clone(),
                reopen_within_ms: time::millis(config.reopen_within),
                notify: config.notify.clone(),
                health: health.clone(),
                flap: config.flap,
            },
        )?;
        let store = Arc::new(store::HotStore::new(config.window.as_millis() as i64));
        let engine = Engine::new(store.clone(), rules);
        let now = clock.now_ms();
        let mut transitions = Vec::new();
        let live = db
            .open_faults()
            .await?
            .into_iter()
            .map(|(rule, series, severity)| {
                (
                    FaultKey {
                        rule: Arc::from(rule.as_str()),
                        series,
                    },
                    severity,
                )
            });
        engine.restore(live.collect(), now, &mut transitions);
        if !transitions.is_empty() {
            faults
                .write(transitions.into_iter().map(Command::Fault).collect())
                .await?;
        }
        // Before the replay: chunks the replay pushes out of the window
        // are kept until the history has rolled them up.
        let history = history::History::open(
            &config.data_dir.join("history"),
            store.clone(),
            clock.clone(),
            health.clone(),
            config.history,
        )
        .map_err(StartError::History)?;
        // After the open faults: binding a replayed series seeds its fault's state.
        let (journal, replayed) = journal::Journal::open(
            &config.data_dir.join("journal"),
            store.clone(),
            clock.clone(),
            health.clone(),
            &|id| engine.bind_series(id),
        )?;
        if replayed.samples > 0 || !replayed.sequences.is_empty() {
            tracing::info!(
                samples = replayed.samples,
                agents = replayed.sequences.len(),
                quarantined = replayed.quarantined,
                "hot store restored from the journal"
            );
        }
        // Before any sample is accepted: each destination holds the journal
        // segments it has not sent.
        let remote_write = config
            .remote_write
            .iter()
            .map(|c| remote_write::Destination::prepare(c.clone(), &journal, &config.data_dir))
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| StartError::RemoteWrite(e.to_string()))?;
        let marked = history.restore_marks().map_err(StartError::History)?;
        if marked > 0 {
            tracing::info!(series = marked, "history marks restored");
        }
        let access = access::Access::open(&config.data_dir)?;
        let agents = agents::AgentRegistry::default();
        agents.load(db.agents().await?, now);
        agents.restore_sequences(replayed.sequences, now);
        // One descriptor per agent stream and per HTTP client, twice over
        // the connection caps, and the database's and files' own.
        let wanted = 2 * config.limits.total as u64 + 1024;
        match listen::raise_fd_limit() {
            Some(n) if n < wanted => tracing::warn!(
                open_files = n,
                wanted,
                "the open-file limit is below 2 x collector.max_connections + 1024: raise LimitNOFILE"
            ),
            _ => {}
        }
        let grpc = listen::bind(config.grpc_listen).map_err(|source| StartError::Bind {
            what: "gRPC",
            addr: config.grpc_listen,
            source,
        })?;
        let http = listen::bind(config.http_listen).map_err(|source| StartError::Bind {
            what: "HTTP",
            addr: config.http_listen,
            source,
        })?;
        let grpc_addr = grpc.local_addr().map_err(|source| StartError::Bind {
            what: "gRPC",
            addr: config.grpc_listen,
            source,
        })?;
        let http_addr = http.local_addr().map_err(|source| StartError::Bind {
            what: "HTTP",
            addr: config.http_listen,
            source,
        })?;
        let damaged = (replayed.damaged_spans, replayed.damaged_bytes);
        let (direct, direct_rx) = tokio::sync::mpsc::unbounded_channel();
        let limits = config.limits;
        let grpc_gate = listen::Gate::new("grpc", limits.per_address, limits.total, clock.clone());
        let http_gate = listen::Gate::new("http", limits.per_address, limits.total, clock.clone());
        let console =
            console::session::Sessions::new(config.console.session_idle_ms, config.calendar.time_zone_name());
        let core = Arc::new(Core {
            replays: tokio::sync::Semaphore::new(limits.replays),
            console,
            config,
            store,
            engine,
            db,
            faults,
            journal,
            history: Arc::new(history),
            agents,
            access,
            telemetry: telemetry::Telemetry::default(),
            clock,
            health,
            direct,
            gates: [grpc_gate.clone(), http_gate.clone()],
            remote_write: remote_write
                .iter()
                .map(remote_write::Destination::stats)
                .collect(),
        });
        core.telemetry
            .journal_damaged_spans
            .store(damaged.0, std::sync::atomic::Ordering::Relaxed);
        core.telemetry
            .journal_damaged_bytes
            .store(damaged.1, std::sync::atomic::Ordering::Relaxed);
        let (shutdown, shutdown_rx) = watch::channel(false);
        let mut tasks = Vec::new();

        let service = watchpost_proto::v1::ingest_server::IngestServer::new(ingest::IngestService::new(
            core.clone(),
            shutdown_rx.clone(),
        ))
        .max_decoding_message_size(16 * 1024 * 1024);
        let mut stop = shutdown_rx.clone();
        // Dead peers are found by HTTP/2 pings; idle sockets by the gate.
        // The receive windows bound what one connection can have buffered
        // unread (hyper's default is 1 MiB each): with ten thousand agents
        // that is the difference between 2.5 and 10 GiB at worst.
        let mut server = tonic::transport::Server::builder()
            .http2_keepalive_interval(Some(Duration::from_secs(30)))
            .http2_keepalive_timeout(Some(Duration::from_secs(10)))
            .initial_stream_window_size(RECEIVE_WINDOW)
            .initial_connection_window_size(RECEIVE_WINDOW);
        if let Some(tls) = &core.config.tls {
            let mut t = tonic::transport::ServerTlsConfig::new()
                .identity(tonic::transport::Identity::from_pem(&tls.cert_pem, &tls.key_pem));
            if let Some(ca) = &tls.client_ca_pem {
                t = t.client_ca_root(tonic::transport::Certificate::from_pem(ca));
            }
            server = server.tls_config(t).map_err(|e| StartError::Tls(e.to_string()))?;
        }
        tasks.push(tokio::spawn(async move {
            let incoming = listen::grpc_incoming(grpc, grpc_gate, limits.hello_timeout);
            let result = server
                .add_service(service)
                .serve_with_incoming_shutdown(incoming, async move {
                    let _ = stop.wait_for(|s| *s).await;
                })
                .await;
            if let Err(e) = result {
                tracing::error!(error = %e, "gRPC server failed");
            }
        }));

        let app = http::router(core.clone());
        let acceptor = match core.config.tls.as_ref().filter(|t| t.http) {
            Some(tls) => Some(tls_acceptor(tls).map_err(StartError::Tls)?),
            None => None,
        };
        tasks.push(tokio::spawn(listen::serve_http(
            http,
            app,
            acceptor,
            http_gate,
            limits,
            shutdown_rx.clone(),
        )));

        if core.config.notify.is_enabled() {
            let dispatcher = notify::dispatch::Dispatcher::new(
                core.faults.clone(),
                core.config.notify.clone(),
                core.clock.clone(),
                core.config.calendar.time_zone().clone(),
            )
            .map_err(StartError::Notify)?
            .with_health(core.health.clone(), direct_rx);
            tasks.push(tokio::spawn(dispatcher.run(shutdown_rx.clone())));
        }
        for d in remote_write {
            tasks.push(tokio::spawn(d.run(shutdown_rx.clone())));
        }
        tasks.push(tokio::spawn(history_loop(core.clone(), shutdown_rx.clone())));
        tasks.push(tokio::spawn(reports::schedule::run(
            core.clone(),
            shutdown_rx.clone(),
        )));
        tasks.push(tokio::spawn(clock_loop(core.clone(), shutdown_rx)));
        tracing::info!(grpc = %grpc_addr, http = %http_addr, rules = core.engine.rule_count(), data_dir = %core.config.data_dir.display(), "collector listening");
        Ok(Collector {
            core,
            _lock: lock,
            grpc_addr,
            http_addr,
            shutdown,
            tasks,
        })
    }

    /// Where agents connect.
    pub fn grpc_addr(&self) -> SocketAddr {
        self.grpc_addr
    }

    /// Where the API is served.
    pub fn http_addr(&self) -> SocketAddr {
        self.http_addr
    }

    /// The shared parts (for tests and the binary).
    pub fn core(&self) -> &Arc<Core> {
        &self.core
    }

    /// Puts a new, checked rule set in force (SIGHUP).
    pub async fn reload_rules(&self, rules: RuleSet) -> Result<(), db::DbError> {
        let mut transitions = Vec::new();
        self.core
            .engine
            .replace_rules(rules, self.core.clock.now_ms(), &mut transitions);
        tracing::info!(
            rules = self.core.engine.rule_count(),
            resolved = transitions.len(),
            "rules reloaded"
        );
        if transitions.is_empty() {
            return Ok(());
        }
        self.core
            .faults
            .write(transitions.into_iter().map(Command::Fault).collect())
            .await
    }

    /// Stops serving: agent sessions finish the batch in hand, acknowledge
    /// it and close; then the journal and agent state are flushed.
    pub async fn shutdown(self) {
        let _ = self.shutdown.send(true);
        for t in self.tasks {
            let _ = tokio::time::timeout(Duration::from_secs(5), t).await;
        }
        self.core.journal.sync().await;
        let seen = self.core.agents.take_seen();
        if !seen.is_empty() {
            let _ = self.core.faults.write(vec![Command::AgentsSeen(seen)]).await;
        }
    }
}

/// Takes `<dir>/lock` for this process's life (released by the OS when it
/// ends, however it ends) and writes the process id into it, so a second
/// collector on the same directory is refused naming the first.
fn lock_data_dir(dir: &std::path::Path) -> Result<std::fs::File, StartError> {
    use std::io::{Read, Seek, Write};
    let err = |source| StartError::Lock {
        dir: dir.to_path_buf(),
        source,
    };
    std::fs::create_dir_all(dir).map_err(err)?;
    let mut file = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .read(true)
        .write(true)
        .open(dir.join("lock"))
        .map_err(err)?;
    match file.try_lock() {
        Ok(()) => {}
        Err(std::fs::TryLockError::WouldBlock) => {
            let mut holder = String::new();
            let _ = file.read_to_string(&mut holder);
            let holder = match holder.trim() {
                "" => "a process that has not written its id yet".to_string(),
                h => h.to_string(),
            };
            return Err(StartError::Locked {
                dir: dir.to_path_buf(),
                holder,
            });
        }
        Err(std::fs::TryLockError::Error(e)) => return Err(err(e)),
    }
    let me = format!("pid {} on {}", std::process::id(), health::hostname());
    file.set_len(0)
        .and_then(|()| file.rewind())
        .and_then(|()| file.write_all(me.as_bytes()))
        .and_then(|()| file.sync_all())
        .map_err(err)?;
    Ok(file)
}

/// Runs a history pass every `history.flush` (sooner when chunks that
/// left the window wait for it), off the runtime; a failed pass is retried
/// at the next tick and reported through the collector's health.
async fn history_loop(core: Arc<Core>, mut shutdown: watch::Receiver<bool>) {
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut last = core.clock.now_ms();
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            _ = shutdown.wait_for(|s| *s) => return,
        }
        let now = core.clock.now_ms();
        if !core.history.pass_due(now - last) {
            continue;
        }
        let history = core.history.clone();
        let pass = tokio::task::spawn_blocking(move || {
            let before = thread_cpu_ns();
            let r = history.pass();
            (r, thread_cpu_ns().saturating_sub(before))
        });
        let result = pass.await.map(|(r, ns)| {
            core.telemetry
                .history_pass_cpu_ns
                .fetch_add(ns, std::sync::atomic::Ordering::Relaxed);
            r
        });
        match result {
            Ok(Ok(r)) => {
                last = now;
                core.telemetry
                    .history_passes
                    .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                if r.samples > 0 || r.sealed > 0 || r.deleted > 0 {
                    tracing::debug!(
                        series = r.series,
                        samples = r.samples,
                        bytes = r.bytes,
                        sealed = r.sealed,
                        deleted = r.deleted,
                        "history pass"
                    );
                }
            }
            Ok(Err(e)) => tracing::warn!(error = %e, "history pass failed; retried"),
            Err(e) => tracing::error!(error = %e, "history pass panicked"),
        }
    }
}

/// CPU time of the calling thread (ns).
fn thread_cpu_ns() -> u64 {
    let t = rustix::time::clock_gettime(rustix::time::ClockId::ThreadCPUTime);
    (t.tv_sec as u64).saturating_mul(1_000_000_000) + t.tv_nsec as u64
}

/// Once a second: the data directory's disk is measured; time-based rules
/// (absence, agent silence, the collector's own health), missed deadlines
/// and ended maintenance windows; every ten seconds: agents' last-seen
/// times to the database. The collector's own faults that cannot be
/// recorded are sent directly.
async fn clock_loop(core: Arc<Core>, mut shutdown: watch::Receiver<bool>) {
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut n: u64 = 0;
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            _ = shutdown.wait_for(|s| *s) => return,
        }
        n += 1;
        let now = core.clock.now_ms();
        core.health.measure_disk(Duration::from_millis(800)).await;
        let mut transitions = Vec::new();
        let started = std::time::Instant::now();
        let mut health = core.health.snapshot();
        health.clocks_off = core.agents.clocks_off(core.config.clock.max_offset_ms);
        core.engine
            .tick(now, &core.agents.statuses(), &health, &mut transitions);
        core.telemetry.rule_eval_ns.fetch_add(
            started.elapsed().as_nanos() as u64,
            std::sync::atomic::Ordering::Relaxed,
        );
        core.telemetry
            .rule_evals
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let changes = transitions.len() as u64;
        let direct: Vec<notify::direct::DirectNotice> = transitions
            .iter()
            .filter_map(|t| direct_notice(&core, t))
            .collect();
        let mut commands: Vec<Command> = transitions.into_iter().map(Command::Fault).collect();
        // Deadlines, window ends (and the notifications they cause) to the second.
        commands.push(Command::Tick { now_ms: now });
        if n.is_multiple_of(10) {
            let seen = core.agents.take_seen();
            if !seen.is_empty() {
                commands.push(Command::AgentsSeen(seen));
            }
        }
        {
            core.telemetry
                .fault_transitions
                .fetch_add(changes, std::sync::atomic::Ordering::Relaxed);
            if let Err(e) = core.faults.write(commands).await {
                if core.health.is_failing(health::Store::Database) {
                    tracing::debug!(error = %e, "cannot record time-based fault changes");
                } else {
                    tracing::error!(error = %e, "cannot record time-based fault changes");
                }
                for notice in direct {
                    let _ = core.direct.send(notice);
                }
            }
        }
    }
}

/// The notice to send directly if `t`, a change of one of the collector's
/// own faults that tells people something (it opened, or became urgent),
/// cannot be recorded.
fn direct_notice(core: &Core, t: &faults::Transition) -> Option<notify::direct::DirectNotice> {
    use faults::Transition;
    if !core.engine.is_collector_rule(&t.key().rule) {
        return None;
    }
    let health = core.health.snapshot();
    let (kind, severity, summary, value, at_ms, host, labels) = match t {
        Transition::Open(f) => (
            notify::Kind::Opened,
            f.severity,
            f.summary.clone(),
            f.value,
            f.at_ms,
            f.host.clone(),
            f.labels.clone(),
        ),
        // Only the disk fault rises (to urgent, when writes fail).
        Transition::Raise {
            severity: watchpost_model::Severity::Urgent,
            summary,
            value,
            at_ms,
            ..
        } => (
            notify::Kind::Urgent,
            watchpost_model::Severity::Urgent,
            summary.clone(),
            Some(*value),
            *at_ms,
            health.host.clone(),
            std::collections::BTreeMap::from([
                ("host".to_string(), health.host.clone()),
                ("data_dir".to_string(), health.data_dir.clone()),
            ]),
        ),
        _ => return None,
    };
    Some(notify::direct::DirectNotice {
        rule: t.key().rule.to_string(),
        series: t.key().series.clone(),
        kind,
        severity,
        summary,
        host,
        labels,
        value,
        at_ms,
    })
}

/// The HTTP API's TLS acceptor from the `[tls]` certificate and key.
fn tls_acceptor(tls: &config::TlsConfig) -> Result<tokio_rustls::TlsAcceptor, String> {
    use rustls_pki_types::pem::PemObject;
    let certs = rustls_pki_types::CertificateDer::pem_slice_iter(&tls.cert_pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| format!("tls.cert_file: {e}"))?;
    let key = rustls_pki_types::PrivateKeyDer::from_pem_slice(&tls.key_pem)
        .map_err(|e| format!("tls.key_file: {e}"))?;
    let mut config = tokio_rustls::rustls::ServerConfig::builder()
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .map_err(|e| format!("tls: {e}"))?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(tokio_rustls::TlsAcceptor::from(Arc::new(config)))
}
