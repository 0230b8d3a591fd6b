//! Wire series ids that survive agent restarts: a series the spool has
//! defined before (in a segment still on disk) keeps its id, so batches an
//! earlier run wrote replay as they are. Ids are dense from 1.
//!
//! Every definition is kept for re-sending on each connect, so they are
//! kept compactly: a definition is its metric and label names and values
//! as interned symbols (a 1,000-interface switch repeats the same few
//! names and its own label values across some 20,000 series), and the
//! index from a series' key to its id holds only a hash.

use std::collections::HashMap;
use std::hash::{Hash, Hasher};
use std::ops::Range;
use std::sync::Arc;

use watchpost_proto::v1::{Label, SeriesDefinition};

fn key_hash(d: &SeriesDefinition) -> u64 {
    let mut h = std::collections::hash_map::DefaultHasher::new();
    d.metric.hash(&mut h);
    for l in &d.labels {
        l.name.hash(&mut h);
        l.value.hash(&mut h);
    }
    h.finish()
}

/// Strings stored once, named by their index.
#[derive(Default)]
struct Symbols {
    text: Vec<Arc<str>>,
    index: HashMap<Arc<str>, u32>,
}

impl Symbols {
    fn intern(&mut self, s: &str) -> u32 {
        if let Some(&i) = self.index.get(s) {
            return i;
        }
        let i = self.text.len() as u32;
        let s: Arc<str> = Arc::from(s);
        self.text.push(s.clone());
        self.index.insert(s, i);
        i
    }

    fn find(&self, s: &str) -> Option<u32> {
        self.index.get(s).copied()
    }

    fn get(&self, i: u32) -> &str {
        &self.text[i as usize]
    }
}

/// Every series defined so far under its wire id, and the collection
/// thread's series ids → wire ids.
#[derive(Default)]
pub(super) struct WireIds {
    symbols: Symbols,
    /// By wire id − 1: the metric's symbol, then each label's name and
    /// value symbols, in the definition's order.
    definitions: Vec<Box<[u32]>>,
    /// Key hash → the first wire id with that hash.
    by_key: HashMap<u64, u32>,
    /// Further wire ids whose key hash collided with an earlier one.
    more: HashMap<u64, Vec<u32>>,
    /// The collection thread's series ids → wire ids (0: not yet known).
    local_to_wire: Vec<u32>,
}

impl WireIds {
    /// How many series are defined (wire ids 1 ..= count).
    pub(super) fn count(&self) -> usize {
        self.definitions.len()
    }

    /// The definitions of wire ids `range.start + 1 ..= range.end`,
    /// rebuilt for sending or writing.
    pub(super) fn definitions(&self, range: Range<usize>) -> Vec<SeriesDefinition> {
        let end = range.end.min(self.definitions.len());
        let start = range.start.min(end);
        self.definitions[start..end]
            .iter()
            .enumerate()
            .map(|(i, syms)| SeriesDefinition {
                id: (start + i) as u32 + 1,
                metric: self.symbols.get(syms[0]).to_string(),
                labels: syms[1..]
                    .chunks_exact(2)
                    .map(|p| Label {
                        name: self.symbols.get(p[0]).to_string(),
                        value: self.symbols.get(p[1]).to_string(),
                    })
                    .collect(),
            })
            .collect()
    }

    /// Whether wire id `wire` is the series `def` (its metric and labels).
    fn is(&self, wire: u32, def: &SeriesDefinition) -> bool {
        let Some(syms) = self.definitions.get(wire as usize - 1) else {
            return false;
        };
        let same = |sym: u32, s: &str| self.symbols.find(s) == Some(sym);
        syms.len() == 1 + 2 * def.labels.len()
            && same(syms[0], &def.metric)
            && def
                .labels
                .iter()
                .zip(syms[1..].chunks_exact(2))
                .all(|(l, p)| same(p[0], &l.name) && same(p[1], &l.value))
    }

    fn find(&self, h: u64, def: &SeriesDefinition) -> Option<u32> {
        let first = *self.by_key.get(&h)?;
        if self.is(first, def) {
            return Some(first);
        }
        self.more.get(&h)?.iter().copied().find(|&w| self.is(w, def))
    }

    fn add(&mut self, h: u64, def: &SeriesDefinition) -> u32 {
        let wire = self.definitions.len() as u32 + 1;
        let mut syms = Vec::with_capacity(1 + 2 * def.labels.len());
        syms.push(self.symbols.intern(&def.metric));
        for l in &def.labels {
            syms.push(self.symbols.intern(&l.name));
            syms.push(self.symbols.intern(&l.value));
        }
        self.definitions.push(syms.into_boxed_slice());
        match self.by_key.entry(h) {
            std::collections::hash_map::Entry::Vacant(v) => {
                v.insert(wire);
            }
            std::collections::hash_map::Entry::Occupied(_) => {
                self.more.entry(h).or_default().push(wire);
            }
        }
        wire
    }

    /// Records a definition read back from disk under its wire id.
    pub(super) fn learn(&mut self, def: SeriesDefinition) {
        let h = key_hash(&def);
        if self.find(h, &def).is_some() {
            return;
        }
        if def.id == 0 || def.id as usize != self.definitions.len() + 1 {
            // Wire ids are dense from 1; anything else is not ours.
            return;
        }
        self.add(h, &def);
    }

    /// Maps a round's definitions (collection-thread ids) to wire ids,
    /// reusing the ids of series known before; returns the new ones,
    /// with their wire ids, which the collector has not seen.
    pub(super) fn assign(&mut self, definitions: Vec<SeriesDefinition>) -> Vec<SeriesDefinition> {
        let mut fresh = Vec::new();
        for mut def in definitions {
            let local = def.id as usize;
            let h = key_hash(&def);
            let wire = match self.find(h, &def) {
                Some(w) => w,
                None => {
                    let w = self.add(h, &def);
                    def.id = w;
                    fresh.push(def);
                    w
                }
            };
            if self.local_to_wire.len() <= local {
                self.local_to_wire.resize(local + 1, 0);
            }
            self.local_to_wire[local] = wire;
        }
        fresh
    }

    /// The wire id of collection-thread series `local`, if it was defined.
    pub(super) fn wire(&self, local: u32) -> Option<u32> {
        self.local_to_wire
            .get(local as usize)
            .copied()
            .filter(|w| *w != 0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn def(id: u32, metric: &str, labels: &[(&str, &str)]) -> SeriesDefinition {
        SeriesDefinition {
            id,
            metric: metric.into(),
            labels: labels
                .iter()
                .map(|(n, v)| Label {
                    name: (*n).into(),
                    value: (*v).into(),
                })
                .collect(),
        }
    }

    #[test]
    fn definitions_come_back_as_given_and_keep_their_ids() {
        let mut ids = WireIds::default();
        let given = vec![
            def(7, "if_in_octets", &[("ifName", "ge-0/0/1"), ("host", "sw1")]),
            def(8, "if_in_octets", &[("ifName", "ge-0/0/2"), ("host", "sw1")]),
            def(9, "if_out_octets", &[("ifName", "ge-0/0/1"), ("host", "sw1")]),
            def(10, "up", &[]),
        ];
        let fresh = ids.assign(given.clone());
        assert_eq!(fresh.len(), 4);
        assert_eq!(ids.count(), 4);
        let back = ids.definitions(0..4);
        for (i, (b, g)) in back.iter().zip(&given).enumerate() {
            assert_eq!(b.id, i as u32 + 1);
            assert_eq!((&b.metric, &b.labels), (&g.metric, &g.labels));
        }
        assert_eq!(ids.wire(8), Some(2));
        assert_eq!(ids.wire(11), None);
        // A range past the end is cut to what exists.
        assert_eq!(ids.definitions(3..10).len(), 1);
        assert!(ids.definitions(5..10).is_empty());

        // The same series again (a new run's local ids) keeps its wire id;
        // a series differing in one label value is new.
        let again = ids.assign(vec![
            def(1, "if_out_octets", &[("ifName", "ge-0/0/1"), ("host", "sw1")]),
            def(2, "if_out_octets", &[("ifName", "ge-0/0/2"), ("host", "sw1")]),
        ]);
        assert_eq!(ids.wire(1), Some(3));
        assert_eq!(again.len(), 1);
        assert_eq!(again[0].id, 5);
    }

    #[test]
    fn colliding_hashes_still_tell_series_apart() {
        let mut ids = WireIds::default();
        let a = def(1, "a", &[]);
        let b = def(2, "b", &[]);
        // Force both under one hash, as a collision would.
        let h = 42;
        let wa = ids.add(h, &a);
        let wb = ids.add(h, &b);
        assert_eq!(ids.find(h, &a), Some(wa));
        assert_eq!(ids.find(h, &b), Some(wb));
        assert_eq!(ids.find(h, &def(3, "c", &[])), None);
    }

    #[test]
    fn learning_from_disk_takes_only_dense_ids() {
        let mut ids = WireIds::default();
        ids.learn(def(1, "a", &[("x", "1")]));
        ids.learn(def(3, "c", &[])); // a gap: not ours
        ids.learn(def(2, "b", &[]));
        ids.learn(def(3, "a", &[("x", "1")])); // known already
        assert_eq!(ids.count(), 2);
        assert_eq!(ids.definitions(0..2)[1].metric, "b");
    }
}
