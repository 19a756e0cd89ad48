//! Tests of the OCSP codec: requests made by OpenSSL, responses judged by OpenSSL, Python
//! `cryptography` and x509-ocsp, malformed inputs named after their defect.

use std::path::Path;
use std::process::Command;

use aws_lc_rs::signature::{UnparsedPublicKey, ECDSA_P256_SHA256_ASN1};
use der::{Decode, Encode};
use tempfile::TempDir;
use x509_ocsp::{BasicOcspResponse, OcspResponse, OcspResponseStatus, ResponderId};

use super::*;
use crate::asn1::{context_constructed, tlv, tlv_parts};
use crate::ca::{CaInitOptions, IssuingCa};

/// A CA in a temp dir, a delegated responder certified by it, and the CA's CertID hashes.
struct Fixture {
    dir: TempDir,
    responder: Responder,
    hashes: IssuerKeyHashes,
    now: i64,
}

fn fixture(algorithm: KeyAlgorithm) -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let options = CaInitOptions {
        algorithm,
        ..CaInitOptions::default()
    };
    let ca = IssuingCa::init(dir.path(), &options).unwrap();
    let key = ResponderKey::generate().unwrap();
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    let certificate_der = ca
        .issue_ocsp_responder(key.spki_der(), &[0x4f, 0x43], now - 3600, now + 7 * 86_400)
        .unwrap();
    let hashes = IssuerKeyHashes::new(ca.subject_der(), ca.public_key_bits());
    Fixture {
        dir,
        responder: Responder {
            key,
            certificate_der,
        },
        hashes,
        now,
    }
}

impl Fixture {
    fn path(&self, name: &str) -> String {
        self.dir.path().join(name).to_string_lossy().into_owned()
    }

    fn issuing_crt(&self) -> String {
        self.path("ca/issuing.crt")
    }

    fn chain_pem(&self) -> String {
        self.path("ca/chain.pem")
    }

    /// `openssl ocsp -reqout` for `serials` (hex) with `extra` options; returns the DER.
    fn openssl_request(&self, name: &str, serials: &[&str], extra: &[&str]) -> Vec<u8> {
        let out = self.path(name);
        let issuing = self.issuing_crt();
        let mut args: Vec<&str> = vec!["ocsp"];
        args.extend_from_slice(extra);
        args.extend_from_slice(&["-issuer", &issuing]);
        let serial_args: Vec<String> = serials.iter().map(|s| format!("0x{s}")).collect();
        for serial in &serial_args {
            args.extend_from_slice(&["-serial", serial]);
        }
        args.extend_from_slice(&["-reqout", &out]);
        openssl(self.dir.path(), &args);
        std::fs::read(&out).unwrap()
    }

    /// Two OpenSSL checks of `response`: against the request in `request_file` (the nonce;
    /// `-serial` would make OpenSSL build a new request with a nonce of its own), then against
    /// `-serial` for the status summary line, its CertID made with the `digest` option
    /// (`-sha1`, `-sha256`). Returns both outputs, stdout and stderr.
    fn openssl_check(
        &self,
        response: &[u8],
        request_file: &str,
        serial: &str,
        digest: &str,
    ) -> String {
        let response_file = self.path("resp.der");
        std::fs::write(&response_file, response).unwrap();
        let (issuing, chain) = (self.issuing_crt(), self.chain_pem());
        let request_path = self.path(request_file);
        let with_request = openssl(
            self.dir.path(),
            &[
                "ocsp",
                "-respin",
                &response_file,
                "-reqin",
                &request_path,
                "-issuer",
                &issuing,
                "-CAfile",
                &chain,
                "-resp_text",
            ],
        );
        let serial = format!("0x{serial}");
        let with_serial = openssl(
            self.dir.path(),
            &[
                "ocsp",
                "-respin",
                &response_file,
                "-issuer",
                &issuing,
                "-CAfile",
                &chain,
                "-no_nonce",
                digest,
                "-serial",
                &serial,
            ],
        );
        format!("{with_request}{with_serial}")
    }

    fn single<'a>(&self, cert: &'a CertIdRequest, status: CertStatus) -> SingleResponse<'a> {
        SingleResponse {
            cert_id_der: &cert.cert_id_der,
            status,
            this_update: self.now - 60,
            next_update: Some(self.now + 86_400),
        }
    }
}

/// Runs openssl in `dir`, panicking with its output on failure; returns stdout and stderr.
fn openssl(dir: &Path, args: &[&str]) -> String {
    let out = Command::new("openssl")
        .current_dir(dir)
        .args(args)
        .output()
        .expect("run openssl");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "openssl {args:?} failed: {text}");
    text
}

/// What Python `cryptography` reads from a DER OCSP response, as JSON.
fn python_reads(dir: &Path, response: &[u8]) -> serde_json::Value {
    const SCRIPT: &str = r#"
import json, sys
from cryptography import x509
from cryptography.x509 import ocsp
from cryptography.hazmat.primitives import serialization
data = open(sys.argv[1], "rb").read()
r = ocsp.load_der_ocsp_response(data)
out = {"status": r.response_status.name}
if r.response_status == ocsp.OCSPResponseStatus.SUCCESSFUL:
    out.update({
        "certificate_status": r.certificate_status.name,
        "serial": format(r.serial_number, "x"),
        "hash": r.hash_algorithm.name,
        "revocation_reason": r.revocation_reason.name if r.revocation_reason else None,
        "revocation_time": int(r.revocation_time_utc.timestamp()) if r.revocation_time_utc else None,
        "this_update": int(r.this_update_utc.timestamp()),
        "next_update": int(r.next_update_utc.timestamp()) if r.next_update_utc else None,
        "produced_at": int(r.produced_at_utc.timestamp()),
        "responder_key_hash": r.responder_key_hash.hex() if r.responder_key_hash else None,
        "responder_name": r.responder_name.rfc4514_string() if r.responder_name else None,
        "signature_hash": r.signature_hash_algorithm.name,
        "certificates": [c.public_bytes(serialization.Encoding.DER).hex() for c in r.certificates],
        "extensions": {e.oid.dotted_string: e.value.nonce.hex() if isinstance(e.value, x509.OCSPNonce) else None for e in r.extensions},
    })
print(json.dumps(out))
"#;
    let file = dir.join("python-resp.der");
    std::fs::write(&file, response).unwrap();
    let out = Command::new("python3")
        .arg("-c")
        .arg(SCRIPT)
        .arg(&file)
        .output()
        .expect("run python3");
    assert!(
        out.status.success(),
        "python failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// A CertID by hand: `hash_algorithm` is the whole AlgorithmIdentifier, `serial` the whole
/// INTEGER.
fn cert_id(hash_algorithm: &[u8], hash_len: usize, serial: &[u8]) -> Vec<u8> {
    tlv_parts(
        asn1::SEQUENCE,
        &[
            hash_algorithm,
            &tlv(asn1::OCTET_STRING, &vec![0x11; hash_len]),
            &tlv(asn1::OCTET_STRING, &vec![0x22; hash_len]),
            serial,
        ],
    )
}

/// `SEQUENCE { id-sha1, NULL }`.
fn sha1_algorithm() -> Vec<u8> {
    tlv_parts(
        asn1::SEQUENCE,
        &[&asn1::oid("1.3.14.3.2.26").unwrap(), &[asn1::NULL, 0]],
    )
}

/// An OCSPRequest by hand around `cert_ids`, with `extensions` (whole Extension TLVs).
fn request(cert_ids: &[Vec<u8>], extensions: &[Vec<u8>]) -> Vec<u8> {
    let requests: Vec<u8> = cert_ids
        .iter()
        .flat_map(|id| tlv(asn1::SEQUENCE, id))
        .collect();
    let mut tbs = tlv(asn1::SEQUENCE, &requests);
    if !extensions.is_empty() {
        let list = tlv(asn1::SEQUENCE, &extensions.concat());
        tbs.extend_from_slice(&tlv(context_constructed(2), &list));
    }
    tlv(asn1::SEQUENCE, &tlv(asn1::SEQUENCE, &tbs))
}

fn extension(oid: &str, critical: bool, value: &[u8]) -> Vec<u8> {
    let oid = asn1::oid(oid).unwrap();
    let value = tlv(asn1::OCTET_STRING, value);
    if critical {
        tlv_parts(asn1::SEQUENCE, &[&oid, &[asn1::BOOLEAN, 1, 0xff], &value])
    } else {
        tlv_parts(asn1::SEQUENCE, &[&oid, &value])
    }
}

#[test]
fn constants_match_their_oids() {
    assert_eq!(
        ID_PKIX_OCSP_BASIC_DER,
        asn1::oid("1.3.6.1.5.5.7.48.1.1").unwrap()
    );
    assert_eq!(
        ID_PKIX_OCSP_NONCE_DER,
        asn1::oid("1.3.6.1.5.5.7.48.1.2").unwrap()
    );
    assert_eq!(
        EXTENDED_REVOKE_EXTENSION_DER,
        extension("1.3.6.1.5.5.7.48.1.9", false, &[asn1::NULL, 0])
    );
    for hash in HashAlgorithm::ALL {
        assert_eq!(HashAlgorithm::from_oid(&hash.oid()), Some(hash));
        assert_eq!(hash.digest(b"abc").len(), hash.output_len());
    }
}

#[test]
fn generalized_times_match_the_der_crate() {
    for unix in [
        0i64,
        1,
        951_782_400,
        1_700_000_000,
        2_524_608_000,
        253_402_300_799,
    ] {
        let ours = generalized_time(unix).unwrap();
        let duration = std::time::Duration::from_secs(u64::try_from(unix).unwrap());
        let theirs = der::asn1::GeneralizedTime::from_unix_duration(duration)
            .unwrap()
            .to_der()
            .unwrap();
        assert_eq!(ours.as_slice(), theirs.as_slice(), "{unix}");
    }
    assert_eq!(&generalized_time(-1).unwrap()[2..], b"19691231235959Z");
    assert!(matches!(
        generalized_time(253_402_300_800),
        Err(OcspError::TimeOutOfRange { .. })
    ));
    assert!(matches!(
        generalized_time(i64::MIN),
        Err(OcspError::TimeOutOfRange { .. })
    ));
}

#[test]
fn openssl_requests_parse_with_serial_nonce_and_issuer_hashes() {
    let f = fixture(KeyAlgorithm::EcP256);
    let other = fixture(KeyAlgorithm::EcP256);

    let with_nonce = f.openssl_request("nonce.der", &["0123abcd"], &[]);
    let parsed = parse_request(&with_nonce).unwrap();
    assert_eq!(parsed.certs.len(), 1);
    let cert = &parsed.certs[0];
    assert_eq!(cert.hash, HashAlgorithm::Sha1);
    assert_eq!(cert.serial, [0x01, 0x23, 0xab, 0xcd]);
    assert!(f.hashes.matches(cert));
    assert!(!other.hashes.matches(cert));
    // OpenSSL's nonce: extnValue = OCTET STRING of 16 random bytes (RFC 8954).
    let nonce = parsed.nonce.as_deref().unwrap();
    assert_eq!(nonce.len(), 18);
    assert_eq!(&nonce[..2], &[asn1::OCTET_STRING, 16]);
    // The CertID is the request's own bytes.
    assert!(with_nonce
        .windows(cert.cert_id_der.len())
        .any(|w| w == cert.cert_id_der.as_slice()));

    let without_nonce = f.openssl_request("plain.der", &["0123abcd"], &["-no_nonce"]);
    let parsed = parse_request(&without_nonce).unwrap();
    assert_eq!(parsed.nonce, None);
    assert!(f.hashes.matches(&parsed.certs[0]));

    // A serial with the top bit set: OpenSSL writes a 0x00 sign octet, which is not ours.
    let sha256 = f.openssl_request("sha256.der", &["ff00", "01"], &["-sha256", "-no_nonce"]);
    let parsed = parse_request(&sha256).unwrap();
    assert_eq!(parsed.certs.len(), 2);
    assert_eq!(parsed.certs[0].hash, HashAlgorithm::Sha256);
    assert_eq!(parsed.certs[0].serial, [0xff, 0x00]);
    assert_eq!(parsed.certs[1].serial, [0x01]);
    assert!(parsed.certs.iter().all(|c| f.hashes.matches(c)));
    assert!(!other.hashes.matches(&parsed.certs[0]));

    for (option, hash) in [
        ("-sha384", HashAlgorithm::Sha384),
        ("-sha512", HashAlgorithm::Sha512),
    ] {
        let der = f.openssl_request("sha2.der", &["42"], &[option]);
        let parsed = parse_request(&der).unwrap();
        assert_eq!(parsed.certs[0].hash, hash);
        assert!(f.hashes.matches(&parsed.certs[0]));
    }
}

#[test]
fn signed_openssl_requests_are_accepted_and_the_signature_ignored() {
    let f = fixture(KeyAlgorithm::EcP256);
    let (certificate, key) = (f.issuing_crt(), f.path("ca/issuing.key"));
    let der = f.openssl_request(
        "signed.der",
        &["0a0b"],
        &["-signer", &certificate, "-signkey", &key],
    );
    let request = OcspRequest::from_der(&der).unwrap();
    assert!(request.optional_signature.is_some());
    let parsed = parse_request(&der).unwrap();
    assert_eq!(parsed.certs[0].serial, [0x0a, 0x0b]);
    assert!(f.hashes.matches(&parsed.certs[0]));
}

#[test]
fn openssl_verifies_good_revoked_and_unknown_responses_with_the_nonce() {
    let f = fixture(KeyAlgorithm::EcP256);
    let request_der = f.openssl_request("req.der", &["0123abcd"], &[]);
    let request = parse_request(&request_der).unwrap();
    let cert = &request.certs[0];
    let revoked_at = f.now - 7200;
    let revoked_text = time::OffsetDateTime::from_unix_timestamp(revoked_at)
        .unwrap()
        .format(time::macros::format_description!(
            "[month repr:short] [day padding:space] [hour]:[minute]:[second] [year] GMT"
        ))
        .unwrap();

    let cases = [
        (CertStatus::Good, "0x0123abcd: good"),
        (
            CertStatus::Revoked {
                revoked_at,
                reason: Some(RevocationReason::KeyCompromise),
            },
            "0x0123abcd: revoked",
        ),
        (
            CertStatus::Revoked {
                revoked_at,
                reason: None,
            },
            "0x0123abcd: revoked",
        ),
        (CertStatus::Unknown, "0x0123abcd: unknown"),
    ];
    for (status, line) in cases {
        let response = build_response(
            &f.responder,
            f.now,
            &[f.single(cert, status)],
            request.nonce.as_deref(),
            false,
        )
        .unwrap();
        let out = f.openssl_check(&response, "req.der", "0123abcd", "-sha1");
        assert!(out.contains("Response verify OK"), "{status:?}: {out}");
        assert!(out.contains(line), "{status:?}: {out}");
        assert_eq!(
            out.matches("Response verify OK").count(),
            2,
            "{status:?}: {out}"
        );
        assert!(!out.contains("WARNING"), "{status:?}: {out}");
        assert!(out.contains("OCSP Nonce"), "{status:?}: {out}");
        assert!(out.contains("Responder Id: "), "{status:?}: {out}");
        if let CertStatus::Revoked { reason, .. } = status {
            assert!(
                out.contains(&format!("Revocation Time: {revoked_text}")),
                "{out}"
            );
            match reason {
                Some(_) => {
                    assert!(out.contains("Reason: keyCompromise"), "{out}");
                    assert!(
                        out.contains("Revocation Reason: keyCompromise (0x1)"),
                        "{out}"
                    );
                }
                None => assert!(!out.contains("Reason:"), "{out}"),
            }
        }
    }
}

#[test]
fn openssl_notices_a_missing_or_wrong_nonce() {
    let f = fixture(KeyAlgorithm::EcP256);
    let request_der = f.openssl_request("req.der", &["05"], &[]);
    let request = parse_request(&request_der).unwrap();
    let single = f.single(&request.certs[0], CertStatus::Good);
    let without = build_response(&f.responder, f.now, &[single], None, false).unwrap();
    let out = f.openssl_check(&without, "req.der", "05", "-sha1");
    assert!(out.contains("WARNING: no nonce in response"), "{out}");
    assert!(out.contains("0x05: good"), "{out}");
    let wrong_nonce = [asn1::OCTET_STRING, 2, 0xde, 0xad];
    let wrong = build_response(&f.responder, f.now, &[single], Some(&wrong_nonce), false).unwrap();
    std::fs::write(f.path("resp.der"), &wrong).unwrap();
    // OpenSSL fails the check (exit status 1) and says why on stderr.
    let out = Command::new("openssl")
        .current_dir(f.dir.path())
        .args([
            "ocsp",
            "-respin",
            &f.path("resp.der"),
            "-reqin",
            &f.path("req.der"),
        ])
        .args(["-issuer", &f.issuing_crt(), "-CAfile", &f.chain_pem()])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stderr);
    assert!(text.contains("Nonce Verify error"), "{text}");
}

#[test]
fn an_rsa_ca_certifies_a_responder_that_openssl_accepts() {
    let f = fixture(KeyAlgorithm::Rsa2048);
    let request_der = f.openssl_request("req.der", &["7f"], &["-sha256"]);
    let request = parse_request(&request_der).unwrap();
    assert!(f.hashes.matches(&request.certs[0]));
    let response = build_response(
        &f.responder,
        f.now,
        &[f.single(&request.certs[0], CertStatus::Good)],
        request.nonce.as_deref(),
        true,
    )
    .unwrap();
    let out = f.openssl_check(&response, "req.der", "7f", "-sha256");
    assert!(out.contains("Response verify OK"), "{out}");
    assert!(out.contains("0x7f: good"), "{out}");
    // OpenSSL 3.0 knows id-pkix-ocsp 9 by an older short name, "valid".
    assert!(out.contains("\n        valid: \n"), "{out}");
}

#[test]
fn python_cryptography_reads_the_responses() {
    let f = fixture(KeyAlgorithm::EcP256);
    let request_der = f.openssl_request("req.der", &["0123abcd"], &[]);
    let request = parse_request(&request_der).unwrap();
    let cert = &request.certs[0];
    let nonce = request.nonce.as_deref().unwrap();
    let key_hash = hex(f.responder.key.key_hash());
    let revoked_at = f.now - 7200;

    for (status, name, reason) in [
        (CertStatus::Good, "GOOD", None),
        (
            CertStatus::Revoked {
                revoked_at,
                reason: Some(RevocationReason::KeyCompromise),
            },
            "REVOKED",
            Some("key_compromise"),
        ),
        (
            CertStatus::Revoked {
                revoked_at,
                reason: None,
            },
            "REVOKED",
            None,
        ),
        (CertStatus::Unknown, "UNKNOWN", None),
    ] {
        let single = f.single(cert, status);
        let response = build_response(&f.responder, f.now, &[single], Some(nonce), true).unwrap();
        let read = python_reads(f.dir.path(), &response);
        assert_eq!(read["status"], "SUCCESSFUL");
        assert_eq!(read["certificate_status"], name);
        assert_eq!(read["serial"], "123abcd");
        assert_eq!(read["hash"], "sha1");
        assert_eq!(read["revocation_reason"].as_str(), reason, "{read}");
        let expected_time = matches!(status, CertStatus::Revoked { .. }).then_some(revoked_at);
        assert_eq!(read["revocation_time"].as_i64(), expected_time);
        assert_eq!(read["this_update"], single.this_update);
        assert_eq!(read["next_update"].as_i64(), single.next_update);
        assert_eq!(read["produced_at"], f.now);
        assert_eq!(read["responder_key_hash"], key_hash.as_str());
        assert_eq!(read["responder_name"], serde_json::Value::Null);
        assert_eq!(read["signature_hash"], "sha256");
        let certificates = read["certificates"].as_array().unwrap();
        assert_eq!(certificates.len(), 1);
        assert_eq!(
            certificates[0].as_str().unwrap(),
            hex(&f.responder.certificate_der)
        );
        // cryptography's OCSPNonce value is the OCTET STRING's contents.
        assert_eq!(read["extensions"]["1.3.6.1.5.5.7.48.1.2"], hex(&nonce[2..]));
        assert!(read["extensions"]
            .as_object()
            .unwrap()
            .contains_key("1.3.6.1.5.5.7.48.1.9"));
    }
    let read = python_reads(f.dir.path(), &error_response(ResponseStatus::TryLater));
    assert_eq!(read["status"], "TRY_LATER");
}

#[test]
fn x509_ocsp_decodes_the_response_and_its_signature_verifies() {
    let f = fixture(KeyAlgorithm::EcP256);
    let id_a = cert_id(&sha1_algorithm(), 20, &[asn1::INTEGER, 1, 0x0a]);
    let id_b = cert_id(&sha1_algorithm(), 20, &[asn1::INTEGER, 2, 0x00, 0x80]);
    let singles = [
        SingleResponse {
            cert_id_der: &id_a,
            status: CertStatus::Good,
            this_update: f.now,
            next_update: None,
        },
        SingleResponse {
            cert_id_der: &id_b,
            status: CertStatus::Revoked {
                revoked_at: 0,
                reason: Some(RevocationReason::CertificateHold),
            },
            this_update: f.now,
            next_update: Some(f.now + 3600),
        },
    ];
    let response = build_response(&f.responder, f.now + 1, &singles, None, false).unwrap();
    let decoded = OcspResponse::from_der(&response).unwrap();
    assert_eq!(decoded.response_status, OcspResponseStatus::Successful);
    let bytes = decoded.response_bytes.unwrap();
    assert_eq!(
        bytes.response_type.to_string(),
        "1.3.6.1.5.5.7.48.1.1",
        "id-pkix-ocsp-basic"
    );
    let basic = BasicOcspResponse::from_der(bytes.response.as_bytes()).unwrap();
    // Re-encoding gives the same bytes: what we wrote is DER, not merely BER.
    assert_eq!(basic.to_der().unwrap(), bytes.response.as_bytes());
    let data = &basic.tbs_response_data;
    assert_eq!(data.version, x509_ocsp::Version::V1);
    match &data.responder_id {
        ResponderId::ByKey(hash) => assert_eq!(hash.as_bytes(), f.responder.key.key_hash()),
        other => panic!("responder id {other:?}"),
    }
    assert_eq!(
        data.produced_at.0.to_unix_duration().as_secs(),
        u64::try_from(f.now + 1).unwrap()
    );
    assert_eq!(data.response_extensions, None);
    assert_eq!(data.responses.len(), 2);
    assert_eq!(data.responses[0].cert_id.to_der().unwrap(), id_a);
    assert_eq!(data.responses[1].cert_id.to_der().unwrap(), id_b);
    assert!(matches!(
        data.responses[0].cert_status,
        x509_ocsp::CertStatus::Good(_)
    ));
    assert_eq!(data.responses[0].next_update, None);
    match &data.responses[1].cert_status {
        x509_ocsp::CertStatus::Revoked(info) => {
            assert_eq!(info.revocation_time.0.to_unix_duration().as_secs(), 0);
            assert_eq!(
                info.revocation_reason,
                Some(x509_cert::ext::pkix::CrlReason::CertificateHold)
            );
        }
        other => panic!("status {other:?}"),
    }
    assert_eq!(
        basic.signature_algorithm.to_der().unwrap(),
        SignatureAlgorithm::EcdsaWithSha256.algorithm_identifier_der()
    );
    let certs = basic.certs.as_ref().unwrap();
    assert_eq!(certs.len(), 1);
    assert_eq!(certs[0].to_der().unwrap(), f.responder.certificate_der);
    let tbs = data.to_der().unwrap();
    UnparsedPublicKey::new(&ECDSA_P256_SHA256_ASN1, f.responder.key.public_key_bits())
        .verify(&tbs, basic.signature.as_bytes().unwrap())
        .expect("the response signature verifies with the responder key");
    // Every response carries a fresh signature.
    let again = build_response(&f.responder, f.now + 1, &singles, None, false).unwrap();
    assert_ne!(again, response);
}

#[test]
fn response_arguments_are_checked() {
    let f = fixture(KeyAlgorithm::EcP256);
    let id = cert_id(&sha1_algorithm(), 20, &[asn1::INTEGER, 1, 1]);
    assert!(matches!(
        build_response(&f.responder, f.now, &[], None, false),
        Err(OcspError::EmptyResponseList)
    ));
    let backwards = SingleResponse {
        cert_id_der: &id,
        status: CertStatus::Good,
        this_update: f.now,
        next_update: Some(f.now - 1),
    };
    assert!(matches!(
        build_response(&f.responder, f.now, &[backwards], None, false),
        Err(OcspError::NextUpdateBeforeThisUpdate { .. })
    ));
    let far = SingleResponse {
        next_update: Some(i64::MAX),
        ..backwards
    };
    assert!(matches!(
        build_response(&f.responder, f.now, &[far], None, false),
        Err(OcspError::TimeOutOfRange { .. })
    ));
}

#[test]
fn error_responses_decode_with_x509_ocsp() {
    for (status, expected) in [
        (
            ResponseStatus::MalformedRequest,
            OcspResponseStatus::MalformedRequest,
        ),
        (
            ResponseStatus::InternalError,
            OcspResponseStatus::InternalError,
        ),
        (ResponseStatus::TryLater, OcspResponseStatus::TryLater),
        (ResponseStatus::SigRequired, OcspResponseStatus::SigRequired),
        (
            ResponseStatus::Unauthorized,
            OcspResponseStatus::Unauthorized,
        ),
    ] {
        let der = error_response(status);
        let decoded = OcspResponse::from_der(&der).unwrap();
        assert_eq!(decoded.response_status, expected);
        assert_eq!(decoded.response_bytes, None);
        assert_eq!(status.code(), expected as u8);
    }
}

#[test]
fn malformed_requests_are_refused_with_the_right_error() {
    let f = fixture(KeyAlgorithm::EcP256);
    let good = f.openssl_request("req.der", &["01"], &[]);
    assert!(parse_request(&good).is_ok());

    let malformed = |der: &[u8]| {
        let error = parse_request(der).unwrap_err();
        assert_eq!(error.response_status(), ResponseStatus::MalformedRequest);
        match error {
            OcspError::Malformed { source } => source.kind(),
            other => panic!("expected Malformed, got {other:?}"),
        }
    };
    malformed(b"");
    malformed(b"GET / HTTP/1.1\r\n\r\n");
    malformed(&good[..good.len() - 1]);
    malformed(&good[..good.len() / 2]);
    malformed(&f.responder.certificate_der);
    let mut trailing = good.clone();
    trailing.push(0);
    assert!(matches!(
        malformed(&trailing),
        der::ErrorKind::TrailingData { .. }
    ));

    let sha1 = sha1_algorithm();
    let one = cert_id(&sha1, 20, &[asn1::INTEGER, 1, 0x01]);
    assert!(parse_request(&request(std::slice::from_ref(&one), &[])).is_ok());
    assert!(matches!(
        parse_request(&request(&[], &[])),
        Err(OcspError::EmptyRequestList)
    ));
    assert_eq!(
        parse_request(&request(&vec![one.clone(); MAX_CERT_IDS], &[]))
            .unwrap()
            .certs
            .len(),
        MAX_CERT_IDS
    );
    assert!(matches!(
        parse_request(&request(&vec![one.clone(); MAX_CERT_IDS + 1], &[])),
        Err(OcspError::TooManyCertIds { count: 17, max: 16 })
    ));

    let zero = cert_id(&sha1, 20, &[asn1::INTEGER, 1, 0x00]);
    let negative = cert_id(&sha1, 20, &[asn1::INTEGER, 1, 0xff]);
    for id in [zero, negative] {
        assert!(matches!(
            parse_request(&request(&[one.clone(), id], &[])),
            Err(OcspError::SerialNotPositive { index: 1 })
        ));
    }
    let md5 = tlv_parts(
        asn1::SEQUENCE,
        &[&asn1::oid("1.2.840.113549.2.5").unwrap(), &[asn1::NULL, 0]],
    );
    assert!(matches!(
        parse_request(&request(&[cert_id(&md5, 16, &[asn1::INTEGER, 1, 1])], &[])),
        Err(OcspError::UnsupportedHashAlgorithm { index: 0, .. })
    ));
    let sha256_absent = tlv(
        asn1::SEQUENCE,
        &asn1::oid("2.16.840.1.101.3.4.2.1").unwrap(),
    );
    let parsed = parse_request(&request(
        &[cert_id(&sha256_absent, 32, &[asn1::INTEGER, 1, 1])],
        &[],
    ))
    .unwrap();
    assert_eq!(parsed.certs[0].hash, HashAlgorithm::Sha256);
    let sha256_odd_parameters = tlv_parts(
        asn1::SEQUENCE,
        &[
            &asn1::oid("2.16.840.1.101.3.4.2.1").unwrap(),
            &[asn1::INTEGER, 1, 0],
        ],
    );
    assert!(matches!(
        parse_request(&request(
            &[cert_id(&sha256_odd_parameters, 32, &[asn1::INTEGER, 1, 1])],
            &[]
        )),
        Err(OcspError::HashAlgorithmParameters { index: 0 })
    ));
    assert!(matches!(
        parse_request(&request(&[cert_id(&sha1, 32, &[asn1::INTEGER, 1, 1])], &[])),
        Err(OcspError::HashLength {
            expected: 20,
            found: 32,
            ..
        })
    ));
    let long_serial = tlv(asn1::INTEGER, &[0x01; 22]);
    malformed(&request(&[cert_id(&sha1, 20, &long_serial)], &[]));

    let nonce = extension("1.3.6.1.5.5.7.48.1.2", false, &[asn1::OCTET_STRING, 1, 7]);
    let parsed = parse_request(&request(
        std::slice::from_ref(&one),
        std::slice::from_ref(&nonce),
    ))
    .unwrap();
    assert_eq!(
        parsed.nonce.as_deref(),
        Some(&[asn1::OCTET_STRING, 1, 7][..])
    );
    assert!(matches!(
        parse_request(&request(
            std::slice::from_ref(&one),
            &[nonce.clone(), nonce.clone()]
        )),
        Err(OcspError::DuplicateExtension { .. })
    ));
    let unknown = |critical| extension("1.2.3.4", critical, &[asn1::NULL, 0]);
    assert!(parse_request(&request(std::slice::from_ref(&one), &[unknown(false)])).is_ok());
    assert!(matches!(
        parse_request(&request(std::slice::from_ref(&one), &[unknown(true)])),
        Err(OcspError::UnsupportedCriticalExtension { .. })
    ));
}

#[test]
fn get_paths_decode_url_encoded_base64_and_refuse_junk() {
    let f = fixture(KeyAlgorithm::EcP256);
    // Find a request whose base64 has '+', '/' and '=' to exercise every escape.
    let mut found = None;
    for serial in 1..2000u32 {
        let der = request(
            &[cert_id(
                &sha1_algorithm(),
                20,
                &asn1::small_integer(u64::from(serial) * 7919),
            )],
            &[],
        );
        let text = base64ct::Base64::encode_string(&der);
        if text.contains('+') && text.contains('/') && text.ends_with('=') {
            found = Some((der, text));
            break;
        }
    }
    let (der, text) = found.unwrap();
    let encoded = text
        .replace('+', "%2B")
        .replace('/', "%2F")
        .replace('=', "%3D");
    assert_eq!(decode_get_path(&text).unwrap(), der);
    assert_eq!(decode_get_path(&encoded).unwrap(), der);
    assert_eq!(
        decode_get_path(&text.replace('+', "%2b").replace('/', "%2f")).unwrap(),
        der
    );
    let url = base64ct::Base64UrlUnpadded::encode_string(&der);
    assert_eq!(decode_get_path(&url).unwrap(), der);
    assert_eq!(decode_get_path(&text.replace('+', " ")).unwrap(), der);

    // A real OpenSSL request, round trip.
    let openssl_der = f.openssl_request("req.der", &["0123abcd"], &[]);
    let openssl_text = base64ct::Base64::encode_string(&openssl_der);
    let parsed = parse_request(&decode_get_path(&openssl_text).unwrap()).unwrap();
    assert_eq!(parsed.certs[0].serial, [0x01, 0x23, 0xab, 0xcd]);

    for junk in ["%zz", "MA%2", "MAo$", "MA\nA", "MA==MA==", "A", "%25MA"] {
        assert!(decode_get_path(junk).is_err(), "{junk:?}");
    }
    assert!(matches!(decode_get_path(""), Err(OcspError::GetPathEmpty)));
    assert!(matches!(decode_get_path("="), Err(OcspError::GetPathEmpty)));
    assert!(matches!(
        decode_get_path("MA%zz"),
        Err(OcspError::GetPathCharacter { position: 2 })
    ));
    assert!(matches!(
        decode_get_path(&"A".repeat(MAX_GET_PATH_LEN + 4)),
        Err(OcspError::GetPathTooLong { .. })
    ));
}

#[test]
fn responder_key_debug_is_redacted_and_its_hash_is_sha1_of_the_key() {
    let key = ResponderKey::generate().unwrap();
    let debug = format!("{key:?}");
    assert!(debug.contains("<redacted>"));
    assert!(debug.contains(&hex(key.key_hash())));
    assert_eq!(
        key.key_hash().as_slice(),
        HashAlgorithm::Sha1.digest(key.public_key_bits())
    );
    assert_eq!(key.public_key_bits().len(), 65);
    assert!(key.spki_der().ends_with(key.public_key_bits()));
    let signature = key.sign(b"message").unwrap();
    UnparsedPublicKey::new(&ECDSA_P256_SHA256_ASN1, key.public_key_bits())
        .verify(b"message", &signature)
        .unwrap();
}

#[test]
fn many_responses_build_in_a_loop() {
    // A sanity check of the hot path only; throughput is measured elsewhere, never asserted.
    let f = fixture(KeyAlgorithm::EcP256);
    let ids: Vec<Vec<u8>> = (1..=500u64)
        .map(|n| cert_id(&sha1_algorithm(), 20, &asn1::small_integer(n)))
        .collect();
    let mut total = 0;
    for id in &ids {
        let parsed = parse_request(&request(std::slice::from_ref(id), &[])).unwrap();
        let single = f.single(&parsed.certs[0], CertStatus::Good);
        let response = build_response(&f.responder, f.now, &[single], None, false).unwrap();
        assert!(OcspResponse::from_der(&response).is_ok());
        total += response.len();
    }
    assert!(total > 500 * f.responder.certificate_der.len());
}
