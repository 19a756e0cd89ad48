//! CSR uploads (PEM bundles, ZIPs of PEM and DER requests): limits checked, every entry streamed and parsed, exactly as many entries as counted; or refused by entry. Never a panic.
//! The property is `certmill::fuzz_check::csr_bundle`, which `tests/fuzz_corpora.rs` also runs.
#![no_main]

use certmill::fuzz_check::{csr_bundle, Fixture};
use std::sync::OnceLock;

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    static FIXTURE: OnceLock<Fixture> = OnceLock::new();
    csr_bundle(FIXTURE.get_or_init(Fixture::new), data);
});
