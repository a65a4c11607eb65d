//! The token endpoint: exchanging an authorization code and refreshing, for Claude (JSON
//! bodies) and ChatGPT (form-encoded exchange, JSON refresh, account id in the id token).

use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use keyway_core::snapshot::OAuthEndpoints;
use keyway_core::state::now_ms;
use keyway_core::{OAuthTokens, ProviderKind, Secret};
use serde::Deserialize;
use serde_json::{Value, json};

/// How long one token call may take.
const TOKEN_TIMEOUT: Duration = Duration::from_secs(30);

/// Why tokens could not be had.
#[derive(Debug, Clone, thiserror::Error)]
pub enum TokenError {
    /// The grant is dead (revoked, reused, expired): only a new login helps.
    #[error("{0}")]
    Revoked(String),
    /// The endpoint could not be reached or failed; trying again later may work.
    #[error("{0}")]
    Transient(String),
}

#[derive(Deserialize)]
struct TokenResponse {
    access_token: String,
    refresh_token: Option<String>,
    expires_in: Option<u64>,
    id_token: Option<String>,
}

/// Exchange an authorization code (with its PKCE verifier) for tokens.
pub async fn exchange_code(
    http: &reqwest::Client,
    kind: ProviderKind,
    endpoints: &OAuthEndpoints,
    code: &str,
    verifier: &str,
    redirect_uri: &str,
    state: &str,
) -> Result<OAuthTokens, TokenError> {
    let request = http.post(&endpoints.token_url).timeout(TOKEN_TIMEOUT);
    let request = match kind {
        ProviderKind::Anthropic => request.json(&json!({
            "grant_type": "authorization_code",
            "code": code,
            "redirect_uri": redirect_uri,
            "client_id": endpoints.client_id,
            "code_verifier": verifier,
            "state": state,
        })),
        _ => request.form(&[
            ("grant_type", "authorization_code"),
            ("code", code),
            ("redirect_uri", redirect_uri),
            ("client_id", endpoints.client_id),
            ("code_verifier", verifier),
        ]),
    };
    tokens(call(request).await?, None)
}

/// Trade the refresh token for new tokens. Refresh tokens rotate: the old one is dead after
/// this succeeds, so the caller must store the new one before anything else.
pub async fn refresh(
    http: &reqwest::Client,
    endpoints: &OAuthEndpoints,
    old: &OAuthTokens,
) -> Result<OAuthTokens, TokenError> {
    let body = json!({
        "grant_type": "refresh_token",
        "refresh_token": old.refresh.expose(),
        "client_id": endpoints.client_id,
    });
    let request = http
        .post(&endpoints.token_url)
        .timeout(TOKEN_TIMEOUT)
        .json(&body);
    tokens(call(request).await?, Some(old))
}

async fn call(request: reqwest::RequestBuilder) -> Result<TokenResponse, TokenError> {
    let response = request.send().await.map_err(|e| {
        TokenError::Transient(format!(
            "token endpoint unreachable ({})",
            if e.is_timeout() {
                "timed out"
            } else {
                "connection failed"
            }
        ))
    })?;
    let status = response.status();
    let body: Value = response.json().await.unwrap_or(Value::Null);
    if status.is_success() {
        return serde_json::from_value(body).map_err(|_| {
            TokenError::Transient("the token endpoint answered without tokens".into())
        });
    }
    // Claude: {"error":"invalid_grant"}; ChatGPT: {"error":{"code":"refresh_token_reused"}}.
    let code = body["error"]
        .as_str()
        .or_else(|| body["error"]["code"].as_str())
        .unwrap_or("")
        .to_owned();
    let dead = matches!(
        code.as_str(),
        "invalid_grant"
            | "refresh_token_reused"
            | "refresh_token_invalidated"
            | "refresh_token_expired"
            | "invalid_request"
    ) || status == reqwest::StatusCode::UNAUTHORIZED;
    let what = if code.is_empty() {
        status.to_string()
    } else {
        format!("{status} {code}")
    };
    if dead {
        Err(TokenError::Revoked(format!(
            "the provider no longer accepts this login ({what}); log in again"
        )))
    } else {
        Err(TokenError::Transient(format!(
            "the token endpoint failed ({what})"
        )))
    }
}

fn tokens(r: TokenResponse, old: Option<&OAuthTokens>) -> Result<OAuthTokens, TokenError> {
    let refresh = r
        .refresh_token
        .map(Secret::new)
        .or_else(|| old.map(|o| o.refresh.clone()))
        .ok_or_else(|| {
            TokenError::Transient("the token endpoint returned no refresh token".into())
        })?;
    let now = now_ms();
    let expires_at_ms = match r.expires_in {
        Some(secs) => now.saturating_add(secs.saturating_mul(1000)),
        None => jwt_claims(&r.access_token)
            .and_then(|c| c["exp"].as_u64())
            .map_or(now.saturating_add(3_600_000), |exp| {
                exp.saturating_mul(1000)
            }),
    };
    let expires_at_ms = bounded_expiry(expires_at_ms, now);
    let account_id = r
        .id_token
        .as_deref()
        .and_then(chatgpt_account_id)
        .or_else(|| chatgpt_account_id(&r.access_token))
        .or_else(|| old.and_then(|o| o.account_id.clone()));
    Ok(OAuthTokens {
        access: Secret::new(r.access_token),
        refresh,
        expires_at_ms,
        account_id,
    })
}

/// Longest a token is believed to live: a bogus `expires_in` or `exp` (`u64::MAX`) must not
/// keep a dead token in use for ever. Refreshing early costs one token call.
const MAX_TOKEN_LIFETIME_MS: u64 = 30 * 24 * 3600 * 1000;

/// An expiry an endpoint reported (ms since the epoch), at most [`MAX_TOKEN_LIFETIME_MS`]
/// from `now`.
pub fn bounded_expiry(at_ms: u64, now: u64) -> u64 {
    at_ms.min(now.saturating_add(MAX_TOKEN_LIFETIME_MS))
}

/// The payload of a JWT, unverified: we only read our own login's claims from the provider
/// that issued them over TLS.
pub fn jwt_claims(token: &str) -> Option<Value> {
    let payload = token.split('.').nth(1)?;
    let bytes = URL_SAFE_NO_PAD.decode(payload.trim_end_matches('=')).ok()?;
    serde_json::from_slice(&bytes).ok()
}

/// The ChatGPT account id claim of an OpenAI id or access token.
pub fn chatgpt_account_id(token: &str) -> Option<String> {
    jwt_claims(token)?["https://api.openai.com/auth"]["chatgpt_account_id"]
        .as_str()
        .map(str::to_owned)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn response(expires_in: Option<u64>, access: &str) -> TokenResponse {
        TokenResponse {
            access_token: access.to_owned(),
            refresh_token: Some("r".to_owned()),
            expires_in,
            id_token: None,
        }
    }

    #[test]
    fn absurd_lifetimes_are_bounded() {
        let before = now_ms();
        let t = tokens(response(Some(u64::MAX), "a"), None).unwrap();
        assert!(t.expires_at_ms <= now_ms() + MAX_TOKEN_LIFETIME_MS);
        assert!(t.expires_at_ms >= before + MAX_TOKEN_LIFETIME_MS);
        // A JWT whose `exp` is u64::MAX: {"exp":18446744073709551615}
        let payload = URL_SAFE_NO_PAD.encode(format!(r#"{{"exp":{}}}"#, u64::MAX));
        let t = tokens(response(None, &format!("h.{payload}.s")), None).unwrap();
        assert!(t.expires_at_ms <= now_ms() + MAX_TOKEN_LIFETIME_MS);
        let t = tokens(response(Some(3600), "a"), None).unwrap();
        assert!(t.expires_at_ms >= before + 3_600_000);
    }
}
