//! `POST /api/v1/faults`: a fault someone reported (the service hotline),
//! entered by an operator. Checked here, opened by the fault stage.

use std::sync::Arc;

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Extension, State};
use axum::http::StatusCode;
use watchpost_model::Severity;
use watchpost_model::api::{self, ReportBody};
use watchpost_model::names::check_label_name;

use super::{ApiError, actor, guard, load_fault, parse_when, required};
use crate::Core;
use crate::faults::{ActionError, ReportedFault};

/// Opens a reported fault; answers 201 with the record.
pub(super) async fn report(
    State(core): State<Arc<Core>>,
    Extension(caller): Extension<guard::Caller>,
    body: Bytes,
) -> Result<(StatusCode, Json<api::Fault>), ApiError> {
    let b: ReportBody =
        serde_json::from_slice(&body).map_err(|e| ApiError::bad_request(format!("request body: {e}")))?;
    let what = "a reported fault";
    let by = actor(&core, &caller, b.by.clone(), what)?;
    let severity: Severity = b
        .severity
        .trim()
        .parse()
        .map_err(|e: watchpost_model::UnknownSeverity| ApiError::bad_request(format!("severity: {e}")))?;
    let host = required(Some(b.host), "host", what)?;
    let summary = required(Some(b.summary), "summary", what)?;
    for k in b.labels.keys() {
        check_label_name(k).map_err(|e| ApiError::bad_request(format!("labels: {e}")))?;
    }
    if let Some(r) = &b.reporter
        && r.name.trim().is_empty()
    {
        return Err(ApiError::bad_request("reporter.name is empty"));
    }
    let now = core.clock.now_ms();
    let opened = match &b.opened_at {
        Some(t) => parse_when(&core, "opened_at", t, now)?,
        None => now,
    };
    if opened > now {
        return Err(ApiError::bad_request(format!(
            "opened_at={:?} is in the future: give the time the call came in",
            b.opened_at.unwrap_or_default()
        )));
    }
    let calendar = &core.config.calendar;
    if let Some(from) = calendar.covered_from() {
        let day = jiff::Timestamp::from_millisecond(opened)
            .map(|t| t.to_zoned(calendar.time_zone().clone()).date())
            .map_err(|e| ApiError::bad_request(format!("opened_at: {e}")))?;
        if day < from {
            return Err(ApiError::bad_request(format!(
                "opened_at={:?} is before {from}, where the working calendar {} begins: its deadlines cannot be counted",
                b.opened_at.unwrap_or_default(),
                calendar.name()
            )));
        }
    }
    let fault = ReportedFault {
        rule: None,
        source: watchpost_model::api::FaultSource::Reported,
        severity,
        host,
        summary,
        reporter: b.reporter,
        labels: b.labels,
        opened_at_ms: opened,
        entered_at_ms: now,
        entered_by: by,
    };
    open_entered(&core, fault).await
}

/// Opens a checked reported fault or drill; answers 201 with its record.
pub(super) async fn open_entered(
    core: &Core,
    fault: ReportedFault,
) -> Result<(StatusCode, Json<api::Fault>), ApiError> {
    let id = match core.faults.report(fault).await {
        Ok(id) => id,
        Err(ActionError::Conflict(why)) => return Err(ApiError::bad_request(why)),
        Err(e) => return Err(ApiError::internal(e.to_string())),
    };
    let Json(f) = load_fault(core, id).await?;
    Ok((StatusCode::CREATED, Json(f)))
}
