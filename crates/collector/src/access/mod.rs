//! Who may do what: API users with roles (`users`, argon2id password
//! hashes), API tokens (`tokens`), agent enrolment and credentials
//! (`agents`), and the append-only audit log (`audit`), in
//! `<data_dir>/access.db` (`schema`, versioned like `watchpost.db`), apart
//! from the fault records, so a busy fault writer never waits on a login
//! and the reverse.
//!
//! Secrets (API tokens, enrolment tokens, agent credentials) are 256 random
//! bits shown once; only their SHA-256 is stored. Passwords are stored as
//! argon2id PHC strings.
//!
//! Invariants: the audit log is append-only (SQLite triggers refuse UPDATE
//! and DELETE); a secret is never stored or logged in the clear; an agent
//! credential is bound to one agent id and one hostname.

mod agents;
mod audit;
pub mod schema;
#[cfg(test)]
mod tests;
mod tokens;
mod users;

pub use audit::{AuditRecord, redact};
pub use users::MIN_PASSWORD_CHARS;

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use rusqlite::Connection;
use sha2::{Digest, Sha256};
use watchpost_model::api::Role;

/// Generated passwords are this long.
const GENERATED_PASSWORD_CHARS: usize = 20;

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

/// The stored form of a secret.
pub(crate) fn sha256_hex(secret: &str) -> String {
    let digest = Sha256::digest(secret.as_bytes());
    digest.iter().map(|b| format!("{b:02x}")).collect()
}

/// Compares two secrets' hashes in time that does not depend on where they differ.
pub(crate) fn constant_time_eq(a: &str, b: &str) -> bool {
    a.len() == b.len() && a.bytes().zip(b.bytes()).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
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
        let mut conn = Connection::open(&path).map_err(|e| err(e.to_string()))?;
        // Foreign keys off while migrating (this SQLite build has them on by
        // default): a migration may rebuild a table others refer to.
        conn.execute_batch(
            "PRAGMA journal_mode = WAL; PRAGMA synchronous = FULL; PRAGMA busy_timeout = 5000; PRAGMA foreign_keys = OFF;",
        )
        .map_err(|e| err(format!("{e} (is it a Watchpost access database?)")))?;
        schema::migrate(&mut conn).map_err(|e| err(format!("{e} (is it a Watchpost access database?)")))?;
        conn.execute_batch("PRAGMA foreign_keys = ON;")
            .map_err(|e| err(e.to_string()))?;
        Ok(Access {
            path,
            conn: Arc::new(Mutex::new(conn)),
        })
    }

    pub(super) async fn run<T: Send + 'static>(
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

    pub(super) fn db_err(&self) -> impl Fn(rusqlite::Error) -> AccessError + Send + 'static {
        let path = self.path.clone();
        move |e| AccessError::Db {
            path: path.clone(),
            message: e.to_string(),
        }
    }
}
