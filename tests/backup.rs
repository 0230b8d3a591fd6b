//! Backups of a running collector: an agent streams and faults open and
//! resolve while a backup is taken; the backup verifies, restores into a
//! new directory, and a collector started there has every fault, timeline
//! event, notification, user, token and audit row the first one had when
//! the backup was taken. One changed byte, a half-written backup and a
//! non-empty target are refused, naming what is wrong.

use std::path::Path;
use std::time::Duration;

use serde_json::Value;
use watchpost_collector::rules::RuleSet;
use watchpost_collector::{Collector, CollectorConfig};
use watchpost_model::api::{Backup, Fault, Role};
use watchpost_tests::*;

const RULES: &str = r#"
[[rule]]
name = "queue_deep"
metric = "app_queue_depth"
when = "> 90"
recover = "< 85"
severity = "general"
summary = "{host}: queue {queue} holds {value}"
"#;

const SECOND: Duration = Duration::from_secs(1);

/// A collector whose config is a file (so it is in the backup), its data
/// in `data`, backups to `backups`.
async fn collector(dir: &Path, data: &Path, backups: &Path, hook: &str) -> Collector {
    std::fs::write(
        dir.join("oncall.toml"),
        "[[team]]\nname = \"ops\"\nmembers = [ { name = \"li\" } ]\nrotation = { every = \"day\", handover = \"09:00\", start = \"2026-01-01\", order = [\"li\"] }\n",
    )
    .expect("roster");
    std::fs::write(dir.join("rules.toml"), RULES).expect("rules");
    let path = dir.join("collector.toml");
    std::fs::write(
        &path,
        format!(
            "[collector]\noncall = \"oncall.toml\"\nrules = [\"rules.toml\"]\nmin_free = \"64MiB\"\n\
             [security]\nagents = \"open\"\napi = \"open\"\n\
             [backup]\ndir = {backups:?}\nkeep = 3\n\
             [notify]\ngroup_window = \"0s\"\n\
             [[channel]]\nname = \"hook\"\ntype = \"webhook\"\nurl = \"{hook}\"\n\
             [[route]]\nteam = \"ops\"\nchannels = [\"hook\"]\n"
        ),
    )
    .expect("config");
    let loaded = CollectorConfig::load(&path).expect("config loads");
    let config = CollectorConfig {
        grpc_listen: "127.0.0.1:0".parse().expect("addr"),
        http_listen: "127.0.0.1:0".parse().expect("addr"),
        data_dir: data.to_path_buf(),
        heartbeat: Duration::from_millis(300),
        ..loaded
    };
    let rules = RuleSet::load(&config.rules, &config.rules_base).expect("rules");
    Collector::start(config, rules).await.expect("collector starts")
}

/// What a restore must give back: faults with their timelines,
/// notifications, users, tokens, the audit log.
async fn records(c: &Collector) -> [Value; 5] {
    let faults: Vec<Fault> = get(c, "/api/v1/faults?limit=10000").await;
    let mut full = Vec::new();
    for f in &faults {
        let one: Value = get(c, &format!("/api/v1/faults/{}", f.id)).await;
        full.push(one);
    }
    [
        Value::Array(full),
        get(c, "/api/v1/notifications?limit=10000").await,
        get(c, "/api/v1/users").await,
        get(c, "/api/v1/tokens").await,
        get(c, "/api/v1/audit?limit=10000").await,
    ]
}

fn depths(dir: &Path, round: usize) {
    let text: String = (0..4)
        .map(|q| {
            let v = if (round + q).is_multiple_of(3) { 120 } else { 10 };
            format!("app_queue_depth{{queue=\"q{q}\"}} {v}\n")
        })
        .collect();
    write_textfile(dir, "app.prom", &text);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_backup_taken_while_faults_change_restores_every_record() {
    let hook = Receiver::start("{}").await;
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path().join("data");
    let backups = dir.path().join("offsite");
    let files = tempfile::tempdir().expect("tempdir");
    depths(files.path(), 0);
    let c = collector(dir.path(), &data, &backups, &hook.url("/hook")).await;
    let access = &c.core().access;
    access
        .add_user(
            "li",
            Role::Operator,
            Some("correct horse battery".into()),
            1_800_000_000_000,
        )
        .await
        .expect("user");
    access
        .create_token("li", "ci", None, 1_800_000_000_000)
        .await
        .expect("token");
    let _agent = start_agent(&c, "web-1", Some(files.path()), false, Duration::from_millis(200));
    wait_for("faults open", 20 * SECOND, || async {
        let f: Vec<Fault> = get(&c, "/api/v1/faults").await;
        (f.len() >= 2).then_some(())
    })
    .await;

    // Faults open and resolve, people act, while backups are taken.
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let churn = {
        let (stop, files) = (stop.clone(), files.path().to_path_buf());
        std::thread::spawn(move || {
            let mut round = 1;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                depths(&files, round);
                round += 1;
                std::thread::sleep(Duration::from_millis(300));
            }
        })
    };
    let mut during = Vec::new();
    for n in 0..3 {
        let _: Value = post(
            &c,
            "/api/v1/faults/1/notes",
            &format!(r#"{{"by": "li", "text": "note {n}"}}"#),
        )
        .await;
        let b: Backup = post(&c, "/api/v1/backups", "{}").await;
        assert!(b.files >= 4 && b.bytes > 0, "{b:?}");
        during.push(b);
        tokio::time::sleep(Duration::from_millis(1100)).await;
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    churn.join().expect("churn");
    // keep = 3: still three (the schedule's keep applies to the default folder).
    let listed: Vec<Backup> = get(&c, "/api/v1/backups").await;
    assert_eq!(listed.len(), 3, "{listed:?}");
    // Each one taken under churn is whole: it verifies and restores.
    for (i, b) in during.iter().enumerate() {
        let into = dir.path().join(format!("during-{i}"));
        watchpost_collector::backup::restore(Path::new(&b.path), &into).expect("restores");
        assert!(into.join("watchpost.db").is_file() && into.join("restored-config/collector.toml").is_file());
    }

    // Quiet now: everything delivered, nothing changing.
    wait_for("notifications delivered", 20 * SECOND, || async {
        let p: Vec<Value> = get(&c, "/api/v1/notifications?status=pending").await;
        p.is_empty().then_some(())
    })
    .await;
    tokio::time::sleep(SECOND).await;
    let before = records(&c).await;
    let b: Backup = post(&c, "/api/v1/backups", "{}").await;
    let faults_before = before[0].as_array().map_or(0, Vec::len);
    assert!(faults_before >= 4, "{faults_before} faults");
    c.shutdown().await;

    // Restored into a new directory, a collector there has it all.
    let restored = dir.path().join("restored");
    watchpost_collector::backup::restore(Path::new(&b.path), &restored).expect("restores");
    let other = tempfile::tempdir().expect("tempdir");
    let c2 = collector(
        other.path(),
        &restored,
        &dir.path().join("offsite2"),
        &hook.url("/hook"),
    )
    .await;
    let after = records(&c2).await;
    for (i, what) in [
        "faults and timelines",
        "notifications",
        "users",
        "tokens",
        "audit log",
    ]
    .iter()
    .enumerate()
    {
        assert_eq!(after[i], before[i], "{what} differ after the restore");
    }
    c2.shutdown().await;

    // Refused: over a directory with something in it; one changed byte;
    // a backup without its manifest.
    let e = watchpost_collector::backup::restore(Path::new(&b.path), &restored).expect_err("not over data");
    assert!(e.contains("is not empty"), "{e}");
    let db = Path::new(&b.path).join("data/watchpost.db");
    let mut bytes = std::fs::read(&db).expect("db");
    let at = bytes.len() / 2;
    bytes[at] ^= 0x01;
    std::fs::write(&db, &bytes).expect("write");
    let fresh = dir.path().join("fresh");
    let e = watchpost_collector::backup::restore(Path::new(&b.path), &fresh).expect_err("damaged");
    assert!(e.contains("data/watchpost.db") && e.contains("SHA-256"), "{e}");
    assert!(!fresh.exists(), "nothing written for a damaged backup");
    // (the oldest was deleted by keep = 3 when the fourth was taken)
    assert!(!Path::new(&during[0].path).exists());
    let half = Path::new(&during[2].path);
    std::fs::remove_file(half.join("MANIFEST.json")).expect("rm");
    let e = watchpost_collector::backup::verify(half).expect_err("no manifest");
    assert!(e.contains("not a complete backup"), "{e}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn databases_from_schema_1_are_migrated_and_read() {
    use watchpost_collector::access::schema as access_schema;
    use watchpost_collector::db::schema;
    let data = tempfile::tempdir().expect("tempdir");
    // watchpost.db as the first release left it: an agent, a fault, its timeline.
    let mut db = rusqlite::Connection::open(data.path().join("watchpost.db")).expect("db");
    schema::migrate_with(&mut db, &schema::MIGRATIONS[..1], "database").expect("schema 1");
    db.execute_batch(
        "INSERT INTO agents VALUES ('web-1', 'web-1', '0.1.0', '127.0.0.1:5000', '{}', 1795000000000, 1795000060000);
         INSERT INTO faults (rule, series_key, host, metric, labels, severity, status, summary, value,
                             opened_at_ms, last_seen_ms, resolved_at_ms, response_due_ms, resolve_due_ms)
         VALUES ('queue_deep', 'app_queue_depth{host=\"web-1\"}', 'web-1', 'app_queue_depth', '{\"host\":\"web-1\"}',
                 'urgent', 'resolved', 'web-1: queue holds 120', 120.0,
                 1795000000000, 1795000030000, 1795000030000, 1795003600000, 1795014400000);
         INSERT INTO fault_events (fault_id, at_ms, actor, kind, message)
         VALUES (1, 1795000000000, 'rules', 'opened', 'opened at urgent'),
                (1, 1795000030000, 'rules', 'resolved', 'resolved');",
    )
    .expect("rows");
    let v: i64 = db
        .query_row("PRAGMA user_version", [], |r| r.get(0))
        .expect("version");
    assert_eq!(v, 1);
    drop(db);
    // access.db at schema 1: a user and the audit log.
    let mut access = rusqlite::Connection::open(data.path().join("access.db")).expect("access");
    schema::migrate_with(&mut access, &access_schema::MIGRATIONS[..1], "access database")
        .expect("access schema 1");
    access
        .execute_batch(
            "INSERT INTO users VALUES ('li', 'operator', 'not-a-real-hash', 1795000000000, 0);
             INSERT INTO audit (at_ms, actor, role, address, method, path, status, detail)
             VALUES (1795000000000, 'admin', 'admin', '127.0.0.1', 'POST', '/api/v1/users', 201, 'li');",
        )
        .expect("rows");
    drop(access);

    let c = start_collector(data.path(), "").await;
    let f: Value = get(&c, "/api/v1/faults/1").await;
    assert_eq!(f["rule"], "queue_deep");
    assert_eq!(f["status"], "resolved");
    assert_eq!(f["source"], "rule", "a column added later gets its default");
    let kinds: Vec<&str> = f["timeline"]
        .as_array()
        .expect("timeline")
        .iter()
        .filter_map(|e| e["kind"].as_str())
        .collect();
    assert_eq!(kinds, ["opened", "resolved"]);
    let users: Vec<Value> = get(&c, "/api/v1/users").await;
    assert!(
        users.iter().any(|u| u["name"] == "li" && u["role"] == "operator"),
        "{users:?}"
    );
    let audit: Vec<Value> = get(&c, "/api/v1/audit").await;
    assert!(audit.iter().any(|a| a["path"] == "/api/v1/users"), "{audit:?}");
    let agents: Vec<Value> = get(&c, "/api/v1/agents").await;
    assert!(
        agents
            .iter()
            .any(|a| a["id"] == "web-1" || a["hostname"] == "web-1"),
        "{agents:?}"
    );
    c.shutdown().await;
    let db = rusqlite::Connection::open(data.path().join("watchpost.db")).expect("db");
    let v: i64 = db
        .query_row("PRAGMA user_version", [], |r| r.get(0))
        .expect("version");
    assert_eq!(v, schema::VERSION);
}
