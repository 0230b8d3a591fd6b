//! `/api/v1/backups` (admin): the backups in `[backup] dir`, and a backup
//! taken now.

use std::sync::Arc;

use axum::Json;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::StatusCode;
use watchpost_model::api;

use super::ApiError;
use crate::Core;

/// `GET /api/v1/backups` (admin): the backups in `[backup] dir`, newest first.
pub(super) async fn list(State(core): State<Arc<Core>>) -> Result<Json<Vec<api::Backup>>, ApiError> {
    let Some(dir) = core.config.backup.dir.clone() else {
        return Ok(Json(Vec::new()));
    };
    let list = tokio::task::spawn_blocking(move || watchpost_backup::list(&dir))
        .await
        .map_err(|e| ApiError::internal(e.to_string()))?;
    Ok(Json(
        list.into_iter()
            .map(|(path, m)| match m {
                Ok(m) => api::Backup {
                    path: path.display().to_string(),
                    created_at: Some(m.created_at.clone()),
                    files: m.files.len(),
                    bytes: m.bytes(),
                    problem: None,
                },
                Err(e) => api::Backup {
                    path: path.display().to_string(),
                    created_at: None,
                    files: 0,
                    bytes: 0,
                    problem: Some(e),
                },
            })
            .collect(),
    ))
}

/// `POST /api/v1/backups` (admin) `{"dir"?}`: takes a backup now.
pub(super) async fn create(
    State(core): State<Arc<Core>>,
    body: Bytes,
) -> Result<(StatusCode, Json<api::Backup>), ApiError> {
    let b: api::BackupBody = if body.is_empty() {
        api::BackupBody::default()
    } else {
        serde_json::from_slice(&body).map_err(|e| ApiError::bad_request(format!("request body: {e}")))?
    };
    let dir = b
        .dir
        .filter(|d| !d.trim().is_empty())
        .map(std::path::PathBuf::from);
    if dir.is_none() && core.config.backup.dir.is_none() {
        return Err(ApiError::bad_request(
            "no backup folder: give \"dir\" (watchpostctl backup create --dir DIR) or set [backup] dir",
        ));
    }
    match crate::backup::run_once(&core, dir).await {
        Ok((path, m)) => Ok((
            StatusCode::CREATED,
            Json(api::Backup {
                path: path.display().to_string(),
                created_at: Some(m.created_at.clone()),
                files: m.files.len(),
                bytes: m.bytes(),
                problem: None,
            }),
        )),
        Err(e) => Err(ApiError::internal(format!("backup failed: {e}"))),
    }
}
