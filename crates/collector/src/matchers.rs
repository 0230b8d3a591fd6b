//! Label matchers, as written in rules (`match = { fstype = "!tmpfs" }`) and
//! in API queries (`?fstype=!tmpfs`): `value` exact, `!value` not equal,
//! `~regex` matches, `!~regex` does not match. Regexes are anchored.

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

#[cfg(test)]
mod tests {
    use super::*;

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
