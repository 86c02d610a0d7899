//! Constraint checks the generated `validate` methods call, and the AWS-shaped error they build.
//!
//! Messages follow AWS's (Coral) wording:
//! `1 validation error detected: Value 'X' at 'repositoryName' failed to satisfy constraint:
//! Member must have length less than or equal to 256`; several violations are joined with `; `
//! under `N validation errors detected: `. Paths name members by their wire names; list elements
//! are `name.<1-based index>.member`, map entries `name.<key>`.
//!
//! Lengths of strings count UTF-16 code units, like the Java services do.

use std::fmt;
use std::sync::LazyLock;

/// A model `pattern`, compiled on first use and matched against the whole value (AWS matches
/// patterns in full, even when the model leaves out `^`/`$`).
pub struct Pattern {
    pub source: &'static str,
    pub regex: LazyLock<regex_lite::Regex>,
}

/// Compile a model pattern anchored at both ends. Used by the generated statics.
///
/// # Panics
/// If regex-lite rejects the pattern; a test compiles every model pattern, so this cannot fire at
/// run time.
#[must_use]
pub fn compile(source: &str) -> regex_lite::Regex {
    #[allow(clippy::expect_used)]
    regex_lite::Regex::new(&format!("^(?:{source})$")).expect("model pattern compiles")
}

/// What a value failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Constraint {
    NotNull,
    MinLength(i64),
    MaxLength(i64),
    MinValue(i64),
    MaxValue(i64),
    Pattern(&'static str),
    EnumValue(&'static [&'static str]),
}

impl fmt::Display for Constraint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::NotNull => f.write_str("Member must not be null"),
            Self::MinLength(n) => write!(f, "Member must have length greater than or equal to {n}"),
            Self::MaxLength(n) => write!(f, "Member must have length less than or equal to {n}"),
            Self::MinValue(n) => write!(f, "Member must have value greater than or equal to {n}"),
            Self::MaxValue(n) => write!(f, "Member must have value less than or equal to {n}"),
            Self::Pattern(p) => write!(f, "Member must satisfy regular expression pattern: {p}"),
            Self::EnumValue(vs) => write!(f, "Member must satisfy enum value set: [{}]", vs.join(", ")),
        }
    }
}

/// One failed constraint on one member.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Violation {
    /// Dotted wire path, e.g. `imageIds.1.member.imageTag`.
    pub path: String,
    /// The offending value as AWS prints it; `None` prints as `null`.
    pub value: Option<String>,
    pub constraint: Constraint,
}

impl fmt::Display for Violation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.value {
            Some(v) => write!(f, "Value '{v}'")?,
            None => f.write_str("Value null")?,
        }
        write!(f, " at '{}' failed to satisfy constraint: {}", self.path, self.constraint)
    }
}

/// All violations found in one request. `Display` gives AWS's `ValidationException` message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ValidationError {
    pub violations: Vec<Violation>,
}

impl ValidationError {
    #[must_use]
    pub fn new(violations: Vec<Violation>) -> Self {
        Self { violations }
    }

    /// The message in ECR's `InvalidParameterException` style for the first violation, e.g.
    /// `Invalid parameter at 'repositoryName' failed to satisfy constraint: 'must have length
    /// greater than or equal to 2'` or `... constraint: 'must satisfy regular expression '<p>''`.
    /// Client reports show real ECR answering repository-name violations this way rather than with
    /// the generic `ValidationException` text of `Display`.
    #[must_use]
    pub fn invalid_parameter_message(&self) -> String {
        let Some(v) = self.violations.first() else { return "Invalid parameter".to_owned() };
        let c = match &v.constraint {
            Constraint::Pattern(p) => format!("must satisfy regular expression '{p}'"),
            other => {
                let c = other.to_string();
                c.strip_prefix("Member ").unwrap_or(&c).to_owned()
            }
        };
        format!("Invalid parameter at '{}' failed to satisfy constraint: '{c}'", v.path)
    }
}

impl fmt::Display for ValidationError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let n = self.violations.len();
        write!(f, "{n} validation error{} detected: ", if n == 1 { "" } else { "s" })?;
        for (i, v) in self.violations.iter().enumerate() {
            if i > 0 {
                f.write_str("; ")?;
            }
            v.fmt(f)?;
        }
        Ok(())
    }
}

impl std::error::Error for ValidationError {}

/// Constraint checks on a decoded value. Generated for every structure reachable from an
/// operation input.
pub trait Validate {
    /// Push every violation under `path` (empty for the top level) onto `out`.
    fn validate_at(&self, path: &str, out: &mut Vec<Violation>);

    /// # Errors
    /// Every violated constraint, in member order.
    fn validate(&self) -> Result<(), ValidationError> {
        let mut out = Vec::new();
        self.validate_at("", &mut out);
        if out.is_empty() { Ok(()) } else { Err(ValidationError::new(out)) }
    }
}

/// Presence checks for `required` members, run on the JSON before typed decoding so that a missing
/// member gives AWS's `Member must not be null` rather than a serde message. `null` counts as
/// missing.
pub trait Required {
    fn check_required(value: &serde_json::Value, path: &str, out: &mut Vec<Violation>);
}

/// Implemented by `string_enum!` types.
pub trait EnumValue {
    fn enum_str(&self) -> &str;
    fn enum_is_known(&self) -> bool;
    fn enum_values() -> &'static [&'static str];
}

/// `parent.name`, or `name` at the top level.
#[must_use]
pub fn join(parent: &str, name: &str) -> String {
    if parent.is_empty() { name.to_owned() } else { format!("{parent}.{name}") }
}

/// Path of the `i`th (0-based) element of the list at `path`.
#[must_use]
pub fn element(path: &str, i: usize) -> String {
    format!("{path}.{}.member", i + 1)
}

#[allow(clippy::cast_possible_wrap)]
fn len_i64(n: usize) -> i64 {
    n as i64
}

fn push(out: &mut Vec<Violation>, path: &str, value: Option<String>, constraint: Constraint) {
    out.push(Violation { path: path.to_owned(), value, constraint });
}

/// String length (UTF-16 units) and pattern.
pub fn string(
    out: &mut Vec<Violation>,
    path: &str,
    s: &str,
    min: Option<i64>,
    max: Option<i64>,
    pattern: Option<&Pattern>,
) {
    if min.is_some() || max.is_some() {
        let n = len_i64(s.encode_utf16().count());
        if let Some(m) = min.filter(|m| n < *m) {
            push(out, path, Some(s.to_owned()), Constraint::MinLength(m));
        }
        if let Some(m) = max.filter(|m| n > *m) {
            push(out, path, Some(s.to_owned()), Constraint::MaxLength(m));
        }
    }
    if let Some(p) = pattern
        && !p.regex.is_match(s)
    {
        push(out, path, Some(s.to_owned()), Constraint::Pattern(p.source));
    }
}

/// Integer range.
pub fn number(out: &mut Vec<Violation>, path: &str, n: i64, min: Option<i64>, max: Option<i64>) {
    if let Some(m) = min.filter(|m| n < *m) {
        push(out, path, Some(n.to_string()), Constraint::MinValue(m));
    }
    if let Some(m) = max.filter(|m| n > *m) {
        push(out, path, Some(n.to_string()), Constraint::MaxValue(m));
    }
}

/// Length of a list, map or blob. `show` renders the value for the message only on failure.
pub fn length(
    out: &mut Vec<Violation>,
    path: &str,
    n: usize,
    min: Option<i64>,
    max: Option<i64>,
    show: impl Fn() -> String,
) {
    let n = len_i64(n);
    if let Some(m) = min.filter(|m| n < *m) {
        push(out, path, Some(show()), Constraint::MinLength(m));
    }
    if let Some(m) = max.filter(|m| n > *m) {
        push(out, path, Some(show()), Constraint::MaxLength(m));
    }
}

/// An enum value the model does not list.
pub fn enum_value<E: EnumValue>(out: &mut Vec<Violation>, path: &str, e: &E) {
    if !e.enum_is_known() {
        push(out, path, Some(e.enum_str().to_owned()), Constraint::EnumValue(E::enum_values()));
    }
}

/// A missing or `null` required member of the JSON object `obj`.
pub fn required(out: &mut Vec<Violation>, obj: &serde_json::Value, path: &str, name: &str) {
    let Some(obj) = obj.as_object() else { return };
    if obj.get(name).is_none_or(serde_json::Value::is_null) {
        push(out, &join(path, name), None, Constraint::NotNull);
    }
}

/// How a list is printed in a message: `[a, b]` for scalars, as Java's `List.toString` does.
#[must_use]
pub fn show_list<T: fmt::Display>(items: &[T]) -> String {
    let parts: Vec<String> = items.iter().map(ToString::to_string).collect();
    format!("[{}]", parts.join(", "))
}
