//! Reads of the notification outbox: what is due (for the dispatcher) and
//! the listing (for the API). Rows are written through
//! [`super::FaultRecords`] by the fault stage, inside the transaction that
//! changes their fault, so a fault change and the messages it causes are
//! committed together.
//!
//! Row life: `pending` → `delivered` (final), `pending` → `cancelled`
//! (acknowledged, resolved or suppressed before it went out; final), or
//! `pending` → `failed` after `notify.give_up_after` of failures. Triggers
//! keep delivered and cancelled rows as they are.

use rusqlite::params;

use crate::notify::{DueNotification, Kind};
use crate::time::rfc3339;

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
