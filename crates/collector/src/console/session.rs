//! Console sessions: a random cookie (`watchpost_session`, HttpOnly,
//! SameSite=Strict, Secure under TLS) names a session held in memory by
//! the SHA-256 of its value; each session carries its own CSRF token, which
//! every write must send back (a form field `csrf` or the `X-CSRF-Token`
//! header htmx adds). A session unused for `console.session_idle` is gone.
//! Repeated failed sign-ins, per user name and per address, are answered
//! only after a growing delay.
//!
//! Sessions live in memory: a restart of the collector signs everyone out.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use watchpost_model::api::Role;

use super::i18n::Lang;
use crate::access::{constant_time_eq, new_secret, sha256_hex};

/// The cookie's name.
pub const COOKIE: &str = "watchpost_session";
/// Failed sign-ins allowed without delay.
const FREE_FAILURES: u32 = 3;
/// Failures are forgotten after this long without another.
const FAILURE_MEMORY_MS: i64 = 15 * 60_000;
/// The longest delay.
const MAX_DELAY: Duration = Duration::from_secs(30);
/// Most sessions held; past it the least recently used is signed out.
const MAX_SESSIONS: usize = 10_000;

/// One signed-in browser.
#[derive(Debug, Clone)]
pub struct Session {
    /// User name.
    pub user: String,
    /// Role when last checked.
    pub role: Role,
    /// The token writes must carry.
    pub csrf: String,
    /// The language the pages are in.
    pub lang: Lang,
    /// The calendar's zone, which charts show times in.
    pub time_zone: String,
    last_ms: i64,
}

#[derive(Default)]
struct Failures {
    count: u32,
    last_ms: i64,
}

#[derive(Default)]
struct Inner {
    by_key: HashMap<String, Session>,
    failures: HashMap<String, Failures>,
}

/// Every console session.
pub struct Sessions {
    idle_ms: i64,
    time_zone: String,
    inner: Mutex<Inner>,
}

impl Sessions {
    /// No sessions; `idle_ms` from `console.session_idle`, `time_zone`
    /// the calendar's.
    pub fn new(idle_ms: i64, time_zone: &str) -> Sessions {
        Sessions {
            idle_ms,
            time_zone: time_zone.to_string(),
            inner: Mutex::default(),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Starts a session; returns the cookie value (shown only here).
    pub fn open(&self, user: &str, role: Role, lang: Lang, now_ms: i64) -> String {
        let cookie = new_secret("");
        let session = Session {
            user: user.to_string(),
            role,
            csrf: new_secret(""),
            lang,
            time_zone: self.time_zone.clone(),
            last_ms: now_ms,
        };
        let mut inner = self.lock();
        let idle = self.idle_ms;
        inner.by_key.retain(|_, s| now_ms - s.last_ms < idle);
        if inner.by_key.len() >= MAX_SESSIONS
            && let Some(oldest) = inner
                .by_key
                .iter()
                .min_by_key(|(_, s)| s.last_ms)
                .map(|(k, _)| k.clone())
        {
            inner.by_key.remove(&oldest);
        }
        inner.by_key.insert(sha256_hex(&cookie), session);
        cookie
    }

    /// The session a cookie names, if it has not been idle too long; using
    /// it counts as activity.
    pub fn touch(&self, cookie: &str, now_ms: i64) -> Option<Session> {
        let key = sha256_hex(cookie);
        let mut inner = self.lock();
        let idle = self.idle_ms;
        let alive = inner.by_key.get(&key).is_some_and(|s| now_ms - s.last_ms < idle);
        if !alive {
            inner.by_key.remove(&key);
            return None;
        }
        let s = inner.by_key.get_mut(&key)?;
        s.last_ms = now_ms;
        Some(s.clone())
    }

    /// Updates a live session's role and language.
    pub fn update(&self, cookie: &str, role: Role, lang: Lang) {
        if let Some(s) = self.lock().by_key.get_mut(&sha256_hex(cookie)) {
            s.role = role;
            s.lang = lang;
        }
    }

    /// Ends a session.
    pub fn close(&self, cookie: &str) {
        self.lock().by_key.remove(&sha256_hex(cookie));
    }

    /// Ends every session of a user (disabled, or signed out everywhere).
    pub fn close_user(&self, user: &str) {
        self.lock().by_key.retain(|_, s| s.user != user);
    }

    /// How long to wait before answering a sign-in from `keys` (the user
    /// name and the address): nothing for the first failures, then 1 s,
    /// 2 s, 4 s ... up to 30 s.
    pub fn delay(&self, keys: &[&str], now_ms: i64) -> Duration {
        let inner = self.lock();
        let worst = keys
            .iter()
            .filter_map(|k| inner.failures.get(*k))
            .filter(|f| now_ms - f.last_ms < FAILURE_MEMORY_MS)
            .map(|f| f.count)
            .max()
            .unwrap_or(0);
        if worst < FREE_FAILURES {
            return Duration::ZERO;
        }
        let exp = (worst - FREE_FAILURES).min(5);
        Duration::from_secs(1 << exp).min(MAX_DELAY)
    }

    /// Counts a failed sign-in against `keys`.
    pub fn failed(&self, keys: &[&str], now_ms: i64) {
        let mut inner = self.lock();
        inner
            .failures
            .retain(|_, f| now_ms - f.last_ms < FAILURE_MEMORY_MS);
        for k in keys {
            let f = inner.failures.entry((*k).to_string()).or_default();
            f.count += 1;
            f.last_ms = now_ms;
        }
    }

    /// Forgets the failures of `keys` after a good sign-in.
    pub fn succeeded(&self, keys: &[&str]) {
        let mut inner = self.lock();
        for k in keys {
            inner.failures.remove(*k);
        }
    }
}

/// Whether a write's token is the session's.
pub fn csrf_ok(session: &Session, sent: Option<&str>) -> bool {
    sent.is_some_and(|t| constant_time_eq(t, &session.csrf))
}

/// The `Set-Cookie` value starting a session.
pub fn set_cookie(value: &str, secure: bool) -> String {
    format!(
        "{COOKIE}={value}; Path=/; HttpOnly; SameSite=Strict{}",
        if secure { "; Secure" } else { "" }
    )
}

/// The `Set-Cookie` value ending one.
pub fn clear_cookie(secure: bool) -> String {
    format!(
        "{COOKIE}=; Path=/; HttpOnly; SameSite=Strict; Max-Age=0{}",
        if secure { "; Secure" } else { "" }
    )
}

/// The session cookie's value in a `Cookie` header.
pub fn cookie_of(headers: &axum::http::HeaderMap) -> Option<String> {
    headers
        .get_all(axum::http::header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|kv| kv.trim().split_once('='))
        .find(|(k, _)| *k == COOKIE)
        .map(|(_, v)| v.to_string())
        .filter(|v| !v.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sessions_expire_when_idle_and_activity_keeps_them() {
        let s = Sessions::new(1000, "UTC");
        let c = s.open("ann", Role::Operator, Lang::Zh, 0);
        assert!(s.touch(&c, 900).is_some());
        assert!(s.touch(&c, 1800).is_some(), "the touch at 900 kept it alive");
        assert!(s.touch(&c, 2800).is_none(), "idle 1000 ms");
        assert!(s.touch(&c, 2801).is_none(), "gone for good");
        assert!(s.touch("forged", 0).is_none());
    }

    #[test]
    fn csrf_is_per_session() {
        let s = Sessions::new(60_000, "UTC");
        let a = s
            .touch(&s.open("ann", Role::Viewer, Lang::En, 0), 1)
            .expect("live");
        let b = s
            .touch(&s.open("bob", Role::Viewer, Lang::En, 0), 1)
            .expect("live");
        assert!(csrf_ok(&a, Some(&a.csrf)));
        assert!(!csrf_ok(&a, Some(&b.csrf)));
        assert!(!csrf_ok(&a, None));
        assert!(!csrf_ok(&a, Some("")));
    }

    #[test]
    fn failed_sign_ins_are_delayed_more_and_more_then_forgotten() {
        let s = Sessions::new(60_000, "UTC");
        let keys = ["ann", "127.0.0.1"];
        for _ in 0..3 {
            assert_eq!(s.delay(&keys, 0), Duration::ZERO);
            s.failed(&keys, 0);
        }
        assert_eq!(s.delay(&keys, 0), Duration::from_secs(1));
        s.failed(&keys, 0);
        assert_eq!(s.delay(&keys, 0), Duration::from_secs(2));
        // Another user from the same address waits as long.
        assert_eq!(s.delay(&["bob", "127.0.0.1"], 0), Duration::from_secs(2));
        for _ in 0..10 {
            s.failed(&keys, 0);
        }
        assert_eq!(s.delay(&keys, 0), MAX_DELAY);
        assert_eq!(s.delay(&keys, FAILURE_MEMORY_MS), Duration::ZERO);
        s.failed(&keys, 1);
        s.succeeded(&keys);
        assert_eq!(s.delay(&keys, 2), Duration::ZERO);
    }

    #[test]
    fn the_cookie_is_read_among_others() {
        let mut h = axum::http::HeaderMap::new();
        h.insert(
            axum::http::header::COOKIE,
            "a=b; watchpost_session=xyz; c=d".parse().expect("header"),
        );
        assert_eq!(cookie_of(&h).as_deref(), Some("xyz"));
        assert!(set_cookie("v", true).contains("HttpOnly; SameSite=Strict; Secure"));
        assert!(!set_cookie("v", false).contains("Secure"));
    }
}
