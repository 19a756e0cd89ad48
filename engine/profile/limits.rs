//! Size and nesting limits checked on the profile text before serde sees it.
//!
//! serde_json parses recursively and `#[serde(untagged)]` buffers whole values, so a hostile
//! profile (megabytes of text, `[[[[...]]]]` a thousand deep) costs memory and stack before a
//! single rule is checked. These checks are one pass over the bytes with no recursion and no
//! allocation beyond the open containers, and they name where the limit was crossed. They do
//! not validate JSON: malformed text that stays within the limits is left to serde, which
//! reports it with its path.

use super::ProfileError;

/// Default largest profile, in bytes: 256 KiB. The shipped profiles are 3.3–3.6 KB and the
/// largest realistic one (every attribute type, a dozen SAN entries, long descriptions) stays
/// under 20 KB, so this leaves an order of magnitude of headroom while bounding what one file
/// or request can make the parser buffer.
pub const DEFAULT_MAX_PROFILE_BYTES: usize = 256 * 1024;

/// Default deepest nesting of objects and arrays: 32. The profile language itself nests at
/// most 6 deep (`/Extensions/SubjectAlternativeName/generalNames/0/source/0`); anything deeper
/// is not a profile. serde_json's own recursion limit is 128, so this is reached first.
pub const DEFAULT_MAX_PROFILE_DEPTH: usize = 32;

/// Refuses text longer than `limit` bytes.
pub(crate) fn check_size(bytes: u64, limit: usize) -> Result<(), ProfileError> {
    if bytes > limit as u64 {
        return Err(ProfileError::TooLarge { bytes, limit });
    }
    Ok(())
}

/// One open object or array, and where in it the scanner is.
struct Frame {
    /// `Some(key)` for an object (the key of the member being read, empty before the first
    /// key), `None` for an array.
    key: Option<String>,
    /// Index of the array element being read.
    index: usize,
    /// In an object: the next string is a member name, not a value.
    expecting_key: bool,
}

/// Longest member name kept for the path in an error: the text is hostile, the message
/// should stay readable.
const MAX_KEY_IN_PATH: usize = 64;

/// Refuses JSON whose objects and arrays nest deeper than `limit` (the top-level object is
/// depth 1), naming the JSON path of the value that crosses the limit, its line and column.
pub(crate) fn check_depth(json: &str, limit: usize) -> Result<(), ProfileError> {
    let bytes = json.as_bytes();
    let mut stack: Vec<Frame> = Vec::new();
    let (mut line, mut line_start) = (1usize, 0usize);
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'\n' => {
                line += 1;
                line_start = i + 1;
            }
            b'"' => {
                let start = i + 1;
                i = start;
                // A string: skip to its closing quote, stepping over escapes. Newlines cannot
                // occur raw inside a valid string; if they do, serde refuses the text anyway.
                while i < bytes.len() && bytes[i] != b'"' {
                    if bytes[i] == b'\\' {
                        i += 1;
                    }
                    i += 1;
                }
                let end = i.min(bytes.len());
                if let Some(frame) = stack.last_mut() {
                    if frame.expecting_key {
                        let text = String::from_utf8_lossy(&bytes[start..end]);
                        frame.key = Some(text.chars().take(MAX_KEY_IN_PATH).collect());
                        frame.expecting_key = false;
                    }
                }
            }
            open @ (b'{' | b'[') => {
                if stack.len() >= limit {
                    return Err(ProfileError::TooDeep {
                        path: pointer(&stack),
                        line,
                        column: i - line_start + 1,
                        limit,
                    });
                }
                stack.push(Frame {
                    key: (open == b'{').then(String::new),
                    index: 0,
                    expecting_key: open == b'{',
                });
            }
            b'}' | b']' => {
                stack.pop();
            }
            b',' => {
                if let Some(frame) = stack.last_mut() {
                    match frame.key {
                        Some(_) => frame.expecting_key = true,
                        None => frame.index += 1,
                    }
                }
            }
            _ => {}
        }
        i += 1;
    }
    Ok(())
}

/// The JSON pointer (RFC 6901) of the value being read.
fn pointer(stack: &[Frame]) -> String {
    if stack.is_empty() {
        return "/".into();
    }
    let mut out = String::new();
    for frame in stack {
        out.push('/');
        match &frame.key {
            Some(key) => out.push_str(&escape(key)),
            None => out.push_str(&frame.index.to_string()),
        }
    }
    out
}

/// Escapes one JSON pointer segment (RFC 6901 section 3: `~` → `~0`, `/` → `~1`).
pub(crate) fn escape(segment: &str) -> String {
    segment.replace('~', "~0").replace('/', "~1")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn depth_error(json: &str, limit: usize) -> (String, usize, usize) {
        match check_depth(json, limit) {
            Err(ProfileError::TooDeep {
                path, line, column, ..
            }) => (path, line, column),
            other => panic!("expected TooDeep, got {other:?}"),
        }
    }

    #[test]
    fn depth_is_counted_from_the_top_level_object() {
        assert!(check_depth(r#"{"a": {"b": [1, {"c": 2}]}}"#, 4).is_ok());
        let (path, line, column) = depth_error(r#"{"a": {"b": [1, {"c": 2}]}}"#, 3);
        assert_eq!(path, "/a/b/1");
        assert_eq!((line, column), (1, 17));
    }

    #[test]
    fn the_path_follows_keys_and_indexes_across_lines() {
        let json = "{\"x\": 1,\n \"Extensions\": {\"A~b/c\": [[], [0, [[]]]]}}";
        let (path, line, column) = depth_error(json, 4);
        assert_eq!(path, "/Extensions/A~0b~1c/1/1");
        assert_eq!((line, column), (2, 35));
    }

    #[test]
    fn brackets_and_quotes_inside_strings_do_not_count() {
        let json = r#"{"a": "[[[[{{{{\"]]]", "b\"{": ["}}}}"]}"#;
        assert!(check_depth(json, 2).is_ok());
    }

    #[test]
    fn a_deep_top_level_array_is_refused_at_its_own_path() {
        let json = "[".repeat(100_000);
        let (path, _, column) = depth_error(&json, 32);
        assert_eq!(path, format!("/{}", vec!["0"; 32].join("/")));
        assert_eq!(column, 33);
    }

    #[test]
    fn size_names_both_numbers() {
        assert!(check_size(262_144, DEFAULT_MAX_PROFILE_BYTES).is_ok());
        let err = check_size(300_000, DEFAULT_MAX_PROFILE_BYTES).unwrap_err();
        assert_eq!(
            err.to_string(),
            "profile is 300000 bytes, over the limit of 262144"
        );
    }
}
