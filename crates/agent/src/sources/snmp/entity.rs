//! An SNMP device's entry in the equipment list: sysDescr and sysObjectID
//! (its enterprise number names the vendor), and from ENTITY-MIB's
//! entPhysicalTable the model names, serial numbers and revisions of its
//! chassis and modules. Read when the device first answers and every hour.

use watchpost_proto::v1::InventoryItem;

use super::session::{Oid, Session, Value};

const SYS_DESCR: [u32; 9] = [1, 3, 6, 1, 2, 1, 1, 1, 0];
const SYS_OBJECT_ID: [u32; 9] = [1, 3, 6, 1, 2, 1, 1, 2, 0];
/// entPhysicalEntry.
const ENT: [u32; 11] = [1, 3, 6, 1, 2, 1, 47, 1, 1, 1, 1];
/// PhysicalClass chassis(3) and module(9): what an equipment list keeps.
const CHASSIS: i64 = 3;
const MODULE: i64 = 9;

/// The vendor an enterprise number (1.3.6.1.4.1.N) belongs to.
pub fn vendor_of(enterprise: u32) -> Option<&'static str> {
    Some(match enterprise {
        9 => "Cisco",
        11 => "HPE",
        43 => "3Com",
        318 => "APC",
        534 => "Eaton",
        674 => "Dell",
        1588 => "Brocade",
        2011 => "Huawei",
        2636 => "Juniper",
        3375 => "F5",
        3902 => "ZTE",
        4881 => "Ruijie",
        5651 => "Maipu",
        6486 => "Alcatel-Lucent",
        8072 => "Net-SNMP",
        12356 => "Fortinet",
        13464 => "Emerson",
        14988 => "MikroTik",
        25461 => "Palo Alto Networks",
        25506 => "H3C",
        30065 => "Arista",
        34592 => "FiberHome",
        35047 => "Hillstone",
        37072 => "Inspur",
        _ => return None,
    })
}

fn text(v: &Value) -> String {
    v.as_text().unwrap_or_default()
}

/// Reads the device's entry; `device` is its name in the agent config.
pub async fn read<S: Session>(s: &S, device: &str) -> Option<Vec<InventoryItem>> {
    let sys = s
        .get(&[Oid(SYS_DESCR.to_vec()), Oid(SYS_OBJECT_ID.to_vec())])
        .await
        .ok()?;
    let descr = sys.first().map(|(_, v)| text(v)).unwrap_or_default();
    let object_id = match sys.get(1).map(|(_, v)| v) {
        Some(Value::Oid(o)) => Some(o.clone()),
        _ => None,
    };
    let key = format!("snmp/{device}");
    let mut top = InventoryItem {
        key: key.clone(),
        kind: "network-device".into(),
        name: device.to_string(),
        ..Default::default()
    };
    if !descr.is_empty() {
        top.details.insert("sys_descr".into(), descr);
    }
    if let Some(o) = &object_id {
        top.details.insert("sys_object_id".into(), o.to_string());
        if o.0.len() > 6 && o.0[..6] == [1, 3, 6, 1, 4, 1] {
            top.vendor = vendor_of(o.0[6]).unwrap_or_default().to_string();
        }
    }
    // entPhysicalTable, column by column: descr 2, class 5, name 7, hardware
    // 8, firmware 9, software 10, serial 11, manufacturer 12, model 13.
    let mut rows: std::collections::BTreeMap<u32, [String; 9]> = Default::default();
    let mut classes: std::collections::BTreeMap<u32, i64> = Default::default();
    for (slot, column) in [2u32, 7, 8, 9, 10, 11, 12, 13].into_iter().enumerate() {
        let root = Oid(ENT.to_vec()).child(&[column]);
        let Ok(found) = s.walk(&root).await else { continue };
        for (oid, v) in found {
            if let Some(&[index]) = oid.suffix_after(&root) {
                rows.entry(index).or_default()[slot] = text(&v);
            }
        }
    }
    let class_root = Oid(ENT.to_vec()).child(&[5]);
    if let Ok(found) = s.walk(&class_root).await {
        for (oid, v) in found {
            if let (Some(&[index]), Some(c)) = (oid.suffix_after(&class_root), v.as_f64()) {
                classes.insert(index, c as i64);
            }
        }
    }
    let mut parts = Vec::new();
    let mut chassis_seen = false;
    for (index, class) in classes {
        if class != CHASSIS && class != MODULE {
            continue;
        }
        let Some(
            [
                descr,
                name,
                hardware,
                firmware,
                software,
                serial,
                maker,
                model,
                ..,
            ],
        ) = rows.get(&index).cloned()
        else {
            continue;
        };
        let model = if model.is_empty() { descr.clone() } else { model };
        if class == CHASSIS && !chassis_seen {
            // The first chassis is the device itself.
            chassis_seen = true;
            top.model = model;
            top.serial = serial;
            top.firmware = software.clone();
            if !maker.is_empty() {
                top.vendor = maker;
            }
            if !hardware.is_empty() {
                top.details.insert("hardware_rev".into(), hardware);
            }
            continue;
        }
        if serial.is_empty() && model.is_empty() {
            continue; // an empty slot
        }
        let mut part = InventoryItem {
            key: format!("{key}/entity/{index}"),
            parent: key.clone(),
            kind: if class == CHASSIS { "chassis" } else { "module" }.into(),
            name: if name.is_empty() {
                format!("entity {index}")
            } else {
                name
            },
            vendor: maker,
            model,
            serial,
            firmware: if software.is_empty() { firmware } else { software },
            ..Default::default()
        };
        if !hardware.is_empty() {
            part.details.insert("hardware_rev".into(), hardware);
        }
        if !descr.is_empty() {
            part.details.insert("description".into(), descr);
        }
        parts.push(part);
    }
    let mut items = vec![top];
    items.extend(parts);
    Some(items)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn enterprises_name_vendors() {
        assert_eq!(vendor_of(2011), Some("Huawei"));
        assert_eq!(vendor_of(25506), Some("H3C"));
        assert_eq!(vendor_of(3902), Some("ZTE"));
        assert_eq!(vendor_of(424242), None);
    }
}
