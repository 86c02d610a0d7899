//! `Range` of a blob GET (with the blob's size from the first 8 bytes) and `Content-Range` of
//! an upload PATCH.
#![no_main]

use berth_api_oci::{byte_range, chunk_range};
use http::{HeaderMap, HeaderValue, header};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if data.len() < 8 {
        return;
    }
    let (size, text) = data.split_at(8);
    // Small sizes half the time, so ranges near the end of a blob are met often.
    let raw = u64::from_le_bytes(size.try_into().unwrap_or_default());
    let size = if raw & 1 == 0 { raw >> 1 } else { (raw >> 1) % 1024 };
    let Ok(text) = std::str::from_utf8(text) else { return };
    match byte_range(Some(text), size) {
        None => {}
        Some(Ok(r)) => {
            assert!(r.start <= r.end && r.end < size, "{text:?} of {size}: {}-{}", r.start, r.end);
            assert_eq!(r.len(), r.end - r.start + 1);
        }
        Some(Err(n)) => assert_eq!(n, size),
    }
    if let Ok(v) = HeaderValue::from_str(text) {
        let mut h = HeaderMap::new();
        h.insert(header::CONTENT_RANGE, v);
        if let Ok(Some((a, b))) = chunk_range(&h) {
            assert!(a <= b, "{text:?}: {a}-{b}");
        }
    }
});
