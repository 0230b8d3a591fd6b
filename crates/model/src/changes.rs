//! Change requests (变更申请) as the HTTP API shows them: a change is
//! requested with its content, reason, impact, test and rollback plans and
//! window; approved (or rejected) by someone else with the `approver` role;
//! started, then finished as done or rolled back. Every step is on an
//! append-only timeline.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::api::FaultEvent;

/// Where a change request stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ChangeStatus {
    /// Waiting for approval.
    Requested,
    /// Approved: its maintenance window exists.
    Approved,
    /// Refused; no window.
    Rejected,
    /// Being carried out.
    InProgress,
    /// Carried out as planned.
    Done,
    /// Carried out and undone by the rollback plan.
    RolledBack,
    /// Withdrawn before it started.
    Cancelled,
}

impl ChangeStatus {
    /// The snake_case name used in the API and the database.
    pub fn as_str(self) -> &'static str {
        match self {
            ChangeStatus::Requested => "requested",
            ChangeStatus::Approved => "approved",
            ChangeStatus::Rejected => "rejected",
            ChangeStatus::InProgress => "in_progress",
            ChangeStatus::Done => "done",
            ChangeStatus::RolledBack => "rolled_back",
            ChangeStatus::Cancelled => "cancelled",
        }
    }

    /// Parses the snake_case name.
    pub fn parse(s: &str) -> Option<ChangeStatus> {
        Some(match s {
            "requested" => ChangeStatus::Requested,
            "approved" => ChangeStatus::Approved,
            "rejected" => ChangeStatus::Rejected,
            "in_progress" => ChangeStatus::InProgress,
            "done" => ChangeStatus::Done,
            "rolled_back" => ChangeStatus::RolledBack,
            "cancelled" => ChangeStatus::Cancelled,
            _ => return None,
        })
    }
}

/// What a change covers: faults of these hosts, rules and labels are
/// suppressed inside its window (each list: any if empty).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ChangeScope {
    /// Hosts (or devices, rooms).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub hosts: Vec<String>,
    /// Label matchers (`value`, `!value`, `~regex`, `!~regex`).
    #[serde(default, rename = "match", skip_serializing_if = "BTreeMap::is_empty")]
    pub matchers: BTreeMap<String, String>,
    /// Rule names.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub rules: Vec<String>,
}

/// `POST /api/v1/changes`: a change to request.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ChangeBody {
    /// Who requests it (with API users: the signed-in user; this is ignored).
    #[serde(default)]
    pub by: String,
    /// One line.
    pub title: String,
    /// What will be done.
    pub content: String,
    /// Why.
    pub reason: String,
    /// Expected impact.
    pub impact: String,
    /// How it was (or will be) tested.
    pub test_plan: String,
    /// How it is undone.
    pub rollback_plan: String,
    /// Window start (RFC 3339, or `YYYY-MM-DD HH:MM` in the calendar's zone).
    pub starts_at: String,
    /// Window end.
    pub ends_at: String,
    /// What it covers.
    #[serde(flatten)]
    pub scope: ChangeScope,
}

/// `POST /api/v1/changes/{id}/approve|reject|start|finish|cancel`.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ChangeActionBody {
    /// Who acts (with API users: the signed-in user).
    #[serde(default)]
    pub by: String,
    /// Optional with `approve`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub comment: Option<String>,
    /// Required with `reject`, and with `finish` as `rolled_back`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// Required with `finish`: `done` or `rolled_back`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub result: Option<String>,
}

/// `GET /api/v1/changes` and `/changes/{id}`: one change request.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Change {
    /// Record id.
    pub id: i64,
    /// One line.
    pub title: String,
    /// What will be done.
    pub content: String,
    /// Why.
    pub reason: String,
    /// Expected impact.
    pub impact: String,
    /// Test plan.
    pub test_plan: String,
    /// Rollback plan.
    pub rollback_plan: String,
    /// Window start.
    pub starts_at: String,
    /// Window end.
    pub ends_at: String,
    /// What it covers.
    #[serde(flatten)]
    pub scope: ChangeScope,
    /// Where it stands.
    pub status: ChangeStatus,
    /// Who requested it.
    pub requested_by: String,
    /// When.
    pub requested_at: String,
    /// Who approved or rejected it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub decided_by: Option<String>,
    /// The maintenance window its approval created.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub window: Option<i64>,
    /// Why it was rejected or rolled back.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub result_reason: Option<String>,
    /// Faults opened inside its window (filled by `/changes/{id}`).
    #[serde(default)]
    pub faults: Vec<ChangeFault>,
    /// Append-only history (filled by `/changes/{id}`).
    #[serde(default)]
    pub timeline: Vec<FaultEvent>,
}

/// A fault opened inside a change's window.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ChangeFault {
    /// Fault id.
    pub id: i64,
    /// Its rule.
    pub rule: String,
    /// Its host.
    pub host: String,
    /// Its status now.
    pub status: String,
    /// Its summary.
    pub summary: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_round_trip() {
        for s in [
            ChangeStatus::Requested,
            ChangeStatus::Approved,
            ChangeStatus::Rejected,
            ChangeStatus::InProgress,
            ChangeStatus::Done,
            ChangeStatus::RolledBack,
            ChangeStatus::Cancelled,
        ] {
            assert_eq!(ChangeStatus::parse(s.as_str()), Some(s));
            assert_eq!(
                serde_json::to_string(&s).expect("json"),
                format!("\"{}\"", s.as_str())
            );
        }
    }
}
