//! gRPC ingest: one session per agent stream.
//!
//! A session checks the hello, maps the agent's series definitions to store
//! series (adding the `host` label from the agent's identity and refusing
//! any it sends), applies batches to the hot store, runs the rule engine on
//! them, and acknowledges a batch once every fault change it caused is
//! committed. Batches at or below the agent's last applied sequence are
//! acknowledged again and dropped (at-least-once delivery, applied once).

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use tokio::sync::{mpsc, watch};
use tokio_stream::wrappers::ReceiverStream;
use tonic::{Request, Response, Status, Streaming};
use watchpost_model::names::{self, HOST_LABEL, MAX_LABELS};
use watchpost_proto::v1::{
    AgentMessage, Batch, ClockOffset, CollectorMessage, Error as WireError, Heartbeat, Hello,
    PROTOCOL_VERSION, SeriesDefinition, Welcome, agent_message, collector_message, ingest_server::Ingest,
};

use crate::Core;
use crate::clock_offset::ClockFilter;
use crate::faults::Command;
use crate::faults::Transition;
use crate::listen::ConnInfo;
use crate::store::{Refused, SeriesId};

mod inventory;
use inventory::inventory_report;

/// Samples further ahead of the collector's clock are refused.
const MAX_FUTURE_MS: i64 = 10 * 60 * 1000;
/// Samples applied between yields to the runtime.
const APPLY_SLICE: usize = 512;
/// At most one notice about refused samples per session this often.
const SAMPLE_NOTICE_EVERY: Duration = Duration::from_secs(10);

/// Why samples of a batch were not stored, counted for the agent's notice.
#[derive(Default, Clone, Copy)]
struct RefusedSamples {
    undefined: u64,
    out_of_order: u64,
    ahead: u64,
    too_old: u64,
    over_limit: u64,
}

impl RefusedSamples {
    fn total(&self) -> u64 {
        self.undefined + self.out_of_order + self.ahead + self.too_old + self.over_limit
    }

    fn add(&mut self, o: &RefusedSamples) {
        self.undefined += o.undefined;
        self.out_of_order += o.out_of_order;
        self.ahead += o.ahead;
        self.too_old += o.too_old;
        self.over_limit += o.over_limit;
    }

    /// What the agent is told: each reason with its count and limit.
    fn describe(&self, window: Duration, batch_limit: usize) -> String {
        let mut parts = Vec::new();
        if self.undefined > 0 {
            parts.push(format!("{} of series never defined (or refused)", self.undefined));
        }
        if self.out_of_order > 0 {
            parts.push(format!(
                "{} not newer than the series' last sample",
                self.out_of_order
            ));
        }
        if self.ahead > 0 {
            parts.push(format!(
                "{} more than {} min ahead of the collector's clock",
                self.ahead,
                MAX_FUTURE_MS / 60_000
            ));
        }
        if self.too_old > 0 {
            parts.push(format!(
                "{} older than the collector's window ({window:?}, collector.window)",
                self.too_old
            ));
        }
        if self.over_limit > 0 {
            parts.push(format!(
                "{} in batches over {batch_limit} samples (collector.max_samples_per_batch)",
                self.over_limit
            ));
        }
        format!("{} samples refused: {}", self.total(), parts.join("; "))
    }
}

/// The tonic service.
pub struct IngestService {
    core: Arc<Core>,
    shutdown: watch::Receiver<bool>,
}

impl IngestService {
    /// A service over the collector's core.
    pub fn new(core: Arc<Core>, shutdown: watch::Receiver<bool>) -> IngestService {
        IngestService { core, shutdown }
    }
}

fn out(body: collector_message::Body) -> Result<CollectorMessage, Status> {
    Ok(CollectorMessage { body: Some(body) })
}

fn wire_error(code: &str, message: String) -> Result<CollectorMessage, Status> {
    out(collector_message::Body::Error(WireError {
        code: code.to_string(),
        message,
    }))
}

#[tonic::async_trait]
impl Ingest for IngestService {
    type StreamStream = ReceiverStream<Result<CollectorMessage, Status>>;

    async fn stream(
        &self,
        request: Request<Streaming<AgentMessage>>,
    ) -> Result<Response<Self::StreamStream>, Status> {
        let conn = request.extensions().get::<ConnInfo>().cloned();
        let peer = conn.as_ref().map(|c| c.remote).or_else(|| request.remote_addr());
        let hello_said = conn.and_then(|c| c.hello);
        let inbound = request.into_inner();
        let (tx, rx) = mpsc::channel(256);
        let core = self.core.clone();
        let shutdown = self.shutdown.clone();
        tokio::spawn(async move {
            run_session(core, inbound, tx, peer, hello_said, shutdown).await;
        });
        Ok(Response::new(ReceiverStream::new(rx)))
    }
}

/// Checks a hello; the error is what the agent is told.
fn check_hello(h: &Hello) -> Result<(), String> {
    if h.protocol_version != PROTOCOL_VERSION {
        return Err(format!(
            "protocol version {} is not supported; this collector speaks version {PROTOCOL_VERSION}",
            h.protocol_version
        ));
    }
    for (what, v) in [("agent_id", &h.agent_id), ("hostname", &h.hostname)] {
        if v.trim().is_empty() {
            return Err(format!("hello: {what} is empty"));
        }
        names::check_label_value(v).map_err(|e| format!("hello: {what}: {e}"))?;
    }
    Ok(())
}

struct SessionState {
    agent: Arc<str>,
    hostname: String,
    /// The agent's labels (room and rack for its equipment).
    labels: BTreeMap<String, String>,
    session: u64,
    /// Agent-local series id → store series.
    map: Vec<Option<SeriesId>>,
    defined: usize,
    samples: Vec<(SeriesId, i64, f64)>,
    transitions: Vec<Transition>,
    /// The agent's clock, as this session measures it.
    clock: ClockFilter,
}

async fn run_session(
    core: Arc<Core>,
    mut inbound: Streaming<AgentMessage>,
    tx: mpsc::Sender<Result<CollectorMessage, Status>>,
    peer: Option<SocketAddr>,
    hello_said: Option<Arc<std::sync::atomic::AtomicBool>>,
    mut shutdown: watch::Receiver<bool>,
) {
    let address = peer.map(|p| p.to_string()).unwrap_or_default();
    let hello_timeout = core.config.limits.hello_timeout;
    let hello = match tokio::time::timeout(hello_timeout, inbound.message()).await {
        Ok(Ok(Some(AgentMessage {
            body: Some(agent_message::Body::Hello(h)),
        }))) => h,
        Ok(Ok(Some(_))) => {
            let _ = tx
                .send(wire_error("protocol", "the first message must be a hello".into()))
                .await;
            return;
        }
        Ok(_) => return,
        Err(_) => {
            let _ = tx
                .send(wire_error(
                    "protocol",
                    format!("no hello within {hello_timeout:?} (collector.hello_timeout)"),
                ))
                .await;
            return;
        }
    };
    let hello_at = core.clock.now_ms();
    if let Err(why) = check_hello(&hello) {
        tracing::warn!(address = %address, agent = %hello.agent_id, reason = %why, "agent refused");
        let _ = tx.send(wire_error("protocol", why)).await;
        return;
    }
    let now = core.clock.now_ms();
    let mut credential = String::new();
    if core.config.security.agents_enrolled {
        match core
            .access
            .authenticate_agent(
                &hello.agent_id,
                &hello.hostname,
                &hello.auth_token,
                &hello.enroll_token,
                now,
            )
            .await
        {
            Ok(issued) => {
                if let Some(c) = issued {
                    tracing::info!(agent = %hello.agent_id, host = %hello.hostname, "agent enrolled");
                    credential = c;
                }
            }
            Err(why) => {
                tracing::warn!(address = %address, agent = %hello.agent_id, reason = %why, "agent refused");
                let _ = tx.send(wire_error("unauthenticated", why)).await;
                return;
            }
        }
    }
    // A valid hello: the connection may stay open from now on.
    if let Some(flag) = &hello_said {
        flag.store(true, Ordering::Relaxed);
    }
    let labels: BTreeMap<String, String> = hello.labels.clone().into_iter().collect();
    let claim = core.agents.connect(
        &hello.agent_id,
        &hello.hostname,
        &hello.version,
        &address,
        labels.clone(),
        now,
    );
    tracing::info!(agent = %hello.agent_id, host = %hello.hostname, address = %address, version = %hello.version, "agent connected");
    core.faults
        .write_later(vec![Command::AgentHello {
            id: hello.agent_id.clone(),
            hostname: hello.hostname.clone(),
            version: hello.version.clone(),
            address: address.clone(),
            labels,
            at_ms: now,
        }])
        .await;
    let heartbeat = core.config.heartbeat;
    let mut clock = ClockFilter::default();
    clock.hello(hello.sent_at_ms, hello_at);
    core.agents
        .clock(&hello.agent_id, claim.id, clock.offset(), clock.rtt());
    let welcome = Welcome {
        last_sequence: claim.last_sequence,
        heartbeat_interval_ms: heartbeat.as_millis().min(u128::from(u32::MAX)) as u32,
        credential,
        sent_at_ms: core.clock.now_ms(),
        clock_offset: clock.offset().map(|offset_ms| ClockOffset { offset_ms }),
        clock_tolerance_ms: core
            .config
            .clock
            .tolerance()
            .as_millis()
            .min(u128::from(u32::MAX)) as u32,
    };
    if tx
        .send(out(collector_message::Body::Welcome(welcome)))
        .await
        .is_err()
    {
        core.agents
            .disconnect(&hello.agent_id, claim.id, core.clock.now_ms());
        return;
    }
    let agent_heartbeat = Duration::from_millis(u64::from(hello.heartbeat_interval_ms).max(100));
    let dead_after = agent_heartbeat.max(heartbeat) * 3;
    let mut state = SessionState {
        agent: hello.agent_id.as_str().into(),
        hostname: hello.hostname.clone(),
        labels: hello.labels.clone().into_iter().collect(),
        session: claim.id,
        map: Vec::new(),
        defined: 0,
        samples: Vec::new(),
        transitions: Vec::new(),
        clock,
    };
    let mut replaced = claim.replaced;
    // Refused samples since the last notice, and when it went.
    let mut unreported = RefusedSamples::default();
    let mut last_notice: Option<Instant> = None;
    let mut ticker = tokio::time::interval(heartbeat);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut unsent_ack: Option<u64> = None;
    let reason = loop {
        tokio::select! {
            m = tokio::time::timeout(dead_after, inbound.message()) => {
                let m = match m {
                    Err(_) => break format!("nothing heard for {dead_after:?}"),
                    Ok(Err(status)) => {
                        // An undecodable or oversized message: say which, then close.
                        let why = format!("cannot read the agent's message: {}", status.message());
                        // tonic answers a message over max_decoding_message_size with OutOfRange.
                        let code = if status.code() == tonic::Code::OutOfRange { "limit" } else { "protocol" };
                        let _ = tx.try_send(wire_error(code, why.clone()));
                        break why;
                    }
                    Ok(Ok(None)) => break "agent closed the stream".to_string(),
                    Ok(Ok(Some(m))) => m,
                };
                core.agents.seen(&state.agent, state.session, core.clock.now_ms());
                match m.body {
                    Some(agent_message::Body::Definitions(d)) => {
                        if let Some((refused, code, first)) = define(&core, &mut state, d.series) {
                            // Not fatal: the agent keeps streaming its other series.
                            let _ = tx.try_send(wire_error(
                                code,
                                format!("{refused} series definition(s) refused; the first: {first}"),
                            ));
                        }
                    }
                    Some(agent_message::Body::Batch(b)) => {
                        // A replayed batch waits for a permit; live ones never do.
                        let permit = if b.late { replay_permit(&core, &tx, &state.clock).await } else { None };
                        let applied = apply_batch(&core, &mut state, b).await;
                        drop(permit);
                        match applied {
                            Ok((seq, refused)) => {
                                let ack = out(collector_message::Body::Ack(watchpost_proto::v1::Ack { sequence: seq }));
                                // Acks are cumulative: if the agent is slow to read, a later one covers this.
                                unsent_ack = tx.try_send(ack).err().map(|_| seq);
                                unreported.add(&refused);
                                if refused.total() > 0 {
                                    let why = refused.describe(core.config.window, core.config.max_samples_per_batch);
                                    core.agents.refused(&state.agent, core.clock.now_ms(), refused.total(), why);
                                }
                                if unreported.total() > 0 && last_notice.is_none_or(|t| t.elapsed() >= SAMPLE_NOTICE_EVERY) {
                                    // Not fatal, and not per batch: an agent with a wrong clock
                                    // gets one line every few seconds, not one per batch.
                                    let text = unreported.describe(core.config.window, core.config.max_samples_per_batch);
                                    tracing::warn!(agent = %state.agent, reason = %text, "samples refused");
                                    let _ = tx.try_send(wire_error("refused_samples", text));
                                    unreported = RefusedSamples::default();
                                    last_notice = Some(Instant::now());
                                }
                            }
                            Err((code, why)) => {
                                tracing::warn!(agent = %state.agent, reason = %why, "closing agent stream");
                                let _ = tx.send(wire_error(code, why.clone())).await;
                                break why;
                            }
                        }
                    }
                    Some(agent_message::Body::Inventory(inv)) => match inventory_report(&core, &state, inv) {
                        Ok(report) => core.faults.write_later(vec![Command::Inventory(Box::new(report))]).await,
                        Err(why) => {
                            // Not fatal: its samples matter more than its equipment list.
                            tracing::warn!(agent = %state.agent, reason = %why, "inventory refused");
                            let _ = tx.try_send(wire_error("invalid_inventory", why));
                        }
                    },
                    Some(agent_message::Body::Heartbeat(hb)) => {
                        let t3 = core.clock.now_ms();
                        if hb.echo_sent_at_ms > 0
                            && state.clock.exchange(hb.echo_sent_at_ms, hb.echo_received_at_ms, hb.sent_at_ms, t3).is_some()
                        {
                            core.agents.clock(&state.agent, state.session, state.clock.offset(), state.clock.rtt());
                        }
                    }
                    None => {}
                    Some(agent_message::Body::Hello(_)) => {
                        let why = "a second hello on one stream".to_string();
                        let _ = tx.send(wire_error("protocol", why.clone())).await;
                        break why;
                    }
                }
            }
            _ = ticker.tick() => {
                if let Some(seq) = unsent_ack {
                    let ack = out(collector_message::Body::Ack(watchpost_proto::v1::Ack { sequence: seq }));
                    unsent_ack = tx.try_send(ack).err().map(|_| seq);
                }
                if let Err(mpsc::error::TrySendError::Closed(_)) = tx.try_send(heartbeat_message(&core, &state.clock)) {
                    break "stream closed".to_string();
                }
            }
            kicked = &mut replaced => {
                let (code, why) = kicked.unwrap_or(("replaced", "a newer connection of this agent replaced this one".to_string()));
                let _ = tx.try_send(wire_error(code, why.clone()));
                break why;
            }
            _ = shutdown.changed() => {
                let _ = tx.try_send(wire_error("shutting_down", "the collector is shutting down".into()));
                break "collector shutting down".to_string();
            }
        }
    };
    core.agents
        .disconnect(&state.agent, state.session, core.clock.now_ms());
    tracing::info!(agent = %state.agent, reason = %reason, "agent disconnected");
}

fn heartbeat_message(core: &Core, clock: &ClockFilter) -> Result<CollectorMessage, Status> {
    out(collector_message::Body::Heartbeat(Heartbeat {
        sent_at_ms: core.clock.now_ms(),
        clock_offset: clock.offset().map(|offset_ms| ClockOffset { offset_ms }),
        ..Heartbeat::default()
    }))
}

/// A permit to apply a replayed batch (`collector.max_concurrent_replays`).
/// Heartbeats go on while the session waits for it, so the agent does not
/// take the wait for a dead collector and reconnect.
async fn replay_permit<'a>(
    core: &'a Core,
    tx: &mpsc::Sender<Result<CollectorMessage, Status>>,
    clock: &ClockFilter,
) -> Option<tokio::sync::SemaphorePermit<'a>> {
    loop {
        match tokio::time::timeout(core.config.heartbeat, core.replays.acquire()).await {
            Ok(permit) => return permit.ok(),
            Err(_) => {
                let _ = tx.try_send(heartbeat_message(core, clock));
            }
        }
    }
}

/// A refusal's wire code: a limit was reached, or the definition is invalid.
const LIMIT: &str = "limit";
const INVALID: &str = "invalid_series";

/// Defines series; returns how many were refused, and the code and reason
/// of the first refusal.
fn define(
    core: &Core,
    state: &mut SessionState,
    defs: Vec<SeriesDefinition>,
) -> Option<(usize, &'static str, String)> {
    let limit = core.config.max_series_per_agent;
    let total_limit = core.config.max_series_total;
    let mut created = 0;
    let mut refused: Option<(usize, &'static str, String)> = None;
    for def in defs {
        let mut refuse = |code: &'static str, why: String| {
            core.telemetry.series_refused.fetch_add(1, Ordering::Relaxed);
            tracing::warn!(agent = %state.agent, series_id = def.id, metric = %def.metric, reason = %why, "series definition refused");
            match refused.as_mut() {
                Some((n, _, _)) => *n += 1,
                None => refused = Some((1, code, format!("{}: {why}", def.metric))),
            }
        };
        let slot = def.id as usize;
        if slot >= limit.saturating_mul(4).max(1024) {
            refuse(
                LIMIT,
                format!("series id {} is beyond the id space of {} series", def.id, limit),
            );
            continue;
        }
        if state.map.get(slot).is_some_and(Option::is_some) {
            // Re-definition of a known id (e.g. a resend): keep the first mapping.
            continue;
        }
        if state.defined >= limit {
            refuse(
                LIMIT,
                format!("agent already has {limit} series, the limit (collector.max_series_per_agent)"),
            );
            continue;
        }
        if core.store.len() >= total_limit {
            refuse(
                LIMIT,
                format!(
                    "the collector holds {} series, its limit (collector.max_series_total)",
                    core.store.len()
                ),
            );
            continue;
        }
        if let Err(e) = names::check_metric_name(&def.metric) {
            refuse(INVALID, e.to_string());
            continue;
        }
        if def.labels.len() >= MAX_LABELS {
            refuse(
                LIMIT,
                format!(
                    "{} labels, more than the limit of {}",
                    def.labels.len(),
                    MAX_LABELS - 1
                ),
            );
            continue;
        }
        let mut labels: Vec<(&str, &str)> = Vec::with_capacity(def.labels.len() + 1);
        let mut bad = None;
        for l in &def.labels {
            if l.name == HOST_LABEL {
                continue; // the collector says which host this is, not the agent
            }
            if let Err(e) = names::check_label_name(&l.name).and_then(|_| names::check_label_value(&l.value))
            {
                bad = Some(e.to_string());
                break;
            }
            labels.push((&l.name, &l.value));
        }
        if let Some(why) = bad {
            refuse(INVALID, why);
            continue;
        }
        labels.push((HOST_LABEL, &state.hostname));
        labels.sort_unstable_by(|a, b| a.0.cmp(b.0));
        if labels.windows(2).any(|w| w[0].0 == w[1].0) {
            refuse(INVALID, "a label name appears twice".to_string());
            continue;
        }
        let (id, new) = core.store.resolve(&def.metric, &labels);
        if new {
            core.engine.bind_series(id);
        }
        if state.map.len() <= slot {
            state.map.resize(slot + 1, None);
        }
        state.map[slot] = Some(id);
        state.defined += 1;
        created += 1;
    }
    core.agents.add_series(&state.agent, state.session, created);
    refused
}

/// Applies a batch; returns the sequence to acknowledge and what was
/// refused, or why the stream must close.
async fn apply_batch(
    core: &Core,
    state: &mut SessionState,
    b: Batch,
) -> Result<(u64, RefusedSamples), (&'static str, String)> {
    let received = Instant::now();
    let n = b.series_ids.len();
    if b.values.len() != n || !(b.timestamp_offsets_ms.is_empty() || b.timestamp_offsets_ms.len() == n) {
        return Err((
            "protocol",
            format!(
                "batch {}: {} series ids, {} values and {} timestamp offsets do not line up",
                b.sequence,
                n,
                b.values.len(),
                b.timestamp_offsets_ms.len()
            ),
        ));
    }
    if b.sequence <= core.agents.last_sequence(&state.agent) {
        core.telemetry.duplicate_batches.fetch_add(1, Ordering::Relaxed);
        return Ok((core.agents.last_sequence(&state.agent), RefusedSamples::default()));
    }
    if core.journal.is_failing() {
        // Not applied at all: what waits for the disk stays what was in
        // flight when writes began to fail, however often agents retry.
        core.telemetry
            .journal_write_failures
            .fetch_add(1, Ordering::Relaxed);
        return Err((
            "unavailable",
            format!(
                "batch {}: the collector cannot write its journal (is its disk full?); not accepted, send it again later",
                b.sequence
            ),
        ));
    }
    let now = core.clock.now_ms();
    let t = &core.telemetry;
    state.transitions.clear();
    let mut why = RefusedSamples::default();
    if n > core.config.max_samples_per_batch {
        // Refused whole, and acknowledged so that it is not resent forever.
        why.over_limit = n as u64;
        t.samples_refused.fetch_add(n as u64, Ordering::Relaxed);
        core.journal
            .append(state.agent.clone(), b.sequence, Vec::new())
            .await
            .map_err(|e| ("unavailable", format!("cannot journal: {e}")))?;
        core.agents.applied(&state.agent, state.session, b.sequence, now);
        return Ok((b.sequence, why));
    }
    let oldest = now - core.config.window.as_millis() as i64;
    // An agent whose clock is off has its timestamps rebased: a late batch
    // by the offset it was made under (its agent stamped it), a live one
    // by the offset measured now.
    let stamped = b.clock_offset.as_ref().map(|c| c.offset_ms);
    let offset = if b.late {
        stamped.or(state.clock.offset())
    } else {
        state.clock.offset()
    };
    let shift = core.config.clock.shift(offset);
    // Texts first: a fault the samples open shows the text they came with.
    for t in &b.texts {
        if let Some(Some(id)) = state.map.get(t.series_id as usize).copied() {
            core.engine.set_text(id, &t.text);
        }
    }
    let mut journaled: Vec<(SeriesId, i64, f64)> = Vec::with_capacity(n);
    // Large batches are applied in slices with a yield between them, so one
    // agent's big batch does not hold up a small one that opens a fault.
    for start in (0..n).step_by(APPLY_SLICE) {
        if start > 0 {
            tokio::task::yield_now().await;
        }
        state.samples.clear();
        for i in start..n.min(start + APPLY_SLICE) {
            let ts = b
                .base_timestamp_ms
                .saturating_add(b.timestamp_offsets_ms.get(i).map_or(0, |o| i64::from(*o)))
                .saturating_sub(shift);
            let v = b.values[i];
            let Some(Some(id)) = state.map.get(b.series_ids[i] as usize).copied() else {
                why.undefined += 1;
                continue;
            };
            // NaN and ±Inf are stored as they are (a sensor's "no reading");
            // the rules skip NaN.
            if ts > now + MAX_FUTURE_MS {
                why.ahead += 1;
                continue;
            }
            if ts < oldest {
                why.too_old += 1;
                continue;
            }
            match core.store.append(id, ts, v) {
                Ok(()) => state.samples.push((id, ts, v)),
                Err(Refused::OutOfOrder) => why.out_of_order += 1,
                Err(Refused::UnknownSeries) => why.undefined += 1,
            }
        }
        journaled.extend_from_slice(&state.samples);
        let eval_start = Instant::now();
        core.engine
            .on_samples(&state.samples, now, &mut state.transitions);
        t.rule_eval_ns
            .fetch_add(eval_start.elapsed().as_nanos() as u64, Ordering::Relaxed);
    }
    t.rule_evals.fetch_add(1, Ordering::Relaxed);
    let accepted = journaled.len() as u64;
    t.samples_ingested.fetch_add(accepted, Ordering::Relaxed);
    if b.late {
        t.samples_late.fetch_add(accepted, Ordering::Relaxed);
    }
    if why.total() > 0 {
        t.samples_refused.fetch_add(why.total(), Ordering::Relaxed);
    }
    // The samples and the fault changes they caused are made durable
    // together; only then is the batch acknowledged.
    let journal = core.journal.append(state.agent.clone(), b.sequence, journaled);
    let changes = state.transitions.iter().any(Transition::is_state_change);
    let opens = state.transitions.iter().any(|t| matches!(t, Transition::Open(_)));
    let commands: Vec<Command> = state.transitions.drain(..).map(Command::Fault).collect();
    t.fault_transitions
        .fetch_add(commands.len() as u64, Ordering::Relaxed);
    let faults = async {
        if changes {
            core.faults.write(commands).await
        } else {
            // Only values and counts of open faults: not worth waiting for.
            if !commands.is_empty() {
                core.faults.write_later(commands).await;
            }
            Ok(())
        }
    };
    // Not acknowledged on failure: the agent re-sends after reconnecting.
    let (journaled, written) = tokio::join!(journal, faults);
    if written.is_err() {
        t.db_write_failures.fetch_add(1, Ordering::Relaxed);
    }
    if journaled.is_err() {
        t.journal_write_failures.fetch_add(1, Ordering::Relaxed);
    }
    written.map_err(|e| ("unavailable", format!("cannot record fault changes: {e}")))?;
    journaled.map_err(|e| ("unavailable", format!("cannot journal samples: {e}")))?;
    if opens {
        t.observe_detection(received.elapsed());
    }
    t.batches.fetch_add(1, Ordering::Relaxed);
    core.agents.applied(&state.agent, state.session, b.sequence, now);
    Ok((b.sequence, why))
}
