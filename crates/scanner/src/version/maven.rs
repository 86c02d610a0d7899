//! Maven's version order, as `org.apache.maven.artifact.versioning.ComparableVersion`
//! (Maven 3.8) defines it.
//!
//! A version is lowercased and split into items at `.` and `-` and at every change between
//! digits and letters; a `-` (or a letter-digit change) opens a nested list. Numbers compare
//! as numbers; qualifiers in the order `alpha` < `beta` < `milestone` < `rc` = `cr` <
//! `snapshot` < `""` = `final` = `ga` = `release` < `sp` < any other (those alphabetically);
//! a single `a`/`b`/`m` right before a digit means alpha/beta/milestone. Trailing zeros
//! and release qualifiers are dropped from each list (`1.0.0` = `1`, `1-ga` = `1`). A number
//! is newer than a list, a list newer than a qualifier.
//!
//! Every string is a Maven version, so this never refuses one, except: lists nested more than
//! [`MAX_DEPTH`] deep (`1-1-1-…`), refused to keep recursion bounded, and non-ASCII digits,
//! which are letters here (Java would read them as digits). `mvn_version` exists but is
//! unmaintained, hence this module.

use std::cmp::Ordering;

/// Most nested lists a version may open.
pub const MAX_DEPTH: usize = 64;

const QUALIFIERS: [&str; 7] = ["alpha", "beta", "milestone", "rc", "snapshot", "", "sp"];
/// `comparableQualifier("")`.
const RELEASE: &str = "5";

#[derive(Debug)]
enum Item {
    /// Digits without leading zeros (`""` is zero).
    Int(String),
    /// The comparable form of a qualifier.
    Str(String),
    List(Vec<Item>),
}

fn comparable_qualifier(q: &str) -> String {
    match QUALIFIERS.iter().position(|x| *x == q) {
        Some(i) => i.to_string(),
        None => format!("{}-{q}", QUALIFIERS.len()),
    }
}

fn string_item(value: &str, followed_by_digit: bool) -> Item {
    let value = match value {
        "a" if followed_by_digit => "alpha",
        "b" if followed_by_digit => "beta",
        "m" if followed_by_digit => "milestone",
        "ga" | "final" | "release" => "",
        "cr" => "rc",
        v => v,
    };
    Item::Str(comparable_qualifier(value))
}

fn parse_item(is_digit: bool, buf: &str) -> Item {
    if is_digit { Item::Int(buf.trim_start_matches('0').to_owned()) } else { string_item(buf, false) }
}

fn is_null(item: &Item) -> bool {
    match item {
        Item::Int(d) => d.is_empty(),
        Item::Str(q) => q == RELEASE,
        Item::List(l) => l.is_empty(),
    }
}

/// Drops trailing null items, looking past non-null lists.
fn normalize(list: &mut Vec<Item>) {
    let mut i = list.len();
    while i > 0 {
        i -= 1;
        if is_null(&list[i]) {
            list.remove(i);
        } else if !matches!(list[i], Item::List(_)) {
            break;
        }
    }
}

fn parse(version: &str) -> Option<Vec<Item>> {
    let version = version.to_lowercase();
    // The chain of open lists, outermost first; each is the last item of the one before.
    let mut stack: Vec<Vec<Item>> = vec![Vec::new()];
    let mut is_digit = false;
    let mut start = 0;
    let open = |stack: &mut Vec<Vec<Item>>| {
        if stack.len() > MAX_DEPTH {
            return false;
        }
        stack.push(Vec::new());
        true
    };
    for (i, c) in version.char_indices() {
        let top = stack.len() - 1;
        if c == '.' || c == '-' {
            let item = if i == start { Item::Int(String::new()) } else { parse_item(is_digit, &version[start..i]) };
            stack[top].push(item);
            start = i + 1;
            if c == '-' && !open(&mut stack) {
                return None;
            }
        } else if c.is_ascii_digit() {
            if !is_digit && i > start {
                // `1.X1` reads as `1-X1`: letters before a digit open a list of their own
                // unless they start one.
                if !stack[top].is_empty() && !open(&mut stack) {
                    return None;
                }
                let top = stack.len() - 1;
                stack[top].push(string_item(&version[start..i], true));
                start = i;
                if !open(&mut stack) {
                    return None;
                }
            }
            is_digit = true;
        } else {
            if is_digit && i > start {
                stack[top].push(parse_item(true, &version[start..i]));
                start = i;
                if !open(&mut stack) {
                    return None;
                }
            }
            is_digit = false;
        }
    }
    if version.len() > start {
        // A final qualifier after other items reads as `-X` (`1.0.X` = `1.0-X`).
        if !is_digit && !stack[stack.len() - 1].is_empty() && !open(&mut stack) {
            return None;
        }
        let top = stack.len() - 1;
        stack[top].push(parse_item(is_digit, &version[start..]));
    }
    let mut list = stack.pop().unwrap_or_default();
    normalize(&mut list);
    while let Some(mut parent) = stack.pop() {
        parent.push(Item::List(list));
        normalize(&mut parent);
        list = parent;
    }
    Some(list)
}

/// `a.compareTo(b)`, `None` being Java's `null` (a missing item).
fn cmp_item(a: Option<&Item>, b: Option<&Item>) -> Ordering {
    let Some(a) = a else {
        return b.map_or(Ordering::Equal, |b| cmp_item(Some(b), None).reverse());
    };
    match (a, b) {
        (Item::Int(x), None) => {
            if x.is_empty() {
                Ordering::Equal
            } else {
                Ordering::Greater
            }
        }
        (Item::Str(q), None) => q.as_str().cmp(RELEASE),
        (Item::List(l), None) => {
            l.iter().map(|i| cmp_item(Some(i), None)).find(|o| *o != Ordering::Equal).unwrap_or(Ordering::Equal)
        }
        (Item::Int(x), Some(Item::Int(y))) => x.len().cmp(&y.len()).then_with(|| x.cmp(y)),
        (Item::Int(_), Some(_)) | (Item::List(_), Some(Item::Str(_))) => Ordering::Greater,
        (Item::Str(_), Some(Item::Int(_) | Item::List(_))) | (Item::List(_), Some(Item::Int(_))) => Ordering::Less,
        (Item::Str(x), Some(Item::Str(y))) => x.cmp(y),
        (Item::List(x), Some(Item::List(y))) => cmp_lists(x, y),
    }
}

fn cmp_lists(a: &[Item], b: &[Item]) -> Ordering {
    for i in 0..a.len().max(b.len()) {
        let o = cmp_item(a.get(i), b.get(i));
        if o != Ordering::Equal {
            return o;
        }
    }
    Ordering::Equal
}

pub(super) fn compare(a: &str, b: &str) -> Option<Ordering> {
    Some(cmp_lists(&parse(a)?, &parse(b)?))
}

#[cfg(test)]
mod tests {
    use super::compare;
    use std::cmp::Ordering::Equal;

    #[test]
    fn maven_order() {
        let sorted = [
            "1-alpha",
            "1-alpha2",
            "1-beta",
            "1-milestone-1",
            "1-rc",
            "1-snapshot",
            "1",
            "1-sp",
            "1-abc",
            "1-xyz",
            "1-1",
            "1.1-alpha-1",
            "1.1",
            "1.1.1",
            "1.2",
            "1.10",
            "2.0.0-a1",
            "2.0",
        ];
        for (i, a) in sorted.iter().enumerate() {
            for (j, b) in sorted.iter().enumerate() {
                assert_eq!(compare(a, b), Some(i.cmp(&j)), "{a} vs {b}");
            }
        }
    }

    #[test]
    fn equivalent_spellings() {
        for (a, b) in [
            ("1", "1.0.0"),
            ("1", "1-ga"),
            ("1", "1.final"),
            ("1", "1-RELEASE"),
            ("1-cr1", "1-rc1"),
            ("1a1", "1-alpha-1"),
            ("1.0-2", "1-2"),
            ("1.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.1", "1.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0001"),
            ("1-M1", "1-milestone-1"),
            ("1.M1", "1-milestone-1"),
        ] {
            assert_eq!(compare(a, b), Some(Equal), "{a} vs {b}");
        }
    }

    #[test]
    fn deep_nesting_is_refused() {
        let deep = "1-".repeat(10_000);
        assert_eq!(compare(&deep, "1"), None);
    }
}
