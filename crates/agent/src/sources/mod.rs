//! Where samples come from.
//!
//! Two kinds of source: those read on the collection thread each round
//! (`host`, `textfile`), and those that run on their own threads with their
//! own runtimes and schedules and publish what they measured, with its
//! time, into [`Published`] (`probe`, `snmp`, `modbus`, `apps`, `system`). [`Sources`] starts
//! what a config asks for, the same way for the streaming agent and for
//! `--once`. Sources never talk to the collector; the link does.

pub mod apps;
pub mod host;
pub mod modbus;
pub mod probe;
pub mod snmp;
pub mod system;
pub mod textfile;
pub mod x509;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use crate::config::AgentConfig;
use crate::series::{Published, Round, SeriesRegistry};

/// How the sources run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// The streaming agent: probes every agent interval, traps received.
    Stream,
    /// `--once`: probes once within `wait`, no trap listener.
    Once {
        /// How long the check may take.
        wait: Duration,
    },
}

/// The started sources of one config.
pub struct Sources {
    /// The host collector, if enabled.
    pub host: Option<host::HostCollector>,
    /// The textfile directory, if configured.
    pub textfile: Option<textfile::TextfileSource>,
    /// The probes, if any (they publish; this tells when a first round is in).
    pub probes: Option<probe::ProbeSource>,
    /// The host's equipment-list entry, read on its own schedule.
    inventory: Option<(crate::inventory::HostInventory, Published)>,
    stop: Arc<AtomicBool>,
}

impl Sources {
    /// Starts every source `config` declares; the threaded ones publish into `out`.
    pub fn start(
        config: &AgentConfig,
        registry: &mut SeriesRegistry,
        out: &Published,
        mode: Mode,
    ) -> Sources {
        let stop = Arc::new(AtomicBool::new(false));
        let host = config
            .host
            .enabled
            .then(|| host::HostCollector::new(config.host.clone(), registry));
        let textfile = config.textfile_dir.as_deref().map(textfile::TextfileSource::new);
        let probe_interval = match mode {
            Mode::Stream => config.interval,
            Mode::Once { wait } => wait,
        };
        let probes = (!config.probes.is_empty())
            .then(|| probe::ProbeSource::start(config.probes.clone(), probe_interval, out.clone()));
        let mut snmp = config.snmp.clone();
        if matches!(mode, Mode::Once { .. }) {
            snmp.trap_listen = None;
        }
        if !snmp.is_empty() {
            snmp::start(snmp, out.clone(), stop.clone());
        }
        if !config.modbus.devices.is_empty() {
            modbus::start(config.modbus.clone(), out.clone(), stop.clone());
        }
        apps::start(config.apps.clone(), out.clone(), stop.clone());
        system::start(config.system.clone(), out.clone(), stop.clone());
        let inventory = (config.inventory.enabled && mode == Mode::Stream).then(|| {
            let hostname = config.hostname.clone().unwrap_or_else(crate::os_hostname);
            (
                crate::inventory::HostInventory::new(config.inventory.clone(), hostname),
                out.clone(),
            )
        });
        Sources {
            host,
            textfile,
            probes,
            inventory,
            stop,
        }
    }

    /// Reads the collection-thread sources (host, textfile) into `round`.
    pub fn collect(&mut self, registry: &mut SeriesRegistry, round: &mut Round) {
        if let Some(h) = self.host.as_mut() {
            h.collect(registry, round);
        }
        if let Some(t) = self.textfile.as_mut() {
            t.collect(registry, round);
        }
        if let Some((inventory, out)) = self.inventory.as_mut() {
            inventory.tick(out.inventory());
        }
    }
}

/// A password given inline or through an environment variable (`*_env`),
/// read at load; `what` names the config entry in the error.
pub(crate) fn secret(
    value: Option<String>,
    env: Option<String>,
    what: &str,
) -> Result<Option<String>, String> {
    match (value, env) {
        (Some(_), Some(_)) => Err(format!(
            "{what}: give the password or its `_env` variable, not both"
        )),
        (Some(v), None) => Ok(Some(v)),
        (None, Some(var)) => std::env::var(&var)
            .map(Some)
            .map_err(|_| format!("{what}: environment variable {var} is not set")),
        (None, None) => Ok(None),
    }
}

impl Drop for Sources {
    /// The collection thread ended: the source threads stop too.
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}
