//! The agent's spool: every batch from the moment it is made until the
//! collector acknowledges it, on disk (`agent.spool_dir`) or, without a
//! directory, in a bounded memory buffer.
//!
//! On disk the spool is a directory of segment files, each a sequence of
//! records `[u32 length][u32 CRC-32C][kind][protobuf body]`: series
//! definitions (every segment begins with all of them, so deleting older
//! segments never loses a definition a newer one needs) and batches, which
//! keep the agent's *local* sequence numbers. A `state` file holds the
//! offset between local and wire sequence numbers (learnt from the first
//! collector that welcomed this spool) and the highest acknowledged local
//! sequence. Wire series ids are stable across agent restarts: a series
//! the spool already defined keeps its id, so batches written by an
//! earlier run replay as they are.
//!
//! Invariants: a batch leaves the spool only when an acknowledgement covers
//! it or when the spool is over its size limit (oldest first, counted); a
//! record that fails its checksum is never sent. A torn last record (the
//! agent was killed mid-write) is cut off; any other unreadable segment is
//! renamed `*.corrupt` (quarantined) and the agent goes on.

use std::collections::{HashMap, VecDeque};
use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use prost::Message;
use watchpost_proto::v1::{Batch, SeriesDefinition, SeriesDefinitions};

use crate::series::Round;

const KIND_DEFINITIONS: u8 = 1;
const KIND_BATCH: u8 = 2;
/// A record longer than this is taken as corruption, not allocated.
const MAX_RECORD_BYTES: usize = 64 << 20;
/// Batches kept in memory besides the disk (the live end of the stream).
const MEMORY_TAIL: usize = 64;
const CRC: crc::Crc<u32> = crc::Crc::<u32>::new(&crc::CRC_32_ISCSI);

/// Where and how much to spool.
#[derive(Debug, Clone)]
pub struct SpoolConfig {
    /// Spool directory; `None` keeps batches in memory only.
    pub dir: Option<PathBuf>,
    /// Most bytes of segments on disk.
    pub max_bytes: u64,
    /// Most batches kept in memory when there is no directory.
    pub memory_batches: usize,
}

/// Why a spool could not be opened.
#[derive(Debug, thiserror::Error)]
pub enum SpoolError {
    /// Another agent holds the directory.
    #[error("spool directory {0} is in use by another agent process (lock file held)")]
    Locked(PathBuf),
    /// A file or the directory could not be read or written.
    #[error("spool {path}: {source}")]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
}

fn io_err(path: &Path) -> impl FnOnce(std::io::Error) -> SpoolError + '_ {
    move |source| SpoolError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// Figures the agent reports about its spool (as `agent_spool_*` series).
#[derive(Debug, Default)]
pub struct SpoolStats {
    /// Bytes of segments on disk (0 in memory mode).
    pub bytes: AtomicU64,
    /// Batches not yet acknowledged.
    pub pending_batches: AtomicU64,
    /// Batches dropped because the spool was full.
    pub dropped_batches: AtomicU64,
    /// Samples in those batches.
    pub dropped_samples: AtomicU64,
    /// Segments found unreadable and quarantined.
    pub quarantined_segments: AtomicU64,
}

struct Segment {
    path: PathBuf,
    first: u64,
    last: u64,
    bytes: u64,
    samples: u64,
}

struct Disk {
    dir: PathBuf,
    _lock: File,
    segments: VecDeque<Segment>,
    current: Option<File>,
    segment_max: u64,
    max_bytes: u64,
    total_bytes: u64,
    /// A segment read back for replay: its first sequence and its batches.
    replay: Option<(u64, VecDeque<Batch>)>,
}

/// Unacknowledged batches and the series definitions they use.
pub struct Spool {
    /// Every series defined so far, by wire id (resent on each connect).
    definitions: Vec<SeriesDefinition>,
    by_key: HashMap<u64, Vec<u32>>,
    next_wire: u32,
    /// The collection thread's series ids → wire ids (0: not yet known).
    local_to_wire: Vec<u32>,
    next_seq: u64,
    acked: u64,
    /// wire sequence = local sequence + offset, once a collector said where it stands.
    offset: Option<i64>,
    /// The newest batches (all of them without a directory).
    tail: VecDeque<Batch>,
    memory_batches: usize,
    disk: Option<Disk>,
    stats: Arc<SpoolStats>,
    state_dirty: bool,
    /// Batches the disk refused (full, read-only): in the tail only, and
    /// lost, counted, if they leave it before being acknowledged.
    unwritten: std::collections::HashSet<u64>,
}

fn key_hash(d: &SeriesDefinition) -> u64 {
    use std::hash::{Hash, Hasher};
    let mut h = std::collections::hash_map::DefaultHasher::new();
    d.metric.hash(&mut h);
    for l in &d.labels {
        l.name.hash(&mut h);
        l.value.hash(&mut h);
    }
    h.finish()
}

fn same_series(a: &SeriesDefinition, b: &SeriesDefinition) -> bool {
    a.metric == b.metric && a.labels == b.labels
}

fn encode(kind: u8, body: &impl Message) -> Vec<u8> {
    let len = 1 + body.encoded_len();
    let mut out = Vec::with_capacity(8 + len);
    out.extend_from_slice(&(len as u32).to_le_bytes());
    out.extend_from_slice(&[0; 4]);
    out.push(kind);
    body.encode(&mut out).expect("a Vec grows as needed");
    let crc = CRC.checksum(&out[8..]);
    out[4..8].copy_from_slice(&crc.to_le_bytes());
    out
}

/// A decoded record.
enum Record {
    Definitions(SeriesDefinitions),
    Batch(Batch),
}

/// Reads the records of a segment; on damage, also where the good part
/// ends and what is wrong.
fn decode_all(bytes: &[u8]) -> (Vec<Record>, Option<(usize, String)>) {
    let mut records = Vec::new();
    let mut at = 0;
    while at < bytes.len() {
        let damaged = |why: String| Some((at, why));
        if bytes.len() - at < 9 {
            return (
                records,
                damaged(format!("{} stray bytes at the end", bytes.len() - at)),
            );
        }
        let len = u32::from_le_bytes(bytes[at..at + 4].try_into().expect("4 bytes")) as usize;
        let crc = u32::from_le_bytes(bytes[at + 4..at + 8].try_into().expect("4 bytes"));
        if len == 0 || len > MAX_RECORD_BYTES {
            return (records, damaged(format!("record length {len} is impossible")));
        }
        let Some(body) = bytes.get(at + 8..at + 8 + len) else {
            return (records, damaged(format!("record of {len} bytes cut short")));
        };
        if CRC.checksum(body) != crc {
            return (records, damaged("checksum mismatch".into()));
        }
        let record = match body[0] {
            KIND_DEFINITIONS => SeriesDefinitions::decode(&body[1..]).map(Record::Definitions),
            KIND_BATCH => Batch::decode(&body[1..]).map(Record::Batch),
            k => return (records, damaged(format!("unknown record kind {k}"))),
        };
        match record {
            Ok(r) => records.push(r),
            Err(e) => return (records, damaged(format!("undecodable record: {e}"))),
        }
        at += 8 + len;
    }
    (records, None)
}

/// Reads a segment's bytes as the spool does at start, returning how many
/// whole records it holds (for the fuzz target in `tests/fuzz`).
pub fn check_segment(bytes: &[u8]) -> usize {
    decode_all(bytes).0.len()
}

fn segment_name(first: u64) -> String {
    format!("{first:020}.seg")
}

impl Spool {
    /// Opens (or creates) the spool. With a directory, batches left by an
    /// earlier run are loaded for replay, damaged segments quarantined.
    pub fn open(config: &SpoolConfig) -> Result<Spool, SpoolError> {
        let mut spool = Spool {
            definitions: Vec::new(),
            by_key: HashMap::new(),
            next_wire: 1,
            local_to_wire: Vec::new(),
            next_seq: 1,
            acked: 0,
            offset: None,
            tail: VecDeque::new(),
            memory_batches: config.memory_batches.max(1),
            disk: None,
            stats: Arc::default(),
            state_dirty: false,
            unwritten: std::collections::HashSet::new(),
        };
        if let Some(dir) = &config.dir {
            spool.open_dir(dir, config.max_bytes)?;
        }
        Ok(spool)
    }

    /// A spool in memory only, holding at most `batches`.
    pub fn memory(batches: usize) -> Spool {
        Spool::open(&SpoolConfig {
            dir: None,
            max_bytes: 0,
            memory_batches: batches,
        })
        .expect("a memory spool opens no file")
    }

    fn open_dir(&mut self, dir: &Path, max_bytes: u64) -> Result<(), SpoolError> {
        fs::create_dir_all(dir).map_err(io_err(dir))?;
        let lock_path = dir.join("lock");
        let lock = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&lock_path)
            .map_err(io_err(&lock_path))?;
        match lock.try_lock() {
            Ok(()) => {}
            Err(fs::TryLockError::WouldBlock) => return Err(SpoolError::Locked(dir.to_path_buf())),
            Err(fs::TryLockError::Error(e)) => return Err(io_err(&lock_path)(e)),
        }
        let state_path = dir.join("state");
        match fs::read_to_string(&state_path) {
            Ok(text) => match parse_state(&text) {
                Ok((offset, acked)) => {
                    self.offset = offset;
                    self.acked = acked;
                }
                Err(why) => {
                    let to = dir.join("state.corrupt");
                    tracing::error!(file = %state_path.display(), problem = %why, moved_to = %to.display(),
                        "spool state unreadable: quarantined; spooled batches will be renumbered");
                    fs::rename(&state_path, &to).map_err(io_err(&state_path))?;
                }
            },
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(io_err(&state_path)(e)),
        }
        let mut names: Vec<PathBuf> = fs::read_dir(dir)
            .map_err(io_err(dir))?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|x| x == "seg"))
            .collect();
        names.sort();
        let mut disk = Disk {
            dir: dir.to_path_buf(),
            _lock: lock,
            segments: VecDeque::new(),
            current: None,
            // Replay reads one segment into memory at a time: small
            // segments keep the agent small while it drains a backlog.
            segment_max: (max_bytes / 64).clamp(16 << 10, 4 << 20),
            max_bytes: max_bytes.max(32 << 10),
            total_bytes: 0,
            replay: None,
        };
        let count = names.len();
        for (i, path) in names.into_iter().enumerate() {
            let bytes = fs::read(&path).map_err(io_err(&path))?;
            let (records, damage) = decode_all(&bytes);
            let mut good_len = bytes.len();
            if let Some((at, why)) = damage {
                if i + 1 == count {
                    // The agent was stopped mid-write: keep what is whole.
                    tracing::warn!(file = %path.display(), offset = at, problem = %why, "spool segment ends in a torn record: cut there");
                    let f = OpenOptions::new()
                        .write(true)
                        .open(&path)
                        .map_err(io_err(&path))?;
                    f.set_len(at as u64).map_err(io_err(&path))?;
                    good_len = at;
                } else {
                    let to = path.with_extension("corrupt");
                    tracing::error!(file = %path.display(), offset = at, problem = %why, moved_to = %to.display(),
                        "spool segment damaged: quarantined, its batches are lost");
                    fs::rename(&path, &to).map_err(io_err(&path))?;
                    self.stats.quarantined_segments.fetch_add(1, Ordering::Relaxed);
                    continue;
                }
            }
            let mut seg = Segment {
                path: path.clone(),
                first: u64::MAX,
                last: 0,
                bytes: good_len as u64,
                samples: 0,
            };
            for r in records {
                match r {
                    Record::Definitions(d) => {
                        for def in d.series {
                            self.learn(def);
                        }
                    }
                    Record::Batch(b) => {
                        seg.first = seg.first.min(b.sequence);
                        seg.last = seg.last.max(b.sequence);
                        seg.samples += b.series_ids.len() as u64;
                    }
                }
            }
            if seg.first == u64::MAX || seg.last <= self.acked {
                fs::remove_file(&path).map_err(io_err(&path))?;
                continue;
            }
            self.next_seq = self.next_seq.max(seg.last + 1);
            disk.total_bytes += seg.bytes;
            disk.segments.push_back(seg);
        }
        self.next_seq = self.next_seq.max(self.acked + 1);
        if let Some(first) = disk.segments.front().map(|s| s.first) {
            tracing::info!(dir = %dir.display(), batches = self.next_seq - first.max(self.acked + 1),
                "spool holds batches from an earlier run; they will be replayed");
        }
        self.disk = Some(disk);
        self.publish_stats();
        Ok(())
    }

    /// Records a definition read back from disk under its wire id.
    fn learn(&mut self, def: SeriesDefinition) {
        let h = key_hash(&def);
        let ids = self.by_key.entry(h).or_default();
        if ids.iter().any(|&w| {
            self.definitions
                .get(w as usize - 1)
                .is_some_and(|d| same_series(d, &def))
        }) {
            return;
        }
        if def.id == 0 || def.id as usize != self.definitions.len() + 1 {
            // Wire ids are dense from 1; anything else is not ours.
            return;
        }
        ids.push(def.id);
        self.next_wire = def.id + 1;
        self.definitions.push(def);
    }

    /// The statistics shared with the collection thread.
    pub fn stats(&self) -> Arc<SpoolStats> {
        self.stats.clone()
    }

    /// Every series defined so far, with wire ids.
    pub fn definitions(&self) -> &[SeriesDefinition] {
        &self.definitions
    }

    /// Whether a collector has fixed the wire sequence numbers.
    pub fn synced(&self) -> bool {
        self.offset.is_some()
    }

    /// Takes a round: its new series get wire ids (the ids they had in an
    /// earlier run if the spool knows them), its samples become a batch
    /// on disk. Returns the definitions the collector has not seen.
    pub fn push(&mut self, round: Round) -> Vec<SeriesDefinition> {
        let mut fresh = Vec::new();
        for mut def in round.definitions {
            let local = def.id as usize;
            let h = key_hash(&def);
            let known = self.by_key.get(&h).and_then(|ids| {
                ids.iter().copied().find(|&w| {
                    self.definitions
                        .get(w as usize - 1)
                        .is_some_and(|d| same_series(d, &def))
                })
            });
            let wire = match known {
                Some(w) => w,
                None => {
                    let w = self.next_wire;
                    self.next_wire += 1;
                    def.id = w;
                    self.by_key.entry(h).or_default().push(w);
                    self.definitions.push(def.clone());
                    fresh.push(def);
                    w
                }
            };
            if self.local_to_wire.len() <= local {
                self.local_to_wire.resize(local + 1, 0);
            }
            self.local_to_wire[local] = wire;
        }
        let mut batch = Batch {
            sequence: self.next_seq,
            base_timestamp_ms: round.timestamp_ms,
            series_ids: Vec::with_capacity(round.samples.len()),
            values: Vec::with_capacity(round.samples.len()),
            timestamp_offsets_ms: Vec::new(),
            late: false,
        };
        let with_offsets = round.offsets_ms.len() == round.samples.len();
        for (i, (local, v)) in round.samples.into_iter().enumerate() {
            let Some(&wire) = self.local_to_wire.get(local as usize).filter(|w| **w != 0) else {
                continue; // a sample of a series never defined: a source bug, not data
            };
            batch.series_ids.push(wire);
            batch.values.push(v);
            if with_offsets {
                batch.timestamp_offsets_ms.push(round.offsets_ms[i]);
            }
        }
        self.next_seq += 1;
        if let Some(disk) = self.disk.as_mut()
            && let Err(e) = disk.write(&fresh, &self.definitions, &batch)
        {
            // The batch stays in memory and is still sent; only its safety
            // across an agent restart is lost.
            tracing::error!(dir = %disk.dir.display(), error = %e, "cannot write to the spool");
            self.unwritten.insert(batch.sequence);
        }
        self.tail.push_back(batch);
        let limit = if self.disk.is_some() {
            MEMORY_TAIL
        } else {
            self.memory_batches
        };
        while self.tail.len() > limit {
            let old = self.tail.pop_front().expect("longer than the limit");
            let on_disk = self.disk.is_some() && !self.unwritten.remove(&old.sequence);
            if !on_disk && old.sequence > self.acked {
                self.count_dropped(1, old.series_ids.len() as u64);
            }
        }
        if let Some(disk) = self.disk.as_mut() {
            let (batches, samples) = disk.enforce_limit(self.acked);
            if batches > 0 {
                self.count_dropped(batches, samples);
            }
        }
        self.publish_stats();
        fresh
    }

    fn count_dropped(&self, batches: u64, samples: u64) {
        let before = self.stats.dropped_batches.fetch_add(batches, Ordering::Relaxed);
        self.stats.dropped_samples.fetch_add(samples, Ordering::Relaxed);
        if (before + batches).is_power_of_two() || before == 0 {
            tracing::warn!(
                dropped_batches = before + batches,
                "spool full: dropping the oldest unacknowledged batches"
            );
        }
    }

    fn publish_stats(&self) {
        let pending = self.next_seq.saturating_sub(self.first_unacked());
        self.stats.pending_batches.store(pending, Ordering::Relaxed);
        let bytes = self.disk.as_ref().map_or(0, |d| d.total_bytes);
        self.stats.bytes.store(bytes, Ordering::Relaxed);
    }

    /// The oldest local sequence still held and unacknowledged.
    fn first_unacked(&self) -> u64 {
        let oldest = match &self.disk {
            Some(d) => d.segments.front().map_or(self.next_seq, |s| s.first),
            None => self.tail.front().map_or(self.next_seq, |b| b.sequence),
        };
        oldest.max(self.acked + 1)
    }

    /// A collector's welcome: its last applied wire sequence. The first
    /// welcome a spool ever gets fixes the offset so that the oldest held
    /// batch follows it; later ones acknowledge what it already applied.
    pub fn welcome(&mut self, last_wire: u64) {
        match self.offset {
            None => {
                let offset = last_wire as i64 + 1 - self.first_unacked() as i64;
                self.offset = Some(offset);
                self.state_dirty = true;
                self.save_state(true);
            }
            Some(offset) => {
                let local = last_wire as i64 - offset;
                if local >= self.next_seq as i64 {
                    // The collector is ahead of anything this spool made (two
                    // agents sharing an id, a restored spool): number what we
                    // hold after it rather than have it dropped as duplicates.
                    tracing::warn!(
                        collector_last = last_wire,
                        "collector's sequence is ahead of this spool: renumbering"
                    );
                    self.offset = Some(last_wire as i64 + 1 - self.first_unacked() as i64);
                    self.state_dirty = true;
                    self.save_state(true);
                } else if local > 0 {
                    self.ack_local(local as u64);
                }
            }
        }
    }

    /// A wire acknowledgement.
    pub fn ack(&mut self, wire: u64) {
        if let Some(offset) = self.offset {
            let local = wire as i64 - offset;
            if local > 0 {
                self.ack_local(local as u64);
            }
        }
    }

    fn ack_local(&mut self, local: u64) {
        let local = local.min(self.next_seq.saturating_sub(1));
        if local <= self.acked {
            return;
        }
        self.acked = local;
        self.state_dirty = true;
        while let Some(b) = self.tail.front().filter(|b| b.sequence <= local) {
            self.unwritten.remove(&b.sequence);
            self.tail.pop_front();
        }
        if let Some(disk) = self.disk.as_mut() {
            disk.drop_acked(local);
        }
        self.publish_stats();
    }

    /// The oldest unacknowledged batch after local sequence `after`, with
    /// its wire sequence; `None` when everything has been handed out.
    pub fn next_after(&mut self, after: u64) -> Option<Batch> {
        let offset = self.offset?;
        let want = (after + 1).max(self.first_unacked());
        if want >= self.next_seq {
            return None;
        }
        let mut batch = match self.tail.front() {
            Some(f) if f.sequence <= want => self.tail.get((want - f.sequence) as usize).cloned(),
            // Older than the memory tail: from disk, or, if the disk has
            // lost it, on with what memory still holds.
            _ => self
                .disk
                .as_mut()
                .and_then(|d| d.read(want))
                .or_else(|| self.tail.front().cloned()),
        }?;
        batch.sequence = (batch.sequence as i64 + offset) as u64;
        Some(batch)
    }

    /// The local sequence of a wire sequence.
    pub fn local_of(&self, wire: u64) -> u64 {
        self.offset.map_or(0, |o| (wire as i64 - o).max(0) as u64)
    }

    /// The local sequence the next batch will get.
    pub fn next_sequence(&self) -> u64 {
        self.next_seq
    }

    /// The highest acknowledged local sequence.
    pub fn acked(&self) -> u64 {
        self.acked
    }

    /// Writes the state file if it changed (`sync`: and makes the state
    /// and the open segment durable, for a stop).
    pub fn save_state(&mut self, sync: bool) {
        let Some(disk) = self.disk.as_mut() else { return };
        if sync && let Some(f) = disk.current.as_ref() {
            let _ = f.sync_data();
        }
        if !self.state_dirty {
            return;
        }
        let text = match self.offset {
            Some(o) => format!("offset={o}\nacked={}\n", self.acked),
            None => format!("acked={}\n", self.acked),
        };
        let tmp = disk.dir.join("state.tmp");
        let path = disk.dir.join("state");
        let written = File::create(&tmp)
            .and_then(|mut f| {
                f.write_all(text.as_bytes())?;
                if sync {
                    f.sync_data()?;
                }
                Ok(())
            })
            .and_then(|()| fs::rename(&tmp, &path));
        match written {
            Ok(()) => self.state_dirty = false,
            Err(e) => tracing::error!(file = %path.display(), error = %e, "cannot write the spool state"),
        }
    }
}

fn parse_state(text: &str) -> Result<(Option<i64>, u64), String> {
    let mut offset = None;
    let mut acked = None;
    for (n, line) in text.lines().enumerate() {
        let Some((k, v)) = line.split_once('=') else {
            return Err(format!("line {}: expected key=value, found {line:?}", n + 1));
        };
        match k {
            "offset" => {
                offset = Some(
                    v.parse::<i64>()
                        .map_err(|e| format!("line {}: offset: {e}", n + 1))?,
                )
            }
            "acked" => {
                acked = Some(
                    v.parse::<u64>()
                        .map_err(|e| format!("line {}: acked: {e}", n + 1))?,
                )
            }
            _ => return Err(format!("line {}: unknown key {k:?}", n + 1)),
        }
    }
    Ok((offset, acked.ok_or("no acked= line")?))
}

impl Disk {
    fn write(
        &mut self,
        fresh: &[SeriesDefinition],
        all: &[SeriesDefinition],
        batch: &Batch,
    ) -> std::io::Result<()> {
        let roll = match self.segments.back() {
            None => true,
            Some(s) => self.current.is_none() || s.bytes >= self.segment_max,
        };
        let mut out = Vec::new();
        if roll {
            if let Some(f) = self.current.take() {
                f.sync_data()?;
            }
            let path = self.dir.join(segment_name(batch.sequence));
            let f = OpenOptions::new().create(true).append(true).open(&path)?;
            self.current = Some(f);
            self.segments.push_back(Segment {
                path,
                first: batch.sequence,
                last: batch.sequence,
                bytes: 0,
                samples: 0,
            });
            if !all.is_empty() {
                out.extend(encode(
                    KIND_DEFINITIONS,
                    &SeriesDefinitions { series: all.to_vec() },
                ));
            }
        } else if !fresh.is_empty() {
            out.extend(encode(
                KIND_DEFINITIONS,
                &SeriesDefinitions {
                    series: fresh.to_vec(),
                },
            ));
        }
        out.extend(encode(KIND_BATCH, batch));
        let f = self.current.as_mut().expect("opened above");
        f.write_all(&out)?;
        let seg = self.segments.back_mut().expect("pushed above");
        seg.last = batch.sequence;
        seg.bytes += out.len() as u64;
        seg.samples += batch.series_ids.len() as u64;
        self.total_bytes += out.len() as u64;
        Ok(())
    }

    /// Deletes the oldest segments past the size limit; returns the
    /// unacknowledged batches and samples they held.
    fn enforce_limit(&mut self, acked: u64) -> (u64, u64) {
        let (mut batches, mut samples) = (0, 0);
        while self.total_bytes > self.max_bytes && self.segments.len() > 1 {
            let s = self.segments.pop_front().expect("more than one");
            self.total_bytes -= s.bytes;
            if s.last > acked {
                let held = s.last - s.first + 1;
                let lost = s.last - s.first.max(acked + 1) + 1;
                batches += lost;
                samples += s.samples * lost / held.max(1);
            }
            if let Err(e) = fs::remove_file(&s.path) {
                tracing::error!(file = %s.path.display(), error = %e, "cannot delete a spool segment");
            }
            if self.replay.as_ref().is_some_and(|(first, _)| *first == s.first) {
                self.replay = None;
            }
        }
        (batches, samples)
    }

    fn drop_acked(&mut self, acked: u64) {
        while self.segments.len() > 1 && self.segments.front().is_some_and(|s| s.last <= acked) {
            let s = self.segments.pop_front().expect("checked");
            self.total_bytes -= s.bytes;
            if let Err(e) = fs::remove_file(&s.path) {
                tracing::error!(file = %s.path.display(), error = %e, "cannot delete a spool segment");
            }
        }
        if self
            .replay
            .as_ref()
            .is_some_and(|(_, b)| b.back().is_some_and(|b| b.sequence <= acked))
        {
            self.replay = None;
        }
    }

    /// Reads batch `want` (or the first after it that exists) from disk.
    fn read(&mut self, want: u64) -> Option<Batch> {
        let in_replay = |r: &Option<(u64, VecDeque<Batch>)>| {
            r.as_ref()
                .is_some_and(|(_, b)| b.back().is_some_and(|last| last.sequence >= want))
        };
        if !in_replay(&self.replay) {
            let seg = self.segments.iter().find(|s| s.last >= want)?;
            let path = seg.path.clone();
            let first = seg.first;
            let bytes = match fs::read(&path) {
                Ok(b) => b,
                Err(e) => {
                    tracing::error!(file = %path.display(), error = %e, "cannot read a spool segment");
                    return None;
                }
            };
            let (records, damage) = decode_all(&bytes);
            if let Some((at, why)) = damage {
                tracing::error!(file = %path.display(), offset = at, problem = %why, "spool segment damaged while replaying: the rest of it is skipped");
            }
            let batches = records
                .into_iter()
                .filter_map(|r| match r {
                    Record::Batch(b) => Some(b),
                    Record::Definitions(_) => None,
                })
                .collect();
            self.replay = Some((first, batches));
        }
        let (_, batches) = self.replay.as_mut()?;
        while batches.front().is_some_and(|b| b.sequence < want) {
            batches.pop_front();
        }
        batches.front().cloned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use watchpost_proto::v1::Label;

    fn def(id: u32, metric: &str) -> SeriesDefinition {
        SeriesDefinition {
            id,
            metric: metric.into(),
            labels: vec![Label {
                name: "a".into(),
                value: "b".into(),
            }],
        }
    }

    fn round(defs: Vec<SeriesDefinition>, samples: Vec<(u32, f64)>) -> Round {
        Round {
            timestamp_ms: 1_000,
            definitions: defs,
            samples,
            offsets_ms: Vec::new(),
        }
    }

    fn disk(dir: &Path, max_bytes: u64) -> Spool {
        Spool::open(&SpoolConfig {
            dir: Some(dir.to_path_buf()),
            max_bytes,
            memory_batches: 8,
        })
        .expect("opens")
    }

    fn drain(s: &mut Spool) -> Vec<Batch> {
        let mut out = Vec::new();
        let mut after = s.acked();
        while let Some(b) = s.next_after(after) {
            after = s.local_of(b.sequence);
            out.push(b);
        }
        out
    }

    #[test]
    fn memory_spool_renumbers_on_first_welcome_and_drops_oldest() {
        let mut s = Spool::memory(3);
        s.push(round(vec![def(1, "m")], vec![(1, 1.0)]));
        for v in 2..=5 {
            s.push(round(vec![], vec![(1, f64::from(v))]));
        }
        assert_eq!(s.stats().dropped_batches.load(Ordering::Relaxed), 2);
        s.welcome(41);
        let b = drain(&mut s);
        let seqs: Vec<u64> = b.iter().map(|b| b.sequence).collect();
        assert_eq!(seqs, [42, 43, 44]);
        assert_eq!(b[0].values, [3.0]);
        s.ack(43);
        assert_eq!(drain(&mut s).len(), 1);
    }

    #[test]
    fn disk_spool_survives_a_restart_with_stable_series_ids() {
        let dir = tempfile::tempdir().expect("tempdir");
        {
            let mut s = disk(dir.path(), 1 << 20);
            let fresh = s.push(round(vec![def(1, "x"), def(2, "y")], vec![(1, 1.0), (2, 2.0)]));
            assert_eq!(fresh.len(), 2);
            s.welcome(0);
            s.push(round(vec![], vec![(2, 3.0)]));
            s.ack(1);
            s.save_state(true);
        }
        let mut s = disk(dir.path(), 1 << 20);
        assert!(s.synced());
        // The new run numbers its series differently; the spool maps them back.
        let fresh = s.push(round(vec![def(1, "y"), def(2, "z")], vec![(1, 4.0), (2, 5.0)]));
        assert_eq!(fresh.len(), 1, "only z is new");
        assert_eq!(fresh[0].id, 3);
        let b = drain(&mut s);
        assert_eq!(b.len(), 2, "batch 2 from the last run and the new one");
        assert_eq!(
            (b[0].sequence, b[0].series_ids.clone(), b[0].values.clone()),
            (2, vec![2], vec![3.0])
        );
        assert_eq!((b[1].sequence, b[1].series_ids.clone()), (3, vec![2, 3]));
    }

    #[test]
    fn full_disk_spool_drops_oldest_segments_and_counts_them() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut s = disk(dir.path(), 40 << 10);
        s.push(round(vec![def(1, "x")], vec![(1, 0.0)]));
        let samples: Vec<(u32, f64)> = (0..100).map(|i| (1, f64::from(i))).collect();
        for _ in 0..200 {
            s.push(round(vec![], samples.clone()));
        }
        let st = s.stats();
        let dropped = st.dropped_batches.load(Ordering::Relaxed);
        assert!(dropped > 0);
        assert!(st.bytes.load(Ordering::Relaxed) <= 40 << 10);
        s.welcome(0);
        let b = drain(&mut s);
        assert_eq!(b.len() as u64 + dropped, 201);
        // The oldest kept batch follows the collector's last sequence.
        assert_eq!(b.last().map(|b| b.sequence), Some(b.len() as u64));
        assert_eq!(b.last().map(|b| b.values.len()), Some(100));
    }

    #[test]
    fn torn_tail_is_cut_and_damaged_segment_quarantined() {
        let dir = tempfile::tempdir().expect("tempdir");
        {
            let mut s = disk(dir.path(), 64 << 10);
            s.push(round(vec![def(1, "x")], vec![(1, 0.0)]));
            let samples: Vec<(u32, f64)> = (0..200).map(|i| (1, f64::from(i))).collect();
            for _ in 0..20 {
                s.push(round(vec![], samples.clone()));
            }
        }
        let mut segs: Vec<PathBuf> = fs::read_dir(dir.path())
            .expect("dir")
            .map(|e| e.expect("entry").path())
            .filter(|p| p.extension().is_some_and(|x| x == "seg"))
            .collect();
        segs.sort();
        assert!(segs.len() >= 2, "{segs:?}");
        // Flip a byte in the first segment; cut the last one mid-record.
        let mut first = fs::read(&segs[0]).expect("read");
        let mid = first.len() / 2;
        first[mid] ^= 0xff;
        fs::write(&segs[0], first).expect("write");
        let last = segs.last().expect("segments");
        let len = fs::metadata(last).expect("meta").len();
        OpenOptions::new()
            .write(true)
            .open(last)
            .expect("open")
            .set_len(len - 5)
            .expect("truncate");
        let mut s = disk(dir.path(), 64 << 10);
        assert_eq!(s.stats().quarantined_segments.load(Ordering::Relaxed), 1);
        assert!(segs[0].with_extension("corrupt").exists());
        s.welcome(0);
        let b = drain(&mut s);
        assert!(!b.is_empty());
        // Every batch that comes back is whole, and the series is still known.
        assert!(b.iter().all(|b| b.values.len() == 200));
        assert_eq!(s.definitions().len(), 1);
    }

    #[test]
    fn batches_the_disk_refuses_are_counted_when_they_leave_memory() {
        let dir = tempfile::tempdir().expect("tempdir");
        let spool_dir = dir.path().join("spool");
        let mut s = disk(&spool_dir, 1 << 20);
        s.push(round(vec![def(1, "x")], vec![(1, 0.0)]));
        // The directory vanishes (a disk pulled, a mistaken cleanup): the
        // next segment cannot be created.
        fs::remove_dir_all(&spool_dir).expect("remove");
        let samples: Vec<(u32, f64)> = (0..2_000).map(|i| (1, f64::from(i))).collect();
        for _ in 0..(MEMORY_TAIL + 20) {
            s.push(round(vec![], samples.clone()));
        }
        let st = s.stats();
        let dropped = st.dropped_batches.load(Ordering::Relaxed);
        // All that left memory, but for the one or two written to the last segment
        // before the directory went.
        assert!((18..=21).contains(&dropped), "{dropped} dropped");
        assert_eq!(st.dropped_samples.load(Ordering::Relaxed), dropped * 2_000);
        // What is still in memory is still sent.
        s.welcome(0);
        assert!(drain(&mut s).len() >= MEMORY_TAIL);
    }

    #[test]
    fn a_second_agent_on_the_same_spool_is_refused() {
        let dir = tempfile::tempdir().expect("tempdir");
        let _first = disk(dir.path(), 1 << 20);
        let second = Spool::open(&SpoolConfig {
            dir: Some(dir.path().to_path_buf()),
            max_bytes: 1 << 20,
            memory_batches: 8,
        });
        assert!(matches!(second, Err(SpoolError::Locked(_))));
    }

    #[test]
    fn unreadable_state_is_quarantined() {
        let dir = tempfile::tempdir().expect("tempdir");
        fs::write(dir.path().join("state"), "offset=banana\n").expect("write");
        let s = disk(dir.path(), 1 << 20);
        assert!(!s.synced());
        assert!(dir.path().join("state.corrupt").exists());
    }
}
