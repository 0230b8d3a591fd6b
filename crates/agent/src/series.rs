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
