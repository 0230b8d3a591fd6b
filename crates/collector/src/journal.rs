//! The samples journal: every applied batch is appended here and made
//! durable (`fdatasync`) before the batch is acknowledged, so the hot store
//! and the agents' sequence numbers come back after a crash. At start the
//! journal is replayed into the store; segments older than the store's
//! window are deleted as new ones begin.
//!
//! A segment (`<data_dir>/journal/<n>.wal`) is a sequence of records
//! `[u32 length][u32 CRC-32C][kind][body]`:
//! - *checkpoint* (first in every segment): each agent's last applied
//!   sequence, so deleting old segments never forgets one;
//! - *series*: a store series number with its metric and labels, written
//!   the first time a segment refers to it;
//! - *batch*: agent, sequence and samples (series number as a varint, the
//!   timestamp as a zigzag varint delta from the batch's first, the value
//!   as 8 bytes, so NaN and ±Inf survive bit for bit).
//!
//! One writer thread group-commits: it takes every batch queued while the
//! previous sync ran and syncs them together.
//!
//! Invariants: a batch is acknowledged only after its record is synced; a
//! record that fails its checksum is never applied; a torn last record is
//! cut off at start; any other damaged segment is renamed `*.corrupt`
//! (quarantined) and replay goes on with the next.

use std::collections::{HashMap, HashSet};
use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use tokio::sync::oneshot;

use crate::rules::engine::Engine;
use crate::store::{HotStore, SeriesId};

const KIND_CHECKPOINT: u8 = 1;
const KIND_SERIES: u8 = 2;
const KIND_BATCH: u8 = 3;
const MAX_RECORD_BYTES: usize = 256 << 20;
const SEGMENT_BYTES: u64 = 64 << 20;
const SEGMENT_MS: i64 = 60 * 60 * 1000;
const CRC: crc::Crc<u32> = crc::Crc::<u32>::new(&crc::CRC_32_ISCSI);

/// Why the journal could not be opened or written.
#[derive(Debug, thiserror::Error)]
pub enum JournalError {
    /// A file or the directory.
    #[error("journal {path}: {source}")]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The writer thread is gone.
    #[error("the journal writer has stopped")]
    Stopped,
}

fn io_err(path: &Path) -> impl FnOnce(std::io::Error) -> JournalError + '_ {
    move |source| JournalError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// What replaying the journal found.
#[derive(Debug, Default)]
pub struct Replayed {
    /// Each agent's last applied sequence.
    pub sequences: HashMap<String, u64>,
    /// Samples put back into the store.
    pub samples: u64,
    /// Segments quarantined as damaged.
    pub quarantined: u64,
}

struct Append {
    agent: Arc<str>,
    sequence: u64,
    samples: Vec<(SeriesId, i64, f64)>,
    done: oneshot::Sender<Result<(), String>>,
}

enum Job {
    Append(Append),
    Sync(oneshot::Sender<()>),
}

/// The handle ingest sessions append through.
#[derive(Clone)]
pub struct Journal {
    jobs: std::sync::mpsc::Sender<Job>,
}

impl Journal {
    /// Opens `dir`, replays every segment into `store` (binding new series
    /// to the rules), and starts the writer.
    pub fn open(
        dir: &Path,
        store: Arc<HotStore>,
        engine: &Engine,
    ) -> Result<(Journal, Replayed), JournalError> {
        fs::create_dir_all(dir).map_err(io_err(dir))?;
        let mut names: Vec<PathBuf> = fs::read_dir(dir)
            .map_err(io_err(dir))?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|x| x == "wal"))
            .collect();
        names.sort();
        let mut replayed = Replayed::default();
        let mut segments = Vec::new();
        let count = names.len();
        for (i, path) in names.into_iter().enumerate() {
            let bytes = fs::read(&path).map_err(io_err(&path))?;
            let mut ids: HashMap<u32, SeriesId> = HashMap::new();
            let mut newest = i64::MIN;
            let damage = read_records(&bytes, |kind, body| {
                replay(kind, body, &store, engine, &mut ids, &mut replayed, &mut newest)
            });
            if let Some((at, why)) = damage {
                if i + 1 == count {
                    tracing::warn!(file = %path.display(), offset = at, problem = %why,
                        "journal ends in a torn record (the collector stopped mid-write): cut there");
                    let f = OpenOptions::new()
                        .write(true)
                        .open(&path)
                        .map_err(io_err(&path))?;
                    f.set_len(at as u64).map_err(io_err(&path))?;
                } else {
                    let to = path.with_extension("corrupt");
                    tracing::error!(file = %path.display(), offset = at, problem = %why, moved_to = %to.display(),
                        "journal segment damaged: quarantined; samples after the damage are not restored");
                    fs::rename(&path, &to).map_err(io_err(&path))?;
                    replayed.quarantined += 1;
                    continue;
                }
            }
            let number = path
                .file_stem()
                .and_then(|s| s.to_str())
                .and_then(|s| s.parse::<u64>().ok())
                .unwrap_or(0);
            segments.push((number, path, newest));
        }
        let (tx, rx) = std::sync::mpsc::channel();
        let writer = Writer {
            dir: dir.to_path_buf(),
            store,
            sequences: replayed.sequences.clone(),
            closed: segments,
            current: None,
        };
        std::thread::Builder::new()
            .name("watchpost-journal".into())
            .spawn(move || writer.run(rx))
            .map_err(io_err(dir))?;
        Ok((Journal { jobs: tx }, replayed))
    }

    /// Appends an applied batch; returns once it is on disk.
    pub async fn append(
        &self,
        agent: Arc<str>,
        sequence: u64,
        samples: Vec<(SeriesId, i64, f64)>,
    ) -> Result<(), String> {
        let (done, wait) = oneshot::channel();
        self.jobs
            .send(Job::Append(Append {
                agent,
                sequence,
                samples,
                done,
            }))
            .map_err(|_| JournalError::Stopped.to_string())?;
        wait.await.map_err(|_| JournalError::Stopped.to_string())?
    }

    /// Waits until everything queued before is on disk.
    pub async fn sync(&self) {
        let (done, wait) = oneshot::channel();
        if self.jobs.send(Job::Sync(done)).is_ok() {
            let _ = wait.await;
        }
    }
}

/// Replays a segment's bytes into an empty store, as the collector does at
/// start; returns the samples restored (for the fuzz target in `tests/fuzz`).
pub fn check_segment(bytes: &[u8]) -> u64 {
    let store = Arc::new(HotStore::new(3_600_000));
    let engine = Engine::new(store.clone(), crate::rules::RuleSet::default());
    let mut ids = HashMap::new();
    let mut replayed = Replayed::default();
    let mut newest = i64::MIN;
    let _ = read_records(bytes, |kind, body| {
        replay(kind, body, &store, &engine, &mut ids, &mut replayed, &mut newest)
    });
    replayed.samples
}

/// Calls `f(kind, body)` for each whole record; returns where and why the
/// bytes stop making sense, if they do.
fn read_records(bytes: &[u8], mut f: impl FnMut(u8, &[u8]) -> Result<(), String>) -> Option<(usize, String)> {
    let mut at = 0;
    while at < bytes.len() {
        if bytes.len() - at < 9 {
            return Some((at, format!("{} stray bytes at the end", bytes.len() - at)));
        }
        let len = u32::from_le_bytes(bytes[at..at + 4].try_into().expect("4 bytes")) as usize;
        let crc = u32::from_le_bytes(bytes[at + 4..at + 8].try_into().expect("4 bytes"));
        if len == 0 || len > MAX_RECORD_BYTES {
            return Some((at, format!("record length {len} is impossible")));
        }
        let Some(body) = bytes.get(at + 8..at + 8 + len) else {
            return Some((at, format!("record of {len} bytes cut short")));
        };
        if CRC.checksum(body) != crc {
            return Some((at, "checksum mismatch".into()));
        }
        if let Err(why) = f(body[0], &body[1..]) {
            return Some((at, why));
        }
        at += 8 + len;
    }
    None
}

fn replay(
    kind: u8,
    body: &[u8],
    store: &HotStore,
    engine: &Engine,
    ids: &mut HashMap<u32, SeriesId>,
    replayed: &mut Replayed,
    newest: &mut i64,
) -> Result<(), String> {
    let mut r = Reader { bytes: body, at: 0 };
    match kind {
        KIND_CHECKPOINT => {
            for _ in 0..r.varint()? {
                let agent = r.str()?.to_string();
                let seq = r.varint()?;
                let e = replayed.sequences.entry(agent).or_insert(0);
                *e = (*e).max(seq);
            }
        }
        KIND_SERIES => {
            let number = r.varint()? as u32;
            let metric = r.str()?.to_string();
            let n = r.varint()? as usize;
            let mut labels = Vec::with_capacity(n.min(64));
            for _ in 0..n {
                labels.push((r.str()?.to_string(), r.str()?.to_string()));
            }
            let pairs: Vec<(&str, &str)> = labels.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
            let (id, new) = store.resolve(&metric, &pairs);
            if new {
                engine.bind_series(id);
            }
            ids.insert(number, id);
        }
        KIND_BATCH => {
            let agent = r.str()?.to_string();
            let seq = r.varint()?;
            let base = r.i64()?;
            let n = r.varint()?;
            for _ in 0..n {
                let number = r.varint()? as u32;
                let ts = base.wrapping_add(unzigzag(r.varint()?));
                let v = f64::from_bits(r.u64()?);
                let Some(id) = ids.get(&number) else {
                    return Err(format!(
                        "batch refers to series {number}, never defined in this segment"
                    ));
                };
                // Older than what the store holds (already restored): skipped.
                if store.append(*id, ts, v).is_ok() {
                    replayed.samples += 1;
                }
                *newest = (*newest).max(ts);
            }
            let e = replayed.sequences.entry(agent).or_insert(0);
            *e = (*e).max(seq);
        }
        k => return Err(format!("unknown record kind {k}")),
    }
    if r.at != r.bytes.len() {
        return Err(format!("{} bytes left over in a record", r.bytes.len() - r.at));
    }
    Ok(())
}

struct Reader<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl Reader<'_> {
    fn varint(&mut self) -> Result<u64, String> {
        let mut v = 0u64;
        for shift in (0..64).step_by(7) {
            let b = *self.bytes.get(self.at).ok_or("record cut short")?;
            self.at += 1;
            v |= u64::from(b & 0x7f) << shift;
            if b & 0x80 == 0 {
                return Ok(v);
            }
        }
        Err("varint too long".into())
    }
    fn u64(&mut self) -> Result<u64, String> {
        let b = self.bytes.get(self.at..self.at + 8).ok_or("record cut short")?;
        self.at += 8;
        Ok(u64::from_le_bytes(b.try_into().expect("8 bytes")))
    }
    fn i64(&mut self) -> Result<i64, String> {
        self.u64().map(|v| v as i64)
    }
    fn str(&mut self) -> Result<&str, String> {
        let n = self.varint()? as usize;
        let b = self.bytes.get(self.at..self.at + n).ok_or("record cut short")?;
        self.at += n;
        std::str::from_utf8(b).map_err(|e| format!("text that is not UTF-8: {e}"))
    }
}

fn put_varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}
fn put_str(out: &mut Vec<u8>, s: &str) {
    put_varint(out, s.len() as u64);
    out.extend_from_slice(s.as_bytes());
}
fn zigzag(v: i64) -> u64 {
    ((v << 1) ^ (v >> 63)) as u64
}
fn unzigzag(v: u64) -> i64 {
    ((v >> 1) as i64) ^ -((v & 1) as i64)
}

fn wall_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

/// Starts a record in `out`; [`end_record`] fills in its length and checksum.
fn begin_record(out: &mut Vec<u8>, kind: u8) -> usize {
    let start = out.len();
    out.extend_from_slice(&[0; 8]);
    out.push(kind);
    start
}
fn end_record(out: &mut [u8], start: usize) {
    let len = (out.len() - start - 8) as u32;
    let crc = CRC.checksum(&out[start + 8..]);
    out[start..start + 4].copy_from_slice(&len.to_le_bytes());
    out[start + 4..start + 8].copy_from_slice(&crc.to_le_bytes());
}

struct Current {
    number: u64,
    path: PathBuf,
    file: File,
    bytes: u64,
    started_ms: i64,
    newest: i64,
    defined: HashSet<u32>,
}

struct Writer {
    dir: PathBuf,
    store: Arc<HotStore>,
    sequences: HashMap<String, u64>,
    /// Earlier segments: number, path, newest sample time.
    closed: Vec<(u64, PathBuf, i64)>,
    current: Option<Current>,
}

impl Writer {
    fn run(mut self, jobs: std::sync::mpsc::Receiver<Job>) {
        let mut buf = Vec::new();
        while let Ok(first) = jobs.recv() {
            let mut waiting = Vec::new();
            let mut syncs = Vec::new();
            buf.clear();
            let mut next = Some(first);
            while let Some(job) = next {
                match job {
                    Job::Append(a) => {
                        if let Err(e) = self.encode(&a, &mut buf) {
                            let _ = a.done.send(Err(e.to_string()));
                        } else {
                            waiting.push(a.done);
                        }
                    }
                    Job::Sync(done) => syncs.push(done),
                }
                // Group commit: everything queued meanwhile shares one sync.
                next = if buf.len() < 8 << 20 {
                    jobs.try_recv().ok()
                } else {
                    None
                };
            }
            let result = self.write_and_sync(&buf);
            if let Err(e) = &result {
                tracing::error!(error = %e, "cannot write the journal: batches are not acknowledged");
            }
            for w in waiting {
                let _ = w.send(result.clone());
            }
            for s in syncs {
                let _ = s.send(());
            }
        }
    }

    fn write_and_sync(&mut self, buf: &[u8]) -> Result<(), String> {
        if buf.is_empty() {
            return Ok(());
        }
        let Some(cur) = self.current.as_mut() else {
            return Err(format!("{}: no journal segment is open", self.dir.display()));
        };
        let r = cur.file.write_all(buf).and_then(|()| cur.file.sync_data());
        cur.bytes += buf.len() as u64;
        r.map_err(|e| format!("{}: {e}", cur.path.display()))
    }

    fn encode(&mut self, a: &Append, out: &mut Vec<u8>) -> Result<(), JournalError> {
        let first_ts = a.samples.first().map_or(0, |s| s.1);
        let newest = a.samples.iter().map(|s| s.1).max().unwrap_or(i64::MIN);
        let now = wall_ms();
        let roll = match &self.current {
            None => true,
            Some(c) => c.bytes + out.len() as u64 >= SEGMENT_BYTES || now - c.started_ms >= SEGMENT_MS,
        };
        if roll {
            // The buffered records belong to the segment being closed.
            if !out.is_empty() {
                self.write_and_sync(out).map_err(|e| JournalError::Io {
                    path: self.dir.clone(),
                    source: std::io::Error::other(e),
                })?;
                out.clear();
            }
            self.roll(now)?;
        }
        let cur = self.current.as_mut().expect("rolled above");
        for (id, _, _) in &a.samples {
            if cur.defined.insert(id.0)
                && let Some(l) = self.store.labels(*id)
            {
                let start = begin_record(out, KIND_SERIES);
                put_varint(out, u64::from(id.0));
                put_str(out, &l.metric);
                put_varint(out, l.labels.len() as u64);
                for (k, v) in &l.labels {
                    put_str(out, k);
                    put_str(out, v);
                }
                end_record(out, start);
            }
        }
        let start = begin_record(out, KIND_BATCH);
        put_str(out, &a.agent);
        put_varint(out, a.sequence);
        out.extend_from_slice(&first_ts.to_le_bytes());
        put_varint(out, a.samples.len() as u64);
        for (id, ts, v) in &a.samples {
            put_varint(out, u64::from(id.0));
            put_varint(out, zigzag(ts.wrapping_sub(first_ts)));
            out.extend_from_slice(&v.to_bits().to_le_bytes());
        }
        end_record(out, start);
        cur.newest = cur.newest.max(newest);
        let e = self.sequences.entry(a.agent.to_string()).or_insert(0);
        *e = (*e).max(a.sequence);
        Ok(())
    }

    /// Closes the current segment, deletes segments past the store's
    /// window, and starts a new one with a checkpoint.
    fn roll(&mut self, now_ms: i64) -> Result<(), JournalError> {
        let number = match self.current.take() {
            Some(c) => {
                self.closed.push((c.number, c.path, c.newest));
                c.number + 1
            }
            None => self.closed.last().map_or(1, |c| c.0 + 1),
        };
        let horizon = now_ms.saturating_sub(self.store.window_ms());
        self.closed.retain(|(_, path, newest)| {
            if *newest >= horizon {
                return true;
            }
            if let Err(e) = fs::remove_file(path) {
                tracing::warn!(file = %path.display(), error = %e, "cannot delete an old journal segment");
            }
            false
        });
        let path = self.dir.join(format!("{number:016}.wal"));
        let mut file = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)
            .map_err(io_err(&path))?;
        let mut out = Vec::new();
        let start = begin_record(&mut out, KIND_CHECKPOINT);
        put_varint(&mut out, self.sequences.len() as u64);
        for (agent, seq) in &self.sequences {
            put_str(&mut out, agent);
            put_varint(&mut out, *seq);
        }
        end_record(&mut out, start);
        file.write_all(&out).map_err(io_err(&path))?;
        // The new file's name must be durable too.
        if let Ok(d) = File::open(&self.dir) {
            let _ = d.sync_all();
        }
        self.current = Some(Current {
            number,
            path,
            file,
            bytes: out.len() as u64,
            started_ms: now_ms,
            newest: i64::MIN,
            defined: HashSet::new(),
        });
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rules::RuleSet;

    fn engine(store: &Arc<HotStore>) -> Engine {
        Engine::new(store.clone(), RuleSet::parse("", "none").expect("empty rules"))
    }

    async fn fill(dir: &Path) {
        let store = Arc::new(HotStore::new(3_600_000));
        let e = engine(&store);
        let (j, r) = Journal::open(dir, store.clone(), &e).expect("opens");
        assert_eq!(r.samples, 0);
        let (a, _) = store.resolve("m", &[("host", "a")]);
        let (b, _) = store.resolve("m", &[("host", "b")]);
        for (seq, ts) in [(1u64, 1_000i64), (2, 2_000)] {
            j.append(
                "agent-a".into(),
                seq,
                vec![(a, ts, ts as f64), (b, ts + 5, f64::NAN)],
            )
            .await
            .expect("append");
        }
        j.append("agent-b".into(), 9, vec![(b, 3_000, f64::INFINITY)])
            .await
            .expect("append");
    }

    #[tokio::test]
    async fn replay_restores_samples_and_sequences() {
        let dir = tempfile::tempdir().expect("tempdir");
        fill(dir.path()).await;
        let store = Arc::new(HotStore::new(3_600_000));
        let e = engine(&store);
        let (_, r) = Journal::open(dir.path(), store.clone(), &e).expect("opens");
        assert_eq!(r.samples, 5);
        assert_eq!(r.sequences.get("agent-a"), Some(&2));
        assert_eq!(r.sequences.get("agent-b"), Some(&9));
        let a = store.select(Some("m"), &[]);
        assert_eq!(a.len(), 2);
        let pts: Vec<Vec<(i64, f64)>> = a.iter().map(|id| store.points(*id, 0, 10_000)).collect();
        assert!(pts.iter().any(|p| p == &[(1_000, 1_000.0), (2_000, 2_000.0)]));
        let b = pts.iter().find(|p| p.len() == 3).expect("series b");
        assert!(b[0].1.is_nan() && b[2].1 == f64::INFINITY);
    }

    #[tokio::test]
    async fn torn_tail_is_cut_and_damaged_segment_quarantined() {
        let dir = tempfile::tempdir().expect("tempdir");
        fill(dir.path()).await;
        let seg = dir.path().join(format!("{:016}.wal", 1));
        let len = fs::metadata(&seg).expect("meta").len();
        OpenOptions::new()
            .write(true)
            .open(&seg)
            .expect("open")
            .set_len(len - 3)
            .expect("cut");
        let store = Arc::new(HotStore::new(3_600_000));
        let e = engine(&store);
        let (j, r) = Journal::open(dir.path(), store.clone(), &e).expect("opens");
        assert_eq!(r.samples, 4, "the torn last batch is not applied");
        assert_eq!(r.sequences.get("agent-b"), None);
        drop(j);
        // Damage in a segment that is not the last: quarantined.
        fs::write(dir.path().join(format!("{:016}.wal", 2)), b"not a journal at all").expect("write");
        let mut bytes = fs::read(&seg).expect("read");
        bytes[20] ^= 0xff;
        fs::write(&seg, bytes).expect("write");
        let store = Arc::new(HotStore::new(3_600_000));
        let e = engine(&store);
        let (_, r) = Journal::open(dir.path(), store, &e).expect("opens");
        assert_eq!(r.quarantined, 1);
        assert!(seg.with_extension("corrupt").exists());
    }
}
