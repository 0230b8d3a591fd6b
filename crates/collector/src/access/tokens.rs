//! API tokens: 256 random bits shown once, stored as SHA-256, with
//! expiry, revocation and a last-use time written at most once a minute.

use rusqlite::{OptionalExtension, params};
use watchpost_model::api::{self, Role};

use super::{Access, AccessError, Identity, new_secret, sha256_hex};
use crate::time::rfc3339;

/// A token's "last used" time is written at most this often.
const LAST_USED_RESOLUTION_MS: i64 = 60_000;
impl Access {
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
}
