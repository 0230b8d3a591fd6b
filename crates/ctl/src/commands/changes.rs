//! `changes`: change requests with approval.

use watchpost_model::changes::{Change, ChangeActionBody, ChangeBody, ChangeScope};

use crate::args::ChangesCmd;
use crate::client::Client;
use crate::format::{actor, emit, labels_text, matcher_params, timeline_table, when};
use crate::table::Table;

fn scope_text(s: &ChangeScope) -> String {
    let mut parts = Vec::new();
    if !s.hosts.is_empty() {
        parts.push(format!("host={}", s.hosts.join("|")));
    }
    if !s.rules.is_empty() {
        parts.push(format!("rule={}", s.rules.join("|")));
    }
    if !s.matchers.is_empty() {
        parts.push(labels_text(&s.matchers, &[]));
    }
    parts.join(" ")
}

/// `changes ...`.
#[allow(clippy::print_stdout)]
pub async fn run(client: &Client, json: bool, by: Option<String>, command: ChangesCmd) -> anyhow::Result<()> {
    let (id, path, body) = match command {
        ChangesCmd::List { limit } => {
            let changes: Vec<Change> = client
                .get("/api/v1/changes", &[("limit".to_string(), limit.to_string())])
                .await?;
            return emit(json, &changes, || {
                let mut t = Table::new(&[
                    "ID",
                    "STATUS",
                    "START",
                    "END",
                    "COVERS",
                    "REQUESTED BY",
                    "DECIDED BY",
                    "TITLE",
                ]);
                for c in &changes {
                    t.row(vec![
                        c.id.to_string(),
                        c.status.as_str().to_string(),
                        when(&c.starts_at),
                        when(&c.ends_at),
                        scope_text(&c.scope),
                        c.requested_by.clone(),
                        c.decided_by.clone().unwrap_or_else(|| "-".into()),
                        c.title.clone(),
                    ]);
                }
                t
            });
        }
        ChangesCmd::Show { id } => {
            let c: Change = client.get(&format!("/api/v1/changes/{id}"), &[]).await?;
            if json {
                println!("{}", serde_json::to_string_pretty(&c)?);
                return Ok(());
            }
            println!("Change {}  [{}]  {}", c.id, c.status.as_str(), c.title);
            for (k, v) in [
                ("content", &c.content),
                ("reason", &c.reason),
                ("impact", &c.impact),
                ("test plan", &c.test_plan),
                ("rollback plan", &c.rollback_plan),
            ] {
                println!("  {k:<14}{v}");
            }
            println!("  {:<14}{} to {}", "window", when(&c.starts_at), when(&c.ends_at));
            println!("  {:<14}{}", "covers", scope_text(&c.scope));
            println!(
                "  {:<14}{} at {}",
                "requested by",
                c.requested_by,
                when(&c.requested_at)
            );
            if let Some(d) = &c.decided_by {
                println!("  {:<14}{d}", "decided by");
            }
            if let Some(w) = c.window {
                println!("  {:<14}#{w}", "maintenance");
            }
            if let Some(r) = &c.result_reason {
                println!("  {:<14}{r}", "result");
            }
            if !c.faults.is_empty() {
                println!("Faults in its window:");
                let mut t = Table::new(&["  ID", "STATUS", "HOST", "RULE", "SUMMARY"]);
                for f in &c.faults {
                    t.row(vec![
                        format!("  {}", f.id),
                        f.status.clone(),
                        f.host.clone(),
                        f.rule.clone(),
                        f.summary.clone(),
                    ]);
                }
                print!("{}", t.render());
            }
            println!("Timeline:");
            print!("{}", timeline_table(&c.timeline).render());
            return Ok(());
        }
        ChangesCmd::Request {
            title,
            content,
            reason,
            impact,
            test_plan,
            rollback_plan,
            start,
            end,
            hosts,
            matchers,
            rules,
        } => {
            let body = ChangeBody {
                by: actor(by)?,
                title,
                content,
                reason,
                impact,
                test_plan,
                rollback_plan,
                starts_at: start,
                ends_at: end,
                scope: ChangeScope {
                    hosts,
                    matchers: matcher_params(&matchers)?.into_iter().collect(),
                    rules,
                },
            };
            let c: Change = client.post("/api/v1/changes", &body).await?;
            if json {
                println!("{}", serde_json::to_string_pretty(&c)?);
            } else {
                println!("{}", c.id);
            }
            return Ok(());
        }
        ChangesCmd::Approve { id, comment } => (
            id,
            "approve",
            ChangeActionBody {
                comment,
                ..Default::default()
            },
        ),
        ChangesCmd::Reject { id, reason } => (
            id,
            "reject",
            ChangeActionBody {
                reason: Some(reason),
                ..Default::default()
            },
        ),
        ChangesCmd::Start { id } => (id, "start", ChangeActionBody::default()),
        ChangesCmd::Finish { id, result, reason } => (
            id,
            "finish",
            ChangeActionBody {
                result: Some(result),
                reason,
                ..Default::default()
            },
        ),
        ChangesCmd::Cancel { id } => (id, "cancel", ChangeActionBody::default()),
    };
    let body = ChangeActionBody {
        by: actor(by)?,
        ..body
    };
    let c: Change = client
        .post(&format!("/api/v1/changes/{id}/{path}"), &body)
        .await?;
    if json {
        println!("{}", serde_json::to_string_pretty(&c)?);
    } else {
        println!(
            "change {}: {} ({})",
            c.id,
            c.status.as_str(),
            c.timeline.last().map_or("", |e| e.message.as_str())
        );
    }
    Ok(())
}
