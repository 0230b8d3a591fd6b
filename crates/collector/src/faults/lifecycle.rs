//! The fault state machine: what a rule's transition, the clock and a
//! maintenance window do to a fault record.
//!
//! Opening (inside a window or behind a failed parent: suppressed), firing
//! again, rising in severity (deadlines follow the highest severity, from
//! the opening), reopening within `reopen_within`, resolving (deadlines
//! judged), missed deadlines and window ends on the clock. Every change is
//! said to the record store in typed values, with its timeline event and
//! the notifications it causes, inside the caller's transaction.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use watchpost_model::Severity;
use watchpost_model::api::FaultStatus;

use super::event::EventKind;
use super::transition::{FaultKey, NewFault, Transition};
use super::{FaultSettings, SYSTEM_ACTOR};
use crate::db::records::{Deadline, FaultRecords, NewRecord, RecordError, RecordPatch, RecordState};
use crate::maintenance::Window;
use crate::notify::Kind;
use crate::template::format_value;
use crate::time::{millis, rfc3339};

/// A live record as the lifecycle keeps it in memory, so a transition
/// finds its record without a query.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(super) struct OpenRecord {
    pub id: i64,
    pub severity: Severity,
    pub opened_at_ms: i64,
}

/// The statuses of a live record.
pub(super) fn is_live(status: FaultStatus) -> bool {
    matches!(
        status,
        FaultStatus::Open | FaultStatus::Acknowledged | FaultStatus::Suppressed
    )
}

/// The fault lifecycle: the policy, the maintenance windows, and which
/// faults are live. Changes made inside a transaction become part of the
/// live map only when it commits ([`Lifecycle::committed`]).
pub struct Lifecycle {
    pub(super) settings: FaultSettings,
    pub(super) windows: Vec<Window>,
    open: HashMap<FaultKey, OpenRecord>,
    open_faults: Arc<AtomicU64>,
    /// Opened (or changed) in the transaction in progress.
    opened: Vec<(FaultKey, OpenRecord)>,
    /// Resolved in the transaction in progress.
    closed: Vec<FaultKey>,
    /// Changes of commits that failed for want of disk, applied first in
    /// the next group commit.
    pub(super) backlog: Vec<super::Command>,
    /// Which faults flap.
    pub(super) flaps: super::flapping::Flaps,
    /// The change being applied is a flapping fault's: not notified.
    pub(super) quiet: bool,
}

impl Lifecycle {
    /// A lifecycle starting from the records live at start and every window.
    pub fn new(settings: FaultSettings, live: Vec<RecordState>, windows: Vec<Window>) -> Lifecycle {
        let open: HashMap<FaultKey, OpenRecord> = live
            .into_iter()
            .map(|r| {
                (
                    FaultKey {
                        rule: Arc::from(r.rule.as_str()),
                        series: r.series_key,
                    },
                    OpenRecord {
                        id: r.id,
                        severity: r.severity,
                        opened_at_ms: r.opened_at_ms,
                    },
                )
            })
            .collect();
        Lifecycle {
            settings,
            windows,
            open_faults: Arc::new(AtomicU64::new(open.len() as u64)),
            open,
            opened: Vec::new(),
            closed: Vec::new(),
            backlog: Vec::new(),
            flaps: super::flapping::Flaps::default(),
            quiet: false,
        }
    }

    /// The count of live faults, kept current after every commit.
    pub fn open_faults(&self) -> Arc<AtomicU64> {
        self.open_faults.clone()
    }

    /// The transaction committed: what it opened and resolved is now so.
    pub fn committed(&mut self) {
        // Opened first, then closed: a fault opened and resolved in one
        // commit must not stay in the open map.
        for (k, r) in self.opened.drain(..) {
            self.open.insert(k, r);
        }
        for k in self.closed.drain(..) {
            self.open.remove(&k);
        }
        self.open_faults.store(self.open.len() as u64, Ordering::Relaxed);
        self.flaps.committed();
    }

    /// The transaction was rolled back: forget what it would have changed.
    pub fn rolled_back(&mut self) {
        self.opened.clear();
        self.closed.clear();
        self.flaps.rolled_back();
    }

    /// A fault record opened in this transaction other than by a rule (reported).
    pub(super) fn opened_in_transaction(&mut self, key: FaultKey, record: OpenRecord) {
        self.opened.push((key, record));
    }

    /// A fault record resolved in this transaction (by hand).
    pub(super) fn resolved_in_transaction(&mut self, key: FaultKey) {
        self.closed.push(key);
    }

    /// Response and resolve deadlines of a fault of `severity` counted from `from_ms`.
    pub(super) fn deadlines(&self, severity: Severity, from_ms: i64) -> (i64, i64) {
        let computed = jiff::Timestamp::from_millisecond(from_ms)
            .map_err(|e| e.to_string())
            .and_then(|opened| {
                self.settings
                    .policy
                    .deadlines(&self.settings.calendar, severity, opened)
                    .map_err(|e| e.to_string())
            });
        match computed {
            Ok(d) => (d.respond.as_millisecond(), d.resolve.as_millisecond()),
            Err(e) => {
                // Only a calendar without working time gets here; keep the
                // fault and give it the most lenient wall-clock deadlines.
                tracing::error!(error = %e, "cannot compute deadlines on the working calendar");
                let three_days = millis(std::time::Duration::from_secs(72 * 3600));
                (
                    from_ms.saturating_add(three_days),
                    from_ms.saturating_add(three_days),
                )
            }
        }
    }

    /// A system event on fault `id`'s timeline.
    pub(super) fn event(
        rec: &mut dyn FaultRecords,
        id: i64,
        at_ms: i64,
        kind: EventKind,
        message: &str,
    ) -> Result<(), RecordError> {
        rec.append_event(id, at_ms, SYSTEM_ACTOR, kind.as_str(), message)
    }

    fn find_open(&self, key: &FaultKey) -> Option<OpenRecord> {
        if self.closed.contains(key) {
            return None;
        }
        self.opened
            .iter()
            .rev()
            .find(|(k, _)| k == key)
            .map(|(_, r)| *r)
            .or_else(|| self.open.get(key).copied())
    }

    /// Applies a transition of the rule engine.
    pub(super) fn transition(
        &mut self,
        rec: &mut dyn FaultRecords,
        t: &Transition,
    ) -> Result<(), RecordError> {
        match (t, self.find_open(t.key())) {
            (Transition::Open(f), None) => {
                let (flapping, became) = self.flap_change(&f.key, f.at_ms, f.flap);
                self.quiet = flapping;
                let reopened = self.reopenable(rec, &f.key, f.at_ms)?;
                let record = match &reopened {
                    Some(previous) => self.reopen(rec, f, previous),
                    None => self.insert(rec, f).map(|id| OpenRecord {
                        id,
                        severity: f.severity,
                        opened_at_ms: f.at_ms,
                    }),
                };
                self.quiet = false;
                let record = record?;
                if became || (flapping && reopened.is_none()) {
                    self.began_flapping(rec, record.id, f.at_ms, became)?;
                }
                self.opened.push((f.key.clone(), record));
                self.closed.retain(|k| k != &f.key);
            }
            // Open while a record is open (e.g. state lost in a restart): same record.
            (Transition::Open(f), Some(open)) => {
                rec.update(open.id, &fired_again(f))?;
                Self::event(
                    rec,
                    open.id,
                    f.at_ms,
                    EventKind::Refired,
                    &format!("condition holds again{}", value_note(f.value)),
                )?;
                if f.severity > open.severity {
                    self.raise(rec, open, f.severity, f.at_ms, f.value)?;
                    self.opened.push((
                        f.key.clone(),
                        OpenRecord {
                            severity: f.severity,
                            ..open
                        },
                    ));
                }
            }
            (
                Transition::Raise {
                    key,
                    severity,
                    value,
                    at_ms,
                    summary,
                },
                Some(open),
            ) => {
                if *severity > open.severity {
                    rec.update(
                        open.id,
                        &RecordPatch {
                            summary: Some(summary.clone()),
                            ..RecordPatch::default()
                        },
                    )?;
                    self.raise(rec, open, *severity, *at_ms, Some(*value))?;
                    self.opened.push((
                        key.clone(),
                        OpenRecord {
                            severity: *severity,
                            ..open
                        },
                    ));
                }
            }
            (Transition::Refire { value, at_ms, .. }, Some(open)) => {
                rec.update(
                    open.id,
                    &RecordPatch {
                        refired: true,
                        value: Some(*value),
                        seen_at_ms: Some(*at_ms),
                        ..RecordPatch::default()
                    },
                )?;
                Self::event(
                    rec,
                    open.id,
                    *at_ms,
                    EventKind::Refired,
                    &format!("condition holds again{}", value_note(Some(*value))),
                )?;
            }
            (Transition::Observe { value, at_ms, .. }, Some(open)) => {
                rec.update(
                    open.id,
                    &RecordPatch {
                        value: Some(*value),
                        seen_at_ms: Some(*at_ms),
                        ..RecordPatch::default()
                    },
                )?;
            }
            (
                Transition::Resolve {
                    key,
                    value,
                    at_ms,
                    reason,
                },
                Some(open),
            ) => {
                // Counted when its opening was (its rule lets it flap).
                let tracked = self.flaps.tracks(key);
                let (flapping, became) = self.flap_change(key, *at_ms, tracked);
                self.resolve(rec, open.id, *at_ms, *value)?;
                Self::event(rec, open.id, *at_ms, EventKind::Resolved, reason)?;
                self.quiet = flapping;
                let told = self.on_resolved(rec, open.id, *at_ms);
                self.quiet = false;
                told?;
                if became {
                    self.began_flapping(rec, open.id, *at_ms, true)?;
                }
                self.closed.push(key.clone());
            }
            (other, None) => {
                tracing::debug!(fault = ?other.key(), "transition for a fault that is not open: ignored");
            }
        }
        Ok(())
    }

    /// The latest record of `key` if it resolved (not closed) within the reopen window.
    fn reopenable(
        &self,
        rec: &mut dyn FaultRecords,
        key: &FaultKey,
        at_ms: i64,
    ) -> Result<Option<RecordState>, RecordError> {
        if self.settings.reopen_within_ms <= 0 {
            return Ok(None);
        }
        Ok(rec.latest(&key.rule, &key.series)?.filter(|r| {
            r.status == FaultStatus::Resolved
                && r.resolved_at_ms
                    .is_some_and(|resolved| at_ms - resolved <= self.settings.reopen_within_ms)
        }))
    }

    /// A resolved record fires again soon: it opens again, keeping its
    /// opening time, its acknowledgement and its response judgement.
    fn reopen(
        &self,
        rec: &mut dyn FaultRecords,
        f: &NewFault,
        previous: &RecordState,
    ) -> Result<OpenRecord, RecordError> {
        let id = previous.id;
        let status = if previous.acknowledged_at_ms.is_some() {
            FaultStatus::Acknowledged
        } else {
            FaultStatus::Open
        };
        rec.update(
            id,
            &RecordPatch {
                status: Some(status),
                resolved_at_ms: Some(None),
                resolve_met: Some(None),
                ..fired_again(f)
            },
        )?;
        Self::event(
            rec,
            id,
            f.at_ms,
            EventKind::Reopened,
            &format!(
                "condition holds again soon after resolving{}",
                value_note(f.value)
            ),
        )?;
        let mut record = OpenRecord {
            id,
            severity: previous.severity,
            opened_at_ms: previous.opened_at_ms,
        };
        if f.severity > previous.severity {
            self.raise(rec, record, f.severity, f.at_ms, f.value)?;
            record.severity = f.severity;
        }
        self.enqueue(rec, id, Kind::Reopened, f.at_ms)?;
        Ok(record)
    }

    /// Fault `open` rises to severity `to`: deadlines follow it, counted
    /// from the opening; an open fault turning urgent tells the managers.
    fn raise(
        &self,
        rec: &mut dyn FaultRecords,
        open: OpenRecord,
        to: Severity,
        at_ms: i64,
        value: Option<f64>,
    ) -> Result<(), RecordError> {
        let (respond, resolve) = self.deadlines(to, open.opened_at_ms);
        rec.update(
            open.id,
            &RecordPatch {
                severity: Some(to),
                response_due_ms: Some(respond),
                resolve_due_ms: Some(resolve),
                value,
                seen_at_ms: Some(at_ms),
                ..RecordPatch::default()
            },
        )?;
        Self::event(
            rec,
            open.id,
            at_ms,
            EventKind::SeverityRaised,
            &format!(
                "severity raised from {} to {to}{}; respond by {}, resolve by {}",
                open.severity,
                value_note(value),
                rfc3339(respond),
                rfc3339(resolve)
            ),
        )?;
        let status = rec.record(open.id)?.map(|r| r.status);
        if to == Severity::Urgent && status == Some(FaultStatus::Open) {
            self.enqueue(rec, open.id, Kind::Urgent, at_ms)?;
        }
        Ok(())
    }

    /// Marks fault `id` resolved at `at_ms`, judging the deadlines not
    /// judged yet.
    pub(super) fn resolve(
        &self,
        rec: &mut dyn FaultRecords,
        id: i64,
        at_ms: i64,
        value: Option<f64>,
    ) -> Result<(), RecordError> {
        let Some(r) = rec.record(id)? else {
            return Ok(());
        };
        rec.update(
            id,
            &RecordPatch {
                status: Some(FaultStatus::Resolved),
                resolved_at_ms: Some(Some(at_ms)),
                value,
                response_met: Some(r.response_met.unwrap_or(at_ms <= r.response_due_ms)),
                resolve_met: Some(Some(r.resolve_met.unwrap_or(at_ms <= r.resolve_due_ms))),
                ..RecordPatch::default()
            },
        )
    }

    /// The clock: deadlines that passed unmet by `now_ms` are recorded, and
    /// faults whose maintenance window ended are released.
    pub(super) fn tick(&mut self, rec: &mut dyn FaultRecords, now_ms: i64) -> Result<(), RecordError> {
        self.mark_overdue(rec, now_ms)?;
        self.end_windows(rec, now_ms)?;
        self.settle_flaps(rec, now_ms)
    }

    /// Records deadlines that passed unmet, with a timeline event each.
    fn mark_overdue(&self, rec: &mut dyn FaultRecords, now_ms: i64) -> Result<(), RecordError> {
        use FaultStatus::{Acknowledged, Open};
        for (deadline, statuses, kind, what) in [
            (
                Deadline::Response,
                &[Open][..],
                EventKind::ResponseOverdue,
                "response",
            ),
            (
                Deadline::Resolve,
                &[Open, Acknowledged][..],
                EventKind::ResolveOverdue,
                "resolve",
            ),
        ] {
            for (id, due_ms) in rec.unmet(deadline, statuses, now_ms)? {
                let patch = match deadline {
                    Deadline::Response => RecordPatch {
                        response_met: Some(false),
                        ..RecordPatch::default()
                    },
                    Deadline::Resolve => RecordPatch {
                        resolve_met: Some(Some(false)),
                        ..RecordPatch::default()
                    },
                };
                rec.update(id, &patch)?;
                Self::event(
                    rec,
                    id,
                    now_ms,
                    kind,
                    &format!("the {what} deadline {} passed", rfc3339(due_ms)),
                )?;
                self.enqueue(rec, id, Kind::Overdue, now_ms)?;
            }
        }
        Ok(())
    }

    /// Suppressed faults whose window has ended become open again: the
    /// condition still holds after the change, so people must hear of it.
    fn end_windows(&self, rec: &mut dyn FaultRecords, now_ms: i64) -> Result<(), RecordError> {
        for (id, window) in rec.suppressed_by_ended_windows(now_ms)? {
            let ticket = self
                .windows
                .iter()
                .find(|w| w.id == window)
                .map_or("", |w| w.ticket.as_str());
            let Some(r) = rec.record(id)? else { continue };
            let (respond, resolve) = self.release(rec, &r, now_ms)?;
            Self::event(
                rec,
                id,
                now_ms,
                EventKind::Unsuppressed,
                &format!(
                    "maintenance window #{window} ({ticket}) ended while the fault still holds; \
                     respond by {}, resolve by {}",
                    rfc3339(respond),
                    rfc3339(resolve)
                ),
            )?;
            self.enqueue(rec, id, Kind::Unsuppressed, now_ms)?;
        }
        Ok(())
    }

    /// A suppressed fault becomes actionable at `now_ms`: open again (or
    /// acknowledged, if someone already responded), its deadlines counted
    /// from then (time inside an approved window or behind a failed parent
    /// is not the handlers' time).
    pub(super) fn release(
        &self,
        rec: &mut dyn FaultRecords,
        r: &RecordState,
        now_ms: i64,
    ) -> Result<(i64, i64), RecordError> {
        let (respond, resolve) = self.deadlines(r.severity, now_ms);
        let status = if r.acknowledged_at_ms.is_some() {
            FaultStatus::Acknowledged
        } else {
            FaultStatus::Open
        };
        rec.update(
            r.id,
            &RecordPatch {
                status: Some(status),
                response_due_ms: Some(respond),
                resolve_due_ms: Some(resolve),
                ..RecordPatch::default()
            },
        )?;
        Ok((respond, resolve))
    }

    /// A new fault record: suppressed inside a maintenance window or behind
    /// a failed parent, else notified; an unreachability fault suppresses
    /// its children's.
    fn insert(&self, rec: &mut dyn FaultRecords, f: &NewFault) -> Result<i64, RecordError> {
        let (respond, resolve) = self.deadlines(f.severity, f.at_ms);
        let window = self
            .windows
            .iter()
            .find(|w| w.covers(&f.key.rule, &f.host, &f.labels, f.at_ms));
        let parent = if f.unreachable && window.is_none() {
            self.parent_fault(rec, &f.host, &f.labels)?
        } else {
            None
        };
        let suppressed = window.is_some() || parent.is_some();
        let id = rec.insert(&NewRecord {
            rule: &f.key.rule,
            series_key: &f.key.series,
            host: &f.host,
            metric: &f.metric,
            labels: &f.labels,
            severity: f.severity,
            status: if suppressed {
                FaultStatus::Suppressed
            } else {
                FaultStatus::Open
            },
            summary: &f.summary,
            value: f.value,
            opened_at_ms: f.at_ms,
            response_due_ms: respond,
            resolve_due_ms: resolve,
            window_id: window.map(|w| w.id),
            unreachable: f.unreachable,
            parent_fault_id: parent.as_ref().map(|p| p.0),
            source: watchpost_model::api::FaultSource::Rule,
            reporter: None,
            entered: None,
            change_id: window.and_then(|w| w.change_id),
        })?;
        Self::event(
            rec,
            id,
            f.at_ms,
            EventKind::Opened,
            &format!(
                "opened at severity {}: {}{}",
                f.severity,
                f.summary,
                value_note(f.value)
            ),
        )?;
        if let Some(w) = window {
            Self::event(
                rec,
                id,
                f.at_ms,
                EventKind::Suppressed,
                &format!(
                    "inside maintenance window #{} ({}): {}; recorded, not notified",
                    w.id, w.ticket, w.reason
                ),
            )?;
        }
        if let Some((parent_id, name)) = &parent {
            Self::event(
                rec,
                id,
                f.at_ms,
                EventKind::Suppressed,
                &format!("its parent {name} is unreachable (fault #{parent_id}): linked, not notified"),
            )?;
        }
        if !suppressed {
            self.enqueue(rec, id, Kind::Opened, f.at_ms)?;
        }
        if f.unreachable {
            self.suppress_children(rec, id, f.at_ms)?;
        }
        Ok(id)
    }
}

/// What a record takes when its condition fires again: one more count,
/// the new value, time and summary.
fn fired_again(f: &NewFault) -> RecordPatch {
    RecordPatch {
        refired: true,
        value: f.value,
        seen_at_ms: Some(f.at_ms),
        summary: Some(f.summary.clone()),
        ..RecordPatch::default()
    }
}

/// " (value 97.5)" for a timeline message, or nothing.
pub(super) fn value_note(v: Option<f64>) -> String {
    v.map(|v| format!(" (value {})", format_value(v)))
        .unwrap_or_default()
}
