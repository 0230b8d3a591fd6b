//! Notices sent without the outbox.
//!
//! The collector's own faults (its disk is low, its writes fail) matter
//! most exactly when the fault stage cannot record them, so when a change
//! of such a fault cannot be committed the clock loop hands it here as a
//! [`DirectNotice`]: the dispatcher plans it by the routes as it would an
//! outbox row, sends what is due now once to each person on each channel,
//! and logs every outcome. A delivery is reported back as
//! [`Delivery::Direct`](super::dispatch::Delivery::Direct), which the fault
//! stage records once it can write again, marking the matching outbox row
//! delivered, so nobody is told twice of the same thing.

use std::collections::BTreeMap;

use watchpost_model::Severity;
use watchpost_model::api::{Fault, FaultSource, FaultStatus, Member};

use super::render::{Item, Message};
use super::{Kind, NotifyConfig, Subject};
use crate::time::rfc3339;

/// A change of one of the collector's own faults that could not be recorded.
#[derive(Debug, Clone, PartialEq)]
pub struct DirectNotice {
    /// Its rule.
    pub rule: String,
    /// Its series key.
    pub series: String,
    /// Opened, or raised to urgent.
    pub kind: Kind,
    /// Severity now.
    pub severity: Severity,
    /// Rendered summary.
    pub summary: String,
    /// The collector's host.
    pub host: String,
    /// Its labels.
    pub labels: BTreeMap<String, String>,
    /// Its value.
    pub value: Option<f64>,
    /// When it happened (ms).
    pub at_ms: i64,
}

impl DirectNotice {
    /// The fault as a message shows it: not recorded yet, so without an id
    /// or deadlines of its own.
    fn fault(&self) -> Fault {
        let at = rfc3339(self.at_ms);
        Fault {
            id: 0,
            rule: self.rule.clone(),
            severity: self.severity,
            status: FaultStatus::Open,
            host: self.host.clone(),
            metric: String::new(),
            labels: self.labels.clone(),
            summary: format!("{} (not yet on record: the collector cannot write)", self.summary),
            value: self.value,
            count: 1,
            opened_at: at.clone(),
            last_seen_at: at.clone(),
            resolved_at: None,
            response_due: at.clone(),
            resolve_due: at,
            acknowledged_at: None,
            acknowledged_by: None,
            assignee: None,
            closed_at: None,
            cause: None,
            handling: None,
            response_met: None,
            resolve_met: None,
            parent_fault: None,
            source: FaultSource::Rule,
            report: None,
            flapping: false,
            change: None,
            timeline: Vec::new(),
        }
    }

    /// One message per (channel, person) the routes say is due now; later
    /// escalation steps are left to the outbox.
    pub fn messages(&self, config: &NotifyConfig) -> Vec<Message> {
        let subject = Subject {
            rule: &self.rule,
            host: &self.host,
            severity: self.severity,
            labels: &self.labels,
            acknowledged: false,
            unreachable: false,
        };
        let skip = skipped_channel(&self.series);
        config
            .plan(&subject, self.kind, self.at_ms)
            .into_iter()
            .filter(|p| p.due_ms <= self.at_ms && Some(p.channel.as_str()) != skip)
            .map(|p| Message {
                id: format!("wp-direct-{}-{}-{}", self.rule, self.at_ms, p.person.name),
                channel: p.channel,
                person: p.person,
                items: vec![Item {
                    notification_id: 0,
                    kind: self.kind,
                    fault: self.fault(),
                }],
                held: None,
            })
            .collect()
    }
}

/// The channel a fault of series `series` is not sent by: a failing
/// channel's own fault (`channel:NAME`) goes to the other channels.
pub fn skipped_channel(series: &str) -> Option<&str> {
    series.strip_prefix("channel:")
}

/// Who a message went to, as the outbox stores a contact.
pub fn contact(person: &Member) -> String {
    serde_json::to_string(person).unwrap_or_else(|_| "{}".into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_failing_channels_fault_skips_that_channel() {
        assert_eq!(skipped_channel("channel:hook"), Some("hook"));
        assert_eq!(skipped_channel("collector:disk"), None);
    }
}
