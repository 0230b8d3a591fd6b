//! `POST /api/v1/drills`, `GET /api/v1/drills[/{id}]`: emergency drills
//! (应急演练). A drill is a fault of source `drill` that goes through the
//! routes, escalation and channels like a real one (through one named
//! route when the request names it), every message marked as a drill; its
//! report says who was told on which channel when, who acknowledged and
//! how fast, which escalation steps ran and which deliveries failed.
//! Drills never count in service statistics.

use std::collections::HashMap;
use std::sync::Arc;

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Extension, Path, Query, State};
use axum::http::StatusCode;
use watchpost_model::Severity;
use watchpost_model::api::{self, DrillBody, FaultSource};
use watchpost_model::names::check_label_name;

use super::{ApiError, actor, fault_id, guard, load_fault};
use crate::Core;
use crate::db::{FaultFilter, NotificationFilter};
use crate::faults::ReportedFault;
use crate::notify::DRILL_ROUTE_LABEL;

/// Starts a drill; answers 201 with its fault record.
pub(super) async fn start(
    State(core): State<Arc<Core>>,
    Extension(caller): Extension<guard::Caller>,
    body: Bytes,
) -> Result<(StatusCode, Json<api::Fault>), ApiError> {
    let b: DrillBody =
        serde_json::from_slice(&body).map_err(|e| ApiError::bad_request(format!("request body: {e}")))?;
    let by = actor(&core, &caller, b.by.clone(), "a drill")?;
    let mut labels = b.labels;
    for k in labels.keys() {
        check_label_name(k).map_err(|e| ApiError::bad_request(format!("labels: {e}")))?;
    }
    let route = match b.route.as_deref().map(str::trim) {
        Some(name) => {
            let Some(r) = core.config.notify.route_named(name) else {
                let named: Vec<&str> = core
                    .config
                    .notify
                    .routes
                    .iter()
                    .filter_map(|r| r.name.as_deref())
                    .collect();
                return Err(ApiError::bad_request(format!(
                    "route={name:?}: no [[route]] has that name ({})",
                    if named.is_empty() {
                        "none has a `name`".to_string()
                    } else {
                        format!("named ones: {}", named.join(", "))
                    }
                )));
            };
            labels.insert(DRILL_ROUTE_LABEL.into(), name.to_string());
            Some(r)
        }
        None => None,
    };
    let severity = match b.severity.as_deref() {
        Some(s) => s
            .trim()
            .parse()
            .map_err(|e: watchpost_model::UnknownSeverity| ApiError::bad_request(format!("severity: {e}")))?,
        None => route
            .and_then(|r| r.severities.first().copied())
            .unwrap_or(Severity::Urgent),
    };
    if let Some(r) = route
        && !r.severities.is_empty()
        && !r.severities.contains(&severity)
    {
        return Err(ApiError::bad_request(format!(
            "severity {severity}: route {:?} takes only {}",
            r.name.as_deref().unwrap_or_default(),
            r.severities
                .iter()
                .map(|s| s.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        )));
    }
    let host = b
        .host
        .map(|h| h.trim().to_string())
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "drill".into());
    let summary = b
        .summary
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "应急演练 emergency drill".into());
    let now = core.clock.now_ms();
    let fault = ReportedFault {
        rule: None,
        source: FaultSource::Drill,
        severity,
        host,
        summary,
        reporter: None,
        labels,
        opened_at_ms: now,
        entered_at_ms: now,
        entered_by: by,
    };
    super::reported::open_entered(&core, fault).await
}

/// The drills, newest first.
pub(super) async fn list(
    State(core): State<Arc<Core>>,
    Query(params): Query<HashMap<String, String>>,
) -> Result<Json<Vec<api::Fault>>, ApiError> {
    for k in params.keys() {
        if k != "limit" {
            return Err(ApiError::bad_request(format!(
                "unknown parameter {k:?}: use limit"
            )));
        }
    }
    let filter = FaultFilter {
        source: vec![FaultSource::Drill],
        limit: super::limit_of(&params, 100, super::MAX_FAULTS)?,
        ..FaultFilter::default()
    };
    core.db
        .faults(filter)
        .await
        .map(Json)
        .map_err(|e| ApiError::internal(e.to_string()))
}

fn seconds_between(from: &str, to: &str) -> Option<f64> {
    let a: jiff::Timestamp = from.parse().ok()?;
    let b: jiff::Timestamp = to.parse().ok()?;
    Some((b.as_millisecond() - a.as_millisecond()) as f64 / 1000.0)
}

/// How drill `id` went.
pub(super) async fn report(
    State(core): State<Arc<Core>>,
    Path(id): Path<String>,
) -> Result<Json<api::DrillReport>, ApiError> {
    let id = fault_id(&id)?;
    let Json(fault) = load_fault(&core, id).await?;
    if fault.source != FaultSource::Drill {
        return Err(ApiError::not_found(format!(
            "fault {id} is not a drill (its source is {})",
            fault.source.as_str()
        )));
    }
    let notifications = core
        .db
        .notifications(NotificationFilter {
            fault_id: Some(id),
            status: None,
            limit: super::MAX_FAULTS,
        })
        .await
        .map_err(|e| ApiError::internal(e.to_string()))?;
    let started_at = fault
        .report
        .as_ref()
        .map_or(fault.opened_at.clone(), |r| r.entered_at.clone());
    let count = |s: &str| notifications.iter().filter(|n| n.status == s).count();
    let mut steps_run: Vec<i64> = notifications
        .iter()
        .filter(|n| n.status == "delivered")
        .map(|n| n.step)
        .collect();
    steps_run.sort_unstable();
    steps_run.dedup();
    let first_delivery_after_s = notifications
        .iter()
        .filter_map(|n| n.sent_at.as_deref())
        .filter_map(|t| seconds_between(&started_at, t))
        .min_by(f64::total_cmp);
    Ok(Json(api::DrillReport {
        started_by: fault
            .report
            .as_ref()
            .map(|r| r.entered_by.clone())
            .unwrap_or_default(),
        route: fault.labels.get(DRILL_ROUTE_LABEL).cloned(),
        delivered: count("delivered"),
        failed: count("failed"),
        pending: count("pending"),
        steps_run,
        first_delivery_after_s,
        acknowledged_by: fault.acknowledged_by.clone(),
        acknowledged_after_s: fault
            .acknowledged_at
            .as_deref()
            .and_then(|t| seconds_between(&started_at, t)),
        started_at,
        notifications,
        fault,
    }))
}
