//! Nobody let in: a collector with the default `[security]` (enrolled
//! agents, API users). Unauthenticated and under-privileged requests get
//! 401 and 403; every write is in the audit log, refused ones included;
//! agents enrol once, are bound to their host, and stop at revocation; an
//! agent holding another agent's credential writes nothing; injection and
//! oversized input through every API parameter change nothing.

use std::path::Path;
use std::time::Duration;

use reqwest::StatusCode;
use serde::de::DeserializeOwned;
use watchpost_agent::{AgentConfig, RunningAgent};
use watchpost_collector::Collector;
use watchpost_collector::config::SecurityConfig;
use watchpost_collector::rules::RuleSet;
use watchpost_model::api::{self, Role};
use watchpost_tests::{collector_config, wait_for, write_textfile};

const RULES: &str = r#"
[[rule]]
name = "queue_deep"
metric = "app_queue_depth"
when = "> 90"
severity = "urgent"
"#;

const SECOND: Duration = Duration::from_secs(1);

async fn strict_collector(data: &Path) -> Collector {
    let config = watchpost_collector::CollectorConfig {
        security: SecurityConfig {
            agents_enrolled: true,
            api_users: true,
        },
        ..collector_config(data)
    };
    let rules = RuleSet::parse(RULES, "rules.toml").expect("rules");
    Collector::start(config, rules).await.expect("collector starts")
}

/// An admin token, as `watchpost-collector reset-admin` makes one.
async fn admin_token(c: &Collector) -> String {
    let now = 1_800_000_000_000;
    let access = &c.core().access;
    access.reset_admin("admin", now).await.expect("admin");
    access
        .create_token("admin", "tests", None, now)
        .await
        .expect("token")
        .token
}

enum As<'a> {
    Nobody,
    Token(&'a str),
    Password(&'a str, &'a str),
}

async fn call(
    c: &Collector,
    who: &As<'_>,
    method: &str,
    path: &str,
    body: Option<&str>,
) -> (StatusCode, String) {
    let url = format!("http://{}{}", c.http_addr(), path);
    let client = reqwest::Client::new();
    let mut r = match method {
        "GET" => client.get(&url),
        "POST" => client.post(&url),
        "DELETE" => client.delete(&url),
        m => panic!("method {m}"),
    };
    r = match who {
        As::Nobody => r,
        As::Token(t) => r.bearer_auth(t),
        As::Password(u, p) => r.basic_auth(u, Some(p)),
    };
    if let Some(b) = body {
        r = r.header("content-type", "application/json").body(b.to_string());
    }
    let shown = &path[..path.len().min(120)];
    let resp = r.send().await.unwrap_or_else(|e| panic!("{method} {shown}: {e}"));
    let status = resp.status();
    (status, resp.text().await.expect("body"))
}

async fn get_as<T: DeserializeOwned>(c: &Collector, who: &As<'_>, path: &str) -> T {
    let (status, body) = call(c, who, "GET", path, None).await;
    assert_eq!(status, StatusCode::OK, "GET {path}: {body}");
    serde_json::from_str(&body).unwrap_or_else(|e| panic!("GET {path}: {e}: {body}"))
}

async fn post_as<T: DeserializeOwned>(c: &Collector, who: &As<'_>, path: &str, body: &str) -> T {
    let (status, text) = call(c, who, "POST", path, Some(body)).await;
    assert!(status.is_success(), "POST {path}: {status}: {text}");
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("POST {path}: {e}: {text}"))
}

fn error_code(body: &str) -> String {
    let v: serde_json::Value = serde_json::from_str(body).unwrap_or_else(|e| panic!("{e}: {body}"));
    v["error"]["code"].as_str().unwrap_or_default().to_string()
}

/// An agent of `id` reading textfiles from `files`, keeping its spool and
/// credential in `state`.
fn agent(
    c: &Collector,
    id: &str,
    hostname: &str,
    files: &Path,
    state: &Path,
    enroll: &str,
    credential: &str,
) -> RunningAgent {
    let mut a = AgentConfig::local(&format!("http://{}", c.grpc_addr()));
    a.id = Some(id.to_string());
    a.hostname = Some(hostname.to_string());
    a.interval = Duration::from_millis(200);
    a.heartbeat = Duration::from_millis(300);
    a.host.enabled = false;
    a.textfile_dir = Some(files.to_path_buf());
    a.spool.dir = Some(state.join("spool"));
    a.credential_file = Some(state.join("spool/credential"));
    a.enroll_token = enroll.to_string();
    a.auth_token = credential.to_string();
    watchpost_agent::start(a)
}

async fn hosts_with_series(c: &Collector, token: &str) -> Vec<String> {
    let series: Vec<api::Series> =
        get_as(c, &As::Token(token), "/api/v1/series?metric=app_queue_depth").await;
    let mut hosts: Vec<String> = series
        .into_iter()
        .filter_map(|s| s.labels.get("host").cloned())
        .collect();
    hosts.sort();
    hosts
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_api_needs_users_and_roles_and_audits_every_write() {
    let data = tempfile::tempdir().expect("tempdir");
    let c = strict_collector(data.path()).await;
    let admin = admin_token(&c).await;
    let admin = As::Token(&admin);

    // Without a credential: only /healthz.
    let (s, _) = call(&c, &As::Nobody, "GET", "/healthz", None).await;
    assert_eq!(s, StatusCode::OK);
    for path in [
        "/api/v1/faults",
        "/api/v1/series?metric=x",
        "/metrics",
        "/api/v1/agents",
        "/api/v1/audit",
    ] {
        let (s, body) = call(&c, &As::Nobody, "GET", path, None).await;
        assert_eq!(s, StatusCode::UNAUTHORIZED, "{path}: {body}");
        assert_eq!(error_code(&body), "unauthenticated");
    }
    let (s, _) = call(&c, &As::Token("wpt_forged"), "GET", "/api/v1/faults", None).await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);
    let (s, _) = call(
        &c,
        &As::Password("admin", "not the password"),
        "GET",
        "/api/v1/faults",
        None,
    )
    .await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);
    let (s, _) = call(
        &c,
        &As::Nobody,
        "POST",
        "/api/v1/silences",
        Some(r#"{"reason":"x","ticket":"T-1","ends_at":"2099-01-01T00:00:00Z"}"#),
    )
    .await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);

    // An admin makes a viewer and an operator.
    let viewer: api::CreatedUser =
        post_as(&c, &admin, "/api/v1/users", r#"{"name":"wang","role":"viewer"}"#).await;
    let operator: api::CreatedUser = post_as(
        &c,
        &admin,
        "/api/v1/users",
        r#"{"name":"li","role":"operator","password":"correct horse battery"}"#,
    )
    .await;
    assert_eq!(operator.role, Role::Operator);
    let (s, body) = call(
        &c,
        &admin,
        "POST",
        "/api/v1/users",
        Some(r#"{"name":"li","role":"viewer"}"#),
    )
    .await;
    assert_eq!(
        (s, error_code(&body).as_str()),
        (StatusCode::CONFLICT, "conflict")
    );
    let (s, _) = call(
        &c,
        &admin,
        "POST",
        "/api/v1/users",
        Some(r#"{"name":"x","role":"root"}"#),
    )
    .await;
    assert_eq!(s, StatusCode::BAD_REQUEST);

    // The viewer signs in with the password and makes a token for scripts.
    let wang = As::Password("wang", &viewer.password);
    let token: api::CreatedToken = post_as(&c, &wang, "/api/v1/tokens", r#"{"name":"dashboard"}"#).await;
    let wang_token = As::Token(&token.token);
    let me: api::Whoami = get_as(&c, &wang_token, "/api/v1/whoami").await;
    assert_eq!((me.user.as_str(), me.role), ("wang", Role::Viewer));
    let _: Vec<api::Fault> = get_as(&c, &wang_token, "/api/v1/faults").await;
    for (method, path, body) in [
        (
            "POST",
            "/api/v1/silences",
            Some(r#"{"reason":"x","ticket":"T-1","ends_at":"2099-01-01T00:00:00Z"}"#),
        ),
        ("POST", "/api/v1/faults/1/ack", Some(r#"{"comment":"mine"}"#)),
        ("POST", "/api/v1/users", Some(r#"{"name":"evil","role":"admin"}"#)),
        ("POST", "/api/v1/agents/web-1/enroll", None),
        ("GET", "/api/v1/audit", None),
        ("GET", "/api/v1/users", None),
        ("GET", "/api/v1/agent-credentials", None),
        ("GET", "/api/v1/backups", None),
        ("POST", "/api/v1/backups", Some(r#"{"dir":"/tmp/elsewhere"}"#)),
    ] {
        let (s, text) = call(&c, &wang_token, method, path, body).await;
        assert_eq!(s, StatusCode::FORBIDDEN, "{method} {path}: {text}");
        assert_eq!(error_code(&text), "forbidden");
    }

    // The operator acts on a real fault; the record names who signed in,
    // not who the body claims to be.
    let enrol: api::Enrollment = post_as(&c, &admin, "/api/v1/agents/web-1/enroll", "{}").await;
    let files = tempfile::tempdir().expect("tempdir");
    let state = tempfile::tempdir().expect("tempdir");
    write_textfile(files.path(), "q.prom", "app_queue_depth 95\n");
    let web = agent(&c, "web-1", "web-1", files.path(), state.path(), &enrol.token, "");
    let admin_t = match &admin {
        As::Token(t) => *t,
        _ => unreachable!(),
    };
    let fault: api::Fault = wait_for("the queue fault", 15 * SECOND, || async {
        let f: Vec<api::Fault> = get_as(&c, &As::Token(admin_t), "/api/v1/faults?rule=queue_deep").await;
        f.into_iter().next()
    })
    .await;
    let li = As::Password("li", "correct horse battery");
    let (s, _) = call(&c, &li, "POST", "/api/v1/agents/web-2/enroll", None).await;
    assert_eq!(s, StatusCode::FORBIDDEN, "an operator does not enrol agents");
    let acked: api::Fault = post_as(
        &c,
        &li,
        &format!("/api/v1/faults/{}/ack", fault.id),
        r#"{"by":"mallory","comment":"looking"}"#,
    )
    .await;
    assert_eq!(acked.acknowledged_by.as_deref(), Some("li"));
    assert!(
        acked
            .timeline
            .iter()
            .any(|e| e.actor == "li" && e.kind == "acknowledged"),
        "{:?}",
        acked.timeline
    );
    assert!(acked.timeline.iter().all(|e| e.actor != "mallory"));

    // Revoked tokens and disabled users stop working.
    let (s, _) = call(
        &c,
        &wang_token,
        "POST",
        &format!("/api/v1/tokens/{}/revoke", token.id),
        None,
    )
    .await;
    assert_eq!(s, StatusCode::NO_CONTENT);
    let (s, _) = call(&c, &wang_token, "GET", "/api/v1/faults", None).await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);
    let (s, _) = call(&c, &admin, "POST", "/api/v1/users/li/disable", None).await;
    assert_eq!(s, StatusCode::NO_CONTENT);
    let (s, _) = call(&c, &li, "GET", "/api/v1/faults", None).await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);

    // The audit log has every write: who, from where, what, how it ended,
    // with the passwords blanked out.
    let log: Vec<api::AuditEntry> = get_as(&c, &admin, "/api/v1/audit?limit=1000").await;
    let find = |actor: &str, path: &str, status: u16| {
        log.iter()
            .find(|e| e.actor == actor && e.path.starts_with(path) && e.status == status)
            .unwrap_or_else(|| panic!("no audit entry {actor} {path} {status} in {log:#?}"))
    };
    let created = find("admin", "/api/v1/users", 201);
    assert_eq!(created.method, "POST");
    assert!(created.address.starts_with("127.0.0.1:"), "{}", created.address);
    assert!(
        log.iter().all(|e| !e.detail.contains("correct horse")),
        "a password reached the log"
    );
    assert!(log.iter().any(|e| e.detail.contains("\"password\":\"***\"")));
    find("-", "/api/v1/silences", 401);
    find("wang", "/api/v1/silences", 403);
    let ack = find("li", &format!("/api/v1/faults/{}/ack", fault.id), 200);
    assert_eq!(ack.role, Some(Role::Operator));
    find("admin", "/api/v1/agents/web-1/enroll", 201);
    find("admin", "/api/v1/users/li/disable", 204);
    assert!(log.windows(2).all(|w| w[0].id > w[1].id), "newest first");
    // Reads are not audited.
    assert!(log.iter().all(|e| e.method != "GET"));

    web.stop().await;
    c.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn agents_enrol_once_are_bound_to_their_host_and_can_be_revoked() {
    let data = tempfile::tempdir().expect("tempdir");
    let c = strict_collector(data.path()).await;
    let token = admin_token(&c).await;
    let admin = As::Token(&token);
    let files = tempfile::tempdir().expect("tempdir");
    write_textfile(files.path(), "q.prom", "app_queue_depth 5\n");

    // Unknown agents are refused.
    let stranger_state = tempfile::tempdir().expect("tempdir");
    let stranger = agent(
        &c,
        "stranger",
        "stranger",
        files.path(),
        stranger_state.path(),
        "",
        "",
    );

    // Enrolment: a one-time token exchanged for the agent's own credential.
    let enrol: api::Enrollment = post_as(&c, &admin, "/api/v1/agents/web-1/enroll", "{}").await;
    let web_state = tempfile::tempdir().expect("tempdir");
    let web = agent(
        &c,
        "web-1",
        "web-1",
        files.path(),
        web_state.path(),
        &enrol.token,
        "",
    );
    wait_for("web-1's series", 15 * SECOND, || async {
        hosts_with_series(&c, &token)
            .await
            .contains(&"web-1".to_string())
            .then_some(())
    })
    .await;
    let credential_file = web_state.path().join("spool/credential");
    let credential = std::fs::read_to_string(&credential_file).expect("credential kept");
    assert!(credential.starts_with("wpa_"));
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&credential_file)
            .expect("meta")
            .permissions()
            .mode();
        assert_eq!(
            mode & 0o777,
            0o600,
            "the credential is readable by its owner only"
        );
    }

    // The token works once; another agent's credential writes nothing, and
    // a credential is bound to its host.
    let reuse_state = tempfile::tempdir().expect("tempdir");
    let reuse = agent(
        &c,
        "web-1",
        "web-9",
        files.path(),
        reuse_state.path(),
        &enrol.token,
        "",
    );
    let thief_state = tempfile::tempdir().expect("tempdir");
    let thief = agent(
        &c,
        "db-1",
        "db-1",
        files.path(),
        thief_state.path(),
        "",
        &credential,
    );
    let spoof_state = tempfile::tempdir().expect("tempdir");
    let spoof = agent(
        &c,
        "web-1",
        "db-2",
        files.path(),
        spoof_state.path(),
        "",
        &credential,
    );
    tokio::time::sleep(3 * SECOND).await;
    assert_eq!(hosts_with_series(&c, &token).await, ["web-1"]);
    let agents: Vec<api::Agent> = get_as(&c, &admin, "/api/v1/agents").await;
    let ids: Vec<&str> = agents.iter().map(|a| a.id.as_str()).collect();
    assert_eq!(ids, ["web-1"], "refused agents are not registered");
    assert_eq!(
        agents[0].hostname, "web-1",
        "a refused hello did not take over web-1"
    );
    for a in [stranger, reuse, thief, spoof] {
        a.stop().await;
    }

    // A restart uses the kept credential (no enrolment token any more).
    web.stop().await;
    let web = agent(&c, "web-1", "web-1", files.path(), web_state.path(), "", "");
    wait_for("web-1 back", 15 * SECOND, || async {
        let a: Vec<api::Agent> = get_as(&c, &admin, "/api/v1/agents").await;
        a.iter().any(|a| a.id == "web-1" && a.connected).then_some(())
    })
    .await;
    let creds: Vec<api::AgentCredential> = get_as(&c, &admin, "/api/v1/agent-credentials").await;
    assert_eq!(creds.len(), 1);
    assert_eq!(
        (creds[0].agent.as_str(), creds[0].hostname.as_str()),
        ("web-1", "web-1")
    );

    // Revocation ends the stream at once and for good.
    let (s, _) = call(&c, &admin, "POST", "/api/v1/agents/web-1/revoke", None).await;
    assert_eq!(s, StatusCode::NO_CONTENT);
    wait_for("web-1 cut off", 10 * SECOND, || async {
        let a: Vec<api::Agent> = get_as(&c, &admin, "/api/v1/agents").await;
        a.iter().any(|a| a.id == "web-1" && !a.connected).then_some(())
    })
    .await;
    tokio::time::sleep(2 * SECOND).await;
    let a: Vec<api::Agent> = get_as(&c, &admin, "/api/v1/agents").await;
    assert!(a.iter().all(|a| !a.connected), "a revoked agent came back");
    let creds: Vec<api::AgentCredential> = get_as(&c, &admin, "/api/v1/agent-credentials").await;
    assert!(creds[0].revoked_at.is_some());
    web.stop().await;
    c.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn injection_and_oversized_input_through_every_parameter_change_nothing() {
    let data = tempfile::tempdir().expect("tempdir");
    let c = strict_collector(data.path()).await;
    let token = admin_token(&c).await;
    let admin = As::Token(&token);
    let enrol: api::Enrollment = post_as(&c, &admin, "/api/v1/agents/web-1/enroll", "{}").await;
    let files = tempfile::tempdir().expect("tempdir");
    let state = tempfile::tempdir().expect("tempdir");
    write_textfile(files.path(), "q.prom", "app_queue_depth 95\n");
    let web = agent(&c, "web-1", "web-1", files.path(), state.path(), &enrol.token, "");
    wait_for("the queue fault", 15 * SECOND, || async {
        let f: Vec<api::Fault> = get_as(&c, &admin, "/api/v1/faults").await;
        (!f.is_empty()).then_some(())
    })
    .await;
    let before: Vec<api::Fault> = get_as(&c, &admin, "/api/v1/faults").await;

    let long = "a".repeat(10_000);
    let nasty = [
        "' OR '1'='1",
        "1; DROP TABLE faults; --",
        "1) OR 1=1 --",
        "%00",
        "%FF%FE",
        "\u{202e}evil",
        "../../etc/passwd",
        long.as_str(),
    ];
    let endpoints: [(&str, &[&str]); 8] = [
        ("/api/v1/faults", &["status", "severity", "host", "rule", "limit"]),
        ("/api/v1/series", &["metric", "host", "queue"]),
        ("/api/v1/query", &["metric", "since", "until", "host"]),
        ("/api/v1/notifications", &["fault", "status", "limit"]),
        ("/api/v1/deadline", &["severity", "opened_at"]),
        ("/api/v1/oncall", &["at"]),
        ("/api/v1/audit", &["actor", "limit"]),
        ("/api/v1/silences", &["x"]),
    ];
    let enc = |s: &str| -> String {
        s.bytes()
            .map(|b| match b {
                b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'%' => {
                    (b as char).to_string()
                }
                _ => format!("%{b:02X}"),
            })
            .collect()
    };
    for (path, params) in endpoints {
        for p in params {
            for v in nasty {
                let q = format!("{path}?{p}={}", enc(v));
                let (s, body) = call(&c, &admin, "GET", &q, None).await;
                assert!(
                    s.is_success() || s.is_client_error(),
                    "GET {path}?{p}=<{} bytes>: {s}: {}",
                    v.len(),
                    &body[..body.len().min(300)]
                );
                if s == StatusCode::OK && path == "/api/v1/faults" && *p != "limit" {
                    let f: Vec<api::Fault> = serde_json::from_str(&body).expect("faults");
                    assert!(f.is_empty(), "{p}={v:?} matched faults: injection");
                }
            }
        }
    }
    // Path parameters and bodies.
    for v in nasty {
        for path in [
            format!("/api/v1/faults/{}", enc(v)),
            format!("/api/v1/faults/1/{}", enc(v)),
            format!("/api/v1/users/{}/disable", enc(v)),
            format!("/api/v1/tokens/{}/revoke", enc(v)),
            format!("/api/v1/agents/{}/revoke", enc(v)),
        ] {
            let method = if path.starts_with("/api/v1/faults/") && !path.contains("/1/") {
                "GET"
            } else {
                "POST"
            };
            let (s, body) = call(&c, &admin, method, &path, Some("{}")).await;
            assert!(
                s.is_client_error(),
                "{method} <{} bytes>: {s}: {}",
                path.len(),
                &body[..body.len().min(300)]
            );
        }
        let user = serde_json::json!({"name": v, "role": "viewer"}).to_string();
        let (s, _) = call(&c, &admin, "POST", "/api/v1/users", Some(&user)).await;
        assert_eq!(s, StatusCode::BAD_REQUEST, "user name {v:?}");
        let note = serde_json::json!({"text": v}).to_string();
        let (s, _) = call(
            &c,
            &admin,
            "POST",
            &format!("/api/v1/faults/{}/notes", before[0].id),
            Some(&note),
        )
        .await;
        assert!(s.is_success(), "a note is text, whatever it says");
    }
    // A request line far past what the server reads is refused outright
    // (an error status or a closed connection), and the server goes on.
    let url = format!(
        "http://{}/api/v1/faults?host={}",
        c.http_addr(),
        "a".repeat(1 << 20)
    );
    if let Ok(r) = reqwest::Client::new().get(&url).bearer_auth(&token).send().await {
        assert!(r.status().is_client_error(), "{}", r.status());
    }
    let _: Vec<api::Fault> = get_as(&c, &admin, "/api/v1/faults").await;
    let huge = format!("{{\"text\":\"{}\"}}", "x".repeat(400_000));
    let (s, _) = call(
        &c,
        &admin,
        "POST",
        &format!("/api/v1/faults/{}/notes", before[0].id),
        Some(&huge),
    )
    .await;
    assert_eq!(s, StatusCode::PAYLOAD_TOO_LARGE);
    for bad in ["{", "[]", "null", "{\"text\": 5}", "\u{0}"] {
        let (s, _) = call(
            &c,
            &admin,
            "POST",
            &format!("/api/v1/faults/{}/notes", before[0].id),
            Some(bad),
        )
        .await;
        assert_eq!(s, StatusCode::BAD_REQUEST, "body {bad:?}");
    }

    // Everything is as it was: the same faults, users that still sign in,
    // and the notes stored verbatim.
    let after: Vec<api::Fault> = get_as(&c, &admin, "/api/v1/faults").await;
    assert_eq!(after.len(), before.len());
    let users: Vec<api::User> = get_as(&c, &admin, "/api/v1/users").await;
    assert_eq!(users.len(), 1);
    let f: api::Fault = get_as(&c, &admin, &format!("/api/v1/faults/{}", before[0].id)).await;
    assert!(f.timeline.iter().any(|e| e.message.contains("DROP TABLE faults")));
    web.stop().await;
    c.shutdown().await;
}
