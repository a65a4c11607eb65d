//! What an account authenticates with: an API key, or OAuth tokens from a subscription login.
//! Stored in the keyring as one entry per account: the key itself, or a small JSON document
//! for tokens (so that access and rotated refresh token are replaced together).

use serde::{Deserialize, Serialize};

use crate::account::AccountKind;
use crate::secrets::Secret;

pub enum Credential {
    ApiKey(Secret),
    OAuth(OAuthTokens),
}

#[derive(Clone)]
pub struct OAuthTokens {
    pub access: Secret,
    pub refresh: Secret,
    /// When the access token expires, ms since the epoch.
    pub expires_at_ms: u64,
    /// The ChatGPT account id, sent as `chatgpt-account-id` (OpenAI logins only).
    pub account_id: Option<String>,
}

/// The keyring form of [`OAuthTokens`].
#[derive(Serialize, Deserialize)]
struct StoredTokens {
    access_token: String,
    refresh_token: String,
    expires_at_ms: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    account_id: Option<String>,
}

impl Credential {
    pub fn kind(&self) -> AccountKind {
        match self {
            Credential::ApiKey(_) => AccountKind::ApiKey,
            Credential::OAuth(_) => AccountKind::OAuth,
        }
    }

    /// The value to keep in the keyring.
    pub fn encode(&self) -> Secret {
        match self {
            Credential::ApiKey(key) => key.clone(),
            Credential::OAuth(t) => Secret::new(
                serde_json::to_string(&StoredTokens {
                    access_token: t.access.expose().to_owned(),
                    refresh_token: t.refresh.expose().to_owned(),
                    expires_at_ms: t.expires_at_ms,
                    account_id: t.account_id.clone(),
                })
                .unwrap_or_default(),
            ),
        }
    }

    /// Read a keyring value for an account of `kind`. The error never quotes the value.
    pub fn decode(kind: AccountKind, stored: Secret) -> Result<Credential, String> {
        match kind {
            AccountKind::ApiKey => Ok(Credential::ApiKey(stored)),
            AccountKind::OAuth => {
                let t: StoredTokens = serde_json::from_str(stored.expose()).map_err(|_| {
                    "the keyring entry of this login is not valid token JSON; log in again"
                        .to_owned()
                })?;
                Ok(Credential::OAuth(OAuthTokens {
                    access: Secret::new(t.access_token),
                    refresh: Secret::new(t.refresh_token),
                    expires_at_ms: t.expires_at_ms,
                    account_id: t.account_id,
                }))
            }
        }
    }

    /// The OAuth tokens, if this is a login.
    pub fn oauth(&self) -> Option<&OAuthTokens> {
        match self {
            Credential::OAuth(t) => Some(t),
            Credential::ApiKey(_) => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_round_trip_through_the_keyring_form() {
        let c = Credential::OAuth(OAuthTokens {
            access: Secret::new("sk-ant-oat-1"),
            refresh: Secret::new("sk-ant-ort-1"),
            expires_at_ms: 42,
            account_id: Some("acc".into()),
        });
        let back = Credential::decode(AccountKind::OAuth, c.encode()).unwrap();
        let t = back.oauth().unwrap();
        assert_eq!(t.refresh.expose(), "sk-ant-ort-1");
        assert_eq!(
            (t.expires_at_ms, t.account_id.as_deref()),
            (42, Some("acc"))
        );
        assert!(Credential::decode(AccountKind::OAuth, Secret::new("sk-plain")).is_err());
    }
}
