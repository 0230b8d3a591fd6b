//! The console's record pages: on call (now, and a month of the roster
//! with the calendar's holidays), maintenance windows (listed, and made
//! through the API's own checks), reports (generated on demand or stored,
//! downloaded through the API's handlers) and, for admins, the audit log.

use std::collections::HashMap;
use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{Extension, Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use jiff::civil::Date;
use minijinja::{Value, context};

use super::Signed;
use super::pages::{base, error_page, internal, local, local_ms, page, render};
use crate::Core;
use crate::http::guard::Caller;

/// `GET /oncall?month=YYYY-MM`.
pub async fn oncall(
    State(core): State<Arc<Core>>,
    Extension(me): Extension<Signed>,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    let s = &me.session;
    let lang = s.lang;
    let tz = core.config.calendar.time_zone().clone();
    let now = core.clock.now_ms();
    let Ok(now_ts) = jiff::Timestamp::from_millisecond(now) else {
        return internal("the clock is out of range");
    };
    let today = now_ts.to_zoned(tz.clone()).date();
    let first = match q.get("month") {
        None => today.first_of_month(),
        Some(m) => match format!("{m}-01").parse::<Date>() {
            Ok(d) => d,
            Err(_) => {
                return error_page(
                    s,
                    StatusCode::BAD_REQUEST,
                    &format!("month={m:?}: expected YYYY-MM"),
                );
            }
        },
    };
    let people = |d: &watchpost_model::api::OnCall| {
        d.on_duty
            .iter()
            .map(|m| match &m.phone {
                Some(p) => format!("{} ({p})", m.name),
                None => m.name.clone(),
            })
            .collect::<Vec<_>>()
            .join(", ")
    };
    let roster = &core.config.notify.roster;
    let now_duty: Vec<Value> = roster
        .on_duty(now_ts)
        .iter()
        .map(|d| {
            context! {
                team => d.team.clone(), people => people(d),
                lead => d.lead.as_ref().map(|m| m.name.clone()).unwrap_or_default(),
                managers => d.managers.iter().map(|m| m.name.clone()).collect::<Vec<_>>().join(", "),
                until => d.until.as_deref().map(|u| local(&core, u)).unwrap_or_default(),
            }
        })
        .collect();
    let at = |d: Date, hour: i8| {
        d.at(hour, 0, 0, 0)
            .to_zoned(tz.clone())
            .map(|z| {
                roster
                    .on_duty(z.timestamp())
                    .iter()
                    .filter(|o| !o.on_duty.is_empty())
                    .map(|o| format!("{}: {}", o.team, people(o)))
                    .collect::<Vec<_>>()
                    .join("; ")
            })
            .unwrap_or_default()
    };
    let calendar = &core.config.calendar;
    let weekdays = match lang {
        super::i18n::Lang::Zh => ["周一", "周二", "周三", "周四", "周五", "周六", "周日"],
        super::i18n::Lang::En => ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"],
    };
    let mut days = Vec::new();
    let mut d = first;
    while d.month() == first.month() {
        let working = calendar.is_working_day(d);
        let kind = match calendar.holiday(d) {
            Some(h) => h.to_string(),
            None if working => lang.word("working_day").to_string(),
            None => lang.word("rest_day").to_string(),
        };
        days.push(context! {
            date => d.to_string(),
            weekday => weekdays[d.weekday().to_monday_zero_offset() as usize],
            kind => kind, working => working, today => d == today,
            day => at(d, 9), night => at(d, 21),
        });
        match d.tomorrow() {
            Ok(n) => d = n,
            Err(_) => break,
        }
    }
    let month = |d: Date| d.strftime("%Y-%m").to_string();
    let prev = first.yesterday().map(month).unwrap_or_default();
    let next = first.last_of_month().tomorrow().map(month).unwrap_or_default();
    render(
        "oncall.html",
        context! {
            ..base(s, "oncall", &format!("/oncall?month={}", month(first))),
            ..context! {
                now_duty => now_duty, days => days, month => month(first),
                prev_month => prev, next_month => next,
            }
        },
    )
}

/// `GET /maintenance`.
pub async fn maintenance(State(core): State<Arc<Core>>, Extension(me): Extension<Signed>) -> Response {
    maintenance_page(&core, &me, None, StatusCode::OK).await
}

async fn maintenance_page(
    core: &Core,
    me: &Signed,
    flash: Option<(String, &str)>,
    status: StatusCode,
) -> Response {
    let s = &me.session;
    let now = core.clock.now_ms();
    let all = match core.db.windows().await {
        Ok(w) => w,
        Err(e) => return internal(e),
    };
    let windows: Vec<Value> = all
        .iter()
        .rev()
        .take(500)
        .map(|w| {
            let state = if w.active(now) {
                "active"
            } else if w.starts_at_ms > now {
                "planned"
            } else {
                "ended"
            };
            let any = s.lang.word("any");
            context! {
                id => w.id, state => s.lang.word(&format!("w_{state}")),
                host => if w.hosts.is_empty() { w.host.clone().unwrap_or_else(|| any.to_string()) } else { w.hosts.join(", ") },
                rule => if w.rules.is_empty() { w.rule.clone().unwrap_or_else(|| any.to_string()) } else { w.rules.join(", ") },
                starts => local_ms(core, w.starts_at_ms), ends => local_ms(core, w.ends_at_ms),
                reason => w.reason.clone(), ticket => w.ticket.clone(), by => w.created_by.clone(),
                change => w.change_id,
            }
        })
        .collect();
    let ctx = context! { windows => windows };
    page(
        "maintenance.html",
        base(s, "maintenance", "/maintenance"),
        flash,
        ctx,
        status,
    )
}

/// A `datetime-local` value (`YYYY-MM-DDTHH:MM`, the calendar's zone) as RFC 3339.
fn civil_to_rfc3339(core: &Core, name: &str, v: &str) -> Result<String, String> {
    v.parse::<jiff::civil::DateTime>()
        .ok()
        .and_then(|c| c.to_zoned(core.config.calendar.time_zone().clone()).ok())
        .map(|z| z.timestamp().to_string())
        .ok_or_else(|| format!("{name}={v:?}: expected a date and time"))
}

/// `POST /maintenance`: host, rule, starts_at, ends_at, reason, ticket;
/// checked and stored as `POST /api/v1/silences` does.
pub async fn add_window(
    State(core): State<Arc<Core>>,
    Extension(me): Extension<Signed>,
    Extension(caller): Extension<Caller>,
    body: Bytes,
) -> Response {
    let f = super::form_fields(&body);
    let text = |k: &str| f.get(k).map(|v| v.trim().to_string()).filter(|v| !v.is_empty());
    let time = |k: &str| text(k).map(|v| civil_to_rfc3339(&core, k, &v)).transpose();
    let (starts, ends) = match (time("starts_at"), time("ends_at")) {
        (Ok(s), Ok(Some(e))) => (s, e),
        (Ok(_), Ok(None)) => {
            return maintenance_page(
                &core,
                &me,
                Some(("a maintenance window needs ends_at".into(), "error")),
                StatusCode::BAD_REQUEST,
            )
            .await;
        }
        (Err(e), _) | (_, Err(e)) => {
            return maintenance_page(&core, &me, Some((e, "error")), StatusCode::BAD_REQUEST).await;
        }
    };
    let body = watchpost_model::api::MaintenanceBody {
        // Read only when the API is open (no users): the console's user.
        by: me.session.user.clone(),
        host: text("host"),
        rule: text("rule"),
        matchers: Default::default(),
        starts_at: starts,
        ends_at: ends,
        reason: text("reason").unwrap_or_default(),
        ticket: text("ticket").unwrap_or_default(),
    };
    let json = match serde_json::to_vec(&body) {
        Ok(j) => j,
        Err(e) => return internal(e),
    };
    match crate::http::add_window(State(core.clone()), Extension(caller), Bytes::from(json)).await {
        Ok(_) => Redirect::to("/maintenance").into_response(),
        Err(e) => {
            let status = e.status;
            maintenance_page(&core, &me, Some((e.message, "error")), status).await
        }
    }
}

/// `GET /reports`: generate one, or download a stored one.
pub async fn reports(State(core): State<Arc<Core>>, Extension(me): Extension<Signed>) -> Response {
    let s = &me.session;
    let now = core.clock.now_ms();
    let stored = match core.db.reports(None, None, 200).await {
        Ok(r) => r,
        Err(e) => return internal(e),
    };
    let tz = core.config.calendar.time_zone();
    let stored: Vec<Value> = stored
        .iter()
        .map(|r| {
            context! {
                id => r.id, kind => r.kind.clone(), period => r.period.clone(), version => r.version,
                format => r.format.clone(), size => format!("{:.1} KiB", r.bytes as f64 / 1024.0),
                at => local(&core, &r.generated_at), by => r.generated_by.clone(),
            }
        })
        .collect();
    render(
        "reports.html",
        context! {
            ..base(s, "reports", "/reports"),
            ..context! {
                stored => stored, formats => vec!["pdf", "xlsx", "csv", "json"],
                last_month => crate::reports::last_month(tz, now),
                yesterday => crate::reports::today(tz, now, 1),
            }
        },
    )
}

/// `GET /audit?actor=`: the newest 500 entries (admins only).
pub async fn audit(
    State(core): State<Arc<Core>>,
    Extension(me): Extension<Signed>,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    let actor = q
        .get("actor")
        .map(|a| a.trim().to_string())
        .filter(|a| !a.is_empty());
    let entries = match core.access.audit_log(actor.clone(), 500).await {
        Ok(e) => e,
        Err(e) => return internal(e),
    };
    let entries: Vec<Value> = entries
        .iter()
        .map(|a| {
            context! {
                at => local(&core, &a.at), actor => a.actor.clone(), role => a.role.map(|r| r.as_str()),
                address => a.address.clone(), method => a.method.clone(), path => a.path.clone(),
                status => a.status, detail => a.detail.clone(),
            }
        })
        .collect();
    render(
        "audit.html",
        context! {
            ..base(&me.session, "audit", "/audit"),
            ..context! { entries => entries, actor => actor.unwrap_or_default() }
        },
    )
}

/// `GET /inspections?date=`: the day's checklist to tick, sign and review.
pub async fn inspections(
    State(core): State<Arc<Core>>,
    Extension(me): Extension<Signed>,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    let date = q.get("date").cloned().filter(|d| !d.is_empty());
    inspections_page(&core, &me, date, None, StatusCode::OK).await
}

async fn inspections_page(
    core: &Arc<Core>,
    me: &Signed,
    date: Option<String>,
    flash: Option<(String, &str)>,
    status: StatusCode,
) -> Response {
    let s = &me.session;
    let lang = s.lang;
    let mut params = HashMap::new();
    if let Some(d) = &date {
        params.insert("date".to_string(), d.clone());
    }
    let day = match crate::http::inspections::show(State(core.clone()), Query(params)).await {
        Ok(d) => d.0,
        Err(e) => return error_page(s, e.status, &e.message),
    };
    let items: Vec<Value> = day
        .items
        .iter()
        .map(|i| {
            let e = i.entry.as_ref();
            context! {
                id => i.item.id.clone(), name => i.item.name.clone(), scope => i.item.scope.clone(),
                result => e.map(|e| e.result.as_str()),
                result_name => e.map(|e| lang.word(e.result.as_str())),
                remark => e.map(|e| e.remark.clone()), by => e.map(|e| e.by.clone()),
                at => e.map(|e| local(core, &e.at)), fault => e.and_then(|e| e.fault_id),
            }
        })
        .collect();
    let sig = |x: &Option<watchpost_model::inspections::Signature>| {
        x.as_ref()
            .map(|x| context! { by => x.by.clone(), remark => x.remark.clone() })
    };
    let view = context! {
        date => day.date.clone(), due => day.due, done => day.done, abnormal => day.abnormal,
        signed => sig(&day.signed), reviewed => sig(&day.reviewed),
        signed_at => day.signed.as_ref().map(|x| local(core, &x.at)),
        reviewed_at => day.reviewed.as_ref().map(|x| local(core, &x.at)),
    };
    let ctx = context! {
        day => view, items => items,
        can_review => s.role >= watchpost_model::api::Role::Approver,
    };
    let frame = base(s, "inspections", &format!("/inspections?date={}", day.date));
    page("inspections.html", frame, flash, ctx, status)
}

/// `POST /inspections/check`: date, item, result, remark, open_fault, why;
/// checked and recorded as `POST /api/v1/inspections/checks` does.
pub async fn inspection_check(
    State(core): State<Arc<Core>>,
    Extension(me): Extension<Signed>,
    Extension(caller): Extension<Caller>,
    body: Bytes,
) -> Response {
    let f = super::form_fields(&body);
    let text = |k: &str| f.get(k).map(|v| v.trim().to_string()).filter(|v| !v.is_empty());
    let check = watchpost_model::inspections::CheckBody {
        item: text("item").unwrap_or_default(),
        result: text("result").unwrap_or_default(),
        remark: text("remark"),
        date: text("date"),
        why: text("why"),
        open_fault: text("open_fault"),
        by: Some(me.session.user.clone()),
    };
    let json = match serde_json::to_vec(&check) {
        Ok(j) => j,
        Err(e) => return internal(e),
    };
    let date = text("date");
    match crate::http::inspections::check(State(core.clone()), Extension(caller), Bytes::from(json)).await {
        Ok(_) => Redirect::to(&format!("/inspections?date={}", date.unwrap_or_default())).into_response(),
        Err(e) => inspections_page(&core, &me, date, Some((e.message, "error")), e.status).await,
    }
}

/// `POST /inspections/{date}/sign|review`: remark.
pub async fn inspection_sign(
    State(core): State<Arc<Core>>,
    Extension(me): Extension<Signed>,
    Extension(caller): Extension<Caller>,
    Path((date, action)): Path<(String, String)>,
    body: Bytes,
) -> Response {
    let f = super::form_fields(&body);
    let sign = watchpost_model::inspections::SignBody {
        remark: f
            .get("remark")
            .map(|r| r.trim().to_string())
            .filter(|r| !r.is_empty()),
        by: Some(me.session.user.clone()),
    };
    let json = match serde_json::to_vec(&sign) {
        Ok(j) => j,
        Err(e) => return internal(e),
    };
    match crate::http::inspections::sign(
        State(core.clone()),
        Extension(caller),
        Path((date.clone(), action)),
        Bytes::from(json),
    )
    .await
    {
        Ok(_) => Redirect::to(&format!("/inspections?date={date}")).into_response(),
        Err(e) => inspections_page(&core, &me, Some(date), Some((e.message, "error")), e.status).await,
    }
}
