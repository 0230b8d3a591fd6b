//! The durable record: fault records, their timelines and known agents, in
//! SQLite (WAL, `synchronous=FULL`).
//!
//! One writer thread owns the write connection and commits whatever has
//! queued up in one transaction (group commit), then answers every waiter:
//! a fault change is acknowledged only once it is on disk. Reads use their
//! own connection. Nothing here decides *when* a fault changes; that is the
//! rule engine's job. Invariant: fault records are never deleted and
//! timeline events never change (enforced by triggers as well).

pub mod schema;

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use rusqlite::{Connection, OptionalExtension, params};
use tokio::sync::{mpsc, oneshot};
use watchpost_model::Severity;
use watchpost_model::api::{Fault, FaultEvent, FaultStatus};

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
}

struct Job {
    commands: Vec<Command>,
    done: Option<oneshot::Sender<Result<(), String>>>,
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

/// Handle to the database.
#[derive(Clone)]
pub struct Database {
    writer: mpsc::Sender<Job>,
    reader: Arc<Mutex<Connection>>,
    open_faults: Arc<AtomicU64>,
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

struct OpenRecord {
    id: i64,
    severity: Severity,
    opened_at_ms: i64,
}

struct Writer {
    conn: Connection,
    state: WriterState,
}

/// What the writer knows besides its connection: the policy and which
/// faults are open (so a transition finds its record without a query).
struct WriterState {
    policy: SeverityPolicy,
    calendar: Calendar,
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
                self.policy
                    .deadlines(&self.calendar, severity, opened)
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
                let id = self.insert(tx, f)?;
                closed.retain(|k| k != &f.key);
                opened.push((
                    f.key.clone(),
                    OpenRecord {
                        id,
                        severity: f.severity,
                        opened_at_ms: f.at_ms,
                    },
                ));
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
                tx.execute(
                    "UPDATE faults SET status = 'resolved', resolved_at_ms = ?2, value = coalesce(?3, value)
                     WHERE id = ?1",
                    params![id, at_ms, value],
                )?;
                Self::event(tx, id, *at_ms, "resolved", reason)?;
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
        )
    }

    fn insert(&self, tx: &rusqlite::Transaction<'_>, f: &NewFault) -> rusqlite::Result<i64> {
        let (respond, resolve) = self.deadlines(f.severity, f.at_ms);
        let labels = serde_json::to_string(&f.labels).unwrap_or_else(|_| "{}".into());
        tx.execute(
            "INSERT INTO faults (rule, series_key, host, metric, labels, severity, status, summary, value, count,
                                 opened_at_ms, last_seen_ms, response_due_ms, resolve_due_ms)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, 'open', ?7, ?8, 1, ?9, ?9, ?10, ?11)",
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
                resolve
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
                if let Some(done) = job.done {
                    let _ = done.send(result.clone());
                }
            }
        }
    }

    fn commit(&mut self, jobs: &[Job]) -> Result<(), String> {
        let mut opened = Vec::new();
        let mut closed = Vec::new();
        let tx = self.conn.transaction().map_err(|e| e.to_string())?;
        let mut result = Ok(());
        for job in jobs {
            for cmd in &job.commands {
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

const FAULT_COLUMNS: &str =
    "id, rule, severity, status, host, metric, labels, summary, value, count, opened_at_ms,
     last_seen_ms, resolved_at_ms, response_due_ms, resolve_due_ms";

fn fault_from_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<Fault> {
    let severity: String = r.get(2)?;
    let status: String = r.get(3)?;
    let labels: String = r.get(6)?;
    Ok(Fault {
        id: r.get(0)?,
        rule: r.get(1)?,
        severity: severity.parse().unwrap_or(Severity::General),
        status: FaultStatus::parse(&status).unwrap_or(FaultStatus::Open),
        host: r.get(4)?,
        metric: r.get(5)?,
        labels: serde_json::from_str(&labels).unwrap_or_default(),
        summary: r.get(7)?,
        value: r.get(8)?,
        count: r.get(9)?,
        opened_at: rfc3339(r.get(10)?),
        last_seen_at: rfc3339(r.get(11)?),
        resolved_at: r.get::<_, Option<i64>>(12)?.map(rfc3339),
        response_due: rfc3339(r.get(13)?),
        resolve_due: rfc3339(r.get(14)?),
        timeline: Vec::new(),
    })
}

impl Database {
    /// Opens (creating and migrating) `dir/watchpost.db` and starts the writer.
    pub fn open(dir: &Path, policy: SeverityPolicy, calendar: Calendar) -> Result<Database, DbError> {
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
        let reader = open_connection(&path).map_err(err)?;
        let open_faults = Arc::new(AtomicU64::new(open.len() as u64));
        let (tx, rx) = mpsc::channel::<Job>(4096);
        let writer = Writer {
            conn,
            state: WriterState {
                policy,
                calendar,
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
            .send(Job {
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

    /// Queues `commands` without waiting for them to be written.
    pub async fn write_later(&self, commands: Vec<Command>) {
        if self.writer.send(Job { commands, done: None }).await.is_err() {
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
        }
    }

    #[tokio::test]
    async fn fault_lifecycle_is_recorded_and_survives_reopen() {
        let dir = tempfile::tempdir().expect("tempdir");
        let db = Database::open(dir.path(), SeverityPolicy::default(), Calendar::default()).expect("open");
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

        let db = Database::open(dir.path(), SeverityPolicy::default(), Calendar::default()).expect("reopen");
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
        let db = Database::open(dir.path(), SeverityPolicy::default(), Calendar::default()).expect("open");
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
        let db = Database::open(dir.path(), SeverityPolicy::default(), Calendar::default()).expect("open");
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
        let e = Database::open(dir.path(), SeverityPolicy::default(), Calendar::default())
            .err()
            .expect("refused")
            .to_string();
        assert!(e.contains("newer"), "{e}");
    }
}
