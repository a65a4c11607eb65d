//! Which conversation a request belongs to, from what the clients really send (see
//! PROTOCOLS.md › Sessions): explicit headers first, then body fields, then a Responses chain;
//! a fingerprint of the prompt only when the policy asks for it (`affinity = "prefix"`).
//! Requests with none are independent and keep the policy's per-request sequence.
//!
//! Also here: dropping the encrypted reasoning items another account produced from a request
//! that must go elsewhere (they would not decrypt there).

use bytes::Bytes;
use http::HeaderMap;
use keyway_core::Surface;
use keyway_core::session::{Affinity, KeySource, Owners, SessionKey};
use memchr::memmem;
use serde_json::Value;

use super::classify::BodyFields;

/// Headers that name a session, in the order they are believed.
const SESSION_HEADERS: [(&str, KeySource); 5] = [
    ("x-claude-code-session-id", KeySource::ClaudeCodeSession),
    ("session-id", KeySource::CodexSession),
    ("thread-id", KeySource::CodexThread),
    ("x-codex-window-id", KeySource::CodexWindow),
    ("x-session-id", KeySource::SessionHeader),
];

/// The most believed of the [`SESSION_HEADERS`] the request carries (non-empty, trimmed), found
/// in one pass over its headers: looking the five names up would parse and hash each of them
/// on every request.
fn session_header(headers: &HeaderMap) -> Option<(&str, KeySource)> {
    let mut best: Option<(usize, &str)> = None;
    for (name, value) in headers {
        let Some(rank) = SESSION_HEADERS
            .iter()
            .position(|(n, _)| *n == name.as_str())
        else {
            continue;
        };
        if best.is_some_and(|(b, _)| b <= rank) {
            continue;
        }
        if let Some(value) = value.to_str().ok().map(str::trim).filter(|v| !v.is_empty()) {
            best = Some((rank, value));
        }
    }
    best.map(|(rank, value)| (value, SESSION_HEADERS[rank].1))
}

/// The session a request belongs to, if it says.
pub fn identify(
    headers: &HeaderMap,
    fields: &BodyFields<'_>,
    affinity: Affinity,
    body: &[u8],
) -> Option<SessionKey> {
    if let Some((value, source)) = session_header(headers) {
        let value = match source {
            // `<window id>:<n>`: the window, whatever turn of it.
            KeySource::CodexWindow => value.rsplit_once(':').map_or(value, |(id, _)| id),
            _ => value,
        };
        return Some(SessionKey::new(source, value));
    }
    if let Some(user_id) = fields.metadata_user_id.as_deref().filter(|v| !v.is_empty()) {
        return Some(SessionKey::new(
            KeySource::MetadataUserId,
            claude_code_session(user_id).unwrap_or(user_id),
        ));
    }
    for (value, source) in [
        (&fields.prompt_cache_key, KeySource::PromptCacheKey),
        (&fields.user, KeySource::User),
        (&fields.previous_response_id, KeySource::Chain),
    ] {
        if let Some(value) = value.as_deref().filter(|v| !v.is_empty()) {
            return Some(SessionKey::new(source, value));
        }
    }
    (affinity == Affinity::Prefix)
        .then(|| prefix_fingerprint(body))
        .flatten()
        .map(|hash| SessionKey::new(KeySource::Prefix, &format!("{hash:016x}")))
}

/// The session id inside Claude Code's `metadata.user_id`: a JSON object with `session_id`
/// in recent versions, `user_<hash>_account_<uuid>_session_<uuid>` in older ones.
fn claude_code_session(user_id: &str) -> Option<&str> {
    if user_id.starts_with('{') {
        // Borrowing from the JSON text only works for an unescaped value, which ids are.
        let at = memmem::find(user_id.as_bytes(), b"\"session_id\"")?;
        let rest = &user_id[at + "\"session_id\"".len()..];
        let rest = rest.trim_start().strip_prefix(':')?.trim_start();
        let rest = rest.strip_prefix('"')?;
        return rest.split_once('"').map(|(id, _)| id);
    }
    user_id
        .rsplit_once("_session_")
        .map(|(_, id)| id)
        .filter(|id| !id.is_empty())
}

/// A hash of the system prompt and the first user turn, for `affinity = "prefix"`: the part
/// of a conversation's prompt that every turn repeats. Read as JSON; only policies that ask
/// for it pay for the parse.
fn prefix_fingerprint(body: &[u8]) -> Option<u64> {
    let v: Value = serde_json::from_slice(body).ok()?;
    let system = v
        .get("system")
        .or_else(|| v.get("instructions"))
        .or_else(|| v.get("systemInstruction"));
    let turns = v
        .get("messages")
        .or_else(|| v.get("input"))
        .or_else(|| v.get("contents"))?;
    let first_user = match turns {
        Value::Array(items) => items.iter().find(|m| {
            m.get("role")
                .and_then(Value::as_str)
                .is_none_or(|r| r == "user")
        }),
        other => Some(other),
    }?;
    let mut h = std::hash::DefaultHasher::new();
    std::hash::Hash::hash(&system.map(Value::to_string), &mut h);
    std::hash::Hash::hash(&first_user.to_string(), &mut h);
    Some(std::hash::Hasher::finish(&h))
}

/// Whether a request body carries encrypted reasoning items (Codex's `store: false` mode
/// sends its reasoning back every turn).
pub fn has_encrypted_reasoning(surface: Surface, body: &[u8]) -> bool {
    surface == Surface::OpenAiResponses && memmem::find(body, b"\"encrypted_content\"").is_some()
}

/// `body` without the reasoning items that an account other than `account` produced: they
/// would not decrypt there. `None` when there are none to drop (or the body is not JSON).
pub fn without_foreign_reasoning(body: &[u8], account: &str, owners: &Owners) -> Option<Bytes> {
    let mut v: Value = serde_json::from_slice(body).ok()?;
    let input = v.get_mut("input")?.as_array_mut()?;
    let before = input.len();
    input.retain(|item| {
        let foreign = item.get("type").and_then(Value::as_str) == Some("reasoning")
            && item
                .get("encrypted_content")
                .and_then(Value::as_str)
                .and_then(|c| owners.owner(c))
                .is_some_and(|owner| &*owner != account);
        !foreign
    });
    let dropped = before - input.len();
    if dropped == 0 {
        return None;
    }
    tracing::debug!(
        dropped,
        account,
        "dropped encrypted reasoning items another account produced; the new account cannot read them"
    );
    serde_json::to_vec(&v).ok().map(Bytes::from)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::request::classify::fields_of_body;
    use http::HeaderValue;
    use std::sync::Arc;

    fn key(headers: &[(&'static str, &str)], body: &str, affinity: Affinity) -> Option<SessionKey> {
        let mut h = HeaderMap::new();
        for (n, v) in headers {
            h.insert(*n, HeaderValue::from_str(v).unwrap());
        }
        identify(
            &h,
            &fields_of_body(body.as_bytes()),
            affinity,
            body.as_bytes(),
        )
    }

    #[test]
    fn headers_come_first_then_body_fields() {
        let k = key(
            &[("x-claude-code-session-id", "abc"), ("session-id", "x")],
            r#"{"metadata":{"user_id":"u"}}"#,
            Affinity::Client,
        )
        .unwrap();
        assert_eq!((&*k.value, k.source), ("abc", KeySource::ClaudeCodeSession));
        let k = key(&[("x-codex-window-id", "w1:7")], "{}", Affinity::Client).unwrap();
        assert_eq!((&*k.value, k.source), ("w1", KeySource::CodexWindow));
        let k = key(
            &[],
            r#"{"prompt_cache_key":"pk","user":"u"}"#,
            Affinity::Client,
        )
        .unwrap();
        assert_eq!((&*k.value, k.source), ("pk", KeySource::PromptCacheKey));
        let k = key(
            &[],
            r#"{"previous_response_id":"resp_9"}"#,
            Affinity::Client,
        )
        .unwrap();
        assert_eq!((&*k.value, k.source), ("resp_9", KeySource::Chain));
    }

    #[test]
    fn claude_codes_metadata_in_both_forms() {
        let json = r#"{"metadata":{"user_id":"{\"device_id\":\"d\",\"account_uuid\":\"a\",\"session_id\":\"5e55\"}"}}"#;
        let k = key(&[], json, Affinity::Client).unwrap();
        assert_eq!((&*k.value, k.source), ("5e55", KeySource::MetadataUserId));
        let old = r#"{"metadata":{"user_id":"user_ab12_account_c3_session_77f"}}"#;
        assert_eq!(&*key(&[], old, Affinity::Client).unwrap().value, "77f");
        let plain = r#"{"metadata":{"user_id":"someone"}}"#;
        assert_eq!(
            &*key(&[], plain, Affinity::Client).unwrap().value,
            "someone"
        );
    }

    #[test]
    fn no_identity_means_none_unless_prefix_affinity() {
        let body =
            r#"{"model":"m","system":"be brief","messages":[{"role":"user","content":"hi"}]}"#;
        assert_eq!(key(&[], body, Affinity::Client), None);
        let a = key(&[], body, Affinity::Prefix).unwrap();
        let later = r#"{"model":"m","system":"be brief","messages":[{"role":"user","content":"hi"},{"role":"assistant","content":"yo"},{"role":"user","content":"more"}]}"#;
        assert_eq!(key(&[], later, Affinity::Prefix), Some(a.clone()));
        let other = body.replace("be brief", "be long");
        assert_ne!(key(&[], &other, Affinity::Prefix), Some(a));
    }

    #[test]
    fn long_identities_are_kept_as_a_hash() {
        let long = "x".repeat(5000);
        let k = key(&[("x-session-id", &long)], "{}", Affinity::Client).unwrap();
        assert!(
            k.value.len() <= keyway_core::session::MAX_KEY_CHARS,
            "{}",
            k.value
        );
    }

    #[test]
    fn foreign_reasoning_is_dropped_and_own_kept() {
        let owners = Owners::default();
        owners.insert("enc-a", &Arc::from("a"));
        owners.insert("enc-b", &Arc::from("b"));
        let body = br#"{"model":"m","input":[{"type":"message","role":"user","content":"hi"},{"type":"reasoning","encrypted_content":"enc-a"},{"type":"reasoning","encrypted_content":"enc-b"},{"type":"reasoning","encrypted_content":"enc-unknown"}]}"#;
        let out = without_foreign_reasoning(body, "b", &owners).unwrap();
        let v: Value = serde_json::from_slice(&out).unwrap();
        let kept: Vec<&str> = v["input"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(|i| i["encrypted_content"].as_str())
            .collect();
        assert_eq!(kept, ["enc-b", "enc-unknown"]);
        assert!(without_foreign_reasoning(body, "a", &Owners::default()).is_none());
    }
}
