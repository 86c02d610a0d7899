//! One OSV record, as `berth admin vulndb import` validates it: any text is accepted or refused
//! with a reason, never a panic.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = berth_vulndb::check_record(text);
    }
});
