//! An agent's equipment message (one scope of the equipment list), checked
//! item by item into the fault stage's report; an error names the item and
//! the field.

use std::collections::BTreeMap;

use crate::Core;

use super::SessionState;

/// Limits on one inventory message: a host or a chassis has tens of items.
const MAX_INVENTORY_ITEMS: usize = 2000;
const MAX_INVENTORY_TEXT: usize = 512;

/// Checks an agent's inventory scope and turns it into the fault stage's
/// report; the error names the item and the field.
pub(super) fn inventory_report(
    core: &Core,
    state: &SessionState,
    inv: watchpost_proto::v1::Inventory,
) -> Result<crate::faults::InventoryReport, String> {
    use watchpost_model::inventory::InventoryItem;
    let scope = inv.scope;
    let valid_scope = scope == "host" || scope.strip_prefix("snmp/").is_some_and(|d| !d.is_empty());
    if !valid_scope || scope.len() > 200 {
        return Err(format!(
            "inventory scope {scope:?} is neither \"host\" nor \"snmp/<device>\""
        ));
    }
    if inv.items.len() > MAX_INVENTORY_ITEMS {
        return Err(format!(
            "inventory scope {scope}: {} items, more than {MAX_INVENTORY_ITEMS}",
            inv.items.len()
        ));
    }
    let mut items: Vec<InventoryItem> = Vec::with_capacity(inv.items.len());
    for (n, i) in inv.items.into_iter().enumerate() {
        let what = format!("inventory scope {scope}, item {} ({:?})", n + 1, i.key);
        if i.key.is_empty() {
            return Err(format!("{what}: empty key"));
        }
        let texts = [
            ("key", &i.key),
            ("parent", &i.parent),
            ("kind", &i.kind),
            ("name", &i.name),
            ("vendor", &i.vendor),
            ("model", &i.model),
            ("serial", &i.serial),
            ("firmware", &i.firmware),
        ];
        for (field, v) in texts
            .into_iter()
            .chain(i.details.iter().map(|(k, v)| (k.as_str(), v)))
        {
            if v.chars().count() > MAX_INVENTORY_TEXT {
                return Err(format!(
                    "{what}: {field} is longer than {MAX_INVENTORY_TEXT} characters"
                ));
            }
        }
        if i.details.len() > 64 {
            return Err(format!("{what}: more than 64 details"));
        }
        let id = format!("{}:{}", state.agent, i.key);
        if items.iter().any(|x| x.id == id) {
            return Err(format!("{what}: the key appears twice"));
        }
        let mut details: BTreeMap<String, String> = i.details.into_iter().collect();
        let label = |k: &str| state.labels.get(k).cloned().unwrap_or_default();
        let room = details.remove("room").unwrap_or_else(|| label("room"));
        let rack = details.remove("rack").unwrap_or_else(|| label("rack"));
        let clean = |v: String| {
            v.chars()
                .map(|c| if c.is_control() { ' ' } else { c })
                .collect::<String>()
        };
        items.push(InventoryItem {
            id,
            agent: state.agent.to_string(),
            host: state.hostname.clone(),
            parent: if i.parent.is_empty() {
                String::new()
            } else {
                format!("{}:{}", state.agent, i.parent)
            },
            kind: clean(i.kind),
            name: clean(i.name),
            vendor: clean(i.vendor),
            model: clean(i.model),
            serial: clean(i.serial),
            firmware: clean(i.firmware),
            room,
            rack,
            details: details.into_iter().map(|(k, v)| (k, clean(v))).collect(),
            source: "agent".into(),
            first_seen_ms: 0,
            last_seen_ms: 0,
            removed_ms: None,
        });
    }
    Ok(crate::faults::InventoryReport {
        agent: state.agent.to_string(),
        scope,
        items,
        complete: true,
        actor: format!("agent {}", state.agent),
        at_ms: core.clock.now_ms(),
        rule: core.engine.inventory_rule(),
    })
}
