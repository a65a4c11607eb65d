//! Sending a request to another model (an alias or a fallback step names one): only the
//! top-level `model` field of the JSON body changes, byte for byte everything else stays, or
//! for Gemini the model in the path.

use bytes::Bytes;
use serde::Deserialize;
use serde_json::value::RawValue;

/// `body` with its top-level `model` set to `model`; `None` when the body is not a JSON
/// object with a string `model` (nothing to rewrite).
pub fn body_with_model(body: &[u8], model: &str) -> Option<Bytes> {
    #[derive(Deserialize)]
    struct Top<'a> {
        #[serde(borrow)]
        model: Option<&'a RawValue>,
    }
    let text = std::str::from_utf8(body).ok()?;
    let top: Top<'_> = serde_json::from_str(text).ok()?;
    let raw = top.model?.get();
    if !raw.starts_with('"') {
        return None;
    }
    // The raw value is a slice of `text`: its offset is where the old model starts.
    let start = (raw.as_ptr() as usize).checked_sub(text.as_ptr() as usize)?;
    let end = start + raw.len();
    let quoted = serde_json::to_string(model).ok()?;
    let mut out = Vec::with_capacity(body.len() - raw.len() + quoted.len());
    out.extend_from_slice(&body[..start]);
    out.extend_from_slice(quoted.as_bytes());
    out.extend_from_slice(&body[end..]);
    Some(Bytes::from(out))
}

/// A Gemini path `/v1beta/models/{model}:{method}` for `model`; `None` for other paths.
pub fn gemini_path_with_model(path: &str, model: &str) -> Option<String> {
    let (prefix, rest) = path.split_once("/models/")?;
    let (_, method) = rest.rsplit_once(':')?;
    Some(format!("{prefix}/models/{model}:{method}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_model_changes() {
        let body = br#"{"max_tokens":16,"model" : "claude-haiku-4-5","messages":[{"role":"user","content":"model \"x\""}],"metadata":{"model":"keep"}}"#;
        let out = body_with_model(body, "deepseek-v4-flash").expect("rewritten");
        assert_eq!(
            std::str::from_utf8(&out).unwrap(),
            r#"{"max_tokens":16,"model" : "deepseek-v4-flash","messages":[{"role":"user","content":"model \"x\""}],"metadata":{"model":"keep"}}"#
        );
        // Escaped into valid JSON whatever the name holds.
        let out = body_with_model(br#"{"model":"a"}"#, "we\"ird").expect("rewritten");
        let v: serde_json::Value = serde_json::from_slice(&out).unwrap();
        assert_eq!(v["model"], "we\"ird");
    }

    #[test]
    fn bodies_without_a_string_model_are_left_alone() {
        for body in [&b"{}"[..], b"[]", b"not json", br#"{"model":5}"#, b""] {
            assert!(body_with_model(body, "m").is_none(), "{body:?}");
        }
    }

    #[test]
    fn gemini_paths() {
        assert_eq!(
            gemini_path_with_model(
                "/v1beta/models/gemini-2.5-pro:streamGenerateContent",
                "gemini-2.5-flash"
            )
            .as_deref(),
            Some("/v1beta/models/gemini-2.5-flash:streamGenerateContent")
        );
        assert_eq!(gemini_path_with_model("/v1/messages", "m"), None);
    }
}
