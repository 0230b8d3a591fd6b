//! The agent's side of the stream to the collector: connect with backoff,
//! hello, re-send every series definition and every unacknowledged batch on
//! each (re)connect, heartbeats both ways, and drop batches only once the
//! collector acknowledges them.
//!
//! Not responsible for collecting: rounds arrive on a channel from the
//! collection thread and are turned into numbered batches here.

use std::collections::VecDeque;
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::Duration;

use tokio::sync::{mpsc, watch};
use tokio_stream::wrappers::ReceiverStream;
use tonic::transport::Endpoint;
use watchpost_proto::v1::{
    AgentMessage, Batch, Heartbeat, Hello, SeriesDefinition, SeriesDefinitions, agent_message,
    collector_message, ingest_client::IngestClient,
};

use crate::series::Round;

/// Definitions are sent in messages of at most this many.
const DEFINITIONS_PER_MESSAGE: usize = 2_000;

/// What the link needs to know of the agent.
#[derive(Debug, Clone)]
pub struct LinkConfig {
    /// `http://host:port` of the collector.
    pub collector: String,
    /// The hello sent on every connect.
    pub hello: Hello,
    /// Heartbeat period.
    pub heartbeat: Duration,
    /// Unacknowledged batches kept; the oldest is dropped past this.
    pub buffer_batches: usize,
    /// TLS for an `https://` collector.
    pub tls: crate::config::ClientTls,
}

/// Unacknowledged state that outlives a connection.
struct Outbox {
    definitions: Vec<SeriesDefinition>,
    pending: VecDeque<Batch>,
    next_sequence: u64,
    /// Whether a collector has told us where its sequence stands. Before
    /// that, our numbers are provisional and get renumbered on the welcome.
    synced: bool,
    capacity: usize,
    dropped: u64,
}

impl Outbox {
    fn push(&mut self, round: Round) -> Batch {
        let mut batch = Batch {
            sequence: self.next_sequence,
            base_timestamp_ms: round.timestamp_ms,
            series_ids: Vec::with_capacity(round.samples.len()),
            values: Vec::with_capacity(round.samples.len()),
            timestamp_offsets_ms: if round.offsets_ms.len() == round.samples.len() {
                round.offsets_ms
            } else {
                Vec::new()
            },
        };
        self.next_sequence += 1;
        for (id, v) in round.samples {
            batch.series_ids.push(id);
            batch.values.push(v);
        }
        self.definitions.extend(round.definitions);
        if self.pending.len() >= self.capacity {
            self.pending.pop_front();
            self.dropped += 1;
            if self.dropped.is_power_of_two() {
                tracing::warn!(
                    dropped = self.dropped,
                    "collector away too long: dropping oldest batches"
                );
            }
        }
        self.pending.push_back(batch.clone());
        batch
    }

    fn welcome(&mut self, last_sequence: u64) {
        if !self.synced {
            for (i, b) in self.pending.iter_mut().enumerate() {
                b.sequence = last_sequence + 1 + i as u64;
            }
            self.next_sequence = last_sequence + 1 + self.pending.len() as u64;
            self.synced = true;
        } else {
            self.acked(last_sequence);
            self.next_sequence = self.next_sequence.max(last_sequence + 1);
        }
    }

    fn acked(&mut self, sequence: u64) {
        while self.pending.front().is_some_and(|b| b.sequence <= sequence) {
            self.pending.pop_front();
        }
    }
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

fn msg(body: agent_message::Body) -> AgentMessage {
    AgentMessage { body: Some(body) }
}

/// How a connection ended.
enum Ended {
    Shutdown,
    Lost(String),
}

/// Runs the link until `shutdown` turns true. Rounds keep being accepted
/// (and buffered) while the collector is unreachable.
pub async fn run(config: LinkConfig, mut rounds: mpsc::Receiver<Round>, mut shutdown: watch::Receiver<bool>) {
    let mut outbox = Outbox {
        definitions: Vec::new(),
        pending: VecDeque::new(),
        next_sequence: 1,
        synced: false,
        capacity: config.buffer_batches,
        dropped: 0,
    };
    let mut backoff = Duration::from_millis(200);
    loop {
        if *shutdown.borrow() {
            return;
        }
        match session(&config, &mut outbox, &mut rounds, &mut shutdown).await {
            Ended::Shutdown => return,
            Ended::Lost(why) => {
                tracing::warn!(collector = %config.collector, reason = %why, retry_in = ?backoff, "collector connection lost");
            }
        }
        let wait = tokio::time::sleep(backoff);
        tokio::pin!(wait);
        loop {
            tokio::select! {
                _ = &mut wait => break,
                r = rounds.recv() => match r {
                    Some(r) => { outbox.push(r); }
                    None => return,
                },
                _ = shutdown.changed() => return,
            }
        }
        backoff = (backoff * 2).min(Duration::from_secs(10));
    }
}

async fn session(
    config: &LinkConfig,
    outbox: &mut Outbox,
    rounds: &mut mpsc::Receiver<Round>,
    shutdown: &mut watch::Receiver<bool>,
) -> Ended {
    let connect = async {
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
        tx.send(msg(agent_message::Body::Hello(config.hello.clone())))
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
                        last_heard.store(now_ms(), Ordering::Relaxed);
                        match m.body {
                            Some(collector_message::Body::Ack(a)) => {
                                ack_tx.send_replace(a.sequence);
                            }
                            Some(collector_message::Body::Heartbeat(_)) | None => {}
                            Some(other) => {
                                if ctl_tx.send(other).await.is_err() {
                                    return;
                                }
                            }
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

#[allow(clippy::too_many_arguments)]
async fn live(
    config: &LinkConfig,
    outbox: &mut Outbox,
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
    let welcome = tokio::time::timeout(Duration::from_secs(10), ctl_rx.recv()).await;
    let collector_heartbeat = match welcome {
        Ok(Some(collector_message::Body::Welcome(w))) => {
            outbox.welcome(w.last_sequence);
            tracing::info!(collector = %config.collector, last_sequence = w.last_sequence, "connected to collector");
            Duration::from_millis(u64::from(w.heartbeat_interval_ms).max(100))
        }
        Ok(Some(collector_message::Body::Error(e))) => {
            return Ended::Lost(format!("collector refused us: {} ({})", e.message, e.code));
        }
        Ok(_) => return Ended::Lost("stream closed before welcome".into()),
        Err(_) => return Ended::Lost("no welcome within 10s".into()),
    };
    for chunk in outbox.definitions.chunks(DEFINITIONS_PER_MESSAGE) {
        let defs = SeriesDefinitions {
            series: chunk.to_vec(),
        };
        if let Err(e) = send(msg(agent_message::Body::Definitions(defs))).await {
            return e;
        }
    }
    let backlog: Vec<Batch> = outbox.pending.iter().cloned().collect();
    if !backlog.is_empty() {
        tracing::info!(
            batches = backlog.len(),
            "sending batches buffered while disconnected"
        );
    }
    for b in backlog {
        if let Err(e) = send(msg(agent_message::Body::Batch(b))).await {
            return e;
        }
    }

    let dead_after = (collector_heartbeat * 3).max(config.heartbeat * 3);
    let mut heartbeat = tokio::time::interval(config.heartbeat);
    heartbeat.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            r = rounds.recv() => {
                let Some(r) = r else { return Ended::Shutdown };
                let definitions = r.definitions.clone();
                if !definitions.is_empty()
                    && let Err(e) = send(msg(agent_message::Body::Definitions(SeriesDefinitions { series: definitions }))).await
                {
                    outbox.push(r);
                    return e;
                }
                let batch = outbox.push(r);
                if let Err(e) = send(msg(agent_message::Body::Batch(batch))).await {
                    return e;
                }
            }
            changed = ack_rx.changed() => {
                if changed.is_err() {
                    return Ended::Lost("stream closed".into());
                }
                let seq = *ack_rx.borrow_and_update();
                outbox.acked(seq);
            }
            ctl = ctl_rx.recv() => match ctl {
                Some(collector_message::Body::Error(e)) if e.code == "limit" || e.code == "invalid_series" => {
                    // Some of our series were refused; the rest keep flowing.
                    tracing::warn!(reason = %e.message, "collector refused series");
                }
                Some(collector_message::Body::Error(e)) => {
                    return Ended::Lost(format!("{} ({})", e.message, e.code));
                }
                Some(_) => {}
                None => return Ended::Lost("stream closed".into()),
            },
            _ = heartbeat.tick() => {
                let silent_ms = now_ms() - last_heard.load(Ordering::Relaxed);
                if silent_ms > dead_after.as_millis() as i64 {
                    return Ended::Lost(format!("collector silent for {silent_ms} ms"));
                }
                let hb = Heartbeat { sent_at_ms: now_ms() };
                if let Err(e) = send(msg(agent_message::Body::Heartbeat(hb))).await {
                    return e;
                }
            }
            _ = shutdown.changed() => return Ended::Shutdown,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn outbox() -> Outbox {
        Outbox {
            definitions: Vec::new(),
            pending: VecDeque::new(),
            next_sequence: 1,
            synced: false,
            capacity: 3,
            dropped: 0,
        }
    }

    fn round() -> Round {
        Round {
            timestamp_ms: 1,
            definitions: Vec::new(),
            samples: vec![(1, 1.0)],
            offsets_ms: Vec::new(),
        }
    }

    #[test]
    fn first_welcome_renumbers_after_the_collectors_last_sequence() {
        let mut o = outbox();
        o.push(round());
        o.push(round());
        o.welcome(41);
        let seqs: Vec<u64> = o.pending.iter().map(|b| b.sequence).collect();
        assert_eq!(seqs, [42, 43]);
        assert_eq!(o.push(round()).sequence, 44);
    }

    #[test]
    fn later_welcome_drops_what_was_applied() {
        let mut o = outbox();
        o.welcome(0);
        o.push(round());
        o.push(round());
        o.push(round());
        o.welcome(2);
        let seqs: Vec<u64> = o.pending.iter().map(|b| b.sequence).collect();
        assert_eq!(seqs, [3]);
        o.acked(3);
        assert!(o.pending.is_empty());
    }

    #[test]
    fn full_buffer_drops_oldest() {
        let mut o = outbox();
        for _ in 0..5 {
            o.push(round());
        }
        assert_eq!(o.pending.len(), 3);
        assert_eq!(o.pending.front().map(|b| b.sequence), Some(3));
        assert_eq!(o.dropped, 2);
    }
}
