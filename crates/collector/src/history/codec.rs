//! What a rollup is and how a series' run of rollups is packed.
//!
//! An [`Agg`] summarises the finite samples of one slot (a minute or an
//! hour): count, min, max, sum and the last value. Two aggregates of the
//! same slot merge exactly, because the history never rolls a sample up
//! twice and the samples of a later pass are all later in time.
//!
//! A *run* is one series' aggregates in slot order, packed as one bit
//! string: the slot gaps ('0' for the next slot, '10' + 8 bits, '11' + 32
//! bits), then count, min, max, sum and last, each coded against the same
//! field of the slot before with the hot store's value coder (exact
//! decimals as the change of their scaled integer, other values as their
//! raw bits). A steady gauge costs a few bits a slot; every value comes
//! back bit for bit.

use crate::store::chunk::{BitReader, Bits, ValueCoder};

/// One slot's summary of a series.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Agg {
    /// Finite samples summarised.
    pub count: u64,
    /// Their minimum.
    pub min: f64,
    /// Their maximum.
    pub max: f64,
    /// Their sum.
    pub sum: f64,
    /// The latest of them.
    pub last: f64,
}

impl Agg {
    /// The summary of one sample.
    pub fn of(v: f64) -> Agg {
        Agg {
            count: 1,
            min: v,
            max: v,
            sum: v,
            last: v,
        }
    }

    /// Adds a later sample.
    pub fn add(&mut self, v: f64) {
        self.count += 1;
        self.min = self.min.min(v);
        self.max = self.max.max(v);
        self.sum += v;
        self.last = v;
    }

    /// Merges the summary of later samples of the same slot.
    pub fn merge(&mut self, later: &Agg) {
        self.count += later.count;
        self.min = self.min.min(later.min);
        self.max = self.max.max(later.max);
        self.sum += later.sum;
        self.last = later.last;
    }

    /// The mean.
    pub fn mean(&self) -> f64 {
        self.sum / self.count as f64
    }
}

/// Slot number of `ts` at `unit_ms` per slot (floor, also before 1970).
pub fn slot_of(ts: i64, unit_ms: i64) -> i64 {
    ts.div_euclid(unit_ms)
}

/// Folds time-ordered samples into per-slot aggregates, in slot order.
/// Samples that are not finite are not summarised.
pub fn fold(samples: impl IntoIterator<Item = (i64, f64)>, unit_ms: i64, out: &mut Vec<(i64, Agg)>) {
    for (t, v) in samples {
        if !v.is_finite() {
            continue;
        }
        let slot = slot_of(t, unit_ms);
        match out.last_mut() {
            Some((s, a)) if *s == slot => a.add(v),
            _ => out.push((slot, Agg::of(v))),
        }
    }
}

/// Merges `more` (slot-ordered) into `into` (slot-ordered); where both
/// have a slot, `more` holds the later samples.
pub fn merge_runs(into: &mut Vec<(i64, Agg)>, more: &[(i64, Agg)]) {
    if more.is_empty() {
        return;
    }
    if into.last().is_none_or(|(s, _)| *s < more[0].0) {
        into.extend_from_slice(more);
        return;
    }
    let mut out = Vec::with_capacity(into.len() + more.len());
    let (mut i, mut j) = (0, 0);
    while i < into.len() || j < more.len() {
        match (into.get(i), more.get(j)) {
            (Some(a), Some(b)) if a.0 == b.0 => {
                let mut m = a.1;
                m.merge(&b.1);
                out.push((a.0, m));
                i += 1;
                j += 1;
            }
            (Some(a), Some(b)) if a.0 < b.0 => {
                out.push(*a);
                i += 1;
            }
            (Some(a), None) => {
                out.push(*a);
                i += 1;
            }
            (_, Some(b)) => {
                out.push(*b);
                j += 1;
            }
            (None, None) => break,
        }
    }
    *into = out;
}

/// Re-slots a run at a coarser unit (minutes to hours).
pub fn coarsen(run: &[(i64, Agg)], from_ms: i64, to_ms: i64, out: &mut Vec<(i64, Agg)>) {
    for (slot, a) in run {
        let s = slot_of(slot * from_ms, to_ms);
        match out.last_mut() {
            Some((last, m)) if *last == s => m.merge(a),
            _ => out.push((s, *a)),
        }
    }
}

/// Packs a slot-ordered run (see the module's comment).
pub fn encode(run: &[(i64, Agg)], out: &mut Vec<u8>) {
    let Some(first) = run.first() else { return };
    watchpost_segment::body::put_varint(out, run.len() as u64);
    watchpost_segment::body::put_varint(out, watchpost_segment::body::zigzag(first.0));
    let mut bits = Bits::default();
    let mut coders = [ValueCoder::default(); 5];
    let mut prev = first.0;
    for (i, (slot, a)) in run.iter().enumerate() {
        if i > 0 {
            match slot - prev - 1 {
                0 => bits.put(0, 1),
                g if (0..256).contains(&g) => bits.put((0b10 << 8) | g as u64, 10),
                g => bits.put((0b11 << 32) | (g as u64 & 0xffff_ffff), 34),
            }
        }
        prev = *slot;
        for (c, v) in coders
            .iter_mut()
            .zip([a.count as f64, a.min, a.max, a.sum, a.last])
        {
            c.put(&mut bits, v);
        }
    }
    out.extend_from_slice(bits.as_bytes());
}

/// Unpacks a run written by [`encode`] (the whole of `bytes`).
pub fn decode(bytes: &[u8], out: &mut Vec<(i64, Agg)>) -> Result<(), String> {
    if bytes.is_empty() {
        return Ok(());
    }
    let mut r = watchpost_segment::body::Reader::new(bytes);
    let n = r.varint()? as usize;
    let mut slot = watchpost_segment::body::unzigzag(r.varint()?);
    let mut bits = BitReader::new(&bytes[r.at..]);
    let mut coders = [ValueCoder::default(); 5];
    out.reserve(n.min(1 << 20));
    for i in 0..n {
        if i > 0 {
            let gap = if bits.get(1) == 0 {
                0
            } else if bits.get(1) == 0 {
                bits.get(8) as i64
            } else {
                bits.get(32) as i64
            };
            slot += gap + 1;
        }
        let mut f = [0f64; 5];
        for (c, v) in coders.iter_mut().zip(f.iter_mut()) {
            *v = c.get(&mut bits).ok_or("a rollup run that makes no sense")?;
        }
        out.push((
            slot,
            Agg {
                count: f[0] as u64,
                min: f[1],
                max: f[2],
                sum: f[3],
                last: f[4],
            },
        ));
    }
    if bits.overrun() {
        return Err("a rollup run cut short".into());
    }
    Ok(())
}

/// A series' identity hashed (FNV-1a, 64 bits) over its metric and its
/// labels in name order: the same on every machine and in every version.
pub fn key_hash(metric: &str, labels: &mut dyn Iterator<Item = (&str, &str)>) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    let mut eat = |s: &str| {
        for b in s.bytes().chain(std::iter::once(0xff)) {
            h ^= u64::from(b);
            h = h.wrapping_mul(0x0000_0100_0000_01b3);
        }
    };
    eat(metric);
    for (k, v) in labels {
        eat(k);
        eat(v);
    }
    h
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn runs_round_trip_bit_for_bit_with_gaps() {
        let mut run = Vec::new();
        let mut x = 50.0;
        for (i, slot) in [0i64, 1, 2, 5, 300, 301, 100_000, 100_001].iter().enumerate() {
            x += 0.25 * i as f64;
            run.push((
                29_000_000 + slot,
                Agg {
                    count: 6,
                    min: x - 1.0,
                    max: x + 1.5,
                    sum: x * 6.0 + 1.0 / 3.0,
                    last: x,
                },
            ));
        }
        let mut bytes = Vec::new();
        encode(&run, &mut bytes);
        let mut back = Vec::new();
        decode(&bytes, &mut back).expect("decodes");
        assert_eq!(back.len(), run.len());
        for (a, b) in back.iter().zip(&run) {
            assert_eq!(a.0, b.0);
            assert_eq!(a.1.sum.to_bits(), b.1.sum.to_bits());
            assert_eq!(a.1, b.1);
        }
        assert!(decode(&bytes[..bytes.len() - 3], &mut Vec::new()).is_err());
    }

    #[test]
    fn a_steady_minute_costs_under_a_byte() {
        let run: Vec<(i64, Agg)> = (0..1440)
            .map(|i| {
                (
                    i,
                    Agg {
                        count: 6,
                        min: 1.0,
                        max: 1.0,
                        sum: 6.0,
                        last: 1.0,
                    },
                )
            })
            .collect();
        let mut bytes = Vec::new();
        encode(&run, &mut bytes);
        assert!(bytes.len() < 1440, "{} bytes", bytes.len());
    }

    #[test]
    fn folding_merging_and_coarsening_agree_with_the_samples() {
        let samples: Vec<(i64, f64)> = (0..600).map(|i| (i * 10_000, (i % 7) as f64)).collect();
        let mut whole = Vec::new();
        fold(samples.iter().copied(), 60_000, &mut whole);
        // The same samples in two passes cut mid-minute.
        let mut a = Vec::new();
        fold(samples[..123].iter().copied(), 60_000, &mut a);
        let mut b = Vec::new();
        fold(samples[123..].iter().copied(), 60_000, &mut b);
        merge_runs(&mut a, &b);
        assert_eq!(a, whole);
        let mut hours = Vec::new();
        coarsen(&whole, 60_000, 3_600_000, &mut hours);
        let mut direct = Vec::new();
        fold(samples.iter().copied(), 3_600_000, &mut direct);
        assert_eq!(hours.len(), 2);
        for ((s1, h), (s2, d)) in hours.iter().zip(&direct) {
            assert_eq!(s1, s2);
            assert_eq!((h.count, h.min, h.max, h.last), (d.count, d.min, d.max, d.last));
            assert!((h.sum - d.sum).abs() < 1e-9);
        }
        let mut nan = Vec::new();
        fold([(0, f64::NAN), (1, 2.0)], 60_000, &mut nan);
        assert_eq!(nan, vec![(0, Agg::of(2.0))]);
    }
}
