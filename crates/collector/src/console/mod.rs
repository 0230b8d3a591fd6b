//! The web console at `/`: server-rendered pages (minijinja templates
//! embedded in the binary, `templates/`), htmx for the parts that update by
//! themselves, every asset embedded (`assets/`, pinned by `vendor.sh`).
//! Nothing is fetched from elsewhere.
//!
//! [`guard`] stands where the API's guard stands for every path outside
//! the API: the session cookie instead of a token ([`session`]), the role a
//! page or action needs (a page hides what the role may not do, and the
//! action refuses it with 403 all the same), the CSRF token on every
//! write, and an audit record for every write, as for the API.
//! [`pages`] holds sign-in, the overview and what pages share, [`faults`]
//! the fault list and page, [`hosts`] host, device and machine-room charts, [`records`] on call,
//! maintenance, reports, inspections and the audit log, [`changes`] change
//! requests, [`admin`] users, tokens and agents; [`i18n`] holds their words.

mod admin;
mod changes;
mod faults;
mod hosts;
pub mod i18n;
mod pages;
mod records;
pub mod session;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::{Arc, OnceLock};

use axum::Router;
use axum::body::Body;
use axum::extract::{ConnectInfo, Path, Request};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use watchpost_model::api::Role;

use crate::Core;
use crate::access::Identity;
use crate::http::guard::{Caller, MAX_BODY_BYTES, audit};
use i18n::Lang;
use session::Session;

/// The signed-in browser, for handlers.
#[derive(Clone)]
pub struct Signed {
    /// Its session.
    pub session: Session,
    /// Its cookie (to update the session's language).
    pub cookie: String,
}

/// Whether a path is the console's (everything but the API and the
/// collector's machine endpoints).
pub fn is_console_path(path: &str) -> bool {
    let under = |p: &str| path == p || path.starts_with(&format!("{p}/"));
    !(under("/api") || under("/metrics") || under("/federate") || under("/healthz"))
}

/// The console's routes.
pub fn routes() -> Router<Arc<Core>> {
    Router::new()
        .route("/", get(pages::overview))
        .route("/overview/body", get(pages::overview_body))
        .route("/login", get(pages::login_form).post(pages::login))
        .route("/logout", post(pages::logout))
        .route("/lang", post(pages::set_lang))
        .route("/faults", get(faults::faults))
        .route("/faults/{id}", get(faults::fault))
        .route("/faults/{id}/{action}", post(faults::fault_action))
        .route("/hosts/{name}", get(hosts::host))
        // The API's own handlers, behind the console's session: the charts'
        // data, report downloads.
        .route("/data/query", get(crate::http::query))
        .route("/oncall", get(records::oncall))
        .route(
            "/maintenance",
            get(records::maintenance).post(records::add_window),
        )
        .route("/reports", get(records::reports))
        .route("/reports/monthly", get(crate::http::reports::monthly))
        .route("/reports/daily", get(crate::http::reports::daily))
        .route("/reports/stored/{id}", get(crate::http::reports::get))
        .route("/audit", get(records::audit))
        .route("/inspections", get(records::inspections))
        .route("/inspections/check", post(records::inspection_check))
        .route("/inspections/{date}/{action}", post(records::inspection_sign))
        .route("/changes", get(changes::list).post(changes::request))
        .route("/changes/{id}", get(changes::change))
        .route("/changes/{id}/{action}", post(changes::act))
        .route("/rooms/{room}", get(hosts::room))
        .route("/users", get(admin::users).post(admin::add_user))
        .route("/users/{name}/{action}", post(admin::user_action))
        .route("/tokens", get(admin::tokens).post(admin::add_token))
        .route("/tokens/{id}/revoke", post(admin::revoke_token))
        .route("/agents", get(admin::agents))
        .route("/agents/enroll", post(admin::enroll))
        .route("/agents/{id}/revoke", post(admin::revoke_agent))
        .route("/assets/{file}", get(asset))
}

/// The role a console request needs; `None`: public.
pub fn required_role(method: &Method, path: &str) -> Option<Role> {
    if path == "/login" || path.starts_with("/assets/") {
        return None;
    }
    if path == "/audit"
        || path == "/users"
        || path.starts_with("/users/")
        || path == "/agents"
        || path.starts_with("/agents/")
    {
        return Some(Role::Admin);
    }
    // Anyone signed in manages their own tokens (the API checks whose).
    if path == "/tokens" || (path.starts_with("/tokens/") && path.ends_with("/revoke")) {
        return Some(Role::Viewer);
    }
    if method == Method::GET || method == Method::HEAD || path == "/logout" || path == "/lang" {
        return Some(Role::Viewer);
    }
    if path.starts_with("/inspections/") && path.ends_with("/review") {
        return Some(Role::Approver);
    }
    if path.starts_with("/changes/") && (path.ends_with("/approve") || path.ends_with("/reject")) {
        return Some(Role::Approver);
    }
    if path.starts_with("/faults/")
        || path == "/maintenance"
        || path.starts_with("/inspections/")
        || path == "/changes"
        || path.starts_with("/changes/")
    {
        return Some(Role::Operator);
    }
    Some(Role::Admin)
}

/// Whether the client is htmx (it wants a fragment, and redirects as a header).
fn is_htmx(headers: &HeaderMap) -> bool {
    headers.contains_key("hx-request")
}

/// Where a signed-out browser is sent: the sign-in page, then back.
fn to_sign_in(headers: &HeaderMap, target: &str, expired: bool) -> Response {
    let next: String = form_urlencoded::byte_serialize(target.as_bytes()).collect();
    let url = format!("/login?next={next}{}", if expired { "&expired=1" } else { "" });
    if is_htmx(headers) {
        let mut r = StatusCode::UNAUTHORIZED.into_response();
        if let Ok(v) = HeaderValue::from_str(&url) {
            r.headers_mut().insert("hx-redirect", v);
        }
        return r;
    }
    Redirect::to(&url).into_response()
}

/// A form body's fields (later ones win).
pub fn form_fields(body: &[u8]) -> BTreeMap<String, String> {
    form_urlencoded::parse(body).into_owned().collect()
}

/// What the audit log keeps of a form: its fields as JSON, passwords and
/// tokens masked, the CSRF token left out.
fn form_detail(fields: &BTreeMap<String, String>) -> String {
    let kept: serde_json::Map<String, serde_json::Value> = fields
        .iter()
        .filter(|(k, _)| k.as_str() != "csrf")
        .map(|(k, v)| (k.clone(), serde_json::Value::String(v.clone())))
        .collect();
    crate::access::redact(serde_json::Value::Object(kept).to_string().as_bytes())
}

/// The console's guard (see the module's documentation).
pub async fn guard(core: Arc<Core>, req: Request, next: Next) -> Response {
    let method = req.method().clone();
    let path = req.uri().path().to_string();
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
    let (mut parts, body) = req.into_parts();
    let bytes = match axum::body::to_bytes(body, MAX_BODY_BYTES).await {
        Ok(b) => b,
        Err(_) => return (StatusCode::PAYLOAD_TOO_LARGE, "request body too large").into_response(),
    };
    let fields = if write {
        form_fields(&bytes)
    } else {
        BTreeMap::new()
    };
    let Some(need) = required_role(&method, &path) else {
        let response = next.run(Request::from_parts(parts, Body::from(bytes))).await;
        if write {
            // Sign-ins: who tried, from where, and how it ended.
            let who = fields.get("user").map(|u| Identity {
                user: u.clone(),
                role: Role::Viewer,
            });
            let who = who.filter(|_| response.status().is_redirection());
            audit(
                &core,
                who,
                address,
                method,
                target,
                response.status(),
                form_detail(&fields),
            )
            .await;
        }
        return response;
    };
    let now = core.clock.now_ms();
    let cookie = session::cookie_of(&parts.headers);
    let mut live = cookie.as_deref().and_then(|c| core.console.touch(c, now));
    if live.is_none() && !core.config.security.api_users && !write {
        // An open API has an open console: every browser is the anonymous admin.
        let value = core.console.open("anonymous", Role::Admin, Lang::Zh, now);
        let mut r = Redirect::to(&target).into_response();
        if let Ok(v) = HeaderValue::from_str(&session::set_cookie(&value, secure(&core))) {
            r.headers_mut().insert(header::SET_COOKIE, v);
        }
        return r;
    }
    // The user's role now: disabled users and changed roles count at once.
    if let (Some(s), Some(c)) = (&mut live, &cookie)
        && core.config.security.api_users
    {
        match core.access.role_of(&s.user).await {
            Ok(Some(role)) => {
                if role != s.role {
                    s.role = role;
                    core.console.update(c, role, s.lang);
                }
            }
            Ok(None) => {
                core.console.close_user(&s.user);
                live = None;
            }
            Err(e) => {
                tracing::error!(error = %e, "cannot check a console user");
                return (StatusCode::INTERNAL_SERVER_ERROR, "cannot check the user now").into_response();
            }
        }
    }
    let (Some(s), Some(cookie)) = (live, cookie.clone()) else {
        let response = to_sign_in(&parts.headers, &target, cookie.is_some());
        if write {
            audit(
                &core,
                None,
                address,
                method,
                target,
                StatusCode::UNAUTHORIZED,
                form_detail(&fields),
            )
            .await;
        }
        return response;
    };
    let identity = Identity {
        user: s.user.clone(),
        role: s.role,
    };
    let response = if write
        && !session::csrf_ok(
            &s,
            parts
                .headers
                .get("x-csrf-token")
                .and_then(|v| v.to_str().ok())
                .or(fields.get("csrf").map(String::as_str)),
        ) {
        pages::error_page(
            &s,
            StatusCode::FORBIDDEN,
            "the form's CSRF token is missing or is not this session's: reload the page and try again",
        )
    } else if s.role < need {
        pages::error_page(
            &s,
            StatusCode::FORBIDDEN,
            &format!(
                "{} {path} needs the {} role; {} is {}",
                method,
                need.as_str(),
                s.user,
                s.role.as_str()
            ),
        )
    } else {
        parts.extensions.insert(Caller(identity.clone()));
        parts.extensions.insert(Signed { session: s, cookie });
        next.run(Request::from_parts(parts, Body::from(bytes))).await
    };
    if write {
        audit(
            &core,
            Some(identity),
            address,
            method,
            target,
            response.status(),
            form_detail(&fields),
        )
        .await;
    }
    response
}

/// Whether cookies must be `Secure` (the HTTP listener is under TLS).
fn secure(core: &Core) -> bool {
    core.config.tls.as_ref().is_some_and(|t| t.http)
}

/// One embedded asset.
struct Asset {
    name: &'static str,
    mime: &'static str,
    bytes: &'static [u8],
}

const ASSETS: &[Asset] = &[
    Asset {
        name: "console.css",
        mime: "text/css; charset=utf-8",
        bytes: include_bytes!("../../console/assets/console.css"),
    },
    Asset {
        name: "console.js",
        mime: "text/javascript; charset=utf-8",
        bytes: include_bytes!("../../console/assets/console.js"),
    },
    Asset {
        name: "echarts.min.js",
        mime: "text/javascript; charset=utf-8",
        bytes: include_bytes!("../../console/assets/echarts.min.js"),
    },
    Asset {
        name: "htmx.min.js",
        mime: "text/javascript; charset=utf-8",
        bytes: include_bytes!("../../console/assets/htmx.min.js"),
    },
];

/// An asset's ETag: a hash of its bytes, so a new build's assets are fetched anew.
fn etag(bytes: &[u8]) -> &'static str {
    static TAGS: OnceLock<BTreeMap<usize, String>> = OnceLock::new();
    let tags = TAGS.get_or_init(|| {
        ASSETS
            .iter()
            .map(|a| {
                let hex = crate::access::sha256_hex(&String::from_utf8_lossy(a.bytes));
                (a.bytes.as_ptr() as usize, format!("\"{}\"", &hex[..16]))
            })
            .collect()
    });
    tags.get(&(bytes.as_ptr() as usize))
        .map_or("\"0\"", String::as_str)
}

async fn asset(Path(file): Path<String>, headers: HeaderMap) -> Response {
    let Some(a) = ASSETS.iter().find(|a| a.name == file) else {
        return (StatusCode::NOT_FOUND, "no such asset").into_response();
    };
    let tag = etag(a.bytes);
    if headers.get(header::IF_NONE_MATCH).and_then(|v| v.to_str().ok()) == Some(tag) {
        return StatusCode::NOT_MODIFIED.into_response();
    }
    (
        [
            (header::CONTENT_TYPE, a.mime),
            (header::ETAG, tag),
            (header::CACHE_CONTROL, "no-cache"),
        ],
        a.bytes,
    )
        .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn console_paths_and_roles() {
        assert!(is_console_path("/"));
        assert!(is_console_path("/faults/3"));
        assert!(is_console_path("/apix"));
        assert!(!is_console_path("/api/v1/faults"));
        assert!(!is_console_path("/metrics"));
        assert!(!is_console_path("/healthz"));
        assert!(!is_console_path("/federate"));
        let (get, post) = (Method::GET, Method::POST);
        assert_eq!(required_role(&get, "/login"), None);
        assert_eq!(required_role(&post, "/login"), None);
        assert_eq!(required_role(&get, "/assets/console.css"), None);
        assert_eq!(required_role(&get, "/"), Some(Role::Viewer));
        assert_eq!(required_role(&post, "/lang"), Some(Role::Viewer));
        assert_eq!(required_role(&post, "/logout"), Some(Role::Viewer));
        assert_eq!(required_role(&post, "/faults/3/ack"), Some(Role::Operator));
        assert_eq!(required_role(&post, "/anything"), Some(Role::Admin));
        assert_eq!(required_role(&get, "/audit"), Some(Role::Admin));
        assert_eq!(required_role(&get, "/users"), Some(Role::Admin));
        assert_eq!(required_role(&get, "/agents"), Some(Role::Admin));
        assert_eq!(required_role(&post, "/agents/enroll"), Some(Role::Admin));
        assert_eq!(required_role(&get, "/tokens"), Some(Role::Viewer));
        assert_eq!(required_role(&post, "/tokens"), Some(Role::Viewer));
        assert_eq!(required_role(&post, "/tokens/4/revoke"), Some(Role::Viewer));
        assert_eq!(required_role(&get, "/changes"), Some(Role::Viewer));
        assert_eq!(required_role(&post, "/changes"), Some(Role::Operator));
        assert_eq!(required_role(&post, "/changes/2/start"), Some(Role::Operator));
        assert_eq!(required_role(&post, "/changes/2/approve"), Some(Role::Approver));
        assert_eq!(required_role(&post, "/changes/2/reject"), Some(Role::Approver));
        assert_eq!(required_role(&post, "/maintenance"), Some(Role::Operator));
        assert_eq!(required_role(&post, "/inspections/check"), Some(Role::Operator));
        assert_eq!(
            required_role(&post, "/inspections/2026-12-03/review"),
            Some(Role::Approver)
        );
    }

    #[test]
    fn the_audit_keeps_a_form_without_its_secrets() {
        let f = form_fields(b"user=ann&password=s3cret&csrf=abc&cause=disk+full");
        let d = form_detail(&f);
        assert!(d.contains("disk full") && d.contains("ann"), "{d}");
        assert!(!d.contains("s3cret") && !d.contains("abc"), "{d}");
    }
}
