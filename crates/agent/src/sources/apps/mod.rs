//! The databases and middleware business systems run on, each read through
//! its own status interface: MySQL/MariaDB (`mysql.rs`), PostgreSQL and
//! the databases that speak its protocol (`postgres.rs`), Redis
//! (`redis.rs`) and nginx's `stub_status` (`nginx.rs`).
//!
//! ```toml
//! [[mysql]]
//! name = "orders-db"                 # the `instance` label (default: the address)
//! address = "127.0.0.1:3306"         # or socket = "/run/mysqld/mysqld.sock"
//! user = "watchpost"
//! password_env = "WATCHPOST_MYSQL_PASSWORD"   # or password = "..."
//! interval = "10s"                   # default: the agent's interval
//! timeout = "5s"
//! labels = { system = "orders" }
//!
//! [[postgres]]                       # also KingbaseES, openGauss
//! address = "127.0.0.1:5432"         # or socket = "/run/postgresql/.s.PGSQL.5432"
//! user = "watchpost"                 # needs pg_monitor to see others' transactions
//! database = "postgres"
//!
//! [[redis]]
//! address = "127.0.0.1:6379"
//! password_env = "REDIS_PASSWORD"    # user = "..." for a Redis 6 ACL user
//!
//! [[nginx]]
//! url = "http://127.0.0.1/nginx_status"
//! ```
//!
//! Only what a config declares is started: one thread with its own
//! runtime for all of them, a task per instance, one connection each kept
//! open between rounds. A server that refuses, fails authentication or
//! does not answer within `timeout` is `<kind>_up 0` (and a fault through
//! the shipped rules), never an agent error; the warning is logged once
//! per change of state. Counters become per-second rates from one round to
//! the next (the first round has none; a counter that went down, a
//! restarted server, gives none for that round).
//!
//! The clients are ours and small (each issues a handful of read-only
//! status queries over the text protocol): no database driver is linked in,
//! so an agent that watches only its host carries none.

mod mysql;
mod nginx;
mod postgres;
mod redis;
mod wire;

use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use serde::Deserialize;
use watchpost_model::HumanDuration;
use watchpost_model::names;

use crate::series::{Measured, Published, SharedLabels, round2};

/// One `[[mysql]]`, `[[postgres]]`, `[[redis]]` or `[[nginx]]` as written.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawApp {
    name: Option<String>,
    address: Option<String>,
    socket: Option<PathBuf>,
    url: Option<String>,
    user: Option<String>,
    password: Option<String>,
    password_env: Option<String>,
    database: Option<String>,
    interval: Option<HumanDuration>,
    timeout: Option<HumanDuration>,
    #[serde(default)]
    labels: BTreeMap<String, String>,
}

/// What is watched.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Kind {
    /// MySQL or MariaDB.
    Mysql,
    /// PostgreSQL (or a server speaking its protocol).
    Postgres,
    /// Redis.
    Redis,
    /// nginx `stub_status`.
    Nginx,
}

impl Kind {
    /// The config table and the metric prefix.
    pub fn name(self) -> &'static str {
        match self {
            Kind::Mysql => "mysql",
            Kind::Postgres => "postgres",
            Kind::Redis => "redis",
            Kind::Nginx => "nginx",
        }
    }

    fn default_port(self) -> u16 {
        match self {
            Kind::Mysql => 3306,
            Kind::Postgres => 5432,
            Kind::Redis => 6379,
            Kind::Nginx => 80,
        }
    }
}

/// Where a server is reached.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    /// host:port.
    Tcp(String),
    /// A Unix socket.
    Unix(PathBuf),
    /// An HTTP URL (nginx).
    Url(String),
}

impl std::fmt::Display for Target {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Target::Tcp(a) | Target::Url(a) => f.write_str(a),
            Target::Unix(p) => write!(f, "{}", p.display()),
        }
    }
}

/// One watched server, checked.
#[derive(Debug, Clone)]
pub struct App {
    /// What it is.
    pub kind: Kind,
    /// Its `instance` label.
    pub name: String,
    /// How to reach it.
    pub target: Target,
    /// User to sign in as (MySQL, PostgreSQL, a Redis ACL user).
    pub user: Option<String>,
    /// Its password (read from `password_env` at load).
    pub password: Option<String>,
    /// Database to connect to (PostgreSQL).
    pub database: Option<String>,
    /// Poll period.
    pub interval: Duration,
    /// Per poll, connecting included.
    pub timeout: Duration,
    /// Added to every series, `instance` included (sorted).
    pub labels: Vec<(String, String)>,
}

/// Every watched database and middleware server.
#[derive(Debug, Clone, Default)]
pub struct AppsConfig {
    /// In config order.
    pub apps: Vec<App>,
}

impl AppsConfig {
    /// Nothing to watch.
    pub fn is_empty(&self) -> bool {
        self.apps.is_empty()
    }

    /// Checks the four tables; errors name the table, its position and the key.
    pub(crate) fn check(
        tables: [(Kind, Vec<RawApp>); 4],
        default_interval: Duration,
    ) -> Result<AppsConfig, String> {
        let mut apps = Vec::new();
        let mut seen = std::collections::HashSet::new();
        for (kind, raws) in tables {
            for (i, raw) in raws.into_iter().enumerate() {
                let what = format!("[[{}]] {}", kind.name(), i + 1);
                let app = check_one(kind, raw, default_interval, &what)?;
                if !seen.insert((kind, app.name.clone())) {
                    return Err(format!(
                        "{what}: name {:?} is used twice; give each a distinct `name`",
                        app.name
                    ));
                }
                apps.push(app);
            }
        }
        Ok(AppsConfig { apps })
    }
}

fn check_one(kind: Kind, raw: RawApp, default_interval: Duration, what: &str) -> Result<App, String> {
    let not_for = |key: &str, set: bool| -> Result<(), String> {
        if set {
            Err(format!(
                "{what}: key `{key}` does not apply to [[{}]]",
                kind.name()
            ))
        } else {
            Ok(())
        }
    };
    let target = match kind {
        Kind::Nginx => {
            not_for("address", raw.address.is_some())?;
            not_for("socket", raw.socket.is_some())?;
            not_for("user", raw.user.is_some())?;
            not_for("password", raw.password.is_some() || raw.password_env.is_some())?;
            let url = raw.url.ok_or_else(|| {
                format!("{what}: `url` is required, e.g. \"http://127.0.0.1/nginx_status\"")
            })?;
            if !(url.starts_with("http://") || url.starts_with("https://")) {
                return Err(format!("{what}: url {url:?} must start with http:// or https://"));
            }
            Target::Url(url)
        }
        _ => {
            not_for("url", raw.url.is_some())?;
            match (raw.address, raw.socket) {
                (Some(_), Some(_)) => {
                    return Err(format!("{what}: give `address` or `socket`, not both"));
                }
                (None, Some(s)) => Target::Unix(s),
                (Some(a), None) => {
                    if a.rsplit_once(':')
                        .and_then(|(_, p)| p.parse::<u16>().ok())
                        .is_none()
                    {
                        return Err(format!(
                            "{what}: address {a:?} must be host:port (the usual port is {})",
                            kind.default_port()
                        ));
                    }
                    Target::Tcp(a)
                }
                (None, None) => Target::Tcp(format!("127.0.0.1:{}", kind.default_port())),
            }
        }
    };
    not_for("database", kind != Kind::Postgres && raw.database.is_some())?;
    if matches!(kind, Kind::Mysql | Kind::Postgres) && raw.user.as_deref().is_some_and(str::is_empty) {
        return Err(format!("{what}: `user` must not be empty"));
    }
    let password = super::secret(raw.password, raw.password_env, what)?;
    let interval = raw.interval.map_or(default_interval, |t| t.0);
    let timeout = raw.timeout.map_or(Duration::from_secs(5).min(interval), |t| t.0);
    if interval < Duration::from_secs(1) || timeout.is_zero() || timeout > interval {
        return Err(format!(
            "{what}: interval must be at least 1s and timeout within it (interval {interval:?}, timeout {timeout:?})"
        ));
    }
    let name = raw.name.unwrap_or_else(|| target.to_string());
    if name.trim().is_empty() {
        return Err(format!("{what}: `name` must not be empty"));
    }
    names::check_label_value(&name).map_err(|e| format!("{what}: name: {e}"))?;
    let mut labels = Vec::new();
    for (k, v) in raw.labels {
        names::check_label_name(&k).map_err(|e| format!("{what}: labels.{k}: {e}"))?;
        names::check_label_value(&v).map_err(|e| format!("{what}: labels.{k}: {e}"))?;
        if matches!(k.as_str(), "instance" | "host" | "database") {
            return Err(format!("{what}: label {k:?} is set by the agent"));
        }
        labels.push((k, v));
    }
    labels.push(("instance".to_string(), name.clone()));
    labels.sort();
    Ok(App {
        kind,
        name,
        target,
        user: raw.user,
        password,
        database: raw.database,
        interval,
        timeout,
        labels,
    })
}

/// Starts watching on one thread of its own; nothing starts when `config`
/// is empty.
pub fn start(config: AppsConfig, out: Published, stop: Arc<AtomicBool>) {
    if config.is_empty() {
        return;
    }
    crate::spawn_runtime_thread("watchpost-apps", async move {
        let mut tasks = tokio::task::JoinSet::new();
        for app in config.apps {
            tasks.spawn(watch(app, out.clone(), stop.clone()));
        }
        while tasks.join_next().await.is_some() {}
    });
}

/// An open connection to one server.
enum Connection {
    Mysql(mysql::Connection),
    Postgres(postgres::Connection),
    Redis(redis::Connection),
    Nginx(reqwest::Client),
}

async fn watch(app: App, out: Published, stop: Arc<AtomicBool>) {
    let mut connection: Option<Connection> = None;
    let mut counters = Counters::default();
    let labels: SharedLabels = app.labels.clone().into();
    let mut warned = Warned::default();
    let mut tick = tokio::time::interval(app.interval);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut was_up = None;
    let up_metric: &'static str = match app.kind {
        Kind::Mysql => "mysql_up",
        Kind::Postgres => "postgres_up",
        Kind::Redis => "redis_up",
        Kind::Nginx => "nginx_up",
    };
    loop {
        tick.tick().await;
        if stop.load(Ordering::Relaxed) {
            return;
        }
        let at_ms = crate::time::now_ms();
        let mut reading = Reading {
            at_ms,
            base: &labels,
            counters: &mut counters,
            warned: &mut warned,
            out: Vec::new(),
        };
        let result = tokio::time::timeout(app.timeout, read(&app, &mut connection, &mut reading)).await;
        let mut measured = std::mem::take(&mut reading.out);
        let error = match result {
            Ok(Ok(())) => None,
            Ok(Err(e)) => Some(e),
            Err(_) => Some(format!("no answer within {:?}", app.timeout)),
        };
        let up = error.is_none();
        if let Some(e) = &error {
            // A half-read connection cannot be trusted: open a new one.
            connection = None;
            measured.clear();
            if was_up != Some(false) {
                tracing::warn!(kind = app.kind.name(), instance = %app.name, target = %app.target, error = %e, "server does not answer");
            }
        } else if was_up != Some(true) {
            tracing::info!(kind = app.kind.name(), instance = %app.name, "server answers");
        }
        was_up = Some(up);
        measured.push(Measured {
            metric: up_metric.into(),
            labels: labels.clone(),
            value: if up { 1.0 } else { 0.0 },
            at_ms,
            text: None,
        });
        out.publish(measured);
    }
}

async fn read(app: &App, connection: &mut Option<Connection>, r: &mut Reading<'_>) -> Result<(), String> {
    if connection.is_none() {
        *connection = Some(match app.kind {
            Kind::Mysql => Connection::Mysql(mysql::Connection::open(app).await?),
            Kind::Postgres => Connection::Postgres(postgres::Connection::open(app).await?),
            Kind::Redis => Connection::Redis(redis::Connection::open(app).await?),
            Kind::Nginx => Connection::Nginx(nginx::client(app)?),
        });
    }
    match connection.as_mut() {
        Some(Connection::Mysql(c)) => mysql::read(c, r).await,
        Some(Connection::Postgres(c)) => postgres::read(c, r).await,
        Some(Connection::Redis(c)) => redis::read(c, r).await,
        Some(Connection::Nginx(c)) => nginx::read(app, c, r).await,
        None => Err("no connection".to_string()),
    }
}

/// The last value of each counter, for rates.
#[derive(Default)]
struct Counters {
    last: HashMap<String, (f64, i64)>,
}

impl Counters {
    /// The increase of counter `key` since the last round and the seconds
    /// between them; `None` the first time and when it went down (the
    /// server restarted or the counter was reset).
    fn step(&mut self, key: &str, value: f64, at_ms: i64) -> Option<(f64, f64)> {
        let before = self.last.insert(key.to_string(), (value, at_ms));
        let (v0, t0) = before?;
        let seconds = (at_ms - t0) as f64 / 1000.0;
        (value >= v0 && seconds > 0.0).then_some((value - v0, seconds))
    }
}

/// Optional readings that failed (a missing privilege, a function an older
/// server lacks): warned about once, not every round.
#[derive(Default)]
struct Warned(std::collections::HashSet<&'static str>);

/// What one round of one server read.
struct Reading<'a> {
    at_ms: i64,
    base: &'a SharedLabels,
    counters: &'a mut Counters,
    warned: &'a mut Warned,
    out: Vec<Measured>,
}

impl Reading<'_> {
    /// A value as read.
    fn gauge(&mut self, metric: &'static str, value: f64) {
        if value.is_finite() {
            self.out.push(Measured {
                metric: metric.into(),
                labels: self.base.clone(),
                value: round2(value),
                at_ms: self.at_ms,
                text: None,
            });
        }
    }

    /// A value of one part of the server (a database): `label = value` is
    /// added to the instance's labels.
    fn gauge_of(&mut self, metric: &'static str, label: &str, part: &str, value: f64) {
        if !value.is_finite() || names::check_label_value(part).is_err() {
            return;
        }
        let mut labels: Vec<(String, String)> = self.base.to_vec();
        labels.push((label.to_string(), part.to_string()));
        labels.sort();
        self.out.push(Measured {
            metric: metric.into(),
            labels: labels.into(),
            value: round2(value),
            at_ms: self.at_ms,
            text: None,
        });
    }

    /// A counter, published as its per-second rate under `metric`.
    fn rate(&mut self, metric: &'static str, counter: f64) {
        if let Some((delta, seconds)) = self.counters.step(metric, counter, self.at_ms) {
            self.gauge(metric, delta / seconds);
        }
    }

    /// `hits / (hits + misses)` in % over the last round, from two counters;
    /// nothing when there was no lookup in the round.
    fn hit_percent(&mut self, metric: &'static str, hits: f64, misses: f64) {
        let h = self.counters.step(&format!("{metric}.hits"), hits, self.at_ms);
        let m = self
            .counters
            .step(&format!("{metric}.misses"), misses, self.at_ms);
        if let (Some((h, _)), Some((m, _))) = (h, m)
            && h + m > 0.0
        {
            self.gauge(metric, 100.0 * h / (h + m));
        }
    }

    /// Logs, once per server, that an optional reading is not available.
    fn missing(&mut self, what: &'static str, why: &str) {
        if self.warned.0.insert(what) {
            tracing::warn!(
                reading = what,
                error = why,
                "a reading is not available from this server; it is left out"
            );
        }
    }
}

/// The value of `key` in a status map, as a number.
fn number(map: &HashMap<String, String>, key: &str) -> Option<f64> {
    map.get(key).and_then(|v| v.trim().parse::<f64>().ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(text: &str) -> Result<AppsConfig, String> {
        #[derive(Deserialize)]
        struct F {
            #[serde(default)]
            mysql: Vec<RawApp>,
            #[serde(default)]
            postgres: Vec<RawApp>,
            #[serde(default)]
            redis: Vec<RawApp>,
            #[serde(default)]
            nginx: Vec<RawApp>,
        }
        let f: F = toml::from_str(text).map_err(|e| e.to_string())?;
        AppsConfig::check(
            [
                (Kind::Mysql, f.mysql),
                (Kind::Postgres, f.postgres),
                (Kind::Redis, f.redis),
                (Kind::Nginx, f.nginx),
            ],
            Duration::from_secs(10),
        )
    }

    #[test]
    fn defaults_and_labels() {
        let c =
            check("[[mysql]]\nuser = \"w\"\n[[redis]]\nname = \"cache\"\nlabels = { system = \"web\" }\n")
                .expect("valid");
        assert_eq!(c.apps[0].target, Target::Tcp("127.0.0.1:3306".into()));
        assert_eq!(c.apps[0].name, "127.0.0.1:3306");
        assert_eq!(c.apps[0].timeout, Duration::from_secs(5));
        assert_eq!(
            c.apps[1].labels,
            [
                ("instance".into(), "cache".into()),
                ("system".into(), "web".into())
            ]
        );
    }

    #[test]
    fn errors_name_the_table_and_key() {
        let e = |t: &str| check(t).expect_err("invalid");
        assert!(e("[[nginx]]\naddress = \"a:1\"\n").contains("[[nginx]] 1: key `address`"));
        assert!(e("[[nginx]]\n").contains("`url` is required"));
        assert!(
            e("[[redis]]\n[[redis]]\naddress = \"x:1\"\n[[redis]]\naddress=\"x:1\"\n")
                .contains("[[redis]] 3")
        );
        assert!(e("[[mysql]]\naddress = \"db\"\n").contains("host:port"));
        assert!(e("[[mysql]]\ndatabase = \"x\"\n").contains("`database` does not apply"));
        assert!(e("[[postgres]]\npassword_env = \"WATCHPOST_NO_SUCH_VARIABLE\"\n").contains("not set"));
        assert!(e("[[postgres]]\ninterval = \"2s\"\ntimeout = \"3s\"\n").contains("timeout within it"));
        assert!(e("[[mysql]]\nlabels = { instance = \"x\" }\n").contains("set by the agent"));
        assert!(e("[[mysql]]\nport = 1\n").contains("port"));
    }

    #[test]
    fn counters_give_rates_and_none_after_a_reset() {
        let mut c = Counters::default();
        assert_eq!(c.step("q", 100.0, 0), None);
        assert_eq!(c.step("q", 150.0, 10_000), Some((50.0, 10.0)));
        assert_eq!(c.step("q", 3.0, 20_000), None, "restarted");
        assert_eq!(c.step("q", 13.0, 30_000), Some((10.0, 10.0)));
    }
}
