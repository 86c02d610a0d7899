//! The evaluator: a pure filter from candidate images to expiries.

use std::collections::HashSet;

use super::{Candidate, Count, DAY_MS, Expiry, Rule};

pub(super) fn evaluate(rules: &[Rule], images: &[Candidate], now_ms: i64) -> Vec<Expiry> {
    // Newest first: the order `imageCountMoreThan` keeps images in. Equal push times are broken
    // by digest so the outcome never depends on the caller's order.
    let mut newest_first: Vec<&Candidate> = {
        let mut seen = HashSet::new();
        images.iter().filter(|c| seen.insert(c.digest.as_str())).collect()
    };
    newest_first.sort_by(|a, b| (b.pushed_at_ms, b.digest.as_str()).cmp(&(a.pushed_at_ms, a.digest.as_str())));

    // Rules apply in priority order, whatever order the caller built them in.
    let mut ordered: Vec<&Rule> = rules.iter().collect();
    ordered.sort_by_key(|r| r.priority);

    // Images that met the tagging requirements of a rule already applied. A later rule still
    // counts them, but may never expire them. Every expired image is in this set too.
    let mut claimed: HashSet<&str> = HashSet::new();
    let mut expired = Vec::new();
    for rule in ordered {
        let selected: Vec<&Candidate> =
            newest_first.iter().copied().filter(|c| rule.selection.matches_tags(&c.tags)).collect();
        let mut marked: Vec<&Candidate> = match rule.selection.count {
            Count::MoreThan(keep) => {
                selected.iter().copied().skip(usize::try_from(keep).unwrap_or(usize::MAX)).collect()
            }
            Count::SincePushedDays(days) => {
                selected.iter().copied().filter(|c| older_than(c.pushed_at_ms, days, now_ms)).collect()
            }
            Count::SincePulledDays(days) => {
                selected.iter().copied().filter(|c| older_than(last_used_ms(c), days, now_ms)).collect()
            }
        };
        // Oldest first: expiry "always expires older images before newer ones".
        marked.reverse();
        expired.extend(
            marked
                .into_iter()
                .filter(|c| !claimed.contains(c.digest.as_str()))
                .map(|c| Expiry { digest: c.digest.clone(), rule_priority: rule.priority }),
        );
        claimed.extend(selected.iter().map(|c| c.digest.as_str()));
    }
    expired
}

/// The time `sinceImagePulled` counts from: the last pull, or the push for an image never pulled
/// (nor one whose recorded pull precedes its push, which a re-push can produce).
fn last_used_ms(c: &Candidate) -> i64 {
    c.last_pulled_ms.map_or(c.pushed_at_ms, |p| p.max(c.pushed_at_ms))
}

/// Whether `since_ms` lies strictly more than `days` days before `now_ms`. An image exactly
/// `days` days old is kept: ECR's examples expire images "older than" the count.
fn older_than(since_ms: i64, days: u32, now_ms: i64) -> bool {
    i128::from(now_ms) - i128::from(since_ms) > i128::from(days) * i128::from(DAY_MS)
}
