//! CSV batch input: any file is either validated or refused with a BatchError; never a panic.
#![no_main]

use std::sync::OnceLock;

struct Setup {
    _dir: tempfile::TempDir,
    template: certmill::template::Template,
}

fn setup() -> &'static Setup {
    static SETUP: OnceLock<Setup> = OnceLock::new();
    SETUP.get_or_init(|| {
        let dir = tempfile::tempdir().expect("temp dir");
        let ca = certmill::ca::IssuingCa::init(dir.path(), &Default::default()).expect("CA");
        let profile = certmill::profile::Profile::load("ecc-device", &Default::default()).expect("profile");
        let template = certmill::template::Template::new(&profile, &ca, time::OffsetDateTime::now_utc()).expect("template");
        Setup { _dir: dir, template }
    })
}

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let setup = setup();
    let path = setup._dir.path().join("input.csv");
    std::fs::write(&path, data).expect("write input");
    let _ = certmill::batch::validate_csv(&setup.template, &path, &Default::default());
});
