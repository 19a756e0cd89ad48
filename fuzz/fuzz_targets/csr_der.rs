//! One CSR as DER: parsed and its self-signature verified, or refused; never a panic.
//! The property is `certmill::fuzz_check::csr_der`, which `tests/fuzz_corpora.rs` also runs.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let _ = certmill::fuzz_check::csr_der(data);
});
