//! Provider adapters: turn the client's request into the upstream's, and the upstream's
//! response headers into the client's. The body is never touched; only auth and hop-by-hop
//! headers change.

use http::header::{self, HeaderMap, HeaderName, HeaderValue};
use keyway_core::provider::AuthHeader;
use keyway_core::snapshot::ProviderRoute;
use keyway_core::{ProviderKind, Secret};

/// Headers that describe one connection, not the message (RFC 9110 §7.6.1), plus the ones we
/// recompute.
const HOP_BY_HOP: [HeaderName; 8] = [
    header::CONNECTION,
    header::PROXY_AUTHENTICATE,
    header::PROXY_AUTHORIZATION,
    header::TE,
    header::TRAILER,
    header::TRANSFER_ENCODING,
    header::UPGRADE,
    HeaderName::from_static("keep-alive"),
];

/// Client headers that carry the client's key to Keyway; never forwarded.
pub const CLIENT_AUTH: [HeaderName; 3] = [
    header::AUTHORIZATION,
    HeaderName::from_static("x-api-key"),
    HeaderName::from_static("x-goog-api-key"),
];

/// The upstream URL for a client request to `path` (with `query`, already stripped of any
/// client key).
pub fn upstream_url(provider: &ProviderRoute, path: &str, query: Option<&str>) -> String {
    // A user-defined provider's base URL already ends where its docs put `/v1`.
    let path = match provider.kind {
        ProviderKind::OpenAiCompatible => path.strip_prefix("/v1").unwrap_or(path),
        _ => path,
    };
    let mut url = String::with_capacity(provider.base_url.len() + path.len() + 32);
    url.push_str(&provider.base_url);
    url.push_str(path);
    if let Some(q) = query.filter(|q| !q.is_empty()) {
        url.push('?');
        url.push_str(q);
    }
    url
}

/// The query without `key=` (Gemini clients may send their key there).
pub fn strip_key_param(query: &str) -> String {
    query
        .split('&')
        .filter(|kv| !kv.starts_with("key=") && !kv.is_empty())
        .collect::<Vec<_>>()
        .join("&")
}

/// The client's headers minus connection-level and auth headers, plus the account's auth.
pub fn upstream_headers(
    client: &HeaderMap,
    kind: ProviderKind,
    secret: &Secret,
) -> Result<HeaderMap, String> {
    let mut out = HeaderMap::with_capacity(client.len() + 1);
    for (name, value) in client {
        if HOP_BY_HOP.contains(name)
            || CLIENT_AUTH.contains(name)
            || name == header::HOST
            || name == header::CONTENT_LENGTH
            || name == header::ORIGIN
        {
            continue;
        }
        out.append(name.clone(), value.clone());
    }
    let invalid = || {
        "the account's secret contains characters that cannot go in an HTTP header; replace it"
            .to_owned()
    };
    match kind.auth_header() {
        AuthHeader::XApiKey => {
            let mut v = HeaderValue::from_str(secret.expose()).map_err(|_| invalid())?;
            v.set_sensitive(true);
            out.insert(HeaderName::from_static("x-api-key"), v);
        }
        AuthHeader::Bearer => {
            let mut v = HeaderValue::from_str(&format!("Bearer {}", secret.expose()))
                .map_err(|_| invalid())?;
            v.set_sensitive(true);
            out.insert(header::AUTHORIZATION, v);
        }
        AuthHeader::XGoogApiKey => {
            let mut v = HeaderValue::from_str(secret.expose()).map_err(|_| invalid())?;
            v.set_sensitive(true);
            out.insert(HeaderName::from_static("x-goog-api-key"), v);
        }
    }
    Ok(out)
}

/// The upstream's response headers minus connection-level ones.
pub fn client_headers(upstream: &HeaderMap) -> HeaderMap {
    let mut out = HeaderMap::with_capacity(upstream.len());
    for (name, value) in upstream {
        if !HOP_BY_HOP.contains(name) {
            out.append(name.clone(), value.clone());
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strips_client_auth_and_adds_the_accounts() {
        let mut client = HeaderMap::new();
        client.insert(
            header::AUTHORIZATION,
            HeaderValue::from_static("Bearer kw-client"),
        );
        client.insert("x-api-key", HeaderValue::from_static("kw-client"));
        client.insert("anthropic-beta", HeaderValue::from_static("tools-2024"));
        client.insert(header::CONNECTION, HeaderValue::from_static("keep-alive"));
        let out =
            upstream_headers(&client, ProviderKind::Anthropic, &Secret::new("sk-ant-1")).unwrap();
        assert_eq!(out.get("x-api-key").unwrap(), "sk-ant-1");
        assert!(out.get(header::AUTHORIZATION).is_none());
        assert!(out.get(header::CONNECTION).is_none());
        assert_eq!(out.get("anthropic-beta").unwrap(), "tools-2024");

        let out = upstream_headers(&client, ProviderKind::OpenAi, &Secret::new("sk-oa")).unwrap();
        assert_eq!(out.get(header::AUTHORIZATION).unwrap(), "Bearer sk-oa");
        assert!(out.get("x-api-key").is_none());
    }

    #[test]
    fn key_query_param_is_dropped() {
        assert_eq!(strip_key_param("alt=sse&key=kw-abc"), "alt=sse");
        assert_eq!(strip_key_param("key=kw-abc"), "");
    }
}
