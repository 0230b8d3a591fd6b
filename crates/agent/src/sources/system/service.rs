//! `[service]`: systemd units, read with one `systemctl show` per round
//! for all of them: whether each is active, failed, and how often systemd
//! has restarted it.
//!
//! `systemctl` rather than D-Bus: one short command every interval costs
//! a few milliseconds, where a D-Bus client would be a dependency and a
//! connection kept open for the same three properties.

use std::time::Duration;

use serde::Deserialize;
use watchpost_model::HumanDuration;

use super::{Job, Once, labels_of, push, run_tool};
use crate::series::{Measured, SharedLabels};

/// `[service]` as written.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawService {
    #[serde(default)]
    systemd: Vec<String>,
    interval: Option<HumanDuration>,
    systemctl: Option<String>,
    #[serde(default)]
    labels: std::collections::BTreeMap<String, String>,
}

/// The watched units, checked.
#[derive(Debug, Clone)]
pub struct ServiceWatch {
    /// Unit names (`nginx.service`) and their labels.
    units: Vec<(String, SharedLabels)>,
    /// Default: the agent's.
    pub interval: Option<Duration>,
    /// The `systemctl` program (default: found on PATH).
    pub systemctl: String,
}

pub(super) fn check(raw: RawService) -> Result<ServiceWatch, String> {
    if raw.systemd.is_empty() {
        return Err("[service]: `systemd` lists no units, e.g. systemd = [\"nginx.service\"]".to_string());
    }
    let mut units = Vec::new();
    for (i, unit) in raw.systemd.into_iter().enumerate() {
        let what = format!("[service] systemd[{}]", i + 1);
        if unit.is_empty() || unit.starts_with('-') || unit.chars().any(char::is_whitespace) {
            return Err(format!("{what}: {unit:?} is not a unit name"));
        }
        // `nginx` means `nginx.service`, as systemctl reads it.
        let unit = if unit.contains('.') {
            unit
        } else {
            format!("{unit}.service")
        };
        if units.iter().any(|(u, _)| *u == unit) {
            return Err(format!("{what}: {unit:?} is listed twice"));
        }
        let labels = labels_of(&what, "service", &unit, raw.labels.clone())?;
        units.push((unit, labels));
    }
    let interval = raw.interval.map(|i| i.0);
    if interval.is_some_and(|i| i < Duration::from_secs(1)) {
        return Err("[service]: interval must be at least 1s".to_string());
    }
    Ok(ServiceWatch {
        units,
        interval,
        systemctl: raw.systemctl.unwrap_or_else(|| "systemctl".to_string()),
    })
}

/// What systemd says of one unit.
#[derive(Debug, Default, PartialEq)]
struct UnitState {
    id: String,
    load: String,
    active: String,
    restarts: Option<f64>,
}

/// Parses `systemctl show` of several units: one block of `Key=value`
/// lines per unit, in the order asked, separated by blank lines.
fn parse_show(text: &str) -> Vec<UnitState> {
    let mut units = Vec::new();
    let mut current: Option<UnitState> = None;
    for line in text.lines() {
        if line.trim().is_empty() {
            units.extend(current.take());
            continue;
        }
        let Some((key, value)) = line.split_once('=') else {
            continue;
        };
        let u = current.get_or_insert_with(UnitState::default);
        match key {
            "Id" => u.id = value.to_string(),
            "LoadState" => u.load = value.to_string(),
            "ActiveState" => u.active = value.to_string(),
            "NRestarts" => u.restarts = value.parse().ok(),
            _ => {}
        }
    }
    units.extend(current);
    units
}

/// The `[service]` job.
pub(super) struct Services {
    watch: ServiceWatch,
    warned: Once,
}

impl Services {
    pub(super) fn new(watch: ServiceWatch) -> Services {
        Services {
            watch,
            warned: Once::default(),
        }
    }
}

impl Job for Services {
    fn run(&mut self, at_ms: i64, out: &mut Vec<Measured>) {
        let mut args = vec!["show", "--property=Id,LoadState,ActiveState,NRestarts", "--"];
        args.extend(self.watch.units.iter().map(|(u, _)| u.as_str()));
        let shown = run_tool(&self.watch.systemctl, &args, Duration::from_secs(5)).and_then(|(code, text)| {
            let units = parse_show(&text);
            if units.len() == self.watch.units.len() {
                Ok(units)
            } else {
                Err(format!(
                    "systemctl show answered for {} of {} units (exit code {code}; is systemd running on this host?)",
                    units.len(),
                    self.watch.units.len()
                ))
            }
        });
        let units = match shown {
            Ok(units) => {
                self.warned.clear("systemctl");
                units
            }
            Err(e) => {
                if self.warned.first("systemctl") {
                    tracing::warn!(error = %e, "cannot read the services' states; service_* series are left out");
                }
                return;
            }
        };
        for ((name, labels), state) in self.watch.units.iter().zip(units) {
            if state.load == "not-found" {
                if self.warned.first(name) {
                    tracing::warn!(service = %name, "systemd has no such unit; service_active is 0");
                }
            } else {
                self.warned.clear(name);
            }
            // `reloading` is a running service re-reading its config.
            let active = matches!(state.active.as_str(), "active" | "reloading");
            push(out, "service_active", labels, f64::from(u8::from(active)), at_ms);
            push(
                out,
                "service_failed",
                labels,
                f64::from(u8::from(state.active == "failed")),
                at_ms,
            );
            if let Some(n) = state.restarts {
                push(out, "service_restarts", labels, n, at_ms);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_each_units_block_in_order() {
        // As systemd 252 prints it (properties in its own order).
        let text = "NRestarts=0\nId=nginx.service\nLoadState=loaded\nActiveState=active\n\nNRestarts=4\nId=orders.service\nLoadState=loaded\nActiveState=failed\n\nId=nope.service\nLoadState=not-found\nActiveState=inactive\n";
        let u = parse_show(text);
        assert_eq!(u.len(), 3);
        assert_eq!(
            u[1],
            UnitState {
                id: "orders.service".into(),
                load: "loaded".into(),
                active: "failed".into(),
                restarts: Some(4.0),
            }
        );
        assert_eq!(u[2].load, "not-found");
        assert_eq!(u[2].restarts, None);
    }

    #[test]
    fn unit_names_are_checked() {
        let c = |t: &str| {
            let raw: RawService = toml::from_str(t).map_err(|e| e.to_string())?;
            check(raw)
        };
        assert_eq!(
            c("systemd = [\"nginx\", \"backup.timer\"]\n").map(|w| w
                .units
                .iter()
                .map(|u| u.0.clone())
                .collect::<Vec<_>>()),
            Ok(vec!["nginx.service".to_string(), "backup.timer".to_string()])
        );
        assert!(c("systemd = []\n").expect_err("empty").contains("lists no units"));
        assert!(
            c("systemd = [\"--all\"]\n")
                .expect_err("flag")
                .contains("systemd[1]")
        );
        assert!(
            c("systemd = [\"a\", \"a.service\"]\n")
                .expect_err("twice")
                .contains("twice")
        );
    }
}
