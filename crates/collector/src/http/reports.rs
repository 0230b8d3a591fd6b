//! `GET /api/v1/reports/monthly?month=&format=&lang=&table=` and
//! `GET /api/v1/reports/daily?date=&format=&lang=&table=` (generate,
//! store, answer), `GET /api/v1/reports` (the stored ones) and
//! `GET /api/v1/reports/{id}` (one stored file, checked against its hash).

use std::collections::HashMap;
use std::sync::Arc;

use axum::Json;
use axum::extract::{Extension, Path, Query, State};
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use watchpost_model::reports::StoredReport;

use super::{ApiError, guard};
use crate::Core;
use crate::reports::{self, Format, ReportError};

fn api_error(e: ReportError) -> ApiError {
    match e {
        ReportError::Bad(m) => ApiError::bad_request(m),
        ReportError::Failed(m) => ApiError::internal(m),
    }
}

fn file_response(r: &StoredReport, bytes: Vec<u8>) -> Response {
    let ctype = match r.format.as_str() {
        "html" => "text/html; charset=utf-8",
        "json" => "application/json",
        "xlsx" => "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
        "pdf" => "application/pdf",
        _ => "text/csv; charset=utf-8",
    };
    let mut resp = bytes.into_response();
    let h = resp.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(ctype));
    if let Ok(v) = HeaderValue::from_str(&format!("attachment; filename=\"{}\"", r.file)) {
        h.insert(header::CONTENT_DISPOSITION, v);
    }
    for (k, v) in [
        ("x-watchpost-report-id", r.id.to_string()),
        ("x-watchpost-report-version", r.version.to_string()),
        ("x-watchpost-sha256", r.sha256.clone()),
    ] {
        if let Ok(v) = HeaderValue::from_str(&v) {
            h.insert(k, v);
        }
    }
    resp
}

/// Generates the month's statistics, stores them, answers in `format`.
pub(crate) async fn monthly(
    State(core): State<Arc<Core>>,
    Extension(caller): Extension<guard::Caller>,
    Query(params): Query<HashMap<String, String>>,
) -> Result<Response, ApiError> {
    let (format, lang) = options(&core, &params, "month")?;
    let now = core.clock.now_ms();
    let month = params
        .get("month")
        .cloned()
        .unwrap_or_else(|| reports::last_month(core.config.calendar.time_zone(), now));
    let data = reports::monthly_report(&core, &month).await.map_err(api_error)?;
    respond(&core, &caller, &params, &data, format, &lang).await
}

/// Generates a day's inspection record (default: yesterday), stores it,
/// answers in `format`.
pub(crate) async fn daily(
    State(core): State<Arc<Core>>,
    Extension(caller): Extension<guard::Caller>,
    Query(params): Query<HashMap<String, String>>,
) -> Result<Response, ApiError> {
    let (format, lang) = options(&core, &params, "date")?;
    let now = core.clock.now_ms();
    let date = params
        .get("date")
        .cloned()
        .unwrap_or_else(|| reports::today(core.config.calendar.time_zone(), now, 1));
    let data = reports::daily_report(&core, &date, &lang)
        .await
        .map_err(api_error)?;
    respond(&core, &caller, &params, &data, format, &lang).await
}

/// The format and language asked for; refuses unknown parameters.
fn options(
    core: &Core,
    params: &HashMap<String, String>,
    period: &str,
) -> Result<(Format, String), ApiError> {
    for k in params.keys() {
        if ![period, "format", "lang", "table"].contains(&k.as_str()) {
            return Err(ApiError::bad_request(format!(
                "unknown parameter {k:?}: use {period}, format, lang, table"
            )));
        }
    }
    let format_name = params.get("format").map_or("json", String::as_str);
    let format = Format::parse(format_name).ok_or_else(|| {
        ApiError::bad_request(format!(
            "format={format_name:?}: expected json, html, pdf, csv or xlsx"
        ))
    })?;
    let lang = params
        .get("lang")
        .cloned()
        .unwrap_or_else(|| core.config.reports.language.clone());
    if lang != "zh" && lang != "en" {
        return Err(ApiError::bad_request(format!("lang={lang:?}: expected zh or en")));
    }
    Ok((format, lang))
}

/// Stores `data` in `format` and answers with the file (CSV without
/// `table`: the list of files stored).
async fn respond(
    core: &Core,
    caller: &guard::Caller,
    params: &HashMap<String, String>,
    data: &watchpost_model::reports::ReportData,
    format: Format,
    lang: &str,
) -> Result<Response, ApiError> {
    let table = params.get("table");
    if format == Format::Csv {
        let ids: Vec<&str> = data.tables.iter().map(|t| t.id.as_str()).collect();
        match table {
            Some(t) if ids.contains(&t.as_str()) => {}
            Some(t) => {
                return Err(ApiError::bad_request(format!(
                    "table={t:?}: the {} report has tables {}",
                    data.kind,
                    ids.join(", ")
                )));
            }
            // One file per table: all are stored, the answer lists them.
            None => {}
        }
    }
    let by = if caller.0.user.is_empty() {
        "api".to_string()
    } else {
        caller.0.user.clone()
    };
    let stored = reports::store(core, data, format, lang, &by)
        .await
        .map_err(api_error)?;
    if format == Format::Csv && table.is_none() {
        let files: Vec<StoredReport> = stored
            .into_iter()
            .map(|(r, _)| r)
            .filter(|r| r.format != "json")
            .collect();
        return Ok(Json(files).into_response());
    }
    let want = match (format, table) {
        (Format::Csv, Some(t)) => format!("csv:{t}"),
        (Format::Html, _) => "html".into(),
        (Format::Xlsx, _) => "xlsx".into(),
        (Format::Pdf, _) => "pdf".into(),
        _ => "json".into(),
    };
    let Some((r, bytes)) = stored.into_iter().find(|(r, _)| r.format == want) else {
        return Err(ApiError::internal(
            "the report was stored without the format asked for",
        ));
    };
    Ok(file_response(&r, bytes))
}

/// Stored reports, newest first.
pub(super) async fn list(
    State(core): State<Arc<Core>>,
    Query(params): Query<HashMap<String, String>>,
) -> Result<Json<Vec<StoredReport>>, ApiError> {
    for k in params.keys() {
        if !["kind", "period", "limit"].contains(&k.as_str()) {
            return Err(ApiError::bad_request(format!(
                "unknown parameter {k:?}: use kind, period, limit"
            )));
        }
    }
    let limit = super::limit_of(&params, 200, super::MAX_FAULTS)?;
    core.db
        .reports(params.get("kind").cloned(), params.get("period").cloned(), limit)
        .await
        .map(Json)
        .map_err(|e| ApiError::internal(e.to_string()))
}

/// One stored report's file.
pub(crate) async fn get(State(core): State<Arc<Core>>, Path(id): Path<String>) -> Result<Response, ApiError> {
    let id = super::fault_id(&id)?;
    let all = core
        .db
        .reports(None, None, usize::MAX >> 1)
        .await
        .map_err(|e| ApiError::internal(e.to_string()))?;
    let Some(r) = all.into_iter().find(|r| r.id == id) else {
        return Err(ApiError::not_found(format!("no stored report {id}")));
    };
    let bytes = reports::read_stored(&core, &r).map_err(api_error)?;
    Ok(file_response(&r, bytes))
}
