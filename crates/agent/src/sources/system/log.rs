//! `[[log]]`: counts the lines of log files that match patterns
//! (`ORA-\d+`, `OutOfMemoryError`, `segfault`): `log_matches_per_second`
//! and `log_matches_total` per pattern, and keeps the last matching
//! line, which travels with the sample as its text and becomes part of the
//! fault's summary on the collector.
//!
//! Files are followed by identity (device and inode), not by name, so that
//! rotation loses and repeats nothing:
//! - on first sight, at the agent's start, a file is read from its end
//!   (old lines are history, not news); a file that appears later (the new
//!   file after a rotation, a new file matching the glob) from its start;
//! - renamed away (`app.log` → `app.log.1`): the open handle is read to its
//!   end, then closed, and the new `app.log` is read from its start;
//! - truncated in place (`copytruncate`): its size fell below the offset
//!   read, or its first bytes changed (it was truncated and has already
//!   grown past the offset), so it is read again from the start.
//!
//! Lines written between the last read and a `copytruncate` are lost:
//! that rotation method copies and truncates without telling anyone, and
//! no reader can see what it removed. Patterns match bytes, so a log
//! that is not UTF-8 (GBK) is still read.

use std::collections::{BTreeMap, HashMap};
use std::fs::File;
use std::os::unix::fs::{FileExt, MetadataExt};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

use serde::Deserialize;

use super::{Job, Once, labels_of};
use crate::series::{Measured, SharedLabels};

/// A line longer than this is matched on its first this-many bytes.
const MAX_LINE_BYTES: usize = 64 * 1024;
/// At most this much of one file is read per round; the rest next round.
const MAX_READ_PER_ROUND: u64 = 16 << 20;

/// One `[[log]]` as written.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawLog {
    name: Option<String>,
    path: String,
    patterns: BTreeMap<String, String>,
    #[serde(default)]
    labels: BTreeMap<String, String>,
}

/// One watched log, checked.
#[derive(Debug, Clone)]
pub struct LogWatch {
    /// Its `log` label (default: the path as written).
    pub name: String,
    /// A file, or a glob of files (`*`, `?`, `[...]`).
    pub path: String,
    glob: bool,
    /// Pattern name (the `pattern` label) and its regex, with the labels of
    /// its series.
    patterns: Vec<(regex::bytes::Regex, SharedLabels)>,
    labels: SharedLabels,
}

pub(super) fn check(raws: Vec<RawLog>) -> Result<Vec<LogWatch>, String> {
    let mut out: Vec<LogWatch> = Vec::new();
    for (i, raw) in raws.into_iter().enumerate() {
        let what = format!("[[log]] {}", i + 1);
        if !raw.path.starts_with('/') {
            return Err(format!("{what}: path {:?} must be absolute", raw.path));
        }
        let glob = raw.path.contains(['*', '?', '[']);
        if glob {
            glob::Pattern::new(&raw.path)
                .map_err(|e| format!("{what}: path {:?} is not a glob: {e}", raw.path))?;
        }
        let name = raw.name.unwrap_or_else(|| raw.path.clone());
        if out.iter().any(|l| l.name == name) {
            return Err(format!(
                "{what}: name {name:?} is used twice; give each a distinct `name`"
            ));
        }
        if raw.patterns.is_empty() {
            return Err(format!(
                "{what}: `patterns` is empty; e.g. patterns = {{ oom = \"OutOfMemoryError\" }}"
            ));
        }
        if raw.labels.contains_key("pattern") {
            return Err(format!("{what}: label \"pattern\" is set by the agent"));
        }
        let labels = labels_of(&what, "log", &name, raw.labels)?;
        let mut patterns = Vec::new();
        for (pattern_name, re) in raw.patterns {
            let re = regex::bytes::Regex::new(&re)
                .map_err(|e| format!("{what}: patterns.{pattern_name} {re:?} is not a regex: {e}"))?;
            watchpost_model::names::check_label_value(&pattern_name)
                .map_err(|e| format!("{what}: patterns.{pattern_name}: {e}"))?;
            let mut l = labels.to_vec();
            l.push(("pattern".to_string(), pattern_name));
            l.sort();
            patterns.push((re, l.into()));
        }
        out.push(LogWatch {
            name,
            path: raw.path,
            glob,
            patterns,
            labels,
        });
    }
    Ok(out)
}

/// A file being followed.
struct Followed {
    file: File,
    path: PathBuf,
    offset: u64,
    /// The start of a line whose end is not written yet.
    partial: Vec<u8>,
    /// The file's first bytes (up to [`HEAD_BYTES`]) as last seen: when they
    /// change, the file was truncated and rewritten past our offset.
    head: Vec<u8>,
}

/// How many of a file's first bytes tell a rewritten file from a grown one.
const HEAD_BYTES: usize = 64;

impl Followed {
    /// Truncated and written again since the last round, even if it grew
    /// past the offset (a `copytruncate` followed by a burst of lines).
    fn rewritten(&mut self) -> bool {
        let want = self.offset.min(HEAD_BYTES as u64) as usize;
        if want == 0 {
            return false;
        }
        let mut buf = [0u8; HEAD_BYTES];
        let Ok(n) = self.file.read_at(&mut buf[..want], 0) else {
            return false;
        };
        if n < self.head.len() || buf[..self.head.len()] != self.head[..] {
            return true;
        }
        if n > self.head.len() {
            self.head = buf[..n].to_vec();
        }
        false
    }
}

/// Matches found since the last round.
#[derive(Default, Clone)]
struct Found {
    count: u64,
    last: Option<Vec<u8>>,
}

/// One log's state.
struct Follower {
    watch: LogWatch,
    files: HashMap<(u64, u64), Followed>,
    primed: bool,
    found: Vec<Found>,
    /// Matches per pattern since the agent started (`log_matches_total`).
    totals: Vec<u64>,
    buffer: Vec<u8>,
}

impl Follower {
    fn new(watch: LogWatch) -> Follower {
        let found = vec![Found::default(); watch.patterns.len()];
        Follower {
            watch,
            files: HashMap::new(),
            primed: false,
            totals: vec![0; found.len()],
            found,
            buffer: vec![0; 64 * 1024],
        }
    }

    fn paths(&self, warned: &mut Once) -> Vec<PathBuf> {
        if !self.watch.glob {
            return vec![PathBuf::from(&self.watch.path)];
        }
        match glob::glob(&self.watch.path) {
            Ok(paths) => paths.flatten().collect(),
            Err(e) => {
                if warned.first(&self.watch.path) {
                    tracing::warn!(log = %self.watch.name, error = %e, "cannot expand the log's glob");
                }
                Vec::new()
            }
        }
    }

    /// Reads what was appended to every file since the last round.
    fn read(&mut self, warned: &mut Once) {
        let mut present = Vec::new();
        for path in self.paths(warned) {
            let Ok(meta) = std::fs::metadata(&path) else {
                continue; // not there (yet): not an error, logs come and go
            };
            if !meta.is_file() {
                continue;
            }
            let key = (meta.dev(), meta.ino());
            present.push(key);
            match self.files.get_mut(&key) {
                Some(f) => {
                    if meta.len() < f.offset || f.rewritten() {
                        tracing::info!(log = %self.watch.name, file = %path.display(), "log truncated; reading it from the start");
                        f.offset = 0;
                        f.partial.clear();
                        f.head.clear();
                    }
                    f.path = path;
                }
                None => match File::open(&path) {
                    Ok(file) => {
                        warned.clear(&path.to_string_lossy());
                        let offset = if self.primed { 0 } else { meta.len() };
                        self.files.insert(
                            key,
                            Followed {
                                file,
                                path,
                                offset,
                                partial: Vec::new(),
                                head: Vec::new(),
                            },
                        );
                    }
                    Err(e) => {
                        if warned.first(&path.to_string_lossy()) {
                            tracing::warn!(log = %self.watch.name, file = %path.display(), error = %e,
                                "cannot open the log (run the agent as a user who may read it)");
                        }
                    }
                },
            }
        }
        self.primed = true;
        // Files renamed away first: their lines were written before those
        // of the files that replaced them.
        let mut keys: Vec<(bool, (u64, u64))> =
            self.files.keys().map(|k| (present.contains(k), *k)).collect();
        keys.sort();
        for (here, key) in keys {
            let gone = !here;
            if let Some(mut f) = self.files.remove(&key) {
                // A file renamed away is read to its end through the handle
                // still open, then let go.
                self.drain(&mut f, gone);
                if gone {
                    if !f.partial.is_empty() {
                        let last = std::mem::take(&mut f.partial);
                        self.line(&last);
                    }
                } else {
                    self.files.insert(key, f);
                }
            }
        }
    }

    fn drain(&mut self, f: &mut Followed, to_end: bool) {
        let mut budget = if to_end { u64::MAX } else { MAX_READ_PER_ROUND };
        while budget > 0 {
            let n = match f.file.read_at(&mut self.buffer, f.offset) {
                Ok(0) => return,
                Ok(n) => n,
                Err(e) => {
                    tracing::warn!(file = %f.path.display(), error = %e, "cannot read the log");
                    return;
                }
            };
            f.offset += n as u64;
            budget = budget.saturating_sub(n as u64);
            let chunk = std::mem::take(&mut self.buffer);
            let mut rest = &chunk[..n];
            while let Some(end) = rest.iter().position(|&b| b == b'\n') {
                if f.partial.is_empty() {
                    self.line(&rest[..end]);
                } else {
                    f.partial.extend_from_slice(&rest[..end]);
                    let whole = std::mem::take(&mut f.partial);
                    self.line(&whole);
                }
                rest = &rest[end + 1..];
            }
            if f.partial.len() < MAX_LINE_BYTES {
                let room = MAX_LINE_BYTES - f.partial.len();
                f.partial.extend_from_slice(&rest[..rest.len().min(room)]);
            }
            self.buffer = chunk;
        }
    }

    fn line(&mut self, line: &[u8]) {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        let line = &line[..line.len().min(MAX_LINE_BYTES)];
        for ((re, _), found) in self.watch.patterns.iter().zip(self.found.iter_mut()) {
            if re.is_match(line) {
                found.count += 1;
                found.last = Some(line.to_vec());
            }
        }
    }
}

/// The last matching line as the fault will show it: valid text, trimmed,
/// control characters replaced, at most 240 characters.
pub fn excerpt(line: &[u8]) -> Arc<str> {
    watchpost_model::names::series_text(&String::from_utf8_lossy(line)).into()
}

/// The `[[log]]` job.
pub(super) struct Logs {
    followers: Vec<Follower>,
    last: Option<Instant>,
    warned: Once,
}

impl Logs {
    pub(super) fn new(watches: Vec<LogWatch>) -> Logs {
        let mut logs = Logs {
            followers: watches.into_iter().map(Follower::new).collect(),
            last: None,
            warned: Once::default(),
        };
        // Note where every file ends now: what is written from here on counts.
        for f in &mut logs.followers {
            f.read(&mut logs.warned);
        }
        logs.last = Some(Instant::now());
        logs
    }
}

impl Job for Logs {
    fn run(&mut self, at_ms: i64, out: &mut Vec<Measured>) {
        let now = Instant::now();
        let seconds = self
            .last
            .map_or(1.0, |t| now.duration_since(t).as_secs_f64())
            .max(0.001);
        self.last = Some(now);
        for f in &mut self.followers {
            f.read(&mut self.warned);
            out.push(Measured {
                metric: "log_files".into(),
                labels: f.watch.labels.clone(),
                value: f.files.len() as f64,
                at_ms,
                text: None,
            });
            let patterns = f
                .watch
                .patterns
                .iter()
                .zip(f.found.iter_mut())
                .zip(f.totals.iter_mut());
            for (((_, labels), found), total) in patterns {
                let found = std::mem::take(found);
                *total += found.count;
                out.push(Measured {
                    metric: "log_matches_total".into(),
                    labels: labels.clone(),
                    value: *total as f64,
                    at_ms,
                    text: None,
                });
                out.push(Measured {
                    metric: "log_matches_per_second".into(),
                    labels: labels.clone(),
                    // Not rounded: one match in a long interval must not read as 0.
                    value: found.count as f64 / seconds,
                    at_ms,
                    text: found.last.as_deref().map(excerpt),
                });
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn watch(dir: &std::path::Path, path: &str) -> LogWatch {
        let text = format!(
            "[[log]]\nname = \"app\"\npath = \"{}/{path}\"\npatterns = {{ oom = \"OutOfMemoryError\", ora = 'ORA-\\d+' }}\n",
            dir.display()
        );
        #[derive(Deserialize)]
        struct F {
            log: Vec<RawLog>,
        }
        let f: F = toml::from_str(&text).expect("toml");
        check(f.log).expect("valid").remove(0)
    }

    fn append(path: &std::path::Path, text: &str) {
        let mut f = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .expect("open for append");
        f.write_all(text.as_bytes()).expect("append");
    }

    /// (oom, ora) counts and the last ORA line of one round.
    fn round(logs: &mut Logs) -> (f64, f64, Option<String>) {
        let mut out = Vec::new();
        logs.last = Some(Instant::now() - std::time::Duration::from_secs(1));
        logs.run(0, &mut out);
        let of = |p: &str| {
            out.iter()
                .find(|m| {
                    m.metric == "log_matches_per_second"
                        && m.labels.iter().any(|(k, v)| k == "pattern" && v == p)
                })
                .map(|m| (m.value.round(), m.text.as_deref().map(str::to_string)))
                .unwrap_or_default()
        };
        (of("oom").0, of("ora").0, of("ora").1)
    }

    #[test]
    fn starts_at_the_end_and_counts_new_lines_only() {
        let dir = tempfile::tempdir().expect("tempdir");
        let log = dir.path().join("app.log");
        append(&log, "ORA-00600 old news\n");
        let mut logs = Logs::new(vec![watch(dir.path(), "app.log")]);
        assert_eq!(round(&mut logs), (0.0, 0.0, None));
        append(
            &log,
            "ok\nORA-01555 snapshot too old\njava.lang.OutOfMemoryError\nORA-12541: TNS:no listener\r\n",
        );
        assert_eq!(
            round(&mut logs),
            (1.0, 2.0, Some("ORA-12541: TNS:no listener".into()))
        );
        // A line written in two parts counts once, when it is whole.
        append(&log, "ORA-0");
        assert_eq!(round(&mut logs).1, 0.0);
        append(&log, "0001 unique constraint\n");
        assert_eq!(
            round(&mut logs),
            (0.0, 1.0, Some("ORA-00001 unique constraint".into()))
        );
    }

    #[test]
    fn follows_rename_and_truncate_without_losing_or_repeating() {
        let dir = tempfile::tempdir().expect("tempdir");
        let log = dir.path().join("app.log");
        append(&log, "start\n");
        let mut logs = Logs::new(vec![watch(dir.path(), "app.log")]);
        // Written just before the rotation: read through the old handle.
        append(&log, "ORA-1 before rename\n");
        std::fs::rename(&log, dir.path().join("app.log.1")).expect("rename");
        append(&log, "ORA-2 in the new file\nORA-3 too\n");
        assert_eq!(round(&mut logs), (0.0, 3.0, Some("ORA-3 too".into())));
        assert_eq!(round(&mut logs).1, 0.0, "nothing read twice");
        // copytruncate: the same file, emptied and written again.
        std::fs::write(&log, "").expect("truncate");
        append(&log, "ORA-4 after truncate\n");
        assert_eq!(round(&mut logs), (0.0, 1.0, Some("ORA-4 after truncate".into())));
        assert_eq!(round(&mut logs).1, 0.0);
        // Truncated and already written past the old offset before the next
        // round: the changed first bytes tell it from a file that grew.
        std::fs::write(&log, "").expect("truncate");
        append(
            &log,
            "a longer first line than before, so the file outgrows the offset
ORA-5 after a burst
",
        );
        assert_eq!(round(&mut logs), (0.0, 1.0, Some("ORA-5 after a burst".into())));
        append(
            &log,
            "ORA-6 appended
",
        );
        assert_eq!(
            round(&mut logs),
            (0.0, 1.0, Some("ORA-6 appended".into())),
            "a grown file is not re-read"
        );
    }

    #[test]
    fn a_glob_picks_up_new_files_from_their_start() {
        let dir = tempfile::tempdir().expect("tempdir");
        append(&dir.path().join("a.log"), "ORA-1 old\n");
        let mut logs = Logs::new(vec![watch(dir.path(), "*.log")]);
        append(&dir.path().join("b.log"), "OutOfMemoryError in b\n");
        append(&dir.path().join("a.log"), "OutOfMemoryError in a\n");
        assert_eq!(round(&mut logs).0, 2.0);
    }

    #[test]
    fn excerpts_are_bounded_text() {
        assert_eq!(&*excerpt(b"  ORA-1\tx\x1b[0m  "), "ORA-1 x [0m");
        assert_eq!(
            excerpt(&[b'x'; 1000]).chars().count(),
            watchpost_model::names::MAX_SERIES_TEXT_CHARS
        );
        assert_eq!(
            &*excerpt(b"\xd6\xd0\xce\xc4 ORA-1"),
            "\u{fffd}\u{fffd}\u{fffd}\u{fffd} ORA-1"
        );
    }

    #[test]
    fn errors_name_the_table_and_key() {
        let e = |t: &str| {
            #[derive(Deserialize)]
            struct F {
                log: Vec<RawLog>,
            }
            let f: F = toml::from_str(t).map_err(|e| e.to_string())?;
            check(f.log).map(|_| ())
        };
        assert!(
            e("[[log]]\npath = \"x.log\"\npatterns = { a = \"b\" }\n")
                .expect_err("relative")
                .contains("[[log]] 1: path \"x.log\" must be absolute")
        );
        assert!(
            e("[[log]]\npath = \"/x.log\"\npatterns = {}\n")
                .expect_err("none")
                .contains("`patterns` is empty")
        );
        assert!(
            e("[[log]]\npath = \"/x.log\"\npatterns = { a = \"(\" }\n")
                .expect_err("regex")
                .contains("patterns.a")
        );
        assert!(
            e("[[log]]\npath = \"/x/[.log\"\npatterns = { a = \"b\" }\n")
                .expect_err("glob")
                .contains("not a glob")
        );
    }
}
