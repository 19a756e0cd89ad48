//! Profile JSON: any input either compiles or gives a ProfileError; never a panic.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = certmill::profile::Profile::from_json(text, "fuzz", &certmill::profile::CompileOptions::default());
    }
});
