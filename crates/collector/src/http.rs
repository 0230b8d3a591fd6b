//! The HTTP side: JSON API under `/api/v1/`, `/metrics`, `/healthz`, and
//! the web console everywhere else (`crate::console`, its own guard).
//! Errors are `{"error": {"code", "message"}}` with a fitting status.
//! Every request but `/healthz` passes [`guard`] (who, which role, the audit
//! log); [`admin`] holds users, tokens, agent enrolment and the audit log.
//! Writes are people's actions (fault actions, maintenance windows), checked
//! by the database writer; fault changes themselves come from the rule engine.

pub(crate) mod admin;
mod backups;
pub(crate) mod changes;
mod drills;
mod federate;
pub mod guard;
pub(crate) mod inspections;
mod inventory;
mod metrics;
mod reported;
pub(crate) mod reports;

use std::collections::HashMap;
use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{Extension, Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use watchpost_model::api::{self, ErrorBody, ErrorDetail, FaultStatus};
use watchpost_model::{Severity, parse_duration};

use crate::Core;
use crate::db::FaultFilter;
use crate::history;
use crate::matchers::Matcher;
use crate::store::SeriesId;

/// Most series one query returns.
const MAX_QUERY_SERIES: usize = 10_000;
/// Most faults one listing returns.
const MAX_FAULTS: usize = 10_000;

/// An API error.
pub struct ApiError {
    pub(crate) status: StatusCode,
    pub(crate) code: &'static str,
    pub(crate) message: String,
}

impl ApiError {
    fn bad_request(message: impl Into<String>) -> ApiError {
        ApiError {
            status: StatusCode::BAD_REQUEST,
            code: "bad_request",
            message: message.into(),
        }
    }
    fn not_found(message: impl Into<String>) -> ApiError {
        ApiError {
            status: StatusCode::NOT_FOUND,
            code: "not_found",
            message: message.into(),
        }
    }
    fn conflict(message: impl Into<String>) -> ApiError {
        ApiError {
            status: StatusCode::CONFLICT,
            code: "conflict",
            message: message.into(),
        }
    }
    fn forbidden(message: impl Into<String>) -> ApiError {
        ApiError {
            status: StatusCode::FORBIDDEN,
            code: "forbidden",
            message: message.into(),
        }
    }
    fn internal(message: impl Into<String>) -> ApiError {
        ApiError {
            status: StatusCode::INTERNAL_SERVER_ERROR,
            code: "internal",
            message: message.into(),
        }
    }
}

/// The answer to a refused action on a `what` (fault, change).
fn refused(what: &str, e: crate::faults::ActionError) -> ApiError {
    use crate::faults::ActionError;
    match e {
        ActionError::NotFound(id) => ApiError::not_found(format!("no {what} {id}")),
        ActionError::Conflict(why) => ApiError::conflict(why),
        ActionError::Forbidden(why) => ApiError::forbidden(why),
        ActionError::Db(e) => ApiError::internal(e),
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = ErrorBody {
            error: ErrorDetail {
                code: self.code.to_string(),
                message: self.message,
            },
        };
        (self.status, Json(body)).into_response()
    }
}

/// The router.
pub fn router(core: Arc<Core>) -> Router {
    Router::new()
        .route("/healthz", get(healthz))
        .route("/metrics", get(metrics::metrics))
        .route("/federate", get(federate::federate))
        .route("/api/v1/agents", get(agents))
        .route("/api/v1/series", get(series))
        .route("/api/v1/metric-names", get(metric_names))
        .route("/api/v1/query", get(query))
        .route("/api/v1/faults", get(faults).post(reported::report))
        .route("/api/v1/faults/{id}", get(fault))
        .route("/api/v1/faults/{id}/{action}", post(fault_action))
        .route("/api/v1/deadline", get(deadline))
        .route("/api/v1/oncall", get(oncall))
        .route("/api/v1/silences", get(windows).post(add_window))
        .route("/api/v1/notifications", get(notifications))
        .route("/api/v1/reports", get(reports::list))
        .route("/api/v1/reports/monthly", get(reports::monthly))
        .route("/api/v1/reports/daily", get(reports::daily))
        .route("/api/v1/backups", get(backups::list).post(backups::create))
        .route("/api/v1/inspections", get(inspections::show))
        .route("/api/v1/inspections/checks", post(inspections::check))
        .route("/api/v1/inspections/{date}/{action}", post(inspections::sign))
        .route("/api/v1/reports/{id}", get(reports::get))
        .route("/api/v1/drills", get(drills::list).post(drills::start))
        .route("/api/v1/drills/{id}", get(drills::report))
        .route("/api/v1/inventory", get(inventory::list))
        .route("/api/v1/inventory/history", get(inventory::history))
        .route("/api/v1/inventory/import", post(inventory::import))
        .route("/api/v1/changes", get(changes::list).post(changes::request))
        .route("/api/v1/changes/{id}", get(changes::show))
        .route("/api/v1/changes/{id}/{action}", post(changes::act))
        .merge(admin::routes())
        .merge(crate::console::routes())
        .fallback(|req: axum::extract::Request| async move {
            if crate::console::is_console_path(req.uri().path()) {
                return (StatusCode::NOT_FOUND, "no such console page; start at /").into_response();
            }
            ApiError::not_found("no such endpoint; see /api/v1/agents, /series, /query, /faults")
                .into_response()
        })
        .layer(axum::extract::DefaultBodyLimit::max(guard::MAX_BODY_BYTES))
        .layer(axum::middleware::from_fn_with_state(core.clone(), guard::guard))
        .layer(tower_http::compression::CompressionLayer::new())
        .with_state(core)
}

async fn healthz(State(core): State<Arc<Core>>) -> Json<api::Health> {
    Json(api::Health {
        status: "ok".into(),
        version: crate::VERSION.into(),
        time_zone: Some(core.config.calendar.time_zone_name().to_string()),
    })
}

async fn agents(State(core): State<Arc<Core>>) -> Json<Vec<api::Agent>> {
    Json(core.agents.list(core.clock.now_ms()))
}

/// Splits query parameters into reserved ones and label matchers.
fn selection(
    params: &HashMap<String, String>,
    reserved: &[&str],
) -> Result<(Option<String>, Vec<Matcher>), ApiError> {
    let metric = params.get("metric").cloned();
    if let Some(m) = &metric {
        watchpost_model::names::check_metric_name(m)
            .map_err(|e| ApiError::bad_request(format!("metric: {e}")))?;
    }
    let mut matchers = Vec::new();
    for (k, v) in params {
        if k == "metric" || reserved.contains(&k.as_str()) {
            continue;
        }
        watchpost_model::names::check_label_name(k)
            .map_err(|e| ApiError::bad_request(format!("query parameter {k:?}: {e}")))?;
        matchers.push(Matcher::parse(k, v).map_err(ApiError::bad_request)?);
    }
    matchers.sort_by(|a, b| a.name.cmp(&b.name));
    Ok((metric, matchers))
}

fn select(core: &Core, metric: Option<&str>, matchers: &[Matcher]) -> Result<Vec<SeriesId>, ApiError> {
    if metric.is_none() && matchers.is_empty() {
        return Err(ApiError::bad_request(
            "give metric=NAME and/or label matchers (e.g. ?host=db1); GET /api/v1/metric-names lists the metrics",
        ));
    }
    let ids = core.store.select(metric, matchers);
    if ids.len() > MAX_QUERY_SERIES {
        return Err(ApiError::bad_request(format!(
            "{} series match, more than the limit of {MAX_QUERY_SERIES}: narrow the selection",
            ids.len()
        )));
    }
    Ok(ids)
}

async fn metric_names(State(core): State<Arc<Core>>) -> Json<Vec<api::MetricName>> {
    Json(
        core.store
            .metric_names()
            .into_iter()
            .map(|(metric, series)| api::MetricName { metric, series })
            .collect(),
    )
}

async fn series(
    State(core): State<Arc<Core>>,
    Query(params): Query<HashMap<String, String>>,
) -> Result<Json<Vec<api::Series>>, ApiError> {
    let (metric, matchers) = selection(&params, &[])?;
    let ids = select(&core, metric.as_deref(), &matchers)?;
    let mut out: Vec<api::Series> = ids
        .into_iter()
        .filter_map(|id| {
            let l = core.store.labels(id)?;
            let last = core.store.last(id);
            Some(api::Series {
                metric: l.metric,
                labels: l.labels,
                last_timestamp_ms: last.map(|l| l.0),
                last_value: last.map(|l| l.1),
            })
        })
        .collect();
    out.sort_by(|a, b| (&a.metric, &a.labels).cmp(&(&b.metric, &b.labels)));
    Ok(Json(out))
}

/// A time given as a duration ago (`5m`), RFC 3339, or milliseconds since the epoch.
fn parse_time(name: &str, s: &str, now_ms: i64) -> Result<i64, ApiError> {
    if let Ok(ms) = s.parse::<i64>() {
        return Ok(ms);
    }
    if let Ok(d) = parse_duration(s) {
        return Ok(now_ms - d.as_millis().min(i64::MAX as u128) as i64);
    }
    s.parse::<jiff::Timestamp>().map(|t| t.as_millisecond()).map_err(|_| {
        ApiError::bad_request(format!(
            "{name}={s:?}: expected a duration ago (\"15m\"), an RFC 3339 time or milliseconds since the epoch"
        ))
    })
}

/// A time a person types: what [`parse_time`] takes, or a civil time
/// `YYYY-MM-DD HH:MM[:SS]` (or with a `T`) in the calendar's zone.
pub(crate) fn parse_when(core: &Core, name: &str, s: &str, now_ms: i64) -> Result<i64, ApiError> {
    if let Ok(civil) = s.trim().replacen(' ', "T", 1).parse::<jiff::civil::DateTime>() {
        let tz = core.config.calendar.time_zone().clone();
        return civil
            .to_zoned(tz)
            .map(|z| z.timestamp().as_millisecond())
            .map_err(|e| ApiError::bad_request(format!("{name}={s:?}: {e}")));
    }
    parse_time(name, s, now_ms).map_err(|_| {
        ApiError::bad_request(format!(
            "{name}={s:?}: expected an RFC 3339 time, \"YYYY-MM-DD HH:MM\" in the calendar's zone ({}), or a duration ago (\"20m\")",
            core.config.calendar.time_zone_name()
        ))
    })
}

pub(crate) async fn query(
    State(core): State<Arc<Core>>,
    Query(params): Query<HashMap<String, String>>,
) -> Result<Json<Vec<api::SeriesPoints>>, ApiError> {
    let (metric, matchers) = selection(&params, &["since", "until", "step"])?;
    let now = core.clock.now_ms();
    let since = match params.get("since") {
        Some(s) => parse_time("since", s, now)?,
        None => now - 15 * 60 * 1000,
    };
    let until = match params.get("until") {
        Some(s) => parse_time("until", s, now)?,
        None => i64::MAX,
    };
    if until < since {
        return Err(ApiError::bad_request("until is before since"));
    }
    let step = match params.get("step").map(String::as_str) {
        None | Some("auto") => {
            let span = until.min(now) - since;
            if since >= now - core.store.window_ms() {
                None
            } else if span <= 2 * 86_400_000 {
                Some(history::Step::Minute)
            } else {
                Some(history::Step::Hour)
            }
        }
        Some("raw") => None,
        Some("1m") => Some(history::Step::Minute),
        Some("1h") => Some(history::Step::Hour),
        Some(o) => {
            return Err(ApiError::bad_request(format!(
                "step={o:?}: expected raw, 1m, 1h or auto"
            )));
        }
    };
    let Some(step) = step else {
        let ids = select(&core, metric.as_deref(), &matchers)?;
        let mut out: Vec<api::SeriesPoints> = ids
            .into_iter()
            .filter_map(|id| {
                let l = core.store.labels(id)?;
                Some(api::SeriesPoints {
                    metric: l.metric,
                    labels: l.labels,
                    points: core.store.points(id, since, until),
                    step: "raw".into(),
                    rollup: Vec::new(),
                    missing: Vec::new(),
                })
            })
            .collect();
        out.sort_by(|a, b| (&a.metric, &a.labels).cmp(&(&b.metric, &b.labels)));
        return Ok(Json(out));
    };
    let live = select(&core, metric.as_deref(), &matchers)?;
    let c = core.clone();
    let out = tokio::task::spawn_blocking(move || {
        rollups(&c, metric.as_deref(), &matchers, &live, since, until, step)
    })
    .await
    .map_err(|e| ApiError::internal(e.to_string()))??;
    Ok(Json(out))
}

/// The rollups of the store's series `live` and of the history's series
/// that match, at `step`.
fn rollups(
    core: &Core,
    metric: Option<&str>,
    matchers: &[Matcher],
    live: &[SeriesId],
    since: i64,
    until: i64,
    step: history::Step,
) -> Result<Vec<api::SeriesPoints>, ApiError> {
    let (series, missing) = core
        .history
        .select(
            &core.store,
            metric,
            matchers,
            live,
            (since, until),
            step,
            MAX_QUERY_SERIES,
        )
        .map_err(|e| {
            if e.starts_with("more than") {
                ApiError::bad_request(e)
            } else {
                ApiError::internal(e)
            }
        })?;
    let missing: Vec<api::MissingSpan> = missing
        .into_iter()
        .map(|m| api::MissingSpan {
            from_ms: m.from,
            until_ms: m.until,
            file: m.file,
        })
        .collect();
    let step_name = match step {
        history::Step::Minute => "1m",
        history::Step::Hour => "1h",
    };
    Ok(series
        .into_iter()
        .map(|(l, points)| api::SeriesPoints {
            metric: l.metric,
            labels: l.labels,
            points: Vec::new(),
            step: step_name.into(),
            rollup: points
                .iter()
                .map(|(t, a)| api::RollupPoint {
                    t: *t,
                    min: a.min,
                    max: a.max,
                    mean: a.mean(),
                    count: a.count,
                })
                .collect(),
            missing: missing.clone(),
        })
        .collect())
}

fn list_of<T>(
    name: &str,
    raw: Option<&String>,
    parse: impl Fn(&str) -> Option<T>,
    allowed: &str,
) -> Result<Vec<T>, ApiError> {
    let Some(raw) = raw else { return Ok(Vec::new()) };
    raw.split(',')
        .filter(|s| !s.is_empty())
        .map(|s| {
            parse(s).ok_or_else(|| ApiError::bad_request(format!("{name}={s:?}: expected one of {allowed}")))
        })
        .collect()
}

async fn faults(
    State(core): State<Arc<Core>>,
    Query(params): Query<HashMap<String, String>>,
) -> Result<Json<Vec<api::Fault>>, ApiError> {
    for k in params.keys() {
        if ![
            "status",
            "severity",
            "host",
            "rule",
            "source",
            "opened_from",
            "opened_before",
            "limit",
        ]
        .contains(&k.as_str())
        {
            return Err(ApiError::bad_request(format!(
                "unknown parameter {k:?}: use status, severity, host, rule, source, opened_from, opened_before, limit"
            )));
        }
    }
    let status = list_of(
        "status",
        params.get("status"),
        FaultStatus::parse,
        "open, acknowledged, resolved, closed, suppressed",
    )?;
    let severity = list_of(
        "severity",
        params.get("severity"),
        |s| s.parse::<Severity>().ok(),
        "urgent, general, minor",
    )?;
    let source = list_of(
        "source",
        params.get("source"),
        api::FaultSource::parse,
        "rule, reported, drill",
    )?;
    let limit = limit_of(&params, 500, MAX_FAULTS)?;
    let now = core.clock.now_ms();
    let opened = |k: &str| params.get(k).map(|v| parse_when(&core, k, v, now)).transpose();
    let filter = FaultFilter {
        status,
        severity,
        host: params.get("host").cloned(),
        rule: params.get("rule").cloned(),
        source,
        opened_from_ms: opened("opened_from")?,
        opened_before_ms: opened("opened_before")?,
        limit,
    };
    core.db
        .faults(filter)
        .await
        .map(Json)
        .map_err(|e| ApiError::internal(e.to_string()))
}

/// Parses `limit`: 1..=`max`, `default` when absent.
fn limit_of(params: &HashMap<String, String>, default: usize, max: usize) -> Result<usize, ApiError> {
    match params.get("limit") {
        Some(l) => l
            .parse::<usize>()
            .ok()
            .filter(|n| (1..=max).contains(n))
            .ok_or_else(|| ApiError::bad_request(format!("limit={l:?}: expected 1..={max}"))),
        None => Ok(default),
    }
}

/// The notification outbox: `?fault=ID&status=pending|delivered|failed|cancelled&limit=N`.
async fn notifications(
    State(core): State<Arc<Core>>,
    Query(params): Query<HashMap<String, String>>,
) -> Result<Json<Vec<api::Notification>>, ApiError> {
    for k in params.keys() {
        if !["fault", "status", "limit"].contains(&k.as_str()) {
            return Err(ApiError::bad_request(format!(
                "unknown parameter {k:?}: use fault, status, limit"
            )));
        }
    }
    let fault_id = params.get("fault").map(|f| fault_id(f)).transpose()?;
    let status = params.get("status").cloned();
    if let Some(s) = &status
        && !["pending", "delivered", "failed", "cancelled"].contains(&s.as_str())
    {
        return Err(ApiError::bad_request(format!(
            "status={s:?}: expected pending, delivered, failed or cancelled"
        )));
    }
    let filter = crate::db::NotificationFilter {
        fault_id,
        status,
        limit: limit_of(&params, 500, MAX_FAULTS)?,
    };
    core.db
        .notifications(filter)
        .await
        .map(Json)
        .map_err(|e| ApiError::internal(e.to_string()))
}

fn fault_id(id: &str) -> Result<i64, ApiError> {
    id.parse()
        .map_err(|_| ApiError::bad_request(format!("fault id {id:?} is not a number")))
}

/// One fault with its timeline, or 404.
async fn load_fault(core: &Core, id: i64) -> Result<Json<api::Fault>, ApiError> {
    match core.db.fault(id).await {
        Ok(Some(f)) => Ok(Json(f)),
        Ok(None) => Err(ApiError::not_found(format!("no fault {id}"))),
        Err(e) => Err(ApiError::internal(e.to_string())),
    }
}

async fn fault(State(core): State<Arc<Core>>, Path(id): Path<String>) -> Result<Json<api::Fault>, ApiError> {
    load_fault(&core, fault_id(&id)?).await
}

async fn deadline(
    State(core): State<Arc<Core>>,
    Query(params): Query<HashMap<String, String>>,
) -> Result<Json<api::DeadlineAnswer>, ApiError> {
    let severity: Severity = params
        .get("severity")
        .ok_or_else(|| ApiError::bad_request("severity is required: urgent, general or minor"))?
        .parse()
        .map_err(|e: watchpost_model::UnknownSeverity| ApiError::bad_request(e.to_string()))?;
    let opened = match params.get("opened_at") {
        Some(t) => t.parse::<jiff::Timestamp>().map_err(|_| {
            ApiError::bad_request(format!(
                "opened_at={t:?}: expected an RFC 3339 time such as 2026-10-09T16:00:00+08:00"
            ))
        })?,
        None => jiff::Timestamp::from_millisecond(core.clock.now_ms())
            .map_err(|e| ApiError::internal(e.to_string()))?,
    };
    let (policy, calendar) = (&core.config.policy, &core.config.calendar);
    let d = policy
        .deadlines(calendar, severity, opened)
        .map_err(|e| ApiError::internal(e.to_string()))?;
    let entry = policy.of(severity);
    let respond = policy.explain_respond(calendar, severity, opened);
    Ok(Json(api::DeadlineAnswer {
        severity,
        opened_at: opened.to_string(),
        response_due: d.respond.to_string(),
        resolve_due: d.resolve.to_string(),
        respond,
        resolve: entry.resolve.to_string(),
        calendar: calendar.name().to_string(),
        time_zone: calendar.time_zone_name().to_string(),
    }))
}

fn required(field: Option<String>, name: &str, action: &str) -> Result<String, ApiError> {
    match field.map(|f| f.trim().to_string()) {
        Some(f) if !f.is_empty() => Ok(f),
        _ => Err(ApiError::bad_request(format!(
            "{action} needs a non-empty \"{name}\""
        ))),
    }
}

/// Who acts: the signed-in user, or with an open API the declared `by`.
fn actor(core: &Core, caller: &guard::Caller, by: String, what: &str) -> Result<String, ApiError> {
    if core.config.security.api_users {
        Ok(caller.0.user.clone())
    } else {
        required(Some(by), "by", what)
    }
}

async fn fault_action(
    State(core): State<Arc<Core>>,
    Extension(caller): Extension<guard::Caller>,
    Path((id, action)): Path<(String, String)>,
    body: Bytes,
) -> Result<Json<api::Fault>, ApiError> {
    use crate::faults::FaultAction;
    let id = fault_id(&id)?;
    let b: api::FaultActionBody =
        serde_json::from_slice(&body).map_err(|e| ApiError::bad_request(format!("request body: {e}")))?;
    let by = actor(&core, &caller, b.by, &action)?;
    let act = match action.as_str() {
        "ack" => FaultAction::Ack {
            comment: b.comment.filter(|c| !c.trim().is_empty()),
        },
        "resolve" => FaultAction::Resolve {
            comment: required(b.comment, "comment", "resolve")?,
        },
        "close" => FaultAction::Close {
            cause: required(b.cause, "cause", "close")?,
            handling: required(b.handling, "handling", "close")?,
        },
        "notes" => FaultAction::Note {
            text: required(b.text, "text", "notes")?,
        },
        "assign" => FaultAction::Assign {
            assignee: required(b.assignee, "assignee", "assign")?,
        },
        "feedback" => FaultAction::Feedback {
            satisfaction: match b.satisfaction {
                Some(n @ 1..=5) => n,
                Some(n) => {
                    return Err(ApiError::bad_request(format!(
                        "satisfaction {n}: expected 1 (very dissatisfied) to 5 (very satisfied)"
                    )));
                }
                None => return Err(ApiError::bad_request("feedback needs \"satisfaction\": 1 to 5")),
            },
            comment: b.comment.filter(|c| !c.trim().is_empty()),
        },
        other => {
            return Err(ApiError::not_found(format!(
                "no action {other:?}: use ack, resolve, close, notes, assign or feedback"
            )));
        }
    };
    core.faults
        .act(id, &by, core.clock.now_ms(), act)
        .await
        .map_err(|e| refused("fault", e))?;
    load_fault(&core, id).await
}

async fn oncall(
    State(core): State<Arc<Core>>,
    Query(params): Query<HashMap<String, String>>,
) -> Result<Json<Vec<api::OnCall>>, ApiError> {
    let now = core.clock.now_ms();
    let at = match params.get("at") {
        Some(t) => parse_time("at", t, now)?,
        None => now,
    };
    let at = jiff::Timestamp::from_millisecond(at).map_err(|e| ApiError::bad_request(format!("at: {e}")))?;
    Ok(Json(core.config.notify.roster.on_duty(at)))
}

fn window_view(w: &crate::maintenance::Window, now_ms: i64) -> api::MaintenanceWindow {
    use crate::time::rfc3339;
    api::MaintenanceWindow {
        id: w.id,
        host: w.host.clone(),
        rule: w.rule.clone(),
        matchers: w.matchers.clone(),
        starts_at: rfc3339(w.starts_at_ms),
        ends_at: rfc3339(w.ends_at_ms),
        reason: w.reason.clone(),
        ticket: w.ticket.clone(),
        created_by: w.created_by.clone(),
        created_at: rfc3339(w.created_at_ms),
        active: w.active(now_ms),
        hosts: w.hosts.clone(),
        rules: w.rules.clone(),
        change: w.change_id,
    }
}

async fn windows(State(core): State<Arc<Core>>) -> Result<Json<Vec<api::MaintenanceWindow>>, ApiError> {
    let now = core.clock.now_ms();
    let all = core
        .db
        .windows()
        .await
        .map_err(|e| ApiError::internal(e.to_string()))?;
    Ok(Json(all.iter().rev().map(|w| window_view(w, now)).collect()))
}

pub(crate) async fn add_window(
    State(core): State<Arc<Core>>,
    Extension(caller): Extension<guard::Caller>,
    body: Bytes,
) -> Result<(StatusCode, Json<api::MaintenanceWindow>), ApiError> {
    let b: api::MaintenanceBody =
        serde_json::from_slice(&body).map_err(|e| ApiError::bad_request(format!("request body: {e}")))?;
    let by = actor(&core, &caller, b.by, "a maintenance window")?;
    let reason = required(Some(b.reason), "reason", "a maintenance window")?;
    let ticket = required(
        Some(b.ticket),
        "ticket",
        "a maintenance window (the approved change ticket)",
    )?;
    let now = core.clock.now_ms();
    let time = |name: &str, t: &str| {
        t.parse::<jiff::Timestamp>()
            .map(|t| t.as_millisecond())
            .map_err(|_| ApiError::bad_request(format!("{name}={t:?}: expected an RFC 3339 time")))
    };
    let starts = match &b.starts_at {
        Some(t) => time("starts_at", t)?,
        None => now,
    };
    let ends = time("ends_at", &b.ends_at)?;
    if ends <= now {
        return Err(ApiError::bad_request("ends_at is in the past"));
    }
    let w = crate::maintenance::Window::new(crate::maintenance::WindowSpec {
        id: 0,
        host: b.host,
        rule: b.rule,
        matchers: b.matchers,
        starts_at_ms: starts,
        ends_at_ms: ends,
        reason,
        ticket,
        created_by: by,
        created_at_ms: now,
        ..Default::default()
    })
    .map_err(ApiError::bad_request)?;
    let id = core
        .faults
        .add_window(w.clone())
        .await
        .map_err(|e| ApiError::internal(e.to_string()))?;
    let mut view = window_view(&w, now);
    view.id = id;
    Ok((StatusCode::CREATED, Json(view)))
}
