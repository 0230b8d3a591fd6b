//! Compressed sample chunks: the hot store's memory is what makes a million
//! series fit, so samples are bit-packed.
//!
//! Timestamps are delta-of-delta coded (a regular interval costs one bit).
//! Values are coded as decimals where they are exactly decimal (agents round
//! percentages and rates to two places): the scaled integer's change is
//! written in 1, 9, 17 or 36 bits, an unchanged value in one bit. Values
//! that are not exactly decimal fall back to their 64 raw bits. Decoding
//! reproduces every value bit for bit.

const POW10: [f64; 10] = [1.0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9];
const MAX_EXACT: f64 = 9_007_199_254_740_992.0; // 2^53

/// `v` as `m / 10^e` exactly (bit for bit), if it is.
fn to_decimal(v: f64, e: u8) -> Option<i64> {
    let p = POW10[usize::from(e)];
    let m = (v * p).round();
    if m.is_nan() || m.abs() >= MAX_EXACT {
        return None;
    }
    let m = m as i64;
    (from_decimal(m, e).to_bits() == v.to_bits()).then_some(m)
}

fn from_decimal(m: i64, e: u8) -> f64 {
    m as f64 / POW10[usize::from(e)]
}

fn zigzag(v: i64) -> u64 {
    ((v << 1) ^ (v >> 63)) as u64
}

fn unzigzag(v: u64) -> i64 {
    ((v >> 1) as i64) ^ -((v & 1) as i64)
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum ValueState {
    Decimal { exp: u8, m: i64 },
    Raw,
}

/// The chunk being written: appends only, in timestamp order.
#[derive(Debug, Default)]
pub struct ChunkWriter {
    bits: Bits,
    count: u16,
    last_ts: i64,
    last_delta: i64,
    state: ValueCoder,
}

/// A bit string being written, most significant bit first.
#[derive(Debug, Default)]
pub struct Bits {
    bytes: Vec<u8>,
    /// Bits used in the last byte (0 = the last byte is full or there is none).
    used: u8,
}

impl Bits {
    /// Appends the low `nbits` bits of `value`.
    pub fn put(&mut self, value: u64, nbits: u8) {
        let mut left = nbits;
        while left > 0 {
            if self.used == 0 {
                // Grow by small steps: doubling would leave a quarter of
                // every chunk's buffer unused on average.
                if self.bytes.len() == self.bytes.capacity() {
                    self.bytes.reserve_exact(32);
                }
                self.bytes.push(0);
            }
            let free = 8 - self.used;
            let take = free.min(left);
            let chunk = ((value >> (left - take)) & ((1u64 << take) - 1)) as u8;
            let last = self.bytes.len() - 1;
            self.bytes[last] |= chunk << (free - take);
            self.used = (self.used + take) % 8;
            left -= take;
        }
    }

    /// The bytes written (the last one padded with zero bits).
    pub fn as_bytes(&self) -> &[u8] {
        &self.bytes
    }
}

/// Reads a bit string written by [`Bits`]; past its end it reads zeros.
pub struct BitReader<'a> {
    bits: &'a [u8],
    pos: usize,
}

impl<'a> BitReader<'a> {
    /// A reader at the first bit of `bits`.
    pub fn new(bits: &'a [u8]) -> BitReader<'a> {
        BitReader { bits, pos: 0 }
    }

    /// The next `nbits` bits as a number.
    pub fn get(&mut self, nbits: u8) -> u64 {
        let mut out = 0u64;
        for _ in 0..nbits {
            let byte = self.bits.get(self.pos / 8).copied().unwrap_or(0);
            let bit = (byte >> (7 - (self.pos % 8))) & 1;
            out = (out << 1) | u64::from(bit);
            self.pos += 1;
        }
        out
    }

    /// Counts leading 1 bits up to `max`, consuming them and the closing 0.
    fn prefix(&mut self, max: u8) -> u8 {
        let mut n = 0;
        while n < max && self.get(1) == 1 {
            n += 1;
        }
        n
    }

    /// Whether reading has gone past the last byte.
    pub fn overrun(&self) -> bool {
        self.pos > self.bits.len() * 8
    }
}

/// Codes a stream of values, each against the one before: exact decimals
/// as the change of their scaled integer, others as their raw bits. One
/// coder per stream, for writing or for reading.
#[derive(Debug, Clone, Copy)]
pub struct ValueCoder(ValueState);

impl Default for ValueCoder {
    fn default() -> Self {
        ValueCoder(ValueState::Raw)
    }
}

/// A full chunk, immutable and exactly sized.
#[derive(Debug)]
pub struct SealedChunk {
    bits: Box<[u8]>,
    count: u16,
    /// Timestamp of the last sample (for eviction).
    pub last_ts: i64,
}

impl ValueCoder {
    /// Writes `v` to `bits`.
    pub fn put(&mut self, bits: &mut Bits, v: f64) {
        let mut min_exp = 0;
        if let ValueState::Decimal { exp, m: prev } = self.0 {
            if let Some(m) = to_decimal(v, exp) {
                let z = zigzag(m.wrapping_sub(prev));
                let fits = match z {
                    0 => {
                        bits.put(0, 1);
                        true
                    }
                    z if z < 1 << 7 => {
                        bits.put((0b10 << 7) | z, 9);
                        true
                    }
                    z if z < 1 << 14 => {
                        bits.put((0b110 << 14) | z, 17);
                        true
                    }
                    z if z < 1 << 32 => {
                        bits.put((0b1110 << 32) | z, 36);
                        true
                    }
                    _ => false,
                };
                if fits {
                    self.0 = ValueState::Decimal { exp, m };
                    return;
                }
            }
            // Never lower the exponent: values with fewer decimals still fit.
            min_exp = exp;
        }
        for exp in min_exp..POW10.len() as u8 {
            if let Some(m) = to_decimal(v, exp) {
                bits.put(0b11110, 5);
                bits.put(u64::from(exp), 4);
                bits.put(m as u64, 64);
                self.0 = ValueState::Decimal { exp, m };
                return;
            }
        }
        bits.put(0b11111, 5);
        bits.put(v.to_bits(), 64);
        self.0 = ValueState::Raw;
    }
}

impl ChunkWriter {
    /// Samples written.
    pub fn len(&self) -> usize {
        usize::from(self.count)
    }

    /// Whether nothing was written yet.
    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    /// Heap bytes held.
    pub fn heap_bytes(&self) -> usize {
        self.bits.bytes.capacity()
    }

    /// Appends a sample; the caller guarantees `ts` is after the last one.
    pub fn push(&mut self, ts: i64, v: f64) {
        if self.count == 0 {
            self.bits.put(ts as u64, 64);
        } else {
            let delta = ts.wrapping_sub(self.last_ts);
            let dod = zigzag(delta.wrapping_sub(self.last_delta));
            match dod {
                0 => self.bits.put(0, 1),
                d if d < 1 << 7 => self.bits.put((0b10 << 7) | d, 9),
                d if d < 1 << 12 => self.bits.put((0b110 << 12) | d, 15),
                d if d < 1 << 20 => self.bits.put((0b1110 << 20) | d, 24),
                d => {
                    self.bits.put(0b1111, 4);
                    self.bits.put(d, 64);
                }
            }
            self.last_delta = delta;
        }
        self.last_ts = ts;
        self.count += 1;
        self.state.put(&mut self.bits, v);
    }

    /// Freezes the chunk and starts over, sized after the chunk just sealed.
    pub fn seal(&mut self) -> SealedChunk {
        let done = std::mem::take(self);
        // The next chunk of a series is usually about as large as this one:
        // one allocation instead of a string of small reallocations.
        let n = done.bits.bytes.len();
        self.bits.bytes.reserve_exact(n + n / 8 + 4);
        SealedChunk {
            bits: done.bits.bytes.into_boxed_slice(),
            count: done.count,
            last_ts: done.last_ts,
        }
    }

    /// Decodes the samples written so far.
    pub fn iter(&self) -> ChunkIter<'_> {
        ChunkIter::new(&self.bits.bytes, self.count)
    }
}

impl SealedChunk {
    /// Heap bytes held.
    pub fn heap_bytes(&self) -> usize {
        self.bits.len()
    }

    /// Decodes the chunk.
    pub fn iter(&self) -> ChunkIter<'_> {
        ChunkIter::new(&self.bits, self.count)
    }
}

/// Decodes a chunk's samples in order.
pub struct ChunkIter<'a> {
    bits: BitReader<'a>,
    left: u16,
    first: bool,
    ts: i64,
    delta: i64,
    state: ValueCoder,
}

impl<'a> ChunkIter<'a> {
    fn new(bits: &'a [u8], count: u16) -> ChunkIter<'a> {
        ChunkIter {
            bits: BitReader::new(bits),
            left: count,
            first: true,
            ts: 0,
            delta: 0,
            state: ValueCoder::default(),
        }
    }
}

impl ValueCoder {
    /// Reads the next value from `r`; `None` when the bits make no sense
    /// (a change with no value before it).
    pub fn get(&mut self, r: &mut BitReader<'_>) -> Option<f64> {
        Some(match r.prefix(5) {
            n @ 0..=3 => {
                let z = match n {
                    0 => 0,
                    1 => r.get(7),
                    2 => r.get(14),
                    _ => r.get(32),
                };
                let ValueState::Decimal { exp, m } = self.0 else {
                    return None;
                };
                let m = m.wrapping_add(unzigzag(z));
                self.0 = ValueState::Decimal { exp, m };
                from_decimal(m, exp)
            }
            4 => {
                let exp = r.get(4) as u8;
                let m = r.get(64) as i64;
                self.0 = ValueState::Decimal { exp, m };
                from_decimal(m, exp.min(9))
            }
            _ => {
                self.0 = ValueState::Raw;
                f64::from_bits(r.get(64))
            }
        })
    }
}

impl Iterator for ChunkIter<'_> {
    type Item = (i64, f64);

    fn next(&mut self) -> Option<(i64, f64)> {
        if self.left == 0 {
            return None;
        }
        self.left -= 1;
        if self.first {
            self.first = false;
            self.ts = self.bits.get(64) as i64;
        } else {
            let dod = match self.bits.prefix(4) {
                0 => 0,
                1 => self.bits.get(7),
                2 => self.bits.get(12),
                3 => self.bits.get(20),
                _ => self.bits.get(64),
            };
            self.delta = self.delta.wrapping_add(unzigzag(dod));
            self.ts = self.ts.wrapping_add(self.delta);
        }
        let value = self.state.get(&mut self.bits)?;
        Some((self.ts, value))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn round_trip(samples: &[(i64, f64)]) -> usize {
        let mut w = ChunkWriter::default();
        for &(t, v) in samples {
            w.push(t, v);
        }
        let got: Vec<(i64, f64)> = w.iter().collect();
        assert_eq!(got.len(), samples.len());
        for (a, b) in got.iter().zip(samples) {
            assert_eq!(a.0, b.0);
            assert_eq!(a.1.to_bits(), b.1.to_bits(), "{} vs {}", a.1, b.1);
        }
        let sealed = w.seal();
        assert_eq!(sealed.iter().count(), samples.len());
        sealed.heap_bytes()
    }

    #[test]
    fn exact_round_trip_of_awkward_values() {
        round_trip(&[
            (1_000, 0.0),
            (2_000, -0.0),
            (3_000, 12.34),
            (4_000, 1.0 / 3.0),
            (5_000, f64::NAN),
            (5_001, f64::INFINITY),
            (9_000_000, -5.5),
            (9_000_001, 1e300),
            (9_000_002, 123_456_789_012.25),
            (9_000_003, 99.99),
            (9_000_004, 5e-324),
            (i64::MAX / 4, 42.0),
        ]);
    }

    #[test]
    fn regular_decimal_series_is_small() {
        // A percentage wandering by up to ±0.5 every 10 s, rounded like agents do.
        let mut v = 50.0f64;
        let mut x: u64 = 7;
        let samples: Vec<(i64, f64)> = (0..120)
            .map(|i| {
                x = x
                    .wrapping_mul(6364136223846793005)
                    .wrapping_add(1442695040888963407);
                v += ((x >> 33) % 101) as f64 / 100.0 - 0.5;
                (1_700_000_000_000 + i * 10_000, (v * 100.0).round() / 100.0)
            })
            .collect();
        let bytes = round_trip(&samples);
        assert!(bytes < 120 * 2, "{bytes} bytes for 120 samples");
    }

    #[test]
    fn constant_series_costs_about_two_bits_a_sample() {
        let samples: Vec<(i64, f64)> = (0..120).map(|i| (i * 1_000, 1.0)).collect();
        let bytes = round_trip(&samples);
        assert!(bytes <= 8 + 10 + 32, "{bytes}");
    }

    #[test]
    fn jittered_timestamps_round_trip() {
        let samples: Vec<(i64, f64)> = (0..100)
            .map(|i| {
                (
                    i * 10_000 + (i * 37 % 11) - 5 + if i == 50 { 5_000_000 } else { 0 },
                    i as f64,
                )
            })
            .collect();
        let mut sorted = samples.clone();
        sorted.sort_by_key(|s| s.0);
        sorted.dedup_by_key(|s| s.0);
        round_trip(&sorted);
    }
}
