//! Classification: which model a request asks for. Reads only what routing needs and leaves
//! the raw body bytes untouched for forwarding.

use std::borrow::Cow;

use memchr::memchr2;

/// The top-level `"model"` string of a JSON request body, when there is one.
///
/// A scanner, not a parser: it walks the top-level object, jumps over other values (strings
/// with `memchr`, which is where nearly all of a chat body's bytes are) and reads only the one
/// field routing needs. Anything it does not understand yields `None`; the body is forwarded
/// unchanged either way and the upstream judges its validity.
pub fn model_of_body(body: &[u8]) -> Option<Cow<'_, str>> {
    let mut i = skip_ws(body, 0);
    if body.get(i) != Some(&b'{') {
        return None;
    }
    i += 1;
    loop {
        i = skip_ws(body, i);
        if body.get(i) != Some(&b'"') {
            return None;
        }
        let key_end = string_end(body, i)?;
        let key = &body[i + 1..key_end - 1];
        i = skip_ws(body, key_end);
        if body.get(i) != Some(&b':') {
            return None;
        }
        i = skip_ws(body, i + 1);
        if key == b"model" {
            return string_value(body, i);
        }
        i = skip_value(body, i)?;
        i = skip_ws(body, i);
        match body.get(i) {
            Some(b',') => i += 1,
            _ => return None,
        }
    }
}

fn skip_ws(body: &[u8], mut i: usize) -> usize {
    while matches!(body.get(i), Some(b' ' | b'\t' | b'\n' | b'\r')) {
        i += 1;
    }
    i
}

/// `body[start]` is an opening quote; the index just past the closing one.
fn string_end(body: &[u8], start: usize) -> Option<usize> {
    let mut i = start + 1;
    loop {
        i += memchr2(b'"', b'\\', &body[i..])?;
        if body[i] == b'"' {
            return Some(i + 1);
        }
        i += 2; // a backslash escapes the next byte
        if i > body.len() {
            return None;
        }
    }
}

/// The string at `body[i]`, unescaped only when it has escapes.
fn string_value(body: &[u8], i: usize) -> Option<Cow<'_, str>> {
    if body.get(i) != Some(&b'"') {
        return None;
    }
    let end = string_end(body, i)?;
    let raw = &body[i + 1..end - 1];
    if raw.contains(&b'\\') {
        return serde_json::from_slice::<String>(&body[i..end])
            .ok()
            .map(Cow::Owned);
    }
    std::str::from_utf8(raw).ok().map(Cow::Borrowed)
}

/// The index just past the value starting at `body[i]`.
fn skip_value(body: &[u8], mut i: usize) -> Option<usize> {
    match body.get(i)? {
        b'"' => string_end(body, i),
        b'{' | b'[' => {
            let mut depth = 0usize;
            loop {
                match body.get(i)? {
                    b'"' => {
                        i = string_end(body, i)?;
                        continue;
                    }
                    b'{' | b'[' => depth += 1,
                    b'}' | b']' => {
                        depth -= 1;
                        if depth == 0 {
                            return Some(i + 1);
                        }
                    }
                    _ => {}
                }
                i += 1;
            }
        }
        _ => {
            while !matches!(
                body.get(i)?,
                b',' | b'}' | b']' | b' ' | b'\t' | b'\n' | b'\r'
            ) {
                i += 1;
            }
            Some(i)
        }
    }
}

/// Splits the tail of a Gemini path, `gemini-2.5-pro:generateContent`, into model and method.
pub fn gemini_model_and_method(rest: &str) -> Option<(&str, &str)> {
    let (model, method) = rest.rsplit_once(':')?;
    if model.is_empty() || model.contains('/') {
        return None;
    }
    matches!(
        method,
        "generateContent" | "streamGenerateContent" | "countTokens"
    )
    .then_some((model, method))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_the_top_level_model_only() {
        let body = br#"{"messages":[{"role":"user","content":"{\"model\":\"no\"}","x":{"model":"nested"}}],"max_tokens":5,"n":null,"model":"claude-opus-4-1","stream":true}"#;
        assert_eq!(model_of_body(body).as_deref(), Some("claude-opus-4-1"));
        let spaced = b" { \"stream\" : true ,\n \"model\" :\t\"gpt-4o\" } ";
        assert_eq!(model_of_body(spaced).as_deref(), Some("gpt-4o"));
        let escaped = br#"{"model":"a\"b\u0063"}"#;
        assert_eq!(model_of_body(escaped).as_deref(), Some("a\"bc"));
    }

    #[test]
    fn anything_unexpected_is_none() {
        for body in [
            &b"not json"[..],
            br#"{"stream":true}"#,
            br#"{"model":5}"#,
            br#"["model","x"]"#,
            br#"{"messages":[{"content":"unterminated}"#,
            br#"{"model":"unterminated"#,
            br#"{"a":"\"#,
            b"",
            b"{",
        ] {
            assert_eq!(
                model_of_body(body),
                None,
                "{}",
                String::from_utf8_lossy(body)
            );
        }
    }

    #[test]
    fn agrees_with_a_full_parser() {
        let samples = [
            r#"{"model":"m1","messages":[]}"#,
            r#"{"messages":[{"role":"user","content":[{"type":"text","text":"]]}}{{\\"}]}],"model":"m2"}"#,
            r#"{"system":"s","tools":[{"name":"t","input_schema":{"type":"object","properties":{"model":{"type":"string"}}}}],"model":"m3"}"#,
            r#"{"temperature":0.5e-3,"top_p":1,"stop":["\n"],"model":"m4"}"#,
        ];
        for sample in samples {
            let full: serde_json::Value = serde_json::from_str(sample).unwrap();
            assert_eq!(
                model_of_body(sample.as_bytes()).as_deref(),
                full["model"].as_str(),
                "{sample}"
            );
        }
    }

    #[test]
    fn gemini_paths() {
        assert_eq!(
            gemini_model_and_method("gemini-2.5-pro:streamGenerateContent"),
            Some(("gemini-2.5-pro", "streamGenerateContent"))
        );
        assert_eq!(gemini_model_and_method("gemini-2.5-pro:delete"), None);
        assert_eq!(gemini_model_and_method("gemini-2.5-pro"), None);
    }
}
