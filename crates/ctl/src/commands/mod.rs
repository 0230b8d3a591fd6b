//! One module per command group; [`run`] hands each command to its group.

mod access;
mod agents;
mod backup;
mod changes;
mod deadline;
mod drills;
mod faults;
mod inspections;
mod inventory;
mod maintenance;
mod metrics;
mod notify;
mod reports;

use crate::args::{Args, Cmd};
use crate::client::Client;

/// Runs the command `args` name against the collector.
pub async fn run(args: Args) -> anyhow::Result<()> {
    let client = Client::from_args(&args)?;
    let json = args.json;
    if !json && !args.utc && !matches!(args.command, Cmd::Deadline { .. }) {
        // Times as people read clocks there: the collector's calendar zone.
        if let Ok(h) = client.get::<watchpost_model::api::Health>("/healthz", &[]).await
            && let Some(zone) = h.time_zone.and_then(|z| jiff::tz::TimeZone::get(&z).ok())
        {
            crate::format::show_times_in(zone);
        }
    }
    match args.command {
        Cmd::Whoami => access::whoami(&client, json).await,
        Cmd::Users { command } => access::users(&client, json, command).await,
        Cmd::Tokens { command } => access::tokens(&client, json, command).await,
        Cmd::Audit { actor, limit } => access::audit(&client, json, actor, limit).await,
        Cmd::Agents { command } => agents::run(&client, json, command).await,
        Cmd::Series { metric, matchers } => metrics::series(&client, json, metric, matchers).await,
        Cmd::Query {
            metric,
            since,
            until,
            step,
            matchers,
        } => metrics::query(&client, json, metric, (since, until), step, matchers).await,
        Cmd::Maintenance { command } => maintenance::run(&client, json, args.by, command).await,
        Cmd::Changes { command } => changes::run(&client, json, args.by, command).await,
        Cmd::Inventory {
            command,
            csv,
            kind,
            host,
            removed,
        } => {
            let filter = inventory::Filter { kind, host, removed };
            inventory::run(&client, json, args.by, command, csv, filter).await
        }
        Cmd::Report { command } => reports::run(&client, json, command).await,
        Cmd::Drill { command } => drills::run(&client, json, args.by, command).await,
        Cmd::Backup { command } => backup::run(&client, json, command).await,
        Cmd::Inspections { command } => inspections::run(&client, json, args.by, command).await,
        Cmd::Notifications { fault, status, limit } => {
            notify::notifications(&client, json, fault, status, limit).await
        }
        Cmd::Oncall { at } => notify::oncall(&client, json, at).await,
        Cmd::Deadline {
            severity,
            opened_at,
            calendar,
            config,
        } => deadline::run(&client, json, severity, opened_at, calendar, config).await,
        Cmd::Faults {
            show,
            status,
            severity,
            host,
            source,
            limit,
        } => {
            let filter = faults::Filter {
                status,
                severity,
                host,
                source,
                limit,
            };
            faults::run(&client, json, args.by, show, filter).await
        }
    }
}
