//! The equipment list's changes, inside the writer's transaction: an
//! agent's report of a scope (its host, one SNMP device) or a person's
//! import is compared with what is stored; each added, changed, removed or
//! returned item is an event on its history, and a changed serial, model
//! or firmware opens a fault when a rule of `kind = "inventory_changed"`
//! is configured (it stays open until someone closes it).

use std::collections::BTreeMap;
use std::sync::Arc;

use watchpost_model::Severity;
use watchpost_model::api::FaultSource;
use watchpost_model::inventory::{InventoryEvent, InventoryItem, WATCHED_FIELDS};

use super::Lifecycle;
use super::reported::ReportedFault;
use crate::db::records::{FaultRecords, RecordError};
use crate::template::Template;

/// The details whose change is recorded on an item's history (addresses
/// and the like come and go with DHCP and are not).
const TRACKED_DETAILS: [&str; 7] = [
    "cpu_model",
    "cpu_cores",
    "memory_bytes",
    "os",
    "kernel",
    "size_bytes",
    "hardware_rev",
];

/// The rule that turns a change into a fault.
#[derive(Debug, Clone)]
pub struct ChangeRule {
    pub name: Arc<str>,
    pub severity: Severity,
    pub summary: Template,
}

/// One scope's items as an agent (or an import) gives them.
#[derive(Debug, Clone)]
pub struct InventoryReport {
    /// The agent; empty for an import.
    pub agent: String,
    /// `host`, `snmp/<device>`, or `import`.
    pub scope: String,
    /// The items, ids and hosts filled in.
    pub items: Vec<InventoryItem>,
    /// Items of the scope not listed are removed (an agent's report, or an
    /// import that replaces the list); otherwise they stay.
    pub complete: bool,
    /// Who: the agent id, or the person importing.
    pub actor: String,
    pub at_ms: i64,
    /// The fault rule in force, if any.
    pub rule: Option<ChangeRule>,
}

fn fields(i: &InventoryItem) -> Vec<(&'static str, String)> {
    let mut f = vec![
        ("vendor", i.vendor.clone()),
        ("model", i.model.clone()),
        ("serial", i.serial.clone()),
        ("firmware", i.firmware.clone()),
        ("kind", i.kind.clone()),
        ("room", i.room.clone()),
        ("rack", i.rack.clone()),
    ];
    for d in TRACKED_DETAILS {
        f.push((d, i.details.get(d).cloned().unwrap_or_default()));
    }
    f
}

impl Lifecycle {
    pub(super) fn inventory(
        &mut self,
        rec: &mut dyn FaultRecords,
        r: &InventoryReport,
    ) -> Result<(), RecordError> {
        let stored: BTreeMap<String, InventoryItem> = rec
            .inventory_items(&r.agent, &r.scope)?
            .into_iter()
            .map(|i| (i.id.clone(), i))
            .collect();
        let event = |item: &str, change: &str, field: &str, old: &str, new: &str| InventoryEvent {
            item: item.to_string(),
            at_ms: r.at_ms,
            change: change.to_string(),
            field: field.to_string(),
            old: old.to_string(),
            new: new.to_string(),
            actor: r.actor.clone(),
            fault_id: None,
        };
        for new in &r.items {
            let mut item = new.clone();
            item.last_seen_ms = r.at_ms;
            item.removed_ms = None;
            match stored.get(&item.id) {
                None => {
                    item.first_seen_ms = r.at_ms;
                    rec.inventory_put(&r.scope, &item)?;
                    rec.inventory_event(&event(&item.id, "added", "", "", &item.name))?;
                }
                Some(old) => {
                    item.first_seen_ms = old.first_seen_ms;
                    rec.inventory_put(&r.scope, &item)?;
                    if old.removed_ms.is_some() {
                        rec.inventory_event(&event(&item.id, "returned", "", "", &item.name))?;
                    }
                    for ((field, was), (_, now)) in fields(old).into_iter().zip(fields(&item)) {
                        if was == now {
                            continue;
                        }
                        let mut e = event(&item.id, "changed", field, &was, &now);
                        if let Some(rule) = &r.rule
                            && WATCHED_FIELDS.contains(&field)
                            && !was.is_empty()
                        {
                            e.fault_id =
                                self.inventory_fault(rec, rule, &item, field, &was, &now, r.at_ms)?;
                        }
                        rec.inventory_event(&e)?;
                    }
                }
            }
        }
        if r.complete {
            for (id, old) in &stored {
                if old.removed_ms.is_none() && !r.items.iter().any(|i| &i.id == id) {
                    let mut gone = old.clone();
                    gone.removed_ms = Some(r.at_ms);
                    rec.inventory_put(&r.scope, &gone)?;
                    rec.inventory_event(&event(id, "removed", "", &old.name, ""))?;
                }
            }
        }
        Ok(())
    }

    #[allow(clippy::too_many_arguments)]
    fn inventory_fault(
        &mut self,
        rec: &mut dyn FaultRecords,
        rule: &ChangeRule,
        item: &InventoryItem,
        field: &str,
        old: &str,
        new: &str,
        at_ms: i64,
    ) -> Result<Option<i64>, RecordError> {
        let summary = rule.summary.render(|name| {
            Some(match name {
                "host" => item.host.clone(),
                "item" | "name" => item.name.clone(),
                "kind" => item.kind.clone(),
                "field" => field.to_string(),
                "old" => old.to_string(),
                "new" => new.to_string(),
                "room" => item.room.clone(),
                "rack" => item.rack.clone(),
                "rule" => rule.name.to_string(),
                "severity" => rule.severity.to_string(),
                _ => return None,
            })
        });
        let mut labels = BTreeMap::new();
        labels.insert("item".to_string(), item.id.clone());
        labels.insert("field".to_string(), field.to_string());
        for (k, v) in [("room", &item.room), ("rack", &item.rack)] {
            if !v.is_empty() {
                labels.insert(k.to_string(), v.clone());
            }
        }
        let fault = ReportedFault {
            source: FaultSource::Rule,
            rule: Some(rule.name.clone()),
            severity: rule.severity,
            host: item.host.clone(),
            summary,
            reporter: None,
            labels,
            opened_at_ms: at_ms,
            entered_at_ms: at_ms,
            entered_by: "inventory".to_string(),
        };
        Ok(self.report(rec, &fault)?.ok())
    }
}
