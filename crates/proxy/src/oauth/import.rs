//! Importing logins that Claude Code and Codex CLI already hold, from the files where they
//! keep them (and, on macOS, Claude Code's Keychain item).

use std::io::Read;
use std::path::{Path, PathBuf};

use keyway_core::state::now_ms;
use keyway_core::{OAuthTokens, ProviderKind, Secret};
use serde_json::Value;

use super::token::{bounded_expiry, chatgpt_account_id, jwt_claims};

/// The largest credentials file read: the CLIs' own are a few KB.
const MAX_FILE_BYTES: u64 = 1024 * 1024;

/// Why a login could not be imported.
#[derive(Debug, thiserror::Error)]
pub enum ImportError {
    #[error("cannot import from `{0}`; use claude-code or codex-cli")]
    UnknownSource(String),
    #[error("no login found at {}; log in with the CLI first, or pass --from <file>", .0.display())]
    NotFound(PathBuf),
    #[error("{} is not a regular file; pass the CLI's credentials file", .0.display())]
    NotAFile(PathBuf),
    #[error("{} is larger than {MAX_FILE_BYTES} bytes: not a credentials file", .0.display())]
    TooLarge(PathBuf),
    #[error("cannot read {}: {source}", .path.display())]
    Unreadable {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{} is not JSON: {source}", .path.display())]
    NotJson {
        path: PathBuf,
        source: serde_json::Error,
    },
    #[error("{} holds no {provider} login", .path.display())]
    NoLogin {
        path: PathBuf,
        provider: &'static str,
    },
}

/// A CLI whose login can be imported.
#[cfg_attr(test, derive(ts_rs::TS))]
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Source {
    ClaudeCode,
    CodexCli,
}

impl Source {
    pub fn parse(s: &str) -> Result<Source, ImportError> {
        match s {
            "claude-code" => Ok(Source::ClaudeCode),
            "codex-cli" => Ok(Source::CodexCli),
            _ => Err(ImportError::UnknownSource(s.to_owned())),
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

/// Read the login from `path` (or the CLI's default place under `home`). Only a regular file
/// of at most [`MAX_FILE_BYTES`] is read: a path to a device or a pipe is refused, not waited on.
pub fn read(source: Source, given: Option<&Path>, home: &Path) -> Result<OAuthTokens, ImportError> {
    let path = given
        .map(Path::to_path_buf)
        .unwrap_or_else(|| source.default_path(home));
    let unreadable = |source| ImportError::Unreadable {
        path: path.clone(),
        source,
    };
    let metadata = match std::fs::metadata(&path) {
        Ok(m) => m,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound && given.is_none() => {
            return keychain(source).ok_or(ImportError::NotFound(path));
        }
        Err(e) => return Err(unreadable(e)),
    };
    if !metadata.is_file() {
        return Err(ImportError::NotAFile(path));
    }
    if metadata.len() > MAX_FILE_BYTES {
        return Err(ImportError::TooLarge(path));
    }
    let mut text = String::new();
    std::fs::File::open(&path)
        .and_then(|f| f.take(MAX_FILE_BYTES).read_to_string(&mut text))
        .map_err(unreadable)?;
    let v: Value = serde_json::from_str(&text).map_err(|source| ImportError::NotJson {
        path: path.clone(),
        source,
    })?;
    parse(source, &v).ok_or(ImportError::NoLogin {
        path,
        provider: source.provider(),
    })
}

fn parse(source: Source, v: &Value) -> Option<OAuthTokens> {
    match source {
        Source::ClaudeCode => {
            let o = v.get("claudeAiOauth")?;
            Some(OAuthTokens {
                access: Secret::new(o.get("accessToken")?.as_str()?),
                refresh: Secret::new(o.get("refreshToken")?.as_str()?),
                expires_at_ms: bounded_expiry(o.get("expiresAt")?.as_u64()?, now_ms()),
                account_id: None,
            })
        }
        Source::CodexCli => {
            let t = v.get("tokens")?;
            let access = t.get("access_token")?.as_str()?;
            let expires_at_ms = jwt_claims(access)
                .and_then(|c| c["exp"].as_u64())
                .map_or(0, |exp| bounded_expiry(exp.saturating_mul(1000), now_ms()));
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
