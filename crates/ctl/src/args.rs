//! The command line: every command, flag and help text (clap derive).
//! Nothing here talks to the collector.

use clap::{Parser, Subcommand};

/// Watchpost's command line.
#[derive(Parser)]
#[command(version)]
pub struct Args {
    /// Collector HTTP API.
    #[arg(
        long,
        global = true,
        env = "WATCHPOST_SERVER",
        default_value = "http://127.0.0.1:9811"
    )]
    pub server: String,
    /// CA certificate (PEM) that signed an https:// collector's certificate
    /// (default: the public web roots).
    #[arg(long, global = true, env = "WATCHPOST_CA_FILE")]
    pub ca_file: Option<std::path::PathBuf>,
    /// Print JSON instead of a table.
    #[arg(long, global = true)]
    pub json: bool,
    /// Print times in UTC (RFC 3339), not in the collector's calendar zone.
    #[arg(long, global = true)]
    pub utc: bool,
    /// Who you are, recorded on the fault's timeline for actions (only
    /// with an open API: with users, the collector records who signed in).
    #[arg(long, global = true, env = "WATCHPOST_USER")]
    pub by: Option<String>,
    /// API token (`watchpostctl tokens create`), sent as a bearer token.
    #[arg(long, global = true, env = "WATCHPOST_TOKEN", hide_env_values = true)]
    pub token: Option<String>,
    /// Sign in as this user instead of a token; the password is read from
    /// WATCHPOST_PASSWORD (e.g. to create your first token).
    #[arg(long, global = true, env = "WATCHPOST_LOGIN", conflicts_with = "token")]
    pub login: Option<String>,
    #[command(subcommand)]
    pub command: Cmd,
}

#[derive(Subcommand)]
pub enum Cmd {
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
        /// Until (as --since); default now.
        #[arg(long)]
        until: Option<String>,
        /// raw (the samples), 1m or 1h (min, max, mean and count per
        /// minute or hour, from the rollups), or auto: raw within the hot
        /// window, 1m up to two days, 1h beyond.
        #[arg(long, default_value = "auto")]
        step: String,
        /// Label matchers as for `series`.
        matchers: Vec<String>,
    },
    /// The response and resolve deadlines a fault would get. Without
    /// --calendar the collector answers with its own calendar and policy;
    /// with it, they are computed here with the default policy.
    Deadline {
        /// urgent, general or minor (紧急, 一般, 轻微).
        #[arg(long)]
        severity: String,
        /// When the fault opens (RFC 3339, e.g. 2026-09-30T16:00:00+08:00); default now.
        #[arg(long)]
        opened_at: Option<String>,
        /// A calendar file to check (with the default policy).
        #[arg(long, conflicts_with = "config")]
        calendar: Option<std::path::PathBuf>,
        /// A collector config: its calendar and [severity.*] policy, checked
        /// here, offline.
        #[arg(long)]
        config: Option<std::path::PathBuf>,
    },
    /// Maintenance windows: faults inside are recorded as suppressed, not notified.
    Maintenance {
        #[command(subcommand)]
        command: MaintenanceCmd,
    },
    /// The equipment list (设备清单): hosts, disks, network devices and
    /// their modules as agents see them, and what was imported; with
    /// `history` what changed, with `import` a CSV of what no agent sees.
    Inventory {
        #[command(subcommand)]
        command: Option<InventoryCmd>,
        /// As CSV (for a spreadsheet), not a table.
        #[arg(long)]
        csv: bool,
        /// Only items of this kind (server, disk, network-device, module, ...).
        #[arg(long)]
        kind: Option<String>,
        /// Only items on this host.
        #[arg(long)]
        host: Option<String>,
        /// Removed items too.
        #[arg(long)]
        removed: bool,
    },
    /// Change requests: request, approve or reject, start, finish; an
    /// approved change's window suppresses the faults it covers.
    Changes {
        #[command(subcommand)]
        command: ChangesCmd,
    },
    /// Reports: the daily inspection record (日常巡检记录) and the monthly
    /// service statistics (运维月报), generated and stored on the
    /// collector, and the stored ones.
    Report {
        #[command(subcommand)]
        command: ReportCmd,
    },
    /// Backups (数据备份): take one on the collector (admin), list them, or
    /// check one here without restoring it.
    Backup {
        #[command(subcommand)]
        command: BackupCmd,
    },
    /// The day's inspection checklist (日常巡检): what is due, record an
    /// item, sign the day, review it (approver or admin).
    Inspections {
        #[command(subcommand)]
        command: InspectionsCmd,
    },
    /// Emergency drills (应急演练) through the real alert chain: start one
    /// (approver or admin), list them, and see how one went.
    Drill {
        #[command(subcommand)]
        command: DrillCmd,
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
        /// Filter by source (rule, reported, drill; comma-separated).
        #[arg(long)]
        source: Option<String>,
        /// At most this many, newest first.
        #[arg(long, default_value_t = 100)]
        limit: usize,
    },
}

#[derive(Subcommand)]
pub enum AgentsCmd {
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
pub enum UsersCmd {
    /// List users (the default).
    List,
    /// Create a user; prints the password once (generated unless
    /// --password-stdin).
    Add {
        /// Login name.
        name: String,
        /// viewer, operator, approver (approves changes) or admin.
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
pub enum TokensCmd {
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
pub enum MaintenanceCmd {
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
pub enum FaultCmd {
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
    /// Enter a fault someone reported (the service hotline); prints its id.
    Report {
        /// urgent, general or minor (紧急, 一般, 轻微).
        #[arg(long)]
        severity: String,
        /// The host, device or room it is about.
        #[arg(long)]
        host: String,
        /// What the reporter said.
        #[arg(long)]
        summary: String,
        /// Who reported it and how to reach them: "name, phone" or "name, e-mail".
        #[arg(long)]
        reporter: Option<String>,
        /// Labels for routing: k=v,k=v.
        #[arg(long)]
        labels: Option<String>,
        /// When the call came in (RFC 3339, "YYYY-MM-DD HH:MM" in the
        /// collector's calendar zone, or "20m" ago); default now.
        #[arg(long)]
        opened_at: Option<String>,
    },
    /// Record the reporter's satisfaction (回访) with a closed reported fault.
    Feedback {
        /// Fault id.
        id: i64,
        /// 1 (very dissatisfied) to 5 (very satisfied).
        #[arg(long)]
        satisfaction: u8,
        /// What they said.
        #[arg(long, short)]
        comment: Option<String>,
    },
}

#[derive(Subcommand)]
pub enum ReportCmd {
    /// Generate (a new stored version of) a month's statistics.
    Monthly {
        /// The month, YYYY-MM in the calendar's zone; default last month.
        #[arg(long)]
        month: Option<String>,
        #[command(flatten)]
        out: ReportOut,
    },
    /// Generate (a new stored version of) a day's inspection record.
    Daily {
        /// The day, YYYY-MM-DD in the calendar's zone; default yesterday.
        #[arg(long)]
        date: Option<String>,
        #[command(flatten)]
        out: ReportOut,
    },
    /// Stored reports, newest first.
    List {
        /// Only this period (2026-11).
        #[arg(long)]
        period: Option<String>,
    },
    /// Fetch one stored report's file (its hash is checked by the collector).
    Get {
        /// Its id.
        id: i64,
        /// Where to write it; default standard output.
        #[arg(long, short)]
        output: Option<std::path::PathBuf>,
    },
}

/// How a generated report is fetched.
#[derive(clap::Args)]
pub struct ReportOut {
    /// text (the tables here), json, html, pdf, xlsx or csv (one file per table).
    #[arg(long, default_value = "text")]
    pub format: String,
    /// zh or en; default the collector's reports.language.
    #[arg(long)]
    pub lang: Option<String>,
    /// Where to write: a file (json, html, pdf, xlsx), a directory (csv).
    #[arg(long, short)]
    pub output: Option<std::path::PathBuf>,
}

#[derive(Subcommand)]
pub enum BackupCmd {
    /// Take a backup now: databases through SQLite's online backup, the
    /// history, the journal, the stored reports, the config files.
    Create {
        /// Where to, on the collector's machine (default its [backup] dir).
        #[arg(long)]
        dir: Option<String>,
    },
    /// The backups in the collector's [backup] dir, newest first.
    List,
    /// Check a backup folder here (manifest, every file's SHA-256, every
    /// database's integrity) without restoring it.
    Verify {
        /// The backup's folder (watchpost-backup-...).
        dir: std::path::PathBuf,
    },
}

#[derive(Subcommand)]
pub enum InspectionsCmd {
    /// The items due today (or on --date), what was recorded, the signatures.
    Today {
        /// Another day, YYYY-MM-DD.
        #[arg(long)]
        date: Option<String>,
    },
    /// Record an item's result.
    Check {
        /// The item's id (as in the checklist file).
        item: String,
        /// normal or abnormal.
        #[arg(long)]
        result: String,
        /// What was seen (required when abnormal).
        #[arg(long)]
        remark: Option<String>,
        /// The day, YYYY-MM-DD; default today.
        #[arg(long)]
        date: Option<String>,
        /// Why a signed day is corrected (required then: an amendment).
        #[arg(long)]
        why: Option<String>,
        /// Also open a reported fault of this severity (abnormal only).
        #[arg(long)]
        open_fault: Option<String>,
    },
    /// Sign the day's record as its inspector: it is immutable after.
    Sign {
        /// The day, YYYY-MM-DD.
        date: String,
        /// What the inspector adds.
        #[arg(long)]
        remark: Option<String>,
    },
    /// Review a signed day (approver or admin, not the inspector).
    Review {
        /// The day, YYYY-MM-DD.
        date: String,
        /// What the reviewer adds.
        #[arg(long)]
        remark: Option<String>,
    },
}

#[derive(Subcommand)]
pub enum DrillCmd {
    /// Open a drill fault that goes through routes, escalation and every
    /// channel like a real one, each message marked 【演练】/[DRILL];
    /// prints its id.
    Start {
        /// A named [[route]] to go through (only that route).
        #[arg(long, conflicts_with = "host")]
        route: Option<String>,
        /// urgent, general or minor; default the route's first, else urgent.
        #[arg(long)]
        severity: Option<String>,
        /// The host the drill names, for routes that match on it.
        #[arg(long)]
        host: Option<String>,
        /// What the drill is about.
        #[arg(long)]
        summary: Option<String>,
        /// Labels `name=value` for routing (repeat).
        #[arg(long = "label")]
        labels: Vec<String>,
    },
    /// Drills, newest first.
    List {
        /// At most this many.
        #[arg(long, default_value_t = 50)]
        limit: usize,
    },
    /// Who was told on which channel when, who acknowledged and how fast,
    /// which escalation steps ran, which deliveries failed.
    Show {
        /// The drill's fault id.
        id: i64,
    },
}

// Parsed once per run: the size of the largest variant costs nothing.
#[derive(Subcommand)]
pub enum InventoryCmd {
    /// What changed (added, changed, removed), oldest first.
    History {
        /// One item's id (as `inventory` lists it); all when left out.
        item: Option<String>,
    },
    /// Imports a CSV (a header line naming name, kind, vendor, model,
    /// serial, firmware, room, rack, host, notes; name required).
    Import {
        /// The CSV file (UTF-8).
        file: std::path::PathBuf,
        /// Imported items the file no longer lists are marked removed.
        #[arg(long)]
        replace: bool,
    },
}

#[allow(clippy::large_enum_variant)]
#[derive(Subcommand)]
pub enum ChangesCmd {
    /// List change requests, newest first.
    List {
        /// At most this many.
        #[arg(long, default_value_t = 100)]
        limit: usize,
    },
    /// One change with its timeline and the faults opened in its window.
    Show {
        /// Change id.
        id: i64,
    },
    /// Request a change; prints its id (approval by someone else creates its window).
    Request {
        /// One line.
        #[arg(long)]
        title: String,
        /// What will be done.
        #[arg(long)]
        content: String,
        /// Why.
        #[arg(long)]
        reason: String,
        /// Expected impact.
        #[arg(long)]
        impact: String,
        /// How it was tested.
        #[arg(long)]
        test_plan: String,
        /// How it is undone.
        #[arg(long)]
        rollback_plan: String,
        /// Window start (RFC 3339, "YYYY-MM-DD HH:MM" in the calendar's zone).
        #[arg(long)]
        start: String,
        /// Window end.
        #[arg(long)]
        end: String,
        /// A host it covers (repeat for more).
        #[arg(long = "host")]
        hosts: Vec<String>,
        /// A label matcher it covers: label=value (repeat for more).
        #[arg(long = "match")]
        matchers: Vec<String>,
        /// A rule it covers (repeat for more).
        #[arg(long = "rule")]
        rules: Vec<String>,
    },
    /// Approve a requested change (approver or admin, not the requester).
    Approve {
        /// Change id.
        id: i64,
        /// Optional comment.
        #[arg(long, short)]
        comment: Option<String>,
    },
    /// Reject a requested change.
    Reject {
        /// Change id.
        id: i64,
        /// Why (required).
        #[arg(long)]
        reason: String,
    },
    /// Start an approved change.
    Start {
        /// Change id.
        id: i64,
    },
    /// Finish a change in progress: done, or rolled_back with the reason.
    Finish {
        /// Change id.
        id: i64,
        /// done or rolled_back.
        #[arg(long)]
        result: String,
        /// Why it was rolled back (required then), or a note.
        #[arg(long)]
        reason: Option<String>,
    },
    /// Cancel a change that has not started.
    Cancel {
        /// Change id.
        id: i64,
    },
}
