//! The interface tables (IF-MIB ifTable and ifXTable): which columns are
//! walked and how counters become rates.
//!
//! 64-bit HC counters are used where the device has them, 32-bit ones
//! otherwise. A 32-bit counter that went down is taken as a wrap when the
//! wrapped delta is plausible for the interface's speed, and as a reset
//! otherwise; a 64-bit counter that went down, a changed
//! `ifCounterDiscontinuityTime`, a switch between 32- and 64-bit counters
//! and a device reboot all give no rate for that round instead of a spike.

use std::collections::{BTreeMap, HashMap};

use super::session::{Oid, Value};

/// ifTable entry.
pub const IF_TABLE: [u32; 10] = [1, 3, 6, 1, 2, 1, 2, 2, 1, 0];
/// ifXTable entry.
pub const IFX_TABLE: [u32; 11] = [1, 3, 6, 1, 2, 1, 31, 1, 1, 1, 0];

/// A column of one of the two tables.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Col {
    /// ifTable column.
    If(u32),
    /// ifXTable column.
    IfX(u32),
}

impl Col {
    /// The column's OID.
    pub fn oid(self) -> Oid {
        match self {
            Col::If(c) => Oid(IF_TABLE[..9].to_vec()).child(&[c]),
            Col::IfX(c) => Oid(IFX_TABLE[..10].to_vec()).child(&[c]),
        }
    }
}

// ifTable
const DESCR: Col = Col::If(2);
const SPEED: Col = Col::If(5);
const ADMIN: Col = Col::If(7);
const OPER: Col = Col::If(8);
const IN_OCTETS: Col = Col::If(10);
const IN_UCAST: Col = Col::If(11);
const IN_DISCARDS: Col = Col::If(13);
const IN_ERRORS: Col = Col::If(14);
const OUT_OCTETS: Col = Col::If(16);
const OUT_UCAST: Col = Col::If(17);
const OUT_DISCARDS: Col = Col::If(19);
const OUT_ERRORS: Col = Col::If(20);
// ifXTable
const NAME: Col = Col::IfX(1);
const IN_MCAST: Col = Col::IfX(2);
const IN_BCAST: Col = Col::IfX(3);
const OUT_MCAST: Col = Col::IfX(4);
const OUT_BCAST: Col = Col::IfX(5);
const HC_IN_OCTETS: Col = Col::IfX(6);
const HC_IN_UCAST: Col = Col::IfX(7);
const HC_IN_MCAST: Col = Col::IfX(8);
const HC_IN_BCAST: Col = Col::IfX(9);
const HC_OUT_OCTETS: Col = Col::IfX(10);
const HC_OUT_UCAST: Col = Col::IfX(11);
const HC_OUT_MCAST: Col = Col::IfX(12);
const HC_OUT_BCAST: Col = Col::IfX(13);
const HIGH_SPEED: Col = Col::IfX(15);
const ALIAS: Col = Col::IfX(18);
const DISCONTINUITY: Col = Col::IfX(19);

/// Columns always walked.
pub const ALWAYS: &[Col] = &[
    DESCR,
    SPEED,
    ADMIN,
    OPER,
    IN_DISCARDS,
    IN_ERRORS,
    OUT_DISCARDS,
    OUT_ERRORS,
    NAME,
    HC_IN_OCTETS,
    HC_IN_UCAST,
    HC_IN_MCAST,
    HC_IN_BCAST,
    HC_OUT_OCTETS,
    HC_OUT_UCAST,
    HC_OUT_MCAST,
    HC_OUT_BCAST,
    HIGH_SPEED,
    ALIAS,
    DISCONTINUITY,
];

/// 32-bit columns, walked only when some interface lacks HC counters.
pub const LEGACY: &[Col] = &[
    IN_OCTETS, IN_UCAST, OUT_OCTETS, OUT_UCAST, IN_MCAST, IN_BCAST, OUT_MCAST, OUT_BCAST,
];

/// Walked columns: column → ifIndex → value.
pub type Columns = HashMap<Col, BTreeMap<u32, Value>>;

/// When each column's walk began (seconds on the poller's clock): rates use
/// the time their own column was read, so a slow walk of other columns in
/// between does not skew them.
pub type ColumnTimes = HashMap<Col, f64>;

/// What the trap handler needs to know about an interface.
#[derive(Debug, Clone, Default)]
pub struct KnownInterface {
    /// Its series labels (ifIndex, ifName, ifAlias).
    pub labels: Vec<(String, String)>,
    /// ifAdminStatus.
    pub admin: i64,
}

/// Counter state of one device's interfaces.
#[derive(Debug, Default)]
pub struct InterfaceState {
    /// (ifIndex, counter) → (value, 64-bit, when in seconds).
    last: HashMap<(u32, &'static str), (u64, bool, f64)>,
    discontinuity: HashMap<u32, u64>,
    /// Each interface's labels as the last poll made them, reused while
    /// its name, alias and the device's labels stay the same: a poll of a
    /// 1,000-interface switch then builds no label strings.
    labels: HashMap<u32, CachedLabels>,
    /// The device's labels those were made with (one state per device).
    device_labels: Vec<(String, String)>,
}

#[derive(Debug)]
struct CachedLabels {
    /// The interface's own labels, sorted.
    own: Vec<(String, String)>,
    /// Those with the device's labels, as every series of it carries them.
    all: std::sync::Arc<[(String, String)]>,
}

/// One computed value: metric, labels (device's and interface's), value.
pub type Out = (&'static str, std::sync::Arc<[(String, String)]>, f64);

impl InterfaceState {
    /// Forgets every counter (the device rebooted).
    pub fn reset(&mut self) {
        self.last.clear();
    }

    /// Whether some interface has no HC octet counter, so the 32-bit
    /// columns must be walked too.
    pub fn needs_legacy(cols: &Columns) -> bool {
        let hc = cols.get(&HC_IN_OCTETS).map_or(0, BTreeMap::len);
        let all = cols.get(&OPER).map_or(0, BTreeMap::len);
        hc < all
    }

    /// Turns walked columns into values, and tells the interfaces it saw.
    /// `at_s` is the time of columns missing from `times` (seconds, any
    /// monotonic base); `device_labels` go on every series.
    pub fn process(
        &mut self,
        cols: &Columns,
        times: &ColumnTimes,
        at_s: f64,
        device_labels: &[(String, String)],
    ) -> (Vec<Out>, BTreeMap<u32, KnownInterface>) {
        let get = |c: Col, i: u32| {
            cols.get(&c)
                .and_then(|m| m.get(&i))
                .filter(|v| **v != Value::Missing)
        };
        let num = |c: Col, i: u32| get(c, i).and_then(Value::as_f64);
        let indexes: Vec<u32> = cols
            .get(&OPER)
            .map(|m| m.keys().copied().collect())
            .unwrap_or_default();
        // Up to 4 status values and 12 counters' rates per interface.
        let mut out = Vec::with_capacity(indexes.len() * 18);
        let mut known = BTreeMap::new();
        if self.device_labels != device_labels {
            self.labels.clear();
            self.device_labels = device_labels.to_vec();
        }
        self.labels
            .retain(|i, _| cols.get(&OPER).is_some_and(|m| m.contains_key(i)));
        for i in indexes {
            let name = get(NAME, i)
                .and_then(Value::as_text)
                .filter(|s| !s.is_empty())
                .or_else(|| get(DESCR, i).and_then(Value::as_text))
                .unwrap_or_else(|| i.to_string());
            let name = clip(name);
            let alias = get(ALIAS, i)
                .and_then(Value::as_text)
                .filter(|s| !s.is_empty())
                .map(clip);
            fn label<'a>(c: &'a CachedLabels, key: &str) -> Option<&'a str> {
                c.own.iter().find(|(k, _)| k == key).map(|(_, v)| v.as_str())
            }
            let cached = self.labels.get(&i).filter(|c| {
                label(c, "ifName") == Some(name.as_str()) && label(c, "ifAlias") == alias.as_deref()
            });
            let (own, labels) = match cached {
                Some(c) => (c.own.clone(), c.all.clone()),
                None => {
                    let mut own = vec![
                        ("ifIndex".to_string(), i.to_string()),
                        ("ifName".to_string(), name),
                    ];
                    if let Some(alias) = alias {
                        own.push(("ifAlias".to_string(), alias));
                    }
                    own.sort();
                    let all: std::sync::Arc<[(String, String)]> = super::with(device_labels, &own).into();
                    self.labels.insert(
                        i,
                        CachedLabels {
                            own: own.clone(),
                            all: all.clone(),
                        },
                    );
                    (own, all)
                }
            };
            let admin = num(ADMIN, i).unwrap_or(0.0);
            let oper = num(OPER, i).unwrap_or(0.0);
            known.insert(
                i,
                KnownInterface {
                    labels: own,
                    admin: admin as i64,
                },
            );
            out.push(("snmp_if_admin_status", labels.clone(), admin));
            out.push(("snmp_if_oper_status", labels.clone(), oper));
            out.push((
                "snmp_if_link_down",
                labels.clone(),
                link_down(admin as i64, oper as i64),
            ));
            // ifHighSpeed is in Mbit/s; ifSpeed saturates at 4.29 Gbit/s.
            let speed = match (num(HIGH_SPEED, i), num(SPEED, i)) {
                (Some(h), _) if h > 0.0 => h * 1e6,
                (_, Some(s)) => s,
                _ => 0.0,
            };
            if speed > 0.0 {
                out.push(("snmp_if_speed_bits_per_second", labels.clone(), speed));
            }
            if let Some(d) = get(DISCONTINUITY, i).and_then(|v| v.as_f64()) {
                let d = d as u64;
                if self.discontinuity.insert(i, d).is_some_and(|old| old != d) {
                    self.last.retain(|(idx, _), _| *idx != i);
                }
            }
            let octet_limit = (speed > 0.0).then_some(speed / 8.0 * 1.5);
            let counters: [(&'static str, Col, Option<Col>, Option<f64>); 10] = [
                ("in_octets", HC_IN_OCTETS, Some(IN_OCTETS), octet_limit),
                ("out_octets", HC_OUT_OCTETS, Some(OUT_OCTETS), octet_limit),
                ("in_ucast", HC_IN_UCAST, Some(IN_UCAST), None),
                ("out_ucast", HC_OUT_UCAST, Some(OUT_UCAST), None),
                ("in_mcast", HC_IN_MCAST, Some(IN_MCAST), None),
                ("out_mcast", HC_OUT_MCAST, Some(OUT_MCAST), None),
                ("in_bcast", HC_IN_BCAST, Some(IN_BCAST), None),
                ("out_bcast", HC_OUT_BCAST, Some(OUT_BCAST), None),
                ("in_errors", IN_ERRORS, None, None),
                ("in_discards", IN_DISCARDS, None, None),
            ];
            let extra: [(&'static str, Col, Option<Col>, Option<f64>); 2] = [
                ("out_errors", OUT_ERRORS, None, None),
                ("out_discards", OUT_DISCARDS, None, None),
            ];
            for (counter, hc, legacy, limit) in counters.into_iter().chain(extra) {
                let time = |c: Col| times.get(&c).copied().unwrap_or(at_s);
                let reading = match get(hc, i) {
                    Some(Value::Counter64(v)) => Some((*v, true, time(hc))),
                    Some(Value::Counter32(v)) => Some((u64::from(*v), false, time(hc))),
                    _ => legacy.and_then(|c| match get(c, i) {
                        Some(Value::Counter32(v)) => Some((u64::from(*v), false, time(c))),
                        Some(Value::Counter64(v)) => Some((*v, true, time(c))),
                        _ => None,
                    }),
                };
                let Some((value, wide, read_at)) = reading else {
                    continue;
                };
                let Some(rate) = self.rate(i, counter, value, wide, read_at, limit) else {
                    continue;
                };
                match counter {
                    "in_octets" | "out_octets" => {
                        let dir = &counter[..counter.len() - 7];
                        let bits = rate * 8.0;
                        out.push((bits_metric(dir), labels.clone(), round2(bits)));
                        if speed > 0.0 {
                            out.push((
                                utilization_metric(dir),
                                labels.clone(),
                                round2(100.0 * bits / speed),
                            ));
                        }
                    }
                    other => out.push((rate_metric(other), labels.clone(), round2(rate))),
                }
            }
        }
        (out, known)
    }

    fn rate(
        &mut self,
        i: u32,
        counter: &'static str,
        value: u64,
        wide: bool,
        at_s: f64,
        limit: Option<f64>,
    ) -> Option<f64> {
        let previous = self.last.insert((i, counter), (value, wide, at_s))?;
        let (before, was_wide, then) = previous;
        let elapsed = at_s - then;
        if was_wide != wide || elapsed <= 0.0 {
            return None;
        }
        let delta = if value >= before {
            value - before
        } else if !wide {
            let wrapped = value + (1u64 << 32) - before;
            let plausible = match limit {
                Some(max_per_s) => wrapped as f64 / elapsed <= max_per_s,
                None => wrapped < (1u64 << 31),
            };
            if !plausible {
                return None; // a reset, not a wrap
            }
            wrapped
        } else {
            return None;
        };
        Some(delta as f64 / elapsed)
    }
}

/// Operationally down while administratively up (down or lowerLayerDown).
pub fn link_down(admin: i64, oper: i64) -> f64 {
    if admin == 1 && (oper == 2 || oper == 7) {
        1.0
    } else {
        0.0
    }
}

fn bits_metric(dir: &str) -> &'static str {
    if dir == "in" {
        "snmp_if_in_bits_per_second"
    } else {
        "snmp_if_out_bits_per_second"
    }
}

fn utilization_metric(dir: &str) -> &'static str {
    if dir == "in" {
        "snmp_if_in_utilization_percent"
    } else {
        "snmp_if_out_utilization_percent"
    }
}

fn rate_metric(counter: &str) -> &'static str {
    match counter {
        "in_ucast" => "snmp_if_in_unicast_packets_per_second",
        "out_ucast" => "snmp_if_out_unicast_packets_per_second",
        "in_mcast" => "snmp_if_in_multicast_packets_per_second",
        "out_mcast" => "snmp_if_out_multicast_packets_per_second",
        "in_bcast" => "snmp_if_in_broadcast_packets_per_second",
        "out_bcast" => "snmp_if_out_broadcast_packets_per_second",
        "in_errors" => "snmp_if_in_errors_per_second",
        "out_errors" => "snmp_if_out_errors_per_second",
        "in_discards" => "snmp_if_in_discards_per_second",
        _ => "snmp_if_out_discards_per_second",
    }
}

fn round2(v: f64) -> f64 {
    crate::series::round2(v)
}

/// Keeps a label value within the collector's limit.
pub fn clip(mut s: String) -> String {
    if s.len() > watchpost_model::names::MAX_LABEL_VALUE_BYTES {
        let mut end = watchpost_model::names::MAX_LABEL_VALUE_BYTES;
        while !s.is_char_boundary(end) {
            end -= 1;
        }
        s.truncate(end);
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cols(oper: i64, hc_in: Option<u64>, in32: Option<u32>, speed_mbps: u32) -> Columns {
        let mut c = Columns::new();
        c.entry(OPER).or_default().insert(3, Value::Int(oper));
        c.entry(ADMIN).or_default().insert(3, Value::Int(1));
        c.entry(NAME)
            .or_default()
            .insert(3, Value::Bytes(b"GE0/0/3".to_vec()));
        c.entry(HIGH_SPEED)
            .or_default()
            .insert(3, Value::Gauge(speed_mbps));
        if let Some(v) = hc_in {
            c.entry(HC_IN_OCTETS).or_default().insert(3, Value::Counter64(v));
        }
        if let Some(v) = in32 {
            c.entry(IN_OCTETS).or_default().insert(3, Value::Counter32(v));
        }
        c
    }

    impl InterfaceState {
        fn process_at(&mut self, cols: &Columns, at_s: f64) -> (Vec<Out>, BTreeMap<u32, KnownInterface>) {
            self.process(cols, &ColumnTimes::new(), at_s, &[])
        }
    }

    fn value(out: &[Out], metric: &str) -> Option<f64> {
        out.iter().find(|o| o.0 == metric).map(|o| o.2)
    }

    #[test]
    fn hc_counters_give_bits_and_utilization() {
        let mut s = InterfaceState::default();
        let (first, known) = s.process_at(&cols(1, Some(1_000), None, 100), 0.0);
        assert_eq!(
            value(&first, "snmp_if_in_bits_per_second"),
            None,
            "no rate from one reading"
        );
        assert_eq!(value(&first, "snmp_if_link_down"), Some(0.0));
        assert_eq!(known[&3].labels[1], ("ifName".to_string(), "GE0/0/3".to_string()));
        let (second, _) = s.process_at(&cols(2, Some(1_000 + 1_250_000), None, 100), 10.0);
        assert_eq!(value(&second, "snmp_if_in_bits_per_second"), Some(1_000_000.0));
        assert_eq!(value(&second, "snmp_if_in_utilization_percent"), Some(1.0));
        assert_eq!(value(&second, "snmp_if_link_down"), Some(1.0));
        assert!(InterfaceState::needs_legacy(&cols(1, None, Some(1), 100)));
        assert!(!InterfaceState::needs_legacy(&cols(1, Some(1), None, 100)));
    }

    #[test]
    fn a_32_bit_wrap_is_a_rate_and_a_reset_is_not_a_spike() {
        let mut s = InterfaceState::default();
        s.process_at(&cols(1, None, Some(u32::MAX - 999), 1000), 0.0);
        // 2,000 bytes later, across the wrap: 1,600 bit/s over 10 s.
        let (out, _) = s.process_at(&cols(1, None, Some(1_000), 1000), 10.0);
        assert_eq!(value(&out, "snmp_if_in_bits_per_second"), Some(1_600.0));
        // Down from 1,000,000,000 to 5 on a 1 Mbit/s link: not plausible as a wrap.
        let mut s = InterfaceState::default();
        s.process_at(&cols(1, None, Some(1_000_000_000), 1), 0.0);
        let (out, _) = s.process_at(&cols(1, None, Some(5), 1), 10.0);
        assert_eq!(value(&out, "snmp_if_in_bits_per_second"), None);
        // The next reading after the reset is a rate again.
        let (out, _) = s.process_at(&cols(1, None, Some(1_255), 1), 20.0);
        assert_eq!(value(&out, "snmp_if_in_bits_per_second"), Some(1_000.0));
        // A 64-bit counter that goes down is a reset.
        let mut s = InterfaceState::default();
        s.process_at(&cols(1, Some(5_000), None, 1), 0.0);
        let (out, _) = s.process_at(&cols(1, Some(10), None, 1), 10.0);
        assert_eq!(value(&out, "snmp_if_in_bits_per_second"), None);
    }

    #[test]
    fn a_discontinuity_drops_the_interface_counters() {
        let mut s = InterfaceState::default();
        let mut c = cols(1, Some(0), None, 100);
        c.entry(DISCONTINUITY).or_default().insert(3, Value::Ticks(100));
        s.process_at(&c, 0.0);
        let mut c = cols(1, Some(50_000), None, 100);
        c.entry(DISCONTINUITY).or_default().insert(3, Value::Ticks(900));
        let (out, _) = s.process_at(&c, 10.0);
        assert_eq!(value(&out, "snmp_if_in_bits_per_second"), None);
    }

    #[test]
    fn labels_are_reused_until_a_name_alias_or_device_label_changes() {
        let mut s = InterfaceState::default();
        let device = vec![("device".to_string(), "sw1".to_string())];
        let labels_of = |out: &[Out]| out.first().map(|o| o.1.clone()).expect("values");
        let mut c = cols(1, Some(1), None, 100);
        let first = labels_of(&s.process(&c, &ColumnTimes::new(), 0.0, &device).0);
        let again = labels_of(&s.process(&c, &ColumnTimes::new(), 10.0, &device).0);
        assert!(
            std::sync::Arc::ptr_eq(&first, &again),
            "same interface, same labels"
        );
        c.entry(ALIAS)
            .or_default()
            .insert(3, Value::Bytes(b"uplink".to_vec()));
        let aliased = labels_of(&s.process(&c, &ColumnTimes::new(), 20.0, &device).0);
        assert!(
            aliased.contains(&("ifAlias".to_string(), "uplink".to_string())),
            "{aliased:?}"
        );
        c.entry(NAME)
            .or_default()
            .insert(3, Value::Bytes(b"GE0/0/9".to_vec()));
        let renamed = labels_of(&s.process(&c, &ColumnTimes::new(), 30.0, &device).0);
        assert!(
            renamed.contains(&("ifName".to_string(), "GE0/0/9".to_string())),
            "{renamed:?}"
        );
        let moved = vec![("device".to_string(), "sw2".to_string())];
        let (out, known) = s.process(&c, &ColumnTimes::new(), 40.0, &moved);
        let relabelled = labels_of(&out);
        assert!(
            relabelled.contains(&("device".to_string(), "sw2".to_string())),
            "{relabelled:?}"
        );
        assert_eq!(
            known[&3].labels,
            [
                ("ifAlias".to_string(), "uplink".to_string()),
                ("ifIndex".to_string(), "3".to_string()),
                ("ifName".to_string(), "GE0/0/9".to_string())
            ]
        );
        // An interface that is gone is forgotten.
        let empty = Columns::new();
        s.process(&empty, &ColumnTimes::new(), 50.0, &moved);
        assert!(s.labels.is_empty());
    }
}
