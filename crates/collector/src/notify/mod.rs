//! Who hears of a fault, how, and when.
//!
//! - [`NotifyConfig`]: channels (webhook, e-mail, DingTalk, WeCom, Feishu
//!   robots), routes (severity, host, rule and label matchers → a team and
//!   channels) with escalation steps, message language and templates, storm
//!   grouping, rate limits and retry policy, and parent dependencies.
//! - [`NotifyConfig::plan`]: which (channel, person) pairs a fault event
//!   goes to, and when. The database writer calls it inside the transaction
//!   that changes the fault, so every notification is in the outbox before
//!   it can be sent (see `db`).
//! - [`render`]: messages from templates (Chinese by default, English by
//!   config, every text overridable).
//! - [`channels`]: the wire formats and signatures of each channel;
//!   [`dispatch`]: the task that sends what is due, groups per recipient,
//!   rate-limits per channel and retries with backoff.

pub mod channels;
pub mod direct;
pub mod dispatch;
pub mod render;

use std::collections::{BTreeMap, HashMap};
use std::path::Path;
use std::time::Duration;

use serde::Deserialize;
use watchpost_model::api::Member;
use watchpost_model::{HumanDuration, Severity};

use crate::matchers::Matcher;
use crate::oncall::Roster;
use crate::template::Template;

/// Why a fault event is being notified.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Kind {
    /// The fault opened (first step of its route).
    Opened,
    /// A resolved fault fired again and reopened.
    Reopened,
    /// Not acknowledged in time: a later escalation step.
    Escalated,
    /// Urgent: management hears at once.
    Urgent,
    /// A response or resolve deadline passed unmet.
    Overdue,
    /// A maintenance window or a parent's outage ended while the fault holds.
    Unsuppressed,
    /// The fault resolved (sent to everyone who was told of it).
    Resolved,
}

impl Kind {
    /// Stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Opened => "opened",
            Kind::Reopened => "reopened",
            Kind::Escalated => "escalated",
            Kind::Urgent => "urgent",
            Kind::Overdue => "overdue",
            Kind::Unsuppressed => "unsuppressed",
            Kind::Resolved => "resolved",
        }
    }

    /// Parses a stored name.
    pub fn parse(s: &str) -> Option<Kind> {
        Some(match s {
            "opened" => Kind::Opened,
            "reopened" => Kind::Reopened,
            "escalated" => Kind::Escalated,
            "urgent" => Kind::Urgent,
            "overdue" => Kind::Overdue,
            "unsuppressed" => Kind::Unsuppressed,
            "resolved" => Kind::Resolved,
            _ => return None,
        })
    }
}

/// The kind of a channel.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ChannelKind {
    /// Generic JSON webhook, optionally HMAC-signed.
    Webhook,
    /// E-mail over SMTP.
    Email,
    /// DingTalk group robot.
    Dingtalk,
    /// WeCom (企业微信) group robot.
    Wecom,
    /// Feishu group robot.
    Feishu,
}

impl ChannelKind {
    /// Default rate: the robots' documented limits (DingTalk and WeCom: 20
    /// a minute per robot), a modest one for the others.
    fn default_rate(self) -> &'static str {
        match self {
            ChannelKind::Dingtalk | ChannelKind::Wecom => "20/min",
            ChannelKind::Feishu => "60/min",
            ChannelKind::Webhook | ChannelKind::Email => "120/min",
        }
    }
}

/// How an SMTP connection is secured.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SmtpTls {
    /// Plain connection upgraded with STARTTLS (required).
    Starttls,
    /// TLS from the first byte (SMTPS, port 465).
    Tls,
    /// No encryption (a relay on the same host or a test server only).
    None,
}

/// A checked channel.
#[derive(Debug, Clone)]
pub struct Channel {
    /// Name routes refer to.
    pub name: String,
    /// What it is.
    pub kind: ChannelKind,
    /// Robot or webhook address.
    pub url: String,
    /// Signing secret (webhook HMAC, DingTalk, Feishu).
    pub secret: Option<String>,
    /// SMTP server `host:port`.
    pub smtp: String,
    /// SMTP security.
    pub tls: SmtpTls,
    /// SMTP user.
    pub username: Option<String>,
    /// SMTP password.
    pub password: Option<String>,
    /// Sender address.
    pub from: String,
    /// Extra root certificate (PEM) for the SMTP server.
    pub ca_pem: Option<Vec<u8>>,
    /// At most `rate.0` messages per `rate.1` ms; the rest wait in the outbox.
    pub rate: (u32, i64),
    /// The rate as written (for messages).
    pub rate_text: String,
    /// Time allowed for one send.
    pub timeout: Duration,
}

/// Whom an escalation step notifies.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Target {
    /// Whoever is on duty in the team.
    OnCall,
    /// The team lead.
    Lead,
    /// The team's managers.
    Managers,
    /// Every member of the team.
    Team,
}

/// One step of an escalation chain.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Step {
    /// Delay after the fault opened.
    pub after_ms: i64,
    /// Whom.
    pub to: Target,
}

/// A checked route.
#[derive(Debug, Clone)]
pub struct Route {
    /// Position in the file (for messages).
    pub index: usize,
    /// Team it notifies.
    pub team: String,
    /// Channels it uses.
    pub channels: Vec<String>,
    /// Severities it takes (all if empty).
    pub severities: Vec<Severity>,
    /// Matchers on `host`, `rule` and labels.
    pub matchers: Vec<Matcher>,
    /// Escalation steps, by delay.
    pub steps: Vec<Step>,
    /// Urgent faults go to managers at once.
    pub urgent_to_managers: bool,
    /// A missed deadline goes to managers (and the on-call person) at once.
    pub overdue_to_managers: bool,
    /// Keep matching later routes too.
    pub continue_matching: bool,
}

/// Message language.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
pub enum Language {
    /// Chinese (default).
    #[default]
    #[serde(rename = "zh")]
    Zh,
    /// English.
    #[serde(rename = "en")]
    En,
}

/// Message templates (see [`render`] for the placeholders).
#[derive(Debug, Clone)]
pub struct Templates {
    /// Subject of a message about one fault.
    pub subject: Template,
    /// Subject of a message grouping several.
    pub subject_many: Template,
    /// One fault's block in a message.
    pub fault: Template,
}

/// The notification config, checked.
#[derive(Debug, Clone)]
pub struct NotifyConfig {
    /// Channels by name.
    pub channels: Vec<Channel>,
    /// Routes in file order.
    pub routes: Vec<Route>,
    /// Who is on duty (shared with `watchpostctl oncall`).
    pub roster: Roster,
    /// Message language.
    pub language: Language,
    /// Templates.
    pub templates: Templates,
    /// Fault links are `{link_base}/api/v1/faults/{id}`.
    pub link_base: String,
    /// After a message to a recipient, later ones within this time are
    /// grouped into the next message.
    pub group_window_ms: i64,
    /// Children's unreachability notifications wait this long for their
    /// parent's fault to suppress them.
    pub parent_wait_ms: i64,
    /// First retry delay; doubles per attempt.
    pub retry_first_ms: i64,
    /// Longest retry delay.
    pub retry_max_ms: i64,
    /// A notification still failing after this long is given up (recorded).
    pub give_up_after_ms: i64,
    /// A channel whose sends have failed this long opens the built-in
    /// `notification_channel_failing` fault, told on the other channels.
    pub channel_failing_after_ms: i64,
    /// Host or device → its parent (the switch in front of it).
    pub parents: HashMap<String, String>,
}

impl Default for NotifyConfig {
    fn default() -> Self {
        NotifyConfig {
            channels: Vec::new(),
            routes: Vec::new(),
            roster: Roster::default(),
            language: Language::Zh,
            templates: render::default_templates(Language::Zh),
            link_base: String::new(),
            group_window_ms: 30_000,
            parent_wait_ms: 15_000,
            retry_first_ms: 5_000,
            retry_max_ms: 600_000,
            give_up_after_ms: 24 * 3600 * 1000,
            channel_failing_after_ms: 600_000,
            parents: HashMap::new(),
        }
    }
}

/// `[notify]` as written.
#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawNotify {
    language: Option<Language>,
    link_base: Option<String>,
    group_window: Option<HumanDuration>,
    parent_wait: Option<HumanDuration>,
    retry_first: Option<HumanDuration>,
    retry_max: Option<HumanDuration>,
    give_up_after: Option<HumanDuration>,
    channel_failing_after: Option<HumanDuration>,
    #[serde(default)]
    templates: RawTemplates,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawTemplates {
    subject: Option<String>,
    subject_many: Option<String>,
    fault: Option<String>,
}

/// `[[channel]]` as written.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawChannel {
    name: String,
    #[serde(rename = "type")]
    kind: ChannelKind,
    url: Option<String>,
    secret: Option<String>,
    smtp: Option<String>,
    tls: Option<SmtpTls>,
    username: Option<String>,
    password: Option<String>,
    password_env: Option<String>,
    from: Option<String>,
    ca_file: Option<String>,
    rate_limit: Option<String>,
    timeout: Option<HumanDuration>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawStep {
    after: HumanDuration,
    to: Target,
}

/// `[[route]]` as written.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawRoute {
    team: String,
    channels: Vec<String>,
    #[serde(default)]
    severity: Vec<Severity>,
    #[serde(rename = "match", default)]
    matchers: BTreeMap<String, String>,
    escalate: Option<Vec<RawStep>>,
    urgent_to_managers: Option<bool>,
    overdue_to_managers: Option<bool>,
    #[serde(rename = "continue", default)]
    continue_matching: bool,
}

/// The parts of the collector config this module checks.
pub(crate) struct RawParts {
    pub notify: RawNotify,
    pub channels: Vec<RawChannel>,
    pub routes: Vec<RawRoute>,
    pub parents: BTreeMap<String, String>,
}

fn ms(d: Duration) -> i64 {
    d.as_millis().min(i64::MAX as u128) as i64
}

/// `"20/min"`, `"2/s"`, `"600/h"`, `"5/10s"` → (messages, per milliseconds).
fn parse_rate(s: &str) -> Result<(u32, i64), String> {
    let (n, unit) = s
        .split_once('/')
        .ok_or_else(|| format!("{s:?} is not a rate like \"20/min\""))?;
    let n: u32 = n
        .trim()
        .parse()
        .map_err(|_| format!("{s:?}: {n:?} is not a whole number"))?;
    let period = match unit.trim() {
        "s" | "sec" | "second" => 1_000,
        "min" | "minute" => 60_000,
        "h" | "hour" => 3_600_000,
        other => watchpost_model::parse_duration(other)
            .map(ms)
            .map_err(|_| format!("{s:?}: {other:?} must be s, min, h or a duration like 10s"))?,
    };
    if n == 0 || period <= 0 {
        return Err(format!("{s:?}: the rate must allow at least one message"));
    }
    Ok((n, period))
}

impl NotifyConfig {
    /// Checks the notification parts of a collector config; paths are
    /// relative to `base`. Errors name the key.
    pub(crate) fn check(
        raw: RawParts,
        roster: Roster,
        http_listen: &str,
        base: &Path,
    ) -> Result<Self, String> {
        let n = raw.notify;
        let language = n.language.unwrap_or_default();
        let defaults = render::default_templates(language);
        let template = |text: Option<String>, default: Template, key: &str| match text {
            Some(t) => Template::parse(&t).map_err(|e| format!("key notify.templates.{key}: {e}")),
            None => Ok(default),
        };
        let templates = Templates {
            subject: template(n.templates.subject, defaults.subject, "subject")?,
            subject_many: template(n.templates.subject_many, defaults.subject_many, "subject_many")?,
            fault: template(n.templates.fault, defaults.fault, "fault")?,
        };
        let mut channels: Vec<Channel> = Vec::new();
        for c in raw.channels {
            let p = format!("channel {:?}", c.name);
            if channels.iter().any(|x| x.name == c.name) {
                return Err(format!("{p} is defined twice"));
            }
            let need = |v: Option<String>, key: &str| {
                v.filter(|s| !s.trim().is_empty())
                    .ok_or_else(|| format!("{p}: `{key}` is required for type {:?}", c.kind))
            };
            let mut ch = Channel {
                name: c.name.clone(),
                kind: c.kind,
                url: String::new(),
                secret: c.secret.clone().filter(|s| !s.is_empty()),
                smtp: String::new(),
                tls: c.tls.unwrap_or(SmtpTls::Starttls),
                username: c.username.clone(),
                password: c.password.clone(),
                from: String::new(),
                ca_pem: None,
                rate: parse_rate(c.rate_limit.as_deref().unwrap_or(c.kind.default_rate()))
                    .map_err(|e| format!("{p}: rate_limit: {e}"))?,
                rate_text: c
                    .rate_limit
                    .clone()
                    .unwrap_or_else(|| c.kind.default_rate().to_string()),
                timeout: c.timeout.map_or(Duration::from_secs(15), |d| d.0),
            };
            if c.kind == ChannelKind::Email {
                let smtp = need(c.smtp, "smtp")?;
                if smtp
                    .rsplit_once(':')
                    .and_then(|(_, p)| p.parse::<u16>().ok())
                    .is_none()
                {
                    return Err(format!("{p}: smtp {smtp:?} must be host:port"));
                }
                ch.smtp = smtp;
                let from = need(c.from, "from")?;
                from.parse::<lettre::message::Mailbox>()
                    .map_err(|e| format!("{p}: from {from:?} is not an e-mail address: {e}"))?;
                ch.from = from;
                if let Some(var) = &c.password_env {
                    ch.password = Some(
                        std::env::var(var)
                            .map_err(|_| format!("{p}: password_env names {var:?}, which is not set"))?,
                    );
                }
                if ch.password.is_some() != ch.username.is_some() {
                    return Err(format!("{p}: give both username and password, or neither"));
                }
                if ch.password.is_some() && ch.tls == SmtpTls::None {
                    return Err(format!(
                        "{p}: refusing to send an SMTP password without TLS (tls = \"none\")"
                    ));
                }
                if let Some(file) = &c.ca_file {
                    let path = base.join(file);
                    ch.ca_pem = Some(
                        std::fs::read(&path).map_err(|e| format!("{p}: ca_file {}: {e}", path.display()))?,
                    );
                }
            } else {
                let url = need(c.url, "url")?;
                let parsed = reqwest::Url::parse(&url).map_err(|e| format!("{p}: url {url:?}: {e}"))?;
                if !matches!(parsed.scheme(), "http" | "https") {
                    return Err(format!("{p}: url {url:?} must be http or https"));
                }
                ch.url = url;
                for (key, set) in [
                    ("smtp", c.smtp.is_some()),
                    ("from", c.from.is_some()),
                    ("username", c.username.is_some()),
                    ("ca_file", c.ca_file.is_some()),
                ] {
                    if set {
                        return Err(format!("{p}: `{key}` applies to type \"email\" only"));
                    }
                }
                if c.kind == ChannelKind::Wecom && ch.secret.is_some() {
                    return Err(format!(
                        "{p}: WeCom robots have no signing secret; the key in the url is the credential"
                    ));
                }
            }
            channels.push(ch);
        }
        let mut routes = Vec::new();
        for (i, r) in raw.routes.into_iter().enumerate() {
            let p = format!("route {} (team {:?})", i + 1, r.team);
            if !roster.teams.iter().any(|t| t.name == r.team) {
                return Err(format!(
                    "{p}: no team {:?} in the on-call roster (collector.oncall)",
                    r.team
                ));
            }
            if r.channels.is_empty() {
                return Err(format!("{p}: `channels` is empty"));
            }
            for c in &r.channels {
                if !channels.iter().any(|x| &x.name == c) {
                    return Err(format!("{p}: no channel {c:?}"));
                }
            }
            let mut matchers = Vec::new();
            for (k, v) in &r.matchers {
                matchers.push(Matcher::parse(k, v).map_err(|e| format!("{p}: match: {e}"))?);
            }
            let steps: Vec<Step> = match r.escalate {
                Some(s) => s
                    .into_iter()
                    .map(|s| Step {
                        after_ms: ms(s.after.0),
                        to: s.to,
                    })
                    .collect(),
                None => vec![
                    Step {
                        after_ms: 0,
                        to: Target::OnCall,
                    },
                    Step {
                        after_ms: 15 * 60_000,
                        to: Target::Lead,
                    },
                ],
            };
            if steps.is_empty() {
                return Err(format!("{p}: `escalate` is empty: nobody would be told"));
            }
            if steps.windows(2).any(|w| w[1].after_ms < w[0].after_ms) {
                return Err(format!("{p}: `escalate` steps must be in order of `after`"));
            }
            routes.push(Route {
                index: i,
                team: r.team,
                channels: r.channels,
                severities: r.severity,
                matchers,
                steps,
                urgent_to_managers: r.urgent_to_managers.unwrap_or(true),
                overdue_to_managers: r.overdue_to_managers.unwrap_or(true),
                continue_matching: r.continue_matching,
            });
        }
        let get = |d: Option<HumanDuration>, default: i64| d.map_or(default, |d| ms(d.0));
        let defaults = NotifyConfig::default();
        let retry_first_ms = get(n.retry_first, defaults.retry_first_ms).max(100);
        let retry_max_ms = get(n.retry_max, defaults.retry_max_ms);
        if retry_max_ms < retry_first_ms {
            return Err("key notify.retry_max: shorter than notify.retry_first".into());
        }
        for (child, parent) in &raw.parents {
            if child == parent {
                return Err(format!("key parents.{child}: a host cannot be its own parent"));
            }
            // A loop would suppress every member of it forever.
            let mut seen = vec![child.as_str()];
            let mut at = parent.as_str();
            while let Some(next) = raw.parents.get(at) {
                if seen.contains(&at) {
                    return Err(format!("key parents: {child:?} is in a loop of parents ({at:?})"));
                }
                seen.push(at);
                at = next;
            }
        }
        Ok(NotifyConfig {
            channels,
            routes,
            roster,
            language,
            templates,
            link_base: n
                .link_base
                .map(|s| s.trim_end_matches('/').to_string())
                .unwrap_or_else(|| format!("http://{http_listen}")),
            group_window_ms: get(n.group_window, defaults.group_window_ms),
            parent_wait_ms: get(n.parent_wait, defaults.parent_wait_ms),
            retry_first_ms,
            retry_max_ms,
            give_up_after_ms: get(n.give_up_after, defaults.give_up_after_ms),
            channel_failing_after_ms: get(n.channel_failing_after, defaults.channel_failing_after_ms),
            parents: raw.parents.into_iter().collect(),
        })
    }

    /// A channel by name.
    pub fn channel(&self, name: &str) -> Option<&Channel> {
        self.channels.iter().find(|c| c.name == name)
    }

    /// Routes taking a fault: the first match, and more while a route says `continue`.
    pub fn routes_for<'a>(&'a self, fault: &'a Subject<'a>) -> impl Iterator<Item = &'a Route> + 'a {
        let mut done = false;
        self.routes.iter().filter(move |r| {
            if done || !r.takes(fault) {
                return false;
            }
            done = !r.continue_matching;
            true
        })
    }

    /// Whom `target` names in `team` at `at_ms`.
    pub fn people(&self, team: &str, target: Target, at_ms: i64) -> Vec<Member> {
        let at = jiff::Timestamp::from_millisecond(at_ms).unwrap_or(jiff::Timestamp::UNIX_EPOCH);
        let Some(duty) = self.roster.on_duty(at).into_iter().find(|d| d.team == team) else {
            return Vec::new();
        };
        match target {
            Target::OnCall => duty.on_duty,
            Target::Lead => duty.lead.into_iter().collect(),
            Target::Managers => duty.managers,
            Target::Team => self
                .roster
                .teams
                .iter()
                .find(|t| t.name == team)
                .map(|t| t.members().cloned().collect())
                .unwrap_or_default(),
        }
    }

    /// What to queue for `kind` of `fault` at `at_ms`: one entry per
    /// (channel, person), deduplicated, each with the time it is due.
    pub fn plan(&self, fault: &Subject<'_>, kind: Kind, at_ms: i64) -> Vec<Planned> {
        let mut out: Vec<Planned> = Vec::new();
        let held = if fault.unreachable && self.parent_of(fault.host, fault.labels).is_some() {
            self.parent_wait_ms
        } else {
            0
        };
        for route in self.routes_for(fault) {
            let mut add = |to: Target, kind: Kind, due_ms: i64, step: usize| {
                for person in self.people(&route.team, to, at_ms) {
                    for channel in &route.channels {
                        if out
                            .iter()
                            .any(|p| &p.channel == channel && p.person.name == person.name && p.kind == kind)
                        {
                            continue;
                        }
                        out.push(Planned {
                            kind,
                            step,
                            channel: channel.clone(),
                            person: person.clone(),
                            due_ms,
                        });
                    }
                }
            };
            match kind {
                Kind::Opened | Kind::Reopened | Kind::Unsuppressed => {
                    for (i, s) in route.steps.iter().enumerate() {
                        let k = if i == 0 { kind } else { Kind::Escalated };
                        // A fault someone already acknowledged is not escalated.
                        if i > 0 && fault.acknowledged {
                            break;
                        }
                        add(s.to, k, at_ms + s.after_ms + held, i);
                    }
                    if fault.severity == Severity::Urgent && route.urgent_to_managers && !fault.acknowledged {
                        add(Target::Managers, Kind::Urgent, at_ms + held, 0);
                    }
                }
                Kind::Urgent => {
                    if route.urgent_to_managers {
                        add(Target::Managers, Kind::Urgent, at_ms, 0);
                    }
                }
                Kind::Overdue => {
                    if route.overdue_to_managers {
                        add(Target::Managers, Kind::Overdue, at_ms, 0);
                        add(Target::OnCall, Kind::Overdue, at_ms, 0);
                    }
                }
                Kind::Escalated | Kind::Resolved => {}
            }
        }
        out
    }

    /// The declared parent of a fault's device (its `device` label) or host.
    pub fn parent_of(&self, host: &str, labels: &BTreeMap<String, String>) -> Option<&str> {
        labels
            .get("device")
            .and_then(|d| self.parents.get(d))
            .or_else(|| self.parents.get(host))
            .map(String::as_str)
    }

    /// Children (hosts or devices) whose parent is `name`.
    pub fn children_of<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a str> + 'a {
        self.parents
            .iter()
            .filter(move |(_, p)| p.as_str() == name)
            .map(|(c, _)| c.as_str())
    }

    /// Whether anything can be notified at all.
    pub fn is_enabled(&self) -> bool {
        !self.routes.is_empty()
    }

    /// The retry delay after `attempts` failed sends.
    pub fn backoff_ms(&self, attempts: u32) -> i64 {
        let factor = 1i64 << attempts.saturating_sub(1).min(20);
        self.retry_first_ms.saturating_mul(factor).min(self.retry_max_ms)
    }
}

/// What routing needs to know of a fault.
#[derive(Debug, Clone)]
pub struct Subject<'a> {
    /// Rule.
    pub rule: &'a str,
    /// Host.
    pub host: &'a str,
    /// Severity now.
    pub severity: Severity,
    /// Labels.
    pub labels: &'a BTreeMap<String, String>,
    /// Someone has acknowledged it.
    pub acknowledged: bool,
    /// It says its host or device cannot be reached.
    pub unreachable: bool,
}

impl Route {
    fn takes(&self, f: &Subject<'_>) -> bool {
        (self.severities.is_empty() || self.severities.contains(&f.severity))
            && self.matchers.iter().all(|m| {
                m.matches(match m.name.as_str() {
                    "host" => Some(f.host),
                    "rule" => Some(f.rule),
                    other => f.labels.get(other).map(String::as_str),
                })
            })
    }
}

/// One notification to queue.
#[derive(Debug, Clone, PartialEq)]
pub struct Planned {
    /// Why.
    pub kind: Kind,
    /// Escalation step.
    pub step: usize,
    /// Channel name.
    pub channel: String,
    /// Whom.
    pub person: Member,
    /// Not before (ms).
    pub due_ms: i64,
}

/// A due outbox row with its fault as it is now.
#[derive(Debug, Clone)]
pub struct DueNotification {
    /// Outbox row.
    pub id: i64,
    /// Why.
    pub kind: Kind,
    /// Channel name.
    pub channel: String,
    /// Recipient as planned.
    pub person: watchpost_model::api::Member,
    /// Due since (ms).
    pub due_ms: i64,
    /// Failed attempts so far.
    pub attempts: u32,
    /// The fault.
    pub fault: watchpost_model::api::Fault,
}

#[cfg(test)]
mod tests {
    use super::*;
    use jiff::tz::TimeZone;

    const ROSTER: &str = r#"
[[team]]
name = "platform"
lead = "zhang"
managers = ["chen"]
members = [ { name = "li", email = "li@example.gov.cn" }, { name = "zhang", email = "zhang@example.gov.cn" },
            { name = "chen", email = "chen@example.gov.cn" } ]
rotation = { every = "day", handover = "09:00", start = "2026-01-01", order = ["li"] }
"#;

    fn config(extra: &str) -> Result<NotifyConfig, String> {
        let text = format!(
            "[[channel]]\nname = \"mail\"\ntype = \"email\"\nsmtp = \"127.0.0.1:25\"\ntls = \"none\"\nfrom = \"watchpost@example.gov.cn\"\n\
             [[channel]]\nname = \"hook\"\ntype = \"webhook\"\nurl = \"http://127.0.0.1:1/hook\"\n{extra}"
        );
        #[derive(Deserialize)]
        struct F {
            #[serde(default)]
            notify: RawNotify,
            #[serde(default)]
            channel: Vec<RawChannel>,
            #[serde(default)]
            route: Vec<RawRoute>,
            #[serde(default)]
            parents: BTreeMap<String, String>,
        }
        let f: F = toml::from_str(&text).map_err(|e| e.to_string())?;
        let roster = Roster::parse(ROSTER, "oncall.toml", &TimeZone::UTC).expect("roster");
        NotifyConfig::check(
            RawParts {
                notify: f.notify,
                channels: f.channel,
                routes: f.route,
                parents: f.parents,
            },
            roster,
            "127.0.0.1:9811",
            Path::new("."),
        )
    }

    fn subject<'a>(labels: &'a BTreeMap<String, String>, severity: Severity) -> Subject<'a> {
        Subject {
            rule: "disk_full",
            host: "web-1",
            severity,
            labels,
            acknowledged: false,
            unreachable: false,
        }
    }

    #[test]
    fn plans_steps_urgent_and_overdue() {
        let c = config(
            "[[route]]\nteam = \"platform\"\nchannels = [\"mail\", \"hook\"]\nmatch = { env = \"prod\" }\n",
        )
        .expect("valid");
        let at: i64 = "2026-11-23T03:00:00Z"
            .parse::<jiff::Timestamp>()
            .expect("ts")
            .as_millisecond();
        let labels = BTreeMap::from([("env".to_string(), "prod".to_string())]);
        let plan = c.plan(&subject(&labels, Severity::General), Kind::Opened, at);
        let got: Vec<(Kind, &str, &str, i64)> = plan
            .iter()
            .map(|p| (p.kind, p.channel.as_str(), p.person.name.as_str(), p.due_ms - at))
            .collect();
        assert_eq!(
            got,
            [
                (Kind::Opened, "mail", "li", 0),
                (Kind::Opened, "hook", "li", 0),
                (Kind::Escalated, "mail", "zhang", 15 * 60_000),
                (Kind::Escalated, "hook", "zhang", 15 * 60_000),
            ]
        );
        let urgent = c.plan(&subject(&labels, Severity::Urgent), Kind::Opened, at);
        assert!(
            urgent
                .iter()
                .any(|p| p.kind == Kind::Urgent && p.person.name == "chen" && p.due_ms == at)
        );
        let overdue = c.plan(&subject(&labels, Severity::Minor), Kind::Overdue, at);
        let names: Vec<&str> = overdue.iter().map(|p| p.person.name.as_str()).collect();
        assert_eq!(names, ["chen", "chen", "li", "li"]);
        let other = BTreeMap::from([("env".to_string(), "test".to_string())]);
        assert!(
            c.plan(&subject(&other, Severity::Urgent), Kind::Opened, at)
                .is_empty()
        );
        let acked = Subject {
            acknowledged: true,
            ..subject(&labels, Severity::General)
        };
        assert_eq!(
            c.plan(&acked, Kind::Unsuppressed, at).len(),
            2,
            "no escalation once acknowledged"
        );
    }

    #[test]
    fn refuses_bad_notify_config() {
        let e = |extra: &str| config(extra).expect_err("invalid");
        assert!(e("[[route]]\nteam = \"nobody\"\nchannels = [\"mail\"]\n").contains("no team \"nobody\""));
        assert!(e("[[route]]\nteam = \"platform\"\nchannels = [\"sms\"]\n").contains("no channel \"sms\""));
        assert!(
            e("[[route]]\nteam = \"platform\"\nchannels = [\"mail\"]\nescalate = [ { after = \"15m\", to = \"lead\" }, { after = \"0m\", to = \"on_call\" } ]\n")
                .contains("in order")
        );
        assert!(e("[[channel]]\nname = \"d\"\ntype = \"dingtalk\"\n").contains("`url` is required"));
        assert!(
            e("[[channel]]\nname = \"w\"\ntype = \"wecom\"\nurl = \"https://x/\"\nsecret = \"s\"\n")
                .contains("WeCom")
        );
        assert!(e("[[channel]]\nname = \"r\"\ntype = \"webhook\"\nurl = \"http://x/\"\nrate_limit = \"3/fortnight\"\n").contains("fortnight"));
        assert!(e("[[channel]]\nname = \"m\"\ntype = \"email\"\nsmtp = \"x:25\"\ntls = \"none\"\nfrom = \"a@b\"\nusername = \"u\"\npassword = \"p\"\n").contains("without TLS"));
        assert!(e("[parents]\na = \"b\"\nb = \"a\"\n").contains("loop"));
        assert!(e("[notify]\ntemplates = { fault = \"{host\" }\n").contains("notify.templates.fault"));
    }

    #[test]
    fn rates_and_backoff() {
        assert_eq!(parse_rate("20/min"), Ok((20, 60_000)));
        assert_eq!(parse_rate("2/s"), Ok((2, 1_000)));
        assert_eq!(parse_rate("30/h"), Ok((30, 3_600_000)));
        assert_eq!(parse_rate("1/10s"), Ok((1, 10_000)));
        assert!(parse_rate("0/min").is_err());
        let c = NotifyConfig::default();
        assert_eq!(c.backoff_ms(1), 5_000);
        assert_eq!(c.backoff_ms(2), 10_000);
        assert_eq!(c.backoff_ms(30), 600_000);
    }
}
