//! `drill`: emergency drills through the real alert chain.

use watchpost_model::api::{DrillBody, DrillReport, Fault};

use crate::args::DrillCmd;
use crate::client::Client;
use crate::format::{actor, emit, when, when_exact, when_or};
use crate::table::Table;

fn seconds(s: Option<f64>) -> String {
    match s {
        Some(s) if s >= 120.0 => format!("{:.1} min", s / 60.0),
        Some(s) => format!("{s:.1} s"),
        None => "-".into(),
    }
}

/// `drill ...`.
#[allow(clippy::print_stdout)]
pub async fn run(client: &Client, json: bool, by: Option<String>, command: DrillCmd) -> anyhow::Result<()> {
    match command {
        DrillCmd::Start {
            route,
            severity,
            host,
            summary,
            labels,
        } => {
            let mut map = std::collections::BTreeMap::new();
            for l in labels {
                let (k, v) = l
                    .split_once('=')
                    .ok_or_else(|| anyhow::anyhow!("--label {l:?}: expected name=value"))?;
                map.insert(k.trim().to_string(), v.trim().to_string());
            }
            let body = DrillBody {
                by: actor(by)?,
                route,
                severity,
                host,
                summary,
                labels: map,
            };
            let f: Fault = client.post("/api/v1/drills", &body).await?;
            if json {
                println!("{}", serde_json::to_string_pretty(&f)?);
            } else {
                println!(
                    "drill {} started at severity {}: {}; `watchpostctl drill show {}` tells how it goes",
                    f.id, f.severity, f.summary, f.id
                );
            }
            Ok(())
        }
        DrillCmd::List { limit } => {
            let drills: Vec<Fault> = client
                .get("/api/v1/drills", &[("limit".to_string(), limit.to_string())])
                .await?;
            emit(json, &drills, || {
                let mut t = Table::new(&[
                    "ID",
                    "STARTED",
                    "BY",
                    "SEVERITY",
                    "STATUS",
                    "ACKNOWLEDGED BY",
                    "SUMMARY",
                ]);
                for f in &drills {
                    t.row(vec![
                        f.id.to_string(),
                        when(&f.opened_at),
                        f.report
                            .as_ref()
                            .map(|r| r.entered_by.clone())
                            .unwrap_or_default(),
                        f.severity.to_string(),
                        f.status.as_str().to_string(),
                        f.acknowledged_by.clone().unwrap_or_else(|| "-".into()),
                        f.summary.clone(),
                    ]);
                }
                t
            })
        }
        DrillCmd::Show { id } => {
            let d: DrillReport = client.get(&format!("/api/v1/drills/{id}"), &[]).await?;
            if json {
                println!("{}", serde_json::to_string_pretty(&d)?);
                return Ok(());
            }
            let f = &d.fault;
            println!(
                "Drill {}  [{}]  {}  {}",
                f.id,
                f.status.as_str(),
                f.severity,
                f.summary
            );
            println!(
                "  {:<18}{} at {}",
                "started by",
                d.started_by,
                when_exact(&d.started_at)
            );
            println!(
                "  {:<18}{}",
                "route",
                d.route.as_deref().unwrap_or("the routes that take it")
            );
            println!("  {:<18}{}", "first delivery", seconds(d.first_delivery_after_s));
            println!(
                "  {:<18}{}",
                "acknowledged",
                match &d.acknowledged_by {
                    Some(who) => format!("by {who} after {}", seconds(d.acknowledged_after_s)),
                    None => "not yet".into(),
                }
            );
            println!(
                "  {:<18}{} delivered, {} failed, {} pending; escalation steps that ran: {}",
                "notifications",
                d.delivered,
                d.failed,
                d.pending,
                if d.steps_run.is_empty() {
                    "none".to_string()
                } else {
                    d.steps_run
                        .iter()
                        .map(|s| (s + 1).to_string())
                        .collect::<Vec<_>>()
                        .join(", ")
                }
            );
            let mut t = Table::new(&["  STEP", "CHANNEL", "TO", "STATUS", "SENT", "ERROR"]);
            for n in &d.notifications {
                t.row(vec![
                    format!("  {}", n.step + 1),
                    n.channel.clone(),
                    n.recipient.clone(),
                    n.status.clone(),
                    when_or(n.sent_at.as_ref(), "-"),
                    n.last_error.clone().unwrap_or_default(),
                ]);
            }
            print!("{}", t.render());
            Ok(())
        }
    }
}
