//! Sign-in, sign-out, the language switch and the overview, and what every
//! page shares: the templates, the frame, times in the calendar's zone, a
//! fault as shown. Each handler gathers what its template shows and
//! renders it; the templates are in `console/templates/`, compiled
//! into the binary and loaded once. Times are shown in the calendar's zone.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, OnceLock};

use axum::extract::{Extension, Query, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{Html, IntoResponse, Redirect, Response};
use minijinja::value::Serde;
use minijinja::{Environment, Value, context};
use serde::Serialize;
use watchpost_model::Severity;
use watchpost_model::api::{self, FaultSource, FaultStatus, Role};

use super::i18n::Lang;
use super::session::{self, Session};
use super::{Signed, form_fields, secure};
use crate::Core;
use crate::db::FaultFilter;

/// The deepest page of the fault list, and the most open faults the
/// overview reads.
pub(super) const MAX_LISTED: usize = 10_000;

/// The templates, by name.
pub const TEMPLATES: &[(&str, &str)] = &[
    ("base.html", include_str!("../../console/templates/base.html")),
    ("login.html", include_str!("../../console/templates/login.html")),
    (
        "overview.html",
        include_str!("../../console/templates/overview.html"),
    ),
    (
        "overview_body.html",
        include_str!("../../console/templates/overview_body.html"),
    ),
    ("faults.html", include_str!("../../console/templates/faults.html")),
    ("fault.html", include_str!("../../console/templates/fault.html")),
    ("error.html", include_str!("../../console/templates/error.html")),
    ("host.html", include_str!("../../console/templates/host.html")),
    ("oncall.html", include_str!("../../console/templates/oncall.html")),
    (
        "maintenance.html",
        include_str!("../../console/templates/maintenance.html"),
    ),
    (
        "reports.html",
        include_str!("../../console/templates/reports.html"),
    ),
    ("audit.html", include_str!("../../console/templates/audit.html")),
    (
        "inspections.html",
        include_str!("../../console/templates/inspections.html"),
    ),
    ("room.html", include_str!("../../console/templates/room.html")),
    (
        "changes.html",
        include_str!("../../console/templates/changes.html"),
    ),
    ("change.html", include_str!("../../console/templates/change.html")),
    ("secret.html", include_str!("../../console/templates/secret.html")),
    ("charts.html", include_str!("../../console/templates/charts.html")),
    (
        "ranges_faults.html",
        include_str!("../../console/templates/ranges_faults.html"),
    ),
    ("users.html", include_str!("../../console/templates/users.html")),
    ("tokens.html", include_str!("../../console/templates/tokens.html")),
    ("agents.html", include_str!("../../console/templates/agents.html")),
];

fn env() -> &'static Environment<'static> {
    static ENV: OnceLock<Environment<'static>> = OnceLock::new();
    ENV.get_or_init(|| {
        let mut env = Environment::new();
        // A misspelt variable is an error, not an empty string.
        env.set_undefined_behavior(minijinja::UndefinedBehavior::Strict);
        for (name, text) in TEMPLATES {
            env.add_template(name, text)
                .unwrap_or_else(|e| panic!("console template {name}: {e:#}"));
        }
        env
    })
}

/// Renders a template; a template error is a 500 naming it.
pub fn render(name: &str, ctx: Value) -> Response {
    match env().get_template(name).and_then(|t| t.render(ctx)) {
        Ok(html) => Html(html).into_response(),
        Err(e) => {
            tracing::error!(template = name, error = %format!("{e:#}"), "console template failed");
            (
                StatusCode::INTERNAL_SERVER_ERROR,
                format!("console template {name}: {e}"),
            )
                .into_response()
        }
    }
}

/// What every page of a signed-in user shows.
pub(super) fn base(s: &Session, nav: &str, here: &str) -> Value {
    context! {
        t => Value::from(Serde(s.lang.words())),
        lang => s.lang.as_str(),
        html_lang => s.lang.html(),
        user => s.user.clone(),
        role => s.role.as_str(),
        csrf => s.csrf.clone(),
        can_act => s.role >= Role::Operator,
        nav => nav,
        here => here,
        tz => s.time_zone.clone(),
        flash => Value::from(()),
        flash_kind => "",
    }
}

/// Renders `name` in `frame` (see [`base`]) with `ctx`, a notice above it
/// (`flash`: the message and `ok` or `error`), answered with `status`.
pub(super) fn page(
    name: &str,
    frame: Value,
    flash: Option<(String, &str)>,
    ctx: Value,
    status: StatusCode,
) -> Response {
    let (flash, kind) = flash.map_or((None, ""), |(m, k)| (Some(m), k));
    let mut r = render(
        name,
        context! { ..context! { flash => flash, flash_kind => kind }, ..frame, ..ctx },
    );
    *r.status_mut() = status;
    r
}

/// An error page in the session's language.
pub fn error_page(s: &Session, status: StatusCode, message: &str) -> Response {
    let ctx = context! { status => status.as_u16(), message => message };
    page("error.html", base(s, "", "/"), None, ctx, status)
}

/// A time (RFC 3339 or ms) as the calendar's local `YYYY-MM-DD HH:MM:SS`.
pub(super) fn local(core: &Core, rfc3339: &str) -> String {
    rfc3339
        .parse::<jiff::Timestamp>()
        .map(|t| local_ts(core, t))
        .unwrap_or_else(|_| rfc3339.to_string())
}

fn local_ts(core: &Core, t: jiff::Timestamp) -> String {
    t.to_zoned(core.config.calendar.time_zone().clone())
        .strftime("%Y-%m-%d %H:%M:%S")
        .to_string()
}

pub(super) fn local_ms(core: &Core, ms: i64) -> String {
    jiff::Timestamp::from_millisecond(ms).map_or_else(|_| ms.to_string(), |t| local_ts(core, t))
}

pub(super) fn ms_of(rfc3339: &str) -> Option<i64> {
    rfc3339
        .parse::<jiff::Timestamp>()
        .ok()
        .map(|t| t.as_millisecond())
}

/// A deadline as shown: when, and met / missed / pending / overdue.
#[derive(Serialize)]
struct Deadline {
    text: String,
    class: &'static str,
}

fn deadline(core: &Core, lang: Lang, due: &str, met: Option<bool>, now: i64) -> Deadline {
    let when = local(core, due);
    let (word, class) = match met {
        Some(true) => ("met", "met"),
        Some(false) => ("missed", "missed"),
        None if ms_of(due).is_some_and(|d| d < now) => ("overdue", "overdue"),
        None => ("pending", "pending"),
    };
    Deadline {
        text: format!("{when} · {}", lang.word(word)),
        class,
    }
}

pub(super) fn source_word(s: FaultSource) -> &'static str {
    match s {
        FaultSource::Rule => "src_rule",
        FaultSource::Reported => "src_reported",
        FaultSource::Drill => "src_drill",
    }
}

/// A fault as the list and the fault page show it.
pub(super) fn fault_view(core: &Core, lang: Lang, f: &api::Fault, now: i64) -> Value {
    context! {
        id => f.id,
        severity => f.severity.as_str(),
        severity_name => lang.severity(f.severity),
        status => f.status.as_str(),
        status_name => lang.status(f.status),
        host => f.host.clone(),
        rule => f.rule.clone(),
        source_name => lang.word(source_word(f.source)),
        summary => f.summary.clone(),
        value => f.value,
        count => f.count,
        flapping => f.flapping,
        opened => local(core, &f.opened_at),
        respond => Value::from(Serde(deadline(core, lang, &f.response_due, f.response_met, now))),
        resolve => Value::from(Serde(deadline(core, lang, &f.resolve_due, f.resolve_met, now))),
        acknowledged_by => f.acknowledged_by.clone(),
        assignee => f.assignee.clone(),
        resolved => f.resolved_at.as_deref().map(|t| local(core, t)),
        closed => f.closed_at.as_deref().map(|t| local(core, t)),
        cause => f.cause.clone(),
        handling => f.handling.clone(),
        change => f.change,
        timeline => f.timeline.iter().map(|e| context! {
            at => local(core, &e.at), actor => e.actor.clone(), kind => e.kind.clone(), message => e.message.clone(),
        }).collect::<Vec<_>>(),
    }
}

pub(super) fn internal(e: impl std::fmt::Display) -> Response {
    tracing::error!(error = %e, "console page failed");
    (
        StatusCode::INTERNAL_SERVER_ERROR,
        format!("cannot read the records now: {e}"),
    )
        .into_response()
}

pub(super) fn open_statuses() -> Vec<FaultStatus> {
    vec![FaultStatus::Open, FaultStatus::Acknowledged]
}

/// Sign-in page (`?next=` where to go after, `?expired=1`, `?lang=`).
pub async fn login_form(State(core): State<Arc<Core>>, Query(q): Query<HashMap<String, String>>) -> Response {
    if !core.config.security.api_users {
        return Redirect::to("/").into_response();
    }
    let lang = q.get("lang").and_then(|l| Lang::parse(l)).unwrap_or(Lang::Zh);
    let message = q.contains_key("expired").then(|| lang.word("session_expired"));
    login_page(lang, safe_next(q.get("next")), "", message, StatusCode::OK)
}

fn login_page(lang: Lang, next: &str, user: &str, message: Option<&str>, status: StatusCode) -> Response {
    let mut r = render(
        "login.html",
        context! {
            t => Value::from(Serde(lang.words())), html_lang => lang.html(), lang => lang.as_str(),
            next => next, user => user, message => message,
        },
    );
    *r.status_mut() = status;
    r
}

/// Only a path on this console: never another site (`//host`, `http:`).
fn safe_next(next: Option<&String>) -> &str {
    match next {
        Some(n) if n.starts_with('/') && !n.starts_with("//") && !n.contains('\\') => n,
        _ => "/",
    }
}

/// `POST /login`: user, password, next.
pub async fn login(
    State(core): State<Arc<Core>>,
    parts: axum::http::request::Parts,
    body: axum::body::Bytes,
) -> Response {
    let fields = form_fields(&body);
    let user = fields
        .get("user")
        .map(|u| u.trim().to_string())
        .unwrap_or_default();
    let password = fields.get("password").cloned().unwrap_or_default();
    let next = safe_next(fields.get("next")).to_string();
    // A failure is told in the language the sign-in page was in.
    let lang_hint = fields
        .get("lang")
        .and_then(|l| Lang::parse(l))
        .unwrap_or(Lang::Zh);
    // Failures count per user name and per client address.
    let address = parts
        .extensions
        .get::<axum::extract::ConnectInfo<std::net::SocketAddr>>()
        .map_or_else(|| "unknown".to_string(), |c| c.0.ip().to_string());
    let keys = [user.as_str(), address.as_str()];
    let wait = core.console.delay(&keys, core.clock.now_ms());
    if !wait.is_zero() {
        tokio::time::sleep(wait).await;
    }
    let found = match core.access.login(&user, &password).await {
        Ok(f) => f,
        Err(e) => return internal(e),
    };
    let Some(identity) = found else {
        core.console.failed(&keys, core.clock.now_ms());
        return login_page(
            lang_hint,
            &next,
            &user,
            Some(lang_hint.word("sign_in_failed")),
            StatusCode::UNAUTHORIZED,
        );
    };
    core.console.succeeded(&keys);
    let lang = match core.access.lang_of(&identity.user).await {
        Ok(l) => l.as_deref().and_then(Lang::parse).unwrap_or(Lang::Zh),
        Err(e) => return internal(e),
    };
    let cookie = core
        .console
        .open(&identity.user, identity.role, lang, core.clock.now_ms());
    let mut r = Redirect::to(&next).into_response();
    if let Ok(v) = HeaderValue::from_str(&session::set_cookie(&cookie, secure(&core))) {
        r.headers_mut().insert(header::SET_COOKIE, v);
    }
    r
}

/// `POST /logout`.
pub async fn logout(State(core): State<Arc<Core>>, Extension(me): Extension<Signed>) -> Response {
    core.console.close(&me.cookie);
    let mut r = Redirect::to("/login").into_response();
    if let Ok(v) = HeaderValue::from_str(&session::clear_cookie(secure(&core))) {
        r.headers_mut().insert(header::SET_COOKIE, v);
    }
    r
}

/// `POST /lang`: lang, back. Remembered for the user.
pub async fn set_lang(
    State(core): State<Arc<Core>>,
    Extension(me): Extension<Signed>,
    body: axum::body::Bytes,
) -> Response {
    let fields = form_fields(&body);
    let Some(lang) = fields.get("lang").and_then(|l| Lang::parse(l)) else {
        return error_page(&me.session, StatusCode::BAD_REQUEST, "lang: expected zh or en");
    };
    if core.config.security.api_users
        && let Err(e) = core.access.set_lang(&me.session.user, lang.as_str()).await
    {
        return internal(e);
    }
    core.console.update(&me.cookie, me.session.role, lang);
    Redirect::to(safe_next(fields.get("back"))).into_response()
}

/// One tile of the overview.
#[derive(Serialize)]
struct Tile {
    name: String,
    href: String,
    kind: &'static str,
    kind_name: &'static str,
    state: &'static str,
    state_name: &'static str,
    faults: usize,
    rank: u8,
}

/// `GET /`.
pub async fn overview(State(core): State<Arc<Core>>, Extension(me): Extension<Signed>) -> Response {
    match overview_ctx(&core, &me.session).await {
        Ok(ctx) => render(
            "overview.html",
            context! { ..base(&me.session, "overview", "/"), ..ctx },
        ),
        Err(r) => r,
    }
}

/// `GET /overview/body`: the part that updates by itself.
pub async fn overview_body(State(core): State<Arc<Core>>, Extension(me): Extension<Signed>) -> Response {
    match overview_ctx(&core, &me.session).await {
        Ok(ctx) => render(
            "overview_body.html",
            context! { ..base(&me.session, "overview", "/"), ..ctx },
        ),
        Err(r) => r,
    }
}

async fn overview_ctx(core: &Core, s: &Session) -> Result<Value, Response> {
    let lang = s.lang;
    let now = core.clock.now_ms();
    let open = core
        .db
        .faults(FaultFilter {
            status: open_statuses(),
            limit: MAX_LISTED,
            ..FaultFilter::default()
        })
        .await
        .map_err(internal)?;
    let windows = core.db.windows().await.map_err(internal)?;
    let in_maintenance = |host: &str| {
        windows.iter().any(|w| {
            w.rule.is_none()
                && w.rules.is_empty()
                && w.matchers.is_empty()
                && w.covers("", host, &BTreeMap::new(), now)
        })
    };
    let mut by_host: HashMap<&str, (Severity, usize)> = HashMap::new();
    for f in &open {
        let e = by_host.entry(f.host.as_str()).or_insert((f.severity, 0));
        e.0 = e.0.max(f.severity);
        e.1 += 1;
    }
    // A room's faults are those with its `room` label (or reported against it).
    let rooms = super::hosts::rooms(core);
    let mut by_room: HashMap<&str, (Severity, usize)> = HashMap::new();
    for f in &open {
        for room in rooms.keys().filter(|r| super::hosts::in_room(f, r)) {
            let e = by_room.entry(room.as_str()).or_insert((f.severity, 0));
            e.0 = e.0.max(f.severity);
            e.1 += 1;
        }
    }
    let tile = |name: String, kind: &'static str, reachable: bool| {
        let (faults, maintained) = if kind == "room" {
            (by_room.get(name.as_str()).copied(), false)
        } else {
            (by_host.get(name.as_str()).copied(), in_maintenance(&name))
        };
        let (state, rank) = if maintained {
            ("maintenance", 5)
        } else if let Some((sev, _)) = faults {
            let rank = match sev {
                Severity::Urgent => 0,
                Severity::General => 1,
                Severity::Minor => 2,
            };
            (sev.as_str(), rank)
        } else if !reachable {
            ("unreachable", 3)
        } else {
            ("ok", 9)
        };
        let state_name = match state {
            "maintenance" => lang.word("state_maintenance"),
            "unreachable" => lang.word("state_unreachable"),
            "ok" => lang.word("state_ok"),
            _ => faults.map_or("", |(sev, _)| lang.severity(sev)),
        };
        let path: String = form_urlencoded::byte_serialize(name.as_bytes()).collect();
        Tile {
            href: if kind == "room" {
                format!("/rooms/{path}")
            } else {
                format!("/hosts/{path}")
            },
            name,
            kind,
            kind_name: lang.word(&format!("kind_{kind}")),
            state,
            state_name,
            faults: faults.map_or(0, |f| f.1),
            rank,
        }
    };
    let mut tiles: Vec<Tile> = core
        .agents
        .list(now)
        .into_iter()
        .map(|a| tile(a.hostname, "host", a.connected))
        .collect();
    // SNMP devices: their `snmp_up` series, named by the `device` label.
    let mut devices = BTreeMap::new();
    for id in core.store.select(Some("snmp_up"), &[]) {
        let Some(labels) = core.store.labels(id) else {
            continue;
        };
        if let Some(device) = labels.labels.get("device").cloned() {
            let up = core.store.last(id).is_some_and(|p| p.1 >= 1.0);
            *devices.entry(device).or_insert(false) |= up;
        }
    }
    tiles.extend(devices.into_iter().map(|(d, up)| tile(d, "snmp", up)));
    tiles.extend(rooms.iter().map(|(r, up)| tile(r.clone(), "room", *up)));
    tiles.sort_by(|a, b| a.rank.cmp(&b.rank).then_with(|| a.name.cmp(&b.name)));
    let counts: Vec<Value> = [Severity::Urgent, Severity::General, Severity::Minor]
        .into_iter()
        .map(|sev| {
            context! {
                severity => sev.as_str(),
                name => lang.severity(sev),
                n => open.iter().filter(|f| f.severity == sev).count(),
            }
        })
        .collect();
    let hour = now + 3_600_000;
    let mut due: Vec<(i64, Value)> = open
        .iter()
        .filter_map(|f| {
            let (which, at) = if f.status == FaultStatus::Open {
                ("response_due", &f.response_due)
            } else {
                ("resolve_due", &f.resolve_due)
            };
            let ms = ms_of(at)?;
            (ms <= hour).then(|| {
                (
                    ms,
                    context! {
                        id => f.id, host => f.host.clone(), summary => f.summary.clone(),
                        severity => f.severity.as_str(), severity_name => lang.severity(f.severity),
                        which => lang.word(which), due => local(core, at), overdue => ms < now,
                    },
                )
            })
        })
        .collect();
    due.sort_by_key(|d| d.0);
    let at = jiff::Timestamp::from_millisecond(now).map_err(internal)?;
    let duty: Vec<Value> = core
        .config
        .notify
        .roster
        .on_duty(at)
        .into_iter()
        .filter(|d| !d.on_duty.is_empty())
        .map(|d| {
            context! {
                team => d.team,
                people => d.on_duty.iter().map(|m| match &m.phone {
                    Some(p) => format!("{} ({p})", m.name),
                    None => m.name.clone(),
                }).collect::<Vec<_>>().join(", "),
                until => d.until.as_deref().map(|u| local(core, u)),
            }
        })
        .collect();
    Ok(context! {
        tiles => Value::from(Serde(&tiles)),
        counts => counts,
        due => due.into_iter().map(|d| d.1).collect::<Vec<_>>(),
        duty => duty,
        now => local_ms(core, now),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_template_compiles() {
        for (name, _) in TEMPLATES {
            env()
                .get_template(name)
                .unwrap_or_else(|e| panic!("{name}: {e:#}"));
        }
    }

    #[test]
    fn next_stays_on_this_console() {
        let s = |v: &str| safe_next(Some(&v.to_string())).to_string();
        assert_eq!(s("/faults/3"), "/faults/3");
        assert_eq!(s("//evil.example/x"), "/");
        assert_eq!(s("https://evil.example/"), "/");
        assert_eq!(s("/\\evil.example"), "/");
        assert_eq!(safe_next(None), "/");
    }
}
