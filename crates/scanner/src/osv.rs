//! Whether a version is affected, as OSV's schema evaluates `affected[]`
//! (ossf/osv-schema `docs/schema.md`, "Evaluation").
//!
//! A version is affected when `versions` lists it, or when some `ECOSYSTEM` or `SEMVER` range
//! holds it: the range's events sorted by version (in the ecosystem's order, whatever the range
//! type), walking up from the bottom, `introduced` (`"0"`: from the beginning) turns it on at
//! its version, `fixed` turns it off at its version and `last_affected` just above its version;
//! the state at the version is the answer, and it must also be below some `limit` when the range
//! has any (`"*"` is no limit). `GIT` ranges are never evaluated: an image records versions, not
//! commits.
//!
//! Decisions where the schema is silent:
//! - A version the ecosystem cannot parse is affected only when `versions` holds it exactly.
//! - A range with an event whose version does not parse is skipped whole (neither affecting
//!   nor clearing anything): a half-read range would guess.
//! - Events at the same version apply `introduced` first, then `last_affected`, then `fixed`.
//! - A `versions` entry matches when it is the same string or an equal version (`1.0` and
//!   `0:1.0` in dpkg).

use std::cmp::Ordering;

use crate::advisory::{Affected, Event, Range, RangeKind};
use crate::version::{Scheme, compare};

fn event_version(e: &Event) -> &str {
    match e {
        Event::Introduced(v) | Event::Fixed(v) | Event::LastAffected(v) | Event::Limit(v) => v,
    }
}

fn event_rank(e: &Event) -> u8 {
    match e {
        Event::Introduced(_) => 0,
        Event::LastAffected(_) => 1,
        Event::Fixed(_) => 2,
        Event::Limit(_) => 3,
    }
}

/// The range's events in evaluation order, or `None` when one of them does not parse.
fn sorted_events(scheme: Scheme, range: &Range) -> Option<Vec<&Event>> {
    let mut events: Vec<&Event> = Vec::with_capacity(range.events.len());
    for e in &range.events {
        let v = event_version(e);
        let zero = matches!(e, Event::Introduced(_)) && v == "0";
        let star = matches!(e, Event::Limit(_)) && v == "*";
        if !zero && !star && !scheme.is_valid(v) {
            return None;
        }
        events.push(e);
    }
    fn key(e: &Event) -> Option<&str> {
        match e {
            Event::Introduced(v) if v == "0" => None,
            e => Some(event_version(e)),
        }
    }
    events.sort_by(|a, b| {
        let by_version = match (key(a), key(b)) {
            (None, None) => Ordering::Equal,
            (None, Some(_)) => Ordering::Less,
            (Some(_), None) => Ordering::Greater,
            (Some(x), Some(y)) => compare(scheme, x, y).unwrap_or(Ordering::Equal),
        };
        by_version.then_with(|| event_rank(a).cmp(&event_rank(b)))
    });
    Some(events)
}

fn lt(scheme: Scheme, a: &str, b: &str) -> bool {
    compare(scheme, a, b) == Some(Ordering::Less)
}

/// Whether `range` holds `version` (which parses in `scheme`).
fn in_range(scheme: Scheme, version: &str, range: &Range) -> bool {
    if range.kind == RangeKind::Git {
        return false;
    }
    let Some(events) = sorted_events(scheme, range) else {
        return false;
    };
    let limits: Vec<&str> = events
        .iter()
        .filter_map(|e| match e {
            Event::Limit(v) => Some(v.as_str()),
            _ => None,
        })
        .collect();
    if !limits.is_empty() && !limits.iter().any(|l| *l == "*" || lt(scheme, version, l)) {
        return false;
    }
    let mut affected = false;
    for e in events {
        match e {
            Event::Introduced(v) if v == "0" || !lt(scheme, version, v) => affected = true,
            Event::Fixed(v) if !lt(scheme, version, v) => affected = false,
            Event::LastAffected(v) if lt(scheme, v, version) => affected = false,
            _ => {}
        }
    }
    affected
}

fn listed(scheme: Scheme, version: &str, affected: &Affected) -> bool {
    affected.versions.iter().any(|v| v == version || compare(scheme, v, version) == Some(Ordering::Equal))
}

/// Whether `version` is affected, in the order of `scheme` (the advisory's ecosystem's).
#[must_use]
pub fn is_affected(scheme: Scheme, version: &str, affected: &Affected) -> bool {
    if listed(scheme, version, affected) {
        return true;
    }
    scheme.is_valid(version) && affected.ranges.iter().any(|r| in_range(scheme, version, r))
}

/// The lowest `fixed` above `version` among the ranges that hold it; `None` when no range
/// holds it or none of them has such a fix (unfixed).
#[must_use]
pub fn fixed_in(scheme: Scheme, version: &str, affected: &Affected) -> Option<String> {
    if !scheme.is_valid(version) {
        return None;
    }
    let mut best: Option<&str> = None;
    for range in affected.ranges.iter().filter(|r| in_range(scheme, version, r)) {
        for e in &range.events {
            if let Event::Fixed(f) = e
                && lt(scheme, version, f)
                && best.is_none_or(|b| lt(scheme, f, b))
            {
                best = Some(f);
            }
        }
    }
    best.map(str::to_owned)
}

#[cfg(test)]
mod tests {
    use super::{fixed_in, is_affected};
    use crate::advisory::{Affected, Event, Range, RangeKind};
    use crate::version::Scheme;

    fn intro(v: &str) -> Event {
        Event::Introduced(v.into())
    }
    fn fixed(v: &str) -> Event {
        Event::Fixed(v.into())
    }
    fn last(v: &str) -> Event {
        Event::LastAffected(v.into())
    }
    fn limit(v: &str) -> Event {
        Event::Limit(v.into())
    }
    fn ranges(kind: RangeKind, ranges: Vec<Vec<Event>>) -> Affected {
        Affected { ranges: ranges.into_iter().map(|events| Range { kind, events }).collect(), versions: Vec::new() }
    }
    fn eco(events: Vec<Event>) -> Affected {
        ranges(RangeKind::Ecosystem, vec![events])
    }

    fn affected_set(scheme: Scheme, a: &Affected, versions: &[&str]) -> Vec<String> {
        versions.iter().filter(|v| is_affected(scheme, v, a)).map(|v| (*v).to_owned()).collect()
    }

    const PY: [&str; 9] = ["0.1", "0.9", "1.0", "1.0.1", "1.5", "2.0", "2.0.1", "2.5", "3.0"];

    #[test]
    fn introduced_zero_and_fixed() {
        let a = eco(vec![intro("0"), fixed("1.0")]);
        assert_eq!(affected_set(Scheme::Pep440, &a, &PY), ["0.1", "0.9"]);
        assert_eq!(fixed_in(Scheme::Pep440, "0.9", &a).as_deref(), Some("1.0"));
        assert_eq!(fixed_in(Scheme::Pep440, "1.0", &a), None);
    }

    #[test]
    fn introduced_only_is_unfixed() {
        let a = eco(vec![intro("1.5")]);
        assert_eq!(affected_set(Scheme::Pep440, &a, &PY), ["1.5", "2.0", "2.0.1", "2.5", "3.0"]);
        assert_eq!(fixed_in(Scheme::Pep440, "2.0", &a), None);
        let all = eco(vec![intro("0")]);
        assert_eq!(affected_set(Scheme::Pep440, &all, &PY).len(), PY.len());
    }

    #[test]
    fn last_affected_is_inclusive() {
        let a = eco(vec![intro("1.0"), last("2.0")]);
        assert_eq!(affected_set(Scheme::Pep440, &a, &PY), ["1.0", "1.0.1", "1.5", "2.0"]);
        assert_eq!(fixed_in(Scheme::Pep440, "1.5", &a), None);
    }

    #[test]
    fn limit_bounds_the_range() {
        let a = eco(vec![intro("0"), limit("2.0")]);
        assert_eq!(affected_set(Scheme::Pep440, &a, &PY), ["0.1", "0.9", "1.0", "1.0.1", "1.5"]);
        let star = eco(vec![intro("1.5"), limit("*")]);
        assert_eq!(affected_set(Scheme::Pep440, &star, &PY).len(), 5);
        let two = eco(vec![intro("0"), limit("1.0"), limit("2.5")]);
        assert_eq!(affected_set(Scheme::Pep440, &two, &PY).len(), 7);
    }

    #[test]
    fn several_intervals_in_one_range_events_unsorted() {
        // Written out of order on purpose: evaluation sorts by version.
        let a = eco(vec![fixed("2.5"), intro("2.0"), fixed("1.0.1"), intro("0.9")]);
        assert_eq!(affected_set(Scheme::Pep440, &a, &PY), ["0.9", "1.0", "2.0", "2.0.1"]);
        assert_eq!(fixed_in(Scheme::Pep440, "1.0", &a).as_deref(), Some("1.0.1"));
        assert_eq!(fixed_in(Scheme::Pep440, "2.0.1", &a).as_deref(), Some("2.5"));
    }

    #[test]
    fn several_ranges_any_may_hold() {
        let a = ranges(RangeKind::Ecosystem, vec![vec![intro("0"), fixed("1.0")], vec![intro("2.0"), fixed("2.0.1")]]);
        assert_eq!(affected_set(Scheme::Pep440, &a, &PY), ["0.1", "0.9", "2.0"]);
        assert_eq!(fixed_in(Scheme::Pep440, "2.0", &a).as_deref(), Some("2.0.1"));
    }

    #[test]
    fn overlapping_ranges_give_the_lowest_fix() {
        let a = ranges(RangeKind::Ecosystem, vec![vec![intro("0"), fixed("3.0")], vec![intro("1.0"), fixed("2.0")]]);
        assert_eq!(fixed_in(Scheme::Pep440, "1.5", &a).as_deref(), Some("2.0"));
        assert_eq!(fixed_in(Scheme::Pep440, "2.5", &a).as_deref(), Some("3.0"));
    }

    #[test]
    fn semver_ranges_use_the_ecosystems_order() {
        let a = ranges(RangeKind::Semver, vec![vec![intro("1.0.0-rc.1"), fixed("1.0.2")]]);
        let vs = ["1.0.0-beta", "1.0.0-rc.1", "1.0.0", "1.0.1", "1.0.2", "1.0.10"];
        assert_eq!(affected_set(Scheme::Semver, &a, &vs), ["1.0.0-rc.1", "1.0.0", "1.0.1"]);
    }

    #[test]
    fn git_ranges_are_ignored() {
        let a = ranges(RangeKind::Git, vec![vec![intro("0"), fixed("abc123")]]);
        assert!(!is_affected(Scheme::Pep440, "1.0", &a));
    }

    #[test]
    fn listed_versions() {
        let a = Affected { ranges: Vec::new(), versions: vec!["1.0".into(), "weird version".into()] };
        assert!(is_affected(Scheme::Pep440, "1.0", &a));
        assert!(is_affected(Scheme::Pep440, "1.0.0", &a), "equal in PEP 440");
        assert!(!is_affected(Scheme::Pep440, "1.0.1", &a));
        assert!(is_affected(Scheme::Pep440, "weird version", &a), "listed exactly");
        assert_eq!(fixed_in(Scheme::Pep440, "1.0", &a), None);
    }

    #[test]
    fn unparseable_versions_are_never_in_ranges() {
        let a = eco(vec![intro("0")]);
        assert!(!is_affected(Scheme::Pep440, "not a version", &a));
        assert!(!is_affected(Scheme::Dpkg, "", &a));
        assert_eq!(fixed_in(Scheme::Pep440, "not a version", &a), None);
    }

    #[test]
    fn ranges_with_unparseable_events_are_skipped() {
        let a = eco(vec![intro("0"), fixed("<unknown>")]);
        assert!(!is_affected(Scheme::Pep440, "1.0", &a));
    }

    #[test]
    fn debian_shapes() {
        // DEBIAN-CVE: introduced 0, fixed at the source version of the fix.
        let a = eco(vec![intro("0"), fixed("7.88.1-10+deb12u5")]);
        assert!(is_affected(Scheme::Dpkg, "7.88.1-10+deb12u4", &a));
        assert!(is_affected(Scheme::Dpkg, "7.88.1-10", &a));
        assert!(!is_affected(Scheme::Dpkg, "7.88.1-10+deb12u5", &a));
        assert!(!is_affected(Scheme::Dpkg, "7.88.1-10+deb12u12", &a));
        assert!(!is_affected(Scheme::Dpkg, "1:7.0", &a));
        // A range without `introduced` turns nothing on, as the schema's evaluation reads it.
        let alpine = eco(vec![fixed("3.1.4-r5")]);
        assert!(!is_affected(Scheme::Apk, "3.1.4-r4", &alpine));
    }

    #[test]
    fn same_version_events() {
        let a = eco(vec![fixed("1.0"), intro("1.0")]);
        assert!(!is_affected(Scheme::Pep440, "1.0", &a), "introduced then fixed at 1.0");
        let b = eco(vec![last("1.0"), intro("1.0")]);
        assert!(is_affected(Scheme::Pep440, "1.0", &b));
        assert!(!is_affected(Scheme::Pep440, "1.0.1", &b));
    }
}
