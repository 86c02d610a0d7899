//! One OSV record, validated and reduced to what the database keeps.
//!
//! Field names and types follow ossf/osv-schema `docs/schema.md`. What is checked, and what is
//! tolerated:
//! - required: `id` (a non-empty string) and `modified` (an RFC 3339 timestamp);
//! - every other field the schema names must have the schema's JSON type when present (`null`
//!   counts as absent); `published` and `withdrawn` must be RFC 3339 timestamps;
//! - a range's `type` is `ECOSYSTEM`, `SEMVER` or `GIT`; each event is an object with exactly one
//!   key out of `introduced`, `fixed`, `last_affected`, `limit`, whose value is a string; an
//!   `ECOSYSTEM` or `SEMVER` range holds at least one `introduced`;
//! - tolerated: fields the schema does not name (anywhere), `affected[]` entries without a
//!   `package` (GIT-only records; they are dropped), `ecosystem_specific` and
//!   `database_specific` of any shape (only a string `urgency`/`severity` inside an object is
//!   read).
//!
//! Several `affected[]` entries for the same package (after name normalisation) are merged into
//! one: their ranges and versions are alternatives, so the union means the same.
//!
//! The vendor severity of a package is the first string among its entry's
//! `ecosystem_specific.urgency` (Debian), `ecosystem_specific.severity`,
//! `database_specific.severity`, then the record's own `database_specific.severity` (GitHub's
//! rating). Ubuntu's rating is a `severity[]` of type `Ubuntu` and stays there.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// A record that failed validation: the id when it could be read, and what is wrong.
#[derive(Debug)]
pub(crate) struct RecordError {
    pub id: Option<String>,
    pub message: String,
}

/// A range as stored: OSV's own JSON shape, restricted to `type` and `events`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct StoredRange {
    #[serde(rename = "type")]
    pub kind: String,
    pub events: Vec<StoredEvent>,
}

/// An event as stored: `{"introduced": "1.0"}` and so on, as in OSV.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub(crate) enum StoredEvent {
    Introduced(String),
    Fixed(String),
    LastAffected(String),
    Limit(String),
}

/// A severity as stored: OSV's `{"type", "score"}`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct StoredSeverity {
    #[serde(rename = "type")]
    pub kind: String,
    pub score: String,
}

/// One package named by a record.
#[derive(Debug)]
pub(crate) struct Package {
    pub ecosystem: String,
    /// The name as the record writes it (the first spelling seen).
    pub name: String,
    /// The name lookups compare: [`lookup_name`] of `name`.
    pub key: String,
    pub ranges: Vec<StoredRange>,
    pub versions: Vec<String>,
    pub vendor_severity: Option<String>,
}

#[derive(Debug)]
pub(crate) struct Record {
    pub id: String,
    /// `modified` as written.
    pub modified: String,
    pub modified_at: jiff::Timestamp,
    pub withdrawn: bool,
    pub published: Option<String>,
    pub summary: Option<String>,
    pub details: Option<String>,
    pub aliases: Vec<String>,
    pub upstream: Vec<String>,
    pub severity: Vec<StoredSeverity>,
    pub references: Vec<String>,
    pub packages: Vec<Package>,
}

/// The name under which a package is stored and looked up: PEP 503 normalised for PyPI
/// (lowercase, each run of `-`, `_` and `.` one `-`), exactly as given elsewhere.
pub fn lookup_name(ecosystem: &str, name: &str) -> String {
    if ecosystem != "PyPI" {
        return name.to_owned();
    }
    let mut out = String::with_capacity(name.len());
    let mut in_run = false;
    for c in name.chars() {
        if matches!(c, '-' | '_' | '.') {
            if !in_run {
                out.push('-');
            }
            in_run = true;
        } else {
            out.extend(c.to_lowercase());
            in_run = false;
        }
    }
    out
}

pub(crate) fn parse_timestamp(s: &str) -> Option<jiff::Timestamp> {
    s.parse::<jiff::Timestamp>().ok()
}

type Res<T> = Result<T, String>;

fn type_name(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

fn field<'a>(obj: &'a Map<String, Value>, key: &str) -> Option<&'a Value> {
    obj.get(key).filter(|v| !v.is_null())
}

fn opt_str<'a>(obj: &'a Map<String, Value>, key: &str, at: &str) -> Res<Option<&'a str>> {
    match field(obj, key) {
        None => Ok(None),
        Some(Value::String(s)) => Ok(Some(s)),
        Some(v) => Err(format!("{at}{key}: expected a string, found {}", type_name(v))),
    }
}

fn opt_array<'a>(obj: &'a Map<String, Value>, key: &str, at: &str) -> Res<&'a [Value]> {
    match field(obj, key) {
        None => Ok(&[]),
        Some(Value::Array(a)) => Ok(a),
        Some(v) => Err(format!("{at}{key}: expected an array, found {}", type_name(v))),
    }
}

fn str_array(obj: &Map<String, Value>, key: &str, at: &str) -> Res<Vec<String>> {
    opt_array(obj, key, at)?
        .iter()
        .enumerate()
        .map(|(i, v)| match v {
            Value::String(s) => Ok(s.clone()),
            v => Err(format!("{at}{key}[{i}]: expected a string, found {}", type_name(v))),
        })
        .collect()
}

fn as_object<'a>(v: &'a Value, at: &str) -> Res<&'a Map<String, Value>> {
    match v {
        Value::Object(m) => Ok(m),
        v => Err(format!("{at}: expected an object, found {}", type_name(v))),
    }
}

fn timestamp(obj: &Map<String, Value>, key: &str) -> Res<Option<(String, jiff::Timestamp)>> {
    match opt_str(obj, key, "")? {
        None => Ok(None),
        Some(s) => match parse_timestamp(s) {
            Some(t) => Ok(Some((s.to_owned(), t))),
            None => Err(format!("{key}: {s:?} is not an RFC 3339 timestamp")),
        },
    }
}

/// A string `key` inside `obj[container]` when that is an object.
fn nested_str(obj: &Map<String, Value>, container: &str, key: &str) -> Option<String> {
    match obj.get(container) {
        Some(Value::Object(m)) => match m.get(key) {
            Some(Value::String(s)) => Some(s.clone()),
            _ => None,
        },
        _ => None,
    }
}

/// Validates one record (the JSON text of one object).
pub(crate) fn parse_record(text: &str) -> Result<Record, RecordError> {
    let value: Value =
        serde_json::from_str(text).map_err(|e| RecordError { id: None, message: format!("not valid JSON: {e}") })?;
    let Value::Object(obj) = value else {
        return Err(RecordError {
            id: None,
            message: format!("a record must be a JSON object, found {}", type_name(&value)),
        });
    };
    let id = match obj.get("id") {
        Some(Value::String(s)) if !s.is_empty() => s.clone(),
        Some(Value::String(_)) => return Err(RecordError { id: None, message: "id is empty".into() }),
        None | Some(Value::Null) => return Err(RecordError { id: None, message: "id is missing".into() }),
        Some(v) => {
            return Err(RecordError { id: None, message: format!("id: expected a string, found {}", type_name(v)) });
        }
    };
    record_fields(&obj, id.clone()).map_err(|message| RecordError { id: Some(id), message })
}

fn record_fields(obj: &Map<String, Value>, id: String) -> Res<Record> {
    let (modified, modified_at) = timestamp(obj, "modified")?.ok_or("modified is missing")?;
    let withdrawn = timestamp(obj, "withdrawn")?.is_some();
    let published = timestamp(obj, "published")?.map(|(s, _)| s);
    let summary = opt_str(obj, "summary", "")?.map(str::to_owned);
    let details = opt_str(obj, "details", "")?.map(str::to_owned);
    let aliases = str_array(obj, "aliases", "")?;
    let upstream = str_array(obj, "upstream", "")?;
    str_array(obj, "related", "")?;
    opt_str(obj, "schema_version", "")?;

    let mut severity = Vec::new();
    for (i, s) in opt_array(obj, "severity", "")?.iter().enumerate() {
        let at = format!("severity[{i}]");
        let s = as_object(s, &at)?;
        let at = format!("{at}.");
        let kind = opt_str(s, "type", &at)?.ok_or_else(|| format!("{at}type is missing"))?;
        let score = opt_str(s, "score", &at)?.ok_or_else(|| format!("{at}score is missing"))?;
        severity.push(StoredSeverity { kind: kind.to_owned(), score: score.to_owned() });
    }

    let mut references = Vec::new();
    for (i, r) in opt_array(obj, "references", "")?.iter().enumerate() {
        let at = format!("references[{i}]");
        let r = as_object(r, &at)?;
        let at = format!("{at}.");
        opt_str(r, "type", &at)?;
        let url = opt_str(r, "url", &at)?.ok_or_else(|| format!("{at}url is missing"))?;
        references.push(url.to_owned());
    }

    // Top-level `database_specific.severity` (GitHub's rating) applies to every package.
    let record_severity = nested_str(obj, "database_specific", "severity");
    let mut packages: Vec<Package> = Vec::new();
    for (i, a) in opt_array(obj, "affected", "")?.iter().enumerate() {
        let at = format!("affected[{i}]");
        let a = as_object(a, &at)?;
        let entry = affected_entry(a, &at)?;
        let Some(mut entry) = entry else { continue };
        if entry.vendor_severity.is_none() {
            entry.vendor_severity.clone_from(&record_severity);
        }
        match packages.iter_mut().find(|p| p.ecosystem == entry.ecosystem && p.key == entry.key) {
            Some(p) => {
                p.ranges.append(&mut entry.ranges);
                p.versions.append(&mut entry.versions);
                if p.vendor_severity.is_none() {
                    p.vendor_severity = entry.vendor_severity;
                }
            }
            None => packages.push(entry),
        }
    }

    Ok(Record {
        id,
        modified,
        modified_at,
        withdrawn,
        published,
        summary,
        details,
        aliases,
        upstream,
        severity,
        references,
        packages,
    })
}

/// One `affected[]` entry; `None` when it names no package.
fn affected_entry(a: &Map<String, Value>, at: &str) -> Res<Option<Package>> {
    // Ranges and versions are checked even when the entry is dropped for want of a package.
    let mut ranges = Vec::new();
    for (j, r) in opt_array(a, "ranges", &format!("{at}."))?.iter().enumerate() {
        ranges.push(range(r, &format!("{at}.ranges[{j}]"))?);
    }
    let versions = str_array(a, "versions", &format!("{at}."))?;
    let Some(pkg) = field(a, "package") else { return Ok(None) };
    let pat = format!("{at}.package");
    let pkg = as_object(pkg, &pat)?;
    let pat = format!("{pat}.");
    let ecosystem = opt_str(pkg, "ecosystem", &pat)?.ok_or_else(|| format!("{pat}ecosystem is missing"))?;
    let name = opt_str(pkg, "name", &pat)?.ok_or_else(|| format!("{pat}name is missing"))?;
    opt_str(pkg, "purl", &pat)?;
    if ecosystem.is_empty() || name.is_empty() {
        return Err(format!("{pat}ecosystem and name must not be empty"));
    }
    let vendor_severity = nested_str(a, "ecosystem_specific", "urgency")
        .or_else(|| nested_str(a, "ecosystem_specific", "severity"))
        .or_else(|| nested_str(a, "database_specific", "severity"));
    Ok(Some(Package {
        ecosystem: ecosystem.to_owned(),
        name: name.to_owned(),
        key: lookup_name(ecosystem, name),
        ranges,
        versions,
        vendor_severity,
    }))
}

fn range(r: &Value, at: &str) -> Res<StoredRange> {
    let r = as_object(r, at)?;
    let kind = opt_str(r, "type", &format!("{at}."))?.ok_or_else(|| format!("{at}.type is missing"))?;
    if !matches!(kind, "ECOSYSTEM" | "SEMVER" | "GIT") {
        return Err(format!("{at}.type: unknown range type {kind:?}"));
    }
    opt_str(r, "repo", &format!("{at}."))?;
    let mut events = Vec::new();
    for (k, e) in opt_array(r, "events", &format!("{at}."))?.iter().enumerate() {
        let eat = format!("{at}.events[{k}]");
        let e = as_object(e, &eat)?;
        let mut keys = e.iter();
        let (Some((key, value)), None) = (keys.next(), keys.next()) else {
            return Err(format!("{eat}: an event must have exactly one key, found {}", e.len()));
        };
        let Value::String(v) = value else {
            return Err(format!("{eat}.{key}: expected a string, found {}", type_name(value)));
        };
        let v = v.clone();
        events.push(match key.as_str() {
            "introduced" => StoredEvent::Introduced(v),
            "fixed" => StoredEvent::Fixed(v),
            "last_affected" => StoredEvent::LastAffected(v),
            "limit" => StoredEvent::Limit(v),
            other => return Err(format!("{eat}: unknown event {other:?}")),
        });
    }
    if events.is_empty() {
        return Err(format!("{at}.events: a range needs at least one event"));
    }
    if kind != "GIT" && !events.iter().any(|e| matches!(e, StoredEvent::Introduced(_))) {
        return Err(format!("{at}: an {kind} range needs an \"introduced\" event"));
    }
    Ok(StoredRange { kind: kind.to_owned(), events })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pep503() {
        assert_eq!(lookup_name("PyPI", "Foo__Bar.-baz"), "foo-bar-baz");
        assert_eq!(lookup_name("PyPI", "Django"), "django");
        assert_eq!(lookup_name("npm", "Foo_Bar"), "Foo_Bar");
        assert_eq!(lookup_name("Debian:12", "libFoo.1"), "libFoo.1");
    }

    #[test]
    fn event_with_two_keys_is_refused() {
        let e = parse_record(
            r#"{"id":"X-1","modified":"2024-01-01T00:00:00Z","affected":[{"package":{"ecosystem":"npm","name":"a"},
            "ranges":[{"type":"SEMVER","events":[{"introduced":"0","fixed":"1"}]}]}]}"#,
        )
        .unwrap_err();
        assert_eq!(e.id.as_deref(), Some("X-1"));
        assert!(
            e.message.contains("affected[0].ranges[0].events[0]: an event must have exactly one key"),
            "{}",
            e.message
        );
    }

    #[test]
    fn merges_entries_of_one_package() {
        let r = parse_record(
            r#"{"id":"X-2","modified":"2024-01-01T00:00:00.5+02:00","affected":[
            {"package":{"ecosystem":"PyPI","name":"Foo_Bar"},"versions":["1.0"]},
            {"package":{"ecosystem":"PyPI","name":"foo.bar"},"ranges":[{"type":"ECOSYSTEM","events":[{"introduced":"2"}]}],
             "database_specific":{"severity":"HIGH"}}]}"#,
        )
        .unwrap();
        assert_eq!(r.packages.len(), 1);
        let p = &r.packages[0];
        assert_eq!((p.name.as_str(), p.key.as_str()), ("Foo_Bar", "foo-bar"));
        assert_eq!(p.versions, ["1.0"]);
        assert_eq!(p.ranges.len(), 1);
        assert_eq!(p.vendor_severity.as_deref(), Some("HIGH"));
        assert_eq!(r.modified_at.to_string(), "2023-12-31T22:00:00.5Z");
    }
}
