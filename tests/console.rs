//! The web console against a real collector with a real agent, in a real
//! browser (Debian's Chromium over WebDriver, headless, off the network):
//! sign in, the overview shows the host, a rule's fault appears without a
//! reload, it is acknowledged and, once resolved, closed with cause and
//! handling; the timeline shows each step; English by a switch that is
//! remembered; a viewer sees no actions and a forged write with its cookie
//! gets 403; a write without the CSRF token is refused; an idle session
//! expires. Every page is screenshotted in both languages at desktop and
//! phone width into `target/console-screenshots/`.
//!
//! One browser for the binary: one test drives it; the checks without a
//! browser are their own tests.

use std::path::{Path, PathBuf};
use std::time::Duration;

use watchpost_collector::Collector;
use watchpost_collector::config::SecurityConfig;
use watchpost_collector::rules::RuleSet;
use watchpost_model::api::Role;
use watchpost_tests::browser::Browser;
use watchpost_tests::{collector_config_from, start_agent, write_textfile};

const RULES: &str = r#"
[[rule]]
name = "queue_deep"
metric = "app_queue_depth"
when = "> 90"
severity = "urgent"
summary = "队列积压 {value}"
"#;

const OPERATOR: (&str, &str) = ("ops", "operator-pass-1");
const VIEWER: (&str, &str) = ("boss", "viewer-pass-12");
const ADMIN: (&str, &str) = ("root", "admin-pass-123");

async fn collector(data: &Path, extra: &str) -> Collector {
    let mut config = collector_config_from(data, extra);
    config.security = SecurityConfig {
        agents_enrolled: false,
        api_users: true,
    };
    let rules = RuleSet::parse(RULES, "rules.toml").expect("rules");
    let c = Collector::start(config, rules).await.expect("collector starts");
    for ((name, password), role) in
        [OPERATOR, VIEWER, ADMIN]
            .into_iter()
            .zip([Role::Operator, Role::Viewer, Role::Admin])
    {
        c.core()
            .access
            .add_user(name, role, Some(password.to_string()), 1_800_000_000_000)
            .await
            .expect("user");
    }
    c
}

fn shots() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("target/console-screenshots")
}

/// A client that keeps cookies and does not follow redirects.
fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("client")
}

/// Signs in over plain HTTP; returns the session cookie's value.
async fn sign_in(c: &Collector, (user, password): (&str, &str)) -> String {
    let r = client()
        .post(format!("http://{}/login", c.http_addr()))
        .form(&[("user", user), ("password", password), ("next", "/")])
        .send()
        .await
        .expect("sign in");
    assert_eq!(r.status(), 303, "sign-in of {user}");
    let cookie = r
        .headers()
        .get("set-cookie")
        .and_then(|v| v.to_str().ok())
        .expect("a session cookie")
        .to_string();
    assert!(
        cookie.contains("HttpOnly") && cookie.contains("SameSite=Strict"),
        "{cookie}"
    );
    cookie
        .split(';')
        .next()
        .and_then(|kv| kv.split_once('='))
        .map(|(_, v)| v.to_string())
        .expect("cookie value")
}

/// A page's CSRF token (the `csrf` meta tag).
async fn csrf_of(c: &Collector, cookie: &str, path: &str) -> String {
    let html = client()
        .get(format!("http://{}{path}", c.http_addr()))
        .header("cookie", format!("watchpost_session={cookie}"))
        .send()
        .await
        .expect("page")
        .text()
        .await
        .expect("html");
    html.split("<meta name=\"csrf\" content=\"")
        .nth(1)
        .and_then(|r| r.split('"').next())
        .expect("csrf meta tag")
        .to_string()
}

async fn post_form(c: &Collector, cookie: &str, path: &str, form: &[(&str, &str)]) -> (u16, String) {
    let r = client()
        .post(format!("http://{}{path}", c.http_addr()))
        .header("cookie", format!("watchpost_session={cookie}"))
        .form(form)
        .send()
        .await
        .expect("post");
    (r.status().as_u16(), r.text().await.unwrap_or_default())
}

/// Screenshots the current page as `name` at desktop and phone width and
/// checks that the phone layout does not scroll sideways.
async fn shoot(b: &Browser, name: &str, lang: &str) {
    let dir = shots();
    b.screenshot_page(1280, false, &dir.join(format!("{name}-{lang}-desktop.png")))
        .await;
    b.screenshot_page(375, true, &dir.join(format!("{name}-{lang}-phone.png")))
        .await;
    let sideways = b
        .script("return document.documentElement.scrollWidth - window.innerWidth")
        .await
        .as_i64()
        .unwrap_or(0);
    assert!(
        sideways <= 0,
        "{name} ({lang}) scrolls sideways by {sideways} px at 375 px"
    );
    b.viewport(1280, 900, false).await;
}

async fn sign_in_browser(b: &Browser, (user, password): (&str, &str)) {
    let s = Duration::from_secs(10);
    let field = b.wait("#user", s).await;
    b.clear(&field).await;
    b.type_into(&field, user).await;
    b.type_into(&b.find("#password").await, password).await;
    b.click(&b.find("#sign-in").await).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fault_is_taken_to_closed_in_a_real_browser() {
    let data = tempfile::tempdir().expect("tempdir");
    let files = tempfile::tempdir().expect("tempdir");
    // The shipped roster and the 2026 calendar of mainland China.
    let examples = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples");
    let c = collector(
        data.path(),
        &format!(
            "[collector]\noncall = \"{}\"\ncalendar = \"{}\"\ninspections = \"{}\"\n",
            examples.join("oncall.toml").display(),
            examples.join("calendars/cn-2026.toml").display(),
            examples.join("inspections.toml").display()
        ),
    )
    .await;
    let base = format!("http://{}", c.http_addr());
    write_textfile(files.path(), "app.prom", "app_queue_depth 10\n");
    let agent = start_agent(&c, "web-1", Some(files.path()), true, Duration::from_millis(500));
    let b = Browser::start().await;
    b.viewport(1280, 900, false).await;
    let wait = Duration::from_secs(30);

    // Signed out: the sign-in page, then back where the browser was going.
    b.goto(&format!("{base}/faults")).await;
    assert!(
        b.url().await.contains("/login?next=%2Ffaults"),
        "{}",
        b.url().await
    );
    assert_eq!(b.script("return document.documentElement.lang").await, "zh-CN");
    shoot(&b, "login", "zh").await;
    sign_in_browser(&b, ("ops", "wrong password")).await;
    let err = b.wait(".flash.error", wait).await;
    assert!(b.text(&err).await.contains("用户名或密码错误"));
    sign_in_browser(&b, OPERATOR).await;
    b.wait("table.faults, #fault-list", wait).await;
    assert!(b.url().await.ends_with("/faults"), "{}", b.url().await);
    let cookie = b.cookie("watchpost_session").await.expect("session cookie");
    assert_eq!(cookie["httpOnly"], true);
    assert_eq!(cookie["sameSite"], "Strict");

    // The overview shows the host, well.
    b.goto(&format!("{base}/")).await;
    let tile = b.wait(".tile.state-ok[data-host=\"web-1\"]", wait).await;
    assert!(b.text(&tile).await.contains("正常"), "{}", b.text(&tile).await);
    shoot(&b, "overview-ok", "zh").await;

    // The host's page: its charts draw (pixels that are not background).
    b.click(&tile).await;
    b.wait(".chart[data-series]", wait).await;
    let drawn = b
        .script(
            "const c = document.querySelector('.chart canvas'); const d = c.getContext('2d')
               .getImageData(0, 0, c.width, c.height).data; let n = 0;
             for (let i = 0; i < d.length; i += 4) {
               if (d[i + 3] > 0 && !(d[i] > 245 && d[i + 1] > 245 && d[i + 2] > 245)) n++;
             } return n;",
        )
        .await
        .as_u64()
        .unwrap_or(0);
    assert!(drawn > 200, "the CPU chart drew {drawn} non-background pixels");
    let series = b
        .script("return document.querySelector('.chart').dataset.series")
        .await;
    assert_ne!(series, "0", "the CPU chart has a series");
    shoot(&b, "host", "zh").await;
    b.goto(&format!("{base}/hosts/web-1?range=24h")).await;
    b.wait(".chart[data-series]", wait).await;
    b.goto(&format!("{base}/")).await;
    b.wait(".tile.state-ok[data-host=\"web-1\"]", wait).await;

    // A rule fires: the tile turns urgent and the count shows it, without a reload.
    b.script("window.__same_page = true").await;
    write_textfile(files.path(), "app.prom", "app_queue_depth 95\n");
    let tile = b.wait(".tile.state-urgent[data-host=\"web-1\"]", wait).await;
    assert!(
        b.text(&tile).await.contains("紧急"),
        "severity in text, not only colour"
    );
    assert_eq!(
        b.script("return window.__same_page === true").await,
        true,
        "no reload"
    );
    let due = b.wait("section[aria-label=\"一小时内到期\"] li a", wait).await;
    shoot(&b, "overview-fault", "zh").await;

    // Open it: summary, deadlines, and acknowledge.
    b.click(&due).await;
    b.wait("#act-ack", wait).await;
    let fault_url = b.url().await;
    let id: i64 = fault_url
        .rsplit('/')
        .next()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("a fault page: {fault_url}"));
    let body = b.script("return document.body.innerText").await.to_string();
    assert!(
        body.contains("队列积压 95") && body.contains("响应期限"),
        "{body}"
    );
    shoot(&b, "fault-open", "zh").await;
    b.type_into(&b.find("#ack-comment").await, "正在处理").await;
    b.click(&b.find("#act-ack").await).await;
    b.wait(".flash.ok", wait).await;
    assert_eq!(b.text(&b.find("#fault-status").await).await, "已响应");
    assert!(b.all("#act-ack").await.is_empty(), "acknowledged once");

    // The queue drains, the rule resolves it; close with cause and handling.
    write_textfile(files.path(), "app.prom", "app_queue_depth 5\n");
    let deadline = std::time::Instant::now() + wait;
    while b.all("#act-close").await.is_empty() {
        assert!(std::time::Instant::now() < deadline, "fault {id} did not resolve");
        tokio::time::sleep(Duration::from_millis(500)).await;
        b.goto(&fault_url).await;
    }
    shoot(&b, "fault-resolved", "zh").await;
    // Closing without the handling is refused by the browser's form check
    // and by the server (the server's answer is checked below, over HTTP).
    b.type_into(&b.find("#close-cause").await, "消费进程挂起").await;
    b.type_into(&b.find("#close-handling").await, "重启消费进程，队列恢复")
        .await;
    b.click(&b.find("#act-close").await).await;
    b.wait(".flash.ok", wait).await;
    assert_eq!(b.text(&b.find("#fault-status").await).await, "已关闭");
    let timeline = b.text(&b.find("table.timeline").await).await;
    for step in ["正在处理", "消费进程挂起"] {
        assert!(timeline.contains(step), "timeline lacks {step}: {timeline}");
    }
    assert!(timeline.contains("ops"), "who acted: {timeline}");
    b.wait(".chart[data-series]", wait).await;
    let series = b
        .script("return document.querySelector('.chart').dataset.series")
        .await;
    assert_eq!(series, "1", "the fault's series is drawn around it");
    shoot(&b, "fault-closed", "zh").await;

    // The fault list, filtered.
    b.goto(&format!("{base}/faults?status=closed&severity=urgent"))
        .await;
    let row = b.wait(&format!("tr[data-fault=\"{id}\"]"), wait).await;
    assert!(b.text(&row).await.contains("已关闭"));
    shoot(&b, "faults", "zh").await;

    // On call, maintenance (a window made through the form), reports.
    b.goto(&format!("{base}/oncall")).await;
    b.wait("table.roster", wait).await;
    let roster = b.text(&b.find("table.roster").await).await;
    assert!(roster.contains("工作日") && roster.contains("休息日"), "{roster}");
    shoot(&b, "oncall", "zh").await;
    // National Day week: holidays named, the make-up working day marked.
    b.goto(&format!("{base}/oncall?month=2026-10")).await;
    let october = b.text(&b.wait("table.roster", wait).await).await;
    assert!(october.contains("国庆节"), "{october}");
    assert!(
        b.text(&b.find("table.roster tbody tr").await).await.contains(':'),
        "someone is on duty at 09:00 on 1 October: {october}"
    );
    shoot(&b, "oncall-october", "zh").await;
    b.goto(&format!("{base}/maintenance")).await;
    b.type_into(&b.wait("#w-host", wait).await, "db-9").await;
    // Two hours from now in the calendar's zone, as a datetime-local field holds it.
    let ends = jiff::Timestamp::now()
        .checked_add(jiff::SignedDuration::from_hours(2))
        .expect("time")
        .to_zoned(c.core().config.calendar.time_zone().clone())
        .strftime("%Y-%m-%dT%H:%M")
        .to_string();
    b.script(&format!("document.getElementById('w-ends').value = '{ends}'"))
        .await;
    b.type_into(&b.find("#w-reason").await, "数据库升级").await;
    b.type_into(&b.find("#w-ticket").await, "CHG-2026-118").await;
    b.click(&b.find("#add-window").await).await;
    let w = b.wait("tr[data-window]", wait).await;
    let text = b.text(&w).await;
    assert!(text.contains("db-9") && text.contains("CHG-2026-118"), "{text}");
    shoot(&b, "maintenance", "zh").await;
    // Today's inspection checklist: tick an item; signing with items
    // missing is refused, naming them.
    b.goto(&format!("{base}/inspections")).await;
    let row = "table.inspections tbody tr:first-child";
    b.click(&b.wait(&format!("{row} input[value=normal]"), wait).await)
        .await;
    b.type_into(&b.find(&format!("{row} input[name=remark]")).await, "温湿度正常")
        .await;
    b.click(&b.find(&format!("{row} button")).await).await;
    let ticked = b
        .text(&b.wait(&format!("{row} .result-normal"), wait).await)
        .await;
    assert_eq!(ticked, "正常");
    b.click(&b.find("#sign").await).await;
    let refused = b.text(&b.wait(".flash.error", wait).await).await;
    assert!(
        refused.contains("not recorded") || refused.contains("missing"),
        "{refused}"
    );
    shoot(&b, "inspections", "zh").await;
    b.goto(&format!("{base}/reports")).await;
    b.wait("#r-month", wait).await;
    shoot(&b, "reports", "zh").await;
    let (status, csv) = {
        let r = client()
            .get(format!("{base}/reports/daily?format=csv"))
            .header(
                "cookie",
                format!(
                    "watchpost_session={}",
                    b.cookie("watchpost_session").await.expect("cookie")["value"]
                        .as_str()
                        .unwrap_or_default()
                ),
            )
            .send()
            .await
            .expect("report");
        (r.status().as_u16(), r.text().await.unwrap_or_default())
    };
    // Through the session, to the report generator: a collector born today
    // has nothing to record for yesterday, and says so.
    assert_eq!(status, 400, "{csv}");
    assert!(csv.contains("nothing to record"), "{csv}");

    // English, remembered for the user across sign-ins.
    b.goto(&format!("{base}/faults?status=closed&severity=urgent"))
        .await;
    b.wait(&format!("tr[data-fault=\"{id}\"]"), wait).await;
    b.click(&b.find("#switch-lang").await).await;
    b.wait("html[lang=\"en\"]", wait).await;
    assert!(b.text(&b.find("tr[data-fault]").await).await.contains("Closed"));
    shoot(&b, "faults", "en").await;
    b.goto(&fault_url).await;
    b.wait("#fault-status", wait).await;
    assert_eq!(b.text(&b.find("#fault-status").await).await, "Closed");
    shoot(&b, "fault-closed", "en").await;
    b.goto(&format!("{base}/")).await;
    b.wait(".tile[data-host=\"web-1\"]", wait).await;
    shoot(&b, "overview", "en").await;
    b.goto(&format!("{base}/hosts/web-1")).await;
    b.wait(".chart[data-series]", wait).await;
    shoot(&b, "host", "en").await;
    for page in [
        "oncall",
        "maintenance",
        "reports",
        "inspections",
        "changes",
        "tokens",
    ] {
        b.goto(&format!("{base}/{page}")).await;
        b.wait("main h1", wait).await;
        shoot(&b, page, "en").await;
    }
    b.click(&b.find("#sign-out").await).await;
    b.wait("#user", wait).await;
    // The sign-in page in English tells a failure in English.
    b.goto(&format!("{base}/login?lang=en")).await;
    sign_in_browser(&b, ("ops", "wrong password")).await;
    let err = b.wait(".flash.error", wait).await;
    assert!(b.text(&err).await.contains("Wrong user name or password"));
    b.wait("html[lang=\"en\"]", wait).await;
    shoot(&b, "login", "en").await;
    sign_in_browser(&b, OPERATOR).await;
    b.wait("html[lang=\"en\"]", wait).await;

    // A viewer sees no actions; its cookie's forged write gets 403. The
    // sign-in page is English too: wait for the signed-in page itself.
    b.click(&b.wait("#sign-out", wait).await).await;
    write_textfile(files.path(), "app.prom", "app_queue_depth 99\n");
    sign_in_browser(&b, VIEWER).await;
    b.wait(".tile.state-urgent[data-host=\"web-1\"]", wait).await;
    let open = c
        .core()
        .db
        .faults(watchpost_collector::db::FaultFilter {
            status: vec![watchpost_model::api::FaultStatus::Open],
            limit: 10,
            ..Default::default()
        })
        .await
        .expect("faults");
    let reopened = open.first().expect("an open fault").id;
    b.goto(&format!("{base}/faults/{reopened}")).await;
    b.wait("#fault-status", wait).await;
    assert!(
        b.all("section.actions, #act-ack, #act-note").await.is_empty(),
        "a viewer sees no action"
    );
    shoot(&b, "fault-viewer", "zh").await;
    b.goto(&format!("{base}/maintenance")).await;
    b.wait("main h1", wait).await;
    assert!(
        b.all("#add-window").await.is_empty(),
        "a viewer cannot add a window"
    );
    assert!(
        b.all("a[href=\"/audit\"]").await.is_empty(),
        "nor see the audit log"
    );
    let viewer_cookie = b.cookie("watchpost_session").await.expect("cookie")["value"]
        .as_str()
        .expect("value")
        .to_string();
    let csrf = b
        .script("return document.querySelector('meta[name=csrf]').content")
        .await
        .as_str()
        .expect("csrf")
        .to_string();
    let (status, body) = post_form(
        &c,
        &viewer_cookie,
        &format!("/faults/{reopened}/ack"),
        &[("csrf", &csrf), ("comment", "forged")],
    )
    .await;
    assert_eq!(status, 403, "{body}");
    assert!(body.contains("needs the operator role"), "{body}");
    let f = c.core().db.fault(reopened).await.expect("db").expect("fault");
    assert!(f.acknowledged_by.is_none(), "the forged ack changed nothing");

    // An admin reads the audit log in the console.
    b.click(&b.find("#sign-out").await).await;
    sign_in_browser(&b, ADMIN).await;
    b.wait("main", wait).await;
    b.goto(&format!("{base}/audit")).await;
    let log = b.text(&b.wait("table.faults", wait).await).await;
    assert!(log.contains(&format!("/faults/{id}/close")), "{log}");
    shoot(&b, "audit", "zh").await;
    // The admin pages: an enrolment's one-time token is on the page.
    b.goto(&format!("{base}/agents")).await;
    b.type_into(&b.wait("#a-id", wait).await, "edge-9").await;
    b.click(&b.find("#enroll").await).await;
    let secret = b.text(&b.wait("#secret", wait).await).await;
    assert!(secret.starts_with("enroll_token = "), "{secret}");
    shoot(&b, "agents-enrolled", "zh").await;
    // A machine room, from sensor readings as a Modbus poller sends them.
    let store = &c.core().store;
    let now = c.core().clock.now_ms();
    for (i, (metric, v)) in [
        ("room_temperature_celsius", 23.5),
        ("room_humidity_percent", 48.0),
        ("modbus_up", 1.0),
    ]
    .into_iter()
    .enumerate()
    {
        let (sid, _) = store.resolve(
            metric,
            &[("host", "poller-1"), ("device", "th-1"), ("room", "A-201")],
        );
        for k in 0..30 {
            store
                .append(sid, now - (30 - k) * 10_000, v + (k % 5) as f64 * 0.1 * i as f64)
                .expect("append");
        }
    }
    for lang in ["zh", "en"] {
        if lang == "en" {
            b.click(&b.find("#switch-lang").await).await;
            b.wait("html[lang=\"en\"]", wait).await;
        }
        for page in ["agents", "users", "tokens", "changes", "rooms/A-201"] {
            b.goto(&format!("{base}/{page}")).await;
            b.wait("main h1", wait).await;
            shoot(&b, &page.replace('/', "-"), lang).await;
        }
    }
    // A session idle past console.session_idle ends: the next page is the
    // sign-in page saying so, and signing in goes back to that page.
    let short = tempfile::tempdir().expect("tempdir");
    let c2 = collector(short.path(), "[console]\nsession_idle = \"2s\"\n").await;
    let base2 = format!("http://{}", c2.http_addr());
    b.goto(&format!("{base2}/login?lang=zh")).await;
    sign_in_browser(&b, OPERATOR).await;
    b.wait(".tiles, main h2", wait).await;
    tokio::time::sleep(Duration::from_millis(3000)).await;
    b.goto(&format!("{base2}/oncall")).await;
    let notice = b.wait(".flash.error", wait).await;
    assert!(b.text(&notice).await.contains("会话已过期"), "the expiry is said");
    shoot(&b, "login-expired", "zh").await;
    sign_in_browser(&b, OPERATOR).await;
    // The sign-in page has a main h1 too: wait until the browser has left it.
    let at = watchpost_tests::wait_for("the page after signing in", wait, || async {
        let at = b.script("return location.pathname").await;
        (at.as_str() != Some("/login")).then_some(at)
    })
    .await;
    b.wait("main h1", wait).await;
    assert_eq!(at.as_str(), Some("/oncall"), "back to the page asked for");
    c2.shutdown().await;
    drop(b);
    agent.stop().await;

    // Every console write is in the audit log, refused ones included.
    let audit: Vec<serde_json::Value> = client()
        .get(format!("{base}/api/v1/audit?limit=1000"))
        .basic_auth(ADMIN.0, Some(ADMIN.1))
        .send()
        .await
        .expect("audit")
        .json()
        .await
        .expect("audit json");
    let has = |user: &str, path: &str, status: u64| {
        audit
            .iter()
            .any(|a| a["actor"] == user && a["path"] == path && a["status"] == status)
    };
    assert!(has("ops", &format!("/faults/{id}/ack"), 303), "{audit:#?}");
    assert!(has("ops", &format!("/faults/{id}/close"), 303), "{audit:#?}");
    assert!(has("boss", &format!("/faults/{reopened}/ack"), 403), "{audit:#?}");
    assert!(
        audit.iter().all(|a| !a.to_string().contains("operator-pass-1")),
        "no password in the audit log"
    );
    c.shutdown().await;
}

#[tokio::test]
async fn writes_need_the_sessions_csrf_token_and_the_right_fields() {
    let data = tempfile::tempdir().expect("tempdir");
    let c = collector(data.path(), "").await;
    let cookie = sign_in(&c, OPERATOR).await;
    // A fault reported by phone, through the API.
    let reported: serde_json::Value = client()
        .post(format!("http://{}/api/v1/faults", c.http_addr()))
        .basic_auth(OPERATOR.0, Some(OPERATOR.1))
        .json(&serde_json::json!({
            "severity": "general", "host": "web-1", "summary": "用户来电：页面打不开",
            "reporter": { "name": "张三", "phone": "0851-1234567" },
        }))
        .send()
        .await
        .expect("report")
        .json()
        .await
        .expect("fault json");
    let id = reported["id"].as_i64().unwrap_or_else(|| panic!("{reported}"));
    // No token, a wrong token, another session's token: 403, nothing done.
    let other = csrf_of(&c, &sign_in(&c, OPERATOR).await, "/").await;
    for form in [vec![], vec![("csrf", "nope")], vec![("csrf", other.as_str())]] {
        let mut form = form;
        form.push(("comment", "x"));
        let (status, body) = post_form(&c, &cookie, &format!("/faults/{id}/ack"), &form).await;
        assert_eq!(status, 403, "{form:?}: {body}");
        assert!(body.contains("CSRF"), "{body}");
    }
    let f = c.core().db.fault(id).await.expect("db").expect("fault");
    assert!(f.acknowledged_by.is_none());
    // With the token: missing fields and wrong states are named.
    let csrf = csrf_of(&c, &cookie, "/").await;
    let (status, body) = post_form(&c, &cookie, &format!("/faults/{id}/notes"), &[("csrf", &csrf)]).await;
    assert_eq!(status, 400, "{body}");
    assert!(body.contains("notes needs a non-empty text"), "{body}");
    let (status, body) = post_form(
        &c,
        &cookie,
        &format!("/faults/{id}/close"),
        &[("csrf", &csrf), ("cause", "c"), ("handling", "h")],
    )
    .await;
    assert_eq!(status, 409, "{body}");
    assert!(body.contains("resolve it before closing it"), "{body}");
    let (status, _) = post_form(&c, &cookie, &format!("/faults/{id}/ack"), &[("csrf", &csrf)]).await;
    assert_eq!(status, 303);
    // Signed out: writes are refused, pages send to the sign-in page.
    let (status, _) = post_form(&c, "forged", &format!("/faults/{id}/notes"), &[("text", "x")]).await;
    assert_eq!(status, 303);
    let r = client()
        .get(format!("http://{}/faults/{id}", c.http_addr()))
        .send()
        .await
        .expect("get");
    assert_eq!(r.status(), 303);
    assert_eq!(
        r.headers()["location"],
        format!("/login?next=%2Ffaults%2F{id}").as_str()
    );
    // The API is unchanged: JSON, and a token or password still needed.
    let r = client()
        .get(format!("http://{}/api/v1/faults", c.http_addr()))
        .header("cookie", format!("watchpost_session={cookie}"))
        .send()
        .await
        .expect("api");
    assert_eq!(r.status(), 401, "a console cookie is not an API credential");
    // Pages are compressed.
    let r = client()
        .get(format!("http://{}/assets/htmx.min.js", c.http_addr()))
        .header("accept-encoding", "gzip")
        .send()
        .await
        .expect("asset");
    assert_eq!(r.headers()["content-encoding"], "gzip");
    c.shutdown().await;
}

#[tokio::test]
async fn an_idle_session_expires_and_failed_sign_ins_are_slowed() {
    let data = tempfile::tempdir().expect("tempdir");
    let c = collector(data.path(), "[console]\nsession_idle = \"2s\"\n").await;
    let cookie = sign_in(&c, OPERATOR).await;
    let page = |path: &'static str, htmx: bool| {
        let (c, cookie) = (c.http_addr(), cookie.clone());
        async move {
            let mut r = client()
                .get(format!("http://{c}{path}"))
                .header("cookie", format!("watchpost_session={cookie}"));
            if htmx {
                r = r.header("hx-request", "true");
            }
            r.send().await.expect("get")
        }
    };
    assert_eq!(page("/", false).await.status(), 200);
    tokio::time::sleep(Duration::from_millis(1200)).await;
    assert_eq!(
        page("/overview/body", true).await.status(),
        200,
        "activity keeps it"
    );
    tokio::time::sleep(Duration::from_millis(2500)).await;
    let r = page("/overview/body", true).await;
    assert_eq!(r.status(), 401, "idle past 2 s");
    assert!(
        r.headers()["hx-redirect"]
            .to_str()
            .expect("ascii")
            .contains("expired=1")
    );
    let r = page("/", false).await;
    assert_eq!(r.status(), 303);
    // Three wrong passwords go by at once; the fourth waits a second.
    let wrong = |n: usize| {
        let c = c.http_addr();
        async move {
            let t = std::time::Instant::now();
            let r = client()
                .post(format!("http://{c}/login"))
                .form(&[("user", "ops"), ("password", &format!("wrong-{n}"))])
                .send()
                .await
                .expect("login");
            (r.status(), t.elapsed())
        }
    };
    for n in 0..3 {
        assert_eq!(wrong(n).await.0, 401);
    }
    let (status, took) = wrong(3).await;
    assert_eq!(status, 401);
    assert!(
        took >= Duration::from_millis(950),
        "the fourth failure waited {took:?}"
    );
    c.shutdown().await;
}

/// The one-time secret a page shows (`<code id="secret">`).
fn secret_of(html: &str) -> String {
    html.split("<code id=\"secret\">")
        .nth(1)
        .and_then(|r| r.split('<').next())
        .expect("a secret on the page")
        .to_string()
}

async fn get_page(c: &Collector, cookie: &str, path: &str) -> (u16, String) {
    let r = client()
        .get(format!("http://{}{path}", c.http_addr()))
        .header("cookie", format!("watchpost_session={cookie}"))
        .send()
        .await
        .expect("get");
    (r.status().as_u16(), r.text().await.unwrap_or_default())
}

#[tokio::test]
async fn admins_make_users_tokens_and_enrolments_and_changes_are_approved_by_someone_else() {
    let data = tempfile::tempdir().expect("tempdir");
    let c = collector(data.path(), "").await;
    let root = sign_in(&c, ADMIN).await;
    let csrf = csrf_of(&c, &root, "/users").await;
    // A user with a generated password, shown once; she can sign in with it.
    let (status, html) = post_form(
        &c,
        &root,
        "/users",
        &[("csrf", &csrf), ("name", "ann"), ("role", "approver")],
    )
    .await;
    assert_eq!(status, 201, "{html}");
    let password = secret_of(&html);
    assert!(password.len() >= 12, "{password}");
    let (status, html) = post_form(
        &c,
        &root,
        "/users",
        &[("csrf", &csrf), ("name", "bob"), ("role", "chief")],
    )
    .await;
    assert_eq!(status, 400);
    assert!(
        html.contains("expected viewer, operator, approver or admin"),
        "{html}"
    );
    let ann = sign_in(&c, ("ann", &password)).await;
    // A viewer may not see users or agents, but makes and revokes her own token.
    let boss = sign_in(&c, VIEWER).await;
    assert_eq!(get_page(&c, &boss, "/users").await.0, 403);
    assert_eq!(get_page(&c, &boss, "/agents").await.0, 403);
    let (_, html) = get_page(&c, &boss, "/").await;
    assert!(
        !html.contains("href=\"/users\""),
        "a viewer's menu has no users page"
    );
    let boss_csrf = csrf_of(&c, &boss, "/tokens").await;
    let (status, html) = post_form(
        &c,
        &boss,
        "/tokens",
        &[
            ("csrf", &boss_csrf),
            ("name", "report script"),
            ("expires_in", "30d"),
        ],
    )
    .await;
    assert_eq!(status, 201, "{html}");
    let token = secret_of(&html);
    let whoami = |t: String| {
        let url = format!("http://{}/api/v1/whoami", c.http_addr());
        async move {
            client()
                .get(url)
                .bearer_auth(t)
                .send()
                .await
                .expect("whoami")
                .status()
        }
    };
    assert_eq!(whoami(token.clone()).await, 200);
    let tokens = c.core().access.tokens(Some("boss".into())).await.expect("tokens");
    let id = tokens.first().map(|t| t.id).expect("her token");
    let (status, _) = post_form(
        &c,
        &boss,
        &format!("/tokens/{id}/revoke"),
        &[("csrf", &boss_csrf)],
    )
    .await;
    assert_eq!(status, 303);
    assert_eq!(whoami(token).await, 401, "a revoked token stops working");
    // Enrolment: a one-time token for the agent's config; revoking it shows.
    let (status, html) = post_form(
        &c,
        &root,
        "/agents/enroll",
        &[("csrf", &csrf), ("agent", "edge-1")],
    )
    .await;
    assert_eq!(status, 201, "{html}");
    assert!(secret_of(&html).starts_with("enroll_token = "), "{html}");
    let (status, html) = post_form(&c, &root, "/agents/enroll", &[("csrf", &csrf), ("agent", " ")]).await;
    assert_eq!(status, 400);
    assert!(html.contains("enrolling needs the agent"), "{html}");
    // Disabling a user ends her sessions at once.
    let (status, _) = post_form(&c, &root, "/users/ann/disable", &[("csrf", &csrf)]).await;
    assert_eq!(status, 303);
    assert_eq!(
        get_page(&c, &ann, "/").await.0,
        303,
        "a disabled user is signed out"
    );
    let (status, _) = post_form(&c, &root, "/users/ann/enable", &[("csrf", &csrf)]).await;
    assert_eq!(status, 303);
    let ann = sign_in(&c, ("ann", &password)).await;
    // A change request: every plan is required, and someone else approves it.
    let ops = sign_in(&c, OPERATOR).await;
    let ops_csrf = csrf_of(&c, &ops, "/changes").await;
    let mut form = vec![
        ("csrf", ops_csrf.as_str()),
        ("title", "核心交换机升级"),
        ("content", "升级 VRP 固件"),
        ("reason", "厂商安全公告"),
        ("impact", "机房 A-201 网络中断 5 分钟"),
        ("test_plan", "升级后 ping 与业务探测"),
        ("starts_at", "2030-01-10T22:00"),
        ("ends_at", "2030-01-10T23:30"),
        ("hosts", "core-sw-1"),
    ];
    let (status, html) = post_form(&c, &ops, "/changes", &form).await;
    assert_eq!(status, 400, "{html}");
    assert!(
        html.contains("rollback_plan"),
        "the missing plan is named: {html}"
    );
    assert!(html.contains("核心交换机升级"), "what was typed is kept");
    form.push(("rollback_plan", "回退到原固件"));
    let r = client()
        .post(format!("http://{}/changes", c.http_addr()))
        .header("cookie", format!("watchpost_session={ops}"))
        .form(&form)
        .send()
        .await
        .expect("request");
    assert_eq!(r.status(), 303);
    let at = r.headers()["location"].to_str().expect("location").to_string();
    let (status, _) = post_form(&c, &ops, &format!("{at}/approve"), &[("csrf", &ops_csrf)]).await;
    assert_eq!(status, 403, "an operator cannot approve");
    let ann_csrf = csrf_of(&c, &ann, &at).await;
    let (status, html) = post_form(&c, &ann, &format!("{at}/reject"), &[("csrf", &ann_csrf)]).await;
    assert_eq!(status, 400, "rejecting needs a reason: {html}");
    let (status, _) = post_form(&c, &ann, &format!("{at}/approve"), &[("csrf", &ann_csrf)]).await;
    assert_eq!(status, 303);
    let (_, html) = get_page(&c, &ann, &at).await;
    assert!(html.contains("已批准") && html.contains("回退到原固件"), "{html}");
    let id: i64 = at
        .rsplit('/')
        .next()
        .and_then(|i| i.parse().ok())
        .expect("change id");
    let change = c.core().db.change(id).await.expect("db").expect("change");
    assert!(change.window.is_some(), "its approval made a maintenance window");
    assert_eq!(change.decided_by.as_deref(), Some("ann"));
    c.shutdown().await;
}

#[tokio::test]
async fn a_machine_room_and_its_ups_have_their_pages() {
    let data = tempfile::tempdir().expect("tempdir");
    let c = collector(data.path(), "").await;
    let store = &c.core().store;
    let now = c.core().clock.now_ms();
    let put = |metric: &str, labels: &[(&str, &str)], v: f64| {
        let (id, _) = store.resolve(metric, labels);
        store.append(id, now, v).expect("append");
    };
    let th = [
        ("host", "poller-1"),
        ("device", "th-1"),
        ("room", "A-201"),
        ("position", "冷通道"),
    ];
    put("room_temperature_celsius", &th, 23.5);
    put("room_humidity_percent", &th, 48.0);
    put("modbus_up", &th[..3], 1.0);
    let ups = [("host", "poller-1"), ("device", "ups-1"), ("room", "A-201")];
    put("snmp_up", &ups, 1.0);
    put("snmp_ups_battery_charge_percent", &ups, 97.0);
    put("snmp_ups_on_battery", &ups, 0.0);
    let boss = sign_in(&c, VIEWER).await;
    let (_, html) = get_page(&c, &boss, "/overview/body").await;
    assert!(
        html.contains("data-host=\"A-201\"")
            && html.contains("&#x2f;rooms&#x2f;A-201")
            && html.contains("机房"),
        "{html}"
    );
    let (status, html) = get_page(&c, &boss, "/rooms/A-201").await;
    assert_eq!(status, 200, "{html}");
    for want in [
        "温度 (°C)",
        "23.5",
        "冷通道",
        "UPS 电量 (%)",
        "97",
        "UPS 电池电量与负载",
    ] {
        assert!(html.contains(want), "{want} on the room page");
    }
    let (status, html) = get_page(&c, &boss, "/hosts/ups-1").await;
    assert_eq!(status, 200);
    assert!(
        html.contains("UPS 剩余供电时间"),
        "a UPS's page charts its battery"
    );
    assert_eq!(get_page(&c, &boss, "/rooms/B-404").await.0, 404);
    c.shutdown().await;
}
