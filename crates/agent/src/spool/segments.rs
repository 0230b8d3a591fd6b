//! The spool's segment files on disk: one is open for appending; each
//! begins with every definition known (so deleting older segments never
//! loses one a newer one needs); a segment is deleted once every batch in
//! it is acknowledged, or, past the size limit, oldest first (counted). At
//! start the segments left by an earlier run are read back, a torn last
//! one cut and a damaged earlier one quarantined (`watchpost_segment`).

use std::collections::VecDeque;
use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;

use watchpost_proto::v1::{Batch, SeriesDefinition, SeriesDefinitions};
use watchpost_segment::Recovery;

use super::ids::WireIds;
use super::records::{self, Record};
use super::{SpoolError, SpoolStats, io_err};

/// Most definitions in one record when a new segment restates them all.
const DEFINITIONS_PER_RECORD: usize = 2_000;

pub(super) struct Segment {
    path: PathBuf,
    pub first: u64,
    last: u64,
    bytes: u64,
    samples: u64,
}

pub(super) struct Disk {
    pub dir: PathBuf,
    _lock: File,
    segments: VecDeque<Segment>,
    pub current: Option<File>,
    segment_max: u64,
    max_bytes: u64,
    pub total_bytes: u64,
    /// A segment read back for replay: its first sequence and its batches.
    replay: Option<(u64, VecDeque<Batch>)>,
}

fn segment_name(first: u64) -> String {
    format!("{first:020}.seg")
}

impl Disk {
    /// Reads back the segments an earlier run left in `dir` (held by
    /// `lock`): definitions go to `ids`, segments wholly acknowledged
    /// (up to `acked`) are deleted. Returns the disk and the next local
    /// sequence number after what it holds.
    pub(super) fn open(
        dir: &Path,
        lock: File,
        max_bytes: u64,
        acked: u64,
        ids: &mut WireIds,
        stats: &SpoolStats,
    ) -> Result<(Disk, u64), SpoolError> {
        let names = watchpost_segment::list(dir, "seg").map_err(io_err(dir))?;
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
        let mut next_seq = 1;
        let count = names.len();
        for (i, path) in names.into_iter().enumerate() {
            let bytes = fs::read(&path).map_err(io_err(&path))?;
            let (records, damage) = records::decode_all(&bytes);
            let mut good_len = bytes.len();
            match watchpost_segment::recover(&path, i + 1 == count, damage).map_err(io_err(&path))? {
                Recovery::Intact => {}
                Recovery::Cut(d) => {
                    // The agent was stopped mid-write: keep what is whole.
                    tracing::warn!(file = %path.display(), offset = d.offset, problem = %d.problem, "spool segment ends in a torn record: cut there");
                    good_len = d.offset;
                }
                Recovery::Quarantined { damage: d, moved_to } => {
                    tracing::error!(file = %path.display(), offset = d.offset, problem = %d.problem, moved_to = %moved_to.display(),
                        "spool segment damaged: quarantined, its batches are lost");
                    stats.quarantined_segments.fetch_add(1, Ordering::Relaxed);
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
                            ids.learn(def);
                        }
                    }
                    Record::Batch(b) => {
                        seg.first = seg.first.min(b.sequence);
                        seg.last = seg.last.max(b.sequence);
                        seg.samples += b.series_ids.len() as u64;
                    }
                }
            }
            if seg.first == u64::MAX || seg.last <= acked {
                fs::remove_file(&path).map_err(io_err(&path))?;
                continue;
            }
            next_seq = next_seq.max(seg.last + 1);
            disk.total_bytes += seg.bytes;
            disk.segments.push_back(seg);
        }
        Ok((disk, next_seq))
    }

    /// The first local sequence on disk, if any.
    pub(super) fn first(&self) -> Option<u64> {
        self.segments.front().map(|s| s.first)
    }

    pub(super) fn write(
        &mut self,
        fresh: &[SeriesDefinition],
        all: &WireIds,
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
            // Restated in records of a bounded size, so neither writing
            // nor reading one back needs every definition at once.
            for start in (0..all.count()).step_by(DEFINITIONS_PER_RECORD) {
                let series = all.definitions(start..start + DEFINITIONS_PER_RECORD);
                records::append_definitions(&mut out, &SeriesDefinitions { series });
            }
        } else if !fresh.is_empty() {
            records::append_definitions(
                &mut out,
                &SeriesDefinitions {
                    series: fresh.to_vec(),
                },
            );
        }
        records::append_batch(&mut out, batch);
        let f = self.current.as_mut().expect("opened above");
        if let Err(e) = f.write_all(&out) {
            self.cut_back();
            return Err(e);
        }
        let seg = self.segments.back_mut().expect("pushed above");
        seg.last = batch.sequence;
        seg.bytes += out.len() as u64;
        seg.samples += batch.series_ids.len() as u64;
        self.total_bytes += out.len() as u64;
        Ok(())
    }

    /// After a failed write (the disk is full): the current segment is cut
    /// back to its last whole record, so no torn record ever stands before
    /// good ones, or removed if it holds none; the next write starts a new
    /// segment, with every definition (those of the failed write too).
    fn cut_back(&mut self) {
        let Some(f) = self.current.take() else {
            return;
        };
        let Some(seg) = self.segments.back() else {
            return;
        };
        if seg.bytes == 0 {
            drop(f);
            if let Some(seg) = self.segments.pop_back()
                && let Err(e) = fs::remove_file(&seg.path)
            {
                tracing::warn!(file = %seg.path.display(), error = %e, "cannot remove an empty spool segment");
            }
        } else if let Err(e) = f.set_len(seg.bytes) {
            tracing::error!(file = %seg.path.display(), error = %e, "cannot cut a spool segment back after a failed write");
        }
    }

    /// Deletes the oldest segments past the size limit; returns the
    /// unacknowledged batches and samples they held.
    pub(super) fn enforce_limit(&mut self, acked: u64) -> (u64, u64) {
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

    pub(super) fn drop_acked(&mut self, acked: u64) {
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
    pub(super) fn read(&mut self, want: u64) -> Option<Batch> {
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
            let (records, damage) = records::decode_all(&bytes);
            if let Some(d) = damage {
                tracing::error!(file = %path.display(), offset = d.offset, problem = %d.problem, "spool segment damaged while replaying: the rest of it is skipped");
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
