//! Who may do what: API users with roles (argon2id password hashes), API
//! tokens, agent enrolment and credentials, and the append-only audit log,
//! in `<data_dir>/access.db` (apart from the fault records, so a busy fault
//! writer never waits on a login and the reverse).
//!
//! Secrets (API tokens, enrolment tokens, agent credentials) are 256 random
//! bits shown once; only their SHA-256 is stored. Passwords are stored as
//! argon2id PHC strings.
//!
//! Invariants: the audit log is append-only (SQLite triggers refuse UPDATE
//! and DELETE); a secret is never stored or logged in the clear; an agent
//! credential is bound to one agent id and one hostname.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use rusqlite::{Connection, OptionalExtension, params};
use sha2::{Digest, Sha256};
use watchpost_model::api::{self, Role};

use crate::db::rfc3339;

/// Why an access operation failed; the message is what the caller is told.
#[derive(Debug, thiserror::Error)]
pub enum AccessError {
    /// The access database.
    #[error("access database {path}: {message}")]
    Db {
        /// The file.
        path: PathBuf,
        /// What went wrong.
        message: String,
    },
    /// Bad input (name, role, password).
    #[error("{0}")]
    Invalid(String),
    /// No such user, token or agent.
    #[error("{0}")]
    NotFound(String),
    /// Already exists.
    #[error("{0}")]
    Conflict(String),
    /// Not allowed.
    #[error("{0}")]
    Forbidden(String),
}

/// An authenticated caller.
#[derive(Debug, Clone, PartialEq)]
pub struct Identity {
    /// User name.
    pub user: String,
    /// Role.
    pub role: Role,
}

/// A write to record in the audit log.
#[derive(Debug, Clone)]
pub struct AuditRecord {
    /// When.
    pub at_ms: i64,
    /// Who, if known.
    pub identity: Option<Identity>,
    /// Peer address.
    pub address: String,
    /// HTTP method.
    pub method: String,
    /// Path and query.
    pub path: String,
    /// Response status.
    pub status: u16,
    /// The body, secrets redacted.
    pub detail: String,
}

const SCHEMA: &str = r#"
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
"#;

/// A token's "last used" time is written at most this often.
const LAST_USED_RESOLUTION_MS: i64 = 60_000;
/// Generated passwords are this long.
const GENERATED_PASSWORD_CHARS: usize = 20;
/// Shortest password accepted.
pub const MIN_PASSWORD_CHARS: usize = 10;

/// A new random secret: `prefix` and 256 bits in URL-safe base64.
pub fn new_secret(prefix: &str) -> String {
    use base64::Engine;
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes).expect("the OS random source works");
    format!(
        "{prefix}{}",
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
    )
}

/// A new random password (URL-safe base64, about 120 bits).
fn generated_password() -> String {
    new_secret("")[..GENERATED_PASSWORD_CHARS].to_string()
}

fn sha256_hex(secret: &str) -> String {
    let digest = Sha256::digest(secret.as_bytes());
    digest.iter().map(|b| format!("{b:02x}")).collect()
}

fn check_user_name(name: &str) -> Result<(), AccessError> {
    let ok = !name.is_empty()
        && name.len() <= 64
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'))
        && name.chars().next().is_some_and(|c| c.is_ascii_alphanumeric());
    if ok {
        Ok(())
    } else {
        Err(AccessError::Invalid(format!(
            "user name {name:?}: use 1 to 64 letters, digits, '_', '.' or '-', starting with a letter or digit"
        )))
    }
}

fn hash_password(password: &str) -> Result<String, AccessError> {
    use argon2::password_hash::PasswordHasher;
    argon2::Argon2::default()
        .hash_password(password.as_bytes())
        .map(|h| h.to_string())
        .map_err(|e| AccessError::Invalid(format!("cannot hash the password: {e}")))
}

fn verify_password(password: &str, hash: &str) -> bool {
    use argon2::password_hash::PasswordVerifier;
    argon2::Argon2::default()
        .verify_password(password.as_bytes(), hash)
        .is_ok()
}

/// The access database.
#[derive(Clone)]
pub struct Access {
    path: PathBuf,
    conn: Arc<Mutex<Connection>>,
}

impl Access {
    /// Opens (creating) `dir/access.db`.
    pub fn open(dir: &Path) -> Result<Access, AccessError> {
        let path = dir.join("access.db");
        let err = |message: String| AccessError::Db {
            path: path.clone(),
            message,
        };
        std::fs::create_dir_all(dir).map_err(|e| err(format!("cannot create the data directory: {e}")))?;
        let conn = Connection::open(&path).map_err(|e| err(e.to_string()))?;
        conn.execute_batch(
            "PRAGMA journal_mode = WAL; PRAGMA synchronous = FULL; PRAGMA busy_timeout = 5000; PRAGMA foreign_keys = ON;",
        )
        .and_then(|()| conn.execute_batch(SCHEMA))
        .map_err(|e| err(format!("{e} (is it a Watchpost access database?)")))?;
        Ok(Access {
            path,
            conn: Arc::new(Mutex::new(conn)),
        })
    }

    async fn run<T: Send + 'static>(
        &self,
        f: impl FnOnce(&Connection) -> Result<T, AccessError> + Send + 'static,
    ) -> Result<T, AccessError> {
        let conn = self.conn.clone();
        let path = self.path.clone();
        tokio::task::spawn_blocking(move || {
            let conn = conn.lock().unwrap_or_else(|p| p.into_inner());
            f(&conn)
        })
        .await
        .map_err(|e| AccessError::Db {
            path,
            message: e.to_string(),
        })?
    }

    fn db_err(&self) -> impl Fn(rusqlite::Error) -> AccessError + Send + 'static {
        let path = self.path.clone();
        move |e| AccessError::Db {
            path: path.clone(),
            message: e.to_string(),
        }
    }

    /// Creates a user; without a password one is generated. The answer
    /// holds the password, shown this once.
    pub async fn add_user(
        &self,
        name: &str,
        role: Role,
        password: Option<String>,
        now_ms: i64,
    ) -> Result<api::CreatedUser, AccessError> {
        check_user_name(name)?;
        let password = match password {
            Some(p) if p.chars().count() < MIN_PASSWORD_CHARS => {
                return Err(AccessError::Invalid(format!(
                    "password: at least {MIN_PASSWORD_CHARS} characters"
                )));
            }
            Some(p) => p,
            None => generated_password(),
        };
        let hash = hash_password(&password)?;
        let (name, db) = (name.to_string(), self.db_err());
        self.run(move |c| {
            let n = c
                .execute(
                    "INSERT INTO users (name, role, password_hash, created_ms) VALUES (?1, ?2, ?3, ?4)
                     ON CONFLICT (name) DO NOTHING",
                    params![name, role.as_str(), hash, now_ms],
                )
                .map_err(db)?;
            if n == 0 {
                return Err(AccessError::Conflict(format!("user {name:?} exists")));
            }
            Ok(api::CreatedUser { name, role, password })
        })
        .await
    }

    /// Creates `name` as an admin, or gives the existing user a new
    /// password and the admin role (`--dev`, and the bootstrap command).
    pub async fn reset_admin(&self, name: &str, now_ms: i64) -> Result<api::CreatedUser, AccessError> {
        check_user_name(name)?;
        let password = generated_password();
        let hash = hash_password(&password)?;
        let (name, db) = (name.to_string(), self.db_err());
        self.run(move |c| {
            c.execute(
                "INSERT INTO users (name, role, password_hash, created_ms) VALUES (?1, 'admin', ?2, ?3)
                 ON CONFLICT (name) DO UPDATE SET role = 'admin', password_hash = excluded.password_hash, disabled = 0",
                params![name, hash, now_ms],
            )
            .map_err(db)?;
            Ok(api::CreatedUser {
                name,
                role: Role::Admin,
                password,
            })
        })
        .await
    }

    /// Every user.
    pub async fn users(&self) -> Result<Vec<api::User>, AccessError> {
        let db = self.db_err();
        self.run(move |c| {
            let mut stmt = c
                .prepare("SELECT name, role, created_ms, disabled FROM users ORDER BY name")
                .map_err(&db)?;
            let rows = stmt
                .query_map([], |r| {
                    let role: String = r.get(1)?;
                    Ok(api::User {
                        name: r.get(0)?,
                        role: Role::parse(&role).unwrap_or(Role::Viewer),
                        created_at: rfc3339(r.get(2)?),
                        disabled: r.get(3)?,
                    })
                })
                .map_err(&db)?;
            rows.collect::<rusqlite::Result<_>>().map_err(&db)
        })
        .await
    }

    /// Disables (or enables) a user; a disabled user's tokens stop working.
    pub async fn set_disabled(&self, name: &str, disabled: bool) -> Result<(), AccessError> {
        let (name, db) = (name.to_string(), self.db_err());
        self.run(move |c| {
            let n = c
                .execute(
                    "UPDATE users SET disabled = ?2 WHERE name = ?1",
                    params![name, disabled],
                )
                .map_err(db)?;
            if n == 0 {
                return Err(AccessError::NotFound(format!("no user {name:?}")));
            }
            Ok(())
        })
        .await
    }

    /// Checks a user name and password.
    pub async fn login(&self, name: &str, password: &str) -> Result<Option<Identity>, AccessError> {
        let (name, password, db) = (name.to_string(), password.to_string(), self.db_err());
        self.run(move |c| {
            let row: Option<(String, String, bool)> = c
                .query_row(
                    "SELECT role, password_hash, disabled FROM users WHERE name = ?1",
                    [&name],
                    |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
                )
                .optional()
                .map_err(db)?;
            let Some((role, hash, disabled)) = row else {
                // Spend the same time as a real check: no user enumeration by timing.
                let _ = verify_password(&password, dummy_hash());
                return Ok(None);
            };
            if disabled || !verify_password(&password, &hash) {
                return Ok(None);
            }
            Ok(Role::parse(&role).map(|role| Identity { user: name, role }))
        })
        .await
    }

    /// Creates an API token for `user`; the answer holds its secret, shown once.
    pub async fn create_token(
        &self,
        user: &str,
        name: &str,
        expires_ms: Option<i64>,
        now_ms: i64,
    ) -> Result<api::CreatedToken, AccessError> {
        if name.trim().is_empty() || name.len() > 200 {
            return Err(AccessError::Invalid(
                "token name: say what it is for, in at most 200 bytes".into(),
            ));
        }
        let secret = new_secret("wpt_");
        let hash = sha256_hex(&secret);
        let (user, name, db) = (user.to_string(), name.to_string(), self.db_err());
        self.run(move |c| {
            c.execute(
                "INSERT INTO api_tokens (user, name, secret_sha256, created_ms, expires_ms) VALUES (?1, ?2, ?3, ?4, ?5)",
                params![user, name, hash, now_ms, expires_ms],
            )
            .map_err(db)?;
            Ok(api::CreatedToken {
                id: c.last_insert_rowid(),
                token: secret,
                expires_at: expires_ms.map(rfc3339),
            })
        })
        .await
    }

    /// API tokens, of one user or all.
    pub async fn tokens(&self, user: Option<String>) -> Result<Vec<api::ApiToken>, AccessError> {
        let db = self.db_err();
        self.run(move |c| {
            let mut stmt = c
                .prepare(
                    "SELECT id, user, name, created_ms, expires_ms, revoked_ms, last_used_ms FROM api_tokens
                     WHERE ?1 IS NULL OR user = ?1 ORDER BY id",
                )
                .map_err(&db)?;
            let rows = stmt
                .query_map([user], |r| {
                    Ok(api::ApiToken {
                        id: r.get(0)?,
                        user: r.get(1)?,
                        name: r.get(2)?,
                        created_at: rfc3339(r.get(3)?),
                        expires_at: r.get::<_, Option<i64>>(4)?.map(rfc3339),
                        revoked_at: r.get::<_, Option<i64>>(5)?.map(rfc3339),
                        last_used_at: r.get::<_, Option<i64>>(6)?.map(rfc3339),
                    })
                })
                .map_err(&db)?;
            rows.collect::<rusqlite::Result<_>>().map_err(&db)
        })
        .await
    }

    /// Revokes token `id`: its owner or an admin may.
    pub async fn revoke_token(&self, id: i64, by: &Identity, now_ms: i64) -> Result<(), AccessError> {
        let (by, db) = (by.clone(), self.db_err());
        self.run(move |c| {
            let owner: Option<String> = c
                .query_row("SELECT user FROM api_tokens WHERE id = ?1", [id], |r| r.get(0))
                .optional()
                .map_err(&db)?;
            match owner {
                None => Err(AccessError::NotFound(format!("no token {id}"))),
                Some(o) if o != by.user && by.role != Role::Admin => Err(AccessError::Forbidden(format!(
                    "token {id} belongs to another user; only an admin may revoke it"
                ))),
                Some(_) => {
                    c.execute(
                        "UPDATE api_tokens SET revoked_ms = COALESCE(revoked_ms, ?2) WHERE id = ?1",
                        params![id, now_ms],
                    )
                    .map_err(&db)?;
                    Ok(())
                }
            }
        })
        .await
    }

    /// The user an API token belongs to, if it is valid now.
    pub async fn by_token(&self, secret: &str, now_ms: i64) -> Result<Option<Identity>, AccessError> {
        let (hash, db) = (sha256_hex(secret), self.db_err());
        self.run(move |c| {
            let row: Option<(i64, String, String, Option<i64>)> = c
                .query_row(
                    "SELECT t.id, u.name, u.role, t.last_used_ms FROM api_tokens t JOIN users u ON u.name = t.user
                     WHERE t.secret_sha256 = ?1 AND t.revoked_ms IS NULL AND u.disabled = 0
                       AND (t.expires_ms IS NULL OR t.expires_ms > ?2)",
                    params![hash, now_ms],
                    |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)),
                )
                .optional()
                .map_err(&db)?;
            let Some((id, user, role, last_used)) = row else {
                return Ok(None);
            };
            // "Last used" to the minute: a dashboard polling every second
            // does not cost a synced write per request.
            if last_used.is_none_or(|t| now_ms - t >= LAST_USED_RESOLUTION_MS) {
                c.execute(
                    "UPDATE api_tokens SET last_used_ms = ?2 WHERE id = ?1",
                    params![id, now_ms],
                )
                .map_err(&db)?;
            }
            Ok(Role::parse(&role).map(|role| Identity { user, role }))
        })
        .await
    }

    /// Makes a one-time enrolment token for agent `agent`.
    pub async fn enroll(
        &self,
        agent: &str,
        token_valid_ms: i64,
        credential_valid_ms: i64,
        by: &str,
        now_ms: i64,
    ) -> Result<api::Enrollment, AccessError> {
        watchpost_model::names::check_label_value(agent)
            .map_err(|e| AccessError::Invalid(format!("agent id: {e}")))?;
        if agent.trim().is_empty() {
            return Err(AccessError::Invalid("agent id is empty".into()));
        }
        let secret = new_secret("wpe_");
        let hash = sha256_hex(&secret);
        let expires = now_ms + token_valid_ms;
        let (agent, by, db) = (agent.to_string(), by.to_string(), self.db_err());
        self.run(move |c| {
            c.execute(
                "INSERT INTO agent_enrollments (secret_sha256, agent_id, created_ms, created_by, expires_ms, credential_valid_ms)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                params![hash, agent, now_ms, by, expires, credential_valid_ms],
            )
            .map_err(db)?;
            Ok(api::Enrollment {
                agent,
                token: secret,
                expires_at: rfc3339(expires),
            })
        })
        .await
    }

    /// Checks an agent's hello. With a credential: it must be this agent's,
    /// for this hostname, not revoked or expired. Otherwise an unused,
    /// unexpired enrolment token for this agent id is exchanged for a new
    /// credential (returned, to be sent in the welcome). The error is what
    /// the agent is told.
    pub async fn authenticate_agent(
        &self,
        agent: &str,
        hostname: &str,
        credential: &str,
        enroll_token: &str,
        now_ms: i64,
    ) -> Result<Option<String>, String> {
        let (agent, hostname) = (agent.to_string(), hostname.to_string());
        let (credential, enroll_token) = (credential.to_string(), enroll_token.to_string());
        let db = self.db_err();
        let answer = self
            .run(move |c| {
                if !credential.is_empty() {
                    let row: Option<(String, String, Option<i64>, Option<i64>)> = c
                        .query_row(
                            "SELECT hostname, secret_sha256, expires_ms, revoked_ms FROM agent_credentials WHERE agent_id = ?1",
                            [&agent],
                            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)),
                        )
                        .optional()
                        .map_err(&db)?;
                    let Some((bound_host, hash, expires, revoked)) = row else {
                        return Ok(Err(format!("agent {agent:?} is not enrolled")));
                    };
                    if !constant_time_eq(&hash, &sha256_hex(&credential)) {
                        return Ok(Err(format!("the credential is not agent {agent:?}'s")));
                    }
                    if revoked.is_some() {
                        return Ok(Err(format!("agent {agent:?}'s credential was revoked; enrol it again")));
                    }
                    if expires.is_some_and(|e| e <= now_ms) {
                        return Ok(Err(format!("agent {agent:?}'s credential expired; enrol it again")));
                    }
                    if bound_host != hostname {
                        return Ok(Err(format!(
                            "agent {agent:?} is enrolled for host {bound_host:?}, not {hostname:?}"
                        )));
                    }
                    return Ok(Ok(None));
                }
                if enroll_token.is_empty() {
                    return Ok(Err(format!(
                        "agent {agent:?} has no credential: enrol it (watchpostctl agents enroll {agent}) and set enroll_token"
                    )));
                }
                let row: Option<(String, i64, i64, Option<i64>)> = c
                    .query_row(
                        "SELECT agent_id, expires_ms, credential_valid_ms, used_ms FROM agent_enrollments WHERE secret_sha256 = ?1",
                        [sha256_hex(&enroll_token)],
                        |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)),
                    )
                    .optional()
                    .map_err(&db)?;
                let Some((for_agent, expires, valid_ms, used)) = row else {
                    return Ok(Err("unknown enrolment token".to_string()));
                };
                if for_agent != agent {
                    return Ok(Err(format!("the enrolment token is for agent {for_agent:?}, not {agent:?}")));
                }
                if used.is_some() {
                    return Ok(Err("the enrolment token was already used; make a new one".to_string()));
                }
                if expires <= now_ms {
                    return Ok(Err("the enrolment token expired; make a new one".to_string()));
                }
                let secret = new_secret("wpa_");
                c.execute(
                    "UPDATE agent_enrollments SET used_ms = ?2 WHERE secret_sha256 = ?1",
                    params![sha256_hex(&enroll_token), now_ms],
                )
                .map_err(&db)?;
                c.execute(
                    "INSERT INTO agent_credentials (agent_id, hostname, secret_sha256, issued_ms, expires_ms)
                     VALUES (?1, ?2, ?3, ?4, ?5)
                     ON CONFLICT (agent_id) DO UPDATE SET hostname = excluded.hostname, secret_sha256 = excluded.secret_sha256,
                       issued_ms = excluded.issued_ms, expires_ms = excluded.expires_ms, revoked_ms = NULL, revoked_by = NULL",
                    params![agent, hostname, sha256_hex(&secret), now_ms, now_ms + valid_ms],
                )
                .map_err(&db)?;
                Ok(Ok(Some(secret)))
            })
            .await;
        match answer {
            Ok(a) => a,
            Err(e) => {
                tracing::error!(error = %e, "cannot check an agent's credential");
                Err("the collector cannot check credentials now".to_string())
            }
        }
    }

    /// Issues a credential directly (the `--dev` in-process agent).
    pub async fn issue_credential(
        &self,
        agent: &str,
        hostname: &str,
        valid_ms: i64,
        now_ms: i64,
    ) -> Result<String, AccessError> {
        let secret = new_secret("wpa_");
        let (agent, hostname, hash, db) = (
            agent.to_string(),
            hostname.to_string(),
            sha256_hex(&secret),
            self.db_err(),
        );
        self.run(move |c| {
            c.execute(
                "INSERT INTO agent_credentials (agent_id, hostname, secret_sha256, issued_ms, expires_ms)
                 VALUES (?1, ?2, ?3, ?4, ?5)
                 ON CONFLICT (agent_id) DO UPDATE SET hostname = excluded.hostname, secret_sha256 = excluded.secret_sha256,
                   issued_ms = excluded.issued_ms, expires_ms = excluded.expires_ms, revoked_ms = NULL, revoked_by = NULL",
                params![agent, hostname, hash, now_ms, now_ms + valid_ms],
            )
            .map_err(db)?;
            Ok(())
        })
        .await?;
        Ok(secret)
    }

    /// Revokes agent `agent`'s credential and unused enrolment tokens.
    pub async fn revoke_agent(&self, agent: &str, by: &str, now_ms: i64) -> Result<(), AccessError> {
        let (agent, by, db) = (agent.to_string(), by.to_string(), self.db_err());
        self.run(move |c| {
            let n = c
                .execute(
                    "UPDATE agent_credentials SET revoked_ms = COALESCE(revoked_ms, ?2), revoked_by = COALESCE(revoked_by, ?3)
                     WHERE agent_id = ?1",
                    params![agent, now_ms, by],
                )
                .map_err(&db)?;
            let m = c
                .execute(
                    "UPDATE agent_enrollments SET used_ms = ?2 WHERE agent_id = ?1 AND used_ms IS NULL",
                    params![agent, now_ms],
                )
                .map_err(&db)?;
            if n + m == 0 {
                return Err(AccessError::NotFound(format!(
                    "agent {agent:?} has no credential or enrolment token"
                )));
            }
            Ok(())
        })
        .await
    }

    /// Every agent credential.
    pub async fn agent_credentials(&self) -> Result<Vec<api::AgentCredential>, AccessError> {
        let db = self.db_err();
        self.run(move |c| {
            let mut stmt = c
                .prepare(
                    "SELECT agent_id, hostname, issued_ms, expires_ms, revoked_ms FROM agent_credentials ORDER BY agent_id",
                )
                .map_err(&db)?;
            let rows = stmt
                .query_map([], |r| {
                    Ok(api::AgentCredential {
                        agent: r.get(0)?,
                        hostname: r.get(1)?,
                        issued_at: rfc3339(r.get(2)?),
                        expires_at: r.get::<_, Option<i64>>(3)?.map(rfc3339),
                        revoked_at: r.get::<_, Option<i64>>(4)?.map(rfc3339),
                    })
                })
                .map_err(&db)?;
            rows.collect::<rusqlite::Result<_>>().map_err(&db)
        })
        .await
    }

    /// Appends to the audit log.
    pub async fn audit(&self, record: AuditRecord) -> Result<(), AccessError> {
        let db = self.db_err();
        self.run(move |c| {
            let (actor, role) = match &record.identity {
                Some(i) => (i.user.clone(), Some(i.role.as_str())),
                None => ("-".to_string(), None),
            };
            c.execute(
                "INSERT INTO audit (at_ms, actor, role, address, method, path, status, detail)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
                params![
                    record.at_ms,
                    actor,
                    role,
                    record.address,
                    record.method,
                    record.path,
                    record.status,
                    record.detail
                ],
            )
            .map_err(db)?;
            Ok(())
        })
        .await
    }

    /// The audit log, newest first.
    pub async fn audit_log(
        &self,
        actor: Option<String>,
        limit: usize,
    ) -> Result<Vec<api::AuditEntry>, AccessError> {
        let db = self.db_err();
        self.run(move |c| {
            let mut stmt = c
                .prepare(
                    "SELECT id, at_ms, actor, role, address, method, path, status, detail FROM audit
                     WHERE ?1 IS NULL OR actor = ?1 ORDER BY id DESC LIMIT ?2",
                )
                .map_err(&db)?;
            let rows = stmt
                .query_map(params![actor, limit as i64], |r| {
                    let role: Option<String> = r.get(3)?;
                    Ok(api::AuditEntry {
                        id: r.get(0)?,
                        at: rfc3339(r.get(1)?),
                        actor: r.get(2)?,
                        role: role.as_deref().and_then(Role::parse),
                        address: r.get(4)?,
                        method: r.get(5)?,
                        path: r.get(6)?,
                        status: r.get(7)?,
                        detail: r.get(8)?,
                    })
                })
                .map_err(&db)?;
            rows.collect::<rusqlite::Result<_>>().map_err(&db)
        })
        .await
    }
}

/// A hash of a password nobody has, for the time a failed lookup takes.
fn dummy_hash() -> &'static str {
    static HASH: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    HASH.get_or_init(|| hash_password(&new_secret("")).unwrap_or_default())
}

fn constant_time_eq(a: &str, b: &str) -> bool {
    a.len() == b.len() && a.bytes().zip(b.bytes()).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// Replaces the values of keys that hold secrets in a JSON body.
pub fn redact(body: &[u8]) -> String {
    const MAX: usize = 4096;
    match serde_json::from_slice::<serde_json::Value>(body) {
        Ok(mut v) => {
            fn walk(v: &mut serde_json::Value) {
                match v {
                    serde_json::Value::Object(m) => {
                        for (k, val) in m.iter_mut() {
                            let k = k.to_ascii_lowercase();
                            if k.contains("password") || k.contains("token") || k.contains("secret") {
                                *val = serde_json::Value::String("***".into());
                            } else {
                                walk(val);
                            }
                        }
                    }
                    serde_json::Value::Array(a) => a.iter_mut().for_each(walk),
                    _ => {}
                }
            }
            walk(&mut v);
            let mut s = v.to_string();
            if s.len() > MAX {
                let mut end = MAX;
                while !s.is_char_boundary(end) {
                    end -= 1;
                }
                s.truncate(end);
                s.push('…');
            }
            s
        }
        Err(_) if body.is_empty() => String::new(),
        Err(_) => format!("({} bytes, not JSON)", body.len()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn users_tokens_agents_and_audit() {
        let dir = tempfile::tempdir().expect("tempdir");
        let a = Access::open(dir.path()).expect("opens");
        let created = a
            .add_user("li.wei", Role::Operator, None, 1_000)
            .await
            .expect("user");
        assert_eq!(created.password.len(), GENERATED_PASSWORD_CHARS);
        assert!(matches!(
            a.add_user("li.wei", Role::Viewer, None, 1_000).await,
            Err(AccessError::Conflict(_))
        ));
        assert!(matches!(
            a.add_user("bad name", Role::Viewer, None, 1_000).await,
            Err(AccessError::Invalid(_))
        ));
        assert!(matches!(
            a.add_user("short", Role::Viewer, Some("abc".into()), 1_000).await,
            Err(AccessError::Invalid(_))
        ));
        let me = a
            .login("li.wei", &created.password)
            .await
            .expect("db")
            .expect("logs in");
        assert_eq!(me.role, Role::Operator);
        assert_eq!(a.login("li.wei", "wrong password").await.expect("db"), None);
        assert_eq!(a.login("nobody", "whatever123").await.expect("db"), None);

        let t = a
            .create_token("li.wei", "script", Some(5_000), 1_000)
            .await
            .expect("token");
        assert_eq!(a.by_token(&t.token, 2_000).await.expect("db"), Some(me.clone()));
        assert_eq!(a.by_token(&t.token, 2_500).await.expect("db"), Some(me.clone()));
        let listed = a.tokens(Some("li.wei".into())).await.expect("tokens");
        assert_eq!(
            listed[0].last_used_at,
            Some(rfc3339(2_000)),
            "last use is kept to the minute"
        );
        assert_eq!(a.by_token(&t.token, 6_000).await.expect("db"), None, "expired");
        assert_eq!(a.by_token("wpt_forged", 2_000).await.expect("db"), None);
        a.set_disabled("li.wei", true).await.expect("disable");
        assert_eq!(
            a.by_token(&t.token, 2_000).await.expect("db"),
            None,
            "disabled user"
        );
        a.set_disabled("li.wei", false).await.expect("enable");
        let viewer = Identity {
            user: "other".into(),
            role: Role::Viewer,
        };
        assert!(matches!(
            a.revoke_token(t.id, &viewer, 2_000).await,
            Err(AccessError::Forbidden(_))
        ));
        a.revoke_token(t.id, &me, 2_000).await.expect("revoke own");
        assert_eq!(a.by_token(&t.token, 2_500).await.expect("db"), None);

        let e = a
            .enroll("web-1", 10_000, 100_000, "admin", 1_000)
            .await
            .expect("enroll");
        let wrong = a.authenticate_agent("web-2", "web-2", "", &e.token, 2_000).await;
        assert!(wrong.expect_err("other agent").contains("web-1"));
        let cred = a
            .authenticate_agent("web-1", "web-1", "", &e.token, 2_000)
            .await
            .expect("enrols")
            .expect("a credential");
        assert!(
            a.authenticate_agent("web-1", "web-1", "", &e.token, 2_000)
                .await
                .is_err(),
            "once"
        );
        assert_eq!(
            a.authenticate_agent("web-1", "web-1", &cred, "", 3_000).await,
            Ok(None)
        );
        let other_host = a.authenticate_agent("web-1", "db-1", &cred, "", 3_000).await;
        assert!(other_host.expect_err("bound").contains("db-1"));
        assert!(
            a.authenticate_agent("web-1", "web-1", &cred, "", 200_000)
                .await
                .is_err(),
            "expired"
        );
        a.revoke_agent("web-1", "admin", 4_000).await.expect("revoke");
        let revoked = a.authenticate_agent("web-1", "web-1", &cred, "", 5_000).await;
        assert!(revoked.expect_err("revoked").contains("revoked"));

        a.audit(AuditRecord {
            at_ms: 1,
            identity: Some(me),
            address: "127.0.0.1:5".into(),
            method: "POST".into(),
            path: "/api/v1/users".into(),
            status: 201,
            detail: redact(br#"{"name":"x","password":"hunter22222"}"#),
        })
        .await
        .expect("audit");
        let log = a.audit_log(None, 10).await.expect("log");
        assert_eq!(log.len(), 1);
        assert!(!log[0].detail.contains("hunter"), "{}", log[0].detail);
        let conn = a.conn.lock().expect("lock");
        assert!(conn.execute("DELETE FROM audit", []).is_err());
        assert!(conn.execute("UPDATE audit SET actor = 'x'", []).is_err());
    }
}
