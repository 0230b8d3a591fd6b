//! The collector's own health: room on the data directory's disk, whether
//! journal and database writes succeed, and whether each notification
//! channel delivers.
//!
//! The stages report what they see (the journal and database writers after
//! every write they try, the dispatcher after every send); the clock loop
//! measures the disk and reads a [`Snapshot`] every tick for the built-in
//! collector rules (`rules::RuleKind::Collector`), and `/metrics` shows it.
//! A shared leaf: it imports no stage.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use crate::time::{Clock, SystemClock};

/// The smallest free space the data directory's disk should keep
/// (`collector.min_free`).
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum MinFree {
    /// 5 % of the disk or 1 GiB, whichever is larger.
    Default,
    /// This many bytes.
    Bytes(u64),
    /// This share of the disk (0–100).
    Percent(f64),
}

impl MinFree {
    /// Parses `"2GiB"`, `"10%"` or `"default"`.
    pub fn parse(text: &str) -> Result<MinFree, String> {
        let t = text.trim();
        if t == "default" {
            return Ok(MinFree::Default);
        }
        if let Some(p) = t.strip_suffix('%') {
            let p: f64 = p
                .trim()
                .parse()
                .map_err(|_| format!("{text:?} is not a percentage like \"5%\""))?;
            if !(0.0..100.0).contains(&p) {
                return Err(format!("{text:?}: a percentage from 0% to below 100%"));
            }
            return Ok(MinFree::Percent(p));
        }
        watchpost_model::parse_size(t)
            .map(MinFree::Bytes)
            .map_err(|e| format!("{e} (or a percentage like \"5%\")"))
    }

    /// Bytes to keep free on a disk of `total` bytes.
    pub fn of(self, total: u64) -> u64 {
        match self {
            MinFree::Default => (total / 20).max(1 << 30),
            MinFree::Bytes(b) => b,
            MinFree::Percent(p) => (total as f64 * p / 100.0) as u64,
        }
    }
}

/// What the collector writes to its data directory.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Store {
    /// The samples journal.
    Journal,
    /// The fault records (SQLite).
    Database,
    /// The rollups (`history/`).
    History,
}

impl Store {
    /// `journal`, `database` or `history`.
    pub fn as_str(self) -> &'static str {
        match self {
            Store::Journal => "journal",
            Store::Database => "database",
            Store::History => "history",
        }
    }
}

/// Something that fails now.
#[derive(Debug, Clone, PartialEq)]
pub struct Failing {
    /// Since the first failure of this run of failures (ms).
    pub since_ms: i64,
    /// The latest error.
    pub error: String,
    /// Failures in this run.
    pub failures: u64,
}

/// The data directory's disk.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Disk {
    /// Bytes free for the collector (`f_bavail`).
    pub free: u64,
    /// Size of the filesystem.
    pub total: u64,
    /// What `collector.min_free` asks to keep free on it.
    pub min_free: u64,
}

/// What the tick sees.
#[derive(Debug, Clone, Default)]
pub struct Snapshot {
    /// The collector's host name.
    pub host: String,
    /// The data directory.
    pub data_dir: String,
    /// Its disk, once measured.
    pub disk: Option<Disk>,
    /// Writes failing now.
    pub writes: Vec<(Store, Failing)>,
    /// Channels failing for `notify.channel_failing_after` or longer.
    pub channels: Vec<(String, Failing)>,
    /// The last backup failed (and none succeeded since).
    pub backup: Option<Failing>,
    /// Agents whose clock is off by more than `collector.max_clock_offset`:
    /// (id, hostname, offset ms). The clock loop fills it from the registry.
    pub clocks_off: Vec<(String, String, i64)>,
}

#[derive(Default)]
struct State {
    backup: Option<Failing>,
    disk: Option<Disk>,
    writes: BTreeMap<Store, Failing>,
    channels: BTreeMap<String, Failing>,
}

/// Shared by every stage that reports.
pub struct Health {
    clock: Arc<dyn Clock>,
    host: String,
    data_dir: PathBuf,
    min_free: MinFree,
    channel_failing_after_ms: i64,
    state: Mutex<State>,
    /// Whether each store fails now, read without the lock: ingest asks
    /// for every batch.
    failing: [std::sync::atomic::AtomicBool; 3],
    /// How long durable writes take, by store: a journal group written and
    /// synced, a fault-record transaction committed.
    write_seconds: [crate::telemetry::Latency; 3],
}

impl std::fmt::Debug for Health {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Health")
            .field("data_dir", &self.data_dir)
            .field("min_free", &self.min_free)
            .finish_non_exhaustive()
    }
}

impl Default for Health {
    fn default() -> Self {
        Health::new(Arc::new(SystemClock), Path::new("."), MinFree::Default, 600_000)
    }
}

fn fail<K: Ord>(map: &mut BTreeMap<K, Failing>, key: K, now_ms: i64, error: &str) -> bool {
    let mut new = false;
    let f = map.entry(key).or_insert_with(|| {
        new = true;
        Failing {
            since_ms: now_ms,
            error: String::new(),
            failures: 0,
        }
    });
    f.error = error.to_string();
    f.failures += 1;
    new
}

impl Health {
    /// Health of a collector writing to `data_dir`.
    pub fn new(
        clock: Arc<dyn Clock>,
        data_dir: &Path,
        min_free: MinFree,
        channel_failing_after_ms: i64,
    ) -> Health {
        Health {
            clock,
            host: hostname(),
            data_dir: data_dir.to_path_buf(),
            min_free,
            channel_failing_after_ms,
            state: Mutex::default(),
            failing: Default::default(),
            write_seconds: Default::default(),
        }
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// A durable write to `store` (written and synced, or committed) took `d`.
    pub fn observe_write(&self, store: Store, d: std::time::Duration) {
        self.write_seconds[store as usize].observe(d);
    }

    /// A write to `store` failed.
    pub fn write_failed(&self, store: Store, error: &str) {
        self.failing[store as usize].store(true, std::sync::atomic::Ordering::Relaxed);
        let now = self.clock.now_ms();
        if fail(&mut self.state().writes, store, now, error) {
            tracing::error!(store = store.as_str(), %error, "collector writes are failing");
        }
    }

    /// A write to `store` succeeded.
    pub fn write_succeeded(&self, store: Store) {
        if !self.failing[store as usize].swap(false, std::sync::atomic::Ordering::Relaxed) {
            return;
        }
        if let Some(f) = self.state().writes.remove(&store) {
            tracing::info!(
                store = store.as_str(),
                failures = f.failures,
                "collector writes succeed again"
            );
        }
    }

    /// Whether writes to `store` fail now.
    pub fn is_failing(&self, store: Store) -> bool {
        self.failing[store as usize].load(std::sync::atomic::Ordering::Relaxed)
    }

    /// Sending by `channel` failed.
    pub fn channel_failed(&self, channel: &str, error: &str) {
        let now = self.clock.now_ms();
        fail(&mut self.state().channels, channel.to_string(), now, error);
    }

    /// `channel` delivered.
    pub fn channel_delivered(&self, channel: &str) {
        self.state().channels.remove(channel);
    }

    /// Measures the data directory's disk (`statvfs`, on a blocking
    /// thread, bounded by `limit`: a hung network mount must not stop the
    /// clock). Keeps the last figures when it cannot.
    pub async fn measure_disk(&self, limit: std::time::Duration) {
        let dir = self.data_dir.clone();
        let asked = tokio::task::spawn_blocking(move || rustix::fs::statvfs(&dir));
        let disk = match tokio::time::timeout(limit, asked).await {
            Ok(Ok(Ok(st))) => {
                let block = st.f_frsize.max(1);
                let total = st.f_blocks.saturating_mul(block);
                Disk {
                    free: st.f_bavail.saturating_mul(block),
                    total,
                    min_free: self.min_free.of(total),
                }
            }
            Ok(Ok(Err(e))) => {
                tracing::warn!(dir = %self.data_dir.display(), error = %e, "cannot measure the data directory's disk");
                return;
            }
            Ok(Err(_)) | Err(_) => return,
        };
        self.state().disk = Some(disk);
    }

    /// Free bytes on the data directory's disk, once measured.
    pub fn disk(&self) -> Option<Disk> {
        self.state().disk
    }

    /// What the tick sees now.
    pub fn snapshot(&self) -> Snapshot {
        let now = self.clock.now_ms();
        let s = self.state();
        Snapshot {
            host: self.host.clone(),
            data_dir: self.data_dir.display().to_string(),
            disk: s.disk,
            writes: s.writes.iter().map(|(k, f)| (*k, f.clone())).collect(),
            channels: s
                .channels
                .iter()
                .filter(|(_, f)| now - f.since_ms >= self.channel_failing_after_ms)
                .map(|(k, f)| (k.clone(), f.clone()))
                .collect(),
            backup: s.backup.clone(),
            clocks_off: Vec::new(),
        }
    }

    /// A backup failed.
    pub fn backup_failed(&self, error: &str) {
        let now = self.clock.now_ms();
        let mut s = self.state();
        let f = s.backup.get_or_insert_with(|| Failing {
            since_ms: now,
            error: String::new(),
            failures: 0,
        });
        f.error = error.to_string();
        f.failures += 1;
    }

    /// A backup succeeded.
    pub fn backup_succeeded(&self) {
        self.state().backup = None;
    }
}

impl Health {
    /// The health gauges in the Prometheus text format, for `/metrics`.
    pub fn render_metrics(&self) -> String {
        use std::fmt::Write;
        let s = self.state();
        let mut out = String::new();
        if let Some(d) = s.disk {
            for (name, help, v) in [
                (
                    "watchpost_data_dir_free_bytes",
                    "Free bytes on the data directory's disk.",
                    d.free,
                ),
                (
                    "watchpost_data_dir_min_free_bytes",
                    "Free bytes collector.min_free asks for; below it collector_disk_low opens.",
                    d.min_free,
                ),
            ] {
                let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} gauge\n{name} {v}");
            }
        }
        let name = "watchpost_writes_failing";
        let _ = writeln!(
            out,
            "# HELP {name} 1 while writes to the journal or the database fail.\n# TYPE {name} gauge"
        );
        for store in [Store::Journal, Store::Database, Store::History] {
            let v = u8::from(s.writes.contains_key(&store));
            let _ = writeln!(out, "{name}{{store=\"{}\"}} {v}", store.as_str());
        }
        let name = "watchpost_write_duration_seconds";
        let _ = writeln!(
            out,
            "# HELP {name} Durable writes: a journal group written and synced (its batches wait for it), a fault-record transaction committed.\n# TYPE {name} histogram"
        );
        for store in [Store::Journal, Store::Database] {
            self.write_seconds[store as usize].render(
                &mut out,
                name,
                &format!("store=\"{}\"", store.as_str()),
            );
        }
        let name = "watchpost_notify_channel_failing_since_seconds";
        let _ = writeln!(
            out,
            "# HELP {name} When a failing notification channel's sends began to fail (Unix seconds); absent while it delivers.\n# TYPE {name} gauge"
        );
        for (channel, f) in &s.channels {
            let _ = writeln!(
                out,
                "{name}{{channel=\"{}\"}} {}",
                channel.replace('\\', "\\\\").replace('"', "\\\""),
                f.since_ms / 1000
            );
        }
        out
    }
}

/// This machine's host name.
pub fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_string())
        .unwrap_or_else(|_| "this host".into())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicI64, Ordering};

    struct At(AtomicI64);
    impl Clock for At {
        fn now_ms(&self) -> i64 {
            self.0.load(Ordering::Relaxed)
        }
    }

    #[test]
    fn min_free_reads_sizes_and_shares() {
        assert_eq!(MinFree::parse("default"), Ok(MinFree::Default));
        assert_eq!(MinFree::parse("2GiB"), Ok(MinFree::Bytes(2 << 30)));
        assert_eq!(MinFree::parse("10%"), Ok(MinFree::Percent(10.0)));
        assert!(
            MinFree::parse("120%")
                .expect_err("over 100")
                .contains("below 100%")
        );
        assert!(
            MinFree::parse("lots")
                .expect_err("not a size")
                .contains("percentage")
        );
        assert_eq!(MinFree::Default.of(100 << 30), 5 << 30, "5 % of 100 GiB");
        assert_eq!(MinFree::Default.of(4 << 30), 1 << 30, "at least 1 GiB");
        assert_eq!(MinFree::Percent(10.0).of(1000), 100);
    }

    #[test]
    fn failures_run_until_a_success_and_channels_count_after_their_delay() {
        let clock = Arc::new(At(AtomicI64::new(1_000)));
        let h = Health::new(clock.clone(), Path::new("/d"), MinFree::Default, 10_000);
        h.write_failed(Store::Journal, "No space left on device");
        clock.0.store(2_000, Ordering::Relaxed);
        h.write_failed(Store::Journal, "still full");
        let s = h.snapshot();
        assert_eq!(s.writes.len(), 1);
        assert_eq!(s.writes[0].1.since_ms, 1_000, "since the first failure");
        assert_eq!(s.writes[0].1.failures, 2);
        assert_eq!(s.writes[0].1.error, "still full");
        h.write_succeeded(Store::Journal);
        assert!(h.snapshot().writes.is_empty());

        h.channel_failed("hook", "connection refused");
        clock.0.store(11_999, Ordering::Relaxed);
        assert!(h.snapshot().channels.is_empty(), "not yet failing for 10 s");
        clock.0.store(12_000, Ordering::Relaxed);
        assert_eq!(h.snapshot().channels[0].0, "hook");
        h.channel_delivered("hook");
        assert!(h.snapshot().channels.is_empty());
    }

    #[tokio::test]
    async fn measures_the_disk_of_the_data_directory() {
        let dir = tempfile::tempdir().expect("tempdir");
        let h = Health::new(Arc::new(SystemClock), dir.path(), MinFree::Bytes(1), 1);
        h.measure_disk(std::time::Duration::from_secs(5)).await;
        let d = h.disk().expect("measured");
        assert!(d.total > 0 && d.free <= d.total && d.min_free == 1, "{d:?}");
    }
}
