//! Classification: which model a request asks for. Reads only what routing needs and leaves
//! the raw body bytes untouched for forwarding.

use serde::Deserialize;

/// The `model` field of a JSON request body, when there is one. Other fields are skipped
/// without being built.
pub fn model_of_body(body: &[u8]) -> Option<String> {
    #[derive(Deserialize)]
    struct ModelOnly<'a> {
        #[serde(borrow)]
        model: Option<std::borrow::Cow<'a, str>>,
    }
    serde_json::from_slice::<ModelOnly>(body)
        .ok()
        .and_then(|m| m.model)
        .map(|m| m.into_owned())
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
    fn finds_model_anywhere_in_the_object() {
        let body = br#"{"messages":[{"role":"user","content":"{\"model\":\"no\"}"}],"model":"claude-opus-4-1","stream":true}"#;
        assert_eq!(model_of_body(body).as_deref(), Some("claude-opus-4-1"));
        assert_eq!(model_of_body(b"not json"), None);
        assert_eq!(model_of_body(br#"{"stream":true}"#), None);
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
