//! Users, API tokens, agent enrolment and revocation, and the audit log
//! over the API. The role each needs is decided in [`super::guard`]; these
//! handlers check ownership where a role is not enough (a viewer revokes
//! only their own tokens).

use std::collections::HashMap;
use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{Extension, Path, Query, State};
use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::{Json, Router};
use watchpost_model::api::{self, Role};

use super::guard::Caller;
use super::{ApiError, limit_of};
use crate::Core;
use crate::access::AccessError;

/// The routes.
pub fn routes() -> Router<Arc<Core>> {
    Router::new()
        .route("/api/v1/whoami", get(whoami))
        .route("/api/v1/users", get(users).post(add_user))
        .route("/api/v1/users/{name}/{action}", post(user_action))
        .route("/api/v1/tokens", get(tokens).post(add_token))
        .route("/api/v1/tokens/{id}/revoke", post(revoke_token))
        .route("/api/v1/agents/{id}/enroll", post(enroll))
        .route("/api/v1/agents/{id}/revoke", post(revoke_agent))
        .route("/api/v1/agent-credentials", get(agent_credentials))
        .route("/api/v1/audit", get(audit))
}

impl From<AccessError> for ApiError {
    fn from(e: AccessError) -> ApiError {
        match e {
            AccessError::Invalid(m) => ApiError::bad_request(m),
            AccessError::NotFound(m) => ApiError::not_found(m),
            AccessError::Conflict(m) => ApiError::conflict(m),
            AccessError::Forbidden(m) => ApiError {
                status: StatusCode::FORBIDDEN,
                code: "forbidden",
                message: m,
            },
            e @ AccessError::Db { .. } => ApiError::internal(e.to_string()),
        }
    }
}

fn body<T: serde::de::DeserializeOwned + Default>(bytes: &Bytes) -> Result<T, ApiError> {
    if bytes.is_empty() {
        return Ok(T::default());
    }
    serde_json::from_slice(bytes).map_err(|e| ApiError::bad_request(format!("request body: {e}")))
}

fn lifetime(name: &str, text: Option<&str>, default_ms: i64) -> Result<i64, ApiError> {
    match text {
        None => Ok(default_ms),
        Some(t) => watchpost_model::parse_duration(t)
            .map(|d| d.as_millis().min(i64::MAX as u128) as i64)
            .ok()
            .filter(|ms| *ms > 0)
            .ok_or_else(|| {
                ApiError::bad_request(format!(
                    "{name}={t:?}: expected a duration such as \"24h\" or \"90d\""
                ))
            }),
    }
}

async fn whoami(Extension(Caller(me)): Extension<Caller>) -> Json<api::Whoami> {
    Json(api::Whoami {
        user: me.user,
        role: me.role,
    })
}

pub(crate) async fn users(State(core): State<Arc<Core>>) -> Result<Json<Vec<api::User>>, ApiError> {
    Ok(Json(core.access.users().await?))
}

pub(crate) async fn add_user(
    State(core): State<Arc<Core>>,
    bytes: Bytes,
) -> Result<(StatusCode, Json<api::CreatedUser>), ApiError> {
    let b: api::NewUser = body(&bytes)?;
    let role = Role::parse(&b.role).ok_or_else(|| {
        ApiError::bad_request(format!(
            "role {:?}: expected viewer, operator, approver or admin",
            b.role
        ))
    })?;
    let created = core
        .access
        .add_user(&b.name, role, b.password, core.clock.now_ms())
        .await?;
    Ok((StatusCode::CREATED, Json(created)))
}

pub(crate) async fn user_action(
    State(core): State<Arc<Core>>,
    Extension(Caller(me)): Extension<Caller>,
    Path((name, action)): Path<(String, String)>,
) -> Result<StatusCode, ApiError> {
    let disabled = match action.as_str() {
        "disable" => true,
        "enable" => false,
        other => {
            return Err(ApiError::not_found(format!(
                "no action {other:?}: use disable or enable"
            )));
        }
    };
    if disabled && name == me.user {
        return Err(ApiError::conflict("you cannot disable yourself"));
    }
    core.access.set_disabled(&name, disabled).await?;
    Ok(StatusCode::NO_CONTENT)
}

pub(crate) async fn tokens(
    State(core): State<Arc<Core>>,
    Extension(Caller(me)): Extension<Caller>,
) -> Result<Json<Vec<api::ApiToken>>, ApiError> {
    let whose = (me.role != Role::Admin).then_some(me.user);
    Ok(Json(core.access.tokens(whose).await?))
}

pub(crate) async fn add_token(
    State(core): State<Arc<Core>>,
    Extension(Caller(me)): Extension<Caller>,
    bytes: Bytes,
) -> Result<(StatusCode, Json<api::CreatedToken>), ApiError> {
    if !core.config.security.api_users {
        return Err(ApiError::bad_request(
            "the API is open ([security] api = \"open\"): there are no users to give tokens to",
        ));
    }
    let b: api::NewToken = body(&bytes)?;
    let now = core.clock.now_ms();
    let expires = match b.expires_in.as_deref() {
        None => None,
        Some(t) => Some(now + lifetime("expires_in", Some(t), 0)?),
    };
    let created = core.access.create_token(&me.user, &b.name, expires, now).await?;
    Ok((StatusCode::CREATED, Json(created)))
}

pub(crate) async fn revoke_token(
    State(core): State<Arc<Core>>,
    Extension(Caller(me)): Extension<Caller>,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    let id: i64 = id
        .parse()
        .map_err(|_| ApiError::bad_request(format!("token id {id:?} is not a number")))?;
    core.access.revoke_token(id, &me, core.clock.now_ms()).await?;
    Ok(StatusCode::NO_CONTENT)
}

pub(crate) async fn enroll(
    State(core): State<Arc<Core>>,
    Extension(Caller(me)): Extension<Caller>,
    Path(agent): Path<String>,
    bytes: Bytes,
) -> Result<(StatusCode, Json<api::Enrollment>), ApiError> {
    let b: api::EnrollBody = body(&bytes)?;
    const DAY_MS: i64 = 24 * 3600 * 1000;
    let token_ms = lifetime("token_valid_for", b.token_valid_for.as_deref(), DAY_MS)?;
    let credential_ms = lifetime(
        "credential_valid_for",
        b.credential_valid_for.as_deref(),
        365 * DAY_MS,
    )?;
    let e = core
        .access
        .enroll(&agent, token_ms, credential_ms, &me.user, core.clock.now_ms())
        .await?;
    Ok((StatusCode::CREATED, Json(e)))
}

pub(crate) async fn revoke_agent(
    State(core): State<Arc<Core>>,
    Extension(Caller(me)): Extension<Caller>,
    Path(agent): Path<String>,
) -> Result<StatusCode, ApiError> {
    core.access
        .revoke_agent(&agent, &me.user, core.clock.now_ms())
        .await?;
    // A live stream ends now, not at its next reconnect.
    core.agents.kick(
        &agent,
        "unauthenticated",
        &format!("agent {agent:?}'s credential was revoked by {}", me.user),
    );
    Ok(StatusCode::NO_CONTENT)
}

pub(crate) async fn agent_credentials(
    State(core): State<Arc<Core>>,
) -> Result<Json<Vec<api::AgentCredential>>, ApiError> {
    Ok(Json(core.access.agent_credentials().await?))
}

async fn audit(
    State(core): State<Arc<Core>>,
    Query(params): Query<HashMap<String, String>>,
) -> Result<Json<Vec<api::AuditEntry>>, ApiError> {
    for k in params.keys() {
        if !["actor", "limit"].contains(&k.as_str()) {
            return Err(ApiError::bad_request(format!(
                "unknown parameter {k:?}: use actor, limit"
            )));
        }
    }
    let limit = limit_of(&params, 100, 10_000)?;
    Ok(Json(
        core.access.audit_log(params.get("actor").cloned(), limit).await?,
    ))
}
