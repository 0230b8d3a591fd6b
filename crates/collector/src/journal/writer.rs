//! The journal's writer thread: appends applied batches to the open
//! segment, syncs each group once, rolls to a new segment by size and age,
//! and deletes segments older than the store's window.

use std::collections::HashMap;
use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::codec::{KIND_BATCH, KIND_CHECKPOINT, KIND_SERIES, put_str, put_varint, zigzag};
use super::follow::{Durable, Holds, Position};
use super::replay::KeptSegment;
use super::{Append, Job, JournalError, io_err};
use crate::health::{Health, Store};
use crate::store::HotStore;
use crate::time::Clock;

const SEGMENT_BYTES: u64 = 64 << 20;
const SEGMENT_MS: i64 = 60 * 60 * 1000;
/// While samples are held back, writing them is retried this often even
/// when no batch arrives (agents wait before reconnecting).
const RETRY_HELD: std::time::Duration = std::time::Duration::from_secs(1);

struct Current {
    number: u64,
    path: PathBuf,
    file: File,
    bytes: u64,
    started_ms: i64,
    newest: i64,
    /// Series whose definition this segment holds.
    defined: IdSet,
}

/// A set of store series ids, which are dense from 0: one bit each, where a
/// hash set cost a hash per journaled sample.
#[derive(Default)]
struct IdSet(Vec<u64>);

impl IdSet {
    /// Adds `id`; whether it was new.
    fn insert(&mut self, id: u32) -> bool {
        let (word, bit) = (id as usize / 64, 1u64 << (id % 64));
        if word >= self.0.len() {
            self.0.resize(word + 1, 0);
        }
        let new = self.0[word] & bit == 0;
        self.0[word] |= bit;
        new
    }
}

pub(super) struct Writer {
    dir: PathBuf,
    store: Arc<HotStore>,
    clock: Arc<dyn Clock>,
    health: Arc<Health>,
    sequences: HashMap<String, u64>,
    /// Earlier segments: number, path, newest sample time.
    closed: Vec<KeptSegment>,
    current: Option<Current>,
    /// Records a failed write could not put on disk, written before
    /// anything else.
    debt: Vec<u8>,
    /// Samples encoded but not yet synced, and their newest time.
    unsynced: (u64, i64),
    /// How far the journal is on disk, for followers.
    durable: tokio::sync::watch::Sender<Durable>,
    /// Segments followers still need.
    holds: Arc<Holds>,
}

/// What the writer shares with the journal's followers.
pub(super) struct Shared {
    pub(super) durable: tokio::sync::watch::Sender<Durable>,
    pub(super) holds: Arc<Holds>,
}

impl Writer {
    pub(super) fn new(
        dir: &Path,
        store: Arc<HotStore>,
        clock: Arc<dyn Clock>,
        health: Arc<Health>,
        sequences: HashMap<String, u64>,
        closed: Vec<KeptSegment>,
        shared: Shared,
    ) -> Writer {
        Writer {
            dir: dir.to_path_buf(),
            store,
            clock,
            health,
            sequences,
            closed,
            current: None,
            debt: Vec::new(),
            unsynced: (0, i64::MIN),
            durable: shared.durable,
            holds: shared.holds,
        }
    }

    /// Tells followers that everything encoded so far is on disk.
    fn publish(&mut self) {
        let Some(cur) = &self.current else { return };
        let (n, newest) = std::mem::replace(&mut self.unsynced, (0, i64::MIN));
        let end = Position {
            segment: cur.number,
            offset: cur.bytes,
        };
        self.durable.send_modify(|d| {
            d.end = end;
            d.appended += n;
            d.newest_ms = d.newest_ms.max(newest);
        });
    }

    pub(super) fn run(mut self, jobs: std::sync::mpsc::Receiver<Job>) {
        let mut buf = Vec::new();
        loop {
            let first = if self.debt.is_empty() && !self.health.is_failing(Store::Journal) {
                match jobs.recv() {
                    Ok(j) => j,
                    Err(_) => return,
                }
            } else {
                match jobs.recv_timeout(RETRY_HELD) {
                    Ok(j) => j,
                    Err(std::sync::mpsc::RecvTimeoutError::Timeout) => {
                        self.retry();
                        continue;
                    }
                    Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => return,
                }
            };
            let mut waiting = Vec::new();
            let mut syncs = Vec::new();
            buf.clear();
            let mut next = Some(first);
            while let Some(job) = next {
                match job {
                    Job::Append(a) => {
                        if let Err(e) = self.encode(&a, &mut buf) {
                            self.health.write_failed(Store::Journal, &e.to_string());
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
            let started = std::time::Instant::now();
            let result = self.write_and_sync(&buf);
            if !buf.is_empty() {
                self.health.observe_write(Store::Journal, started.elapsed());
            }
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

    /// While writes fail: opens the segment a failed roll left unopened,
    /// writes the held-back records, or checks that a sync succeeds again.
    fn retry(&mut self) {
        if self.current.is_none()
            && let Err(e) = self.roll(self.clock.now_ms())
        {
            self.health.write_failed(Store::Journal, &e.to_string());
            return;
        }
        if !self.debt.is_empty() {
            let _ = self.write_and_sync(&[]);
            return;
        }
        if let Some(cur) = &self.current {
            match cur.file.sync_data() {
                Ok(()) => self.health.write_succeeded(Store::Journal),
                Err(e) => self.health.write_failed(Store::Journal, &e.to_string()),
            }
        }
    }

    /// Writes what earlier failed writes left (the debt), then `buf`, and
    /// syncs. On failure the segment is cut back to its last whole record,
    /// so a torn record never stands in the middle of a segment with good
    /// ones after it, and `buf` joins the debt: its samples are in the hot
    /// store already, and no later batch is acknowledged before they are
    /// on disk.
    fn write_and_sync(&mut self, buf: &[u8]) -> Result<(), String> {
        if buf.is_empty() && self.debt.is_empty() {
            return Ok(());
        }
        let Some(cur) = self.current.as_mut() else {
            let e = format!("{}: no journal segment is open", self.dir.display());
            self.health.write_failed(Store::Journal, &e);
            return Err(e);
        };
        let debt = &self.debt;
        let written = (|| {
            if !debt.is_empty() {
                cur.file.write_all(debt)?;
            }
            cur.file.write_all(buf)?;
            cur.file.sync_data()
        })();
        match written {
            Ok(()) => {
                cur.bytes += (self.debt.len() + buf.len()) as u64;
                if !self.debt.is_empty() {
                    tracing::info!(bytes = self.debt.len(), file = %cur.path.display(),
                        "journal writes succeed again: the samples held back are on disk");
                    self.debt.clear();
                }
                self.health.write_succeeded(Store::Journal);
                self.publish();
                Ok(())
            }
            Err(e) => {
                // The file is opened for appending: after the cut, the next
                // write lands right after the last whole record.
                if let Err(c) = cur.file.set_len(cur.bytes).and_then(|()| cur.file.sync_data()) {
                    tracing::error!(file = %cur.path.display(), error = %c,
                        "cannot cut the journal back after a failed write");
                }
                self.debt.extend_from_slice(buf);
                let e = format!("{}: {e}", cur.path.display());
                self.health.write_failed(Store::Journal, &e);
                Err(e)
            }
        }
    }

    fn encode(&mut self, a: &Append, out: &mut Vec<u8>) -> Result<(), JournalError> {
        let first_ts = a.samples.first().map_or(0, |s| s.1);
        let newest = a.samples.iter().map(|s| s.1).max().unwrap_or(i64::MIN);
        let now = self.clock.now_ms();
        // Records held back by a failed write refer to series defined in
        // the current segment: no new segment until they are written.
        let roll = match &self.current {
            None => true,
            Some(c) => {
                self.debt.is_empty()
                    && (c.bytes + out.len() as u64 >= SEGMENT_BYTES || now - c.started_ms >= SEGMENT_MS)
            }
        };
        if roll {
            // The buffered records belong to the segment being closed.
            if !out.is_empty() {
                let flushed = self.write_and_sync(out);
                // Written, or held back in the debt: either way not twice.
                out.clear();
                flushed.map_err(|e| JournalError::Io {
                    path: self.dir.clone(),
                    source: std::io::Error::other(e),
                })?;
            }
            self.roll(now)?;
        }
        let cur = self.current.as_mut().expect("rolled above");
        for (id, _, _) in &a.samples {
            if cur.defined.insert(id.0)
                && let Some(l) = self.store.labels(*id)
            {
                let start = watchpost_segment::begin(out, KIND_SERIES);
                put_varint(out, u64::from(id.0));
                put_str(out, &l.metric);
                put_varint(out, l.labels.len() as u64);
                for (k, v) in &l.labels {
                    put_str(out, k);
                    put_str(out, v);
                }
                watchpost_segment::end(out, start);
            }
        }
        let start = watchpost_segment::begin(out, KIND_BATCH);
        put_str(out, &a.agent);
        put_varint(out, a.sequence);
        out.extend_from_slice(&first_ts.to_le_bytes());
        put_varint(out, a.samples.len() as u64);
        for (id, ts, v) in &a.samples {
            put_varint(out, u64::from(id.0));
            put_varint(out, zigzag(ts.wrapping_sub(first_ts)));
            out.extend_from_slice(&v.to_bits().to_le_bytes());
        }
        watchpost_segment::end(out, start);
        cur.newest = cur.newest.max(newest);
        self.unsynced.0 += a.samples.len() as u64;
        self.unsynced.1 = self.unsynced.1.max(newest);
        let e = self.sequences.entry(a.agent.to_string()).or_insert(0);
        *e = (*e).max(a.sequence);
        Ok(())
    }

    /// Closes the current segment, deletes segments past the store's
    /// window that no follower holds, and starts a new one with a
    /// checkpoint.
    fn roll(&mut self, now_ms: i64) -> Result<(), JournalError> {
        let number = match self.current.take() {
            Some(c) => {
                self.closed.push((c.number, c.path, c.newest));
                c.number + 1
            }
            None => self.closed.last().map_or(1, |c| c.0 + 1),
        };
        let horizon = now_ms.saturating_sub(self.store.window_ms());
        let holds = self.holds.clone();
        self.closed.retain(|(number, path, newest)| {
            if *newest >= horizon || holds.keeps(*number, *newest, now_ms) {
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
        let start = watchpost_segment::begin(&mut out, KIND_CHECKPOINT);
        put_varint(&mut out, self.sequences.len() as u64);
        for (agent, seq) in &self.sequences {
            put_str(&mut out, agent);
            put_varint(&mut out, *seq);
        }
        watchpost_segment::end(&mut out, start);
        if let Err(e) = file.write_all(&out).and_then(|()| file.sync_data()) {
            // A half-written checkpoint must not start a segment that later
            // records follow: the file goes, and the next append tries again.
            drop(file);
            let _ = fs::remove_file(&path);
            return Err(io_err(&path)(e));
        }
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
            defined: IdSet::default(),
        });
        self.publish();
        Ok(())
    }
}

#[cfg(test)]
mod id_set_tests {
    use super::IdSet;

    #[test]
    fn says_new_once_per_id() {
        let mut s = IdSet::default();
        assert!(s.insert(0));
        assert!(s.insert(64));
        assert!(s.insert(1_000_003));
        assert!(!s.insert(64));
        assert!(!s.insert(0));
        assert!(s.insert(63));
        assert!(!s.insert(1_000_003));
    }
}
