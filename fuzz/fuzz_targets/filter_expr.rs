//! `filter=` expressions (seed 002's OData subset): any text compiles into a condition whose
//! placeholders match its values, or is refused with a position inside the text (or just past
//! its end); never a panic.
#![no_main]

use certmill::filter::{compile, Field, FieldType};

const FIELDS: &[Field] = &[
    Field { name: "name", column: "name", kind: FieldType::Text },
    Field { name: "id", column: "id", kind: FieldType::Integer },
    Field { name: "createdAt", column: "created_at", kind: FieldType::Timestamp },
    Field { name: "active", column: "active", kind: FieldType::Boolean },
];

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    match compile(text, FIELDS) {
        Ok(filter) => assert_eq!(filter.sql.matches('?').count(), filter.values.len()),
        Err(e) => assert!(e.position >= 1 && e.position <= text.chars().count() + 1 || text.len() > certmill::filter::MAX_FILTER_LEN),
    }
});
