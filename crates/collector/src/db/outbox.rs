//! The notification outbox and parent dependencies, as the writer keeps
//! them. Every notification is planned inside the transaction that changes
//! its fault, so a fault change and the messages it causes are committed
//! together: nothing is sent that is not recorded, and nothing recorded is
//! forgotten by a restart. The dispatcher (`notify::dispatch`) only reads
//! due rows and reports back `Delivered` / `DeliveryFailed`.
//!
//! Row life: `pending` → `delivered` (final), `pending` → `cancelled`
//! (acknowledged, resolved or suppressed before it went out; final), or
//! `pending` → `failed` after `notify.give_up_after` of failures. Triggers
//! keep delivered and cancelled rows as they are.

use std::collections::BTreeMap;

use rusqlite::{OptionalExtension, params};
use watchpost_model::Severity;

use super::{WriterState, rfc3339};
use crate::notify::{Kind, Planned, Subject};

/// What routing needs of a stored fault.
pub(super) struct SubjectRow {
    rule: String,
    host: String,
    severity: Severity,
    labels: BTreeMap<String, String>,
    acknowledged: bool,
    unreachable: bool,
    pub(super) status: String,
}

impl SubjectRow {
    fn subject(&self) -> Subject<'_> {
        Subject {
            rule: &self.rule,
            host: &self.host,
            severity: self.severity,
            labels: &self.labels,
            acknowledged: self.acknowledged,
            unreachable: self.unreachable,
        }
    }

    /// The name its children declare as their parent: its device, else its host.
    fn name(&self) -> &str {
        self.labels.get("device").unwrap_or(&self.host)
    }
}

type Tx<'a> = rusqlite::Transaction<'a>;

fn who(p: &Planned) -> String {
    format!("{} by {}", p.person.name, p.channel)
}

impl WriterState {
    pub(super) fn subject_row(tx: &Tx<'_>, id: i64) -> rusqlite::Result<Option<SubjectRow>> {
        tx.query_row(
            "SELECT rule, host, severity, labels, acknowledged_at_ms IS NOT NULL, unreachable, status
             FROM faults WHERE id = ?1",
            [id],
            |r| {
                let sev: String = r.get(2)?;
                let labels: String = r.get(3)?;
                Ok(SubjectRow {
                    rule: r.get(0)?,
                    host: r.get(1)?,
                    severity: sev.parse().unwrap_or(Severity::General),
                    labels: serde_json::from_str(&labels).unwrap_or_default(),
                    acknowledged: r.get(4)?,
                    unreachable: r.get(5)?,
                    status: r.get(6)?,
                })
            },
        )
        .optional()
    }

    /// Queues what the routes say for `kind` of fault `id`, with one
    /// timeline event listing whom and when.
    pub(super) fn enqueue(&self, tx: &Tx<'_>, id: i64, kind: Kind, at_ms: i64) -> rusqlite::Result<usize> {
        let notify = &self.settings.notify;
        if !notify.is_enabled() {
            return Ok(0);
        }
        let Some(row) = Self::subject_row(tx, id)? else {
            return Ok(0);
        };
        let planned = notify.plan(&row.subject(), kind, at_ms);
        if planned.is_empty() {
            return Ok(0);
        }
        let mut stmt = tx.prepare_cached(
            "INSERT INTO notifications (fault_id, kind, step, channel, recipient, contact, created_at_ms, due_ms, status)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, 'pending')",
        )?;
        for p in &planned {
            let contact = serde_json::to_string(&p.person).unwrap_or_else(|_| "{}".into());
            stmt.execute(params![
                id,
                p.kind.as_str(),
                p.step as i64,
                p.channel,
                p.person.name,
                contact,
                at_ms,
                p.due_ms
            ])?;
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
        Self::event(tx, id, at_ms, "notify_queued", &text)?;
        Ok(planned.len())
    }

    /// Cancels fault `id`'s pending notifications (all but recovery notices).
    pub(super) fn cancel_pending(tx: &Tx<'_>, id: i64, at_ms: i64, why: &str) -> rusqlite::Result<usize> {
        let n = tx.execute(
            "UPDATE notifications SET status = 'cancelled', last_error = ?2
             WHERE fault_id = ?1 AND status = 'pending' AND kind <> 'resolved'",
            params![id, why],
        )?;
        if n > 0 {
            Self::event(
                tx,
                id,
                at_ms,
                "notify_cancelled",
                &format!("{n} pending notification(s) cancelled: {why}"),
            )?;
        }
        Ok(n)
    }

    /// Someone acknowledged fault `id`: escalation stops.
    pub(super) fn on_acknowledged(
        &self,
        tx: &Tx<'_>,
        id: i64,
        at_ms: i64,
        actor: &str,
    ) -> rusqlite::Result<()> {
        Self::cancel_pending(
            tx,
            id,
            at_ms,
            &format!("escalation stopped, acknowledged by {actor}"),
        )?;
        Ok(())
    }

    /// Fault `id` resolved: pending notifications are cancelled, everyone
    /// who was told of it hears it recovered, and children it suppressed
    /// are released (notified after `parent_wait` if they still hold).
    pub(super) fn on_resolved(&self, tx: &Tx<'_>, id: i64, at_ms: i64) -> rusqlite::Result<()> {
        Self::cancel_pending(tx, id, at_ms, "the fault resolved first")?;
        let told: Vec<(String, String, String)> = tx
            .prepare_cached(
                "SELECT channel, recipient, min(contact) FROM notifications
                 WHERE fault_id = ?1 AND status = 'delivered' AND kind <> 'resolved'
                 GROUP BY channel, recipient ORDER BY min(id)",
            )?
            .query_map([id], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?
            .collect::<rusqlite::Result<_>>()?;
        if !told.is_empty() {
            let mut stmt = tx.prepare_cached(
                "INSERT INTO notifications (fault_id, kind, step, channel, recipient, contact, created_at_ms, due_ms, status)
                 VALUES (?1, 'resolved', 0, ?2, ?3, ?4, ?5, ?5, 'pending')",
            )?;
            for (channel, recipient, contact) in &told {
                stmt.execute(params![id, channel, recipient, contact, at_ms])?;
            }
            let list: Vec<String> = told.iter().map(|(c, r, _)| format!("{r} by {c}")).collect();
            Self::event(
                tx,
                id,
                at_ms,
                "notify_queued",
                &format!("notifications queued (resolved): now {}", list.join(", ")),
            )?;
        }
        let children: Vec<(i64, bool)> = tx
            .prepare_cached(
                "SELECT id, acknowledged_at_ms IS NOT NULL FROM faults
                 WHERE parent_fault_id = ?1 AND status = 'suppressed' AND window_id IS NULL",
            )?
            .query_map([id], |r| Ok((r.get(0)?, r.get(1)?)))?
            .collect::<rusqlite::Result<_>>()?;
        for (child, acked) in children {
            tx.execute(
                "UPDATE faults SET status = ?2 WHERE id = ?1",
                params![child, if acked { "acknowledged" } else { "open" }],
            )?;
            let (respond, resolve) = self.restart_deadlines(tx, child, at_ms)?;
            Self::event(
                tx,
                child,
                at_ms,
                "unsuppressed",
                &format!(
                    "the parent's fault #{id} resolved while this one still holds; respond by {}, resolve by {}",
                    rfc3339(respond),
                    rfc3339(resolve)
                ),
            )?;
            self.enqueue(tx, child, Kind::Unsuppressed, at_ms)?;
        }
        Ok(())
    }

    /// The open unreachability fault of the parent of a new fault, if any.
    pub(super) fn parent_fault(
        &self,
        tx: &Tx<'_>,
        host: &str,
        labels: &BTreeMap<String, String>,
    ) -> rusqlite::Result<Option<(i64, String)>> {
        let Some(parent) = self.settings.notify.parent_of(host, labels) else {
            return Ok(None);
        };
        tx.query_row(
            "SELECT id FROM faults WHERE unreachable = 1 AND status IN ('open', 'acknowledged', 'suppressed')
             AND (host = ?1 OR json_extract(labels, '$.device') = ?1) ORDER BY id LIMIT 1",
            [parent],
            |r| r.get(0),
        )
        .optional()
        .map(|id| id.map(|id| (id, parent.to_string())))
    }

    /// A new unreachability fault `id`: the children behind it that are
    /// unreachable too are suppressed and linked to it, and their pending
    /// notifications cancelled.
    pub(super) fn suppress_children(&self, tx: &Tx<'_>, id: i64, at_ms: i64) -> rusqlite::Result<()> {
        let Some(row) = Self::subject_row(tx, id)? else {
            return Ok(());
        };
        let name = row.name().to_string();
        let children: Vec<&str> = self.settings.notify.children_of(&name).collect();
        for child in children {
            let ids: Vec<i64> = tx
                .prepare_cached(
                    "SELECT id FROM faults WHERE unreachable = 1 AND status IN ('open', 'acknowledged')
                     AND parent_fault_id IS NULL AND (host = ?1 OR json_extract(labels, '$.device') = ?1)",
                )?
                .query_map([child], |r| r.get(0))?
                .collect::<rusqlite::Result<_>>()?;
            for c in ids {
                tx.execute(
                    "UPDATE faults SET status = 'suppressed', parent_fault_id = ?2 WHERE id = ?1",
                    params![c, id],
                )?;
                Self::event(
                    tx,
                    c,
                    at_ms,
                    "suppressed",
                    &format!("its parent {name} is unreachable (fault #{id}): linked, not notified"),
                )?;
                Self::cancel_pending(tx, c, at_ms, &format!("suppressed by the parent's fault #{id}"))?;
            }
        }
        Ok(())
    }

    /// Outbox rows `ids` went out as `message_id`.
    pub(super) fn delivered(tx: &Tx<'_>, ids: &[i64], message_id: &str, at_ms: i64) -> rusqlite::Result<()> {
        for id in ids {
            let row: Option<(i64, String, String, String)> = tx
                .query_row(
                    "UPDATE notifications SET status = 'delivered', sent_at_ms = ?2, message_id = ?3,
                         attempts = attempts + 1, last_error = NULL
                     WHERE id = ?1 AND status = 'pending'
                     RETURNING fault_id, kind, channel, recipient",
                    params![id, at_ms, message_id],
                    |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)),
                )
                .optional()?;
            if let Some((fault, kind, channel, recipient)) = row {
                Self::event(
                    tx,
                    fault,
                    at_ms,
                    "notified",
                    &format!("notified {recipient} by {channel} ({kind}; message {message_id})"),
                )?;
            }
        }
        Ok(())
    }

    /// Sending outbox rows `ids` failed: retry after a backoff, or give up.
    pub(super) fn delivery_failed(
        &self,
        tx: &Tx<'_>,
        ids: &[i64],
        error: &str,
        at_ms: i64,
    ) -> rusqlite::Result<()> {
        let notify = &self.settings.notify;
        for id in ids {
            let row: Option<(i64, String, String, String, u32, i64)> = tx
                .query_row(
                    "SELECT fault_id, kind, channel, recipient, attempts, created_at_ms FROM notifications
                     WHERE id = ?1 AND status = 'pending'",
                    [id],
                    |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?, r.get(5)?)),
                )
                .optional()?;
            let Some((fault, kind, channel, recipient, attempts, created)) = row else {
                continue;
            };
            let attempts = attempts + 1;
            if at_ms - created >= notify.give_up_after_ms {
                tx.execute(
                    "UPDATE notifications SET status = 'failed', attempts = ?2, last_error = ?3 WHERE id = ?1",
                    params![id, attempts, error],
                )?;
                Self::event(
                    tx,
                    fault,
                    at_ms,
                    "notify_gave_up",
                    &format!(
                        "gave up notifying {recipient} by {channel} ({kind}) after {attempts} attempts: {error}"
                    ),
                )?;
            } else {
                let next = at_ms + notify.backoff_ms(attempts);
                tx.execute(
                    "UPDATE notifications SET attempts = ?2, last_error = ?3, due_ms = ?4 WHERE id = ?1",
                    params![id, attempts, error, next],
                )?;
                Self::event(
                    tx,
                    fault,
                    at_ms,
                    "notify_failed",
                    &format!(
                        "notifying {recipient} by {channel} ({kind}) failed (attempt {attempts}; retry at {}): {error}",
                        rfc3339(next)
                    ),
                )?;
            }
        }
        Ok(())
    }
}

/// A due outbox row with its fault as it is now.
#[derive(Debug, Clone)]
pub struct DueNotification {
    /// Outbox row.
    pub id: i64,
    /// Why.
    pub kind: Kind,
    /// Channel name.
    pub channel: String,
    /// Recipient as planned.
    pub person: watchpost_model::api::Member,
    /// Due since (ms).
    pub due_ms: i64,
    /// Failed attempts so far.
    pub attempts: u32,
    /// The fault.
    pub fault: watchpost_model::api::Fault,
}

/// Filters of an outbox listing.
#[derive(Debug, Clone, Default)]
pub struct NotificationFilter {
    /// Only this fault.
    pub fault_id: Option<i64>,
    /// Only this status.
    pub status: Option<String>,
    /// At most this many, newest first.
    pub limit: usize,
}

impl super::Database {
    /// Woken after every commit: the outbox may have new rows.
    pub fn outbox_wake(&self) -> std::sync::Arc<tokio::sync::Notify> {
        self.wake.clone()
    }

    /// Pending notifications due by `now_ms`, oldest first.
    pub async fn due_notifications(
        &self,
        now_ms: i64,
        limit: usize,
    ) -> Result<Vec<DueNotification>, super::DbError> {
        self.read(move |conn| {
            let columns = super::FAULT_COLUMNS
                .split(',')
                .map(|c| format!("f.{}", c.trim()))
                .collect::<Vec<_>>()
                .join(", ");
            let mut stmt = conn.prepare_cached(&format!(
                "SELECT n.id, n.kind, n.channel, n.contact, n.due_ms, n.attempts, {columns}
                 FROM notifications n JOIN faults f ON f.id = n.fault_id
                 WHERE n.status = 'pending' AND n.due_ms <= ?1 ORDER BY n.id LIMIT ?2"
            ))?;
            let rows = stmt.query_map(params![now_ms, limit as i64], |r| {
                let kind: String = r.get(1)?;
                let contact: String = r.get(3)?;
                let fault = super::fault_from_row_at(r, 6)?;
                Ok(DueNotification {
                    id: r.get(0)?,
                    kind: Kind::parse(&kind).unwrap_or(Kind::Opened),
                    channel: r.get(2)?,
                    person: serde_json::from_str(&contact).unwrap_or_default(),
                    due_ms: r.get(4)?,
                    attempts: r.get(5)?,
                    fault,
                })
            })?;
            rows.collect()
        })
        .await
    }

    /// The outbox, newest first.
    pub async fn notifications(
        &self,
        filter: NotificationFilter,
    ) -> Result<Vec<watchpost_model::api::Notification>, super::DbError> {
        self.read(move |conn| {
            let mut stmt = conn.prepare_cached(
                "SELECT id, fault_id, kind, step, channel, recipient, status, attempts, created_at_ms, due_ms,
                        sent_at_ms, message_id, last_error
                 FROM notifications WHERE (?1 IS NULL OR fault_id = ?1) AND (?2 IS NULL OR status = ?2)
                 ORDER BY id DESC LIMIT ?3",
            )?;
            let rows = stmt.query_map(
                params![filter.fault_id, filter.status, filter.limit.max(1) as i64],
                |r| {
                    Ok(watchpost_model::api::Notification {
                        id: r.get(0)?,
                        fault_id: r.get(1)?,
                        kind: r.get(2)?,
                        step: r.get(3)?,
                        channel: r.get(4)?,
                        recipient: r.get(5)?,
                        status: r.get(6)?,
                        attempts: r.get(7)?,
                        created_at: rfc3339(r.get(8)?),
                        due_at: rfc3339(r.get(9)?),
                        sent_at: r.get::<_, Option<i64>>(10)?.map(rfc3339),
                        message_id: r.get(11)?,
                        last_error: r.get(12)?,
                    })
                },
            )?;
            rows.collect()
        })
        .await
    }
}
