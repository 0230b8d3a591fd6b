//! `/api/v1/changes`: change requests. Requesting, starting, finishing and
//! cancelling need `operator`; approving and rejecting `approver` (the
//! guard) and a user other than the requester (the fault stage).

use std::collections::HashMap;
use std::sync::Arc;

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Extension, Path, Query, State};
use axum::http::StatusCode;
use watchpost_model::changes::{Change, ChangeActionBody, ChangeBody};
use watchpost_model::format_duration;

use super::{ApiError, actor, guard, limit_of, parse_when, refused, required};
use crate::Core;
use crate::faults::{ChangeOp, ChangeRequest, window_of};

/// Most changes one listing returns.
const MAX_CHANGES: usize = 10_000;

fn change_id(id: &str) -> Result<i64, ApiError> {
    id.parse()
        .map_err(|_| ApiError::bad_request(format!("change id {id:?} is not a number")))
}

async fn load(core: &Core, id: i64) -> Result<Json<Change>, ApiError> {
    match core.db.change(id).await {
        Ok(Some(c)) => Ok(Json(c)),
        Ok(None) => Err(ApiError::not_found(format!("no change {id}"))),
        Err(e) => Err(ApiError::internal(e.to_string())),
    }
}

/// `GET /api/v1/changes?limit=N`, newest first.
pub(crate) async fn list(
    State(core): State<Arc<Core>>,
    Query(params): Query<HashMap<String, String>>,
) -> Result<Json<Vec<Change>>, ApiError> {
    if let Some(k) = params.keys().find(|k| k.as_str() != "limit") {
        return Err(ApiError::bad_request(format!(
            "unknown parameter {k:?}: use limit"
        )));
    }
    let limit = limit_of(&params, 500, MAX_CHANGES)?;
    core.db
        .changes(limit)
        .await
        .map(Json)
        .map_err(|e| ApiError::internal(e.to_string()))
}

/// `GET /api/v1/changes/{id}`: with its timeline and its faults.
pub(crate) async fn show(
    State(core): State<Arc<Core>>,
    Path(id): Path<String>,
) -> Result<Json<Change>, ApiError> {
    load(&core, change_id(&id)?).await
}

/// `POST /api/v1/changes`: a change request, checked field by field.
pub(crate) async fn request(
    State(core): State<Arc<Core>>,
    Extension(caller): Extension<guard::Caller>,
    body: Bytes,
) -> Result<(StatusCode, Json<Change>), ApiError> {
    let b: ChangeBody =
        serde_json::from_slice(&body).map_err(|e| ApiError::bad_request(format!("request body: {e}")))?;
    let what = "a change request";
    let by = actor(&core, &caller, b.by.clone(), what)?;
    let field = |v: String, name: &str| required(Some(v), name, what);
    let now = core.clock.now_ms();
    let starts = parse_when(&core, "starts_at", &b.starts_at, now)?;
    let ends = parse_when(&core, "ends_at", &b.ends_at, now)?;
    if ends <= starts {
        return Err(ApiError::bad_request(format!(
            "ends_at={:?} is not after starts_at={:?}",
            b.ends_at, b.starts_at
        )));
    }
    let max = core.config.change_max_window;
    if (ends - starts) as u128 > max.as_millis() {
        return Err(ApiError::bad_request(format!(
            "the window from starts_at to ends_at is {}, longer than changes.max_window ({})",
            format_duration(std::time::Duration::from_millis((ends - starts) as u64)),
            format_duration(max)
        )));
    }
    if ends <= now {
        return Err(ApiError::bad_request(format!(
            "ends_at={:?} is in the past",
            b.ends_at
        )));
    }
    let request = ChangeRequest {
        title: field(b.title, "title")?,
        content: field(b.content, "content")?,
        reason: field(b.reason, "reason")?,
        impact: field(b.impact, "impact")?,
        test_plan: field(b.test_plan, "test_plan")?,
        rollback_plan: field(b.rollback_plan, "rollback_plan")?,
        starts_at_ms: starts,
        ends_at_ms: ends,
        scope: b.scope,
    };
    // The window its approval will create must check now, not then.
    window_of(0, &request.title, &request.scope, (starts, ends), &by, now)
        .map_err(|e| ApiError::bad_request(format!("hosts, match, rules: {e}")))?;
    let id = core
        .faults
        .change(0, ChangeOp::Request(Box::new(request)), &by, now)
        .await
        .map_err(|e| refused("change", e))?;
    let Json(c) = load(&core, id).await?;
    Ok((StatusCode::CREATED, Json(c)))
}

/// `POST /api/v1/changes/{id}/approve|reject|start|finish|cancel`.
pub(crate) async fn act(
    State(core): State<Arc<Core>>,
    Extension(caller): Extension<guard::Caller>,
    Path((id, action)): Path<(String, String)>,
    body: Bytes,
) -> Result<Json<Change>, ApiError> {
    let id = change_id(&id)?;
    let b: ChangeActionBody =
        serde_json::from_slice(&body).map_err(|e| ApiError::bad_request(format!("request body: {e}")))?;
    let by = actor(&core, &caller, b.by, &action)?;
    let op = match action.as_str() {
        "approve" => ChangeOp::Approve {
            comment: b.comment.filter(|c| !c.trim().is_empty()),
        },
        "reject" => ChangeOp::Reject {
            reason: required(b.reason, "reason", "reject")?,
        },
        "start" => ChangeOp::Start,
        "finish" => match b.result.as_deref() {
            Some("done") => ChangeOp::Finish {
                rolled_back: false,
                reason: b.reason.filter(|r| !r.trim().is_empty()),
            },
            Some("rolled_back") => ChangeOp::Finish {
                rolled_back: true,
                reason: Some(required(b.reason, "reason", "finish as rolled_back")?),
            },
            other => {
                return Err(ApiError::bad_request(format!(
                    "result={other:?}: finish needs \"result\": \"done\" or \"rolled_back\""
                )));
            }
        },
        "cancel" => ChangeOp::Cancel,
        other => {
            return Err(ApiError::not_found(format!(
                "no action {other:?}: use approve, reject, start, finish or cancel"
            )));
        }
    };
    core.faults
        .change(id, op, &by, core.clock.now_ms())
        .await
        .map_err(|e| refused("change", e))?;
    load(&core, id).await
}
