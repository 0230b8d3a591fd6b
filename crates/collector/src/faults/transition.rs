//! What the rule engine tells the fault stage: which fault (rule, series)
//! opens, rises, fires again, is observed or resolves, with the values and
//! sample times the timeline records.

use std::collections::BTreeMap;
use std::sync::Arc;

use watchpost_model::Severity;

/// Identifies one fault record: one open fault per (rule, series).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct FaultKey {
    /// Rule name.
    pub rule: Arc<str>,
    /// Canonical series, `metric{label="value",...}`, or `agent:ID` for silence.
    pub series: String,
}

/// A fault about to open.
#[derive(Debug, Clone, PartialEq)]
pub struct NewFault {
    /// Which fault.
    pub key: FaultKey,
    /// Severity reached.
    pub severity: Severity,
    /// The value that fired it.
    pub value: Option<f64>,
    /// When it fired (ms).
    pub at_ms: i64,
    /// Rendered summary.
    pub summary: String,
    /// Host it is about.
    pub host: String,
    /// Metric (empty for agent silence).
    pub metric: String,
    /// Labels of the series.
    pub labels: BTreeMap<String, String>,
    /// The fault says its host or device cannot be reached.
    pub unreachable: bool,
    /// Its rule lets it be marked flapping.
    pub flap: bool,
}

/// A change to fault records decided by the engine.
#[derive(Debug, Clone, PartialEq)]
pub enum Transition {
    /// A condition held for its duration.
    Open(NewFault),
    /// A higher tier held: the fault's severity rises.
    Raise {
        /// Which fault.
        key: FaultKey,
        /// New severity.
        severity: Severity,
        /// Value then.
        value: f64,
        /// When (ms).
        at_ms: i64,
        /// Re-rendered summary.
        summary: String,
    },
    /// The condition held again while the fault was still open.
    Refire {
        /// Which fault.
        key: FaultKey,
        /// Value then.
        value: f64,
        /// When (ms).
        at_ms: i64,
    },
    /// Latest value of a firing fault (not a state change).
    Observe {
        /// Which fault.
        key: FaultKey,
        /// Value.
        value: f64,
        /// When (ms).
        at_ms: i64,
    },
    /// The condition cleared.
    Resolve {
        /// Which fault.
        key: FaultKey,
        /// Value then, if any.
        value: Option<f64>,
        /// When (ms).
        at_ms: i64,
        /// Why, for the timeline.
        reason: String,
    },
}

impl Transition {
    /// Whether the fault record's state changes (the ingest path waits for
    /// these to be durable before acknowledging).
    pub fn is_state_change(&self) -> bool {
        !matches!(self, Transition::Observe { .. })
    }

    /// The fault concerned.
    pub fn key(&self) -> &FaultKey {
        match self {
            Transition::Open(f) => &f.key,
            Transition::Raise { key, .. }
            | Transition::Refire { key, .. }
            | Transition::Observe { key, .. }
            | Transition::Resolve { key, .. } => key,
        }
    }
}
