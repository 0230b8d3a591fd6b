//! Maintenance windows: approved changes during which faults are still
//! recorded, as `suppressed`, but not notified. A window selects faults by
//! host, rule and labels (same matcher syntax as rules) for a time span and
//! carries its reason and change-ticket reference.

use std::collections::BTreeMap;

use crate::matchers::Matcher;

/// A checked window.
#[derive(Debug, Clone)]
pub struct Window {
    /// Record id.
    pub id: i64,
    /// Only this host (any if `None`).
    pub host: Option<String>,
    /// Only this rule (any if `None`).
    pub rule: Option<String>,
    /// Only these hosts (any if empty): a change's window.
    pub hosts: Vec<String>,
    /// Only these rules (any if empty).
    pub rules: Vec<String>,
    /// Label matchers as written.
    pub matchers: BTreeMap<String, String>,
    parsed: Vec<Matcher>,
    /// Start (ms).
    pub starts_at_ms: i64,
    /// End (ms, exclusive).
    pub ends_at_ms: i64,
    /// Why.
    pub reason: String,
    /// Change ticket.
    pub ticket: String,
    /// Who created it.
    pub created_by: String,
    /// When (ms).
    pub created_at_ms: i64,
    /// The change request whose approval created it.
    pub change_id: Option<i64>,
}

/// What a window is made of, before it is checked.
#[derive(Debug, Clone, Default)]
pub struct WindowSpec {
    /// Record id (0 before it is stored).
    pub id: i64,
    /// Only this host (any if `None`).
    pub host: Option<String>,
    /// Only this rule (any if `None`).
    pub rule: Option<String>,
    /// Only these hosts (any if empty).
    pub hosts: Vec<String>,
    /// Only these rules (any if empty).
    pub rules: Vec<String>,
    /// Label matchers as written (`fstype = "!tmpfs"`).
    pub matchers: BTreeMap<String, String>,
    /// Start (ms).
    pub starts_at_ms: i64,
    /// End (ms, exclusive).
    pub ends_at_ms: i64,
    /// Why.
    pub reason: String,
    /// The approved change's ticket.
    pub ticket: String,
    /// Who created it.
    pub created_by: String,
    /// When (ms).
    pub created_at_ms: i64,
    /// The change request whose approval created it.
    pub change_id: Option<i64>,
}

impl Window {
    /// Checks a window; the error names the problem.
    pub fn new(spec: WindowSpec) -> Result<Window, String> {
        let WindowSpec {
            id,
            host,
            rule,
            hosts,
            rules,
            matchers,
            starts_at_ms,
            ends_at_ms,
            reason,
            ticket,
            created_by,
            created_at_ms,
            change_id,
        } = spec;
        if ends_at_ms <= starts_at_ms {
            return Err("the window ends before it starts".into());
        }
        if host.is_none() && rule.is_none() && hosts.is_empty() && rules.is_empty() && matchers.is_empty() {
            return Err(
                "a window needs a host, a rule or label matchers: it would silence everything".into(),
            );
        }
        let parsed = matchers
            .iter()
            .map(|(k, v)| {
                watchpost_model::names::check_label_name(k).map_err(|e| e.to_string())?;
                Matcher::parse(k, v)
            })
            .collect::<Result<Vec<_>, String>>()?;
        Ok(Window {
            id,
            host,
            rule,
            hosts,
            rules,
            matchers,
            parsed,
            starts_at_ms,
            ends_at_ms,
            reason,
            ticket,
            created_by,
            created_at_ms,
            change_id,
        })
    }

    /// Whether the window is in force at `at_ms`.
    pub fn active(&self, at_ms: i64) -> bool {
        self.starts_at_ms <= at_ms && at_ms < self.ends_at_ms
    }

    /// Whether it covers a fault of `rule` on `host` with `labels` at `at_ms`.
    pub fn covers(&self, rule: &str, host: &str, labels: &BTreeMap<String, String>, at_ms: i64) -> bool {
        self.active(at_ms)
            && self.host.as_deref().is_none_or(|h| h == host)
            && self.rule.as_deref().is_none_or(|r| r == rule)
            && (self.hosts.is_empty() || self.hosts.iter().any(|h| h == host))
            && (self.rules.is_empty() || self.rules.iter().any(|r| r == rule))
            && self
                .parsed
                .iter()
                .all(|m| m.matches(labels.get(&m.name).map(String::as_str)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn covers_by_host_rule_labels_and_time() {
        let w = Window::new(WindowSpec {
            id: 1,
            host: Some("db1".into()),
            matchers: BTreeMap::from([("mountpoint".to_string(), "~/data.*".to_string())]),
            starts_at_ms: 100,
            ends_at_ms: 200,
            reason: "disk swap".into(),
            ticket: "CHG-1".into(),
            created_by: "li".into(),
            ..WindowSpec::default()
        })
        .expect("valid");
        let labels = BTreeMap::from([("mountpoint".to_string(), "/data1".to_string())]);
        assert!(w.covers("fs_full", "db1", &labels, 150));
        assert!(!w.covers("fs_full", "db2", &labels, 150));
        assert!(!w.covers("fs_full", "db1", &labels, 200), "the end is exclusive");
        assert!(!w.covers("fs_full", "db1", &BTreeMap::new(), 150));
        let everything = Window::new(WindowSpec {
            ends_at_ms: 1,
            ..WindowSpec::default()
        });
        assert!(everything.is_err_and(|e| e.contains("silence everything")));
        let empty = Window::new(WindowSpec {
            host: Some("h".into()),
            starts_at_ms: 5,
            ends_at_ms: 5,
            ..WindowSpec::default()
        });
        assert!(empty.is_err_and(|e| e.contains("ends before it starts")));
    }
}
