//! The history's files: each written whole under a temporary name, synced
//! and renamed into place, never changed afterwards, deleted whole when it
//! expires.
//!
//! A file is records in the shared segment format followed by an 8-byte
//! trailer:
//! - *header* (first): format version, slot unit (ms), the pass it was
//!   written by (or the newest pass a day file absorbed);
//! - *block*, one per series: the series' key hash, the newest sample
//!   rolled up into it (`through`), the packed run (`codec`);
//! - *index* (last record): `(hash, offset, through)` per block, 24 bytes
//!   each, sorted by hash, so one series is found by binary search with a
//!   few small reads;
//! - trailer: the index record's offset (u64, little-endian).
//!
//! Names say what a file holds, so a quarantined one still tells which
//! span it took with it:
//! - `pass-<pass>-<first>-<last>.wph`: the minutes one pass rolled up
//!   (times as UTC `YYYYMMDDTHHMM`, first and last minute);
//! - `day-<YYYYMMDD>-<pass>.min` and `.hour`: a UTC day sealed, every
//!   pass up to `<pass>` merged into one block per series, at one minute
//!   and at one hour.

use std::fs::{self, File};
use std::io::{BufWriter, Write};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use watchpost_segment::body::{Reader, put_varint};

use super::codec::{self, Agg};

const VERSION: u64 = 1;
const KIND_HEADER: u8 = 1;
const KIND_BLOCK: u8 = 2;
const KIND_INDEX: u8 = 3;
const ENTRY: usize = 24;
/// A block longer than this is taken as damage, not allocated.
const MAX_RECORD: usize = 1 << 30;

/// What a file holds, from its name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Kind {
    /// One pass's minutes.
    Pass {
        /// The pass.
        pass: u64,
    },
    /// A sealed day at minute resolution.
    DayMinutes {
        /// Days since 1970-01-01 (UTC).
        day: i64,
        /// The newest pass merged in.
        pass: u64,
    },
    /// A sealed day at hour resolution.
    DayHours {
        /// Days since 1970-01-01 (UTC).
        day: i64,
        /// The newest pass merged in.
        pass: u64,
    },
}

/// A history file found in the directory.
#[derive(Debug, Clone)]
pub struct Named {
    /// Where it is.
    pub path: PathBuf,
    /// What it holds.
    pub kind: Kind,
    /// First and last millisecond its slots cover.
    pub span: (i64, i64),
    /// Whether it was quarantined (`*.corrupt`): its span is missing.
    pub corrupt: bool,
}

const DAY_MS: i64 = 86_400_000;

fn minute_name(ms: i64) -> String {
    jiff::Timestamp::from_millisecond(ms)
        .map(|t| t.strftime("%Y%m%dT%H%M").to_string())
        .unwrap_or_else(|_| "invalid".into())
}

fn parse_minute(s: &str) -> Option<i64> {
    let t = jiff::civil::DateTime::strptime("%Y%m%dT%H%M", s).ok()?;
    Some(
        t.to_zoned(jiff::tz::TimeZone::UTC)
            .ok()?
            .timestamp()
            .as_millisecond(),
    )
}

fn day_name(day: i64) -> String {
    minute_name(day * DAY_MS)[..8].to_string()
}

fn parse_day(s: &str) -> Option<i64> {
    Some(parse_minute(&format!("{s}T0000"))?.div_euclid(DAY_MS))
}

/// The name of pass `pass`'s file, whose minutes run from `first` to `last` (ms).
pub fn pass_name(pass: u64, first: i64, last: i64) -> String {
    format!("pass-{pass:010}-{}-{}.wph", minute_name(first), minute_name(last))
}

/// The name of day `day`'s sealed file at `unit_ms` (minute or hour).
pub fn day_file_name(day: i64, pass: u64, unit_ms: i64) -> String {
    let ext = if unit_ms == super::HOUR_MS { "hour" } else { "min" };
    format!("day-{}-{pass:010}.{ext}", day_name(day))
}

/// Reads a file name; `None` for names that are not the history's.
pub fn parse_name(path: &Path) -> Option<Named> {
    let name = path.file_name()?.to_str()?;
    let (name, corrupt) = match name.strip_suffix(".corrupt") {
        Some(n) => (n, true),
        None => (name, false),
    };
    let (stem, ext) = name.rsplit_once('.')?;
    let parts: Vec<&str> = stem.split('-').collect();
    let (kind, span) = match (parts.as_slice(), ext) {
        (["pass", p, a, b], "wph") => {
            let pass = p.parse().ok()?;
            let first = parse_minute(a)?;
            let last = parse_minute(b)? + super::MINUTE_MS - 1;
            (Kind::Pass { pass }, (first, last))
        }
        (["day", d, p], "min" | "hour") => {
            let day = parse_day(d)?;
            let pass = p.parse().ok()?;
            let span = (day * DAY_MS, (day + 1) * DAY_MS - 1);
            if ext == "min" {
                (Kind::DayMinutes { day, pass }, span)
            } else {
                (Kind::DayHours { day, pass }, span)
            }
        }
        _ => return None,
    };
    Some(Named {
        path: path.to_path_buf(),
        kind,
        span,
        corrupt,
    })
}

/// Every history file in `dir`, quarantined ones included, in name order.
pub fn list(dir: &Path) -> std::io::Result<Vec<Named>> {
    let mut out: Vec<Named> = fs::read_dir(dir)?
        .filter_map(|e| e.ok())
        .filter_map(|e| parse_name(&e.path()))
        .collect();
    out.sort_by(|a, b| a.path.cmp(&b.path));
    Ok(out)
}

/// Writes one file: blocks in any order, then [`FileWriter::finish`].
pub struct FileWriter {
    out: BufWriter<File>,
    tmp: PathBuf,
    at: u64,
    index: Vec<(u64, u64, i64)>,
    record: Vec<u8>,
}

impl FileWriter {
    /// Starts `dir/<tmp name>` for a file of `unit_ms` slots.
    pub fn create(dir: &Path, unit_ms: i64, pass: u64) -> std::io::Result<FileWriter> {
        let tmp = dir.join(format!(".writing-{pass}-{unit_ms}.part"));
        let file = File::create(&tmp)?;
        let mut w = FileWriter {
            out: BufWriter::with_capacity(1 << 20, file),
            tmp,
            at: 0,
            index: Vec::new(),
            record: Vec::new(),
        };
        let mut body = Vec::new();
        put_varint(&mut body, VERSION);
        put_varint(&mut body, unit_ms as u64);
        put_varint(&mut body, pass);
        w.record(KIND_HEADER, &body)?;
        Ok(w)
    }

    fn record(&mut self, kind: u8, body: &[u8]) -> std::io::Result<u64> {
        self.record.clear();
        let start = watchpost_segment::begin(&mut self.record, kind);
        self.record.extend_from_slice(body);
        watchpost_segment::end(&mut self.record, start);
        let offset = self.at;
        self.out.write_all(&self.record)?;
        self.at += self.record.len() as u64;
        Ok(offset)
    }

    /// Adds a series' run (non-empty, slot-ordered, one block per series).
    pub fn block(&mut self, hash: u64, through: i64, run: &[(i64, Agg)]) -> std::io::Result<()> {
        let mut body = Vec::with_capacity(32 + run.len() * 4);
        body.extend_from_slice(&hash.to_le_bytes());
        body.extend_from_slice(&through.to_le_bytes());
        codec::encode(run, &mut body);
        let offset = self.record(KIND_BLOCK, &body)?;
        self.index.push((hash, offset, through));
        Ok(())
    }

    /// Blocks written so far.
    pub fn blocks(&self) -> usize {
        self.index.len()
    }

    /// Writes the index and trailer, syncs, and renames the file to
    /// `dir/name`; the directory is synced so the name is durable.
    pub fn finish(mut self, name: &str) -> std::io::Result<u64> {
        self.index.sort_unstable_by_key(|e| (e.0, e.1));
        let mut body = Vec::with_capacity(self.index.len() * ENTRY);
        for (h, o, t) in &self.index {
            body.extend_from_slice(&h.to_le_bytes());
            body.extend_from_slice(&o.to_le_bytes());
            body.extend_from_slice(&t.to_le_bytes());
        }
        let offset = self.record(KIND_INDEX, &body)?;
        self.out.write_all(&offset.to_le_bytes())?;
        let size = self.at + 8;
        let file = self.out.into_inner().map_err(|e| e.into_error())?;
        file.sync_all()?;
        drop(file);
        let dir = self.tmp.parent().unwrap_or(Path::new(".")).to_path_buf();
        fs::rename(&self.tmp, dir.join(name))?;
        File::open(&dir)?.sync_all()?;
        Ok(size)
    }

    /// Gives up: the temporary file goes.
    pub fn abandon(self) {
        let tmp = self.tmp.clone();
        drop(self);
        let _ = fs::remove_file(tmp);
    }
}

/// An open history file: its header read and its index checked.
pub struct HistoryFile {
    file: File,
    /// Slot unit (ms).
    pub unit_ms: i64,
    /// The pass that wrote it (or the newest a day file absorbed).
    pub pass: u64,
    index_at: u64,
    entries: u64,
}

fn damaged(path: &Path, what: impl std::fmt::Display) -> String {
    format!("{}: {what}", path.display())
}

fn read_record(file: &File, path: &Path, at: u64, kind: u8) -> Result<Vec<u8>, String> {
    let mut head = [0u8; watchpost_segment::HEADER_BYTES];
    file.read_exact_at(&mut head, at)
        .map_err(|e| damaged(path, format!("record at {at}: {e}")))?;
    let len = u32::from_le_bytes([head[0], head[1], head[2], head[3]]) as usize;
    if len == 0 || len > MAX_RECORD {
        return Err(damaged(
            path,
            format!("record at {at} has an impossible length {len}"),
        ));
    }
    let mut bytes = vec![0u8; watchpost_segment::HEADER_BYTES + len];
    file.read_exact_at(&mut bytes, at)
        .map_err(|e| damaged(path, format!("record at {at}: {e}")))?;
    let mut body = None;
    let problem = watchpost_segment::read(&bytes, MAX_RECORD, |k, b| {
        if k != kind {
            return Err(format!("record kind {k} where {kind} belongs"));
        }
        body = Some(b.to_vec());
        Ok(())
    });
    match (problem, body) {
        (None, Some(b)) => Ok(b),
        (Some(d), _) => Err(damaged(path, format!("record at {at}: {}", d.problem))),
        (None, None) => Err(damaged(path, format!("no record at {at}"))),
    }
}

impl HistoryFile {
    /// Opens `path`, reading its header and checking its whole index.
    pub fn open(path: &Path) -> Result<HistoryFile, String> {
        let file = File::open(path).map_err(|e| damaged(path, e))?;
        let size = file.metadata().map_err(|e| damaged(path, e))?.len();
        if size < 8 {
            return Err(damaged(path, "too short for a history file"));
        }
        let mut trailer = [0u8; 8];
        file.read_exact_at(&mut trailer, size - 8)
            .map_err(|e| damaged(path, e))?;
        let index_at = u64::from_le_bytes(trailer);
        let header = read_record(&file, path, 0, KIND_HEADER)?;
        let mut r = Reader::new(&header);
        let version = r.varint()?;
        if version != VERSION {
            return Err(damaged(
                path,
                format!("format version {version}, this collector reads {VERSION}"),
            ));
        }
        let unit_ms = r.varint()? as i64;
        let pass = r.varint()?;
        if index_at >= size {
            return Err(damaged(path, "trailer points past the end"));
        }
        let index = read_record(&file, path, index_at, KIND_INDEX)?;
        if index.len() % ENTRY != 0 {
            return Err(damaged(
                path,
                "index of a length that is no whole number of entries",
            ));
        }
        Ok(HistoryFile {
            file,
            unit_ms,
            pass,
            index_at: index_at + watchpost_segment::HEADER_BYTES as u64 + 1,
            entries: (index.len() / ENTRY) as u64,
        })
    }

    fn entry(&self, i: u64) -> Result<(u64, u64, i64), String> {
        let mut e = [0u8; ENTRY];
        self.file
            .read_exact_at(&mut e, self.index_at + i * ENTRY as u64)
            .map_err(|e| e.to_string())?;
        let word = |k: usize| u64::from_le_bytes(e[k..k + 8].try_into().expect("8 bytes"));
        Ok((word(0), word(8), word(16) as i64))
    }

    /// Series in the file.
    pub fn len(&self) -> u64 {
        self.entries
    }

    /// Whether it holds no series.
    pub fn is_empty(&self) -> bool {
        self.entries == 0
    }

    /// Every index entry `(hash, offset, through)` in hash order, read in
    /// pieces.
    pub fn entries(&self) -> impl Iterator<Item = Result<(u64, u64, i64), String>> + '_ {
        const PIECE: u64 = 4096;
        let mut buf = Vec::new();
        let mut next = 0u64;
        std::iter::from_fn(move || {
            if next >= self.entries {
                return None;
            }
            let at = (next % PIECE) as usize;
            if at == 0 {
                let n = (self.entries - next).min(PIECE) as usize;
                buf.resize(n * ENTRY, 0);
                if let Err(e) = self
                    .file
                    .read_exact_at(&mut buf, self.index_at + next * ENTRY as u64)
                {
                    next = self.entries;
                    return Some(Err(e.to_string()));
                }
            }
            let e = &buf[at * ENTRY..(at + 1) * ENTRY];
            let word = |k: usize| u64::from_le_bytes(e[k..k + 8].try_into().expect("8 bytes"));
            next += 1;
            Some(Ok((word(0), word(8), word(16) as i64)))
        })
    }

    /// The offsets of the blocks of series `hash` (more than one only if
    /// two series' keys hash alike).
    pub fn find(&self, hash: u64) -> Result<Vec<(u64, i64)>, String> {
        let (mut lo, mut hi) = (0u64, self.entries);
        while lo < hi {
            let mid = lo + (hi - lo) / 2;
            if self.entry(mid)?.0 < hash {
                lo = mid + 1;
            } else {
                hi = mid;
            }
        }
        let mut out = Vec::new();
        let mut i = lo;
        while i < self.entries {
            let (h, o, t) = self.entry(i)?;
            if h != hash {
                break;
            }
            out.push((o, t));
            i += 1;
        }
        Ok(out)
    }

    /// The run of the block at `offset`, appended to `out`; checks that it
    /// belongs to `hash`.
    pub fn read_block(
        &self,
        path: &Path,
        offset: u64,
        hash: u64,
        out: &mut Vec<(i64, Agg)>,
    ) -> Result<(), String> {
        let body = read_record(&self.file, path, offset, KIND_BLOCK)?;
        if body.len() < 16 {
            return Err(damaged(path, format!("block at {offset} too short")));
        }
        let h = u64::from_le_bytes(body[..8].try_into().expect("8 bytes"));
        if h != hash {
            return Err(damaged(
                path,
                format!("index entry for {hash:016x} points at a block of {h:016x}"),
            ));
        }
        codec::decode(&body[16..], out).map_err(|e| damaged(path, format!("block at {offset}: {e}")))
    }

    /// Series `hash`'s slots, merged over its blocks.
    pub fn series(&self, path: &Path, hash: u64, out: &mut Vec<(i64, Agg)>) -> Result<(), String> {
        for (offset, _) in self.find(hash)? {
            let mut run = Vec::new();
            self.read_block(path, offset, hash, &mut run)?;
            codec::merge_runs(out, &run);
        }
        Ok(())
    }
}

/// Renames a damaged file `*.corrupt` so nothing reads it again; its name
/// keeps saying which span it held.
pub fn quarantine(path: &Path, problem: &str) -> Option<PathBuf> {
    if path.extension().is_some_and(|e| e == "corrupt") {
        return None;
    }
    let mut to = path.as_os_str().to_owned();
    to.push(".corrupt");
    let to = PathBuf::from(to);
    match fs::rename(path, &to) {
        Ok(()) => {
            tracing::error!(file = %path.display(), moved_to = %to.display(), problem, "history file damaged: quarantined, its span is missing from queries");
            Some(to)
        }
        Err(e) => {
            tracing::error!(file = %path.display(), error = %e, problem, "history file damaged and cannot be renamed");
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        let first = 1_764_547_200_000; // 2025-12-01T00:00Z
        let n = pass_name(7, first, first + 29 * 60_000);
        assert_eq!(n, "pass-0000000007-20251201T0000-20251201T0029.wph");
        let p = parse_name(Path::new(&n)).expect("ours");
        assert_eq!(p.kind, Kind::Pass { pass: 7 });
        assert_eq!(p.span, (first, first + 30 * 60_000 - 1));
        let d = day_file_name(first / DAY_MS, 9, super::super::HOUR_MS);
        assert_eq!(d, "day-20251201-0000000009.hour");
        let q = parse_name(Path::new(&format!("{d}.corrupt"))).expect("ours");
        assert!(q.corrupt);
        assert_eq!(
            q.kind,
            Kind::DayHours {
                day: first / DAY_MS,
                pass: 9
            }
        );
        assert!(parse_name(Path::new("notes.txt")).is_none());
    }

    #[test]
    fn a_file_finds_each_series_and_names_damage() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut w = FileWriter::create(dir.path(), 60_000, 1).expect("create");
        for h in (0..500u64).rev() {
            let run: Vec<(i64, Agg)> = (0..3).map(|i| (i, Agg::of(h as f64 + i as f64))).collect();
            w.block(h * 7919, 1000 + h as i64, &run).expect("block");
        }
        w.finish("pass-0000000001-19700101T0000-19700101T0002.wph")
            .expect("finish");
        let path = dir.path().join("pass-0000000001-19700101T0000-19700101T0002.wph");
        let f = HistoryFile::open(&path).expect("opens");
        assert_eq!(f.len(), 500);
        let mut out = Vec::new();
        f.series(&path, 42 * 7919, &mut out).expect("reads");
        assert_eq!(out.len(), 3);
        assert_eq!(out[2].1.last, 44.0);
        assert_eq!(f.find(42 * 7919).expect("finds")[0].1, 1042);
        assert!(f.find(5).expect("reads").is_empty());
        assert_eq!(f.entries().count(), 500);
        // One byte changed inside a block.
        let mut bytes = fs::read(&path).expect("read");
        let at = f.find(42 * 7919).expect("finds")[0].0 as usize + 20;
        bytes[at] ^= 0x40;
        fs::write(&path, &bytes).expect("write");
        let f = HistoryFile::open(&path).expect("index intact");
        let err = f.series(&path, 42 * 7919, &mut Vec::new()).expect_err("damaged");
        assert!(err.contains("checksum"), "{err}");
        f.series(&path, 43 * 7919, &mut Vec::new())
            .expect("others still read");
    }
}
