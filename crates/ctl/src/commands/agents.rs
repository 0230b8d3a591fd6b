//! `agents [list|enroll|revoke|credentials]`.

use watchpost_model::api::{Agent, AgentCredential, EnrollBody, Enrollment};

use crate::args::AgentsCmd;
use crate::client::{Client, path_segment};
use crate::format::{emit, when, when_exact, when_or};
use crate::table::Table;

/// `agents ...`.
#[allow(clippy::print_stdout)]
pub async fn run(client: &Client, json: bool, command: Option<AgentsCmd>) -> anyhow::Result<()> {
    match command {
        Some(AgentsCmd::Enroll {
            id,
            token_valid_for,
            credential_valid_for,
        }) => {
            let e: Enrollment = client
                .post(
                    &format!("/api/v1/agents/{}/enroll", path_segment(&id)),
                    &EnrollBody {
                        token_valid_for: Some(token_valid_for),
                        credential_valid_for: Some(credential_valid_for),
                    },
                )
                .await?;
            if json {
                println!("{}", serde_json::to_string_pretty(&e)?);
            } else {
                println!(
                    "enrolment token for agent {} (works once, until {}):",
                    e.agent,
                    when(&e.expires_at)
                );
                println!("{}", e.token);
                println!("put it in the agent's config: [agent] enroll_token = \"<token>\"");
            }
            Ok(())
        }
        Some(AgentsCmd::Revoke { id }) => {
            client
                .post_empty(&format!("/api/v1/agents/{}/revoke", path_segment(&id)), &())
                .await?;
            println!("agent {id}: credential revoked");
            Ok(())
        }
        Some(AgentsCmd::Credentials) => {
            let creds: Vec<AgentCredential> = client.get("/api/v1/agent-credentials", &[]).await?;
            emit(json, &creds, || {
                let mut t = Table::new(&["AGENT", "HOST", "ISSUED", "EXPIRES", "REVOKED"]);
                for c in &creds {
                    t.row(vec![
                        c.agent.clone(),
                        c.hostname.clone(),
                        when(&c.issued_at),
                        when_or(c.expires_at.as_ref(), "never"),
                        when_or(c.revoked_at.as_ref(), "-"),
                    ]);
                }
                t
            })
        }
        None | Some(AgentsCmd::List) => {
            let agents: Vec<Agent> = client.get("/api/v1/agents", &[]).await?;
            emit(json, &agents, || {
                let mut t = Table::new(&[
                    "ID",
                    "HOSTNAME",
                    "VERSION",
                    "ADDRESS",
                    "STATE",
                    "CONNECTED SINCE",
                    "LAST SEEN",
                    "SERIES",
                    "CLOCK OFFSET",
                    "REFUSED (1 MIN)",
                ]);
                for a in &agents {
                    t.row(vec![
                        a.id.clone(),
                        a.hostname.clone(),
                        a.version.clone(),
                        a.address.clone(),
                        if a.connected {
                            "connected".into()
                        } else {
                            "disconnected".into()
                        },
                        a.connected_since
                            .as_deref()
                            .map_or_else(|| "-".into(), when_exact),
                        when_exact(&a.last_seen),
                        a.series.to_string(),
                        a.clock_offset.map_or_else(
                            || "-".into(),
                            |o| watchpost_model::format_offset((o * 1000.0).round() as i64),
                        ),
                        match &a.refused_reason {
                            Some(why) if a.refused_last_minute > 0 => {
                                format!("{} ({why})", a.refused_last_minute)
                            }
                            _ => a.refused_last_minute.to_string(),
                        },
                    ]);
                }
                t
            })
        }
    }
}
