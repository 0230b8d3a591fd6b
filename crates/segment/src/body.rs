//! Helpers for record bodies: LEB128 varints, zigzag for signed numbers,
//! length-prefixed strings, and a reader that names what is cut short.

/// Reads a record body front to back.
pub struct Reader<'a> {
    /// The body.
    pub bytes: &'a [u8],
    /// Where reading is.
    pub at: usize,
}

impl Reader<'_> {
    /// A reader at the start of `bytes`.
    pub fn new(bytes: &[u8]) -> Reader<'_> {
        Reader { bytes, at: 0 }
    }

    /// Whether every byte was read.
    pub fn done(&self) -> bool {
        self.at == self.bytes.len()
    }

    /// An unsigned LEB128 varint.
    pub fn varint(&mut self) -> Result<u64, String> {
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
    /// 8 bytes, little-endian.
    pub fn u64(&mut self) -> Result<u64, String> {
        let b = self.bytes.get(self.at..self.at + 8).ok_or("record cut short")?;
        self.at += 8;
        Ok(u64::from_le_bytes(b.try_into().expect("8 bytes")))
    }
    /// 8 bytes, little-endian, signed.
    pub fn i64(&mut self) -> Result<i64, String> {
        self.u64().map(|v| v as i64)
    }
    /// A varint length and that many bytes of UTF-8.
    pub fn str(&mut self) -> Result<&str, String> {
        let n = self.varint()? as usize;
        let b = self.bytes.get(self.at..self.at + n).ok_or("record cut short")?;
        self.at += n;
        std::str::from_utf8(b).map_err(|e| format!("text that is not UTF-8: {e}"))
    }
}

/// Appends an unsigned LEB128 varint.
pub fn put_varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}
/// Appends a varint length and the bytes.
pub fn put_str(out: &mut Vec<u8>, s: &str) {
    put_varint(out, s.len() as u64);
    out.extend_from_slice(s.as_bytes());
}
/// Maps signed to unsigned so small magnitudes stay small.
pub fn zigzag(v: i64) -> u64 {
    ((v << 1) ^ (v >> 63)) as u64
}
/// The inverse of [`zigzag`].
pub fn unzigzag(v: u64) -> i64 {
    ((v >> 1) as i64) ^ -((v & 1) as i64)
}
