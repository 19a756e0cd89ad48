//! OCSP request DER (the body of `POST /ocsp`, the decoded path of `GET /ocsp/...`): any input
//! parses into 1 to 16 CertIDs or gives an OcspError, and any text decodes as a GET path or
//! gives an OcspError; never a panic.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    if let Ok(request) = certmill::revocation::ocsp::parse_request(data) {
        assert!(!request.certs.is_empty() && request.certs.len() <= 16);
    }
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = certmill::revocation::ocsp::decode_get_path(text);
    }
});
