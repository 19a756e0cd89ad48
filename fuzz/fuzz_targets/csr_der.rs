//! CSR DER: any input parses and verifies, or gives a CsrError; never a panic.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let _ = certmill::csr::ParsedCsr::from_der(data);
});
