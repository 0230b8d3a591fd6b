//! The collector's TOML config (`--config FILE`), checked once at load into
//! a [`CollectorConfig`]. Defaults live here and only here.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;
use watchpost_calendar::{Calendar, PolicyConfig, SeverityPolicy};
use watchpost_model::HumanDuration;

use crate::clock_offset::{ClockPolicy, Skew};
use crate::health::MinFree;
use crate::notify::{self, NotifyConfig};
use crate::oncall::Roster;
use crate::reports::checklist::Checklist;
use crate::time;
use std::sync::Arc;

/// Default gRPC ingest address.
pub const DEFAULT_GRPC_LISTEN: &str = "127.0.0.1:9810";
/// Default HTTP address.
pub const DEFAULT_HTTP_LISTEN: &str = "127.0.0.1:9811";
/// Default data directory.
pub const DEFAULT_DATA_DIR: &str = "./watchpost-data";

/// Why a config could not be used.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("cannot read collector config {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// Syntax, unknown key or bad value; the message has line and column.
    #[error("invalid collector config {path}: {message}")]
    Invalid {
        /// The file.
        path: PathBuf,
        /// What and where.
        message: String,
    },
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawFile {
    #[serde(default)]
    collector: RawCollector,
    #[serde(default)]
    severity: PolicyConfig,
    #[serde(default)]
    notify: notify::RawNotify,
    #[serde(default)]
    channel: Vec<notify::RawChannel>,
    #[serde(default)]
    route: Vec<notify::RawRoute>,
    #[serde(default)]
    parents: std::collections::BTreeMap<String, String>,
    tls: Option<RawTls>,
    #[serde(default)]
    security: RawSecurity,
    #[serde(default)]
    changes: RawChanges,
    #[serde(default)]
    history: RawHistory,
    #[serde(default)]
    reports: RawReports,
    #[serde(default)]
    backup: crate::backup::RawBackup,
    #[serde(default)]
    remote_write: Vec<crate::remote_write::RawRemoteWrite>,
    #[serde(default)]
    console: RawConsole,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawConsole {
    session_idle: Option<HumanDuration>,
}

/// `[console]`, checked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConsoleConfig {
    /// A console session unused this long is signed out (`console.session_idle`).
    pub session_idle_ms: i64,
}

impl Default for ConsoleConfig {
    fn default() -> Self {
        ConsoleConfig {
            session_idle_ms: 30 * 60_000,
        }
    }
}

impl ConsoleConfig {
    fn check(raw: RawConsole) -> Result<ConsoleConfig, String> {
        let session_idle_ms = raw
            .session_idle
            .map_or(ConsoleConfig::default().session_idle_ms, |d| time::millis(d.0));
        if !(1000..=7 * 86_400_000).contains(&session_idle_ms) {
            return Err("key console.session_idle: expected 1s to 7d".into());
        }
        Ok(ConsoleConfig { session_idle_ms })
    }
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawReports {
    service_hours: Option<String>,
    availability_target: Option<f64>,
    language: Option<String>,
    group_labels: Option<Vec<String>>,
    daily_at: Option<String>,
    monthly_at: Option<String>,
    send_to: Option<Vec<String>>,
}

/// When service time counts (`reports.service_hours`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ServiceHours {
    /// Around the clock (`"7x24"`).
    Always,
    /// The working calendar's working hours (`"calendar"`, the "5x8" of many contracts).
    Calendar,
}

/// `[reports]`, checked.
#[derive(Debug, Clone, PartialEq)]
pub struct ReportsConfig {
    /// What service time is.
    pub service_hours: ServiceHours,
    /// Availability target (%).
    pub availability_target: f64,
    /// `zh` or `en`.
    pub language: String,
    /// Labels faults are counted by (business system, host group).
    pub group_labels: Vec<String>,
    /// When the day before's inspection record is made (calendar zone).
    pub daily_at: jiff::civil::Time,
    /// When, on the 1st, the month before's statistics are made.
    pub monthly_at: jiff::civil::Time,
    /// Teams or persons of the roster the scheduled reports are sent to.
    pub send_to: Vec<String>,
}

impl Default for ReportsConfig {
    fn default() -> Self {
        ReportsConfig {
            service_hours: ServiceHours::Always,
            availability_target: 99.9,
            language: "zh".into(),
            group_labels: vec!["system".into()],
            daily_at: jiff::civil::Time::constant(8, 30, 0, 0),
            monthly_at: jiff::civil::Time::constant(9, 0, 0, 0),
            send_to: Vec::new(),
        }
    }
}

impl ReportsConfig {
    fn check(raw: RawReports, roster: &Roster) -> Result<ReportsConfig, String> {
        let d = ReportsConfig::default();
        let service_hours = match raw.service_hours.as_deref() {
            None | Some("7x24") | Some("7×24") => ServiceHours::Always,
            Some("calendar") => ServiceHours::Calendar,
            Some(o) => {
                return Err(format!(
                    "key reports.service_hours: {o:?}: expected \"7x24\" or \"calendar\" (the working calendar's hours)"
                ));
            }
        };
        let availability_target = raw.availability_target.unwrap_or(d.availability_target);
        if !(0.0..=100.0).contains(&availability_target) {
            return Err(format!(
                "key reports.availability_target: {availability_target} is not a percentage (0 to 100)"
            ));
        }
        let language = raw.language.unwrap_or(d.language);
        if language != "zh" && language != "en" {
            return Err(format!(
                "key reports.language: {language:?}: expected \"zh\" or \"en\""
            ));
        }
        let group_labels = raw.group_labels.unwrap_or(d.group_labels);
        for l in &group_labels {
            watchpost_model::names::check_label_name(l)
                .map_err(|e| format!("key reports.group_labels: {e}"))?;
        }
        let time = |key: &str, v: Option<String>, d: jiff::civil::Time| match v {
            None => Ok(d),
            Some(s) => s
                .trim()
                .parse::<jiff::civil::Time>()
                .ok()
                .filter(|_| s.trim().len() == 5)
                .ok_or_else(|| format!("key reports.{key}: {s:?}: expected HH:MM, e.g. \"08:30\"")),
        };
        let send_to = raw.send_to.unwrap_or_default();
        for name in &send_to {
            let known = roster.teams.iter().any(|t| &t.name == name)
                || roster
                    .teams
                    .iter()
                    .flat_map(|t| t.members())
                    .any(|m| &m.name == name);
            if !known {
                return Err(format!(
                    "key reports.send_to: {name:?} is neither a team nor a person of the roster (collector.oncall)"
                ));
            }
        }
        Ok(ReportsConfig {
            service_hours,
            availability_target,
            language,
            group_labels,
            daily_at: time("daily_at", raw.daily_at, d.daily_at)?,
            monthly_at: time("monthly_at", raw.monthly_at, d.monthly_at)?,
            send_to,
        })
    }
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawHistory {
    minute_retention: Option<HumanDuration>,
    hour_retention: Option<HumanDuration>,
    flush: Option<HumanDuration>,
}

/// `[history]`, checked.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct HistoryConfig {
    /// Minute rollups kept (ms).
    pub minute_retention_ms: i64,
    /// Hour rollups kept (ms).
    pub hour_retention_ms: i64,
    /// Time between passes (ms).
    pub flush_ms: i64,
}

impl Default for HistoryConfig {
    fn default() -> Self {
        HistoryConfig {
            minute_retention_ms: 45 * 86_400_000,
            hour_retention_ms: 400 * 86_400_000,
            flush_ms: 30 * 60_000,
        }
    }
}

impl HistoryConfig {
    fn check(raw: RawHistory, window: Duration) -> Result<HistoryConfig, String> {
        let d = HistoryConfig::default();
        let ms = |v: Option<HumanDuration>, d: i64| v.map_or(d, |v| time::millis(v.0));
        let h = HistoryConfig {
            minute_retention_ms: ms(raw.minute_retention, d.minute_retention_ms),
            hour_retention_ms: ms(raw.hour_retention, d.hour_retention_ms),
            flush_ms: ms(raw.flush, d.flush_ms.min(time::millis(window) / 2)),
        };
        if h.minute_retention_ms < 86_400_000 {
            return Err("key history.minute_retention: below the minimum of 1d".into());
        }
        if h.hour_retention_ms < h.minute_retention_ms {
            return Err("key history.hour_retention: shorter than history.minute_retention".into());
        }
        if h.flush_ms < 1000 {
            return Err("key history.flush: below the minimum of 1s".into());
        }
        if h.flush_ms > time::millis(window) / 2 {
            return Err(format!(
                "key history.flush: {} is more than half of collector.window ({}): a crash could lose samples the journal no longer holds",
                watchpost_model::format_duration(Duration::from_millis(h.flush_ms as u64)),
                watchpost_model::format_duration(window)
            ));
        }
        Ok(h)
    }
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawChanges {
    max_window: Option<HumanDuration>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawTls {
    cert_file: PathBuf,
    key_file: PathBuf,
    client_ca_file: Option<PathBuf>,
    #[serde(default = "yes")]
    http: bool,
}

fn yes() -> bool {
    true
}

/// TLS for the agents' gRPC stream: the collector's certificate and key,
/// and with `client_ca_file` mutual TLS (agents must present a certificate
/// that CA signed). PEM text, read at load.
#[derive(Debug, Clone)]
pub struct TlsConfig {
    /// Certificate chain (PEM).
    pub cert_pem: Vec<u8>,
    /// Private key (PEM).
    pub key_pem: Vec<u8>,
    /// CA for client certificates (PEM); set means mTLS is required.
    pub client_ca_pem: Option<Vec<u8>>,
    /// Serve the HTTP API over TLS too (with the same certificate).
    pub http: bool,
}

fn read_pem(base: &Path, file: &Path, key: &str, marker: &str) -> Result<Vec<u8>, String> {
    let path = base.join(file);
    let pem = std::fs::read(&path).map_err(|e| format!("key {key}: cannot read {}: {e}", path.display()))?;
    if !String::from_utf8_lossy(&pem).contains(marker) {
        return Err(format!(
            "key {key}: {} holds no PEM block containing {marker:?}",
            path.display()
        ));
    }
    Ok(pem)
}

impl TlsConfig {
    fn check(raw: RawTls, base: &Path) -> Result<TlsConfig, String> {
        Ok(TlsConfig {
            cert_pem: read_pem(base, &raw.cert_file, "tls.cert_file", "BEGIN CERTIFICATE")?,
            key_pem: read_pem(base, &raw.key_file, "tls.key_file", "PRIVATE KEY")?,
            client_ca_pem: raw
                .client_ca_file
                .map(|f| read_pem(base, &f, "tls.client_ca_file", "BEGIN CERTIFICATE"))
                .transpose()?,
            http: raw.http,
        })
    }
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawCollector {
    grpc_listen: Option<SocketAddr>,
    http_listen: Option<SocketAddr>,
    data_dir: Option<PathBuf>,
    rules: Option<Vec<String>>,
    window: Option<HumanDuration>,
    heartbeat: Option<HumanDuration>,
    max_series_per_agent: Option<usize>,
    max_series_total: Option<usize>,
    max_samples_per_batch: Option<usize>,
    calendar: Option<PathBuf>,
    reopen_within: Option<HumanDuration>,
    oncall: Option<PathBuf>,
    inspections: Option<PathBuf>,
    min_free: Option<String>,
    clock_skew: Option<String>,
    clock_tolerance: Option<HumanDuration>,
    max_clock_offset: Option<HumanDuration>,
    hello_timeout: Option<HumanDuration>,
    max_connections_per_address: Option<usize>,
    max_connections: Option<usize>,
    max_concurrent_replays: Option<usize>,
    flap_threshold: Option<u32>,
    flap_window: Option<HumanDuration>,
}

/// A checked collector config.
#[derive(Debug, Clone)]
pub struct CollectorConfig {
    /// gRPC ingest address.
    pub grpc_listen: SocketAddr,
    /// HTTP API address.
    pub http_listen: SocketAddr,
    /// Where SQLite lives.
    pub data_dir: PathBuf,
    /// Rule file globs.
    pub rules: Vec<String>,
    /// Directory relative rule globs are resolved against.
    pub rules_base: PathBuf,
    /// Samples kept per series.
    pub window: Duration,
    /// Heartbeat period on agent streams.
    pub heartbeat: Duration,
    /// Most series one agent may define.
    pub max_series_per_agent: usize,
    /// Series the collector holds in all: past it, new series of any agent
    /// are refused (with a notice to that agent), existing ones keep flowing.
    pub max_series_total: usize,
    /// Most samples one batch may carry; a larger batch is refused whole
    /// (with a notice naming the limit) and acknowledged so it is not resent.
    pub max_samples_per_batch: usize,
    /// Response and resolve durations per severity.
    pub policy: SeverityPolicy,
    /// The working calendar deadlines are counted on.
    pub calendar: Calendar,
    /// A resolved fault that fires again within this time reopens.
    pub reopen_within: Duration,
    /// Channels, routes, escalation, templates and parents, and the on-call
    /// roster they name (also what `GET /api/v1/oncall` answers from).
    pub notify: Arc<NotifyConfig>,
    /// TLS (and optionally mTLS) on the gRPC ingest; `None` is plaintext.
    pub tls: Option<TlsConfig>,
    /// Who may stream and who may use the API.
    pub security: SecurityConfig,
    /// Free space the data directory's disk should keep; below it the
    /// built-in `collector_disk_low` fault opens.
    pub min_free: MinFree,
    /// What is done about agents whose clock is off.
    pub clock: ClockPolicy,
    /// How long connections may stay open doing nothing, and how many.
    pub limits: ConnectionLimits,
    /// The longest window a change request may ask for (`changes.max_window`).
    pub change_max_window: Duration,
    /// When a fault counts as flapping (`collector.flap_threshold`, `flap_window`).
    pub flap: FlapPolicy,
    /// Rollups kept beyond the hot window.
    pub history: HistoryConfig,
    /// What the reports count and how they read.
    pub reports: ReportsConfig,
    /// The manual inspection checklist (`collector.inspections`).
    pub checklist: Checklist,
    /// `[backup]`.
    pub backup: crate::backup::BackupConfig,
    /// `[[remote_write]]`: where applied samples are shipped.
    pub remote_write: Vec<crate::remote_write::RemoteWriteConfig>,
    /// `[console]`: the web console's sessions.
    pub console: ConsoleConfig,
    /// The files this config was read from (itself, calendar, roster,
    /// checklist, TLS), for backups.
    pub sources: Vec<PathBuf>,
}

/// A fault whose state changed more than `threshold` times within
/// `window_ms` is flapping: its changes are recorded, not notified, until
/// it has been stable for `window_ms`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FlapPolicy {
    /// Changes allowed within the window (at least 2).
    pub threshold: u32,
    /// The window (ms).
    pub window_ms: i64,
}

impl Default for FlapPolicy {
    fn default() -> Self {
        FlapPolicy {
            threshold: 6,
            window_ms: 30 * 60 * 1000,
        }
    }
}

/// Bounds on connections to both listeners, so idle sockets cannot exhaust
/// the collector's file descriptors.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConnectionLimits {
    /// A gRPC connection without a valid hello by then is closed
    /// (`collector.hello_timeout`).
    pub hello_timeout: Duration,
    /// HTTP: the request head must arrive within this.
    pub header_timeout: Duration,
    /// HTTP: a connection with nothing read or written for this long is
    /// closed (idle keep-alive, a stalled body).
    pub http_idle: Duration,
    /// HTTP: a request body must arrive whole within this.
    pub body_timeout: Duration,
    /// Connections from one address, per listener
    /// (`collector.max_connections_per_address`).
    pub per_address: usize,
    /// Connections in all, per listener (`collector.max_connections`).
    pub total: usize,
    /// Streams applying a replayed (late) batch at once
    /// (`collector.max_concurrent_replays`); the others wait unread, their
    /// backlog held by their agent's spool, so a restart under thousands of
    /// agents with backlogs stays within memory and live batches go first.
    pub replays: usize,
}

impl Default for ConnectionLimits {
    fn default() -> Self {
        ConnectionLimits {
            hello_timeout: Duration::from_secs(10),
            header_timeout: Duration::from_secs(10),
            http_idle: Duration::from_secs(60),
            body_timeout: Duration::from_secs(30),
            per_address: 64,
            total: 20_000,
            replays: 64,
        }
    }
}

/// `[security]`: whether agents must be enrolled and the API needs users.
/// Both default to the strict choice; `open` is for a lab or a test.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SecurityConfig {
    /// Agents need a credential from enrolment (`agents = "enrolled"`).
    pub agents_enrolled: bool,
    /// The API needs a user or token (`api = "users"`).
    pub api_users: bool,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawSecurity {
    agents: Option<String>,
    api: Option<String>,
}

impl SecurityConfig {
    fn check(raw: RawSecurity) -> Result<SecurityConfig, String> {
        let agents_enrolled = match raw.agents.as_deref() {
            None | Some("enrolled") => true,
            Some("open") => false,
            Some(o) => {
                return Err(format!(
                    "key security.agents: {o:?}: expected \"enrolled\" or \"open\""
                ));
            }
        };
        let api_users = match raw.api.as_deref() {
            None | Some("users") => true,
            Some("open") => false,
            Some(o) => return Err(format!("key security.api: {o:?}: expected \"users\" or \"open\"")),
        };
        Ok(SecurityConfig {
            agents_enrolled,
            api_users,
        })
    }

    /// Everything open (tests, labs).
    pub fn open() -> SecurityConfig {
        SecurityConfig {
            agents_enrolled: false,
            api_users: false,
        }
    }
}

impl Default for CollectorConfig {
    fn default() -> Self {
        Self::check(RawFile::default(), Path::new(".")).expect("defaults are valid")
    }
}

impl CollectorConfig {
    /// Reads and checks a config file; relative paths in it are relative to it.
    pub fn load(path: &Path) -> Result<CollectorConfig, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        let base = path.parent().map(Path::to_path_buf).unwrap_or_default();
        let mut c = Self::parse(&text, &base).map_err(|message| ConfigError::Invalid {
            path: path.to_path_buf(),
            message,
        })?;
        c.sources.insert(0, path.to_path_buf());
        Ok(c)
    }

    /// Checks config text.
    pub fn parse(text: &str, base: &Path) -> Result<CollectorConfig, String> {
        let raw: RawFile = toml::from_str(text).map_err(|e| e.to_string().trim_end().to_string())?;
        Self::check(raw, base)
    }

    fn check(raw: RawFile, base: &Path) -> Result<CollectorConfig, String> {
        let c = raw.collector;
        let parse_addr = |s: &str| s.parse::<SocketAddr>().expect("default address is valid");
        let window = c.window.map_or(Duration::from_secs(3600), |d| d.0);
        if window < Duration::from_secs(60) {
            return Err(format!(
                "key collector.window: {window:?} is below the minimum of 1m"
            ));
        }
        let heartbeat = c.heartbeat.map_or(Duration::from_secs(3), |d| d.0);
        if heartbeat < Duration::from_millis(100) {
            return Err(format!(
                "key collector.heartbeat: {heartbeat:?} is below the minimum of 100ms"
            ));
        }
        let policy = raw.severity.check()?;
        let calendar = match &c.calendar {
            Some(file) => {
                // `join` keeps an absolute path as it is.
                Calendar::load(&base.join(file)).map_err(|e| format!("key collector.calendar: {e}"))?
            }
            None => Calendar::default(),
        };
        let roster = match &c.oncall {
            Some(file) => Roster::load(&base.join(file), calendar.time_zone())
                .map_err(|e| format!("key collector.oncall: {e}"))?,
            None => Roster::default(),
        };
        let checklist = match &c.inspections {
            Some(file) => {
                Checklist::load(&base.join(file)).map_err(|e| format!("key collector.inspections: {e}"))?
            }
            None => Checklist::default(),
        };
        let reports = ReportsConfig::check(raw.reports, &roster)?;
        let sources: Vec<PathBuf> = [c.calendar.as_ref(), c.oncall.as_ref(), c.inspections.as_ref()]
            .into_iter()
            .flatten()
            .cloned()
            .chain(raw.tls.iter().flat_map(|t| {
                [
                    Some(t.cert_file.clone()),
                    Some(t.key_file.clone()),
                    t.client_ca_file.clone(),
                ]
                .into_iter()
                .flatten()
            }))
            .map(|f| base.join(f))
            .collect();
        let http_listen = c.http_listen.unwrap_or_else(|| parse_addr(DEFAULT_HTTP_LISTEN));
        let notify = NotifyConfig::check(
            notify::RawParts {
                notify: raw.notify,
                channels: raw.channel,
                routes: raw.route,
                parents: raw.parents,
            },
            roster,
            &http_listen.to_string(),
            base,
        )?;
        let data_dir = c.data_dir.unwrap_or_else(|| PathBuf::from(DEFAULT_DATA_DIR));
        let data_dir = if data_dir.is_relative() && base != Path::new(".") {
            base.join(data_dir)
        } else {
            data_dir
        };
        let backup = crate::backup::BackupConfig::check(raw.backup, base, &data_dir)?;
        let remote_write = crate::remote_write::RemoteWriteConfig::check_all(raw.remote_write, base)?;
        Ok(CollectorConfig {
            grpc_listen: c.grpc_listen.unwrap_or_else(|| parse_addr(DEFAULT_GRPC_LISTEN)),
            http_listen,
            data_dir,
            rules: c.rules.unwrap_or_default(),
            rules_base: base.to_path_buf(),
            window,
            heartbeat,
            max_series_per_agent: c.max_series_per_agent.unwrap_or(100_000),
            max_series_total: c.max_series_total.unwrap_or(5_000_000),
            max_samples_per_batch: c.max_samples_per_batch.unwrap_or(1_000_000).max(1),
            policy,
            calendar,
            reopen_within: c.reopen_within.map_or(Duration::from_secs(600), |d| d.0),
            notify: Arc::new(notify),
            tls: raw.tls.map(|t| TlsConfig::check(t, base)).transpose()?,
            security: SecurityConfig::check(raw.security)?,
            clock: {
                let d = ClockPolicy::default();
                ClockPolicy {
                    skew: match c.clock_skew.as_deref() {
                        None | Some("correct") => Skew::Correct,
                        Some("refuse") => Skew::Refuse,
                        Some(o) => {
                            return Err(format!(
                                "key collector.clock_skew: {o:?}: expected \"correct\" or \"refuse\""
                            ));
                        }
                    },
                    tolerance_ms: c.clock_tolerance.map_or(d.tolerance_ms, |t| time::millis(t.0)),
                    max_offset_ms: c.max_clock_offset.map_or(d.max_offset_ms, |t| time::millis(t.0)),
                }
            },
            history: HistoryConfig::check(raw.history, window)?,
            reports,
            checklist,
            backup,
            remote_write,
            console: ConsoleConfig::check(raw.console)?,
            sources,
            change_max_window: raw
                .changes
                .max_window
                .map_or(Duration::from_secs(7 * 86_400), |d| d.0),
            flap: {
                let d = FlapPolicy::default();
                let threshold = c.flap_threshold.unwrap_or(d.threshold);
                if threshold < 2 {
                    return Err(format!(
                        "key collector.flap_threshold: {threshold} is below 2: a fault opens and resolves at least once"
                    ));
                }
                let window_ms = c.flap_window.map_or(d.window_ms, |w| time::millis(w.0));
                if window_ms < 1000 {
                    return Err("key collector.flap_window: below the minimum of 1s".into());
                }
                FlapPolicy { threshold, window_ms }
            },
            limits: {
                let d = ConnectionLimits::default();
                let hello_timeout = c.hello_timeout.map_or(d.hello_timeout, |t| t.0);
                if hello_timeout < Duration::from_millis(100) {
                    return Err(format!(
                        "key collector.hello_timeout: {hello_timeout:?} is below the minimum of 100ms"
                    ));
                }
                let per_address = c.max_connections_per_address.unwrap_or(d.per_address);
                let total = c.max_connections.unwrap_or(d.total);
                if per_address == 0 || total == 0 {
                    return Err(
                        "keys collector.max_connections_per_address and max_connections must be at least 1"
                            .into(),
                    );
                }
                let replays = c.max_concurrent_replays.unwrap_or(d.replays);
                if replays == 0 {
                    return Err("key collector.max_concurrent_replays must be at least 1".into());
                }
                ConnectionLimits {
                    hello_timeout,
                    per_address,
                    total,
                    replays,
                    ..d
                }
            },
            min_free: match &c.min_free {
                Some(t) => MinFree::parse(t).map_err(|e| format!("key collector.min_free: {e}"))?,
                None => MinFree::Default,
            },
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use watchpost_calendar::WorkDuration;

    #[test]
    fn issue_example_parses() {
        let c = CollectorConfig::parse(
            r#"
[collector]
grpc_listen = "127.0.0.1:9810"
http_listen = "127.0.0.1:9811"
data_dir = "./watchpost-data"
rules = ["rules/*.toml"]          # globs, relative to the config file
window = "1h"
"#,
            Path::new("/etc/watchpost"),
        )
        .expect("valid");
        assert_eq!(c.window, Duration::from_secs(3600));
        assert_eq!(c.rules, vec!["rules/*.toml"]);
        assert_eq!(c.rules_base, Path::new("/etc/watchpost"));
        assert_eq!(c.data_dir, Path::new("/etc/watchpost/./watchpost-data"));
        assert_eq!(
            c.policy.of(watchpost_model::Severity::Minor).resolve,
            WorkDuration::work_days(3)
        );
    }

    #[test]
    fn replays_at_once_default_and_bounds() {
        let c = CollectorConfig::parse("", Path::new("/")).expect("valid");
        assert_eq!(c.limits.replays, 64);
        let c = CollectorConfig::parse("[collector]\nmax_concurrent_replays = 2\n", Path::new("/"))
            .expect("valid");
        assert_eq!(c.limits.replays, 2);
        let e = CollectorConfig::parse("[collector]\nmax_concurrent_replays = 0\n", Path::new("/"))
            .expect_err("zero");
        assert!(e.contains("collector.max_concurrent_replays"), "{e}");
    }

    #[test]
    fn calendar_file_relative_to_the_config() {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::write(dir.path().join("cal.toml"), "working_hours = [\"08:00-16:00\"]\n").expect("write");
        let c = CollectorConfig::parse("[collector]\ncalendar = \"cal.toml\"\n[severity.general]\nrespond = \"4h\"\nresolve = \"1 workday\"\nrespond_off_hours = \"3h\"\n", dir.path())
            .expect("valid");
        assert_eq!(c.calendar.workday_length(), jiff::SignedDuration::from_hours(8));
        assert_eq!(
            c.policy.general.respond_off_hours,
            Some(WorkDuration::Wall(Duration::from_secs(3 * 3600)))
        );
        let e = CollectorConfig::parse("[collector]\ncalendar = \"missing.toml\"\n", dir.path())
            .expect_err("missing");
        assert!(
            e.contains("collector.calendar") && e.contains("missing.toml"),
            "{e}"
        );
        let e = CollectorConfig::parse(
            "[severity.minor]\nrespond = \"1 workweek\"\nresolve = \"3 workdays\"\n",
            dir.path(),
        )
        .expect_err("bad");
        assert!(e.contains("line 2") && e.contains("workweek"), "{e}");
    }

    #[test]
    fn policy_override_and_errors() {
        let c = CollectorConfig::parse(
            "[severity.urgent]\nrespond = \"30m\"\nresolve = \"2h\"\n",
            Path::new("."),
        )
        .expect("valid");
        assert_eq!(
            c.policy.urgent.respond,
            WorkDuration::Wall(Duration::from_secs(1800))
        );
        let e = CollectorConfig::parse(
            "[severity.urgent]\nrespond = \"3h\"\nresolve = \"2h\"\n",
            Path::new("."),
        )
        .expect_err("respond after resolve");
        assert!(e.contains("severity.urgent"), "{e}");
        let e = CollectorConfig::parse("[collector]\ngrpc_listen = \"nowhere\"\n", Path::new("."))
            .expect_err("bad");
        assert!(e.contains("line 2"), "{e}");
        for (extra, want) in [
            (
                "respond_off_hours = \"3h\"\noff_hours = \"weekends\"\n",
                "severity.general.off_hours: \"weekends\"",
            ),
            (
                "off_hours = \"non_working_day\"\n",
                "respond_off_hours, which is not set",
            ),
        ] {
            let e = CollectorConfig::parse(
                &format!("[severity.general]\nrespond = \"4h\"\nresolve = \"1 workday\"\n{extra}"),
                Path::new("."),
            )
            .expect_err("bad off_hours");
            assert!(e.contains(want), "{e}");
        }
        let e = CollectorConfig::parse("[collector]\nwindows = \"1h\"\n", Path::new(".")).expect_err("bad");
        assert!(e.contains("windows") && e.contains("line 2"), "{e}");
    }
}
