//! The access database's schema, versioned with `PRAGMA user_version`
//! like `watchpost.db` (`crate::db::schema::migrate_with`).

use rusqlite::Connection;

/// Migrations; index + 1 is the schema version they produce.
/// Migrations, as released; index + 1 is the version (public for the upgrade test).
pub const MIGRATIONS: &[&str] = &[
    // 1: users, API tokens, agent enrolments and credentials, the
    // append-only audit log. `IF NOT EXISTS`: databases made before the
    // schema was versioned (user_version 0) already hold these tables.
    r#"
CREATE TABLE IF NOT EXISTS users (
    name          TEXT PRIMARY KEY,
    role          TEXT NOT NULL CHECK (role IN ('viewer', 'operator', 'admin')),
    password_hash TEXT NOT NULL,
    created_ms    INTEGER NOT NULL,
    disabled      INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE IF NOT EXISTS api_tokens (
    id            INTEGER PRIMARY KEY AUTOINCREMENT,
    user          TEXT NOT NULL REFERENCES users (name),
    name          TEXT NOT NULL,
    secret_sha256 TEXT NOT NULL UNIQUE,
    created_ms    INTEGER NOT NULL,
    expires_ms    INTEGER,
    revoked_ms    INTEGER,
    last_used_ms  INTEGER
);
CREATE TABLE IF NOT EXISTS agent_enrollments (
    secret_sha256         TEXT PRIMARY KEY,
    agent_id              TEXT NOT NULL,
    created_ms            INTEGER NOT NULL,
    created_by            TEXT NOT NULL,
    expires_ms            INTEGER NOT NULL,
    credential_valid_ms   INTEGER NOT NULL,
    used_ms               INTEGER
);
CREATE TABLE IF NOT EXISTS agent_credentials (
    agent_id      TEXT PRIMARY KEY,
    hostname      TEXT NOT NULL,
    secret_sha256 TEXT NOT NULL,
    issued_ms     INTEGER NOT NULL,
    expires_ms    INTEGER,
    revoked_ms    INTEGER,
    revoked_by    TEXT
);
CREATE TABLE IF NOT EXISTS audit (
    id      INTEGER PRIMARY KEY AUTOINCREMENT,
    at_ms   INTEGER NOT NULL,
    actor   TEXT NOT NULL,
    role    TEXT,
    address TEXT NOT NULL,
    method  TEXT NOT NULL,
    path    TEXT NOT NULL,
    status  INTEGER NOT NULL,
    detail  TEXT NOT NULL
);
CREATE TRIGGER IF NOT EXISTS audit_no_update BEFORE UPDATE ON audit
BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END;
CREATE TRIGGER IF NOT EXISTS audit_no_delete BEFORE DELETE ON audit
BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END;
"#,
    // 2: the approver role (change requests). SQLite cannot change a CHECK
    // in place: the table is rebuilt (foreign keys are off while migrating).
    r#"
CREATE TABLE users_v2 (
    name          TEXT PRIMARY KEY,
    role          TEXT NOT NULL CHECK (role IN ('viewer', 'operator', 'approver', 'admin')),
    password_hash TEXT NOT NULL,
    created_ms    INTEGER NOT NULL,
    disabled      INTEGER NOT NULL DEFAULT 0
);
INSERT INTO users_v2 (name, role, password_hash, created_ms, disabled)
    SELECT name, role, password_hash, created_ms, disabled FROM users;
DROP TABLE users;
ALTER TABLE users_v2 RENAME TO users;
"#,
    // 3: the web console's language, remembered per user.
    r#"
CREATE TABLE user_prefs (
    name TEXT PRIMARY KEY,
    lang TEXT NOT NULL CHECK (lang IN ('zh', 'en'))
);
"#,
];

/// Brings `access.db` to the newest version; a newer one is refused.
pub(super) fn migrate(conn: &mut Connection) -> Result<(), String> {
    crate::db::schema::migrate_with(conn, MIGRATIONS, "access database")
}
