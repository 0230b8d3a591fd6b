//! TLS and mutual TLS on the agents' stream, with certificates made by the
//! shipped script (`deploy/make-certs.sh`): an agent with the CA and its own
//! certificate streams; one without a client certificate, one trusting
//! another CA and one speaking plaintext never get in. The HTTP API is
//! served over TLS with the same certificate.

use std::path::Path;
use std::time::Duration;

use watchpost_collector::Collector;
use watchpost_tests::api::Agent;
use watchpost_tests::*;

const SECOND: Duration = Duration::from_secs(1);

fn make_certs(dir: &Path, agents: &[&str]) {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let out = std::process::Command::new("bash")
        .arg(root.join("deploy/make-certs.sh"))
        .arg(dir)
        .arg("127.0.0.1")
        .args(agents)
        .output()
        .expect("run deploy/make-certs.sh");
    assert!(
        out.status.success(),
        "make-certs.sh: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

async fn tls_collector(data: &Path, certs: &Path, mutual: bool) -> Collector {
    let client_ca = if mutual {
        format!("client_ca_file = \"{}\"\n", certs.join("ca.pem").display())
    } else {
        String::new()
    };
    let toml = format!(
        "[tls]\ncert_file = \"{}\"\nkey_file = \"{}\"\n{client_ca}",
        certs.join("collector.pem").display(),
        certs.join("collector.key").display()
    );
    Collector::start(
        collector_config_from(data, &toml),
        watchpost_collector::rules::RuleSet::parse("", "none.toml").expect("empty rules"),
    )
    .await
    .expect("collector starts with TLS")
}

fn agent(collector: &Collector, scheme: &str, id: &str, tls: &str) -> watchpost_agent::RunningAgent {
    let text = format!(
        "[agent]\ncollector = \"{scheme}://127.0.0.1:{}\"\nid = \"{id}\"\nhostname = \"{id}\"\ninterval = \"300ms\"\n{tls}\n",
        collector.grpc_addr().port()
    );
    let config = watchpost_agent::AgentConfig::parse(&text).unwrap_or_else(|e| panic!("{e}"));
    watchpost_agent::start(config)
}

/// GET over HTTPS, trusting the CA in `certs` (the API shares the stream's certificate).
async fn https_get<T: serde::de::DeserializeOwned>(c: &Collector, certs: &Path, path: &str) -> T {
    let ca = std::fs::read(certs.join("ca.pem")).expect("ca.pem");
    let client = reqwest::Client::builder()
        .add_root_certificate(reqwest::Certificate::from_pem(&ca).expect("CA"))
        .build()
        .expect("client");
    let url = format!("https://127.0.0.1:{}{path}", c.http_addr().port());
    let resp = client
        .get(&url)
        .send()
        .await
        .unwrap_or_else(|e| panic!("GET {url}: {e}"));
    assert!(resp.status().is_success(), "GET {url}: {}", resp.status());
    resp.json().await.expect("JSON")
}

async fn agent_ids(c: &Collector, certs: &Path) -> Vec<String> {
    let agents: Vec<Agent> = https_get(c, certs, "/api/v1/agents").await;
    agents.into_iter().map(|a| a.id).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mutual_tls_lets_in_only_agents_with_a_certificate_of_the_ca() {
    let certs = tempfile::tempdir().expect("tempdir");
    make_certs(certs.path(), &["db-1"]);
    let other = tempfile::tempdir().expect("tempdir");
    make_certs(other.path(), &["db-1"]);
    let data = tempfile::tempdir().expect("tempdir");
    let collector = tls_collector(data.path(), certs.path(), true).await;
    let c = certs.path();
    let _good = agent(
        &collector,
        "https",
        "db-1",
        &format!(
            "ca_file = \"{}\"\ncert_file = \"{}\"\nkey_file = \"{}\"",
            c.join("ca.pem").display(),
            c.join("agent-db-1.pem").display(),
            c.join("agent-db-1.key").display()
        ),
    );
    let _no_cert = agent(
        &collector,
        "https",
        "no-cert",
        &format!("ca_file = \"{}\"", c.join("ca.pem").display()),
    );
    let o = other.path();
    let _wrong_ca = agent(
        &collector,
        "https",
        "wrong-ca",
        &format!(
            "ca_file = \"{}\"\ncert_file = \"{}\"\nkey_file = \"{}\"",
            o.join("ca.pem").display(),
            o.join("agent-db-1.pem").display(),
            o.join("agent-db-1.key").display()
        ),
    );
    let _plain = agent(&collector, "http", "plaintext", "");
    latest_value_exists(&collector, c, "metric=host_uptime_seconds&host=db-1").await;
    // Give the others several reconnect attempts.
    tokio::time::sleep(3 * SECOND).await;
    assert_eq!(agent_ids(&collector, c).await, vec!["db-1".to_string()]);
    // The HTTP API is HTTPS too: plaintext and an untrusted certificate fail.
    let plain = reqwest::get(format!(
        "http://127.0.0.1:{}/api/v1/agents",
        collector.http_addr().port()
    ))
    .await;
    assert!(plain.is_err() || !plain.is_ok_and(|r| r.status().is_success()));
    let untrusted = reqwest::get(format!(
        "https://127.0.0.1:{}/api/v1/agents",
        collector.http_addr().port()
    ))
    .await;
    assert!(
        untrusted.is_err(),
        "a certificate of a private CA is not trusted without it"
    );
}

async fn latest_value_exists(c: &Collector, certs: &Path, query: &str) {
    wait_for(&format!("a value for {query}"), 20 * SECOND, || async {
        let s: Vec<api::Series> = https_get(c, certs, &format!("/api/v1/series?{query}")).await;
        s.first()?.last_value
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn server_only_tls_needs_just_the_ca() {
    let certs = tempfile::tempdir().expect("tempdir");
    make_certs(certs.path(), &[]);
    let data = tempfile::tempdir().expect("tempdir");
    let collector = tls_collector(data.path(), certs.path(), false).await;
    let _agent = agent(
        &collector,
        "https",
        "web-1",
        &format!("ca_file = \"{}\"", certs.path().join("ca.pem").display()),
    );
    latest_value_exists(&collector, certs.path(), "metric=host_uptime_seconds&host=web-1").await;
}

#[test]
fn bad_tls_settings_are_refused_at_load_naming_the_key() {
    let dir = tempfile::tempdir().expect("tempdir");
    let missing = dir.path().join("none.pem");
    let e = watchpost_agent::AgentConfig::parse(&format!(
        "[agent]\ncollector = \"https://127.0.0.1:9810\"\nca_file = \"{}\"\n",
        missing.display()
    ))
    .expect_err("missing CA");
    assert!(e.contains("agent.ca_file") && e.contains("none.pem"), "{e}");
    let e = watchpost_agent::AgentConfig::parse(&format!(
        "[agent]\ncollector = \"http://127.0.0.1:9810\"\nca_file = \"{}\"\n",
        missing.display()
    ))
    .expect_err("plaintext with a CA");
    assert!(e.contains("https://"), "{e}");
    std::fs::write(dir.path().join("junk.pem"), "not a certificate").expect("write");
    let e = watchpost_collector::CollectorConfig::parse(
        &format!(
            "[tls]\ncert_file = \"{}\"\nkey_file = \"{}\"\n",
            dir.path().join("junk.pem").display(),
            dir.path().join("junk.pem").display()
        ),
        dir.path(),
    )
    .expect_err("junk certificate");
    assert!(
        e.contains("tls.cert_file") && e.contains("BEGIN CERTIFICATE"),
        "{e}"
    );
}
