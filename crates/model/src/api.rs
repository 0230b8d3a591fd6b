//! JSON shapes of the collector's HTTP API (`/api/v1/...`). The collector
//! serialises them, `watchpostctl` and tests deserialise them: one
//! definition for both sides. Times are RFC 3339 strings in UTC; sample
//! points are `[timestamp_ms, value]` pairs to keep large answers small.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::Severity;

/// Error body of every non-2xx answer: `{"error": {"code", "message"}}`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ErrorBody {
    /// The error.
    pub error: ErrorDetail,
}

/// What went wrong, for people (`message`) and scripts (`code`).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ErrorDetail {
    /// Stable machine-readable code, e.g. `bad_request`, `not_found`.
    pub code: String,
    /// What is wrong and where.
    pub message: String,
}

/// `GET /api/v1/agents`: one agent the collector knows.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Agent {
    /// The agent's id (from its config, default its hostname).
    pub id: String,
    /// The host the agent reports for; the `host` label of its series.
    pub hostname: String,
    /// The agent's software version.
    pub version: String,
    /// Remote address of its current or last connection.
    pub address: String,
    /// Whether a stream is open now.
    pub connected: bool,
    /// When the current connection opened (absent while disconnected).
    pub connected_since: Option<String>,
    /// Last message received from it.
    pub last_seen: String,
    /// First time this collector saw it.
    pub first_seen: String,
    /// Series it has defined on its current connection.
    pub series: u64,
    /// Labels it adds to every series.
    pub labels: BTreeMap<String, String>,
    /// Its clock minus the collector's (seconds), as measured over its
    /// current or last connection; absent before any measurement.
    #[serde(default)]
    pub clock_offset: Option<f64>,
    /// The round trip of that measurement (seconds).
    #[serde(default)]
    pub clock_rtt: Option<f64>,
    /// Samples refused in the last minute ("connected, but nothing
    /// arrives" is never silent).
    #[serde(default)]
    pub refused_last_minute: u64,
    /// Why, as the agent was last told.
    #[serde(default)]
    pub refused_reason: Option<String>,
    /// The sequence of the last batch applied and acknowledged (the
    /// agent's spool holds what comes after it).
    #[serde(default)]
    pub last_sequence: u64,
}

/// `GET /api/v1/metric-names`: one metric and how many series it has.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct MetricName {
    /// Metric name.
    pub metric: String,
    /// Series of it in the hot store.
    pub series: usize,
}

/// `GET /api/v1/series`: one series and its latest sample.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Series {
    /// Metric name.
    pub metric: String,
    /// All labels, `host` included.
    pub labels: BTreeMap<String, String>,
    /// Timestamp of the latest sample (ms since the epoch), if any.
    pub last_timestamp_ms: Option<i64>,
    /// The latest value, if any (NaN and ±Inf as the strings "NaN", "+Inf", "-Inf").
    #[serde(with = "float::option")]
    pub last_value: Option<f64>,
}

/// `GET /api/v1/query`: the points of one series.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SeriesPoints {
    /// Metric name.
    pub metric: String,
    /// All labels, `host` included.
    pub labels: BTreeMap<String, String>,
    /// `[timestamp_ms, value]`, oldest first (NaN and ±Inf as the strings
    /// "NaN", "+Inf", "-Inf": JSON has no numbers for them).
    #[serde(with = "float::points")]
    pub points: Vec<(i64, f64)>,
    /// The resolution answered: `raw` (the samples, in `points`), `1m`
    /// or `1h` (aggregates, in `rollup`).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub step: String,
    /// At `1m` or `1h`: one aggregate per slot that has samples, oldest first.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub rollup: Vec<RollupPoint>,
    /// Spans the answer lacks because their rollup file was damaged
    /// (quarantined): never read as zeros.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub missing: Vec<MissingSpan>,
}

/// The finite samples of one slot (a minute or an hour) summarised.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct RollupPoint {
    /// The slot's start (ms since the epoch).
    pub t: i64,
    /// Smallest sample.
    pub min: f64,
    /// Largest sample.
    pub max: f64,
    /// Mean: the samples' sum over their count.
    pub mean: f64,
    /// Samples summarised.
    pub count: u64,
}

/// A span a history answer lacks.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MissingSpan {
    /// First millisecond.
    pub from_ms: i64,
    /// Last millisecond.
    pub until_ms: i64,
    /// The quarantined file that held it.
    pub file: String,
}

/// State of a fault record.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum FaultStatus {
    /// Firing, nobody has responded.
    Open,
    /// Firing, someone has responded.
    Acknowledged,
    /// The condition cleared or someone resolved it.
    Resolved,
    /// Resolved and documented with cause and handling.
    Closed,
    /// Firing inside a maintenance window or behind a failed parent.
    Suppressed,
}

impl FaultStatus {
    /// The lowercase name used in the API and the database.
    pub fn as_str(self) -> &'static str {
        match self {
            FaultStatus::Open => "open",
            FaultStatus::Acknowledged => "acknowledged",
            FaultStatus::Resolved => "resolved",
            FaultStatus::Closed => "closed",
            FaultStatus::Suppressed => "suppressed",
        }
    }

    /// Parses the lowercase name.
    pub fn parse(s: &str) -> Option<FaultStatus> {
        Some(match s {
            "open" => FaultStatus::Open,
            "acknowledged" => FaultStatus::Acknowledged,
            "resolved" => FaultStatus::Resolved,
            "closed" => FaultStatus::Closed,
            "suppressed" => FaultStatus::Suppressed,
            _ => return None,
        })
    }
}

/// `GET /api/v1/faults` and `/faults/{id}`: one fault record.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Fault {
    /// Record id.
    pub id: i64,
    /// Name of the rule that fired.
    pub rule: String,
    /// Highest severity reached while open.
    pub severity: Severity,
    /// Current state.
    pub status: FaultStatus,
    /// Host the fault is about.
    pub host: String,
    /// Metric of the series that fired (empty for agent silence).
    pub metric: String,
    /// Labels of the series that fired.
    pub labels: BTreeMap<String, String>,
    /// Rendered from the rule's summary template.
    pub summary: String,
    /// Value that fired it (latest value while open).
    pub value: Option<f64>,
    /// How many times the condition fired while this record was open.
    pub count: i64,
    /// When the record opened.
    pub opened_at: String,
    /// When the condition was last seen holding.
    pub last_seen_at: String,
    /// When it resolved.
    pub resolved_at: Option<String>,
    /// Respond by.
    pub response_due: String,
    /// Resolve by.
    pub resolve_due: String,
    /// When it was acknowledged.
    #[serde(default)]
    pub acknowledged_at: Option<String>,
    /// Who acknowledged it.
    #[serde(default)]
    pub acknowledged_by: Option<String>,
    /// Who is handling it.
    #[serde(default)]
    pub assignee: Option<String>,
    /// When it was closed.
    #[serde(default)]
    pub closed_at: Option<String>,
    /// Cause, recorded at closing.
    #[serde(default)]
    pub cause: Option<String>,
    /// How it was handled, recorded at closing.
    #[serde(default)]
    pub handling: Option<String>,
    /// Whether the response deadline was met (absent: not yet decided).
    #[serde(default)]
    pub response_met: Option<bool>,
    /// Whether the resolve deadline was met (absent: not yet decided).
    #[serde(default)]
    pub resolve_met: Option<bool>,
    /// The parent's unreachability fault that suppressed this one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parent_fault: Option<i64>,
    /// Where it came from: a rule, or a person who reported it.
    #[serde(default)]
    pub source: FaultSource,
    /// A reported fault: who reported it, who entered it and when, the follow-up.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub report: Option<Report>,
    /// Its state changes too often: they are recorded, not notified.
    #[serde(default)]
    pub flapping: bool,
    /// The change request whose window it opened in.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub change: Option<i64>,
    /// Append-only history; filled by `/faults/{id}`, empty in lists.
    #[serde(default)]
    pub timeline: Vec<FaultEvent>,
}

/// Where a fault record came from.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum FaultSource {
    /// A threshold rule (or the collector's own health) fired.
    #[default]
    Rule,
    /// A person reported it (the service hotline) and an operator entered it.
    Reported,
    /// An emergency drill.
    Drill,
}

impl FaultSource {
    /// The lowercase name used in the API and the database.
    pub fn as_str(self) -> &'static str {
        match self {
            FaultSource::Rule => "rule",
            FaultSource::Reported => "reported",
            FaultSource::Drill => "drill",
        }
    }

    /// Parses the lowercase name.
    pub fn parse(s: &str) -> Option<FaultSource> {
        Some(match s {
            "rule" => FaultSource::Rule,
            "reported" => FaultSource::Reported,
            "drill" => FaultSource::Drill,
            _ => return None,
        })
    }
}

/// Who reported a fault and how to tell them it was handled.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Reporter {
    /// Name (and unit, as they gave it).
    pub name: String,
    /// Phone, for the SMS or webhook gateway.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub phone: Option<String>,
    /// E-mail address.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
}

impl Reporter {
    /// Reads `"name, phone"`, `"name, e-mail"` or `"name, phone, e-mail"`
    /// (a Chinese comma works too); a lone phone or address is its own name.
    pub fn parse(text: &str) -> Result<Reporter, String> {
        let parts: Vec<&str> = text
            .split([',', '，'])
            .map(str::trim)
            .filter(|p| !p.is_empty())
            .collect();
        let Some(first) = parts.first() else {
            return Err("reporter is empty: give \"name, phone\" or \"name, e-mail\"".into());
        };
        let mut r = Reporter::default();
        let mut contact = |p: &str| -> Result<(), String> {
            if p.contains('@') {
                if r.email.is_some() {
                    return Err(format!("reporter {text:?}: two e-mail addresses"));
                }
                r.email = Some(p.to_string());
            } else if is_phone(p) {
                if r.phone.is_some() {
                    return Err(format!("reporter {text:?}: two phone numbers"));
                }
                r.phone = Some(p.to_string());
            } else {
                return Err(format!(
                    "reporter {text:?}: {p:?} is neither a phone number nor an e-mail address"
                ));
            }
            Ok(())
        };
        let rest = if parts.len() == 1 && (first.contains('@') || is_phone(first)) {
            &parts[..]
        } else {
            &parts[1..]
        };
        for p in rest {
            contact(p)?;
        }
        r.name = first.to_string();
        Ok(r)
    }

    /// `name <contact>` for a timeline.
    pub fn text(&self) -> String {
        let contacts: Vec<&str> = self.phone.iter().chain(&self.email).map(String::as_str).collect();
        if contacts.is_empty() || contacts == [self.name.as_str()] {
            self.name.clone()
        } else {
            format!("{} ({})", self.name, contacts.join(", "))
        }
    }
}

/// Digits with the separators people write (`+86 138-0000-0000`).
fn is_phone(s: &str) -> bool {
    s.chars().filter(char::is_ascii_digit).count() >= 3
        && s.chars().all(|c| c.is_ascii_digit() || " +-()".contains(c))
}

/// What a reported fault keeps of its report.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Report {
    /// Who reported it (absent: not given).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reporter: Option<Reporter>,
    /// When the operator entered it (the opening may be earlier: the call came first).
    pub entered_at: String,
    /// Who entered it.
    pub entered_by: String,
    /// The reporter's follow-up (回访), once the fault is closed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub feedback: Option<Feedback>,
}

/// The reporter's satisfaction with the handling.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Feedback {
    /// 1 (very dissatisfied) to 5 (very satisfied).
    pub satisfaction: u8,
    /// What they said.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub comment: Option<String>,
    /// When it was recorded.
    pub at: String,
    /// Who recorded it.
    pub by: String,
}

/// `POST /api/v1/faults`: a fault someone reported.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReportBody {
    /// Who enters it (with API users: the signed-in user; this is ignored).
    #[serde(default)]
    pub by: String,
    /// urgent, general or minor (紧急, 一般, 轻微).
    pub severity: String,
    /// The host (or device, room) it is about.
    pub host: String,
    /// What the reporter said.
    pub summary: String,
    /// Who reported it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reporter: Option<Reporter>,
    /// Labels for routing (`team`, `system`, ...).
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
    /// When the call came in (RFC 3339, or `YYYY-MM-DD HH:MM` in the
    /// calendar's zone); default now. Never in the future.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub opened_at: Option<String>,
}

/// `POST /api/v1/drills`: an emergency drill (应急演练) through the real
/// alert chain.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DrillBody {
    /// Who starts it (with API users: the signed-in user; this is ignored).
    #[serde(default)]
    pub by: String,
    /// A named `[[route]]` to go through (only that route).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub route: Option<String>,
    /// urgent, general or minor; default the route's first severity, else urgent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub severity: Option<String>,
    /// The host the drill fault names (and routes match on); default `drill`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub host: Option<String>,
    /// What the drill is about.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub summary: Option<String>,
    /// Labels for routing (`team`, `system`, ...).
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
}

/// `GET /api/v1/drills/{id}`: how a drill went.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct DrillReport {
    /// The drill's fault record.
    pub fault: Fault,
    /// Who started it.
    pub started_by: String,
    /// When (RFC 3339).
    pub started_at: String,
    /// The route it was started for, if one was named.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub route: Option<String>,
    /// Every notification: who on which channel, when, and how it went.
    pub notifications: Vec<Notification>,
    /// Delivered, failed, pending and cancelled notifications.
    pub delivered: usize,
    /// Failed for good.
    pub failed: usize,
    /// Not sent yet.
    pub pending: usize,
    /// Escalation steps that notified someone (0: the first).
    pub steps_run: Vec<i64>,
    /// Seconds from the start to the first delivery.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub first_delivery_after_s: Option<f64>,
    /// Who acknowledged it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub acknowledged_by: Option<String>,
    /// Seconds from the start to the acknowledgement.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub acknowledged_after_s: Option<f64>,
}

/// One entry of a fault's timeline.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct FaultEvent {
    /// When it happened.
    pub at: String,
    /// Who did it: `system` for the rule engine, else a user.
    pub actor: String,
    /// `opened`, `severity_raised`, `refired`, `resolved`, ...
    pub kind: String,
    /// Human text.
    pub message: String,
}

/// `GET /healthz`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Health {
    /// `ok` when the collector is serving.
    pub status: String,
    /// Collector version.
    pub version: String,
    /// The working calendar's time zone: watchpostctl shows times in it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub time_zone: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fault_status_round_trips() {
        for s in [
            FaultStatus::Open,
            FaultStatus::Acknowledged,
            FaultStatus::Resolved,
            FaultStatus::Closed,
            FaultStatus::Suppressed,
        ] {
            assert_eq!(FaultStatus::parse(s.as_str()), Some(s));
            let json = serde_json::to_string(&s).expect("serialises");
            assert_eq!(json, format!("\"{}\"", s.as_str()));
        }
        assert_eq!(FaultStatus::parse("gone"), None);
    }

    #[test]
    fn reporters_are_read_as_people_write_them() {
        let r = Reporter::parse("王五（社保中心）, 138-0013-8000").expect("parses");
        assert_eq!(r.name, "王五（社保中心）");
        assert_eq!(r.phone.as_deref(), Some("138-0013-8000"));
        let r = Reporter::parse("Wang Wu，wang@example.gov.cn, +86 13800138000").expect("parses");
        assert_eq!(r.email.as_deref(), Some("wang@example.gov.cn"));
        assert_eq!(r.phone.as_deref(), Some("+86 13800138000"));
        assert_eq!(r.text(), "Wang Wu (+86 13800138000, wang@example.gov.cn)");
        let lone = Reporter::parse("wang@example.gov.cn").expect("parses");
        assert_eq!(lone.email.as_deref(), Some("wang@example.gov.cn"));
        assert_eq!(lone.text(), "wang@example.gov.cn");
        assert_eq!(Reporter::parse("王五").expect("a name alone").phone, None);
        let err = Reporter::parse("王五, room 301").expect_err("not a contact");
        assert!(err.contains("\"room 301\" is neither"), "{err}");
        assert!(Reporter::parse(" , ").is_err());
    }
}

/// `GET /api/v1/deadline?severity=S&opened_at=T`: the deadlines the
/// collector would give a fault, on its calendar and policy.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct DeadlineAnswer {
    /// The severity asked about.
    pub severity: Severity,
    /// The opening time asked about (RFC 3339).
    pub opened_at: String,
    /// Respond by (RFC 3339, UTC).
    pub response_due: String,
    /// Resolve by (RFC 3339, UTC).
    pub resolve_due: String,
    /// The policy's response time as written (`"4h"`, `"1 workday"`).
    pub respond: String,
    /// The policy's resolve time as written.
    pub resolve: String,
    /// Which calendar counted them.
    pub calendar: String,
    /// The calendar's time zone.
    pub time_zone: String,
}

/// Body of `POST /api/v1/faults/{id}/ack|resolve|close|notes|assign`. Which
/// fields are needed depends on the action: `resolve` needs `comment`,
/// `close` needs `cause` and `handling`, `notes` needs `text`, `assign`
/// needs `assignee`.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FaultActionBody {
    /// Who acts. With API users (the default) the collector records the
    /// authenticated user and ignores this; an open API records it as given.
    #[serde(default)]
    pub by: String,
    /// Optional with `ack`, required with `resolve`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub comment: Option<String>,
    /// Required with `close`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cause: Option<String>,
    /// Required with `close`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub handling: Option<String>,
    /// Required with `notes`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub text: Option<String>,
    /// Required with `assign`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub assignee: Option<String>,
    /// Required with `feedback`: 1 to 5.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub satisfaction: Option<u8>,
}

/// A person on a roster, with the ways to reach them.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Member {
    /// Name (unique within a team).
    pub name: String,
    /// Phone number.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub phone: Option<String>,
    /// E-mail address.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
    /// DingTalk user id or mobile.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dingtalk: Option<String>,
    /// WeCom (企业微信) user id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub wecom: Option<String>,
    /// Feishu user id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub feishu: Option<String>,
}

/// `GET /api/v1/oncall?at=T`: who is on duty in one team.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct OnCall {
    /// Team name.
    pub team: String,
    /// On duty now (empty before a rotation starts).
    pub on_duty: Vec<Member>,
    /// Why: the rotation, or an override and its reason.
    pub reason: String,
    /// When this duty ends (RFC 3339), if known.
    pub until: Option<String>,
    /// The team lead (second escalation step).
    pub lead: Option<Member>,
    /// Managers (top escalation step).
    pub managers: Vec<Member>,
}

/// `POST /api/v1/silences`: a maintenance window to create.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MaintenanceBody {
    /// Who creates it (with API users: the signed-in user; this is ignored).
    #[serde(default)]
    pub by: String,
    /// Only this host.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub host: Option<String>,
    /// Only this rule.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rule: Option<String>,
    /// Label matchers (`value`, `!value`, `~regex`, `!~regex`).
    #[serde(default, rename = "match")]
    pub matchers: BTreeMap<String, String>,
    /// Start (RFC 3339); default now.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub starts_at: Option<String>,
    /// End (RFC 3339).
    pub ends_at: String,
    /// Why.
    pub reason: String,
    /// The approved change ticket.
    pub ticket: String,
}

/// A maintenance window.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct MaintenanceWindow {
    /// Record id.
    pub id: i64,
    /// Only this host.
    pub host: Option<String>,
    /// Only this rule.
    pub rule: Option<String>,
    /// Label matchers.
    #[serde(rename = "match")]
    pub matchers: BTreeMap<String, String>,
    /// Start.
    pub starts_at: String,
    /// End.
    pub ends_at: String,
    /// Why.
    pub reason: String,
    /// Change ticket.
    pub ticket: String,
    /// Who created it.
    pub created_by: String,
    /// When.
    pub created_at: String,
    /// In force now.
    pub active: bool,
    /// Only these hosts (a change's window).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub hosts: Vec<String>,
    /// Only these rules.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub rules: Vec<String>,
    /// The change request whose approval created it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub change: Option<i64>,
}

/// `GET /api/v1/notifications`: one row of the notification outbox.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Notification {
    /// Row id.
    pub id: i64,
    /// The fault it is about.
    pub fault_id: i64,
    /// Why: opened, reopened, escalated, urgent, overdue, unsuppressed, resolved.
    pub kind: String,
    /// Escalation step (0: first).
    pub step: i64,
    /// Channel name.
    pub channel: String,
    /// Person.
    pub recipient: String,
    /// pending, delivered, failed or cancelled.
    pub status: String,
    /// Sends tried.
    pub attempts: i64,
    /// Queued at (RFC 3339).
    pub created_at: String,
    /// Due (next attempt) at.
    pub due_at: String,
    /// Delivered at.
    pub sent_at: Option<String>,
    /// The message it went out in.
    pub message_id: Option<String>,
    /// Last failure, or why it was cancelled.
    pub last_error: Option<String>,
}

/// What a user may do. Each role includes the ones before it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// Reads everything but users, credentials and the audit log.
    Viewer,
    /// Also acknowledges, assigns, resolves and closes faults, writes
    /// notes and maintenance windows, requests and carries out changes.
    Operator,
    /// Also approves or rejects other people's change requests.
    Approver,
    /// Also manages users, agents (enrolment, revocation) and reads the audit log.
    Admin,
}

impl Role {
    /// The lowercase name.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Viewer => "viewer",
            Role::Operator => "operator",
            Role::Approver => "approver",
            Role::Admin => "admin",
        }
    }

    /// Parses the lowercase name.
    pub fn parse(s: &str) -> Option<Role> {
        Some(match s {
            "viewer" => Role::Viewer,
            "operator" => Role::Operator,
            "approver" => Role::Approver,
            "admin" => Role::Admin,
            _ => return None,
        })
    }
}

/// `GET /api/v1/whoami`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Whoami {
    /// User name.
    pub user: String,
    /// Role.
    pub role: Role,
}

/// `GET /api/v1/users`: one user.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct User {
    /// Login name.
    pub name: String,
    /// Role.
    pub role: Role,
    /// Created at (RFC 3339).
    pub created_at: String,
    /// Disabled users cannot log in and their tokens stop working.
    pub disabled: bool,
}

/// `POST /api/v1/users`: a user to create.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewUser {
    /// Login name.
    pub name: String,
    /// Role.
    pub role: String,
    /// Password; absent: the collector generates one and answers it once.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub password: Option<String>,
}

/// The answer to creating a user: the password, shown this once.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CreatedUser {
    /// Login name.
    pub name: String,
    /// Role.
    pub role: Role,
    /// The password (generated or as given).
    pub password: String,
}

/// `POST /api/v1/tokens`: an API token to create for the caller.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewToken {
    /// What it is for ("backup script").
    pub name: String,
    /// Lifetime ("90d"); absent: does not expire.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires_in: Option<String>,
}

/// `GET /api/v1/tokens`: one API token (never its secret).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ApiToken {
    /// Token id.
    pub id: i64,
    /// Owner.
    pub user: String,
    /// What it is for.
    pub name: String,
    /// Created at.
    pub created_at: String,
    /// Expires at, if it does.
    pub expires_at: Option<String>,
    /// Revoked at, if it was.
    pub revoked_at: Option<String>,
    /// Last used at.
    pub last_used_at: Option<String>,
}

/// The answer to creating a token: its secret, shown this once.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CreatedToken {
    /// Token id.
    pub id: i64,
    /// The secret to send as `Authorization: Bearer …`.
    pub token: String,
    /// Expires at, if it does.
    pub expires_at: Option<String>,
}

/// `POST /api/v1/agents/{id}/enroll`: optional lifetimes.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EnrollBody {
    /// How long the enrolment token can be used ("24h" when absent).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token_valid_for: Option<String>,
    /// Lifetime of the credential the agent receives ("365d" when absent).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub credential_valid_for: Option<String>,
}

/// The answer to enrolling an agent: a one-time token for its config.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Enrollment {
    /// The agent id the token is for.
    pub agent: String,
    /// Goes in the agent's `enroll_token`; works once.
    pub token: String,
    /// The token must be used before this.
    pub expires_at: String,
}

/// `GET /api/v1/agent-credentials`: an agent's credential (never its secret).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AgentCredential {
    /// Agent id.
    pub agent: String,
    /// The host it is bound to: its series carry this `host`.
    pub hostname: String,
    /// Issued at.
    pub issued_at: String,
    /// Expires at.
    pub expires_at: Option<String>,
    /// Revoked at.
    pub revoked_at: Option<String>,
}

/// `GET /api/v1/audit`: one write through the API.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AuditEntry {
    /// Entry id (increasing).
    pub id: i64,
    /// When.
    pub at: String,
    /// Who (`-` when the request carried no valid credential).
    pub actor: String,
    /// Their role then.
    pub role: Option<Role>,
    /// From where (peer address).
    pub address: String,
    /// HTTP method.
    pub method: String,
    /// Path and query.
    pub path: String,
    /// Response status.
    pub status: u16,
    /// The request body, with passwords and secrets replaced by "***".
    pub detail: String,
}

/// Values in JSON: finite numbers as numbers, NaN and ±Inf as the strings
/// "NaN", "+Inf" and "-Inf" (as Prometheus writes them), which JSON numbers
/// cannot hold; both forms are read back.
pub mod float {
    use serde::de::Error as _;
    use serde::{Deserialize, Deserializer, Serialize, Serializer};

    #[derive(Serialize, Deserialize)]
    #[serde(untagged)]
    enum Wire<'a> {
        Number(f64),
        Text(std::borrow::Cow<'a, str>),
    }

    fn to_wire(v: f64) -> Wire<'static> {
        if v.is_nan() {
            Wire::Text("NaN".into())
        } else if v == f64::INFINITY {
            Wire::Text("+Inf".into())
        } else if v == f64::NEG_INFINITY {
            Wire::Text("-Inf".into())
        } else {
            Wire::Number(v)
        }
    }

    fn from_wire<E: serde::de::Error>(w: Wire<'_>) -> Result<f64, E> {
        match w {
            Wire::Number(v) => Ok(v),
            Wire::Text(t) => match t.as_ref() {
                "NaN" => Ok(f64::NAN),
                "+Inf" | "Inf" => Ok(f64::INFINITY),
                "-Inf" => Ok(f64::NEG_INFINITY),
                other => Err(E::custom(format!("{other:?} is not a number, NaN, +Inf or -Inf"))),
            },
        }
    }

    /// `Option<f64>`.
    pub mod option {
        use super::*;

        /// Serializes.
        pub fn serialize<S: Serializer>(v: &Option<f64>, s: S) -> Result<S::Ok, S::Error> {
            v.map(to_wire).serialize(s)
        }

        /// Deserializes.
        pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<f64>, D::Error> {
            Option::<Wire<'de>>::deserialize(d)?.map(from_wire).transpose()
        }
    }

    /// `Vec<(i64, f64)>`.
    pub mod points {
        use super::*;

        /// Serializes.
        pub fn serialize<S: Serializer>(v: &[(i64, f64)], s: S) -> Result<S::Ok, S::Error> {
            s.collect_seq(v.iter().map(|(t, x)| (t, to_wire(*x))))
        }

        /// Deserializes.
        pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<(i64, f64)>, D::Error> {
            Vec::<(i64, Wire<'de>)>::deserialize(d)?
                .into_iter()
                .map(|(t, w)| from_wire(w).map(|x| (t, x)))
                .collect::<Result<_, D::Error>>()
                .map_err(D::Error::custom)
        }
    }

    #[cfg(test)]
    mod tests {
        #[derive(serde::Serialize, serde::Deserialize)]
        struct P {
            #[serde(with = "super::points")]
            p: Vec<(i64, f64)>,
            #[serde(with = "super::option")]
            o: Option<f64>,
        }

        #[test]
        fn non_finite_values_round_trip_as_strings() {
            let p = P {
                p: vec![
                    (1, 1.5),
                    (2, f64::NAN),
                    (3, f64::INFINITY),
                    (4, f64::NEG_INFINITY),
                ],
                o: Some(f64::NAN),
            };
            let text = serde_json::to_string(&p).expect("json");
            assert_eq!(
                text,
                r#"{"p":[[1,1.5],[2,"NaN"],[3,"+Inf"],[4,"-Inf"]],"o":"NaN"}"#
            );
            let back: P = serde_json::from_str(&text).expect("back");
            assert_eq!(back.p[0], (1, 1.5));
            assert!(back.p[1].1.is_nan() && back.p[2].1 == f64::INFINITY && back.p[3].1 == f64::NEG_INFINITY);
            assert!(serde_json::from_str::<P>(r#"{"p":[[1,"x"]],"o":null}"#).is_err());
        }
    }
}

/// A backup (`GET /api/v1/backups`, `POST /api/v1/backups`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Backup {
    /// Its folder.
    pub path: String,
    /// When it was taken (RFC 3339), from its manifest.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created_at: Option<String>,
    /// Files in it.
    pub files: usize,
    /// Bytes in all.
    pub bytes: u64,
    /// Why its manifest cannot be read (an incomplete or damaged backup).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub problem: Option<String>,
}

/// `POST /api/v1/backups`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BackupBody {
    /// Where to (default `[backup] dir`), on the collector's machine.
    #[serde(default)]
    pub dir: Option<String>,
}
