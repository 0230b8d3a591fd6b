//! Wire series ids that survive agent restarts: a series the spool has
//! defined before (in a segment still on disk) keeps its id, so batches an
//! earlier run wrote replay as they are. Ids are dense from 1.

use std::collections::HashMap;

use watchpost_proto::v1::SeriesDefinition;

fn key_hash(d: &SeriesDefinition) -> u64 {
    use std::hash::{Hash, Hasher};
    let mut h = std::collections::hash_map::DefaultHasher::new();
    d.metric.hash(&mut h);
    for l in &d.labels {
        l.name.hash(&mut h);
        l.value.hash(&mut h);
    }
    h.finish()
}

fn same_series(a: &SeriesDefinition, b: &SeriesDefinition) -> bool {
    a.metric == b.metric && a.labels == b.labels
}

/// Every series defined so far under its wire id, and the collection
/// thread's series ids → wire ids.
#[derive(Default)]
pub(super) struct WireIds {
    /// By wire id − 1 (resent on each connect).
    definitions: Vec<SeriesDefinition>,
    by_key: HashMap<u64, Vec<u32>>,
    /// The collection thread's series ids → wire ids (0: not yet known).
    local_to_wire: Vec<u32>,
}

impl WireIds {
    pub(super) fn definitions(&self) -> &[SeriesDefinition] {
        &self.definitions
    }

    fn find(&self, h: u64, def: &SeriesDefinition) -> Option<u32> {
        self.by_key.get(&h).and_then(|ids| {
            ids.iter().copied().find(|&w| {
                self.definitions
                    .get(w as usize - 1)
                    .is_some_and(|d| same_series(d, def))
            })
        })
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
        self.by_key.entry(h).or_default().push(def.id);
        self.definitions.push(def);
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
                    let w = self.definitions.len() as u32 + 1;
                    def.id = w;
                    self.by_key.entry(h).or_default().push(w);
                    self.definitions.push(def.clone());
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
