//! Agent-side series identity: each series is defined once with a small
//! local id, and samples refer to it by that id only.

use watchpost_proto::v1::{Label, SeriesDefinition};

/// Hands out local series ids and remembers the definitions not yet sent.
/// Owned by the collection thread; definitions travel with the samples
/// that first use them (see [`Round`]).
#[derive(Debug, Default)]
pub struct SeriesRegistry {
    next_id: u32,
    agent_labels: Vec<(String, String)>,
    new_definitions: Vec<SeriesDefinition>,
}

impl SeriesRegistry {
    /// A registry that adds `agent_labels` to every series it defines.
    pub fn new(agent_labels: impl IntoIterator<Item = (String, String)>) -> SeriesRegistry {
        SeriesRegistry {
            next_id: 1,
            agent_labels: agent_labels.into_iter().collect(),
            new_definitions: Vec::new(),
        }
    }

    /// Defines a new series and returns its id. Callers cache the id: this
    /// is called once per series, not once per sample.
    pub fn define(&mut self, metric: &str, labels: &[(&str, &str)]) -> u32 {
        let id = self.next_id;
        self.next_id += 1;
        let mut all: Vec<Label> = labels
            .iter()
            .map(|(n, v)| Label {
                name: (*n).to_string(),
                value: (*v).to_string(),
            })
            .chain(
                self.agent_labels
                    .iter()
                    .filter(|(n, _)| !labels.iter().any(|(m, _)| m == n))
                    .map(|(n, v)| Label {
                        name: n.clone(),
                        value: v.clone(),
                    }),
            )
            .collect();
        all.sort_by(|a, b| a.name.cmp(&b.name));
        self.new_definitions.push(SeriesDefinition {
            id,
            metric: metric.to_string(),
            labels: all,
        });
        id
    }

    /// Definitions made since the last call.
    pub fn take_new(&mut self) -> Vec<SeriesDefinition> {
        std::mem::take(&mut self.new_definitions)
    }
}

/// One collection round: the definitions it introduced and its samples,
/// all taken at one timestamp.
#[derive(Debug, Clone, Default)]
pub struct Round {
    /// Milliseconds since the Unix epoch.
    pub timestamp_ms: i64,
    /// Series first seen in this round; sent before the samples.
    pub definitions: Vec<SeriesDefinition>,
    /// (local series id, value).
    pub samples: Vec<(u32, f64)>,
    /// Per-sample offsets from `timestamp_ms`, for sources that measured at
    /// their own time (SNMP, Modbus); empty when every sample is at
    /// `timestamp_ms`. Filled by [`Round::push_at`].
    pub offsets_ms: Vec<i32>,
    /// Texts that go with samples of this round: (local series id, text).
    pub texts: Vec<(u32, std::sync::Arc<str>)>,
}

impl Round {
    /// Adds a sample measured at `at_ms` rather than at the round's time.
    pub fn push_at(&mut self, id: u32, value: f64, at_ms: i64) {
        if self.offsets_ms.len() < self.samples.len() {
            self.offsets_ms.resize(self.samples.len(), 0);
        }
        let offset = (at_ms - self.timestamp_ms).clamp(i64::from(i32::MIN), i64::from(i32::MAX));
        self.samples.push((id, value));
        self.offsets_ms.push(offset as i32);
    }
}

/// One measured value of a source that runs on its own schedule.
#[derive(Debug, Clone, PartialEq)]
pub struct Measured {
    /// Metric name.
    pub metric: std::borrow::Cow<'static, str>,
    /// Labels, sorted by name; shared by the metrics of one object (an
    /// interface has seventeen), so a poll of thousands of series does not
    /// copy label sets.
    pub labels: SharedLabels,
    /// The value.
    pub value: f64,
    /// When it was measured (ms since the Unix epoch).
    pub at_ms: i64,
    /// A short text that goes with this value (a log's last matching
    /// line), for the collector to show in the fault it opens; not stored
    /// as a label, so it does not make a new series.
    pub text: Option<std::sync::Arc<str>>,
}

/// Samples handed from a source's own thread to the collection thread: the
/// source publishes what it measured, and the next round takes it exactly
/// once, at the time it was measured. Publishing wakes the collection
/// thread so that a trap or a finished poll does not wait a whole interval.
#[derive(Clone)]
pub struct Published {
    pending: std::sync::Arc<std::sync::Mutex<Vec<Measured>>>,
    wake: std::sync::mpsc::SyncSender<()>,
    inventory: std::sync::Arc<crate::inventory::Board>,
}

impl Published {
    /// A buffer that wakes `wake`'s receiver on each publication.
    pub fn new(wake: std::sync::mpsc::SyncSender<()>) -> Published {
        Published::with_inventory(wake, Default::default())
    }

    /// The same, with the board sources put the equipment they see on.
    pub fn with_inventory(
        wake: std::sync::mpsc::SyncSender<()>,
        inventory: std::sync::Arc<crate::inventory::Board>,
    ) -> Published {
        Published {
            pending: Default::default(),
            wake,
            inventory,
        }
    }

    /// Where the equipment a source sees goes.
    pub fn inventory(&self) -> &crate::inventory::Board {
        &self.inventory
    }

    /// Queues samples for the next round.
    pub fn publish(&self, samples: impl IntoIterator<Item = Measured>) {
        self.pending
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .extend(samples);
        // A full channel means a wake-up is already pending.
        let _ = self.wake.try_send(());
    }

    /// Everything published so far (for one-shot use; rounds use
    /// [`PublishedReader`]).
    pub fn take_all(&self) -> Vec<Measured> {
        self.take()
    }

    fn take(&self) -> Vec<Measured> {
        std::mem::take(&mut *self.pending.lock().unwrap_or_else(|p| p.into_inner()))
    }
}

/// A label set shared between series.
pub type SharedLabels = std::sync::Arc<[(String, String)]>;

/// Turns published samples into round samples, defining each series once.
#[derive(Default)]
pub struct PublishedReader {
    ids: std::collections::HashMap<String, std::collections::HashMap<SharedLabels, u32>>,
}

impl PublishedReader {
    /// Adds everything published since the last call to `round`.
    pub fn collect(&mut self, from: &Published, registry: &mut SeriesRegistry, round: &mut Round) {
        self.add(from.take(), registry, round);
    }

    /// Adds `measured` to `round`, defining new series.
    pub fn add(&mut self, measured: Vec<Measured>, registry: &mut SeriesRegistry, round: &mut Round) {
        for m in measured {
            if !self.ids.contains_key(m.metric.as_ref()) {
                self.ids.insert(m.metric.to_string(), Default::default());
            }
            let Some(by_labels) = self.ids.get_mut(m.metric.as_ref()) else {
                continue;
            };
            let id = match by_labels.get(&m.labels) {
                Some(id) => *id,
                None => {
                    let labels: Vec<(&str, &str)> =
                        m.labels.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
                    let id = registry.define(&m.metric, &labels);
                    by_labels.insert(m.labels, id);
                    id
                }
            };
            round.push_at(id, m.value, m.at_ms);
            if let Some(text) = m.text {
                round.texts.push((id, text));
            }
        }
    }
}

/// Rounds a derived value (a percentage or a rate) to two decimals: the
/// precision an operator reads, and values the collector stores compactly.
pub fn round2(v: f64) -> f64 {
    (v * 100.0).round() / 100.0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defines_with_agent_labels_sorted_and_once() {
        let mut r = SeriesRegistry::new([("room".to_string(), "A".to_string())]);
        let a = r.define("host_load1", &[]);
        let b = r.define("host_cpu_usage_percent", &[("cpu", "total")]);
        assert_ne!(a, b);
        let defs = r.take_new();
        assert_eq!(defs.len(), 2);
        let names: Vec<_> = defs[1].labels.iter().map(|l| l.name.as_str()).collect();
        assert_eq!(names, ["cpu", "room"]);
        assert!(r.take_new().is_empty());
    }
}
