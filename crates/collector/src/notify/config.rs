//! The `[notify]`, `[[channel]]` and `[[route]]` sections of the
//! collector config as written, and their check into a [`NotifyConfig`]:
//! every error names the key, the channel or the route.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use serde::Deserialize;
use watchpost_model::{HumanDuration, Severity};

use super::{Channel, ChannelKind, Language, NotifyConfig, Route, SmtpTls, Step, Target, Templates, render};
use crate::matchers::Matcher;
use crate::oncall::Roster;
use crate::template::Template;

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
    reporter_email_channel: Option<String>,
    reporter_phone_channel: Option<String>,
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
    name: Option<String>,
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
pub(super) fn parse_rate(s: &str) -> Result<(u32, i64), String> {
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
            if let Some(name) = &r.name {
                if name.trim().is_empty() {
                    return Err(format!("{p}: `name` is empty"));
                }
                if routes
                    .iter()
                    .any(|x: &Route| x.name.as_deref() == Some(name.as_str()))
                {
                    return Err(format!("{p}: route name {name:?} is taken by an earlier route"));
                }
            }
            routes.push(Route {
                index: i,
                name: r.name,
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
        let reporter_channel = |name: Option<String>, key: &str, kinds: &[ChannelKind]| match name {
            None => Ok(None),
            Some(name) => match channels.iter().find(|c| c.name == name) {
                None => Err(format!("key notify.{key}: no channel {name:?}")),
                Some(c) if !kinds.contains(&c.kind) => Err(format!(
                    "key notify.{key}: channel {name:?} is of type {:?}; a reporter is reached by {}",
                    c.kind,
                    if kinds == [ChannelKind::Email] {
                        "e-mail"
                    } else {
                        "a webhook (an SMS gateway)"
                    }
                )),
                Some(_) => Ok(Some(name)),
            },
        };
        let reporter_email_channel = reporter_channel(
            n.reporter_email_channel,
            "reporter_email_channel",
            &[ChannelKind::Email],
        )?
        .or_else(|| {
            channels
                .iter()
                .find(|c| c.kind == ChannelKind::Email)
                .map(|c| c.name.clone())
        });
        let reporter_phone_channel = reporter_channel(
            n.reporter_phone_channel,
            "reporter_phone_channel",
            &[ChannelKind::Webhook],
        )?;
        Ok(NotifyConfig {
            reporter_email_channel,
            reporter_phone_channel,
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
}
