//! Who is told: `notifications` (the outbox) and `oncall` (who is on duty).

use watchpost_model::api::{Notification, OnCall};

use crate::client::Client;
use crate::format::{emit, when, when_or};
use crate::table::Table;

/// `notifications [--fault ID] [--status S] [--limit N]`.
pub async fn notifications(
    client: &Client,
    json: bool,
    fault: Option<i64>,
    status: Option<String>,
    limit: usize,
) -> anyhow::Result<()> {
    let mut q = vec![("limit".to_string(), limit.to_string())];
    if let Some(f) = fault {
        q.push(("fault".into(), f.to_string()));
    }
    if let Some(s) = status {
        q.push(("status".into(), s));
    }
    let rows: Vec<Notification> = client.get("/api/v1/notifications", &q).await?;
    emit(json, &rows, || {
        let mut t = Table::new(&[
            "ID", "FAULT", "KIND", "TO", "CHANNEL", "STATUS", "TRIES", "DUE", "SENT", "MESSAGE", "ERROR",
        ]);
        for n in &rows {
            t.row(vec![
                n.id.to_string(),
                n.fault_id.to_string(),
                n.kind.clone(),
                n.recipient.clone(),
                n.channel.clone(),
                n.status.clone(),
                n.attempts.to_string(),
                when(&n.due_at),
                when_or(n.sent_at.as_ref(), "-"),
                n.message_id.clone().unwrap_or_else(|| "-".into()),
                n.last_error.clone().unwrap_or_default(),
            ]);
        }
        t
    })
}

/// `oncall [--at T]`.
pub async fn oncall(client: &Client, json: bool, at: Option<String>) -> anyhow::Result<()> {
    let q: Vec<(String, String)> = at.map(|t| ("at".to_string(), t)).into_iter().collect();
    let teams: Vec<OnCall> = client.get("/api/v1/oncall", &q).await?;
    emit(json, &teams, || {
        let mut t = Table::new(&["TEAM", "ON DUTY", "PHONE", "UNTIL", "WHY", "LEAD"]);
        for o in &teams {
            let names: Vec<&str> = o.on_duty.iter().map(|m| m.name.as_str()).collect();
            let phones: Vec<&str> = o
                .on_duty
                .iter()
                .map(|m| m.phone.as_deref().unwrap_or("-"))
                .collect();
            t.row(vec![
                o.team.clone(),
                if names.is_empty() {
                    "-".into()
                } else {
                    names.join(", ")
                },
                phones.join(", "),
                when_or(o.until.as_ref(), "-"),
                o.reason.clone(),
                o.lead.as_ref().map_or("-".into(), |l| l.name.clone()),
            ]);
        }
        t
    })
}
