//! Importing logins that Claude Code and Codex CLI already hold, from the files where they
//! keep them (and, on macOS, Claude Code's Keychain item).

use std::path::{Path, PathBuf};

use keyway_core::{OAuthTokens, ProviderKind, Secret};
use serde_json::Value;

use super::token::{chatgpt_account_id, jwt_claims};

/// A CLI whose login can be imported.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    ClaudeCode,
    CodexCli,
}

impl Source {
    pub fn parse(s: &str) -> Result<Source, String> {
        match s {
            "claude-code" => Ok(Source::ClaudeCode),
            "codex-cli" => Ok(Source::CodexCli),
            _ => Err(format!(
                "cannot import from `{s}`; use claude-code or codex-cli"
            )),
        }
    }

    pub fn provider(self) -> &'static str {
        match self {
            Source::ClaudeCode => keyway_core::provider::ANTHROPIC,
            Source::CodexCli => keyway_core::provider::OPENAI,
        }
    }

    pub fn kind(self) -> ProviderKind {
        match self {
            Source::ClaudeCode => ProviderKind::Anthropic,
            Source::CodexCli => ProviderKind::OpenAi,
        }
    }

    /// The label of an imported account when the user gives none.
    pub fn label(self) -> &'static str {
        match self {
            Source::ClaudeCode => "Claude Code login",
            Source::CodexCli => "Codex CLI login",
        }
    }

    /// Where the CLI keeps its login, under `home`.
    pub fn default_path(self, home: &Path) -> PathBuf {
        match self {
            Source::ClaudeCode => home.join(".claude").join(".credentials.json"),
            Source::CodexCli => home.join(".codex").join("auth.json"),
        }
    }

    /// What the user must know: the login stays shared with the CLI it came from.
    pub fn sharing_warning(self) -> &'static str {
        match self {
            Source::ClaudeCode => {
                "This login is still Claude Code's too: when one of you refreshes it, the other's \
                 refresh token stops working. Prefer `keyway account login anthropic` for an \
                 independent login."
            }
            Source::CodexCli => {
                "This login is still Codex CLI's too, and ChatGPT refresh tokens are single-use: \
                 when one of you refreshes it, the other fails with refresh_token_reused. Prefer \
                 `keyway account login openai` for an independent login."
            }
        }
    }
}

/// Read the login from `path` (or the CLI's default place under `home`).
pub fn read(source: Source, given: Option<&Path>, home: &Path) -> Result<OAuthTokens, String> {
    let path = given
        .map(Path::to_path_buf)
        .unwrap_or_else(|| source.default_path(home));
    let text = match std::fs::read_to_string(&path) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound && given.is_none() => {
            return keychain(source).ok_or_else(|| {
                format!(
                    "no login found at {}; log in with the CLI first, or pass --from <file>",
                    path.display()
                )
            });
        }
        Err(e) => return Err(format!("cannot read {}: {e}", path.display())),
    };
    let v: Value =
        serde_json::from_str(&text).map_err(|e| format!("{} is not JSON: {e}", path.display()))?;
    parse(source, &v)
        .ok_or_else(|| format!("{} holds no {} login", path.display(), source.provider()))
}

fn parse(source: Source, v: &Value) -> Option<OAuthTokens> {
    match source {
        Source::ClaudeCode => {
            let o = v.get("claudeAiOauth")?;
            Some(OAuthTokens {
                access: Secret::new(o.get("accessToken")?.as_str()?),
                refresh: Secret::new(o.get("refreshToken")?.as_str()?),
                expires_at_ms: o.get("expiresAt")?.as_u64()?,
                account_id: None,
            })
        }
        Source::CodexCli => {
            let t = v.get("tokens")?;
            let access = t.get("access_token")?.as_str()?;
            let expires_at_ms = jwt_claims(access)
                .and_then(|c| c["exp"].as_u64())
                .map_or(0, |exp| exp * 1000);
            let account_id = t
                .get("account_id")
                .and_then(Value::as_str)
                .map(str::to_owned)
                .or_else(|| {
                    t.get("id_token")
                        .and_then(Value::as_str)
                        .and_then(chatgpt_account_id)
                });
            Some(OAuthTokens {
                access: Secret::new(access),
                refresh: Secret::new(t.get("refresh_token")?.as_str()?),
                expires_at_ms,
                account_id,
            })
        }
    }
}

/// Claude Code on macOS keeps its login in the Keychain rather than in a file.
#[cfg(target_os = "macos")]
fn keychain(source: Source) -> Option<OAuthTokens> {
    if source != Source::ClaudeCode {
        return None;
    }
    let user = std::env::var("USER").ok()?;
    let text = keyring::Entry::new("Claude Code-credentials", &user)
        .ok()?
        .get_password()
        .ok()?;
    parse(source, &serde_json::from_str(&text).ok()?)
}

#[cfg(not(target_os = "macos"))]
fn keychain(_source: Source) -> Option<OAuthTokens> {
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn reads_both_clis_formats() {
        let claude =
            json!({"claudeAiOauth": {"accessToken": "a", "refreshToken": "r", "expiresAt": 5}});
        let t = parse(Source::ClaudeCode, &claude).unwrap();
        assert_eq!(
            (t.access.expose(), t.refresh.expose(), t.expires_at_ms),
            ("a", "r", 5)
        );
        let codex = json!({"tokens": {"access_token": "x.eyJleHAiOjEwfQ.s", "refresh_token": "r2", "account_id": "acc"}});
        let t = parse(Source::CodexCli, &codex).unwrap();
        assert_eq!(
            (t.expires_at_ms, t.account_id.as_deref()),
            (10_000, Some("acc"))
        );
        assert!(parse(Source::CodexCli, &claude).is_none());
    }
}
