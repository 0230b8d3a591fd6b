//! `deploy/grafana/*.json` query only series Watchpost produces. The
//! names produced are read off real things: a collector with a host agent
//! (`/api/v1/metric-names`) and its own `/metrics` with a remote_write
//! destination configured; the SNMP profiles' `[[metric]] name`s; the
//! Modbus registers' `metric`s of the example agent config; and the
//! metric names the SNMP and hwmon sources write themselves (interfaces,
//! reachability, temperatures).

use std::collections::BTreeSet;
use std::path::Path;
use std::time::Duration;

use watchpost_collector::Collector;
use watchpost_collector::rules::RuleSet;
use watchpost_tests::*;

/// Every PromQL expression of a dashboard: panel targets and the
/// variables' queries (`label_values(metric, label)` gives its metric).
fn expressions(dashboard: &serde_json::Value) -> Vec<String> {
    let mut out = Vec::new();
    for p in dashboard["panels"].as_array().into_iter().flatten() {
        for t in p["targets"].as_array().into_iter().flatten() {
            out.push(t["expr"].as_str().expect("a target's expr").to_string());
        }
    }
    for v in dashboard["templating"]["list"].as_array().into_iter().flatten() {
        if v["type"] == "query" {
            let q = v["query"]["query"].as_str().expect("a variable's query");
            let inner = q
                .strip_prefix("label_values(")
                .and_then(|r| r.rsplit_once(','))
                .map(|(m, _)| m.to_string())
                .unwrap_or_else(|| panic!("variable {}: not label_values(...)", v["name"]));
            out.push(inner);
        }
    }
    out
}

/// The metric names an expression selects: identifiers outside label
/// braces, ranges and grouping lists that are neither functions nor
/// keywords.
fn metric_names(expr: &str) -> Vec<String> {
    const KEYWORDS: &[&str] = &[
        "by",
        "without",
        "on",
        "ignoring",
        "group_left",
        "group_right",
        "bool",
        "offset",
        "and",
        "or",
        "unless",
    ];
    let mut cleaned = String::new();
    let mut depth = 0;
    let mut in_str = false;
    for c in expr.chars() {
        match c {
            '"' => in_str = !in_str,
            _ if in_str => {}
            '{' | '[' => depth += 1,
            '}' | ']' => depth -= 1,
            _ if depth == 0 => cleaned.push(c),
            _ => {}
        }
    }
    let grouping = regex_lite(&cleaned);
    let mut names = Vec::new();
    let chars: Vec<char> = grouping.chars().collect();
    let mut i = 0;
    while i < chars.len() {
        if chars[i].is_ascii_alphabetic() || chars[i] == '_' {
            let start = i;
            while i < chars.len() && (chars[i].is_ascii_alphanumeric() || chars[i] == '_' || chars[i] == ':')
            {
                i += 1;
            }
            let word: String = chars[start..i].iter().collect();
            let mut j = i;
            while j < chars.len() && chars[j] == ' ' {
                j += 1;
            }
            let is_call = chars.get(j) == Some(&'(');
            let after_dollar = start > 0 && chars[start - 1] == '$';
            if !is_call && !after_dollar && !KEYWORDS.contains(&word.as_str()) {
                names.push(word);
            }
        } else {
            i += 1;
        }
    }
    names
}

/// Drops `by (...)`, `without (...)` and the like: label lists, not series.
fn regex_lite(expr: &str) -> String {
    let mut out = expr.to_string();
    for kw in ["by", "without", "on", "ignoring", "group_left", "group_right"] {
        while let Some(at) = find_word(&out, kw) {
            let rest = &out[at + kw.len()..];
            let open = rest.find('(').map(|o| at + kw.len() + o);
            let Some(open) = open else { break };
            let close = out[open..].find(')').map_or(out.len(), |c| open + c + 1);
            out.replace_range(at..close, " ");
        }
    }
    out
}

fn find_word(s: &str, w: &str) -> Option<usize> {
    s.match_indices(w).map(|(i, _)| i).find(|&i| {
        let before = s[..i].chars().last();
        let after = s[i + w.len()..].chars().find(|c| *c != ' ');
        !before.is_some_and(|c| c.is_ascii_alphanumeric() || c == '_') && after == Some('(')
    })
}

/// Metric names declared in TOML files: `[[metric]] name` (SNMP profiles)
/// and `metric = ` (Modbus registers).
fn declared_names(dir_or_file: &Path, key: &str) -> BTreeSet<String> {
    let files: Vec<_> = if dir_or_file.is_dir() {
        std::fs::read_dir(dir_or_file)
            .expect("read dir")
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|x| x == "toml"))
            .collect()
    } else {
        vec![dir_or_file.to_path_buf()]
    };
    let mut out = BTreeSet::new();
    for f in files {
        let text = std::fs::read_to_string(&f).expect("read toml");
        for line in text.lines() {
            let l = line.trim();
            if let Some(v) = l
                .strip_prefix(key)
                .map(str::trim_start)
                .and_then(|r| r.strip_prefix('='))
                && let Some(name) = v.trim().strip_prefix('"').and_then(|r| r.split('"').next())
            {
                out.insert(name.to_string());
            }
        }
    }
    out
}

/// Names the agent's SNMP and hwmon sources write as literals
/// (`"snmp_if_in_bits_per_second"`): series a host without SNMP devices or
/// temperature sensors, like a test machine, does not have.
fn source_literal_names(root: &Path) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    let src = root.join("crates/agent/src/sources");
    let mut files: Vec<std::path::PathBuf> = std::fs::read_dir(src.join("snmp"))
        .expect("snmp source dir")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .collect();
    files.push(src.join("host/hwmon.rs"));
    for f in files {
        let text = std::fs::read_to_string(&f).unwrap_or_else(|e| panic!("{}: {e}", f.display()));
        for prefix in ["\"snmp_", "\"host_hwmon_"] {
            for (at, _) in text.match_indices(prefix) {
                let name: String = text[at + 1..]
                    .chars()
                    .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                    .collect();
                out.insert(name);
            }
        }
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_metric_a_dashboard_queries_is_produced() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let dir = tempfile::tempdir().expect("tempdir");
    let receiver = Receiver::start("").await;
    let config = collector_config_from(
        dir.path(),
        &format!("[[remote_write]]\nurl = \"{}\"\n", receiver.url("/write")),
    );
    let collector = Collector::start(config, RuleSet::parse("", "none.toml").expect("no rules"))
        .await
        .expect("collector starts");
    let agent = start_agent(&collector, "dash-host", None, true, Duration::from_millis(500));
    let mut produced: BTreeSet<String> = wait_for("host metrics", Duration::from_secs(30), || async {
        let names: Vec<api::MetricName> = get(&collector, "/api/v1/metric-names").await;
        let names: BTreeSet<String> = names.into_iter().map(|n| n.metric).collect();
        (names.contains("host_cpu_usage_percent") && names.contains("host_network_receive_bytes_per_second"))
            .then_some(names)
    })
    .await;
    let (_, own) = get_raw(&collector, "/metrics").await;
    for line in own.lines().filter(|l| !l.starts_with('#') && !l.is_empty()) {
        let name: String = line
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric() || *c == '_' || *c == ':')
            .collect();
        produced.insert(name);
    }
    agent.stop().await;
    collector.shutdown().await;
    produced.extend(declared_names(&root.join("examples/snmp-profiles"), "name"));
    produced.extend(declared_names(&root.join("examples/agent.toml"), "metric"));
    produced.extend(source_literal_names(root));

    let mut files: Vec<_> = std::fs::read_dir(root.join("deploy/grafana"))
        .expect("deploy/grafana")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "json"))
        .collect();
    files.sort();
    assert_eq!(
        files.len(),
        4,
        "hosts, switch interfaces, rooms and UPSes, the collector"
    );
    let mut problems = Vec::new();
    let mut checked = 0;
    for f in &files {
        let d: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(f).expect("read")).expect("a dashboard is JSON");
        assert!(d["uid"].is_string() && d["title"].is_string(), "{}", f.display());
        for expr in expressions(&d) {
            let names = metric_names(&expr);
            assert!(!names.is_empty(), "{}: no metric in {expr:?}", f.display());
            for n in names {
                checked += 1;
                if !produced.contains(&n) {
                    problems.push(format!("{}: {n} (in {expr})", f.display()));
                }
            }
        }
    }
    assert!(
        problems.is_empty(),
        "queried but never produced:\n{}",
        problems.join("\n")
    );
    assert!(checked > 40, "{checked} names checked");
}

#[test]
fn names_are_read_out_of_expressions() {
    assert_eq!(
        metric_names(r#"histogram_quantile(0.99, sum by (le, instance) (rate(wp_bucket{a="x{y}"}[5m])))"#),
        ["wp_bucket"]
    );
    assert_eq!(
        metric_names(r#"time() - wp_last{instance=~"$instance"}"#),
        ["wp_last"]
    );
    assert_eq!(metric_names("a_b or c_d"), ["a_b", "c_d"]);
}
