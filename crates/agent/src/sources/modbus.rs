//! Machine-room sensors over Modbus TCP: temperature, humidity, water
//! leak, smoke, door and power meters, declared register by register.
//!
//! ```toml
//! [[modbus.device]]
//! name = "room-a-th-1"            # the `device` label
//! address = "10.0.5.20:502"       # host:port (a sensor or an RS-485 gateway)
//! unit = 1                        # Modbus unit (slave) id
//! interval = "10s"
//! timeout = "2s"
//! labels = { room = "A-201" }
//!
//! [[modbus.device.register]]
//! metric = "room_temperature_celsius"
//! address = 0                     # register or coil number, 0-based
//! kind = "holding"                # holding, input, coil or discrete
//! type = "i16"                    # u16, i16, u32, i32, f32 (two registers), bool (coils)
//! word_order = "big"              # for 32-bit types: "big" (high word first) or "little"
//! scale = 0.1                     # value * scale + offset
//! offset = 0.0
//! labels = { position = "cold aisle" }
//! ```
//!
//! Each device is polled on its own task with its own timeout; a device
//! that does not answer is `modbus_up{device} 0`, never an agent error. A
//! register the device refuses (a Modbus exception) is left out of that
//! round and logged.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use serde::Deserialize;
use tokio_modbus::client::Reader;
use watchpost_model::HumanDuration;
use watchpost_model::names;

use crate::series::{Measured, Published};

/// `[modbus]` as written.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawModbus {
    #[serde(default)]
    device: Vec<RawDevice>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawDevice {
    name: String,
    address: String,
    #[serde(default = "one")]
    unit: u8,
    interval: Option<HumanDuration>,
    timeout: Option<HumanDuration>,
    #[serde(default)]
    labels: BTreeMap<String, String>,
    #[serde(default)]
    register: Vec<RawRegister>,
}

fn one() -> u8 {
    1
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRegister {
    metric: String,
    address: u16,
    kind: Kind,
    #[serde(rename = "type")]
    data_type: Option<DataType>,
    #[serde(default)]
    word_order: WordOrder,
    scale: Option<f64>,
    offset: Option<f64>,
    #[serde(default)]
    labels: BTreeMap<String, String>,
}

/// Which Modbus table.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Kind {
    /// Holding registers (function 3).
    Holding,
    /// Input registers (function 4).
    Input,
    /// Coils (function 1).
    Coil,
    /// Discrete inputs (function 2).
    Discrete,
}

/// How the registers encode the value.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DataType {
    /// One register, unsigned.
    U16,
    /// One register, two's complement.
    I16,
    /// Two registers, unsigned.
    U32,
    /// Two registers, two's complement.
    I32,
    /// Two registers, IEEE 754 single precision.
    F32,
    /// A coil or discrete input: 1 or 0.
    Bool,
}

impl DataType {
    fn registers(self) -> u16 {
        match self {
            DataType::U16 | DataType::I16 | DataType::Bool => 1,
            DataType::U32 | DataType::I32 | DataType::F32 => 2,
        }
    }
}

/// Word order of 32-bit values.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum WordOrder {
    /// High word in the lower register (the Modbus convention).
    #[default]
    Big,
    /// Low word first (many meters).
    Little,
}

/// Modbus devices, checked.
#[derive(Debug, Clone, Default)]
pub struct ModbusConfig {
    /// Devices polled.
    pub devices: Vec<ModbusDevice>,
}

/// One device.
#[derive(Debug, Clone)]
pub struct ModbusDevice {
    /// `device` label.
    pub name: String,
    /// host:port.
    pub address: String,
    /// Unit id.
    pub unit: u8,
    /// Poll period.
    pub interval: Duration,
    /// Per poll.
    pub timeout: Duration,
    /// Added to every series, `device` included (sorted).
    pub labels: Vec<(String, String)>,
    /// What is read.
    pub registers: Vec<Register>,
}

/// One value read.
#[derive(Debug, Clone)]
pub struct Register {
    /// Series name.
    pub metric: String,
    /// Register or coil number.
    pub address: u16,
    /// Table.
    pub kind: Kind,
    /// Encoding.
    pub data_type: DataType,
    /// 32-bit word order.
    pub word_order: WordOrder,
    /// Multiplier.
    pub scale: f64,
    /// Added after scaling.
    pub offset: f64,
    /// Its own labels.
    pub labels: Vec<(String, String)>,
}

impl Register {
    /// The value of the words read (one or two registers).
    pub fn decode(&self, words: &[u16]) -> Option<f64> {
        let pair = |w: &[u16]| -> Option<u32> {
            let (hi, lo) = match self.word_order {
                WordOrder::Big => (*w.first()?, *w.get(1)?),
                WordOrder::Little => (*w.get(1)?, *w.first()?),
            };
            Some((u32::from(hi) << 16) | u32::from(lo))
        };
        let raw = match self.data_type {
            DataType::U16 | DataType::Bool => f64::from(*words.first()?),
            DataType::I16 => f64::from(*words.first()? as i16),
            DataType::U32 => f64::from(pair(words)?),
            DataType::I32 => f64::from(pair(words)? as i32),
            DataType::F32 => f64::from(f32::from_bits(pair(words)?)),
        };
        raw.is_finite()
            .then(|| crate::series::round2(raw * self.scale + self.offset))
    }
}

impl ModbusConfig {
    pub(crate) fn check(raw: RawModbus, default_interval: Duration) -> Result<ModbusConfig, String> {
        let mut devices = Vec::new();
        let mut seen = std::collections::HashSet::new();
        for (i, d) in raw.device.into_iter().enumerate() {
            let what = format!("modbus.device {} ({})", i + 1, d.name);
            if d.name.trim().is_empty() || !seen.insert(d.name.clone()) {
                return Err(format!("{what}: `name` must be set and unique"));
            }
            if d.address
                .rsplit_once(':')
                .and_then(|(_, p)| p.parse::<u16>().ok())
                .is_none()
            {
                return Err(format!(
                    "{what}: address {:?} must be host:port (Modbus TCP is usually port 502)",
                    d.address
                ));
            }
            let interval = d.interval.map_or(default_interval, |t| t.0);
            let timeout = d.timeout.map_or(Duration::from_secs(2), |t| t.0);
            if interval < Duration::from_millis(200) || timeout.is_zero() || timeout > interval {
                return Err(format!(
                    "{what}: interval must be at least 200ms and timeout within it"
                ));
            }
            if d.register.is_empty() {
                return Err(format!("{what}: no `register` to read"));
            }
            let mut labels: Vec<(String, String)> = Vec::new();
            for (k, v) in d.labels {
                names::check_label_name(&k).map_err(|e| format!("{what}: {e}"))?;
                names::check_label_value(&v).map_err(|e| format!("{what}: {e}"))?;
                if k == "device" || k == "host" {
                    return Err(format!("{what}: label {k:?} is set by the agent"));
                }
                labels.push((k, v));
            }
            labels.push(("device".into(), d.name.clone()));
            labels.sort();
            let mut registers = Vec::new();
            for (j, r) in d.register.into_iter().enumerate() {
                let rw = format!("{what}: register {} ({})", j + 1, r.metric);
                names::check_metric_name(&r.metric).map_err(|e| format!("{rw}: {e}"))?;
                let bit = matches!(r.kind, Kind::Coil | Kind::Discrete);
                let data_type = match (r.data_type, bit) {
                    (None, true) | (Some(DataType::Bool), true) => DataType::Bool,
                    (None, false) => DataType::U16,
                    (Some(DataType::Bool), false) => {
                        return Err(format!("{rw}: type \"bool\" is for coils and discrete inputs"));
                    }
                    (Some(t), true) => {
                        return Err(format!(
                            "{rw}: a {:?} holds one bit; type {t:?} does not apply",
                            r.kind
                        ));
                    }
                    (Some(t), false) => t,
                };
                if r.address.checked_add(data_type.registers() - 1).is_none() {
                    return Err(format!("{rw}: address {} runs past 65535", r.address));
                }
                let scale = r.scale.unwrap_or(1.0);
                if !scale.is_finite() || scale == 0.0 || !r.offset.unwrap_or(0.0).is_finite() {
                    return Err(format!(
                        "{rw}: `scale` must be finite and non-zero, `offset` finite"
                    ));
                }
                let mut rl: Vec<(String, String)> = labels.clone();
                for (k, v) in r.labels {
                    names::check_label_name(&k).map_err(|e| format!("{rw}: {e}"))?;
                    names::check_label_value(&v).map_err(|e| format!("{rw}: {e}"))?;
                    if k == "device" || k == "host" {
                        return Err(format!("{rw}: label {k:?} is set by the agent"));
                    }
                    rl.retain(|(n, _)| n != &k);
                    rl.push((k, v));
                }
                rl.sort();
                registers.push(Register {
                    metric: r.metric,
                    address: r.address,
                    kind: r.kind,
                    data_type,
                    word_order: r.word_order,
                    scale,
                    offset: r.offset.unwrap_or(0.0),
                    labels: rl,
                });
            }
            devices.push(ModbusDevice {
                name: d.name,
                address: d.address,
                unit: d.unit,
                interval,
                timeout,
                labels,
                registers,
            });
        }
        Ok(ModbusConfig { devices })
    }
}

/// Starts polling on its own thread; results go to `out`.
pub fn start(config: ModbusConfig, out: Published, stop: Arc<AtomicBool>) {
    crate::spawn_runtime_thread("watchpost-modbus", async move {
        let mut tasks = tokio::task::JoinSet::new();
        for d in config.devices {
            tasks.spawn(poll_device(d, out.clone(), stop.clone()));
        }
        while tasks.join_next().await.is_some() {}
    });
}

async fn poll_device(device: ModbusDevice, out: Published, stop: Arc<AtomicBool>) {
    let mut ctx: Option<tokio_modbus::client::Context> = None;
    let mut tick = tokio::time::interval(device.interval);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut was_up = None;
    loop {
        tick.tick().await;
        if stop.load(Ordering::Relaxed) {
            return;
        }
        let at_ms = crate::time::now_ms();
        let result = tokio::time::timeout(device.timeout, poll(&device, &mut ctx, at_ms)).await;
        let (up, mut measured) = match result {
            Ok(Ok(m)) => (true, m),
            Ok(Err(e)) => {
                if was_up != Some(false) {
                    tracing::warn!(device = %device.name, error = %e, "Modbus device does not answer");
                }
                ctx = None;
                (false, Vec::new())
            }
            Err(_) => {
                if was_up != Some(false) {
                    tracing::warn!(device = %device.name, "Modbus device does not answer (timeout)");
                }
                ctx = None;
                (false, Vec::new())
            }
        };
        if up && was_up != Some(true) {
            tracing::info!(device = %device.name, "Modbus device answers");
        }
        was_up = Some(up);
        measured.push(Measured {
            metric: "modbus_up".into(),
            labels: device.labels.clone().into(),
            value: if up { 1.0 } else { 0.0 },
            at_ms,
            text: None,
        });
        out.publish(measured);
    }
}

async fn poll(
    device: &ModbusDevice,
    ctx: &mut Option<tokio_modbus::client::Context>,
    at_ms: i64,
) -> Result<Vec<Measured>, String> {
    if ctx.is_none() {
        let addr = tokio::net::lookup_host(device.address.as_str())
            .await
            .map_err(|e| format!("cannot resolve {}: {e}", device.address))?
            .next()
            .ok_or_else(|| format!("{} resolves to no address", device.address))?;
        let c = tokio_modbus::client::tcp::connect_slave(addr, tokio_modbus::Slave(device.unit))
            .await
            .map_err(|e| format!("connect: {e}"))?;
        *ctx = Some(c);
    }
    let Some(c) = ctx.as_mut() else {
        return Err("no connection".into());
    };
    let mut out = Vec::new();
    for r in &device.registers {
        let n = r.data_type.registers();
        let words: Result<Vec<u16>, tokio_modbus::ExceptionCode> = match r.kind {
            Kind::Holding => c
                .read_holding_registers(r.address, n)
                .await
                .map_err(|e| e.to_string())?,
            Kind::Input => c
                .read_input_registers(r.address, n)
                .await
                .map_err(|e| e.to_string())?,
            Kind::Coil => c
                .read_coils(r.address, 1)
                .await
                .map_err(|e| e.to_string())?
                .map(|b| b.into_iter().map(u16::from).collect()),
            Kind::Discrete => c
                .read_discrete_inputs(r.address, 1)
                .await
                .map_err(|e| e.to_string())?
                .map(|b| b.into_iter().map(u16::from).collect()),
        };
        match words {
            Ok(w) => {
                if let Some(v) = r.decode(&w) {
                    out.push(Measured {
                        metric: r.metric.clone().into(),
                        labels: r.labels.clone().into(),
                        value: v,
                        at_ms,
                        text: None,
                    });
                }
            }
            Err(code) => {
                tracing::debug!(device = %device.name, register = r.address, exception = ?code, "Modbus exception");
            }
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reg(t: DataType, order: WordOrder, scale: f64) -> Register {
        Register {
            metric: "m".into(),
            address: 0,
            kind: Kind::Holding,
            data_type: t,
            word_order: order,
            scale,
            offset: 0.0,
            labels: Vec::new(),
        }
    }

    #[test]
    fn decodes_types_and_word_orders() {
        assert_eq!(
            reg(DataType::I16, WordOrder::Big, 0.1).decode(&[0xFF38]),
            Some(-20.0)
        );
        assert_eq!(reg(DataType::U16, WordOrder::Big, 0.1).decode(&[235]), Some(23.5));
        assert_eq!(
            reg(DataType::U32, WordOrder::Big, 1.0).decode(&[1, 2]),
            Some(65538.0)
        );
        assert_eq!(
            reg(DataType::U32, WordOrder::Little, 1.0).decode(&[2, 1]),
            Some(65538.0)
        );
        assert_eq!(
            reg(DataType::I32, WordOrder::Big, 1.0).decode(&[0xFFFF, 0xFFFE]),
            Some(-2.0)
        );
        let bits = 21.5f32.to_bits();
        let f = reg(DataType::F32, WordOrder::Big, 1.0).decode(&[(bits >> 16) as u16, bits as u16]);
        assert_eq!(f, Some(21.5));
        assert_eq!(
            reg(DataType::F32, WordOrder::Big, 1.0).decode(&[0x7FC0, 0]),
            None,
            "NaN is dropped"
        );
        assert_eq!(reg(DataType::U32, WordOrder::Big, 1.0).decode(&[1]), None);
    }

    fn check(text: &str) -> Result<ModbusConfig, String> {
        #[derive(Deserialize)]
        struct F {
            modbus: RawModbus,
        }
        let f: F = toml::from_str(text).map_err(|e| e.to_string())?;
        ModbusConfig::check(f.modbus, Duration::from_secs(10))
    }

    #[test]
    fn config_errors_name_device_and_register() {
        let ok = "[[modbus.device]]\nname = \"th\"\naddress = \"127.0.0.1:502\"\n[[modbus.device.register]]\nmetric = \"t\"\naddress = 0\nkind = \"coil\"\n";
        let c = check(ok).expect("valid");
        assert_eq!(c.devices[0].registers[0].data_type, DataType::Bool);
        let e = |t: &str| check(t).expect_err("invalid");
        assert!(e(&ok.replace("127.0.0.1:502", "127.0.0.1")).contains("host:port"));
        assert!(e(&format!("{ok}type = \"f32\"\n")).contains("register 1 (t)"));
        assert!(e("[[modbus.device]]\nname = \"th\"\naddress = \"a:502\"\n").contains("no `register`"));
        assert!(
            e(&ok.replace("kind = \"coil\"", "kind = \"holding\"\ntype = \"bool\""))
                .contains("coils and discrete")
        );
    }
}
