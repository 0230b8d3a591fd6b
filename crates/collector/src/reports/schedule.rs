//! Scheduled reports: the day before's inspection record at
//! `reports.daily_at`, the month before's statistics on the 1st at
//! `reports.monthly_at` (calendar zone), stored as `schedule` and sent to
//! `reports.send_to`: an e-mail with the PDF attached to each person with
//! an address, a summary and a link on each robot or webhook channel of
//! their teams' routes.
//!
//! A period is done once a report of it stored by `schedule` exists, so a
//! restart neither repeats nor skips one; a collector that was down at the
//! hour makes it when it comes back. A period that cannot be reported on
//! (no data yet) is tried again at the next start, not every minute.

use std::collections::{BTreeSet, HashSet};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use tokio::sync::watch;
use watchpost_model::api::Member;
use watchpost_model::reports::{ReportData, StoredReport};

use super::{Format, ReportError};
use crate::Core;
use crate::notify::ChannelKind;
use crate::notify::channels::Sender;
use crate::notify::render::{Message, Rendered};

/// The generator's name in the stored reports.
pub const BY: &str = "schedule";

/// What is due at `now_ms`: (kind, period) of the daily record and the
/// monthly statistics whose hour has come.
pub fn due(core: &Core, now_ms: i64) -> Vec<(&'static str, String)> {
    let tz = core.config.calendar.time_zone();
    let Ok(now) = jiff::Timestamp::from_millisecond(now_ms) else {
        return Vec::new();
    };
    let local = now.to_zoned(tz.clone());
    let r = &core.config.reports;
    let mut out = Vec::new();
    if local.time() >= r.daily_at {
        out.push(("daily", super::today(tz, now_ms, 1)));
    }
    // From the 1st at monthly_at on, last month's is due (a collector down
    // on the 1st makes it when it is back).
    if local.day() > 1 || local.time() >= r.monthly_at {
        out.push(("monthly", super::last_month(tz, now_ms)));
    }
    out
}

/// Makes, stores and sends what is due and not yet made; returns what was made.
pub async fn run_due(
    core: &Arc<Core>,
    sender: &Sender,
    skip: &mut HashSet<(String, String)>,
) -> Vec<StoredReport> {
    let mut made = Vec::new();
    for (kind, period) in due(core, core.clock.now_ms()) {
        let key = (kind.to_string(), period.clone());
        if skip.contains(&key) {
            continue;
        }
        match core
            .db
            .reports(Some(kind.into()), Some(period.clone()), 100)
            .await
        {
            Ok(list) if list.iter().any(|r| r.generated_by == BY) => {
                skip.insert(key);
                continue;
            }
            Ok(_) => {}
            Err(e) => {
                tracing::warn!(error = %e, "scheduled reports: cannot read the stored reports");
                continue;
            }
        }
        let data = match kind {
            "daily" => super::daily_report(core, &period, &core.config.reports.language).await,
            _ => super::monthly_report(core, &period).await,
        };
        let data = match data {
            Ok(d) => d,
            Err(ReportError::Bad(why)) => {
                tracing::info!(kind, period = %period, "scheduled report not made: {why}");
                skip.insert(key);
                continue;
            }
            Err(ReportError::Failed(why)) => {
                core.telemetry
                    .report_deliveries_failed
                    .fetch_add(1, Ordering::Relaxed);
                tracing::error!(kind, period = %period, "scheduled report failed: {why}");
                skip.insert(key);
                continue;
            }
        };
        match store_and_send(core, sender, &data).await {
            Ok(stored) => made.extend(stored),
            Err(why) => {
                core.telemetry
                    .report_deliveries_failed
                    .fetch_add(1, Ordering::Relaxed);
                tracing::error!(kind, period = %period, "scheduled report failed: {why}");
            }
        }
        skip.insert(key);
    }
    made
}

/// Stores the report as HTML and PDF (HTML alone when there is no CJK
/// font: the error is logged and counted) and sends it.
async fn store_and_send(
    core: &Arc<Core>,
    sender: &Sender,
    data: &ReportData,
) -> Result<Vec<StoredReport>, String> {
    let lang = core.config.reports.language.clone();
    let html = super::store(core, data, Format::Html, &lang, BY)
        .await
        .map_err(|e| e.to_string())?;
    let mut stored: Vec<StoredReport> = html.iter().map(|(r, _)| r.clone()).collect();
    let pdf = match super::store(core, data, Format::Pdf, &lang, BY).await {
        Ok(files) => files.into_iter().find(|(r, _)| r.format == "pdf"),
        Err(e) => {
            core.telemetry
                .report_deliveries_failed
                .fetch_add(1, Ordering::Relaxed);
            tracing::error!(kind = %data.kind, period = %data.period, "scheduled report sent without its PDF: {e}");
            None
        }
    };
    let link_to = pdf
        .as_ref()
        .map(|(r, _)| r.id)
        .or_else(|| html.iter().find(|(r, _)| r.format == "html").map(|(r, _)| r.id))
        .unwrap_or(0);
    if let Some((r, _)) = &pdf {
        stored.push(r.clone());
    }
    let link = format!("{}/api/v1/reports/{link_to}", core.config.notify.link_base);
    let rendered = summary(data, &lang, &link);
    send(
        core,
        sender,
        data,
        &rendered,
        pdf.as_ref().map(|(r, b)| (r.file.as_str(), b.as_slice())),
    )
    .await;
    Ok(stored)
}

/// A subject and a few lines: the title, the facts, the link.
pub fn summary(data: &ReportData, lang: &str, link: &str) -> Rendered {
    let mut text = String::new();
    for f in &data.facts {
        text.push_str("· ");
        text.push_str(f.get(lang));
        text.push('\n');
    }
    text.push_str(if lang == "en" { "Report: " } else { "报告：" });
    text.push_str(link);
    Rendered {
        subject: format!("【哨所】{}", data.title.get(lang)),
        text,
    }
}

/// Who `reports.send_to` names, and the channels of their teams' routes.
fn recipients(core: &Core) -> (Vec<Member>, BTreeSet<String>) {
    let notify = &core.config.notify;
    let mut people: Vec<Member> = Vec::new();
    let mut teams = BTreeSet::new();
    for name in &core.config.reports.send_to {
        for t in &notify.roster.teams {
            if &t.name == name {
                teams.insert(t.name.clone());
                people.extend(t.members().cloned());
            } else if let Some(m) = t.members().find(|m| &m.name == name) {
                teams.insert(t.name.clone());
                people.push(m.clone());
            }
        }
    }
    let mut seen = HashSet::new();
    people.retain(|m| seen.insert(m.name.clone()));
    let mut channels: BTreeSet<String> = notify
        .routes
        .iter()
        .filter(|r| teams.contains(&r.team))
        .flat_map(|r| r.channels.iter().cloned())
        .collect();
    if channels.is_empty() {
        channels = notify.channels.iter().map(|c| c.name.clone()).collect();
    }
    (people, channels)
}

async fn send(
    core: &Core,
    sender: &Sender,
    data: &ReportData,
    rendered: &Rendered,
    pdf: Option<(&str, &[u8])>,
) {
    let notify = &core.config.notify;
    if core.config.reports.send_to.is_empty() {
        return;
    }
    let (people, channels) = recipients(core);
    let now = core.clock.now_ms();
    for name in &channels {
        let Some(channel) = notify.channel(name) else {
            continue;
        };
        // A robot or webhook is a group's: one message. E-mail: one per person.
        let targets: Vec<Member> = if channel.kind == ChannelKind::Email {
            people.iter().filter(|m| m.email.is_some()).cloned().collect()
        } else {
            vec![Member::default()]
        };
        for person in targets {
            let message = Message {
                id: format!(
                    "report-{}-{}-{}-{}",
                    data.kind, data.period, channel.name, person.name
                ),
                channel: channel.name.clone(),
                person: person.clone(),
                items: Vec::new(),
                held: None,
            };
            let attachment = pdf.map(|(file, bytes)| (file, "application/pdf", bytes));
            match sender
                .send_with(channel, &message, rendered, notify, now, attachment)
                .await
            {
                Ok(()) => {
                    core.telemetry
                        .report_deliveries_sent
                        .fetch_add(1, Ordering::Relaxed);
                    tracing::info!(kind = %data.kind, period = %data.period, channel = %channel.name, to = %person.name, "report sent");
                }
                Err(e) => {
                    core.telemetry
                        .report_deliveries_failed
                        .fetch_add(1, Ordering::Relaxed);
                    tracing::error!(kind = %data.kind, period = %data.period, channel = %channel.name, to = %person.name, "report not sent: {e}");
                }
            }
        }
    }
}

/// Checks every 5 s what is due on the collector's clock.
pub async fn run(core: Arc<Core>, mut shutdown: watch::Receiver<bool>) {
    let sender = match Sender::new(&core.config.notify) {
        Ok(s) => s,
        Err(e) => {
            tracing::error!("scheduled reports are off: {e}");
            return;
        }
    };
    let mut skip = HashSet::new();
    let mut tick = tokio::time::interval(Duration::from_secs(5));
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            _ = shutdown.changed() => return,
        }
        run_due(&core, &sender, &mut skip).await;
    }
}
