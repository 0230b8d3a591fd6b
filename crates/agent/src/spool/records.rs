//! What a spool segment's records hold: series definitions and batches,
//! each a protobuf message in the shared segment framing
//! (`watchpost_segment`).

use prost::Message;
use watchpost_proto::v1::{Batch, SeriesDefinitions};
use watchpost_segment::Damage;

const KIND_DEFINITIONS: u8 = 1;
const KIND_BATCH: u8 = 2;
/// A record longer than this is taken as corruption, not allocated.
const MAX_RECORD_BYTES: usize = 64 << 20;

/// A decoded record.
pub(super) enum Record {
    Definitions(SeriesDefinitions),
    Batch(Batch),
}

fn append(out: &mut Vec<u8>, kind: u8, body: &impl Message) {
    let start = watchpost_segment::begin(out, kind);
    body.encode(out).expect("a Vec grows as needed");
    watchpost_segment::end(out, start);
}

/// Appends a definitions record to `out`.
pub(super) fn append_definitions(out: &mut Vec<u8>, d: &SeriesDefinitions) {
    append(out, KIND_DEFINITIONS, d);
}

/// Appends a batch record to `out`.
pub(super) fn append_batch(out: &mut Vec<u8>, b: &Batch) {
    append(out, KIND_BATCH, b);
}

/// Reads the records of a segment; on damage, also where the good part
/// ends and what is wrong.
pub(super) fn decode_all(bytes: &[u8]) -> (Vec<Record>, Option<Damage>) {
    let mut records = Vec::new();
    let damage = watchpost_segment::read(bytes, MAX_RECORD_BYTES, |kind, body| {
        let record = match kind {
            KIND_DEFINITIONS => SeriesDefinitions::decode(body).map(Record::Definitions),
            KIND_BATCH => Batch::decode(body).map(Record::Batch),
            k => return Err(format!("unknown record kind {k}")),
        };
        records.push(record.map_err(|e| format!("undecodable record: {e}"))?);
        Ok(())
    });
    (records, damage)
}
