//! `watchpost-collector`: parses flags and config, loads rules, starts the
//! collector (and with `--dev` an in-process agent for this host), reloads
//! rules on SIGHUP and stops on SIGINT/SIGTERM. Logic lives in the
//! `watchpost-collector` library.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use clap::{Parser, Subcommand};
use watchpost_collector::rules::RuleSet;
use watchpost_collector::time::now_ms;
use watchpost_collector::{Collector, CollectorConfig};

/// The default host rules, built in so `--dev` works from any directory.
const DEFAULT_RULES: &str = include_str!("../../../examples/rules/host.toml");
const DEV_RULES: &str = include_str!("../../../examples/dev-rules/dev.toml");

/// Watchpost collector: ingests agent streams, evaluates rules, keeps fault records.
#[derive(Parser)]
#[command(version)]
struct Args {
    /// Collector config (TOML).
    #[arg(long, short, global = true, env = "WATCHPOST_COLLECTOR_CONFIG")]
    config: Option<PathBuf>,
    /// gRPC ingest address (overrides the config).
    #[arg(long, global = true)]
    grpc_listen: Option<SocketAddr>,
    /// HTTP API address (overrides the config).
    #[arg(long, global = true)]
    http_listen: Option<SocketAddr>,
    /// Data directory (overrides the config).
    #[arg(long, global = true)]
    data_dir: Option<PathBuf>,
    /// Development mode: the built-in host rules plus a demo rule, and an
    /// agent for this host in the same process.
    #[arg(long)]
    dev: bool,
    #[command(subcommand)]
    command: Option<Cmd>,
}

#[derive(Subcommand)]
enum Cmd {
    /// Check the config and every rule file, then exit.
    Check,
    /// Create the admin user (or give it a new password) and an API token,
    /// print both once and exit: the first step on a new installation, or
    /// the way back in when the admin password is lost. Works on the data
    /// directory directly; the collector may be running.
    ResetAdmin {
        /// The admin's login name.
        #[arg(long, default_value = "admin")]
        name: String,
    },
    /// Restore a backup (watchpostctl backup create) into a new, empty
    /// data directory: the backup's manifest and every database's
    /// integrity are checked first, and nothing is written when any file
    /// is missing, changed or damaged. The config files go to
    /// DATA_DIR/restored-config/.
    Restore {
        /// The backup's folder (watchpost-backup-...).
        #[arg(long)]
        from: std::path::PathBuf,
        /// The data directory to create (absent or empty).
        #[arg(long = "data-dir")]
        into: std::path::PathBuf,
    },
}

/// Resets the admin's password, makes a token, and prints both.
async fn reset_admin(
    access: &watchpost_collector::access::Access,
    name: &str,
    server: &str,
) -> anyhow::Result<()> {
    let now = now_ms();
    let user = access.reset_admin(name, now).await?;
    let token = access.create_token(name, "reset-admin", None, now).await?;
    #[allow(clippy::print_stdout)]
    {
        println!("admin credential (shown once, stored only as hashes):");
        println!("  user      {}", user.name);
        println!("  password  {}", user.password);
        println!("  API token {}", token.token);
        println!(
            "  export WATCHPOST_TOKEN={}; watchpostctl --server {server} whoami",
            token.token
        );
    }
    Ok(())
}

fn load_config(args: &Args) -> anyhow::Result<CollectorConfig> {
    let mut config = match &args.config {
        Some(path) => CollectorConfig::load(path)?,
        None => CollectorConfig::default(),
    };
    if let Some(a) = args.grpc_listen {
        config.grpc_listen = a;
    }
    if let Some(a) = args.http_listen {
        config.http_listen = a;
    }
    if let Some(d) = &args.data_dir {
        config.data_dir = d.clone();
    }
    Ok(config)
}

fn load_rules(config: &CollectorConfig, dev: bool) -> anyhow::Result<RuleSet> {
    let result = if config.rules.is_empty() {
        let mut text = DEFAULT_RULES.to_string();
        if dev {
            text.push('\n');
            text.push_str(DEV_RULES);
        }
        RuleSet::parse(&text, "built-in rules")
    } else {
        RuleSet::load(&config.rules, &config.rules_base)
    };
    result.map_err(|errors| {
        let list: Vec<String> = errors.iter().map(|e| format!("  {e}")).collect();
        anyhow::anyhow!("{} problem(s) in the rules:\n{}", errors.len(), list.join("\n"))
    })
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        // Colour codes only for a person at a terminal, not in a file or a pipe.
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .init();
    if let Some(Cmd::Restore { from, into }) = &args.command {
        let m = watchpost_collector::backup::restore(from, into)
            .map_err(|e| anyhow::anyhow!("restore refused: {e}"))?;
        #[allow(clippy::print_stdout)]
        {
            println!(
                "restored the backup of {} ({} files, {} bytes) into {}; its config files are in {}",
                m.created_at,
                m.files.len(),
                m.bytes(),
                into.display(),
                into.join("restored-config").display()
            );
        }
        return Ok(());
    }
    let config = load_config(&args)?;
    if let Some(Cmd::ResetAdmin { name }) = &args.command {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .context("cannot start the async runtime")?;
        let access = watchpost_collector::access::Access::open(&config.data_dir)?;
        let server = format!("http://{}", config.http_listen);
        return runtime.block_on(reset_admin(&access, name, &server));
    }
    let rules = load_rules(&config, args.dev)?;
    if matches!(args.command, Some(Cmd::Check)) {
        let built_in: Vec<&str> = rules
            .rules
            .iter()
            .filter(|r| r.source == "built-in")
            .map(|r| &*r.name)
            .collect();
        #[allow(clippy::print_stdout)]
        {
            println!(
                "config OK; {} rules from {} file(s), and {} built-in: {}",
                rules.rules.len() - built_in.len(),
                rules.files.len(),
                built_in.len(),
                built_in.join(", ")
            );
        }
        return Ok(());
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    runtime.block_on(run(args, config, rules))
}

async fn run(args: Args, config: CollectorConfig, rules: RuleSet) -> anyhow::Result<()> {
    if args.dev && args.config.is_none() && !config.data_dir.exists() {
        tracing::info!(data_dir = %config.data_dir.display(), "creating data directory");
    }
    let collector = Collector::start(config.clone(), rules).await?;
    let agent = if args.dev {
        let scheme = if config.tls.is_some() { "https" } else { "http" };
        let mut agent_config =
            watchpost_agent::AgentConfig::local(&format!("{scheme}://{}", collector.grpc_addr()));
        agent_config.interval = std::time::Duration::from_secs(5);
        let core = collector.core();
        if core.config.security.agents_enrolled {
            // The local agent is enrolled by the collector itself.
            let hostname = watchpost_agent::os_hostname();
            agent_config.auth_token = core
                .access
                .issue_credential(&hostname, &hostname, 365 * 24 * 3600 * 1000, now_ms())
                .await?;
        }
        if core.config.security.api_users {
            let scheme = if config.tls.as_ref().is_some_and(|t| t.http) {
                "https"
            } else {
                "http"
            };
            reset_admin(
                &core.access,
                "admin",
                &format!("{scheme}://{}", collector.http_addr()),
            )
            .await?;
        }
        let agent = watchpost_agent::start(agent_config);
        tracing::info!(
            agent = %agent.id,
            "dev mode: local agent streaming every 5s; open the console at http://{0}/ (sign in as admin), or try `watchpostctl --server http://{0}` agents | series | faults",
            collector.http_addr()
        );
        Some(agent)
    } else {
        None
    };
    let mut hup = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup())
        .context("cannot watch SIGHUP")?;
    let stop = watchpost_agent::shutdown_signal();
    tokio::pin!(stop);
    loop {
        tokio::select! {
            _ = &mut stop => break,
            _ = hup.recv() => {
                match reload(&args, &config) {
                    Ok(rules) => {
                        if let Err(e) = collector.reload_rules(rules).await {
                            tracing::error!(error = %e, "rules reloaded but fault changes could not be recorded");
                        }
                    }
                    Err(e) => tracing::error!(error = %format!("{e:#}"), "rules NOT reloaded; the previous rules stay in force"),
                }
            }
        }
    }
    tracing::info!("shutting down");
    if let Some(agent) = agent {
        agent.stop().await;
    }
    collector.shutdown().await;
    Ok(())
}

fn reload(args: &Args, config: &CollectorConfig) -> anyhow::Result<RuleSet> {
    // Re-read the config file too, for its rule globs; listeners stay as they are.
    let fresh = match &args.config {
        Some(path) if Path::new(path).exists() => CollectorConfig::load(path)?,
        Some(path) => bail!("config {} is gone", path.display()),
        None => config.clone(),
    };
    load_rules(&fresh, args.dev)
}
