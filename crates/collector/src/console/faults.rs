//! The fault list (filters, paging) and a fault's page: summary,
//! deadlines and whether each was met, the windows it falls under, a chart
//! of its series, timeline, notifications, and the actions the role allows.

use std::collections::HashMap;
use std::sync::Arc;

use axum::extract::{Extension, Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use minijinja::{Value, context};
use watchpost_model::Severity;
use watchpost_model::api::{FaultSource, FaultStatus};

use super::Signed;
use super::form_fields;
use super::hosts::chart_query;
use super::pages::{
    MAX_LISTED, base, error_page, fault_view, internal, local, local_ms, ms_of, page, render, source_word,
};
use super::session::Session;
use crate::Core;
use crate::db::{FaultFilter, NotificationFilter};

/// Faults per page of the list.
const PAGE_SIZE: usize = 50;

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
                None => {
                    return bad(format!(
                        "status={p:?}: expected open, acknowledged, resolved, closed or suppressed"
                    ));
                }
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
    for (key, slot) in [
        ("opened_from", &mut filter.opened_from_ms),
        ("opened_before", &mut filter.opened_before_ms),
    ] {
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
        let enc: String = form_urlencoded::Serializer::new(String::new())
            .extend_pairs(query)
            .finish();
        format!("/faults?{enc}")
    };
    let here = uri.path_and_query().map_or("/faults", |p| p.as_str()).to_string();
    let opt = |vals: Vec<(&str, &str)>| {
        vals.into_iter()
            .map(|(v, n)| context! { value => v, name => n })
            .collect::<Vec<_>>()
    };
    let statuses = opt([
        FaultStatus::Open,
        FaultStatus::Acknowledged,
        FaultStatus::Resolved,
        FaultStatus::Closed,
        FaultStatus::Suppressed,
    ]
    .into_iter()
    .map(|st| (st.as_str(), lang.status(st)))
    .collect());
    let severities = opt([Severity::Urgent, Severity::General, Severity::Minor]
        .into_iter()
        .map(|sev| (sev.as_str(), lang.severity(sev)))
        .collect());
    let sources = opt([FaultSource::Rule, FaultSource::Reported, FaultSource::Drill]
        .into_iter()
        .map(|src| (src.as_str(), lang.word(source_word(src))))
        .collect());
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
    let flash = q
        .contains_key("done")
        .then(|| me.session.lang.word("action_done").to_string());
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
        return error_page(
            s,
            StatusCode::NOT_FOUND,
            &format!("fault id {id:?} is not a number"),
        );
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
            .map(|w| {
                format!(
                    "#{} {} ({} – {})",
                    w.id,
                    w.reason,
                    local_ms(core, w.starts_at_ms),
                    local_ms(core, w.ends_at_ms)
                )
            })
            .collect(),
        Err(e) => return internal(e),
    };
    // Its series, from an hour before it opened to its resolution (or now).
    let chart = (!f.metric.is_empty()).then(|| {
        let mut labels: Vec<(&str, &str)> = vec![("host", f.host.as_str())];
        labels.extend(
            f.labels
                .iter()
                .filter(|(k, _)| k.as_str() != "host")
                .map(|(k, v)| (k.as_str(), v.as_str())),
        );
        chart_query(&f.metric, &labels)
    });
    let until = f
        .resolved_at
        .as_deref()
        .and_then(ms_of)
        .map(|t| (t + 600_000).min(now));
    let mut view = fault_view(core, lang, &f, now);
    view = context! { ..view, ..context! {
        windows => windows.join("; "),
        chart => chart,
        chart_since => opened - 3_600_000,
        chart_until => until,
        // A fault the hot store still holds is drawn from its raw samples.
        chart_step => if opened >= now - core.store.window_ms() { "raw" } else { "auto" },
    } };
    let here = format!("/faults/{id}");
    let ctx = context! {
        f => view,
        notes => notes.iter().map(|n| context! {
            at => local(core, n.sent_at.as_deref().unwrap_or(&n.created_at)),
            channel => n.channel.clone(), recipient => n.recipient.clone(), status => n.status.clone(), error => n.last_error.clone(),
        }).collect::<Vec<_>>(),
    };
    page("fault.html", base(s, "faults", &here), flash, ctx, status)
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
    let text = |k: &str| {
        fields
            .get(k)
            .map(|v| v.trim().to_string())
            .filter(|v| !v.is_empty())
    };
    let need = |k: &str| text(k).ok_or_else(|| format!("{action} needs a non-empty {k}"));
    let act = match action.as_str() {
        "ack" => Ok(FaultAction::Ack {
            comment: text("comment"),
        }),
        "resolve" => need("comment").map(|comment| FaultAction::Resolve { comment }),
        "close" => need("cause")
            .and_then(|cause| need("handling").map(|handling| FaultAction::Close { cause, handling })),
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
        return error_page(
            s,
            StatusCode::NOT_FOUND,
            &format!("fault id {id:?} is not a number"),
        );
    };
    match core.faults.act(fid, &s.user, core.clock.now_ms(), act).await {
        Ok(_) => Redirect::to(&format!("/faults/{fid}?done=1")).into_response(),
        Err(ActionError::NotFound(_)) => error_page(s, StatusCode::NOT_FOUND, &format!("no fault {fid}")),
        Err(ActionError::Conflict(why)) => {
            fault_page(&core, s, &id, Some((why, "error")), StatusCode::CONFLICT).await
        }
        Err(ActionError::Forbidden(why)) => error_page(s, StatusCode::FORBIDDEN, &why),
        Err(ActionError::Db(e)) => internal(e),
    }
}
