//! The trap listener: linkDown/linkUp set the interface's status at once,
//! coldStart/warmStart mark the device rebooted, and profile-declared traps
//! set their metric. A trap from an address that is not a configured
//! device is recorded under `device = "<source address>"`; traps whose
//! community is not listed in `trap_communities` are dropped by the
//! receiver. The effect is published at once, so the collector's rules see
//! it without waiting for the next poll.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use super::session::{AsyncSnmpTraps, Oid, TrapReceiver, Value};
use super::{Shared, SnmpConfig, interfaces, now_ms, with};
use crate::series::{Measured, Published};

const COLD_START: [u32; 10] = [1, 3, 6, 1, 6, 3, 1, 1, 5, 1];
const WARM_START: [u32; 10] = [1, 3, 6, 1, 6, 3, 1, 1, 5, 2];
const LINK_DOWN: [u32; 10] = [1, 3, 6, 1, 6, 3, 1, 1, 5, 3];
const LINK_UP: [u32; 10] = [1, 3, 6, 1, 6, 3, 1, 1, 5, 4];
const IF_INDEX: [u32; 10] = [1, 3, 6, 1, 2, 1, 2, 2, 1, 1];
const IF_ADMIN: [u32; 10] = [1, 3, 6, 1, 2, 1, 2, 2, 1, 7];
const IF_OPER: [u32; 10] = [1, 3, 6, 1, 2, 1, 2, 2, 1, 8];

pub(super) async fn listen(
    listen: String,
    config: SnmpConfig,
    shared: Shared,
    out: Published,
    stop: Arc<AtomicBool>,
) {
    let receiver = match AsyncSnmpTraps::bind(&listen, &config.trap_communities).await {
        Ok(r) => r,
        Err(e) => {
            tracing::error!(address = %listen, error = %e, "cannot listen for SNMP traps");
            return;
        }
    };
    tracing::info!(address = %receiver.local_addr(), "listening for SNMP traps");
    // Source address → device name.
    let mut by_ip: HashMap<IpAddr, String> = HashMap::new();
    for d in &config.devices {
        if let Ok(mut addrs) = tokio::net::lookup_host(d.session.address.as_str()).await {
            for a in addrs.by_ref() {
                by_ip.entry(a.ip()).or_insert_with(|| d.name.clone());
            }
        }
    }
    let mut handler = TrapHandler {
        config,
        shared,
        by_ip,
    };
    while !stop.load(Ordering::Relaxed) {
        let trap = match tokio::time::timeout(Duration::from_secs(1), receiver.recv()).await {
            Err(_) | Ok(Ok(None)) => continue,
            Ok(Err(e)) => {
                tracing::debug!(error = %e, "SNMP trap dropped");
                continue;
            }
            Ok(Ok(Some(t))) => t,
        };
        let measured = handler.handle(trap.source.ip(), &trap.oid, &trap.bindings, now_ms());
        if !measured.is_empty() {
            out.publish(measured);
        }
    }
}

/// Turns traps into values.
pub struct TrapHandler {
    config: SnmpConfig,
    shared: Shared,
    by_ip: HashMap<IpAddr, String>,
}

impl TrapHandler {
    /// What one trap sets.
    pub fn handle(
        &mut self,
        source: IpAddr,
        trap: &Oid,
        bindings: &[(Oid, Value)],
        at_ms: i64,
    ) -> Vec<Measured> {
        let device = self.by_ip.get(&source).cloned();
        let state = device.as_ref().and_then(|d| self.shared.get(d).cloned());
        let device_labels = match &state {
            Some(s) => s.lock().unwrap_or_else(|p| p.into_inner()).labels.clone(),
            None => vec![("device".to_string(), source.to_string())],
        };
        let m = |metric: &str, more: &[(String, String)], value: f64| Measured {
            metric: metric.to_string().into(),
            labels: with(&device_labels, more).into(),
            value,
            at_ms,
            text: None,
        };
        let find = |prefix: &[u32]| {
            let prefix = Oid(prefix.to_vec());
            bindings
                .iter()
                .find_map(|(o, v)| o.suffix_after(&prefix).map(|sfx| (sfx.to_vec(), v.clone())))
        };
        let mut out = Vec::new();
        if trap.0 == LINK_DOWN || trap.0 == LINK_UP {
            let up = trap.0 == LINK_UP;
            let index = find(&IF_INDEX)
                .and_then(|(_, v)| v.as_f64())
                .or_else(|| find(&IF_OPER).and_then(|(sfx, _)| sfx.first().map(|i| f64::from(*i))))
                .map(|i| i as u32);
            let Some(index) = index else {
                tracing::debug!(%source, "link trap without ifIndex");
                return out;
            };
            let oper = find(&IF_OPER)
                .and_then(|(_, v)| v.as_f64())
                .unwrap_or(if up { 1.0 } else { 2.0 });
            let known = state.as_ref().and_then(|s| {
                s.lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .interfaces
                    .get(&index)
                    .cloned()
            });
            let admin = find(&IF_ADMIN)
                .and_then(|(_, v)| v.as_f64())
                .map(|a| a as i64)
                .or(known.as_ref().map(|k| k.admin))
                .unwrap_or(1);
            let labels = known
                .map(|k| k.labels)
                .unwrap_or_else(|| vec![("ifIndex".to_string(), index.to_string())]);
            if let Some(s) = &state
                && let Some(k) = s
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .interfaces
                    .get_mut(&index)
            {
                k.admin = admin;
            }
            out.push(m("snmp_if_oper_status", &labels, oper));
            out.push(m("snmp_if_admin_status", &labels, admin as f64));
            out.push(m(
                "snmp_if_link_down",
                &labels,
                interfaces::link_down(admin, oper as i64),
            ));
        } else if trap.0 == COLD_START || trap.0 == WARM_START {
            if let Some(s) = &state {
                s.lock().unwrap_or_else(|p| p.into_inner()).rebooted_at_ms = Some(at_ms);
            }
            out.push(m("snmp_device_rebooted", &[], 1.0));
        }
        // Profile traps: the device's profiles, or every profile for an unknown source.
        let profiles: Vec<_> = match &device {
            Some(d) => self
                .config
                .devices
                .iter()
                .find(|x| &x.name == d)
                .map(|x| {
                    x.profiles
                        .iter()
                        .filter_map(|p| self.config.profiles.get(p))
                        .collect()
                })
                .unwrap_or_default(),
            None => self.config.profiles.values().collect(),
        };
        for p in profiles {
            for t in p.traps.iter().filter(|t| &t.oid == trap) {
                let mut labels: Vec<(String, String)> = t.labels.clone().into_iter().collect();
                if let Some(prefix) = &t.index_oid
                    && let Some((sfx, _)) = find(&prefix.0)
                {
                    let index = sfx.iter().map(u32::to_string).collect::<Vec<_>>().join(".");
                    labels.push((t.index_label.clone(), index));
                }
                out.push(m(&t.metric, &labels, t.value));
            }
        }
        if out.is_empty() {
            tracing::debug!(%source, trap = %trap, "SNMP trap not recognised");
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Mutex;

    #[test]
    fn link_traps_use_the_polled_labels_and_profile_traps_set_their_metric() {
        let profile = super::super::Profile::parse(
            "ups",
            "[[trap]]\noid = \"1.3.6.1.2.1.33.2.0.1\"\nmetric = \"snmp_ups_on_battery\"\nvalue = 1\n",
        )
        .expect("valid");
        let mut config = SnmpConfig::default();
        config.profiles.insert("ups".into(), Arc::new(profile));
        let mut shared_state = super::super::DeviceShared {
            labels: vec![("device".into(), "sw1".into())],
            ..Default::default()
        };
        shared_state.interfaces.insert(
            7,
            interfaces::KnownInterface {
                labels: vec![
                    ("ifIndex".into(), "7".into()),
                    ("ifName".into(), "GE0/0/7".into()),
                ],
                admin: 1,
            },
        );
        let shared: Shared = Arc::new(HashMap::from([(
            "sw1".to_string(),
            Arc::new(Mutex::new(shared_state)),
        )]));
        let ip: IpAddr = "127.0.0.1".parse().expect("ip");
        let mut h = TrapHandler {
            config,
            shared,
            by_ip: HashMap::from([(ip, "sw1".to_string())]),
        };
        let down = h.handle(
            ip,
            &Oid(LINK_DOWN.to_vec()),
            &[
                (Oid([&IF_INDEX[..], &[7]].concat()), Value::Int(7)),
                (Oid([&IF_OPER[..], &[7]].concat()), Value::Int(2)),
            ],
            1,
        );
        let link = down
            .iter()
            .find(|m| m.metric == "snmp_if_link_down")
            .expect("link_down");
        assert_eq!(link.value, 1.0);
        assert!(
            link.labels
                .contains(&("ifName".to_string(), "GE0/0/7".to_string()))
        );
        assert!(link.labels.contains(&("device".to_string(), "sw1".to_string())));
        let other: IpAddr = "127.0.0.9".parse().expect("ip");
        let ups = h.handle(other, &Oid::parse("1.3.6.1.2.1.33.2.0.1").expect("oid"), &[], 2);
        assert_eq!(ups.len(), 1);
        assert_eq!(ups[0].metric, "snmp_ups_on_battery");
        assert!(
            ups[0]
                .labels
                .contains(&("device".to_string(), "127.0.0.9".to_string()))
        );
        let cold = h.handle(ip, &Oid(COLD_START.to_vec()), &[], 3);
        assert_eq!(cold[0].metric, "snmp_device_rebooted");
    }
}
