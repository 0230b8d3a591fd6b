//! The collector's TOML config (`--config FILE`), checked once at load into
//! a [`CollectorConfig`]. Defaults live here and only here.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;
use watchpost_model::{HumanDuration, Severity};

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
    severity: RawPolicy,
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
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawPolicy {
    urgent: Option<RawDeadlines>,
    general: Option<RawDeadlines>,
    minor: Option<RawDeadlines>,
}

#[derive(Deserialize, Clone, Copy)]
#[serde(deny_unknown_fields)]
struct RawDeadlines {
    respond: HumanDuration,
    resolve: HumanDuration,
}

/// Response and resolve deadlines of one severity.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Deadlines {
    /// Acknowledge within.
    pub respond: Duration,
    /// Resolve within.
    pub resolve: Duration,
}

/// Deadlines per severity (wall-clock; the working calendar comes later).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SeverityPolicy {
    /// 紧急.
    pub urgent: Deadlines,
    /// 一般.
    pub general: Deadlines,
    /// 轻微.
    pub minor: Deadlines,
}

impl Default for SeverityPolicy {
    fn default() -> Self {
        let h = |n: u64| Duration::from_secs(n * 3600);
        SeverityPolicy {
            urgent: Deadlines {
                respond: h(1),
                resolve: h(4),
            },
            general: Deadlines {
                respond: h(4),
                resolve: h(24),
            },
            minor: Deadlines {
                respond: h(24),
                resolve: h(72),
            },
        }
    }
}

impl SeverityPolicy {
    /// The deadlines of `s`.
    pub fn of(&self, s: Severity) -> Deadlines {
        match s {
            Severity::Urgent => self.urgent,
            Severity::General => self.general,
            Severity::Minor => self.minor,
        }
    }
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
    /// Deadlines per severity.
    pub policy: SeverityPolicy,
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
        Self::parse(&text, &base).map_err(|message| ConfigError::Invalid {
            path: path.to_path_buf(),
            message,
        })
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
        let mut policy = SeverityPolicy::default();
        for (name, raw, slot) in [
            ("urgent", raw.severity.urgent, &mut policy.urgent),
            ("general", raw.severity.general, &mut policy.general),
            ("minor", raw.severity.minor, &mut policy.minor),
        ] {
            if let Some(d) = raw {
                if d.respond.0 > d.resolve.0 {
                    return Err(format!(
                        "key severity.{name}: respond ({:?}) is later than resolve ({:?})",
                        d.respond.0, d.resolve.0
                    ));
                }
                *slot = Deadlines {
                    respond: d.respond.0,
                    resolve: d.resolve.0,
                };
            }
        }
        let data_dir = c.data_dir.unwrap_or_else(|| PathBuf::from(DEFAULT_DATA_DIR));
        let data_dir = if data_dir.is_relative() && base != Path::new(".") {
            base.join(data_dir)
        } else {
            data_dir
        };
        Ok(CollectorConfig {
            grpc_listen: c.grpc_listen.unwrap_or_else(|| parse_addr(DEFAULT_GRPC_LISTEN)),
            http_listen: c.http_listen.unwrap_or_else(|| parse_addr(DEFAULT_HTTP_LISTEN)),
            data_dir,
            rules: c.rules.unwrap_or_default(),
            rules_base: base.to_path_buf(),
            window,
            heartbeat,
            max_series_per_agent: c.max_series_per_agent.unwrap_or(100_000),
            policy,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
            c.policy.of(Severity::Minor).resolve,
            Duration::from_secs(72 * 3600)
        );
    }

    #[test]
    fn policy_override_and_errors() {
        let c = CollectorConfig::parse(
            "[severity.urgent]\nrespond = \"30m\"\nresolve = \"2h\"\n",
            Path::new("."),
        )
        .expect("valid");
        assert_eq!(c.policy.urgent.respond, Duration::from_secs(1800));
        let e = CollectorConfig::parse(
            "[severity.urgent]\nrespond = \"3h\"\nresolve = \"2h\"\n",
            Path::new("."),
        )
        .expect_err("respond after resolve");
        assert!(e.contains("severity.urgent"), "{e}");
        let e = CollectorConfig::parse("[collector]\ngrpc_listen = \"nowhere\"\n", Path::new("."))
            .expect_err("bad");
        assert!(e.contains("line 2"), "{e}");
        let e = CollectorConfig::parse("[collector]\nwindows = \"1h\"\n", Path::new(".")).expect_err("bad");
        assert!(e.contains("windows") && e.contains("line 2"), "{e}");
    }
}
