//! Sample credential files of the real CLIs, for Keyway's import tests: Claude Code's
//! `~/.claude/.credentials.json` and Codex's `~/.codex/auth.json`, holding tokens that a
//! [`super::FakeUpstream`] issued (see `issue_tokens` on its OAuth handles) so an imported
//! account really works against the fake.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use serde_json::json;

use super::oauth::{IssuedTokens, rfc3339, unix_secs};

/// Writes `<home>/.claude/.credentials.json` as Claude Code does on Linux:
/// `{"claudeAiOauth":{"accessToken","refreshToken","expiresAt":<unix ms>,"scopes":[…],
/// "subscriptionType":<subscription_type>}}`. Returns the file's path.
pub fn write_claude_credentials(
    home: &Path,
    tokens: &IssuedTokens,
    subscription_type: &str,
) -> io::Result<PathBuf> {
    let scopes: Vec<&str> = tokens.scope.split_whitespace().collect();
    let body = json!({
        "claudeAiOauth": {
            "accessToken": tokens.access_token,
            "refreshToken": tokens.refresh_token,
            "expiresAt": tokens.expires_at_ms,
            "scopes": scopes,
            "subscriptionType": subscription_type,
        },
    });
    write(&home.join(".claude").join(".credentials.json"), &body)
}

/// Writes `<home>/.codex/auth.json` as Codex CLI does after a ChatGPT login:
/// `{"OPENAI_API_KEY":null,"tokens":{"id_token","access_token","refresh_token","account_id"},
/// "last_refresh":"<RFC 3339 now>"}`. Returns the file's path. (Codex honours `CODEX_HOME`
/// too; point it at `<home>/.codex`.)
pub fn write_codex_auth(home: &Path, tokens: &IssuedTokens) -> io::Result<PathBuf> {
    let body = json!({
        "OPENAI_API_KEY": null,
        "tokens": {
            "id_token": tokens.id_token,
            "access_token": tokens.access_token,
            "refresh_token": tokens.refresh_token,
            "account_id": tokens.account_id,
        },
        "last_refresh": rfc3339(unix_secs(SystemTime::now())),
    });
    write(&home.join(".codex").join("auth.json"), &body)
}

fn write(path: &Path, body: &serde_json::Value) -> io::Result<PathBuf> {
    if let Some(dir) = path.parent() {
        fs::create_dir_all(dir)?;
    }
    let text = serde_json::to_string_pretty(body).map_err(io::Error::other)?;
    fs::write(path, text)?;
    Ok(path.to_owned())
}
