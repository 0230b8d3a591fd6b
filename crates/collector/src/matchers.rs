//! Label matchers, as written in rules (`match = { fstype = "!tmpfs" }`) and
//! in API queries (`?fstype=!tmpfs`): `value` exact, `!value` not equal,
//! `~regex` matches, `!~regex` does not match. Regexes are anchored.
//! [`Selector`] reads Prometheus' series selectors
//! (`host_cpu_percent{host=~"db.*"}`), for `remote_write.match` and
//! `/federate?match[]=`.

use regex::Regex;

/// How one label is tested.
#[derive(Debug, Clone)]
pub enum MatchOp {
    /// Equal to.
    Eq(String),
    /// Not equal to (a missing label is not equal).
    Ne(String),
    /// Whole value matches.
    Re(Regex),
    /// Whole value does not match.
    NotRe(Regex),
}

/// A test on one label of a series.
#[derive(Debug, Clone)]
pub struct Matcher {
    /// Label name.
    pub name: String,
    /// The test.
    pub op: MatchOp,
}

impl Matcher {
    /// Parses `label` and its written form (`"db"`, `"!tmpfs"`, `"~sd.*"`, `"!~loop.*"`).
    pub fn parse(name: &str, written: &str) -> Result<Matcher, String> {
        let anchored = |re: &str| {
            Regex::new(&format!("^(?:{re})$")).map_err(|e| format!("label {name:?}: bad regex {re:?}: {e}"))
        };
        let op = if let Some(re) = written.strip_prefix("!~") {
            MatchOp::NotRe(anchored(re)?)
        } else if let Some(re) = written.strip_prefix('~') {
            MatchOp::Re(anchored(re)?)
        } else if let Some(v) = written.strip_prefix('!') {
            MatchOp::Ne(v.to_string())
        } else {
            MatchOp::Eq(written.to_string())
        };
        Ok(Matcher {
            name: name.to_string(),
            op,
        })
    }

    /// Tests a label value (`None`: the series lacks the label, read as "").
    pub fn matches(&self, value: Option<&str>) -> bool {
        let v = value.unwrap_or("");
        match &self.op {
            MatchOp::Eq(want) => v == want,
            MatchOp::Ne(want) => v != want,
            MatchOp::Re(re) => re.is_match(v),
            MatchOp::NotRe(re) => !re.is_match(v),
        }
    }
}

/// A Prometheus series selector: `metric{label="v", other!~"re.*"}`, the
/// metric name optional when a label matcher is given (`{__name__=~"host_.*"}`).
#[derive(Debug, Clone)]
pub struct Selector {
    /// Tests on `__name__` and the labels.
    pub matchers: Vec<Matcher>,
}

impl Selector {
    /// Parses a selector; the error names the offending part.
    pub fn parse(text: &str) -> Result<Selector, String> {
        let t = text.trim();
        let bad = |why: &str| format!("selector {text:?}: {why}");
        let (name, rest) = match t.find('{') {
            Some(at) => (t[..at].trim(), Some(&t[at..])),
            None => (t, None),
        };
        let mut matchers = Vec::new();
        if !name.is_empty() {
            if watchpost_model::names::check_metric_name(name).is_err() {
                return Err(bad(&format!("{name:?} is not a metric name")));
            }
            matchers.push(Matcher {
                name: "__name__".into(),
                op: MatchOp::Eq(name.to_string()),
            });
        }
        if let Some(rest) = rest {
            let inner = rest
                .strip_prefix('{')
                .and_then(|r| r.strip_suffix('}'))
                .ok_or_else(|| bad("expected one {...} at the end"))?;
            let mut chars = inner.char_indices().peekable();
            loop {
                while chars.next_if(|(_, c)| c.is_whitespace() || *c == ',').is_some() {}
                let Some(&(start, _)) = chars.peek() else { break };
                while chars
                    .next_if(|(_, c)| c.is_ascii_alphanumeric() || *c == '_')
                    .is_some()
                {}
                let end = chars.peek().map_or(inner.len(), |(i, _)| *i);
                let label = &inner[start..end];
                if label.is_empty() {
                    return Err(bad(&format!("expected a label name at {:?}", &inner[start..])));
                }
                while chars.next_if(|(_, c)| c.is_whitespace()).is_some() {}
                let mut op = String::new();
                while let Some((_, c)) = chars.next_if(|(_, c)| matches!(c, '=' | '!' | '~')) {
                    op.push(c);
                }
                while chars.next_if(|(_, c)| c.is_whitespace()).is_some() {}
                if chars.next_if(|(_, c)| *c == '"').is_none() {
                    return Err(bad(&format!("label {label}: expected a quoted value")));
                }
                let mut value = String::new();
                let mut closed = false;
                while let Some((_, c)) = chars.next() {
                    match c {
                        '\\' => match chars.next() {
                            Some((_, 'n')) => value.push('\n'),
                            Some((_, e)) => value.push(e),
                            None => break,
                        },
                        '"' => {
                            closed = true;
                            break;
                        }
                        c => value.push(c),
                    }
                }
                if !closed {
                    return Err(bad(&format!("label {label}: the value's quote is not closed")));
                }
                let written = match op.as_str() {
                    "=" => {
                        if value.starts_with('!') || value.starts_with('~') {
                            // Our own written form would read these as operators.
                            matchers.push(Matcher {
                                name: label.to_string(),
                                op: MatchOp::Eq(value),
                            });
                            continue;
                        }
                        value
                    }
                    "!=" => format!("!{value}"),
                    "=~" => format!("~{value}"),
                    "!~" => format!("!~{value}"),
                    o => return Err(bad(&format!("label {label}: {o:?} is not =, !=, =~ or !~"))),
                };
                matchers.push(Matcher::parse(label, &written).map_err(|e| bad(&e))?);
            }
        }
        if matchers.is_empty() {
            return Err(bad("matches every series: name a metric or a label"));
        }
        Ok(Selector { matchers })
    }

    /// Whether series `metric{labels}` is selected; `label` looks a label up.
    pub fn matches<'a>(&self, metric: &str, label: impl Fn(&str) -> Option<&'a str>) -> bool {
        self.matchers.iter().all(|m| {
            if m.name == "__name__" {
                m.matches(Some(metric))
            } else {
                m.matches(label(&m.name))
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn selectors() {
        let s = Selector::parse(r#"host_cpu_percent{host=~"db.*", mode != "idle",x="a\"b"}"#).expect("valid");
        let labels = [("host", "db1"), ("mode", "user"), ("x", "a\"b")];
        let get = |n: &str| labels.iter().find(|(k, _)| *k == n).map(|(_, v)| *v);
        assert!(s.matches("host_cpu_percent", get));
        assert!(!s.matches("host_load1", get));
        let s = Selector::parse(r#"{__name__=~"host_.*"}"#).expect("valid");
        assert!(s.matches("host_load1", |_| None));
        assert!(!s.matches("snmp_up", |_| None));
        assert!(Selector::parse("up").expect("bare name").matches("up", |_| None));
        for (bad, says) in [
            ("{}", "matches every series"),
            ("m{a=b}", "quoted value"),
            ("m{a=\"b}", "not closed"),
            ("m{a<\"b\"}", "expected a quoted value"),
            ("m{a=~\"(\"}", "bad regex"),
            ("m{a=\"b\"", "{...}"),
            ("1m", "not a metric name"),
        ] {
            let e = Selector::parse(bad).expect_err(bad);
            assert!(e.contains(says), "{bad}: {e}");
        }
    }

    #[test]
    fn ops() {
        let m = |w: &str| Matcher::parse("fstype", w).expect("valid");
        assert!(m("ext4").matches(Some("ext4")));
        assert!(!m("ext4").matches(Some("xfs")));
        assert!(m("!tmpfs").matches(Some("ext4")));
        assert!(!m("!tmpfs").matches(Some("tmpfs")));
        assert!(m("~ext.*").matches(Some("ext4")));
        assert!(!m("~ext").matches(Some("ext4")), "anchored");
        assert!(m("!~loop.*").matches(Some("sda")));
        assert!(!m("!~loop.*").matches(Some("loop0")));
        assert!(m("!x").matches(None));
        assert!(Matcher::parse("a", "~(").is_err());
    }
}
