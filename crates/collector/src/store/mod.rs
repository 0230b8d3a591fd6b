//! The hot store: a recent window of samples per series, in memory.
//!
//! Owns series identity (metric + sorted labels → [`SeriesId`], with every
//! string interned once) and the samples themselves in compressed chunks
//! ([`chunk`]). Appends take one shard lock; reads decode chunks. Does not
//! persist anything: on restart the window refills from the agents.
//!
//! Invariant: within a series, timestamps strictly increase; a sample at or
//! before the series' latest is refused, never reordered.

pub mod chunk;

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, RwLock};

use chunk::{ChunkWriter, SealedChunk};

use crate::matchers::Matcher;

/// A series' id in this collector process (not stable across restarts).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SeriesId(pub u32);

const SHARDS: usize = 16;
/// Samples per chunk: at 10 s, 20 minutes.
const CHUNK_SAMPLES: usize = 120;

/// Why a sample was not stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refused {
    /// At or before the series' latest timestamp.
    OutOfOrder,
    /// The id names no series.
    UnknownSeries,
}

/// Aggregation over a window.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Aggregate {
    /// Latest value.
    Last,
    /// Mean.
    Avg,
    /// Minimum.
    Min,
    /// Maximum.
    Max,
    /// How much a counter grew over the window: the sum of its rises, a
    /// fall counted as a reset to zero ("reallocated sectors rising",
    /// "restarted three times in an hour").
    Increase,
    /// The value a least-squares line through the window reaches this many
    /// milliseconds after the latest sample ("disk full within 24 h").
    Predict {
        /// How far ahead.
        horizon_ms: i64,
    },
}

#[derive(Default)]
struct Interner {
    ids: HashMap<Arc<str>, u32>,
    strings: Vec<Arc<str>>,
}

impl Interner {
    fn get(&self, s: &str) -> Option<u32> {
        self.ids.get(s).copied()
    }

    fn intern(&mut self, s: &str) -> u32 {
        if let Some(id) = self.ids.get(s) {
            return *id;
        }
        let id = self.strings.len() as u32;
        let arc: Arc<str> = Arc::from(s);
        self.strings.push(arc.clone());
        self.ids.insert(arc, id);
        id
    }

    fn resolve(&self, id: u32) -> &str {
        &self.strings[id as usize]
    }
}

/// Series key: `[metric, name1, value1, name2, value2, ...]` as symbols,
/// labels sorted by name.
type Key = Arc<[u32]>;

#[derive(Default)]
struct Index {
    symbols: Interner,
    keys: Vec<Key>,
    by_key: HashMap<Key, SeriesId>,
    by_metric: HashMap<u32, Vec<SeriesId>>,
}

struct SeriesData {
    head: ChunkWriter,
    /// Oldest first; replaced whole on each seal or eviction (every
    /// `CHUNK_SAMPLES` samples), so it holds no spare capacity.
    sealed: Box<[SealedChunk]>,
    last_ts: i64,
    last_value: f64,
    /// The newest sample the history has rolled up (`i64::MIN`: none).
    rolled: i64,
}

impl SeriesData {
    fn new() -> SeriesData {
        SeriesData {
            head: ChunkWriter::default(),
            sealed: Box::new([]),
            last_ts: i64::MIN,
            last_value: f64::NAN,
            rolled: i64::MIN,
        }
    }

    fn samples_since(&self, since_ts: i64) -> impl Iterator<Item = (i64, f64)> + '_ {
        self.sealed
            .iter()
            .filter(move |c| c.last_ts >= since_ts)
            .flat_map(|c| c.iter())
            .chain(self.head.iter())
            .filter(move |(t, _)| *t >= since_ts)
    }

    fn heap_bytes(&self) -> usize {
        self.head.heap_bytes()
            + self.sealed.iter().map(|c| c.heap_bytes()).sum::<usize>()
            + self.sealed.len() * std::mem::size_of::<SealedChunk>()
    }
}

/// Series per page: pages are allocated whole and never grow, so a shard
/// wastes at most one partly filled page instead of half a doubled vector.
const PAGE: usize = 256;

#[derive(Default)]
struct Shard {
    pages: Vec<Vec<SeriesData>>,
}

impl Shard {
    fn len(&self) -> usize {
        self.pages
            .last()
            .map_or(0, |p| (self.pages.len() - 1) * PAGE + p.len())
    }

    fn push(&mut self, d: SeriesData) {
        if self.pages.last().is_none_or(|p| p.len() == PAGE) {
            self.pages.push(Vec::with_capacity(PAGE));
        }
        if let Some(p) = self.pages.last_mut() {
            p.push(d);
        }
    }

    fn get(&self, slot: usize) -> Option<&SeriesData> {
        self.pages.get(slot / PAGE)?.get(slot % PAGE)
    }

    fn get_mut(&mut self, slot: usize) -> Option<&mut SeriesData> {
        self.pages.get_mut(slot / PAGE)?.get_mut(slot % PAGE)
    }

    fn iter(&self) -> impl Iterator<Item = &SeriesData> {
        self.pages.iter().flatten()
    }
}

/// A series' identity as the API shows it.
#[derive(Debug, Clone, PartialEq)]
pub struct SeriesLabels {
    /// Metric name.
    pub metric: String,
    /// Labels, `host` included.
    pub labels: BTreeMap<String, String>,
}

/// The in-memory window of every series.
pub struct HotStore {
    window_ms: i64,
    index: RwLock<Index>,
    shards: Box<[Mutex<Shard>]>,
    count: AtomicUsize,
    /// Whether chunks leaving the window before the history rolled them
    /// up are kept in `spill` for it.
    keep_unrolled: AtomicBool,
    spill: Mutex<Spill>,
    spill_max: AtomicUsize,
}

/// Chunks that left the window before the history rolled them up (a
/// backlog longer than the window arrived between two passes, or the
/// history cannot write).
#[derive(Default)]
pub struct Spill {
    /// Oldest first per series.
    pub chunks: Vec<(SeriesId, SealedChunk)>,
    /// Their bytes.
    pub bytes: usize,
    /// Samples never rolled up because the spill was full.
    pub dropped_samples: u64,
}

/// The most the spill holds by default.
pub const SPILL_MAX_BYTES: usize = 256 << 20;

fn locate(id: SeriesId) -> (usize, usize) {
    let i = id.0 as usize;
    (i % SHARDS, i / SHARDS)
}

impl HotStore {
    /// A store keeping `window_ms` of samples per series.
    pub fn new(window_ms: i64) -> HotStore {
        HotStore {
            window_ms,
            index: RwLock::new(Index::default()),
            shards: (0..SHARDS).map(|_| Mutex::new(Shard::default())).collect(),
            count: AtomicUsize::new(0),
            keep_unrolled: AtomicBool::new(false),
            spill: Mutex::new(Spill::default()),
            spill_max: AtomicUsize::new(SPILL_MAX_BYTES),
        }
    }

    /// From now on, chunks leaving the window with samples the history has
    /// not rolled up go to the spill instead of away.
    pub fn keep_unrolled(&self) {
        self.keep_unrolled.store(true, Ordering::Relaxed);
    }

    /// Caps the spill at `bytes` (default [`SPILL_MAX_BYTES`]).
    pub fn set_spill_max(&self, bytes: usize) {
        self.spill_max.store(bytes, Ordering::Relaxed);
    }

    fn lock_spill(&self) -> std::sync::MutexGuard<'_, Spill> {
        self.spill.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Takes every spilled chunk.
    pub fn take_spill(&self) -> Spill {
        std::mem::take(&mut *self.lock_spill())
    }

    /// Puts back chunks taken with [`HotStore::take_spill`] (their pass
    /// could not be written), before any spilled since.
    pub fn return_spill(&self, mut back: Spill) {
        let mut spill = self.lock_spill();
        back.chunks.append(&mut spill.chunks);
        back.bytes += spill.bytes;
        back.dropped_samples += spill.dropped_samples;
        *spill = back;
    }

    /// Bytes spilled and not yet taken.
    pub fn spill_bytes(&self) -> usize {
        self.lock_spill().bytes
    }

    /// Calls `f` with the samples after the series' rolled-up mark and
    /// before `cutoff_ts`, oldest first. Returns the number of samples.
    pub fn unrolled(&self, id: SeriesId, cutoff_ts: i64, mut f: impl FnMut(i64, f64)) -> usize {
        let (s, slot) = locate(id);
        let shard = self.lock_shard(s);
        let Some(d) = shard.get(slot) else { return 0 };
        if d.last_ts <= d.rolled {
            return 0;
        }
        let mut n = 0;
        for (t, v) in d.samples_since(d.rolled.saturating_add(1)) {
            if t >= cutoff_ts {
                break;
            }
            f(t, v);
            n += 1;
        }
        n
    }

    /// The newest sample the history has rolled up for a series.
    pub fn rolled(&self, id: SeriesId) -> i64 {
        let (s, slot) = locate(id);
        self.lock_shard(s).get(slot).map_or(i64::MIN, |d| d.rolled)
    }

    /// Marks a series rolled up through `ts` (never backwards).
    pub fn set_rolled(&self, id: SeriesId, ts: i64) {
        let (s, slot) = locate(id);
        if let Some(d) = self.lock_shard(s).get_mut(slot) {
            d.rolled = d.rolled.max(ts);
        }
    }

    /// The oldest sample held by any series.
    pub fn oldest_ts(&self) -> Option<i64> {
        self.shards
            .iter()
            .filter_map(|s| {
                let shard = s.lock().unwrap_or_else(|p| p.into_inner());
                shard
                    .iter()
                    .filter_map(|d| d.samples_since(i64::MIN).next().map(|(t, _)| t))
                    .min()
            })
            .min()
    }

    /// The window kept per series.
    pub fn window_ms(&self) -> i64 {
        self.window_ms
    }

    /// Number of series.
    pub fn len(&self) -> usize {
        self.count.load(Ordering::Relaxed)
    }

    /// Whether there are no series.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn read_index(&self) -> std::sync::RwLockReadGuard<'_, Index> {
        self.index.read().unwrap_or_else(|p| p.into_inner())
    }

    fn lock_shard(&self, s: usize) -> std::sync::MutexGuard<'_, Shard> {
        self.shards[s].lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The id of the series `metric{labels}`, creating it if new. `labels`
    /// must be sorted by name, without duplicates. Returns the id and
    /// whether it was created.
    pub fn resolve(&self, metric: &str, labels: &[(&str, &str)]) -> (SeriesId, bool) {
        {
            let index = self.read_index();
            let mut key = Vec::with_capacity(1 + labels.len() * 2);
            let mut complete = true;
            for s in std::iter::once(metric).chain(labels.iter().flat_map(|(n, v)| [*n, *v])) {
                match index.symbols.get(s) {
                    Some(id) => key.push(id),
                    None => {
                        complete = false;
                        break;
                    }
                }
            }
            if complete && let Some(id) = index.by_key.get(key.as_slice()) {
                return (*id, false);
            }
        }
        let mut index = self.index.write().unwrap_or_else(|p| p.into_inner());
        let key: Vec<u32> = std::iter::once(metric)
            .chain(labels.iter().flat_map(|(n, v)| [*n, *v]))
            .map(|s| index.symbols.intern(s))
            .collect();
        if let Some(id) = index.by_key.get(key.as_slice()) {
            return (*id, false);
        }
        let id = SeriesId(index.keys.len() as u32);
        let key: Key = Arc::from(key);
        index.keys.push(key.clone());
        index.by_metric.entry(key[0]).or_default().push(id);
        index.by_key.insert(key, id);
        let (s, slot) = locate(id);
        let mut shard = self.lock_shard(s);
        debug_assert_eq!(shard.len(), slot);
        shard.push(SeriesData::new());
        self.count.fetch_add(1, Ordering::Relaxed);
        (id, true)
    }

    /// Stores one sample.
    pub fn append(&self, id: SeriesId, ts: i64, value: f64) -> Result<(), Refused> {
        let (s, slot) = locate(id);
        let mut shard = self.lock_shard(s);
        let data = shard.get_mut(slot).ok_or(Refused::UnknownSeries)?;
        if ts <= data.last_ts {
            return Err(Refused::OutOfOrder);
        }
        if data.head.len() >= CHUNK_SAMPLES {
            let sealed = data.head.seal();
            let mut all = std::mem::take(&mut data.sealed).into_vec();
            all.push(sealed);
            data.sealed = all.into_boxed_slice();
        }
        data.head.push(ts, value);
        data.last_ts = ts;
        data.last_value = value;
        let horizon = ts - self.window_ms;
        let expired = data.sealed.iter().take_while(|c| c.last_ts < horizon).count();
        if expired > 0 {
            let mut kept = std::mem::take(&mut data.sealed).into_vec();
            let rolled = data.rolled;
            let keep = self.keep_unrolled.load(Ordering::Relaxed);
            let gone: Vec<SealedChunk> = kept
                .drain(..expired)
                .filter(|c| keep && c.last_ts > rolled)
                .collect();
            data.sealed = kept.into_boxed_slice();
            drop(shard);
            if !gone.is_empty() {
                let mut spill = self.lock_spill();
                for c in gone {
                    // Bounded: while the history cannot write (a full disk)
                    // memory must not grow without end; what is dropped is
                    // counted, and the raw samples were in the journal.
                    if spill.bytes >= self.spill_max.load(Ordering::Relaxed) {
                        spill.dropped_samples += c.iter().filter(|(t, _)| *t > rolled).count() as u64;
                        continue;
                    }
                    spill.bytes += c.heap_bytes();
                    spill.chunks.push((id, c));
                }
            }
        }
        Ok(())
    }

    /// The latest sample of a series.
    pub fn last(&self, id: SeriesId) -> Option<(i64, f64)> {
        let (s, slot) = locate(id);
        let shard = self.lock_shard(s);
        let d = shard.get(slot)?;
        (d.last_ts != i64::MIN).then_some((d.last_ts, d.last_value))
    }

    /// `agg` over the samples at or after `since_ts`.
    pub fn aggregate(&self, id: SeriesId, since_ts: i64, agg: Aggregate) -> Option<f64> {
        let (s, slot) = locate(id);
        let shard = self.lock_shard(s);
        let d = shard.get(slot)?;
        if d.last_ts == i64::MIN {
            return None;
        }
        if agg == Aggregate::Last {
            return Some(d.last_value);
        }
        if let Aggregate::Predict { horizon_ms } = agg {
            return predict(d.samples_since(since_ts), d.last_ts, horizon_ms);
        }
        let (mut n, mut sum, mut min, mut max) = (0u64, 0.0, f64::INFINITY, f64::NEG_INFINITY);
        let (mut rise, mut previous) = (0.0, None);
        for (_, v) in d.samples_since(since_ts) {
            n += 1;
            sum += v;
            min = min.min(v);
            max = max.max(v);
            if let Some(p) = previous {
                rise += if v >= p { v - p } else { v };
            }
            previous = Some(v);
        }
        if n == 0 {
            return None;
        }
        Some(match agg {
            Aggregate::Avg => sum / n as f64,
            Aggregate::Min => min,
            Aggregate::Max => max,
            Aggregate::Increase => rise,
            Aggregate::Last | Aggregate::Predict { .. } => d.last_value,
        })
    }

    /// Samples in `[since_ts, until_ts]`, oldest first.
    pub fn points(&self, id: SeriesId, since_ts: i64, until_ts: i64) -> Vec<(i64, f64)> {
        let (s, slot) = locate(id);
        let shard = self.lock_shard(s);
        match shard.get(slot) {
            Some(d) => d
                .samples_since(since_ts)
                .take_while(|(t, _)| *t <= until_ts)
                .collect(),
            None => Vec::new(),
        }
    }

    /// Series of `metric` (any metric if `None`) whose labels pass every matcher.
    pub fn select(&self, metric: Option<&str>, matchers: &[Matcher]) -> Vec<SeriesId> {
        let index = self.read_index();
        let passes = |key: &[u32]| {
            matchers.iter().all(|m| {
                let value = key[1..]
                    .chunks_exact(2)
                    .find(|p| index.symbols.resolve(p[0]) == m.name)
                    .map(|p| index.symbols.resolve(p[1]));
                m.matches(value)
            })
        };
        match metric {
            Some(metric) => {
                let Some(sym) = index.symbols.get(metric) else {
                    return Vec::new();
                };
                let ids = index.by_metric.get(&sym).map(Vec::as_slice).unwrap_or(&[]);
                ids.iter()
                    .copied()
                    .filter(|id| passes(&index.keys[id.0 as usize]))
                    .collect()
            }
            None => (0..index.keys.len() as u32)
                .map(SeriesId)
                .filter(|id| passes(&index.keys[id.0 as usize]))
                .collect(),
        }
    }

    /// Every metric name with its number of series, by name.
    pub fn metric_names(&self) -> Vec<(String, usize)> {
        let index = self.read_index();
        let mut out: Vec<(String, usize)> = index
            .by_metric
            .iter()
            .map(|(sym, ids)| (index.symbols.resolve(*sym).to_string(), ids.len()))
            .collect();
        out.sort();
        out
    }

    /// The metric and labels of a series.
    pub fn labels(&self, id: SeriesId) -> Option<SeriesLabels> {
        let index = self.read_index();
        let key = index.keys.get(id.0 as usize)?;
        Some(SeriesLabels {
            metric: index.symbols.resolve(key[0]).to_string(),
            labels: key[1..]
                .chunks_exact(2)
                .map(|p| {
                    (
                        index.symbols.resolve(p[0]).to_string(),
                        index.symbols.resolve(p[1]).to_string(),
                    )
                })
                .collect(),
        })
    }

    /// Calls `f(name, value)` for each label of a series, and returns its metric.
    pub fn with_labels<R>(
        &self,
        id: SeriesId,
        f: impl FnOnce(&str, &mut dyn Iterator<Item = (&str, &str)>) -> R,
    ) -> Option<R> {
        let index = self.read_index();
        let key = index.keys.get(id.0 as usize)?;
        let mut it = key[1..]
            .chunks_exact(2)
            .map(|p| (index.symbols.resolve(p[0]), index.symbols.resolve(p[1])));
        Some(f(index.symbols.resolve(key[0]), &mut it))
    }

    /// Bytes of sample data held (compressed chunks), for the memory figures.
    pub fn sample_heap_bytes(&self) -> usize {
        self.shards
            .iter()
            .map(|s| {
                s.lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .iter()
                    .map(SeriesData::heap_bytes)
                    .sum::<usize>()
            })
            .sum()
    }
}

/// Least-squares linear fit through `samples`, evaluated `horizon_ms` after
/// `last_ts`. Needs at least three samples spanning some time.
fn predict(samples: impl Iterator<Item = (i64, f64)>, last_ts: i64, horizon_ms: i64) -> Option<f64> {
    // Times in seconds relative to the latest sample keep the sums precise.
    let (mut n, mut st, mut sy, mut stt, mut sty) = (0.0f64, 0.0, 0.0, 0.0, 0.0);
    for (ts, v) in samples {
        let t = (ts - last_ts) as f64 / 1000.0;
        n += 1.0;
        st += t;
        sy += v;
        stt += t * t;
        sty += t * v;
    }
    if n < 3.0 {
        return None;
    }
    let var = stt - st * st / n;
    if var <= f64::EPSILON {
        return None;
    }
    let slope = (sty - st * sy / n) / var;
    let mean_t = st / n;
    let mean_y = sy / n;
    Some(mean_y + slope * (horizon_ms as f64 / 1000.0 - mean_t))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn predicts_a_linear_trend() {
        let store = HotStore::new(3_600_000);
        let (id, _) = store.resolve("disk", &[]);
        // 1 percent per minute, from 50 %.
        for i in 0..10 {
            store.append(id, i * 60_000, 50.0 + i as f64).expect("in order");
        }
        let p = store
            .aggregate(
                id,
                0,
                Aggregate::Predict {
                    horizon_ms: 3_600_000,
                },
            )
            .expect("enough points");
        assert!((p - 119.0).abs() < 1e-6, "{p}");
        let (flat, _) = store.resolve("flat", &[]);
        store.append(flat, 0, 1.0).expect("in order");
        store.append(flat, 1, 1.0).expect("in order");
        assert_eq!(
            store.aggregate(flat, 0, Aggregate::Predict { horizon_ms: 1 }),
            None,
            "two points are not a trend"
        );
    }

    #[test]
    fn resolve_is_stable_and_labels_round_trip() {
        let store = HotStore::new(3_600_000);
        let (a, new_a) = store.resolve("m", &[("host", "h1"), ("x", "1")]);
        let (b, new_b) = store.resolve("m", &[("host", "h1"), ("x", "1")]);
        let (c, _) = store.resolve("m", &[("host", "h2"), ("x", "1")]);
        assert!(new_a && !new_b);
        assert_eq!(a, b);
        assert_ne!(a, c);
        assert_eq!(store.len(), 2);
        let l = store.labels(c).expect("exists");
        assert_eq!(l.metric, "m");
        assert_eq!(l.labels.get("host").map(String::as_str), Some("h2"));
    }

    #[test]
    fn append_refuses_out_of_order_and_aggregates_window() {
        let store = HotStore::new(60_000);
        let (id, _) = store.resolve("m", &[]);
        for i in 0..10 {
            store.append(id, 1_000 + i * 1_000, i as f64).expect("in order");
        }
        assert_eq!(store.append(id, 5_000, 1.0), Err(Refused::OutOfOrder));
        assert_eq!(store.append(id, 10_000, 1.0), Err(Refused::OutOfOrder));
        assert_eq!(store.last(id), Some((10_000, 9.0)));
        assert_eq!(store.aggregate(id, 6_000, Aggregate::Avg), Some(7.0));
        assert_eq!(store.aggregate(id, 6_000, Aggregate::Min), Some(5.0));
        assert_eq!(store.aggregate(id, 0, Aggregate::Max), Some(9.0));
        assert_eq!(store.aggregate(id, 20_000, Aggregate::Avg), None);
        // Increase: only rises count; a fall is a counter reset.
        let (c, _) = store.resolve("restarts", &[]);
        for (i, v) in [3.0, 3.0, 5.0, 1.0, 2.0].into_iter().enumerate() {
            store.append(c, i as i64 * 1000, v).expect("in order");
        }
        assert_eq!(
            store.aggregate(c, 0, Aggregate::Increase),
            Some(4.0),
            "2, then a reset to 1 counts 1, then 1"
        );
        assert_eq!(store.aggregate(c, 3_000, Aggregate::Increase), Some(1.0));
        assert_eq!(
            store.points(id, 2_000, 4_000),
            vec![(2_000, 1.0), (3_000, 2.0), (4_000, 3.0)]
        );
    }

    #[test]
    fn window_drops_old_chunks() {
        let store = HotStore::new(100_000);
        let (id, _) = store.resolve("m", &[]);
        for i in 0..1_000 {
            store.append(id, i * 1_000, 1.0).expect("in order");
        }
        let points = store.points(id, 0, i64::MAX);
        let oldest = points.first().expect("some").0;
        // The window plus at most one chunk's span is kept.
        assert!(
            oldest >= 999_000 - 100_000 - CHUNK_SAMPLES as i64 * 1_000,
            "oldest {oldest}"
        );
        assert!(oldest <= 999_000 - 100_000);
    }

    #[test]
    fn select_by_metric_and_matchers() {
        let store = HotStore::new(60_000);
        let (a, _) = store.resolve("fs", &[("fstype", "ext4"), ("host", "a")]);
        let (_b, _) = store.resolve("fs", &[("fstype", "tmpfs"), ("host", "a")]);
        let (_c, _) = store.resolve("cpu", &[("host", "a")]);
        let not_tmpfs = Matcher::parse("fstype", "!tmpfs").expect("valid");
        assert_eq!(store.select(Some("fs"), &[not_tmpfs]), vec![a]);
        assert_eq!(store.select(Some("nope"), &[]), vec![]);
        assert_eq!(
            store
                .select(None, &[Matcher::parse("host", "a").expect("valid")])
                .len(),
            3
        );
    }
}
