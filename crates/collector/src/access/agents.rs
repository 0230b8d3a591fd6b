//! Agent enrolment (one-time `wpe_` tokens) and credentials (`wpa_`,
//! bound to one agent id and one hostname, with expiry and revocation).

use rusqlite::{OptionalExtension, params};
use watchpost_model::api;

use super::{Access, AccessError, constant_time_eq, new_secret, sha256_hex};
use crate::time::rfc3339;

impl Access {
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
}
