//! Redis: `AUTH` where a password is set, then `INFO` each round, over RESP.
//!
//! Metrics (`instance` label): `redis_up`, `redis_uptime_seconds`,
//! `redis_memory_used_bytes`, `redis_maxmemory_bytes` and
//! `redis_memory_used_percent` (only when `maxmemory` is set),
//! `redis_clients`, `redis_commands_per_second`,
//! `redis_keyspace_hit_percent` (over the last round),
//! `redis_evictions_per_second`, `redis_is_master` (1 master, 0 replica),
//! `redis_connected_replicas`, and on a replica `redis_master_link_up`.

use std::collections::HashMap;

use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt};

use super::wire::{self, Stream};
use super::{App, Reading, number};

/// An open, authenticated connection.
pub(super) struct Connection {
    stream: Stream,
}

impl Connection {
    /// Connects and authenticates (`AUTH password`, or `AUTH user password`).
    pub(super) async fn open(app: &App) -> Result<Connection, String> {
        let mut c = Connection {
            stream: wire::connect(&app.target).await?,
        };
        if let Some(pw) = app.password.as_deref() {
            let mut args = vec!["AUTH"];
            args.extend(app.user.as_deref());
            args.push(pw);
            if let Reply::Error(e) = c.command(&args).await? {
                return Err(format!("AUTH refused: {e}"));
            }
        }
        Ok(c)
    }

    async fn command(&mut self, args: &[&str]) -> Result<Reply, String> {
        let mut out = format!("*{}\r\n", args.len());
        for a in args {
            out.push_str(&format!("${}\r\n{a}\r\n", a.len()));
        }
        self.stream.write_all(out.as_bytes()).await.map_err(wire::io)?;
        self.stream.flush().await.map_err(wire::io)?;
        let mut line = String::new();
        self.stream.read_line(&mut line).await.map_err(wire::io)?;
        let line = line.trim_end();
        match line.split_at_checked(1) {
            Some(("+", s)) => Ok(Reply::Text(s.to_string())),
            Some(("-", e)) => Ok(Reply::Error(e.to_string())),
            Some((":", n)) => Ok(Reply::Text(n.to_string())),
            Some(("$", n)) => {
                let n: usize = n.parse().map_err(|_| format!("bad bulk length {n:?}"))?;
                if n > 16 << 20 {
                    return Err(format!("a reply of {n} bytes is more than INFO gives"));
                }
                let mut body = vec![0; n + 2];
                self.stream.read_exact(&mut body).await.map_err(wire::io)?;
                body.truncate(n);
                Ok(Reply::Text(String::from_utf8_lossy(&body).into_owned()))
            }
            _ => Err(format!("not a Redis reply: {line:?}")),
        }
    }
}

enum Reply {
    Text(String),
    Error(String),
}

/// Reads one round.
pub(super) async fn read(c: &mut Connection, r: &mut Reading<'_>) -> Result<(), String> {
    let info = match c.command(&["INFO"]).await? {
        Reply::Text(t) => parse_info(&t),
        // NOAUTH and the like: the connection is useless.
        Reply::Error(e) => return Err(format!("INFO refused: {e}")),
    };
    let n = |k: &str| number(&info, k);
    if let Some(v) = n("uptime_in_seconds") {
        r.gauge("redis_uptime_seconds", v);
    }
    let used = n("used_memory");
    if let Some(u) = used {
        r.gauge("redis_memory_used_bytes", u);
    }
    if let Some(max) = n("maxmemory").filter(|m| *m > 0.0) {
        r.gauge("redis_maxmemory_bytes", max);
        if let Some(u) = used {
            r.gauge("redis_memory_used_percent", 100.0 * u / max);
        }
    }
    if let Some(v) = n("connected_clients") {
        r.gauge("redis_clients", v);
    }
    if let Some(v) = n("total_commands_processed") {
        r.rate("redis_commands_per_second", v);
    }
    if let (Some(h), Some(m)) = (n("keyspace_hits"), n("keyspace_misses")) {
        r.hit_percent("redis_keyspace_hit_percent", h, m);
    }
    if let Some(v) = n("evicted_keys") {
        r.rate("redis_evictions_per_second", v);
    }
    let master = info.get("role").map(String::as_str) == Some("master");
    r.gauge("redis_is_master", if master { 1.0 } else { 0.0 });
    if let Some(v) = n("connected_slaves") {
        r.gauge("redis_connected_replicas", v);
    }
    if !master && let Some(link) = info.get("master_link_status") {
        r.gauge("redis_master_link_up", if link == "up" { 1.0 } else { 0.0 });
    }
    Ok(())
}

/// `key:value` lines of INFO (section headers and blank lines skipped).
fn parse_info(text: &str) -> HashMap<String, String> {
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| l.trim_end().split_once(':'))
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn info_lines_become_a_map() {
        let m = parse_info(
            "# Server\r\nredis_version:7.0.15\r\nuptime_in_seconds:42\r\n\r\n# Replication\r\nrole:master\r\n",
        );
        assert_eq!(number(&m, "uptime_in_seconds"), Some(42.0));
        assert_eq!(m.get("role").map(String::as_str), Some("master"));
        assert!(!m.contains_key("# Server"));
    }
}
