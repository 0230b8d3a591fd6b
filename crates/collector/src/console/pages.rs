//! The console's pages: sign-in, overview, the fault list and a fault's
//! page with its actions. Each handler gathers what its template shows
//! and renders it; the templates are in `console/templates/`, compiled
//! into the binary and loaded once. Times are shown in the calendar's zone.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, OnceLock};

use axum::extract::{Extension, Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{Html, IntoResponse, Redirect, Response};
use minijinja::{Environment, Value, context};
use serde::Serialize;
use watchpost_model::Severity;
use watchpost_model::api::{self, FaultSource, FaultStatus, Role};

use super::i18n::Lang;
use super::session::{self, Session};
use super::{Signed, form_fields, secure};
use crate::Core;
use crate::db::{FaultFilter, NotificationFilter};

/// Faults per page of the list.
const PAGE_SIZE: usize = 50;
/// The deepest page (the list reads at most this many faults).
const MAX_LISTED: usize = 10_000;

/// The templates, by name.
pub const TEMPLATES: &[(&str, &str)] = &[
    ("base.html", include_str!("../../console/templates/base.html")),
    ("login.html", include_str!("../../console/templates/login.html")),
    ("overview.html", include_str!("../../console/templates/overview.html")),
    (
        "overview_body.html",
        include_str!("../../console/templates/overview_body.html"),
    ),
    ("faults.html", include_str!("../../console/templates/faults.html")),
    ("fault.html", include_str!("../../console/templates/fault.html")),
    ("error.html", include_str!("../../console/templates/error.html")),
    ("host.html", include_str!("../../console/templates/host.html")),
    ("oncall.html", include_str!("../../console/templates/oncall.html")),
    ("maintenance.html", include_str!("../../console/templates/maintenance.html")),
    ("reports.html", include_str!("../../console/templates/reports.html")),
    ("audit.html", include_str!("../../console/templates/audit.html")),
];

/// The host page's ranges; longer ones read the rollups.
const RANGES: &[&str] = &["1h", "24h", "7d", "30d"];

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
            (StatusCode::INTERNAL_SERVER_ERROR, format!("console template {name}: {e}")).into_response()
        }
    }
}

/// What every page of a signed-in user shows.
pub(super) fn base(s: &Session, nav: &str, here: &str) -> Value {
    context! {
        t => Value::from_serialize(s.lang.words()),
        lang => s.lang.as_str(),
        html_lang => s.lang.html(),
        user => s.user.clone(),
        role => s.role.as_str(),
        csrf => s.csrf.clone(),
        can_act => s.role >= Role::Operator,
        nav => nav,
        here => here,
        flash => Value::from(()),
        flash_kind => "",
    }
}

/// An error page in the session's language.
pub fn error_page(s: &Session, status: StatusCode, message: &str) -> Response {
    let ctx = context! { ..base(s, "", "/"), ..context! { status => status.as_u16(), message => message } };
    let mut r = render("error.html", ctx);
    *r.status_mut() = status;
    r
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

fn ms_of(rfc3339: &str) -> Option<i64> {
    rfc3339.parse::<jiff::Timestamp>().ok().map(|t| t.as_millisecond())
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

fn source_word(s: FaultSource) -> &'static str {
    match s {
        FaultSource::Rule => "src_rule",
        FaultSource::Reported => "src_reported",
        FaultSource::Drill => "src_drill",
    }
}

/// A fault as the list and the fault page show it.
fn fault_view(core: &Core, lang: Lang, f: &api::Fault, now: i64) -> Value {
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
        respond => Value::from_serialize(deadline(core, lang, &f.response_due, f.response_met, now)),
        resolve => Value::from_serialize(deadline(core, lang, &f.resolve_due, f.resolve_met, now)),
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
    (StatusCode::INTERNAL_SERVER_ERROR, format!("cannot read the records now: {e}")).into_response()
}

fn open_statuses() -> Vec<FaultStatus> {
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
            t => Value::from_serialize(lang.words()), html_lang => lang.html(), next => next, user => user, message => message,
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
    let user = fields.get("user").map(|u| u.trim().to_string()).unwrap_or_default();
    let password = fields.get("password").cloned().unwrap_or_default();
    let next = safe_next(fields.get("next")).to_string();
    let lang_hint = Lang::Zh;
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
    kind: &'static str,
    state: &'static str,
    state_name: &'static str,
    faults: usize,
    rank: u8,
}

/// `GET /`.
pub async fn overview(State(core): State<Arc<Core>>, Extension(me): Extension<Signed>) -> Response {
    match overview_ctx(&core, &me.session).await {
        Ok(ctx) => render("overview.html", context! { ..base(&me.session, "overview", "/"), ..ctx }),
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
        windows
            .iter()
            .any(|w| w.rule.is_none() && w.rules.is_empty() && w.matchers.is_empty() && w.covers("", host, &BTreeMap::new(), now))
    };
    let mut by_host: HashMap<&str, (Severity, usize)> = HashMap::new();
    for f in &open {
        let e = by_host.entry(f.host.as_str()).or_insert((f.severity, 0));
        e.0 = e.0.max(f.severity);
        e.1 += 1;
    }
    let tile = |name: String, kind: &'static str, reachable: bool| {
        let faults = by_host.get(name.as_str()).copied();
        let (state, rank) = if in_maintenance(&name) {
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
        Tile {
            name,
            kind,
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
        let Some(labels) = core.store.labels(id) else { continue };
        if let Some(device) = labels.labels.get("device").cloned() {
            let up = core.store.last(id).is_some_and(|p| p.1 >= 1.0);
            *devices.entry(device).or_insert(false) |= up;
        }
    }
    tiles.extend(devices.into_iter().map(|(d, up)| tile(d, "snmp", up)));
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
        tiles => Value::from_serialize(&tiles),
        counts => counts,
        due => due.into_iter().map(|d| d.1).collect::<Vec<_>>(),
        duty => duty,
        now => local_ms(core, now),
    })
}

/// `GET /faults`: status, severity, host, rule, source, opened_from,
/// opened_before (dates in the calendar's zone), page.
pub async fn faults(
    State(core): State<Arc<Core>>,
    Extension(me): Extension<Signed>,
    Query(q): Query<HashMap<String, String>>,
    uri: axum::http::Uri,
) -> Response {
    let s = &me.session;
    let lang = s.lang;
    let now = core.clock.now_ms();
    let get = |k: &str| q.get(k).map(|v| v.trim()).filter(|v| !v.is_empty());
    let bad = |what: String| error_page(s, StatusCode::BAD_REQUEST, &what);
    let mut filter = FaultFilter::default();
    if let Some(v) = get("status") {
        for p in v.split(',') {
            match FaultStatus::parse(p) {
                Some(st) => filter.status.push(st),
                None => return bad(format!("status={p:?}: expected open, acknowledged, resolved, closed or suppressed")),
            }
        }
    }
    if let Some(v) = get("severity") {
        for p in v.split(',') {
            match p.parse::<Severity>() {
                Ok(sev) => filter.severity.push(sev),
                Err(e) => return bad(format!("severity: {e}")),
            }
        }
    }
    if let Some(v) = get("source") {
        match FaultSource::parse(v) {
            Some(src) => filter.source.push(src),
            None => return bad(format!("source={v:?}: expected rule, reported or drill")),
        }
    }
    filter.host = get("host").map(str::to_string);
    filter.rule = get("rule").map(str::to_string);
    for (key, slot) in [("opened_from", &mut filter.opened_from_ms), ("opened_before", &mut filter.opened_before_ms)] {
        if let Some(v) = get(key) {
            match crate::http::parse_when(&core, key, v, now) {
                Ok(ms) => *slot = Some(ms),
                Err(e) => return bad(e.message),
            }
        }
    }
    let page: usize = match get("page").map(str::parse) {
        None => 1,
        Some(Ok(n)) if n >= 1 && n * PAGE_SIZE <= MAX_LISTED => n,
        Some(_) => return bad(format!("page: expected 1 to {}", MAX_LISTED / PAGE_SIZE)),
    };
    filter.limit = (page * PAGE_SIZE + 1).min(MAX_LISTED);
    let all = match core.db.faults(filter).await {
        Ok(f) => f,
        Err(e) => return internal(e),
    };
    let more = all.len() > page * PAGE_SIZE;
    let rows: Vec<Value> = all
        .iter()
        .skip((page - 1) * PAGE_SIZE)
        .take(PAGE_SIZE)
        .map(|f| fault_view(&core, lang, f, now))
        .collect();
    let link = |p: usize| {
        let mut query: Vec<(String, String)> = q
            .iter()
            .filter(|(k, _)| k.as_str() != "page")
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        query.sort();
        query.push(("page".into(), p.to_string()));
        let enc: String = form_urlencoded::Serializer::new(String::new()).extend_pairs(query).finish();
        format!("/faults?{enc}")
    };
    let here = uri.path_and_query().map_or("/faults", |p| p.as_str()).to_string();
    let opt = |vals: Vec<(&str, &str)>| {
        vals.into_iter()
            .map(|(v, n)| context! { value => v, name => n })
            .collect::<Vec<_>>()
    };
    let statuses = opt(
        [
            FaultStatus::Open,
            FaultStatus::Acknowledged,
            FaultStatus::Resolved,
            FaultStatus::Closed,
            FaultStatus::Suppressed,
        ]
        .into_iter()
        .map(|st| (st.as_str(), lang.status(st)))
        .collect(),
    );
    let severities = opt(
        [Severity::Urgent, Severity::General, Severity::Minor]
            .into_iter()
            .map(|sev| (sev.as_str(), lang.severity(sev)))
            .collect(),
    );
    let sources = opt(
        [FaultSource::Rule, FaultSource::Reported, FaultSource::Drill]
            .into_iter()
            .map(|src| (src.as_str(), lang.word(source_word(src))))
            .collect(),
    );
    let f = context! {
        status => get("status").unwrap_or(""), severity => get("severity").unwrap_or(""),
        source => get("source").unwrap_or(""), host => get("host").unwrap_or(""),
        rule => get("rule").unwrap_or(""), opened_from => get("opened_from").unwrap_or(""),
        opened_before => get("opened_before").unwrap_or(""),
    };
    render(
        "faults.html",
        context! {
            ..base(s, "faults", &here),
            ..context! {
                f => f, rows => rows, statuses => statuses, severities => severities, sources => sources,
                prev => (page > 1).then(|| link(page - 1)),
                next => more.then(|| link(page + 1)),
                page_label => lang.word("page").replace("{n}", &page.to_string()),
            }
        },
    )
}

/// `GET /faults/{id}`.
pub async fn fault(
    State(core): State<Arc<Core>>,
    Extension(me): Extension<Signed>,
    Path(id): Path<String>,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    let flash = q.contains_key("done").then(|| me.session.lang.word("action_done").to_string());
    fault_page(&core, &me.session, &id, flash.map(|f| (f, "ok")), StatusCode::OK).await
}

async fn fault_page(
    core: &Core,
    s: &Session,
    id: &str,
    flash: Option<(String, &str)>,
    status: StatusCode,
) -> Response {
    let lang = s.lang;
    let Ok(id) = id.parse::<i64>() else {
        return error_page(s, StatusCode::NOT_FOUND, &format!("fault id {id:?} is not a number"));
    };
    let f = match core.db.fault(id).await {
        Ok(Some(f)) => f,
        Ok(None) => return error_page(s, StatusCode::NOT_FOUND, &format!("no fault {id}")),
        Err(e) => return internal(e),
    };
    let notes = match core
        .db
        .notifications(NotificationFilter {
            fault_id: Some(id),
            status: None,
            limit: 200,
        })
        .await
    {
        Ok(n) => n,
        Err(e) => return internal(e),
    };
    let now = core.clock.now_ms();
    let opened = ms_of(&f.opened_at).unwrap_or(now);
    let windows: Vec<String> = match core.db.windows().await {
        Ok(w) => w
            .iter()
            .filter(|w| w.covers(&f.rule, &f.host, &f.labels, opened))
            .map(|w| format!("#{} {} ({} – {})", w.id, w.reason, local_ms(core, w.starts_at_ms), local_ms(core, w.ends_at_ms)))
            .collect(),
        Err(e) => return internal(e),
    };
    // Its series, from an hour before it opened to its resolution (or now).
    let chart = (!f.metric.is_empty()).then(|| {
        let mut labels: Vec<(&str, &str)> = vec![("host", f.host.as_str())];
        labels.extend(f.labels.iter().filter(|(k, _)| k.as_str() != "host").map(|(k, v)| (k.as_str(), v.as_str())));
        chart_query(&f.metric, &labels)
    });
    let until = f.resolved_at.as_deref().and_then(ms_of).map(|t| (t + 600_000).min(now));
    let mut view = fault_view(core, lang, &f, now);
    view = context! { ..view, ..context! {
        windows => windows.join("; "),
        chart => chart,
        chart_since => opened - 3_600_000,
        chart_until => until,
    } };
    let here = format!("/faults/{id}");
    let (flash, kind) = flash.map_or((None, ""), |(m, k)| (Some(m), k));
    let mut r = render(
        "fault.html",
        context! {
            ..context! { flash => flash, flash_kind => kind },
            ..base(s, "faults", &here),
            ..context! {
                f => view,
                notes => notes.iter().map(|n| context! {
                    at => local(core, n.sent_at.as_deref().unwrap_or(&n.created_at)),
                    channel => n.channel.clone(), recipient => n.recipient.clone(), status => n.status.clone(), error => n.last_error.clone(),
                }).collect::<Vec<_>>(),
            }
        },
    );
    *r.status_mut() = status;
    r
}

/// `POST /faults/{id}/{action}`: ack (comment), assign (assignee), notes
/// (text), resolve (comment), close (cause, handling).
pub async fn fault_action(
    State(core): State<Arc<Core>>,
    Extension(me): Extension<Signed>,
    Path((id, action)): Path<(String, String)>,
    body: axum::body::Bytes,
) -> Response {
    use crate::faults::{ActionError, FaultAction};
    let s = &me.session;
    let fields = form_fields(&body);
    let text = |k: &str| fields.get(k).map(|v| v.trim().to_string()).filter(|v| !v.is_empty());
    let need = |k: &str| text(k).ok_or_else(|| format!("{action} needs a non-empty {k}"));
    let act = match action.as_str() {
        "ack" => Ok(FaultAction::Ack { comment: text("comment") }),
        "resolve" => need("comment").map(|comment| FaultAction::Resolve { comment }),
        "close" => need("cause").and_then(|cause| need("handling").map(|handling| FaultAction::Close { cause, handling })),
        "notes" => need("text").map(|text| FaultAction::Note { text }),
        "assign" => need("assignee").map(|assignee| FaultAction::Assign { assignee }),
        other => {
            return error_page(
                s,
                StatusCode::NOT_FOUND,
                &format!("no action {other:?}: use ack, assign, notes, resolve or close"),
            );
        }
    };
    let act = match act {
        Ok(a) => a,
        Err(why) => return fault_page(&core, s, &id, Some((why, "error")), StatusCode::BAD_REQUEST).await,
    };
    let Ok(fid) = id.parse::<i64>() else {
        return error_page(s, StatusCode::NOT_FOUND, &format!("fault id {id:?} is not a number"));
    };
    match core.faults.act(fid, &s.user, core.clock.now_ms(), act).await {
        Ok(_) => Redirect::to(&format!("/faults/{fid}?done=1")).into_response(),
        Err(ActionError::NotFound(_)) => error_page(s, StatusCode::NOT_FOUND, &format!("no fault {fid}")),
        Err(ActionError::Conflict(why)) => fault_page(&core, s, &id, Some((why, "error")), StatusCode::CONFLICT).await,
        Err(ActionError::Forbidden(why)) => error_page(s, StatusCode::FORBIDDEN, &why),
        Err(ActionError::Db(e)) => internal(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_template_compiles() {
        for (name, _) in TEMPLATES {
            env().get_template(name).unwrap_or_else(|e| panic!("{name}: {e:#}"));
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

/// A label matcher for exactly this value.
fn exactly(name: &str, value: &str) -> crate::matchers::Matcher {
    crate::matchers::Matcher {
        name: name.to_string(),
        op: crate::matchers::MatchOp::Eq(value.to_string()),
    }
}

/// A query string for the chart script: the metric and exact labels.
fn chart_query(metric: &str, labels: &[(&str, &str)]) -> String {
    let mut q = form_urlencoded::Serializer::new(String::new());
    q.append_pair("metric", metric);
    for (k, v) in labels {
        q.append_pair(k, v);
    }
    q.finish()
}

/// `GET /data/query`: what `GET /api/v1/query` answers, for the console's
/// charts (signed in by the session, read-only).
pub async fn data_query(
    state: State<Arc<Core>>,
    q: Query<HashMap<String, String>>,
) -> Response {
    match crate::http::query(state, q).await {
        Ok(json) => json.into_response(),
        Err(e) => e.into_response(),
    }
}

/// `GET /hosts/{name}?range=`: a host's charts, or an SNMP device's with
/// its interfaces.
pub async fn host(
    State(core): State<Arc<Core>>,
    Extension(me): Extension<Signed>,
    Path(name): Path<String>,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    let s = &me.session;
    let lang = s.lang;
    let now = core.clock.now_ms();
    let range = q.get("range").map_or("1h", String::as_str);
    let Some(range) = RANGES.iter().find(|r| **r == range) else {
        return error_page(s, StatusCode::BAD_REQUEST, &format!("range={range:?}: expected 1h, 24h, 7d or 30d"));
    };
    let device = !core.store.select(Some("snmp_up"), &[exactly("device", &name)]).is_empty();
    let agent = core.agents.list(now).into_iter().find(|a| a.hostname == name);
    if !device && agent.is_none() && core.store.select(None, &[exactly("host", &name)]).is_empty() {
        return error_page(s, StatusCode::NOT_FOUND, &format!("no host or device {name:?}"));
    }
    let open = match core
        .db
        .faults(FaultFilter {
            status: open_statuses(),
            host: Some(name.clone()),
            limit: 200,
            ..FaultFilter::default()
        })
        .await
    {
        Ok(f) => f,
        Err(e) => return internal(e),
    };
    let worst = open.iter().map(|f| f.severity).max();
    let (state, state_name) = match (worst, agent.as_ref().map(|a| a.connected)) {
        (Some(sev), _) => (sev.as_str(), lang.severity(sev)),
        (None, Some(false)) => ("unreachable", lang.word("state_unreachable")),
        _ => ("ok", lang.word("state_ok")),
    };
    let chart = |title: &str, queries: Vec<String>, label: &str, unit: &str| {
        context! { title => lang.word(title), query => queries.join("|"), label => label, unit => unit }
    };
    let on = |metric: &str| {
        if device {
            chart_query(metric, &[("device", &name)])
        } else {
            chart_query(metric, &[("host", &name)])
        }
    };
    let charts = if device {
        vec![
            chart("ch_cpu", vec![on("snmp_cpu_usage_percent")], "", "%"),
            chart("ch_if_in", vec![on("snmp_if_in_bits_per_second")], "ifName", "bit/s"),
            chart("ch_if_out", vec![on("snmp_if_out_bits_per_second")], "ifName", "bit/s"),
            chart("ch_sensors", vec![on("snmp_sensor_value")], "sensor", ""),
        ]
    } else {
        vec![
            chart("ch_cpu", vec![on("host_cpu_usage_percent")], "", "%"),
            chart("ch_memory", vec![on("host_memory_used_percent"), on("host_swap_used_percent")], "", "%"),
            chart("ch_load", vec![on("host_load1"), on("host_load5"), on("host_load15")], "", ""),
            chart("ch_fs", vec![on("host_filesystem_used_percent")], "mountpoint", "%"),
            chart("ch_disk", vec![on("host_disk_busy_percent")], "device", "%"),
            chart(
                "ch_net",
                vec![on("host_network_receive_bytes_per_second"), on("host_network_transmit_bytes_per_second")],
                "interface",
                "bytes/s",
            ),
        ]
    };
    let interfaces = if device { interfaces(&core, &name) } else { Vec::new() };
    render(
        "host.html",
        context! {
            ..base(s, "overview", &format!("/hosts/{name}?range={range}")),
            ..context! {
                host => name, state => state, state_name => state_name,
                ranges => RANGES.to_vec(), range => *range, since => *range,
                charts => charts, interfaces => interfaces,
                faults => open.iter().map(|f| fault_view(&core, lang, f, now)).collect::<Vec<_>>(),
            }
        },
    )
}

/// An SNMP device's interfaces from their latest values.
fn interfaces(core: &Core, device: &str) -> Vec<Value> {
    let mut by_if: BTreeMap<String, BTreeMap<&'static str, f64>> = BTreeMap::new();
    let metrics = [
        ("snmp_if_oper_status", "oper"),
        ("snmp_if_in_bits_per_second", "rx"),
        ("snmp_if_out_bits_per_second", "tx"),
        ("snmp_if_in_utilization_percent", "util_in"),
        ("snmp_if_out_utilization_percent", "util_out"),
        ("snmp_if_in_errors_per_second", "err_in"),
        ("snmp_if_out_errors_per_second", "err_out"),
    ];
    for (metric, key) in metrics {
        for id in core.store.select(Some(metric), &[exactly("device", device)]) {
            let (Some(l), Some((_, v))) = (core.store.labels(id), core.store.last(id)) else {
                continue;
            };
            let name = l
                .labels
                .get("ifName")
                .or_else(|| l.labels.get("ifIndex"))
                .cloned()
                .unwrap_or_default();
            by_if.entry(name).or_default().insert(key, v);
        }
    }
    let bits = |v: Option<&f64>| {
        v.map_or_else(String::new, |v| {
            let (n, u) = if *v >= 1e9 {
                (v / 1e9, "Gbit/s")
            } else if *v >= 1e6 {
                (v / 1e6, "Mbit/s")
            } else {
                (v / 1e3, "kbit/s")
            };
            format!("{n:.1} {u}")
        })
    };
    by_if
        .into_iter()
        .map(|(name, v)| {
            let status = match v.get("oper").copied() {
                Some(1.0) => "up",
                Some(2.0) => "down",
                Some(_) => "other",
                None => "",
            };
            let util = match (v.get("util_in"), v.get("util_out")) {
                (Some(i), Some(o)) => format!("{i:.1}% / {o:.1}%"),
                _ => String::new(),
            };
            let errors = v.get("err_in").copied().unwrap_or(0.0) + v.get("err_out").copied().unwrap_or(0.0);
            context! {
                name => name, status => status, rx => bits(v.get("rx")), tx => bits(v.get("tx")),
                util => util, errors => format!("{errors:.2}/s"),
            }
        })
        .collect()
}
