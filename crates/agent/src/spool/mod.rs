//! The agent's spool: every batch from the moment it is made until the
//! collector acknowledges it, on disk (`agent.spool_dir`) or, without a
//! directory, in a bounded memory buffer.
//!
//! On disk the spool is a directory of segment files (`segments`), each a
//! sequence of records in the shared segment format (`watchpost_segment`;
//! `records` says what they hold): series
//! definitions (every segment begins with all of them, so deleting older
//! segments never loses a definition a newer one needs) and batches, which
//! keep the agent's *local* sequence numbers. A `state` file holds the
//! offset between local and wire sequence numbers (learnt from the first
//! collector that welcomed this spool) and the highest acknowledged local
//! sequence (`state`). Wire series ids are stable across agent restarts
//! (`ids`): a series the spool already defined keeps its id, so batches
//! written by an earlier run replay as they are.
//!
//! Invariants: a batch leaves the spool only when an acknowledgement covers
//! it or when the spool is over its size limit (oldest first, counted); a
//! record that fails its checksum is never sent. A torn last record (the
//! agent was killed mid-write) is cut off; any other unreadable segment is
//! renamed `*.corrupt` (quarantined) and the agent goes on.

mod ids;
mod records;
mod segments;
#[cfg(test)]
#[allow(dead_code)] // shared with the harness; each user needs a part
#[path = "../../../../tests/support/small_disk.rs"]
mod small_disk;
mod state;
#[cfg(test)]
mod tests;

use std::collections::{HashSet, VecDeque};
use std::fs;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use watchpost_proto::v1::{Batch, ClockOffset, SeriesDefinition, SeriesText};

use crate::series::Round;
use ids::WireIds;
use segments::Disk;

/// Batches kept in memory besides the disk (the live end of the stream).
const MEMORY_TAIL: usize = 64;

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

/// Unacknowledged batches and the series definitions they use.
pub struct Spool {
    ids: WireIds,
    next_seq: u64,
    acked: u64,
    /// wire sequence = local sequence + offset, once a collector said where it stands.
    offset: Option<i64>,
    /// This host's clock minus the collector's, as the collector last
    /// measured it; every new batch is stamped with it.
    clock_offset_ms: Option<i64>,
    /// When the offset was measured (the wall clock, this boot's clock).
    clock_at: Option<(i64, crate::time::BootClock)>,
    /// Whether this run has said the offset is beyond the tolerance.
    clock_reported: bool,
    /// The newest batches (all of them without a directory).
    tail: VecDeque<Batch>,
    memory_batches: usize,
    disk: Option<Disk>,
    stats: Arc<SpoolStats>,
    state_dirty: bool,
    /// Batches the disk refused (full, read-only): in the tail only, and
    /// lost, counted, if they leave it before being acknowledged.
    unwritten: HashSet<u64>,
}

/// Reads a segment's bytes as the spool does at start, returning how many
/// whole records it holds (for the fuzz target in `tests/fuzz`).
pub fn check_segment(bytes: &[u8]) -> usize {
    records::decode_all(bytes).0.len()
}

impl Spool {
    /// Opens (or creates) the spool. With a directory, batches left by an
    /// earlier run are loaded for replay, damaged segments quarantined.
    pub fn open(config: &SpoolConfig) -> Result<Spool, SpoolError> {
        let mut spool = Spool {
            ids: WireIds::default(),
            next_seq: 1,
            acked: 0,
            offset: None,
            clock_offset_ms: None,
            clock_at: None,
            clock_reported: false,
            tail: VecDeque::new(),
            memory_batches: config.memory_batches.max(1),
            disk: None,
            stats: Arc::default(),
            state_dirty: false,
            unwritten: HashSet::new(),
        };
        if let Some(dir) = &config.dir {
            fs::create_dir_all(dir).map_err(io_err(dir))?;
            let lock = state::lock(dir)?;
            let state = state::read(dir)?;
            spool.offset = state.offset;
            spool.acked = state.acked;
            spool.clock_offset_ms = state.clock_offset_ms;
            spool.clock_at = state.clock_at.clone();
            spool.carry_clock_offset();
            let (disk, next_seq) = Disk::open(
                dir,
                lock,
                config.max_bytes,
                spool.acked,
                &mut spool.ids,
                &spool.stats,
            )?;
            spool.next_seq = next_seq.max(spool.acked + 1);
            if let Some(first) = disk.first() {
                tracing::info!(dir = %dir.display(), batches = spool.next_seq - first.max(spool.acked + 1),
                    "spool holds batches from an earlier run; they will be replayed");
            }
            spool.disk = Some(disk);
            spool.publish_stats();
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

    /// The statistics shared with the collection thread.
    pub fn stats(&self) -> Arc<SpoolStats> {
        self.stats.clone()
    }

    /// How many series are defined so far (wire ids 1 ..= count).
    pub fn definition_count(&self) -> usize {
        self.ids.count()
    }

    /// The definitions of wire ids `range.start + 1 ..= range.end` (cut
    /// to what is defined), rebuilt from the spool's compact form.
    pub fn definitions(&self, range: std::ops::Range<usize>) -> Vec<SeriesDefinition> {
        self.ids.definitions(range)
    }

    /// Whether a collector has fixed the wire sequence numbers.
    pub fn synced(&self) -> bool {
        self.offset.is_some()
    }

    /// Takes a round: its new series get wire ids (the ids they had in an
    /// earlier run if the spool knows them), its samples become a batch
    /// on disk. Returns the definitions the collector has not seen.
    pub fn push(&mut self, round: Round) -> Vec<SeriesDefinition> {
        let fresh = self.ids.assign(round.definitions);
        let mut batch = Batch {
            sequence: self.next_seq,
            base_timestamp_ms: round.timestamp_ms,
            series_ids: Vec::with_capacity(round.samples.len()),
            values: Vec::with_capacity(round.samples.len()),
            timestamp_offsets_ms: Vec::new(),
            late: false,
            clock_offset: self.clock_offset_ms.map(|offset_ms| ClockOffset { offset_ms }),
            texts: round
                .texts
                .iter()
                .filter_map(|(local, text)| {
                    Some(SeriesText {
                        series_id: self.ids.wire(*local)?,
                        text: text.to_string(),
                    })
                })
                .collect(),
        };
        let with_offsets = round.offsets_ms.len() == round.samples.len();
        for (i, (local, v)) in round.samples.into_iter().enumerate() {
            let Some(wire) = self.ids.wire(local) else {
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
            && let Err(e) = disk.write(&fresh, &self.ids, &batch)
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
            Some(d) => d.first().unwrap_or(self.next_seq),
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

    /// This host's clock minus the collector's, as last measured (kept
    /// across restarts with a directory).
    pub fn clock_offset(&self) -> Option<i64> {
        self.clock_offset_ms
    }

    /// The collector measured this host's clock `offset_ms` off its own,
    /// and rebases what is off by more than `tolerance_ms`: logged once
    /// when the offset crosses the tolerance (and when it is back within).
    pub fn clock_measured(&mut self, offset_ms: i64, tolerance_ms: i64) {
        let over = offset_ms.abs() > tolerance_ms;
        if over != self.clock_reported {
            self.clock_reported = over;
            let offset = watchpost_model::format_offset(offset_ms);
            if over {
                tracing::warn!(%offset, tolerance_ms,
                    "the collector measures this host's clock off its own: it rebases this agent's timestamps; set the clock right (NTP)");
            } else {
                tracing::info!(%offset, "the collector measures this host's clock right again");
            }
        }
        self.set_clock_offset(offset_ms);
    }

    /// The collector measured this host's clock `offset_ms` off its own:
    /// batches made from now on carry it.
    pub fn set_clock_offset(&mut self, offset_ms: i64) {
        // Measurements jitter by milliseconds: the state file is rewritten
        // only when the offset moves by a second or more.
        if self
            .clock_offset_ms
            .is_none_or(|c| (c - offset_ms).abs() >= 1_000)
        {
            self.state_dirty = true;
            self.clock_at = crate::time::boot_clock().map(|b| (crate::time::now_ms(), b));
        }
        self.clock_offset_ms = Some(offset_ms);
    }

    /// At start: the offset an earlier run measured holds only if the wall
    /// clock was not set since. Within one boot, the step it was set by is
    /// known (the boot clock never jumps) and the offset follows it; after
    /// a reboot the old offset is kept until the collector measures anew.
    fn carry_clock_offset(&mut self) {
        let (Some(offset), Some((wall, boot))) = (self.clock_offset_ms, &self.clock_at) else {
            return;
        };
        let Some(step) = crate::time::wall_clock_step(*wall, boot) else {
            return;
        };
        if step.abs() >= 1_000 {
            tracing::info!(
                step_ms = step,
                was_ms = offset,
                now_ms = offset + step,
                "this host's wall clock was set since the collector last measured it: the offset follows"
            );
            self.clock_offset_ms = Some(offset + step);
            self.clock_at = crate::time::boot_clock().map(|b| (crate::time::now_ms(), b));
            self.state_dirty = true;
        }
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
        let state = state::State {
            offset: self.offset,
            acked: self.acked,
            clock_offset_ms: self.clock_offset_ms,
            clock_at: self.clock_at.clone(),
        };
        match state::write(&disk.dir, state, sync) {
            Ok(()) => self.state_dirty = false,
            Err(e) => {
                tracing::error!(file = %disk.dir.join("state").display(), error = %e, "cannot write the spool state")
            }
        }
    }
}
