//! The samples journal: every applied batch is appended here and made
//! durable (`fdatasync`) before the batch is acknowledged, so the hot store
//! and the agents' sequence numbers come back after a crash. At start the
//! journal is replayed into the store; segments older than the store's
//! window are deleted as new ones begin.
//!
//! A segment (`<data_dir>/journal/<n>.wal`) is a sequence of records in
//! the shared segment format (`watchpost_segment`); `codec` writes and
//! reads their bodies:
//! - *checkpoint* (first in every segment): each agent's last applied
//!   sequence, so deleting old segments never forgets one;
//! - *series*: a store series number with its metric and labels, written
//!   the first time a segment refers to it;
//! - *batch*: agent, sequence and samples (series number as a varint, the
//!   timestamp as a zigzag varint delta from the batch's first, the value
//!   as 8 bytes, so NaN and ±Inf survive bit for bit).
//!
//! One writer thread (`writer`) group-commits: it takes every batch queued
//! while the previous sync ran and syncs them together. At start `replay`
//! puts every segment back into the store. Segment times are read from the
//! collector's injected clock.
//!
//! Invariants: a batch is acknowledged only after its record is synced; a
//! record that fails its checksum is never applied; a torn last record is
//! cut off at start; any other damaged segment is renamed `*.corrupt`
//! (quarantined) and replay goes on with the next.

mod codec;
pub mod follow;
mod replay;
mod writer;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use tokio::sync::oneshot;

use crate::health::{Health, Store};
use crate::store::{HotStore, SeriesId};
use crate::time::Clock;
use follow::{Durable, FollowError, Follower, Hold, Holds, Position};
use writer::{Shared, Writer};

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
    /// Segments in which damage was found (its bytes kept in `*.corrupt`).
    pub quarantined: u64,
    /// Damaged spans in them: bytes that were not records, or records that
    /// could not be used (a batch whose series definition was damaged).
    pub damaged_spans: u64,
    /// Bytes in those spans.
    pub damaged_bytes: u64,
}

pub(crate) struct Append {
    agent: Arc<str>,
    sequence: u64,
    samples: Vec<(SeriesId, i64, f64)>,
    done: oneshot::Sender<Result<(), String>>,
}

pub(crate) enum Job {
    Append(Append),
    Sync(oneshot::Sender<()>),
}

/// The handle ingest sessions append through.
#[derive(Clone)]
pub struct Journal {
    jobs: std::sync::mpsc::Sender<Job>,
    health: Arc<Health>,
    dir: PathBuf,
    durable: tokio::sync::watch::Receiver<Durable>,
    holds: Arc<Holds>,
}

impl Journal {
    /// Opens `dir`, replays every segment into `store` (calling
    /// `new_series` for each series the store did not know, so the caller
    /// can bind it to the rules), and starts the writer.
    /// Every write's outcome goes to `health`.
    pub fn open(
        dir: &Path,
        store: Arc<HotStore>,
        clock: Arc<dyn Clock>,
        health: Arc<Health>,
        new_series: &dyn Fn(SeriesId),
    ) -> Result<(Journal, Replayed), JournalError> {
        let (replayed, segments) = replay::replay_dir(dir, &store, new_series)?;
        let end = match segments.last() {
            Some((number, path, _)) => Position {
                segment: *number,
                offset: std::fs::metadata(path).map_err(io_err(path))?.len(),
            },
            None => Position::default(),
        };
        let (durable_tx, durable) = tokio::sync::watch::channel(Durable {
            end,
            appended: 0,
            newest_ms: segments.iter().map(|s| s.2).max().unwrap_or(i64::MIN),
        });
        let holds = Arc::new(Holds::default());
        let (tx, rx) = std::sync::mpsc::channel();
        let writer = Writer::new(
            dir,
            store,
            clock,
            health.clone(),
            replayed.sequences.clone(),
            segments,
            Shared {
                durable: durable_tx,
                holds: holds.clone(),
            },
        );
        std::thread::Builder::new()
            .name("watchpost-journal".into())
            .spawn(move || writer.run(rx))
            .map_err(io_err(dir))?;
        Ok((
            Journal {
                jobs: tx,
                health,
                dir: dir.to_path_buf(),
                durable,
                holds,
            },
            replayed,
        ))
    }

    /// How far the journal is on disk, updated after every sync.
    pub fn durable(&self) -> tokio::sync::watch::Receiver<Durable> {
        self.durable.clone()
    }

    /// A follower for `name` from `from` (none: from what is durable now),
    /// with a hold that keeps the segments it has not passed for up to
    /// `max_age_ms` past their newest sample, even beyond the hot window.
    pub fn follow(
        &self,
        name: &str,
        from: Option<Position>,
        max_age_ms: i64,
    ) -> Result<(Follower, Hold), FollowError> {
        let from = from.unwrap_or_else(|| self.durable.borrow().end);
        let hold = Hold::new(self.holds.clone(), name, from.segment, max_age_ms);
        Ok((Follower::open(&self.dir, from)?, hold))
    }

    /// Whether writes fail now (samples are held back, waiting for the
    /// disk): new batches are refused before they touch the hot store,
    /// so what is held back stays what was in flight when writes failed.
    pub fn is_failing(&self) -> bool {
        self.health.is_failing(Store::Journal)
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
    let mut ids = HashMap::new();
    let mut replayed = Replayed::default();
    let mut newest = i64::MIN;
    let _ = watchpost_segment::read(bytes, codec::MAX_RECORD_BYTES, |kind, body| {
        replay::record(kind, body, &store, &|_| {}, &mut ids, &mut replayed, &mut newest)
    });
    replayed.samples
}

#[cfg(test)]
#[allow(dead_code)] // shared with the harness; each user needs a part
#[path = "../../../../tests/support/small_disk.rs"]
mod small_disk;

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs::{self, OpenOptions};

    use crate::time::SystemClock;

    /// The journal in `dir` on the system clock, replayed into `store`.
    fn open_journal(dir: &Path, store: Arc<HotStore>) -> Result<(Journal, Replayed), JournalError> {
        Journal::open(dir, store, Arc::new(SystemClock), Arc::default(), &|_| {})
    }

    async fn fill(dir: &Path) {
        let store = Arc::new(HotStore::new(3_600_000));
        let (j, r) = open_journal(dir, store.clone()).expect("opens");
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
        let (_, r) = open_journal(dir.path(), store.clone()).expect("opens");
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
        let (j, r) = open_journal(dir.path(), store.clone()).expect("opens");
        assert_eq!(r.samples, 4, "the torn last batch is not applied");
        assert_eq!(r.sequences.get("agent-b"), None);
        drop(j);
        // Damage in a segment that is not the last: quarantined.
        fs::write(dir.path().join(format!("{:016}.wal", 2)), b"not a journal at all").expect("write");
        let mut bytes = fs::read(&seg).expect("read");
        bytes[20] ^= 0xff;
        fs::write(&seg, bytes).expect("write");
        let store = Arc::new(HotStore::new(3_600_000));
        let (_, r) = open_journal(dir.path(), store).expect("opens");
        assert_eq!(r.quarantined, 1);
        assert!(seg.with_extension("corrupt").exists());
    }

    #[tokio::test]
    async fn a_damaged_record_in_the_middle_costs_only_itself() {
        let dir = tempfile::tempdir().expect("tempdir");
        fill(dir.path()).await;
        let seg = dir.path().join(format!("{:016}.wal", 1));
        let mut bytes = fs::read(&seg).expect("read");
        // The records: checkpoint, series a, series b, batch 1, batch 2,
        // batch of agent-b. Damage batch 1 (its value bytes).
        let mut at = 0;
        let mut starts = Vec::new();
        while at < bytes.len() {
            starts.push(at);
            let len = u32::from_le_bytes(bytes[at..at + 4].try_into().expect("4")) as usize;
            at += 8 + len;
        }
        assert_eq!(starts.len(), 6, "{starts:?}");
        bytes[starts[3] + 12] ^= 0xff;
        fs::write(&seg, &bytes).expect("write");
        let store = Arc::new(HotStore::new(3_600_000));
        let (_, r) = open_journal(dir.path(), store.clone()).expect("opens");
        assert_eq!(
            r.samples, 3,
            "batch 2 and agent-b's batch after the damage are restored"
        );
        assert_eq!(r.sequences.get("agent-a"), Some(&2));
        assert_eq!(r.sequences.get("agent-b"), Some(&9));
        assert_eq!(
            (r.quarantined, r.damaged_spans, r.damaged_bytes),
            (1, 1, (starts[4] - starts[3]) as u64)
        );
        let kept = fs::read(seg.with_extension("corrupt")).expect("damaged bytes kept aside");
        assert_eq!(kept, bytes[starts[3]..starts[4]]);
    }

    #[tokio::test]
    async fn a_follower_reads_what_is_synced_and_resumes_at_its_position() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = Arc::new(HotStore::new(3_600_000));
        let (j, _) = open_journal(dir.path(), store.clone()).expect("opens");
        let (mut f, _hold) = j.follow("t", None, 60_000).expect("follows");
        let (a, _) = store.resolve("m", &[("host", "a")]);
        let (b, _) = store.resolve("n", &[("host", "b")]);
        j.append("x".into(), 1, vec![(a, 1_000, 1.0), (b, 1_000, 2.0)])
            .await
            .expect("append");
        let d = *j.durable().borrow();
        assert_eq!(d.appended, 2);
        assert_eq!(d.newest_ms, 1_000);
        let only_m = |s: &follow::Series| s.metric == "m";
        let c = f.read(d.end, 100, &only_m).expect("reads");
        assert_eq!(c.passed, 2, "both samples read past");
        assert_eq!(c.samples.len(), 1, "only m kept");
        assert_eq!(c.samples[0].0.labels, vec![("host".to_string(), "a".to_string())]);
        assert_eq!(f.position(), d.end);
        assert_eq!(
            f.read(d.end, 100, &only_m).expect("reads").passed,
            0,
            "nothing past the synced end"
        );
        // A second batch names series a again without defining it: a
        // follower opened at the first batch's end must know a already.
        j.append("x".into(), 2, vec![(a, 2_000, 3.0)])
            .await
            .expect("append");
        let d2 = *j.durable().borrow();
        let mut g = follow::Follower::open(dir.path(), d.end).expect("opens at a position");
        let c = g.read(d2.end, 100, &|_| true).expect("reads");
        assert_eq!(c.samples.len(), 1);
        assert_eq!(
            (c.samples[0].0.metric.as_str(), c.samples[0].1, c.samples[0].2),
            ("m", 2_000, 3.0)
        );
    }

    #[test]
    fn a_hold_keeps_segments_past_the_window_up_to_its_age() {
        let holds = Arc::new(follow::Holds::default());
        assert!(!holds.keeps(3, 1_000, 10_000));
        let hold = follow::Hold::new(holds.clone(), "d", 2, 5_000);
        assert!(holds.keeps(3, 6_000, 10_000), "held and young enough");
        assert!(!holds.keeps(1, 6_000, 10_000), "before the hold");
        assert!(!holds.keeps(3, 4_000, 10_000), "older than the hold's age limit");
        hold.advance(4);
        assert!(!holds.keeps(3, 6_000, 10_000), "passed");
        drop(hold);
        assert!(!holds.keeps(5, 9_000, 10_000), "released");
    }

    use super::small_disk::SmallDisk;

    #[tokio::test]
    async fn a_full_disk_leaves_no_torn_record_and_nothing_acknowledged_is_lost() {
        let dir = tempfile::tempdir().expect("tempdir");
        let Some(disk) = SmallDisk::mount(dir.path(), "256k") else {
            return;
        };
        let journal_dir = disk.path.join("journal");
        let store = Arc::new(HotStore::new(3_600_000));
        let (j, _) = open_journal(&journal_dir, store.clone()).expect("opens");
        let ids: Vec<SeriesId> = (0..50)
            .map(|i| store.resolve("m", &[("i", &i.to_string())]).0)
            .collect();
        let batch = |seq: u64| -> Vec<(SeriesId, i64, f64)> {
            ids.iter()
                .map(|id| (*id, seq as i64 * 1_000, seq as f64))
                .collect()
        };
        // Fill the disk but a little, so some batches fit and then the
        // journal's writes start failing part way.
        let filler = disk.fill_leaving("filler", 16 << 10);
        let mut acked = Vec::new();
        let mut refused = Vec::new();
        for seq in 1..=40u64 {
            match j.append("a".into(), seq, batch(seq)).await {
                Ok(()) => acked.push(seq),
                Err(_) => refused.push(seq),
            }
        }
        assert!(
            !acked.is_empty() && !refused.is_empty(),
            "acked {acked:?}, refused {refused:?}"
        );
        // No torn record in the middle: the segment reads whole.
        let segments = watchpost_segment::list(&journal_dir, "wal").expect("list");
        for s in &segments {
            let bytes = fs::read(s).expect("read");
            assert_eq!(
                watchpost_segment::read(&bytes, 1 << 30, |_, _| Ok(())),
                None,
                "{}",
                s.display()
            );
        }
        // Space returns: the next append writes what was held back first.
        fs::remove_file(&filler).expect("free");
        j.append("a".into(), 41, batch(41))
            .await
            .expect("append after space returns");
        drop(j);
        let store = Arc::new(HotStore::new(3_600_000));
        let (_, r) = open_journal(&journal_dir, store).expect("reopens");
        assert_eq!(r.quarantined, 0);
        assert_eq!(r.sequences.get("a"), Some(&41));
        assert_eq!(
            r.samples,
            41 * 50,
            "every batch's samples, acknowledged or held back, are on disk"
        );
    }
}
