//! PKCS#12 build then open with fuzzed passwords, friendly names and encryption: exactly what went in comes out, another password and any changed byte are refused; the raw input opened as a PFX never panics.
//! The property is `certmill::fuzz_check::pkcs12_round_trip`, which `tests/fuzz_corpora.rs` also runs.
#![no_main]

use certmill::fuzz_check::{pkcs12_round_trip, Fixture};
use std::sync::OnceLock;

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    static FIXTURE: OnceLock<Fixture> = OnceLock::new();
    pkcs12_round_trip(FIXTURE.get_or_init(Fixture::new), data);
});
