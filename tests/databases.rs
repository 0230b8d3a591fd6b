//! Databases and middleware end to end: real MariaDB, PostgreSQL (with a
//! streaming standby), Redis (with a replica) and nginx servers started on
//! loopback ports, a real agent watching them and a real collector with the
//! shipped `examples/rules/databases.toml` (`for` cut to a second). Each
//! figure is checked against what the server itself reports; a stopped
//! server or a refused sign-in is `*_up 0` and a fault.

use std::time::Duration;

use watchpost_collector::Collector;
use watchpost_model::api::{self, FaultStatus};
use watchpost_tests::databases::{MariaDb, Nginx, Postgres, Redis};
use watchpost_tests::*;

const SECOND: Duration = Duration::from_secs(1);

async fn start(agent_tables: &str) -> (tempfile::TempDir, Collector, watchpost_agent::RunningAgent) {
    collector_and_agent("databases.toml", "db-1", agent_tables).await
}

async fn fault_for(c: &Collector, rule: &str, instance: &str) -> api::Fault {
    wait_for(&format!("a {rule} fault on {instance}"), 30 * SECOND, || async {
        faults_of(c, rule, "db-1")
            .await
            .into_iter()
            .find(|f| f.labels.get("instance").map(String::as_str) == Some(instance))
    })
    .await
}

fn near(a: f64, b: f64, by: f64) -> bool {
    (a - b).abs() <= by
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mariadb_figures_match_the_server_and_a_stopped_server_is_a_fault() {
    let mut db = MariaDb::start();
    let os_user = String::from_utf8_lossy(
        &std::process::Command::new("id")
            .arg("-un")
            .output()
            .expect("id")
            .stdout,
    )
    .trim()
    .to_string();
    let (_data, c, _agent) = start(&format!(
        r#"
[[mysql]]
name = "shop-db"
address = "127.0.0.1:{port}"
user = "watchpost"
password = "wp-secret"
labels = {{ system = "shop" }}

[[mysql]]
name = "shop-db-socket"
socket = "{socket}"
user = "{os_user}"

[[mysql]]
name = "bad-password"
address = "127.0.0.1:{port}"
user = "watchpost"
password = "not-the-password"
"#,
        port = db.port,
        socket = db.socket.display(),
    ))
    .await;
    let q = |m: &str| format!("metric={m}&instance=shop-db");
    latest_value(&c, &q("mysql_up"), 1.0, 30 * SECOND).await;
    latest_value(&c, "metric=mysql_up&instance=shop-db-socket", 1.0, 30 * SECOND).await;
    // The server's own figures.
    let max = db.global("VARIABLES", "max_connections");
    assert_eq!(max, 40.0);
    latest_value(&c, &q("mysql_max_connections"), max, 10 * SECOND).await;
    let uptime = db.global("STATUS", "Uptime");
    value_where(&c, &q("mysql_uptime_seconds"), 10 * SECOND, |v| {
        near(v, uptime, 3.0)
    })
    .await;
    let connected = value_where(&c, &q("mysql_threads_connected"), 10 * SECOND, |v| v >= 2.0).await;
    let used = value_where(&c, &q("mysql_connections_used_percent"), 10 * SECOND, |v| v > 0.0).await;
    assert!(
        near(used, 100.0 * connected / max, 100.0 / max + 0.01),
        "{used} % of {max} for {connected}"
    );
    // Load: a few hundred statements; the rate follows, and InnoDB's hit rate
    // is a percentage once there were lookups.
    let questions_before = db.global("STATUS", "Questions");
    let mut sql = String::new();
    for i in 0..300 {
        sql.push_str(&format!(
            "INSERT INTO shop.t VALUES ({i}); SELECT * FROM shop.t WHERE id = {i};"
        ));
    }
    db.sql(&sql);
    assert!(db.global("STATUS", "Questions") - questions_before >= 600.0);
    value_where(&c, &q("mysql_queries_per_second"), 15 * SECOND, |v| v >= 50.0).await;
    value_where(&c, &q("mysql_innodb_buffer_pool_hit_percent"), 15 * SECOND, |v| {
        (0.0..=100.0).contains(&v)
    })
    .await;
    value_where(&c, &q("mysql_slow_queries_per_second"), 10 * SECOND, |v| v == 0.0).await;
    // Not a replica: no replication series.
    let s: Vec<api::Series> = get(&c, &format!("/api/v1/series?{}", q("mysql_replica_sql_running"))).await;
    assert!(s.is_empty(), "{s:?}");
    // A refused sign-in is up 0 and a fault, and the others carry on.
    latest_value(&c, "metric=mysql_up&instance=bad-password", 0.0, 30 * SECOND).await;
    let f = fault_for(&c, "mysql_down", "bad-password").await;
    assert_eq!(f.severity, watchpost_model::Severity::Urgent);
    // Stopped: up 0 and a fault; started again: up 1 and the fault resolves.
    db.stop();
    latest_value(&c, &q("mysql_up"), 0.0, 30 * SECOND).await;
    let f = fault_for(&c, "mysql_down", "shop-db").await;
    assert!(f.summary.contains("shop-db"), "{}", f.summary);
    assert_eq!(f.labels.get("system").map(String::as_str), Some("shop"));
    db.restart();
    latest_value(&c, &q("mysql_up"), 1.0, 30 * SECOND).await;
    fault_in_status(&c, f.id, FaultStatus::Resolved, 30 * SECOND).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_primary_and_standby_figures_match_the_servers() {
    let mut primary = Postgres::start();
    let standby = Postgres::standby_of(&primary);
    let (_data, c, _agent) = start(&format!(
        r#"
[[postgres]]
name = "pg-primary"
address = "127.0.0.1:{p}"
user = "watchpost"
password = "wp-secret"

[[postgres]]
name = "pg-standby"
address = "127.0.0.1:{s}"
user = "watchpost"
password = "wp-secret"
database = "shop"

[[postgres]]
name = "pg-bad-password"
address = "127.0.0.1:{p}"
user = "watchpost"
password = "wrong"
"#,
        p = primary.port,
        s = standby.port,
    ))
    .await;
    let q = |i: &str, m: &str| format!("metric={m}&instance={i}");
    latest_value(&c, &q("pg-primary", "postgres_up"), 1.0, 30 * SECOND).await;
    latest_value(&c, &q("pg-standby", "postgres_up"), 1.0, 30 * SECOND).await;
    latest_value(
        &c,
        &q("pg-primary", "postgres_max_connections"),
        30.0,
        10 * SECOND,
    )
    .await;
    latest_value(&c, &q("pg-primary", "postgres_in_recovery"), 0.0, 10 * SECOND).await;
    latest_value(&c, &q("pg-standby", "postgres_in_recovery"), 1.0, 10 * SECOND).await;
    latest_value(&c, &q("pg-primary", "postgres_replicas"), 1.0, 20 * SECOND).await;
    value_where(
        &c,
        &q("pg-standby", "postgres_replication_lag_seconds"),
        20 * SECOND,
        |v| v >= 0.0,
    )
    .await;
    // Database sizes as the server reports them (idle: they do not move).
    let size: f64 = primary
        .sql("SELECT pg_database_size('shop')")
        .parse()
        .expect("size");
    latest_value(
        &c,
        "metric=postgres_database_size_bytes&instance=pg-primary&database=shop",
        size,
        10 * SECOND,
    )
    .await;
    // Commits follow the load.
    primary.sql("CREATE TABLE t (id int)");
    let mut load = String::new();
    for i in 0..400 {
        load.push_str(&format!("INSERT INTO t VALUES ({i});"));
    }
    primary.script(&load);
    value_where(
        &c,
        &q("pg-primary", "postgres_commits_per_second"),
        15 * SECOND,
        |v| v >= 50.0,
    )
    .await;
    // A transaction held open, and a session waiting for its lock.
    primary.sql("CREATE TABLE held (id int)");
    let _holder = primary.session("BEGIN; LOCK TABLE held IN ACCESS EXCLUSIVE MODE; SELECT pg_sleep(60);");
    let _ = wait_for("the holder's lock", 20 * SECOND, || async {
        (primary.sql("SELECT count(*) FROM pg_locks WHERE mode = 'AccessExclusiveLock' AND granted AND relation IS NOT NULL") != "0")
            .then_some(())
    })
    .await;
    let _waiter = primary.session("SELECT * FROM held;");
    value_where(&c, &q("pg-primary", "postgres_locks_waiting"), 20 * SECOND, |v| {
        v >= 1.0
    })
    .await;
    let oldest = value_where(
        &c,
        &q("pg-primary", "postgres_longest_transaction_seconds"),
        20 * SECOND,
        |v| v >= 2.0,
    )
    .await;
    let server: f64 = primary
        .sql("SELECT max(extract(epoch FROM now() - xact_start)) FROM pg_stat_activity WHERE state <> 'idle' AND pid <> pg_backend_pid()")
        .parse()
        .expect("age");
    assert!(
        server >= oldest,
        "the server's oldest transaction {server} s vs the agent's {oldest} s"
    );
    let used = value_where(
        &c,
        &q("pg-primary", "postgres_connections_used_percent"),
        10 * SECOND,
        |v| v > 0.0,
    )
    .await;
    assert!(used < 100.0, "{used}");
    // A refused sign-in is up 0 and a fault; a stopped primary too.
    latest_value(&c, &q("pg-bad-password", "postgres_up"), 0.0, 30 * SECOND).await;
    fault_for(&c, "postgres_down", "pg-bad-password").await;
    primary.stop();
    latest_value(&c, &q("pg-primary", "postgres_up"), 0.0, 30 * SECOND).await;
    fault_for(&c, "postgres_down", "pg-primary").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_master_and_replica_figures_match_info() {
    let master = Redis::start(None);
    let mut replica = Redis::start(Some(master.port));
    let (_data, c, _agent) = start(&format!(
        r#"
[[redis]]
name = "cache"
address = "127.0.0.1:{m}"
password = "wp-secret"

[[redis]]
name = "cache-replica"
address = "127.0.0.1:{r}"
password = "wp-secret"

[[redis]]
name = "cache-no-password"
address = "127.0.0.1:{m}"
"#,
        m = master.port,
        r = replica.port,
    ))
    .await;
    let q = |i: &str, m: &str| format!("metric={m}&instance={i}");
    latest_value(&c, &q("cache", "redis_up"), 1.0, 30 * SECOND).await;
    latest_value(
        &c,
        &q("cache", "redis_maxmemory_bytes"),
        64.0 * 1024.0 * 1024.0,
        10 * SECOND,
    )
    .await;
    latest_value(&c, &q("cache", "redis_is_master"), 1.0, 10 * SECOND).await;
    latest_value(&c, &q("cache-replica", "redis_is_master"), 0.0, 10 * SECOND).await;
    latest_value(&c, &q("cache-replica", "redis_master_link_up"), 1.0, 20 * SECOND).await;
    latest_value(&c, &q("cache", "redis_connected_replicas"), 1.0, 20 * SECOND).await;
    // Hits and misses: 3 of 4 lookups hit.
    master.cli(&["SET", "k", "v"]);
    for _ in 0..30 {
        master.cli(&["GET", "k"]);
        master.cli(&["GET", "k"]);
        master.cli(&["GET", "k"]);
        master.cli(&["GET", "missing"]);
    }
    value_where(&c, &q("cache", "redis_keyspace_hit_percent"), 15 * SECOND, |v| {
        near(v, 75.0, 5.0)
    })
    .await;
    value_where(&c, &q("cache", "redis_commands_per_second"), 15 * SECOND, |v| {
        v > 0.0
    })
    .await;
    let used: f64 = master.info("used_memory").parse().expect("used_memory");
    let pct = value_where(&c, &q("cache", "redis_memory_used_percent"), 10 * SECOND, |v| {
        v > 0.0
    })
    .await;
    assert!(
        near(pct, 100.0 * used / (64.0 * 1024.0 * 1024.0), 0.5),
        "{pct} vs used_memory {used}"
    );
    let clients: f64 = master.info("connected_clients").parse().expect("clients");
    value_where(&c, &q("cache", "redis_clients"), 10 * SECOND, |v| {
        near(v, clients, 2.0)
    })
    .await;
    // No password: refused, up 0 and a fault.
    latest_value(&c, &q("cache-no-password", "redis_up"), 0.0, 30 * SECOND).await;
    fault_for(&c, "redis_down", "cache-no-password").await;
    // The master stops: the replica's link goes down, a fault opens.
    drop(master);
    latest_value(&c, &q("cache", "redis_up"), 0.0, 30 * SECOND).await;
    latest_value(&c, &q("cache-replica", "redis_master_link_up"), 0.0, 30 * SECOND).await;
    fault_for(&c, "redis_master_link_down", "cache-replica").await;
    fault_for(&c, "redis_down", "cache").await;
    replica.stop();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nginx_stub_status_rates_follow_the_requests() {
    let mut nginx = Nginx::start();
    let (_data, c, _agent) = start(&format!(
        "[[nginx]]\nname = \"web\"\nurl = \"http://127.0.0.1:{}/nginx_status\"\n\n[[nginx]]\nname = \"not-status\"\nurl = \"http://127.0.0.1:{}/\"\n",
        nginx.port, nginx.port
    ))
    .await;
    latest_value(&c, "metric=nginx_up&instance=web", 1.0, 30 * SECOND).await;
    value_where(
        &c,
        "metric=nginx_connections_active&instance=web",
        10 * SECOND,
        |v| v >= 1.0,
    )
    .await;
    // 200 requests in well under a round: the request rate rises to match.
    let http = reqwest::Client::new();
    for _ in 0..200 {
        let r = http
            .get(format!("http://127.0.0.1:{}/", nginx.port))
            .send()
            .await
            .expect("GET");
        assert_eq!(r.status(), 200);
    }
    value_where(
        &c,
        "metric=nginx_requests_per_second&instance=web",
        15 * SECOND,
        |v| v >= 50.0,
    )
    .await;
    value_where(
        &c,
        "metric=nginx_accepts_per_second&instance=web",
        15 * SECOND,
        |v| v >= 1.0,
    )
    .await;
    latest_value(
        &c,
        "metric=nginx_dropped_per_second&instance=web",
        0.0,
        10 * SECOND,
    )
    .await;
    // A page that is not stub_status is a clear failure, not numbers.
    latest_value(&c, "metric=nginx_up&instance=not-status", 0.0, 30 * SECOND).await;
    nginx.stop();
    latest_value(&c, "metric=nginx_up&instance=web", 0.0, 30 * SECOND).await;
    fault_for(&c, "nginx_down", "web").await;
}
