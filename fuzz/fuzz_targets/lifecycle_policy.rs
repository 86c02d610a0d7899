//! ECR lifecycle policy documents, evaluated against a fixed set of images.
#![no_main]

use std::collections::HashSet;

use berth_policy::lifecycle::{Candidate, DAY_MS, LifecyclePolicy};
use libfuzzer_sys::fuzz_target;

const NOW: i64 = 1_704_067_200_000;

fn images() -> Vec<Candidate> {
    let tags: [&[&str]; 6] = [&[], &["latest"], &["v1", "prod-1"], &["v2"], &["release-2024"], &[]];
    (0..12i64)
        .map(|i| Candidate {
            digest: format!("sha256:{i:064x}"),
            tags: tags[usize::try_from(i).unwrap_or(0) % tags.len()].iter().map(|t| (*t).to_owned()).collect(),
            pushed_at_ms: NOW - i * 3 * DAY_MS,
            last_pulled_ms: (i % 3 != 0).then_some(NOW - i * DAY_MS),
        })
        .collect()
}

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let Ok(policy) = LifecyclePolicy::parse(text) else { return };
    let priorities: HashSet<u32> = policy.rules.iter().map(|r| r.priority).collect();
    assert_eq!(priorities.len(), policy.rules.len(), "rule priorities are unique");
    let images = images();
    let digests: HashSet<&str> = images.iter().map(|c| c.digest.as_str()).collect();
    for now in [NOW, NOW + 400 * DAY_MS, 0, i64::MAX] {
        let expired = policy.evaluate(&images, now);
        let mut seen = HashSet::new();
        for e in &expired {
            assert!(digests.contains(e.digest.as_str()), "{} is not an image", e.digest);
            assert!(seen.insert(e.digest.as_str()), "{} expired twice", e.digest);
            assert!(priorities.contains(&e.rule_priority), "no rule {}", e.rule_priority);
        }
        assert!(expired.windows(2).all(|w| w[0].rule_priority <= w[1].rule_priority), "ordered by rule");
        let mut reversed = images.clone();
        reversed.reverse();
        assert_eq!(policy.evaluate(&reversed, now), expired, "the order of the images does not matter");
    }
});
