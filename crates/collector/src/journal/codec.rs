//! The bodies of journal records: a *checkpoint* (each agent's last
//! applied sequence), a *series* (a store series number with its metric
//! and labels) and a *batch* (agent, sequence, samples: series number as a
//! varint, timestamp as a zigzag varint delta from the batch's first,
//! value as 8 bytes so NaN and ±Inf survive bit for bit).

pub(super) const KIND_CHECKPOINT: u8 = 1;
pub(super) const KIND_SERIES: u8 = 2;
pub(super) const KIND_BATCH: u8 = 3;
/// A record longer than this is taken as corruption, not allocated.
pub(super) const MAX_RECORD_BYTES: usize = 256 << 20;

pub(super) use watchpost_segment::body::{Reader, put_str, put_varint, unzigzag, zigzag};
