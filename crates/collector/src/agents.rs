//! Which agents exist, which are connected, and since when. In memory,
//! loaded from and written back to the database; one live session per
//! agent id (a new connection replaces the old one).

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::Mutex;

use tokio::sync::oneshot;
use watchpost_model::api;

use crate::db::AgentRow;
use crate::rules::engine::AgentStatus;
use crate::time::rfc3339;

struct Entry {
    hostname: String,
    version: String,
    address: String,
    labels: BTreeMap<String, String>,
    first_seen_ms: i64,
    last_seen_ms: i64,
    flushed_seen_ms: i64,
    connected_since_ms: Option<i64>,
    session: u64,
    kill: Option<oneshot::Sender<Kick>>,
    last_sequence: u64,
    series: u64,
    /// Its clock minus ours, as the current (or last) session measured it.
    clock_offset_ms: Option<i64>,
    clock_rtt_ms: Option<i64>,
    /// Samples refused lately: when, how many, why.
    refused: VecDeque<(i64, u64, String)>,
}

/// How long refused samples are shown per agent.
const REFUSED_SHOWN_MS: i64 = 60_000;

impl Entry {
    /// An agent first heard of at `now_ms`.
    fn new(hostname: String, now_ms: i64) -> Entry {
        Entry {
            hostname,
            version: String::new(),
            address: String::new(),
            labels: BTreeMap::new(),
            first_seen_ms: now_ms,
            last_seen_ms: now_ms,
            flushed_seen_ms: 0,
            connected_since_ms: None,
            session: 0,
            kill: None,
            last_sequence: 0,
            series: 0,
            clock_offset_ms: None,
            clock_rtt_ms: None,
            refused: VecDeque::new(),
        }
    }
}

/// Why a session must end: a wire error code and message.
pub type Kick = (&'static str, String);

/// A session's claim on an agent id.
pub struct Session {
    /// Identifies this session among the agent's connections.
    pub id: u64,
    /// Fires when a newer connection of the same agent replaces this one,
    /// or the agent is revoked: the wire code and message to close with.
    pub replaced: oneshot::Receiver<Kick>,
    /// Highest batch sequence applied for the agent (for the welcome).
    pub last_sequence: u64,
}

/// Every agent the collector knows.
#[derive(Default)]
pub struct AgentRegistry {
    agents: Mutex<HashMap<String, Entry>>,
    next_session: Mutex<u64>,
}

impl AgentRegistry {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Entry>> {
        self.agents.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Loads agents from the database. Silence is counted from `now_ms` at
    /// the earliest, so a collector restart does not find every agent silent.
    pub fn load(&self, rows: Vec<AgentRow>, now_ms: i64) {
        let mut agents = self.lock();
        for r in rows {
            agents.insert(
                r.id,
                Entry {
                    hostname: r.hostname,
                    version: r.version,
                    address: r.address,
                    labels: r.labels,
                    first_seen_ms: r.first_seen_ms,
                    last_seen_ms: r.last_seen_ms.max(now_ms),
                    flushed_seen_ms: r.last_seen_ms,
                    connected_since_ms: None,
                    session: 0,
                    kill: None,
                    last_sequence: 0,
                    series: 0,
                    clock_offset_ms: None,
                    clock_rtt_ms: None,
                    refused: VecDeque::new(),
                },
            );
        }
    }

    /// Puts back each agent's last applied sequence (from the journal), so
    /// batches applied before a crash are recognised when re-sent.
    pub fn restore_sequences(&self, sequences: HashMap<String, u64>, now_ms: i64) {
        let mut agents = self.lock();
        for (id, seq) in sequences {
            let e = agents.entry(id.clone()).or_insert_with(|| Entry::new(id, now_ms));
            e.last_sequence = e.last_sequence.max(seq);
        }
    }

    /// Registers a new connection of `id`, replacing any older one.
    pub fn connect(
        &self,
        id: &str,
        hostname: &str,
        version: &str,
        address: &str,
        labels: BTreeMap<String, String>,
        now_ms: i64,
    ) -> Session {
        let session = {
            let mut n = self.next_session.lock().unwrap_or_else(|p| p.into_inner());
            *n += 1;
            *n
        };
        let (kill, replaced) = oneshot::channel();
        let mut agents = self.lock();
        let e = agents
            .entry(id.to_string())
            .or_insert_with(|| Entry::new(String::new(), now_ms));
        if let Some(old) = e.kill.take() {
            let _ = old.send((
                "replaced",
                "a newer connection of this agent replaced this one".to_string(),
            ));
        }
        e.hostname = hostname.to_string();
        e.version = version.to_string();
        e.address = address.to_string();
        e.labels = labels;
        e.last_seen_ms = now_ms;
        e.connected_since_ms = Some(now_ms);
        e.session = session;
        e.kill = Some(kill);
        e.series = 0;
        Session {
            id: session,
            replaced,
            last_sequence: e.last_sequence,
        }
    }

    /// Ends the agent's live session, if any (its credential was revoked).
    pub fn kick(&self, id: &str, code: &'static str, why: &str) {
        if let Some(e) = self.lock().get_mut(id)
            && let Some(kill) = e.kill.take()
        {
            let _ = kill.send((code, why.to_string()));
        }
    }

    /// Records a message from the session.
    pub fn seen(&self, id: &str, session: u64, now_ms: i64) {
        if let Some(e) = self.lock().get_mut(id)
            && e.session == session
        {
            e.last_seen_ms = e.last_seen_ms.max(now_ms);
        }
    }

    /// Records an applied batch; returns false if the session was replaced.
    pub fn applied(&self, id: &str, session: u64, sequence: u64, now_ms: i64) -> bool {
        match self.lock().get_mut(id) {
            Some(e) if e.session == session => {
                e.last_sequence = e.last_sequence.max(sequence);
                e.last_seen_ms = e.last_seen_ms.max(now_ms);
                true
            }
            _ => false,
        }
    }

    /// The highest sequence applied for `id`.
    pub fn last_sequence(&self, id: &str) -> u64 {
        self.lock().get(id).map_or(0, |e| e.last_sequence)
    }

    /// The session measured the agent's clock `offset_ms` off ours.
    pub fn clock(&self, id: &str, session: u64, offset_ms: Option<i64>, rtt_ms: Option<i64>) {
        if let Some(e) = self.lock().get_mut(id)
            && e.session == session
        {
            e.clock_offset_ms = offset_ms;
            e.clock_rtt_ms = rtt_ms;
        }
    }

    /// Agents whose clock is off by more than `max_ms`: (id, hostname, offset).
    pub fn clocks_off(&self, max_ms: i64) -> Vec<(String, String, i64)> {
        self.lock()
            .iter()
            .filter_map(|(id, e)| {
                let o = e.clock_offset_ms?;
                (o.abs() > max_ms).then(|| (id.clone(), e.hostname.clone(), o))
            })
            .collect()
    }

    /// Every measured offset: (id, offset ms), for `/metrics`.
    pub fn clock_offsets(&self) -> Vec<(String, i64)> {
        let mut out: Vec<(String, i64)> = self
            .lock()
            .iter()
            .filter_map(|(id, e)| Some((id.clone(), e.clock_offset_ms?)))
            .collect();
        out.sort();
        out
    }

    /// `count` samples of `id` were refused at `now_ms`, for `why`.
    pub fn refused(&self, id: &str, now_ms: i64, count: u64, why: String) {
        if let Some(e) = self.lock().get_mut(id) {
            while e.refused.front().is_some_and(|r| r.0 < now_ms - REFUSED_SHOWN_MS) {
                e.refused.pop_front();
            }
            e.refused.push_back((now_ms, count, why));
        }
    }

    /// Counts series the session defined.
    pub fn add_series(&self, id: &str, session: u64, n: u64) {
        if let Some(e) = self.lock().get_mut(id)
            && e.session == session
        {
            e.series += n;
        }
    }

    /// The session ended (only if it is still the current one).
    pub fn disconnect(&self, id: &str, session: u64, now_ms: i64) {
        if let Some(e) = self.lock().get_mut(id)
            && e.session == session
        {
            e.connected_since_ms = None;
            e.kill = None;
            e.last_seen_ms = e.last_seen_ms.max(now_ms);
        }
    }

    /// Agents for the rule engine's tick.
    pub fn statuses(&self) -> Vec<AgentStatus> {
        self.lock()
            .iter()
            .map(|(id, e)| AgentStatus {
                id: id.clone(),
                hostname: e.hostname.clone(),
                connected: e.connected_since_ms.is_some(),
                last_seen_ms: e.last_seen_ms,
            })
            .collect()
    }

    /// Number of agents connected now.
    pub fn connected(&self) -> usize {
        self.lock()
            .values()
            .filter(|e| e.connected_since_ms.is_some())
            .count()
    }

    /// Last-seen times changed since the previous call (to persist).
    pub fn take_seen(&self) -> Vec<(String, i64)> {
        self.lock()
            .iter_mut()
            .filter(|(_, e)| e.last_seen_ms > e.flushed_seen_ms)
            .map(|(id, e)| {
                e.flushed_seen_ms = e.last_seen_ms;
                (id.clone(), e.last_seen_ms)
            })
            .collect()
    }

    /// Every agent, for the API, sorted by id; refused samples are those
    /// of the minute before `now_ms`.
    pub fn list(&self, now_ms: i64) -> Vec<api::Agent> {
        let mut out: Vec<api::Agent> = self
            .lock()
            .iter()
            .map(|(id, e)| api::Agent {
                id: id.clone(),
                hostname: e.hostname.clone(),
                version: e.version.clone(),
                address: e.address.clone(),
                connected: e.connected_since_ms.is_some(),
                connected_since: e.connected_since_ms.map(rfc3339),
                last_seen: rfc3339(e.last_seen_ms),
                first_seen: rfc3339(e.first_seen_ms),
                series: e.series,
                labels: e.labels.clone(),
                clock_offset: e.clock_offset_ms.map(|o| o as f64 / 1000.0),
                clock_rtt: e.clock_rtt_ms.map(|o| o as f64 / 1000.0),
                refused_last_minute: e
                    .refused
                    .iter()
                    .filter(|r| r.0 >= now_ms - REFUSED_SHOWN_MS)
                    .map(|r| r.1)
                    .sum(),
                refused_reason: e
                    .refused
                    .back()
                    .filter(|r| r.0 >= now_ms - REFUSED_SHOWN_MS)
                    .map(|r| r.2.clone()),
                last_sequence: e.last_sequence,
            })
            .collect();
        out.sort_by(|a, b| a.id.cmp(&b.id));
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn new_connection_replaces_old_and_old_disconnect_is_ignored() {
        let r = AgentRegistry::default();
        let mut s1 = r.connect("a", "h", "1", "127.0.0.1:1", BTreeMap::new(), 10);
        assert!(r.applied("a", s1.id, 5, 11));
        let s2 = r.connect("a", "h", "1", "127.0.0.1:2", BTreeMap::new(), 12);
        assert_eq!(s2.last_sequence, 5);
        assert!(s1.replaced.try_recv().is_ok(), "old session told to go");
        assert!(!r.applied("a", s1.id, 6, 13));
        r.disconnect("a", s1.id, 14);
        assert_eq!(
            r.connected(),
            1,
            "the old session's end does not disconnect the new one"
        );
        r.disconnect("a", s2.id, 15);
        assert_eq!(r.connected(), 0);
        let st = r.statuses();
        assert_eq!(st[0].last_seen_ms, 15);
        assert_eq!(r.take_seen(), vec![("a".to_string(), 15)]);
        assert!(r.take_seen().is_empty());
    }
}
