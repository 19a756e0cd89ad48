//! OCSP request DER (the body of `POST /ocsp`) and GET paths: 1 to 16 CertIDs, or an OCSP error; never a panic.
//! The property is `certmill::fuzz_check::ocsp_request`, which `tests/fuzz_corpora.rs` also runs.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let _ = certmill::fuzz_check::ocsp_request(data);
});
