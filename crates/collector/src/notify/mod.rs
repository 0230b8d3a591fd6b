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
mod config;
pub mod direct;
pub mod dispatch;
pub mod render;

pub(crate) use config::{RawChannel, RawNotify, RawParts, RawRoute};

use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

use serde::Deserialize;
use watchpost_model::Severity;
use watchpost_model::api::Member;

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
    /// A reported fault resolved: its reporter hears the handling is done.
    ReporterResolved,
    /// A reported fault closed: its reporter hears the cause and handling.
    ReporterClosed,
    /// The fault flaps: its changes are no longer notified (first step only).
    Flapping,
    /// A flapping fault is stable again, in its real state (first step only).
    Stable,
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
            Kind::ReporterResolved => "reporter_resolved",
            Kind::ReporterClosed => "reporter_closed",
            Kind::Flapping => "flapping",
            Kind::Stable => "stable",
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
            "reporter_resolved" => Kind::ReporterResolved,
            "reporter_closed" => Kind::ReporterClosed,
            "flapping" => Kind::Flapping,
            "stable" => Kind::Stable,
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
    /// Its name (`name = "..."`), which a drill can name to go through it.
    pub name: Option<String>,
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
    /// Fault links are `{link_base}/faults/{id}`, the console's fault page.
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
    /// The channel that tells a reporter with an e-mail address that
    /// their fault was handled (default: the first e-mail channel).
    pub reporter_email_channel: Option<String>,
    /// The channel (an SMS gateway's webhook) that tells a reporter with
    /// only a phone number (default: none).
    pub reporter_phone_channel: Option<String>,
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
            reporter_email_channel: None,
            reporter_phone_channel: None,
            parents: HashMap::new(),
        }
    }
}

impl NotifyConfig {
    /// A channel by name.
    pub fn channel(&self, name: &str) -> Option<&Channel> {
        self.channels.iter().find(|c| c.name == name)
    }

    /// Routes taking a fault: the first match, and more while a route says `continue`.
    pub fn routes_for<'a>(&'a self, fault: &'a Subject<'a>) -> impl Iterator<Item = &'a Route> + 'a {
        let mut done = false;
        // A drill started for one route goes through that route only.
        let pinned = fault.labels.get(DRILL_ROUTE_LABEL);
        self.routes.iter().filter(move |r| {
            if let Some(name) = pinned {
                return r.name.as_ref() == Some(name);
            }
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
                Kind::Flapping | Kind::Stable => {
                    if let Some(first) = route.steps.first() {
                        add(first.to, kind, at_ms, 0);
                    }
                }
                Kind::Escalated | Kind::Resolved | Kind::ReporterResolved | Kind::ReporterClosed => {}
            }
        }
        out
    }

    /// How to tell `reporter` that their fault was handled: by e-mail if
    /// they gave an address and an e-mail channel exists, else by phone
    /// through `notify.reporter_phone_channel`. `Err` says why they cannot be told.
    pub fn reporter_plan(
        &self,
        reporter: &watchpost_model::api::Reporter,
        kind: Kind,
        at_ms: i64,
    ) -> Result<Planned, String> {
        let person = Member {
            name: reporter.name.clone(),
            email: reporter.email.clone(),
            phone: reporter.phone.clone(),
            ..Member::default()
        };
        let channel = match (&reporter.email, &reporter.phone) {
            (Some(_), _) if self.reporter_email_channel.is_some() => self.reporter_email_channel.clone(),
            (_, Some(_)) if self.reporter_phone_channel.is_some() => self.reporter_phone_channel.clone(),
            (None, None) => return Err("the reporter left no phone or e-mail address".into()),
            (Some(_), None) => {
                return Err(
                    "the reporter gave an e-mail address, but no e-mail channel is configured".into(),
                );
            }
            _ => {
                return Err(
                    "the reporter gave only a phone, and notify.reporter_phone_channel (an SMS gateway webhook) is not set"
                        .into(),
                );
            }
        };
        Ok(Planned {
            kind,
            step: 0,
            channel: channel.unwrap_or_default(),
            person,
            due_ms: at_ms,
        })
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

/// The label a drill started with `--route NAME` carries.
pub const DRILL_ROUTE_LABEL: &str = "drill_route";

impl NotifyConfig {
    /// The route named `name`.
    pub fn route_named(&self, name: &str) -> Option<&Route> {
        self.routes.iter().find(|r| r.name.as_deref() == Some(name))
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
    use super::config::parse_rate;
    use super::*;
    use jiff::tz::TimeZone;
    use std::path::Path;

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
