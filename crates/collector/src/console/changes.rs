//! Change requests (变更申请) in the console: the list and a request form
//! (content, reason, impact, test and rollback plans, window, scope), and
//! a change's page with its timeline, the faults opened in its window, the
//! maintenance window its approval made, and the steps its status and the
//! role allow. Each goes through the API's handler, so the same checks hold
//! (an approver other than the requester, a reason to reject or roll back).

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Extension, Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use minijinja::{Value, context};
use watchpost_model::api::Role;
use watchpost_model::changes::{Change, ChangeActionBody, ChangeBody, ChangeScope, ChangeStatus};

use super::pages::{base, error_page, internal, local, page};
use super::{Signed, form_fields};
use crate::Core;
use crate::http::changes as api_changes;
use crate::http::guard::Caller;

/// The request form's fields.
const FORM_FIELDS: &[&str] = &[
    "title",
    "content",
    "reason",
    "impact",
    "test_plan",
    "rollback_plan",
    "starts_at",
    "ends_at",
    "hosts",
    "match",
    "rules",
];

fn status_word(s: ChangeStatus) -> String {
    format!("c_{}", s.as_str())
}

/// A comma-separated form field as a list.
fn list_of(v: Option<&String>) -> Vec<String> {
    v.map(|v| {
        v.split([',', '，', '\n'])
            .map(|p| p.trim().to_string())
            .filter(|p| !p.is_empty())
            .collect()
    })
    .unwrap_or_default()
}

/// `label=value, label=value` as matchers; an item without `=` is an error
/// naming it.
fn matchers_of(v: Option<&String>) -> Result<BTreeMap<String, String>, String> {
    list_of(v)
        .into_iter()
        .map(|p| match p.split_once('=') {
            Some((k, v)) if !k.trim().is_empty() => Ok((k.trim().to_string(), v.trim().to_string())),
            _ => Err(format!("match: {p:?} is not label=value")),
        })
        .collect()
}

fn scope_text(s: &ChangeScope, any: &str) -> String {
    let mut parts = Vec::new();
    if !s.hosts.is_empty() {
        parts.push(s.hosts.join(", "));
    }
    if !s.matchers.is_empty() {
        parts.push(
            s.matchers
                .iter()
                .map(|(k, v)| format!("{k}={v}"))
                .collect::<Vec<_>>()
                .join(", "),
        );
    }
    if !s.rules.is_empty() {
        parts.push(s.rules.join(", "));
    }
    if parts.is_empty() {
        any.to_string()
    } else {
        parts.join(" · ")
    }
}

fn change_view(core: &Core, me: &Signed, c: &Change) -> Value {
    let lang = me.session.lang;
    context! {
        id => c.id, title => c.title.clone(), content => c.content.clone(), reason => c.reason.clone(),
        impact => c.impact.clone(), test_plan => c.test_plan.clone(), rollback_plan => c.rollback_plan.clone(),
        starts => local(core, &c.starts_at), ends => local(core, &c.ends_at),
        scope => scope_text(&c.scope, lang.word("any")),
        status => c.status.as_str(), status_name => lang.word(&status_word(c.status)),
        requested_by => c.requested_by.clone(), requested_at => local(core, &c.requested_at),
        decided_by => c.decided_by.clone(), window => c.window, result_reason => c.result_reason.clone(),
        faults => c.faults.iter().map(|f| context! {
            id => f.id, rule => f.rule.clone(), host => f.host.clone(), status => f.status.clone(),
            summary => f.summary.clone(),
        }).collect::<Vec<_>>(),
        timeline => c.timeline.iter().map(|e| context! {
            at => local(core, &e.at), actor => e.actor.clone(), kind => e.kind.clone(), message => e.message.clone(),
        }).collect::<Vec<_>>(),
    }
}

/// `GET /changes`: newest first.
pub async fn list(State(core): State<Arc<Core>>, Extension(me): Extension<Signed>) -> Response {
    list_page(&core, &me, None, None, StatusCode::OK).await
}

async fn list_page(
    core: &Arc<Core>,
    me: &Signed,
    flash: Option<(String, &str)>,
    form: Option<BTreeMap<String, String>>,
    status: StatusCode,
) -> Response {
    let all = match api_changes::list(State(core.clone()), Query(HashMap::new())).await {
        Ok(Json(c)) => c,
        Err(e) => return internal(e.message),
    };
    let changes: Vec<Value> = all.iter().map(|c| change_view(core, me, c)).collect();
    // A refused request keeps what was typed; every field is there, blank
    // when not.
    let mut fields: BTreeMap<String, String> = FORM_FIELDS
        .iter()
        .map(|k| (k.to_string(), String::new()))
        .collect();
    let typed = form.is_some();
    fields.extend(form.unwrap_or_default());
    let ctx = context! { changes => changes, form => fields, typed => typed };
    page(
        "changes.html",
        base(&me.session, "changes", "/changes"),
        flash,
        ctx,
        status,
    )
}

/// `POST /changes`: title, content, reason, impact, test_plan,
/// rollback_plan, starts_at, ends_at, hosts, rules, match.
pub async fn request(
    State(core): State<Arc<Core>>,
    Extension(me): Extension<Signed>,
    Extension(caller): Extension<Caller>,
    body: Bytes,
) -> Response {
    let mut f = form_fields(&body);
    f.remove("csrf");
    let text = |k: &str| f.get(k).map(|v| v.trim().to_string()).unwrap_or_default();
    let matchers = match matchers_of(f.get("match")) {
        Ok(m) => m,
        Err(e) => return list_page(&core, &me, Some((e, "error")), Some(f), StatusCode::BAD_REQUEST).await,
    };
    let b = ChangeBody {
        by: me.session.user.clone(),
        title: text("title"),
        content: text("content"),
        reason: text("reason"),
        impact: text("impact"),
        test_plan: text("test_plan"),
        rollback_plan: text("rollback_plan"),
        starts_at: text("starts_at"),
        ends_at: text("ends_at"),
        scope: ChangeScope {
            hosts: list_of(f.get("hosts")),
            matchers,
            rules: list_of(f.get("rules")),
        },
    };
    let bytes = match serde_json::to_vec(&b) {
        Ok(j) => Bytes::from(j),
        Err(e) => return internal(e),
    };
    match api_changes::request(State(core.clone()), Extension(caller), bytes).await {
        Ok((_, Json(c))) => Redirect::to(&format!("/changes/{}", c.id)).into_response(),
        Err(e) => list_page(&core, &me, Some((e.message, "error")), Some(f), e.status).await,
    }
}

/// `GET /changes/{id}`.
pub async fn change(
    State(core): State<Arc<Core>>,
    Extension(me): Extension<Signed>,
    Path(id): Path<String>,
) -> Response {
    change_page(&core, &me, &id, None, StatusCode::OK).await
}

async fn change_page(
    core: &Arc<Core>,
    me: &Signed,
    id: &str,
    flash: Option<(String, &str)>,
    status: StatusCode,
) -> Response {
    let s = &me.session;
    let c = match api_changes::show(State(core.clone()), Path(id.to_string())).await {
        Ok(Json(c)) => c,
        Err(e) => return error_page(s, e.status, &e.message),
    };
    let can_decide = s.role >= Role::Approver && c.status == ChangeStatus::Requested;
    let ctx = context! {
        c => change_view(core, me, &c),
        can_decide => can_decide,
        own => c.requested_by == s.user,
    };
    let frame = base(s, "changes", &format!("/changes/{}", c.id));
    page("change.html", frame, flash, ctx, status)
}

/// `POST /changes/{id}/approve|reject|start|finish|cancel`: comment,
/// reason, result.
pub async fn act(
    State(core): State<Arc<Core>>,
    Extension(me): Extension<Signed>,
    Extension(caller): Extension<Caller>,
    Path((id, action)): Path<(String, String)>,
    body: Bytes,
) -> Response {
    let f = form_fields(&body);
    let text = |k: &str| f.get(k).map(|v| v.trim().to_string()).filter(|v| !v.is_empty());
    let b = ChangeActionBody {
        by: me.session.user.clone(),
        comment: text("comment"),
        reason: text("reason"),
        result: text("result"),
    };
    let bytes = match serde_json::to_vec(&b) {
        Ok(j) => Bytes::from(j),
        Err(e) => return internal(e),
    };
    match api_changes::act(
        State(core.clone()),
        Extension(caller),
        Path((id.clone(), action)),
        bytes,
    )
    .await
    {
        Ok(_) => Redirect::to(&format!("/changes/{id}")).into_response(),
        Err(e) => change_page(&core, &me, &id, Some((e.message, "error")), e.status).await,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scope_fields_read_as_lists() {
        let v = "web-1, web-2，db-1\n".to_string();
        assert_eq!(list_of(Some(&v)), ["web-1", "web-2", "db-1"]);
        assert!(list_of(None).is_empty());
        let m = "room=A-201, rack = 3".to_string();
        let m = matchers_of(Some(&m)).expect("matchers");
        assert_eq!(m.get("rack").map(String::as_str), Some("3"));
        let bad = "room".to_string();
        assert_eq!(
            matchers_of(Some(&bad)).expect_err("no ="),
            "match: \"room\" is not label=value"
        );
    }
}
