//! Fuzzes the PATCH path parser: it must never panic, and whatever it accepts must print
//! (`Display`) to text that parses back to the same path.

#![no_main]

use libfuzzer_sys::fuzz_target;
use provisio_scim::filter::MAX_FILTER_LENGTH;
use provisio_scim::path::parse_patch_path;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(path) = parse_patch_path(text) else {
        return;
    };
    let canonical = path.to_string();
    if canonical.len() > MAX_FILTER_LENGTH {
        return;
    }
    match parse_patch_path(&canonical) {
        Ok(again) => assert_eq!(again, path, "{text:?} printed as {canonical:?}"),
        Err(e) => panic!("{text:?} printed as {canonical:?}, which does not parse: {e}"),
    }
});
