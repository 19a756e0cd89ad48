//! Profile JSON: compiles into a template or is refused with its JSON path; never a panic.
//! The property is `certmill::fuzz_check::profile_json`, which `tests/fuzz_corpora.rs` also runs.
#![no_main]

use certmill::fuzz_check::{profile_json, Fixture};
use std::sync::OnceLock;

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    static FIXTURE: OnceLock<Fixture> = OnceLock::new();
    profile_json(FIXTURE.get_or_init(Fixture::new), data);
});
