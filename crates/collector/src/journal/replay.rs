//! Replay at start: every segment back into the hot store, each agent's
//! last sequence recovered. Reading resynchronises after damage: a bad
//! record in the middle costs only itself (its bytes are kept aside in
//! `<segment>.corrupt` and counted); a torn tail of the last segment is cut.

use std::collections::HashMap;
use std::fs::{self, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};

use super::codec::{KIND_BATCH, KIND_CHECKPOINT, KIND_SERIES, MAX_RECORD_BYTES, Reader, unzigzag};
use super::{JournalError, Replayed, io_err};
use crate::store::{HotStore, SeriesId};

/// A segment kept after replay: number, path, newest sample time.
pub(super) type KeptSegment = (u64, PathBuf, i64);

/// Replays every segment of `dir` into `store`.
pub(super) fn replay_dir(
    dir: &Path,
    store: &HotStore,
    new_series: &dyn Fn(SeriesId),
) -> Result<(Replayed, Vec<KeptSegment>), JournalError> {
    fs::create_dir_all(dir).map_err(io_err(dir))?;
    let names = watchpost_segment::list(dir, "wal").map_err(io_err(dir))?;
    let mut replayed = Replayed::default();
    let mut segments = Vec::new();
    let count = names.len();
    for (i, path) in names.into_iter().enumerate() {
        let bytes = fs::read(&path).map_err(io_err(&path))?;
        let mut ids: HashMap<u32, SeriesId> = HashMap::new();
        let mut newest = i64::MIN;
        let spans = watchpost_segment::read_resync(&bytes, MAX_RECORD_BYTES, |kind, body| {
            record(
                kind,
                body,
                store,
                new_series,
                &mut ids,
                &mut replayed,
                &mut newest,
            )
        });
        let last = i + 1 == count;
        let mut cut_at = None;
        let mut damaged_here = false;
        for span in &spans {
            let (at, problem) = (span.damage.offset, &span.damage.problem);
            let damaged = &bytes[at..span.end];
            if span.resumed(bytes.len()) || !last {
                // Damage, not a torn tail: the records after it were read;
                // the damaged bytes are kept aside, and counted.
                let to = quarantine(&path, damaged);
                tracing::error!(file = %path.display(), offset = at, bytes = damaged.len(), problem = %problem,
                    moved_to = %to.display(), resumed = span.resumed(bytes.len()),
                    "journal segment damaged: the damaged bytes are quarantined, the records around them restored");
                damaged_here = true;
                replayed.damaged_spans += 1;
                replayed.damaged_bytes += damaged.len() as u64;
            } else {
                tracing::warn!(file = %path.display(), offset = at, problem = %problem,
                    "journal ends in a torn record (the collector stopped mid-write): cut there");
            }
            if !span.resumed(bytes.len()) {
                cut_at = Some(at);
            }
        }
        if damaged_here {
            replayed.quarantined += 1;
        }
        if let Some(at) = cut_at {
            let f = OpenOptions::new()
                .write(true)
                .open(&path)
                .map_err(io_err(&path))?;
            f.set_len(at as u64)
                .and_then(|()| f.sync_all())
                .map_err(io_err(&path))?;
        }
        let number = path
            .file_stem()
            .and_then(|s| s.to_str())
            .and_then(|s| s.parse::<u64>().ok())
            .unwrap_or(0);
        segments.push((number, path, newest));
    }
    Ok((replayed, segments))
}

/// Appends damaged bytes of `segment` to `<segment>.corrupt`; returns its path.
fn quarantine(segment: &Path, damaged: &[u8]) -> PathBuf {
    let to = segment.with_extension("corrupt");
    let written = OpenOptions::new()
        .create(true)
        .append(true)
        .open(&to)
        .and_then(|mut f| f.write_all(damaged).and_then(|()| f.sync_all()));
    if let Err(e) = written {
        tracing::error!(file = %to.display(), error = %e, "cannot keep the damaged journal bytes aside");
    }
    to
}

/// Applies one record to the store.
pub(super) fn record(
    kind: u8,
    body: &[u8],
    store: &HotStore,
    new_series: &dyn Fn(SeriesId),
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
                new_series(id);
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
