//! Backups of a collector's data directory (数据备份与恢复): SQLite
//! databases copied through SQLite's online backup (a consistent snapshot
//! while the collector writes), files copied as they are, every file's
//! size and SHA-256 in `MANIFEST.json`, written last. A backup is built
//! under a `.part` name and renamed into place once its manifest is
//! synced, so a half-written backup is never taken for a good one.
//!
//! Layout of a backup directory `watchpost-backup-YYYYMMDDTHHMMSSZ/`:
//! `data/` (what goes back into a data directory: `watchpost.db`,
//! `access.db`, `history/`, `journal/`, `reports/`), `config/` (the
//! config files the collector was started with), `MANIFEST.json`.

use std::fs::{self, File};
use std::io::{Read, Write};
use std::path::{Component, Path, PathBuf};

use serde::{Deserialize, Serialize};
use sha2::Digest;

/// The manifest's file name.
pub const MANIFEST: &str = "MANIFEST.json";
/// Backup directories are named this, then the UTC time.
pub const PREFIX: &str = "watchpost-backup-";
/// The manifest format this build writes and reads.
pub const FORMAT: u32 = 1;

/// One file of a backup.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Entry {
    /// Path inside the backup (`data/watchpost.db`), `/`-separated.
    pub path: String,
    /// Size.
    pub bytes: u64,
    /// SHA-256 (hex).
    pub sha256: String,
    /// An SQLite database (its integrity is checked too).
    #[serde(default)]
    pub sqlite: bool,
}

/// What a backup holds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Manifest {
    /// [`FORMAT`].
    pub format: u32,
    /// When it was taken (RFC 3339).
    pub created_at: String,
    /// The same, ms since the epoch.
    pub created_ms: i64,
    /// The collector's version.
    pub version: String,
    /// Every file.
    pub files: Vec<Entry>,
}

impl Manifest {
    /// Bytes in all.
    pub fn bytes(&self) -> u64 {
        self.files.iter().map(|f| f.bytes).sum()
    }
}

/// What to back up.
#[derive(Debug, Clone, Default)]
pub struct Plan {
    /// SQLite databases: (path inside the backup, file).
    pub databases: Vec<(String, PathBuf)>,
    /// Directories copied file by file (missing ones are empty): (prefix, dir).
    pub trees: Vec<(String, PathBuf)>,
    /// Single files: (path inside the backup, file).
    pub files: Vec<(String, PathBuf)>,
}

fn io(path: &Path) -> impl Fn(std::io::Error) -> String + '_ {
    move |e| format!("{}: {e}", path.display())
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

fn sha256_of(path: &Path) -> Result<(u64, String), String> {
    let mut f = File::open(path).map_err(io(path))?;
    let mut h = sha2::Sha256::new();
    let mut buf = vec![0u8; 1 << 16];
    let mut n = 0u64;
    loop {
        let k = f.read(&mut buf).map_err(io(path))?;
        if k == 0 {
            break;
        }
        h.update(&buf[..k]);
        n += k as u64;
    }
    Ok((n, hex(&h.finalize())))
}

fn sync_dir(dir: &Path) -> Result<(), String> {
    File::open(dir).and_then(|d| d.sync_all()).map_err(io(dir))
}

/// A path inside a backup, checked: relative, no `..`.
fn inside(root: &Path, rel: &str) -> Result<PathBuf, String> {
    let p = Path::new(rel);
    if p.components().any(|c| !matches!(c, Component::Normal(_))) {
        return Err(format!("{MANIFEST}: {rel:?} is not a path inside the backup"));
    }
    Ok(root.join(p))
}

/// Copies a file and syncs it; returns its size and hash.
fn copy_synced(from: &Path, to: &Path) -> Result<(u64, String), String> {
    if let Some(parent) = to.parent() {
        fs::create_dir_all(parent).map_err(io(parent))?;
    }
    fs::copy(from, to).map_err(|e| format!("{} → {}: {e}", from.display(), to.display()))?;
    File::open(to).and_then(|f| f.sync_all()).map_err(io(to))?;
    sha256_of(to)
}

/// Every file under `dir`, relative, sorted; in-progress files (`.part`,
/// `.tmp`) are left out.
fn files_under(dir: &Path) -> Result<Vec<PathBuf>, String> {
    let mut out = Vec::new();
    let mut stack = vec![PathBuf::new()];
    while let Some(rel) = stack.pop() {
        let here = dir.join(&rel);
        let entries = match fs::read_dir(&here) {
            Ok(e) => e,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound && rel.as_os_str().is_empty() => {
                return Ok(out);
            }
            Err(e) => return Err(format!("{}: {e}", here.display())),
        };
        for e in entries {
            let e = e.map_err(io(&here))?;
            let name = e.file_name();
            let s = name.to_string_lossy();
            if s.ends_with(".part") || s.ends_with(".tmp") || s.starts_with(".backup-") {
                continue;
            }
            let t = e.file_type().map_err(io(&e.path()))?;
            if t.is_dir() {
                stack.push(rel.join(&name));
            } else if t.is_file() {
                out.push(rel.join(&name));
            }
        }
    }
    out.sort();
    Ok(out)
}

/// Snapshots the SQLite database `from` into `to` with SQLite's online
/// backup: one step, so the copy is one consistent state of it.
pub fn snapshot_database(from: &Path, to: &Path) -> Result<(), String> {
    use rusqlite::{Connection, OpenFlags};
    let src = Connection::open_with_flags(
        from,
        OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
    .map_err(|e| format!("{}: {e}", from.display()))?;
    if let Some(parent) = to.parent() {
        fs::create_dir_all(parent).map_err(io(parent))?;
    }
    let mut dst = Connection::open(to).map_err(|e| format!("{}: {e}", to.display()))?;
    {
        let b =
            rusqlite::backup::Backup::new(&src, &mut dst).map_err(|e| format!("{}: {e}", from.display()))?;
        // All pages in one step: one read transaction, one state. Busy or
        // locked (a checkpoint): try again, for at most ten seconds.
        let mut tries = 0;
        loop {
            match b.step(-1).map_err(|e| format!("{}: {e}", from.display()))? {
                rusqlite::backup::StepResult::Done => break,
                _ if tries >= 1000 => return Err(format!("{}: stayed busy for 10 s", from.display())),
                _ => {
                    tries += 1;
                    std::thread::sleep(std::time::Duration::from_millis(10));
                }
            }
        }
    }
    // A single file: no WAL beside it.
    dst.pragma_update(None, "journal_mode", "DELETE")
        .map_err(|e| format!("{}: {e}", to.display()))?;
    drop(dst);
    File::open(to).and_then(|f| f.sync_all()).map_err(io(to))
}

/// The UTC stamp of a backup's name (`20261202T031500Z`).
pub fn stamp(created_at_rfc3339: &str) -> String {
    created_at_rfc3339
        .chars()
        .filter(|c| c.is_ascii_digit() || *c == 'T')
        .take(15)
        .collect::<String>()
        + "Z"
}

/// Takes a backup under `parent`; returns its directory and manifest.
/// `created_at` is RFC 3339 in UTC.
pub fn create(
    parent: &Path,
    plan: &Plan,
    created_ms: i64,
    created_at: &str,
    version: &str,
) -> Result<(PathBuf, Manifest), String> {
    fs::create_dir_all(parent).map_err(io(parent))?;
    let name = format!("{PREFIX}{}", stamp(created_at));
    let done = parent.join(&name);
    if done.exists() {
        return Err(format!(
            "{} exists already: one backup per second",
            done.display()
        ));
    }
    let work = parent.join(format!(".{name}.part"));
    let _ = fs::remove_dir_all(&work);
    fs::create_dir_all(&work).map_err(io(&work))?;
    let result = (|| {
        let mut files = Vec::new();
        for (rel, from) in &plan.databases {
            let to = inside(&work, rel)?;
            snapshot_database(from, &to)?;
            let (bytes, sha256) = sha256_of(&to)?;
            files.push(Entry {
                path: rel.clone(),
                bytes,
                sha256,
                sqlite: true,
            });
        }
        for (prefix, dir) in &plan.trees {
            for rel in files_under(dir)? {
                let path = format!("{prefix}/{}", rel.to_string_lossy().replace('\\', "/"));
                let (bytes, sha256) = copy_synced(&dir.join(&rel), &inside(&work, &path)?)?;
                files.push(Entry {
                    path,
                    bytes,
                    sha256,
                    sqlite: false,
                });
            }
        }
        for (rel, from) in &plan.files {
            let (bytes, sha256) = copy_synced(from, &inside(&work, rel)?)?;
            files.push(Entry {
                path: rel.clone(),
                bytes,
                sha256,
                sqlite: false,
            });
        }
        let manifest = Manifest {
            format: FORMAT,
            created_at: created_at.to_string(),
            created_ms,
            version: version.to_string(),
            files,
        };
        let path = work.join(MANIFEST);
        let mut f = File::create(&path).map_err(io(&path))?;
        f.write_all(&serde_json::to_vec_pretty(&manifest).map_err(|e| e.to_string())?)
            .and_then(|()| f.sync_all())
            .map_err(io(&path))?;
        // Every folder made, then the backup's own entry in `parent`.
        let mut dirs: Vec<PathBuf> = manifest
            .files
            .iter()
            .filter_map(|e| Path::new(&e.path).parent().map(|p| work.join(p)))
            .collect();
        dirs.sort();
        dirs.dedup();
        for d in dirs.iter().rev() {
            sync_dir(d)?;
        }
        sync_dir(&work)?;
        Ok(manifest)
    })();
    match result {
        Ok(manifest) => {
            fs::rename(&work, &done).map_err(|e| format!("{} → {}: {e}", work.display(), done.display()))?;
            sync_dir(parent)?;
            Ok((done, manifest))
        }
        Err(e) => {
            let _ = fs::remove_dir_all(&work);
            Err(e)
        }
    }
}

/// Checks a backup: its manifest, every file's size and SHA-256, every
/// database's `PRAGMA integrity_check`. The error names the first file
/// that is missing, changed or damaged.
pub fn verify(dir: &Path) -> Result<Manifest, String> {
    let path = dir.join(MANIFEST);
    let text = match fs::read(&path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Err(format!(
                "{}: no {MANIFEST}: not a complete backup (one still being written, or cut short)",
                dir.display()
            ));
        }
        Err(e) => return Err(format!("{}: {e}", path.display())),
    };
    let m: Manifest = serde_json::from_slice(&text).map_err(|e| format!("{}: {e}", path.display()))?;
    if m.format != FORMAT {
        return Err(format!(
            "{}: format {} (this build reads {FORMAT})",
            path.display(),
            m.format
        ));
    }
    for e in &m.files {
        let file = inside(dir, &e.path)?;
        let (bytes, sha256) =
            sha256_of(&file).map_err(|err| format!("{}: missing or unreadable: {err}", e.path))?;
        if bytes != e.bytes {
            return Err(format!(
                "{}: {bytes} bytes, the manifest says {}: the backup is partial or changed",
                file.display(),
                e.bytes
            ));
        }
        if sha256 != e.sha256 {
            return Err(format!(
                "{}: its SHA-256 is {sha256}, the manifest says {}: the file was changed or damaged",
                file.display(),
                e.sha256
            ));
        }
        if e.sqlite {
            let conn =
                rusqlite::Connection::open_with_flags(&file, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)
                    .map_err(|err| format!("{}: {err}", file.display()))?;
            let ok: String = conn
                .query_row("PRAGMA integrity_check", [], |r| r.get(0))
                .map_err(|err| format!("{}: {err}", file.display()))?;
            if ok != "ok" {
                return Err(format!("{}: integrity check: {ok}", file.display()));
            }
        }
    }
    Ok(m)
}

/// Restores the backup `from` into `data_dir` (absent or empty): checks
/// it first and writes nothing when it is damaged; builds the directory
/// under a `.part` name and renames it into place. The config files go to
/// `<data_dir>/restored-config/`.
pub fn restore(from: &Path, data_dir: &Path) -> Result<Manifest, String> {
    let m = verify(from)?;
    if let Ok(mut entries) = fs::read_dir(data_dir)
        && entries.next().is_some()
    {
        return Err(format!(
            "{} is not empty: restore into a new or empty directory (nothing was written)",
            data_dir.display()
        ));
    }
    let name = data_dir
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .ok_or_else(|| format!("{}: not a directory name", data_dir.display()))?;
    let parent = data_dir
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    fs::create_dir_all(parent).map_err(io(parent))?;
    let work = parent.join(format!(".{name}.restore.part"));
    let _ = fs::remove_dir_all(&work);
    let result = (|| {
        for e in &m.files {
            let to = if let Some(rest) = e.path.strip_prefix("data/") {
                inside(&work, rest)?
            } else if let Some(rest) = e.path.strip_prefix("config/") {
                inside(&work.join("restored-config"), rest)?
            } else {
                continue;
            };
            let (_, sha256) = copy_synced(&inside(from, &e.path)?, &to)?;
            if sha256 != e.sha256 {
                return Err(format!("{}: changed while it was restored", e.path));
            }
        }
        sync_dir(&work)
    })();
    if let Err(e) = result {
        let _ = fs::remove_dir_all(&work);
        return Err(e);
    }
    if data_dir.exists() {
        fs::remove_dir(data_dir).map_err(io(data_dir))?;
    }
    fs::rename(&work, data_dir).map_err(|e| format!("{} → {}: {e}", work.display(), data_dir.display()))?;
    sync_dir(parent)?;
    Ok(m)
}

/// The backups under `parent`, newest first, each with its manifest (or
/// why it cannot be read). Directories still being written are left out.
pub fn list(parent: &Path) -> Vec<(PathBuf, Result<Manifest, String>)> {
    let Ok(entries) = fs::read_dir(parent) else {
        return Vec::new();
    };
    let mut out: Vec<(PathBuf, Result<Manifest, String>)> = entries
        .filter_map(|e| e.ok())
        .filter(|e| e.file_name().to_string_lossy().starts_with(PREFIX))
        .map(|e| {
            let p = e.path();
            let m = fs::read(p.join(MANIFEST))
                .map_err(|err| format!("{}: {err}", p.join(MANIFEST).display()))
                .and_then(|t| serde_json::from_slice::<Manifest>(&t).map_err(|err| err.to_string()));
            (p, m)
        })
        .collect();
    out.sort_by(|a, b| b.0.cmp(&a.0));
    out
}

/// Deletes the oldest complete backups under `parent` beyond the newest
/// `keep`; returns what was deleted. Unreadable ones are never deleted.
pub fn prune(parent: &Path, keep: usize) -> Result<Vec<PathBuf>, String> {
    let mut gone = Vec::new();
    for (p, m) in list(parent).into_iter().filter(|(_, m)| m.is_ok()).skip(keep) {
        if m.is_ok() {
            fs::remove_dir_all(&p).map_err(io(&p))?;
            gone.push(p);
        }
    }
    Ok(gone)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(dir: &Path) -> Plan {
        let db = dir.join("w.db");
        let c = rusqlite::Connection::open(&db).expect("db");
        c.execute_batch("PRAGMA journal_mode=WAL; CREATE TABLE t (x); INSERT INTO t VALUES (1), (2);")
            .expect("sql");
        std::mem::forget(c); // still open, as the collector's would be
        fs::create_dir_all(dir.join("h/sub")).expect("mkdir");
        fs::write(dir.join("h/sub/a.wph"), b"abc").expect("write");
        fs::write(dir.join("h/b.wph.tmp"), b"half").expect("write");
        fs::write(dir.join("c.toml"), b"[collector]\n").expect("write");
        Plan {
            databases: vec![("data/watchpost.db".into(), db)],
            trees: vec![("data/history".into(), dir.join("h"))],
            files: vec![("config/collector.toml".into(), dir.join("c.toml"))],
        }
    }

    #[test]
    fn a_backup_verifies_restores_and_refuses_one_changed_byte() {
        let src = tempfile::tempdir().expect("tempdir");
        let out = tempfile::tempdir().expect("tempdir");
        let plan = sample(src.path());
        let (dir, m) = create(out.path(), &plan, 1, "2026-12-02T03:15:00Z", "test").expect("backup");
        assert!(dir.ends_with("watchpost-backup-20261202T031500Z"));
        let paths: Vec<&str> = m.files.iter().map(|f| f.path.as_str()).collect();
        assert_eq!(
            paths,
            [
                "data/watchpost.db",
                "data/history/sub/a.wph",
                "config/collector.toml"
            ]
        );
        verify(&dir).expect("verifies");
        let into = out.path().join("restored");
        restore(&dir, &into).expect("restores");
        let c = rusqlite::Connection::open(into.join("watchpost.db")).expect("db");
        let n: i64 = c
            .query_row("SELECT COUNT(*) FROM t", [], |r| r.get(0))
            .expect("count");
        assert_eq!(n, 2);
        assert_eq!(fs::read(into.join("history/sub/a.wph")).expect("file"), b"abc");
        assert!(into.join("restored-config/collector.toml").is_file());
        // Not over a directory with something in it.
        let e = restore(&dir, &into).expect_err("refused");
        assert!(e.contains("is not empty"), "{e}");
        // One byte changed: refused, naming the file, nothing written.
        let f = dir.join("data/history/sub/a.wph");
        fs::write(&f, b"abd").expect("write");
        let e = verify(&dir).expect_err("refused");
        assert!(e.contains("a.wph") && e.contains("SHA-256"), "{e}");
        let fresh = out.path().join("fresh");
        assert!(restore(&dir, &fresh).is_err());
        assert!(!fresh.exists());
    }

    #[test]
    fn a_half_written_backup_is_never_taken_for_a_good_one() {
        let out = tempfile::tempdir().expect("tempdir");
        let part = out.path().join(format!("{PREFIX}20261202T000000Z"));
        fs::create_dir_all(part.join("data")).expect("mkdir");
        fs::write(part.join("data/watchpost.db"), b"x").expect("write");
        let e = verify(&part).expect_err("refused");
        assert!(e.contains("no MANIFEST.json"), "{e}");
        assert!(
            prune(out.path(), 0).expect("prune").is_empty(),
            "an unreadable backup is kept"
        );
    }

    #[test]
    fn prune_keeps_the_newest() {
        let src = tempfile::tempdir().expect("tempdir");
        let out = tempfile::tempdir().expect("tempdir");
        let plan = sample(src.path());
        for s in [
            "2026-12-01T00:00:00Z",
            "2026-12-02T00:00:00Z",
            "2026-12-03T00:00:00Z",
        ] {
            create(out.path(), &plan, 1, s, "test").expect("backup");
        }
        let gone = prune(out.path(), 2).expect("prune");
        assert_eq!(gone.len(), 1);
        assert!(gone[0].ends_with("watchpost-backup-20261201T000000Z"));
        assert_eq!(list(out.path()).len(), 2);
    }
}
