//! The durable record: fault records, their timelines and known agents, in
//! SQLite (WAL, `synchronous=FULL`).
//!
//! One writer thread owns the write connection and commits whatever has
//! queued up in one transaction (group commit), then answers every waiter:
//! a fault change is acknowledged only once it is on disk. Reads use their
//! own connection. Nothing here decides *when* a fault changes; that is the
//! rule engine's job. Invariant: fault records are never deleted and
//! timeline events never change (enforced by triggers as well).

mod outbox;
pub mod schema;

pub use outbox::{DueNotification, NotificationFilter};

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use rusqlite::{Connection, OptionalExtension, params};
use tokio::sync::{mpsc, oneshot};
use watchpost_model::Severity;
use watchpost_model::api::{Fault, FaultEvent, FaultStatus};

use crate::maintenance::Window;
use crate::notify::{self, NotifyConfig};
use crate::rules::engine::{FaultKey, NewFault, Transition};
use watchpost_calendar::{Calendar, SeverityPolicy};

/// Actor recorded for what the rule engine does.
pub const SYSTEM_ACTOR: &str = "system";

/// Why the database could not be used.
#[derive(Debug, thiserror::Error)]
pub enum DbError {
    /// Opening or migrating failed.
    #[error("database {path}: {message}")]
    Open {
        /// The file.
        path: PathBuf,
        /// Why.
        message: String,
    },
    /// A query failed.
    #[error("database query failed: {0}")]
    Query(#[from] rusqlite::Error),
    /// The writer thread is gone (collector shutting down).
    #[error("database writer has stopped")]
    WriterGone,
}

/// A change to write.
#[derive(Debug, Clone)]
pub enum Command {
    /// A fault transition from the rule engine.
    Fault(Transition),
    /// An agent said hello.
    AgentHello {
        /// Agent id.
        id: String,
        /// Hostname.
        hostname: String,
        /// Version.
        version: String,
        /// Remote address.
        address: String,
        /// Its labels.
        labels: BTreeMap<String, String>,
        /// When.
        at_ms: i64,
    },
    /// Agents last heard from at these times.
    AgentsSeen(Vec<(String, i64)>),
    /// The clock: records deadlines that passed unmet by `now_ms`, and
    /// returns faults whose maintenance window ended to open.
    Tick {
        /// The collector's clock.
        now_ms: i64,
    },
    /// Outbox rows went out in one message.
    Delivered {
        /// Outbox rows.
        ids: Vec<i64>,
        /// The message.
        message_id: String,
        /// When.
        at_ms: i64,
    },
    /// Sending outbox rows failed; they are retried after a backoff.
    DeliveryFailed {
        /// Outbox rows.
        ids: Vec<i64>,
        /// Why.
        error: String,
        /// When.
        at_ms: i64,
    },
}

enum Job {
    Write {
        commands: Vec<Command>,
        done: Option<oneshot::Sender<Result<(), String>>>,
    },
    AddWindow {
        window: Window,
        reply: oneshot::Sender<Result<i64, String>>,
    },
    Act {
        id: i64,
        actor: String,
        at_ms: i64,
        action: FaultAction,
        reply: oneshot::Sender<Result<(), ActionError>>,
    },
}

/// An agent row.
#[derive(Debug, Clone)]
pub struct AgentRow {
    /// Id.
    pub id: String,
    /// Hostname.
    pub hostname: String,
    /// Version.
    pub version: String,
    /// Last address.
    pub address: String,
    /// Labels.
    pub labels: BTreeMap<String, String>,
    /// First seen (ms).
    pub first_seen_ms: i64,
    /// Last seen (ms).
    pub last_seen_ms: i64,
}

/// Filters of a fault listing.
#[derive(Debug, Clone, Default)]
pub struct FaultFilter {
    /// Only these statuses (any if empty).
    pub status: Vec<FaultStatus>,
    /// Only these severities (any if empty).
    pub severity: Vec<Severity>,
    /// Only this host.
    pub host: Option<String>,
    /// Only this rule.
    pub rule: Option<String>,
    /// At most this many, newest first.
    pub limit: usize,
}

/// How fault records are kept: deadlines and reopening.
#[derive(Debug, Clone)]
pub struct FaultSettings {
    /// Response and resolve durations per severity.
    pub policy: SeverityPolicy,
    /// The calendar they are counted on.
    pub calendar: Calendar,
    /// A resolved fault that fires again within this time reopens (ms).
    pub reopen_within_ms: i64,
    /// Routes, escalation and parents: what to put in the outbox.
    pub notify: Arc<NotifyConfig>,
}

impl Default for FaultSettings {
    fn default() -> Self {
        FaultSettings {
            policy: SeverityPolicy::default(),
            calendar: Calendar::default(),
            reopen_within_ms: 10 * 60 * 1000,
            notify: Arc::default(),
        }
    }
}

/// What a person does to a fault.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FaultAction {
    /// Responds: meets the response deadline.
    Ack {
        /// Optional comment.
        comment: Option<String>,
    },
    /// Resolves by hand: meets the resolve deadline.
    Resolve {
        /// What was done.
        comment: String,
    },
    /// Documents and closes a resolved fault.
    Close {
        /// Why it happened.
        cause: String,
        /// How it was handled.
        handling: String,
    },
    /// Adds a note.
    Note {
        /// The note.
        text: String,
    },
    /// Hands it to someone.
    Assign {
        /// Who.
        assignee: String,
    },
}

/// Why an action was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ActionError {
    /// No such fault.
    #[error("no fault {0}")]
    NotFound(i64),
    /// The fault's state does not allow it.
    #[error("{0}")]
    Conflict(String),
    /// The database failed.
    #[error("database: {0}")]
    Db(String),
}

/// Handle to the database.
#[derive(Clone)]
pub struct Database {
    writer: mpsc::Sender<Job>,
    reader: Arc<Mutex<Connection>>,
    open_faults: Arc<AtomicU64>,
    wake: Arc<tokio::sync::Notify>,
}

fn open_connection(path: &Path) -> Result<Connection, String> {
    let conn = Connection::open(path).map_err(|e| e.to_string())?;
    conn.busy_timeout(std::time::Duration::from_secs(5))
        .map_err(|e| e.to_string())?;
    conn.pragma_update(None, "journal_mode", "WAL")
        .map_err(|e| e.to_string())?;
    // FULL: a committed fault survives power loss, not only a process crash.
    conn.pragma_update(None, "synchronous", "FULL")
        .map_err(|e| e.to_string())?;
    conn.pragma_update(None, "foreign_keys", "ON")
        .map_err(|e| e.to_string())?;
    Ok(conn)
}

/// Milliseconds → RFC 3339 (UTC).
pub fn rfc3339(ms: i64) -> String {
    jiff::Timestamp::from_millisecond(ms)
        .map(|t| t.to_string())
        .unwrap_or_else(|_| ms.to_string())
}

/// status, rule, series key, acknowledged by, acknowledged at.
type ActionRow = (String, String, String, Option<String>, Option<i64>);

struct OpenRecord {
    id: i64,
    severity: Severity,
    opened_at_ms: i64,
}

struct Writer {
    conn: Connection,
    state: WriterState,
    wake: Arc<tokio::sync::Notify>,
}

/// What the writer knows besides its connection: the policy and which
/// faults are open (so a transition finds its record without a query).
struct WriterState {
    settings: FaultSettings,
    windows: Vec<Window>,
    open: HashMap<FaultKey, OpenRecord>,
    open_faults: Arc<AtomicU64>,
}

fn ms_of(d: std::time::Duration) -> i64 {
    d.as_millis().min(i64::MAX as u128) as i64
}

impl WriterState {
    fn deadlines(&self, severity: Severity, opened_at_ms: i64) -> (i64, i64) {
        let computed = jiff::Timestamp::from_millisecond(opened_at_ms)
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
                let three_days = ms_of(std::time::Duration::from_secs(72 * 3600));
                (
                    opened_at_ms.saturating_add(three_days),
                    opened_at_ms.saturating_add(three_days),
                )
            }
        }
    }

    fn event(
        tx: &rusqlite::Transaction<'_>,
        fault_id: i64,
        at_ms: i64,
        kind: &str,
        message: &str,
    ) -> rusqlite::Result<()> {
        tx.execute(
            "INSERT INTO fault_events (fault_id, at_ms, actor, kind, message) VALUES (?1, ?2, ?3, ?4, ?5)",
            params![fault_id, at_ms, SYSTEM_ACTOR, kind, message],
        )?;
        Ok(())
    }

    fn apply(
        &mut self,
        tx: &rusqlite::Transaction<'_>,
        cmd: &Command,
        opened: &mut Vec<(FaultKey, OpenRecord)>,
        closed: &mut Vec<FaultKey>,
    ) -> rusqlite::Result<()> {
        match cmd {
            Command::AgentHello {
                id,
                hostname,
                version,
                address,
                labels,
                at_ms,
            } => {
                let labels = serde_json::to_string(labels).unwrap_or_else(|_| "{}".into());
                tx.execute(
                    "INSERT INTO agents (id, hostname, version, address, labels, first_seen_ms, last_seen_ms)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?6)
                     ON CONFLICT (id) DO UPDATE SET hostname = ?2, version = ?3, address = ?4, labels = ?5, last_seen_ms = ?6",
                    params![id, hostname, version, address, labels, at_ms],
                )?;
            }
            Command::AgentsSeen(seen) => {
                let mut stmt = tx
                    .prepare_cached("UPDATE agents SET last_seen_ms = max(last_seen_ms, ?2) WHERE id = ?1")?;
                for (id, at) in seen {
                    stmt.execute(params![id, at])?;
                }
            }
            Command::Fault(t) => self.apply_fault(tx, t, opened, closed)?,
            Command::Tick { now_ms } => {
                self.mark_overdue(tx, *now_ms)?;
                self.end_windows(tx, *now_ms)?;
            }
            Command::Delivered {
                ids,
                message_id,
                at_ms,
            } => Self::delivered(tx, ids, message_id, *at_ms)?,
            Command::DeliveryFailed { ids, error, at_ms } => self.delivery_failed(tx, ids, error, *at_ms)?,
        }
        Ok(())
    }

    fn find_open(&self, key: &FaultKey, opened: &[(FaultKey, OpenRecord)]) -> Option<(i64, Severity, i64)> {
        opened
            .iter()
            .rev()
            .find(|(k, _)| k == key)
            .map(|(_, r)| (r.id, r.severity, r.opened_at_ms))
            .or_else(|| self.open.get(key).map(|r| (r.id, r.severity, r.opened_at_ms)))
    }

    fn apply_fault(
        &mut self,
        tx: &rusqlite::Transaction<'_>,
        t: &Transition,
        opened: &mut Vec<(FaultKey, OpenRecord)>,
        closed: &mut Vec<FaultKey>,
    ) -> rusqlite::Result<()> {
        let open = if closed.contains(t.key()) {
            None
        } else {
            self.find_open(t.key(), opened)
        };
        match (t, open) {
            (Transition::Open(f), None) => {
                match self.reopenable(tx, &f.key, f.at_ms)? {
                    Some((id, severity, opened_at, acked)) => {
                        tx.execute(
                            "UPDATE faults SET status = ?2, resolved_at_ms = NULL, resolve_met = NULL, count = count + 1,
                             value = ?3, last_seen_ms = ?4, summary = ?5 WHERE id = ?1",
                            params![id, if acked { "acknowledged" } else { "open" }, f.value, f.at_ms, f.summary],
                        )?;
                        Self::event(
                            tx,
                            id,
                            f.at_ms,
                            "reopened",
                            &format!(
                                "condition holds again soon after resolving{}",
                                value_note(f.value)
                            ),
                        )?;
                        let severity = if f.severity > severity {
                            self.raise(tx, id, severity, f.severity, opened_at, f.at_ms, f.value)?;
                            f.severity
                        } else {
                            severity
                        };
                        self.enqueue(tx, id, notify::Kind::Reopened, f.at_ms)?;
                        opened.push((
                            f.key.clone(),
                            OpenRecord {
                                id,
                                severity,
                                opened_at_ms: opened_at,
                            },
                        ));
                    }
                    None => {
                        let id = self.insert(tx, f)?;
                        opened.push((
                            f.key.clone(),
                            OpenRecord {
                                id,
                                severity: f.severity,
                                opened_at_ms: f.at_ms,
                            },
                        ));
                    }
                }
                closed.retain(|k| k != &f.key);
            }
            // Open while a record is open (e.g. state lost in a restart): same record.
            (Transition::Open(f), Some((id, sev, opened_at))) => {
                tx.execute(
                    "UPDATE faults SET count = count + 1, value = ?2, last_seen_ms = ?3, summary = ?4 WHERE id = ?1",
                    params![id, f.value, f.at_ms, f.summary],
                )?;
                Self::event(
                    tx,
                    id,
                    f.at_ms,
                    "refired",
                    &format!("condition holds again{}", value_note(f.value)),
                )?;
                if f.severity > sev {
                    self.raise(tx, id, sev, f.severity, opened_at, f.at_ms, f.value)?;
                    opened.push((
                        f.key.clone(),
                        OpenRecord {
                            id,
                            severity: f.severity,
                            opened_at_ms: opened_at,
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
                Some((id, sev, opened_at)),
            ) => {
                if *severity > sev {
                    tx.execute(
                        "UPDATE faults SET summary = ?2 WHERE id = ?1",
                        params![id, summary],
                    )?;
                    self.raise(tx, id, sev, *severity, opened_at, *at_ms, Some(*value))?;
                    opened.push((
                        key.clone(),
                        OpenRecord {
                            id,
                            severity: *severity,
                            opened_at_ms: opened_at,
                        },
                    ));
                }
            }
            (Transition::Refire { value, at_ms, .. }, Some((id, _, _))) => {
                tx.execute(
                    "UPDATE faults SET count = count + 1, value = ?2, last_seen_ms = ?3 WHERE id = ?1",
                    params![id, value, at_ms],
                )?;
                Self::event(
                    tx,
                    id,
                    *at_ms,
                    "refired",
                    &format!("condition holds again{}", value_note(Some(*value))),
                )?;
            }
            (Transition::Observe { value, at_ms, .. }, Some((id, _, _))) => {
                tx.execute(
                    "UPDATE faults SET value = ?2, last_seen_ms = max(last_seen_ms, ?3) WHERE id = ?1",
                    params![id, value, at_ms],
                )?;
            }
            (
                Transition::Resolve {
                    key,
                    value,
                    at_ms,
                    reason,
                },
                Some((id, _, _)),
            ) => {
                Self::resolve_row(tx, id, *at_ms, *value)?;
                Self::event(tx, id, *at_ms, "resolved", reason)?;
                self.on_resolved(tx, id, *at_ms)?;
                closed.push(key.clone());
            }
            (other, None) => {
                tracing::debug!(fault = ?other.key(), "transition for a fault that is not open: ignored");
            }
        }
        Ok(())
    }

    #[allow(clippy::too_many_arguments)]
    fn raise(
        &self,
        tx: &rusqlite::Transaction<'_>,
        id: i64,
        from: Severity,
        to: Severity,
        opened_at: i64,
        at_ms: i64,
        value: Option<f64>,
    ) -> rusqlite::Result<()> {
        let (respond, resolve) = self.deadlines(to, opened_at);
        tx.execute(
            "UPDATE faults SET severity = ?2, response_due_ms = ?3, resolve_due_ms = ?4, value = coalesce(?5, value),
             last_seen_ms = max(last_seen_ms, ?6) WHERE id = ?1",
            params![id, to.as_str(), respond, resolve, value, at_ms],
        )?;
        Self::event(
            tx,
            id,
            at_ms,
            "severity_raised",
            &format!(
                "severity raised from {from} to {to}{}; respond by {}, resolve by {}",
                value_note(value),
                rfc3339(respond),
                rfc3339(resolve)
            ),
        )?;
        let status = Self::subject_row(tx, id)?.map(|r| r.status).unwrap_or_default();
        if to == Severity::Urgent && status == "open" {
            self.enqueue(tx, id, notify::Kind::Urgent, at_ms)?;
        }
        Ok(())
    }

    /// The latest record of `key` if it resolved (not closed) within the reopen window.
    fn reopenable(
        &self,
        tx: &rusqlite::Transaction<'_>,
        key: &FaultKey,
        at_ms: i64,
    ) -> rusqlite::Result<Option<(i64, Severity, i64, bool)>> {
        if self.settings.reopen_within_ms <= 0 {
            return Ok(None);
        }
        let row = tx
            .query_row(
                "SELECT id, severity, opened_at_ms, resolved_at_ms, acknowledged_at_ms IS NOT NULL, status FROM faults
                 WHERE rule = ?1 AND series_key = ?2 ORDER BY id DESC LIMIT 1",
                params![&*key.rule, key.series],
                |r| {
                    let sev: String = r.get(1)?;
                    let status: String = r.get(5)?;
                    Ok((r.get::<_, i64>(0)?, sev, r.get::<_, i64>(2)?, r.get::<_, Option<i64>>(3)?, r.get::<_, bool>(4)?, status))
                },
            )
            .optional()?;
        Ok(row.and_then(|(id, sev, opened_at, resolved_at, acked, status)| {
            let resolved_at = resolved_at?;
            (status == "resolved" && at_ms - resolved_at <= self.settings.reopen_within_ms)
                .then(|| (id, sev.parse().unwrap_or(Severity::General), opened_at, acked))
        }))
    }

    /// Marks a fault resolved at `at_ms`, recording which deadlines were met.
    fn resolve_row(
        tx: &rusqlite::Transaction<'_>,
        id: i64,
        at_ms: i64,
        value: Option<f64>,
    ) -> rusqlite::Result<()> {
        tx.execute(
            "UPDATE faults SET status = 'resolved', resolved_at_ms = ?2, value = coalesce(?3, value),
                 response_met = coalesce(response_met, ?2 <= response_due_ms),
                 resolve_met = coalesce(resolve_met, ?2 <= resolve_due_ms)
             WHERE id = ?1",
            params![id, at_ms, value],
        )?;
        Ok(())
    }

    /// Records deadlines that passed unmet, with a timeline event each.
    fn mark_overdue(&self, tx: &rusqlite::Transaction<'_>, now_ms: i64) -> rusqlite::Result<()> {
        for (column, due, statuses, kind, what) in [
            (
                "response_met",
                "response_due_ms",
                "'open'",
                "response_overdue",
                "response",
            ),
            (
                "resolve_met",
                "resolve_due_ms",
                "'open', 'acknowledged'",
                "resolve_overdue",
                "resolve",
            ),
        ] {
            let ids: Vec<(i64, i64)> = tx
                .prepare_cached(&format!(
                    "SELECT id, {due} FROM faults WHERE status IN ({statuses}) AND {column} IS NULL AND {due} < ?1"
                ))?
                .query_map([now_ms], |r| Ok((r.get(0)?, r.get(1)?)))?
                .collect::<rusqlite::Result<_>>()?;
            for (id, due_ms) in ids {
                tx.execute(&format!("UPDATE faults SET {column} = 0 WHERE id = ?1"), [id])?;
                Self::event(
                    tx,
                    id,
                    now_ms,
                    kind,
                    &format!("the {what} deadline {} passed", rfc3339(due_ms)),
                )?;
                self.enqueue(tx, id, notify::Kind::Overdue, now_ms)?;
            }
        }
        Ok(())
    }

    /// Suppressed faults whose window has ended become open again: the
    /// condition still holds after the change, so people must hear of it.
    fn end_windows(&self, tx: &rusqlite::Transaction<'_>, now_ms: i64) -> rusqlite::Result<()> {
        let ended: Vec<(i64, i64, String)> = tx
            .prepare_cached(
                "SELECT f.id, w.id, w.ticket FROM faults f JOIN maintenance_windows w ON w.id = f.window_id
                 WHERE f.status = 'suppressed' AND w.ends_at_ms <= ?1",
            )?
            .query_map([now_ms], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?
            .collect::<rusqlite::Result<_>>()?;
        for (id, window, ticket) in ended {
            tx.execute(
                "UPDATE faults SET status = CASE WHEN acknowledged_at_ms IS NULL THEN 'open' ELSE 'acknowledged' END
                 WHERE id = ?1",
                [id],
            )?;
            let (respond, resolve) = self.restart_deadlines(tx, id, now_ms)?;
            Self::event(
                tx,
                id,
                now_ms,
                "unsuppressed",
                &format!(
                    "maintenance window #{window} ({ticket}) ended while the fault still holds; \
                     respond by {}, resolve by {}",
                    rfc3339(respond),
                    rfc3339(resolve)
                ),
            )?;
            self.enqueue(tx, id, notify::Kind::Unsuppressed, now_ms)?;
        }
        Ok(())
    }

    /// A suppressed fault becomes actionable at `now_ms`: its deadlines are
    /// counted from then (time inside an approved window or behind a failed
    /// parent is not the handlers' time).
    fn restart_deadlines(
        &self,
        tx: &rusqlite::Transaction<'_>,
        id: i64,
        now_ms: i64,
    ) -> rusqlite::Result<(i64, i64)> {
        let severity: String =
            tx.query_row("SELECT severity FROM faults WHERE id = ?1", [id], |r| r.get(0))?;
        let (respond, resolve) = self.deadlines(severity.parse().unwrap_or(Severity::General), now_ms);
        tx.execute(
            "UPDATE faults SET response_due_ms = ?2, resolve_due_ms = ?3 WHERE id = ?1",
            params![id, respond, resolve],
        )?;
        Ok((respond, resolve))
    }

    fn insert(&self, tx: &rusqlite::Transaction<'_>, f: &NewFault) -> rusqlite::Result<i64> {
        let (respond, resolve) = self.deadlines(f.severity, f.at_ms);
        let labels = serde_json::to_string(&f.labels).unwrap_or_else(|_| "{}".into());
        let window = self
            .windows
            .iter()
            .find(|w| w.covers(&f.key.rule, &f.host, &f.labels, f.at_ms));
        let parent = if f.unreachable && window.is_none() {
            self.parent_fault(tx, &f.host, &f.labels)?
        } else {
            None
        };
        let suppressed = window.is_some() || parent.is_some();
        tx.execute(
            "INSERT INTO faults (rule, series_key, host, metric, labels, severity, status, summary, value, count,
                                 opened_at_ms, last_seen_ms, response_due_ms, resolve_due_ms, window_id,
                                 unreachable, parent_fault_id)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?12, ?7, ?8, 1, ?9, ?9, ?10, ?11, ?13, ?14, ?15)",
            params![
                &*f.key.rule,
                f.key.series,
                f.host,
                f.metric,
                labels,
                f.severity.as_str(),
                f.summary,
                f.value,
                f.at_ms,
                respond,
                resolve,
                if suppressed { "suppressed" } else { "open" },
                window.map(|w| w.id),
                f.unreachable,
                parent.as_ref().map(|p| p.0),
            ],
        )?;
        let id = tx.last_insert_rowid();
        Self::event(
            tx,
            id,
            f.at_ms,
            "opened",
            &format!(
                "opened at severity {}: {}{}",
                f.severity,
                f.summary,
                value_note(f.value)
            ),
        )?;
        if let Some(w) = window {
            Self::event(
                tx,
                id,
                f.at_ms,
                "suppressed",
                &format!(
                    "inside maintenance window #{} ({}): {}; recorded, not notified",
                    w.id, w.ticket, w.reason
                ),
            )?;
        }
        if let Some((parent_id, name)) = &parent {
            Self::event(
                tx,
                id,
                f.at_ms,
                "suppressed",
                &format!("its parent {name} is unreachable (fault #{parent_id}): linked, not notified"),
            )?;
        }
        if !suppressed {
            self.enqueue(tx, id, notify::Kind::Opened, f.at_ms)?;
        }
        if f.unreachable {
            self.suppress_children(tx, id, f.at_ms)?;
        }
        Ok(id)
    }
}

impl Writer {
    fn run(mut self, mut rx: mpsc::Receiver<Job>) {
        while let Some(first) = rx.blocking_recv() {
            let mut jobs = vec![first];
            while jobs.len() < 256 {
                match rx.try_recv() {
                    Ok(j) => jobs.push(j),
                    Err(_) => break,
                }
            }
            let result = self.commit(&jobs);
            if let Err(e) = &result {
                tracing::error!(error = %e, "database write failed");
            }
            for job in jobs {
                match job {
                    Job::Write { done: Some(done), .. } => {
                        let _ = done.send(result.clone());
                    }
                    Job::Write { done: None, .. } => {}
                    Job::AddWindow { window, reply } => {
                        let _ = reply.send(self.add_window(window));
                    }
                    Job::Act {
                        id,
                        actor,
                        at_ms,
                        action,
                        reply,
                    } => {
                        let _ = reply.send(self.act(id, &actor, at_ms, &action));
                    }
                }
            }
            // The outbox may have new rows: let the dispatcher look.
            self.wake.notify_one();
        }
    }

    fn add_window(&mut self, mut w: Window) -> Result<i64, String> {
        let matchers = serde_json::to_string(&w.matchers).map_err(|e| e.to_string())?;
        self.conn
            .execute(
                "INSERT INTO maintenance_windows (host, rule, matchers, starts_at_ms, ends_at_ms, reason, ticket, created_by, created_at_ms)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
                params![w.host, w.rule, matchers, w.starts_at_ms, w.ends_at_ms, w.reason, w.ticket, w.created_by, w.created_at_ms],
            )
            .map_err(|e| e.to_string())?;
        w.id = self.conn.last_insert_rowid();
        self.state.windows.push(w);
        Ok(self.state.windows.last().map_or(0, |w| w.id))
    }

    fn act(&mut self, id: i64, actor: &str, at_ms: i64, action: &FaultAction) -> Result<(), ActionError> {
        let db = |e: rusqlite::Error| ActionError::Db(e.to_string());
        let tx = self.conn.transaction().map_err(db)?;
        let row: Option<ActionRow> = tx
            .query_row(
                "SELECT status, rule, series_key, acknowledged_by, acknowledged_at_ms FROM faults WHERE id = ?1",
                [id],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?)),
            )
            .optional()
            .map_err(db)?;
        let Some((status, rule, series, acked_by, acked_at)) = row else {
            return Err(ActionError::NotFound(id));
        };
        let conflict = |m: String| Err(ActionError::Conflict(m));
        let live = matches!(status.as_str(), "open" | "acknowledged" | "suppressed");
        let event = |kind: &str, message: &str| {
            tx.execute(
                "INSERT INTO fault_events (fault_id, at_ms, actor, kind, message) VALUES (?1, ?2, ?3, ?4, ?5)",
                params![id, at_ms, actor, kind, message],
            )
        };
        let mut resolved_key = None;
        match action {
            FaultAction::Ack { comment } => {
                if status == "acknowledged" {
                    let who = acked_by.unwrap_or_default();
                    let when = acked_at.map(rfc3339).unwrap_or_default();
                    return conflict(format!("fault {id} was already acknowledged by {who} at {when}"));
                }
                if !live {
                    return conflict(format!(
                        "fault {id} is {status}: there is nothing left to acknowledge"
                    ));
                }
                tx.execute(
                    "UPDATE faults SET status = CASE status WHEN 'suppressed' THEN 'suppressed' ELSE 'acknowledged' END,
                         acknowledged_at_ms = ?2, acknowledged_by = ?3,
                         response_met = coalesce(response_met, ?2 <= response_due_ms)
                     WHERE id = ?1",
                    params![id, at_ms, actor],
                )
                .map_err(db)?;
                let text = comment.as_deref().map(|c| format!(": {c}")).unwrap_or_default();
                event("acknowledged", &format!("acknowledged{text}")).map_err(db)?;
                self.state.on_acknowledged(&tx, id, at_ms, actor).map_err(db)?;
            }
            FaultAction::Resolve { comment } => {
                if !live {
                    return conflict(format!("fault {id} is already {status}"));
                }
                WriterState::resolve_row(&tx, id, at_ms, None).map_err(db)?;
                event("resolved", &format!("resolved by hand: {comment}")).map_err(db)?;
                self.state.on_resolved(&tx, id, at_ms).map_err(db)?;
                resolved_key = Some(FaultKey {
                    rule: Arc::from(rule.as_str()),
                    series,
                });
            }
            FaultAction::Close { cause, handling } => {
                match status.as_str() {
                    "resolved" => {}
                    "closed" => return conflict(format!("fault {id} is already closed")),
                    _ => return conflict(format!("fault {id} is {status}: resolve it before closing it")),
                }
                tx.execute(
                    "UPDATE faults SET status = 'closed', closed_at_ms = ?2, cause = ?3, handling = ?4 WHERE id = ?1",
                    params![id, at_ms, cause, handling],
                )
                .map_err(db)?;
                event("closed", &format!("closed. Cause: {cause}. Handling: {handling}")).map_err(db)?;
            }
            FaultAction::Note { text } => {
                event("note", text).map_err(db)?;
            }
            FaultAction::Assign { assignee } => {
                if status == "closed" {
                    return conflict(format!("fault {id} is closed"));
                }
                tx.execute(
                    "UPDATE faults SET assignee = ?2 WHERE id = ?1",
                    params![id, assignee],
                )
                .map_err(db)?;
                event("assigned", &format!("assigned to {assignee}")).map_err(db)?;
            }
        }
        tx.commit().map_err(db)?;
        if let Some(key) = resolved_key {
            self.state.open.remove(&key);
            self.state
                .open_faults
                .store(self.state.open.len() as u64, Ordering::Relaxed);
        }
        Ok(())
    }

    fn commit(&mut self, jobs: &[Job]) -> Result<(), String> {
        let mut opened = Vec::new();
        let mut closed = Vec::new();
        let tx = self.conn.transaction().map_err(|e| e.to_string())?;
        let mut result = Ok(());
        for job in jobs {
            let Job::Write { commands, .. } = job else {
                continue;
            };
            for cmd in commands {
                if let Err(e) = self.state.apply(&tx, cmd, &mut opened, &mut closed) {
                    result = Err(e.to_string());
                    break;
                }
            }
        }
        match result {
            Ok(()) => {
                tx.commit().map_err(|e| e.to_string())?;
                // Opened first, then closed: a fault opened and resolved in
                // one commit must not stay in the open map.
                let open = &mut self.state.open;
                for (k, r) in opened {
                    open.insert(k, r);
                }
                for k in closed.drain(..) {
                    open.remove(&k);
                }
                self.state.open_faults.store(open.len() as u64, Ordering::Relaxed);
                Ok(())
            }
            Err(e) => {
                let _ = tx.rollback();
                Err(e)
            }
        }
    }
}

fn value_note(v: Option<f64>) -> String {
    v.map(|v| format!(" (value {})", crate::rules::format_value(v)))
        .unwrap_or_default()
}

/// Every maintenance window, oldest first.
fn load_windows(conn: &Connection) -> rusqlite::Result<Vec<Window>> {
    let mut stmt = conn.prepare(
        "SELECT id, host, rule, matchers, starts_at_ms, ends_at_ms, reason, ticket, created_by, created_at_ms
         FROM maintenance_windows ORDER BY id",
    )?;
    let rows = stmt.query_map([], |r| {
        let matchers: String = r.get(3)?;
        Ok(Window::new(
            r.get(0)?,
            r.get(1)?,
            r.get(2)?,
            serde_json::from_str(&matchers).unwrap_or_default(),
            r.get(4)?,
            r.get(5)?,
            r.get(6)?,
            r.get(7)?,
            r.get(8)?,
            r.get(9)?,
        ))
    })?;
    let mut out = Vec::new();
    for row in rows {
        match row? {
            Ok(w) => out.push(w),
            Err(e) => {
                tracing::warn!(error = %e, "skipping a stored maintenance window that no longer checks")
            }
        }
    }
    Ok(out)
}

const FAULT_COLUMNS: &str =
    "id, rule, severity, status, host, metric, labels, summary, value, count, opened_at_ms,
     last_seen_ms, resolved_at_ms, response_due_ms, resolve_due_ms, acknowledged_at_ms, acknowledged_by, assignee,
     closed_at_ms, cause, handling, response_met, resolve_met, parent_fault_id";

fn fault_from_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<Fault> {
    fault_from_row_at(r, 0)
}

/// A fault from `FAULT_COLUMNS` starting at column `o`.
fn fault_from_row_at(r: &rusqlite::Row<'_>, o: usize) -> rusqlite::Result<Fault> {
    let severity: String = r.get(o + 2)?;
    let status: String = r.get(o + 3)?;
    let labels: String = r.get(o + 6)?;
    Ok(Fault {
        id: r.get(o)?,
        rule: r.get(o + 1)?,
        severity: severity.parse().unwrap_or(Severity::General),
        status: FaultStatus::parse(&status).unwrap_or(FaultStatus::Open),
        host: r.get(o + 4)?,
        metric: r.get(o + 5)?,
        labels: serde_json::from_str(&labels).unwrap_or_default(),
        summary: r.get(o + 7)?,
        value: r.get(o + 8)?,
        count: r.get(o + 9)?,
        opened_at: rfc3339(r.get(o + 10)?),
        last_seen_at: rfc3339(r.get(o + 11)?),
        resolved_at: r.get::<_, Option<i64>>(o + 12)?.map(rfc3339),
        response_due: rfc3339(r.get(o + 13)?),
        resolve_due: rfc3339(r.get(o + 14)?),
        acknowledged_at: r.get::<_, Option<i64>>(o + 15)?.map(rfc3339),
        acknowledged_by: r.get(o + 16)?,
        assignee: r.get(o + 17)?,
        closed_at: r.get::<_, Option<i64>>(o + 18)?.map(rfc3339),
        cause: r.get(o + 19)?,
        handling: r.get(o + 20)?,
        response_met: r.get(o + 21)?,
        resolve_met: r.get(o + 22)?,
        parent_fault: r.get(o + 23)?,
        timeline: Vec::new(),
    })
}

impl Database {
    /// Opens (creating and migrating) `dir/watchpost.db` and starts the writer.
    pub fn open(dir: &Path, settings: FaultSettings) -> Result<Database, DbError> {
        let path = dir.join("watchpost.db");
        let err = |message: String| DbError::Open {
            path: path.clone(),
            message,
        };
        std::fs::create_dir_all(dir).map_err(|e| err(format!("cannot create data directory: {e}")))?;
        let mut conn = open_connection(&path).map_err(err)?;
        schema::migrate(&mut conn).map_err(err)?;
        let mut open = HashMap::new();
        {
            let mut stmt = conn
                .prepare("SELECT id, rule, series_key, severity, opened_at_ms FROM faults WHERE status IN ('open', 'acknowledged', 'suppressed')")
                .map_err(|e| err(e.to_string()))?;
            let rows = stmt
                .query_map([], |r| {
                    let rule: String = r.get(1)?;
                    let sev: String = r.get(3)?;
                    Ok((
                        FaultKey {
                            rule: Arc::from(rule.as_str()),
                            series: r.get(2)?,
                        },
                        OpenRecord {
                            id: r.get(0)?,
                            severity: sev.parse().unwrap_or(Severity::General),
                            opened_at_ms: r.get(4)?,
                        },
                    ))
                })
                .map_err(|e| err(e.to_string()))?;
            for row in rows {
                let (k, r) = row.map_err(|e| err(e.to_string()))?;
                open.insert(k, r);
            }
        }
        let windows = load_windows(&conn).map_err(|e| err(e.to_string()))?;
        let reader = open_connection(&path).map_err(err)?;
        let open_faults = Arc::new(AtomicU64::new(open.len() as u64));
        let (tx, rx) = mpsc::channel::<Job>(4096);
        let wake = Arc::new(tokio::sync::Notify::new());
        let writer = Writer {
            wake: wake.clone(),
            conn,
            state: WriterState {
                settings,
                windows,
                open,
                open_faults: open_faults.clone(),
            },
        };
        std::thread::Builder::new()
            .name("watchpost-db".into())
            .spawn(move || writer.run(rx))
            .map_err(|e| err(format!("cannot start the writer thread: {e}")))?;
        Ok(Database {
            writer: tx,
            reader: Arc::new(Mutex::new(reader)),
            open_faults,
            wake,
        })
    }

    /// Faults open now (kept by the writer).
    pub fn open_fault_count(&self) -> u64 {
        self.open_faults.load(Ordering::Relaxed)
    }

    /// Writes `commands` in the next group commit and waits until they are on disk.
    pub async fn write(&self, commands: Vec<Command>) -> Result<(), DbError> {
        let (done, wait) = oneshot::channel();
        self.writer
            .send(Job::Write {
                commands,
                done: Some(done),
            })
            .await
            .map_err(|_| DbError::WriterGone)?;
        match wait.await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(e)) => Err(DbError::Open {
                path: PathBuf::from("watchpost.db"),
                message: e,
            }),
            Err(_) => Err(DbError::WriterGone),
        }
    }

    /// Carries out a person's action on fault `id` and waits until it is on disk.
    pub async fn act(
        &self,
        id: i64,
        actor: &str,
        at_ms: i64,
        action: FaultAction,
    ) -> Result<(), ActionError> {
        let (reply, wait) = oneshot::channel();
        let job = Job::Act {
            id,
            actor: actor.to_string(),
            at_ms,
            action,
            reply,
        };
        self.writer
            .send(job)
            .await
            .map_err(|_| ActionError::Db("writer stopped".into()))?;
        wait.await.map_err(|_| ActionError::Db("writer stopped".into()))?
    }

    /// Stores a checked maintenance window; returns its id.
    pub async fn add_window(&self, window: Window) -> Result<i64, DbError> {
        let (reply, wait) = oneshot::channel();
        self.writer
            .send(Job::AddWindow { window, reply })
            .await
            .map_err(|_| DbError::WriterGone)?;
        wait.await
            .map_err(|_| DbError::WriterGone)?
            .map_err(|message| DbError::Open {
                path: PathBuf::from("watchpost.db"),
                message,
            })
    }

    /// Every maintenance window.
    pub async fn windows(&self) -> Result<Vec<Window>, DbError> {
        self.read(load_windows).await
    }

    /// Queues `commands` without waiting for them to be written.
    pub async fn write_later(&self, commands: Vec<Command>) {
        if self
            .writer
            .send(Job::Write { commands, done: None })
            .await
            .is_err()
        {
            tracing::warn!("database writer has stopped: update dropped");
        }
    }

    async fn read<T: Send + 'static>(
        &self,
        f: impl FnOnce(&Connection) -> rusqlite::Result<T> + Send + 'static,
    ) -> Result<T, DbError> {
        let reader = self.reader.clone();
        tokio::task::spawn_blocking(move || {
            let conn = reader.lock().unwrap_or_else(|p| p.into_inner());
            f(&conn)
        })
        .await
        .map_err(|_| DbError::WriterGone)?
        .map_err(DbError::Query)
    }

    /// Faults matching `filter`, newest first.
    pub async fn faults(&self, filter: FaultFilter) -> Result<Vec<Fault>, DbError> {
        self.read(move |conn| {
            let mut sql = format!("SELECT {FAULT_COLUMNS} FROM faults WHERE 1 = 1");
            let mut args: Vec<rusqlite::types::Value> = Vec::new();
            let mut any_of = |column: &str, values: Vec<String>, sql: &mut String| {
                if values.is_empty() {
                    return;
                }
                let marks: Vec<String> = values
                    .into_iter()
                    .map(|v| {
                        args.push(v.into());
                        format!("?{}", args.len())
                    })
                    .collect();
                sql.push_str(&format!(" AND {column} IN ({})", marks.join(", ")));
            };
            any_of(
                "status",
                filter.status.iter().map(|s| s.as_str().to_string()).collect(),
                &mut sql,
            );
            any_of(
                "severity",
                filter.severity.iter().map(|s| s.as_str().to_string()).collect(),
                &mut sql,
            );
            any_of("host", filter.host.into_iter().collect(), &mut sql);
            any_of("rule", filter.rule.into_iter().collect(), &mut sql);
            sql.push_str(&format!(" ORDER BY id DESC LIMIT {}", filter.limit.max(1)));
            let mut stmt = conn.prepare(&sql)?;
            let rows = stmt.query_map(rusqlite::params_from_iter(args), fault_from_row)?;
            rows.collect()
        })
        .await
    }

    /// One fault with its timeline.
    pub async fn fault(&self, id: i64) -> Result<Option<Fault>, DbError> {
        self.read(move |conn| {
            let fault = conn
                .query_row(
                    &format!("SELECT {FAULT_COLUMNS} FROM faults WHERE id = ?1"),
                    [id],
                    fault_from_row,
                )
                .optional()?;
            let Some(mut fault) = fault else { return Ok(None) };
            let mut stmt = conn.prepare(
                "SELECT at_ms, actor, kind, message FROM fault_events WHERE fault_id = ?1 ORDER BY id",
            )?;
            fault.timeline = stmt
                .query_map([id], |r| {
                    Ok(FaultEvent {
                        at: rfc3339(r.get(0)?),
                        actor: r.get(1)?,
                        kind: r.get(2)?,
                        message: r.get(3)?,
                    })
                })?
                .collect::<rusqlite::Result<_>>()?;
            Ok(Some(fault))
        })
        .await
    }

    /// Open faults as (key, severity), for the rule engine at start-up.
    pub async fn open_faults(&self) -> Result<Vec<(FaultKey, Severity)>, DbError> {
        self.read(|conn| {
            let mut stmt = conn.prepare(
                "SELECT rule, series_key, severity FROM faults WHERE status IN ('open', 'acknowledged', 'suppressed')",
            )?;
            let rows = stmt.query_map([], |r| {
                let rule: String = r.get(0)?;
                let sev: String = r.get(2)?;
                Ok((FaultKey { rule: Arc::from(rule.as_str()), series: r.get(1)? }, sev.parse().unwrap_or(Severity::General)))
            })?;
            rows.collect()
        })
        .await
    }

    /// Every agent ever seen.
    pub async fn agents(&self) -> Result<Vec<AgentRow>, DbError> {
        self.read(|conn| {
            let mut stmt = conn.prepare(
                "SELECT id, hostname, version, address, labels, first_seen_ms, last_seen_ms FROM agents ORDER BY id",
            )?;
            let rows = stmt.query_map([], |r| {
                let labels: String = r.get(4)?;
                Ok(AgentRow {
                    id: r.get(0)?,
                    hostname: r.get(1)?,
                    version: r.get(2)?,
                    address: r.get(3)?,
                    labels: serde_json::from_str(&labels).unwrap_or_default(),
                    first_seen_ms: r.get(5)?,
                    last_seen_ms: r.get(6)?,
                })
            })?;
            rows.collect()
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn new_fault(series: &str, severity: Severity, at_ms: i64) -> NewFault {
        NewFault {
            key: FaultKey {
                rule: Arc::from("r"),
                series: series.to_string(),
            },
            severity,
            value: Some(95.0),
            at_ms,
            summary: "disk full".into(),
            host: "h1".into(),
            metric: "m".into(),
            labels: BTreeMap::from([("host".to_string(), "h1".to_string())]),
            unreachable: false,
        }
    }

    fn no_reopen() -> FaultSettings {
        FaultSettings {
            reopen_within_ms: 0,
            ..FaultSettings::default()
        }
    }

    #[tokio::test]
    async fn fault_lifecycle_is_recorded_and_survives_reopen() {
        let dir = tempfile::tempdir().expect("tempdir");
        let db = Database::open(dir.path(), no_reopen()).expect("open");
        let f = new_fault("m{host=\"h1\"}", Severity::Minor, 1_000_000);
        let key = f.key.clone();
        db.write(vec![Command::Fault(Transition::Open(f.clone()))])
            .await
            .expect("write");
        db.write(vec![
            Command::Fault(Transition::Raise {
                key: key.clone(),
                severity: Severity::Urgent,
                value: 99.0,
                at_ms: 1_060_000,
                summary: "s2".into(),
            }),
            Command::Fault(Transition::Refire {
                key: key.clone(),
                value: 97.0,
                at_ms: 1_070_000,
            }),
        ])
        .await
        .expect("write");
        assert_eq!(db.open_fault_count(), 1);
        let listed = db
            .faults(FaultFilter {
                limit: 10,
                ..Default::default()
            })
            .await
            .expect("list");
        assert_eq!(listed.len(), 1);
        let fault = db.fault(listed[0].id).await.expect("get").expect("exists");
        assert_eq!(fault.severity, Severity::Urgent);
        assert_eq!(fault.count, 2);
        // Deadlines follow the highest severity, counted from the opening.
        assert_eq!(fault.response_due, rfc3339(1_000_000 + 3_600_000));
        assert_eq!(fault.resolve_due, rfc3339(1_000_000 + 4 * 3_600_000));
        let kinds: Vec<&str> = fault.timeline.iter().map(|e| e.kind.as_str()).collect();
        assert_eq!(kinds, ["opened", "severity_raised", "refired"]);
        drop(db);

        let db = Database::open(dir.path(), no_reopen()).expect("reopen");
        assert_eq!(db.open_fault_count(), 1);
        let open = db.open_faults().await.expect("open faults");
        assert_eq!(open, vec![(key.clone(), Severity::Urgent)]);
        db.write(vec![Command::Fault(Transition::Resolve {
            key: key.clone(),
            value: Some(10.0),
            at_ms: 1_100_000,
            reason: "ok".into(),
        })])
        .await
        .expect("resolve");
        let fault = db.fault(fault.id).await.expect("get").expect("exists");
        assert_eq!(fault.status, FaultStatus::Resolved);
        assert_eq!(fault.resolved_at, Some(rfc3339(1_100_000)));
        assert_eq!(db.open_fault_count(), 0);
        // A new firing opens a new record.
        db.write(vec![Command::Fault(Transition::Open(f))])
            .await
            .expect("write");
        let listed = db
            .faults(FaultFilter {
                limit: 10,
                status: vec![FaultStatus::Open],
                ..Default::default()
            })
            .await
            .expect("list");
        assert_eq!(listed.len(), 1);
        assert_ne!(listed[0].id, fault.id);
    }

    #[tokio::test]
    async fn open_and_resolve_in_one_commit_leaves_nothing_open() {
        let dir = tempfile::tempdir().expect("tempdir");
        let db = Database::open(dir.path(), FaultSettings::default()).expect("open");
        let f = new_fault("x", Severity::General, 5);
        let key = f.key.clone();
        db.write(vec![
            Command::Fault(Transition::Open(f)),
            Command::Fault(Transition::Resolve {
                key,
                value: None,
                at_ms: 6,
                reason: "gone".into(),
            }),
        ])
        .await
        .expect("write");
        assert_eq!(db.open_fault_count(), 0);
    }

    #[tokio::test]
    async fn timeline_and_records_cannot_be_altered() {
        let dir = tempfile::tempdir().expect("tempdir");
        let db = Database::open(dir.path(), FaultSettings::default()).expect("open");
        db.write(vec![Command::Fault(Transition::Open(new_fault(
            "x",
            Severity::General,
            5,
        )))])
        .await
        .expect("write");
        drop(db);
        let conn = Connection::open(dir.path().join("watchpost.db")).expect("open");
        let e = conn
            .execute("UPDATE fault_events SET message = 'x'", [])
            .expect_err("append-only");
        assert!(e.to_string().contains("append-only"), "{e}");
        assert!(conn.execute("DELETE FROM faults", []).is_err());
        let e = conn.execute("INSERT INTO faults (rule, series_key, host, metric, labels, severity, status, summary, opened_at_ms, last_seen_ms, response_due_ms, resolve_due_ms) VALUES ('r', 'x', 'h', 'm', '{}', 'general', 'open', 's', 1, 1, 1, 1)", []).expect_err("one open per rule and series");
        assert!(e.to_string().contains("UNIQUE"), "{e}");
    }

    #[test]
    fn newer_schema_is_refused() {
        let dir = tempfile::tempdir().expect("tempdir");
        let conn = Connection::open(dir.path().join("watchpost.db")).expect("open");
        conn.pragma_update(None, "user_version", 99).expect("set");
        drop(conn);
        let e = Database::open(dir.path(), FaultSettings::default())
            .err()
            .expect("refused")
            .to_string();
        assert!(e.contains("newer"), "{e}");
    }

    #[tokio::test]
    async fn people_ack_resolve_and_close_with_deadlines_recorded() {
        let dir = tempfile::tempdir().expect("tempdir");
        let db = Database::open(dir.path(), FaultSettings::default()).expect("open");
        // Urgent: respond within 1 h, resolve within 4 h.
        let f = new_fault("a", Severity::Urgent, 0);
        db.write(vec![Command::Fault(Transition::Open(f.clone()))])
            .await
            .expect("open");
        let id = db
            .faults(FaultFilter {
                limit: 1,
                ..Default::default()
            })
            .await
            .expect("list")[0]
            .id;

        let close_early = db
            .act(
                id,
                "li",
                10,
                FaultAction::Close {
                    cause: "c".into(),
                    handling: "h".into(),
                },
            )
            .await;
        assert!(
            matches!(close_early, Err(ActionError::Conflict(m)) if m.contains("resolve it before closing"))
        );
        db.act(
            id,
            "li",
            30 * 60_000,
            FaultAction::Ack {
                comment: Some("on it".into()),
            },
        )
        .await
        .expect("ack");
        let again = db
            .act(id, "wang", 31 * 60_000, FaultAction::Ack { comment: None })
            .await;
        assert!(matches!(again, Err(ActionError::Conflict(m)) if m.contains("already acknowledged by li")));
        db.act(
            id,
            "li",
            40 * 60_000,
            FaultAction::Assign {
                assignee: "wang".into(),
            },
        )
        .await
        .expect("assign");
        db.act(
            id,
            "wang",
            41 * 60_000,
            FaultAction::Note {
                text: "disk swapped".into(),
            },
        )
        .await
        .expect("note");
        // Resolved after 5 h: response met, resolve missed.
        db.act(
            id,
            "wang",
            5 * 3_600_000,
            FaultAction::Resolve {
                comment: "replaced the disk".into(),
            },
        )
        .await
        .expect("resolve");
        assert_eq!(db.open_fault_count(), 0);
        db.act(
            id,
            "wang",
            5 * 3_600_000 + 1,
            FaultAction::Close {
                cause: "disk failure".into(),
                handling: "replaced".into(),
            },
        )
        .await
        .expect("close");
        assert!(matches!(
            db.act(id, "x", 1, FaultAction::Resolve { comment: "x".into() })
                .await,
            Err(ActionError::Conflict(_))
        ));
        assert_eq!(
            db.act(999, "x", 1, FaultAction::Note { text: "x".into() }).await,
            Err(ActionError::NotFound(999))
        );

        let f = db.fault(id).await.expect("get").expect("exists");
        assert_eq!(f.status, FaultStatus::Closed);
        assert_eq!((f.response_met, f.resolve_met), (Some(true), Some(false)));
        assert_eq!(f.acknowledged_by.as_deref(), Some("li"));
        assert_eq!(f.assignee.as_deref(), Some("wang"));
        assert_eq!(
            (f.cause.as_deref(), f.handling.as_deref()),
            (Some("disk failure"), Some("replaced"))
        );
        let events: Vec<(&str, &str)> = f
            .timeline
            .iter()
            .map(|e| (e.kind.as_str(), e.actor.as_str()))
            .collect();
        assert_eq!(
            events,
            [
                ("opened", "system"),
                ("acknowledged", "li"),
                ("assigned", "li"),
                ("note", "wang"),
                ("resolved", "wang"),
                ("closed", "wang")
            ]
        );
    }

    #[tokio::test]
    async fn a_fault_that_fires_soon_after_resolving_reopens_and_overdue_deadlines_are_marked() {
        let dir = tempfile::tempdir().expect("tempdir");
        let db = Database::open(dir.path(), FaultSettings::default()).expect("open");
        let f = new_fault("b", Severity::Urgent, 0);
        let key = f.key.clone();
        db.write(vec![Command::Fault(Transition::Open(f.clone()))])
            .await
            .expect("open");
        let resolve = |at_ms| {
            Command::Fault(Transition::Resolve {
                key: key.clone(),
                value: None,
                at_ms,
                reason: "ok".into(),
            })
        };
        db.write(vec![resolve(60_000)]).await.expect("resolve");
        // Fires again 5 minutes later: within the 10-minute window.
        db.write(vec![Command::Fault(Transition::Open(NewFault {
            at_ms: 360_000,
            ..f.clone()
        }))])
        .await
        .expect("reopen");
        let all = db
            .faults(FaultFilter {
                limit: 10,
                ..Default::default()
            })
            .await
            .expect("list");
        assert_eq!(all.len(), 1, "same record");
        assert_eq!((all[0].status, all[0].count), (FaultStatus::Open, 2));
        assert_eq!(all[0].resolve_met, None);
        // Resolving within the hour counted as the response; the reopened fault
        // keeps that. Not resolved again within 4 h: the resolve deadline is
        // marked missed, once, and stays missed.
        db.write(vec![Command::Tick {
            now_ms: 2 * 3_600_000,
        }])
        .await
        .expect("overdue");
        db.write(vec![Command::Tick {
            now_ms: 5 * 3_600_000,
        }])
        .await
        .expect("overdue");
        db.write(vec![Command::Tick {
            now_ms: 6 * 3_600_000,
        }])
        .await
        .expect("overdue");
        db.write(vec![resolve(7 * 3_600_000)]).await.expect("resolve");
        let f1 = db.fault(all[0].id).await.expect("get").expect("exists");
        assert_eq!((f1.response_met, f1.resolve_met), (Some(true), Some(false)));
        let kinds: Vec<&str> = f1.timeline.iter().map(|e| e.kind.as_str()).collect();
        assert_eq!(
            kinds,
            ["opened", "resolved", "reopened", "resolve_overdue", "resolved"]
        );
        // Firing again long after: a new record.
        db.write(vec![Command::Fault(Transition::Open(NewFault {
            at_ms: 9 * 3_600_000,
            ..f
        }))])
        .await
        .expect("open");
        assert_eq!(
            db.faults(FaultFilter {
                limit: 10,
                ..Default::default()
            })
            .await
            .expect("list")
            .len(),
            2
        );
    }

    #[tokio::test]
    async fn faults_inside_a_maintenance_window_are_suppressed_until_it_ends() {
        let dir = tempfile::tempdir().expect("tempdir");
        let db = Database::open(dir.path(), FaultSettings::default()).expect("open");
        let w = Window::new(
            0,
            Some("h1".into()),
            None,
            BTreeMap::new(),
            0,
            1_000_000,
            "swap disks".into(),
            "CHG-7".into(),
            "li".into(),
            0,
        )
        .expect("valid");
        let wid = db.add_window(w).await.expect("window");
        db.write(vec![Command::Fault(Transition::Open(new_fault(
            "s",
            Severity::Urgent,
            500_000,
        )))])
        .await
        .expect("open");
        let f = db
            .faults(FaultFilter {
                limit: 1,
                ..Default::default()
            })
            .await
            .expect("list")
            .remove(0);
        assert_eq!(f.status, FaultStatus::Suppressed);
        // Not overdue while suppressed; back to open when the window ends.
        db.write(vec![Command::Tick { now_ms: 999_999 }])
            .await
            .expect("tick");
        assert_eq!(
            db.fault(f.id).await.expect("get").expect("exists").status,
            FaultStatus::Suppressed
        );
        db.write(vec![Command::Tick { now_ms: 1_000_000 }])
            .await
            .expect("tick");
        let f = db.fault(f.id).await.expect("get").expect("exists");
        assert_eq!(f.status, FaultStatus::Open);
        let kinds: Vec<&str> = f.timeline.iter().map(|e| e.kind.as_str()).collect();
        assert_eq!(kinds, ["opened", "suppressed", "unsuppressed"]);
        assert_eq!(
            f.response_due,
            rfc3339(1_000_000 + 3_600_000),
            "the urgent hour counts from the window's end"
        );
        assert!(
            f.timeline[1].message.contains(&format!("#{wid} (CHG-7)")),
            "{}",
            f.timeline[1].message
        );
        drop(db);
        let db = Database::open(dir.path(), FaultSettings::default()).expect("reopen");
        assert_eq!(
            db.windows().await.expect("windows").len(),
            1,
            "windows survive a restart"
        );
    }

    #[tokio::test]
    async fn urgent_faults_and_missed_deadlines_reach_managers_and_ack_stops_escalation() {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::write(
            dir.path().join("oncall.toml"),
            "[[team]]\nname = \"ops\"\nlead = \"zhang\"\nmanagers = [\"chen\"]\n\
             members = [ { name = \"li\" }, { name = \"zhang\" }, { name = \"chen\" } ]\n\
             rotation = { every = \"day\", handover = \"09:00\", start = \"2026-01-01\", order = [\"li\"] }\n",
        )
        .expect("roster");
        let config = crate::CollectorConfig::parse(
            "[collector]\noncall = \"oncall.toml\"\n[[channel]]\nname = \"hook\"\ntype = \"webhook\"\nurl = \"http://127.0.0.1:1/\"\n\
             [[route]]\nteam = \"ops\"\nchannels = [\"hook\"]\n",
            dir.path(),
        )
        .expect("config");
        let settings = FaultSettings {
            notify: config.notify.clone(),
            ..FaultSettings::default()
        };
        let db = Database::open(dir.path(), settings).expect("open");
        let t: i64 = "2026-11-23T03:00:00Z"
            .parse::<jiff::Timestamp>()
            .expect("ts")
            .as_millisecond();
        db.write(vec![Command::Fault(Transition::Open(new_fault(
            "s",
            Severity::Urgent,
            t,
        )))])
        .await
        .expect("open");
        let rows = |db: Database| async move {
            let mut r = db
                .notifications(NotificationFilter {
                    limit: 100,
                    ..Default::default()
                })
                .await
                .expect("outbox");
            r.reverse();
            r.into_iter()
                .map(|n| (n.kind, n.recipient, n.status))
                .collect::<Vec<_>>()
        };
        let s = |a: &str, b: &str, c: &str| (a.to_string(), b.to_string(), c.to_string());
        assert_eq!(
            rows(db.clone()).await,
            [
                s("opened", "li", "pending"),
                s("escalated", "zhang", "pending"),
                s("urgent", "chen", "pending")
            ]
        );
        // Two hours later nobody has responded (urgent: respond within 1 h).
        db.write(vec![Command::Tick {
            now_ms: t + 2 * 3_600_000,
        }])
        .await
        .expect("tick");
        let after = rows(db.clone()).await;
        assert_eq!(
            &after[3..],
            [s("overdue", "chen", "pending"), s("overdue", "li", "pending")]
        );
        db.act(1, "li", t + 2 * 3_600_000 + 1, FaultAction::Ack { comment: None })
            .await
            .expect("ack");
        let after = rows(db.clone()).await;
        assert!(
            after.iter().all(|r| r.2 == "cancelled"),
            "escalation stops: {after:?}"
        );
        let f = db.fault(1).await.expect("read").expect("fault");
        assert!(
            f.timeline
                .iter()
                .any(|e| e.kind == "notify_cancelled" && e.message.contains("acknowledged by li")),
            "{:?}",
            f.timeline
        );
    }
}
