//! The agent's TOML config (`--config FILE`), checked once at load into an
//! [`AgentConfig`] whose fields cannot be invalid. Unknown keys and bad
//! values are errors naming the file, line, column and key.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;
use watchpost_model::names::{self, HOST_LABEL, MAX_LABELS};
use watchpost_model::{HumanDuration, parse_size};

/// Why a config could not be used.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("cannot read agent config {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// TOML syntax, an unknown key, or a bad value (the message has line and column).
    #[error("invalid agent config {path}: {message}")]
    Invalid {
        /// The file.
        path: PathBuf,
        /// What and where.
        message: String,
    },
}

/// Pseudo and virtual filesystems skipped by default: they hold no data an
/// operator sizes disks for.
pub const DEFAULT_EXCLUDED_FSTYPES: &[&str] = &[
    "autofs",
    "binfmt_misc",
    "bpf",
    "cgroup",
    "cgroup2",
    "configfs",
    "debugfs",
    "devpts",
    "devtmpfs",
    "efivarfs",
    "fusectl",
    "fuse.lxcfs",
    "hugetlbfs",
    "iso9660",
    "mqueue",
    "nsfs",
    "overlay",
    "proc",
    "pstore",
    "ramfs",
    "rpc_pipefs",
    "securityfs",
    "selinuxfs",
    "squashfs",
    "sysfs",
    "tracefs",
];

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFile {
    agent: RawAgent,
    #[serde(default)]
    host: RawHost,
    textfile: Option<RawTextfile>,
    #[serde(default)]
    probe: Vec<crate::sources::probe::RawProbe>,
    #[serde(default)]
    snmp: crate::sources::snmp::RawSnmp,
    #[serde(default)]
    modbus: crate::sources::modbus::RawModbus,
    #[serde(default)]
    mysql: Vec<crate::sources::apps::RawApp>,
    #[serde(default)]
    postgres: Vec<crate::sources::apps::RawApp>,
    #[serde(default)]
    redis: Vec<crate::sources::apps::RawApp>,
    #[serde(default)]
    nginx: Vec<crate::sources::apps::RawApp>,
    #[serde(default)]
    process: Vec<crate::sources::system::RawProcess>,
    service: Option<crate::sources::system::RawService>,
    #[serde(default)]
    log: Vec<crate::sources::system::RawLog>,
    storage: Option<crate::sources::system::RawStorage>,
    inventory: Option<crate::inventory::RawInventory>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawTextfile {
    directory: PathBuf,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawAgent {
    id: Option<String>,
    hostname: Option<String>,
    collector: String,
    #[serde(default = "default_interval")]
    interval: HumanDuration,
    #[serde(default)]
    labels: BTreeMap<String, String>,
    #[serde(default)]
    auth_token: String,
    #[serde(default)]
    enroll_token: String,
    credential_file: Option<PathBuf>,
    #[serde(default = "default_heartbeat")]
    heartbeat: HumanDuration,
    #[serde(default = "default_buffer_batches")]
    buffer_batches: usize,
    spool_dir: Option<PathBuf>,
    #[serde(default = "default_spool_max_size")]
    spool_max_size: String,
    ca_file: Option<PathBuf>,
    cert_file: Option<PathBuf>,
    key_file: Option<PathBuf>,
}

/// TLS towards an `https://` collector: the CA that signed its certificate
/// (default: the public web roots) and, for mutual TLS, this agent's
/// certificate and key. PEM text, read at load.
#[derive(Debug, Clone, Default)]
pub struct ClientTls {
    /// CA certificates (PEM).
    pub ca_pem: Option<Vec<u8>>,
    /// Certificate chain and private key (PEM).
    pub identity: Option<(Vec<u8>, Vec<u8>)>,
}

fn read_pem(base: Option<&Path>, file: &Path, key: &str, marker: &str) -> Result<Vec<u8>, String> {
    let path = match base {
        Some(b) if file.is_relative() => b.join(file),
        _ => file.to_path_buf(),
    };
    let pem = std::fs::read(&path).map_err(|e| format!("key {key}: cannot read {}: {e}", path.display()))?;
    if !String::from_utf8_lossy(&pem).contains(marker) {
        return Err(format!(
            "key {key}: {} holds no PEM block containing {marker:?}",
            path.display()
        ));
    }
    Ok(pem)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawHost {
    #[serde(default = "yes")]
    enabled: bool,
    exclude_fstypes: Option<Vec<String>>,
    #[serde(default = "default_excluded_interfaces")]
    exclude_interfaces: Vec<String>,
    #[serde(default = "default_hwmon_dir")]
    hwmon_dir: PathBuf,
    /// How long one filesystem's statvfs may take (a hung network mount).
    #[serde(default = "default_stat_timeout")]
    stat_timeout: HumanDuration,
}

fn default_stat_timeout() -> HumanDuration {
    HumanDuration(Duration::from_secs(5))
}

impl Default for RawHost {
    fn default() -> Self {
        RawHost {
            enabled: true,
            exclude_fstypes: None,
            exclude_interfaces: default_excluded_interfaces(),
            hwmon_dir: default_hwmon_dir(),
            stat_timeout: default_stat_timeout(),
        }
    }
}

fn yes() -> bool {
    true
}
fn default_interval() -> HumanDuration {
    HumanDuration(Duration::from_secs(10))
}
fn default_heartbeat() -> HumanDuration {
    HumanDuration(Duration::from_secs(3))
}
fn default_buffer_batches() -> usize {
    1024
}
fn default_spool_max_size() -> String {
    "256MiB".to_string()
}

fn default_hwmon_dir() -> PathBuf {
    PathBuf::from("/sys/class/hwmon")
}
fn default_excluded_interfaces() -> Vec<String> {
    vec!["lo".to_string()]
}

/// A checked agent config.
#[derive(Debug, Clone)]
pub struct AgentConfig {
    /// Stable identity sent in the hello; defaults to the hostname.
    pub id: Option<String>,
    /// Overrides the hostname the OS reports.
    pub hostname: Option<String>,
    /// The collector's gRPC endpoint, `http://host:port`.
    pub collector: String,
    /// Time between collection rounds.
    pub interval: Duration,
    /// Labels added to every series.
    pub labels: BTreeMap<String, String>,
    /// A credential given in the config (otherwise the one kept in
    /// `credential_file` after enrolment is used).
    pub auth_token: String,
    /// One-time enrolment token (`watchpostctl agents enroll`).
    pub enroll_token: String,
    /// Where the credential issued at enrolment is kept (default
    /// `<spool_dir>/credential`).
    pub credential_file: Option<PathBuf>,
    /// Heartbeat period; a collector silent for three of them is dead.
    pub heartbeat: Duration,
    /// Where unacknowledged batches are kept (disk, or memory without a
    /// directory) and how much of them.
    pub spool: crate::spool::SpoolConfig,
    /// TLS towards an `https://` collector.
    pub tls: ClientTls,
    /// Host metrics.
    pub host: HostConfig,
    /// Directory of `*.prom` files read each round (relative paths are
    /// relative to the config file).
    pub textfile_dir: Option<PathBuf>,
    /// Ping, TCP and HTTP probes.
    pub probes: Vec<crate::sources::probe::Probe>,
    /// SNMP devices and traps.
    pub snmp: crate::sources::snmp::SnmpConfig,
    /// Modbus TCP sensors.
    pub modbus: crate::sources::modbus::ModbusConfig,
    /// Databases and middleware (`[[mysql]]`, `[[postgres]]`, `[[redis]]`, `[[nginx]]`).
    pub apps: crate::sources::apps::AppsConfig,
    /// Processes, services, logs and disk health (`[[process]]`,
    /// `[service]`, `[[log]]`, `[storage]`).
    pub system: crate::sources::system::SystemConfig,
    /// The equipment list's view of this host (`[inventory]`).
    pub inventory: crate::inventory::InventoryConfig,
}

/// What the host collector reads.
#[derive(Debug, Clone)]
pub struct HostConfig {
    /// Collect host metrics at all.
    pub enabled: bool,
    /// Filesystem types not reported.
    pub exclude_fstypes: Vec<String>,
    /// Network interfaces not reported.
    pub exclude_interfaces: Vec<String>,
    /// Where hwmon temperature sensors are read (`/sys/class/hwmon`).
    pub hwmon_dir: PathBuf,
    /// How long one filesystem's statvfs may take before the mount is
    /// reported as `host_filesystem_stat_timeout 1` (default 5 s).
    pub stat_timeout: Duration,
}

impl AgentConfig {
    /// The credential to present: the one kept from enrolment, else the
    /// configured `auth_token`.
    pub fn credential(&self) -> String {
        self.credential_file
            .as_deref()
            .and_then(|f| std::fs::read_to_string(f).ok())
            .map(|c| c.trim().to_string())
            .filter(|c| !c.is_empty())
            .unwrap_or_else(|| self.auth_token.clone())
    }

    /// A config for an agent that streams to `collector` with defaults
    /// everywhere else (used by `watchpost-collector --dev`).
    pub fn local(collector: &str) -> AgentConfig {
        let raw = RawAgent {
            id: None,
            hostname: None,
            collector: collector.to_string(),
            interval: default_interval(),
            labels: BTreeMap::new(),
            auth_token: String::new(),
            enroll_token: String::new(),
            credential_file: None,
            heartbeat: default_heartbeat(),
            buffer_batches: default_buffer_batches(),
            spool_dir: None,
            spool_max_size: default_spool_max_size(),
            ca_file: None,
            cert_file: None,
            key_file: None,
        };
        Self::check(
            RawFile {
                agent: raw,
                host: RawHost::default(),
                textfile: None,
                probe: Vec::new(),
                snmp: Default::default(),
                modbus: Default::default(),
                mysql: Vec::new(),
                postgres: Vec::new(),
                redis: Vec::new(),
                nginx: Vec::new(),
                process: Vec::new(),
                service: None,
                log: Vec::new(),
                storage: None,
                inventory: None,
            },
            None,
        )
        .expect("defaults are valid")
    }

    /// Reads and checks a config file.
    pub fn load(path: &Path) -> Result<AgentConfig, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        let mut config = Self::parse_in(&text, path.parent()).map_err(|message| ConfigError::Invalid {
            path: path.to_path_buf(),
            message,
        })?;
        if let (Some(dir), Some(base)) = (config.textfile_dir.as_mut(), path.parent())
            && dir.is_relative()
        {
            *dir = base.join(&*dir);
        }
        Ok(config)
    }

    /// Checks config text; the error says what is wrong and where.
    pub fn parse(text: &str) -> Result<AgentConfig, String> {
        Self::parse_in(text, None)
    }

    /// Checks config text whose relative paths start at `base`.
    fn parse_in(text: &str, base: Option<&Path>) -> Result<AgentConfig, String> {
        let raw: RawFile = toml::from_str(text).map_err(|e| e.to_string().trim_end().to_string())?;
        Self::check(raw, base)
    }

    fn check(raw: RawFile, base: Option<&Path>) -> Result<AgentConfig, String> {
        let a = raw.agent;
        if !(a.collector.starts_with("http://") || a.collector.starts_with("https://")) {
            return Err(format!(
                "key agent.collector: {:?} is not a URL; expected e.g. \"http://127.0.0.1:9810\"",
                a.collector
            ));
        }
        if a.interval.0 < Duration::from_millis(100) {
            return Err(format!(
                "key agent.interval: {:?} is below the minimum of 100ms",
                a.interval.0
            ));
        }
        if a.heartbeat.0 < Duration::from_millis(100) {
            return Err(format!(
                "key agent.heartbeat: {:?} is below the minimum of 100ms",
                a.heartbeat.0
            ));
        }
        if a.buffer_batches == 0 {
            return Err("key agent.buffer_batches: must be at least 1".to_string());
        }
        if a.labels.len() > MAX_LABELS - 8 {
            return Err(format!(
                "key agent.labels: {} labels, more than {}",
                a.labels.len(),
                MAX_LABELS - 8
            ));
        }
        for (name, value) in &a.labels {
            if name == HOST_LABEL {
                return Err(
                    "key agent.labels.host: \"host\" is set by the collector from the agent's identity"
                        .to_string(),
                );
            }
            names::check_label_name(name).map_err(|e| format!("key agent.labels.{name}: {e}"))?;
            names::check_label_value(value).map_err(|e| format!("key agent.labels.{name}: {e}"))?;
        }
        for (key, v) in [("agent.id", &a.id), ("agent.hostname", &a.hostname)] {
            if let Some(v) = v
                && v.trim().is_empty()
            {
                return Err(format!("key {key}: must not be empty"));
            }
        }
        let tls_keys = a.ca_file.is_some() || a.cert_file.is_some() || a.key_file.is_some();
        if tls_keys && !a.collector.starts_with("https://") {
            return Err("keys agent.ca_file, cert_file and key_file need an https:// collector".to_string());
        }
        let tls = ClientTls {
            ca_pem: a
                .ca_file
                .as_deref()
                .map(|f| read_pem(base, f, "agent.ca_file", "BEGIN CERTIFICATE"))
                .transpose()?,
            identity: match (&a.cert_file, &a.key_file) {
                (Some(c), Some(k)) => Some((
                    read_pem(base, c, "agent.cert_file", "BEGIN CERTIFICATE")?,
                    read_pem(base, k, "agent.key_file", "PRIVATE KEY")?,
                )),
                (None, None) => None,
                _ => return Err("keys agent.cert_file and agent.key_file go together".to_string()),
            },
        };
        let spool_dir = a.spool_dir.map(|d| match base {
            Some(b) if d.is_relative() => b.join(d),
            _ => d,
        });
        let spool_max_bytes =
            parse_size(&a.spool_max_size).map_err(|e| format!("key agent.spool_max_size: {e}"))?;
        if spool_max_bytes < 1 << 20 {
            return Err(format!(
                "key agent.spool_max_size: {:?} is below the minimum of 1MiB",
                a.spool_max_size
            ));
        }
        let host = raw.host;
        Ok(AgentConfig {
            id: a.id,
            hostname: a.hostname,
            collector: a.collector,
            interval: a.interval.0,
            labels: a.labels,
            auth_token: a.auth_token,
            enroll_token: a.enroll_token,
            credential_file: a
                .credential_file
                .map(|f| match base {
                    Some(b) if f.is_relative() => b.join(f),
                    _ => f,
                })
                .or_else(|| spool_dir.as_ref().map(|d| d.join("credential"))),
            heartbeat: a.heartbeat.0,
            spool: crate::spool::SpoolConfig {
                dir: spool_dir,
                max_bytes: spool_max_bytes,
                memory_batches: a.buffer_batches,
            },
            tls,
            host: HostConfig {
                enabled: host.enabled,
                exclude_fstypes: host
                    .exclude_fstypes
                    .unwrap_or_else(|| DEFAULT_EXCLUDED_FSTYPES.iter().map(|s| s.to_string()).collect()),
                exclude_interfaces: host.exclude_interfaces,
                hwmon_dir: host.hwmon_dir,
                stat_timeout: host.stat_timeout.0,
            },
            textfile_dir: raw.textfile.map(|t| t.directory),
            probes: raw
                .probe
                .into_iter()
                .enumerate()
                .map(|(i, p)| crate::sources::probe::Probe::check(p, i, base))
                .collect::<Result<_, _>>()?,
            snmp: crate::sources::snmp::SnmpConfig::check(raw.snmp, a.interval.0, base)?,
            modbus: crate::sources::modbus::ModbusConfig::check(raw.modbus, a.interval.0)?,
            apps: {
                use crate::sources::apps::{AppsConfig, Kind};
                AppsConfig::check(
                    [
                        (Kind::Mysql, raw.mysql),
                        (Kind::Postgres, raw.postgres),
                        (Kind::Redis, raw.redis),
                        (Kind::Nginx, raw.nginx),
                    ],
                    a.interval.0,
                )?
            },
            system: crate::sources::system::SystemConfig::check(
                raw.process,
                raw.service,
                raw.log,
                raw.storage,
                a.interval.0,
            )?,
            inventory: crate::inventory::InventoryConfig::check(raw.inventory)?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn minimal_config_gets_defaults() {
        let c = AgentConfig::parse("[agent]\ncollector = \"http://127.0.0.1:9810\"\n").expect("valid");
        assert_eq!(c.interval, Duration::from_secs(10));
        assert!(c.host.enabled);
        assert!(c.host.exclude_fstypes.iter().any(|t| t == "proc"));
        assert_eq!(c.host.exclude_interfaces, vec!["lo"]);
    }

    #[test]
    fn issue_example_parses() {
        let c = AgentConfig::parse(
            r#"
[agent]
collector = "http://127.0.0.1:9810"
interval = "10s"
labels = { role = "db", room = "A" }
[host]
enabled = true
"#,
        )
        .expect("valid");
        assert_eq!(c.labels.get("role").map(String::as_str), Some("db"));
    }

    #[test]
    fn unknown_key_names_line_and_key() {
        let err = AgentConfig::parse("[agent]\ncollector = \"http://x:1\"\nintervall = \"10s\"\n")
            .expect_err("unknown key");
        assert!(err.contains("line 3"), "{err}");
        assert!(err.contains("intervall"), "{err}");
    }

    #[test]
    fn bad_duration_names_line() {
        let err =
            AgentConfig::parse("[agent]\ncollector = \"http://x:1\"\ninterval = \"ten\"\n").expect_err("bad");
        assert!(
            err.contains("line 3") && err.contains("invalid duration"),
            "{err}"
        );
    }

    #[test]
    fn refuses_host_label_and_bad_url() {
        let err = AgentConfig::parse("[agent]\ncollector = \"http://x:1\"\nlabels = { host = \"a\" }\n")
            .expect_err("host label");
        assert!(err.contains("agent.labels.host"), "{err}");
        let err = AgentConfig::parse("[agent]\ncollector = \"x:1\"\n").expect_err("url");
        assert!(err.contains("agent.collector"), "{err}");
    }

    #[test]
    fn load_names_the_file() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("agent.toml");
        std::fs::write(&path, "[agent]\n").expect("write");
        let err = AgentConfig::load(&path)
            .expect_err("missing collector")
            .to_string();
        assert!(err.contains("agent.toml") && err.contains("collector"), "{err}");
    }
}
