//! Telling exec form from shell form.
//!
//! Docker treats arguments as exec form only when they are a valid JSON array
//! of strings; invalid JSON silently falls back to shell form, but valid JSON
//! with a non-string element is an error. `serde_json` tells those apart.

use serde_json::Value;

/// How an argument string reads as JSON.
#[derive(Debug, PartialEq)]
pub(crate) enum JsonArray {
    /// A valid array of strings.
    Strings(Vec<String>),
    /// A valid array with some non-string element.
    NotStrings,
    /// Not JSON, or not an array: use shell/whitespace form.
    Invalid,
}

/// Classifies `text` (leading whitespace allowed) as a JSON array.
pub(crate) fn parse_array(text: &str) -> JsonArray {
    let text = text.trim();
    if !text.starts_with('[') {
        return JsonArray::Invalid;
    }
    let Ok(Value::Array(items)) = serde_json::from_str::<Value>(text) else {
        return JsonArray::Invalid;
    };
    let mut strings = Vec::with_capacity(items.len());
    for item in items {
        match item {
            Value::String(s) => strings.push(s),
            _ => return JsonArray::NotStrings,
        }
    }
    JsonArray::Strings(strings)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(input: &str, expected: JsonArray) {
        assert_eq!(parse_array(input), expected, "input {input:?}");
    }

    #[test]
    fn arrays() {
        let s = |v: &[&str]| JsonArray::Strings(v.iter().map(|s| s.to_string()).collect());
        check(r#"["a", "b c"]"#, s(&["a", "b c"]));
        check("  [ ]  ", s(&[]));
        check(r#"["\u00e9\n\"", "\ud83d\ude00"]"#, s(&["é\n\"", "😀"]));
        check(r#"["a", 1]"#, JsonArray::NotStrings);
        check(
            r#"["a", {"k": [null, true, -1.5e3]}]"#,
            JsonArray::NotStrings,
        );
        check(r#"["a" "b"]"#, JsonArray::Invalid);
        check(r#"["a",]"#, JsonArray::Invalid);
        check(r#"['a']"#, JsonArray::Invalid);
        check(r#"["a"] x"#, JsonArray::Invalid);
        check("echo [x]", JsonArray::Invalid);
        check(r#"["a\x"]"#, JsonArray::Invalid);
        check("[01]", JsonArray::Invalid);
    }
}
