//! `[[remote_write]]`: the samples the collector applied, shipped to the
//! time-series engines users already run (Prometheus, VictoriaMetrics,
//! Mimir, Thanos) with Prometheus remote_write 1.0 (`wire`).
//!
//! Each destination follows the journal (`journal::follow`) from its own
//! persisted position (`<data_dir>/remote_write/<name>.position`), so a
//! receiver that is down loses nothing the journal still holds: the
//! destination's hold keeps the segments it has not sent, past the hot
//! window, for up to `max_backlog`. A round reads whole records up to what
//! is synced, splits the samples into `shards` by series (each series'
//! samples stay in one shard, in time order), sends the shards at once,
//! each retried with backoff on 5xx, 429 and no answer until it is
//! accepted, and moves the position only when every shard of the round is
//! done, so a restart resends at most the round in flight and nothing
//! before the position. A request refused with any other 4xx is dropped
//! and counted. `/metrics` shows each destination's samples sent, failed
//! (in attempts that are retried), dropped, pending, and its lag.

pub mod wire;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use serde::Deserialize;
use tokio::sync::watch;
use watchpost_model::HumanDuration;

use crate::journal::Journal;
use crate::journal::follow::{Durable, Follower, Hold, Position, Series};
use crate::matchers::Selector;
use wire::{Auth, Outcome};

/// `[[remote_write]]` as written.
#[derive(Deserialize, Debug, Default)]
#[serde(deny_unknown_fields)]
pub struct RawRemoteWrite {
    name: Option<String>,
    url: Option<String>,
    #[serde(default, rename = "match")]
    selectors: Vec<String>,
    bearer_token: Option<String>,
    bearer_token_env: Option<String>,
    basic_auth: Option<RawBasicAuth>,
    ca_file: Option<PathBuf>,
    timeout: Option<HumanDuration>,
    shards: Option<usize>,
    max_samples_per_send: Option<usize>,
    max_backlog: Option<HumanDuration>,
    #[serde(default)]
    labels: BTreeMap<String, String>,
}

/// `basic_auth = { username, password | password_env }`.
#[derive(Deserialize, Debug)]
#[serde(deny_unknown_fields)]
struct RawBasicAuth {
    username: String,
    password: Option<String>,
    password_env: Option<String>,
}

/// One destination, checked.
#[derive(Clone)]
pub struct RemoteWriteConfig {
    /// Names its position file and its metrics.
    pub name: String,
    /// Where requests go.
    pub url: String,
    /// Only series matching one of these go (none: every series).
    pub selectors: Vec<Selector>,
    /// Credentials.
    pub auth: Auth,
    /// A CA the receiver's certificate is checked against (PEM).
    pub ca_pem: Option<Vec<u8>>,
    /// Per request.
    pub timeout: Duration,
    /// Requests in flight at once.
    pub shards: usize,
    /// Samples per request at most.
    pub max_samples_per_send: usize,
    /// How long the journal keeps what this destination has not sent.
    pub max_backlog: Duration,
    /// Added to every series that lacks a label of that name.
    pub labels: Vec<(String, String)>,
}

impl std::fmt::Debug for RemoteWriteConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RemoteWriteConfig")
            .field("name", &self.name)
            .field("url", &self.url)
            .field("selectors", &self.selectors.len())
            .field("shards", &self.shards)
            .finish_non_exhaustive()
    }
}

/// A name from a URL: `127.0.0.1:8428/api/v1/write` → `127.0.0.1_8428_api_v1_write`.
fn name_from_url(url: &str) -> String {
    let rest = url.split_once("://").map_or(url, |(_, r)| r);
    let mut name: String = rest
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' {
                c
            } else {
                '_'
            }
        })
        .collect();
    while name.ends_with('_') {
        name.pop();
    }
    name
}

impl RemoteWriteConfig {
    /// Checks every `[[remote_write]]`: `url` http(s), names unique
    /// (`[A-Za-z0-9_-]`, default from the URL), selectors, one kind of
    /// credential whose `_env` variable is set, `ca_file` relative to the
    /// config file, `shards` 1..=64, `max_samples_per_send` 1..=100000,
    /// `timeout` at least 1s, `max_backlog` at least 1m.
    pub fn check_all(raw: Vec<RawRemoteWrite>, base: &Path) -> Result<Vec<RemoteWriteConfig>, String> {
        let mut out: Vec<RemoteWriteConfig> = Vec::new();
        for (i, r) in raw.into_iter().enumerate() {
            let at = format!("remote_write[{i}]");
            let c = Self::check(r, base, &at)?;
            if out.iter().any(|o| o.name == c.name) {
                return Err(format!(
                    "{at}: name {:?} is used twice (each destination keeps its own position)",
                    c.name
                ));
            }
            out.push(c);
        }
        Ok(out)
    }

    fn check(r: RawRemoteWrite, base: &Path, at: &str) -> Result<RemoteWriteConfig, String> {
        let url = r.url.ok_or_else(|| format!("{at}: url is required"))?;
        if !(url.starts_with("http://") || url.starts_with("https://")) {
            return Err(format!("{at}.url: {url:?} is not an http:// or https:// URL"));
        }
        let url_ok = reqwest::Url::parse(&url).map_err(|e| format!("{at}.url: {url:?}: {e}"))?;
        if url_ok.host_str().is_none() {
            return Err(format!("{at}.url: {url:?} has no host"));
        }
        let name = r.name.unwrap_or_else(|| name_from_url(&url));
        if name.is_empty()
            || !name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
        {
            return Err(format!(
                "{at}.name: {name:?}: letters, digits, _ and - only (it names a file)"
            ));
        }
        let selectors = r
            .selectors
            .iter()
            .map(|s| Selector::parse(s).map_err(|e| format!("{at}.match: {e}")))
            .collect::<Result<Vec<_>, _>>()?;
        let env = |var: &str, key: &str| {
            std::env::var(var).map_err(|_| format!("{at}.{key}: names {var:?}, which is not set"))
        };
        let bearer = match (r.bearer_token, r.bearer_token_env) {
            (Some(_), Some(_)) => {
                return Err(format!("{at}: bearer_token and bearer_token_env: give one"));
            }
            (Some(t), None) => Some(t),
            (None, Some(var)) => Some(env(&var, "bearer_token_env")?),
            (None, None) => None,
        };
        let basic = match r.basic_auth {
            None => None,
            Some(b) => {
                let password = match (b.password, b.password_env) {
                    (Some(p), None) => p,
                    (None, Some(var)) => env(&var, "basic_auth.password_env")?,
                    _ => {
                        return Err(format!("{at}.basic_auth: give one of password and password_env"));
                    }
                };
                Some((b.username, password))
            }
        };
        let auth = match (bearer, basic) {
            (Some(_), Some(_)) => {
                return Err(format!("{at}: a bearer token and basic_auth: give one"));
            }
            (Some(t), None) => Auth::Bearer(t),
            (None, Some((username, password))) => Auth::Basic { username, password },
            (None, None) => Auth::None,
        };
        let ca_pem = match r.ca_file {
            None => None,
            Some(f) => {
                let path = base.join(f);
                let pem =
                    std::fs::read(&path).map_err(|e| format!("{at}.ca_file {}: {e}", path.display()))?;
                reqwest::Certificate::from_pem(&pem)
                    .map_err(|e| format!("{at}.ca_file {}: not a PEM certificate: {e}", path.display()))?;
                Some(pem)
            }
        };
        let timeout = r.timeout.map_or(Duration::from_secs(30), |d| d.0);
        if timeout < Duration::from_secs(1) {
            return Err(format!("{at}.timeout: {timeout:?} is below the minimum of 1s"));
        }
        let shards = r.shards.unwrap_or(4);
        if !(1..=64).contains(&shards) {
            return Err(format!("{at}.shards: {shards} is not between 1 and 64"));
        }
        let max_samples_per_send = r.max_samples_per_send.unwrap_or(2_000);
        if !(1..=100_000).contains(&max_samples_per_send) {
            return Err(format!(
                "{at}.max_samples_per_send: {max_samples_per_send} is not between 1 and 100000"
            ));
        }
        let max_backlog = r.max_backlog.map_or(Duration::from_secs(6 * 3600), |d| d.0);
        if max_backlog < Duration::from_secs(60) {
            return Err(format!(
                "{at}.max_backlog: {max_backlog:?} is below the minimum of 1m"
            ));
        }
        for (k, v) in &r.labels {
            watchpost_model::names::check_label_name(k).map_err(|e| format!("{at}.labels: {e}"))?;
            watchpost_model::names::check_label_value(v).map_err(|e| format!("{at}.labels.{k}: {e}"))?;
        }
        Ok(RemoteWriteConfig {
            name,
            url,
            selectors,
            auth,
            ca_pem,
            timeout,
            shards,
            max_samples_per_send,
            max_backlog,
            labels: r.labels.into_iter().collect(),
        })
    }

    /// Whether `series` goes to this destination.
    fn keeps(&self, series: &Series) -> bool {
        self.selectors.is_empty()
            || self.selectors.iter().any(|s| {
                s.matches(&series.metric, |n| {
                    series
                        .labels
                        .iter()
                        .find(|(k, _)| k == n)
                        .map(|(_, v)| v.as_str())
                })
            })
    }
}

/// A destination's counters, for `/metrics`.
#[derive(Debug)]
pub struct Stats {
    /// The destination's name.
    pub name: String,
    /// Its URL.
    pub url: String,
    /// Samples accepted by the receiver.
    pub sent: AtomicU64,
    /// Samples in attempts that failed and were retried (one sample counts
    /// once per failed attempt).
    pub failed: AtomicU64,
    /// Samples refused for good (4xx other than 429).
    pub dropped: AtomicU64,
    /// Journal segments deleted before this destination sent them (older
    /// than `max_backlog`).
    pub segments_missed: AtomicU64,
    /// Requests that succeeded.
    pub requests: AtomicU64,
    durable: watch::Receiver<Durable>,
    progress: std::sync::Mutex<Progress>,
}

/// Where a destination stands, for `pending` and `lag`.
#[derive(Debug, Clone, Copy)]
struct Progress {
    position: Position,
    /// Samples after `position` when `durable.appended` was `appended_at`.
    pending_at: u64,
    appended_at: u64,
    /// Newest sample time passed (ms).
    passed_newest: i64,
}

impl Stats {
    fn progress(&self) -> Progress {
        *self.progress.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Journal samples after the position: not yet sent (nor passed over
    /// as not matching), now.
    pub fn pending(&self) -> u64 {
        let d = *self.durable.borrow();
        let p = self.progress();
        if p.position >= d.end {
            return 0;
        }
        p.pending_at + d.appended.saturating_sub(p.appended_at)
    }

    /// The newest sample on disk minus the newest sample passed (ms; 0
    /// when caught up).
    pub fn lag_ms(&self) -> i64 {
        let d = *self.durable.borrow();
        let p = self.progress();
        if p.position >= d.end || d.newest_ms == i64::MIN {
            return 0;
        }
        (d.newest_ms - p.passed_newest).max(0)
    }
}

/// A destination ready to run: its follower holds its segments already.
pub struct Destination {
    config: RemoteWriteConfig,
    follower: Option<Follower>,
    hold: Hold,
    durable: watch::Receiver<Durable>,
    position_file: PathBuf,
    stats: Arc<Stats>,
    http: reqwest::Client,
}

/// Why a destination could not be prepared.
#[derive(Debug, thiserror::Error)]
#[error("remote_write {name}: {why}")]
pub struct PrepareError {
    name: String,
    why: String,
}

fn read_position(path: &Path) -> Result<Option<Position>, String> {
    match std::fs::read(path) {
        Ok(bytes) => serde_json::from_slice(&bytes).map(Some).map_err(|e| {
            format!(
                "{}: not a position ({e}); move it aside to start from now",
                path.display()
            )
        }),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(format!("{}: {e}", path.display())),
    }
}

/// Writes `p` to `path` atomically (a new file renamed over the old), synced.
fn write_position(path: &Path, p: Position) -> std::io::Result<()> {
    use std::io::Write;
    let tmp = path.with_extension("position.tmp");
    let mut f = std::fs::File::create(&tmp)?;
    f.write_all(&serde_json::to_vec(&p).unwrap_or_default())?;
    f.sync_data()?;
    std::fs::rename(&tmp, path)
}

impl Destination {
    /// Sets a destination up before the collector accepts samples: its
    /// position (persisted, or what is durable now for a new one), its
    /// hold on the journal, its client, and the count of what it has not
    /// sent yet.
    pub fn prepare(
        config: RemoteWriteConfig,
        journal: &Journal,
        data_dir: &Path,
    ) -> Result<Destination, PrepareError> {
        let fail = |why: String| PrepareError {
            name: config.name.clone(),
            why,
        };
        let dir = data_dir.join("remote_write");
        std::fs::create_dir_all(&dir).map_err(|e| fail(format!("{}: {e}", dir.display())))?;
        let position_file = dir.join(format!("{}.position", config.name));
        let from = read_position(&position_file).map_err(fail)?;
        let max_age = crate::time::millis(config.max_backlog);
        let (follower, hold) = journal
            .follow(&config.name, from, max_age)
            .map_err(|e| fail(e.to_string()))?;
        if from.is_none() {
            // A new destination starts at what is durable now, and says so
            // on disk at once: a restart before the first send must not
            // start it later still.
            write_position(&position_file, follower.position())
                .map_err(|e| fail(format!("{}: {e}", position_file.display())))?;
        }
        let mut http = reqwest::Client::builder()
            .user_agent(concat!("watchpost/", env!("CARGO_PKG_VERSION")))
            .timeout(config.timeout);
        if let Some(pem) = &config.ca_pem {
            let cert = reqwest::Certificate::from_pem(pem).map_err(|e| fail(format!("ca_file: {e}")))?;
            http = http.add_root_certificate(cert);
        }
        let http = http
            .build()
            .map_err(|e| fail(format!("cannot build the HTTP client: {e}")))?;
        let durable = journal.durable();
        // What is pending from before the start: counted once, by reading
        // past it without keeping anything.
        let now = *durable.borrow();
        let mut counter =
            Follower::open(&journal_dir(data_dir), follower.position()).map_err(|e| fail(e.to_string()))?;
        let mut pending = 0u64;
        let mut oldest = i64::MAX;
        loop {
            let c = counter
                .read(now.end, usize::MAX, &|_| false)
                .map_err(|e| fail(e.to_string()))?;
            if c.passed == 0 {
                break;
            }
            pending += c.passed;
            oldest = oldest.min(c.newest_ms);
        }
        let stats = Arc::new(Stats {
            name: config.name.clone(),
            url: config.url.clone(),
            sent: AtomicU64::new(0),
            failed: AtomicU64::new(0),
            dropped: AtomicU64::new(0),
            segments_missed: AtomicU64::new(0),
            requests: AtomicU64::new(0),
            durable: durable.clone(),
            progress: std::sync::Mutex::new(Progress {
                position: follower.position(),
                pending_at: pending,
                appended_at: now.appended,
                passed_newest: if pending > 0 {
                    oldest.saturating_sub(1)
                } else {
                    now.newest_ms
                },
            }),
        });
        Ok(Destination {
            config,
            follower: Some(follower),
            hold,
            durable,
            position_file,
            stats,
            http,
        })
    }

    /// The counters `/metrics` shows.
    pub fn stats(&self) -> Arc<Stats> {
        self.stats.clone()
    }

    /// Ships rounds until `shutdown`; the position is saved at the end.
    /// The follower reads ahead of what is confirmed: only a round every
    /// shard of which is done moves the saved position.
    pub async fn run(mut self, mut shutdown: watch::Receiver<bool>) {
        let Some(start) = self.follower.as_ref().map(Follower::position) else {
            return;
        };
        let (mut confirmed, mut saved) = (start, start);
        let mut saved_at = Instant::now();
        loop {
            if *shutdown.borrow() {
                break;
            }
            let durable = *self.durable.borrow_and_update();
            let Some(mut follower) = self.follower.take() else {
                break;
            };
            let config = self.config.clone();
            let max = config.max_samples_per_send.saturating_mul(config.shards);
            let read = tokio::task::spawn_blocking(move || {
                let c = follower.read(durable.end, max, &|s| config.keeps(s));
                (follower, c)
            })
            .await;
            let Ok((follower, chunk)) = read else {
                tracing::error!(destination = %self.config.name, "remote_write reader panicked: stopped");
                break;
            };
            self.follower = Some(follower);
            let chunk = match chunk {
                Ok(c) => c,
                Err(e) => {
                    tracing::error!(destination = %self.config.name, error = %e,
                        "remote_write: the journal segment cannot be read on: the rest of it is skipped for this destination");
                    if let Some(f) = self.follower.as_mut() {
                        f.skip_segment(durable.end);
                    }
                    continue;
                }
            };
            if chunk.missing_segments > 0 {
                self.stats
                    .segments_missed
                    .fetch_add(chunk.missing_segments, Ordering::Relaxed);
                tracing::error!(destination = %self.config.name, segments = chunk.missing_segments,
                    max_backlog = %watchpost_model::format_duration(self.config.max_backlog),
                    "remote_write: journal segments were deleted before this destination sent them (older than max_backlog): their samples are lost to it");
            }
            if !chunk.samples.is_empty() && !self.send_round(&chunk.samples, &mut shutdown).await {
                break; // shutting down mid-round: the round is not confirmed
            }
            let Some(position) = self.follower.as_ref().map(Follower::position) else {
                break;
            };
            confirmed = position;
            self.passed(position, chunk.passed, chunk.newest_ms, durable);
            self.hold.advance(position.segment);
            let caught_up = position >= durable.end;
            if position != saved && (caught_up || saved_at.elapsed() >= Duration::from_secs(1)) {
                self.save(position);
                saved = position;
                saved_at = Instant::now();
            }
            if caught_up {
                tokio::select! {
                    _ = self.durable.changed() => {}
                    _ = shutdown.changed() => {}
                }
            }
        }
        if confirmed != saved {
            self.save(confirmed);
        }
    }

    fn save(&self, position: Position) {
        if let Err(e) = write_position(&self.position_file, position) {
            tracing::warn!(file = %self.position_file.display(), error = %e,
                "remote_write: cannot save the position (a restart resends from the last one saved)");
        }
    }

    fn passed(&mut self, position: Position, n: u64, newest: i64, durable: Durable) {
        let mut p = self.stats.progress.lock().unwrap_or_else(|p| p.into_inner());
        // What was pending, plus what was synced since, minus what this
        // round passed.
        let pending = (p.pending_at + durable.appended.saturating_sub(p.appended_at)).saturating_sub(n);
        *p = Progress {
            position,
            pending_at: if position >= durable.end { 0 } else { pending },
            appended_at: durable.appended,
            passed_newest: p.passed_newest.max(newest),
        };
    }

    /// Sends one round: the samples split by series into shards, each
    /// shard's requests in order, the shards at once. Returns false when
    /// shutdown came first.
    async fn send_round(
        &self,
        samples: &[(Arc<Series>, i64, f64)],
        shutdown: &mut watch::Receiver<bool>,
    ) -> bool {
        let shards = self.config.shards;
        let mut split: Vec<Vec<(Arc<Series>, i64, f64)>> = vec![Vec::new(); shards];
        for s in samples {
            split[s.0.id as usize % shards].push(s.clone());
        }
        let sends = split.iter().filter(|s| !s.is_empty()).map(|s| self.send_shard(s));
        tokio::select! {
            _ = futures_join_all(sends) => true,
            _ = shutdown.wait_for(|s| *s) => false,
        }
    }

    async fn send_shard(&self, samples: &[(Arc<Series>, i64, f64)]) {
        let extra = &self.config.labels;
        for part in samples.chunks(self.config.max_samples_per_send) {
            let req = wire::request(part, &mut |s| wire::labels_of(s, extra));
            let body = match wire::encode(&req) {
                Ok(b) => b,
                Err(e) => {
                    tracing::error!(destination = %self.config.name, error = %e, "remote_write: cannot encode: dropped");
                    self.stats.dropped.fetch_add(part.len() as u64, Ordering::Relaxed);
                    continue;
                }
            };
            let mut backoff = Duration::from_millis(100);
            let mut warned = false;
            loop {
                match wire::post(&self.http, &self.config.url, &self.config.auth, body.clone()).await {
                    Outcome::Sent => {
                        self.stats.sent.fetch_add(part.len() as u64, Ordering::Relaxed);
                        self.stats.requests.fetch_add(1, Ordering::Relaxed);
                        if warned {
                            tracing::info!(destination = %self.config.name, "remote_write: the receiver accepts again");
                        }
                        break;
                    }
                    Outcome::Drop(why) => {
                        tracing::error!(destination = %self.config.name, samples = part.len(), error = %why,
                            "remote_write: the receiver refused the request: its samples are dropped");
                        self.stats.dropped.fetch_add(part.len() as u64, Ordering::Relaxed);
                        break;
                    }
                    Outcome::Retry(after, why) => {
                        self.stats.failed.fetch_add(part.len() as u64, Ordering::Relaxed);
                        if !warned {
                            tracing::warn!(destination = %self.config.name, error = %why,
                                "remote_write: the receiver does not accept now: retrying with backoff, nothing is dropped");
                            warned = true;
                        }
                        let wait = after.unwrap_or(backoff).min(Duration::from_secs(60));
                        tokio::time::sleep(wait).await;
                        backoff = (backoff * 2).min(Duration::from_secs(10));
                    }
                }
            }
        }
    }
}

/// Awaits every future (the shards of a round).
async fn futures_join_all<F: std::future::Future<Output = ()>>(futures: impl Iterator<Item = F>) {
    let mut set: Vec<std::pin::Pin<Box<F>>> = futures.map(Box::pin).collect();
    std::future::poll_fn(|cx| {
        set.retain_mut(|f| f.as_mut().poll(cx).is_pending());
        if set.is_empty() {
            std::task::Poll::Ready(())
        } else {
            std::task::Poll::Pending
        }
    })
    .await;
}

fn journal_dir(data_dir: &Path) -> PathBuf {
    data_dir.join("journal")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(toml_text: &str) -> Result<Vec<RemoteWriteConfig>, String> {
        #[derive(Deserialize)]
        struct F {
            remote_write: Vec<RawRemoteWrite>,
        }
        let f: F = toml::from_str(toml_text).map_err(|e| e.to_string())?;
        RemoteWriteConfig::check_all(f.remote_write, Path::new("."))
    }

    #[test]
    fn config_is_checked_with_the_place_named() {
        let c = check(
            r#"
            [[remote_write]]
            url = "http://127.0.0.1:8428/api/v1/write"
            match = ['{__name__=~"host_.*"}', 'snmp_up']
            labels = { dc = "north" }
            "#,
        )
        .expect("valid");
        assert_eq!(c[0].name, "127_0_0_1_8428_api_v1_write");
        assert_eq!((c[0].shards, c[0].max_samples_per_send), (4, 2_000));
        let s = |m: &str| Series {
            id: 1,
            metric: m.into(),
            labels: vec![],
        };
        assert!(c[0].keeps(&s("host_load1")) && c[0].keeps(&s("snmp_up")));
        assert!(!c[0].keeps(&s("modbus_up")));
        for (text, says) in [
            (
                "[[remote_write]]\nname = \"a\"",
                "remote_write[0]: url is required",
            ),
            ("[[remote_write]]\nurl = \"ftp://x\"", "remote_write[0].url"),
            (
                "[[remote_write]]\nurl = \"http://a/w\"\n[[remote_write]]\nurl = \"http://a/w\"",
                "remote_write[1]: name \"a_w\" is used twice",
            ),
            (
                "[[remote_write]]\nurl = \"http://a/w\"\nmatch = ['{}']",
                "remote_write[0].match",
            ),
            (
                "[[remote_write]]\nurl = \"http://a/w\"\nshards = 0",
                "remote_write[0].shards",
            ),
            (
                "[[remote_write]]\nurl = \"http://a/w\"\nbearer_token_env = \"WATCHPOST_NO_SUCH_VAR\"",
                "WATCHPOST_NO_SUCH_VAR",
            ),
            (
                "[[remote_write]]\nurl = \"http://a/w\"\nbearer_token = \"t\"\nbasic_auth = { username = \"u\", password = \"p\" }",
                "give one",
            ),
            (
                "[[remote_write]]\nurl = \"http://a/w\"\nname = \"a/b\"",
                "remote_write[0].name",
            ),
            (
                "[[remote_write]]\nurl = \"http://a/w\"\nca_file = \"/nonexistent/ca.pem\"",
                "ca_file",
            ),
            (
                "[[remote_write]]\nurl = \"http://a/w\"\nmax_backlog = \"10s\"",
                "max_backlog",
            ),
            (
                "[[remote_write]]\nurl = \"http://a/w\"\nlabels = { \"1x\" = \"v\" }",
                "labels",
            ),
        ] {
            let e = check(text).expect_err(text);
            assert!(e.contains(says), "{text}: {e}");
        }
    }
}
