//! Fuzzes the SCIM filter parser: it must never panic, and whatever it accepts must print
//! (`Display`) to canonical text that parses back to the same tree and prints the same again.

#![no_main]

use libfuzzer_sys::fuzz_target;
use provisio_scim::filter::{MAX_FILTER_LENGTH, parse_filter};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(filter) = parse_filter(text) else {
        return;
    };
    let canonical = filter.to_string();
    // The canonical text can be longer than the input (`1e15` prints as `1000000000000000.0`).
    if canonical.len() > MAX_FILTER_LENGTH {
        return;
    }
    match parse_filter(&canonical) {
        Ok(again) => {
            assert_eq!(again, filter, "{text:?} printed as {canonical:?}");
            assert_eq!(again.to_string(), canonical, "{text:?}");
        }
        Err(e) => panic!("{text:?} printed as {canonical:?}, which does not parse: {e}"),
    }
});
