//! SQLite schema, versioned with `PRAGMA user_version`. Each migration runs
//! once, in order, inside a transaction; a database newer than this build is
//! refused rather than guessed at.

use rusqlite::Connection;

/// Migrations; index + 1 is the schema version they produce. Public so the
/// upgrade test can build a database as an older release did.
pub const MIGRATIONS: &[&str] = &[
    // 1: agents, fault records and their append-only timelines.
    r#"
CREATE TABLE agents (
    id            TEXT PRIMARY KEY,
    hostname      TEXT NOT NULL,
    version       TEXT NOT NULL,
    address       TEXT NOT NULL,
    labels        TEXT NOT NULL DEFAULT '{}',
    first_seen_ms INTEGER NOT NULL,
    last_seen_ms  INTEGER NOT NULL
);

CREATE TABLE faults (
    id              INTEGER PRIMARY KEY AUTOINCREMENT,
    rule            TEXT NOT NULL,
    series_key      TEXT NOT NULL,
    host            TEXT NOT NULL,
    metric          TEXT NOT NULL,
    labels          TEXT NOT NULL,
    severity        TEXT NOT NULL CHECK (severity IN ('minor', 'general', 'urgent')),
    status          TEXT NOT NULL CHECK (status IN ('open', 'acknowledged', 'resolved', 'closed', 'suppressed')),
    summary         TEXT NOT NULL,
    value           REAL,
    count           INTEGER NOT NULL DEFAULT 1,
    opened_at_ms    INTEGER NOT NULL,
    last_seen_ms    INTEGER NOT NULL,
    resolved_at_ms  INTEGER,
    response_due_ms INTEGER NOT NULL,
    resolve_due_ms  INTEGER NOT NULL
);
-- One open fault per (rule, series).
CREATE UNIQUE INDEX faults_one_open ON faults (rule, series_key)
    WHERE status IN ('open', 'acknowledged', 'suppressed');
CREATE INDEX faults_by_status ON faults (status, id);
CREATE INDEX faults_by_host ON faults (host, id);

CREATE TABLE fault_events (
    id       INTEGER PRIMARY KEY AUTOINCREMENT,
    fault_id INTEGER NOT NULL REFERENCES faults (id),
    at_ms    INTEGER NOT NULL,
    actor    TEXT NOT NULL,
    kind     TEXT NOT NULL,
    message  TEXT NOT NULL
);
CREATE INDEX fault_events_by_fault ON fault_events (fault_id, id);

CREATE TRIGGER fault_events_no_update BEFORE UPDATE ON fault_events
BEGIN SELECT RAISE(ABORT, 'fault timelines are append-only'); END;
CREATE TRIGGER fault_events_no_delete BEFORE DELETE ON fault_events
BEGIN SELECT RAISE(ABORT, 'fault timelines are append-only'); END;
CREATE TRIGGER faults_no_delete BEFORE DELETE ON faults
BEGIN SELECT RAISE(ABORT, 'fault records are never deleted'); END;
"#,
    // 2: the fault's life: acknowledgement, assignment, closure with cause
    // and handling, and whether each deadline was met (NULL: not yet known).
    r#"
ALTER TABLE faults ADD COLUMN acknowledged_at_ms INTEGER;
ALTER TABLE faults ADD COLUMN acknowledged_by TEXT;
ALTER TABLE faults ADD COLUMN assignee TEXT;
ALTER TABLE faults ADD COLUMN closed_at_ms INTEGER;
ALTER TABLE faults ADD COLUMN cause TEXT;
ALTER TABLE faults ADD COLUMN handling TEXT;
ALTER TABLE faults ADD COLUMN response_met INTEGER;
ALTER TABLE faults ADD COLUMN resolve_met INTEGER;
"#,
    // 3: maintenance windows, and which window suppressed a fault.
    r#"
CREATE TABLE maintenance_windows (
    id            INTEGER PRIMARY KEY AUTOINCREMENT,
    host          TEXT,
    rule          TEXT,
    matchers      TEXT NOT NULL DEFAULT '{}',
    starts_at_ms  INTEGER NOT NULL,
    ends_at_ms    INTEGER NOT NULL,
    reason        TEXT NOT NULL,
    ticket        TEXT NOT NULL,
    created_by    TEXT NOT NULL,
    created_at_ms INTEGER NOT NULL
);
ALTER TABLE faults ADD COLUMN window_id INTEGER REFERENCES maintenance_windows (id);
"#,
    // 4: the notification outbox, and parent dependencies (a fault saying
    // its host or device is unreachable, and the parent fault that
    // suppressed it).
    r#"
ALTER TABLE faults ADD COLUMN unreachable INTEGER NOT NULL DEFAULT 0;
ALTER TABLE faults ADD COLUMN parent_fault_id INTEGER REFERENCES faults (id);
CREATE INDEX faults_unreachable ON faults (host) WHERE unreachable = 1 AND status IN ('open', 'acknowledged', 'suppressed');

CREATE TABLE notifications (
    id            INTEGER PRIMARY KEY AUTOINCREMENT,
    fault_id      INTEGER NOT NULL REFERENCES faults (id),
    kind          TEXT NOT NULL,
    step          INTEGER NOT NULL,
    channel       TEXT NOT NULL,
    recipient     TEXT NOT NULL,
    contact       TEXT NOT NULL,
    created_at_ms INTEGER NOT NULL,
    due_ms        INTEGER NOT NULL,
    status        TEXT NOT NULL CHECK (status IN ('pending', 'delivered', 'failed', 'cancelled')),
    attempts      INTEGER NOT NULL DEFAULT 0,
    last_error    TEXT,
    message_id    TEXT,
    sent_at_ms    INTEGER
);
CREATE INDEX notifications_due ON notifications (due_ms) WHERE status = 'pending';
CREATE INDEX notifications_by_fault ON notifications (fault_id, id);
CREATE TRIGGER notifications_no_delete BEFORE DELETE ON notifications
BEGIN SELECT RAISE(ABORT, 'the notification outbox is never deleted from'); END;
-- A delivered notification stays delivered: nothing can queue it again.
CREATE TRIGGER notifications_delivered_final BEFORE UPDATE OF status ON notifications
WHEN OLD.status IN ('delivered', 'cancelled') AND NEW.status <> OLD.status
BEGIN SELECT RAISE(ABORT, 'a delivered or cancelled notification cannot change'); END;
"#,
    // 5: where a fault came from; a reported fault's reporter, who entered
    // it and when, and the reporter's follow-up (satisfaction 1-5).
    r#"
ALTER TABLE faults ADD COLUMN source TEXT NOT NULL DEFAULT 'rule' CHECK (source IN ('rule', 'reported', 'drill'));
ALTER TABLE faults ADD COLUMN reporter TEXT;
ALTER TABLE faults ADD COLUMN entered_at_ms INTEGER;
ALTER TABLE faults ADD COLUMN entered_by TEXT;
ALTER TABLE faults ADD COLUMN satisfaction INTEGER CHECK (satisfaction BETWEEN 1 AND 5);
ALTER TABLE faults ADD COLUMN feedback TEXT;
ALTER TABLE faults ADD COLUMN feedback_at_ms INTEGER;
ALTER TABLE faults ADD COLUMN feedback_by TEXT;
CREATE INDEX faults_by_source ON faults (source, id);
"#,
    // 6: change requests with their append-only timelines; the window an
    // approval creates (several hosts and rules) and the faults opened in
    // it link to the change; a fault marked flapping.
    r#"
CREATE TABLE changes (
    id              INTEGER PRIMARY KEY AUTOINCREMENT,
    title           TEXT NOT NULL,
    content         TEXT NOT NULL,
    reason          TEXT NOT NULL,
    impact          TEXT NOT NULL,
    test_plan       TEXT NOT NULL,
    rollback_plan   TEXT NOT NULL,
    starts_at_ms    INTEGER NOT NULL,
    ends_at_ms      INTEGER NOT NULL,
    scope           TEXT NOT NULL,
    status          TEXT NOT NULL CHECK (status IN ('requested', 'approved', 'rejected', 'in_progress', 'done', 'rolled_back', 'cancelled')),
    requested_by    TEXT NOT NULL,
    requested_at_ms INTEGER NOT NULL,
    decided_by      TEXT,
    window_id       INTEGER REFERENCES maintenance_windows (id),
    result_reason   TEXT
);
CREATE TABLE change_events (
    id        INTEGER PRIMARY KEY AUTOINCREMENT,
    change_id INTEGER NOT NULL REFERENCES changes (id),
    at_ms     INTEGER NOT NULL,
    actor     TEXT NOT NULL,
    kind      TEXT NOT NULL,
    message   TEXT NOT NULL
);
CREATE INDEX change_events_by_change ON change_events (change_id, id);
CREATE TRIGGER change_events_no_update BEFORE UPDATE ON change_events
BEGIN SELECT RAISE(ABORT, 'change timelines are append-only'); END;
CREATE TRIGGER change_events_no_delete BEFORE DELETE ON change_events
BEGIN SELECT RAISE(ABORT, 'change timelines are append-only'); END;
CREATE TRIGGER changes_no_delete BEFORE DELETE ON changes
BEGIN SELECT RAISE(ABORT, 'change requests are never deleted'); END;
ALTER TABLE maintenance_windows ADD COLUMN hosts TEXT NOT NULL DEFAULT '[]';
ALTER TABLE maintenance_windows ADD COLUMN rules TEXT NOT NULL DEFAULT '[]';
ALTER TABLE maintenance_windows ADD COLUMN change_id INTEGER REFERENCES changes (id);
ALTER TABLE faults ADD COLUMN change_id INTEGER REFERENCES changes (id);
CREATE INDEX faults_by_change ON faults (change_id) WHERE change_id IS NOT NULL;
ALTER TABLE faults ADD COLUMN flapping INTEGER NOT NULL DEFAULT 0;
"#,
    // 7: generated reports, each file with its hash; never replaced.
    r#"
CREATE TABLE reports (
    id              INTEGER PRIMARY KEY AUTOINCREMENT,
    kind            TEXT NOT NULL,
    period          TEXT NOT NULL,
    version         INTEGER NOT NULL,
    format          TEXT NOT NULL,
    file            TEXT NOT NULL UNIQUE,
    sha256          TEXT NOT NULL,
    bytes           INTEGER NOT NULL,
    generated_at_ms INTEGER NOT NULL,
    generated_by    TEXT NOT NULL,
    UNIQUE (kind, period, format, version)
);
CREATE TRIGGER reports_no_update BEFORE UPDATE ON reports
BEGIN SELECT RAISE(ABORT, 'stored reports never change'); END;
CREATE TRIGGER reports_no_delete BEFORE DELETE ON reports
BEGIN SELECT RAISE(ABORT, 'stored reports are never deleted'); END;
"#,
    // 8: daily inspection records: every recording kept (later ones are
    // amendments once the day is signed), and each day's two signatures.
    r#"
CREATE TABLE inspection_entries (
    id        INTEGER PRIMARY KEY AUTOINCREMENT,
    day       TEXT NOT NULL,
    item      TEXT NOT NULL,
    result    TEXT NOT NULL CHECK (result IN ('normal', 'abnormal')),
    remark    TEXT NOT NULL,
    by        TEXT NOT NULL,
    at_ms     INTEGER NOT NULL,
    amendment INTEGER NOT NULL DEFAULT 0,
    why       TEXT,
    fault_id  INTEGER REFERENCES faults (id),
    CHECK (amendment = 0 OR (why IS NOT NULL AND why != ''))
);
CREATE INDEX inspection_entries_by_day ON inspection_entries (day, id);
CREATE TRIGGER inspection_entries_no_update BEFORE UPDATE ON inspection_entries
BEGIN SELECT RAISE(ABORT, 'inspection recordings never change: record an amendment'); END;
CREATE TRIGGER inspection_entries_no_delete BEFORE DELETE ON inspection_entries
BEGIN SELECT RAISE(ABORT, 'inspection recordings are never deleted'); END;
CREATE TABLE inspection_days (
    day            TEXT PRIMARY KEY,
    signed_by      TEXT NOT NULL,
    signed_at_ms   INTEGER NOT NULL,
    sign_remark    TEXT NOT NULL DEFAULT '',
    reviewed_by    TEXT,
    reviewed_at_ms INTEGER,
    review_remark  TEXT
);
CREATE TRIGGER inspection_days_review_once BEFORE UPDATE ON inspection_days
WHEN OLD.reviewed_by IS NOT NULL OR NEW.day != OLD.day OR NEW.signed_by != OLD.signed_by
  OR NEW.signed_at_ms != OLD.signed_at_ms OR NEW.sign_remark != OLD.sign_remark
BEGIN SELECT RAISE(ABORT, 'a signed inspection record is only ever reviewed, once'); END;
CREATE TRIGGER inspection_days_no_delete BEFORE DELETE ON inspection_days
BEGIN SELECT RAISE(ABORT, 'inspection signatures are never deleted'); END;
"#,
    // 9: the equipment list (设备清单): what agents see and what people
    // import, each item with an append-only history of its changes.
    r#"
CREATE TABLE inventory (
    id            TEXT PRIMARY KEY,
    agent_id      TEXT NOT NULL,
    scope         TEXT NOT NULL,
    host          TEXT NOT NULL,
    parent        TEXT NOT NULL,
    kind          TEXT NOT NULL,
    name          TEXT NOT NULL,
    vendor        TEXT NOT NULL,
    model         TEXT NOT NULL,
    serial        TEXT NOT NULL,
    firmware      TEXT NOT NULL,
    room          TEXT NOT NULL,
    rack          TEXT NOT NULL,
    details       TEXT NOT NULL,
    source        TEXT NOT NULL CHECK (source IN ('agent', 'import')),
    first_seen_ms INTEGER NOT NULL,
    last_seen_ms  INTEGER NOT NULL,
    removed_ms    INTEGER
);
CREATE INDEX inventory_scope ON inventory (agent_id, scope);
CREATE TABLE inventory_events (
    id       INTEGER PRIMARY KEY,
    item_id  TEXT NOT NULL,
    at_ms    INTEGER NOT NULL,
    change   TEXT NOT NULL CHECK (change IN ('added', 'changed', 'removed', 'returned')),
    field    TEXT NOT NULL,
    old      TEXT NOT NULL,
    new      TEXT NOT NULL,
    actor    TEXT NOT NULL,
    fault_id INTEGER
);
CREATE INDEX inventory_events_item ON inventory_events (item_id, id);
CREATE TRIGGER inventory_events_no_update BEFORE UPDATE ON inventory_events
BEGIN SELECT RAISE(ABORT, 'an equipment history is append-only'); END;
CREATE TRIGGER inventory_events_no_delete BEFORE DELETE ON inventory_events
BEGIN SELECT RAISE(ABORT, 'an equipment history is append-only'); END;
"#,
];

/// The schema version this build writes.
pub const VERSION: i64 = MIGRATIONS.len() as i64;

/// Brings the database to [`VERSION`].
pub fn migrate(conn: &mut Connection) -> Result<(), String> {
    migrate_with(conn, MIGRATIONS, "database")
}

/// Runs the `migrations` `conn` has not had yet, each in a transaction,
/// recording the version in `PRAGMA user_version`; a database newer than
/// this build (`what` names it) is refused rather than guessed at.
pub fn migrate_with(conn: &mut Connection, migrations: &[&str], what: &str) -> Result<(), String> {
    let newest = migrations.len() as i64;
    let current: i64 = conn
        .query_row("PRAGMA user_version", [], |r| r.get(0))
        .map_err(|e| format!("cannot read schema version: {e}"))?;
    if current > newest {
        return Err(format!(
            "the {what} has schema version {current}, newer than this collector's {newest}: upgrade the collector"
        ));
    }
    for (i, sql) in migrations.iter().enumerate().skip(current as usize) {
        let version = i as i64 + 1;
        let tx = conn.transaction().map_err(|e| e.to_string())?;
        tx.execute_batch(sql)
            .map_err(|e| format!("migration of the {what} to schema version {version} failed: {e}"))?;
        tx.pragma_update(None, "user_version", version)
            .map_err(|e| e.to_string())?;
        tx.commit().map_err(|e| e.to_string())?;
        tracing::info!(version, what, "schema migrated");
    }
    Ok(())
}
