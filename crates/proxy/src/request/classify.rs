//! Classification: which model a request asks for, and what identifies its conversation.
//! Reads only what routing needs and leaves the raw body bytes untouched for forwarding.

use std::borrow::Cow;

use memchr::memchr2;

/// The top-level fields of a JSON request body that routing reads: the model, and what
/// identifies the conversation a request belongs to.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct BodyFields<'a> {
    pub model: Option<Cow<'a, str>>,
    /// OpenAI `prompt_cache_key`.
    pub prompt_cache_key: Option<Cow<'a, str>>,
    /// OpenAI `user`.
    pub user: Option<Cow<'a, str>>,
    /// Responses `previous_response_id`.
    pub previous_response_id: Option<Cow<'a, str>>,
    /// Anthropic `metadata.user_id`.
    pub metadata_user_id: Option<Cow<'a, str>>,
}

/// The top-level `"model"` string of a JSON request body, when there is one.
pub fn model_of_body(body: &[u8]) -> Option<Cow<'_, str>> {
    fields_of_body(body).model
}

/// [`BodyFields`] of a JSON request body.
///
/// A scanner, not a parser: it walks the top-level object, jumps over other values (strings
/// with `memchr`, which is where nearly all of a chat body's bytes are) and reads only the
/// fields routing needs. A field it cannot read is `None`; the body is forwarded unchanged
/// either way and the upstream judges its validity.
pub fn fields_of_body(body: &[u8]) -> BodyFields<'_> {
    let mut fields = BodyFields::default();
    walk(body, skip_ws(body, 0), |key, at| match key {
        b"model" => fields.model = string_value(body, at),
        b"prompt_cache_key" => fields.prompt_cache_key = string_value(body, at),
        b"user" => fields.user = string_value(body, at),
        b"previous_response_id" => fields.previous_response_id = string_value(body, at),
        b"metadata" => {
            walk(body, at, |key, at| {
                if key == b"user_id" {
                    fields.metadata_user_id = string_value(body, at);
                }
            });
        }
        _ => {}
    });
    fields
}

/// Call `visit` with each key of the object at `body[i]` and the index of its value. Stops at
/// anything that is not a well-formed object.
fn walk(body: &[u8], mut i: usize, mut visit: impl FnMut(&[u8], usize)) -> Option<()> {
    if body.get(i) != Some(&b'{') {
        return None;
    }
    i = skip_ws(body, i + 1);
    if body.get(i) == Some(&b'}') {
        return Some(());
    }
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
        visit(key, i);
        i = skip_value(body, i)?;
        i = skip_ws(body, i);
        match body.get(i) {
            Some(b',') => i += 1,
            Some(b'}') => return Some(()),
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
    fn session_fields_are_read_from_the_top_level_and_metadata() {
        let body = br#"{"metadata":{"other":{"user_id":"no"},"user_id":"user_abc_session_123"},"model":"m","input":[{"user":"x"}],"prompt_cache_key":"pk","user":"u@example.com","previous_response_id":"resp_1"}"#;
        let f = fields_of_body(body);
        assert_eq!(f.model.as_deref(), Some("m"));
        assert_eq!(f.metadata_user_id.as_deref(), Some("user_abc_session_123"));
        assert_eq!(f.prompt_cache_key.as_deref(), Some("pk"));
        assert_eq!(f.user.as_deref(), Some("u@example.com"));
        assert_eq!(f.previous_response_id.as_deref(), Some("resp_1"));
        assert_eq!(fields_of_body(b"{}"), BodyFields::default());
        assert_eq!(fields_of_body(br#"{"metadata":{}}"#), BodyFields::default());
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
