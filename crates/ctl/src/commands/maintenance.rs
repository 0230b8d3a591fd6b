//! `maintenance [list|add]`: windows that suppress notifications, not records.

use watchpost_model::api::{MaintenanceBody, MaintenanceWindow};

use crate::args::MaintenanceCmd;
use crate::client::Client;
use crate::format::{actor, emit, labels_text, matcher_params, when};
use crate::table::Table;

/// `maintenance ...`.
#[allow(clippy::print_stdout)]
pub async fn run(
    client: &Client,
    json: bool,
    by: Option<String>,
    command: MaintenanceCmd,
) -> anyhow::Result<()> {
    match command {
        MaintenanceCmd::List => {
            let windows: Vec<MaintenanceWindow> = client.get("/api/v1/silences", &[]).await?;
            emit(json, &windows, || {
                let mut t = Table::new(&[
                    "ID", "ACTIVE", "HOST", "RULE", "MATCH", "START", "END", "TICKET", "BY", "REASON",
                ]);
                for w in &windows {
                    t.row(vec![
                        w.id.to_string(),
                        if w.active { "yes".into() } else { "no".into() },
                        w.host.clone().unwrap_or_else(|| "*".into()),
                        w.rule.clone().unwrap_or_else(|| "*".into()),
                        labels_text(&w.matchers, &[]),
                        when(&w.starts_at),
                        when(&w.ends_at),
                        w.ticket.clone(),
                        w.created_by.clone(),
                        w.reason.clone(),
                    ]);
                }
                t
            })
        }
        MaintenanceCmd::Add {
            host,
            rule,
            start,
            end,
            reason,
            ticket,
            matchers,
        } => {
            let by = actor(by)?;
            let body = MaintenanceBody {
                by,
                host,
                rule,
                matchers: matcher_params(&matchers)?.into_iter().collect(),
                starts_at: start,
                ends_at: end,
                reason,
                ticket,
            };
            let w: MaintenanceWindow = client.post("/api/v1/silences", &body).await?;
            if json {
                println!("{}", serde_json::to_string_pretty(&w)?);
            } else {
                println!(
                    "maintenance window {} ({}) from {} to {}",
                    w.id,
                    w.ticket,
                    when(&w.starts_at),
                    when(&w.ends_at)
                );
            }
            Ok(())
        }
    }
}
