//! `console`: the web console's pages rendered by a real
//! `watchpost-collector` process that knows `hosts` hosts (simulated
//! agents that each sent a round and left, so every tile is drawn) and
//! holds `faults` open faults (reported through the API on the first
//! hosts). Each page is fetched `rounds` times over loopback; the figures
//! are the time to the last byte (p50, p99) and the bytes on the wire
//! with gzip, the first load (page, stylesheet, scripts) and later pages.

use std::time::Instant;

use hdrhistogram::Histogram;
use watchpost_collector::time::now_ms;
use watchpost_proto::v1::{Batch, Label, SeriesDefinition};

use crate::harness::{SimAgent, start_collector};

/// Agents connected at once while the hosts are made (below the
/// collector's 64 connections per address: a closed stream is released
/// when the collector sees it close).
const AT_ONCE: usize = 20;

async fn one_host(grpc: String, i: usize) -> anyhow::Result<()> {
    let defs = vec![SeriesDefinition {
        id: 1,
        metric: "host_cpu_usage_percent".into(),
        labels: vec![Label {
            name: "cpu".into(),
            value: "total".into(),
        }],
    }];
    let mut a = SimAgent::connect(&grpc, &format!("host-{i:05}"), defs).await?;
    let seq = a.last_sequence + 1;
    a.send(Batch {
        sequence: seq,
        base_timestamp_ms: now_ms(),
        series_ids: vec![1],
        values: vec![(i % 100) as f64],
        timestamp_offsets_ms: Vec::new(),
        late: false,
        clock_offset: None,
        texts: Vec::new(),
    })
    .await?;
    a.wait_acked(seq).await
}

/// Fetches `path` with gzip; returns the time to the last byte (µs) and the bytes received.
async fn fetch(client: &reqwest::Client, url: &str) -> anyhow::Result<(u64, usize)> {
    let t = Instant::now();
    let r = client.get(url).header("accept-encoding", "gzip").send().await?;
    anyhow::ensure!(r.status().is_success(), "{url}: {}", r.status());
    let body = r.bytes().await?;
    Ok((t.elapsed().as_micros() as u64, body.len()))
}

pub async fn run(hosts: usize, faults: usize, rounds: usize) -> anyhow::Result<()> {
    println!(
        "== console: {hosts} hosts, {faults} open faults; each page fetched {rounds} times over loopback with gzip"
    );
    let c = start_collector("").await?;
    let made = Instant::now();
    for chunk in (0..hosts).collect::<Vec<_>>().chunks(AT_ONCE) {
        let tasks: Vec<_> = chunk
            .iter()
            .map(|i| {
                let (grpc, i) = (c.grpc.clone(), *i);
                tokio::spawn(async move {
                    // Refused while earlier streams are still being released: again.
                    let mut tries = 0;
                    loop {
                        match one_host(grpc.clone(), i).await {
                            Ok(()) => return Ok(()),
                            Err(e) if tries < 50 => {
                                tries += 1;
                                let _ = e;
                                tokio::time::sleep(std::time::Duration::from_millis(100)).await;
                            }
                            Err(e) => return Err(e),
                        }
                    }
                })
            })
            .collect();
        for t in tasks {
            t.await??;
        }
    }
    let client = reqwest::Client::new();
    for i in 0..faults {
        let severity = ["urgent", "general", "minor"][i % 3];
        let r = client
            .post(format!("{}/api/v1/faults", c.http))
            .json(&serde_json::json!({
                "by": "bench", "severity": severity,
                "host": format!("host-{:05}", i % hosts.max(1)),
                "summary": format!("用户来电：业务系统 {i} 无法访问"),
                "reporter": { "name": "张三", "phone": "0851-1234567" },
            }))
            .send()
            .await?;
        anyhow::ensure!(r.status().is_success(), "reporting fault {i}: {}", r.status());
    }
    println!(
        "made {hosts} hosts and {faults} faults in {:.1} s",
        made.elapsed().as_secs_f64()
    );
    // The console of an open API: the first visit gets the anonymous session.
    let browser = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()?;
    let first = browser.get(format!("{}/", c.http)).send().await?;
    let cookie = first
        .headers()
        .get("set-cookie")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .map(str::to_string)
        .ok_or_else(|| anyhow::anyhow!("no console session cookie"))?;
    let mut headers = reqwest::header::HeaderMap::new();
    headers.insert("cookie", cookie.parse()?);
    let signed = reqwest::Client::builder().default_headers(headers).build()?;
    let pages = [
        ("overview", "/".to_string()),
        ("overview update", "/overview/body".to_string()),
        ("fault list", "/faults?status=open,acknowledged".to_string()),
        ("fault list, page 20", "/faults?page=20".to_string()),
        ("a fault", format!("/faults/{}", faults.max(1) / 2)),
        ("a host", "/hosts/host-00001".to_string()),
        ("on call", "/oncall".to_string()),
        ("maintenance", "/maintenance".to_string()),
        ("reports", "/reports".to_string()),
    ];
    println!("{:<22} {:>10} {:>10} {:>12}", "page", "p50", "p99", "gzip bytes");
    for (name, path) in &pages {
        let url = format!("{}{path}", c.http);
        fetch(&signed, &url).await?;
        let mut h = Histogram::<u64>::new_with_bounds(1, 60_000_000, 3)?;
        let mut bytes = 0;
        for _ in 0..rounds {
            let (us, n) = fetch(&signed, &url).await?;
            h.record(us)?;
            bytes = n;
        }
        println!(
            "{name:<22} {:>7.2} ms {:>7.2} ms {bytes:>12}",
            h.value_at_quantile(0.5) as f64 / 1000.0,
            h.value_at_quantile(0.99) as f64 / 1000.0
        );
    }
    let mut first_load = 0;
    for asset in ["console.css", "console.js", "htmx.min.js"] {
        first_load += fetch(&signed, &format!("{}/assets/{asset}", c.http)).await?.1;
    }
    let overview = fetch(&signed, &format!("{}/", c.http)).await?.1;
    let charts = fetch(&signed, &format!("{}/assets/echarts.min.js", c.http))
        .await?
        .1;
    println!(
        "first load (overview, stylesheet, console.js, htmx): {} bytes; ECharts, fetched once by the first chart page: {charts} bytes",
        first_load + overview
    );
    Ok(())
}
