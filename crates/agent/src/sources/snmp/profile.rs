//! SNMP profiles: TOML files that declare further OIDs (vendor CPU, memory,
//! temperature, fan and power tables, ENTITY-SENSOR-MIB, UPS-MIB) and traps,
//! so that a new device type needs a file, not code. See
//! `examples/snmp-profiles/` for the shipped ones.
//!
//! ```toml
//! description = "Huawei VRP switches"
//!
//! [[metric]]
//! name = "snmp_cpu_usage_percent"
//! oid = "1.3.6.1.4.1.2011.5.25.31.1.1.1.1.5"  # a table column: walked
//! walk = true                   # one series per row; the row index is a label
//! index_label = "entity"        # (default "index")
//! lookup = { entity_name = "1.3.6.1.2.1.47.1.1.1.1.7" }  # labels from other columns, same index
//! when = { oid = "1.3.6.1.2.1.47.1.1.1.1.5", values = [9] } # keep rows whose column has one of these values
//! skip = [0]                    # values meaning "not present"
//! scale = 1.0                   # value * scale + offset
//! offset = 0.0
//! type = "gauge"                # or "counter": reported per second
//! map = { "1" = 0, "2" = 1 }    # enumeration → value
//! map_other = 0                 # value for other integers (default: the row is dropped)
//! precision_oid = "..."         # divide by 10^(that column's value) (ENTITY-SENSOR precision)
//! si_scale_oid = "..."          # times the SI prefix that column names (ENTITY-SENSOR scale)
//! labels = { part = "fan" }
//!
//! [[trap]]
//! oid = "1.3.6.1.2.1.33.2.0.1"  # upsTrapOnBattery
//! metric = "snmp_ups_on_battery"
//! value = 1
//! index_oid = "..."             # optional: a varbind under this OID gives the index label
//! ```

use std::collections::BTreeMap;
use std::path::Path;

use serde::Deserialize;
use watchpost_model::names;

use super::session::Oid;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawProfile {
    #[serde(default)]
    description: String,
    #[serde(default)]
    metric: Vec<RawMetric>,
    #[serde(default)]
    trap: Vec<RawTrap>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawMetric {
    name: String,
    oid: String,
    #[serde(default)]
    walk: bool,
    index_label: Option<String>,
    #[serde(default)]
    lookup: BTreeMap<String, String>,
    when: Option<RawWhen>,
    #[serde(default)]
    skip: Vec<f64>,
    scale: Option<f64>,
    offset: Option<f64>,
    #[serde(rename = "type", default)]
    kind: MetricKind,
    #[serde(default)]
    map: BTreeMap<String, f64>,
    map_other: Option<f64>,
    precision_oid: Option<String>,
    si_scale_oid: Option<String>,
    #[serde(default)]
    labels: BTreeMap<String, String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawWhen {
    oid: String,
    values: Vec<i64>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawTrap {
    oid: String,
    metric: String,
    value: f64,
    index_oid: Option<String>,
    index_label: Option<String>,
    #[serde(default)]
    labels: BTreeMap<String, String>,
}

/// Gauge or counter.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum MetricKind {
    /// Reported as read (after scale and map).
    #[default]
    Gauge,
    /// Reported per second; resets give no value rather than a spike.
    Counter,
}

/// A profile, checked.
#[derive(Debug, Clone)]
pub struct Profile {
    /// Its name (the file stem).
    pub name: String,
    /// What it is for.
    pub description: String,
    /// OIDs polled.
    pub metrics: Vec<ProfileMetric>,
    /// Traps recognised.
    pub traps: Vec<ProfileTrap>,
}

/// One polled metric.
#[derive(Debug, Clone)]
pub struct ProfileMetric {
    /// Series name.
    pub name: String,
    /// Scalar instance (GET) or table column (walk).
    pub oid: Oid,
    /// Whether `oid` is a column.
    pub walk: bool,
    /// Label for a row's index.
    pub index_label: String,
    /// Labels read from other columns at the same index.
    pub lookup: Vec<(String, Oid)>,
    /// Keep rows whose `when.0` column holds one of `when.1`.
    pub when: Option<(Oid, Vec<i64>)>,
    /// Raw values that mean "not present".
    pub skip: Vec<f64>,
    /// Multiplier.
    pub scale: f64,
    /// Added after scaling.
    pub offset: f64,
    /// Gauge or counter.
    pub kind: MetricKind,
    /// Enumeration mapping (raw integer → value); empty means none.
    pub map: BTreeMap<i64, f64>,
    /// Value for integers `map` does not list (default: the row is dropped).
    pub map_other: Option<f64>,
    /// ENTITY-SENSOR precision column.
    pub precision_oid: Option<Oid>,
    /// ENTITY-SENSOR SI-scale column.
    pub si_scale_oid: Option<Oid>,
    /// Fixed labels.
    pub labels: BTreeMap<String, String>,
}

/// A trap turned into a value.
#[derive(Debug, Clone)]
pub struct ProfileTrap {
    /// snmpTrapOID.
    pub oid: Oid,
    /// Series set.
    pub metric: String,
    /// Value set.
    pub value: f64,
    /// A varbind under this OID gives the row index.
    pub index_oid: Option<Oid>,
    /// Label for that index.
    pub index_label: String,
    /// Fixed labels.
    pub labels: BTreeMap<String, String>,
}

impl ProfileMetric {
    /// Turns a raw value into the reported one (before counter rates), or
    /// `None` when the row is to be dropped.
    pub fn convert(&self, raw: f64, precision: Option<f64>, si_scale: Option<f64>) -> Option<f64> {
        if self.skip.contains(&raw) {
            return None;
        }
        let mut v = if self.map.is_empty() {
            raw
        } else {
            match self.map.get(&(raw as i64)) {
                Some(v) => *v,
                None => self.map_other?,
            }
        };
        if let Some(p) = precision {
            v /= 10f64.powi(p as i32);
        }
        if let Some(s) = si_scale {
            // ENTITY-SENSOR-MIB SensorDataScale: yocto(1) .. units(9) .. yotta(17).
            v *= 10f64.powi(3 * (s as i32 - 9));
        }
        Some(v * self.scale + self.offset)
    }
}

fn oid(s: &str, what: &str) -> Result<Oid, String> {
    Oid::parse(s).map_err(|e| format!("{what}: {e}"))
}

fn check_labels(labels: &BTreeMap<String, String>, what: &str) -> Result<(), String> {
    for (k, v) in labels {
        names::check_label_name(k).map_err(|e| format!("{what}: {e}"))?;
        names::check_label_value(v).map_err(|e| format!("{what}: {e}"))?;
        if k == "device" || k == "host" {
            return Err(format!("{what}: label {k:?} is set by the agent"));
        }
    }
    Ok(())
}

impl Profile {
    /// Reads `dir/name.toml`; the error names the file and what is wrong.
    pub fn load(dir: &Path, name: &str) -> Result<Profile, String> {
        if name.is_empty() || name.contains(['/', '\\']) || name.starts_with('.') {
            return Err(format!(
                "profile name {name:?} must be a file name without a path"
            ));
        }
        let path = dir.join(format!("{name}.toml"));
        let text = std::fs::read_to_string(&path)
            .map_err(|e| format!("cannot read SNMP profile {}: {e}", path.display()))?;
        Profile::parse(name, &text).map_err(|e| format!("invalid SNMP profile {}: {e}", path.display()))
    }

    /// Checks profile text.
    pub fn parse(name: &str, text: &str) -> Result<Profile, String> {
        let raw: RawProfile = toml::from_str(text).map_err(|e| e.to_string().trim_end().to_string())?;
        let mut metrics = Vec::new();
        for (i, m) in raw.metric.into_iter().enumerate() {
            let what = format!("metric {} ({})", i + 1, m.name);
            names::check_metric_name(&m.name).map_err(|e| format!("{what}: {e}"))?;
            check_labels(&m.labels, &what)?;
            let index_label = m.index_label.unwrap_or_else(|| "index".to_string());
            names::check_label_name(&index_label).map_err(|e| format!("{what}: {e}"))?;
            let mut lookup = Vec::new();
            for (label, o) in &m.lookup {
                names::check_label_name(label).map_err(|e| format!("{what}: {e}"))?;
                lookup.push((label.clone(), oid(o, &format!("{what}: lookup {label}"))?));
            }
            let column_only = !m.lookup.is_empty()
                || m.when.is_some()
                || m.precision_oid.is_some()
                || m.si_scale_oid.is_some();
            if column_only && !m.walk {
                return Err(format!(
                    "{what}: `lookup`, `when`, `precision_oid` and `si_scale_oid` need `walk = true`"
                ));
            }
            let mut map = BTreeMap::new();
            for (k, v) in &m.map {
                let key = k
                    .trim()
                    .parse::<i64>()
                    .map_err(|_| format!("{what}: map key {k:?} is not an integer"))?;
                map.insert(key, *v);
            }
            let scale = m.scale.unwrap_or(1.0);
            if m.map_other.is_some() && map.is_empty() {
                return Err(format!("{what}: `map_other` needs `map`"));
            }
            if !scale.is_finite() || scale == 0.0 || !m.offset.unwrap_or(0.0).is_finite() {
                return Err(format!(
                    "{what}: `scale` must be finite and non-zero, `offset` finite"
                ));
            }
            metrics.push(ProfileMetric {
                oid: oid(&m.oid, &what)?,
                walk: m.walk,
                index_label,
                lookup,
                when: m
                    .when
                    .map(|w| Ok::<_, String>((oid(&w.oid, &format!("{what}: when"))?, w.values)))
                    .transpose()?,
                skip: m.skip,
                scale,
                offset: m.offset.unwrap_or(0.0),
                kind: m.kind,
                map,
                map_other: m.map_other,
                precision_oid: m.precision_oid.map(|o| oid(&o, &what)).transpose()?,
                si_scale_oid: m.si_scale_oid.map(|o| oid(&o, &what)).transpose()?,
                labels: m.labels,
                name: m.name,
            });
        }
        let mut traps = Vec::new();
        for (i, t) in raw.trap.into_iter().enumerate() {
            let what = format!("trap {} ({})", i + 1, t.metric);
            names::check_metric_name(&t.metric).map_err(|e| format!("{what}: {e}"))?;
            check_labels(&t.labels, &what)?;
            let index_label = t.index_label.unwrap_or_else(|| "index".to_string());
            names::check_label_name(&index_label).map_err(|e| format!("{what}: {e}"))?;
            if !t.value.is_finite() {
                return Err(format!("{what}: `value` must be finite"));
            }
            traps.push(ProfileTrap {
                oid: oid(&t.oid, &what)?,
                metric: t.metric,
                value: t.value,
                index_oid: t.index_oid.map(|o| oid(&o, &what)).transpose()?,
                index_label,
                labels: t.labels,
            });
        }
        Ok(Profile {
            name: name.to_string(),
            description: raw.description,
            metrics,
            traps,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn converts_with_map_scale_and_sensor_precision() {
        let p = Profile::parse(
            "t",
            r#"
[[metric]]
name = "snmp_fan_ok"
oid = "1.3.6.1.4.1.9.9.13.1.4.1.3"
walk = true
map = { "1" = 1, "2" = 0, "3" = 0 }

[[metric]]
name = "snmp_sensor_value"
oid = "1.3.6.1.2.1.99.1.1.1.4"
walk = true
precision_oid = "1.3.6.1.2.1.99.1.1.1.3"
si_scale_oid = "1.3.6.1.2.1.99.1.1.1.2"
skip = [-1]
"#,
        )
        .expect("valid");
        let fan = &p.metrics[0];
        assert_eq!(fan.convert(1.0, None, None), Some(1.0));
        assert_eq!(fan.convert(3.0, None, None), Some(0.0));
        assert_eq!(fan.convert(5.0, None, None), None, "unmapped values are dropped");
        let s = &p.metrics[1];
        // 235 with precision 1 in units = 23.5; 2350 milli with precision 0 = 2.35.
        assert_eq!(s.convert(235.0, Some(1.0), Some(9.0)), Some(23.5));
        assert!((s.convert(2350.0, Some(0.0), Some(8.0)).expect("kept") - 2.35).abs() < 1e-9);
        assert_eq!(s.convert(-1.0, None, None), None);
    }

    #[test]
    fn errors_name_the_entry() {
        let e = |t: &str| Profile::parse("t", t).expect_err("invalid");
        assert!(e("[[metric]]\nname = \"x\"\noid = \"cpu\"\n").contains("metric 1 (x)"));
        assert!(e("[[metric]]\nname = \"1x\"\noid = \"1.3.6\"\n").contains("metric 1"));
        assert!(
            e("[[metric]]\nname = \"x\"\noid = \"1.3.6\"\nlookup = { n = \"1.3.6.2\" }\n")
                .contains("walk = true")
        );
        assert!(
            e("[[metric]]\nname = \"x\"\noid = \"1.3.6\"\nmap = { up = 1 }\n").contains("not an integer")
        );
        assert!(
            e("[[metric]]\nname = \"x\"\noid = \"1.3.6\"\nlabels = { device = \"a\" }\n")
                .contains("set by the agent")
        );
        assert!(e("[[trap]]\noid = \"1.3.6\"\nmetric = \"x\"\n").contains("value"));
        assert!(e("[[metrics]]\n").contains("metrics"));
    }
}
