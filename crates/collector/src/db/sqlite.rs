//! [`FaultRecords`] on SQLite: the rows the lifecycle decides, inside the
//! writer's open transaction. No decision is taken here.

use std::collections::BTreeMap;

use rusqlite::types::Value;
use rusqlite::{OptionalExtension, Transaction, params};
use watchpost_model::Severity;
use watchpost_model::api::{FaultSource, FaultStatus};
use watchpost_model::changes::ChangeStatus;

use super::records::{
    AgentHello, ChangePatch, ChangeState, Deadline, FaultRecords, InspectionRow, NewChange, NewRecord,
    OutboxRow, RecordError, RecordPatch, RecordState, Told,
};
use crate::maintenance::Window;
use crate::notify::Planned;

/// The statuses of a live record (one per (rule, series), partial unique index).
const LIVE: &str = "'open', 'acknowledged', 'suppressed'";

const RECORD_COLUMNS: &str =
    "id, rule, series_key, host, labels, severity, status, opened_at_ms, resolved_at_ms,
     response_due_ms, resolve_due_ms, response_met, resolve_met, acknowledged_at_ms, acknowledged_by,
     unreachable, window_id, parent_fault_id, source, reporter, satisfaction";

/// A stored severity; the schema's CHECK keeps it one of the three.
pub(super) fn severity(s: &str) -> Severity {
    s.parse().unwrap_or(Severity::General)
}

/// A stored source; the schema's CHECK keeps it one of the three.
pub(super) fn source(s: &str) -> FaultSource {
    FaultSource::parse(s).unwrap_or_default()
}

/// A stored status; the schema's CHECK keeps it one of the five.
pub(super) fn status(s: &str) -> FaultStatus {
    FaultStatus::parse(s).unwrap_or(FaultStatus::Open)
}

fn record_from_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<RecordState> {
    let labels: String = r.get(4)?;
    let sev: String = r.get(5)?;
    let st: String = r.get(6)?;
    Ok(RecordState {
        id: r.get(0)?,
        rule: r.get(1)?,
        series_key: r.get(2)?,
        host: r.get(3)?,
        labels: serde_json::from_str(&labels).unwrap_or_default(),
        severity: severity(&sev),
        status: status(&st),
        opened_at_ms: r.get(7)?,
        resolved_at_ms: r.get(8)?,
        response_due_ms: r.get(9)?,
        resolve_due_ms: r.get(10)?,
        response_met: r.get(11)?,
        resolve_met: r.get(12)?,
        acknowledged_at_ms: r.get(13)?,
        acknowledged_by: r.get(14)?,
        unreachable: r.get(15)?,
        window_id: r.get(16)?,
        parent_fault_id: r.get(17)?,
        source: source(&r.get::<_, String>(18)?),
        reporter: r
            .get::<_, Option<String>>(19)?
            .and_then(|j| serde_json::from_str(&j).ok()),
        satisfaction: r.get(20)?,
    })
}

/// An outbox row from `fault_id, kind, channel, recipient, attempts, created_at_ms`.
fn outbox_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<OutboxRow> {
    Ok(OutboxRow {
        fault_id: r.get(0)?,
        kind: r.get(1)?,
        channel: r.get(2)?,
        recipient: r.get(3)?,
        attempts: r.get(4)?,
        created_at_ms: r.get(5)?,
    })
}

fn labels_json(labels: &BTreeMap<String, String>) -> String {
    serde_json::to_string(labels).unwrap_or_else(|_| "{}".into())
}

/// The SET clause of an UPDATE being built: `?` in an assignment becomes
/// the next numbered parameter.
struct Assignments {
    sets: Vec<String>,
    args: Vec<Value>,
}

impl Assignments {
    fn set(&mut self, assignment: &str, value: Value) {
        self.args.push(value);
        self.sets
            .push(assignment.replace('?', &format!("?{}", self.args.len())));
    }
}

/// The record store of one write transaction.
pub struct SqliteRecords<'a, 'c> {
    pub(super) tx: &'a Transaction<'c>,
}

impl FaultRecords for SqliteRecords<'_, '_> {
    fn record(&mut self, id: i64) -> Result<Option<RecordState>, RecordError> {
        Ok(self
            .tx
            .prepare_cached(&format!("SELECT {RECORD_COLUMNS} FROM faults WHERE id = ?1"))?
            .query_row([id], record_from_row)
            .optional()?)
    }

    fn latest(&mut self, rule: &str, series_key: &str) -> Result<Option<RecordState>, RecordError> {
        Ok(self
            .tx
            .prepare_cached(&format!(
                "SELECT {RECORD_COLUMNS} FROM faults WHERE rule = ?1 AND series_key = ?2 ORDER BY id DESC LIMIT 1"
            ))?
            .query_row(params![rule, series_key], record_from_row)
            .optional()?)
    }

    fn insert(&mut self, f: &NewRecord<'_>) -> Result<i64, RecordError> {
        self.tx.execute(
            "INSERT INTO faults (rule, series_key, host, metric, labels, severity, status, summary, value, count,
                                 opened_at_ms, last_seen_ms, response_due_ms, resolve_due_ms, window_id,
                                 unreachable, parent_fault_id, source, reporter, entered_at_ms, entered_by, change_id)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, 1, ?10, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17, ?18, ?19, ?20)",
            params![
                f.rule,
                f.series_key,
                f.host,
                f.metric,
                labels_json(f.labels),
                f.severity.as_str(),
                f.status.as_str(),
                f.summary,
                f.value,
                f.opened_at_ms,
                f.response_due_ms,
                f.resolve_due_ms,
                f.window_id,
                f.unreachable,
                f.parent_fault_id,
                f.source.as_str(),
                f.reporter.and_then(|r| serde_json::to_string(r).ok()),
                f.entered.map(|e| e.0),
                f.entered.map(|e| e.1),
                f.change_id,
            ],
        )?;
        Ok(self.tx.last_insert_rowid())
    }

    fn update(&mut self, id: i64, p: &RecordPatch) -> Result<(), RecordError> {
        let mut u = Assignments {
            sets: Vec::new(),
            args: vec![Value::Integer(id)],
        };
        let opt_i = |v: Option<i64>| v.map_or(Value::Null, Value::Integer);
        let opt_b = |v: Option<bool>| v.map_or(Value::Null, |b| Value::Integer(b.into()));
        if let Some(s) = p.status {
            u.set("status = ?", Value::Text(s.as_str().into()));
        }
        if let Some(s) = p.severity {
            u.set("severity = ?", Value::Text(s.as_str().into()));
        }
        if let Some(s) = &p.summary {
            u.set("summary = ?", Value::Text(s.clone()));
        }
        if let Some(v) = p.value {
            u.set("value = ?", Value::Real(v));
        }
        if let Some(at) = p.seen_at_ms {
            u.set("last_seen_ms = max(last_seen_ms, ?)", Value::Integer(at));
        }
        if p.refired {
            u.sets.push("count = count + 1".into());
        }
        if let Some(v) = p.resolved_at_ms {
            u.set("resolved_at_ms = ?", opt_i(v));
        }
        if let Some(v) = p.response_due_ms {
            u.set("response_due_ms = ?", Value::Integer(v));
        }
        if let Some(v) = p.resolve_due_ms {
            u.set("resolve_due_ms = ?", Value::Integer(v));
        }
        if let Some(v) = p.response_met {
            u.set("response_met = ?", opt_b(Some(v)));
        }
        if let Some(v) = p.resolve_met {
            u.set("resolve_met = ?", opt_b(v));
        }
        if let Some((at, by)) = &p.acknowledged {
            u.set("acknowledged_at_ms = ?", Value::Integer(*at));
            u.set("acknowledged_by = ?", Value::Text(by.clone()));
        }
        if let Some(a) = &p.assignee {
            u.set("assignee = ?", Value::Text(a.clone()));
        }
        if let Some((at, cause, handling)) = &p.closed {
            u.set("closed_at_ms = ?", Value::Integer(*at));
            u.set("cause = ?", Value::Text(cause.clone()));
            u.set("handling = ?", Value::Text(handling.clone()));
        }
        if let Some(parent) = p.parent_fault_id {
            u.set("parent_fault_id = ?", Value::Integer(parent));
        }
        if let Some(f) = p.flapping {
            u.set("flapping = ?", Value::Integer(f.into()));
        }
        if let Some((at, by, satisfaction, comment)) = &p.feedback {
            u.set("feedback_at_ms = ?", Value::Integer(*at));
            u.set("feedback_by = ?", Value::Text(by.clone()));
            u.set("satisfaction = ?", Value::Integer((*satisfaction).into()));
            u.set("feedback = ?", comment.clone().map_or(Value::Null, Value::Text));
        }
        if u.sets.is_empty() {
            return Ok(());
        }
        let sql = format!("UPDATE faults SET {} WHERE id = ?1", u.sets.join(", "));
        self.tx
            .prepare_cached(&sql)?
            .execute(rusqlite::params_from_iter(u.args))?;
        Ok(())
    }

    fn append_event(
        &mut self,
        fault_id: i64,
        at_ms: i64,
        actor: &str,
        kind: &str,
        message: &str,
    ) -> Result<(), RecordError> {
        self.tx
            .prepare_cached(
                "INSERT INTO fault_events (fault_id, at_ms, actor, kind, message) VALUES (?1, ?2, ?3, ?4, ?5)",
            )?
            .execute(params![fault_id, at_ms, actor, kind, message])?;
        Ok(())
    }

    fn unmet(
        &mut self,
        deadline: Deadline,
        statuses: &[FaultStatus],
        now_ms: i64,
    ) -> Result<Vec<(i64, i64)>, RecordError> {
        let (met, due) = match deadline {
            Deadline::Response => ("response_met", "response_due_ms"),
            Deadline::Resolve => ("resolve_met", "resolve_due_ms"),
        };
        let statuses: Vec<String> = statuses.iter().map(|s| format!("'{}'", s.as_str())).collect();
        Ok(self
            .tx
            .prepare_cached(&format!(
                "SELECT id, {due} FROM faults WHERE status IN ({}) AND {met} IS NULL AND {due} < ?1 ORDER BY id",
                statuses.join(", ")
            ))?
            .query_map([now_ms], |r| Ok((r.get(0)?, r.get(1)?)))?
            .collect::<rusqlite::Result<_>>()?)
    }

    fn suppressed_by_ended_windows(&mut self, now_ms: i64) -> Result<Vec<(i64, i64)>, RecordError> {
        Ok(self
            .tx
            .prepare_cached(
                "SELECT f.id, w.id FROM faults f JOIN maintenance_windows w ON w.id = f.window_id
                 WHERE f.status = 'suppressed' AND w.ends_at_ms <= ?1 ORDER BY f.id",
            )?
            .query_map([now_ms], |r| Ok((r.get(0)?, r.get(1)?)))?
            .collect::<rusqlite::Result<_>>()?)
    }

    fn live_unreachable(&mut self, name: &str) -> Result<Option<i64>, RecordError> {
        Ok(self
            .tx
            .prepare_cached(&format!(
                "SELECT id FROM faults WHERE unreachable = 1 AND status IN ({LIVE})
                 AND (host = ?1 OR json_extract(labels, '$.device') = ?1) ORDER BY id LIMIT 1"
            ))?
            .query_row([name], |r| r.get(0))
            .optional()?)
    }

    fn unlinked_unreachable(&mut self, name: &str) -> Result<Vec<i64>, RecordError> {
        Ok(self
            .tx
            .prepare_cached(
                "SELECT id FROM faults WHERE unreachable = 1 AND status IN ('open', 'acknowledged')
                 AND parent_fault_id IS NULL AND (host = ?1 OR json_extract(labels, '$.device') = ?1) ORDER BY id",
            )?
            .query_map([name], |r| r.get(0))?
            .collect::<rusqlite::Result<_>>()?)
    }

    fn children_of(&mut self, parent: i64) -> Result<Vec<RecordState>, RecordError> {
        Ok(self
            .tx
            .prepare_cached(&format!(
                "SELECT {RECORD_COLUMNS} FROM faults
                 WHERE parent_fault_id = ?1 AND status = 'suppressed' AND window_id IS NULL ORDER BY id"
            ))?
            .query_map([parent], record_from_row)?
            .collect::<rusqlite::Result<_>>()?)
    }

    fn insert_report(
        &mut self,
        r: &mut watchpost_model::reports::StoredReport,
        at_ms: i64,
    ) -> Result<(), RecordError> {
        self.tx.execute(
            "INSERT INTO reports (kind, period, version, format, file, sha256, bytes, generated_at_ms, generated_by)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
            rusqlite::params![r.kind, r.period, r.version, r.format, r.file, r.sha256, r.bytes, at_ms, r.generated_by],
        )?;
        r.id = self.tx.last_insert_rowid();
        Ok(())
    }

    fn inspection_signatures(&mut self, day: &str) -> Result<Option<(String, Option<String>)>, RecordError> {
        Ok(self
            .tx
            .query_row(
                "SELECT signed_by, reviewed_by FROM inspection_days WHERE day = ?1",
                [day],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .optional()?)
    }

    fn insert_inspection_entry(&mut self, e: &InspectionRow<'_>) -> Result<i64, RecordError> {
        self.tx.execute(
            "INSERT INTO inspection_entries (day, item, result, remark, by, at_ms, amendment, why, fault_id)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
            params![
                e.day,
                e.item,
                e.result.as_str(),
                e.remark,
                e.by,
                e.at_ms,
                e.why.is_some(),
                e.why,
                e.fault_id
            ],
        )?;
        Ok(self.tx.last_insert_rowid())
    }

    fn sign_inspection(
        &mut self,
        day: &str,
        review: bool,
        by: &str,
        at_ms: i64,
        remark: &str,
    ) -> Result<(), RecordError> {
        if review {
            self.tx.execute(
                "UPDATE inspection_days SET reviewed_by = ?2, reviewed_at_ms = ?3, review_remark = ?4 WHERE day = ?1",
                params![day, by, at_ms, remark],
            )?;
        } else {
            self.tx.execute(
                "INSERT INTO inspection_days (day, signed_by, signed_at_ms, sign_remark) VALUES (?1, ?2, ?3, ?4)",
                params![day, by, at_ms, remark],
            )?;
        }
        Ok(())
    }

    fn insert_window(&mut self, w: &Window) -> Result<i64, RecordError> {
        let matchers = serde_json::to_string(&w.matchers).map_err(|e| RecordError::other(e.to_string()))?;
        self.tx.execute(
            "INSERT INTO maintenance_windows (host, rule, matchers, starts_at_ms, ends_at_ms, reason, ticket, created_by, created_at_ms,
                                              hosts, rules, change_id)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)",
            params![
                w.host,
                w.rule,
                matchers,
                w.starts_at_ms,
                w.ends_at_ms,
                w.reason,
                w.ticket,
                w.created_by,
                w.created_at_ms,
                serde_json::to_string(&w.hosts).unwrap_or_else(|_| "[]".into()),
                serde_json::to_string(&w.rules).unwrap_or_else(|_| "[]".into()),
                w.change_id,
            ],
        )?;
        Ok(self.tx.last_insert_rowid())
    }

    fn end_window(&mut self, id: i64, at_ms: i64) -> Result<(), RecordError> {
        self.tx.execute(
            "UPDATE maintenance_windows SET ends_at_ms = min(ends_at_ms, max(starts_at_ms + 1, ?2)) WHERE id = ?1",
            params![id, at_ms],
        )?;
        Ok(())
    }

    fn insert_change(&mut self, c: &NewChange<'_>) -> Result<i64, RecordError> {
        let scope = serde_json::to_string(c.scope).map_err(|e| RecordError::other(e.to_string()))?;
        self.tx.execute(
            "INSERT INTO changes (title, content, reason, impact, test_plan, rollback_plan, starts_at_ms, ends_at_ms,
                                  scope, status, requested_by, requested_at_ms)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, 'requested', ?10, ?11)",
            params![
                c.title,
                c.content,
                c.reason,
                c.impact,
                c.test_plan,
                c.rollback_plan,
                c.starts_at_ms,
                c.ends_at_ms,
                scope,
                c.requested_by,
                c.at_ms
            ],
        )?;
        Ok(self.tx.last_insert_rowid())
    }

    fn change(&mut self, id: i64) -> Result<Option<ChangeState>, RecordError> {
        Ok(self
            .tx
            .prepare_cached(
                "SELECT id, title, status, requested_by, starts_at_ms, ends_at_ms, scope, window_id FROM changes WHERE id = ?1",
            )?
            .query_row([id], |r| {
                let status: String = r.get(2)?;
                let scope: String = r.get(6)?;
                Ok(ChangeState {
                    id: r.get(0)?,
                    title: r.get(1)?,
                    status: ChangeStatus::parse(&status).unwrap_or(ChangeStatus::Requested),
                    requested_by: r.get(3)?,
                    starts_at_ms: r.get(4)?,
                    ends_at_ms: r.get(5)?,
                    scope: serde_json::from_str(&scope).unwrap_or_default(),
                    window_id: r.get(7)?,
                })
            })
            .optional()?)
    }

    fn update_change(&mut self, id: i64, p: &ChangePatch) -> Result<(), RecordError> {
        self.tx.execute(
            "UPDATE changes SET status = ?2, decided_by = coalesce(?3, decided_by), window_id = coalesce(?4, window_id),
                                result_reason = coalesce(?5, result_reason)
             WHERE id = ?1",
            params![id, p.status.as_str(), p.decided_by, p.window_id, p.result_reason],
        )?;
        Ok(())
    }

    fn append_change_event(
        &mut self,
        change_id: i64,
        at_ms: i64,
        actor: &str,
        kind: &str,
        message: &str,
    ) -> Result<(), RecordError> {
        self.tx
            .prepare_cached(
                "INSERT INTO change_events (change_id, at_ms, actor, kind, message) VALUES (?1, ?2, ?3, ?4, ?5)",
            )?
            .execute(params![change_id, at_ms, actor, kind, message])?;
        Ok(())
    }

    fn queue_notification(&mut self, fault_id: i64, p: &Planned, at_ms: i64) -> Result<(), RecordError> {
        let contact = serde_json::to_string(&p.person).unwrap_or_else(|_| "{}".into());
        self.tx
            .prepare_cached(
                "INSERT INTO notifications (fault_id, kind, step, channel, recipient, contact, created_at_ms, due_ms, status)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, 'pending')",
            )?
            .execute(params![
                fault_id,
                p.kind.as_str(),
                p.step as i64,
                p.channel,
                p.person.name,
                contact,
                at_ms,
                p.due_ms
            ])?;
        Ok(())
    }

    fn queue_recovery(&mut self, fault_id: i64, to: &Told, at_ms: i64) -> Result<(), RecordError> {
        self.tx
            .prepare_cached(
                "INSERT INTO notifications (fault_id, kind, step, channel, recipient, contact, created_at_ms, due_ms, status)
                 VALUES (?1, 'resolved', 0, ?2, ?3, ?4, ?5, ?5, 'pending')",
            )?
            .execute(params![fault_id, to.channel, to.recipient, to.contact, at_ms])?;
        Ok(())
    }

    fn cancel_pending(&mut self, fault_id: i64, why: &str) -> Result<usize, RecordError> {
        Ok(self.tx.execute(
            "UPDATE notifications SET status = 'cancelled', last_error = ?2
             WHERE fault_id = ?1 AND status = 'pending' AND kind NOT IN ('resolved', 'reporter_resolved', 'reporter_closed')",
            params![fault_id, why],
        )?)
    }

    fn told(&mut self, fault_id: i64) -> Result<Vec<Told>, RecordError> {
        Ok(self
            .tx
            .prepare_cached(
                "SELECT channel, recipient, min(contact) FROM notifications
                 WHERE fault_id = ?1 AND status = 'delivered' AND kind NOT IN ('resolved', 'reporter_resolved', 'reporter_closed')
                 GROUP BY channel, recipient ORDER BY min(id)",
            )?
            .query_map([fault_id], |r| {
                Ok(Told {
                    channel: r.get(0)?,
                    recipient: r.get(1)?,
                    contact: r.get(2)?,
                })
            })?
            .collect::<rusqlite::Result<_>>()?)
    }

    fn pending_notification(&mut self, id: i64) -> Result<Option<OutboxRow>, RecordError> {
        Ok(self
            .tx
            .prepare_cached(
                "SELECT fault_id, kind, channel, recipient, attempts, created_at_ms FROM notifications
                 WHERE id = ?1 AND status = 'pending'",
            )?
            .query_row([id], outbox_row)
            .optional()?)
    }

    fn pending_for(
        &mut self,
        fault_id: i64,
        kind: &str,
        channel: &str,
        recipient: &str,
    ) -> Result<Vec<i64>, RecordError> {
        Ok(self
            .tx
            .prepare_cached(
                "SELECT id FROM notifications
                 WHERE fault_id = ?1 AND kind = ?2 AND channel = ?3 AND recipient = ?4 AND status = 'pending'
                 ORDER BY id",
            )?
            .query_map(params![fault_id, kind, channel, recipient], |r| r.get(0))?
            .collect::<rusqlite::Result<_>>()?)
    }

    fn mark_delivered(
        &mut self,
        id: i64,
        message_id: &str,
        at_ms: i64,
    ) -> Result<Option<OutboxRow>, RecordError> {
        Ok(self
            .tx
            .prepare_cached(
                "UPDATE notifications SET status = 'delivered', sent_at_ms = ?2, message_id = ?3,
                     attempts = attempts + 1, last_error = NULL
                 WHERE id = ?1 AND status = 'pending'
                 RETURNING fault_id, kind, channel, recipient, attempts, created_at_ms",
            )?
            .query_row(params![id, at_ms, message_id], outbox_row)
            .optional()?)
    }

    fn retry_notification(
        &mut self,
        id: i64,
        attempts: u32,
        error: &str,
        due_ms: i64,
    ) -> Result<(), RecordError> {
        self.tx.execute(
            "UPDATE notifications SET attempts = ?2, last_error = ?3, due_ms = ?4 WHERE id = ?1",
            params![id, attempts, error, due_ms],
        )?;
        Ok(())
    }

    fn give_up_notification(&mut self, id: i64, attempts: u32, error: &str) -> Result<(), RecordError> {
        self.tx.execute(
            "UPDATE notifications SET status = 'failed', attempts = ?2, last_error = ?3 WHERE id = ?1",
            params![id, attempts, error],
        )?;
        Ok(())
    }

    fn agent_hello(&mut self, h: &AgentHello) -> Result<(), RecordError> {
        self.tx.execute(
            "INSERT INTO agents (id, hostname, version, address, labels, first_seen_ms, last_seen_ms)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?6)
             ON CONFLICT (id) DO UPDATE SET hostname = ?2, version = ?3, address = ?4, labels = ?5, last_seen_ms = ?6",
            params![h.id, h.hostname, h.version, h.address, labels_json(&h.labels), h.at_ms],
        )?;
        Ok(())
    }

    fn agents_seen(&mut self, seen: &[(String, i64)]) -> Result<(), RecordError> {
        let mut stmt = self
            .tx
            .prepare_cached("UPDATE agents SET last_seen_ms = max(last_seen_ms, ?2) WHERE id = ?1")?;
        for (id, at) in seen {
            stmt.execute(params![id, at])?;
        }
        Ok(())
    }

    fn inventory_items(
        &mut self,
        agent: &str,
        scope: &str,
    ) -> Result<Vec<watchpost_model::inventory::InventoryItem>, RecordError> {
        Ok(super::inventory::items(self.tx, agent, scope)?)
    }

    fn inventory_put(
        &mut self,
        scope: &str,
        item: &watchpost_model::inventory::InventoryItem,
    ) -> Result<(), RecordError> {
        Ok(super::inventory::put(self.tx, scope, item)?)
    }

    fn inventory_event(
        &mut self,
        event: &watchpost_model::inventory::InventoryEvent,
    ) -> Result<(), RecordError> {
        Ok(super::inventory::event(self.tx, event)?)
    }
}

/// Records open, acknowledged or suppressed, oldest first.
pub(super) fn live_records(conn: &rusqlite::Connection) -> rusqlite::Result<Vec<RecordState>> {
    conn.prepare(&format!(
        "SELECT {RECORD_COLUMNS} FROM faults WHERE status IN ({LIVE}) ORDER BY id"
    ))?
    .query_map([], record_from_row)?
    .collect()
}
