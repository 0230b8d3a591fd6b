//! The segment format both of Watchpost's durable queues use: the agent's
//! spool (`agent/src/spool/`) and the collector's journal
//! (`collector/src/journal/`).
//!
//! A segment is a file of records `[u32 length][u32 CRC-32C][kind][body]`
//! (little-endian; the length and checksum cover kind and body). This
//! crate frames and checks records, finds where a segment stops making
//! sense, and recovers a damaged segment at start: a torn *last* segment is
//! cut at its last whole record (the writer stopped mid-write), any other
//! damaged segment is renamed `*.corrupt` (quarantined) so the rest can be
//! read; or, with [`read_resync`], reading goes on after damage at the next
//! valid record, so a bad record in the middle costs only itself. What a
//! record's body means is the caller's business.
//!
//! Invariant: a record whose checksum fails is never handed to the caller;
//! recovery never deletes bytes that passed their checksum except the
//! quarantined file's, which it keeps under another name.

pub mod body;

use std::fs::{self, OpenOptions};
use std::io;
use std::path::{Path, PathBuf};

/// Bytes before a record's kind: length and checksum.
pub const HEADER_BYTES: usize = 8;

const CRC: crc::Crc<u32> = crc::Crc::<u32>::new(&crc::CRC_32_ISCSI);

/// Where a segment's bytes stop making sense, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Damage {
    /// Offset of the first record that is not whole and valid.
    pub offset: usize,
    /// What is wrong there.
    pub problem: String,
}

/// A record being appended to a buffer ([`begin`] … [`end`]).
#[must_use = "a record is only valid once `end` fills in its header"]
pub struct RecordStart(usize);

/// Starts a record of `kind` at the end of `out`; write its body into
/// `out`, then call [`end`].
pub fn begin(out: &mut Vec<u8>, kind: u8) -> RecordStart {
    let start = out.len();
    out.extend_from_slice(&[0; HEADER_BYTES]);
    out.push(kind);
    RecordStart(start)
}

/// Fills in the length and checksum of the record begun at `start`; its
/// body is everything after the kind to the end of `out`.
pub fn end(out: &mut [u8], start: RecordStart) {
    let s = start.0;
    let len = u32::try_from(out.len() - s - HEADER_BYTES).unwrap_or(u32::MAX);
    let crc = CRC.checksum(&out[s + HEADER_BYTES..]);
    out[s..s + 4].copy_from_slice(&len.to_le_bytes());
    out[s + 4..s + 8].copy_from_slice(&crc.to_le_bytes());
}

/// Calls `f(kind, body)` for each whole, valid record of `bytes` in order.
/// Returns where and why the bytes stop making sense, if they do: a short
/// or impossible header (a length of 0 or over `max_record_bytes`), a
/// record cut short, a checksum mismatch, or an error `f` returns.
pub fn read(
    bytes: &[u8],
    max_record_bytes: usize,
    mut f: impl FnMut(u8, &[u8]) -> Result<(), String>,
) -> Option<Damage> {
    let mut at = 0;
    while at < bytes.len() {
        let damaged = |problem: String| Some(Damage { offset: at, problem });
        if bytes.len() - at < HEADER_BYTES + 1 {
            return damaged(format!("{} stray bytes at the end", bytes.len() - at));
        }
        let word = |i: usize| u32::from_le_bytes([bytes[i], bytes[i + 1], bytes[i + 2], bytes[i + 3]]);
        let len = word(at) as usize;
        let crc = word(at + 4);
        if len == 0 || len > max_record_bytes {
            return damaged(format!("record length {len} is impossible"));
        }
        let Some(body) = bytes.get(at + HEADER_BYTES..at + HEADER_BYTES + len) else {
            return damaged(format!("record of {len} bytes cut short"));
        };
        if CRC.checksum(body) != crc {
            return damaged("checksum mismatch".into());
        }
        if let Err(problem) = f(body[0], &body[1..]) {
            return damaged(problem);
        }
        at += HEADER_BYTES + len;
    }
    None
}

/// Bytes of a segment that are not records: `bytes[damage.offset..end]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Span {
    /// Where it starts and why.
    pub damage: Damage,
    /// Where the next valid record starts, or the segment's length when
    /// none follows (a torn tail, or damage to the end).
    pub end: usize,
}

impl Span {
    /// Whether valid records follow it (damage in the middle, not a torn tail).
    pub fn resumed(&self, len: usize) -> bool {
        self.end < len
    }
}

/// Whether a valid record (length in bounds, checksum right) starts at `at`.
fn record_at(bytes: &[u8], at: usize, max_record_bytes: usize) -> Option<usize> {
    let header = bytes.get(at..at + HEADER_BYTES)?;
    let len = u32::from_le_bytes([header[0], header[1], header[2], header[3]]) as usize;
    let crc = u32::from_le_bytes([header[4], header[5], header[6], header[7]]);
    if len == 0 || len > max_record_bytes {
        return None;
    }
    let body = bytes.get(at + HEADER_BYTES..at + HEADER_BYTES + len)?;
    (CRC.checksum(body) == crc).then_some(HEADER_BYTES + len)
}

/// As [`read`], but not stopped by damage: after bytes that are not a
/// valid record it looks for the next offset where one starts (a length in
/// bounds and a matching CRC-32C: a false match is a one in four billion
/// chance) and goes on from there. A record `f` refuses is skipped whole.
/// Returns every span of bytes that were not records, in order.
pub fn read_resync(
    bytes: &[u8],
    max_record_bytes: usize,
    mut f: impl FnMut(u8, &[u8]) -> Result<(), String>,
) -> Vec<Span> {
    let mut spans = Vec::new();
    let mut at = 0;
    while at < bytes.len() {
        let rest = &bytes[at..];
        let mut consumed = 0;
        let damage = read(rest, max_record_bytes, |kind, body| {
            let r = f(kind, body);
            if r.is_ok() {
                consumed += HEADER_BYTES + 1 + body.len();
            }
            r
        });
        let Some(d) = damage else { break };
        let start = at + d.offset;
        // A whole record the caller refused: skip exactly it.
        let skip = record_at(bytes, start, max_record_bytes);
        let end = match skip {
            Some(n) => start + n,
            None => (start + 1..bytes.len())
                .find(|&o| record_at(bytes, o, max_record_bytes).is_some())
                .unwrap_or(bytes.len()),
        };
        debug_assert_eq!(consumed, d.offset);
        spans.push(Span {
            damage: Damage {
                offset: start,
                problem: d.problem,
            },
            end,
        });
        at = end;
    }
    spans
}

/// The segment files (`*.{extension}`) of `dir`, in name order (names are
/// zero-padded numbers, so that is the order they were written in).
pub fn list(dir: &Path, extension: &str) -> io::Result<Vec<PathBuf>> {
    let mut names: Vec<PathBuf> = fs::read_dir(dir)?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == extension))
        .collect();
    names.sort();
    Ok(names)
}

/// What recovery did with a segment read at start.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Recovery {
    /// Every record was whole and valid.
    Intact,
    /// The last segment ended in a torn record: cut there; the records
    /// before it stand.
    Cut(Damage),
    /// A segment before the last was damaged: renamed, nothing of it is used.
    Quarantined {
        /// Where the damage starts.
        damage: Damage,
        /// The file's new name (`*.corrupt`).
        moved_to: PathBuf,
    },
}

/// Recovers segment `path` after [`read`] found `damage` in it: the last
/// segment (`last`) is cut at the damage, any other renamed `*.corrupt`.
pub fn recover(path: &Path, last: bool, damage: Option<Damage>) -> io::Result<Recovery> {
    let Some(damage) = damage else {
        return Ok(Recovery::Intact);
    };
    if last {
        let f = OpenOptions::new().write(true).open(path)?;
        f.set_len(damage.offset as u64)?;
        f.sync_all()?;
        Ok(Recovery::Cut(damage))
    } else {
        let moved_to = path.with_extension("corrupt");
        fs::rename(path, &moved_to)?;
        Ok(Recovery::Quarantined { damage, moved_to })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(kind: u8, body: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        let start = begin(&mut out, kind);
        out.extend_from_slice(body);
        end(&mut out, start);
        out
    }

    fn all(bytes: &[u8]) -> (Vec<(u8, Vec<u8>)>, Option<Damage>) {
        let mut got = Vec::new();
        let damage = read(bytes, 1 << 20, |k, b| {
            got.push((k, b.to_vec()));
            Ok(())
        });
        (got, damage)
    }

    #[test]
    fn records_round_trip_and_each_kind_of_damage_is_named_with_its_offset() {
        let mut seg = record(1, b"hello");
        seg.extend(record(2, b""));
        let whole = seg.len();
        assert_eq!(all(&seg), (vec![(1, b"hello".to_vec()), (2, Vec::new())], None));

        let mut torn = seg.clone();
        torn.extend(&record(3, b"world")[..10]);
        let (got, damage) = all(&torn);
        assert_eq!(got.len(), 2);
        assert_eq!(damage.expect("damaged").offset, whole);

        let mut flipped = seg.clone();
        flipped[9] ^= 1;
        let (got, damage) = all(&flipped);
        assert!(got.is_empty());
        assert_eq!(
            damage,
            Some(Damage {
                offset: 0,
                problem: "checksum mismatch".into()
            })
        );

        let mut stray = seg.clone();
        stray.extend([0, 0, 0]);
        assert_eq!(
            all(&stray).1.expect("damaged").problem,
            "3 stray bytes at the end"
        );
        let huge = [0xff, 0xff, 0xff, 0x7f, 0, 0, 0, 0, 1];
        assert!(all(&huge).1.expect("damaged").problem.contains("impossible"));

        let refused = read(
            &seg,
            1 << 20,
            |k, _| if k == 2 { Err("no".into()) } else { Ok(()) },
        );
        assert_eq!(
            refused,
            Some(Damage {
                offset: 14,
                problem: "no".into()
            })
        );
    }

    #[test]
    fn reading_resynchronises_after_damage_in_the_middle() {
        let mut seg = record(1, b"first");
        let damaged_at = seg.len();
        seg.extend(record(2, b"flipped"));
        seg.extend(record(3, b"refused"));
        let after = seg.len();
        seg.extend(record(4, b"after"));
        let whole = seg.len();
        seg[damaged_at + 10] ^= 0x55;
        seg.extend(&record(5, b"torn")[..10]);
        let mut got = Vec::new();
        let spans = read_resync(&seg, 1 << 20, |k, b| {
            if k == 3 {
                return Err("not wanted".into());
            }
            got.push((k, b.to_vec()));
            Ok(())
        });
        assert_eq!(got, [(1, b"first".to_vec()), (4, b"after".to_vec())]);
        let offsets: Vec<(usize, usize, bool)> = spans
            .iter()
            .map(|s| (s.damage.offset, s.end, s.resumed(seg.len())))
            .collect();
        assert_eq!(
            offsets,
            [
                (damaged_at, damaged_at + 16, true),
                (damaged_at + 16, after, true),
                (whole, seg.len(), false)
            ]
        );
        assert_eq!(spans[0].damage.problem, "checksum mismatch");
        assert_eq!(spans[1].damage.problem, "not wanted");
        assert!(read_resync(&record(1, b"x"), 1 << 20, |_, _| Ok(())).is_empty());
    }

    #[test]
    fn the_last_segment_is_cut_and_an_earlier_one_quarantined() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut bytes = record(1, b"kept");
        let good = bytes.len();
        bytes.extend(&record(1, b"torn")[..9]);
        let first = dir.path().join("0001.seg");
        let second = dir.path().join("0002.seg");
        fs::write(&first, &bytes).expect("write");
        fs::write(&second, &bytes).expect("write");
        fs::write(dir.path().join("other.txt"), b"x").expect("write");
        assert_eq!(
            list(dir.path(), "seg").expect("list"),
            [first.clone(), second.clone()]
        );

        let damage = read(&bytes, 1 << 20, |_, _| Ok(()));
        let r = recover(&second, true, damage.clone()).expect("cut");
        assert!(matches!(r, Recovery::Cut(Damage { offset, .. }) if offset == good));
        assert_eq!(fs::read(&second).expect("read").len(), good);

        let r = recover(&first, false, damage).expect("quarantine");
        assert_eq!(
            r,
            Recovery::Quarantined {
                damage: Damage {
                    offset: good,
                    problem: "record of 5 bytes cut short".into()
                },
                moved_to: dir.path().join("0001.corrupt")
            }
        );
        assert!(!first.exists());
        assert_eq!(recover(&second, true, None).expect("intact"), Recovery::Intact);
    }
}
