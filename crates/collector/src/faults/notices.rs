//! What a fault change means for the notification outbox and for the
//! faults behind a failed parent.
//!
//! Every notification is planned inside the transaction that changes its
//! fault, so a fault change and the messages it causes are committed
//! together: nothing is sent that is not recorded, and nothing recorded is
//! forgotten by a restart. The dispatcher (`notify::dispatch`) only reads
//! due rows and reports back a [`Delivery`], recorded here with its
//! timeline event.

use std::collections::BTreeMap;

use super::event::EventKind;
use super::lifecycle::Lifecycle;
use crate::db::records::Told;
use crate::db::records::{FaultRecords, RecordError, RecordPatch};
use crate::notify::direct::skipped_channel;
use crate::notify::dispatch::Delivery;
use crate::notify::{Kind, Planned, Subject};
use crate::time::rfc3339;
use watchpost_model::api::FaultStatus;

fn who(p: &Planned) -> String {
    format!("{} by {}", p.person.name, p.channel)
}

impl Lifecycle {
    /// Queues what the routes say for `kind` of fault `id`, with one
    /// timeline event listing whom and when.
    pub(super) fn enqueue(
        &self,
        rec: &mut dyn FaultRecords,
        id: i64,
        kind: Kind,
        at_ms: i64,
    ) -> Result<usize, RecordError> {
        let notify = &self.settings.notify;
        if !notify.is_enabled() {
            return Ok(0);
        }
        if self.quiet && !matches!(kind, Kind::Flapping | Kind::Stable) {
            // A flapping fault's changes are recorded, not notified.
            return Ok(0);
        }
        let Some(row) = rec.record(id)? else {
            return Ok(0);
        };
        let subject = Subject {
            rule: &row.rule,
            host: &row.host,
            severity: row.severity,
            labels: &row.labels,
            acknowledged: row.acknowledged_at_ms.is_some(),
            unreachable: row.unreachable,
        };
        let mut planned = notify.plan(&subject, kind, at_ms);
        if let Some(skip) = skipped_channel(&row.series_key) {
            planned.retain(|p| p.channel != skip);
        }
        if planned.is_empty() {
            return Ok(0);
        }
        for p in &planned {
            rec.queue_notification(id, p, at_ms)?;
        }
        let now: Vec<String> = planned.iter().filter(|p| p.due_ms <= at_ms).map(who).collect();
        let later: Vec<String> = planned
            .iter()
            .filter(|p| p.due_ms > at_ms)
            .map(|p| {
                let unless = if p.kind == Kind::Escalated {
                    " unless acknowledged"
                } else {
                    ""
                };
                format!("{} at {}{unless}", who(p), rfc3339(p.due_ms))
            })
            .collect();
        let mut text = format!("notifications queued ({})", kind.as_str());
        if !now.is_empty() {
            text.push_str(&format!(": now {}", now.join(", ")));
        }
        if !later.is_empty() {
            text.push_str(&format!(
                "{} {}",
                if now.is_empty() { ":" } else { ";" },
                later.join(", ")
            ));
        }
        Self::event(rec, id, at_ms, EventKind::NotifyQueued, &text)?;
        Ok(planned.len())
    }

    /// Cancels fault `id`'s pending notifications (all but recovery notices).
    pub(super) fn cancel_pending(
        rec: &mut dyn FaultRecords,
        id: i64,
        at_ms: i64,
        why: &str,
    ) -> Result<usize, RecordError> {
        let n = rec.cancel_pending(id, why)?;
        if n > 0 {
            Self::event(
                rec,
                id,
                at_ms,
                EventKind::NotifyCancelled,
                &format!("{n} pending notification(s) cancelled: {why}"),
            )?;
        }
        Ok(n)
    }

    /// Someone acknowledged fault `id`: escalation stops.
    pub(super) fn on_acknowledged(
        &self,
        rec: &mut dyn FaultRecords,
        id: i64,
        at_ms: i64,
        actor: &str,
    ) -> Result<(), RecordError> {
        Self::cancel_pending(
            rec,
            id,
            at_ms,
            &format!("escalation stopped, acknowledged by {actor}"),
        )?;
        Ok(())
    }

    /// Fault `id` resolved: pending notifications are cancelled, everyone
    /// who was told of it hears it recovered, and children it suppressed
    /// are released (notified after `parent_wait` if they still hold).
    pub(super) fn on_resolved(
        &self,
        rec: &mut dyn FaultRecords,
        id: i64,
        at_ms: i64,
    ) -> Result<(), RecordError> {
        Self::cancel_pending(rec, id, at_ms, "the fault resolved first")?;
        let told = if self.quiet { Vec::new() } else { rec.told(id)? };
        if !told.is_empty() {
            for to in &told {
                rec.queue_recovery(id, to, at_ms)?;
            }
            let list: Vec<String> = told
                .iter()
                .map(|t| format!("{} by {}", t.recipient, t.channel))
                .collect();
            Self::event(
                rec,
                id,
                at_ms,
                EventKind::NotifyQueued,
                &format!("notifications queued (resolved): now {}", list.join(", ")),
            )?;
        }
        for child in rec.children_of(id)? {
            let (respond, resolve) = self.release(rec, &child, at_ms)?;
            Self::event(
                rec,
                child.id,
                at_ms,
                EventKind::Unsuppressed,
                &format!(
                    "the parent's fault #{id} resolved while this one still holds; respond by {}, resolve by {}",
                    rfc3339(respond),
                    rfc3339(resolve)
                ),
            )?;
            self.enqueue(rec, child.id, Kind::Unsuppressed, at_ms)?;
        }
        self.tell_reporter(rec, id, Kind::ReporterResolved, at_ms)
    }

    /// The live unreachability fault of the parent of a new fault, if any:
    /// (its id, the parent's name).
    pub(super) fn parent_fault(
        &self,
        rec: &mut dyn FaultRecords,
        host: &str,
        labels: &BTreeMap<String, String>,
    ) -> Result<Option<(i64, String)>, RecordError> {
        let Some(parent) = self.settings.notify.parent_of(host, labels) else {
            return Ok(None);
        };
        Ok(rec.live_unreachable(parent)?.map(|id| (id, parent.to_string())))
    }

    /// A new unreachability fault `id`: the children behind it that are
    /// unreachable too are suppressed and linked to it, and their pending
    /// notifications cancelled.
    pub(super) fn suppress_children(
        &self,
        rec: &mut dyn FaultRecords,
        id: i64,
        at_ms: i64,
    ) -> Result<(), RecordError> {
        let Some(row) = rec.record(id)? else {
            return Ok(());
        };
        let name = row.name().to_string();
        let children: Vec<&str> = self.settings.notify.children_of(&name).collect();
        for child in children {
            for c in rec.unlinked_unreachable(child)? {
                rec.update(
                    c,
                    &RecordPatch {
                        status: Some(FaultStatus::Suppressed),
                        parent_fault_id: Some(id),
                        ..RecordPatch::default()
                    },
                )?;
                Self::event(
                    rec,
                    c,
                    at_ms,
                    EventKind::Suppressed,
                    &format!("its parent {name} is unreachable (fault #{id}): linked, not notified"),
                )?;
                Self::cancel_pending(rec, c, at_ms, &format!("suppressed by the parent's fault #{id}"))?;
            }
        }
        Ok(())
    }

    /// The dispatcher's report on outbox rows: delivered (final), or
    /// failed (retried after a backoff, or given up after
    /// `notify.give_up_after`).
    pub(super) fn delivery(&self, rec: &mut dyn FaultRecords, d: &Delivery) -> Result<(), RecordError> {
        match d {
            Delivery::Delivered {
                ids,
                message_id,
                at_ms,
            } => {
                for id in ids {
                    if let Some(row) = rec.mark_delivered(*id, message_id, *at_ms)? {
                        Self::event(
                            rec,
                            row.fault_id,
                            *at_ms,
                            EventKind::Notified,
                            &format!(
                                "notified {} by {} ({}; message {message_id})",
                                row.recipient, row.channel, row.kind
                            ),
                        )?;
                    }
                }
            }
            Delivery::Direct {
                rule,
                series,
                kind,
                channel,
                recipient,
                contact,
                message_id,
                at_ms,
            } => {
                let Some(row) = rec.latest(rule, series)? else {
                    return Ok(());
                };
                let rows = rec.pending_for(row.id, kind.as_str(), channel, recipient)?;
                for id in &rows {
                    rec.mark_delivered(*id, message_id, *at_ms)?;
                }
                if rows.is_empty() && row.resolved_at_ms.is_some() {
                    // It resolved before this could be recorded: whoever was
                    // told it opened hears it resolved too.
                    rec.queue_recovery(
                        row.id,
                        &Told {
                            channel: channel.clone(),
                            recipient: recipient.clone(),
                            contact: contact.clone(),
                        },
                        *at_ms,
                    )?;
                }
                Self::event(
                    rec,
                    row.id,
                    *at_ms,
                    EventKind::Notified,
                    &format!(
                        "notified {recipient} by {channel} ({}) directly at {}, while the collector could not write its records (message {message_id})",
                        kind.as_str(),
                        rfc3339(*at_ms)
                    ),
                )?;
            }
            Delivery::Failed { ids, error, at_ms } => {
                let notify = &self.settings.notify;
                for id in ids {
                    let Some(row) = rec.pending_notification(*id)? else {
                        continue;
                    };
                    let attempts = row.attempts + 1;
                    let (recipient, channel, kind) = (&row.recipient, &row.channel, &row.kind);
                    if at_ms - row.created_at_ms >= notify.give_up_after_ms {
                        rec.give_up_notification(*id, attempts, error)?;
                        Self::event(
                            rec,
                            row.fault_id,
                            *at_ms,
                            EventKind::NotifyGaveUp,
                            &format!(
                                "gave up notifying {recipient} by {channel} ({kind}) after {attempts} attempts: {error}"
                            ),
                        )?;
                    } else {
                        let next = at_ms + notify.backoff_ms(attempts);
                        rec.retry_notification(*id, attempts, error, next)?;
                        Self::event(
                            rec,
                            row.fault_id,
                            *at_ms,
                            EventKind::NotifyFailed,
                            &format!(
                                "notifying {recipient} by {channel} ({kind}) failed (attempt {attempts}; retry at {}): {error}",
                                rfc3339(next)
                            ),
                        )?;
                    }
                }
            }
        }
        Ok(())
    }
}
