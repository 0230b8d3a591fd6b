//! SNMP: devices polled on their own schedule (v2c or v3 USM), the
//! interface tables, profile-declared OIDs, and a trap listener.
//!
//! Everything runs on one thread with its own small runtime. Each device
//! has its own task and timeouts, and a semaphore bounds how many are
//! polled at once, so one slow or dead device never delays the others. An
//! unreachable device is `snmp_up{device} 0` (and a fault through the
//! rules), never an agent error. Results are published with the time they
//! were taken and reach the collector with the next round; a trap wakes
//! the collection thread so that its effect is sent at once.
//!
//! ```toml
//! [snmp]
//! profile_dir = "snmp-profiles"   # relative to this file
//! concurrency = 32                # devices polled at once
//! trap_listen = "0.0.0.0:162"     # optional
//! trap_communities = ["public"]   # v2c/v1 communities accepted (required with trap_listen)
//!
//! [[snmp.device]]
//! name = "core-sw-1"              # the `device` label (default: the address)
//! address = "10.0.0.1"            # host or host:port (default port 161)
//! version = "v2c"                 # or "v3"
//! community = "public"
//! # v3: user, auth_protocol ("sha", "sha256", ...), auth_password or
//! #     auth_password_env, privacy_protocol ("aes128", ...), privacy_password(_env)
//! interval = "60s"
//! timeout = "2s"                  # per request
//! retries = 1
//! interfaces = true               # IF-MIB ifTable/ifXTable
//! profiles = ["huawei"]           # files in profile_dir
//! labels = { room = "A-201" }
//! reboot_hold = "10m"             # snmp_device_rebooted stays 1 this long
//! ```

pub mod entity;
pub mod interfaces;
pub mod profile;
pub mod session;
pub mod traps;

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde::Deserialize;
use watchpost_model::HumanDuration;
use watchpost_model::names;

use crate::series::{Measured, Published};
use interfaces::{Columns, InterfaceState, KnownInterface};
pub use profile::Profile;
use session::{AsyncSnmp, AuthProtocol, Credentials, Oid, PrivProtocol, Session, SessionConfig, Value};

/// sysUpTime.0
const SYS_UPTIME: [u32; 9] = [1, 3, 6, 1, 2, 1, 1, 3, 0];

/// `[snmp]` as written.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawSnmp {
    profile_dir: Option<PathBuf>,
    concurrency: Option<usize>,
    trap_listen: Option<String>,
    #[serde(default)]
    trap_communities: Vec<String>,
    #[serde(default)]
    device: Vec<RawDevice>,
}

#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
enum Version {
    V2c,
    V3,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawDevice {
    name: Option<String>,
    address: String,
    version: Version,
    community: Option<String>,
    user: Option<String>,
    auth_protocol: Option<AuthProtocol>,
    auth_password: Option<String>,
    auth_password_env: Option<String>,
    privacy_protocol: Option<PrivProtocol>,
    privacy_password: Option<String>,
    privacy_password_env: Option<String>,
    interval: Option<HumanDuration>,
    timeout: Option<HumanDuration>,
    retries: Option<u32>,
    max_repetitions: Option<u32>,
    #[serde(default = "yes")]
    interfaces: bool,
    #[serde(default)]
    profiles: Vec<String>,
    #[serde(default)]
    labels: BTreeMap<String, String>,
    reboot_hold: Option<HumanDuration>,
}

fn yes() -> bool {
    true
}

/// SNMP, checked.
#[derive(Debug, Clone, Default)]
pub struct SnmpConfig {
    /// Devices polled.
    pub devices: Vec<Device>,
    /// Devices polled at once.
    pub concurrency: usize,
    /// Where traps are received.
    pub trap_listen: Option<String>,
    /// Communities accepted on traps.
    pub trap_communities: Vec<String>,
    /// Profiles loaded, by name.
    pub profiles: BTreeMap<String, Arc<Profile>>,
}

/// One device, checked.
#[derive(Debug, Clone)]
pub struct Device {
    /// Its `device` label.
    pub name: String,
    /// How to reach it.
    pub session: SessionConfig,
    /// Poll period.
    pub interval: Duration,
    /// Poll the interface tables.
    pub interfaces: bool,
    /// Profile names, in order.
    pub profiles: Vec<String>,
    /// Added to its series.
    pub labels: BTreeMap<String, String>,
    /// How long `snmp_device_rebooted` stays 1.
    pub reboot_hold: Duration,
}

impl SnmpConfig {
    /// Checks `[snmp]`; `base` is the directory relative profile paths start from.
    pub(crate) fn check(
        raw: RawSnmp,
        default_interval: Duration,
        base: Option<&Path>,
    ) -> Result<SnmpConfig, String> {
        let concurrency = raw.concurrency.unwrap_or(32);
        if concurrency == 0 {
            return Err("key snmp.concurrency: must be at least 1".into());
        }
        if raw.trap_listen.is_some() && raw.trap_communities.is_empty() {
            return Err(
                "key snmp.trap_communities: list the communities traps must carry (anyone can send a trap)"
                    .into(),
            );
        }
        let profile_dir = raw.profile_dir.map(|d| match base {
            Some(b) if d.is_relative() => b.join(d),
            _ => d,
        });
        let mut profiles = BTreeMap::new();
        let mut devices = Vec::new();
        let mut seen = std::collections::HashSet::new();
        for (i, d) in raw.device.into_iter().enumerate() {
            let name = d.name.clone().unwrap_or_else(|| d.address.clone());
            let what = format!("snmp.device {} ({name})", i + 1);
            if !seen.insert(name.clone()) {
                return Err(format!("{what}: another device has the same name"));
            }
            if d.address.trim().is_empty() {
                return Err(format!("{what}: `address` is empty"));
            }
            let address = if d.address.contains(':')
                && !d.address.starts_with('[')
                && d.address.matches(':').count() > 1
            {
                format!("[{}]:161", d.address) // a bare IPv6 address
            } else if d
                .address
                .rsplit_once(':')
                .is_some_and(|(_, p)| p.parse::<u16>().is_ok())
            {
                d.address.clone()
            } else {
                format!("{}:161", d.address)
            };
            let v3_keys = d.user.is_some()
                || d.auth_protocol.is_some()
                || d.auth_password.is_some()
                || d.auth_password_env.is_some()
                || d.privacy_protocol.is_some()
                || d.privacy_password.is_some()
                || d.privacy_password_env.is_some();
            let credentials = match d.version {
                Version::V2c => {
                    if v3_keys {
                        return Err(format!(
                            "{what}: user, auth_* and privacy_* apply to version \"v3\" only"
                        ));
                    }
                    Credentials::V2c {
                        community: d
                            .community
                            .ok_or_else(|| format!("{what}: version \"v2c\" needs `community`"))?,
                    }
                }
                Version::V3 => {
                    if d.community.is_some() {
                        return Err(format!("{what}: `community` applies to version \"v2c\" only"));
                    }
                    let user = d
                        .user
                        .ok_or_else(|| format!("{what}: version \"v3\" needs `user`"))?;
                    let auth_pw = super::secret(
                        d.auth_password,
                        d.auth_password_env,
                        &format!("{what}: auth_password"),
                    )?;
                    let priv_pw = super::secret(
                        d.privacy_password,
                        d.privacy_password_env,
                        &format!("{what}: privacy_password"),
                    )?;
                    let auth = match (d.auth_protocol, auth_pw) {
                        (Some(p), Some(pw)) => Some((p, pw)),
                        (None, None) => None,
                        _ => return Err(format!("{what}: give both `auth_protocol` and its password")),
                    };
                    let privacy = match (d.privacy_protocol, priv_pw) {
                        (Some(p), Some(pw)) => Some((p, pw)),
                        (None, None) => None,
                        _ => return Err(format!("{what}: give both `privacy_protocol` and its password")),
                    };
                    if privacy.is_some() && auth.is_none() {
                        return Err(format!("{what}: privacy needs authentication (authPriv)"));
                    }
                    for (pw, key) in [
                        (auth.as_ref().map(|a| &a.1), "auth_password"),
                        (privacy.as_ref().map(|p| &p.1), "privacy_password"),
                    ] {
                        if pw.is_some_and(|p| p.len() < 8) {
                            return Err(format!("{what}: {key} must be at least 8 characters (RFC 3414)"));
                        }
                    }
                    Credentials::V3 { user, auth, privacy }
                }
            };
            let timeout = d.timeout.map_or(Duration::from_secs(2), |t| t.0);
            let interval = d
                .interval
                .map_or(default_interval.max(Duration::from_secs(60)), |t| t.0);
            if interval < Duration::from_millis(500) {
                return Err(format!(
                    "{what}: interval {interval:?} is below the minimum of 500ms"
                ));
            }
            if timeout.is_zero() || timeout > interval {
                return Err(format!(
                    "{what}: timeout must be above zero and at most the interval"
                ));
            }
            let retries = d.retries.unwrap_or(1);
            if retries > 10 {
                return Err(format!("{what}: retries {retries} is more than 10"));
            }
            let max_repetitions = d.max_repetitions.unwrap_or(25);
            if !(1..=200).contains(&max_repetitions) {
                return Err(format!("{what}: max_repetitions must be 1..=200"));
            }
            for (k, v) in &d.labels {
                names::check_label_name(k).map_err(|e| format!("{what}: {e}"))?;
                names::check_label_value(v).map_err(|e| format!("{what}: {e}"))?;
                if ["device", "host", "ifIndex", "ifName", "ifAlias"].contains(&k.as_str()) {
                    return Err(format!("{what}: label {k:?} is set by the agent"));
                }
            }
            for p in &d.profiles {
                if profiles.contains_key(p) {
                    continue;
                }
                let dir = profile_dir
                    .as_ref()
                    .ok_or_else(|| format!("{what}: profiles are named but snmp.profile_dir is not set"))?;
                let loaded = Profile::load(dir, p).map_err(|e| format!("{what}: {e}"))?;
                profiles.insert(p.clone(), Arc::new(loaded));
            }
            devices.push(Device {
                name,
                session: SessionConfig {
                    address,
                    credentials,
                    timeout,
                    retries,
                    max_repetitions,
                },
                interval,
                interfaces: d.interfaces,
                profiles: d.profiles,
                labels: d.labels,
                reboot_hold: d.reboot_hold.map_or(Duration::from_secs(600), |h| h.0),
            });
        }
        Ok(SnmpConfig {
            devices,
            concurrency,
            trap_listen: raw.trap_listen,
            trap_communities: raw.trap_communities,
            profiles,
        })
    }

    /// Whether there is anything to run.
    pub fn is_empty(&self) -> bool {
        self.devices.is_empty() && self.trap_listen.is_none()
    }
}

/// What the poller and the trap listener share about a device.
#[derive(Debug, Default)]
pub struct DeviceShared {
    /// Interfaces last seen, by ifIndex.
    pub interfaces: BTreeMap<u32, KnownInterface>,
    /// When a reboot was last seen (unix ms).
    pub rebooted_at_ms: Option<i64>,
    /// The device's labels, `device` included, sorted.
    pub labels: Vec<(String, String)>,
    /// `reboot_hold`.
    pub reboot_hold: Duration,
}

/// Shared state of every device, by name.
pub type Shared = Arc<HashMap<String, Arc<Mutex<DeviceShared>>>>;

use crate::time::now_ms;

fn with(labels: &[(String, String)], more: &[(String, String)]) -> Vec<(String, String)> {
    let mut all: Vec<(String, String)> = labels.iter().chain(more).cloned().collect();
    all.sort();
    all.dedup_by(|a, b| a.0 == b.0);
    all
}

/// Starts the SNMP thread; its results go to `out`. Returns at once.
pub fn start(config: SnmpConfig, out: Published, stop: Arc<std::sync::atomic::AtomicBool>) {
    crate::spawn_runtime_thread("watchpost-snmp", run(config, out, stop));
}

async fn run(config: SnmpConfig, out: Published, stop: Arc<std::sync::atomic::AtomicBool>) {
    let mut shared = HashMap::new();
    for d in &config.devices {
        let mut labels: Vec<(String, String)> = d.labels.clone().into_iter().collect();
        labels.push(("device".into(), d.name.clone()));
        labels.sort();
        shared.insert(
            d.name.clone(),
            Arc::new(Mutex::new(DeviceShared {
                labels,
                reboot_hold: d.reboot_hold,
                ..Default::default()
            })),
        );
    }
    let shared: Shared = Arc::new(shared);
    let limit = Arc::new(tokio::sync::Semaphore::new(config.concurrency));
    let mut tasks = tokio::task::JoinSet::new();
    if let Some(listen) = config.trap_listen.clone() {
        tasks.spawn(traps::listen(
            listen,
            config.clone(),
            shared.clone(),
            out.clone(),
            stop.clone(),
        ));
    }
    for d in config.devices.clone() {
        let profiles: Vec<Arc<Profile>> = d
            .profiles
            .iter()
            .filter_map(|p| config.profiles.get(p).cloned())
            .collect();
        let state = shared.get(&d.name).cloned().unwrap_or_default();
        tasks.spawn(poll_device(
            d,
            profiles,
            state,
            limit.clone(),
            out.clone(),
            stop.clone(),
        ));
    }
    while tasks.join_next().await.is_some() {}
}

async fn poll_device(
    device: Device,
    profiles: Vec<Arc<Profile>>,
    shared: Arc<Mutex<DeviceShared>>,
    limit: Arc<tokio::sync::Semaphore>,
    out: Published,
    stop: Arc<std::sync::atomic::AtomicBool>,
) {
    let mut poller = Poller::new(&device, profiles, shared);
    let mut session: Option<AsyncSnmp> = None;
    let mut was_up = false;
    let mut inventory_due: Option<std::time::Instant> = None;
    let mut tick = tokio::time::interval(device.interval);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        if stop.load(std::sync::atomic::Ordering::Relaxed) {
            return;
        }
        let Ok(_permit) = limit.acquire().await else {
            return;
        };
        if session.is_none() {
            match AsyncSnmp::open(&device.session).await {
                Ok(s) => session = Some(s),
                Err(e) => {
                    tracing::warn!(device = %device.name, error = %e, "cannot open an SNMP session");
                    out.publish(poller.down(now_ms()));
                    continue;
                }
            }
        }
        let Some(s) = session.as_ref() else { continue };
        // The whole poll is bounded by the interval: a device answering
        // slowly to each of many requests cannot hold its slot for ever.
        let at_ms = now_ms();
        let measured = match tokio::time::timeout(device.interval, poller.poll(s, at_ms)).await {
            Ok(m) => m,
            Err(_) => {
                tracing::warn!(device = %device.name, "SNMP poll took longer than the interval");
                poller.down(at_ms)
            }
        };
        let up = measured.iter().any(|m| m.metric == "snmp_up" && m.value == 1.0);
        // The equipment list: when it first answers, then hourly.
        if up && inventory_due.is_none_or(|t| t <= std::time::Instant::now()) {
            let read = tokio::time::timeout(
                device.interval.max(Duration::from_secs(5)),
                entity::read(s, &device.name),
            );
            if let Ok(Some(mut items)) = read.await {
                // Where it stands, for the equipment list.
                for (k, v) in device.labels.iter().filter(|(k, _)| *k == "room" || *k == "rack") {
                    items[0].details.insert(k.clone(), v.clone());
                }
                out.inventory().set(&format!("snmp/{}", device.name), items);
                inventory_due = Some(std::time::Instant::now() + Duration::from_secs(3600));
            }
        }
        if up != was_up {
            if up {
                tracing::info!(device = %device.name, poll_ms = at_ms_elapsed(at_ms), "SNMP device answers");
            } else {
                tracing::warn!(device = %device.name, "SNMP device does not answer");
            }
            was_up = up;
        }
        out.publish(measured);
    }
}

fn at_ms_elapsed(at_ms: i64) -> i64 {
    now_ms() - at_ms
}

/// A profile counter: metric and labels.
type CounterKey = (String, Vec<(String, String)>);

/// Polls one device; holds its counter state between polls.
pub struct Poller {
    name: String,
    interfaces: bool,
    profiles: Vec<Arc<Profile>>,
    shared: Arc<Mutex<DeviceShared>>,
    labels: Vec<(String, String)>,
    if_state: InterfaceState,
    last_uptime: Option<(u32, Instant)>,
    counters: HashMap<CounterKey, (f64, Instant)>,
    legacy: bool,
    started: Instant,
}

impl Poller {
    /// A poller for `device`.
    pub fn new(device: &Device, profiles: Vec<Arc<Profile>>, shared: Arc<Mutex<DeviceShared>>) -> Poller {
        let labels = shared.lock().unwrap_or_else(|p| p.into_inner()).labels.clone();
        Poller {
            name: device.name.clone(),
            interfaces: device.interfaces,
            profiles,
            shared,
            labels,
            if_state: InterfaceState::default(),
            last_uptime: None,
            counters: HashMap::new(),
            legacy: false,
            started: Instant::now(),
        }
    }

    fn m(
        &self,
        metric: impl Into<std::borrow::Cow<'static, str>>,
        more: &[(String, String)],
        value: f64,
        at_ms: i64,
    ) -> Measured {
        Measured {
            metric: metric.into(),
            labels: with(&self.labels, more).into(),
            value,
            at_ms,
            text: None,
        }
    }

    /// What an unreachable device reports.
    pub fn down(&self, at_ms: i64) -> Vec<Measured> {
        vec![self.m("snmp_up", &[], 0.0, at_ms)]
    }

    /// One poll.
    pub async fn poll<S: Session>(&mut self, s: &S, at_ms: i64) -> Vec<Measured> {
        let began = Instant::now();
        let uptime = match s.get(&[Oid(SYS_UPTIME.to_vec())]).await {
            Ok(b) => b.first().and_then(|(_, v)| match v {
                Value::Ticks(t) => Some(*t),
                other => other.as_f64().map(|f| f as u32),
            }),
            Err(e) => {
                tracing::debug!(device = %self.name, error = %e, "SNMP device does not answer");
                return self.down(at_ms);
            }
        };
        let mut out = Vec::new();
        let now = Instant::now();
        if let Some(ticks) = uptime {
            let rebooted = match self.last_uptime {
                None => None,
                Some((before, then)) => {
                    let elapsed_ticks = (now - then).as_millis() as u64 / 10;
                    let expected = u64::from(before) + elapsed_ticks;
                    // TimeTicks wrap after 497 days: a value just past the
                    // wrap is not a reboot.
                    let wrapped = expected >= 1 << 32 && u64::from(ticks) + 6000 >= expected - (1 << 32);
                    (ticks < before && !wrapped).then_some(at_ms - i64::from(ticks) * 10)
                }
            };
            if self.last_uptime.is_none() {
                // First contact: a device that booted within the hold counts as rebooted.
                let mut sh = self.shared.lock().unwrap_or_else(|p| p.into_inner());
                if u64::from(ticks) * 10 < sh.reboot_hold.as_millis() as u64 {
                    sh.rebooted_at_ms = Some(at_ms - i64::from(ticks) * 10);
                }
            }
            if let Some(when) = rebooted {
                tracing::info!(device = %self.name, "SNMP device rebooted (sysUpTime went back)");
                self.shared
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .rebooted_at_ms = Some(when);
                self.if_state.reset();
                self.counters.clear();
            }
            self.last_uptime = Some((ticks, now));
            out.push(self.m("snmp_uptime_seconds", &[], f64::from(ticks) / 100.0, at_ms));
        }
        {
            let sh = self.shared.lock().unwrap_or_else(|p| p.into_inner());
            let rebooted = sh
                .rebooted_at_ms
                .is_some_and(|t| at_ms - t < sh.reboot_hold.as_millis() as i64);
            drop(sh);
            out.push(self.m(
                "snmp_device_rebooted",
                &[],
                if rebooted { 1.0 } else { 0.0 },
                at_ms,
            ));
        }
        let mut walked: HashMap<Oid, Vec<(Oid, Value)>> = HashMap::new();
        if self.interfaces {
            let mut cols = Columns::new();
            let mut times = interfaces::ColumnTimes::new();
            let legacy = self.legacy;
            let wanted = interfaces::ALWAYS
                .iter()
                .chain(if legacy { interfaces::LEGACY } else { &[] });
            for col in wanted {
                let oid = col.oid();
                let began = (Instant::now() - self.started).as_secs_f64();
                let walked = s.walk(&oid).await;
                // The device read its counters somewhere between request and
                // answer: the midpoint is the best estimate of when.
                times.insert(
                    *col,
                    (began + (Instant::now() - self.started).as_secs_f64()) / 2.0,
                );
                match walked {
                    Ok(rows) => {
                        let column = cols.entry(*col).or_default();
                        for (o, v) in rows {
                            if let Some([i]) = o.suffix_after(&oid) {
                                column.insert(*i, v);
                            }
                        }
                    }
                    Err(e) => {
                        tracing::debug!(device = %self.name, column = %oid, error = %e, "interface walk failed");
                        return self.down(at_ms);
                    }
                }
            }
            let need_legacy = InterfaceState::needs_legacy(&cols);
            if need_legacy && !legacy {
                // Walk the 32-bit columns now and from now on.
                for col in interfaces::LEGACY {
                    let oid = col.oid();
                    let began = (Instant::now() - self.started).as_secs_f64();
                    let walked = s.walk(&oid).await;
                    times.insert(
                        *col,
                        (began + (Instant::now() - self.started).as_secs_f64()) / 2.0,
                    );
                    if let Ok(rows) = walked {
                        let column = cols.entry(*col).or_default();
                        for (o, v) in rows {
                            if let Some([i]) = o.suffix_after(&oid) {
                                column.insert(*i, v);
                            }
                        }
                    }
                }
            }
            self.legacy = need_legacy;
            let at_s = (now - self.started).as_secs_f64();
            let (values, known) = self.if_state.process(&cols, &times, at_s, &self.labels);
            out.extend(values.into_iter().map(|(metric, labels, value)| Measured {
                metric: metric.into(),
                labels,
                value,
                at_ms,
                text: None,
            }));
            self.shared.lock().unwrap_or_else(|p| p.into_inner()).interfaces = known;
        }
        let profiles = self.profiles.clone();
        for p in &profiles {
            self.poll_profile(s, p, &mut walked, &mut out, at_ms, now).await;
        }
        out.push(self.m(
            "snmp_poll_duration_ms",
            &[],
            crate::series::round2(began.elapsed().as_secs_f64() * 1000.0),
            at_ms,
        ));
        out.push(self.m("snmp_up", &[], 1.0, at_ms));
        out
    }

    async fn poll_profile<S: Session>(
        &mut self,
        s: &S,
        p: &Profile,
        walked: &mut HashMap<Oid, Vec<(Oid, Value)>>,
        out: &mut Vec<Measured>,
        at_ms: i64,
        now: Instant,
    ) {
        // Scalars in one GET.
        let scalars: Vec<Oid> = p
            .metrics
            .iter()
            .filter(|m| !m.walk)
            .map(|m| m.oid.clone())
            .collect();
        let mut scalar_values: HashMap<Oid, Value> = HashMap::new();
        if !scalars.is_empty() {
            match s.get(&scalars).await {
                Ok(b) => scalar_values.extend(b),
                Err(e) => {
                    tracing::debug!(device = %self.name, profile = %p.name, error = %e, "profile GET failed")
                }
            }
        }
        for m in &p.metrics {
            let fixed: Vec<(String, String)> = m.labels.clone().into_iter().collect();
            if !m.walk {
                let Some(raw) = scalar_values.get(&m.oid).and_then(Value::as_f64) else {
                    continue;
                };
                if let Some(v) = m.convert(raw, None, None)
                    && let Some(v) = self.counter(m, &fixed, v, now)
                {
                    out.push(self.m(m.name.clone(), &fixed, v, at_ms));
                }
                continue;
            }
            let mut columns: Vec<&Oid> = vec![&m.oid];
            columns.extend(m.lookup.iter().map(|(_, o)| o));
            columns.extend(m.when.iter().map(|(o, _)| o));
            columns.extend(m.precision_oid.iter());
            columns.extend(m.si_scale_oid.iter());
            for c in columns {
                if !walked.contains_key(c) {
                    let rows = match s.walk(c).await {
                        Ok(rows) => rows,
                        Err(e) => {
                            tracing::debug!(device = %self.name, column = %c, error = %e, "profile walk failed");
                            Vec::new()
                        }
                    };
                    walked.insert(c.clone(), rows);
                }
            }
            let by_index = |col: &Oid| -> HashMap<Vec<u32>, Value> {
                walked
                    .get(col)
                    .map(|rows| {
                        rows.iter()
                            .filter_map(|(o, v)| o.suffix_after(col).map(|sfx| (sfx.to_vec(), v.clone())))
                            .collect()
                    })
                    .unwrap_or_default()
            };
            let lookups: Vec<(String, HashMap<Vec<u32>, Value>)> =
                m.lookup.iter().map(|(l, o)| (l.clone(), by_index(o))).collect();
            let when = m.when.as_ref().map(|(o, vals)| (by_index(o), vals));
            let precision = m.precision_oid.as_ref().map(&by_index);
            let si = m.si_scale_oid.as_ref().map(&by_index);
            let rows = by_index(&m.oid);
            let mut rows: Vec<_> = rows.into_iter().collect();
            rows.sort_by(|a, b| a.0.cmp(&b.0));
            for (index, value) in rows {
                if let Some((col, vals)) = &when {
                    let keep = col
                        .get(&index)
                        .and_then(Value::as_f64)
                        .is_some_and(|v| vals.contains(&(v as i64)));
                    if !keep {
                        continue;
                    }
                }
                let Some(raw) = value.as_f64() else { continue };
                let p = precision
                    .as_ref()
                    .and_then(|c| c.get(&index))
                    .and_then(Value::as_f64);
                let sc = si.as_ref().and_then(|c| c.get(&index)).and_then(Value::as_f64);
                let Some(v) = m.convert(raw, p, sc) else { continue };
                let index_text = index.iter().map(u32::to_string).collect::<Vec<_>>().join(".");
                let mut labels = fixed.clone();
                labels.push((m.index_label.clone(), index_text));
                for (l, col) in &lookups {
                    if let Some(t) = col.get(&index).and_then(Value::as_text).filter(|t| !t.is_empty()) {
                        labels.push((l.clone(), interfaces::clip(t)));
                    }
                }
                if let Some(v) = self.counter(m, &labels, v, now) {
                    out.push(self.m(m.name.clone(), &labels, v, at_ms));
                }
            }
        }
    }

    /// Gauges pass; counters become a per-second rate (none after a reset).
    fn counter(
        &mut self,
        m: &profile::ProfileMetric,
        labels: &[(String, String)],
        v: f64,
        now: Instant,
    ) -> Option<f64> {
        if m.kind == profile::MetricKind::Gauge {
            return Some(v);
        }
        let key = (m.name.clone(), labels.to_vec());
        let before = self.counters.insert(key, (v, now))?;
        let elapsed = (now - before.1).as_secs_f64();
        (v >= before.0 && elapsed > 0.0).then(|| crate::series::round2((v - before.0) / elapsed))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(text: &str) -> Result<SnmpConfig, String> {
        #[derive(Deserialize)]
        struct F {
            snmp: RawSnmp,
        }
        let f: F = toml::from_str(text).map_err(|e| e.to_string())?;
        SnmpConfig::check(f.snmp, Duration::from_secs(10), None)
    }

    #[test]
    fn checks_devices() {
        let c = check("[[snmp.device]]\naddress = \"10.0.0.1\"\nversion = \"v2c\"\ncommunity = \"public\"\n")
            .expect("valid");
        assert_eq!(c.devices[0].session.address, "10.0.0.1:161");
        assert_eq!(c.devices[0].name, "10.0.0.1");
        assert_eq!(c.devices[0].interval, Duration::from_secs(60));
        let e = |t: &str| check(t).expect_err("invalid");
        assert!(e("[[snmp.device]]\naddress = \"a\"\nversion = \"v2c\"\n").contains("needs `community`"));
        assert!(e("[[snmp.device]]\naddress = \"a\"\nversion = \"v3\"\n").contains("needs `user`"));
        assert!(
            e("[[snmp.device]]\naddress = \"a\"\nversion = \"v3\"\nuser = \"u\"\nauth_protocol = \"sha256\"\nauth_password = \"short\"\n")
                .contains("at least 8")
        );
        assert!(
            e("[[snmp.device]]\naddress = \"a\"\nversion = \"v3\"\nuser = \"u\"\nprivacy_protocol = \"aes128\"\nprivacy_password = \"longenough\"\n")
                .contains("needs authentication")
        );
        assert!(e("[[snmp.device]]\naddress = \"a\"\nversion = \"v2\"\ncommunity = \"p\"\n").contains("v2"));
        assert!(
            e("[[snmp.device]]\naddress = \"a\"\nversion = \"v2c\"\ncommunity = \"p\"\nprofiles = [\"huawei\"]\n")
                .contains("profile_dir")
        );
        assert!(e("[snmp]\ntrap_listen = \"127.0.0.1:1162\"\n").contains("trap_communities"));
        assert!(
            e("[[snmp.device]]\naddress = \"a\"\nversion = \"v2c\"\ncommunity = \"p\"\n[[snmp.device]]\naddress = \"a\"\nversion = \"v2c\"\ncommunity = \"p\"\n")
                .contains("same name")
        );
    }
}
