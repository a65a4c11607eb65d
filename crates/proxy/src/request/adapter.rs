//! Provider adapters: turn the client's request into the upstream's, and the upstream's
//! response headers into the client's. The body is never touched; only auth and hop-by-hop
//! headers change.

use http::Uri;
use http::header::{self, HeaderMap, HeaderName, HeaderValue};
use http::uri::PathAndQuery;
use keyway_core::provider::ANTHROPIC_OAUTH_BETA;
use keyway_core::provider::{AuthHeader, Format};
use keyway_core::snapshot::{ProviderRoute, parse_uri};
use keyway_core::{Credential, ProviderKind};
use url::Url;

/// Headers that describe one connection, not the message (RFC 9110 §7.6.1), plus the ones we
/// recompute. Public for the benchmark's floor proxy, which drops the same ones.
pub const HOP_BY_HOP: [HeaderName; 9] = [
    header::CONNECTION,
    header::PROXY_AUTHENTICATE,
    header::PROXY_AUTHORIZATION,
    header::TE,
    header::TRAILER,
    header::TRANSFER_ENCODING,
    header::UPGRADE,
    HeaderName::from_static("keep-alive"),
    HeaderName::from_static("proxy-connection"),
];

/// Client headers that carry the client's key to Keyway; never forwarded.
pub const CLIENT_AUTH: [HeaderName; 3] = [
    header::AUTHORIZATION,
    HeaderName::from_static("x-api-key"),
    HeaderName::from_static("x-goog-api-key"),
];

/// Where a request goes and with which headers.
pub struct Upstream {
    pub uri: Uri,
    pub headers: HeaderMap,
}

/// Path of ChatGPT's Codex Responses endpoint under the subscription backend.
pub const CODEX_RESPONSES_PATH: &str = "/backend-api/codex/responses";

/// The upstream request for a client request to `path` (`query` already stripped of any
/// client key), sent with `credential`.
pub fn upstream(
    provider: &ProviderRoute,
    path: &str,
    query: Option<&str>,
    client: &HeaderMap,
    credential: &Credential,
) -> Result<Upstream, String> {
    let mut headers = forwarded_headers(client);
    let url = match credential {
        Credential::ApiKey(key) => {
            let value = match provider.auth {
                AuthHeader::Bearer => format!("Bearer {}", key.expose()),
                AuthHeader::XApiKey | AuthHeader::XGoogApiKey => key.expose().to_owned(),
            };
            let name = match provider.auth {
                AuthHeader::XApiKey => HeaderName::from_static("x-api-key"),
                AuthHeader::Bearer => header::AUTHORIZATION,
                AuthHeader::XGoogApiKey => HeaderName::from_static("x-goog-api-key"),
            };
            headers.insert(name, sensitive(&value)?);
            let path = api_path(provider, path);
            base(provider).and_then(|base| under(base, path, query))
        }
        Credential::OAuth(tokens) => {
            headers.insert(
                header::AUTHORIZATION,
                sensitive(&format!("Bearer {}", tokens.access.expose()))?,
            );
            match provider.kind {
                ProviderKind::Anthropic => {
                    merge_beta(&mut headers);
                    base(provider).and_then(|base| under(base, path, query))
                }
                ProviderKind::OpenAi => {
                    let account = tokens
                        .account_id
                        .as_deref()
                        .ok_or("this ChatGPT login has no account id; log in again")?;
                    headers.insert(
                        HeaderName::from_static("chatgpt-account-id"),
                        HeaderValue::from_str(account).map_err(|_| "invalid ChatGPT account id")?,
                    );
                    let backend = provider
                        .oauth
                        .as_ref()
                        .and_then(|o| o.backend_url.as_deref())
                        .ok_or("openai has no subscription backend configured")?;
                    parse_uri(&join(backend, CODEX_RESPONSES_PATH, query)).ok_or_else(|| {
                        "the subscription backend's URL is not valid; correct it in the config"
                            .to_owned()
                    })
                }
                _ => return Err(format!("{} has no subscription logins", provider.id)),
            }
        }
    };
    Ok(Upstream { uri: url?, headers })
}

/// The path under a provider's base URL. A custom provider's base URL is the one its docs
/// give its format's SDKs: an OpenAI SDK's already ends in `/v1` (the client's `/v1/chat/…`
/// loses that prefix), an Anthropic or Gemini SDK's does not (`/v1/messages` and
/// `/v1beta/models/…` are appended whole).
fn api_path<'a>(provider: &ProviderRoute, path: &'a str) -> &'a str {
    match (provider.kind, provider.format) {
        (ProviderKind::Custom, Format::OpenAi) => path.strip_prefix("/v1").unwrap_or(path),
        _ => path,
    }
}

/// `path` and `query` under `base` (parsed once): the URI of [`join`]'s text, with only the
/// path and query checked on each request. A path with characters a URI may not hold as
/// they are (a model name with a space, in a translated Gemini path) is percent-encoded as
/// the URL parser does.
fn under(base: &Uri, path: &str, query: Option<&str>) -> Result<Uri, String> {
    // A base without a path reads as `/`; its own path (an OpenAI-compatible `/v1`) stays.
    let prefix = base.path().trim_end_matches('/');
    let query = query.filter(|q| !q.is_empty());
    let mut text = String::with_capacity(prefix.len() + path.len() + query.map_or(0, str::len) + 1);
    text.push_str(prefix);
    text.push_str(path);
    if let Some(q) = query {
        text.push('?');
        text.push_str(q);
    }
    let mut parts = http::uri::Parts::default();
    parts.scheme = base.scheme().cloned();
    parts.authority = base.authority().cloned();
    parts.path_and_query = Some(match PathAndQuery::try_from(text) {
        Ok(pq) => pq,
        Err(_) => {
            let mut url = Url::parse("http://x").map_err(|e| e.to_string())?;
            url.set_path(&format!("{prefix}{path}"));
            url.set_query(query);
            PathAndQuery::try_from(&url[url::Position::BeforePath..])
                .map_err(|_| "the request's path cannot be sent upstream".to_owned())?
        }
    });
    Uri::from_parts(parts).map_err(|_| "the request's path cannot be sent upstream".to_owned())
}

/// The provider's base URL, parsed; its text is not repeated (a URL may hold credentials).
fn base(provider: &ProviderRoute) -> Result<&Uri, String> {
    provider.base.as_ref().ok_or_else(|| {
        format!(
            "the base_url of provider `{}` is not a valid URL; correct it in the config",
            provider.id
        )
    })
}

fn join(base: &str, path: &str, query: Option<&str>) -> String {
    let mut url = String::with_capacity(base.len() + path.len() + 32);
    url.push_str(base);
    url.push_str(path);
    if let Some(q) = query.filter(|q| !q.is_empty()) {
        url.push('?');
        url.push_str(q);
    }
    url
}

fn sensitive(value: &str) -> Result<HeaderValue, String> {
    let mut v = HeaderValue::from_str(value).map_err(|_| {
        "the account's secret contains characters that cannot go in an HTTP header; replace it"
            .to_owned()
    })?;
    v.set_sensitive(true);
    Ok(v)
}

/// Anthropic requires its OAuth beta flag on token-authenticated requests; the client's own
/// flags stay.
fn merge_beta(headers: &mut HeaderMap) {
    let beta = HeaderName::from_static("anthropic-beta");
    // Repeated header lines are one comma-separated list (RFC 9110 §5.3).
    let mut flags: Vec<&str> = headers
        .get_all(&beta)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(str::trim)
        .filter(|f| !f.is_empty())
        .collect();
    if !flags.contains(&ANTHROPIC_OAUTH_BETA) {
        flags.push(ANTHROPIC_OAUTH_BETA);
    }
    if let Ok(v) = HeaderValue::from_str(&flags.join(",")) {
        headers.insert(beta, v);
    }
}

/// The query without `key=` (Gemini clients may send their key there).
pub fn strip_key_param(query: &str) -> String {
    query
        .split('&')
        .filter(|kv| !kv.starts_with("key=") && !kv.is_empty())
        .collect::<Vec<_>>()
        .join("&")
}

/// The client's headers minus connection-level and auth headers. Connection-level includes
/// the headers the client's `Connection` header names (RFC 9110 §7.6.1).
fn forwarded_headers(client: &HeaderMap) -> HeaderMap {
    let mut out = HeaderMap::with_capacity(client.len() + 2);
    let named_by_connection = |name: &HeaderName| {
        client
            .get_all(header::CONNECTION)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .any(|option| option.trim().eq_ignore_ascii_case(name.as_str()))
    };
    for (name, value) in client {
        if HOP_BY_HOP.contains(name)
            || CLIENT_AUTH.contains(name)
            || name == header::HOST
            || name == header::CONTENT_LENGTH
            || name == header::ORIGIN
            || named_by_connection(name)
        {
            continue;
        }
        out.append(name.clone(), value.clone());
    }
    out
}

/// An upstream answer's headers made the client's, in place (no copy): the connection-level
/// ones go.
pub fn to_client(headers: &mut HeaderMap) {
    for name in &HOP_BY_HOP {
        headers.remove(name);
    }
}

/// The headers of an upstream answer whose body Keyway read (an error body, perhaps cut
/// short) and sends itself: [`to_client`], and without the upstream's `content-length`,
/// which describes the upstream's body, not the one sent. The server frames what is sent.
pub fn to_client_resent(headers: &mut HeaderMap) {
    to_client(headers);
    headers.remove(header::CONTENT_LENGTH);
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The base parsed once and the path set on it is the URI the whole text parses to.
    #[test]
    fn a_url_under_its_parsed_base_is_the_joined_text_parsed() {
        let bases = [
            "https://api.anthropic.com",
            "http://127.0.0.1:9",
            "https://openrouter.ai/api/v1",
            "https://example.com/proxy",
        ];
        let paths = [
            ("/v1/messages", None),
            ("/chat/completions", Some("")),
            (
                "/v1beta/models/gemini-2.5-pro:streamGenerateContent",
                Some("alt=sse"),
            ),
            ("/v1/a b/%41/ü", Some("x=1 2&y=ä")),
            ("//elsewhere.example/x", None),
        ];
        for base in bases {
            let parsed = parse_uri(base).unwrap();
            for (path, query) in paths {
                let joined = parse_uri(&join(base, path, query)).unwrap();
                assert_eq!(
                    under(&parsed, path, query).unwrap(),
                    joined,
                    "{base} {path} {query:?}"
                );
            }
        }
    }
    use keyway_core::config::Config;
    use keyway_core::{OAuthTokens, Secret, Snapshot, StateRegistry};
    use std::sync::Arc;

    fn snapshot() -> Snapshot {
        let config = Config::parse("", None).unwrap();
        Snapshot::build(Arc::new(config), &StateRegistry::default(), None)
    }

    fn client() -> HeaderMap {
        let mut client = HeaderMap::new();
        client.insert(
            header::AUTHORIZATION,
            HeaderValue::from_static("Bearer kw-client"),
        );
        client.insert("x-api-key", HeaderValue::from_static("kw-client"));
        client.insert("anthropic-beta", HeaderValue::from_static("tools-2024"));
        client.insert(header::CONNECTION, HeaderValue::from_static("keep-alive"));
        client
    }

    #[test]
    fn api_keys_replace_the_clients_auth() {
        let s = snapshot();
        let key = |k: &str| Credential::ApiKey(Secret::new(k));
        let up = upstream(
            s.provider("anthropic").unwrap(),
            "/v1/messages",
            None,
            &client(),
            &key("sk-ant-1"),
        )
        .unwrap();
        assert_eq!(up.uri.to_string(), "https://api.anthropic.com/v1/messages");
        assert_eq!(up.headers.get("x-api-key").unwrap(), "sk-ant-1");
        assert!(up.headers.get(header::AUTHORIZATION).is_none());
        assert!(up.headers.get(header::CONNECTION).is_none());
        assert_eq!(up.headers.get("anthropic-beta").unwrap(), "tools-2024");

        let up = upstream(
            s.provider("openai").unwrap(),
            "/v1/chat/completions",
            None,
            &client(),
            &key("sk-oa"),
        )
        .unwrap();
        assert_eq!(
            up.headers.get(header::AUTHORIZATION).unwrap(),
            "Bearer sk-oa"
        );
        assert!(up.headers.get("x-api-key").is_none());
    }

    #[test]
    fn logins_use_bearer_tokens_and_their_endpoints() {
        let s = snapshot();
        let login = Credential::OAuth(OAuthTokens {
            access: Secret::new("tok"),
            refresh: Secret::new("ref"),
            expires_at_ms: 0,
            account_id: Some("acct-1".into()),
        });
        let up = upstream(
            s.provider("anthropic").unwrap(),
            "/v1/messages",
            None,
            &client(),
            &login,
        )
        .unwrap();
        assert_eq!(up.headers.get(header::AUTHORIZATION).unwrap(), "Bearer tok");
        assert_eq!(
            up.headers.get("anthropic-beta").unwrap(),
            "tools-2024,oauth-2025-04-20"
        );
        assert!(up.headers.get("x-api-key").is_none());

        let up = upstream(
            s.provider("openai").unwrap(),
            "/v1/responses",
            None,
            &client(),
            &login,
        )
        .unwrap();
        assert_eq!(
            up.uri.to_string(),
            "https://chatgpt.com/backend-api/codex/responses"
        );
        assert_eq!(up.headers.get("chatgpt-account-id").unwrap(), "acct-1");
    }

    #[test]
    fn key_query_param_is_dropped() {
        assert_eq!(strip_key_param("alt=sse&key=kw-abc"), "alt=sse");
        assert_eq!(strip_key_param("key=kw-abc"), "");
    }
}
