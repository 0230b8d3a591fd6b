//! The durable record: fault records, their timelines, the notification
//! outbox, maintenance windows and known agents, in SQLite (WAL,
//! `synchronous=FULL`).
//!
//! Persistence only: the schema and its migrations (`schema`), the one
//! writer thread and its group commit (`writer`), the storage boundary the
//! fault stage writes through (`records`, implemented on SQLite in
//! `sqlite`), and the reads the API and the dispatcher make (here and in
//! `outbox`). Nothing here decides *whether* or *how* a fault changes; that
//! is `crate::faults`. Invariant: fault records are never deleted and
//! timeline events never change (enforced by triggers as well).

mod inventory;
mod outbox;
pub mod records;
pub mod schema;
mod sqlite;
pub mod writer;

pub use outbox::NotificationFilter;

/// What the database holds of a day's inspection record.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct InspectionRecord {
    /// Every recording, oldest first.
    pub entries: Vec<watchpost_model::inspections::InspectionEntry>,
    /// The inspector's signature.
    pub signed: Option<watchpost_model::inspections::Signature>,
    /// The reviewer's.
    pub reviewed: Option<watchpost_model::inspections::Signature>,
}
pub use records::{FaultRecords, RecordError, RecordState};

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use rusqlite::{Connection, OptionalExtension};
use watchpost_model::Severity;
use watchpost_model::api::{Fault, FaultEvent, FaultSource, FaultStatus, Feedback, Report};
use watchpost_model::changes::{Change, ChangeFault, ChangeStatus};

use crate::maintenance::{Window, WindowSpec};
use crate::time::rfc3339;

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
    /// A write was not committed.
    #[error("database write failed: {0}")]
    Write(String),
    /// The writer thread is gone (collector shutting down).
    #[error("database writer has stopped")]
    WriterGone,
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
    /// Only these sources (any if empty).
    pub source: Vec<FaultSource>,
    /// Only faults opened at or after this (ms).
    pub opened_from_ms: Option<i64>,
    /// Only faults opened before this (ms).
    pub opened_before_ms: Option<i64>,
    /// At most this many, newest first.
    pub limit: usize,
}

/// One notification, as the monthly statistics count them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NotificationRow {
    /// The fault.
    pub fault_id: i64,
    /// Channel.
    pub channel: String,
    /// pending, delivered, failed, cancelled.
    pub status: String,
    /// Escalation step (0 first).
    pub step: i64,
    /// Why (`opened`, `escalated`, ...).
    pub kind: String,
}

/// Reads of the durable record (its own connection, off the runtime).
#[derive(Clone)]
pub struct Database {
    reader: Arc<Mutex<Connection>>,
}

/// A database just opened: the read handle, and what the writer thread
/// starts from.
pub struct Opened {
    /// Reads.
    pub database: Database,
    /// The write connection, for [`writer::spawn`].
    pub writer: Connection,
    /// Records open, acknowledged or suppressed at start.
    pub live: Vec<RecordState>,
    /// Every maintenance window, oldest first.
    pub windows: Vec<Window>,
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

/// Records open, acknowledged or suppressed, oldest first.
fn live_records(conn: &Connection) -> rusqlite::Result<Vec<RecordState>> {
    sqlite::live_records(conn)
}

/// Every maintenance window, oldest first.
fn load_windows(conn: &Connection) -> rusqlite::Result<Vec<Window>> {
    let mut stmt = conn.prepare(
        "SELECT id, host, rule, matchers, starts_at_ms, ends_at_ms, reason, ticket, created_by, created_at_ms,
                hosts, rules, change_id
         FROM maintenance_windows ORDER BY id",
    )?;
    let rows = stmt.query_map([], |r| {
        let matchers: String = r.get(3)?;
        Ok(Window::new(WindowSpec {
            id: r.get(0)?,
            host: r.get(1)?,
            rule: r.get(2)?,
            matchers: serde_json::from_str(&matchers).unwrap_or_default(),
            starts_at_ms: r.get(4)?,
            ends_at_ms: r.get(5)?,
            reason: r.get(6)?,
            ticket: r.get(7)?,
            created_by: r.get(8)?,
            created_at_ms: r.get(9)?,
            hosts: serde_json::from_str(&r.get::<_, String>(10)?).unwrap_or_default(),
            rules: serde_json::from_str(&r.get::<_, String>(11)?).unwrap_or_default(),
            change_id: r.get(12)?,
        }))
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
     closed_at_ms, cause, handling, response_met, resolve_met, parent_fault_id, source, reporter,
     entered_at_ms, entered_by, satisfaction, feedback, feedback_at_ms, feedback_by, flapping, change_id";

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
        severity: sqlite::severity(&severity),
        status: sqlite::status(&status),
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
        source: sqlite::source(&r.get::<_, String>(o + 24)?),
        report: report_from_row(r, o + 25)?,
        flapping: r.get(o + 32)?,
        change: r.get(o + 33)?,
        timeline: Vec::new(),
    })
}

/// A reported fault's report from `reporter, entered_at_ms, entered_by,
/// satisfaction, feedback, feedback_at_ms, feedback_by` at column `o`.
fn report_from_row(r: &rusqlite::Row<'_>, o: usize) -> rusqlite::Result<Option<Report>> {
    let Some(entered_at) = r.get::<_, Option<i64>>(o + 1)? else {
        return Ok(None);
    };
    let feedback = match r.get::<_, Option<u8>>(o + 3)? {
        Some(satisfaction) => Some(Feedback {
            satisfaction,
            comment: r.get(o + 4)?,
            at: r.get::<_, Option<i64>>(o + 5)?.map(rfc3339).unwrap_or_default(),
            by: r.get::<_, Option<String>>(o + 6)?.unwrap_or_default(),
        }),
        None => None,
    };
    Ok(Some(Report {
        reporter: r
            .get::<_, Option<String>>(o)?
            .and_then(|j| serde_json::from_str(&j).ok()),
        entered_at: rfc3339(entered_at),
        entered_by: r.get::<_, Option<String>>(o + 2)?.unwrap_or_default(),
        feedback,
    }))
}

/// A timeline (`at_ms, actor, kind, message` rows of `sql`, for record `id`).
fn timeline(conn: &Connection, sql: &str, id: i64) -> rusqlite::Result<Vec<FaultEvent>> {
    conn.prepare_cached(sql)?
        .query_map([id], |r| {
            Ok(FaultEvent {
                at: rfc3339(r.get(0)?),
                actor: r.get(1)?,
                kind: r.get(2)?,
                message: r.get(3)?,
            })
        })?
        .collect()
}

const CHANGE_COLUMNS: &str =
    "id, title, content, reason, impact, test_plan, rollback_plan, starts_at_ms, ends_at_ms,
     scope, status, requested_by, requested_at_ms, decided_by, window_id, result_reason";

fn change_from_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<Change> {
    let scope: String = r.get(9)?;
    let status: String = r.get(10)?;
    Ok(Change {
        id: r.get(0)?,
        title: r.get(1)?,
        content: r.get(2)?,
        reason: r.get(3)?,
        impact: r.get(4)?,
        test_plan: r.get(5)?,
        rollback_plan: r.get(6)?,
        starts_at: rfc3339(r.get(7)?),
        ends_at: rfc3339(r.get(8)?),
        scope: serde_json::from_str(&scope).unwrap_or_default(),
        status: ChangeStatus::parse(&status).unwrap_or(ChangeStatus::Requested),
        requested_by: r.get(11)?,
        requested_at: rfc3339(r.get(12)?),
        decided_by: r.get(13)?,
        window: r.get(14)?,
        result_reason: r.get(15)?,
        faults: Vec::new(),
        timeline: Vec::new(),
    })
}

impl Database {
    /// Opens (creating and migrating) `dir/watchpost.db`.
    pub fn open(dir: &Path) -> Result<Opened, DbError> {
        let path = dir.join("watchpost.db");
        let err = |message: String| DbError::Open {
            path: path.clone(),
            message,
        };
        std::fs::create_dir_all(dir).map_err(|e| err(format!("cannot create data directory: {e}")))?;
        let mut conn = open_connection(&path).map_err(err)?;
        schema::migrate(&mut conn).map_err(err)?;
        let live = live_records(&conn).map_err(|e| err(e.to_string()))?;
        let windows = load_windows(&conn).map_err(|e| err(e.to_string()))?;
        let reader = open_connection(&path).map_err(err)?;
        Ok(Opened {
            database: Database {
                reader: Arc::new(Mutex::new(reader)),
            },
            writer: conn,
            live,
            windows,
        })
    }

    /// Every maintenance window.
    pub async fn windows(&self) -> Result<Vec<Window>, DbError> {
        self.read(load_windows).await
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
            any_of(
                "source",
                filter.source.iter().map(|s| s.as_str().to_string()).collect(),
                &mut sql,
            );
            if let Some(from) = filter.opened_from_ms {
                args.push(from.into());
                sql.push_str(&format!(" AND opened_at_ms >= ?{}", args.len()));
            }
            if let Some(before) = filter.opened_before_ms {
                args.push(before.into());
                sql.push_str(&format!(" AND opened_at_ms < ?{}", args.len()));
            }
            sql.push_str(&format!(" ORDER BY id DESC LIMIT {}", filter.limit.max(1)));
            let mut stmt = conn.prepare(&sql)?;
            let rows = stmt.query_map(rusqlite::params_from_iter(args), fault_from_row)?;
            rows.collect()
        })
        .await
    }

    /// Notifications created in `[from_ms, before_ms)`.
    pub async fn notifications_between(
        &self,
        from_ms: i64,
        before_ms: i64,
    ) -> Result<Vec<NotificationRow>, DbError> {
        self.read(move |conn| {
            let mut stmt = conn.prepare_cached(
                "SELECT fault_id, channel, status, step, kind FROM notifications
                 WHERE created_at_ms >= ?1 AND created_at_ms < ?2 ORDER BY id",
            )?;
            let rows = stmt.query_map([from_ms, before_ms], |r| {
                Ok(NotificationRow {
                    fault_id: r.get(0)?,
                    channel: r.get(1)?,
                    status: r.get(2)?,
                    step: r.get(3)?,
                    kind: r.get(4)?,
                })
            })?;
            rows.collect()
        })
        .await
    }

    /// Stored reports, newest first (of `kind` and `period` when given).
    pub async fn reports(
        &self,
        kind: Option<String>,
        period: Option<String>,
        limit: usize,
    ) -> Result<Vec<watchpost_model::reports::StoredReport>, DbError> {
        self.read(move |conn| {
            let mut stmt = conn.prepare_cached(
                "SELECT id, kind, period, version, format, file, sha256, bytes, generated_at_ms, generated_by FROM reports
                 WHERE (?1 IS NULL OR kind = ?1) AND (?2 IS NULL OR period = ?2) ORDER BY id DESC LIMIT ?3",
            )?;
            let rows = stmt.query_map(rusqlite::params![kind, period, limit as i64], |r| {
                Ok(watchpost_model::reports::StoredReport {
                    id: r.get(0)?,
                    kind: r.get(1)?,
                    period: r.get(2)?,
                    version: r.get(3)?,
                    format: r.get(4)?,
                    file: r.get(5)?,
                    sha256: r.get(6)?,
                    bytes: r.get(7)?,
                    generated_at: rfc3339(r.get(8)?),
                    generated_by: r.get(9)?,
                })
            })?;
            rows.collect()
        })
        .await
    }

    /// Every recording on day `day`'s inspection record, oldest first, and
    /// its signatures (inspector, reviewer).
    pub async fn inspection_day(&self, day: String) -> Result<InspectionRecord, DbError> {
        use watchpost_model::inspections::{InspectionEntry, InspectionResult, Signature};
        self.read(move |conn| {
            let mut stmt = conn.prepare_cached(
                "SELECT id, item, result, remark, by, at_ms, amendment, why, fault_id
                 FROM inspection_entries WHERE day = ?1 ORDER BY id",
            )?;
            let entries = stmt
                .query_map([&day], |r| {
                    let result: String = r.get(2)?;
                    Ok(InspectionEntry {
                        id: r.get(0)?,
                        item: r.get(1)?,
                        result: InspectionResult::parse(&result).unwrap_or(InspectionResult::Abnormal),
                        remark: r.get(3)?,
                        by: r.get(4)?,
                        at: rfc3339(r.get(5)?),
                        amendment: r.get(6)?,
                        why: r.get(7)?,
                        fault_id: r.get(8)?,
                    })
                })?
                .collect::<rusqlite::Result<Vec<_>>>()?;
            let days = conn
                .query_row(
                    "SELECT signed_by, signed_at_ms, sign_remark, reviewed_by, reviewed_at_ms, review_remark
                     FROM inspection_days WHERE day = ?1",
                    [&day],
                    |r| {
                        let signed = Signature {
                            by: r.get(0)?,
                            at: rfc3339(r.get(1)?),
                            remark: r.get(2)?,
                        };
                        let reviewed = match r.get::<_, Option<String>>(3)? {
                            Some(by) => Some(Signature {
                                by,
                                at: rfc3339(r.get::<_, Option<i64>>(4)?.unwrap_or(0)),
                                remark: r.get::<_, Option<String>>(5)?.unwrap_or_default(),
                            }),
                            None => None,
                        };
                        Ok((signed, reviewed))
                    },
                )
                .optional()?;
            let (signed, reviewed) = match days {
                Some((s, r)) => (Some(s), r),
                None => (None, None),
            };
            Ok(InspectionRecord {
                entries,
                signed,
                reviewed,
            })
        })
        .await
    }

    /// The next version number of a report of `kind`, `period` and `format`.
    pub async fn next_report_version(
        &self,
        kind: String,
        period: String,
        format: String,
    ) -> Result<i64, DbError> {
        self.read(move |conn| {
            conn.query_row(
                "SELECT COALESCE(MAX(version), 0) + 1 FROM reports WHERE kind = ?1 AND period = ?2 AND format = ?3",
                [kind, period, format],
                |r| r.get(0),
            )
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
            fault.timeline = timeline(
                conn,
                "SELECT at_ms, actor, kind, message FROM fault_events WHERE fault_id = ?1 ORDER BY id",
                id,
            )?;
            Ok(Some(fault))
        })
        .await
    }

    /// Change requests, newest first (without timelines).
    pub async fn changes(&self, limit: usize) -> Result<Vec<Change>, DbError> {
        self.read(move |conn| {
            let mut stmt = conn.prepare(&format!(
                "SELECT {CHANGE_COLUMNS} FROM changes ORDER BY id DESC LIMIT {}",
                limit.max(1)
            ))?;
            let rows = stmt.query_map([], change_from_row)?;
            rows.collect()
        })
        .await
    }

    /// One change request with its timeline and the faults opened in its window.
    pub async fn change(&self, id: i64) -> Result<Option<Change>, DbError> {
        self.read(move |conn| {
            let Some(mut c) = conn
                .query_row(
                    &format!("SELECT {CHANGE_COLUMNS} FROM changes WHERE id = ?1"),
                    [id],
                    change_from_row,
                )
                .optional()?
            else {
                return Ok(None);
            };
            c.timeline = timeline(
                conn,
                "SELECT at_ms, actor, kind, message FROM change_events WHERE change_id = ?1 ORDER BY id",
                id,
            )?;
            let mut stmt = conn.prepare(
                "SELECT id, rule, host, status, summary FROM faults WHERE change_id = ?1 ORDER BY id",
            )?;
            c.faults = stmt
                .query_map([id], |r| {
                    Ok(ChangeFault {
                        id: r.get(0)?,
                        rule: r.get(1)?,
                        host: r.get(2)?,
                        status: r.get(3)?,
                        summary: r.get(4)?,
                    })
                })?
                .collect::<rusqlite::Result<_>>()?;
            Ok(Some(c))
        })
        .await
    }

    /// Live faults as (rule, series key, severity), for the rule engine at start-up.
    pub async fn open_faults(&self) -> Result<Vec<(String, String, Severity)>, DbError> {
        self.read(|conn| {
            Ok(live_records(conn)?
                .into_iter()
                .filter(|r| r.source == FaultSource::Rule)
                .map(|r| (r.rule, r.series_key, r.severity))
                .collect())
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
