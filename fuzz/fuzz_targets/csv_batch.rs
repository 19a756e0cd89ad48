//! Device CSV: every row validated against the ecc-device profile, or the file refused by row and field; never a panic.
//! The property is `certmill::fuzz_check::csv_batch`, which `tests/fuzz_corpora.rs` also runs.
#![no_main]

use certmill::fuzz_check::{csv_batch, Fixture};
use std::sync::OnceLock;

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    static FIXTURE: OnceLock<Fixture> = OnceLock::new();
    csv_batch(FIXTURE.get_or_init(Fixture::new), data);
});
