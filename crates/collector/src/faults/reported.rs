//! Faults people report (the service hotline) and what their reporters
//! hear: a reported fault opens with the same deadlines, routes,
//! escalation, timeline and close rules as a rule's fault; its reporter is
//! told through the outbox when it resolves and when it closes, and their
//! satisfaction (回访) is recorded once it is closed.

use std::collections::BTreeMap;
use std::sync::Arc;

use watchpost_model::Severity;
use watchpost_model::api::{FaultSource, FaultStatus, Reporter};

use super::ActionError;
use super::event::EventKind;
use super::lifecycle::{Lifecycle, OpenRecord};
use super::transition::FaultKey;
use crate::db::records::{FaultRecords, NewRecord, RecordError, RecordPatch};
use crate::notify::Kind;
use crate::time::rfc3339;

/// The rule name reported faults are filed under.
pub const REPORTED_RULE: &str = "reported";
/// The rule name drills are filed under.
pub const DRILL_RULE: &str = "drill";

/// A fault someone reported, or a drill someone started, checked by the
/// caller.
#[derive(Debug, Clone, PartialEq)]
pub struct ReportedFault {
    /// `Reported` or `Drill`; `Rule` with `rule` for a fault the collector
    /// opens itself (an equipment change).
    pub source: FaultSource,
    /// The rule it is filed under, instead of `reported` or `drill`.
    pub rule: Option<Arc<str>>,
    pub severity: Severity,
    pub host: String,
    pub summary: String,
    pub reporter: Option<Reporter>,
    pub labels: BTreeMap<String, String>,
    /// When the call came in (ms): deadlines count from here.
    pub opened_at_ms: i64,
    /// When it was entered, and by whom.
    pub entered_at_ms: i64,
    pub entered_by: String,
}

impl Lifecycle {
    /// Opens a reported fault or a drill; returns its id. Deadlines count
    /// from the call, notifications from the entry. A maintenance window
    /// does not suppress it: a person is waiting for an answer (or the
    /// drill was started on purpose). A drill goes through routes,
    /// escalation and channels like any fault; its messages say it is one.
    pub(super) fn report(
        &mut self,
        rec: &mut dyn FaultRecords,
        r: &ReportedFault,
    ) -> Result<Result<i64, ActionError>, RecordError> {
        if r.opened_at_ms > r.entered_at_ms {
            return Ok(Err(ActionError::Conflict(format!(
                "opened_at {} is in the future",
                rfc3339(r.opened_at_ms)
            ))));
        }
        let rule: &str = match (&r.rule, r.source) {
            (Some(name), _) => name,
            (None, FaultSource::Drill) => DRILL_RULE,
            (None, _) => REPORTED_RULE,
        };
        // One live record per (rule, series): each report is a series of its own.
        let mut n = 0;
        let series = loop {
            let s = format!("{rule}:{}:{n}", r.entered_at_ms);
            if rec.latest(rule, &s)?.is_none() {
                break s;
            }
            n += 1;
        };
        let (respond, resolve) = self.deadlines(r.severity, r.opened_at_ms);
        let id = rec.insert(&NewRecord {
            rule,
            series_key: &series,
            host: &r.host,
            metric: "",
            labels: &r.labels,
            severity: r.severity,
            status: FaultStatus::Open,
            summary: &r.summary,
            value: None,
            opened_at_ms: r.opened_at_ms,
            response_due_ms: respond,
            resolve_due_ms: resolve,
            window_id: None,
            unreachable: false,
            parent_fault_id: None,
            source: r.source,
            reporter: r.reporter.as_ref(),
            entered: Some((r.entered_at_ms, &r.entered_by)),
            change_id: None,
        })?;
        self.opened_in_transaction(
            FaultKey {
                rule: Arc::from(rule),
                series,
            },
            OpenRecord {
                id,
                severity: r.severity,
                opened_at_ms: r.opened_at_ms,
            },
        );
        let who = r
            .reporter
            .as_ref()
            .map_or_else(|| "someone who left no name".to_string(), Reporter::text);
        let late = if r.opened_at_ms < r.entered_at_ms {
            format!("; entered at {}", rfc3339(r.entered_at_ms))
        } else {
            String::new()
        };
        let opened = if r.source == FaultSource::Rule {
            format!("opened by {}", r.entered_by)
        } else if r.source == FaultSource::Drill {
            let route = r
                .labels
                .get(crate::notify::DRILL_ROUTE_LABEL)
                .map_or_else(|| "the routes that take it".to_string(), |n| format!("route {n}"));
            format!("drill started by {} through {route}", r.entered_by)
        } else {
            format!("reported by {who}")
        };
        rec.append_event(
            id,
            r.opened_at_ms,
            &r.entered_by,
            EventKind::Opened.as_str(),
            &format!(
                "{opened} at severity {}: {}{late}; respond by {}, resolve by {}",
                r.severity,
                r.summary,
                rfc3339(respond),
                rfc3339(resolve)
            ),
        )?;
        if let Some(w) = self
            .windows
            .iter()
            .find(|w| w.covers(rule, &r.host, &r.labels, r.opened_at_ms))
        {
            Self::event(
                rec,
                id,
                r.entered_at_ms,
                EventKind::Note,
                &format!(
                    "opened inside maintenance window #{} ({}): a {} is notified all the same",
                    w.id,
                    w.ticket,
                    if r.source == FaultSource::Drill {
                        "drill"
                    } else {
                        "reported fault"
                    }
                ),
            )?;
        }
        self.enqueue(rec, id, Kind::Opened, r.entered_at_ms)?;
        Ok(Ok(id))
    }

    /// A reported fault resolved or closed: its reporter is told through
    /// the outbox, or the timeline says why they cannot be.
    pub(super) fn tell_reporter(
        &self,
        rec: &mut dyn FaultRecords,
        id: i64,
        kind: Kind,
        at_ms: i64,
    ) -> Result<(), RecordError> {
        let Some(row) = rec.record(id)? else {
            return Ok(());
        };
        if row.source != FaultSource::Reported {
            return Ok(());
        }
        let Some(reporter) = &row.reporter else {
            return Self::event(
                rec,
                id,
                at_ms,
                EventKind::NotifyQueued,
                "the reporter is not told: none was recorded",
            );
        };
        match self.settings.notify.reporter_plan(reporter, kind, at_ms) {
            Ok(planned) => {
                rec.queue_notification(id, &planned, at_ms)?;
                Self::event(
                    rec,
                    id,
                    at_ms,
                    EventKind::NotifyQueued,
                    &format!(
                        "notifications queued ({}): now the reporter {} by {}",
                        kind.as_str(),
                        reporter.text(),
                        planned.channel
                    ),
                )
            }
            Err(why) => Self::event(
                rec,
                id,
                at_ms,
                EventKind::NotifyQueued,
                &format!("the reporter {} is not told: {why}", reporter.text()),
            ),
        }
    }

    /// The reporter's follow-up on a closed reported fault: recorded once;
    /// later feedback goes on the timeline as a note.
    pub(super) fn feedback(
        &self,
        rec: &mut dyn FaultRecords,
        id: i64,
        actor: &str,
        at_ms: i64,
        satisfaction: u8,
        comment: Option<&str>,
    ) -> Result<Result<(), ActionError>, RecordError> {
        let Some(r) = rec.record(id)? else {
            return Ok(Err(ActionError::NotFound(id)));
        };
        if r.source != FaultSource::Reported {
            return Ok(Err(ActionError::Conflict(format!(
                "fault {id} came from a {}, not from a reporter: there is nobody to ask for feedback",
                r.source.as_str()
            ))));
        }
        if r.status != FaultStatus::Closed {
            return Ok(Err(ActionError::Conflict(format!(
                "fault {id} is {}: feedback is recorded once it is closed",
                r.status.as_str()
            ))));
        }
        let said = comment.map(|c| format!(": {c}")).unwrap_or_default();
        if let Some(first) = r.satisfaction {
            rec.append_event(
                id,
                at_ms,
                actor,
                EventKind::Note.as_str(),
                &format!(
                    "later feedback, satisfaction {satisfaction}/5{said} (the recorded satisfaction stays {first}/5)"
                ),
            )?;
            return Ok(Ok(()));
        }
        rec.update(
            id,
            &RecordPatch {
                feedback: Some((
                    at_ms,
                    actor.to_string(),
                    satisfaction,
                    comment.map(str::to_string),
                )),
                ..RecordPatch::default()
            },
        )?;
        rec.append_event(
            id,
            at_ms,
            actor,
            EventKind::Feedback.as_str(),
            &format!("the reporter's satisfaction: {satisfaction}/5{said}"),
        )?;
        Ok(Ok(()))
    }
}
