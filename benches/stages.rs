//! Criterion benches of the per-device stages on their own: key generation (P-256, P-384,
//! RSA-2048), template fill, signing, PKCS#12 build, ZIP entry write, CSR parse + verify,
//! profile compile, and the PKCS#12 key derivation on each path (SHA-NI lockstep, portable
//! lockstep, and the `pbkdf2` crate for reference). `cargo bench --bench stages`. `certmill bench` times the same engine
//! functions on a sample inside an end-to-end run.

use certmill::bench::inputs::p256_csr_der;
use certmill::bench::stages::ZipEntryWriter;
use certmill::ca::{CaInitOptions, IssuingCa};
use certmill::csr::ParsedCsr;
use certmill::keys::{self, KeyAlgorithm};
use certmill::pkcs12::{self, Pkcs12Options, Pkcs12Password};
use certmill::profile::{CompileOptions, Inputs, Profile, SHIPPED};
use certmill::template::Template;
use criterion::{black_box, criterion_group, criterion_main, Criterion};
use std::collections::BTreeMap;

fn stages(c: &mut Criterion) {
    let dir = tempfile::tempdir().expect("temp dir");
    let ca = IssuingCa::init(dir.path(), &CaInitOptions::default()).expect("CA");
    let options = CompileOptions::default();
    let profile = Profile::load("ecc-device", &options).expect("profile");
    let template = Template::new(&profile, &ca, time::OffsetDateTime::now_utc()).expect("template");
    let request: BTreeMap<String, String> = [
        ("macAddress", "00:1A:2B:3C:4D:5E"),
        ("deviceClass", "Aircraft"),
    ]
    .iter()
    .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
    .collect();
    let empty = BTreeMap::new();
    let inputs = Inputs {
        request: Some(&request),
        batch: &empty,
        profile: &empty,
        csr: None,
    };
    let key = keys::generate(KeyAlgorithm::EcP256).expect("key");
    let prepared = template.prepare(&inputs).expect("prepare");
    let serial = [0x42u8; 16];
    let tbs = template.tbs_certificate(&prepared, &serial, key.spki_der(), key.public_key_bits());
    let signature = ca.sign(template.signature_algorithm(), &tbs).expect("sign");
    let certificate = template.certificate(&tbs, &signature);
    let password = Pkcs12Password::new("bench-password".into()).expect("password");
    let chain: Vec<&[u8]> = std::iter::once(certificate.as_slice())
        .chain(ca.chain_der().iter().map(Vec::as_slice))
        .collect();

    c.bench_function("profile compile (ecc-device)", |b| {
        b.iter(|| {
            Profile::from_json(black_box(SHIPPED[0].1), "ecc-device", &options).expect("compile")
        })
    });
    c.bench_function("keygen P-256", |b| {
        b.iter(|| keys::generate(KeyAlgorithm::EcP256).expect("key"))
    });
    c.bench_function("keygen P-384", |b| {
        b.iter(|| keys::generate(KeyAlgorithm::EcP384).expect("key"))
    });
    c.bench_function("template prepare + fill", |b| {
        b.iter(|| {
            let prepared = template.prepare(black_box(&inputs)).expect("prepare");
            template.tbs_certificate(&prepared, &serial, key.spki_der(), key.public_key_bits())
        })
    });
    c.bench_function("sign ecdsa-with-SHA256", |b| {
        b.iter(|| {
            ca.sign(template.signature_algorithm(), black_box(&tbs))
                .expect("sign")
        })
    });
    c.bench_function("pkcs12 build (OpenSSL 3 defaults)", |b| {
        b.iter(|| {
            pkcs12::build(
                key.pkcs8_der(),
                black_box(&chain),
                "00:1A:2B:3C:4D:5E",
                &password,
                &Pkcs12Options::default(),
            )
            .expect("p12")
        })
    });
    let p12 = pkcs12::build(
        key.pkcs8_der(),
        &chain,
        "00:1A:2B:3C:4D:5E",
        &password,
        &Pkcs12Options::default(),
    )
    .expect("p12");
    let zip_dir = tempfile::tempdir().expect("temp dir");
    let mut zip =
        ZipEntryWriter::create(&zip_dir.path().join("bench.zip"), zip_dir.path()).expect("zip");
    let mut entry = 0u64;
    c.bench_function("zip entry write (PKCS#12, stored)", |b| {
        b.iter(|| {
            entry += 1;
            zip.add(&format!("{entry}.p12"), black_box(&p12))
                .expect("zip entry")
        })
    });
    zip.finish().expect("zip finish");
    let csr = p256_csr_der("00:1A:2B:3C:4D:5E").expect("csr");
    c.bench_function("csr parse + verify (P-256)", |b| {
        b.iter(|| ParsedCsr::from_der(black_box(&csr)).expect("csr"))
    });
    let mut rsa = c.benchmark_group("rsa");
    rsa.sample_size(10);
    rsa.bench_function("keygen RSA-2048", |b| {
        b.iter(|| keys::generate(KeyAlgorithm::Rsa2048).expect("key"))
    });
    rsa.finish();
}

/// The three key derivations of one OpenSSL 3 default PKCS#12 (2,048 iterations each).
fn kdf(c: &mut Criterion) {
    use certmill::pkcs12::{derive_openssl3_keys, KdfPath};
    use std::num::NonZeroU32;
    let password = Pkcs12Password::new("bench-password".into()).expect("password");
    let (key_salt, cert_salt, mac_salt) = ([1u8; 16], [2u8; 16], [3u8; 8]);
    let iterations = NonZeroU32::new(2048).expect("non-zero");
    let mut group = c.benchmark_group("pkcs12 kdf (3 chains x 2048)");
    let mut paths = vec![("portable lockstep", KdfPath::Portable)];
    if KdfPath::sha_ni_available() {
        paths.push(("SHA-NI lockstep", KdfPath::ShaNi));
    }
    for (name, path) in paths {
        group.bench_function(name, |b| {
            b.iter(|| {
                derive_openssl3_keys(
                    path,
                    &password,
                    black_box(&key_salt),
                    &cert_salt,
                    &mac_salt,
                    iterations,
                )
            })
        });
    }
    // Reference: the two PBKDF2 chains alone with the `pbkdf2` crate (the MAC chain left out,
    // so this row undercounts the crate path by a third).
    group.bench_function("pbkdf2 crate, 2 PBKDF2 chains only", |b| {
        b.iter(|| {
            let (mut a, mut k) = ([0u8; 32], [0u8; 32]);
            pbkdf2::pbkdf2_hmac::<sha2::Sha256>(
                b"bench-password",
                black_box(&key_salt),
                2048,
                &mut a,
            );
            pbkdf2::pbkdf2_hmac::<sha2::Sha256>(b"bench-password", &cert_salt, 2048, &mut k);
            (a, k)
        })
    });
    group.finish();
}

criterion_group!(benches, stages, kdf);
criterion_main!(benches);
