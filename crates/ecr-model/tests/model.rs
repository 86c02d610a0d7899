//! Wire-level tests of the generated ECR model.

use berth_ecr_model::validate::Constraint;
use berth_ecr_model::{
    BatchGetImageRequest, CreateRepositoryRequest, DecodeError, DescribeRepositoriesRequest,
    DescribeRepositoriesResponse, EcrOp, EcrRequest, ErrorCode, Fault, ImageTagMutability, PutImageRequest,
    UploadLayerPartRequest, ValidationError, public,
};
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::{Value, json};

/// Decode `body`, serialize it back, and compare as JSON values.
fn round_trip<T: DeserializeOwned + Serialize>(body: &Value) -> T {
    let v: T = serde_json::from_value(body.clone()).expect("decodes");
    assert_eq!(&serde_json::to_value(&v).expect("encodes"), body);
    v
}

fn validation(op: EcrOp, body: &Value) -> ValidationError {
    match EcrRequest::decode(op, body.to_string().as_bytes()) {
        Err(DecodeError::Validation(e)) => e,
        other => panic!("expected a validation error, got {other:?}"),
    }
}

#[test]
fn model_examples_decode_and_validate() {
    let examples: std::collections::BTreeMap<String, Vec<Value>> =
        serde_json::from_str(include_str!("fixtures/ecr-examples.json")).expect("fixture parses");
    assert!(!examples.is_empty());
    let mut n = 0;
    for (name, inputs) in &examples {
        let op = EcrOp::from_name(name).unwrap_or_else(|| panic!("example for unknown op {name}"));
        for input in inputs {
            let req = EcrRequest::decode(op, input.to_string().as_bytes())
                .unwrap_or_else(|e| panic!("{name} example {input}: {e}"));
            assert_eq!(req.op(), op);
            n += 1;
        }
    }
    assert!(n >= 8, "only {n} examples");
    // And the typed path for one of them.
    let req: CreateRepositoryRequest = serde_json::from_value(examples["CreateRepository"][0].clone()).unwrap();
    assert_eq!(req.repository_name, "project-a/nginx-web-app");
    req.validate().unwrap();
}

#[test]
fn create_repository_round_trip() {
    let body = json!({
        "repositoryName": "project-a/nginx-web-app",
        "tags": [{"Key": "team", "Value": "infra"}],
        "imageTagMutability": "IMMUTABLE",
        "imageScanningConfiguration": {"scanOnPush": true},
        "encryptionConfiguration": {"encryptionType": "KMS", "kmsKey": "arn:aws:kms:us-east-1:123456789012:key/abcd"}
    });
    let req: CreateRepositoryRequest = round_trip(&body);
    assert_eq!(req.image_tag_mutability, Some(ImageTagMutability::Immutable));
    assert_eq!(req.tags.as_ref().unwrap()[0].key, "team");
    req.validate().unwrap();
}

#[test]
fn describe_repositories_round_trip() {
    let req: DescribeRepositoriesRequest = round_trip(&json!({}));
    assert_eq!(req, DescribeRepositoriesRequest::default());
    let req: DescribeRepositoriesRequest =
        round_trip(&json!({"registryId": "123456789012", "repositoryNames": ["ubuntu", "project-a/nginx"]}));
    req.validate().unwrap();
    let req: DescribeRepositoriesRequest = round_trip(&json!({"maxResults": 1000, "nextToken": "abc"}));
    req.validate().unwrap();

    // The response carries epoch-seconds timestamps as JSON numbers.
    let resp: DescribeRepositoriesResponse = round_trip(&json!({
        "repositories": [{
            "repositoryArn": "arn:aws:ecr:us-east-1:123456789012:repository/ubuntu",
            "registryId": "123456789012",
            "repositoryName": "ubuntu",
            "repositoryUri": "123456789012.dkr.ecr.us-east-1.amazonaws.com/ubuntu",
            "createdAt": 1_700_000_000.25,
            "imageTagMutability": "MUTABLE",
            "imageScanningConfiguration": {"scanOnPush": false},
            "encryptionConfiguration": {"encryptionType": "AES256"}
        }]
    }));
    assert!((resp.repositories.unwrap()[0].created_at.unwrap().0 - 1_700_000_000.25).abs() < 1e-6);
}

#[test]
fn put_image_round_trip() {
    let manifest = r#"{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a","size":2},"layers":[]}"#;
    let body = json!({
        "repositoryName": "ubuntu",
        "imageManifest": manifest,
        "imageManifestMediaType": "application/vnd.oci.image.manifest.v1+json",
        "imageTag": "latest",
        "imageDigest": "sha256:8f6fa8bd2a6b1e0c0b51f8a8ab4f1c5c3ad4a1f41b4fcd6f0e0e0e0e0e0e0e0e"
    });
    let req: PutImageRequest = round_trip(&body);
    assert_eq!(req.image_manifest, manifest);
    req.validate().unwrap();
}

#[test]
fn batch_get_image_round_trip() {
    let body = json!({
        "repositoryName": "ubuntu",
        "imageIds": [{"imageTag": "latest"}, {"imageDigest": "sha256:0123abcd"}],
        "acceptedMediaTypes": ["application/vnd.docker.distribution.manifest.v2+json"]
    });
    let req: BatchGetImageRequest = round_trip(&body);
    assert_eq!(req.image_ids.len(), 2);
    req.validate().unwrap();
}

#[test]
fn blob_is_base64_on_the_wire() {
    let body = json!({
        "repositoryName": "ubuntu",
        "uploadId": "0a1b2c3d-0a1b-0a1b-0a1b-0a1b2c3d4e5f",
        "partFirstByte": 0,
        "partLastByte": 4,
        "layerPartBlob": "aGVsbG8="
    });
    let req: UploadLayerPartRequest = round_trip(&body);
    assert_eq!(req.layer_part_blob.as_bytes(), b"hello");
    req.validate().unwrap();
    let bad = json!({"repositoryName": "ubuntu", "uploadId": "x", "partFirstByte": 0, "partLastByte": 4, "layerPartBlob": "!!"});
    assert!(matches!(
        EcrRequest::decode(EcrOp::UploadLayerPart, bad.to_string().as_bytes()),
        Err(DecodeError::Serialization(_))
    ));
}

#[test]
fn unknown_enum_values_round_trip_but_fail_input_validation() {
    let body = json!({"repositoryName": "ubuntu", "imageTagMutability": "SOMETHING_NEW"});
    let req: CreateRepositoryRequest = round_trip(&body);
    assert_eq!(req.image_tag_mutability, Some(ImageTagMutability::Unknown("SOMETHING_NEW".into())));
    assert_eq!(
        req.validate().unwrap_err().to_string(),
        "1 validation error detected: Value 'SOMETHING_NEW' at 'imageTagMutability' failed to satisfy constraint: \
         Member must satisfy enum value set: [MUTABLE, IMMUTABLE, IMMUTABLE_WITH_EXCLUSION, MUTABLE_WITH_EXCLUSION]"
    );
    // Outputs keep whatever a newer peer sent.
    let resp = json!({"repositories": [{"repositoryName": "x", "imageTagMutability": "FROM_THE_FUTURE"}]});
    let _: DescribeRepositoriesResponse = round_trip(&resp);
    assert_eq!(ImageTagMutability::from("MUTABLE"), ImageTagMutability::Mutable);
    assert_eq!(ImageTagMutability::ImmutableWithExclusion.as_str(), "IMMUTABLE_WITH_EXCLUSION");
}

#[test]
fn unknown_members_are_ignored() {
    // AWS ignores members it does not model; so do we (no deny_unknown_fields).
    let body = json!({"repositoryName": "ubuntu", "someFutureMember": {"a": 1}});
    match EcrRequest::decode(EcrOp::CreateRepository, body.to_string().as_bytes()).unwrap() {
        EcrRequest::CreateRepository(r) => assert_eq!(r.repository_name, "ubuntu"),
        other => panic!("{other:?}"),
    }
}

#[test]
fn empty_body_is_an_empty_object() {
    assert!(matches!(EcrRequest::decode(EcrOp::DescribeRepositories, b""), Ok(EcrRequest::DescribeRepositories(_))));
    assert!(matches!(EcrRequest::decode(EcrOp::DescribeRepositories, b"{"), Err(DecodeError::Serialization(_))));
    assert!(matches!(EcrRequest::decode(EcrOp::DescribeRepositories, b"[]"), Err(DecodeError::Serialization(_))));
    let wrong_type = json!({"maxResults": "ten"});
    assert!(matches!(
        EcrRequest::decode(EcrOp::DescribeRepositories, wrong_type.to_string().as_bytes()),
        Err(DecodeError::Serialization(_))
    ));
}

#[test]
fn targets() {
    assert_eq!(EcrOp::ALL.len(), 58);
    assert_eq!(public::EcrPublicOp::ALL.len(), 23);
    let mut names = std::collections::BTreeSet::new();
    for &op in EcrOp::ALL {
        let target = format!("AmazonEC2ContainerRegistry_V20150921.{}", op.name());
        assert_eq!(op.target(), target);
        assert_eq!(EcrOp::from_target(&target), Some(op));
        assert_eq!(EcrOp::from_name(op.name()), Some(op));
        assert_eq!(op.input_type(), format!("{}Request", op.name()));
        assert!(names.insert(op.name()));
        for e in op.errors() {
            assert!(ErrorCode::from_name(e).is_some(), "{op:?} lists unknown error {e}");
        }
    }
    assert_eq!(
        EcrOp::from_target("AmazonEC2ContainerRegistry_V20150921.CreateRepository"),
        Some(EcrOp::CreateRepository)
    );
    assert_eq!(EcrOp::CreateRepository.output_type(), "CreateRepositoryResponse");
    for bad in [
        "",
        "CreateRepository",
        "AmazonEC2ContainerRegistry_V20150921.",
        "AmazonEC2ContainerRegistry_V20150921.NoSuchOperation",
        "AmazonEC2ContainerRegistry_V20150921.createRepository",
        "AmazonEC2ContainerRegistry_V20150921CreateRepository",
        "AmazonEC2ContainerRegistry_V20150921.CreateRepository ",
        "amazonec2containerregistry_v20150921.CreateRepository",
        "SpencerFrontendService.CreateRepository",
    ] {
        assert_eq!(EcrOp::from_target(bad), None, "{bad:?}");
    }
    for &op in public::EcrPublicOp::ALL {
        assert_eq!(public::EcrPublicOp::from_target(&format!("SpencerFrontendService.{}", op.name())), Some(op));
    }
    assert_eq!(public::EcrPublicOp::from_target("AmazonEC2ContainerRegistry_V20150921.CreateRepository"), None);
}

#[test]
fn error_table() {
    assert_eq!(ErrorCode::ALL.len(), 47);
    assert_eq!(public::ErrorCode::ALL.len(), 24);
    let server = ErrorCode::ServerException.info();
    assert_eq!((server.code, server.http_status, server.fault), ("ServerException", 500, Fault::Server));
    let nf = ErrorCode::RepositoryNotFoundException;
    assert_eq!((nf.name(), nf.http_status(), nf.fault()), ("RepositoryNotFoundException", 400, Fault::Client));
    for &e in ErrorCode::ALL {
        assert_eq!(ErrorCode::from_name(e.name()), Some(e));
        assert_eq!(e.http_status() >= 500, e.fault() == Fault::Server);
    }
    assert_eq!(ErrorCode::from_name("NoSuchException"), None);
}

#[test]
fn every_pattern_compiles() {
    for p in berth_ecr_model::ecr::PATTERNS.iter().chain(public::PATTERNS) {
        // Forces the lazy compile, which panics on a pattern regex-lite rejects.
        let _ = p.regex.is_match("");
    }
}

#[test]
fn too_long_repository_name() {
    let name = "a".repeat(257);
    let e = validation(EcrOp::CreateRepository, &json!({"repositoryName": name}));
    assert_eq!(
        e.to_string(),
        format!(
            "1 validation error detected: Value '{name}' at 'repositoryName' failed to satisfy constraint: \
             Member must have length less than or equal to 256"
        )
    );
    assert_eq!(
        e.invalid_parameter_message(),
        "Invalid parameter at 'repositoryName' failed to satisfy constraint: 'must have length less than or equal to 256'"
    );
}

#[test]
fn bad_pattern() {
    let e = validation(EcrOp::CreateRepository, &json!({"repositoryName": "Ubuntu"}));
    assert_eq!(
        e.to_string(),
        "1 validation error detected: Value 'Ubuntu' at 'repositoryName' failed to satisfy constraint: \
         Member must satisfy regular expression pattern: [a-z0-9]+((\\.|_|__|-+)[a-z0-9]+)*(\\/[a-z0-9]+((\\.|_|__|-+)[a-z0-9]+)*)*"
    );
    assert_eq!(
        e.invalid_parameter_message(),
        "Invalid parameter at 'repositoryName' failed to satisfy constraint: 'must satisfy regular expression \
         '[a-z0-9]+((\\.|_|__|-+)[a-z0-9]+)*(\\/[a-z0-9]+((\\.|_|__|-+)[a-z0-9]+)*)*''"
    );
    // Model patterns without anchors still match the whole value.
    let e = validation(EcrOp::CreateRepository, &json!({"repositoryName": "ok", "registryId": "x123456789012"}));
    assert_eq!(e.violations[0].path, "registryId");
    assert_eq!(e.violations[0].constraint, Constraint::Pattern("[0-9]{12}"));
    // Too short and a bad pattern at once: both reported, joined with "; ".
    let e = validation(EcrOp::CreateRepository, &json!({"repositoryName": "A"}));
    assert_eq!(
        e.to_string(),
        "2 validation errors detected: Value 'A' at 'repositoryName' failed to satisfy constraint: \
         Member must have length greater than or equal to 2; Value 'A' at 'repositoryName' failed to satisfy \
         constraint: Member must satisfy regular expression pattern: \
         [a-z0-9]+((\\.|_|__|-+)[a-z0-9]+)*(\\/[a-z0-9]+((\\.|_|__|-+)[a-z0-9]+)*)*"
    );
}

#[test]
fn missing_required_members() {
    let e = validation(EcrOp::CreateRepository, &json!({}));
    assert_eq!(
        e.to_string(),
        "1 validation error detected: Value null at 'repositoryName' failed to satisfy constraint: Member must not be null"
    );
    // null counts as missing; all missing members are reported at once.
    let e = validation(EcrOp::BatchGetImage, &json!({"repositoryName": null}));
    assert_eq!(
        e.to_string(),
        "2 validation errors detected: Value null at 'imageIds' failed to satisfy constraint: Member must not be null; \
         Value null at 'repositoryName' failed to satisfy constraint: Member must not be null"
    );
    // Required members of nested structures, with list paths.
    let e = validation(
        EcrOp::CreateRepository,
        &json!({"repositoryName": "ubuntu", "tags": [{"Key": "a", "Value": "b"}, {"Key": "c"}]}),
    );
    assert_eq!(
        e.to_string(),
        "1 validation error detected: Value null at 'tags.2.member.Value' failed to satisfy constraint: Member must not be null"
    );
}

#[test]
fn ranges_and_list_lengths() {
    let e = validation(EcrOp::DescribeRepositories, &json!({"maxResults": 1001}));
    assert_eq!(
        e.to_string(),
        "1 validation error detected: Value '1001' at 'maxResults' failed to satisfy constraint: \
         Member must have value less than or equal to 1000"
    );
    let e = validation(EcrOp::DescribeRepositories, &json!({"repositoryNames": []}));
    assert_eq!(
        e.to_string(),
        "1 validation error detected: Value '[]' at 'repositoryNames' failed to satisfy constraint: \
         Member must have length greater than or equal to 1"
    );
    let e = validation(EcrOp::DescribeRepositories, &json!({"repositoryNames": ["ok", "Not-OK"]}));
    assert_eq!(e.violations.len(), 1);
    assert_eq!(e.violations[0].path, "repositoryNames.2.member");
    let tag = "t".repeat(301);
    let e = validation(EcrOp::BatchGetImage, &json!({"repositoryName": "ubuntu", "imageIds": [{"imageTag": tag}]}));
    assert_eq!(e.violations[0].path, "imageIds.1.member.imageTag");
    assert_eq!(e.violations[0].constraint, Constraint::MaxLength(300));
}

mod no_panic {
    use berth_ecr_model::ecr::{EcrOp, EcrRequest};
    use proptest::prelude::*;

    fn json_like() -> impl Strategy<Value = Vec<u8>> {
        let leaf = prop_oneof![
            Just("null".to_owned()),
            any::<bool>().prop_map(|b| b.to_string()),
            any::<i64>().prop_map(|n| n.to_string()),
            any::<f64>().prop_map(|n| format!("{n:?}")),
            "[a-zA-Z0-9:/._-]{0,300}".prop_map(|s| format!("{s:?}")),
        ];
        let value = leaf.prop_recursive(4, 32, 6, |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..6).prop_map(|v| format!("[{}]", v.join(","))),
                prop::collection::vec(("[a-zA-Z]{1,24}", inner), 0..6).prop_map(|kv| {
                    let members: Vec<String> = kv.into_iter().map(|(k, v)| format!("{k:?}:{v}")).collect();
                    format!("{{{}}}", members.join(","))
                }),
            ]
        });
        prop_oneof![value.prop_map(String::into_bytes), prop::collection::vec(any::<u8>(), 0..512),]
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(2000))]
        /// Whatever a client sends, decoding answers Ok or a decode error; it never panics.
        #[test]
        fn decoding_any_body_never_panics(op in 0..EcrOp::ALL.len(), body in json_like()) {
            let _ = EcrRequest::decode(EcrOp::ALL[op], &body);
        }
    }
}
