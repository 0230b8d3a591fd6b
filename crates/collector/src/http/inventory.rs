//! `/api/v1/inventory`: the equipment list (设备清单), its history, and the
//! CSV import for what no agent sees. Reading needs `viewer`, importing
//! `operator` (the guard).

use std::collections::HashMap;
use std::sync::Arc;

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Extension, Query, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use watchpost_model::inventory::{InventoryEvent, parse_csv, to_csv};

use super::{ApiError, actor, guard};
use crate::Core;
use crate::faults::{Command, InventoryReport};

fn only(params: &HashMap<String, String>, known: &[&str]) -> Result<(), ApiError> {
    match params.keys().find(|k| !known.contains(&k.as_str())) {
        Some(k) => Err(ApiError::bad_request(format!(
            "unknown parameter {k:?}: use {}",
            known.join(", ")
        ))),
        None => Ok(()),
    }
}

fn flag(params: &HashMap<String, String>, name: &str) -> Result<bool, ApiError> {
    match params.get(name).map(String::as_str) {
        None | Some("false") | Some("0") => Ok(false),
        Some("true") | Some("1") | Some("") => Ok(true),
        Some(v) => Err(ApiError::bad_request(format!("{name}={v:?}: use true or false"))),
    }
}

/// `GET /api/v1/inventory[?kind=&host=&removed=true&format=csv]`.
pub(crate) async fn list(
    State(core): State<Arc<Core>>,
    Query(params): Query<HashMap<String, String>>,
) -> Result<Response, ApiError> {
    only(&params, &["kind", "host", "removed", "format"])?;
    let removed = flag(&params, "removed")?;
    let mut items = core
        .db
        .inventory(removed)
        .await
        .map_err(|e| ApiError::internal(e.to_string()))?;
    if let Some(k) = params.get("kind") {
        items.retain(|i| &i.kind == k);
    }
    if let Some(h) = params.get("host") {
        items.retain(|i| &i.host == h);
    }
    match params.get("format").map(String::as_str) {
        None | Some("json") => Ok(Json(items).into_response()),
        Some("csv") => Ok((
            [
                (header::CONTENT_TYPE, "text/csv; charset=utf-8"),
                (
                    header::CONTENT_DISPOSITION,
                    "attachment; filename=\"inventory.csv\"",
                ),
            ],
            to_csv(&items),
        )
            .into_response()),
        Some(f) => Err(ApiError::bad_request(format!("format={f:?}: use json or csv"))),
    }
}

/// `GET /api/v1/inventory/history[?item=ID]`, oldest first.
pub(crate) async fn history(
    State(core): State<Arc<Core>>,
    Query(params): Query<HashMap<String, String>>,
) -> Result<Json<Vec<InventoryEvent>>, ApiError> {
    only(&params, &["item"])?;
    core.db
        .inventory_history(params.get("item").cloned())
        .await
        .map(Json)
        .map_err(|e| ApiError::internal(e.to_string()))
}

/// `POST /api/v1/inventory/import[?replace=true]`: a CSV with a header line
/// (`name` required; kind, vendor, model, serial, firmware, room, rack,
/// host, notes). Checked whole before anything is written: one bad line
/// and nothing is imported. With `replace`, imported items the file no
/// longer lists are marked removed.
pub(crate) async fn import(
    State(core): State<Arc<Core>>,
    Extension(caller): Extension<guard::Caller>,
    Query(params): Query<HashMap<String, String>>,
    body: Bytes,
) -> Result<(StatusCode, Json<serde_json::Value>), ApiError> {
    only(&params, &["replace", "by"])?;
    let replace = flag(&params, "replace")?;
    let text = std::str::from_utf8(&body)
        .map_err(|e| ApiError::bad_request(format!("the CSV is not UTF-8 (save it as UTF-8): {e}")))?;
    let items = parse_csv(text).map_err(ApiError::bad_request)?;
    let by = actor(
        &core,
        &caller,
        params.get("by").cloned().unwrap_or_default(),
        "an inventory import",
    )?;
    let n = items.len();
    let report = InventoryReport {
        agent: String::new(),
        scope: "import".into(),
        items,
        complete: replace,
        actor: by,
        at_ms: core.clock.now_ms(),
        rule: core.engine.inventory_rule(),
    };
    core.faults
        .write(vec![Command::Inventory(Box::new(report))])
        .await
        .map_err(|e| ApiError::internal(e.to_string()))?;
    Ok((StatusCode::OK, Json(serde_json::json!({ "imported": n }))))
}
