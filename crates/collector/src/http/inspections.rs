//! `/api/v1/inspections`: the daily inspection record's checklist.
//! Recording an item and signing need `operator`; reviewing `approver`
//! (the guard) and someone other than the inspector (the fault stage).
//! After signing, a recording is an amendment and needs `why`.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Extension, Path, Query, State};
use axum::http::StatusCode;
use watchpost_model::Severity;
use watchpost_model::api::FaultSource;
use watchpost_model::inspections::{CheckBody, InspectionDay, InspectionResult, SignBody};

use super::{ApiError, actor, guard, refused};
use crate::Core;
use crate::faults::{InspectionOp, ReportedFault};
use crate::reports::{self, ReportError};

fn bad(e: ReportError) -> ApiError {
    match e {
        ReportError::Bad(m) => ApiError::bad_request(m),
        ReportError::Failed(m) => ApiError::internal(m),
    }
}

fn day_of(core: &Core, date: Option<&str>) -> Result<reports::Day, ApiError> {
    let now = core.clock.now_ms();
    let tz = core.config.calendar.time_zone();
    let date = date.map_or_else(|| reports::today(tz, now, 0), str::to_string);
    reports::parse_day(&date, tz, now).map_err(bad)
}

async fn answer(core: &Core, day: jiff::civil::Date) -> Result<Json<InspectionDay>, ApiError> {
    reports::inspection_day(core, day).await.map(Json).map_err(bad)
}

/// `GET /api/v1/inspections?date=YYYY-MM-DD` (default today).
pub(crate) async fn show(
    State(core): State<Arc<Core>>,
    Query(params): Query<HashMap<String, String>>,
) -> Result<Json<InspectionDay>, ApiError> {
    if let Some(k) = params.keys().find(|k| k.as_str() != "date") {
        return Err(ApiError::bad_request(format!(
            "unknown parameter {k:?}: use date"
        )));
    }
    let day = day_of(&core, params.get("date").map(String::as_str))?;
    answer(&core, day.date).await
}

/// `POST /api/v1/inspections/checks`: records an item's result; with
/// `open_fault` an abnormal finding also opens a reported fault.
pub(crate) async fn check(
    State(core): State<Arc<Core>>,
    Extension(caller): Extension<guard::Caller>,
    body: Bytes,
) -> Result<(StatusCode, Json<InspectionDay>), ApiError> {
    let b: CheckBody =
        serde_json::from_slice(&body).map_err(|e| ApiError::bad_request(format!("request body: {e}")))?;
    let checklist = &core.config.checklist;
    let Some(item) = checklist.get(b.item.trim()) else {
        let known: Vec<&str> = checklist.items.iter().map(|i| i.item.id.as_str()).collect();
        return Err(ApiError::bad_request(if known.is_empty() {
            format!(
                "item={:?}: no inspection items are declared (collector.inspections names the checklist file)",
                b.item
            )
        } else {
            format!(
                "item={:?} is not declared in the checklist: the items are {}",
                b.item,
                known.join(", ")
            )
        }));
    };
    let result = InspectionResult::parse(&b.result).ok_or_else(|| {
        ApiError::bad_request(format!("result={:?}: expected normal or abnormal", b.result))
    })?;
    let day = day_of(&core, b.date.as_deref())?;
    let by = actor(
        &core,
        &caller,
        b.by.clone().unwrap_or_default(),
        "an inspection check",
    )?;
    let calendar = &core.config.calendar;
    if !item.due.on(day.date, calendar) {
        return Err(ApiError::bad_request(format!(
            "item {:?} is not due on {} (days = {:?})",
            item.item.id, day.date, item.item.days
        )));
    }
    let remark = b.remark.clone().unwrap_or_default().trim().to_string();
    if result == InspectionResult::Abnormal && remark.is_empty() {
        return Err(ApiError::bad_request(
            "an abnormal result needs a remark saying what was found (--remark)",
        ));
    }
    let date = day.date.to_string();
    let why = b
        .why
        .clone()
        .map(|w| w.trim().to_string())
        .filter(|w| !w.is_empty());
    let severity = match &b.open_fault {
        None => None,
        Some(_) if result != InspectionResult::Abnormal => {
            return Err(ApiError::bad_request("open_fault is for an abnormal result only"));
        }
        Some(s) => Some(
            s.trim()
                .parse::<Severity>()
                .map_err(|e| ApiError::bad_request(format!("open_fault: {e}")))?,
        ),
    };
    // Refuse before a fault is opened for a recording that would be refused.
    let rec = core
        .db
        .inspection_day(date.clone())
        .await
        .map_err(|e| ApiError::internal(e.to_string()))?;
    if let Some(s) = &rec.signed
        && why.is_none()
    {
        return Err(ApiError::conflict(format!(
            "the record of {date} was signed by {}: a correction is an amendment and needs why (--why)",
            s.by
        )));
    }
    let now = core.clock.now_ms();
    let fault_id = match severity {
        None => None,
        Some(severity) => {
            let (key, value) = match item.item.scope.split_once(':') {
                Some(("room", r)) => ("room".to_string(), r.to_string()),
                Some((_, g)) => g
                    .split_once('=')
                    .map(|(k, v)| (k.to_string(), v.to_string()))
                    .unwrap_or_default(),
                None => Default::default(),
            };
            let mut labels = BTreeMap::from([("inspection_item".to_string(), item.item.id.clone())]);
            if !key.is_empty() {
                labels.insert(key, value.clone());
            }
            let fault = ReportedFault {
                rule: None,
                source: FaultSource::Reported,
                severity,
                host: if value.is_empty() {
                    item.item.id.clone()
                } else {
                    value
                },
                summary: format!("巡检异常 {}: {remark}", item.item.name),
                reporter: None,
                labels,
                opened_at_ms: now,
                entered_at_ms: now,
                entered_by: by.clone(),
            };
            Some(core.faults.report(fault).await.map_err(|e| refused("fault", e))?)
        }
    };
    core.faults
        .inspection(
            &date,
            InspectionOp::Check {
                item: item.item.id.clone(),
                result,
                remark,
                why,
                fault_id,
            },
            &by,
            now,
        )
        .await
        .map_err(|e| refused("inspection", e))?;
    let Json(d) = answer(&core, day.date).await?;
    Ok((StatusCode::CREATED, Json(d)))
}

/// `POST /api/v1/inspections/{date}/sign` and `/review`.
pub(crate) async fn sign(
    State(core): State<Arc<Core>>,
    Extension(caller): Extension<guard::Caller>,
    Path((date, action)): Path<(String, String)>,
    body: Bytes,
) -> Result<Json<InspectionDay>, ApiError> {
    let b: SignBody = if body.is_empty() {
        SignBody::default()
    } else {
        serde_json::from_slice(&body).map_err(|e| ApiError::bad_request(format!("request body: {e}")))?
    };
    let day = day_of(&core, Some(&date))?;
    let remark = b.remark.clone().unwrap_or_default().trim().to_string();
    let op = match action.as_str() {
        "sign" => {
            let d = reports::inspection_day(&core, day.date).await.map_err(bad)?;
            let open: Vec<&str> = d
                .items
                .iter()
                .filter(|i| i.entry.is_none())
                .map(|i| i.item.id.as_str())
                .collect();
            if !open.is_empty() && d.signed.is_none() {
                return Err(ApiError::conflict(format!(
                    "{} item(s) due on {} are not recorded yet: {}",
                    open.len(),
                    day.date,
                    open.join(", ")
                )));
            }
            InspectionOp::Sign { remark }
        }
        "review" => InspectionOp::Review { remark },
        o => {
            return Err(ApiError::not_found(format!(
                "no inspection action {o:?}: use sign or review"
            )));
        }
    };
    let by = actor(&core, &caller, b.by.clone().unwrap_or_default(), &action)?;
    let now = core.clock.now_ms();
    core.faults
        .inspection(&day.date.to_string(), op, &by, now)
        .await
        .map_err(|e| refused("inspection", e))?;
    // Keep the record as signed (or reviewed) among the stored reports.
    match reports::daily_report(&core, &day.date.to_string(), &core.config.reports.language).await {
        Ok(data) => {
            if let Err(e) = reports::store(
                &core,
                &data,
                reports::Format::Html,
                &core.config.reports.language,
                &by,
            )
            .await
            {
                tracing::warn!(date = %day.date, error = %e, "the signed inspection record could not be stored");
            }
        }
        Err(e) => {
            tracing::warn!(date = %day.date, error = %e, "the signed inspection record could not be made")
        }
    }
    answer(&core, day.date).await
}
