//! Table-driven tests of the lifecycle evaluator and validator. Several evaluation cases are the
//! worked examples of the Amazon ECR user guide ("Examples of lifecycle policies").

use std::collections::HashSet;

use super::{Candidate, Count, DAY_MS, Expiry, LifecycleError, LifecyclePolicy, Rule, Selection, TagStatus};

/// A fixed "now" for every evaluation.
const NOW: i64 = 1_800_000_000_000;

/// An image pushed `age_ms` before [`NOW`], never pulled.
fn img(digest: &str, tags: &[&str], age_ms: i64) -> Candidate {
    Candidate {
        digest: digest.to_owned(),
        tags: tags.iter().map(|t| (*t).to_owned()).collect(),
        pushed_at_ms: NOW - age_ms,
        last_pulled_ms: None,
    }
}

/// An image pushed `pushed_age_ms` and last pulled `pulled_age_ms` before [`NOW`].
fn pulled(digest: &str, tags: &[&str], pushed_age_ms: i64, pulled_age_ms: i64) -> Candidate {
    Candidate { last_pulled_ms: Some(NOW - pulled_age_ms), ..img(digest, tags, pushed_age_ms) }
}

const fn days(n: i64) -> i64 {
    n * DAY_MS
}

/// A rule as JSON, with an `expire` action.
fn rule(priority: u32, selection: &str) -> String {
    format!(r#"{{"rulePriority":{priority},"selection":{selection},"action":{{"type":"expire"}}}}"#)
}

fn policy_json(rules: &[String]) -> String {
    format!(r#"{{"rules":[{}]}}"#, rules.join(","))
}

fn policy(rules: &[String]) -> LifecyclePolicy {
    let text = policy_json(rules);
    LifecyclePolicy::parse(&text).unwrap_or_else(|e| panic!("{text}: {e}"))
}

fn untagged_count(n: u32) -> String {
    format!(r#"{{"tagStatus":"untagged","countType":"imageCountMoreThan","countNumber":{n}}}"#)
}
fn any_count(n: u32) -> String {
    format!(r#"{{"tagStatus":"any","countType":"imageCountMoreThan","countNumber":{n}}}"#)
}
fn prefix_count(prefixes: &str, n: u32) -> String {
    format!(r#"{{"tagStatus":"tagged","tagPrefixList":{prefixes},"countType":"imageCountMoreThan","countNumber":{n}}}"#)
}
fn pattern_count(patterns: &str, n: u32) -> String {
    format!(
        r#"{{"tagStatus":"tagged","tagPatternList":{patterns},"countType":"imageCountMoreThan","countNumber":{n}}}"#
    )
}
fn age(status_and_list: &str, count_type: &str, n: u32) -> String {
    format!(r#"{{{status_and_list},"countType":"{count_type}","countUnit":"days","countNumber":{n}}}"#)
}

struct Case {
    name: &'static str,
    rules: Vec<String>,
    images: Vec<Candidate>,
    /// Expected result, in order: (digest, rule priority).
    want: Vec<(&'static str, u32)>,
}

#[allow(clippy::too_many_lines)]
fn cases() -> Vec<Case> {
    vec![
        Case {
            name: "count: keep the newest untagged image",
            rules: vec![rule(1, &untagged_count(1))],
            images: vec![img("a", &[], days(3)), img("b", &[], days(2)), img("c", &[], days(1))],
            want: vec![("a", 1), ("b", 1)],
        },
        Case {
            name: "count: fewer images than the limit expire nothing",
            rules: vec![rule(1, &untagged_count(5))],
            images: vec![img("a", &[], days(3)), img("b", &[], days(2))],
            want: vec![],
        },
        Case {
            name: "count: exactly the limit expires nothing",
            rules: vec![rule(1, &any_count(3))],
            images: vec![img("a", &["x"], days(3)), img("b", &[], days(2)), img("c", &["y"], days(1))],
            want: vec![],
        },
        Case {
            name: "count: keep newest 2 of the prefixed images, input order irrelevant",
            rules: vec![rule(1, &prefix_count(r#"["v"]"#, 2))],
            images: vec![
                img("v3", &["v3"], days(1)),
                img("v1", &["v1"], days(3)),
                img("other", &["latest"], days(9)),
                img("v4", &["v4"], days(0)),
                img("v2", &["v2"], days(2)),
            ],
            want: vec![("v1", 1), ("v2", 1)],
        },
        Case {
            name: "age: sinceImagePushed expires only images strictly older than N days",
            rules: vec![rule(1, &age(r#""tagStatus":"untagged""#, "sinceImagePushed", 14))],
            images: vec![
                img("old", &[], days(15)),
                img("just-over", &[], days(14) + 1),
                img("exactly", &[], days(14)),
                img("young", &[], days(13)),
            ],
            want: vec![("old", 1), ("just-over", 1)],
        },
        Case {
            name: "age: nothing old enough",
            rules: vec![rule(1, &age(r#""tagStatus":"any""#, "sinceImagePushed", 30))],
            images: vec![img("a", &["x"], days(29)), img("b", &[], days(1))],
            want: vec![],
        },
        Case {
            name: "age: an image pushed in the future is never expired",
            rules: vec![rule(1, &age(r#""tagStatus":"any""#, "sinceImagePushed", 1))],
            images: vec![img("future", &[], -days(5))],
            want: vec![],
        },
        Case {
            name: "pulled: last pull time decides, not push time",
            rules: vec![rule(1, &age(r#""tagStatus":"any""#, "sinceImagePulled", 30))],
            images: vec![
                pulled("recently-used", &["a"], days(100), days(1)),
                pulled("stale", &["b"], days(100), days(40)),
                pulled("boundary", &[], days(100), days(30)),
            ],
            want: vec![("stale", 1)],
        },
        Case {
            name: "pulled: an image never pulled counts from its push time",
            rules: vec![rule(1, &age(r#""tagStatus":"untagged""#, "sinceImagePulled", 30))],
            images: vec![
                img("never-old", &[], days(40)),
                img("never-young", &[], days(10)),
                pulled("pulled-young", &[], days(40), days(2)),
            ],
            want: vec![("never-old", 1)],
        },
        Case {
            name: "pulled: a pull recorded before the push counts from the push",
            rules: vec![rule(1, &age(r#""tagStatus":"any""#, "sinceImagePulled", 30))],
            images: vec![pulled("repushed", &["t"], days(5), days(60))],
            want: vec![],
        },
        Case {
            name: "prefix: matches the start of a tag only",
            rules: vec![rule(1, &prefix_count(r#"["prod"]"#, 1))],
            images: vec![
                img("p1", &["prod-1"], days(5)),
                img("x", &["xprod"], days(4)),
                img("p2", &["prod-2"], days(3)),
                img("p3", &["production"], days(2)),
            ],
            want: vec![("p1", 1), ("p2", 1)],
        },
        Case {
            // User guide, "Filtering on multiple tags in a single rule", example A.
            name: "prefix: several prefixes must all be matched (guide example)",
            rules: vec![rule(
                1,
                &age(r#""tagStatus":"tagged","tagPrefixList":["alpha","beta"]"#, "sinceImagePushed", 5),
            )],
            images: vec![
                img("A", &["alpha-1"], days(12)),
                img("B", &["beta-1"], days(11)),
                img("C", &["alpha-2", "beta-2"], days(10)),
                img("D", &["alpha-3"], days(4)),
                img("E", &["beta-3"], days(3)),
                img("F", &["alpha-4", "beta-4"], days(2)),
            ],
            want: vec![("C", 1)],
        },
        Case {
            // User guide, "Filtering on multiple tags in a single rule", example B.
            name: "prefix: tags are not exclusive (guide example)",
            rules: vec![rule(1, &prefix_count(r#"["alpha","beta"]"#, 1))],
            images: vec![
                img("A", &["alpha-1", "beta-1", "gamma-1"], days(10)),
                img("B", &["alpha-2", "beta-2"], days(9)),
                img("C", &["alpha-3", "beta-3", "gamma-2"], days(8)),
            ],
            want: vec![("A", 1), ("B", 1)],
        },
        Case {
            name: "prefix: one tag may satisfy several prefixes",
            rules: vec![rule(1, &prefix_count(r#"["re","rel"]"#, 1))],
            images: vec![img("a", &["release-1"], days(2)), img("b", &["release-2"], days(1))],
            want: vec![("a", 1)],
        },
        Case {
            name: "pattern: prod* with age (guide example)",
            rules: vec![rule(1, &age(r#""tagStatus":"tagged","tagPatternList":["prod*"]"#, "sinceImagePushed", 14))],
            images: vec![
                img("prod-old", &["prod-1"], days(20)),
                img("prod-bare", &["prod"], days(20)),
                img("dev-old", &["dev-1"], days(20)),
                img("prod-new", &["prod-2"], days(2)),
            ],
            want: vec![("prod-bare", 1), ("prod-old", 1)],
        },
        Case {
            name: "pattern: *-rc* matches release candidates anywhere",
            rules: vec![rule(1, &pattern_count(r#"["*-rc*"]"#, 1))],
            images: vec![
                img("rc1", &["1.0-rc1"], days(5)),
                img("final", &["1.0"], days(4)),
                img("rc2", &["1.1-rc2"], days(3)),
                img("rc3", &["2.0-rc"], days(2)),
            ],
            want: vec![("rc1", 1), ("rc2", 1)],
        },
        Case {
            name: "pattern: without wildcard the whole tag must match",
            rules: vec![rule(1, &pattern_count(r#"["latest"]"#, 1))],
            images: vec![
                img("l1", &["latest"], days(3)),
                img("l2", &["latest-1"], days(2)),
                img("l3", &["latest"], days(1)),
            ],
            want: vec![("l1", 1)],
        },
        Case {
            name: "pattern: several patterns must all be matched",
            rules: vec![rule(1, &pattern_count(r#"["prod*","*-signed"]"#, 1))],
            images: vec![
                img("both-old", &["prod-1", "abc-signed"], days(4)),
                img("prod-only", &["prod-2"], days(3)),
                img("signed-only", &["x-signed"], days(2)),
                img("one-tag-both", &["prod-3-signed"], days(1)),
            ],
            want: vec![("both-old", 1)],
        },
        Case {
            // User guide, "Filtering on multiple rules", example A.
            name: "priority: image seen by rule 1 is skipped by rule 2 (guide example A)",
            rules: vec![rule(1, &prefix_count(r#"["prod"]"#, 1)), rule(2, &prefix_count(r#"["beta"]"#, 1))],
            images: vec![
                img("A", &["beta-1", "prod-1"], days(10)),
                img("B", &["beta-2", "prod-2"], days(9)),
                img("C", &["beta-3"], days(8)),
            ],
            want: vec![("A", 1)],
        },
        Case {
            // User guide, "Filtering on multiple rules", example B.
            name: "priority: reordered rules (guide example B)",
            rules: vec![rule(1, &prefix_count(r#"["beta"]"#, 1)), rule(2, &prefix_count(r#"["prod"]"#, 1))],
            images: vec![
                img("A", &["beta-1", "prod-1"], days(10)),
                img("B", &["beta-2", "prod-2"], days(9)),
                img("C", &["beta-3"], days(8)),
            ],
            want: vec![("A", 1), ("B", 1)],
        },
        Case {
            name: "priority: kept by rule 1 is never expired by a later age rule",
            rules: vec![
                rule(1, &pattern_count(r#"["release-*"]"#, 100)),
                rule(2, &age(r#""tagStatus":"any""#, "sinceImagePushed", 7)),
            ],
            images: vec![
                img("release", &["release-1"], days(300)),
                img("ci", &["ci-42"], days(30)),
                img("fresh", &["ci-43"], days(1)),
                img("dangling", &[], days(8)),
            ],
            want: vec![("ci", 2), ("dangling", 2)],
        },
        Case {
            // User guide, "Filtering on all images", example A.
            name: "any: keep only the newest image (guide example)",
            rules: vec![rule(1, &any_count(1))],
            images: vec![
                img("A", &["alpha-1"], days(4)),
                img("B", &["beta-1"], days(3)),
                img("C", &[], days(2)),
                img("D", &["alpha-2"], days(1)),
            ],
            want: vec![("A", 1), ("B", 1), ("C", 1)],
        },
        Case {
            // User guide, "Filtering on all images", example B. D and E are both "1 day ago";
            // E is the newer one in the guide's outcome, so it is pushed a minute later here.
            name: "any: later rules count images of earlier rules but cannot mark them",
            rules: vec![
                rule(1, &prefix_count(r#"["alpha"]"#, 1)),
                rule(2, &age(r#""tagStatus":"untagged""#, "sinceImagePushed", 1)),
                rule(3, &any_count(1)),
            ],
            images: vec![
                img("A", &["alpha-1", "beta-1"], days(4)),
                img("B", &[], days(3)),
                img("C", &["alpha-2"], days(2)),
                img("D", &["git hash"], days(1)),
                img("E", &[], days(1) - 60_000),
            ],
            want: vec![("A", 1), ("B", 2), ("D", 3)],
        },
        Case {
            name: "untagged: a rule for untagged images leaves tagged ones alone",
            rules: vec![rule(1, &untagged_count(1))],
            images: vec![img("t-old", &["v1"], days(9)), img("u-old", &[], days(8)), img("u-new", &[], days(1))],
            want: vec![("u-old", 1)],
        },
        Case {
            name: "tagged: a tagged rule leaves untagged images alone",
            rules: vec![rule(1, &pattern_count(r#"["*"]"#, 1))],
            images: vec![img("u-old", &[], days(9)), img("t-old", &["a"], days(8)), img("t-new", &["b"], days(1))],
            want: vec![("t-old", 1)],
        },
        Case {
            name: "any: an age rule covers tagged and untagged images",
            rules: vec![rule(1, &age(r#""tagStatus":"any""#, "sinceImagePushed", 10))],
            images: vec![img("t", &["v1"], days(11)), img("u", &[], days(12)), img("keep", &["v2"], days(9))],
            want: vec![("u", 1), ("t", 1)],
        },
        Case {
            name: "several tags: selected by one rule protects it from a later one",
            rules: vec![rule(1, &pattern_count(r#"["latest"]"#, 1)), rule(2, &pattern_count(r#"["build-*"]"#, 1))],
            images: vec![
                img("current", &["build-1", "latest"], days(5)),
                img("b2", &["build-2"], days(4)),
                img("b3", &["build-3"], days(3)),
            ],
            want: vec![("b2", 2)],
        },
        Case { name: "empty image set", rules: vec![rule(1, &any_count(1))], images: vec![], want: vec![] },
        Case {
            name: "ties: equal push times are broken by digest, smaller counts as older",
            rules: vec![rule(1, &untagged_count(1))],
            images: vec![
                img("sha256:bb", &[], days(1)),
                img("sha256:cc", &[], days(1)),
                img("sha256:aa", &[], days(1)),
            ],
            want: vec![("sha256:aa", 1), ("sha256:bb", 1)],
        },
        Case {
            name: "rules written out of priority order apply in priority order",
            rules: vec![rule(20, &any_count(1)), rule(10, &pattern_count(r#"["keep"]"#, 5))],
            images: vec![img("kept", &["keep"], days(9)), img("old", &["x"], days(8)), img("new", &[], days(1))],
            want: vec![("old", 20)],
        },
        Case {
            name: "duplicate digests in the input are considered once",
            rules: vec![rule(1, &untagged_count(1))],
            images: vec![img("dup", &[], days(5)), img("dup", &[], days(5)), img("new", &[], days(1))],
            want: vec![("dup", 1)],
        },
        Case {
            name: "a rule matching nothing changes nothing for the rules after it",
            rules: vec![rule(1, &prefix_count(r#"["nomatch"]"#, 1)), rule(2, &any_count(2))],
            images: vec![img("a", &["x"], days(3)), img("b", &[], days(2)), img("c", &["y"], days(1))],
            want: vec![("a", 2)],
        },
        Case {
            name: "countNumber larger than any repository",
            rules: vec![rule(1, &any_count(u32::MAX))],
            images: vec![img("a", &[], days(3))],
            want: vec![],
        },
    ]
}

fn expiries(want: &[(&str, u32)]) -> Vec<Expiry> {
    want.iter().map(|&(digest, rule_priority)| Expiry { digest: digest.to_owned(), rule_priority }).collect()
}

#[test]
fn evaluate_table() {
    let cases = cases();
    assert!(cases.len() >= 25, "only {} cases", cases.len());
    for case in cases {
        let policy = policy(&case.rules);
        let got = policy.evaluate(&case.images, NOW);
        assert_eq!(got, expiries(&case.want), "case: {}", case.name);

        // The outcome does not depend on the order the images come in.
        let mut reversed = case.images.clone();
        reversed.reverse();
        assert_eq!(policy.evaluate(&reversed, NOW), got, "case (reversed input): {}", case.name);
    }
}

/// A small deterministic generator, so the property test needs no dependency.
struct Lcg(u64);
impl Lcg {
    fn next(&mut self, bound: u64) -> u64 {
        self.0 = self.0.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1_442_695_040_888_963_407);
        (self.0 >> 33) % bound
    }
}

#[test]
fn evaluate_never_returns_a_digest_twice() {
    let policies = [
        policy(&[
            rule(1, &prefix_count(r#"["prod"]"#, 2)),
            rule(2, &pattern_count(r#"["*rc*"]"#, 1)),
            rule(3, &age(r#""tagStatus":"untagged""#, "sinceImagePulled", 3)),
            rule(4, &any_count(3)),
        ]),
        policy(&[
            rule(1, &age(r#""tagStatus":"tagged","tagPatternList":["*"]"#, "sinceImagePushed", 2)),
            rule(2, &age(r#""tagStatus":"any""#, "sinceImagePushed", 1)),
        ]),
        policy(&[rule(1, &any_count(1))]),
    ];
    let tag_pool = ["prod-1", "prod-2", "1.0-rc1", "latest", "dev", "rc"];
    let mut rng = Lcg(42);
    for round in 0..200 {
        let n = rng.next(12);
        let images: Vec<Candidate> = (0..n)
            .map(|i| {
                // Reuse digests now and then to exercise duplicate input.
                let digest = format!("sha256:{}", rng.next(n + 2).min(i + 1));
                let tags =
                    (0..rng.next(3)).map(|_| tag_pool[usize::try_from(rng.next(6)).unwrap_or(0)].to_owned()).collect();
                let pushed_age = i64::try_from(rng.next(10)).unwrap_or(0) * DAY_MS / 2;
                let last_pulled_ms =
                    (rng.next(2) == 0).then(|| NOW - i64::try_from(rng.next(10)).unwrap_or(0) * DAY_MS / 2);
                Candidate { digest, tags, pushed_at_ms: NOW - pushed_age, last_pulled_ms }
            })
            .collect();
        let inputs: HashSet<&str> = images.iter().map(|c| c.digest.as_str()).collect();
        for policy in &policies {
            let out = policy.evaluate(&images, NOW);
            let mut seen = HashSet::new();
            for e in &out {
                assert!(seen.insert(e.digest.clone()), "round {round}: {} twice", e.digest);
                assert!(inputs.contains(e.digest.as_str()), "round {round}: unknown digest");
                assert!(policy.rules.iter().any(|r| r.priority == e.rule_priority), "round {round}: unknown rule");
            }
            assert!(out.len() <= inputs.len());
        }
    }
}

#[test]
fn evaluate_handles_extreme_times() {
    let p = policy(&[
        rule(1, &age(r#""tagStatus":"tagged","tagPrefixList":["a"]"#, "sinceImagePulled", 1)),
        rule(2, &age(r#""tagStatus":"any""#, "sinceImagePushed", u32::MAX)),
    ]);
    let images = vec![
        Candidate {
            digest: "min".into(),
            tags: vec!["a".into()],
            pushed_at_ms: i64::MIN,
            last_pulled_ms: Some(i64::MIN),
        },
        Candidate { digest: "max".into(), tags: vec![], pushed_at_ms: i64::MAX, last_pulled_ms: None },
    ];
    assert_eq!(p.evaluate(&images, i64::MAX), expiries(&[("min", 1)]), "now = i64::MAX");
    assert_eq!(p.evaluate(&images, i64::MIN), vec![], "now = i64::MIN");
}

#[test]
fn parse_builds_the_model_sorted_by_priority() {
    let text = r#"{
        "rules": [
            {
                "rulePriority": 9,
                "selection": {"tagStatus": "any", "countType": "imageCountMoreThan", "countNumber": 50},
                "action": {"type": "expire"}
            },
            {
                "rulePriority": 1,
                "description": "Expire images older than 14 days",
                "selection": {
                    "tagStatus": "tagged",
                    "tagPatternList": ["prod*"],
                    "countType": "sinceImagePushed",
                    "countUnit": "days",
                    "countNumber": 14
                },
                "action": {"type": "expire"}
            },
            {
                "rulePriority": 2,
                "selection": {
                    "tagStatus": "untagged",
                    "storageClass": "standard",
                    "countType": "sinceImagePulled",
                    "countUnit": "days",
                    "countNumber": 3
                },
                "action": {"type": "expire"}
            },
            {
                "rulePriority": 5,
                "selection": {
                    "tagStatus": "tagged",
                    "tagPrefixList": ["v", "release"],
                    "countType": "imageCountMoreThan",
                    "countNumber": 10
                },
                "action": {"type": "expire"}
            }
        ]
    }"#;
    let want = LifecyclePolicy {
        rules: vec![
            Rule {
                priority: 1,
                description: Some("Expire images older than 14 days".into()),
                selection: Selection {
                    tag_status: TagStatus::Tagged,
                    tag_prefixes: vec![],
                    tag_patterns: vec!["prod*".into()],
                    count: Count::SincePushedDays(14),
                },
            },
            Rule {
                priority: 2,
                description: None,
                selection: Selection {
                    tag_status: TagStatus::Untagged,
                    tag_prefixes: vec![],
                    tag_patterns: vec![],
                    count: Count::SincePulledDays(3),
                },
            },
            Rule {
                priority: 5,
                description: None,
                selection: Selection {
                    tag_status: TagStatus::Tagged,
                    tag_prefixes: vec!["v".into(), "release".into()],
                    tag_patterns: vec![],
                    count: Count::MoreThan(10),
                },
            },
            Rule {
                priority: 9,
                description: None,
                selection: Selection {
                    tag_status: TagStatus::Any,
                    tag_prefixes: vec![],
                    tag_patterns: vec![],
                    count: Count::MoreThan(50),
                },
            },
        ],
    };
    assert_eq!(LifecyclePolicy::parse(text), Ok(want));
}

#[test]
fn parse_accepts_the_user_guide_policies() {
    let texts = [
        // Lifecycle policy template example: untagged by age.
        r#"{"rules":[{"rulePriority":1,"description":"Expire images older than 14 days","selection":{"tagStatus":"untagged","countType":"sinceImagePushed","countUnit":"days","countNumber":14},"action":{"type":"expire"}}]}"#,
        // Keep only one untagged image.
        r#"{"rules":[{"rulePriority":1,"description":"Keep only one untagged image, expire all others","selection":{"tagStatus":"untagged","countType":"imageCountMoreThan","countNumber":1},"action":{"type":"expire"}}]}"#,
        // Four wildcards is the maximum.
        r#"{"rules":[{"rulePriority":1,"selection":{"tagStatus":"tagged","tagPatternList":["*test*1*2*3","test*1*2*3*"],"countType":"imageCountMoreThan","countNumber":1},"action":{"type":"expire"}}]}"#,
    ];
    for text in texts {
        assert!(LifecyclePolicy::parse(text).is_ok(), "{text}");
    }
}

fn err(text: &str) -> String {
    match LifecyclePolicy::parse(text) {
        Ok(p) => panic!("accepted {text}: {p:?}"),
        Err(LifecycleError(msg)) => msg,
    }
}

/// A one-rule policy with this selection.
fn with_selection(selection: &str) -> String {
    policy_json(&[rule(1, selection)])
}

#[allow(clippy::too_many_lines)]
#[test]
fn parse_rejects_with_ecr_messages() {
    let p = "Lifecycle policy validation failure: ";
    let cases: Vec<(&str, String, String)> = vec![
        (
            "not JSON",
            "{rules:".into(),
            format!("{p}Could not map policyString into LifecyclePolicy."),
        ),
        (
            "not an object",
            "[]".into(),
            format!("{p}Could not map policyString into LifecyclePolicy."),
        ),
        (
            "missing rules",
            "{}".into(),
            format!(r#"{p}object has missing required properties (["rules"])"#),
        ),
        (
            "unknown top-level key",
            r#"{"rules":[],"version":"1"}"#.into(),
            format!(
                r#"{p}object instance has properties which are not allowed by the schema: (["version"])"#
            ),
        ),
        (
            "rules not an array",
            r#"{"rules":{}}"#.into(),
            format!(
                r#"{p}instance type (object) does not match any allowed primitive type (allowed: ["array"])"#
            ),
        ),
        (
            "empty rules",
            r#"{"rules":[]}"#.into(),
            format!(
                "{p}array is too short: must have at least 1 elements but instance has 0 elements"
            ),
        ),
        (
            "rule not an object",
            r#"{"rules":[1]}"#.into(),
            format!(
                r#"{p}instance type (integer) does not match any allowed primitive type (allowed: ["object"])"#
            ),
        ),
        (
            "missing rulePriority and action",
            r#"{"rules":[{"selection":{"tagStatus":"any","countType":"imageCountMoreThan","countNumber":1}}]}"#.into(),
            format!(r#"{p}object has missing required properties (["action","rulePriority"])"#),
        ),
        (
            "missing selection",
            r#"{"rules":[{"rulePriority":1,"action":{"type":"expire"}}]}"#.into(),
            format!(r#"{p}object has missing required properties (["selection"])"#),
        ),
        (
            "rulePriority zero",
            policy_json(&[rule(0, &any_count(1))]),
            format!("{p}numeric instance is lower than the required minimum (minimum: 1, found: 0)"),
        ),
        (
            "rulePriority negative",
            r#"{"rules":[{"rulePriority":-3,"selection":{"tagStatus":"any","countType":"imageCountMoreThan","countNumber":1},"action":{"type":"expire"}}]}"#.into(),
            format!("{p}numeric instance is lower than the required minimum (minimum: 1, found: -3)"),
        ),
        (
            "rulePriority a string",
            r#"{"rules":[{"rulePriority":"1","selection":{"tagStatus":"any","countType":"imageCountMoreThan","countNumber":1},"action":{"type":"expire"}}]}"#.into(),
            format!(
                r#"{p}instance type (string) does not match any allowed primitive type (allowed: ["integer"])"#
            ),
        ),
        (
            "rulePriority fractional",
            r#"{"rules":[{"rulePriority":1.5,"selection":{"tagStatus":"any","countType":"imageCountMoreThan","countNumber":1},"action":{"type":"expire"}}]}"#.into(),
            format!(
                r#"{p}instance type (number) does not match any allowed primitive type (allowed: ["integer"])"#
            ),
        ),
        (
            "rulePriority too large",
            r#"{"rules":[{"rulePriority":4294967296,"selection":{"tagStatus":"any","countType":"imageCountMoreThan","countNumber":1},"action":{"type":"expire"}}]}"#.into(),
            format!(
                "{p}numeric instance is greater than the required maximum (maximum: 4294967295, found: 4294967296)"
            ),
        ),
        (
            "duplicate rulePriority",
            policy_json(&[rule(3, &untagged_count(1)), rule(3, &prefix_count(r#"["v"]"#, 1))]),
            format!("{p}rulePriority must be unique: 3 is used by more than one rule."),
        ),
        (
            "unknown rule key",
            r#"{"rules":[{"rulePriority":1,"priority":1,"selection":{"tagStatus":"any","countType":"imageCountMoreThan","countNumber":1},"action":{"type":"expire"}}]}"#.into(),
            format!(
                r#"{p}object instance has properties which are not allowed by the schema: (["priority"])"#
            ),
        ),
        (
            "description not a string",
            r#"{"rules":[{"rulePriority":1,"description":7,"selection":{"tagStatus":"any","countType":"imageCountMoreThan","countNumber":1},"action":{"type":"expire"}}]}"#.into(),
            format!(
                r#"{p}instance type (integer) does not match any allowed primitive type (allowed: ["string"])"#
            ),
        ),
        (
            "tagStatus not in enum",
            with_selection(r#"{"tagStatus":"TAGGED","tagPrefixList":["v"],"countType":"imageCountMoreThan","countNumber":1}"#),
            format!(
                r#"{p}instance value ("TAGGED") not found in enum (possible values: ["any","tagged","untagged"])"#
            ),
        ),
        (
            "tagged without a tag list",
            with_selection(r#"{"tagStatus":"tagged","countType":"imageCountMoreThan","countNumber":1}"#),
            format!("{p}Must specify tagPrefixList or tagPatternList when tagStatus=TAGGED."),
        ),
        (
            "both tag lists",
            with_selection(r#"{"tagStatus":"tagged","tagPrefixList":["v"],"tagPatternList":["v*"],"countType":"imageCountMoreThan","countNumber":1}"#),
            format!("{p}Cannot specify both tagPrefixList and tagPatternList in the same rule."),
        ),
        (
            "untagged with a prefix list",
            with_selection(r#"{"tagStatus":"untagged","tagPrefixList":["v"],"countType":"imageCountMoreThan","countNumber":1}"#),
            format!(
                "{p}tagPrefixList and tagPatternList are only allowed when tagStatus=TAGGED, not when tagStatus=UNTAGGED."
            ),
        ),
        (
            "any with a pattern list",
            with_selection(r#"{"tagStatus":"any","tagPatternList":["*"],"countType":"imageCountMoreThan","countNumber":1}"#),
            format!(
                "{p}tagPrefixList and tagPatternList are only allowed when tagStatus=TAGGED, not when tagStatus=ANY."
            ),
        ),
        (
            "empty prefix list",
            with_selection(r#"{"tagStatus":"tagged","tagPrefixList":[],"countType":"imageCountMoreThan","countNumber":1}"#),
            format!(
                "{p}array is too short: must have at least 1 elements but instance has 0 elements"
            ),
        ),
        (
            "prefix list with a non-string",
            with_selection(r#"{"tagStatus":"tagged","tagPrefixList":["v",2],"countType":"imageCountMoreThan","countNumber":1}"#),
            format!(
                r#"{p}instance type (integer) does not match any allowed primitive type (allowed: ["string"])"#
            ),
        ),
        (
            "pattern with five wildcards",
            with_selection(r#"{"tagStatus":"tagged","tagPatternList":["ok*","test*1*2*3*4*"],"countType":"imageCountMoreThan","countNumber":1}"#),
            format!(
                r#"{p}tagPatternList entry "test*1*2*3*4*" has 5 wildcards (*); at most 4 are allowed per pattern."#
            ),
        ),
        (
            "countType not in enum",
            with_selection(r#"{"tagStatus":"any","countType":"sinceImageCreated","countNumber":1}"#),
            format!(
                r#"{p}instance value ("sinceImageCreated") not found in enum (possible values: ["imageCountMoreThan","sinceImagePulled","sinceImagePushed","sinceImageTransitioned"])"#
            ),
        ),
        (
            "countUnit missing for sinceImagePushed",
            with_selection(r#"{"tagStatus":"any","countType":"sinceImagePushed","countNumber":1}"#),
            format!(
                r#"{p}countUnit is required when countType is sinceImagePushed; its only value is "days"."#
            ),
        ),
        (
            "countUnit missing for sinceImagePulled",
            with_selection(r#"{"tagStatus":"any","countType":"sinceImagePulled","countNumber":1}"#),
            format!(
                r#"{p}countUnit is required when countType is sinceImagePulled; its only value is "days"."#
            ),
        ),
        (
            "countUnit with imageCountMoreThan",
            with_selection(r#"{"tagStatus":"any","countType":"imageCountMoreThan","countUnit":"days","countNumber":1}"#),
            format!(
                "{p}countUnit is only allowed when countType is sinceImagePushed or sinceImagePulled, not imageCountMoreThan."
            ),
        ),
        (
            "countUnit not days",
            with_selection(r#"{"tagStatus":"any","countType":"sinceImagePushed","countUnit":"hours","countNumber":1}"#),
            format!(r#"{p}instance value ("hours") not found in enum (possible values: ["days"])"#),
        ),
        (
            "countNumber zero",
            with_selection(r#"{"tagStatus":"any","countType":"imageCountMoreThan","countNumber":0}"#),
            format!("{p}numeric instance is lower than the required minimum (minimum: 1, found: 0)"),
        ),
        (
            "countNumber missing",
            with_selection(r#"{"tagStatus":"any","countType":"imageCountMoreThan"}"#),
            format!(r#"{p}object has missing required properties (["countNumber"])"#),
        ),
        (
            "unknown selection key",
            with_selection(r#"{"tagStatus":"any","countType":"imageCountMoreThan","countNumber":1,"tagRegex":"."}"#),
            format!(
                r#"{p}object instance has properties which are not allowed by the schema: (["tagRegex"])"#
            ),
        ),
        (
            "action type not in enum",
            r#"{"rules":[{"rulePriority":1,"selection":{"tagStatus":"any","countType":"imageCountMoreThan","countNumber":1},"action":{"type":"delete"}}]}"#.into(),
            format!(
                r#"{p}instance value ("delete") not found in enum (possible values: ["expire","transition"])"#
            ),
        ),
        (
            "action missing type",
            r#"{"rules":[{"rulePriority":1,"selection":{"tagStatus":"any","countType":"imageCountMoreThan","countNumber":1},"action":{}}]}"#.into(),
            format!(r#"{p}object has missing required properties (["type"])"#),
        ),
        (
            "transition action unsupported",
            r#"{"rules":[{"rulePriority":1,"selection":{"tagStatus":"any","countType":"sinceImagePulled","countUnit":"days","countNumber":90},"action":{"type":"transition","targetStorageClass":"archive"}}]}"#.into(),
            format!(
                "{p}action type 'transition' is not supported: this registry has no archive storage class; the only supported action type is 'expire'."
            ),
        ),
        (
            "targetStorageClass with expire",
            r#"{"rules":[{"rulePriority":1,"selection":{"tagStatus":"any","countType":"imageCountMoreThan","countNumber":1},"action":{"type":"expire","targetStorageClass":"archive"}}]}"#.into(),
            format!(
                "{p}targetStorageClass is only allowed with action type 'transition', which is not supported."
            ),
        ),
        (
            "archive storage class unsupported",
            with_selection(r#"{"tagStatus":"any","storageClass":"archive","countType":"imageCountMoreThan","countNumber":1}"#),
            format!(
                "{p}storageClass 'archive' is not supported: this registry has no archive storage class; omit storageClass or use 'standard'."
            ),
        ),
        (
            "sinceImageTransitioned unsupported",
            with_selection(r#"{"tagStatus":"any","countType":"sinceImageTransitioned","countUnit":"days","countNumber":1}"#),
            format!(
                "{p}countType 'sinceImageTransitioned' is not supported: this registry has no archive storage class."
            ),
        ),
        (
            "any rule not last",
            policy_json(&[rule(1, &any_count(1)), rule(2, &untagged_count(1))]),
            format!("{p}Rule for tagStatus=ANY must have the lowest priority."),
        ),
        (
            "two any rules",
            policy_json(&[rule(1, &any_count(5)), rule(2, &any_count(1))]),
            format!("{p}Rule for tagStatus=ANY must have the lowest priority."),
        ),
        (
            "two untagged rules",
            policy_json(&[
                rule(1, &untagged_count(1)),
                rule(2, &age(r#""tagStatus":"untagged""#, "sinceImagePushed", 3)),
            ]),
            format!("{p}Only one rule can select Untagged images."),
        ),
    ];
    assert!(cases.len() >= 10);
    for (name, text, want) in cases {
        assert_eq!(err(&text), want, "case: {name}: {text}");
    }
}

#[test]
fn invalid_parameter_message_wraps_like_ecr() {
    assert_eq!(
        LifecyclePolicy::parse("nope").unwrap_err().invalid_parameter_message(),
        "Invalid parameter at 'LifecyclePolicyText' failed to satisfy constraint: \
         'Lifecycle policy validation failure: Could not map policyString into LifecyclePolicy.'"
    );
}

#[test]
fn parse_never_panics_on_garbage() {
    let mut texts: Vec<String> = [
        "",
        " ",
        "null",
        "true",
        "0",
        "-1",
        "1e400",
        "\"rules\"",
        "[{}]",
        "{\"rules\":null}",
        "{\"rules\":\"x\"}",
        "{\"rules\":[null]}",
        "{\"rules\":[[]]}",
        "{\"rules\":[{}]}",
        "{\"rules\":[{\"rulePriority\":null,\"selection\":null,\"action\":null}]}",
        "{\"rules\":[{\"rulePriority\":1,\"selection\":[],\"action\":{\"type\":\"expire\"}}]}",
        "{\"rules\":[{\"rulePriority\":1,\"selection\":{},\"action\":[]}]}",
        "{\"rules\":[{\"rulePriority\":1,\"selection\":{\"tagStatus\":null,\"countType\":{},\"countNumber\":[]},\"action\":{\"type\":\"expire\"}}]}",
        "{\"rules\":[{\"rulePriority\":1,\"selection\":{\"tagStatus\":\"tagged\",\"tagPrefixList\":\"v\",\"countType\":\"imageCountMoreThan\",\"countNumber\":1},\"action\":{\"type\":\"expire\"}}]}",
        "{\"rules\":[{\"rulePriority\":1,\"selection\":{\"tagStatus\":\"tagged\",\"tagPatternList\":[null],\"countType\":\"imageCountMoreThan\",\"countNumber\":1},\"action\":{\"type\":\"expire\"}}]}",
        "{\"rules\":[{\"rulePriority\":1e3,\"selection\":{},\"action\":{}}]}",
        "{\"rules\":[{\"rulePriority\":18446744073709551616,\"selection\":{},\"action\":{}}]}",
        "{\"rules\":[{\"rulePriority\":1,\"selection\":{\"tagStatus\":\"any\",\"countType\":\"imageCountMoreThan\",\"countNumber\":-9223372036854775808},\"action\":{\"type\":\"expire\"}}]}",
        "{\"rules\":[{\"rulePriority\":1,\"selection\":{\"tagStatus\":\"any\",\"countType\":\"imageCountMoreThan\",\"countNumber\":1},\"action\":{\"type\":7}}]}",
        "{\"rules\":[{\"rulePriority\":1,\"selection\":{\"tagStatus\":\"any\",\"storageClass\":false,\"countType\":\"imageCountMoreThan\",\"countNumber\":1},\"action\":{\"type\":\"expire\"}}]}",
        "{\"rules\":[{\"rulePriority\":1,\"selection\":{\"tagStatus\":\"any\",\"countType\":\"sinceImagePushed\",\"countUnit\":null,\"countNumber\":1},\"action\":{\"type\":\"expire\"}}]}",
        "{\"rules\":[1,2,3],\"rules\":[]}",
        "\u{feff}{\"rules\":[]}",
        "{\"rules\":[{\"rulePriority\":1,\"selection\":{\"tagStatus\":\"tagged\",\"tagPatternList\":[\"\u{1F600}*\u{0}\"],\"countType\":\"imageCountMoreThan\",\"countNumber\":1},\"action\":{\"type\":\"expire\"}},{}]}",
    ]
    .iter()
    .map(|s| (*s).to_owned())
    .collect();
    // Deep nesting: serde_json's recursion limit turns this into an error, not a stack overflow.
    texts.push(format!("{}{}", "[".repeat(10_000), "]".repeat(10_000)));
    texts.push(format!(r#"{{"rules":[{}{}]}}"#, "{\"a\":".repeat(200), "1}".repeat(200)));
    for text in &texts {
        let e = LifecyclePolicy::parse(text).expect_err(text);
        assert!(e.0.starts_with(LifecycleError::PREFIX), "{text}: {e}");
    }
}

#[test]
fn hand_built_policies_evaluate_without_panicking() {
    // `evaluate` is total even for a model `parse` would never produce: lists on an untagged
    // rule are ignored, a zero count keeps nothing, unsorted rules apply in priority order.
    let odd = LifecyclePolicy {
        rules: vec![
            Rule {
                priority: 2,
                description: None,
                selection: Selection {
                    tag_status: TagStatus::Any,
                    tag_prefixes: vec![],
                    tag_patterns: vec![],
                    count: Count::MoreThan(0),
                },
            },
            Rule {
                priority: 1,
                description: None,
                selection: Selection {
                    tag_status: TagStatus::Untagged,
                    tag_prefixes: vec!["x".into()],
                    tag_patterns: vec!["*".into()],
                    count: Count::SincePulledDays(0),
                },
            },
        ],
    };
    let images = vec![img("u", &[], days(1)), img("t", &["t"], 0)];
    assert_eq!(odd.evaluate(&images, NOW), expiries(&[("u", 1), ("t", 2)]));
}
