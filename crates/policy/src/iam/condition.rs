//! The `Condition` element: parsing into pre-compiled clauses, and evaluation against a
//! [`Context`].
//!
//! # Semantics (following the AWS IAM condition-operator reference)
//! - All operators of a block, and all keys under one operator, are combined with AND. The values
//!   listed for one key are combined with OR.
//! - Positive operators (`StringEquals`, `ArnLike`, `NumericLessThan`, `IpAddress`, ...) hold when
//!   some context value of the key matches some policy value. On a key that is **absent** from
//!   the request context they are **false**.
//! - Negated operators (`StringNotEquals`, `StringNotEqualsIgnoreCase`, `StringNotLike`,
//!   `ArnNotEquals`, `ArnNotLike`, `NumericNotEquals`, `DateNotEquals`, `NotIpAddress`) hold when
//!   no context value matches any of the policy values. AWS documents that "if the policy
//!   condition requires that the key is *not* matched ... and the right key is not present, the
//!   condition is *true*", so on an absent key they are **true**.
//! - `...IfExists` (every operator except `Null`): an absent key makes the clause true; a present
//!   key is tested by the base operator.
//! - `Null`: `"true"` holds when the key is absent, `"false"` when it is present.
//! - Set operators, with `p(v)` = "context value `v` matches a policy value" for a positive
//!   operator and "`v` matches none of the policy values" for a negated one:
//!   `ForAnyValue:` holds when `p(v)` for at least one value (false on an absent/empty key);
//!   `ForAllValues:` holds when `p(v)` for every value (true on an absent/empty key).
//!   Set operators are not accepted on `Null`.
//! - A context value that cannot be read as the operator's type (a number, a date, a boolean, an
//!   IP address) matches no policy value.
//! - Operator names, prefixes and the `IfExists` suffix are case-sensitive as in AWS's grammar;
//!   condition key names are case-insensitive.

use std::net::IpAddr;

use serde_json::Value;

use super::net::Cidr;
use super::pattern::{ArnPattern, Wildcard, wildcard};
use super::time::{self, Timestamp};
use super::{Context, PolicyError, eq_ignore_case, fold_case};

/// A compiled `Condition` block: the conjunction of its clauses.
#[derive(Debug, Clone, Default)]
pub(crate) struct Condition {
    clauses: Box<[Clause]>,
}

#[derive(Debug, Clone)]
struct Clause {
    /// The condition key, case-folded.
    key: Box<str>,
    set: SetOp,
    if_exists: bool,
    test: Test,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum SetOp {
    Single,
    ForAnyValue,
    ForAllValues,
}

#[derive(Debug, Clone)]
enum Test {
    /// `Null`: each value is "the key is expected to be absent".
    Null(Box<[bool]>),
    Match {
        negated: bool,
        values: Values,
    },
}

#[derive(Debug, Clone, Copy)]
enum Cmp {
    Eq,
    Lt,
    Le,
    Gt,
    Ge,
}

impl Cmp {
    /// `context OP policy`.
    fn apply<T: PartialOrd>(self, context: &T, policy: &T) -> bool {
        match self {
            Cmp::Eq => context == policy,
            Cmp::Lt => context < policy,
            Cmp::Le => context <= policy,
            Cmp::Gt => context > policy,
            Cmp::Ge => context >= policy,
        }
    }
}

#[derive(Debug, Clone)]
enum Values {
    Equals(Box<[Box<str>]>),
    EqualsIgnoreCase(Box<[Box<str>]>),
    Like(Box<[Wildcard]>),
    Arn(Box<[ArnPattern]>),
    Numeric(Cmp, Box<[f64]>),
    Date(Cmp, Box<[Timestamp]>),
    Bool(Box<[bool]>),
    Ip(Box<[Cidr]>),
}

impl Values {
    /// Whether one context value matches at least one policy value.
    fn any_matches(&self, v: &str) -> bool {
        match self {
            Values::Equals(ps) => ps.iter().any(|p| **p == *v),
            Values::EqualsIgnoreCase(ps) => ps.iter().any(|p| eq_ignore_case(p, v)),
            Values::Like(ps) => ps.iter().any(|p| p.matches(v)),
            Values::Arn(ps) => ps.iter().any(|p| p.matches(v)),
            Values::Numeric(cmp, ps) => match v.trim().parse::<f64>() {
                Ok(x) if x.is_finite() => ps.iter().any(|p| cmp.apply(&x, p)),
                _ => false,
            },
            Values::Date(cmp, ps) => time::parse(v).is_some_and(|t| ps.iter().any(|p| cmp.apply(&t, p))),
            Values::Bool(ps) => parse_bool(v).is_some_and(|b| ps.contains(&b)),
            Values::Ip(ps) => v.trim().parse::<IpAddr>().is_ok_and(|ip| ps.iter().any(|c| c.contains(ip))),
        }
    }
}

fn parse_bool(v: &str) -> Option<bool> {
    if v.eq_ignore_ascii_case("true") {
        Some(true)
    } else if v.eq_ignore_ascii_case("false") {
        Some(false)
    } else {
        None
    }
}

/// Value families of the base operators.
#[derive(Debug, Clone, Copy)]
enum Family {
    Equals,
    EqualsIgnoreCase,
    Like,
    Arn,
    Numeric(Cmp),
    Date(Cmp),
    Bool,
    Ip,
    Null,
}

/// Every base operator: name, family, negated.
const OPERATORS: &[(&str, Family, bool)] = &[
    ("StringEquals", Family::Equals, false),
    ("StringNotEquals", Family::Equals, true),
    ("StringEqualsIgnoreCase", Family::EqualsIgnoreCase, false),
    ("StringNotEqualsIgnoreCase", Family::EqualsIgnoreCase, true),
    ("StringLike", Family::Like, false),
    ("StringNotLike", Family::Like, true),
    ("ArnEquals", Family::Arn, false),
    ("ArnLike", Family::Arn, false),
    ("ArnNotEquals", Family::Arn, true),
    ("ArnNotLike", Family::Arn, true),
    ("NumericEquals", Family::Numeric(Cmp::Eq), false),
    ("NumericNotEquals", Family::Numeric(Cmp::Eq), true),
    ("NumericLessThan", Family::Numeric(Cmp::Lt), false),
    ("NumericLessThanEquals", Family::Numeric(Cmp::Le), false),
    ("NumericGreaterThan", Family::Numeric(Cmp::Gt), false),
    ("NumericGreaterThanEquals", Family::Numeric(Cmp::Ge), false),
    ("DateEquals", Family::Date(Cmp::Eq), false),
    ("DateNotEquals", Family::Date(Cmp::Eq), true),
    ("DateLessThan", Family::Date(Cmp::Lt), false),
    ("DateLessThanEquals", Family::Date(Cmp::Le), false),
    ("DateGreaterThan", Family::Date(Cmp::Gt), false),
    ("DateGreaterThanEquals", Family::Date(Cmp::Ge), false),
    ("Bool", Family::Bool, false),
    // Base64 values compared as exact strings.
    ("BinaryEquals", Family::Equals, false),
    ("IpAddress", Family::Ip, false),
    ("NotIpAddress", Family::Ip, true),
    ("Null", Family::Null, false),
];

impl Condition {
    /// Compiles a `Condition` element. `at` prefixes error messages (e.g. `Statement[2]`).
    pub(crate) fn parse(value: &Value, at: &str) -> Result<Self, PolicyError> {
        let Value::Object(ops) = value else {
            return Err(PolicyError(format!(
                "{at}: Condition must be an object mapping operators to {{key: values}}, not {}",
                kind_of(value)
            )));
        };
        let mut clauses = Vec::new();
        for (op_name, keys) in ops {
            let (set, if_exists, family, negated) = parse_operator(op_name)
                .ok_or_else(|| PolicyError(format!("{at}: unknown condition operator \"{op_name}\"")))?;
            if matches!(family, Family::Null) && (if_exists || set != SetOp::Single) {
                return Err(PolicyError(format!(
                    "{at}: condition operator \"{op_name}\" is not supported: Null takes no IfExists suffix or set prefix"
                )));
            }
            let Value::Object(keys) = keys else {
                return Err(PolicyError(format!(
                    "{at}: Condition operator \"{op_name}\" must map to an object of condition keys, not {}",
                    kind_of(keys)
                )));
            };
            if keys.is_empty() {
                return Err(PolicyError(format!("{at}: Condition operator \"{op_name}\" has no condition keys")));
            }
            for (key, raw) in keys {
                let here = || format!("{at}: Condition {op_name} on \"{key}\"");
                if key.trim().is_empty() {
                    return Err(PolicyError(format!("{at}: Condition {op_name} has an empty condition key")));
                }
                let strings = condition_values(raw).map_err(|why| PolicyError(format!("{}: {why}", here())))?;
                let test =
                    compile_test(family, negated, &strings).map_err(|why| PolicyError(format!("{}: {why}", here())))?;
                clauses.push(Clause { key: fold_case(key).into(), set, if_exists, test });
            }
        }
        Ok(Self { clauses: clauses.into() })
    }

    /// True when every clause holds for `ctx` (an empty block always holds).
    pub(crate) fn holds(&self, ctx: &Context) -> bool {
        self.clauses.iter().all(|c| c.holds(ctx))
    }
}

impl Clause {
    fn holds(&self, ctx: &Context) -> bool {
        let present: &[String] = ctx.get_folded(&self.key).unwrap_or(&[]);
        match &self.test {
            Test::Null(expect_absent) => {
                let absent = present.is_empty();
                expect_absent.contains(&absent)
            }
            Test::Match { negated, values } => {
                if present.is_empty() && self.if_exists {
                    return true;
                }
                let p = |v: &String| values.any_matches(v) != *negated;
                match self.set {
                    // Positive: some value matches. Negated: no value matches (true when absent).
                    SetOp::Single if *negated => present.iter().all(p),
                    SetOp::Single | SetOp::ForAnyValue => present.iter().any(p),
                    SetOp::ForAllValues => present.iter().all(p),
                }
            }
        }
    }
}

/// Splits `ForAnyValue:StringLikeIfExists` into its parts.
fn parse_operator(name: &str) -> Option<(SetOp, bool, Family, bool)> {
    let (set, rest) = if let Some(r) = name.strip_prefix("ForAnyValue:") {
        (SetOp::ForAnyValue, r)
    } else if let Some(r) = name.strip_prefix("ForAllValues:") {
        (SetOp::ForAllValues, r)
    } else {
        (SetOp::Single, name)
    };
    let (if_exists, base) = match rest.strip_suffix("IfExists") {
        Some(b) => (true, b),
        None => (false, rest),
    };
    let &(_, family, negated) = OPERATORS.iter().find(|(n, _, _)| *n == base)?;
    Some((set, if_exists, family, negated))
}

/// A condition value or array of values, as strings. Numbers and booleans are accepted and
/// written in their JSON form, as AWS does.
fn condition_values(raw: &Value) -> Result<Vec<String>, String> {
    let one = |v: &Value| match v {
        Value::String(s) => Ok(s.clone()),
        Value::Number(n) => Ok(n.to_string()),
        Value::Bool(b) => Ok(b.to_string()),
        other => Err(format!("condition values must be strings, numbers or booleans, not {}", kind_of(other))),
    };
    match raw {
        Value::Array(items) if items.is_empty() => Err("the list of condition values is empty".to_owned()),
        Value::Array(items) => items.iter().map(one).collect(),
        v => one(v).map(|s| vec![s]),
    }
}

fn compile_test(family: Family, negated: bool, strings: &[String]) -> Result<Test, String> {
    fn each<T>(strings: &[String], f: impl Fn(&str) -> Result<T, String>) -> Result<Box<[T]>, String> {
        strings.iter().map(|s| f(s)).collect()
    }
    let values = match family {
        Family::Null => {
            let vals =
                each(strings, |s| parse_bool(s).ok_or_else(|| format!("Null takes \"true\" or \"false\", not {s:?}")))?;
            return Ok(Test::Null(vals));
        }
        Family::Equals => Values::Equals(each(strings, |s| Ok(s.into()))?),
        Family::EqualsIgnoreCase => Values::EqualsIgnoreCase(each(strings, |s| Ok(s.into()))?),
        Family::Like => Values::Like(each(strings, |s| Ok(wildcard(s, false)))?),
        Family::Arn => Values::Arn(each(strings, |s| Ok(ArnPattern::new(s)))?),
        Family::Numeric(cmp) => Values::Numeric(
            cmp,
            each(strings, |s| match s.trim().parse::<f64>() {
                Ok(x) if x.is_finite() => Ok(x),
                _ => Err(format!("{s:?} is not a number")),
            })?,
        ),
        Family::Date(cmp) => Values::Date(
            cmp,
            each(strings, |s| {
                time::parse(s).ok_or_else(|| {
                    format!(
                        "{s:?} is not a date (expected ISO 8601 such as \"2026-11-23T12:00:00Z\", or epoch seconds)"
                    )
                })
            })?,
        ),
        Family::Bool => {
            Values::Bool(each(strings, |s| parse_bool(s).ok_or_else(|| format!("{s:?} is not \"true\" or \"false\"")))?)
        }
        Family::Ip => Values::Ip(each(strings, |s| {
            Cidr::parse(s.trim()).ok_or_else(|| format!("{s:?} is not an IP address or CIDR block"))
        })?),
    };
    Ok(Test::Match { negated, values })
}

/// A short name for a JSON value's type, for error messages.
pub(crate) fn kind_of(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}
