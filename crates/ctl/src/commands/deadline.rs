//! `deadline`: the response and resolve deadlines a fault would get,
//! from the collector or computed here on a calendar file.

use anyhow::Context;
use watchpost_model::Severity;
use watchpost_model::api::DeadlineAnswer;

use crate::client::Client;

/// `deadline --severity S [--opened-at T] [--calendar FILE | --config FILE]`.
#[allow(clippy::print_stdout)]
pub async fn run(
    client: &Client,
    json: bool,
    severity: String,
    opened_at: Option<String>,
    calendar: Option<std::path::PathBuf>,
    config: Option<std::path::PathBuf>,
) -> anyhow::Result<()> {
    let answer = match (calendar, config) {
        (Some(file), _) => {
            let calendar = watchpost_calendar::Calendar::load(&file)?;
            let policy = watchpost_calendar::SeverityPolicy::default();
            local_deadline(
                &severity,
                opened_at.as_deref(),
                &calendar,
                &policy,
                "default policy",
            )?
        }
        (None, Some(file)) => {
            let (calendar, policy) = site_policy(&file)?;
            let source = format!("policy of {}", file.display());
            local_deadline(&severity, opened_at.as_deref(), &calendar, &policy, &source)?
        }
        (None, None) => {
            let mut q = vec![("severity".to_string(), severity)];
            if let Some(t) = opened_at {
                q.push(("opened_at".into(), t));
            }
            client.get("/api/v1/deadline", &q).await?
        }
    };
    if json {
        println!("{}", serde_json::to_string_pretty(&answer)?);
        return Ok(());
    }
    let tz = jiff::tz::TimeZone::get(&answer.time_zone).unwrap_or(jiff::tz::TimeZone::UTC);
    let local = |t: &str| -> String {
        t.parse::<jiff::Timestamp>()
            .map(|ts| {
                ts.to_zoned(tz.clone())
                    .strftime("%Y-%m-%d %H:%M %:z (%A)")
                    .to_string()
            })
            .unwrap_or_else(|_| t.to_string())
    };
    println!("severity     {}", answer.severity);
    println!("opened       {}", local(&answer.opened_at));
    println!(
        "respond by   {}   [{}]",
        local(&answer.response_due),
        answer.respond
    );
    println!(
        "resolve by   {}   [{}]",
        local(&answer.resolve_due),
        answer.resolve
    );
    println!("calendar     {} ({})", answer.calendar, answer.time_zone);
    Ok(())
}

/// The parts of a collector config that deadlines depend on; everything
/// else in it is left to the collector to check.
#[derive(serde::Deserialize)]
struct Site {
    #[serde(default)]
    collector: SiteCollector,
    #[serde(default)]
    severity: watchpost_calendar::PolicyConfig,
}

#[derive(serde::Deserialize, Default)]
struct SiteCollector {
    calendar: Option<std::path::PathBuf>,
}

/// The calendar (relative to the file, as the collector reads it) and the
/// severity policy of collector config `file`.
fn site_policy(
    file: &std::path::Path,
) -> anyhow::Result<(watchpost_calendar::Calendar, watchpost_calendar::SeverityPolicy)> {
    let text = std::fs::read_to_string(file).with_context(|| format!("cannot read {}", file.display()))?;
    let site: Site = toml::from_str(&text)
        .map_err(|e| anyhow::anyhow!("{}: {}", file.display(), e.to_string().trim_end()))?;
    let policy = site
        .severity
        .check()
        .map_err(|e| anyhow::anyhow!("{}: {e}", file.display()))?;
    let calendar = match site.collector.calendar {
        Some(c) => {
            watchpost_calendar::Calendar::load(&file.parent().unwrap_or(std::path::Path::new(".")).join(c))?
        }
        None => watchpost_calendar::Calendar::default(),
    };
    Ok((calendar, policy))
}

/// Computes deadlines here, on `calendar` and `policy` (`source` says whose).
fn local_deadline(
    severity: &str,
    opened_at: Option<&str>,
    calendar: &watchpost_calendar::Calendar,
    policy: &watchpost_calendar::SeverityPolicy,
    source: &str,
) -> anyhow::Result<DeadlineAnswer> {
    let severity: Severity = severity.parse()?;
    let opened = match opened_at {
        Some(t) => t
            .parse::<jiff::Timestamp>()
            .with_context(|| format!("--opened-at {t:?}: expected RFC 3339"))?,
        None => jiff::Timestamp::now(),
    };
    let d = policy.deadlines(calendar, severity, opened)?;
    let entry = policy.of(severity);
    Ok(DeadlineAnswer {
        severity,
        opened_at: opened.to_string(),
        response_due: d.respond.to_string(),
        resolve_due: d.resolve.to_string(),
        respond: policy.explain_respond(calendar, severity, opened),
        resolve: entry.resolve.to_string(),
        calendar: format!("{} ({source})", calendar.name()),
        time_zone: calendar.time_zone_name().to_string(),
    })
}
