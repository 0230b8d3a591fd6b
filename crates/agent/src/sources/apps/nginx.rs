//! nginx's `stub_status` page (`ngx_http_stub_status_module`, in Debian's
//! nginx-light and most builds):
//!
//! ```text
//! Active connections: 2
//! server accepts handled requests
//!  16 16 31
//! Reading: 0 Writing: 1 Waiting: 1
//! ```
//!
//! Metrics (`instance` label): `nginx_up`, `nginx_connections_active`,
//! `nginx_connections_reading`, `nginx_connections_writing`,
//! `nginx_connections_waiting`, `nginx_accepts_per_second`,
//! `nginx_requests_per_second` and `nginx_dropped_per_second` (accepted
//! but not handled: a worker_connections or file limit was hit).

use super::{App, Reading, Target};

/// The HTTP client of one nginx.
pub(super) fn client(app: &App) -> Result<reqwest::Client, String> {
    reqwest::Client::builder()
        .timeout(app.timeout)
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .map_err(|e| format!("cannot build an HTTP client: {e}"))
}

/// Reads one round.
pub(super) async fn read(app: &App, client: &reqwest::Client, r: &mut Reading<'_>) -> Result<(), String> {
    let Target::Url(url) = &app.target else {
        return Err("nginx needs a url".to_string());
    };
    let resp = client
        .get(url)
        .send()
        .await
        .map_err(|e| format!("GET {url}: {e}"))?;
    let status = resp.status();
    let body = resp.text().await.map_err(|e| format!("GET {url}: {e}"))?;
    if !status.is_success() {
        return Err(format!("GET {url}: HTTP {status}"));
    }
    let s = StubStatus::parse(&body).ok_or_else(|| {
        format!("{url} is not a stub_status page (is `stub_status;` set in that location?)")
    })?;
    r.gauge("nginx_connections_active", s.active);
    r.gauge("nginx_connections_reading", s.reading);
    r.gauge("nginx_connections_writing", s.writing);
    r.gauge("nginx_connections_waiting", s.waiting);
    r.rate("nginx_accepts_per_second", s.accepts);
    r.rate("nginx_requests_per_second", s.requests);
    r.rate("nginx_dropped_per_second", (s.accepts - s.handled).max(0.0));
    Ok(())
}

#[derive(Debug, PartialEq)]
struct StubStatus {
    active: f64,
    accepts: f64,
    handled: f64,
    requests: f64,
    reading: f64,
    writing: f64,
    waiting: f64,
}

impl StubStatus {
    fn parse(text: &str) -> Option<StubStatus> {
        let mut lines = text.lines();
        let active = lines
            .next()?
            .strip_prefix("Active connections:")?
            .trim()
            .parse()
            .ok()?;
        lines.next()?.starts_with("server accepts").then_some(())?;
        let counts: Vec<f64> = lines
            .next()?
            .split_whitespace()
            .map(|n| n.parse().ok())
            .collect::<Option<_>>()?;
        let [accepts, handled, requests] = counts[..] else {
            return None;
        };
        let words: Vec<&str> = lines.next()?.split_whitespace().collect();
        let after = |name: &str| -> Option<f64> {
            let i = words.iter().position(|w| *w == name)?;
            words.get(i + 1)?.parse().ok()
        };
        Some(StubStatus {
            active,
            accepts,
            handled,
            requests,
            reading: after("Reading:")?,
            writing: after("Writing:")?,
            waiting: after("Waiting:")?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_stub_status() {
        let s = StubStatus::parse(
            "Active connections: 2 \nserver accepts handled requests\n 16 15 31 \nReading: 0 Writing: 1 Waiting: 1 \n",
        );
        assert_eq!(
            s,
            Some(StubStatus {
                active: 2.0,
                accepts: 16.0,
                handled: 15.0,
                requests: 31.0,
                reading: 0.0,
                writing: 1.0,
                waiting: 1.0
            })
        );
        assert_eq!(StubStatus::parse("<html>welcome to nginx</html>"), None);
    }
}
