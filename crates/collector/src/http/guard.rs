//! Every request passes here: who is calling (an API token as
//! `Authorization: Bearer`, or `Basic` user and password), whether their
//! role allows the method and path (401 without a valid credential, 403
//! below the role), and, for every write, an entry in the audit log with
//! who, when, from where, what and how it ended, refused ones included.

use std::net::SocketAddr;
use std::sync::Arc;

use axum::body::Body;
use axum::extract::{ConnectInfo, Request, State};
use axum::http::{HeaderMap, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use watchpost_model::api::Role;

use super::ApiError;
use crate::Core;
use crate::access::{AuditRecord, Identity, redact};

/// Largest request body accepted (bodies are small JSON documents).
pub const MAX_BODY_BYTES: usize = 256 * 1024;

/// The caller, for handlers (absent on public paths).
#[derive(Clone, Debug)]
pub struct Caller(pub Identity);

/// The role a request needs; `None`: public.
pub fn required_role(method: &Method, path: &str) -> Option<Role> {
    if path == "/healthz" {
        return None;
    }
    let under = |p: &str| path == p || path.strip_prefix(p).is_some_and(|r| r.starts_with('/'));
    if method == Method::GET || method == Method::HEAD {
        if under("/api/v1/audit")
            || under("/api/v1/users")
            || under("/api/v1/agent-credentials")
            || under("/api/v1/backups")
        {
            return Some(Role::Admin);
        }
        return Some(Role::Viewer);
    }
    if under("/api/v1/changes") && (path.ends_with("/approve") || path.ends_with("/reject")) {
        return Some(Role::Approver);
    }
    // Reviewing a day's inspection record is a manager's step.
    if under("/api/v1/inspections") && path.ends_with("/review") {
        return Some(Role::Approver);
    }
    if under("/api/v1/inspections") {
        return Some(Role::Operator);
    }
    // Starting a drill wakes real people: approvers and admins only.
    if path == "/api/v1/drills" {
        return Some(Role::Approver);
    }
    if under("/api/v1/faults")
        || under("/api/v1/silences")
        || under("/api/v1/changes")
        || under("/api/v1/inventory")
    {
        return Some(Role::Operator);
    }
    // Anyone signed in manages their own tokens (the handler checks whose).
    if path == "/api/v1/tokens" || (under("/api/v1/tokens") && path.ends_with("/revoke")) {
        return Some(Role::Viewer);
    }
    Some(Role::Admin)
}

enum Credential {
    Missing,
    Bearer(String),
    Basic(String, String),
    Malformed,
}

fn credential(headers: &HeaderMap) -> Credential {
    use base64::Engine;
    let Some(value) = headers.get(header::AUTHORIZATION) else {
        return Credential::Missing;
    };
    let Ok(value) = value.to_str() else {
        return Credential::Malformed;
    };
    if let Some(token) = value.strip_prefix("Bearer ") {
        return Credential::Bearer(token.trim().to_string());
    }
    if let Some(b64) = value.strip_prefix("Basic ") {
        let decoded = base64::engine::general_purpose::STANDARD
            .decode(b64.trim())
            .ok()
            .and_then(|d| String::from_utf8(d).ok());
        if let Some((user, password)) = decoded.as_deref().and_then(|d| d.split_once(':')) {
            return Credential::Basic(user.to_string(), password.to_string());
        }
    }
    Credential::Malformed
}

fn unauthorized(message: &str) -> Response {
    let mut r = ApiError {
        status: StatusCode::UNAUTHORIZED,
        code: "unauthenticated",
        message: message.to_string(),
    }
    .into_response();
    r.headers_mut().insert(
        header::WWW_AUTHENTICATE,
        header::HeaderValue::from_static("Bearer realm=\"watchpost\""),
    );
    r
}

/// Who the request is from; the error is the 401 to answer.
async fn identify(core: &Core, headers: &HeaderMap) -> Result<Identity, Response> {
    if !core.config.security.api_users {
        return Ok(Identity {
            user: "anonymous".into(),
            role: Role::Admin,
        });
    }
    let now = core.clock.now_ms();
    let found = match credential(headers) {
        Credential::Missing => {
            return Err(unauthorized(
                "authentication required: send an API token (watchpostctl --token, WATCHPOST_TOKEN) as \"Authorization: Bearer <token>\", or user and password as Basic",
            ));
        }
        Credential::Malformed => {
            return Err(unauthorized(
                "the Authorization header is neither \"Bearer <token>\" nor \"Basic <base64 of user:password>\"",
            ));
        }
        Credential::Bearer(token) => core.access.by_token(&token, now).await,
        Credential::Basic(user, password) => core.access.login(&user, &password).await,
    };
    match found {
        Ok(Some(identity)) => Ok(identity),
        Ok(None) => Err(unauthorized(
            "invalid credentials (unknown, expired or revoked token, wrong password, or disabled user)",
        )),
        Err(e) => {
            tracing::error!(error = %e, "cannot check credentials");
            Err(ApiError::internal("cannot check credentials now").into_response())
        }
    }
}

/// The middleware.
pub async fn guard(State(core): State<Arc<Core>>, req: Request, next: Next) -> Response {
    let method = req.method().clone();
    let path = req.uri().path().to_string();
    if crate::console::is_console_path(&path) {
        return crate::console::guard(core, req, next).await;
    }
    let Some(need) = required_role(&method, &path) else {
        return next.run(req).await;
    };
    let target = req
        .uri()
        .path_and_query()
        .map_or_else(|| path.clone(), |p| p.as_str().to_string());
    let address = req
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|c| c.0.to_string())
        .unwrap_or_default();
    let write = !(method == Method::GET || method == Method::HEAD);
    let identity = identify(&core, req.headers()).await;
    let (mut parts, body) = req.into_parts();
    let (body, detail) = if write {
        match axum::body::to_bytes(body, MAX_BODY_BYTES).await {
            Ok(bytes) => {
                let detail = redact(&bytes);
                (Body::from(bytes), detail)
            }
            Err(_) => {
                let r = ApiError {
                    status: StatusCode::PAYLOAD_TOO_LARGE,
                    code: "too_large",
                    message: format!("request body over {MAX_BODY_BYTES} bytes"),
                }
                .into_response();
                audit(
                    &core,
                    identity.ok(),
                    address,
                    method,
                    target,
                    r.status(),
                    "(body too large)".into(),
                )
                .await;
                return r;
            }
        }
    } else {
        (body, String::new())
    };
    let (response, who) = match identity {
        Err(r) => (r, None),
        Ok(i) if i.role < need => {
            let r = ApiError {
                status: StatusCode::FORBIDDEN,
                code: "forbidden",
                message: format!(
                    "{} {path} needs the {} role; {} is {}",
                    method,
                    need.as_str(),
                    i.user,
                    i.role.as_str()
                ),
            }
            .into_response();
            (r, Some(i))
        }
        Ok(i) => {
            parts.extensions.insert(Caller(i.clone()));
            (next.run(Request::from_parts(parts, body)).await, Some(i))
        }
    };
    if write {
        audit(&core, who, address, method, target, response.status(), detail).await;
    }
    response
}

pub(crate) async fn audit(
    core: &Core,
    identity: Option<Identity>,
    address: String,
    method: Method,
    path: String,
    status: StatusCode,
    detail: String,
) {
    let record = AuditRecord {
        at_ms: core.clock.now_ms(),
        identity,
        address,
        method: method.to_string(),
        path,
        status: status.as_u16(),
        detail,
    };
    if let Err(e) = core.access.audit(record.clone()).await {
        tracing::error!(error = %e, method = %record.method, path = %record.path, "cannot write the audit log");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roles_by_method_and_path() {
        let get = Method::GET;
        let post = Method::POST;
        assert_eq!(required_role(&get, "/healthz"), None);
        assert_eq!(required_role(&get, "/api/v1/faults"), Some(Role::Viewer));
        assert_eq!(required_role(&get, "/metrics"), Some(Role::Viewer));
        assert_eq!(required_role(&get, "/api/v1/audit"), Some(Role::Admin));
        assert_eq!(required_role(&get, "/api/v1/users"), Some(Role::Admin));
        assert_eq!(required_role(&get, "/api/v1/usersx"), Some(Role::Viewer));
        assert_eq!(required_role(&post, "/api/v1/faults/3/ack"), Some(Role::Operator));
        assert_eq!(required_role(&post, "/api/v1/silences"), Some(Role::Operator));
        assert_eq!(required_role(&post, "/api/v1/tokens"), Some(Role::Viewer));
        assert_eq!(
            required_role(&post, "/api/v1/tokens/4/revoke"),
            Some(Role::Viewer)
        );
        assert_eq!(required_role(&post, "/api/v1/users"), Some(Role::Admin));
        assert_eq!(required_role(&post, "/api/v1/agents/x/enroll"), Some(Role::Admin));
        assert_eq!(
            required_role(&Method::DELETE, "/api/v1/faults/3"),
            Some(Role::Operator)
        );
        assert_eq!(required_role(&post, "/anything"), Some(Role::Admin));
        assert_eq!(required_role(&post, "/api/v1/changes"), Some(Role::Operator));
        assert_eq!(
            required_role(&post, "/api/v1/changes/3/start"),
            Some(Role::Operator)
        );
        assert_eq!(
            required_role(&post, "/api/v1/changes/3/approve"),
            Some(Role::Approver)
        );
        assert_eq!(
            required_role(&post, "/api/v1/changes/3/reject"),
            Some(Role::Approver)
        );
        assert_eq!(required_role(&get, "/api/v1/changes/3"), Some(Role::Viewer));
        assert_eq!(required_role(&post, "/api/v1/drills"), Some(Role::Approver));
        assert_eq!(required_role(&get, "/api/v1/drills/4"), Some(Role::Viewer));
    }
}
