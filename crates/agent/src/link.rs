//! The agent's side of the stream to the collector: connect with backoff,
//! hello, re-send every series definition and every unacknowledged batch on
//! each (re)connect (from the [`Spool`], oldest first, marked late),
//! heartbeats both ways; batches leave the spool only once the collector
//! acknowledges them.
//!
//! Not responsible for collecting: rounds arrive on a channel from the
//! collection thread and go into the spool here.

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::Duration;

use tokio::sync::{mpsc, watch};
use tokio_stream::wrappers::ReceiverStream;
use tonic::transport::Endpoint;
use watchpost_proto::v1::{
    AgentMessage, Heartbeat, Hello, SeriesDefinitions, agent_message, collector_message,
    ingest_client::IngestClient,
};

use crate::series::Round;
use crate::spool::Spool;
use crate::time::now_ms;

/// Definitions are sent in messages of at most this many.
const DEFINITIONS_PER_MESSAGE: usize = 2_000;
/// Batches sent and not yet acknowledged, at most. A replayed backlog
/// waits in the spool, not in the collector's connection buffers: ten
/// thousand agents replaying at once stay within the collector's memory.
pub const MAX_UNACKED_BATCHES: u64 = 16;
/// The longest wait between connection attempts.
const MAX_BACKOFF: Duration = Duration::from_secs(10);

/// A wait drawn evenly from [backoff / 4, backoff]: agents that lost the
/// same collector at the same moment do not all come back at the same
/// moment ("full jitter", with a floor so one agent never spins).
fn jittered(backoff: Duration) -> Duration {
    use std::hash::{BuildHasher, Hasher};
    // RandomState is seeded randomly per process and stepped per call.
    let r = std::collections::hash_map::RandomState::new()
        .build_hasher()
        .finish();
    let span = backoff.as_micros() as u64 * 3 / 4;
    backoff / 4 + Duration::from_micros(if span == 0 { 0 } else { r % (span + 1) })
}

/// What the link needs to know of the agent.
#[derive(Debug, Clone)]
pub struct LinkConfig {
    /// `http://host:port` of the collector.
    pub collector: String,
    /// The hello sent on every connect.
    pub hello: Hello,
    /// Heartbeat period.
    pub heartbeat: Duration,
    /// What equipment this agent sees, sent on each connection and on change.
    pub inventory: std::sync::Arc<crate::inventory::Board>,
    /// TLS for an `https://` collector.
    pub tls: crate::config::ClientTls,
    /// Where the credential the collector issues at enrolment is kept.
    pub credential_file: Option<std::path::PathBuf>,
}

/// Keeps the credential a collector issued, readable by this user only.
fn save_credential(file: &std::path::Path, credential: &str) -> std::io::Result<()> {
    use std::io::Write;
    #[cfg(unix)]
    use std::os::unix::fs::OpenOptionsExt;
    if let Some(dir) = file.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let tmp = file.with_extension("tmp");
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    options.mode(0o600);
    let mut f = options.open(&tmp)?;
    f.write_all(credential.as_bytes())?;
    f.sync_all()?;
    std::fs::rename(&tmp, file)
}

fn msg(body: agent_message::Body) -> AgentMessage {
    AgentMessage { body: Some(body) }
}

/// How a connection ended.
enum Ended {
    Shutdown,
    /// Never got as far as the collector's welcome.
    Lost(String),
    /// Welcomed, then lost.
    Dropped(String),
}

/// Runs the link until `shutdown` turns true. Rounds keep being accepted
/// (and buffered) while the collector is unreachable.
pub async fn run(
    config: LinkConfig,
    mut outbox: Spool,
    mut rounds: mpsc::Receiver<Round>,
    mut shutdown: watch::Receiver<bool>,
) {
    run_until_stopped(&config, &mut outbox, &mut rounds, &mut shutdown).await;
    // Whatever the collector has not acknowledged stays for the next run.
    outbox.save_state(true);
}

async fn run_until_stopped(
    config: &LinkConfig,
    outbox: &mut Spool,
    rounds: &mut mpsc::Receiver<Round>,
    shutdown: &mut watch::Receiver<bool>,
) {
    let mut backoff = Duration::from_millis(200);
    let mut hello = config.hello.clone();
    loop {
        if *shutdown.borrow() {
            return;
        }
        let began = std::time::Instant::now();
        match session(config, &mut hello, outbox, rounds, shutdown).await {
            Ended::Shutdown => return,
            Ended::Lost(why) => {
                tracing::warn!(collector = %config.collector, reason = %why, retry_within = ?backoff, "cannot reach the collector");
            }
            Ended::Dropped(why) => {
                // It worked for a while (then a collector restart, a network
                // blip): try again soon, not after the longest backoff. A
                // stream that keeps dropping at once (two agents sharing an
                // id replace each other) still backs off.
                if began.elapsed() >= Duration::from_secs(1) {
                    backoff = Duration::from_millis(200);
                }
                tracing::warn!(collector = %config.collector, reason = %why, retry_within = ?backoff, "collector connection lost");
            }
        }
        let wait = tokio::time::sleep(jittered(backoff));
        tokio::pin!(wait);
        loop {
            tokio::select! {
                _ = &mut wait => break,
                r = rounds.recv() => match r {
                    Some(r) => { outbox.push(r); outbox.save_state(false); }
                    None => return,
                },
                _ = shutdown.changed() => return,
            }
        }
        backoff = (backoff * 2).min(MAX_BACKOFF);
    }
}

async fn session(
    config: &LinkConfig,
    hello: &mut Hello,
    outbox: &mut Spool,
    rounds: &mut mpsc::Receiver<Round>,
    shutdown: &mut watch::Receiver<bool>,
) -> Ended {
    let first = hello.clone();
    let connect = async move {
        let mut endpoint = Endpoint::from_shared(config.collector.clone())
            .map_err(|e| format!("bad collector URL: {e}"))?
            .connect_timeout(Duration::from_secs(5))
            .tcp_nodelay(true);
        if config.collector.starts_with("https://") {
            let t = &config.tls;
            let mut tls = tonic::transport::ClientTlsConfig::new();
            tls = match &t.ca_pem {
                Some(ca) => tls.ca_certificate(tonic::transport::Certificate::from_pem(ca)),
                None => tls.with_webpki_roots(),
            };
            if let Some((cert, key)) = &t.identity {
                tls = tls.identity(tonic::transport::Identity::from_pem(cert, key));
            }
            endpoint = endpoint.tls_config(tls).map_err(|e| format!("tls: {e}"))?;
        }
        let channel = endpoint.connect().await.map_err(|e| format!("connect: {e}"))?;
        let mut client = IngestClient::new(channel);
        let (tx, rx) = mpsc::channel::<AgentMessage>(64);
        let mut first = first;
        first.sent_at_ms = now_ms();
        tx.send(msg(agent_message::Body::Hello(first)))
            .await
            .map_err(|_| "stream closed".to_string())?;
        let response = client
            .stream(ReceiverStream::new(rx))
            .await
            .map_err(|e| format!("open stream: {e}"))?;
        Ok::<_, String>((tx, response.into_inner()))
    };
    tokio::pin!(connect);
    let (tx, mut inbound) = loop {
        tokio::select! {
            c = &mut connect => match c {
                Ok(c) => break c,
                Err(e) => return Ended::Lost(e),
            },
            r = rounds.recv() => match r {
                Some(r) => { outbox.push(r); }
                None => return Ended::Shutdown,
            },
            _ = shutdown.changed() => return Ended::Shutdown,
        }
    };

    // The reader never waits on us, so acks flow even while we are busy sending.
    let last_heard = Arc::new(AtomicI64::new(now_ms()));
    let (ack_tx, mut ack_rx) = watch::channel(0u64);
    let (ctl_tx, mut ctl_rx) = mpsc::channel::<collector_message::Body>(8);
    let reader = {
        let last_heard = last_heard.clone();
        tokio::spawn(async move {
            loop {
                match inbound.message().await {
                    Ok(Some(m)) => {
                        let received = now_ms();
                        last_heard.store(received, Ordering::Relaxed);
                        let forward = match m.body {
                            Some(collector_message::Body::Ack(a)) => {
                                ack_tx.send_replace(a.sequence);
                                None
                            }
                            // Answered at once by the session, which needs when
                            // it arrived (T1 of the clock measurement).
                            Some(collector_message::Body::Heartbeat(mut hb)) => {
                                hb.echo_received_at_ms = received;
                                Some(collector_message::Body::Heartbeat(hb))
                            }
                            other => other,
                        };
                        if let Some(body) = forward
                            && ctl_tx.send(body).await.is_err()
                        {
                            return;
                        }
                    }
                    Ok(None) => return,
                    Err(status) => {
                        let _ = ctl_tx
                            .send(collector_message::Body::Error(watchpost_proto::v1::Error {
                                code: "transport".into(),
                                message: status.message().to_string(),
                            }))
                            .await;
                        return;
                    }
                }
            }
        })
    };
    let ended = live(
        config,
        hello,
        outbox,
        rounds,
        shutdown,
        &tx,
        &mut ack_rx,
        &mut ctl_rx,
        &last_heard,
    )
    .await;
    reader.abort();
    ended
}

/// Sends every inventory scope; returns the generation sent.
async fn send_inventory<F, Fut>(board: &crate::inventory::Board, send: &F) -> Result<u64, Ended>
where
    F: Fn(AgentMessage) -> Fut,
    Fut: std::future::Future<Output = Result<(), Ended>>,
{
    let (generation, scopes) = board.snapshot();
    for (scope, items) in scopes {
        send(msg(agent_message::Body::Inventory(
            watchpost_proto::v1::Inventory { scope, items },
        )))
        .await?;
    }
    Ok(generation)
}

#[allow(clippy::too_many_arguments)]
async fn live(
    config: &LinkConfig,
    hello: &mut Hello,
    outbox: &mut Spool,
    rounds: &mut mpsc::Receiver<Round>,
    shutdown: &mut watch::Receiver<bool>,
    tx: &mpsc::Sender<AgentMessage>,
    ack_rx: &mut watch::Receiver<u64>,
    ctl_rx: &mut mpsc::Receiver<collector_message::Body>,
    last_heard: &AtomicI64,
) -> Ended {
    let send =
        |m: AgentMessage| async move { tx.send(m).await.map_err(|_| Ended::Lost("stream closed".into())) };

    // Welcome first.
    let tolerance_ms;
    let welcome = tokio::time::timeout(Duration::from_secs(10), ctl_rx.recv()).await;
    let collector_heartbeat = match welcome {
        Ok(Some(collector_message::Body::Welcome(w))) => {
            outbox.welcome(w.last_sequence);
            tolerance_ms = i64::from(w.clock_tolerance_ms);
            if let Some(c) = w.clock_offset {
                outbox.clock_measured(c.offset_ms, tolerance_ms);
            }
            if !w.credential.is_empty() {
                tracing::info!("enrolled: the collector issued this agent's credential");
                hello.auth_token = w.credential;
                hello.enroll_token.clear();
                match &config.credential_file {
                    Some(file) => {
                        if let Err(e) = save_credential(file, &hello.auth_token) {
                            tracing::error!(file = %file.display(), error = %e, "cannot keep the credential: the agent must be enrolled again after a restart");
                        }
                    }
                    None => tracing::warn!(
                        "no credential_file or spool_dir: the credential is lost when the agent stops"
                    ),
                }
            }
            tracing::info!(collector = %config.collector, last_sequence = w.last_sequence, "connected to collector");
            Duration::from_millis(u64::from(w.heartbeat_interval_ms).max(100))
        }
        Ok(Some(collector_message::Body::Error(e))) => {
            return Ended::Lost(format!("collector refused us: {} ({})", e.message, e.code));
        }
        Ok(_) => return Ended::Lost("stream closed before welcome".into()),
        Err(_) => return Ended::Lost("no welcome within 10s".into()),
    };
    // Everything past the welcome: a loss from here on is a dropped
    // connection, and the next attempt starts from a short backoff.
    let streamed = async {
        for start in (0..outbox.definition_count()).step_by(DEFINITIONS_PER_MESSAGE) {
            let defs = SeriesDefinitions {
                series: outbox.definitions(start..start + DEFINITIONS_PER_MESSAGE),
            };
            if let Err(e) = send(msg(agent_message::Body::Definitions(defs))).await {
                return e;
            }
        }
        let mut inventory_sent = match send_inventory(&config.inventory, &send).await {
            Ok(g) => g,
            Err(e) => return e,
        };
        // Everything unacknowledged goes again, oldest first; batches made
        // before this connection are late. New rounds queue behind them, so
        // the collector sees every series in time order.
        let live_from = outbox.next_sequence();
        let backlog = live_from.saturating_sub(outbox.acked() + 1);
        if backlog > 0 {
            tracing::info!(batches = backlog, "replaying batches spooled while disconnected");
        }
        let mut sent = outbox.acked();

        let dead_after = (collector_heartbeat * 3).max(config.heartbeat * 3);
        let mut heartbeat = tokio::time::interval(config.heartbeat);
        heartbeat.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut state_saved = tokio::time::interval(Duration::from_secs(1));
        loop {
            let unsent = sent + 1 < outbox.next_sequence() && sent < outbox.acked() + MAX_UNACKED_BATCHES;
            tokio::select! {
                permit = tx.reserve(), if unsent => {
                    let Ok(permit) = permit else { return Ended::Lost("stream closed".into()) };
                    match outbox.next_after(sent) {
                        Some(mut b) => {
                            let local = outbox.local_of(b.sequence);
                            b.late = local < live_from;
                            sent = local;
                            permit.send(msg(agent_message::Body::Batch(b)));
                        }
                        None => sent = outbox.next_sequence() - 1,
                    }
                }
                r = rounds.recv() => {
                    let Some(r) = r else { return Ended::Shutdown };
                    let fresh = outbox.push(r);
                    if !fresh.is_empty()
                        && let Err(e) = send(msg(agent_message::Body::Definitions(SeriesDefinitions { series: fresh }))).await
                    {
                        return e;
                    }
                }
                changed = ack_rx.changed() => {
                    if changed.is_err() {
                        return Ended::Lost("stream closed".into());
                    }
                    let seq = *ack_rx.borrow_and_update();
                    outbox.ack(seq);
                }
                ctl = ctl_rx.recv() => match ctl {
                    Some(collector_message::Body::Error(e)) if e.code == "limit" || e.code == "invalid_series" => {
                        // Some of our series were refused; the rest keep flowing.
                        tracing::warn!(reason = %e.message, "collector refused series");
                    }
                    Some(collector_message::Body::Error(e)) if e.code == "refused_samples" => {
                        // E.g. this host's clock is off: the batches are acknowledged.
                        tracing::warn!(reason = %e.message, "collector refused samples");
                    }
                    Some(collector_message::Body::Error(e)) => {
                        return Ended::Lost(format!("{} ({})", e.message, e.code));
                    }
                    Some(collector_message::Body::Heartbeat(hb)) => {
                        if let Some(c) = hb.clock_offset {
                            outbox.clock_measured(c.offset_ms, tolerance_ms);
                        }
                        // The answer that lets the collector measure our clock.
                        let pong = Heartbeat {
                            sent_at_ms: now_ms(),
                            echo_sent_at_ms: hb.sent_at_ms,
                            echo_received_at_ms: hb.echo_received_at_ms,
                            clock_offset: None,
                        };
                        if let Err(e) = send(msg(agent_message::Body::Heartbeat(pong))).await {
                            return e;
                        }
                    }
                    Some(_) => {}
                    None => return Ended::Lost("stream closed".into()),
                },
                _ = state_saved.tick() => {
                    outbox.save_state(false);
                    if config.inventory.generation() != inventory_sent {
                        match send_inventory(&config.inventory, &send).await {
                            Ok(g) => inventory_sent = g,
                            Err(e) => return e,
                        }
                    }
                }
                _ = heartbeat.tick() => {
                    let silent_ms = now_ms() - last_heard.load(Ordering::Relaxed);
                    if silent_ms > dead_after.as_millis() as i64 {
                        return Ended::Lost(format!("collector silent for {silent_ms} ms"));
                    }
                    let hb = Heartbeat {
                        sent_at_ms: now_ms(),
                        ..Heartbeat::default()
                    };
                    if let Err(e) = send(msg(agent_message::Body::Heartbeat(hb))).await {
                        return e;
                    }
                }
                _ = shutdown.changed() => return Ended::Shutdown,
            }
        }
    }
    .await;
    match streamed {
        Ended::Lost(why) => Ended::Dropped(why),
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn waits_are_spread_over_the_last_three_quarters_of_the_backoff() {
        let backoff = Duration::from_secs(8);
        let waits: Vec<Duration> = (0..2_000).map(|_| jittered(backoff)).collect();
        assert!(
            waits
                .iter()
                .all(|w| *w >= Duration::from_secs(2) && *w <= backoff)
        );
        // Spread, not one instant: each quarter-second bucket of the range
        // gets some of 2,000 draws (a fixed wait would fill one).
        let mut buckets = [0u32; 24];
        for w in &waits {
            let b = ((w.as_millis() as u64 - 2_000) / 250).min(23) as usize;
            buckets[b] += 1;
        }
        assert!(buckets.iter().all(|&n| n > 20), "{buckets:?}");
        assert_eq!(jittered(Duration::ZERO), Duration::ZERO);
    }
}
