//! Where a JSON text nests too deep to decode: serde_json stops at 128 levels, and an object
//! stored through an older CRD (or a review of one) can nest deeper. Naming the field turns
//! "recursion limit exceeded" into a message a person can act on.

/// serde_json's nesting limit.
pub const MAX_DEPTH: usize = 128;

enum Frame {
    Object {
        key: Option<String>,
        expecting_key: bool,
    },
    Array,
}

/// The object-key path (`spec.condition.model`) at which `text` first nests deeper than `max`
/// levels; None when it never does (or is not JSON enough to tell). Iterative: any depth scans.
pub fn too_deep_path(text: &str, max: usize) -> Option<String> {
    let bytes = text.as_bytes();
    let mut stack: Vec<Frame> = Vec::new();
    let mut i = 0;
    let path = |stack: &[Frame]| {
        stack
            .iter()
            .filter_map(|f| match f {
                Frame::Object { key: Some(k), .. } => Some(k.as_str()),
                _ => None,
            })
            .collect::<Vec<_>>()
            .join(".")
    };
    while i < bytes.len() {
        match bytes[i] {
            b'{' | b'[' => {
                if stack.len() >= max {
                    return Some(path(&stack));
                }
                stack.push(if bytes[i] == b'{' {
                    Frame::Object {
                        key: None,
                        expecting_key: true,
                    }
                } else {
                    Frame::Array
                });
                i += 1;
            }
            b'}' | b']' => {
                stack.pop();
                i += 1;
            }
            b',' => {
                if let Some(Frame::Object { expecting_key, .. }) = stack.last_mut() {
                    *expecting_key = true;
                }
                i += 1;
            }
            b'"' => {
                let start = i + 1;
                let mut j = start;
                while j < bytes.len() && bytes[j] != b'"' {
                    j += if bytes[j] == b'\\' { 2 } else { 1 };
                }
                let s = text
                    .get(start..j.min(bytes.len()))
                    .unwrap_or("")
                    .to_string();
                if let Some(Frame::Object { key, expecting_key }) = stack.last_mut()
                    && *expecting_key
                {
                    *key = Some(s);
                    *expecting_key = false;
                }
                i = j + 1;
            }
            _ => i += 1,
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_the_field_that_nests_too_deep() {
        let deep = format!(
            r#"{{"metadata":{{"name":"a,b\"{{"}},"spec":{{"policy":"p","condition":{{"model":{}"x"{}}}}}}}"#,
            "[".repeat(300),
            "]".repeat(300)
        );
        assert_eq!(
            too_deep_path(&deep, MAX_DEPTH).as_deref(),
            Some("spec.condition.model")
        );
        assert_eq!(too_deep_path(r#"{"a":[[1]],"b":{"c":2}}"#, MAX_DEPTH), None);
        assert_eq!(
            too_deep_path(r#"{"a":1,"b":{"c":[[2]]}}"#, 3).as_deref(),
            Some("b.c")
        );
    }
}
