//! API users: names, roles, argon2id password hashes, sign-in. Hashing
//! and verifying run on a blocking thread, never on the async runtime and
//! never while the connection's mutex is held, so one slow sign-in does
//! not hold up every token check and audit write behind it.

use rusqlite::{OptionalExtension, params};
use watchpost_model::api::{self, Role};

use super::{Access, AccessError, Identity, generated_password, new_secret};
use crate::time::rfc3339;

/// Shortest password accepted.
pub const MIN_PASSWORD_CHARS: usize = 10;

pub(super) fn check_user_name(name: &str) -> Result<(), AccessError> {
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

/// Hashes `password` on a blocking thread.
async fn hash_off_runtime(password: String) -> Result<String, AccessError> {
    tokio::task::spawn_blocking(move || hash_password(&password))
        .await
        .map_err(|e| AccessError::Invalid(format!("cannot hash the password: {e}")))?
}

/// A hash of a password nobody has, for the time a failed lookup takes.
fn dummy_hash() -> &'static str {
    static HASH: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    HASH.get_or_init(|| hash_password(&new_secret("")).unwrap_or_default())
}

impl Access {
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
        let hash = hash_off_runtime(password.clone()).await?;
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
        let hash = hash_off_runtime(password.clone()).await?;
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

    /// A user's role now, `None` if unknown or disabled (a console session
    /// asks on every request, so a disabled user or a changed role counts at once).
    pub async fn role_of(&self, name: &str) -> Result<Option<Role>, AccessError> {
        let (name, db) = (name.to_string(), self.db_err());
        self.run(move |c| {
            let row: Option<(String, bool)> = c
                .query_row("SELECT role, disabled FROM users WHERE name = ?1", [&name], |r| {
                    Ok((r.get(0)?, r.get(1)?))
                })
                .optional()
                .map_err(db)?;
            Ok(row.and_then(|(role, disabled)| if disabled { None } else { Role::parse(&role) }))
        })
        .await
    }

    /// The console language a user chose (`zh` or `en`), if any.
    pub async fn lang_of(&self, name: &str) -> Result<Option<String>, AccessError> {
        let (name, db) = (name.to_string(), self.db_err());
        self.run(move |c| {
            c.query_row("SELECT lang FROM user_prefs WHERE name = ?1", [&name], |r| {
                r.get(0)
            })
            .optional()
            .map_err(db)
        })
        .await
    }

    /// Remembers a user's console language (`zh` or `en`).
    pub async fn set_lang(&self, name: &str, lang: &str) -> Result<(), AccessError> {
        if !matches!(lang, "zh" | "en") {
            return Err(AccessError::Invalid(format!(
                "language {lang:?}: expected zh or en"
            )));
        }
        let (name, lang, db) = (name.to_string(), lang.to_string(), self.db_err());
        self.run(move |c| {
            c.execute(
                "INSERT INTO user_prefs (name, lang) VALUES (?1, ?2) ON CONFLICT (name) DO UPDATE SET lang = excluded.lang",
                params![name, lang],
            )
            .map_err(db)?;
            Ok(())
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
        let (user, db) = (name.to_string(), self.db_err());
        let row: Option<(String, String, bool)> = self
            .run(move |c| {
                c.query_row(
                    "SELECT role, password_hash, disabled FROM users WHERE name = ?1",
                    [&user],
                    |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
                )
                .optional()
                .map_err(db)
            })
            .await?;
        // Verified after the connection is released, on a blocking thread.
        let (name, password) = (name.to_string(), password.to_string());
        tokio::task::spawn_blocking(move || {
            let Some((role, hash, disabled)) = row else {
                // Spend the same time as a real check: no user enumeration by timing.
                let _ = verify_password(&password, dummy_hash());
                return None;
            };
            if disabled || !verify_password(&password, &hash) {
                return None;
            }
            Role::parse(&role).map(|role| Identity { user: name, role })
        })
        .await
        .map_err(|e| AccessError::Invalid(format!("cannot check the password: {e}")))
    }
}
