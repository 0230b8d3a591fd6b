//! Backups of the running collector (`POST /api/v1/backups`,
//! `[backup] every`): `watchpost.db` and `access.db` through SQLite's
//! online backup, the history's and the journal's files hard-linked in
//! place first (the history under its lock, so a pass cannot move files
//! mid-copy) and then copied, the stored reports, and the config files the
//! collector was started with. `watchpost-backup` writes the manifest and
//! renames the backup into place; the outcome is a metric and, when it
//! fails, the built-in `collector_backup_failing` fault.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use serde::Deserialize;
use tokio::sync::watch;
use watchpost_backup::{Manifest, Plan};
use watchpost_model::HumanDuration;

use crate::Core;
use crate::time::rfc3339;

/// `[backup]` as written.
#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct RawBackup {
    every: Option<HumanDuration>,
    dir: Option<PathBuf>,
    keep: Option<usize>,
}

/// `[backup]`, checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BackupConfig {
    /// How often the schedule takes one (none: only on request).
    pub every: Option<Duration>,
    /// Where backups go (a mounted offsite share will do).
    pub dir: Option<PathBuf>,
    /// How many of the newest scheduled ones to keep there.
    pub keep: usize,
}

impl Default for BackupConfig {
    fn default() -> Self {
        BackupConfig {
            every: None,
            dir: None,
            keep: 7,
        }
    }
}

impl BackupConfig {
    /// Checks `[backup]`: `every` (default 24h once `dir` is set, at least
    /// 1m) needs `dir`, relative to the config file; `dir` may not lie in
    /// the data it copies; `keep` at least 1 (default 7).
    pub fn check(raw: RawBackup, base: &Path, data_dir: &Path) -> Result<BackupConfig, String> {
        let dir = raw.dir.map(|d| base.join(d));
        let every = match (&raw.every, &dir) {
            (Some(_), None) => {
                return Err("key backup.every: needs backup.dir, the folder backups go to".into());
            }
            (Some(e), Some(_)) if e.0 < Duration::from_secs(60) => {
                return Err(format!("key backup.every: {:?} is below the minimum of 1m", e.0));
            }
            (Some(e), Some(_)) => Some(e.0),
            (None, Some(_)) => Some(Duration::from_secs(86_400)),
            (None, None) => None,
        };
        if let Some(d) = &dir
            && ["history", "journal", "reports"]
                .iter()
                .any(|s| d.starts_with(data_dir.join(s)))
        {
            return Err(format!(
                "key backup.dir: {} lies inside the data it copies",
                d.display()
            ));
        }
        let keep = raw.keep.unwrap_or(7);
        if keep == 0 {
            return Err("key backup.keep: at least 1".into());
        }
        Ok(BackupConfig { every, dir, keep })
    }
}

/// Restores a backup into a new data directory (see
/// [`watchpost_backup::restore`]).
pub fn restore(from: &Path, data_dir: &Path) -> Result<Manifest, String> {
    watchpost_backup::restore(from, data_dir)
}

/// Checks a backup without restoring it.
pub fn verify(dir: &Path) -> Result<Manifest, String> {
    watchpost_backup::verify(dir)
}

/// Links every file under `from` (recursively) into `to`; files that
/// vanish meanwhile (a journal segment past retention) are skipped.
fn link_tree(from: &Path, to: &Path) -> Result<usize, String> {
    let mut n = 0;
    let Ok(entries) = std::fs::read_dir(from) else {
        return Ok(0);
    };
    std::fs::create_dir_all(to).map_err(|e| format!("{}: {e}", to.display()))?;
    for e in entries.flatten() {
        let p = e.path();
        let name = e.file_name();
        let s = name.to_string_lossy();
        if s.ends_with(".part") || s.ends_with(".tmp") {
            continue;
        }
        match e.file_type() {
            Ok(t) if t.is_dir() => n += link_tree(&p, &to.join(&name))?,
            Ok(t) if t.is_file() => match std::fs::hard_link(&p, to.join(&name)) {
                Ok(()) => n += 1,
                Err(err) if err.kind() == std::io::ErrorKind::NotFound => {}
                Err(err) => return Err(format!("{}: {err}", p.display())),
            },
            _ => {}
        }
    }
    Ok(n)
}

/// Where a config file goes inside the backup: relative to the config's
/// folder, or by its name when it lives elsewhere.
fn config_name(base: &Path, file: &Path) -> String {
    let rel = file
        .strip_prefix(base)
        .ok()
        .filter(|r| !r.as_os_str().is_empty())
        .map(Path::to_path_buf)
        .unwrap_or_else(|| PathBuf::from(file.file_name().unwrap_or_default()));
    format!("config/{}", rel.to_string_lossy().replace('\\', "/"))
}

/// Takes a backup into `dir` (default `[backup] dir`); blocking.
pub fn take(core: &Core, dir: Option<&Path>) -> Result<(PathBuf, Manifest), String> {
    let data = &core.config.data_dir;
    let target = match (dir, &core.config.backup.dir) {
        (Some(d), _) => d.to_path_buf(),
        (None, Some(d)) => d.clone(),
        (None, None) => {
            return Err(
                "no backup folder: give one (watchpostctl backup create --dir DIR) or set [backup] dir"
                    .into(),
            );
        }
    };
    if ["history", "journal", "reports"]
        .iter()
        .any(|d| target.starts_with(data.join(d)))
    {
        return Err(format!(
            "{}: a backup cannot go inside the data it copies",
            target.display()
        ));
    }
    let now = core.clock.now_ms();
    let staging = data.join(format!(".backup-links-{now}"));
    let _ = std::fs::remove_dir_all(&staging);
    let result = (|| {
        core.history.hold(|history| -> Result<(), String> {
            link_tree(history, &staging.join("history"))?;
            // The series dictionary grows in place: a copy, not a link.
            let dict = history.join("series.wps");
            if dict.is_file() {
                let to = staging.join("history/series.wps");
                let _ = std::fs::remove_file(&to);
                std::fs::copy(&dict, &to).map_err(|e| format!("{}: {e}", dict.display()))?;
            }
            Ok(())
        })?;
        link_tree(&data.join("journal"), &staging.join("journal"))?;
        let mut files: Vec<(String, PathBuf)> = Vec::new();
        let base = &core.config.rules_base;
        for f in core.config.sources.iter().chain(core.engine.rules().files.iter()) {
            let name = config_name(base, f);
            if !files.iter().any(|(n, _)| *n == name) {
                files.push((name, f.clone()));
            }
        }
        let plan = Plan {
            databases: vec![
                ("data/watchpost.db".into(), data.join("watchpost.db")),
                ("data/access.db".into(), data.join("access.db")),
            ],
            trees: vec![
                ("data/history".into(), staging.join("history")),
                ("data/journal".into(), staging.join("journal")),
                ("data/reports".into(), data.join("reports")),
            ],
            files,
        };
        watchpost_backup::create(&target, &plan, now, &rfc3339(now), crate::VERSION)
    })();
    let _ = std::fs::remove_dir_all(&staging);
    result
}

/// Takes a backup off the runtime and records its outcome: metrics, the
/// health the `collector_backup_failing` rule reads, the log; then keeps
/// only the newest `[backup] keep` in the default folder.
pub async fn run_once(core: &Arc<Core>, dir: Option<PathBuf>) -> Result<(PathBuf, Manifest), String> {
    let c = core.clone();
    let started = std::time::Instant::now();
    let default_dir = dir.is_none();
    let answer = tokio::task::spawn_blocking(move || take(&c, dir.as_deref()))
        .await
        .map_err(|e| e.to_string())
        .and_then(|r| r);
    let t = &core.telemetry;
    match &answer {
        Ok((path, m)) => {
            t.backups_taken.fetch_add(1, Ordering::Relaxed);
            t.backup_last_success_ms
                .store(core.clock.now_ms().max(0) as u64, Ordering::Relaxed);
            t.backup_last_bytes.store(m.bytes(), Ordering::Relaxed);
            t.backup_last_ms
                .store(started.elapsed().as_millis() as u64, Ordering::Relaxed);
            core.health.backup_succeeded();
            tracing::info!(path = %path.display(), files = m.files.len(), bytes = m.bytes(), "backup taken");
            if let (true, Some(dir)) = (default_dir, core.config.backup.dir.clone()) {
                let keep = core.config.backup.keep;
                match tokio::task::spawn_blocking(move || watchpost_backup::prune(&dir, keep)).await {
                    Ok(Ok(gone)) => {
                        for g in gone {
                            tracing::info!(path = %g.display(), "old backup deleted (backup.keep)");
                        }
                    }
                    Ok(Err(e)) => tracing::warn!("cannot delete old backups: {e}"),
                    Err(e) => tracing::warn!("cannot delete old backups: {e}"),
                }
            }
        }
        Err(e) => {
            t.backup_failures.fetch_add(1, Ordering::Relaxed);
            core.health.backup_failed(e);
            tracing::error!("backup failed: {e}");
        }
    }
    answer
}

/// Takes a backup every `[backup] every`: the first once the newest one in
/// `[backup] dir` (or the collector's start, when there is none) is that
/// old; a failed one is tried again after ten minutes.
pub async fn schedule(core: Arc<Core>, mut shutdown: watch::Receiver<bool>) {
    let Some(every) = core.config.backup.every else {
        return;
    };
    let every_ms = every.as_millis() as i64;
    let started = core.clock.now_ms();
    let mut tick = tokio::time::interval(Duration::from_secs(10));
    // After a failure: again in ten minutes (or `every`, if shorter).
    let retry_ms = every_ms.min(600_000);
    let mut failed_at: Option<i64> = None;
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            _ = shutdown.changed() => return,
        }
        let now = core.clock.now_ms();
        let Some(dir) = core.config.backup.dir.clone() else {
            return;
        };
        let newest = tokio::task::spawn_blocking(move || {
            watchpost_backup::list(&dir)
                .into_iter()
                .find_map(|(_, m)| m.ok().map(|m| m.created_ms))
        })
        .await
        .ok()
        .flatten();
        if now - newest.unwrap_or(started) < every_ms || failed_at.is_some_and(|t| now - t < retry_ms) {
            continue;
        }
        failed_at = run_once(&core, None).await.is_err().then_some(now);
    }
}
