//! Idle connections cannot hold the collector's doors: 1,000 sockets to
//! the HTTP port and 400 to the gRPC port that send nothing (from source
//! addresses across 127.0.0.0/8, 50 each, under the per-address cap) are
//! closed within the timeouts (`collector.hello_timeout`, the HTTP header
//! timeout: 10 s each); while they are open an agent streams and the API
//! answers; the 65th socket from one address is refused at once.

use std::net::{Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use tokio::io::AsyncReadExt;
use tokio::net::{TcpSocket, TcpStream};
use watchpost_tests::*;

/// A socket to `to` from `from` that sends nothing.
async fn idle_socket(from: Ipv4Addr, to: SocketAddr) -> TcpStream {
    let socket = TcpSocket::new_v4().expect("socket");
    socket
        .bind(SocketAddr::from((from, 0)))
        .expect("bind a loopback source");
    socket.connect(to).await.expect("connect")
}

/// Reads `stream` until the collector closes it.
fn watch_close(mut stream: TcpStream, closed: Arc<AtomicUsize>) {
    tokio::spawn(async move {
        let mut buf = [0u8; 256];
        loop {
            match stream.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(_) => {}
            }
        }
        closed.fetch_add(1, Ordering::Relaxed);
    });
}

async fn metric(collector: &watchpost_collector::Collector, line_start: &str) -> f64 {
    let (_, text) = get_raw(collector, "/metrics").await;
    text.lines()
        .find_map(|l| l.strip_prefix(line_start)?.trim().parse().ok())
        .unwrap_or_else(|| panic!("no {line_start} in /metrics"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_sockets_are_closed_in_time_and_capped_while_agents_and_the_api_keep_working() {
    let data = tempfile::tempdir().expect("tempdir");
    let collector = start_collector(data.path(), "").await;
    let _agent = start_agent(&collector, "web-1", None, false, Duration::from_millis(200));
    wait_for("the agent to stream", Duration::from_secs(15), || async {
        let (status, _) = get_raw(&collector, "/api/v1/series?metric=agent_rounds_total").await;
        (status == 200).then_some(())
    })
    .await;
    let (http, grpc) = (collector.http_addr(), collector.grpc_addr());

    // 1,000 idle sockets to HTTP and 400 to gRPC, 50 per source address.
    let closed = Arc::new(AtomicUsize::new(0));
    let opened = Instant::now();
    let mut n = 0;
    for i in 0..1_400u32 {
        let from = Ipv4Addr::new(127, 0, 1 + (i / 50 / 250) as u8, 1 + (i / 50 % 250) as u8);
        let to = if i < 1_000 { http } else { grpc };
        let s = idle_socket(from, to).await;
        watch_close(s, closed.clone());
        n += 1;
    }
    eprintln!("{n} idle sockets opened in {:?}", opened.elapsed());

    // While they are open: the API answers and the agent's rounds arrive.
    let (status, _) = get_raw(&collector, "/healthz").await;
    assert_eq!(status, 200);
    let before = watchpost_collector::time::now_ms();
    wait_for(
        "a new round while the sockets are open",
        Duration::from_secs(10),
        || async {
            let (_, body) = get_raw(&collector, "/api/v1/series?metric=agent_rounds_total").await;
            let s: Vec<api::Series> = serde_json::from_str(&body).ok()?;
            (s.first()?.last_timestamp_ms? > before).then_some(())
        },
    )
    .await;
    assert!(metric(&collector, "watchpost_connections_open{listener=\"http\"}").await >= 1_000.0);
    assert!(metric(&collector, "watchpost_connections_open{listener=\"grpc\"}").await >= 400.0);

    // The cap per address: of 70 from one address, 64 stay, 6 are refused.
    let crowd = Arc::new(AtomicUsize::new(0));
    let from = Ipv4Addr::new(127, 0, 9, 9);
    for _ in 0..70 {
        let s = idle_socket(from, http).await;
        watch_close(s, crowd.clone());
    }
    wait_for("the excess refused", Duration::from_secs(5), || async {
        (crowd.load(Ordering::Relaxed) >= 6).then_some(())
    })
    .await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(
        crowd.load(Ordering::Relaxed),
        6,
        "exactly the 6 over 64 are refused"
    );
    assert_eq!(
        metric(
            &collector,
            "watchpost_connections_refused_total{listener=\"http\",reason=\"per_address\"}"
        )
        .await,
        6.0
    );
    assert_eq!(
        get_raw(&collector, "/healthz").await.0,
        200,
        "other addresses still get in"
    );

    // Within the timeouts (10 s), every idle socket is closed.
    let all = wait_for("the idle sockets closed", Duration::from_secs(20), || async {
        let done = closed.load(Ordering::Relaxed) + crowd.load(Ordering::Relaxed);
        (done == 1_470).then_some(opened.elapsed())
    })
    .await;
    eprintln!("all 1,470 idle sockets closed {all:?} after the first was opened");
    assert!(
        metric(
            &collector,
            "watchpost_connections_timed_out_total{listener=\"grpc\"}"
        )
        .await
            >= 400.0
    );
    assert!(
        metric(
            &collector,
            "watchpost_connections_timed_out_total{listener=\"http\"}"
        )
        .await
            >= 1_064.0
    );

    // The agent kept its stream: a valid hello lifts the deadline.
    let agents: Vec<api::Agent> = get(&collector, "/api/v1/agents").await;
    assert!(
        agents.iter().any(|a| a.id == "web-1" && a.connected),
        "{agents:?}"
    );
    let later = watchpost_collector::time::now_ms();
    wait_for("rounds after the timeouts", Duration::from_secs(10), || async {
        let s: Vec<api::Series> = get(&collector, "/api/v1/series?metric=agent_rounds_total").await;
        (s.first()?.last_timestamp_ms? > later).then_some(())
    })
    .await;
}
