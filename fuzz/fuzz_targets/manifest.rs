//! Manifest bodies under each content type a client may send.
#![no_main]

use berth_types::{ParsedManifest, media_types};
use libfuzzer_sys::fuzz_target;

const CONTENT_TYPES: [Option<&str>; 8] = [
    None,
    Some("application/json"),
    Some(media_types::OCI_MANIFEST),
    Some(media_types::OCI_INDEX),
    Some("application/vnd.docker.distribution.manifest.v2+json"),
    Some("application/vnd.docker.distribution.manifest.list.v2+json"),
    Some("application/vnd.oci.image.manifest.v1+json; charset=utf-8"),
    Some("text/plain"),
];

fn strings(v: &serde_json::Value, out: &mut Vec<String>) {
    match v {
        serde_json::Value::String(s) => out.push(s.clone()),
        serde_json::Value::Array(a) => a.iter().for_each(|v| strings(v, out)),
        serde_json::Value::Object(o) => o.values().for_each(|v| strings(v, out)),
        _ => {}
    }
}

fuzz_target!(|data: &[u8]| {
    let Some((ct, body)) = data.split_first() else { return };
    let content_type = CONTENT_TYPES[usize::from(*ct) % CONTENT_TYPES.len()];
    let Ok(m) = ParsedManifest::parse(content_type, body) else { return };
    assert!(media_types::ALL.contains(&m.media_type.as_str()), "{}", m.media_type);
    // Every digest the manifest names is one of the strings of the document (after JSON
    // unescaping), so nothing is invented.
    // (Members the parser ignores are skipped unchecked, so a document with, say, a lone UTF-16
    // surrogate escape in an unknown member parses as a manifest but not as a JSON value.)
    let Ok(doc) = serde_json::from_slice::<serde_json::Value>(body) else { return };
    let mut texts = Vec::new();
    strings(&doc, &mut texts);
    for d in m.blobs.iter().chain(&m.children).chain(&m.subject) {
        assert!(texts.iter().any(|t| t == d.as_str()), "{d} is not in the document");
    }
    assert!(m.blobs.is_empty() || m.children.is_empty(), "a manifest is an image or an index, not both");
    assert_eq!(ParsedManifest::parse(content_type, body).ok().as_ref(), Some(&m), "parsing is deterministic");
});
