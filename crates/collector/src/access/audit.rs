//! The audit log: every write through the API, refused ones included,
//! append-only (triggers refuse UPDATE and DELETE), secrets redacted.

use rusqlite::params;
use watchpost_model::api::{self, Role};

use super::{Access, AccessError, Identity};
use crate::time::rfc3339;

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

impl Access {
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
