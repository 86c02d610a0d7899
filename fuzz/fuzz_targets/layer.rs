//! A pushed layer, as the scanner walks it: any bytes (gzip, zstd or tar) give an inventory or
//! an error, never a panic, and memory stays within the walk's caps.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let limits = berth_scanner::Limits::default();
    if let Ok(inv) = berth_scanner::scan_layer(data, &limits) {
        let merged = berth_scanner::merge(std::slice::from_ref(&inv));
        let _ = serde_json::to_vec(&merged);
    }
});
