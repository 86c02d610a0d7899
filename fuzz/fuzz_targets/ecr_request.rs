//! AWS JSON 1.1 bodies of every ECR operation (the first byte picks it), through the generated
//! decoder and the model's validators.
#![no_main]

use berth_ecr_model::DecodeError;
use berth_ecr_model::ecr::{EcrOp, EcrRequest};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((op, body)) = data.split_first() else { return };
    let op = EcrOp::ALL[usize::from(*op) % EcrOp::ALL.len()];
    match EcrRequest::decode(op, body) {
        Ok(_) => {
            // Only JSON objects are requests (an empty body stands for `{}`, as in AWS).
            if !body.iter().all(u8::is_ascii_whitespace) {
                let v: serde_json::Value = serde_json::from_slice(body).expect("decoded bodies are JSON");
                assert!(v.is_object(), "{} took a non-object body", op.name());
            }
        }
        Err(DecodeError::Serialization(m)) => assert!(!m.is_empty()),
        Err(DecodeError::Validation(v)) => {
            let m = v.invalid_parameter_message();
            assert!(!m.is_empty());
        }
    }
    assert_eq!(EcrRequest::decode(op, body).is_ok(), EcrRequest::decode(op, body).is_ok(), "decoding is deterministic");
});
