//! `faults`: list, show one with its timeline, and act on one (ack,
//! resolve, close, note, assign).

use watchpost_model::api::{Fault, FaultActionBody, FaultSource, ReportBody, Reporter};

use crate::args::FaultCmd;
use crate::client::Client;
use crate::format::{
    actor, emit, labels_text, parse_labels, timeline_table, value_text, when, when_exact, when_or,
};
use crate::table::Table;

/// The filters of `faults` without a subcommand.
pub struct Filter {
    pub status: Option<String>,
    pub severity: Option<String>,
    pub host: Option<String>,
    pub source: Option<String>,
    pub limit: usize,
}

/// `faults ...`.
#[allow(clippy::print_stdout)]
pub async fn run(
    client: &Client,
    json: bool,
    by: Option<String>,
    show: Option<FaultCmd>,
    filter: Filter,
) -> anyhow::Result<()> {
    let Filter {
        status,
        severity,
        host,
        source,
        limit,
    } = filter;
    match show {
        Some(
            action @ (FaultCmd::Ack { .. }
            | FaultCmd::Resolve { .. }
            | FaultCmd::Close { .. }
            | FaultCmd::Note { .. }
            | FaultCmd::Assign { .. }
            | FaultCmd::Feedback { .. }),
        ) => {
            let by = actor(by)?;
            let mut body = FaultActionBody {
                by,
                ..Default::default()
            };
            let (id, path) = match action {
                FaultCmd::Ack { id, comment } => {
                    body.comment = comment;
                    (id, "ack")
                }
                FaultCmd::Resolve { id, comment } => {
                    body.comment = Some(comment);
                    (id, "resolve")
                }
                FaultCmd::Close { id, cause, handling } => {
                    body.cause = Some(cause);
                    body.handling = Some(handling);
                    (id, "close")
                }
                FaultCmd::Note { id, text } => {
                    body.text = Some(text);
                    (id, "notes")
                }
                FaultCmd::Assign { id, assignee } => {
                    body.assignee = Some(assignee);
                    (id, "assign")
                }
                FaultCmd::Feedback {
                    id,
                    satisfaction,
                    comment,
                } => {
                    body.satisfaction = Some(satisfaction);
                    body.comment = comment;
                    (id, "feedback")
                }
                FaultCmd::Show { .. } | FaultCmd::Report { .. } => unreachable!("matched above"),
            };
            let f: Fault = client.post(&format!("/api/v1/faults/{id}/{path}"), &body).await?;
            if json {
                println!("{}", serde_json::to_string_pretty(&f)?);
            } else {
                println!(
                    "fault {}: {} ({})",
                    f.id,
                    f.status.as_str(),
                    f.timeline.last().map_or("", |e| e.message.as_str())
                );
            }
            Ok(())
        }
        Some(FaultCmd::Report {
            severity,
            host,
            summary,
            reporter,
            labels,
            opened_at,
        }) => {
            let body = ReportBody {
                by: actor(by)?,
                severity,
                host,
                summary,
                reporter: reporter
                    .as_deref()
                    .map(Reporter::parse)
                    .transpose()
                    .map_err(anyhow::Error::msg)?,
                labels: labels
                    .as_deref()
                    .map(parse_labels)
                    .transpose()?
                    .unwrap_or_default(),
                opened_at,
            };
            let f: Fault = client.post("/api/v1/faults", &body).await?;
            if json {
                println!("{}", serde_json::to_string_pretty(&f)?);
            } else {
                println!("{}", f.id);
                eprintln!(
                    "fault {} opened at {}: respond by {}, resolve by {}",
                    f.id,
                    when(&f.opened_at),
                    when(&f.response_due),
                    when(&f.resolve_due)
                );
            }
            Ok(())
        }
        Some(FaultCmd::Show { id }) => {
            let f: Fault = client.get(&format!("/api/v1/faults/{id}"), &[]).await?;
            if json {
                println!("{}", serde_json::to_string_pretty(&f)?);
                return Ok(());
            }
            println!("Fault {}  [{}]  {}", f.id, f.severity, f.status.as_str());
            println!("  summary       {}", f.summary);
            println!("  source        {}", f.source.as_str());
            if f.source != FaultSource::Reported {
                println!("  rule          {}", f.rule);
            }
            if let Some(r) = &f.report {
                println!(
                    "  reporter      {}",
                    r.reporter
                        .as_ref()
                        .map_or_else(|| "-".to_string(), Reporter::text)
                );
                println!("  entered       {} by {}", when(&r.entered_at), r.entered_by);
                if let Some(fb) = &r.feedback {
                    println!(
                        "  satisfaction  {}/5{} ({} by {})",
                        fb.satisfaction,
                        fb.comment
                            .as_deref()
                            .map(|c| format!(" \"{c}\""))
                            .unwrap_or_default(),
                        when(&fb.at),
                        fb.by
                    );
                }
            }
            println!("  host          {}", f.host);
            if !f.metric.is_empty() {
                println!("  series        {}{{{}}}", f.metric, labels_text(&f.labels, &[]));
            }
            println!("  value         {}", value_text(f.value));
            println!("  count         {}", f.count);
            if f.flapping {
                println!("  flapping      yes: its changes are recorded, not notified, until it is stable");
            }
            if let Some(c) = f.change {
                println!("  change        #{c} (watchpostctl changes show {c})");
            }
            println!("  opened        {}", when(&f.opened_at));
            println!("  last seen     {}", when_exact(&f.last_seen_at));
            println!("  respond by    {}", when(&f.response_due));
            println!("  resolve by    {}", when(&f.resolve_due));
            println!("  resolved      {}", when_or(f.resolved_at.as_ref(), "-"));
            let met = |m: Option<bool>| match m {
                Some(true) => "met",
                Some(false) => "MISSED",
                None => "pending",
            };
            println!("  response      {}", met(f.response_met));
            println!("  resolution    {}", met(f.resolve_met));
            if let Some(by) = &f.acknowledged_by {
                println!(
                    "  acknowledged  {} by {by}",
                    when_or(f.acknowledged_at.as_ref(), "-")
                );
            }
            if let Some(a) = &f.assignee {
                println!("  assignee      {a}");
            }
            if let Some(c) = &f.closed_at {
                println!("  closed        {}", when(c));
                println!("  cause         {}", f.cause.as_deref().unwrap_or("-"));
                println!("  handling      {}", f.handling.as_deref().unwrap_or("-"));
            }
            println!("Timeline:");
            print!("{}", timeline_table(&f.timeline).render());
            Ok(())
        }
        None => {
            let mut q = vec![("limit".to_string(), limit.to_string())];
            for (k, v) in [
                ("status", status),
                ("severity", severity),
                ("host", host),
                ("source", source),
            ] {
                if let Some(v) = v {
                    q.push((k.to_string(), v));
                }
            }
            let faults: Vec<Fault> = client.get("/api/v1/faults", &q).await?;
            emit(json, &faults, || {
                let mut t = Table::new(&[
                    "ID",
                    "SEVERITY",
                    "STATUS",
                    "HOST",
                    "RULE",
                    "OPENED",
                    "RESPOND BY",
                    "RESOLVE BY",
                    "COUNT",
                    "SUMMARY",
                ]);
                for f in &faults {
                    t.row(vec![
                        f.id.to_string(),
                        f.severity.to_string(),
                        if f.flapping {
                            format!("{} (flapping)", f.status.as_str())
                        } else {
                            f.status.as_str().to_string()
                        },
                        f.host.clone(),
                        f.rule.clone(),
                        when(&f.opened_at),
                        when(&f.response_due),
                        when(&f.resolve_due),
                        f.count.to_string(),
                        f.summary.clone(),
                    ]);
                }
                t
            })
        }
    }
}
