//! `watchpostctl`: the operator's command line over the collector's HTTP
//! API. Tables for people, `--json` for scripts.

use std::collections::BTreeMap;
use std::process::ExitCode;

use anyhow::{Context, bail};
use clap::{Parser, Subcommand};
use serde::de::DeserializeOwned;
use watchpost_model::Severity;
use watchpost_model::api::{
    Agent, AgentCredential, ApiToken, AuditEntry, CreatedToken, CreatedUser, DeadlineAnswer, EnrollBody,
    Enrollment, ErrorBody, Fault, FaultActionBody, MaintenanceBody, MaintenanceWindow, NewToken, NewUser,
    Notification, OnCall, Series, SeriesPoints, User, Whoami,
};

mod table;

use table::Table;

/// Watchpost's command line.
#[derive(Parser)]
#[command(version)]
struct Args {
    /// Collector HTTP API.
    #[arg(
        long,
        global = true,
        env = "WATCHPOST_SERVER",
        default_value = "http://127.0.0.1:9811"
    )]
    server: String,
    /// CA certificate (PEM) that signed an https:// collector's certificate
    /// (default: the public web roots).
    #[arg(long, global = true, env = "WATCHPOST_CA_FILE")]
    ca_file: Option<std::path::PathBuf>,
    /// Print JSON instead of a table.
    #[arg(long, global = true)]
    json: bool,
    /// Who you are, recorded on the fault's timeline for actions (only
    /// with an open API: with users, the collector records who signed in).
    #[arg(long, global = true, env = "WATCHPOST_USER")]
    by: Option<String>,
    /// API token (`watchpostctl tokens create`), sent as a bearer token.
    #[arg(long, global = true, env = "WATCHPOST_TOKEN", hide_env_values = true)]
    token: Option<String>,
    /// Sign in as this user instead of a token; the password is read from
    /// WATCHPOST_PASSWORD (e.g. to create your first token).
    #[arg(long, global = true, env = "WATCHPOST_LOGIN", conflicts_with = "token")]
    login: Option<String>,
    #[command(subcommand)]
    command: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// List agents (hostname, version, address, connected since, last
    /// seen), or enrol and revoke them.
    Agents {
        #[command(subcommand)]
        command: Option<AgentsCmd>,
    },
    /// Who the collector says you are.
    Whoami,
    /// API users and their roles (admin).
    Users {
        #[command(subcommand)]
        command: Option<UsersCmd>,
    },
    /// Your API tokens (an admin sees everyone's).
    Tokens {
        #[command(subcommand)]
        command: Option<TokensCmd>,
    },
    /// The audit log: every write through the API, newest first (admin).
    Audit {
        /// Only this user's ("-": requests without a valid credential).
        #[arg(long)]
        actor: Option<String>,
        /// At most this many.
        #[arg(long, default_value_t = 100)]
        limit: usize,
    },
    /// List series with their latest value.
    Series {
        /// Metric name.
        #[arg(long, short)]
        metric: Option<String>,
        /// Label matchers: `label=value`, `label=!value`, `label=~regex`, `label=!~regex`.
        matchers: Vec<String>,
    },
    /// Print the points of matching series.
    Query {
        /// Metric name.
        #[arg(long, short)]
        metric: String,
        /// From: a duration ago ("15m"), RFC 3339 or ms since the epoch.
        #[arg(long, default_value = "15m")]
        since: String,
        /// Label matchers as for `series`.
        matchers: Vec<String>,
    },
    /// The response and resolve deadlines a fault would get. Without
    /// --calendar the collector answers with its own calendar and policy;
    /// with it, they are computed here with the default policy.
    Deadline {
        /// urgent, general or minor.
        #[arg(long)]
        severity: String,
        /// When the fault opens (RFC 3339, e.g. 2026-09-30T16:00:00+08:00); default now.
        #[arg(long)]
        opened_at: Option<String>,
        /// A calendar file to check.
        #[arg(long)]
        calendar: Option<std::path::PathBuf>,
    },
    /// Maintenance windows: faults inside are recorded as suppressed, not notified.
    Maintenance {
        #[command(subcommand)]
        command: MaintenanceCmd,
    },
    /// The notification outbox: what was sent to whom, what waits or failed.
    Notifications {
        /// Only this fault's.
        #[arg(long)]
        fault: Option<i64>,
        /// Only pending, delivered, failed or cancelled.
        #[arg(long)]
        status: Option<String>,
        /// At most this many, newest first.
        #[arg(long, default_value_t = 100)]
        limit: usize,
    },
    /// Who is on duty in each team.
    Oncall {
        /// When (RFC 3339 or ms since the epoch); default now.
        #[arg(long)]
        at: Option<String>,
    },
    /// List faults, or show one with `faults show ID`.
    Faults {
        #[command(subcommand)]
        show: Option<FaultCmd>,
        /// Filter by status (open, acknowledged, resolved, closed, suppressed; comma-separated).
        #[arg(long)]
        status: Option<String>,
        /// Filter by severity (urgent, general, minor; comma-separated).
        #[arg(long)]
        severity: Option<String>,
        /// Filter by host.
        #[arg(long)]
        host: Option<String>,
        /// At most this many, newest first.
        #[arg(long, default_value_t = 100)]
        limit: usize,
    },
}

#[derive(Subcommand)]
enum AgentsCmd {
    /// List agents (the default).
    List,
    /// Make a one-time enrolment token for an agent id; put it in the
    /// agent's `enroll_token`. The agent exchanges it for its own credential.
    Enroll {
        /// Agent id (its `id`, default its hostname).
        id: String,
        /// How long the token can be used.
        #[arg(long, default_value = "24h")]
        token_valid_for: String,
        /// Lifetime of the credential the agent receives.
        #[arg(long, default_value = "365d")]
        credential_valid_for: String,
    },
    /// Revoke an agent's credential: its stream ends now and it cannot reconnect.
    Revoke {
        /// Agent id.
        id: String,
    },
    /// Enrolled agents and their credentials (never the secrets).
    Credentials,
}

#[derive(Subcommand)]
enum UsersCmd {
    /// List users (the default).
    List,
    /// Create a user; prints the password once (generated unless
    /// --password-stdin).
    Add {
        /// Login name.
        name: String,
        /// viewer, operator or admin.
        #[arg(long)]
        role: String,
        /// Read the password from standard input instead of generating one.
        #[arg(long)]
        password_stdin: bool,
    },
    /// Disable a user: no login, tokens stop working.
    Disable {
        /// Login name.
        name: String,
    },
    /// Enable a disabled user again.
    Enable {
        /// Login name.
        name: String,
    },
}

#[derive(Subcommand)]
enum TokensCmd {
    /// List tokens (the default).
    List,
    /// Create a token for yourself; prints it once.
    Create {
        /// What it is for.
        #[arg(long)]
        name: String,
        /// Lifetime, e.g. 90d; default: no expiry.
        #[arg(long)]
        expires_in: Option<String>,
    },
    /// Revoke a token.
    Revoke {
        /// Token id.
        id: i64,
    },
}

#[derive(Subcommand)]
enum MaintenanceCmd {
    /// Create a window for an approved change.
    Add {
        /// Only this host.
        #[arg(long)]
        host: Option<String>,
        /// Only this rule.
        #[arg(long)]
        rule: Option<String>,
        /// Start (RFC 3339); default now.
        #[arg(long)]
        start: Option<String>,
        /// End (RFC 3339).
        #[arg(long)]
        end: String,
        /// Why.
        #[arg(long)]
        reason: String,
        /// The approved change ticket.
        #[arg(long)]
        ticket: String,
        /// Label matchers as for `series`.
        matchers: Vec<String>,
    },
    /// List windows, newest first.
    List,
}

#[derive(Subcommand)]
enum FaultCmd {
    /// One fault with its timeline.
    Show {
        /// Fault id.
        id: i64,
    },
    /// Acknowledge: meets the response deadline.
    Ack {
        /// Fault id.
        id: i64,
        /// Optional comment.
        #[arg(long, short)]
        comment: Option<String>,
    },
    /// Resolve by hand: meets the resolve deadline.
    Resolve {
        /// Fault id.
        id: i64,
        /// What was done (required).
        #[arg(long, short)]
        comment: String,
    },
    /// Close a resolved fault with its cause and handling (both required).
    Close {
        /// Fault id.
        id: i64,
        /// Why it happened.
        #[arg(long)]
        cause: String,
        /// How it was handled.
        #[arg(long)]
        handling: String,
    },
    /// Add a note to the timeline.
    Note {
        /// Fault id.
        id: i64,
        /// The note.
        text: String,
    },
    /// Hand the fault to someone.
    Assign {
        /// Fault id.
        id: i64,
        /// Who.
        assignee: String,
    },
}

enum Auth {
    None,
    Bearer(String),
    Basic(String, String),
}

struct Client {
    base: String,
    http: reqwest::Client,
    auth: Auth,
}

impl Client {
    fn url(&self, path: &str) -> String {
        format!("{}{}", self.base.trim_end_matches('/'), path)
    }

    fn signed(&self, r: reqwest::RequestBuilder) -> reqwest::RequestBuilder {
        match &self.auth {
            Auth::None => r,
            Auth::Bearer(t) => r.bearer_auth(t),
            Auth::Basic(u, p) => r.basic_auth(u, Some(p)),
        }
    }

    async fn get<T: DeserializeOwned>(&self, path: &str, query: &[(String, String)]) -> anyhow::Result<T> {
        let url = self.url(path);
        self.answer(self.http.get(&url).query(query), &url).await
    }

    /// A POST whose answer has no body (204).
    async fn post_empty<B: serde::Serialize>(&self, path: &str, body: &B) -> anyhow::Result<()> {
        let url = self.url(path);
        let _: serde_json::Value = self.answer(self.http.post(&url).json(body), &url).await?;
        Ok(())
    }

    async fn post<T: DeserializeOwned, B: serde::Serialize>(
        &self,
        path: &str,
        body: &B,
    ) -> anyhow::Result<T> {
        let url = self.url(path);
        self.answer(self.http.post(&url).json(body), &url).await
    }

    /// Sends a request and reads its JSON answer, or the API's error.
    async fn answer<T: DeserializeOwned>(
        &self,
        request: reqwest::RequestBuilder,
        url: &str,
    ) -> anyhow::Result<T> {
        let resp = self.signed(request).send().await.with_context(|| {
            format!(
                "cannot reach the collector at {} (is it running? see --server)",
                self.base
            )
        })?;
        let status = resp.status();
        let body = resp.bytes().await.context("reading the collector's answer")?;
        if !status.is_success() {
            match serde_json::from_slice::<ErrorBody>(&body) {
                Ok(e) => bail!("{} ({}): {}", status, e.error.code, e.error.message),
                Err(_) => bail!("{}: {}", status, String::from_utf8_lossy(&body)),
            }
        }
        let body: &[u8] = if body.is_empty() { b"null" } else { &body };
        serde_json::from_slice(body).with_context(|| format!("unexpected answer from {url}"))
    }
}

/// Who acts with an open API: --by, WATCHPOST_USER, or the login name
/// (a collector with users records the signed-in user instead).
fn actor(by: Option<String>) -> anyhow::Result<String> {
    Ok(by
        .or_else(|| std::env::var("USER").ok())
        .filter(|b| !b.trim().is_empty())
        .unwrap_or_default())
}

fn matcher_params(matchers: &[String]) -> anyhow::Result<Vec<(String, String)>> {
    matchers
        .iter()
        .map(|m| match m.split_once('=') {
            Some((k, v)) if !k.is_empty() => Ok((k.to_string(), v.to_string())),
            _ => bail!("matcher {m:?}: expected label=value (value may start with !, ~ or !~)"),
        })
        .collect()
}

fn labels_text(labels: &BTreeMap<String, String>, skip: &[&str]) -> String {
    labels
        .iter()
        .filter(|(k, _)| !skip.contains(&k.as_str()))
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join(",")
}

fn value_text(v: Option<f64>) -> String {
    match v {
        Some(v) if v.fract() == 0.0 && v.abs() < 1e15 => format!("{v:.0}"),
        Some(v) => format!("{v:.2}"),
        None => "-".into(),
    }
}

#[allow(clippy::print_stdout)]
fn emit<T: serde::Serialize>(json: bool, value: &T, table: impl FnOnce() -> Table) -> anyhow::Result<()> {
    if json {
        println!("{}", serde_json::to_string_pretty(value)?);
    } else {
        print!("{}", table().render());
    }
    Ok(())
}

#[allow(clippy::print_stdout)]
async fn run(args: Args) -> anyhow::Result<()> {
    let mut builder = reqwest::Client::builder();
    if let Some(path) = &args.ca_file {
        let pem = std::fs::read(path).with_context(|| format!("cannot read --ca-file {}", path.display()))?;
        let certs = reqwest::Certificate::from_pem_bundle(&pem)
            .with_context(|| format!("--ca-file {} holds no PEM certificate", path.display()))?;
        for c in certs {
            builder = builder.add_root_certificate(c);
        }
    }
    let auth = match (&args.token, &args.login) {
        (Some(t), _) => Auth::Bearer(t.clone()),
        (None, Some(user)) => {
            let password = std::env::var("WATCHPOST_PASSWORD")
                .context("--login needs the password in WATCHPOST_PASSWORD")?;
            Auth::Basic(user.clone(), password)
        }
        (None, None) => Auth::None,
    };
    let client = Client {
        base: args.server.clone(),
        http: builder.build().context("cannot build the HTTP client")?,
        auth,
    };
    match args.command {
        Cmd::Whoami => {
            let me: Whoami = client.get("/api/v1/whoami", &[]).await?;
            emit(args.json, &me, || {
                let mut t = Table::new(&["USER", "ROLE"]);
                t.row(vec![me.user.clone(), me.role.as_str().to_string()]);
                t
            })
        }
        Cmd::Users {
            command: None | Some(UsersCmd::List),
        } => {
            let users: Vec<User> = client.get("/api/v1/users", &[]).await?;
            emit(args.json, &users, || {
                let mut t = Table::new(&["NAME", "ROLE", "CREATED", "STATE"]);
                for u in &users {
                    t.row(vec![
                        u.name.clone(),
                        u.role.as_str().to_string(),
                        u.created_at.clone(),
                        if u.disabled {
                            "disabled".into()
                        } else {
                            "active".into()
                        },
                    ]);
                }
                t
            })
        }
        Cmd::Users {
            command:
                Some(UsersCmd::Add {
                    name,
                    role,
                    password_stdin,
                }),
        } => {
            let password = if password_stdin {
                let mut line = String::new();
                std::io::stdin()
                    .read_line(&mut line)
                    .context("reading the password from standard input")?;
                Some(line.trim_end_matches(['\r', '\n']).to_string())
            } else {
                None
            };
            let created: CreatedUser = client
                .post("/api/v1/users", &NewUser { name, role, password })
                .await?;
            if args.json {
                println!("{}", serde_json::to_string_pretty(&created)?);
            } else {
                println!("user {} ({}) created", created.name, created.role.as_str());
                if !password_stdin {
                    println!("password (shown once): {}", created.password);
                }
            }
            Ok(())
        }
        Cmd::Users {
            command: Some(UsersCmd::Disable { name }),
        } => set_user_state(&client, &name, "disable").await,
        Cmd::Users {
            command: Some(UsersCmd::Enable { name }),
        } => set_user_state(&client, &name, "enable").await,
        Cmd::Tokens {
            command: None | Some(TokensCmd::List),
        } => {
            let tokens: Vec<ApiToken> = client.get("/api/v1/tokens", &[]).await?;
            emit(args.json, &tokens, || {
                let mut t = Table::new(&["ID", "USER", "NAME", "CREATED", "EXPIRES", "REVOKED", "LAST USED"]);
                for k in &tokens {
                    t.row(vec![
                        k.id.to_string(),
                        k.user.clone(),
                        k.name.clone(),
                        k.created_at.clone(),
                        k.expires_at.clone().unwrap_or_else(|| "never".into()),
                        k.revoked_at.clone().unwrap_or_else(|| "-".into()),
                        k.last_used_at.clone().unwrap_or_else(|| "-".into()),
                    ]);
                }
                t
            })
        }
        Cmd::Tokens {
            command: Some(TokensCmd::Create { name, expires_in }),
        } => {
            let created: CreatedToken = client
                .post("/api/v1/tokens", &NewToken { name, expires_in })
                .await?;
            if args.json {
                println!("{}", serde_json::to_string_pretty(&created)?);
            } else {
                println!("token {} (shown once; keep it secret):", created.id);
                println!("{}", created.token);
                println!("use it with: export WATCHPOST_TOKEN=<token>");
            }
            Ok(())
        }
        Cmd::Tokens {
            command: Some(TokensCmd::Revoke { id }),
        } => {
            client
                .post_empty(&format!("/api/v1/tokens/{id}/revoke"), &())
                .await?;
            println!("token {id} revoked");
            Ok(())
        }
        Cmd::Audit { actor, limit } => {
            let mut q = vec![("limit".to_string(), limit.to_string())];
            if let Some(a) = actor {
                q.push(("actor".into(), a));
            }
            let entries: Vec<AuditEntry> = client.get("/api/v1/audit", &q).await?;
            emit(args.json, &entries, || {
                let mut t = Table::new(&["ID", "AT", "ACTOR", "ROLE", "FROM", "REQUEST", "STATUS", "DETAIL"]);
                for e in &entries {
                    t.row(vec![
                        e.id.to_string(),
                        e.at.clone(),
                        e.actor.clone(),
                        e.role.map_or("-", |r| r.as_str()).to_string(),
                        e.address.clone(),
                        format!("{} {}", e.method, e.path),
                        e.status.to_string(),
                        e.detail.clone(),
                    ]);
                }
                t
            })
        }
        Cmd::Agents {
            command:
                Some(AgentsCmd::Enroll {
                    id,
                    token_valid_for,
                    credential_valid_for,
                }),
        } => {
            let e: Enrollment = client
                .post(
                    &format!("/api/v1/agents/{}/enroll", path_segment(&id)),
                    &EnrollBody {
                        token_valid_for: Some(token_valid_for),
                        credential_valid_for: Some(credential_valid_for),
                    },
                )
                .await?;
            if args.json {
                println!("{}", serde_json::to_string_pretty(&e)?);
            } else {
                println!(
                    "enrolment token for agent {} (works once, until {}):",
                    e.agent, e.expires_at
                );
                println!("{}", e.token);
                println!("put it in the agent's config: [agent] enroll_token = \"<token>\"");
            }
            Ok(())
        }
        Cmd::Agents {
            command: Some(AgentsCmd::Revoke { id }),
        } => {
            client
                .post_empty(&format!("/api/v1/agents/{}/revoke", path_segment(&id)), &())
                .await?;
            println!("agent {id}: credential revoked");
            Ok(())
        }
        Cmd::Agents {
            command: Some(AgentsCmd::Credentials),
        } => {
            let creds: Vec<AgentCredential> = client.get("/api/v1/agent-credentials", &[]).await?;
            emit(args.json, &creds, || {
                let mut t = Table::new(&["AGENT", "HOST", "ISSUED", "EXPIRES", "REVOKED"]);
                for c in &creds {
                    t.row(vec![
                        c.agent.clone(),
                        c.hostname.clone(),
                        c.issued_at.clone(),
                        c.expires_at.clone().unwrap_or_else(|| "never".into()),
                        c.revoked_at.clone().unwrap_or_else(|| "-".into()),
                    ]);
                }
                t
            })
        }
        Cmd::Agents {
            command: None | Some(AgentsCmd::List),
        } => {
            let agents: Vec<Agent> = client.get("/api/v1/agents", &[]).await?;
            emit(args.json, &agents, || {
                let mut t = Table::new(&[
                    "ID",
                    "HOSTNAME",
                    "VERSION",
                    "ADDRESS",
                    "STATE",
                    "CONNECTED SINCE",
                    "LAST SEEN",
                    "SERIES",
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
                        a.connected_since.clone().unwrap_or_else(|| "-".into()),
                        a.last_seen.clone(),
                        a.series.to_string(),
                    ]);
                }
                t
            })
        }
        Cmd::Series { metric, matchers } => {
            let mut q = matcher_params(&matchers)?;
            if let Some(m) = metric {
                q.push(("metric".into(), m));
            }
            let series: Vec<Series> = client.get("/api/v1/series", &q).await?;
            emit(args.json, &series, || {
                let mut t = Table::new(&["METRIC", "HOST", "LABELS", "VALUE", "AGE"]);
                let now = std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map(|d| d.as_millis() as i64)
                    .unwrap_or(0);
                for s in &series {
                    t.row(vec![
                        s.metric.clone(),
                        s.labels.get("host").cloned().unwrap_or_default(),
                        labels_text(&s.labels, &["host"]),
                        value_text(s.last_value),
                        s.last_timestamp_ms.map_or("-".into(), |ts| {
                            format!("{:.0}s", (now - ts).max(0) as f64 / 1000.0)
                        }),
                    ]);
                }
                t
            })
        }
        Cmd::Query {
            metric,
            since,
            matchers,
        } => {
            let mut q = matcher_params(&matchers)?;
            q.push(("metric".into(), metric));
            q.push(("since".into(), since));
            let series: Vec<SeriesPoints> = client.get("/api/v1/query", &q).await?;
            if args.json {
                println!("{}", serde_json::to_string_pretty(&series)?);
                return Ok(());
            }
            for s in &series {
                println!("{}{{{}}}", s.metric, labels_text(&s.labels, &[]));
                let mut t = Table::new(&["  TIME (UTC)", "VALUE"]);
                for (ts, v) in &s.points {
                    let time = utc_time(*ts);
                    t.row(vec![format!("  {time}"), value_text(Some(*v))]);
                }
                print!("{}", t.render());
            }
            Ok(())
        }
        Cmd::Maintenance {
            command: MaintenanceCmd::List,
        } => {
            let windows: Vec<MaintenanceWindow> = client.get("/api/v1/silences", &[]).await?;
            emit(args.json, &windows, || {
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
                        w.starts_at.clone(),
                        w.ends_at.clone(),
                        w.ticket.clone(),
                        w.created_by.clone(),
                        w.reason.clone(),
                    ]);
                }
                t
            })
        }
        Cmd::Maintenance {
            command:
                MaintenanceCmd::Add {
                    host,
                    rule,
                    start,
                    end,
                    reason,
                    ticket,
                    matchers,
                },
        } => {
            let by = actor(args.by)?;
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
            if args.json {
                println!("{}", serde_json::to_string_pretty(&w)?);
            } else {
                println!(
                    "maintenance window {} ({}) from {} to {}",
                    w.id, w.ticket, w.starts_at, w.ends_at
                );
            }
            Ok(())
        }
        Cmd::Notifications { fault, status, limit } => {
            let mut q = vec![("limit".to_string(), limit.to_string())];
            if let Some(f) = fault {
                q.push(("fault".into(), f.to_string()));
            }
            if let Some(s) = status {
                q.push(("status".into(), s));
            }
            let rows: Vec<Notification> = client.get("/api/v1/notifications", &q).await?;
            emit(args.json, &rows, || {
                let mut t = Table::new(&[
                    "ID", "FAULT", "KIND", "TO", "CHANNEL", "STATUS", "TRIES", "DUE", "SENT", "MESSAGE",
                    "ERROR",
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
                        n.due_at.clone(),
                        n.sent_at.clone().unwrap_or_else(|| "-".into()),
                        n.message_id.clone().unwrap_or_else(|| "-".into()),
                        n.last_error.clone().unwrap_or_default(),
                    ]);
                }
                t
            })
        }
        Cmd::Oncall { at } => {
            let q: Vec<(String, String)> = at.map(|t| ("at".to_string(), t)).into_iter().collect();
            let teams: Vec<OnCall> = client.get("/api/v1/oncall", &q).await?;
            emit(args.json, &teams, || {
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
                        o.until.clone().unwrap_or_else(|| "-".into()),
                        o.reason.clone(),
                        o.lead.as_ref().map_or("-".into(), |l| l.name.clone()),
                    ]);
                }
                t
            })
        }
        Cmd::Deadline {
            severity,
            opened_at,
            calendar,
        } => {
            let answer = match calendar {
                Some(file) => local_deadline(&severity, opened_at.as_deref(), &file)?,
                None => {
                    let mut q = vec![("severity".to_string(), severity)];
                    if let Some(t) = opened_at {
                        q.push(("opened_at".into(), t));
                    }
                    client.get("/api/v1/deadline", &q).await?
                }
            };
            if args.json {
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
        Cmd::Faults {
            show:
                Some(
                    action @ (FaultCmd::Ack { .. }
                    | FaultCmd::Resolve { .. }
                    | FaultCmd::Close { .. }
                    | FaultCmd::Note { .. }
                    | FaultCmd::Assign { .. }),
                ),
            ..
        } => {
            let by = actor(args.by)?;
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
                FaultCmd::Show { .. } => unreachable!("matched above"),
            };
            let f: Fault = client.post(&format!("/api/v1/faults/{id}/{path}"), &body).await?;
            if args.json {
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
        Cmd::Faults {
            show: Some(FaultCmd::Show { id }),
            ..
        } => {
            let f: Fault = client.get(&format!("/api/v1/faults/{id}"), &[]).await?;
            if args.json {
                println!("{}", serde_json::to_string_pretty(&f)?);
                return Ok(());
            }
            println!("Fault {}  [{}]  {}", f.id, f.severity, f.status.as_str());
            println!("  summary       {}", f.summary);
            println!("  rule          {}", f.rule);
            println!("  host          {}", f.host);
            if !f.metric.is_empty() {
                println!("  series        {}{{{}}}", f.metric, labels_text(&f.labels, &[]));
            }
            println!("  value         {}", value_text(f.value));
            println!("  count         {}", f.count);
            println!("  opened        {}", f.opened_at);
            println!("  last seen     {}", f.last_seen_at);
            println!("  respond by    {}", f.response_due);
            println!("  resolve by    {}", f.resolve_due);
            println!("  resolved      {}", f.resolved_at.as_deref().unwrap_or("-"));
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
                    f.acknowledged_at.as_deref().unwrap_or("-")
                );
            }
            if let Some(a) = &f.assignee {
                println!("  assignee      {a}");
            }
            if let Some(c) = &f.closed_at {
                println!("  closed        {c}");
                println!("  cause         {}", f.cause.as_deref().unwrap_or("-"));
                println!("  handling      {}", f.handling.as_deref().unwrap_or("-"));
            }
            println!("Timeline:");
            let mut t = Table::new(&["  AT", "ACTOR", "EVENT", "MESSAGE"]);
            for e in &f.timeline {
                t.row(vec![
                    format!("  {}", e.at),
                    e.actor.clone(),
                    e.kind.clone(),
                    e.message.clone(),
                ]);
            }
            print!("{}", t.render());
            Ok(())
        }
        Cmd::Faults {
            show: None,
            status,
            severity,
            host,
            limit,
        } => {
            let mut q = vec![("limit".to_string(), limit.to_string())];
            for (k, v) in [("status", status), ("severity", severity), ("host", host)] {
                if let Some(v) = v {
                    q.push((k.to_string(), v));
                }
            }
            let faults: Vec<Fault> = client.get("/api/v1/faults", &q).await?;
            emit(args.json, &faults, || {
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
                        f.status.as_str().to_string(),
                        f.host.clone(),
                        f.rule.clone(),
                        f.opened_at.clone(),
                        f.response_due.clone(),
                        f.resolve_due.clone(),
                        f.count.to_string(),
                        f.summary.clone(),
                    ]);
                }
                t
            })
        }
    }
}

/// Computes deadlines here, on a calendar file and the default policy.
fn local_deadline(
    severity: &str,
    opened_at: Option<&str>,
    file: &std::path::Path,
) -> anyhow::Result<DeadlineAnswer> {
    let severity: Severity = severity.parse()?;
    let calendar = watchpost_calendar::Calendar::load(file)?;
    let opened = match opened_at {
        Some(t) => t
            .parse::<jiff::Timestamp>()
            .with_context(|| format!("--opened-at {t:?}: expected RFC 3339"))?,
        None => jiff::Timestamp::now(),
    };
    let policy = watchpost_calendar::SeverityPolicy::default();
    let d = policy.deadlines(&calendar, severity, opened)?;
    let entry = policy.of(severity);
    Ok(DeadlineAnswer {
        severity,
        opened_at: opened.to_string(),
        response_due: d.respond.to_string(),
        resolve_due: d.resolve.to_string(),
        respond: entry.respond.to_string(),
        resolve: entry.resolve.to_string(),
        calendar: format!("{} (default policy)", calendar.name()),
        time_zone: calendar.time_zone_name().to_string(),
    })
}

/// Formats ms since the epoch as `YYYY-MM-DDTHH:MM:SS.mmmZ` (civil-from-days, UTC).
/// `users disable|enable NAME`.
#[allow(clippy::print_stdout)]
async fn set_user_state(client: &Client, name: &str, action: &str) -> anyhow::Result<()> {
    client
        .post_empty(&format!("/api/v1/users/{}/{action}", path_segment(name)), &())
        .await?;
    println!("user {name}: {action}d");
    Ok(())
}

/// Percent-encodes one path segment (an agent id or user name).
fn path_segment(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

fn utc_time(ms: i64) -> String {
    let secs = ms.div_euclid(1000);
    let millis = ms.rem_euclid(1000);
    let days = secs.div_euclid(86_400);
    let sod = secs.rem_euclid(86_400);
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}.{millis:03}Z",
        sod / 3600,
        sod % 3600 / 60,
        sod % 60
    )
}

fn main() -> ExitCode {
    let args = Args::parse();
    let runtime = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
        Ok(r) => r,
        Err(e) => {
            eprintln!("watchpostctl: cannot start: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(args)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("watchpostctl: {e:#}");
            ExitCode::FAILURE
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn time_format() {
        assert_eq!(utc_time(0), "1970-01-01T00:00:00.000Z");
        assert_eq!(utc_time(1_795_000_000_123), "2026-11-18T11:06:40.123Z");
    }

    #[test]
    fn matchers() {
        assert_eq!(
            matcher_params(&["a=!b".into()]).expect("ok"),
            vec![("a".to_string(), "!b".to_string())]
        );
        assert!(matcher_params(&["ab".into()]).is_err());
    }
}
