//! The console's administration pages: users (add, disable, enable), API
//! tokens (anyone's own; an admin sees all) and agents (enrol, revoke, and
//! what each connection looks like now). Every action goes through the
//! API's own handler, so the same checks hold and the same errors are
//! shown; a secret made here (a password, a token, an enrolment token) is
//! shown once, on a page the browser must not store.

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Extension, Path, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use minijinja::{Value, context};
use watchpost_model::api;

use super::pages::{base, internal, local, page};
use super::{Signed, form_fields};
use crate::Core;
use crate::http::admin as api_admin;
use crate::http::guard::Caller;

/// A secret to show once: what it is and its value.
type Secret = Option<(&'static str, String)>;

/// A page with a secret on it is not kept by the browser.
fn no_store(mut r: Response) -> Response {
    r.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    r
}

/// An admin page: `name`'s template at `/name`, with the secret to show
/// once (if any), never kept by the browser.
fn admin_page(
    core: &Core,
    s: &super::session::Session,
    name: &str,
    ctx: Value,
    flash: Option<(String, &str)>,
    secret: Secret,
    status: StatusCode,
) -> Response {
    let ctx = context! {
        ..ctx,
        ..context! {
            secret => secret.map(|(k, v)| context! { what => s.lang.word(k), value => v }),
            open_api => !core.config.security.api_users,
        }
    };
    let frame = base(s, name, &format!("/{name}"));
    no_store(page(&format!("{name}.html"), frame, flash, ctx, status))
}

/// A form field, trimmed; `None` when blank.
fn field(f: &BTreeMap<String, String>, k: &str) -> Option<String> {
    f.get(k).map(|v| v.trim().to_string()).filter(|v| !v.is_empty())
}

fn json<T: serde::Serialize>(v: &T) -> Result<Bytes, serde_json::Error> {
    serde_json::to_vec(v).map(Bytes::from)
}

/// A token's or credential's state word: revoked, expired or active.
fn secret_state(revoked_at: Option<&str>, expires_at: Option<&str>, now: i64) -> &'static str {
    if revoked_at.is_some() {
        "t_revoked"
    } else if expires_at.and_then(super::pages::ms_of).is_some_and(|e| e <= now) {
        "t_expired"
    } else {
        "t_active"
    }
}

/// `GET /users`.
pub async fn users(State(core): State<Arc<Core>>, Extension(me): Extension<Signed>) -> Response {
    users_page(&core, &me, None, None, StatusCode::OK).await
}

async fn users_page(
    core: &Arc<Core>,
    me: &Signed,
    flash: Option<(String, &str)>,
    secret: Secret,
    status: StatusCode,
) -> Response {
    let s = &me.session;
    let list = match api_admin::users(State(core.clone())).await {
        Ok(Json(u)) => u,
        Err(e) => return internal(e.message),
    };
    let users: Vec<Value> = list
        .iter()
        .map(|u| {
            context! {
                name => u.name.clone(), role => u.role.as_str(),
                role_name => s.lang.word(&format!("role_{}", u.role.as_str())),
                created => local(core, &u.created_at), disabled => u.disabled,
                me => u.name == s.user,
            }
        })
        .collect();
    let ctx = context! { users => users, roles => ["viewer", "operator", "approver", "admin"] };
    admin_page(core, s, "users", ctx, flash, secret, status)
}

/// `POST /users`: name, role, password (blank: generated and shown once).
pub async fn add_user(
    State(core): State<Arc<Core>>,
    Extension(me): Extension<Signed>,
    body: Bytes,
) -> Response {
    let f = form_fields(&body);
    let new = api::NewUser {
        name: field(&f, "name").unwrap_or_default(),
        role: field(&f, "role").unwrap_or_default(),
        password: field(&f, "password"),
    };
    let bytes = match json(&new) {
        Ok(b) => b,
        Err(e) => return internal(e),
    };
    match api_admin::add_user(State(core.clone()), bytes).await {
        Ok((_, Json(created))) => {
            let done = format!(
                "{} {} ({})",
                me.session.lang.word("user_added"),
                created.name,
                created.role.as_str()
            );
            let secret = ("password_once", created.password);
            users_page(&core, &me, Some((done, "ok")), Some(secret), StatusCode::CREATED).await
        }
        Err(e) => users_page(&core, &me, Some((e.message, "error")), None, e.status).await,
    }
}

/// `POST /users/{name}/disable|enable`.
pub async fn user_action(
    State(core): State<Arc<Core>>,
    Extension(me): Extension<Signed>,
    Extension(caller): Extension<Caller>,
    Path((name, action)): Path<(String, String)>,
) -> Response {
    match api_admin::user_action(State(core.clone()), Extension(caller), Path((name, action))).await {
        Ok(_) => Redirect::to("/users").into_response(),
        Err(e) => users_page(&core, &me, Some((e.message, "error")), None, e.status).await,
    }
}

/// `GET /tokens`: the caller's tokens (an admin's: everyone's).
pub async fn tokens(
    State(core): State<Arc<Core>>,
    Extension(me): Extension<Signed>,
    Extension(caller): Extension<Caller>,
) -> Response {
    tokens_page(&core, &me, caller, None, None, StatusCode::OK).await
}

async fn tokens_page(
    core: &Arc<Core>,
    me: &Signed,
    caller: Caller,
    flash: Option<(String, &str)>,
    secret: Secret,
    status: StatusCode,
) -> Response {
    let s = &me.session;
    let list = match api_admin::tokens(State(core.clone()), Extension(caller)).await {
        Ok(Json(t)) => t,
        Err(e) => return internal(e.message),
    };
    let now = core.clock.now_ms();
    let tokens: Vec<Value> = list
        .iter()
        .map(|t| {
            let state = secret_state(t.revoked_at.as_deref(), t.expires_at.as_deref(), now);
            let at = |v: &Option<String>| v.as_deref().map(|v| local(core, v)).unwrap_or_default();
            context! {
                id => t.id, user => t.user.clone(), name => t.name.clone(),
                created => local(core, &t.created_at), expires => at(&t.expires_at),
                last_used => at(&t.last_used_at), state => s.lang.word(state),
                live => state == "t_active",
            }
        })
        .collect();
    admin_page(
        core,
        s,
        "tokens",
        context! { tokens => tokens },
        flash,
        secret,
        status,
    )
}

/// `POST /tokens`: name, expires_in (blank: never).
pub async fn add_token(
    State(core): State<Arc<Core>>,
    Extension(me): Extension<Signed>,
    Extension(caller): Extension<Caller>,
    body: Bytes,
) -> Response {
    let f = form_fields(&body);
    let new = api::NewToken {
        name: field(&f, "name").unwrap_or_default(),
        expires_in: field(&f, "expires_in"),
    };
    let bytes = match json(&new) {
        Ok(b) => b,
        Err(e) => return internal(e),
    };
    match api_admin::add_token(State(core.clone()), Extension(caller.clone()), bytes).await {
        Ok((_, Json(created))) => {
            let done = format!("{} #{}", me.session.lang.word("token_added"), created.id);
            let secret = ("token_once", created.token);
            tokens_page(
                &core,
                &me,
                caller,
                Some((done, "ok")),
                Some(secret),
                StatusCode::CREATED,
            )
            .await
        }
        Err(e) => tokens_page(&core, &me, caller, Some((e.message, "error")), None, e.status).await,
    }
}

/// `POST /tokens/{id}/revoke`.
pub async fn revoke_token(
    State(core): State<Arc<Core>>,
    Extension(me): Extension<Signed>,
    Extension(caller): Extension<Caller>,
    Path(id): Path<String>,
) -> Response {
    match api_admin::revoke_token(State(core.clone()), Extension(caller.clone()), Path(id)).await {
        Ok(_) => Redirect::to("/tokens").into_response(),
        Err(e) => tokens_page(&core, &me, caller, Some((e.message, "error")), None, e.status).await,
    }
}

/// `GET /agents`: every agent seen or enrolled, with its credential.
pub async fn agents(State(core): State<Arc<Core>>, Extension(me): Extension<Signed>) -> Response {
    agents_page(&core, &me, None, None, StatusCode::OK).await
}

async fn agents_page(
    core: &Arc<Core>,
    me: &Signed,
    flash: Option<(String, &str)>,
    secret: Secret,
    status: StatusCode,
) -> Response {
    let s = &me.session;
    let lang = s.lang;
    let now = core.clock.now_ms();
    let credentials = match api_admin::agent_credentials(State(core.clone())).await {
        Ok(Json(c)) => c,
        Err(e) => return internal(e.message),
    };
    let live = core.agents.list(now);
    let mut ids: Vec<&str> = live.iter().map(|a| a.id.as_str()).collect();
    ids.extend(credentials.iter().map(|c| c.agent.as_str()));
    ids.sort_unstable();
    ids.dedup();
    let at = |v: Option<&str>| v.map(|v| local(core, v)).unwrap_or_default();
    let rows: Vec<Value> = ids
        .iter()
        .map(|id| {
            let a = live.iter().find(|a| a.id == *id);
            // The newest credential says whether it can connect.
            let c = credentials.iter().rev().find(|c| c.agent == *id);
            let (state, word) = match a {
                Some(a) if a.connected => ("ok", "a_connected"),
                Some(_) => ("unreachable", "a_disconnected"),
                None => ("pending", "a_never"),
            };
            let credential = c.map(|c| {
                let word = secret_state(c.revoked_at.as_deref(), c.expires_at.as_deref(), now);
                context! {
                    issued => local(core, &c.issued_at), expires => at(c.expires_at.as_deref()),
                    state => lang.word(word), live => word == "t_active", hostname => c.hostname.clone(),
                }
            });
            context! {
                id => *id, state => state, state_name => lang.word(word),
                hostname => a.map(|a| a.hostname.clone()).or_else(|| c.map(|c| c.hostname.clone())).unwrap_or_default(),
                version => a.map(|a| a.version.clone()).unwrap_or_default(),
                address => a.map(|a| a.address.clone()).unwrap_or_default(),
                last_seen => at(a.map(|a| a.last_seen.as_str())),
                series => a.map(|a| a.series),
                clock_offset => a.and_then(|a| a.clock_offset).map(|o| format!("{o:+.3} s")),
                refused => a.map_or(0, |a| a.refused_last_minute),
                refused_reason => a.and_then(|a| a.refused_reason.clone()),
                credential => credential,
            }
        })
        .collect();
    admin_page(
        core,
        s,
        "agents",
        context! { agents => rows },
        flash,
        secret,
        status,
    )
}

/// `POST /agents/enroll`: agent, valid_for (the enrolment token's life),
/// credential_valid_for.
pub async fn enroll(
    State(core): State<Arc<Core>>,
    Extension(me): Extension<Signed>,
    Extension(caller): Extension<Caller>,
    body: Bytes,
) -> Response {
    let f = form_fields(&body);
    let Some(agent) = field(&f, "agent") else {
        let e = "enrolling needs the agent's id (its agent.id, by default its hostname)".to_string();
        return agents_page(&core, &me, Some((e, "error")), None, StatusCode::BAD_REQUEST).await;
    };
    let b = api::EnrollBody {
        token_valid_for: field(&f, "valid_for"),
        credential_valid_for: field(&f, "credential_valid_for"),
    };
    let bytes = match json(&b) {
        Ok(b) => b,
        Err(e) => return internal(e),
    };
    match api_admin::enroll(State(core.clone()), Extension(caller), Path(agent), bytes).await {
        Ok((_, Json(e))) => {
            let done = format!(
                "{} {} · {} {}",
                me.session.lang.word("enrolled"),
                e.agent,
                me.session.lang.word("use_before"),
                local(&core, &e.expires_at)
            );
            let secret = ("enroll_once", format!("enroll_token = \"{}\"", e.token));
            agents_page(&core, &me, Some((done, "ok")), Some(secret), StatusCode::CREATED).await
        }
        Err(e) => agents_page(&core, &me, Some((e.message, "error")), None, e.status).await,
    }
}

/// `POST /agents/{id}/revoke`: its credential stops working and a live
/// stream ends now.
pub async fn revoke_agent(
    State(core): State<Arc<Core>>,
    Extension(me): Extension<Signed>,
    Extension(caller): Extension<Caller>,
    Path(agent): Path<String>,
) -> Response {
    match api_admin::revoke_agent(State(core.clone()), Extension(caller), Path(agent)).await {
        Ok(_) => Redirect::to("/agents").into_response(),
        Err(e) => agents_page(&core, &me, Some((e.message, "error")), None, e.status).await,
    }
}
