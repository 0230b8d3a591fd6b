//! Threshold conditions as written in rules: `"> 90"`, `"<= 5"`, `"== 0"`.

use std::fmt;

/// A comparison operator.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    /// `>`
    Gt,
    /// `>=`
    Ge,
    /// `<`
    Lt,
    /// `<=`
    Le,
    /// `==`
    Eq,
    /// `!=`
    Ne,
}

/// `value OP threshold`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Condition {
    /// The operator.
    pub op: Op,
    /// The right-hand side.
    pub threshold: f64,
}

impl Condition {
    /// Parses `"> 90"`; the error says what was expected.
    pub fn parse(s: &str) -> Result<Condition, String> {
        let t = s.trim();
        let (op, rest) = [
            (">=", Op::Ge),
            ("<=", Op::Le),
            ("==", Op::Eq),
            ("!=", Op::Ne),
            (">", Op::Gt),
            ("<", Op::Lt),
        ]
        .iter()
        .find_map(|(p, op)| t.strip_prefix(p).map(|r| (*op, r)))
        .ok_or_else(|| {
            format!(
                "invalid condition {s:?}: expected an operator (> >= < <= == !=) and a number, e.g. \"> 90\""
            )
        })?;
        let threshold: f64 = rest
            .trim()
            .parse()
            .map_err(|_| format!("invalid condition {s:?}: {:?} is not a number", rest.trim()))?;
        if !threshold.is_finite() {
            return Err(format!("invalid condition {s:?}: the threshold must be finite"));
        }
        Ok(Condition { op, threshold })
    }

    /// Whether `v` satisfies the condition (never for NaN).
    pub fn holds(&self, v: f64) -> bool {
        let t = self.threshold;
        match self.op {
            Op::Gt => v > t,
            Op::Ge => v >= t,
            Op::Lt => v < t,
            Op::Le => v <= t,
            Op::Eq => v == t,
            Op::Ne => !v.is_nan() && v != t,
        }
    }

    /// Whether some value satisfies both conditions (a recovery threshold
    /// that overlaps the firing one would resolve a fault as it fires).
    /// Only decided for the ordering operators; `==`/`!=` are not checked.
    pub fn overlaps(&self, other: &Condition) -> bool {
        use Op::*;
        let (a, b) = (self.threshold, other.threshold);
        match (self.op, other.op) {
            (Gt | Ge, Gt | Ge) | (Lt | Le, Lt | Le) => true,
            (Gt, Lt | Le) => b > a,
            (Ge, Lt) => b > a,
            (Ge, Le) => b >= a,
            (Lt | Le, Gt | Ge) => other.overlaps(self),
            _ => false,
        }
    }
}

impl fmt::Display for Condition {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let op = match self.op {
            Op::Gt => ">",
            Op::Ge => ">=",
            Op::Lt => "<",
            Op::Le => "<=",
            Op::Eq => "==",
            Op::Ne => "!=",
        };
        write!(f, "{op} {}", self.threshold)
    }
}

impl<'de> serde::Deserialize<'de> for Condition {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        Condition::parse(&s).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_and_hold() {
        let c = Condition::parse("> 90").expect("valid");
        assert!(c.holds(90.5) && !c.holds(90.0) && !c.holds(f64::NAN));
        assert!(Condition::parse("<=5").expect("valid").holds(5.0));
        assert!(Condition::parse("!= 0").expect("valid").holds(1.0));
        assert!(Condition::parse("90").is_err());
        assert!(Condition::parse("> ninety").is_err());
        assert!(Condition::parse("> inf").is_err());
    }

    #[test]
    fn overlap() {
        let p = |s| Condition::parse(s).expect("valid");
        assert!(!p("> 90").overlaps(&p("< 85")));
        assert!(!p("> 90").overlaps(&p("<= 90")));
        assert!(p("> 90").overlaps(&p("< 95")));
        assert!(p("> 90").overlaps(&p("> 95")));
        assert!(!p("< 10").overlaps(&p("> 15")));
        assert!(p("<= 10").overlaps(&p(">= 10")));
        assert!(!p("< 10").overlaps(&p(">= 10")));
    }
}
