//! Reading the journal from a position while it is written, for what ships
//! the samples elsewhere (`remote_write`): the writer publishes how far the
//! journal is durable ([`Durable`]), a follower reads whole records up to
//! there and no further (never a sample that was not yet synced, so never
//! one a crash could take back), and a [`Hold`] keeps the segments a
//! follower has not passed from being deleted with the hot window, up to
//! its own age limit.

use std::collections::HashMap;
use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use serde::{Deserialize, Serialize};
use watchpost_segment::HEADER_BYTES;

use super::codec::{KIND_BATCH, KIND_SERIES, MAX_RECORD_BYTES, Reader, unzigzag};

/// A place in the journal: a segment and a byte offset in it, always at a
/// record's start.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Position {
    /// The segment's number (`<n>.wal`).
    pub segment: u64,
    /// Bytes into it.
    pub offset: u64,
}

/// How far the journal is on disk, published by the writer after each sync.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Durable {
    /// The end of the last synced record.
    pub end: Position,
    /// Samples synced since the collector started.
    pub appended: u64,
    /// The newest sample time synced (ms; `i64::MIN`: none yet).
    pub newest_ms: i64,
}

/// A series as the journal names it.
#[derive(Debug, PartialEq, Eq)]
pub struct Series {
    /// The store's series number.
    pub id: u32,
    /// Metric name.
    pub metric: String,
    /// Labels, sorted by name, `host` included.
    pub labels: Vec<(String, String)>,
}

/// What one read brought.
#[derive(Debug, Default)]
pub struct Chunk {
    /// The samples whose series the caller keeps, in journal order (each
    /// series' in time order).
    pub samples: Vec<(Arc<Series>, i64, f64)>,
    /// Samples read past, kept or not.
    pub passed: u64,
    /// Newest sample time read past (ms; `i64::MIN`: none).
    pub newest_ms: i64,
    /// Segments found missing on the way (deleted before they were read:
    /// older than the follower's hold allows).
    pub missing_segments: u64,
}

/// Which segments followers still need: the writer keeps a segment past
/// the hot window while a hold at or before it is younger than its limit.
#[derive(Debug, Default)]
pub struct Holds {
    held: Mutex<HashMap<String, (u64, i64)>>,
}

impl Holds {
    /// Whether segment `number`, whose newest sample is `newest_ms`, is
    /// still needed at `now_ms`.
    pub(super) fn keeps(&self, number: u64, newest_ms: i64, now_ms: i64) -> bool {
        let held = self.held.lock().unwrap_or_else(|p| p.into_inner());
        held.values()
            .any(|(from, max_age)| *from <= number && newest_ms >= now_ms.saturating_sub(*max_age))
    }
}

/// One follower's claim on the segments from its position on.
pub struct Hold {
    holds: Arc<Holds>,
    name: String,
}

impl Hold {
    /// Claims the segments from `from` on for `name`, for at most
    /// `max_age_ms` past their newest sample.
    pub(super) fn new(holds: Arc<Holds>, name: &str, from: u64, max_age_ms: i64) -> Hold {
        holds
            .held
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(name.to_string(), (from, max_age_ms));
        Hold {
            holds,
            name: name.to_string(),
        }
    }

    /// The follower has passed every segment before `segment`.
    pub fn advance(&self, segment: u64) {
        if let Some(h) = self
            .holds
            .held
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get_mut(&self.name)
        {
            h.0 = h.0.max(segment);
        }
    }
}

impl Drop for Hold {
    fn drop(&mut self) {
        self.holds
            .held
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(&self.name);
    }
}

/// Why the journal could not be followed.
#[derive(Debug, thiserror::Error)]
pub enum FollowError {
    /// A segment could not be read.
    #[error("journal {path}: {source}")]
    Io {
        /// The segment or the folder.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// A record failed its checksum or made no sense.
    #[error("journal {path} at byte {offset}: {problem}")]
    Damaged {
        /// The segment.
        path: PathBuf,
        /// Where.
        offset: u64,
        /// What.
        problem: String,
    },
}

/// Reads the journal in order from a position.
pub struct Follower {
    dir: PathBuf,
    at: Position,
    file: Option<File>,
    /// The current segment's series definitions.
    series: HashMap<u32, Arc<Series>>,
    buf: Vec<u8>,
}

fn seg_path(dir: &Path, n: u64) -> PathBuf {
    dir.join(format!("{n:016}.wal"))
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> FollowError + '_ {
    move |source| FollowError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// Reading stops after the first record past this many bytes.
const READ_BYTES: u64 = 4 << 20;

impl Follower {
    /// A follower of the journal in `dir` at `from` (a record's start);
    /// the series defined before `from` in its segment are read first.
    pub fn open(dir: &Path, from: Position) -> Result<Follower, FollowError> {
        let mut f = Follower {
            dir: dir.to_path_buf(),
            at: Position {
                segment: from.segment,
                offset: 0,
            },
            file: None,
            series: HashMap::new(),
            buf: Vec::new(),
        };
        if from.offset > 0 {
            // Only the definitions are wanted from the part already sent.
            let path = seg_path(dir, from.segment);
            match File::open(&path) {
                Ok(file) => {
                    let mut bytes = Vec::new();
                    file.take(from.offset)
                        .read_to_end(&mut bytes)
                        .map_err(io(&path))?;
                    f.scan(&bytes, &path, &mut |_, _, _| {}, &|_| false, &|_| false)?;
                    f.at.offset = from.offset;
                }
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => return Err(io(&path)(e)),
            }
        }
        Ok(f)
    }

    /// Where the next read starts.
    pub fn position(&self) -> Position {
        self.at
    }

    /// Reads whole records from the position up to `durable` (never past
    /// it), stopping after about `max_samples` kept samples; only samples
    /// of series `keep` accepts are returned. Segments between the position
    /// and `durable` that no longer exist are skipped and counted.
    pub fn read(
        &mut self,
        durable: Position,
        max_samples: usize,
        keep: &dyn Fn(&Series) -> bool,
    ) -> Result<Chunk, FollowError> {
        let mut chunk = Chunk {
            newest_ms: i64::MIN,
            ..Chunk::default()
        };
        while self.at < durable && chunk.samples.len() < max_samples {
            let path = seg_path(&self.dir, self.at.segment);
            if self.file.is_none() {
                match File::open(&path) {
                    Ok(f) => self.file = Some(f),
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                        if self.at.segment < durable.segment {
                            if self.at != Position::default() {
                                chunk.missing_segments += 1;
                            }
                            self.next_segment(durable.segment, &mut chunk)?;
                            continue;
                        }
                        return Err(io(&path)(e));
                    }
                    Err(e) => return Err(io(&path)(e)),
                }
            }
            let file = self.file.as_mut().expect("opened above");
            // A closed segment is read to its end; the live one to what
            // is synced.
            let end = if self.at.segment < durable.segment {
                file.metadata().map_err(io(&path))?.len()
            } else {
                durable.offset
            };
            if self.at.offset >= end {
                if self.at.segment < durable.segment {
                    self.next_segment(durable.segment, &mut chunk)?;
                    continue;
                }
                break;
            }
            let want = (end - self.at.offset).min(READ_BYTES);
            file.seek(SeekFrom::Start(self.at.offset)).map_err(io(&path))?;
            let mut buf = std::mem::take(&mut self.buf);
            buf.clear();
            file.by_ref()
                .take(want)
                .read_to_end(&mut buf)
                .map_err(io(&path))?;
            // Complete the last record if the read cut it.
            if let Some(short) = record_shortfall(&buf)
                && self.at.offset + (buf.len() + short) as u64 <= end
            {
                let had = buf.len();
                buf.resize(had + short, 0);
                file.read_exact(&mut buf[had..]).map_err(io(&path))?;
            }
            let room = max_samples - chunk.samples.len();
            let before = self.at.offset;
            let samples = &mut chunk.samples;
            let (passed, newest) = (&mut chunk.passed, &mut chunk.newest_ms);
            let used = self.scan(
                &buf,
                &path,
                &mut |series, ts, v| {
                    *passed += 1;
                    *newest = (*newest).max(ts);
                    if let Some(s) = series {
                        samples.push((s, ts, v));
                    }
                },
                &|kept| kept >= room,
                keep,
            );
            self.buf = buf;
            let used = used?;
            self.at.offset = before + used as u64;
            if used == 0 {
                if self.at.segment < durable.segment {
                    // A closed segment that ends in a torn record (the
                    // collector stopped mid-write): it is never finished.
                    self.next_segment(durable.segment, &mut chunk)?;
                    continue;
                }
                // Synced bytes are whole records: this is damage.
                return Err(FollowError::Damaged {
                    path,
                    offset: self.at.offset,
                    problem: "not a whole record where the synced journal says one starts".into(),
                });
            }
        }
        Ok(chunk)
    }

    /// Gives up the rest of the current segment (after damage was
    /// reported): reading goes on with the next one.
    pub fn skip_segment(&mut self, durable: Position) {
        let mut chunk = Chunk::default();
        let _ = self.next_segment(durable.segment, &mut chunk);
    }

    fn next_segment(&mut self, last: u64, chunk: &mut Chunk) -> Result<(), FollowError> {
        self.file = None;
        self.series.clear();
        let mut n = self.at.segment + 1;
        while n < last && !seg_path(&self.dir, n).exists() {
            chunk.missing_segments += 1;
            n += 1;
        }
        self.at = Position {
            segment: n,
            offset: 0,
        };
        Ok(())
    }

    /// Reads the whole records at the start of `bytes`: series definitions
    /// are remembered, each batch sample goes to `sample`, with its series
    /// when `keep` accepts it. Stops after the record on which
    /// `enough(kept so far)` turns true. Returns the bytes used.
    fn scan(
        &mut self,
        bytes: &[u8],
        path: &Path,
        sample: &mut dyn FnMut(Option<Arc<Series>>, i64, f64),
        enough: &dyn Fn(usize) -> bool,
        keep: &dyn Fn(&Series) -> bool,
    ) -> Result<usize, FollowError> {
        let mut at = 0;
        let mut kept = 0;
        while let Some(len) = whole_record(&bytes[at..]) {
            let record = &bytes[at..at + len];
            let base = self.at.offset + at as u64;
            let damaged = |problem: String| FollowError::Damaged {
                path: path.to_path_buf(),
                offset: base,
                problem,
            };
            let mut parsed = Ok(());
            if let Some(d) = watchpost_segment::read(record, MAX_RECORD_BYTES, |kind, body| {
                parsed = self.record(kind, body, sample, &mut kept, keep);
                Ok(())
            }) {
                return Err(damaged(d.problem));
            }
            parsed.map_err(damaged)?;
            at += len;
            if enough(kept) {
                break;
            }
        }
        Ok(at)
    }

    fn record(
        &mut self,
        kind: u8,
        body: &[u8],
        sample: &mut dyn FnMut(Option<Arc<Series>>, i64, f64),
        kept: &mut usize,
        keep: &dyn Fn(&Series) -> bool,
    ) -> Result<(), String> {
        let mut r = Reader { bytes: body, at: 0 };
        match kind {
            KIND_SERIES => {
                let id = r.varint()? as u32;
                let metric = r.str()?.to_string();
                let n = r.varint()? as usize;
                let mut labels = Vec::with_capacity(n.min(64));
                for _ in 0..n {
                    labels.push((r.str()?.to_string(), r.str()?.to_string()));
                }
                self.series.insert(id, Arc::new(Series { id, metric, labels }));
            }
            KIND_BATCH => {
                let _agent = r.str()?;
                let _seq = r.varint()?;
                let base = r.i64()?;
                for _ in 0..r.varint()? {
                    let id = r.varint()? as u32;
                    let ts = base.wrapping_add(unzigzag(r.varint()?));
                    let v = f64::from_bits(r.u64()?);
                    let s = self.series.get(&id).ok_or_else(|| {
                        format!("batch refers to series {id}, never defined in this segment")
                    })?;
                    if keep(s) {
                        *kept += 1;
                        sample(Some(s.clone()), ts, v);
                    } else {
                        sample(None, ts, v);
                    }
                }
            }
            _ => {} // checkpoints: sequences are the ingest's business
        }
        Ok(())
    }
}

/// The length of the whole record at the start of `bytes`, if it is there.
fn whole_record(bytes: &[u8]) -> Option<usize> {
    let len = u32::from_le_bytes(bytes.get(..4)?.try_into().ok()?) as usize;
    let total = HEADER_BYTES + len;
    (len > 0 && bytes.len() >= total).then_some(total)
}

/// How many bytes the last, cut record of `bytes` lacks (none when `bytes`
/// ends on a record boundary).
fn record_shortfall(bytes: &[u8]) -> Option<usize> {
    let mut at = 0;
    while at < bytes.len() {
        let Some(h) = bytes.get(at..at + 4) else {
            return Some(at + HEADER_BYTES - bytes.len());
        };
        let len = u32::from_le_bytes(h.try_into().ok()?) as usize;
        if len == 0 || len > MAX_RECORD_BYTES {
            return None; // damage: scanning names it
        }
        let total = HEADER_BYTES + len;
        if at + total > bytes.len() {
            return Some(at + total - bytes.len());
        }
        at += total;
    }
    None
}
