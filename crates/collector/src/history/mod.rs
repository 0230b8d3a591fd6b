//! The history: per-minute and per-hour rollups of every series, kept
//! long after the hot window (`history.minute_retention`, 45 days, and
//! `history.hour_retention`, 400 days), in files that expire whole.
//!
//! **Passes.** Every `history.flush` (and sooner when chunks that left the
//! hot window wait in the store's spill) a pass reads each series' samples
//! after its rolled-up mark and before the cutoff (a minute boundary 30 s
//! behind the clock), folds them into minute aggregates (`codec`), and
//! writes them as one immutable file (`files`). Only once that file is
//! synced and renamed into place does the store's mark move on. The marks
//! are in the files (each block's `through`): after a crash the journal
//! refills the store, the marks are read back from the files that can
//! hold them, and the next pass rolls up exactly the samples after them.
//! Nothing is rolled up twice, and nothing the journal acknowledged is
//! missed, as long as a pass runs within the journal's window
//! (`history.flush` at most half of `collector.window`).
//!
//! **Late samples.** An agent's spooled backlog lands after its minutes
//! were rolled up: the next pass writes the late minutes again, and
//! readers merge both (aggregates of disjoint samples merge exactly).
//!
//! **Sealing.** Once a UTC day is over, its pass files are merged into a
//! day file per resolution (`day-YYYYMMDD-<pass>.min` and `.hour`, one
//! block per series), and pass files wholly absorbed are deleted. Late
//! samples for a sealed day reseal it (the new version absorbs the old).
//!
//! **Damage.** A file that fails its checks is renamed `*.corrupt`; its
//! name keeps its span, which queries report as missing.
//!
//! Series keys are hashed (`codec::key_hash`); `series.wps` records each
//! hash's metric and labels once, so series that have left the hot store
//! can still be queried by name.
//!
//! Invariant: the store's mark only moves after the samples up to it are
//! durable in a file; a file is never changed once named.

pub mod codec;
pub mod files;
mod seal;

use std::collections::{HashMap, HashSet, VecDeque};
use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use watchpost_segment::body::{Reader, put_str, put_varint};

pub use crate::config::HistoryConfig;
use crate::health::{Health, Store};
use crate::matchers::Matcher;
use crate::store::{HotStore, SeriesId, SeriesLabels};
use crate::time::Clock;
use codec::{Agg, slot_of};
use files::{FileWriter, HistoryFile, Kind, Named};

/// One minute (ms).
pub const MINUTE_MS: i64 = 60_000;
/// One hour (ms).
pub const HOUR_MS: i64 = 3_600_000;
const DAY_MS: i64 = 86_400_000;
/// How far behind the clock a pass's cutoff stays, so a minute's samples
/// have arrived before it is rolled up.
pub const GRACE_MS: i64 = 30_000;
/// Spilled bytes that start a pass before its time.
const SPILL_PASS_BYTES: usize = 64 << 20;
const KIND_SERIES: u8 = 1;
const OPEN_FILES: usize = 64;

/// A resolution of the rollups.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    /// One minute.
    Minute,
    /// One hour.
    Hour,
}

impl Step {
    /// The slot length (ms).
    pub fn ms(self) -> i64 {
        match self {
            Step::Minute => MINUTE_MS,
            Step::Hour => HOUR_MS,
        }
    }
}

/// A span a query could not read, and why.
#[derive(Debug, Clone, PartialEq)]
pub struct Missing {
    /// First millisecond.
    pub from: i64,
    /// Last millisecond.
    pub until: i64,
    /// The quarantined file's name.
    pub file: String,
}

/// One series' rollups over a query's span.
#[derive(Debug, Clone)]
pub struct SeriesRollup {
    /// Identity.
    pub series: SeriesLabels,
    /// `(slot start ms, aggregate)`, oldest first.
    pub points: Vec<(i64, Agg)>,
}

/// A series and its rollups, oldest first.
pub type Rolled = (SeriesLabels, Vec<(i64, Agg)>);

/// What a pass did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct PassReport {
    /// Series with samples rolled up.
    pub series: usize,
    /// Samples rolled up.
    pub samples: usize,
    /// Bytes of the file written (0: none).
    pub bytes: u64,
    /// Days sealed.
    pub sealed: usize,
    /// Files deleted as expired or absorbed.
    pub deleted: usize,
}

struct State {
    pass: u64,
    /// Hash per store series, computed once.
    hashes: Vec<u64>,
    /// Hashes recorded in `series.wps`.
    known: HashSet<u64>,
    dictionary: File,
    open: HashMap<PathBuf, Arc<HistoryFile>>,
    opened: VecDeque<PathBuf>,
}

/// The rollup writer and reader.
pub struct History {
    dir: PathBuf,
    store: Arc<HotStore>,
    clock: Arc<dyn Clock>,
    health: Arc<Health>,
    config: HistoryConfig,
    state: Mutex<State>,
    dropped: std::sync::atomic::AtomicU64,
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> String + '_ {
    move |e| format!("{}: {e}", path.display())
}

fn hash_in_store(store: &HotStore, id: SeriesId) -> Option<u64> {
    store.with_labels(id, |metric, labels| codec::key_hash(metric, labels))
}

fn read_dictionary(
    path: &Path,
    mut f: impl FnMut(u64, &[u8]) -> Result<(), String>,
) -> Result<usize, String> {
    let bytes = match fs::read(path) {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(0),
        Err(e) => return Err(io(path)(e)),
    };
    let spans = watchpost_segment::read_resync(&bytes, 1 << 20, |kind, body| {
        if kind != KIND_SERIES || body.len() < 8 {
            return Err(format!("record kind {kind} in the series dictionary"));
        }
        f(
            u64::from_le_bytes(body[..8].try_into().expect("8 bytes")),
            &body[8..],
        )
    });
    // A torn tail (the collector stopped mid-write) is cut so appends
    // continue after the last whole record.
    if let Some(last) = spans.last()
        && !last.resumed(bytes.len())
    {
        let cut = last.damage.offset as u64;
        OpenOptions::new()
            .write(true)
            .open(path)
            .and_then(|f| f.set_len(cut))
            .map_err(io(path))?;
    }
    Ok(spans.len())
}

fn parse_series(body: &[u8]) -> Result<SeriesLabels, String> {
    let mut r = Reader::new(body);
    let metric = r.str()?.to_string();
    let mut labels = std::collections::BTreeMap::new();
    for _ in 0..r.varint()? {
        let k = r.str()?.to_string();
        labels.insert(k, r.str()?.to_string());
    }
    Ok(SeriesLabels { metric, labels })
}

impl History {
    /// Opens `dir` (made if missing): removes half-written files, reads
    /// the series dictionary and the newest pass number. Call
    /// [`History::restore_marks`] once the journal has refilled the store.
    pub fn open(
        dir: &Path,
        store: Arc<HotStore>,
        clock: Arc<dyn Clock>,
        health: Arc<Health>,
        config: HistoryConfig,
    ) -> Result<History, String> {
        fs::create_dir_all(dir).map_err(io(dir))?;
        for e in fs::read_dir(dir).map_err(io(dir))?.flatten() {
            let name = e.file_name();
            if name.to_string_lossy().ends_with(".part") {
                let _ = fs::remove_file(e.path());
            }
        }
        let dict = dir.join("series.wps");
        let mut known = HashSet::new();
        let damaged = read_dictionary(&dict, |h, _| {
            known.insert(h);
            Ok(())
        })?;
        if damaged > 0 {
            tracing::warn!(file = %dict.display(), spans = damaged, "series dictionary damaged: the names of series only in the damaged records are lost");
        }
        let dictionary = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&dict)
            .map_err(io(&dict))?;
        let pass = files::list(dir)
            .map_err(io(dir))?
            .iter()
            .map(|n| match n.kind {
                Kind::Pass { pass } | Kind::DayMinutes { pass, .. } | Kind::DayHours { pass, .. } => pass,
            })
            .max()
            .unwrap_or(0);
        store.keep_unrolled();
        Ok(History {
            dir: dir.to_path_buf(),
            store,
            clock,
            health,
            config,
            dropped: std::sync::atomic::AtomicU64::new(0),
            state: Mutex::new(State {
                pass,
                hashes: Vec::new(),
                known,
                dictionary,
                open: HashMap::new(),
                opened: VecDeque::new(),
            }),
        })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The checked config.
    pub fn config(&self) -> HistoryConfig {
        self.config
    }

    fn hash(&self, st: &mut State, id: SeriesId) -> Option<u64> {
        let i = id.0 as usize;
        while st.hashes.len() <= i {
            let next = SeriesId(st.hashes.len() as u32);
            let h = hash_in_store(&self.store, next)?;
            st.hashes.push(h);
        }
        Some(st.hashes[i])
    }

    fn file(&self, st: &mut State, named: &Named) -> Result<Arc<HistoryFile>, String> {
        if let Some(f) = st.open.get(&named.path) {
            return Ok(f.clone());
        }
        let f = Arc::new(HistoryFile::open(&named.path)?);
        if st.opened.len() >= OPEN_FILES
            && let Some(old) = st.opened.pop_front()
        {
            st.open.remove(&old);
        }
        st.open.insert(named.path.clone(), f.clone());
        st.opened.push_back(named.path.clone());
        Ok(f)
    }

    fn forget(&self, st: &mut State, path: &Path) {
        st.open.remove(path);
        st.opened.retain(|p| p != path);
    }

    /// Reads every series' mark back from the files that can hold one
    /// newer than the store's oldest sample, and sets it in the store.
    /// Returns the number of series marked.
    pub fn restore_marks(&self) -> Result<usize, String> {
        let Some(oldest) = self.store.oldest_ts() else {
            return Ok(0);
        };
        let mut marks: HashMap<u64, i64> = HashMap::new();
        let list = files::list(&self.dir).map_err(io(&self.dir))?;
        let mut st = self.lock();
        for named in list.iter().filter(|n| !n.corrupt && n.span.1 >= oldest) {
            if matches!(named.kind, Kind::DayHours { .. }) {
                continue;
            }
            let f = match self.file(&mut st, named) {
                Ok(f) => f,
                Err(e) => {
                    self.forget(&mut st, &named.path);
                    files::quarantine(&named.path, &e);
                    continue;
                }
            };
            for e in f.entries() {
                let (hash, _, through) = e?;
                let m = marks.entry(hash).or_insert(i64::MIN);
                *m = (*m).max(through);
            }
        }
        let mut n = 0;
        for i in 0..self.store.len() {
            let id = SeriesId(i as u32);
            if let Some(h) = self.hash(&mut st, id)
                && let Some(m) = marks.get(&h)
            {
                self.store.set_rolled(id, *m);
                n += 1;
            }
        }
        Ok(n)
    }

    /// Whether a pass is due: `flush` since the last, or spilled chunks waiting.
    pub fn pass_due(&self, since_last_ms: i64) -> bool {
        since_last_ms >= self.config.flush_ms || self.store.spill_bytes() >= SPILL_PASS_BYTES
    }

    /// Rolls up what is due, seals finished days and deletes expired
    /// files. Blocking: run it off the async runtime.
    pub fn pass(&self) -> Result<PassReport, String> {
        let result = self.write_pass();
        match &result {
            Ok(_) => self.health.write_succeeded(Store::History),
            Err(e) => self.health.write_failed(Store::History, e),
        }
        let mut report = result?;
        let now = self.clock.now_ms();
        let cutoff = slot_of(now - GRACE_MS, MINUTE_MS) * MINUTE_MS;
        match self.seal(cutoff) {
            Ok(n) => report.sealed = n,
            Err(e) => {
                self.health.write_failed(Store::History, &e);
                return Err(e);
            }
        }
        report.deleted = self.expire(now);
        Ok(report)
    }

    fn write_pass(&self) -> Result<PassReport, String> {
        let now = self.clock.now_ms();
        let cutoff = slot_of(now - GRACE_MS, MINUTE_MS) * MINUTE_MS;
        let mut spill = self.store.take_spill();
        if spill.dropped_samples > 0 {
            tracing::error!(
                samples = spill.dropped_samples,
                "samples left the hot window while the history's spill was full (its writes kept failing): they are missing from the rollups"
            );
            self.dropped
                .fetch_add(spill.dropped_samples, std::sync::atomic::Ordering::Relaxed);
            spill.dropped_samples = 0;
        }
        let mut spilled: HashMap<SeriesId, Vec<usize>> = HashMap::new();
        for (i, (id, _)) in spill.chunks.iter().enumerate() {
            spilled.entry(*id).or_default().push(i);
        }
        let mut st = self.lock();
        let pass = st.pass + 1;
        let mut writer: Option<FileWriter> = None;
        let mut moved: Vec<(SeriesId, i64)> = Vec::new();
        let mut new_keys: Vec<u8> = Vec::new();
        let mut new_hashes = Vec::new();
        let (mut first, mut last) = (i64::MAX, i64::MIN);
        let mut report = PassReport::default();
        let mut run = Vec::new();
        let mut samples: Vec<(i64, f64)> = Vec::new();
        let outcome = (|| -> Result<(), String> {
            for i in 0..self.store.len() {
                let id = SeriesId(i as u32);
                samples.clear();
                if let Some(chunks) = spilled.get(&id) {
                    let rolled = self.store.rolled(id);
                    for &c in chunks {
                        samples.extend(spill.chunks[c].1.iter().filter(|(t, _)| *t > rolled));
                    }
                }
                let from_spill = samples.last().map_or(i64::MIN, |s| s.0);
                self.store.unrolled(id, cutoff, |t, v| {
                    if t > from_spill {
                        samples.push((t, v));
                    }
                });
                let Some(&(through, _)) = samples.last() else {
                    continue;
                };
                run.clear();
                codec::fold(samples.iter().copied(), MINUTE_MS, &mut run);
                moved.push((id, through));
                report.samples += samples.len();
                let Some(hash) = self.hash(&mut st, id) else {
                    continue;
                };
                if run.is_empty() {
                    continue;
                }
                if !st.known.contains(&hash) && !new_hashes.contains(&hash) {
                    let l = self.store.labels(id).ok_or("a series vanished from the store")?;
                    let start = watchpost_segment::begin(&mut new_keys, KIND_SERIES);
                    new_keys.extend_from_slice(&hash.to_le_bytes());
                    put_str(&mut new_keys, &l.metric);
                    put_varint(&mut new_keys, l.labels.len() as u64);
                    for (k, v) in &l.labels {
                        put_str(&mut new_keys, k);
                        put_str(&mut new_keys, v);
                    }
                    watchpost_segment::end(&mut new_keys, start);
                    new_hashes.push(hash);
                }
                first = first.min(run[0].0 * MINUTE_MS);
                last = last
                    .max(run[run.len() - 1].0 * MINUTE_MS)
                    .max(slot_of(through, MINUTE_MS) * MINUTE_MS);
                if writer.is_none() {
                    writer = Some(FileWriter::create(&self.dir, MINUTE_MS, pass).map_err(io(&self.dir))?);
                }
                if let Some(w) = writer.as_mut() {
                    w.block(hash, through, &run).map_err(io(&self.dir))?;
                }
                report.series += 1;
            }
            if !new_keys.is_empty() {
                let dict = self.dir.join("series.wps");
                st.dictionary
                    .write_all(&new_keys)
                    .and_then(|()| st.dictionary.sync_data())
                    .map_err(io(&dict))?;
            }
            if let Some(w) = writer.take() {
                let name = files::pass_name(pass, first, last);
                report.bytes = w.finish(&name).map_err(io(&self.dir.join(&name)))?;
                st.pass = pass;
            }
            Ok(())
        })();
        if let Err(e) = outcome {
            if let Some(w) = writer {
                w.abandon();
            }
            // A torn dictionary append is cut at the next start; the keys
            // are written again with the next pass that needs them.
            drop(st);
            self.store.return_spill(spill);
            return Err(e);
        }
        st.known.extend(new_hashes);
        // Under the lock, so a reader sees the new file and the moved
        // marks together.
        for (id, through) in moved {
            self.store.set_rolled(id, through);
        }
        Ok(report)
    }

    /// Series known to the history (also those that left the store) of
    /// `metric` whose labels pass every matcher, by hash.
    pub fn series(
        &self,
        metric: Option<&str>,
        matchers: &[Matcher],
    ) -> Result<Vec<(u64, SeriesLabels)>, String> {
        let mut out = Vec::new();
        let mut seen = HashSet::new();
        read_dictionary(&self.dir.join("series.wps"), |h, body| {
            if !seen.insert(h) {
                return Ok(());
            }
            let l = parse_series(body)?;
            if metric.is_some_and(|m| m != l.metric) {
                return Ok(());
            }
            if matchers
                .iter()
                .all(|m| m.matches(l.labels.get(&m.name).map(String::as_str)))
            {
                out.push((h, l));
            }
            Ok(())
        })?;
        Ok(out)
    }

    /// The rollups at `step` of the store's series `live` and of the
    /// history's series of `metric` that pass `matchers` (also those that
    /// left the store), sorted by identity (series without points left out
    /// unless a span is missing);
    /// and the quarantined spans the query overlapped. More than `max`
    /// series is an error.
    #[allow(clippy::too_many_arguments)]
    pub fn select(
        &self,
        store: &HotStore,
        metric: Option<&str>,
        matchers: &[Matcher],
        live: &[SeriesId],
        (since, until): (i64, i64),
        step: Step,
        max: usize,
    ) -> Result<(Vec<Rolled>, Vec<Missing>), String> {
        let mut series: std::collections::BTreeMap<u64, (Option<SeriesId>, SeriesLabels)> =
            Default::default();
        for id in live {
            if let (Some(h), Some(l)) = (self.hash_of(*id), store.labels(*id)) {
                series.insert(h, (Some(*id), l));
            }
        }
        for (h, l) in self.series(metric, matchers)? {
            series.entry(h).or_insert((None, l));
            if series.len() > max {
                return Err(format!("more than {max} series match: narrow the selection"));
            }
        }
        let keys: Vec<(u64, Option<SeriesId>)> = series.iter().map(|(h, (id, _))| (*h, *id)).collect();
        let mut missing = Vec::new();
        let answers = self.read_many(&keys, since, until, step, &mut missing)?;
        let mut out: Vec<Rolled> = series
            .into_values()
            .zip(answers)
            .filter(|(_, p)| !p.is_empty() || !missing.is_empty())
            .map(|((_, l), p)| (l, p))
            .collect();
        out.sort_by(|a, b| (&a.0.metric, &a.0.labels).cmp(&(&b.0.metric, &b.0.labels)));
        Ok((out, missing))
    }

    /// Runs `f` on the history's folder while no pass can write, rename
    /// or delete a file in it (a backup links its files).
    pub fn hold<R>(&self, f: impl FnOnce(&Path) -> R) -> R {
        let _st = self.lock();
        f(&self.dir)
    }

    /// The hash of a store series' key.
    pub fn hash_of(&self, id: SeriesId) -> Option<u64> {
        let mut st = self.lock();
        self.hash(&mut st, id)
    }

    /// Rollups at `step` of the series `hash` (and the store series `live`,
    /// if it is still there) whose slots start in `[since, until]`, and the
    /// quarantined spans the query overlapped.
    pub fn read(
        &self,
        hash: u64,
        live: Option<SeriesId>,
        since: i64,
        until: i64,
        step: Step,
        missing: &mut Vec<Missing>,
    ) -> Result<Vec<(i64, Agg)>, String> {
        let mut all = self.read_many(&[(hash, live)], since, until, step, missing)?;
        Ok(all.pop().unwrap_or_default())
    }

    /// [`History::read`] of several series, one answer each in order; the
    /// directory is listed once for them all.
    pub fn read_many(
        &self,
        series: &[(u64, Option<SeriesId>)],
        since: i64,
        until: i64,
        step: Step,
        missing: &mut Vec<Missing>,
    ) -> Result<Vec<Vec<(i64, Agg)>>, String> {
        let unit = step.ms();
        // Under the lock throughout: a pass moves files and marks together.
        let mut st = self.lock();
        let list = files::list(&self.dir).map_err(io(&self.dir))?;
        let overlaps = |n: &Named| n.span.0 <= until && n.span.1 >= since;
        let name_of = |p: &Path| {
            p.file_name()
                .map(|f| f.to_string_lossy().into_owned())
                .unwrap_or_default()
        };
        for n in list.iter().filter(|n| n.corrupt && overlaps(n)) {
            let file = name_of(&n.path);
            if !missing.iter().any(|m| m.file == file) {
                missing.push(Missing {
                    from: n.span.0,
                    until: n.span.1,
                    file,
                });
            }
        }
        // Per day: the newest day file at this step, and which passes it absorbed.
        let mut day_files: HashMap<i64, (u64, &Named)> = HashMap::new();
        for n in list.iter().filter(|n| !n.corrupt && overlaps(n)) {
            let (day, pass) = match (n.kind.clone(), step) {
                (Kind::DayMinutes { day, pass }, Step::Minute)
                | (Kind::DayHours { day, pass }, Step::Hour) => (day, pass),
                _ => continue,
            };
            if day_files.get(&day).is_none_or(|(p, _)| *p < pass) {
                day_files.insert(day, (pass, n));
            }
        }
        // Passes a day's hour file absorbed, for steps of a minute whose day file expired.
        let mut absorbed: HashMap<i64, u64> = HashMap::new();
        for n in list.iter().filter(|n| !n.corrupt) {
            if let Kind::DayHours { day, pass } | Kind::DayMinutes { day, pass } = n.kind {
                let e = absorbed.entry(day).or_insert(0);
                *e = (*e).max(pass);
            }
        }
        let mut days: Vec<(&i64, &(u64, &Named))> = day_files.iter().collect();
        days.sort_by_key(|d| *d.0);
        let mut passes: Vec<(u64, &Named)> = list
            .iter()
            .filter(|n| !n.corrupt && overlaps(n))
            .filter_map(|n| match n.kind {
                Kind::Pass { pass } => Some((pass, n)),
                _ => None,
            })
            // A pass belongs in the answer for the days no day file absorbed it into.
            .filter(|(pass, n)| {
                (n.span.0.div_euclid(DAY_MS)..=n.span.1.div_euclid(DAY_MS))
                    .any(|d| absorbed.get(&d).is_none_or(|p| p < pass))
            })
            .collect();
        passes.sort_by_key(|(_, n)| n.path.clone());
        // Files found damaged by this query: quarantined once, skipped after.
        let mut damaged: Vec<PathBuf> = Vec::new();
        let mut take =
            |n: &Named, hash: u64, st: &mut State, run: &mut Vec<(i64, Agg)>, missing: &mut Vec<Missing>| {
                if damaged.contains(&n.path) {
                    return;
                }
                let got = self.file(st, n).and_then(|f| f.series(&n.path, hash, run));
                if let Err(e) = got {
                    self.forget(st, &n.path);
                    run.clear();
                    damaged.push(n.path.clone());
                    if let Some(to) = files::quarantine(&n.path, &e) {
                        missing.push(Missing {
                            from: n.span.0,
                            until: n.span.1,
                            file: name_of(&to),
                        });
                    }
                }
            };
        let mut answers = Vec::with_capacity(series.len());
        for &(hash, live) in series {
            let mut out: Vec<(i64, Agg)> = Vec::new();
            for (_, (_, n)) in &days {
                let mut run = Vec::new();
                take(n, hash, &mut st, &mut run, missing);
                codec::merge_runs(&mut out, &run);
            }
            for &(pass, n) in &passes {
                let mut run = Vec::new();
                take(n, hash, &mut st, &mut run, missing);
                run.retain(|(s, _)| {
                    absorbed
                        .get(&(s * MINUTE_MS).div_euclid(DAY_MS))
                        .is_none_or(|p| *p < pass)
                });
                let mut coarse = Vec::new();
                codec::coarsen(&run, MINUTE_MS, unit, &mut coarse);
                codec::merge_runs(&mut out, &coarse);
            }
            if let Some(id) = live {
                let mut hot = Vec::new();
                let mut samples = Vec::new();
                self.store.unrolled(id, i64::MAX, |t, v| samples.push((t, v)));
                codec::fold(samples, unit, &mut hot);
                codec::merge_runs(&mut out, &hot);
            }
            out.retain(|(s, _)| s * unit >= slot_of(since, unit) * unit && s * unit <= until);
            for p in &mut out {
                p.0 *= unit;
            }
            answers.push(out);
        }
        drop(st);
        Ok(answers)
    }

    /// Samples never rolled up because the spill was full.
    pub fn dropped_samples(&self) -> u64 {
        self.dropped.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// Bytes of every history file (for `/metrics` and the benchmark).
    pub fn disk_bytes(&self) -> u64 {
        fs::read_dir(&self.dir)
            .map(|d| {
                d.flatten()
                    .filter_map(|e| e.metadata().ok())
                    .map(|m| m.len())
                    .sum()
            })
            .unwrap_or(0)
    }
}

#[cfg(test)]
mod tests;
