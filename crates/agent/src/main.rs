//! `watchpost-agent --config agent.toml`: collects this host's metrics and
//! streams them to a collector. SIGHUP re-reads the config: a valid one
//! replaces the running agent (stopped cleanly, its spool kept on disk),
//! an invalid one is logged and the agent goes on as it was.

use std::path::PathBuf;
use watchpost_agent::sources::snmp::session;

use anyhow::Context;
use clap::Parser;

/// Watchpost agent: streams this host's metrics to a collector.
#[derive(Parser)]
#[command(version)]
struct Args {
    /// Agent config (TOML).
    #[arg(long, short, env = "WATCHPOST_AGENT_CONFIG")]
    config: PathBuf,
    /// Check the config and exit.
    #[arg(long)]
    check: bool,
    /// Collect once from every source (host, probes, SNMP and Modbus
    /// devices), print the samples and exit; no collector is contacted.
    #[arg(long, conflicts_with = "check")]
    once: bool,
    /// With --once: the longest to wait for devices and probes to answer.
    #[arg(long, default_value = "30s", value_parser = parse_duration)]
    once_wait: std::time::Duration,
}

fn parse_duration(s: &str) -> Result<std::time::Duration, String> {
    watchpost_model::parse_duration(s).map_err(|e| e.to_string())
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        // Colour codes only for a person at a terminal, not in a file or a pipe.
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                // The SNMP library logs every device timeout as an error;
                // the agent reports devices going down and up itself.
                .unwrap_or_else(|_| {
                    tracing_subscriber::EnvFilter::new(format!("info,{}", session::LIBRARY_LOG_OFF))
                }),
        )
        .init();
    let config = watchpost_agent::AgentConfig::load(&args.config)?;
    if args.check {
        tracing::info!(config = %args.config.display(), "config is valid");
        return Ok(());
    }
    if args.once {
        use std::io::Write;
        let mut out = std::io::stdout().lock();
        for line in watchpost_agent::collect_once(config, args.once_wait) {
            writeln!(out, "{line}")?;
        }
        return Ok(());
    }
    // One thread: the agent's work is small and its footprint matters.
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    runtime.block_on(async {
        let mut hup = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup())
            .context("cannot watch SIGHUP")?;
        let mut config = config;
        loop {
            // A spool that cannot be opened (held by another agent,
            // unwritable) stops the agent here, naming the directory.
            let spool = watchpost_agent::spool::Spool::open(&config.spool)?;
            let agent = watchpost_agent::start_with(config, spool);
            tracing::info!(id = %agent.id, hostname = %agent.hostname, "agent started");
            let next = loop {
                tokio::select! {
                    _ = watchpost_agent::shutdown_signal() => break None,
                    _ = hup.recv() => match watchpost_agent::AgentConfig::load(&args.config) {
                        Ok(c) => break Some(c),
                        Err(e) => tracing::error!(config = %args.config.display(), error = %e,
                            "SIGHUP: the config is not valid; the agent goes on with the one it has"),
                    },
                }
            };
            match next {
                None => {
                    tracing::info!("stopping");
                    agent.stop().await;
                    return Ok(());
                }
                Some(c) => {
                    tracing::info!(config = %args.config.display(), "SIGHUP: restarting with the new config");
                    agent.stop().await;
                    config = c;
                }
            }
        }
    })
}
