//! Messages from templates. A message goes to one person on one channel and
//! carries one or more faults (a storm is grouped). Each fault is rendered
//! with the `fault` template; the message's subject with `subject` (one
//! fault) or `subject_many`.
//!
//! Placeholders of `fault` and `subject`: `{id}`, `{kind}`, `{kind_text}`,
//! `{severity}`, `{severity_text}`, `{status}`, `{host}`, `{rule}`,
//! `{summary}`, `{value}`, `{opened_at}`, `{respond_by}`, `{resolve_by}`,
//! `{acknowledged_by}`, `{link}` and any label of the fault. `subject_many`
//! also has `{count}`. Times are local to the working calendar's zone.

use jiff::tz::TimeZone;
use watchpost_model::Severity;
use watchpost_model::api::{Fault, FaultSource, Member};

use super::{Kind, Language, NotifyConfig, Templates};
use crate::template::Template;

/// At most this many faults are written out in one message; the rest are counted.
pub const MAX_ITEMS: usize = 20;

/// One fault event in a message.
#[derive(Debug, Clone)]
pub struct Item {
    /// Outbox row.
    pub notification_id: i64,
    /// Why.
    pub kind: Kind,
    /// The fault as it is now.
    pub fault: Fault,
}

/// Notifications held back by a channel's rate limit, now sent together.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Held {
    /// Since when (ms).
    pub since_ms: i64,
    /// The channel's limit as written ("20/min").
    pub limit: String,
}

/// A message to one person on one channel.
#[derive(Debug, Clone)]
pub struct Message {
    /// Stable id of this message (idempotency key for receivers).
    pub id: String,
    /// Channel name.
    pub channel: String,
    /// Recipient.
    pub person: Member,
    /// Fault events, oldest first.
    pub items: Vec<Item>,
    /// Set when the rate limit held these back.
    pub held: Option<Held>,
}

/// Rendered text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rendered {
    /// One line.
    pub subject: String,
    /// Plain text: the subject's details, one block per fault.
    pub text: String,
}

/// The built-in templates of a language.
pub fn default_templates(language: Language) -> Templates {
    let (subject, many, fault) = match language {
        Language::Zh => (
            "【哨所】{kind_text}：{severity_text} {host} {summary}",
            "【哨所】{count} 条故障通知（{severity_text} {host} {summary} 等）",
            "【{kind_text}】#{id} {severity_text}故障：{summary}\n主机：{host}\n当前值：{value}\n状态：{status_text}\n发生时间：{opened_at}\n响应时限：{respond_by}\n解决时限：{resolve_by}\n详情：{link}",
        ),
        Language::En => (
            "[Watchpost] {kind_text}: {severity_text} {host} {summary}",
            "[Watchpost] {count} fault notifications ({severity_text} {host} {summary} and more)",
            "[{kind_text}] #{id} {severity_text} fault: {summary}\nHost: {host}\nValue: {value}\nStatus: {status_text}\nOpened: {opened_at}\nRespond by: {respond_by}\nResolve by: {resolve_by}\nDetails: {link}",
        ),
    };
    let t = |s: &str| Template::parse(s).expect("built-in template is valid");
    Templates {
        subject: t(subject),
        subject_many: t(many),
        fault: t(fault),
    }
}

fn kind_text(kind: Kind, lang: Language) -> &'static str {
    match (lang, kind) {
        (Language::Zh, Kind::Opened) => "新故障",
        (Language::Zh, Kind::Reopened) => "故障复发",
        (Language::Zh, Kind::Escalated) => "升级：未及时响应",
        (Language::Zh, Kind::Urgent) => "紧急故障",
        (Language::Zh, Kind::Overdue) => "超时未处理",
        (Language::Zh, Kind::Unsuppressed) => "维护结束仍未恢复",
        (Language::Zh, Kind::Resolved) => "已恢复",
        (Language::En, Kind::Opened) => "New fault",
        (Language::En, Kind::Reopened) => "Fault recurred",
        (Language::En, Kind::Escalated) => "Escalated: not acknowledged",
        (Language::En, Kind::Urgent) => "Urgent fault",
        (Language::En, Kind::Overdue) => "Deadline missed",
        (Language::En, Kind::Unsuppressed) => "Still failing after suppression ended",
        (Language::En, Kind::Resolved) => "Resolved",
        (Language::Zh, Kind::ReporterResolved) => "已处理",
        (Language::Zh, Kind::ReporterClosed) => "已办结",
        (Language::En, Kind::ReporterResolved) => "Handled",
        (Language::En, Kind::ReporterClosed) => "Closed",
        (Language::Zh, Kind::Flapping) => "频繁波动（暂停通知）",
        (Language::Zh, Kind::Stable) => "已稳定",
        (Language::En, Kind::Flapping) => "Flapping (notifications paused)",
        (Language::En, Kind::Stable) => "Stable again",
    }
}

fn severity_text(s: Severity, lang: Language) -> &'static str {
    match (lang, s) {
        (Language::Zh, Severity::Urgent) => "紧急",
        (Language::Zh, Severity::General) => "一般",
        (Language::Zh, Severity::Minor) => "轻微",
        (Language::En, Severity::Urgent) => "urgent",
        (Language::En, Severity::General) => "general",
        (Language::En, Severity::Minor) => "minor",
    }
}

fn status_text(status: &str, lang: Language) -> String {
    match lang {
        Language::En => status.to_string(),
        Language::Zh => match status {
            "open" => "未处理",
            "acknowledged" => "已响应",
            "resolved" => "已恢复",
            "closed" => "已关闭",
            "suppressed" => "已抑制",
            other => other,
        }
        .to_string(),
    }
}

/// RFC 3339 → "2026-11-23 14:05 +08:00" in `tz`.
fn local(rfc3339: &str, tz: &TimeZone) -> String {
    rfc3339
        .parse::<jiff::Timestamp>()
        .map(|t| t.to_zoned(tz.clone()).strftime("%Y-%m-%d %H:%M %:z").to_string())
        .unwrap_or_else(|_| rfc3339.to_string())
}

/// What a reporter is told: not the staff's template (no deadlines, no
/// internal link), but which fault, that it was handled, and (once it is
/// closed) its cause and handling.
fn reporter_templates(language: Language, kind: Kind) -> (Template, Template) {
    let closed = kind == Kind::ReporterClosed;
    let (subject, opening, how, ending) = match language {
        Language::Zh => (
            "【哨所】您报告的故障{kind_text}：{summary}",
            "{reporter}，您好：\n您于 {opened_at} 报告的故障（编号 {id}：{summary}）{kind_text}。",
            "\n原因：{cause}\n处理：{handling}",
            "\n如仍有问题，请再次致电运维服务热线并提供编号 {id}。",
        ),
        Language::En => (
            "[Watchpost] The fault you reported is {kind_lower}: {summary}",
            "Dear {reporter},\nthe fault you reported at {opened_at} (number {id}: {summary}) is {kind_lower}.",
            "\nCause: {cause}\nHandling: {handling}",
            "\nIf it persists, call the service hotline again and give number {id}.",
        ),
    };
    let text = format!("{opening}{}{ending}", if closed { how } else { "" });
    let t = |s: &str| Template::parse(s).expect("built-in template is valid");
    (t(subject), t(&text))
}

/// The link to a fault.
pub fn fault_link(config: &NotifyConfig, id: i64) -> String {
    format!("{}/faults/{id}", config.link_base)
}

fn fill(t: &Template, item: &Item, config: &NotifyConfig, tz: &TimeZone, count: usize) -> String {
    let lang = config.language;
    let f = &item.fault;
    t.render(|name| {
        Some(match name {
            "id" => f.id.to_string(),
            "kind" => item.kind.as_str().to_string(),
            "kind_text" => kind_text(item.kind, lang).to_string(),
            "severity" => f.severity.to_string(),
            "severity_text" => severity_text(f.severity, lang).to_string(),
            "status" => f.status.as_str().to_string(),
            "status_text" => status_text(f.status.as_str(), lang),
            "host" => f.host.clone(),
            "rule" => f.rule.clone(),
            "summary" => f.summary.clone(),
            "value" => f
                .value
                .map(crate::template::format_value)
                .unwrap_or_else(|| "-".to_string()),
            "opened_at" => local(&f.opened_at, tz),
            "respond_by" => local(&f.response_due, tz),
            "resolve_by" => local(&f.resolve_due, tz),
            "acknowledged_by" => f.acknowledged_by.clone().unwrap_or_default(),
            "link" => fault_link(config, f.id),
            "count" => count.to_string(),
            "kind_lower" => kind_text(item.kind, lang).to_lowercase(),
            "reporter" => f
                .report
                .as_ref()
                .and_then(|r| r.reporter.as_ref())
                .map(|r| r.name.clone())
                .unwrap_or_default(),
            "cause" => f.cause.clone().unwrap_or_default(),
            "handling" => f.handling.clone().unwrap_or_default(),
            other => return f.labels.get(other).cloned(),
        })
    })
}

/// Renders a message's subject and text.
pub fn render(message: &Message, config: &NotifyConfig, tz: &TimeZone) -> Rendered {
    let count = message.items.len();
    let Some(first) = message.items.first() else {
        return Rendered {
            subject: String::new(),
            text: String::new(),
        };
    };
    if matches!(first.kind, Kind::ReporterResolved | Kind::ReporterClosed) {
        // A reporter's message: one fault each, the newest state.
        let last = message.items.last().unwrap_or(first);
        let (subject, text) = reporter_templates(config.language, last.kind);
        return Rendered {
            subject: fill(&subject, last, config, tz, 1),
            text: fill(&text, last, config, tz, 1),
        };
    }
    let subject_t = if count == 1 {
        &config.templates.subject
    } else {
        &config.templates.subject_many
    };
    let lang = config.language;
    // A drill says so in every message, whatever the templates are.
    let marker = match lang {
        Language::Zh => "【演练】",
        Language::En => "[DRILL] ",
    };
    let drill = |i: &Item| i.fault.source == FaultSource::Drill;
    let mut subject = fill(subject_t, first, config, tz, count);
    if message.items.iter().any(drill) {
        subject.insert_str(0, marker);
    }
    let mut blocks: Vec<String> = message
        .items
        .iter()
        .take(MAX_ITEMS)
        .map(|i| {
            let b = fill(&config.templates.fault, i, config, tz, count);
            if drill(i) { format!("{marker}{b}") } else { b }
        })
        .collect();
    if count > MAX_ITEMS {
        let more = count - MAX_ITEMS;
        let all = format!("{}/faults?status=open,acknowledged", config.link_base);
        blocks.push(match lang {
            Language::Zh => format!("……另有 {more} 条未列出，全部故障：{all}"),
            Language::En => format!("... and {more} more not listed; all faults: {all}"),
        });
    }
    if let Some(h) = &message.held {
        let since = jiff::Timestamp::from_millisecond(h.since_ms)
            .map(|t| t.to_string())
            .unwrap_or_default();
        let since = local(&since, tz);
        blocks.insert(
            0,
            match lang {
                Language::Zh => format!(
                    "注意：通道限速（{}），自 {since} 起暂存的 {count} 条通知合并发送。",
                    h.limit
                ),
                Language::En => format!(
                    "Note: this channel's rate limit ({}) held {count} notifications since {since}; here they are together.",
                    h.limit
                ),
            },
        );
    }
    Rendered {
        subject,
        text: blocks.join("\n\n"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use watchpost_model::api::FaultStatus;

    pub(crate) fn fault(id: i64) -> Fault {
        Fault {
            id,
            rule: "filesystem_full".into(),
            severity: Severity::General,
            status: FaultStatus::Open,
            host: "db-1".into(),
            metric: "host_filesystem_used_percent".into(),
            labels: [("mountpoint".to_string(), "/data".to_string())].into(),
            summary: "/data is 91% full".into(),
            value: Some(91.2),
            count: 1,
            opened_at: "2026-11-23T06:05:00Z".into(),
            last_seen_at: "2026-11-23T06:05:00Z".into(),
            resolved_at: None,
            response_due: "2026-11-23T10:05:00Z".into(),
            resolve_due: "2026-11-24T06:05:00Z".into(),
            acknowledged_at: None,
            acknowledged_by: None,
            assignee: None,
            closed_at: None,
            cause: None,
            handling: None,
            response_met: None,
            resolve_met: None,
            parent_fault: None,
            source: FaultSource::Rule,
            report: None,
            flapping: false,
            change: None,
            timeline: Vec::new(),
        }
    }

    #[test]
    fn a_reporter_hears_of_the_handling_and_then_of_the_cause() {
        let mut f = fault(7);
        f.source = FaultSource::Reported;
        f.report = Some(watchpost_model::api::Report {
            reporter: Some(watchpost_model::api::Reporter {
                name: "王五".into(),
                ..Default::default()
            }),
            entered_at: f.opened_at.clone(),
            entered_by: "li".into(),
            feedback: None,
        });
        let config = NotifyConfig::default();
        let tz = TimeZone::get("Asia/Shanghai").expect("zone");
        let say = |kind: Kind, f: &Fault| {
            let m = Message {
                items: vec![Item {
                    notification_id: 1,
                    kind,
                    fault: f.clone(),
                }],
                ..message(0)
            };
            render(&m, &config, &tz)
        };
        let handled = say(Kind::ReporterResolved, &f);
        assert_eq!(handled.subject, "【哨所】您报告的故障已处理：/data is 91% full");
        assert!(
            handled
                .text
                .starts_with("王五，您好：\n您于 2026-11-23 14:05 +08:00 报告的故障（编号 7")
        );
        assert!(!handled.text.contains("原因"), "{}", handled.text);
        f.cause = Some("日志未轮转".into());
        f.handling = Some("清理并配置轮转".into());
        let closed = say(Kind::ReporterClosed, &f);
        assert!(
            closed
                .text
                .contains("已办结。\n原因：日志未轮转\n处理：清理并配置轮转\n"),
            "{}",
            closed.text
        );
        assert!(!closed.text.contains("http"), "no internal link: {}", closed.text);
    }

    fn message(n: usize) -> Message {
        Message {
            id: "m1".into(),
            channel: "mail".into(),
            person: Member {
                name: "li".into(),
                ..Default::default()
            },
            items: (0..n)
                .map(|i| Item {
                    notification_id: i as i64,
                    kind: Kind::Opened,
                    fault: fault(i as i64 + 1),
                })
                .collect(),
            held: None,
        }
    }

    #[test]
    fn chinese_by_default_with_local_times_and_link() {
        let mut c = NotifyConfig {
            link_base: "http://wp:9811".into(),
            ..Default::default()
        };
        let tz = TimeZone::get("Asia/Shanghai").expect("tz");
        let r = render(&message(1), &c, &tz);
        assert_eq!(r.subject, "【哨所】新故障：一般 db-1 /data is 91% full");
        assert!(r.text.contains("主机：db-1"), "{}", r.text);
        assert!(r.text.contains("当前值：91.20"), "{}", r.text);
        assert!(r.text.contains("发生时间：2026-11-23 14:05 +08:00"), "{}", r.text);
        assert!(r.text.contains("响应时限：2026-11-23 18:05 +08:00"), "{}", r.text);
        assert!(r.text.contains("详情：http://wp:9811/faults/1"), "{}", r.text);

        c.language = Language::En;
        c.templates = default_templates(Language::En);
        let mut m = message(MAX_ITEMS + 3);
        m.held = Some(Held {
            since_ms: 0,
            limit: "20/min".into(),
        });
        let r = render(&m, &c, &tz);
        assert!(
            r.subject.starts_with("[Watchpost] 23 fault notifications"),
            "{}",
            r.subject
        );
        assert!(
            r.text.starts_with("Note: this channel's rate limit (20/min)"),
            "{}",
            r.text
        );
        assert!(r.text.contains("... and 3 more not listed"), "{}", r.text);
        assert_eq!(r.text.matches("Respond by:").count(), MAX_ITEMS);
    }

    #[test]
    fn user_templates_and_labels() {
        let c = NotifyConfig {
            templates: Templates {
                subject: Template::parse("{severity}/{host}/{mountpoint}").expect("t"),
                ..default_templates(Language::Zh)
            },
            ..Default::default()
        };
        let r = render(&message(1), &c, &TimeZone::UTC);
        assert_eq!(r.subject, "general/db-1//data");
    }
}
