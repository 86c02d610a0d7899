//! IAM policy documents, as identity or resource policies (the first byte picks which), then
//! evaluated against a few requests.
#![no_main]

use berth_policy::iam::{Context, Decision, Policy, PolicyKind, PrincipalRef, Request, authorize};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((kind, text)) = data.split_first() else { return };
    let Ok(text) = std::str::from_utf8(text) else { return };
    let kind = if kind & 1 == 0 { PolicyKind::Identity } else { PolicyKind::Resource };
    let Ok(policy) = Policy::parse(text, kind) else { return };
    assert_eq!(policy.kind(), kind);
    assert_eq!(policy.sids().count(), policy.statement_count());
    let contexts = [
        Context::new(),
        Context::new()
            .with("aws:SourceIp", "10.1.2.3")
            .with("aws:SecureTransport", "false")
            .with("aws:CurrentTime", "2024-01-01T00:00:00Z")
            .with("aws:EpochTime", "1704067200")
            .with("aws:PrincipalAccount", "111122223333")
            .with("aws:PrincipalArn", "arn:aws:iam::111122223333:user/alice")
            .with("ecr:ResourceTag/team", "blue")
            .with("aws:TagKeys", "team")
            .with("aws:TagKeys", "env"),
        Context::new().with("aws:SourceIp", "2001:db8::1").with("aws:EpochTime", "not a number"),
    ];
    let principals = [
        PrincipalRef { account: "111122223333", arn: "arn:aws:iam::111122223333:user/alice" },
        PrincipalRef { account: "444455556666", arn: "arn:aws:iam::444455556666:root" },
    ];
    let actions = ["ecr:BatchGetImage", "ecr:PutImage", "ecr:GetAuthorizationToken", "s3:GetObject"];
    let resources = ["arn:aws:ecr:us-east-1:111122223333:repository/team/app", "*"];
    for context in &contexts {
        for principal in principals {
            for action in actions {
                for resource in resources {
                    let req = Request { principal, action, resource, context };
                    let d = policy.evaluate(&req);
                    assert_eq!(policy.evaluate(&req), d, "evaluation is deterministic");
                    let combined = match kind {
                        PolicyKind::Identity => authorize(&[&policy], &[], "111122223333", &req),
                        PolicyKind::Resource => authorize(&[], &[&policy], "111122223333", &req),
                    };
                    // An explicit Deny always wins, and nothing allows without an Allow.
                    if d == Decision::Deny || d == Decision::NotApplicable {
                        assert_eq!(combined, Decision::Deny);
                    }
                }
            }
        }
    }
});
