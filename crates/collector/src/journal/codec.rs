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

/// Reads a record body front to back.
pub(super) struct Reader<'a> {
    pub bytes: &'a [u8],
    pub at: usize,
}

impl Reader<'_> {
    pub(super) fn varint(&mut self) -> Result<u64, String> {
        let mut v = 0u64;
        for shift in (0..64).step_by(7) {
            let b = *self.bytes.get(self.at).ok_or("record cut short")?;
            self.at += 1;
            v |= u64::from(b & 0x7f) << shift;
            if b & 0x80 == 0 {
                return Ok(v);
            }
        }
        Err("varint too long".into())
    }
    pub(super) fn u64(&mut self) -> Result<u64, String> {
        let b = self.bytes.get(self.at..self.at + 8).ok_or("record cut short")?;
        self.at += 8;
        Ok(u64::from_le_bytes(b.try_into().expect("8 bytes")))
    }
    pub(super) fn i64(&mut self) -> Result<i64, String> {
        self.u64().map(|v| v as i64)
    }
    pub(super) fn str(&mut self) -> Result<&str, String> {
        let n = self.varint()? as usize;
        let b = self.bytes.get(self.at..self.at + n).ok_or("record cut short")?;
        self.at += n;
        std::str::from_utf8(b).map_err(|e| format!("text that is not UTF-8: {e}"))
    }
}

pub(super) fn put_varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}
pub(super) fn put_str(out: &mut Vec<u8>, s: &str) {
    put_varint(out, s.len() as u64);
    out.extend_from_slice(s.as_bytes());
}
pub(super) fn zigzag(v: i64) -> u64 {
    ((v << 1) ^ (v >> 63)) as u64
}
pub(super) fn unzigzag(v: u64) -> i64 {
    ((v >> 1) as i64) ^ -((v & 1) as i64)
}
