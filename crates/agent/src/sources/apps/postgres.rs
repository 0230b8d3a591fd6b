//! PostgreSQL, and the databases that speak its protocol and keep its
//! catalogue (KingbaseES, openGauss, as far as their catalogue goes): the
//! frontend/backend protocol 3.0's start-up, its password, MD5 and
//! SCRAM-SHA-256 sign-ins, and simple queries.
//!
//! Metrics (`instance` label): `postgres_up`, `postgres_connections`,
//! `postgres_max_connections`, `postgres_connections_used_percent`,
//! `postgres_commits_per_second`, `postgres_rollbacks_per_second`,
//! `postgres_deadlocks_per_second` (all databases together),
//! `postgres_longest_transaction_seconds` (the oldest open transaction
//! that is not idle, other than the agent's), `postgres_locks_waiting`,
//! `postgres_database_size_bytes{database}`, `postgres_in_recovery` (1 on a
//! standby), on a standby `postgres_replication_lag_seconds` (0 when it
//! has replayed all it received) and on a primary `postgres_replicas`
//! (standbys streaming from it). Seeing other users' transactions needs
//! the `pg_monitor` role (or a superuser).

use std::collections::HashMap;

use base64::Engine;
use hmac::{Hmac, KeyInit, Mac};
use sha2::{Digest, Sha256};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use super::wire::{self, Stream};
use super::{App, Reading};

/// A signed-in session, ready for queries.
pub(super) struct Connection {
    stream: Stream,
}

/// What the server said went wrong (its `M` field, with the SQLSTATE).
struct ServerError(String);

impl Connection {
    /// Connects, starts a session and signs in.
    pub(super) async fn open(app: &App) -> Result<Connection, String> {
        let mut stream = wire::connect(&app.target).await?;
        let user = app.user.as_deref().unwrap_or("postgres");
        let database = app.database.as_deref().unwrap_or("postgres");
        let mut body = Vec::new();
        body.extend_from_slice(&196_608u32.to_be_bytes()); // protocol 3.0
        for (k, v) in [
            ("user", user),
            ("database", database),
            ("application_name", "watchpost-agent"),
        ] {
            body.extend_from_slice(k.as_bytes());
            body.push(0);
            body.extend_from_slice(v.as_bytes());
            body.push(0);
        }
        body.push(0);
        let mut start = ((body.len() + 4) as u32).to_be_bytes().to_vec();
        start.extend_from_slice(&body);
        stream.write_all(&start).await.map_err(wire::io)?;
        stream.flush().await.map_err(wire::io)?;
        let password = app.password.as_deref();
        let need_password = || {
            password.ok_or_else(|| {
                format!("the server asks a password for user {user:?}; set `password` or `password_env`")
            })
        };
        let mut scram: Option<Scram> = None;
        loop {
            let (tag, m) = read_message(&mut stream).await?;
            match tag {
                b'R' => {
                    let code = be32(&m, 0);
                    match code {
                        0 => {}
                        3 => send(&mut stream, b'p', &cstr(need_password()?)).await?,
                        5 => {
                            let pw = need_password()?;
                            let salt = m.get(4..8).ok_or("bad MD5 request")?;
                            send(&mut stream, b'p', &cstr(&md5_password(user, pw, salt))).await?;
                        }
                        10 => {
                            let pw = need_password()?;
                            let offers = String::from_utf8_lossy(&m[4..]).into_owned();
                            if !offers.split('\0').any(|x| x == "SCRAM-SHA-256") {
                                return Err(format!(
                                    "the server offers SASL {offers:?}; the agent signs in with SCRAM-SHA-256"
                                ));
                            }
                            let s = Scram::new(pw);
                            let first = s.client_first();
                            let mut p = cstr("SCRAM-SHA-256");
                            p.extend_from_slice(&(first.len() as u32).to_be_bytes());
                            p.extend_from_slice(first.as_bytes());
                            send(&mut stream, b'p', &p).await?;
                            scram = Some(s);
                        }
                        11 => {
                            let s = scram.as_mut().ok_or("SCRAM continue before its start")?;
                            let reply = s.client_final(&String::from_utf8_lossy(&m[4..]))?;
                            send(&mut stream, b'p', reply.as_bytes()).await?;
                        }
                        12 => {
                            let s = scram.as_ref().ok_or("SCRAM final before its start")?;
                            s.verify_server(&String::from_utf8_lossy(&m[4..]))?;
                        }
                        other => {
                            return Err(format!(
                                "the server asks for sign-in method {other}, which the agent does not speak \
                                 (it speaks password, md5 and scram-sha-256)"
                            ));
                        }
                    }
                }
                b'E' => return Err(format!("sign-in as {user:?} refused: {}", error_text(&m))),
                b'Z' => return Ok(Connection { stream }),
                // Parameter status, backend key, notices.
                _ => {}
            }
        }
    }

    /// Runs one simple query; rows as text (NULL as `None`).
    async fn query(&mut self, sql: &str) -> Result<Result<Vec<Vec<Option<String>>>, ServerError>, String> {
        send(&mut self.stream, b'Q', &cstr(sql)).await?;
        let mut rows = Vec::new();
        let mut failed = None;
        loop {
            let (tag, m) = read_message(&mut self.stream).await?;
            match tag {
                b'D' => {
                    let n = u16::from_be_bytes([m[0], m[1]]) as usize;
                    let mut at = 2;
                    let mut row = Vec::with_capacity(n);
                    for _ in 0..n {
                        let len = be32(&m, at) as i32;
                        at += 4;
                        if len < 0 {
                            row.push(None);
                        } else {
                            let v = m.get(at..at + len as usize).ok_or("bad data row")?;
                            row.push(Some(String::from_utf8_lossy(v).into_owned()));
                            at += len as usize;
                        }
                    }
                    rows.push(row);
                }
                b'E' => failed = Some(ServerError(error_text(&m))),
                b'Z' => return Ok(failed.map_or(Ok(rows), Err)),
                _ => {}
            }
        }
    }

    /// The first row of a query whose failure is not the connection's.
    async fn row(&mut self, sql: &str) -> Result<Result<Vec<Option<String>>, String>, String> {
        Ok(match self.query(sql).await? {
            Ok(mut rows) if !rows.is_empty() => Ok(rows.swap_remove(0)),
            Ok(_) => Err(format!("{sql}: no row")),
            Err(e) => Err(e.0),
        })
    }
}

const SUMMARY: &str = "SELECT current_setting('max_connections'), \
     (SELECT count(*) FROM pg_stat_activity WHERE datname IS NOT NULL), \
     pg_is_in_recovery(), \
     (SELECT sum(xact_commit) FROM pg_stat_database), \
     (SELECT sum(xact_rollback) FROM pg_stat_database), \
     (SELECT sum(deadlocks) FROM pg_stat_database), \
     (SELECT coalesce(max(extract(epoch FROM now() - xact_start)), 0) FROM pg_stat_activity \
        WHERE xact_start IS NOT NULL AND state <> 'idle' AND pid <> pg_backend_pid()), \
     (SELECT count(*) FROM pg_locks WHERE NOT granted)";

const SIZES: &str = "SELECT datname, pg_database_size(datname) FROM pg_database \
     WHERE datallowconn AND NOT datistemplate";

/// Lag on a standby: none when all received WAL is replayed, else the
/// age of the last replayed transaction. openGauss keeps the pre-10 names.
const LAG: [&str; 2] = [
    "SELECT CASE WHEN pg_last_wal_receive_lsn() = pg_last_wal_replay_lsn() THEN 0 \
       ELSE coalesce(extract(epoch FROM now() - pg_last_xact_replay_timestamp()), 0) END",
    "SELECT CASE WHEN pg_last_xlog_receive_location() = pg_last_xlog_replay_location() THEN 0 \
       ELSE coalesce(extract(epoch FROM now() - pg_last_xact_replay_timestamp()), 0) END",
];

/// Reads one round.
pub(super) async fn read(c: &mut Connection, r: &mut Reading<'_>) -> Result<(), String> {
    let row = c
        .row(SUMMARY)
        .await?
        .map_err(|e| format!("status query refused: {e}"))?;
    let num = |i: usize| {
        row.get(i)
            .and_then(|v| v.as_deref())
            .and_then(|v| v.parse::<f64>().ok())
    };
    let (max, used) = (num(0), num(1));
    if let Some(m) = max {
        r.gauge("postgres_max_connections", m);
    }
    if let Some(u) = used {
        r.gauge("postgres_connections", u);
    }
    if let (Some(m), Some(u)) = (max, used)
        && m > 0.0
    {
        r.gauge("postgres_connections_used_percent", 100.0 * u / m);
    }
    let standby = row.get(2).and_then(|v| v.as_deref()) == Some("t");
    r.gauge("postgres_in_recovery", if standby { 1.0 } else { 0.0 });
    for (i, metric) in [
        (3, "postgres_commits_per_second"),
        (4, "postgres_rollbacks_per_second"),
        (5, "postgres_deadlocks_per_second"),
    ] {
        if let Some(v) = num(i) {
            r.rate(metric, v);
        }
    }
    if let Some(v) = num(6) {
        r.gauge("postgres_longest_transaction_seconds", v);
    }
    if let Some(v) = num(7) {
        r.gauge("postgres_locks_waiting", v);
    }
    match c.query(SIZES).await? {
        Ok(rows) => {
            for row in rows {
                if let (Some(Some(name)), Some(Some(size))) = (row.first(), row.get(1))
                    && let Ok(size) = size.parse::<f64>()
                {
                    r.gauge_of("postgres_database_size_bytes", "database", name, size);
                }
            }
        }
        Err(e) => r.missing("postgres database sizes", &e.0),
    }
    if standby {
        let mut lag = Err("no lag query".to_string());
        for q in LAG {
            lag = c.row(q).await?;
            if lag.is_ok() {
                break;
            }
        }
        match lag {
            Ok(row) => {
                if let Some(v) = first_number(&row) {
                    r.gauge("postgres_replication_lag_seconds", v);
                }
            }
            Err(e) => r.missing("postgres replication lag", &e),
        }
    } else {
        match c.row("SELECT count(*) FROM pg_stat_replication").await? {
            Ok(row) => {
                if let Some(v) = first_number(&row) {
                    r.gauge("postgres_replicas", v);
                }
            }
            Err(e) => r.missing("postgres replicas", &e),
        }
    }
    Ok(())
}

/// The first column of a row, as a number.
fn first_number(row: &[Option<String>]) -> Option<f64> {
    row.first()?.as_deref()?.parse().ok()
}

async fn read_message(s: &mut Stream) -> Result<(u8, Vec<u8>), String> {
    let tag = s.read_u8().await.map_err(wire::io)?;
    let len = s.read_u32().await.map_err(wire::io)? as usize;
    if !(4..=64 << 20).contains(&len) {
        return Err(format!("not a PostgreSQL message (length {len})"));
    }
    let mut body = vec![0; len - 4];
    s.read_exact(&mut body).await.map_err(wire::io)?;
    Ok((tag, body))
}

async fn send(s: &mut Stream, tag: u8, body: &[u8]) -> Result<(), String> {
    s.write_all(&[tag]).await.map_err(wire::io)?;
    s.write_all(&((body.len() + 4) as u32).to_be_bytes())
        .await
        .map_err(wire::io)?;
    s.write_all(body).await.map_err(wire::io)?;
    s.flush().await.map_err(wire::io)
}

fn cstr(s: &str) -> Vec<u8> {
    let mut v = s.as_bytes().to_vec();
    v.push(0);
    v
}

fn be32(m: &[u8], at: usize) -> u32 {
    m.get(at..at + 4)
        .map_or(u32::MAX, |b| u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
}

/// The message (`M`) and SQLSTATE (`C`) of an error response.
fn error_text(m: &[u8]) -> String {
    let mut message = String::new();
    let mut code = String::new();
    for field in m.split(|&b| b == 0) {
        match field.split_first() {
            Some((b'M', v)) => message = String::from_utf8_lossy(v).into_owned(),
            Some((b'C', v)) => code = String::from_utf8_lossy(v).into_owned(),
            _ => {}
        }
    }
    format!("{message} (SQLSTATE {code})")
}

/// `"md5" + md5(md5(password + user) + salt)`, in hex.
fn md5_password(user: &str, password: &str, salt: &[u8]) -> String {
    let inner = hex(&md5::Md5::new()
        .chain_update(password)
        .chain_update(user)
        .finalize());
    let outer = md5::Md5::new().chain_update(inner).chain_update(salt).finalize();
    format!("md5{}", hex(&outer))
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

type HmacSha256 = Hmac<Sha256>;

fn hmac(key: &[u8], data: &[u8]) -> Vec<u8> {
    let mut m = <HmacSha256 as KeyInit>::new_from_slice(key).expect("HMAC takes a key of any length");
    m.update(data);
    m.finalize().into_bytes().to_vec()
}

/// One SCRAM-SHA-256 exchange (RFC 5802, RFC 7677), client side, without
/// channel binding.
struct Scram {
    password: String,
    nonce: String,
    /// Set once the server's first message is in.
    auth_message: String,
    salted: Vec<u8>,
}

impl Scram {
    fn new(password: &str) -> Scram {
        let mut raw = [0u8; 18];
        // A clock-derived nonce only if the OS gives no randomness: the
        // sign-in stays correct, only replay protection would be weaker.
        if getrandom::fill(&mut raw).is_err() {
            raw[..16].copy_from_slice(&crate::time::now_ms().to_le_bytes().repeat(2));
        }
        Scram::with_nonce(password, &base64::engine::general_purpose::STANDARD.encode(raw))
    }

    fn with_nonce(password: &str, nonce: &str) -> Scram {
        Scram {
            password: password.to_string(),
            nonce: nonce.to_string(),
            auth_message: String::new(),
            salted: Vec::new(),
        }
    }

    /// PostgreSQL takes the user from the start-up message, so `n=` is empty.
    fn client_first_bare(&self) -> String {
        format!("n=,r={}", self.nonce)
    }

    fn client_first(&self) -> String {
        format!("n,,{}", self.client_first_bare())
    }

    /// The proof for the server's first message.
    fn client_final(&mut self, server_first: &str) -> Result<String, String> {
        let attrs: HashMap<&str, &str> = server_first
            .split(',')
            .filter_map(|kv| kv.split_once('='))
            .collect();
        let nonce = attrs.get("r").ok_or("SCRAM: no nonce from the server")?;
        if !nonce.starts_with(&self.nonce) {
            return Err("SCRAM: the server's nonce does not extend ours".to_string());
        }
        let salt = base64::engine::general_purpose::STANDARD
            .decode(attrs.get("s").ok_or("SCRAM: no salt")?)
            .map_err(|_| "SCRAM: bad salt")?;
        let iterations: u32 = attrs
            .get("i")
            .and_then(|i| i.parse().ok())
            .filter(|i| (1..=10_000_000).contains(i))
            .ok_or("SCRAM: bad iteration count")?;
        self.salted = pbkdf2_sha256(self.password.as_bytes(), &salt, iterations);
        let without_proof = format!("c=biws,r={nonce}");
        self.auth_message = format!("{},{server_first},{without_proof}", self.client_first_bare());
        let client_key = hmac(&self.salted, b"Client Key");
        let stored = Sha256::digest(&client_key);
        let signature = hmac(&stored, self.auth_message.as_bytes());
        let proof = wire::xor(&client_key, &signature);
        Ok(format!(
            "{without_proof},p={}",
            base64::engine::general_purpose::STANDARD.encode(proof)
        ))
    }

    /// Checks that the server knew the password too.
    fn verify_server(&self, server_final: &str) -> Result<(), String> {
        let v = server_final
            .strip_prefix("v=")
            .ok_or_else(|| format!("SCRAM: the server says {server_final:?}"))?;
        let server_key = hmac(&self.salted, b"Server Key");
        let expected = hmac(&server_key, self.auth_message.as_bytes());
        let got = base64::engine::general_purpose::STANDARD
            .decode(v.trim())
            .map_err(|_| "SCRAM: bad server signature")?;
        if got != expected {
            return Err(
                "SCRAM: the server's signature is wrong (not the server it claims to be?)".to_string(),
            );
        }
        Ok(())
    }
}

/// PBKDF2-HMAC-SHA256 for one 32-byte block (SCRAM's `Hi`).
fn pbkdf2_sha256(password: &[u8], salt: &[u8], iterations: u32) -> Vec<u8> {
    let mut mac = <HmacSha256 as KeyInit>::new_from_slice(password).expect("HMAC takes a key of any length");
    mac.update(salt);
    mac.update(&1u32.to_be_bytes());
    let mut u = mac.finalize().into_bytes().to_vec();
    let mut out = u.clone();
    for _ in 1..iterations {
        u = hmac(password, &u);
        for (o, x) in out.iter_mut().zip(&u) {
            *o ^= x;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scram_matches_rfc_7677_example() {
        // RFC 7677 section 3: user "user", password "pencil".
        let mut s = Scram::with_nonce("pencil", "rOprNGfwEbeRWgbNEkqO");
        // The RFC's client-first-message-bare names the user.
        let bare = "n=user,r=rOprNGfwEbeRWgbNEkqO";
        let server_first =
            "r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096";
        let final_msg = s.client_final(server_first).unwrap_or_default();
        // Recompute with the RFC's bare message to compare the proof.
        s.auth_message =
            format!("{bare},{server_first},c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0");
        let client_key = hmac(&s.salted, b"Client Key");
        let proof = wire::xor(
            &client_key,
            &hmac(&Sha256::digest(&client_key), s.auth_message.as_bytes()),
        );
        assert_eq!(
            base64::engine::general_purpose::STANDARD.encode(proof),
            "dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ="
        );
        assert!(
            s.verify_server("v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4=")
                .is_ok()
        );
        assert!(s.verify_server("v=AAAA").is_err());
        assert!(final_msg.starts_with("c=biws,r=rOprNGfwEbeRWgbNEkqO%hvY"));
    }

    #[test]
    fn md5_password_is_postgres_format() {
        // Python: "md5" + md5(md5(b"secretpostgres").hexdigest() + salt).hexdigest()
        assert_eq!(
            md5_password("postgres", "secret", &[1, 2, 3, 4]),
            "md5bb41a296aab6baccb36ff243a562abff"
        );
    }

    #[test]
    fn error_text_has_message_and_code() {
        let m = b"SFATAL\0C28P01\0Mpassword authentication failed for user \"x\"\0\0";
        assert_eq!(
            error_text(m),
            "password authentication failed for user \"x\" (SQLSTATE 28P01)"
        );
    }
}
