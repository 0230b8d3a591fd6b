//! MySQL and MariaDB: the client/server protocol's handshake (the
//! `mysql_native_password` and `caching_sha2_password` sign-ins) and text
//! queries, enough for `SHOW GLOBAL STATUS`, `SHOW GLOBAL VARIABLES` and
//! `SHOW REPLICA STATUS`.
//!
//! Metrics (`instance` label): `mysql_up`, `mysql_uptime_seconds`,
//! `mysql_threads_connected`, `mysql_max_connections`,
//! `mysql_connections_used_percent`, `mysql_queries_per_second`,
//! `mysql_slow_queries_per_second`, `mysql_aborted_connections_per_second`,
//! `mysql_innodb_buffer_pool_hit_percent` (over the last round), and on a
//! replica `mysql_replica_io_running`, `mysql_replica_sql_running` (1/0)
//! and `mysql_replica_lag_seconds`. The replication readings need the
//! `REPLICATION CLIENT` privilege (MariaDB: `REPLICA MONITOR`, or
//! `SLAVE MONITOR`); without it they are left out with one warning.

use std::collections::HashMap;

use sha1::{Digest, Sha1};
use sha2::Sha256;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use super::wire::{self, Stream};
use super::{App, Reading, Target, number};

const CLIENT_LONG_PASSWORD: u32 = 1;
const CLIENT_PROTOCOL_41: u32 = 0x200;
const CLIENT_TRANSACTIONS: u32 = 0x2000;
const CLIENT_SECURE_CONNECTION: u32 = 0x8000;
const CLIENT_MULTI_RESULTS: u32 = 0x2_0000;
const CLIENT_PLUGIN_AUTH: u32 = 0x8_0000;
const UTF8MB4: u8 = 45;

/// A signed-in connection.
pub(super) struct Connection {
    stream: Stream,
}

/// A server error: code and message.
struct ServerError(u16, String);

impl std::fmt::Display for ServerError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "server error {}: {}", self.0, self.1)
    }
}

impl Connection {
    /// Connects and signs in as the configured user.
    pub(super) async fn open(app: &App) -> Result<Connection, String> {
        let mut stream = wire::connect(&app.target).await?;
        let (seq, hello) = read_packet(&mut stream).await?;
        if hello.first() == Some(&0xFF) {
            return Err(parse_error(&hello).to_string());
        }
        let h = Handshake::parse(&hello)?;
        let user = app.user.as_deref().unwrap_or("root");
        let password = app.password.as_deref().unwrap_or("");
        let plugin = if h.plugin.is_empty() {
            "mysql_native_password"
        } else {
            h.plugin.as_str()
        };
        let mut scramble = h.scramble.clone();
        let auth = scramble_for(plugin, password, &scramble)?;
        let caps = CLIENT_LONG_PASSWORD
            | CLIENT_PROTOCOL_41
            | CLIENT_TRANSACTIONS
            | CLIENT_SECURE_CONNECTION
            | CLIENT_MULTI_RESULTS
            | CLIENT_PLUGIN_AUTH;
        let mut p = Vec::with_capacity(64 + user.len());
        p.extend_from_slice(&caps.to_le_bytes());
        p.extend_from_slice(&(1u32 << 24).to_le_bytes());
        p.push(UTF8MB4);
        p.extend_from_slice(&[0; 23]);
        p.extend_from_slice(user.as_bytes());
        p.push(0);
        p.push(auth.len() as u8);
        p.extend_from_slice(&auth);
        p.extend_from_slice(plugin.as_bytes());
        p.push(0);
        let mut seq = seq.wrapping_add(1);
        write_packet(&mut stream, seq, &p).await?;
        let mut plugin = plugin.to_string();
        // The server may ask for another plugin or more data before it says OK.
        for _ in 0..4 {
            let (s, reply) = read_packet(&mut stream).await?;
            seq = s.wrapping_add(1);
            match reply.first() {
                Some(0x00) => {
                    return Ok(Connection { stream });
                }
                Some(0xFF) => {
                    let e = parse_error(&reply);
                    return Err(format!("sign-in as {user:?} refused: {}", e.1));
                }
                Some(0xFE) => {
                    // Auth switch: plugin name, NUL, new scramble (NUL-terminated).
                    let rest = &reply[1..];
                    let end = rest.iter().position(|&b| b == 0).unwrap_or(rest.len());
                    plugin = String::from_utf8_lossy(&rest[..end]).into_owned();
                    let data = rest.get(end + 1..).unwrap_or_default();
                    scramble = data.strip_suffix(&[0]).unwrap_or(data).to_vec();
                    let auth = scramble_for(&plugin, password, &scramble)?;
                    write_packet(&mut stream, seq, &auth).await?;
                }
                Some(0x01) if plugin == "caching_sha2_password" => match reply.get(1) {
                    Some(3) => {} // fast sign-in accepted; the OK follows
                    Some(4) => {
                        // Full sign-in: the password itself, only over a socket.
                        if !matches!(app.target, Target::Unix(_)) {
                            return Err(format!(
                                "user {user:?} uses caching_sha2_password and the server asks for the full \
                                 sign-in, which needs TLS or a Unix socket: set `socket`, or sign in once \
                                 with the mysql client to fill the server's cache, or use \
                                 mysql_native_password for this user"
                            ));
                        }
                        let mut clear = password.as_bytes().to_vec();
                        clear.push(0);
                        write_packet(&mut stream, seq, &clear).await?;
                    }
                    _ => return Err("unexpected caching_sha2_password exchange".to_string()),
                },
                _ => return Err(format!("unexpected reply to the sign-in (plugin {plugin})")),
            }
        }
        Err("the sign-in did not finish".to_string())
    }

    /// Runs a query and returns its rows as text (NULL as `None`), with the
    /// column names.
    async fn query(&mut self, sql: &str) -> Result<Result<Rows, ServerError>, String> {
        let mut p = Vec::with_capacity(sql.len() + 1);
        p.push(0x03);
        p.extend_from_slice(sql.as_bytes());
        write_packet(&mut self.stream, 0, &p).await?;
        let (_, first) = read_packet(&mut self.stream).await?;
        match first.first() {
            Some(0xFF) => return Ok(Err(parse_error(&first))),
            Some(0x00) => return Ok(Ok(Rows::default())),
            _ => {}
        }
        let mut at = 0;
        let n = lenenc_int(&first, &mut at).ok_or("bad column count")? as usize;
        let mut rows = Rows::default();
        for _ in 0..n {
            let (_, def) = read_packet(&mut self.stream).await?;
            let mut at = 0;
            // catalog, schema, table, org_table, then the name.
            for _ in 0..4 {
                lenenc_str(&def, &mut at).ok_or("bad column definition")?;
            }
            let name = lenenc_str(&def, &mut at).ok_or("bad column definition")?;
            rows.columns
                .push(String::from_utf8_lossy(name.unwrap_or_default()).into_owned());
        }
        let (_, eof) = read_packet(&mut self.stream).await?;
        if !is_eof(&eof) {
            return Err("expected the end of the column definitions".to_string());
        }
        loop {
            let (_, row) = read_packet(&mut self.stream).await?;
            if is_eof(&row) {
                return Ok(Ok(rows));
            }
            if row.first() == Some(&0xFF) {
                return Ok(Err(parse_error(&row)));
            }
            let mut at = 0;
            let mut values = Vec::with_capacity(n);
            for _ in 0..n {
                let v = lenenc_str(&row, &mut at).ok_or("bad row")?;
                values.push(v.map(|b| String::from_utf8_lossy(b).into_owned()));
            }
            rows.values.push(values);
        }
    }

    /// `SHOW ...` as a name → value map (the first two columns).
    async fn status(&mut self, sql: &str) -> Result<HashMap<String, String>, String> {
        let rows = self.query(sql).await?.map_err(|e| format!("{sql}: {e}"))?;
        Ok(rows
            .values
            .into_iter()
            .filter_map(|mut r| {
                let v = r.get_mut(1)?.take()?;
                Some((r.first()?.clone()?, v))
            })
            .collect())
    }
}

#[derive(Default)]
struct Rows {
    columns: Vec<String>,
    values: Vec<Vec<Option<String>>>,
}

impl Rows {
    /// The first row's value of the first of `names` that is a column.
    fn first(&self, names: &[&str]) -> Option<&str> {
        let i = names
            .iter()
            .find_map(|n| self.columns.iter().position(|c| c == n))?;
        self.values.first()?.get(i)?.as_deref()
    }
}

/// Reads one round.
pub(super) async fn read(c: &mut Connection, r: &mut Reading<'_>) -> Result<(), String> {
    let status = c.status("SHOW GLOBAL STATUS").await?;
    let vars = c
        .status("SHOW GLOBAL VARIABLES WHERE Variable_name IN ('max_connections')")
        .await?;
    if let Some(v) = number(&status, "Uptime") {
        r.gauge("mysql_uptime_seconds", v);
    }
    let connected = number(&status, "Threads_connected");
    let max = number(&vars, "max_connections");
    if let Some(c) = connected {
        r.gauge("mysql_threads_connected", c);
    }
    if let Some(m) = max {
        r.gauge("mysql_max_connections", m);
    }
    if let (Some(c), Some(m)) = (connected, max)
        && m > 0.0
    {
        r.gauge("mysql_connections_used_percent", 100.0 * c / m);
    }
    for (metric, key) in [
        ("mysql_queries_per_second", "Questions"),
        ("mysql_slow_queries_per_second", "Slow_queries"),
        ("mysql_aborted_connections_per_second", "Aborted_connects"),
    ] {
        if let Some(v) = number(&status, key) {
            r.rate(metric, v);
        }
    }
    if let (Some(requests), Some(disk)) = (
        number(&status, "Innodb_buffer_pool_read_requests"),
        number(&status, "Innodb_buffer_pool_reads"),
    ) {
        // Requests served from memory are hits; reads from disk are misses.
        r.hit_percent(
            "mysql_innodb_buffer_pool_hit_percent",
            (requests - disk).max(0.0),
            disk,
        );
    }
    // MariaDB ≥ 10.5 and MySQL ≥ 8.0.22 know REPLICA; older ones only SLAVE.
    let replica = match c.query("SHOW REPLICA STATUS").await? {
        Ok(rows) => Ok(rows),
        Err(_) => c.query("SHOW SLAVE STATUS").await?,
    };
    match replica {
        Ok(rows) if !rows.values.is_empty() => {
            let yes = |names: &[&str]| rows.first(names).map(|v| if v == "Yes" { 1.0 } else { 0.0 });
            if let Some(v) = yes(&["Slave_IO_Running", "Replica_IO_Running"]) {
                r.gauge("mysql_replica_io_running", v);
            }
            if let Some(v) = yes(&["Slave_SQL_Running", "Replica_SQL_Running"]) {
                r.gauge("mysql_replica_sql_running", v);
            }
            // NULL while the SQL thread is stopped: no figure then, the
            // running gauges say why.
            if let Some(v) = rows
                .first(&["Seconds_Behind_Master", "Seconds_Behind_Source"])
                .and_then(|v| v.parse::<f64>().ok())
            {
                r.gauge("mysql_replica_lag_seconds", v);
            }
        }
        Ok(_) => {}
        Err(e) => r.missing("mysql replication status", &e.to_string()),
    }
    Ok(())
}

struct Handshake {
    scramble: Vec<u8>,
    plugin: String,
}

impl Handshake {
    fn parse(p: &[u8]) -> Result<Handshake, String> {
        let bad = || "not a MySQL server greeting".to_string();
        if p.first() != Some(&10) {
            return Err(bad());
        }
        let rest = &p[1..];
        // The version string, NUL-terminated.
        let end = rest.iter().position(|&b| b == 0).ok_or_else(bad)?;
        let mut at = 1 + end + 1 + 4; // version, NUL, connection id
        let part1 = p.get(at..at + 8).ok_or_else(bad)?.to_vec();
        at += 8 + 1; // scramble part 1, filler
        let caps_lo = u16::from_le_bytes(p.get(at..at + 2).ok_or_else(bad)?.try_into().map_err(|_| bad())?);
        at += 2 + 1 + 2; // capabilities (low), charset, status
        let caps_hi = p
            .get(at..at + 2)
            .map(|b| u16::from_le_bytes([b[0], b[1]]))
            .unwrap_or(0);
        let caps = u32::from(caps_lo) | (u32::from(caps_hi) << 16);
        at += 2;
        let auth_len = p.get(at).copied().unwrap_or(0) as usize;
        at += 1 + 10;
        let mut scramble = part1;
        if caps & CLIENT_SECURE_CONNECTION != 0 {
            let n = auth_len.saturating_sub(8).max(13);
            let part2 = p.get(at..(at + n).min(p.len())).ok_or_else(bad)?;
            scramble.extend_from_slice(part2.strip_suffix(&[0]).unwrap_or(part2));
            at += n;
        }
        let plugin = if caps & CLIENT_PLUGIN_AUTH != 0 {
            let rest = p.get(at..).unwrap_or_default();
            let end = rest.iter().position(|&b| b == 0).unwrap_or(rest.len());
            String::from_utf8_lossy(&rest[..end]).into_owned()
        } else {
            String::new()
        };
        Ok(Handshake { scramble, plugin })
    }
}

/// The sign-in answer `plugin` expects for `password` and the server's
/// `scramble`.
fn scramble_for(plugin: &str, password: &str, scramble: &[u8]) -> Result<Vec<u8>, String> {
    if password.is_empty() {
        return Ok(Vec::new());
    }
    match plugin {
        // SHA1(pw) XOR SHA1(scramble + SHA1(SHA1(pw)))
        "mysql_native_password" => {
            let h1 = Sha1::digest(password.as_bytes());
            let h2 = Sha1::digest(h1);
            let h3 = Sha1::new().chain_update(scramble).chain_update(h2).finalize();
            Ok(wire::xor(&h1, &h3))
        }
        // SHA256(pw) XOR SHA256(SHA256(SHA256(pw)) + scramble)
        "caching_sha2_password" => {
            let h1 = Sha256::digest(password.as_bytes());
            let h2 = Sha256::digest(h1);
            let h3 = Sha256::new().chain_update(h2).chain_update(scramble).finalize();
            Ok(wire::xor(&h1, &h3))
        }
        // MariaDB's unix_socket plugin checks the socket peer's OS user: no answer to give.
        "unix_socket" => Ok(Vec::new()),
        other => Err(format!(
            "the server asks for sign-in plugin {other:?}; the agent signs in with \
             mysql_native_password or caching_sha2_password"
        )),
    }
}

async fn read_packet(s: &mut Stream) -> Result<(u8, Vec<u8>), String> {
    let mut head = [0u8; 4];
    s.read_exact(&mut head).await.map_err(wire::io)?;
    let len = u32::from_le_bytes([head[0], head[1], head[2], 0]) as usize;
    let mut payload = vec![0; len];
    s.read_exact(&mut payload).await.map_err(wire::io)?;
    Ok((head[3], payload))
}

async fn write_packet(s: &mut Stream, seq: u8, payload: &[u8]) -> Result<(), String> {
    let len = (payload.len() as u32).to_le_bytes();
    s.write_all(&[len[0], len[1], len[2], seq])
        .await
        .map_err(wire::io)?;
    s.write_all(payload).await.map_err(wire::io)?;
    s.flush().await.map_err(wire::io)
}

fn is_eof(p: &[u8]) -> bool {
    p.first() == Some(&0xFE) && p.len() < 9
}

fn parse_error(p: &[u8]) -> ServerError {
    let code = p.get(1..3).map_or(0, |b| u16::from_le_bytes([b[0], b[1]]));
    // With protocol 4.1 a '#' and a five-character SQL state precede the message.
    let msg = match p.get(3) {
        Some(b'#') => p.get(9..).unwrap_or_default(),
        _ => p.get(3..).unwrap_or_default(),
    };
    ServerError(code, String::from_utf8_lossy(msg).into_owned())
}

fn lenenc_int(p: &[u8], at: &mut usize) -> Option<u64> {
    let first = *p.get(*at)?;
    *at += 1;
    let n = match first {
        0..=0xFA => return Some(u64::from(first)),
        0xFC => 2,
        0xFD => 3,
        0xFE => 8,
        _ => return None,
    };
    let bytes = p.get(*at..*at + n)?;
    *at += n;
    let mut v = [0u8; 8];
    v[..n].copy_from_slice(bytes);
    Some(u64::from_le_bytes(v))
}

/// A length-encoded string; `Some(None)` is SQL NULL.
fn lenenc_str<'a>(p: &'a [u8], at: &mut usize) -> Option<Option<&'a [u8]>> {
    if p.get(*at) == Some(&0xFB) {
        *at += 1;
        return Some(None);
    }
    let n = lenenc_int(p, at)? as usize;
    let s = p.get(*at..*at + n)?;
    *at += n;
    Some(Some(s))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn native_password_scramble_matches_the_documented_formula() {
        // Empty password: empty answer.
        assert!(
            scramble_for("mysql_native_password", "", b"x")
                .unwrap_or_default()
                .is_empty()
        );
        let s = b"abcdefghijklmnopqrst";
        let a = scramble_for("mysql_native_password", "secret", s).unwrap_or_default();
        assert_eq!(a.len(), 20);
        // XOR-ing with SHA1(scramble + SHA1(SHA1(pw))) gives SHA1(pw) back,
        // which is how the server checks it.
        let h1 = Sha1::digest(b"secret");
        let h3 = Sha1::new()
            .chain_update(s)
            .chain_update(Sha1::digest(h1))
            .finalize();
        assert_eq!(wire::xor(&a, &h3), h1.to_vec());
        assert!(scramble_for("dialog", "pw", s).is_err());
    }

    #[test]
    fn length_encoded_values() {
        let p = [0x03, b'a', b'b', b'c', 0xFB, 0xFC, 0x01, 0x01];
        let mut at = 0;
        assert_eq!(lenenc_str(&p, &mut at), Some(Some(&b"abc"[..])));
        assert_eq!(lenenc_str(&p, &mut at), Some(None));
        assert_eq!(lenenc_int(&p, &mut at), Some(257));
        assert_eq!(lenenc_int(&p, &mut at), None);
    }
}
