//! Table-driven tests for parsing and evaluation.

use super::*;

const ACCT: &str = "111122223333";
const OTHER: &str = "444455556666";
const BOB: (&str, &str) = (ACCT, "arn:aws:iam::111122223333:user/bob");
const CAROL: (&str, &str) = (ACCT, "arn:aws:iam::111122223333:user/carol");
const ALICE: (&str, &str) = (OTHER, "arn:aws:iam::444455556666:user/alice");
const DAVE: (&str, &str) = (OTHER, "arn:aws:iam::444455556666:user/dave");
const OTHER_ROOT: (&str, &str) = (OTHER, "arn:aws:iam::444455556666:root");
const ROOT: (&str, &str) = (ACCT, "arn:aws:iam::111122223333:root");
/// A user whose name is `root`: not the account root.
const USER_ROOT: (&str, &str) = (ACCT, "arn:aws:iam::111122223333:user/root");
const REPO: &str = "arn:aws:ecr:us-east-1:111122223333:repository/team/app";
const PROD: &str = "arn:aws:ecr:us-east-1:111122223333:repository/prod/app";

use Decision::{Allow, Deny, NotApplicable as NA};
use PolicyKind::{Identity as I, Resource as R};

fn ctx(pairs: &[(&str, &str)]) -> Context {
    let mut c = Context::new();
    for (k, v) in pairs {
        c.insert(k, *v);
    }
    c
}

fn parse(text: &str, kind: PolicyKind) -> Policy {
    match Policy::parse(text, kind) {
        Ok(p) => p,
        Err(e) => panic!("policy should parse: {e}\n{text}"),
    }
}

fn request<'a>(who: (&'a str, &'a str), action: &'a str, resource: &'a str, context: &'a Context) -> Request<'a> {
    Request { principal: PrincipalRef { account: who.0, arn: who.1 }, action, resource, context }
}

struct Case {
    name: &'static str,
    kind: PolicyKind,
    policy: &'static str,
    who: (&'static str, &'static str),
    action: &'static str,
    resource: &'static str,
    ctx: &'static [(&'static str, &'static str)],
    want: Decision,
}

fn run(cases: &[Case]) {
    let mut failures = Vec::new();
    for c in cases {
        let policy = parse(c.policy, c.kind);
        let context = ctx(c.ctx);
        let got = policy.evaluate(&request(c.who, c.action, c.resource, &context));
        if got != c.want {
            failures.push(format!("{}: want {:?}, got {:?}", c.name, c.want, got));
        }
    }
    assert!(failures.is_empty(), "{} failing case(s):\n{}", failures.len(), failures.join("\n"));
}

/// Identity policy `Allow <action> on <resource>` shorthand.
macro_rules! allow_id {
    ($action:literal, $resource:literal) => {
        concat!(
            r#"{"Version":"2012-10-17","Statement":{"Effect":"Allow","Action":"#,
            $action,
            r#","Resource":"#,
            $resource,
            "}}"
        )
    };
}

/// Identity policy `Allow ecr:* on *` with the given condition block.
macro_rules! cond {
    ($condition:literal) => {
        concat!(r#"{"Statement":[{"Effect":"Allow","Action":"ecr:*","Resource":"*","Condition":"#, $condition, "}]}")
    };
}

#[test]
#[rustfmt::skip] // one table row per line
fn actions_and_resources() {
    run(&[
        Case { name: "prefix wildcard matches", kind: I, policy: allow_id!(r#""ecr:Batch*""#, r#""*""#), who: BOB, action: "ecr:BatchGetImage", resource: REPO, ctx: &[], want: Allow },
        Case { name: "prefix wildcard misses", kind: I, policy: allow_id!(r#""ecr:Batch*""#, r#""*""#), who: BOB, action: "ecr:PutImage", resource: REPO, ctx: &[], want: NA },
        Case { name: "inner wildcard PutImage", kind: I, policy: allow_id!(r#""ecr:*Image""#, r#""*""#), who: BOB, action: "ecr:PutImage", resource: REPO, ctx: &[], want: Allow },
        Case { name: "inner wildcard BatchGetImage", kind: I, policy: allow_id!(r#""ecr:*Image""#, r#""*""#), who: BOB, action: "ecr:BatchGetImage", resource: REPO, ctx: &[], want: Allow },
        Case { name: "inner wildcard ListImages", kind: I, policy: allow_id!(r#""ecr:*Image""#, r#""*""#), who: BOB, action: "ecr:ListImages", resource: REPO, ctx: &[], want: NA },
        Case { name: "question mark", kind: I, policy: allow_id!(r#""ecr:?etAuthorizationToken""#, r#""*""#), who: BOB, action: "ecr:GetAuthorizationToken", resource: "*", ctx: &[], want: Allow },
        Case { name: "action case-insensitive", kind: I, policy: allow_id!(r#""ECR:batchgetimage""#, r#""*""#), who: BOB, action: "ecr:BatchGetImage", resource: REPO, ctx: &[], want: Allow },
        Case { name: "action wildcard case-insensitive", kind: I, policy: allow_id!(r#""ecr:batch*""#, r#""*""#), who: BOB, action: "ECR:BATCHGETIMAGE", resource: REPO, ctx: &[], want: Allow },
        Case { name: "other service", kind: I, policy: allow_id!(r#""ecr:*""#, r#""*""#), who: BOB, action: "iam:CreateUser", resource: "*", ctx: &[], want: NA },
        Case { name: "star action", kind: I, policy: allow_id!(r#""*""#, r#""*""#), who: BOB, action: "iam:CreateUser", resource: "*", ctx: &[], want: Allow },
        Case { name: "action array", kind: I, policy: allow_id!(r#"["ecr:PutImage","ecr:BatchGetImage"]"#, r#""*""#), who: BOB, action: "ecr:BatchGetImage", resource: REPO, ctx: &[], want: Allow },
        Case { name: "resource wildcard", kind: I, policy: allow_id!(r#""ecr:*""#, r#""arn:aws:ecr:*:111122223333:repository/team/*""#), who: BOB, action: "ecr:PutImage", resource: REPO, ctx: &[], want: Allow },
        Case { name: "resource wildcard other repo", kind: I, policy: allow_id!(r#""ecr:*""#, r#""arn:aws:ecr:*:111122223333:repository/team/*""#), who: BOB, action: "ecr:PutImage", resource: PROD, ctx: &[], want: NA },
        Case { name: "resource case-sensitive", kind: I, policy: allow_id!(r#""ecr:*""#, r#""arn:aws:ecr:*:111122223333:repository/Team/*""#), who: BOB, action: "ecr:PutImage", resource: REPO, ctx: &[], want: NA },
        Case { name: "resource question mark", kind: I, policy: allow_id!(r#""ecr:*""#, r#""arn:aws:ecr:us-east-1:111122223333:repository/team/ap?""#), who: BOB, action: "ecr:PutImage", resource: REPO, ctx: &[], want: Allow },
        Case { name: "resource question mark needs one char", kind: I, policy: allow_id!(r#""ecr:*""#, r#""arn:aws:ecr:us-east-1:111122223333:repository/team/app?""#), who: BOB, action: "ecr:PutImage", resource: REPO, ctx: &[], want: NA },
        Case { name: "resource exact", kind: I, policy: allow_id!(r#""ecr:*""#, r#""arn:aws:ecr:us-east-1:111122223333:repository/team/app""#), who: BOB, action: "ecr:PutImage", resource: REPO, ctx: &[], want: Allow },
        Case { name: "repo pattern vs resource-less action", kind: I, policy: allow_id!(r#""ecr:*""#, r#""arn:aws:ecr:*:111122223333:repository/*""#), who: BOB, action: "ecr:GetAuthorizationToken", resource: "*", ctx: &[], want: NA },
        Case { name: "NotAction allows others", kind: I, policy: r#"{"Statement":{"Effect":"Allow","NotAction":"ecr:Delete*","Resource":"*"}}"#, who: BOB, action: "ecr:PutImage", resource: REPO, ctx: &[], want: Allow },
        Case { name: "NotAction excludes listed", kind: I, policy: r#"{"Statement":{"Effect":"Allow","NotAction":"ecr:Delete*","Resource":"*"}}"#, who: BOB, action: "ecr:DeleteRepository", resource: REPO, ctx: &[], want: NA },
        Case { name: "NotAction deny", kind: I, policy: r#"{"Statement":[{"Effect":"Allow","Action":"*","Resource":"*"},{"Effect":"Deny","NotAction":["ecr:BatchGetImage","ecr:GetDownloadUrlForLayer"],"Resource":"*"}]}"#, who: BOB, action: "ecr:PutImage", resource: REPO, ctx: &[], want: Deny },
        Case { name: "NotAction deny spares listed", kind: I, policy: r#"{"Statement":[{"Effect":"Allow","Action":"*","Resource":"*"},{"Effect":"Deny","NotAction":["ecr:BatchGetImage","ecr:GetDownloadUrlForLayer"],"Resource":"*"}]}"#, who: BOB, action: "ecr:batchgetimage", resource: REPO, ctx: &[], want: Allow },
        Case { name: "NotResource allows others", kind: I, policy: r#"{"Statement":{"Effect":"Allow","Action":"ecr:*","NotResource":"arn:aws:ecr:*:111122223333:repository/prod/*"}}"#, who: BOB, action: "ecr:PutImage", resource: REPO, ctx: &[], want: Allow },
        Case { name: "NotResource excludes listed", kind: I, policy: r#"{"Statement":{"Effect":"Allow","Action":"ecr:*","NotResource":"arn:aws:ecr:*:111122223333:repository/prod/*"}}"#, who: BOB, action: "ecr:PutImage", resource: PROD, ctx: &[], want: NA },
        Case { name: "NotResource star matches nothing", kind: I, policy: r#"{"Statement":{"Effect":"Allow","Action":"ecr:*","NotResource":"*"}}"#, who: BOB, action: "ecr:PutImage", resource: REPO, ctx: &[], want: NA },
        Case { name: "deny beats allow in one policy", kind: I, policy: r#"{"Statement":[{"Effect":"Allow","Action":"ecr:*","Resource":"*"},{"Effect":"Deny","Action":"ecr:DeleteRepository","Resource":"*"}]}"#, who: BOB, action: "ecr:DeleteRepository", resource: REPO, ctx: &[], want: Deny },
        Case { name: "deny first then allow", kind: I, policy: r#"{"Statement":[{"Effect":"Deny","Action":"ecr:DeleteRepository","Resource":"*"},{"Effect":"Allow","Action":"ecr:*","Resource":"*"}]}"#, who: BOB, action: "ecr:DeleteRepository", resource: REPO, ctx: &[], want: Deny },
    ]);
}

const DENY_INSECURE: &str = r#"{"Statement":[{"Effect":"Allow","Action":"ecr:*","Resource":"*"},
    {"Sid":"NoPlainHttp","Effect":"Deny","Action":"ecr:PutImage","Resource":"*","Condition":{"Bool":{"aws:SecureTransport":"false"}}}]}"#;

#[test]
#[rustfmt::skip] // one table row per line
fn deny_with_condition() {
    run(&[
        Case { name: "insecure put denied", kind: I, policy: DENY_INSECURE, who: BOB, action: "ecr:PutImage", resource: REPO, ctx: &[("aws:SecureTransport", "false")], want: Deny },
        Case { name: "secure put allowed", kind: I, policy: DENY_INSECURE, who: BOB, action: "ecr:PutImage", resource: REPO, ctx: &[("aws:SecureTransport", "true")], want: Allow },
        Case { name: "key absent: deny does not apply", kind: I, policy: DENY_INSECURE, who: BOB, action: "ecr:PutImage", resource: REPO, ctx: &[], want: Allow },
        Case { name: "other action unaffected", kind: I, policy: DENY_INSECURE, who: BOB, action: "ecr:BatchGetImage", resource: REPO, ctx: &[("aws:SecureTransport", "false")], want: Allow },
    ]);
}

#[test]
#[rustfmt::skip] // one table row per line
fn principals() {
    const ANY: &str = r#"{"Statement":{"Effect":"Allow","Principal":"*","Action":"ecr:BatchGetImage"}}"#;
    const AWS_ANY: &str = r#"{"Statement":{"Effect":"Allow","Principal":{"AWS":"*"},"Action":"ecr:BatchGetImage"}}"#;
    const ACCOUNT: &str = r#"{"Statement":{"Effect":"Allow","Principal":{"AWS":"444455556666"},"Action":"ecr:BatchGetImage"}}"#;
    const ROOT: &str = r#"{"Statement":{"Effect":"Allow","Principal":{"AWS":"arn:aws:iam::444455556666:root"},"Action":"ecr:BatchGetImage"}}"#;
    const USER: &str = r#"{"Statement":{"Effect":"Allow","Principal":{"AWS":"arn:aws:iam::444455556666:user/alice"},"Action":"ecr:BatchGetImage"}}"#;
    const MIXED: &str = r#"{"Statement":{"Effect":"Allow","Principal":{"AWS":["arn:aws:iam::111122223333:user/carol","444455556666"],"Service":"codebuild.amazonaws.com"},"Action":"ecr:BatchGetImage"}}"#;
    const SERVICE: &str = r#"{"Statement":{"Effect":"Allow","Principal":{"Service":"codebuild.amazonaws.com"},"Action":"ecr:BatchGetImage"}}"#;
    const FEDERATED: &str = r#"{"Statement":{"Effect":"Allow","Principal":{"Federated":"cognito-identity.amazonaws.com"},"Action":"ecr:BatchGetImage"}}"#;
    const NOT_ALICE: &str = r#"{"Statement":[{"Effect":"Allow","Principal":"*","Action":"ecr:*"},{"Effect":"Deny","NotPrincipal":{"AWS":"arn:aws:iam::444455556666:user/alice"},"Action":"ecr:DeleteRepository"}]}"#;
    const NOT_ACCOUNT: &str = r#"{"Statement":{"Effect":"Allow","NotPrincipal":{"AWS":"111122223333"},"Action":"ecr:BatchGetImage"}}"#;
    const WITH_RESOURCE: &str = r#"{"Statement":{"Effect":"Allow","Principal":"*","Action":"ecr:BatchGetImage","Resource":"arn:aws:ecr:*:*:repository/team/*"}}"#;
    run(&[
        Case { name: "star principal", kind: R, policy: ANY, who: ALICE, action: "ecr:BatchGetImage", resource: REPO, ctx: &[], want: Allow },
        Case { name: "AWS star principal", kind: R, policy: AWS_ANY, who: BOB, action: "ecr:BatchGetImage", resource: REPO, ctx: &[], want: Allow },
        Case { name: "resource omitted matches any resource", kind: R, policy: ANY, who: ALICE, action: "ecr:BatchGetImage", resource: PROD, ctx: &[], want: Allow },
        Case { name: "account id matches its user", kind: R, policy: ACCOUNT, who: ALICE, action: "ecr:BatchGetImage", resource: REPO, ctx: &[], want: Allow },
        Case { name: "account id matches its root", kind: R, policy: ACCOUNT, who: OTHER_ROOT, action: "ecr:BatchGetImage", resource: REPO, ctx: &[], want: Allow },
        Case { name: "account id excludes others", kind: R, policy: ACCOUNT, who: BOB, action: "ecr:BatchGetImage", resource: REPO, ctx: &[], want: NA },
        Case { name: "root ARN matches any user of account", kind: R, policy: ROOT, who: DAVE, action: "ecr:BatchGetImage", resource: REPO, ctx: &[], want: Allow },
        Case { name: "root ARN excludes others", kind: R, policy: ROOT, who: BOB, action: "ecr:BatchGetImage", resource: REPO, ctx: &[], want: NA },
        Case { name: "user ARN matches that user", kind: R, policy: USER, who: ALICE, action: "ecr:BatchGetImage", resource: REPO, ctx: &[], want: Allow },
        Case { name: "user ARN excludes same-account user", kind: R, policy: USER, who: DAVE, action: "ecr:BatchGetImage", resource: REPO, ctx: &[], want: NA },
        Case { name: "user ARN excludes the account root", kind: R, policy: USER, who: OTHER_ROOT, action: "ecr:BatchGetImage", resource: REPO, ctx: &[], want: NA },
        Case { name: "mixed list user", kind: R, policy: MIXED, who: CAROL, action: "ecr:BatchGetImage", resource: REPO, ctx: &[], want: Allow },
        Case { name: "mixed list account", kind: R, policy: MIXED, who: DAVE, action: "ecr:BatchGetImage", resource: REPO, ctx: &[], want: Allow },
        Case { name: "mixed list miss", kind: R, policy: MIXED, who: BOB, action: "ecr:BatchGetImage", resource: REPO, ctx: &[], want: NA },
        Case { name: "service principal never matches users", kind: R, policy: SERVICE, who: BOB, action: "ecr:BatchGetImage", resource: REPO, ctx: &[], want: NA },
        Case { name: "federated principal never matches users", kind: R, policy: FEDERATED, who: BOB, action: "ecr:BatchGetImage", resource: REPO, ctx: &[], want: NA },
        Case { name: "NotPrincipal deny hits others", kind: R, policy: NOT_ALICE, who: BOB, action: "ecr:DeleteRepository", resource: REPO, ctx: &[], want: Deny },
        Case { name: "NotPrincipal deny spares listed", kind: R, policy: NOT_ALICE, who: ALICE, action: "ecr:DeleteRepository", resource: REPO, ctx: &[], want: Allow },
        Case { name: "NotPrincipal account allows outsiders", kind: R, policy: NOT_ACCOUNT, who: ALICE, action: "ecr:BatchGetImage", resource: REPO, ctx: &[], want: Allow },
        Case { name: "NotPrincipal account excludes its users", kind: R, policy: NOT_ACCOUNT, who: BOB, action: "ecr:BatchGetImage", resource: REPO, ctx: &[], want: NA },
        Case { name: "resource policy with Resource", kind: R, policy: WITH_RESOURCE, who: ALICE, action: "ecr:BatchGetImage", resource: REPO, ctx: &[], want: Allow },
        Case { name: "resource policy with Resource miss", kind: R, policy: WITH_RESOURCE, who: ALICE, action: "ecr:BatchGetImage", resource: PROD, ctx: &[], want: NA },
    ]);
}

#[test]
#[rustfmt::skip] // one table row per line
fn string_and_arn_conditions() {
    const ACCT_EQ: &str = cond!(r#"{"StringEquals":{"aws:PrincipalAccount":"111122223333"}}"#);
    const ACCT_NE: &str = cond!(r#"{"StringNotEquals":{"aws:PrincipalAccount":["111122223333","999999999999"]}}"#);
    const TAG_EQ: &str = cond!(r#"{"StringEquals":{"ecr:ResourceTag/Team":"Platform"}}"#);
    const TAG_IC: &str = cond!(r#"{"StringEqualsIgnoreCase":{"ecr:ResourceTag/Team":"Platform"}}"#);
    const TAG_NIC: &str = cond!(r#"{"StringNotEqualsIgnoreCase":{"aws:ResourceTag/env":"PROD"}}"#);
    const LIKE: &str = cond!(r#"{"StringLike":{"aws:PrincipalArn":["arn:aws:iam::*:user/b*","arn:aws:iam::*:role/ci-?"]}}"#);
    const NOT_LIKE: &str = cond!(r#"{"StringNotLike":{"aws:PrincipalArn":"arn:aws:iam::*:user/temp-*"}}"#);
    const ARN_LIKE: &str = cond!(r#"{"ArnLike":{"aws:PrincipalArn":"arn:aws:iam::*:user/b*"}}"#);
    const ARN_EQ: &str = cond!(r#"{"ArnEquals":{"aws:PrincipalArn":"arn:aws:iam::111122223333:user/bob"}}"#);
    const ARN_NOT: &str = cond!(r#"{"ArnNotLike":{"aws:PrincipalArn":"arn:aws:iam::444455556666:*"}}"#);
    const TWO_KEYS: &str = cond!(r#"{"StringEquals":{"aws:PrincipalAccount":"111122223333","ecr:ResourceTag/team":"platform"}}"#);
    const TWO_OPS: &str = cond!(r#"{"StringEquals":{"aws:PrincipalAccount":"111122223333"},"Bool":{"aws:SecureTransport":true}}"#);
    const KEY_CASE: &str = cond!(r#"{"StringEquals":{"AWS:principalaccount":"111122223333"}}"#);
    const IF_EXISTS: &str = cond!(r#"{"StringEqualsIfExists":{"aws:ResourceTag/env":"dev"}}"#);
    const NE_IF_EXISTS: &str = cond!(r#"{"StringNotEqualsIfExists":{"aws:ResourceTag/env":"prod"}}"#);
    const BINARY: &str = cond!(r#"{"BinaryEquals":{"aws:Blob":"QmVydGg="}}"#);
    run(&[
        Case { name: "StringEquals match", kind: I, policy: ACCT_EQ, who: BOB, action: "ecr:PutImage", resource: REPO, ctx: &[("aws:PrincipalAccount", ACCT)], want: Allow },
        Case { name: "StringEquals mismatch", kind: I, policy: ACCT_EQ, who: BOB, action: "ecr:PutImage", resource: REPO, ctx: &[("aws:PrincipalAccount", OTHER)], want: NA },
        Case { name: "StringEquals absent key is false", kind: I, policy: ACCT_EQ, who: BOB, action: "ecr:PutImage", resource: REPO, ctx: &[], want: NA },
        Case { name: "StringEquals is case-sensitive", kind: I, policy: TAG_EQ, who: BOB, action: "ecr:PutImage", resource: REPO, ctx: &[("ecr:ResourceTag/Team", "platform")], want: NA },
        Case { name: "StringNotEquals on other value", kind: I, policy: ACCT_NE, who: BOB, action: "ecr:PutImage", resource: REPO, ctx: &[("aws:PrincipalAccount", OTHER)], want: Allow },
        Case { name: "StringNotEquals on listed value", kind: I, policy: ACCT_NE, who: BOB, action: "ecr:PutImage", resource: REPO, ctx: &[("aws:PrincipalAccount", "999999999999")], want: NA },
        Case { name: "StringNotEquals absent key is true", kind: I, policy: ACCT_NE, who: BOB, action: "ecr:PutImage", resource: REPO, ctx: &[], want: Allow },
        Case { name: "StringEqualsIgnoreCase", kind: I, policy: TAG_IC, who: BOB, action: "ecr:PutImage", resource: REPO, ctx: &[("ecr:ResourceTag/Team", "PLATFORM")], want: Allow },
        Case { name: "StringEqualsIgnoreCase mismatch", kind: I, policy: TAG_IC, who: BOB, action: "ecr:PutImage", resource: REPO, ctx: &[("ecr:ResourceTag/Team", "platforms")], want: NA },
        Case { name: "StringNotEqualsIgnoreCase equal", kind: I, policy: TAG_NIC, who: BOB, action: "ecr:PutImage", resource: REPO, ctx: &[("aws:ResourceTag/env", "prod")], want: NA },
        Case { name: "StringNotEqualsIgnoreCase other", kind: I, policy: TAG_NIC, who: BOB, action: "ecr:PutImage", resource: REPO, ctx: &[("aws:ResourceTag/env", "dev")], want: Allow },
        Case { name: "StringLike star", kind: I, policy: LIKE, who: BOB, action: "ecr:PutImage", resource: REPO, ctx: &[("aws:PrincipalArn", BOB.1)], want: Allow },
        Case { name: "StringLike question mark", kind: I, policy: LIKE, who: BOB, action: "ecr:PutImage", resource: REPO, ctx: &[("aws:PrincipalArn", "arn:aws:iam::111122223333:role/ci-1")], want: Allow },
        Case { name: "StringLike miss", kind: I, policy: LIKE, who: BOB, action: "ecr:PutImage", resource: REPO, ctx: &[("aws:PrincipalArn", CAROL.1)], want: NA },
        Case { name: "StringNotLike other", kind: I, policy: NOT_LIKE, who: BOB, action: "ecr:PutImage", resource: REPO, ctx: &[("aws:PrincipalArn", BOB.1)], want: Allow },
        Case { name: "StringNotLike listed", kind: I, policy: NOT_LIKE, who: BOB, action: "ecr:PutImage", resource: REPO, ctx: &[("aws:PrincipalArn", "arn:aws:iam::111122223333:user/temp-x")], want: NA },
        Case { name: "ArnLike", kind: I, policy: ARN_LIKE, who: BOB, action: "ecr:PutImage", resource: REPO, ctx: &[("aws:PrincipalArn", BOB.1)], want: Allow },
        Case { name: "ArnLike miss", kind: I, policy: ARN_LIKE, who: BOB, action: "ecr:PutImage", resource: REPO, ctx: &[("aws:PrincipalArn", CAROL.1)], want: NA },
        Case { name: "ArnEquals", kind: I, policy: ARN_EQ, who: BOB, action: "ecr:PutImage", resource: REPO, ctx: &[("aws:PrincipalArn", BOB.1)], want: Allow },
        Case { name: "ArnNotLike outsider", kind: I, policy: ARN_NOT, who: BOB, action: "ecr:PutImage", resource: REPO, ctx: &[("aws:PrincipalArn", ALICE.1)], want: NA },
        Case { name: "ArnNotLike insider", kind: I, policy: ARN_NOT, who: BOB, action: "ecr:PutImage", resource: REPO, ctx: &[("aws:PrincipalArn", BOB.1)], want: Allow },
        Case { name: "two keys both hold", kind: I, policy: TWO_KEYS, who: BOB, action: "ecr:PutImage", resource: REPO, ctx: &[("aws:PrincipalAccount", ACCT), ("ecr:ResourceTag/team", "platform")], want: Allow },
        Case { name: "two keys one fails", kind: I, policy: TWO_KEYS, who: BOB, action: "ecr:PutImage", resource: REPO, ctx: &[("aws:PrincipalAccount", ACCT)], want: NA },
        Case { name: "two operators both hold", kind: I, policy: TWO_OPS, who: BOB, action: "ecr:PutImage", resource: REPO, ctx: &[("aws:PrincipalAccount", ACCT), ("aws:SecureTransport", "true")], want: Allow },
        Case { name: "two operators one fails", kind: I, policy: TWO_OPS, who: BOB, action: "ecr:PutImage", resource: REPO, ctx: &[("aws:PrincipalAccount", ACCT), ("aws:SecureTransport", "false")], want: NA },
        Case { name: "key names are case-insensitive", kind: I, policy: KEY_CASE, who: BOB, action: "ecr:PutImage", resource: REPO, ctx: &[("aws:PrincipalAccount", ACCT)], want: Allow },
        Case { name: "multi-valued key: any value matches", kind: I, policy: ACCT_EQ, who: BOB, action: "ecr:PutImage", resource: REPO, ctx: &[("aws:PrincipalAccount", OTHER), ("aws:PrincipalAccount", ACCT)], want: Allow },
        Case { name: "IfExists absent key", kind: I, policy: IF_EXISTS, who: BOB, action: "ecr:PutImage", resource: REPO, ctx: &[], want: Allow },
        Case { name: "IfExists present match", kind: I, policy: IF_EXISTS, who: BOB, action: "ecr:PutImage", resource: REPO, ctx: &[("aws:ResourceTag/env", "dev")], want: Allow },
        Case { name: "IfExists present mismatch", kind: I, policy: IF_EXISTS, who: BOB, action: "ecr:PutImage", resource: REPO, ctx: &[("aws:ResourceTag/env", "prod")], want: NA },
        Case { name: "NotEqualsIfExists absent", kind: I, policy: NE_IF_EXISTS, who: BOB, action: "ecr:PutImage", resource: REPO, ctx: &[], want: Allow },
        Case { name: "NotEqualsIfExists present listed", kind: I, policy: NE_IF_EXISTS, who: BOB, action: "ecr:PutImage", resource: REPO, ctx: &[("aws:ResourceTag/env", "prod")], want: NA },
        Case { name: "BinaryEquals", kind: I, policy: BINARY, who: BOB, action: "ecr:PutImage", resource: REPO, ctx: &[("aws:Blob", "QmVydGg=")], want: Allow },
    ]);
}

#[test]
#[rustfmt::skip] // one table row per line
fn numeric_date_bool_conditions() {
    const NUM_LT: &str = cond!(r#"{"NumericLessThan":{"aws:EpochTime":1800000000}}"#);
    const NUM_GE: &str = cond!(r#"{"NumericGreaterThanEquals":{"ecr:Count":"2.5"}}"#);
    const NUM_NE: &str = cond!(r#"{"NumericNotEquals":{"ecr:Count":["1","2"]}}"#);
    const NUM_EQ: &str = cond!(r#"{"NumericEquals":{"ecr:Count":"10"}}"#);
    const DATE_LT: &str = cond!(r#"{"DateLessThan":{"aws:CurrentTime":"2026-12-01T00:00:00Z"}}"#);
    const DATE_LT_DAY: &str = cond!(r#"{"DateLessThan":{"aws:CurrentTime":"2026-11-24"}}"#);
    const DATE_GT_EPOCH: &str = cond!(r#"{"DateGreaterThan":{"aws:EpochTime":"2026-11-23T12:00:00Z"}}"#);
    const DATE_EQ: &str = cond!(r#"{"DateEquals":{"aws:CurrentTime":"2026-11-23T13:00:00+01:00"}}"#);
    const DATE_LE_EPOCH_VALUE: &str = cond!(r#"{"DateLessThanEquals":{"aws:CurrentTime":1795435200}}"#);
    const BOOL_TRUE: &str = cond!(r#"{"Bool":{"aws:SecureTransport":"true"}}"#);
    const BOOL_LITERAL: &str = cond!(r#"{"Bool":{"aws:SecureTransport":false}}"#);
    const BOOL_IF_EXISTS: &str = cond!(r#"{"BoolIfExists":{"aws:MultiFactorAuthPresent":"true"}}"#);
    run(&[
        Case { name: "NumericLessThan holds", kind: I, policy: NUM_LT, who: BOB, action: "ecr:PutImage", resource: REPO, ctx: &[("aws:EpochTime", "1795435200")], want: Allow },
        Case { name: "NumericLessThan fails", kind: I, policy: NUM_LT, who: BOB, action: "ecr:PutImage", resource: REPO, ctx: &[("aws:EpochTime", "1800000000")], want: NA },
        Case { name: "NumericLessThan absent", kind: I, policy: NUM_LT, who: BOB, action: "ecr:PutImage", resource: REPO, ctx: &[], want: NA },
        Case { name: "NumericGreaterThanEquals float", kind: I, policy: NUM_GE, who: BOB, action: "ecr:PutImage", resource: REPO, ctx: &[("ecr:Count", "2.5")], want: Allow },
        Case { name: "NumericGreaterThanEquals below", kind: I, policy: NUM_GE, who: BOB, action: "ecr:PutImage", resource: REPO, ctx: &[("ecr:Count", "2")], want: NA },
        Case { name: "NumericNotEquals other", kind: I, policy: NUM_NE, who: BOB, action: "ecr:PutImage", resource: REPO, ctx: &[("ecr:Count", "3")], want: Allow },
        Case { name: "NumericNotEquals listed", kind: I, policy: NUM_NE, who: BOB, action: "ecr:PutImage", resource: REPO, ctx: &[("ecr:Count", "2.0")], want: NA },
        Case { name: "NumericEquals non-numeric context", kind: I, policy: NUM_EQ, who: BOB, action: "ecr:PutImage", resource: REPO, ctx: &[("ecr:Count", "ten")], want: NA },
        Case { name: "DateLessThan holds", kind: I, policy: DATE_LT, who: BOB, action: "ecr:PutImage", resource: REPO, ctx: &[("aws:CurrentTime", "2026-11-23T12:00:00Z")], want: Allow },
        Case { name: "DateLessThan fractional context", kind: I, policy: DATE_LT, who: BOB, action: "ecr:PutImage", resource: REPO, ctx: &[("aws:CurrentTime", "2026-11-30T23:59:59.999Z")], want: Allow },
        Case { name: "DateLessThan at the bound", kind: I, policy: DATE_LT, who: BOB, action: "ecr:PutImage", resource: REPO, ctx: &[("aws:CurrentTime", "2026-12-01T00:00:00Z")], want: NA },
        Case { name: "DateLessThan after", kind: I, policy: DATE_LT, who: BOB, action: "ecr:PutImage", resource: REPO, ctx: &[("aws:CurrentTime", "2027-01-01T00:00:00.123Z")], want: NA },
        Case { name: "DateLessThan absent", kind: I, policy: DATE_LT, who: BOB, action: "ecr:PutImage", resource: REPO, ctx: &[], want: NA },
        Case { name: "DateLessThan garbage context", kind: I, policy: DATE_LT, who: BOB, action: "ecr:PutImage", resource: REPO, ctx: &[("aws:CurrentTime", "yesterday")], want: NA },
        Case { name: "DateLessThan date-only policy", kind: I, policy: DATE_LT_DAY, who: BOB, action: "ecr:PutImage", resource: REPO, ctx: &[("aws:CurrentTime", "2026-11-23T23:59:59Z")], want: Allow },
        Case { name: "DateLessThan date-only policy next day", kind: I, policy: DATE_LT_DAY, who: BOB, action: "ecr:PutImage", resource: REPO, ctx: &[("aws:CurrentTime", "2026-11-24T00:00:00Z")], want: NA },
        Case { name: "DateGreaterThan epoch context", kind: I, policy: DATE_GT_EPOCH, who: BOB, action: "ecr:PutImage", resource: REPO, ctx: &[("aws:EpochTime", "1795435201")], want: Allow },
        Case { name: "DateGreaterThan epoch context equal", kind: I, policy: DATE_GT_EPOCH, who: BOB, action: "ecr:PutImage", resource: REPO, ctx: &[("aws:EpochTime", "1795435200")], want: NA },
        Case { name: "DateEquals across zones", kind: I, policy: DATE_EQ, who: BOB, action: "ecr:PutImage", resource: REPO, ctx: &[("aws:CurrentTime", "2026-11-23T12:00:00Z")], want: Allow },
        Case { name: "DateLessThanEquals epoch policy value", kind: I, policy: DATE_LE_EPOCH_VALUE, who: BOB, action: "ecr:PutImage", resource: REPO, ctx: &[("aws:CurrentTime", "2026-11-23T12:00:00Z")], want: Allow },
        Case { name: "Bool true", kind: I, policy: BOOL_TRUE, who: BOB, action: "ecr:PutImage", resource: REPO, ctx: &[("aws:SecureTransport", "true")], want: Allow },
        Case { name: "Bool case-insensitive value", kind: I, policy: BOOL_TRUE, who: BOB, action: "ecr:PutImage", resource: REPO, ctx: &[("aws:SecureTransport", "TRUE")], want: Allow },
        Case { name: "Bool false context", kind: I, policy: BOOL_TRUE, who: BOB, action: "ecr:PutImage", resource: REPO, ctx: &[("aws:SecureTransport", "false")], want: NA },
        Case { name: "Bool absent", kind: I, policy: BOOL_TRUE, who: BOB, action: "ecr:PutImage", resource: REPO, ctx: &[], want: NA },
        Case { name: "Bool JSON literal", kind: I, policy: BOOL_LITERAL, who: BOB, action: "ecr:PutImage", resource: REPO, ctx: &[("aws:SecureTransport", "false")], want: Allow },
        Case { name: "BoolIfExists absent", kind: I, policy: BOOL_IF_EXISTS, who: BOB, action: "ecr:PutImage", resource: REPO, ctx: &[], want: Allow },
        Case { name: "BoolIfExists false", kind: I, policy: BOOL_IF_EXISTS, who: BOB, action: "ecr:PutImage", resource: REPO, ctx: &[("aws:MultiFactorAuthPresent", "false")], want: NA },
    ]);
}

#[test]
#[rustfmt::skip] // one table row per line
fn ip_null_and_set_conditions() {
    const IP: &str = cond!(r#"{"IpAddress":{"aws:SourceIp":["203.0.113.0/24","2001:db8::/32","198.51.100.7"]}}"#);
    const NOT_IP: &str = cond!(r#"{"NotIpAddress":{"aws:SourceIp":"10.0.0.0/8"}}"#);
    const NULL_TRUE: &str = cond!(r#"{"Null":{"aws:ResourceTag/owner":"true"}}"#);
    const NULL_FALSE: &str = cond!(r#"{"Null":{"aws:ResourceTag/owner":false}}"#);
    const ANY_VALUE: &str = cond!(r#"{"ForAnyValue:StringEquals":{"aws:TagKeys":["team","env"]}}"#);
    const ALL_VALUES: &str = cond!(r#"{"ForAllValues:StringEquals":{"aws:TagKeys":["team","env"]}}"#);
    const ALL_LIKE: &str = cond!(r#"{"ForAllValues:StringLike":{"aws:TagKeys":"team-*"}}"#);
    const ANY_NOT: &str = cond!(r#"{"ForAnyValue:StringNotEquals":{"aws:TagKeys":["team","env"]}}"#);
    const ALL_NOT: &str = cond!(r#"{"ForAllValues:StringNotEquals":{"aws:TagKeys":["secret"]}}"#);
    const ANY_IF_EXISTS: &str = cond!(r#"{"ForAnyValue:StringEqualsIfExists":{"aws:TagKeys":"team"}}"#);
    run(&[
        Case { name: "IpAddress v4 in", kind: I, policy: IP, who: BOB, action: "ecr:PutImage", resource: REPO, ctx: &[("aws:SourceIp", "203.0.113.77")], want: Allow },
        Case { name: "IpAddress v4 out", kind: I, policy: IP, who: BOB, action: "ecr:PutImage", resource: REPO, ctx: &[("aws:SourceIp", "203.0.114.1")], want: NA },
        Case { name: "IpAddress bare address", kind: I, policy: IP, who: BOB, action: "ecr:PutImage", resource: REPO, ctx: &[("aws:SourceIp", "198.51.100.7")], want: Allow },
        Case { name: "IpAddress v6 in", kind: I, policy: IP, who: BOB, action: "ecr:PutImage", resource: REPO, ctx: &[("aws:SourceIp", "2001:db8:1234::42")], want: Allow },
        Case { name: "IpAddress v6 out", kind: I, policy: IP, who: BOB, action: "ecr:PutImage", resource: REPO, ctx: &[("aws:SourceIp", "2001:db9::42")], want: NA },
        Case { name: "IpAddress v4-mapped v6", kind: I, policy: IP, who: BOB, action: "ecr:PutImage", resource: REPO, ctx: &[("aws:SourceIp", "::ffff:203.0.113.9")], want: Allow },
        Case { name: "IpAddress garbage context", kind: I, policy: IP, who: BOB, action: "ecr:PutImage", resource: REPO, ctx: &[("aws:SourceIp", "localhost")], want: NA },
        Case { name: "IpAddress absent", kind: I, policy: IP, who: BOB, action: "ecr:PutImage", resource: REPO, ctx: &[], want: NA },
        Case { name: "NotIpAddress outside", kind: I, policy: NOT_IP, who: BOB, action: "ecr:PutImage", resource: REPO, ctx: &[("aws:SourceIp", "192.0.2.1")], want: Allow },
        Case { name: "NotIpAddress inside", kind: I, policy: NOT_IP, who: BOB, action: "ecr:PutImage", resource: REPO, ctx: &[("aws:SourceIp", "10.1.2.3")], want: NA },
        Case { name: "NotIpAddress absent is true", kind: I, policy: NOT_IP, who: BOB, action: "ecr:PutImage", resource: REPO, ctx: &[], want: Allow },
        Case { name: "Null true, key absent", kind: I, policy: NULL_TRUE, who: BOB, action: "ecr:PutImage", resource: REPO, ctx: &[], want: Allow },
        Case { name: "Null true, key present", kind: I, policy: NULL_TRUE, who: BOB, action: "ecr:PutImage", resource: REPO, ctx: &[("aws:ResourceTag/owner", "bob")], want: NA },
        Case { name: "Null false, key present", kind: I, policy: NULL_FALSE, who: BOB, action: "ecr:PutImage", resource: REPO, ctx: &[("aws:ResourceTag/owner", "bob")], want: Allow },
        Case { name: "Null false, key absent", kind: I, policy: NULL_FALSE, who: BOB, action: "ecr:PutImage", resource: REPO, ctx: &[], want: NA },
        Case { name: "ForAnyValue one matches", kind: I, policy: ANY_VALUE, who: BOB, action: "ecr:TagResource", resource: REPO, ctx: &[("aws:TagKeys", "cost"), ("aws:TagKeys", "env")], want: Allow },
        Case { name: "ForAnyValue none matches", kind: I, policy: ANY_VALUE, who: BOB, action: "ecr:TagResource", resource: REPO, ctx: &[("aws:TagKeys", "cost")], want: NA },
        Case { name: "ForAnyValue absent is false", kind: I, policy: ANY_VALUE, who: BOB, action: "ecr:TagResource", resource: REPO, ctx: &[], want: NA },
        Case { name: "ForAllValues subset", kind: I, policy: ALL_VALUES, who: BOB, action: "ecr:TagResource", resource: REPO, ctx: &[("aws:TagKeys", "team"), ("aws:TagKeys", "env")], want: Allow },
        Case { name: "ForAllValues one outside", kind: I, policy: ALL_VALUES, who: BOB, action: "ecr:TagResource", resource: REPO, ctx: &[("aws:TagKeys", "team"), ("aws:TagKeys", "cost")], want: NA },
        Case { name: "ForAllValues absent is true", kind: I, policy: ALL_VALUES, who: BOB, action: "ecr:TagResource", resource: REPO, ctx: &[], want: Allow },
        Case { name: "ForAllValues StringLike", kind: I, policy: ALL_LIKE, who: BOB, action: "ecr:TagResource", resource: REPO, ctx: &[("aws:TagKeys", "team-a"), ("aws:TagKeys", "team-b")], want: Allow },
        Case { name: "ForAllValues StringLike miss", kind: I, policy: ALL_LIKE, who: BOB, action: "ecr:TagResource", resource: REPO, ctx: &[("aws:TagKeys", "team-a"), ("aws:TagKeys", "owner")], want: NA },
        Case { name: "ForAnyValue negated: some value outside", kind: I, policy: ANY_NOT, who: BOB, action: "ecr:TagResource", resource: REPO, ctx: &[("aws:TagKeys", "team"), ("aws:TagKeys", "cost")], want: Allow },
        Case { name: "ForAnyValue negated: all listed", kind: I, policy: ANY_NOT, who: BOB, action: "ecr:TagResource", resource: REPO, ctx: &[("aws:TagKeys", "team"), ("aws:TagKeys", "env")], want: NA },
        Case { name: "ForAnyValue negated: absent", kind: I, policy: ANY_NOT, who: BOB, action: "ecr:TagResource", resource: REPO, ctx: &[], want: NA },
        Case { name: "ForAllValues negated: none listed", kind: I, policy: ALL_NOT, who: BOB, action: "ecr:TagResource", resource: REPO, ctx: &[("aws:TagKeys", "team")], want: Allow },
        Case { name: "ForAllValues negated: one listed", kind: I, policy: ALL_NOT, who: BOB, action: "ecr:TagResource", resource: REPO, ctx: &[("aws:TagKeys", "team"), ("aws:TagKeys", "secret")], want: NA },
        Case { name: "ForAnyValue IfExists absent", kind: I, policy: ANY_IF_EXISTS, who: BOB, action: "ecr:TagResource", resource: REPO, ctx: &[], want: Allow },
    ]);
}

/// (name, identity policies, resource policies, caller, expected combined decision).
type AuthzCase =
    (&'static str, &'static [&'static str], &'static [&'static str], (&'static str, &'static str), Decision);

#[test]
#[rustfmt::skip] // one table row per line
fn authorize_combines_identity_and_resource() {
    const ID_PULL: &str = allow_id!(r#""ecr:BatchGetImage""#, r#""*""#);
    const ID_DENY: &str = r#"{"Statement":{"Effect":"Deny","Action":"ecr:*","Resource":"arn:aws:ecr:*:*:repository/team/*"}}"#;
    const ID_OTHER: &str = allow_id!(r#""ecr:PutImage""#, r#""*""#);
    const RES_ALICE: &str = r#"{"Statement":{"Effect":"Allow","Principal":{"AWS":"arn:aws:iam::444455556666:user/alice"},"Action":"ecr:BatchGetImage"}}"#;
    const RES_ACCT: &str = r#"{"Statement":{"Effect":"Allow","Principal":{"AWS":"111122223333"},"Action":["ecr:BatchGetImage","ecr:GetDownloadUrlForLayer"]}}"#;
    const RES_DENY_ALL: &str = r#"{"Statement":{"Effect":"Deny","Principal":"*","Action":"ecr:*"}}"#;
    const RES_OTHER_ACCT: &str = r#"{"Statement":{"Effect":"Allow","Principal":{"AWS":"999999999999"},"Action":"ecr:*"}}"#;
    const RES_ROOT: &str = r#"{"Statement":{"Effect":"Allow","Principal":{"AWS":"arn:aws:iam::111122223333:root"},"Action":"ecr:*"}}"#;
    const RES_BOB: &str = r#"{"Statement":{"Effect":"Allow","Principal":{"AWS":"arn:aws:iam::111122223333:user/bob"},"Action":"ecr:BatchGetImage"}}"#;
    const RES_BOB_AND_ACCT: &str = r#"{"Statement":{"Effect":"Allow","Principal":{"AWS":["111122223333","arn:aws:iam::111122223333:user/bob"]},"Action":"ecr:BatchGetImage"}}"#;
    const RES_STAR: &str = r#"{"Statement":{"Effect":"Allow","Principal":"*","Action":"ecr:BatchGetImage"}}"#;
    const RES_NOT_CAROL: &str = r#"{"Statement":{"Effect":"Allow","NotPrincipal":{"AWS":"arn:aws:iam::111122223333:user/carol"},"Action":"ecr:BatchGetImage"}}"#;
    const RES_DENY_ACCT: &str = r#"{"Statement":{"Effect":"Deny","Principal":{"AWS":"111122223333"},"Action":"ecr:BatchGetImage"}}"#;
    const RES_OTHER_ROOT: &str = r#"{"Statement":{"Effect":"Allow","Principal":{"AWS":"arn:aws:iam::444455556666:root"},"Action":"ecr:*"}}"#;
    let cases: &[AuthzCase] = &[
        ("same account: no policies", &[], &[], BOB, Deny),
        ("same account: identity allow alone", &[ID_PULL], &[], BOB, Allow),
        // Naming the account delegates to it: its users need an identity policy that allows.
        ("same account: account id alone grants nothing", &[], &[RES_ACCT], BOB, Deny),
        ("same account: root ARN alone grants nothing", &[], &[RES_ROOT], BOB, Deny),
        ("same account: root ARN alone grants nothing to a user named root", &[], &[RES_ROOT], USER_ROOT, Deny),
        ("same account: root ARN grants the root itself", &[], &[RES_ROOT], ROOT, Allow),
        ("same account: account id grants the root itself", &[], &[RES_ACCT], ROOT, Allow),
        ("same account: account named, identity allows", &[ID_PULL], &[RES_ROOT], BOB, Allow),
        ("same account: account named, identity allows another action", &[ID_OTHER], &[RES_ROOT], BOB, Deny),
        ("same account: user ARN alone grants", &[], &[RES_BOB], BOB, Allow),
        ("same account: user ARN grants no one else", &[], &[RES_BOB], CAROL, Deny),
        ("same account: user ARN beside the account grants the user", &[], &[RES_BOB_AND_ACCT], BOB, Allow),
        ("same account: user ARN beside the account, another user", &[], &[RES_BOB_AND_ACCT], CAROL, Deny),
        ("same account: account in one policy, user in the other", &[], &[RES_ACCT, RES_BOB], BOB, Allow),
        ("same account: star grants", &[], &[RES_STAR], BOB, Allow),
        ("same account: NotPrincipal leaving the caller out grants", &[], &[RES_NOT_CAROL], BOB, Allow),
        ("same account: NotPrincipal naming the caller", &[], &[RES_NOT_CAROL], CAROL, Deny),
        ("same account: deny naming the account wins", &[ID_PULL], &[RES_DENY_ACCT], BOB, Deny),
        ("same account: both allow", &[ID_PULL], &[RES_ACCT], BOB, Allow),
        ("same account: irrelevant allows", &[ID_OTHER], &[RES_OTHER_ACCT], BOB, Deny),
        ("same account: identity deny wins", &[ID_PULL, ID_DENY], &[RES_ACCT], BOB, Deny),
        ("same account: resource deny wins", &[ID_PULL], &[RES_ACCT, RES_DENY_ALL], BOB, Deny),
        ("cross account: no policies", &[], &[], ALICE, Deny),
        ("cross account: identity allow alone", &[ID_PULL], &[], ALICE, Deny),
        ("cross account: resource allow alone", &[], &[RES_ALICE], ALICE, Deny),
        ("cross account: both allow", &[ID_PULL], &[RES_ALICE], ALICE, Allow),
        ("cross account: resource names another user", &[ID_PULL], &[RES_ALICE], DAVE, Deny),
        ("cross account: identity deny", &[ID_PULL, ID_DENY], &[RES_ALICE], ALICE, Deny),
        ("cross account: resource deny", &[ID_PULL], &[RES_ALICE, RES_DENY_ALL], ALICE, Deny),
        ("cross account: identity allows other action", &[ID_OTHER], &[RES_ALICE], ALICE, Deny),
        ("cross account: account named alone", &[], &[RES_OTHER_ROOT], ALICE, Deny),
        ("cross account: account named, identity allows", &[ID_PULL], &[RES_OTHER_ROOT], ALICE, Allow),
        ("cross account: account named, identity deny", &[ID_PULL, ID_DENY], &[RES_OTHER_ROOT], ALICE, Deny),
        ("cross account: star alone", &[], &[RES_STAR], ALICE, Deny),
        ("cross account: star, identity allows", &[ID_PULL], &[RES_STAR], ALICE, Allow),
        ("cross account: the root of the other account, account named", &[], &[RES_OTHER_ROOT], OTHER_ROOT, Deny),
    ];
    let empty = Context::new();
    for (name, ids, ress, who, want) in cases {
        let ids: Vec<Policy> = ids.iter().map(|t| parse(t, I)).collect();
        let ress: Vec<Policy> = ress.iter().map(|t| parse(t, R)).collect();
        let id_refs: Vec<&Policy> = ids.iter().collect();
        let res_refs: Vec<&Policy> = ress.iter().collect();
        let got = authorize(&id_refs, &res_refs, ACCT, &request(*who, "ecr:BatchGetImage", REPO, &empty));
        assert_eq!(got, *want, "{name}");
    }
}

#[test]
fn managed_policies() {
    // (policy name, action, resource, allowed?)
    let cases: &[(&str, &str, &str, bool)] = &[
        ("AmazonEC2ContainerRegistryReadOnly", "ecr:BatchGetImage", REPO, true),
        ("AmazonEC2ContainerRegistryReadOnly", "ecr:GetAuthorizationToken", "*", true),
        ("AmazonEC2ContainerRegistryReadOnly", "ecr:DescribeImageScanFindings", REPO, true),
        ("AmazonEC2ContainerRegistryReadOnly", "ecr:PutImage", REPO, false),
        ("AmazonEC2ContainerRegistryReadOnly", "ecr:InitiateLayerUpload", REPO, false),
        ("AmazonEC2ContainerRegistryPowerUser", "ecr:PutImage", REPO, true),
        ("AmazonEC2ContainerRegistryPowerUser", "ecr:CompleteLayerUpload", REPO, true),
        ("AmazonEC2ContainerRegistryPowerUser", "ecr:BatchGetImage", REPO, true),
        ("AmazonEC2ContainerRegistryPowerUser", "ecr:DeleteRepository", REPO, false),
        ("AmazonEC2ContainerRegistryPowerUser", "ecr:BatchDeleteImage", REPO, false),
        ("AmazonEC2ContainerRegistryFullAccess", "ecr:DeleteRepository", REPO, true),
        ("AmazonEC2ContainerRegistryFullAccess", "ecr:SetRepositoryPolicy", REPO, true),
        ("AmazonEC2ContainerRegistryFullAccess", "iam:CreateUser", "*", false),
        ("AdministratorAccess", "iam:CreateUser", "*", true),
        ("AdministratorAccess", "ecr:DeleteRepository", REPO, true),
        ("AdministratorAccess", "s3:GetObject", "arn:aws:s3:::bucket/key", true),
    ];
    let empty = Context::new();
    for &(name, action, resource, allowed) in cases {
        let text = managed::by_name(name).unwrap_or_else(|| panic!("managed policy {name}"));
        let p = parse(text, I);
        let want = if allowed { Allow } else { NA };
        assert_eq!(p.evaluate(&request(BOB, action, resource, &empty)), want, "{name} {action}");
        let combined = authorize(&[&p], &[], ACCT, &request(BOB, action, resource, &empty));
        assert_eq!(combined, if allowed { Allow } else { Deny }, "{name} {action} via authorize");
    }
    assert_eq!(managed::by_name("PowerUser"), None);
    assert_eq!(managed::by_name("ECR_FULL_ACCESS"), None);
    let consts =
        [managed::ADMINISTRATOR_ACCESS, managed::ECR_READ_ONLY, managed::ECR_POWER_USER, managed::ECR_FULL_ACCESS];
    for (i, (_, text)) in managed::ALL.iter().enumerate() {
        assert_eq!(*text, consts[i]);
    }
}

#[test]
#[rustfmt::skip] // one table row per line
fn parse_errors_are_precise() {
    // (kind, document, substrings the message must contain)
    let cases: &[(PolicyKind, &str, &[&str])] = &[
        (I, r#"{"Statement": ["#, &["Policy is not valid JSON", "line 1"]),
        (I, "", &["Policy is not valid JSON"]),
        (I, r#"["Allow"]"#, &["Policy must be a JSON object, not an array"]),
        (I, r#"{"Version":"2012-10-17"}"#, &["Policy has no Statement"]),
        (I, r#"{"Statement":[]}"#, &["Statement must contain at least one statement"]),
        (I, r#"{"Statement":"Allow"}"#, &["Statement must be an object or an array of objects, not a string"]),
        (I, r#"{"Statement":[{"Effect":"Allow","Action":"*","Resource":"*"},"x"]}"#, &["Statement[1]: a statement must be an object, not a string"]),
        (I, r#"{"Version":"2020-01-01","Statement":{"Effect":"Allow","Action":"*","Resource":"*"}}"#, &["Version must be \"2012-10-17\" or \"2008-10-17\", not \"2020-01-01\""]),
        (I, r#"{"Statment":[]}"#, &["unknown element \"Statment\""]),
        (I, r#"{"Statement":[{"Effect":"Allow","Action":"*","Resource":"*"},{"Effect":"allow","Action":"*","Resource":"*"}]}"#, &["Statement[1]: Effect must be \"Allow\" or \"Deny\", not \"allow\""]),
        (I, r#"{"Statement":{"Effect":true,"Action":"*","Resource":"*"}}"#, &["Statement[0]: Effect must be \"Allow\" or \"Deny\", not a boolean"]),
        (I, r#"{"Statement":{"Action":"*","Resource":"*"}}"#, &["Statement[0]: Effect is required"]),
        (I, r#"{"Statement":{"Effect":"Allow","Resource":"*"}}"#, &["Statement[0]: must contain exactly one of Action or NotAction"]),
        (I, r#"{"Statement":{"Effect":"Allow","Action":"*","NotAction":"ecr:*","Resource":"*"}}"#, &["Statement[0]: must contain exactly one of Action or NotAction"]),
        (I, r#"{"Statement":{"Effect":"Allow","Action":"Get*","Resource":"*"}}"#, &["Statement[0]: Action \"Get*\" must be \"*\" or \"<service>:<action>\""]),
        (I, r#"{"Statement":{"Effect":"Allow","Action":":Get","Resource":"*"}}"#, &["Statement[0]: Action \":Get\" has an invalid service prefix"]),
        (I, r#"{"Statement":{"Effect":"Allow","Action":"ecr:","Resource":"*"}}"#, &["Statement[0]: Action \"ecr:\" has an invalid action name"]),
        (I, r#"{"Statement":{"Effect":"Allow","Action":[],"Resource":"*"}}"#, &["Statement[0]: Action must not be an empty list"]),
        (I, r#"{"Statement":{"Effect":"Allow","Action":["ecr:PutImage",7],"Resource":"*"}}"#, &["Statement[0]: Action entries must be strings, not a number"]),
        (I, r#"{"Statement":{"Effect":"Allow","Action":"ecr:*","Resource":"repo/x"}}"#, &["Statement[0]: Resource \"repo/x\" must be \"*\" or an ARN"]),
        (I, r#"{"Statement":{"Effect":"Allow","Action":"ecr:*"}}"#, &["Statement[0]: an identity-based policy statement must contain Resource or NotResource"]),
        (I, r#"{"Statement":{"Effect":"Allow","Action":"ecr:*","Resource":"*","NotResource":"*"}}"#, &["must not contain both Resource and NotResource"]),
        (I, r#"{"Statement":{"Effect":"Allow","Principal":"*","Action":"ecr:*","Resource":"*"}}"#, &["Statement[0]: Principal is not allowed in an identity-based policy"]),
        (I, r#"{"Statement":{"Effect":"Allow","NotPrincipal":"*","Action":"ecr:*","Resource":"*"}}"#, &["Statement[0]: NotPrincipal is not allowed in an identity-based policy"]),
        (R, r#"{"Statement":{"Effect":"Allow","Action":"ecr:*"}}"#, &["Statement[0]: a resource-based policy statement must contain exactly one of Principal or NotPrincipal"]),
        (R, r#"{"Statement":{"Effect":"Allow","Principal":"bob","Action":"ecr:*"}}"#, &["Statement[0]: Principal must be \"*\" or an object"]),
        (R, r#"{"Statement":{"Effect":"Allow","Principal":{},"Action":"ecr:*"}}"#, &["Statement[0]: Principal must not be an empty object"]),
        (R, r#"{"Statement":{"Effect":"Allow","Principal":{"User":"bob"},"Action":"ecr:*"}}"#, &["unknown principal type \"User\""]),
        (R, r#"{"Statement":{"Effect":"Allow","Principal":{"AWS":"12345"},"Action":"ecr:*"}}"#, &["Statement[0]: Principal.AWS \"12345\" must be \"*\", a 12-digit account id or an ARN"]),
        (R, r#"{"Statement":{"Effect":"Allow","Principal":{"AWS":"arn:aws:iam::111122223333:user/*"},"Action":"ecr:*"}}"#, &["must not contain wildcards"]),
        (R, r#"{"Statement":{"Effect":"Allow","Principal":{"AWS":"arn:aws:iam::1111:root"},"Action":"ecr:*"}}"#, &["is not a valid account root ARN"]),
        (R, r#"{"Statement":{"Effect":"Allow","Principal":{"AWS":[]},"Action":"ecr:*"}}"#, &["Principal.AWS must not be an empty list"]),
        (R, r#"{"Statement":{"Effect":"Allow","Principal":{"AWS":"arn:AWS:iam::111122223333:root"},"Action":"ecr:*"}}"#, &["must be \"*\", a 12-digit account id or an ARN"]),
        (R, r#"{"Statement":{"Effect":"Allow","Principal":{"AWS":"arn:aws:iam::111122223333:"},"Action":"ecr:*"}}"#, &["must be \"*\", a 12-digit account id or an ARN"]),
        (R, r#"{"Statement":{"Effect":"Allow","Principal":{"AWS":"arn:aws:iam::11112222333a:root"},"Action":"ecr:*"}}"#, &["is not a valid account root ARN"]),
        (I, r#"{"Statement":[{"Sid":"A","Effect":"Allow","Action":"ecr:*","Resource":"*"},{"Sid":"A","Effect":"Deny","Action":"ecr:*","Resource":"*"}]}"#, &["Statement[1]: Sid \"A\" is used by an earlier statement"]),
        (I, r#"{"Statement":{"Sid":3,"Effect":"Allow","Action":"*","Resource":"*"}}"#, &["Sid must be a string, not a number"]),
        (I, r#"{"Statement":{"effect":"Allow","Action":"*","Resource":"*"}}"#, &["Statement[0]: unknown element \"effect\" (did you mean \"Effect\"?)"]),
        (I, r#"{"Statement":{"Effect":"Allow","Action":"*","Resource":"*","Condition":{"StringEqualz":{"a":"b"}}}}"#, &["Statement[0]: unknown condition operator \"StringEqualz\""]),
        (I, r#"{"Statement":{"Effect":"Allow","Action":"*","Resource":"*","Condition":{"ForSomeValues:StringEquals":{"a":"b"}}}}"#, &["unknown condition operator \"ForSomeValues:StringEquals\""]),
        (I, r#"{"Statement":{"Effect":"Allow","Action":"*","Resource":"*","Condition":{"NullIfExists":{"a":"true"}}}}"#, &["Null takes no IfExists suffix or set prefix"]),
        (I, r#"{"Statement":{"Effect":"Allow","Action":"*","Resource":"*","Condition":{"Null":{"a":"yes"}}}}"#, &["Null takes \"true\" or \"false\", not \"yes\""]),
        (I, r#"{"Statement":{"Effect":"Allow","Action":"*","Resource":"*","Condition":"x"}}"#, &["Statement[0]: Condition must be an object"]),
        (I, r#"{"Statement":{"Effect":"Allow","Action":"*","Resource":"*","Condition":{"StringEquals":"x"}}}"#, &["Condition operator \"StringEquals\" must map to an object"]),
        (I, r#"{"Statement":{"Effect":"Allow","Action":"*","Resource":"*","Condition":{"StringEquals":{}}}}"#, &["has no condition keys"]),
        (I, r#"{"Statement":{"Effect":"Allow","Action":"*","Resource":"*","Condition":{"StringEquals":{"k":{"x":1}}}}}"#, &["Condition StringEquals on \"k\": condition values must be strings, numbers or booleans, not an object"]),
        (I, r#"{"Statement":{"Effect":"Allow","Action":"*","Resource":"*","Condition":{"StringEquals":{"k":[]}}}}"#, &["the list of condition values is empty"]),
        (I, r#"{"Statement":{"Effect":"Allow","Action":"*","Resource":"*","Condition":{"IpAddress":{"aws:SourceIp":"10.0.0.0/40"}}}}"#, &["Condition IpAddress on \"aws:SourceIp\": \"10.0.0.0/40\" is not an IP address or CIDR block"]),
        (I, r#"{"Statement":{"Effect":"Allow","Action":"*","Resource":"*","Condition":{"DateLessThan":{"aws:CurrentTime":"2026-02-30"}}}}"#, &["\"2026-02-30\" is not a date"]),
        (I, r#"{"Statement":{"Effect":"Allow","Action":"*","Resource":"*","Condition":{"NumericLessThan":{"n":"NaN"}}}}"#, &["\"NaN\" is not a number"]),
        (I, r#"{"Statement":{"Effect":"Allow","Action":"*","Resource":"*","Condition":{"Bool":{"aws:SecureTransport":"yes"}}}}"#, &["\"yes\" is not \"true\" or \"false\""]),
    ];
    for (kind, doc, wants) in cases {
        match Policy::parse(doc, *kind) {
            Ok(_) => panic!("should fail: {doc}"),
            Err(e) => {
                for w in *wants {
                    assert!(e.0.contains(w), "message {:?} should contain {w:?} (document {doc})", e.0);
                }
                assert_eq!(e.to_string(), e.0);
            }
        }
    }
}

#[test]
#[rustfmt::skip] // one table row per line
fn accepted_document_shapes() {
    let ok: &[(PolicyKind, &str)] = &[
        (I, r#"{"Statement":{"Effect":"Allow","Action":"*","Resource":"*"}}"#),
        (I, r#"{"Version":"2008-10-17","Id":"x","Statement":[{"Sid":"","Effect":"Deny","NotAction":["ecr:*"],"NotResource":["arn:aws:ecr:*:*:repository/*"]}]}"#),
        (I, r#"{"Statement":{"Effect":"Allow","Action":"*:*","Resource":"*","Condition":{}}}"#),
        (R, r#"{"Statement":{"Effect":"Allow","Principal":{"AWS":["*"],"Service":["a.amazonaws.com"],"Federated":"f","CanonicalUser":"c"},"Action":"ecr:*"}}"#),
        (R, r#"{"Statement":{"Effect":"Allow","Principal":{"AWS":"arn:aws:sts::111122223333:assumed-role/ci/session"},"Action":"ecr:*","Resource":"*"}}"#),
        (R, r#"{"Statement":{"Effect":"Allow","Principal":{"AWS":"arn:aws-cn:iam::111122223333:root"},"Action":"ecr:*"}}"#),
        (I, r#"{"Statement":{"Effect":"Allow","Action":"*","Resource":"*","Condition":{"ForAllValues:NumericLessThanIfExists":{"n":[1,2.5,"3"]},"DateGreaterThanEquals":{"t":"2026-11-23T12:00:00.123456+05:30"}}}}"#),
    ];
    for (kind, doc) in ok {
        let p = parse(doc, *kind);
        assert_eq!(p.kind(), *kind);
        assert!(p.statement_count() >= 1);
    }
    let p = parse(r#"{"Version":"2012-10-17","Id":"pol","Statement":[{"Sid":"A","Effect":"Allow","Action":"*","Resource":"*"},{"Effect":"Allow","Action":"*","Resource":"*"}]}"#, I);
    assert_eq!(p.version(), Some("2012-10-17"));
    assert_eq!(p.id(), Some("pol"));
    assert_eq!(p.sids().collect::<Vec<_>>(), vec![Some("A"), None]);
}

#[test]
fn root_principal_arn_of_other_partition_matches_account() {
    let p = parse(
        r#"{"Statement":{"Effect":"Allow","Principal":{"AWS":"arn:aws-cn:iam::444455556666:root"},"Action":"ecr:*"}}"#,
        R,
    );
    let empty = Context::new();
    assert_eq!(p.evaluate(&request(ALICE, "ecr:PutImage", REPO, &empty)), Allow);
}

#[test]
fn context_behaviour() {
    let mut c = Context::new().with("aws:TagKeys", "a").with("AWS:TAGKEYS", "b").with("aws:SourceIp", "10.0.0.1");
    assert_eq!(c.get("aws:tagkeys"), Some(&["a".to_owned(), "b".to_owned()][..]));
    assert_eq!(c.get("AWS:SOURCEIP").map(<[String]>::len), Some(1));
    assert_eq!(c.get("aws:CurrentTime"), None);
    assert!(!c.is_empty());
    assert_eq!(c.iter().count(), 2);
    c.remove("Aws:TagKeys");
    assert_eq!(c.get("aws:TagKeys"), None);
    // Non-ASCII key names fold too.
    let c = Context::new().with("ecr:ResourceTag/Ärger", "x");
    assert!(c.get("ECR:resourcetag/ärger").is_some());
    assert!(eq_ignore_case("ÄRGER", "ärger"));
    assert!(!eq_ignore_case("aws:a", "aws:b"));
}

#[test]
fn policy_is_send_sync_and_clone() {
    fn assert_send_sync<T: Send + Sync + Clone + 'static>() {}
    assert_send_sync::<Policy>();
    assert_send_sync::<Context>();
    assert_send_sync::<PolicyError>();
}

/// Many malformed inputs: every one must return `Err`, none may panic.
#[test]
fn malformed_documents_never_panic() {
    let deep_array = format!("{}{}", "[".repeat(10_000), "]".repeat(10_000));
    let deep_object = format!("{}1{}", r#"{"a":"#.repeat(10_000), "}".repeat(10_000));
    let deep_condition = format!(
        r#"{{"Statement":{{"Effect":"Allow","Action":"*","Resource":"*","Condition":{{"StringEquals":{{"k":{}1{}}}}}}}}}"#,
        "[".repeat(200),
        "]".repeat(200)
    );
    let huge_number = format!(
        r#"{{"Statement":{{"Effect":"Allow","Action":"*","Resource":"*","Condition":{{"NumericEquals":{{"k":{}}}}}}}}}"#,
        "9".repeat(5000)
    );
    let mut docs: Vec<String> = vec![deep_array, deep_object, deep_condition, huge_number];
    for raw in [
        "null",
        "true",
        "1",
        "\"x\"",
        "{}",
        "{\"Statement\":null}",
        "{\"Statement\":{}}",
        "{\"Statement\":[null]}",
        "{\"Statement\":[[]]}",
        "\u{0}",
        "{\"Statement\":{\"Effect\":\"Allow\",\"Action\":\"*\",\"Resource\":\"*\"},}",
        "\u{feff}{}",
        "{\"Statement\":{\"Effect\":\"Allow\",\"Action\":\"\u{1F600}\",\"Resource\":\"*\"}}",
    ] {
        docs.push(raw.to_owned());
    }
    // Substitute every statement element with values of every JSON type.
    let values = [
        "null",
        "true",
        "0",
        "-1.5e300",
        "\"\"",
        "\" \"",
        "[]",
        "[null]",
        "[[\"ecr:*\"]]",
        "{}",
        "{\"AWS\":{}}",
        "{\"StringEquals\":null}",
        "{\"StringEquals\":{\"k\":null}}",
        "{\"StringEquals\":{\"k\":[[1]]}}",
        "\"ecr:*\\u0000\"",
        "\"arn:\"",
        "\"::::::\"",
    ];
    let keys =
        ["Sid", "Effect", "Action", "NotAction", "Resource", "NotResource", "Principal", "NotPrincipal", "Condition"];
    for key in keys {
        for v in values {
            let mut base = serde_json::json!({"Effect":"Allow","Action":"ecr:*","Resource":"*","Principal":"*"});
            if let Some(obj) = base.as_object_mut() {
                obj.insert(key.to_owned(), serde_json::from_str(v).unwrap_or(serde_json::Value::Null));
            }
            docs.push(serde_json::json!({ "Statement": base }).to_string());
        }
    }
    // Every prefix of a valid document.
    let valid = r#"{"Version":"2012-10-17","Statement":[{"Sid":"x","Effect":"Allow","Principal":{"AWS":"111122223333"},"Action":["ecr:*"],"Condition":{"IpAddress":{"aws:SourceIp":"10.0.0.0/8"}}}]}"#;
    for end in 0..valid.len() {
        docs.push(valid[..end].to_owned());
    }
    let mut errors = 0;
    for doc in &docs {
        for kind in [I, R] {
            if Policy::parse(doc, kind).is_err() {
                errors += 1;
            }
        }
    }
    // Every truncated document and every fixed-shape malformed one fails for both kinds; the
    // substitution set contains a few accepted documents (e.g. Sid "").
    assert!(errors > docs.len(), "{errors} errors for {} documents", docs.len());
    for end in 0..valid.len() {
        assert!(Policy::parse(&valid[..end], R).is_err());
    }
    assert!(Policy::parse(valid, R).is_ok());
}

/// A 20-statement repository policy of realistic shape.
fn twenty_statement_policy() -> String {
    let mut statements = Vec::new();
    for i in 0..19 {
        statements.push(format!(
            r#"{{"Sid":"S{i}","Effect":"Allow","Principal":{{"AWS":["arn:aws:iam::4444555566{i:02}:user/u{i}","5555666677{i:02}"]}},"Action":["ecr:BatchGetImage","ecr:GetDownloadUrlForLayer","ecr:Batch*"],"Condition":{{"StringEquals":{{"aws:PrincipalAccount":"4444555566{i:02}"}},"IpAddress":{{"aws:SourceIp":["10.{i}.0.0/16","2001:db8::/32"]}}}}}}"#
        ));
    }
    statements.push(
        r#"{"Sid":"Pull","Effect":"Allow","Principal":{"AWS":"111122223333"},"Action":["ecr:BatchGetImage","ecr:GetDownloadUrlForLayer"],"Condition":{"DateLessThan":{"aws:CurrentTime":"2030-01-01T00:00:00Z"},"Bool":{"aws:SecureTransport":"true"}}}"#
            .to_owned(),
    );
    format!(r#"{{"Version":"2012-10-17","Statement":[{}]}}"#, statements.join(","))
}

#[test]
fn twenty_statement_policy_evaluates() {
    let p = parse(&twenty_statement_policy(), R);
    assert_eq!(p.statement_count(), 20);
    let c = Context::new()
        .with("aws:PrincipalAccount", ACCT)
        .with("aws:SourceIp", "192.0.2.10")
        .with("aws:CurrentTime", "2026-11-23T12:00:00Z")
        .with("aws:SecureTransport", "true");
    assert_eq!(p.evaluate(&request(BOB, "ecr:BatchGetImage", REPO, &c)), Allow);
    assert_eq!(p.evaluate(&request(BOB, "ecr:PutImage", REPO, &c)), NA);
}

/// Micro-benchmark: `cargo test -p berth-policy --release -- --ignored --nocapture bench_`.
#[test]
#[ignore = "micro-benchmark; run explicitly"]
fn bench_evaluate_twenty_statements() {
    let p = parse(&twenty_statement_policy(), R);
    let c = Context::new()
        .with("aws:PrincipalAccount", ACCT)
        .with("aws:SourceIp", "192.0.2.10")
        .with("aws:CurrentTime", "2026-11-23T12:00:00Z")
        .with("aws:SecureTransport", "true");
    let r = request(BOB, "ecr:BatchGetImage", REPO, &c);
    let n = 1_000_000u32;
    let start = std::time::Instant::now();
    let mut allowed = 0u32;
    for _ in 0..n {
        if std::hint::black_box(&p).evaluate(std::hint::black_box(&r)) == Allow {
            allowed += 1;
        }
    }
    let per = start.elapsed() / n;
    println!("20-statement policy: {per:?} per evaluation ({allowed} allowed)");

    // Worst case: every statement applies to the caller and evaluates all its conditions, which
    // fail on the last key.
    let statement = r#"{"Effect":"Allow","Principal":"*","Action":"ecr:*","Condition":{"StringLike":{"aws:PrincipalArn":"arn:aws:iam::*:user/*"},"DateLessThan":{"aws:CurrentTime":"2030-01-01T00:00:00Z"},"IpAddress":{"aws:SourceIp":["10.0.0.0/8","2001:db8::/32"]}}}"#;
    let text = format!(r#"{{"Statement":[{}]}}"#, vec![statement; 20].join(","));
    let p = parse(&text, R);
    let c = c.with("aws:PrincipalArn", BOB.1);
    let r = request(BOB, "ecr:BatchGetImage", REPO, &c);
    let start = std::time::Instant::now();
    for _ in 0..n {
        assert_eq!(std::hint::black_box(&p).evaluate(std::hint::black_box(&r)), NA);
    }
    println!("20 statements, all conditions evaluated: {:?} per evaluation", start.elapsed() / n);
}

/// ECR accepts a repository or registry policy whose statements repeat a `Sid` (IAM refuses it
/// in identity policies).
#[test]
fn resource_policies_may_repeat_a_sid() {
    let doc = r#"{"Statement":[{"Sid":"A","Effect":"Allow","Principal":"*","Action":"ecr:*"},{"Sid":"A","Effect":"Deny","Principal":"*","Action":"ecr:DeleteRepository"}]}"#;
    let p = Policy::parse(doc, PolicyKind::Resource).expect("a repeated Sid is accepted");
    assert_eq!(p.sids().collect::<Vec<_>>(), [Some("A"), Some("A")]);
}
