//! `filter=` expressions: compile with as many placeholders as values, or are refused at a position inside the text; never a panic.
//! The property is `certmill::fuzz_check::filter_expr`, which `tests/fuzz_corpora.rs` also runs.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let _ = certmill::fuzz_check::filter_expr(data);
});
