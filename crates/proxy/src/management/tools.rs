//! Pointing a coding tool at Keyway by writing its own config file, and undoing it.
//!
//! Only the few settings Keyway needs are changed; everything else in the file (other keys,
//! their order, comments where the format has them) stays. Before the first write the original
//! bytes, or the fact that there was no file, are kept in Keyway's backups folder, so that
//! disconnecting puts back exactly what was there. Tools that Keyway cannot write for get
//! snippets to copy instead.
//!
//! These functions do plain file I/O and keep no lock: the caller runs one connect or
//! disconnect at a time.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use keyway_core::edit::{write_atomic, write_atomic_private};
use serde::Serialize;
use serde_json::{Map, Value, json};
use similar::{ChangeTag, TextDiff};
use toml_edit::{DocumentMut, Item, Table, TableLike};

/// A coding tool Keyway knows how to connect.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tool {
    ClaudeCode,
    CodexCli,
    GeminiCli,
    Cline,
    Continue,
    Zed,
    Aider,
    Opencode,
    Cursor,
}

impl Tool {
    /// The tools whose own config file Keyway writes (and whose settings the tray copies).
    pub const WRITABLE: [Tool; 3] = [Tool::ClaudeCode, Tool::CodexCli, Tool::GeminiCli];

    pub const ALL: [Tool; 9] = [
        Tool::ClaudeCode,
        Tool::CodexCli,
        Tool::GeminiCli,
        Tool::Cline,
        Tool::Continue,
        Tool::Zed,
        Tool::Aider,
        Tool::Opencode,
        Tool::Cursor,
    ];

    /// The stable id used in URLs and backup folder names.
    pub fn id(self) -> &'static str {
        match self {
            Tool::ClaudeCode => "claude-code",
            Tool::CodexCli => "codex-cli",
            Tool::GeminiCli => "gemini-cli",
            Tool::Cline => "cline",
            Tool::Continue => "continue",
            Tool::Zed => "zed",
            Tool::Aider => "aider",
            Tool::Opencode => "opencode",
            Tool::Cursor => "cursor",
        }
    }

    pub fn parse(id: &str) -> Option<Tool> {
        Tool::ALL.into_iter().find(|tool| tool.id() == id)
    }

    pub fn name(self) -> &'static str {
        match self {
            Tool::ClaudeCode => "Claude Code",
            Tool::CodexCli => "Codex CLI",
            Tool::GeminiCli => "Gemini CLI",
            Tool::Cline => "Cline / Roo Code",
            Tool::Continue => "Continue",
            Tool::Zed => "Zed",
            Tool::Aider => "Aider",
            Tool::Opencode => "opencode",
            Tool::Cursor => "Cursor",
        }
    }

    /// The Keyway surface the tool calls.
    pub fn surface(self) -> &'static str {
        match self {
            Tool::ClaudeCode => "anthropic_messages",
            Tool::CodexCli => "openai_responses",
            Tool::GeminiCli => "gemini",
            Tool::Cline
            | Tool::Continue
            | Tool::Zed
            | Tool::Aider
            | Tool::Opencode
            | Tool::Cursor => "openai_chat",
        }
    }

    /// The file Keyway can write for this tool, under `home`; None for tools the user
    /// configures by hand.
    pub fn file(self, home: &Path) -> Option<PathBuf> {
        match self {
            Tool::ClaudeCode => Some(home.join(".claude").join("settings.json")),
            Tool::CodexCli => Some(home.join(".codex").join("config.toml")),
            Tool::GeminiCli => Some(home.join(".gemini").join(".env")),
            Tool::Cline
            | Tool::Continue
            | Tool::Zed
            | Tool::Aider
            | Tool::Opencode
            | Tool::Cursor => None,
        }
    }

    /// Whether the file Keyway writes for this tool holds the client key (Codex reads it
    /// from the environment instead).
    pub fn holds_key(self) -> bool {
        matches!(self, Tool::ClaudeCode | Tool::GeminiCli)
    }

    /// What the user must know beyond the file or the snippets.
    pub fn note(self) -> Option<&'static str> {
        match self {
            Tool::CodexCli => Some(
                "Codex reads the key from the KEYWAY_API_KEY environment variable, which Keyway \
                 does not write: export it in your shell profile (see the snippet).",
            ),
            Tool::GeminiCli => Some(
                "Gemini CLI uses these only with the \"Use Gemini API key\" sign-in (/auth) and \
                 in trusted folders. A .env in the project folder or its parents is read instead \
                 of ~/.gemini/.env, and variables already set in your shell win over both.",
            ),
            Tool::Cursor => Some(
                "Cursor sends its model requests from Cursor's servers, which cannot reach a \
                 proxy on your machine, so Cursor cannot use Keyway.",
            ),
            Tool::ClaudeCode
            | Tool::Cline
            | Tool::Continue
            | Tool::Zed
            | Tool::Aider
            | Tool::Opencode => None,
        }
    }
}

/// Where a tool should send its requests, and the key it should send.
pub struct Endpoint<'a> {
    /// Keyway's address without a path, e.g. `http://127.0.0.1:8787`.
    pub base: &'a str,
    /// The client key.
    pub key: &'a str,
}

impl Endpoint<'_> {
    /// The address without a trailing slash, so paths can be appended.
    fn root(&self) -> &str {
        self.base.trim_end_matches('/')
    }

    /// The OpenAI-compatible base URL.
    fn v1(&self) -> String {
        format!("{}/v1", self.root())
    }
}

/// Text for the user to copy into a tool's settings.
#[cfg_attr(test, derive(ts_rs::TS))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Snippet {
    pub title: String,
    pub text: String,
}

/// What connecting would change.
#[cfg_attr(test, derive(ts_rs::TS))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Plan {
    pub file: PathBuf,
    pub exists: bool,
    pub before: String,
    pub after: String,
    /// The unified diff from `before` to `after`, line by line.
    pub diff: Vec<DiffLine>,
}

/// One line of a unified diff, without its `-`/`+`/space prefix.
#[cfg_attr(test, derive(ts_rs::TS))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DiffLine {
    pub kind: DiffKind,
    pub text: String,
}

#[cfg_attr(test, derive(ts_rs::TS))]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum DiffKind {
    /// `--- file` or `+++ file`.
    Header,
    /// `@@ -a,b +c,d @@`.
    Hunk,
    Context,
    Removed,
    Added,
}

/// What connecting wrote.
#[cfg_attr(test, derive(ts_rs::TS))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Connected {
    /// The tool's file, now pointing at Keyway.
    pub file: PathBuf,
    /// The backup that disconnecting restores: the original bytes, or the marker saying there
    /// was no file.
    pub backup: PathBuf,
}

/// Why a tool could not be connected or disconnected.
#[derive(Debug, thiserror::Error)]
pub enum ToolError {
    /// The user configures this tool by hand: there is no file Keyway writes.
    #[error("{0} is set up by hand: copy its snippet into its settings")]
    ByHand(&'static str),
    #[error("{0} is set up by hand, not by Keyway")]
    NotWrittenByKeyway(&'static str),
    /// The tool's own file cannot be used as it is; the user fixes it.
    #[error("{shown} {problem}: fix or move it, then connect again")]
    Unusable { shown: String, problem: String },
    #[error("could not read {shown}: {source}")]
    Unreadable { shown: String, source: io::Error },
    #[error("{name} is already connected ({shown}): disconnect it first")]
    AlreadyConnected { name: &'static str, shown: String },
    #[error("{0} is not connected: there is nothing to restore")]
    NotConnected(&'static str),
    /// Keyway's own writing failed.
    #[error("{what}: {source}")]
    Io { what: String, source: io::Error },
}

/// Backup of the original file's exact bytes.
const ORIGINAL: &str = "original";
/// The original file's permission bits, in octal, restored with its bytes.
const MODE: &str = "mode";
/// Marker saying the tool had no file before Keyway wrote one.
const ABSENT: &str = "absent";

/// The environment variable Codex reads the key from; the key is not written into Codex's file.
const CODEX_KEY_VAR: &str = "KEYWAY_API_KEY";

/// How to set up `tool` by hand.
pub fn snippets(tool: Tool, ep: &Endpoint) -> Vec<Snippet> {
    let snippet = |title: &str, text: String| Snippet {
        title: title.to_owned(),
        text,
    };
    let (base, key, v1) = (ep.root(), ep.key, ep.v1());
    match tool {
        Tool::ClaudeCode => vec![
            snippet(
                "Shell",
                format!(
                    "export ANTHROPIC_BASE_URL={}\nexport ANTHROPIC_AUTH_TOKEN={}\nunset ANTHROPIC_API_KEY\n",
                    shell_word(base),
                    shell_word(key)
                ),
            ),
            snippet(
                "~/.claude/settings.json",
                claude_settings("", ep).unwrap_or_default(),
            ),
        ],
        Tool::CodexCli => vec![
            snippet(
                "~/.codex/config.toml",
                codex_config("", ep).unwrap_or_default(),
            ),
            snippet(
                "Shell profile (Codex reads the key from here)",
                format!("export {CODEX_KEY_VAR}={}\n", shell_word(key)),
            ),
        ],
        Tool::GeminiCli => vec![snippet(
            "Shell",
            format!(
                "export GOOGLE_GEMINI_BASE_URL={}\nexport GEMINI_API_KEY={}\n",
                shell_word(base),
                shell_word(key)
            ),
        )],
        Tool::Cline => vec![snippet(
            "Cline / Roo Code settings",
            format!(
                "API Provider: OpenAI Compatible\nBase URL: {v1}\nAPI Key: {key}\n\
                 Model ID: a model your accounts serve\n\n\
                 For Claude models: API Provider: Anthropic, tick \"Use custom base URL\", \
                 enter {base} and the same key.\n"
            ),
        )],
        Tool::Continue => vec![snippet(
            "~/.continue/config.yaml",
            format!(
                "models:\n  - name: Keyway\n    provider: openai\n    \
                 model: gpt-5 # a model your accounts serve\n    apiBase: {}\n    apiKey: {}\n",
                json_string(&v1),
                json_string(key)
            ),
        )],
        Tool::Zed => vec![
            snippet(
                "Zed settings.json",
                pretty(&json!({
                    "language_models": {
                        "openai_compatible": {
                            "Keyway": {
                                "api_url": v1,
                                "available_models": [
                                    { "name": "gpt-5", "max_tokens": 272000 }
                                ]
                            }
                        }
                    }
                })),
            ),
            snippet(
                "Zed API key",
                format!(
                    "Enter {key} under Agent Settings → LLM Providers → Keyway, or start Zed with \
                     KEYWAY_API_KEY={key} in its environment. List the models your accounts \
                     serve in available_models.\n"
                ),
            ),
        ],
        Tool::Aider => vec![
            snippet(
                "Shell",
                format!(
                    "export OPENAI_API_BASE={}\nexport OPENAI_API_KEY={}\n\
                     aider --model openai/gpt-5  # a model your accounts serve\n",
                    shell_word(&v1),
                    shell_word(key)
                ),
            ),
            snippet(
                "Command line",
                format!(
                    "aider --openai-api-base {} --openai-api-key {} --model openai/gpt-5\n",
                    shell_word(&v1),
                    shell_word(key)
                ),
            ),
        ],
        Tool::Opencode => vec![snippet(
            "opencode.json",
            pretty(&json!({
                "$schema": "https://opencode.ai/config.json",
                "provider": {
                    "keyway": {
                        "npm": "@ai-sdk/openai-compatible",
                        "name": "Keyway",
                        "options": { "baseURL": v1, "apiKey": key },
                        "models": { "gpt-5": { "name": "gpt-5" } }
                    }
                }
            })),
        )],
        Tool::Cursor => Vec::new(),
    }
}

/// What connecting `tool` would write, without writing anything.
pub fn plan(tool: Tool, home: &Path, ep: &Endpoint) -> Result<Plan, ToolError> {
    let change = prepare(tool, home, ep)?;
    let before = change.original.clone().unwrap_or_default();
    let diff = diff(&change.shown, &before, &change.after);
    Ok(Plan {
        file: change.file,
        exists: change.original.is_some(),
        before,
        after: change.after,
        diff,
    })
}

/// Points `tool` at Keyway: keeps the original in `backups` first, then writes the new file.
pub fn connect(
    tool: Tool,
    home: &Path,
    backups: &Path,
    ep: &Endpoint,
) -> Result<Connected, ToolError> {
    if is_connected(tool, backups) {
        let shown = tool.file(home).map(|f| shown(&f, home)).unwrap_or_default();
        return Err(ToolError::AlreadyConnected {
            name: tool.name(),
            shown,
        });
    }
    let change = prepare(tool, home, ep)?;
    let dir = backups.join(tool.id());
    let backup = match change.original {
        Some(_) => dir.join(ORIGINAL),
        None => dir.join(ABSENT),
    };
    let backup_bytes = change.original.as_deref().unwrap_or("").as_bytes();
    let kept = |what: &str, source| ToolError::Io {
        what: format!(
            "could not keep a backup of {} ({what}) in {}",
            change.shown,
            dir.display()
        ),
        source,
    };
    // The backups are copies of the user's files: owner-only, like the files Keyway writes.
    keyway_core::paths::private_dir(&dir).map_err(|e| kept("its folder", e))?;
    write_atomic(&backup, backup_bytes).map_err(|e| kept("its bytes", e))?;
    if change.original.is_some()
        && let Some(mode) = file_mode(&change.target)
    {
        write_atomic(&dir.join(MODE), format!("{mode:o}").as_bytes())
            .map_err(|e| kept("its permissions", e))?;
    }
    // A file that now holds the client key is readable by its owner only, whatever it was.
    let written = if tool.holds_key() {
        write_atomic_private(&change.target, change.after.as_bytes())
    } else {
        write_atomic(&change.target, change.after.as_bytes())
    };
    if let Err(source) = written {
        // Without the new file there is nothing to undo: drop the backup so that the tool
        // does not look connected.
        let _ = fs::remove_file(&backup);
        let _ = fs::remove_file(dir.join(MODE));
        let _ = fs::remove_dir(&dir);
        return Err(ToolError::Io {
            what: format!("could not write {}", change.shown),
            source,
        });
    }
    Ok(Connected {
        file: change.file,
        backup,
    })
}

/// Puts back what was there before [`connect`]: the original bytes, or no file. Returns the
/// tool's file.
pub fn disconnect(tool: Tool, home: &Path, backups: &Path) -> Result<PathBuf, ToolError> {
    let file = tool
        .file(home)
        .ok_or(ToolError::NotWrittenByKeyway(tool.name()))?;
    let shown = shown(&file, home);
    let target = real_path(&file);
    let dir = backups.join(tool.id());
    let original = dir.join(ORIGINAL);
    let absent = dir.join(ABSENT);
    if original.exists() {
        let bytes = fs::read(&original).map_err(|source| ToolError::Io {
            what: format!(
                "could not read the backup of {shown} ({})",
                original.display()
            ),
            source,
        })?;
        write_atomic(&target, &bytes).map_err(|source| ToolError::Io {
            what: format!("could not restore {shown}"),
            source,
        })?;
        // Its permissions too, which connecting may have narrowed.
        let mode = dir.join(MODE);
        if let Some(bits) = fs::read_to_string(&mode)
            .ok()
            .and_then(|m| u32::from_str_radix(m.trim(), 8).ok())
        {
            let _ = keyway_core::paths::set_mode(&target, bits & 0o7777);
        }
        let _ = fs::remove_file(&mode);
        remove_backup(&original, &dir)?;
    } else if absent.exists() {
        match fs::remove_file(&target) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(source) => {
                return Err(ToolError::Io {
                    what: format!("could not remove {shown}"),
                    source,
                });
            }
        }
        remove_backup(&absent, &dir)?;
    } else {
        return Err(ToolError::NotConnected(tool.name()));
    }
    Ok(file)
}

/// Whether Keyway's settings are in the tool's file now, as far as the backups tell.
pub fn is_connected(tool: Tool, backups: &Path) -> bool {
    let dir = backups.join(tool.id());
    dir.join(ORIGINAL).exists() || dir.join(ABSENT).exists()
}

/// A computed change to a tool's file.
struct Change {
    /// The tool's file as named in its docs.
    file: PathBuf,
    /// Where the bytes are: the file itself, or what it links to.
    target: PathBuf,
    /// The file as `~/...`, for messages.
    shown: String,
    /// The current content; None when there is no file.
    original: Option<String>,
    after: String,
}

fn prepare(tool: Tool, home: &Path, ep: &Endpoint) -> Result<Change, ToolError> {
    let file = tool.file(home).ok_or(ToolError::ByHand(tool.name()))?;
    let shown = shown(&file, home);
    let target = real_path(&file);
    let original = match fs::read(&target) {
        Ok(bytes) => Some(String::from_utf8(bytes).map_err(|_| ToolError::Unusable {
            shown: shown.clone(),
            problem: "is not UTF-8 text".into(),
        })?),
        Err(e) if e.kind() == io::ErrorKind::NotFound => None,
        Err(source) => return Err(ToolError::Unreadable { shown, source }),
    };
    let text = original.as_deref().unwrap_or("");
    let after = match tool {
        Tool::ClaudeCode => claude_settings(text, ep),
        Tool::CodexCli => codex_config(text, ep),
        Tool::GeminiCli => Ok(gemini_env(text, ep)),
        Tool::Cline | Tool::Continue | Tool::Zed | Tool::Aider | Tool::Opencode | Tool::Cursor => {
            return Err(ToolError::ByHand(tool.name()));
        }
    }
    .map_err(|problem| ToolError::Unusable {
        shown: shown.clone(),
        problem,
    })?;
    Ok(Change {
        file,
        target,
        shown,
        original,
        after,
    })
}

/// Claude Code's `settings.json` with Keyway in its `env`. `ANTHROPIC_API_KEY` goes, since
/// Claude Code would send it instead of the token.
fn claude_settings(text: &str, ep: &Endpoint) -> Result<String, String> {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let mut root = if text.trim().is_empty() {
        Map::new()
    } else {
        match serde_json::from_str::<Value>(text) {
            Ok(Value::Object(map)) => map,
            Ok(_) => return Err("is not a JSON object".to_owned()),
            Err(e) => return Err(format!("is not valid JSON (line {})", e.line())),
        }
    };
    let env = root
        .entry("env")
        .or_insert_with(|| Value::Object(Map::new()));
    if env.is_null() {
        *env = Value::Object(Map::new());
    }
    let Value::Object(env) = env else {
        return Err("has an \"env\" that is not an object".to_owned());
    };
    env.insert("ANTHROPIC_BASE_URL".to_owned(), ep.root().into());
    env.insert("ANTHROPIC_AUTH_TOKEN".to_owned(), ep.key.into());
    env.shift_remove("ANTHROPIC_API_KEY");
    let mut out = serde_json::to_string_pretty(&Value::Object(root))
        .map_err(|e| format!("could not be rewritten as JSON ({e})"))?;
    out.push('\n');
    Ok(out)
}

/// Codex's `config.toml` with a `keyway` model provider, selected. The key stays out of the
/// file: Codex reads it from [`CODEX_KEY_VAR`].
fn codex_config(text: &str, ep: &Endpoint) -> Result<String, String> {
    let mut doc = text.parse::<DocumentMut>().map_err(|e| {
        // Counted in bytes: the span need not fall on a character boundary.
        let line = e.span().map(|span| {
            let before = &text.as_bytes()[..span.start.min(text.len())];
            before.iter().filter(|&&b| b == b'\n').count() + 1
        });
        match line {
            Some(line) => format!("is not valid TOML (line {line})"),
            None => "is not valid TOML".to_owned(),
        }
    })?;
    // Root keys print before every table, so the file stays valid TOML wherever tables are.
    set_string(doc.as_table_mut(), "model_provider", "keyway");
    let providers = doc.entry("model_providers").or_insert_with(|| {
        let mut table = Table::new();
        table.set_implicit(true);
        Item::Table(table)
    });
    let providers = providers
        .as_table_like_mut()
        .ok_or("has a `model_providers` that is not a table")?;
    if providers.get("keyway").is_none() {
        providers.insert("keyway", Item::Table(Table::new()));
    }
    let keyway = providers
        .get_mut("keyway")
        .and_then(Item::as_table_like_mut)
        .ok_or("has a `model_providers.keyway` that is not a table")?;
    set_string(keyway, "name", "Keyway");
    set_string(keyway, "base_url", &ep.v1());
    set_string(keyway, "wire_api", "responses");
    set_string(keyway, "env_key", CODEX_KEY_VAR);
    Ok(doc.to_string())
}

/// Sets a string, keeping the comment and spacing around an existing value.
fn set_string(table: &mut dyn TableLike, key: &str, value: &str) {
    let mut new = toml_edit::Value::from(value);
    match table.get_mut(key) {
        Some(Item::Value(old)) => {
            *new.decor_mut() = old.decor().clone();
            *old = new;
        }
        _ => {
            table.insert(key, Item::Value(new));
        }
    }
}

/// Gemini CLI's `.env` with Keyway's two variables. Their existing lines are replaced in place
/// (a repeated one is dropped, since a later line would win); every other line stays.
fn gemini_env(text: &str, ep: &Endpoint) -> String {
    let wanted = [
        ("GOOGLE_GEMINI_BASE_URL", ep.root()),
        ("GEMINI_API_KEY", ep.key),
    ];
    let mut written = [false; 2];
    let mut out = String::with_capacity(text.len() + 128);
    for line in text.split_inclusive('\n') {
        let body = line.trim_end_matches(['\r', '\n']);
        let ending = &line[body.len()..];
        let index = dotenv_name(body).and_then(|name| wanted.iter().position(|(w, _)| *w == name));
        match index {
            Some(i) if written[i] => {}
            Some(i) => {
                let (name, value) = wanted[i];
                out.push_str(&format!("{name}={}", dotenv_value(value)));
                out.push_str(ending);
                written[i] = true;
            }
            None => out.push_str(line),
        }
    }
    for (i, (name, value)) in wanted.iter().enumerate() {
        if written[i] {
            continue;
        }
        if !out.is_empty() && !out.ends_with('\n') {
            out.push('\n');
        }
        out.push_str(&format!("{name}={}\n", dotenv_value(value)));
    }
    out
}

/// The variable a dotenv line sets, if it sets one.
fn dotenv_name(line: &str) -> Option<&str> {
    let line = line.trim_start();
    let line = line.strip_prefix("export ").unwrap_or(line).trim_start();
    let (name, _) = line.split_once('=')?;
    let name = name.trim_end();
    let valid = !name.is_empty()
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'.' || b == b'-');
    valid.then_some(name)
}

/// Characters that need no quoting in a shell word or a dotenv value.
fn is_plain(s: &str) -> bool {
    !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_.:/@%+=,~".contains(&b))
}

fn shell_word(s: &str) -> String {
    if is_plain(s) {
        s.to_owned()
    } else {
        format!("'{}'", s.replace('\'', "'\\''"))
    }
}

fn dotenv_value(s: &str) -> String {
    if is_plain(s) {
        s.to_owned()
    } else if !s.contains('\'') {
        format!("'{s}'")
    } else {
        format!("\"{}\"", s.replace('"', "\\\""))
    }
}

fn json_string(s: &str) -> String {
    serde_json::to_string(s).unwrap_or_default()
}

fn pretty(value: &Value) -> String {
    let mut text = serde_json::to_string_pretty(value).unwrap_or_default();
    text.push('\n');
    text
}

/// `path` as `~/...` when it is under `home`, for messages.
fn shown(path: &Path, home: &Path) -> String {
    match path.strip_prefix(home) {
        Ok(rel) => format!("~/{}", rel.display()),
        Err(_) => path.display().to_string(),
    }
}

/// Where to read and write: a symlinked config (a dotfiles repo, say) is written through the
/// link, so the link itself survives.
fn real_path(file: &Path) -> PathBuf {
    let is_link = fs::symlink_metadata(file).is_ok_and(|m| m.file_type().is_symlink());
    if is_link {
        fs::canonicalize(file).unwrap_or_else(|_| file.to_path_buf())
    } else {
        file.to_path_buf()
    }
}

/// The permission bits of the file at `path` (Unix).
fn file_mode(path: &Path) -> Option<u32> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        fs::metadata(path)
            .ok()
            .map(|m| m.permissions().mode() & 0o7777)
    }
    #[cfg(not(unix))]
    {
        let _ = path;
        None
    }
}

fn remove_backup(marker: &Path, dir: &Path) -> Result<(), ToolError> {
    fs::remove_file(marker).map_err(|source| ToolError::Io {
        what: format!(
            "restored the file but could not remove the backup {}",
            marker.display()
        ),
        source,
    })?;
    // Only empty folders go; anything else in there is not ours to delete.
    let _ = fs::remove_dir(dir);
    Ok(())
}

/// The longest a preview's diff may take before `similar` settles for a coarser one (a config
/// file is small; a huge or binary one must not stall the request).
const DIFF_DEADLINE: Duration = Duration::from_millis(200);
/// Unchanged lines shown around each change.
const DIFF_CONTEXT: usize = 3;

/// A unified diff of `before` → `after` (`similar`, Myers with a deadline), as lines that
/// say what they are: the `---`/`+++` header, each hunk's `@@` line, and its context, removed
/// and added lines.
fn diff(label: &str, before: &str, after: &str) -> Vec<DiffLine> {
    let line = |kind, text: String| DiffLine { kind, text };
    let mut out = vec![
        line(DiffKind::Header, format!("--- {label}")),
        line(DiffKind::Header, format!("+++ {label}")),
    ];
    let deadline = Instant::now() + DIFF_DEADLINE;
    let diff = TextDiff::configure()
        .deadline(deadline)
        .diff_lines(before, after);
    for hunk in diff
        .unified_diff()
        .context_radius(DIFF_CONTEXT)
        .iter_hunks()
    {
        out.push(line(DiffKind::Hunk, hunk.header().to_string()));
        for change in hunk.iter_changes() {
            let kind = match change.tag() {
                ChangeTag::Equal => DiffKind::Context,
                ChangeTag::Delete => DiffKind::Removed,
                ChangeTag::Insert => DiffKind::Added,
            };
            let text = change.to_string_lossy();
            out.push(line(kind, text.trim_end_matches(['\n', '\r']).to_owned()));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const EP: Endpoint<'static> = Endpoint {
        base: "http://127.0.0.1:8787",
        key: "kw-test-key",
    };

    struct Dirs {
        _root: tempfile::TempDir,
        home: PathBuf,
        backups: PathBuf,
    }

    fn dirs() -> Dirs {
        let root = tempfile::tempdir().unwrap();
        let home = root.path().join("home");
        let backups = root.path().join("data").join("backups");
        fs::create_dir_all(&home).unwrap();
        Dirs {
            _root: root,
            home,
            backups,
        }
    }

    fn write(path: &Path, text: &str) {
        fs::create_dir_all(path.parent().unwrap()).unwrap();
        fs::write(path, text).unwrap();
    }

    #[test]
    fn ids_round_trip() {
        for tool in Tool::ALL {
            assert_eq!(Tool::parse(tool.id()), Some(tool));
        }
        assert_eq!(Tool::parse("vim"), None);
    }

    #[test]
    fn only_three_tools_have_a_file() {
        let home = Path::new("/home/me");
        let with_file: Vec<Tool> = Tool::ALL
            .into_iter()
            .filter(|t| t.file(home).is_some())
            .collect();
        assert_eq!(
            with_file,
            [Tool::ClaudeCode, Tool::CodexCli, Tool::GeminiCli]
        );
        assert!(Tool::Cursor.note().is_some());
        assert!(snippets(Tool::Cursor, &EP).is_empty());
        for tool in Tool::ALL {
            if tool != Tool::Cursor {
                let all: String = snippets(tool, &EP).into_iter().map(|s| s.text).collect();
                assert!(all.contains("127.0.0.1:8787"), "{tool:?}");
                let key_somewhere = all.contains("kw-test-key") || tool == Tool::CodexCli;
                assert!(key_somewhere, "{tool:?}");
            }
        }
    }

    #[test]
    fn claude_fresh_home_connect_then_disconnect_removes_the_file() {
        let d = dirs();
        let file = d.home.join(".claude/settings.json");
        let plan = plan(Tool::ClaudeCode, &d.home, &EP).unwrap();
        assert!(!plan.exists);
        assert_eq!(plan.before, "");
        assert_eq!(
            shown(&plan.diff[..4]),
            "--- ~/.claude/settings.json\n+++ ~/.claude/settings.json\n@@ -0,0 +1,6 @@\n+{\n"
        );

        let done = connect(Tool::ClaudeCode, &d.home, &d.backups, &EP).unwrap();
        assert_eq!(done.file, file);
        assert_eq!(done.backup, d.backups.join("claude-code/absent"));
        assert!(is_connected(Tool::ClaudeCode, &d.backups));
        assert_eq!(
            fs::read_to_string(&file).unwrap(),
            "{\n  \"env\": {\n    \"ANTHROPIC_BASE_URL\": \"http://127.0.0.1:8787\",\n    \"ANTHROPIC_AUTH_TOKEN\": \"kw-test-key\"\n  }\n}\n"
        );
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = fs::metadata(&file).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }

        assert_eq!(
            disconnect(Tool::ClaudeCode, &d.home, &d.backups).unwrap(),
            file
        );
        assert!(!file.exists());
        assert!(!is_connected(Tool::ClaudeCode, &d.backups));
        assert!(!d.backups.join("claude-code").exists());
    }

    #[test]
    fn claude_existing_settings_keep_their_keys_and_restore_byte_exact() {
        let d = dirs();
        let file = d.home.join(".claude/settings.json");
        let original = "{\n    \"permissions\": {\"allow\": [\"Bash(ls:*)\"]},\n    \"env\": {\"ZED\": \"1\", \"ANTHROPIC_API_KEY\": \"sk-ant-old\", \"ANTHROPIC_BASE_URL\": \"https://old\", \"ALPHA\": \"2\"},\n    \"model\": \"opus\"\n}";
        write(&file, original);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            fs::set_permissions(&file, fs::Permissions::from_mode(0o640)).unwrap();
        }

        connect(Tool::ClaudeCode, &d.home, &d.backups, &EP).unwrap();
        let after = fs::read_to_string(&file).unwrap();
        assert_eq!(
            after,
            "{\n  \"permissions\": {\n    \"allow\": [\n      \"Bash(ls:*)\"\n    ]\n  },\n  \"env\": {\n    \"ZED\": \"1\",\n    \"ANTHROPIC_BASE_URL\": \"http://127.0.0.1:8787\",\n    \"ALPHA\": \"2\",\n    \"ANTHROPIC_AUTH_TOKEN\": \"kw-test-key\"\n  },\n  \"model\": \"opus\"\n}\n"
        );
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = |p: &Path| fs::metadata(p).unwrap().permissions().mode() & 0o777;
            assert_eq!(mode(&file), 0o600, "it holds the client key now");
            assert_eq!(mode(&d.backups.join("claude-code")), 0o700);
            assert_eq!(mode(&d.backups.join("claude-code/original")), 0o600);
        }
        assert_eq!(
            fs::read_to_string(d.backups.join("claude-code/original")).unwrap(),
            original
        );

        disconnect(Tool::ClaudeCode, &d.home, &d.backups).unwrap();
        assert_eq!(fs::read_to_string(&file).unwrap(), original);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = fs::metadata(&file).unwrap().permissions().mode();
            assert_eq!(
                mode & 0o777,
                0o640,
                "its own permissions come back with its bytes"
            );
        }
        assert!(!is_connected(Tool::ClaudeCode, &d.backups));
        assert!(!d.backups.join("claude-code").exists());
    }

    #[test]
    fn claude_invalid_json_is_refused_and_nothing_is_written() {
        let d = dirs();
        let file = d.home.join(".claude/settings.json");
        let broken = "{\n  \"model\": \"opus\",\n  \"env\": {,\n}\n";
        write(&file, broken);
        let err = plan(Tool::ClaudeCode, &d.home, &EP)
            .unwrap_err()
            .to_string();
        assert_eq!(
            err,
            "~/.claude/settings.json is not valid JSON (line 3): fix or move it, then connect again"
        );
        let err = connect(Tool::ClaudeCode, &d.home, &d.backups, &EP)
            .unwrap_err()
            .to_string();
        assert!(err.contains("not valid JSON (line 3)"), "{err}");
        assert_eq!(fs::read_to_string(&file).unwrap(), broken);
        assert!(!is_connected(Tool::ClaudeCode, &d.backups));
        assert!(!d.backups.exists());

        write(&file, "[1, 2]");
        let err = plan(Tool::ClaudeCode, &d.home, &EP)
            .unwrap_err()
            .to_string();
        assert!(err.contains("is not a JSON object"), "{err}");
        write(&file, "{\"env\": \"x\"}");
        let err = plan(Tool::ClaudeCode, &d.home, &EP)
            .unwrap_err()
            .to_string();
        assert!(err.contains("\"env\" that is not an object"), "{err}");
    }

    #[test]
    fn double_connect_is_refused_and_disconnect_needs_a_connection() {
        let d = dirs();
        connect(Tool::GeminiCli, &d.home, &d.backups, &EP).unwrap();
        let err = connect(Tool::GeminiCli, &d.home, &d.backups, &EP)
            .unwrap_err()
            .to_string();
        assert_eq!(
            err,
            "Gemini CLI is already connected (~/.gemini/.env): disconnect it first"
        );
        disconnect(Tool::GeminiCli, &d.home, &d.backups).unwrap();
        let err = disconnect(Tool::GeminiCli, &d.home, &d.backups)
            .unwrap_err()
            .to_string();
        assert_eq!(
            err,
            "Gemini CLI is not connected: there is nothing to restore"
        );
    }

    #[test]
    fn hand_configured_tools_cannot_be_connected() {
        let d = dirs();
        let err = connect(Tool::Zed, &d.home, &d.backups, &EP)
            .unwrap_err()
            .to_string();
        assert!(err.starts_with("Zed is set up by hand"), "{err}");
        assert!(plan(Tool::Cursor, &d.home, &EP).is_err());
        assert!(disconnect(Tool::Aider, &d.home, &d.backups).is_err());
    }

    #[test]
    fn codex_fresh_file() {
        let d = dirs();
        connect(Tool::CodexCli, &d.home, &d.backups, &EP).unwrap();
        let file = d.home.join(".codex/config.toml");
        assert_eq!(
            fs::read_to_string(&file).unwrap(),
            "model_provider = \"keyway\"\n\n[model_providers.keyway]\nname = \"Keyway\"\nbase_url = \"http://127.0.0.1:8787/v1\"\nwire_api = \"responses\"\nenv_key = \"KEYWAY_API_KEY\"\n"
        );
        disconnect(Tool::CodexCli, &d.home, &d.backups).unwrap();
        assert!(!file.exists());
    }

    #[test]
    fn codex_existing_tables_and_comments_are_kept() {
        let d = dirs();
        let file = d.home.join(".codex/config.toml");
        let original = "# my codex settings\nmodel = \"gpt-5-codex\" # favourite\nmodel_provider = \"openai\"   # was this\n\n[mcp_servers.docs]\ncommand = \"docs-mcp\" # local\n\n[model_providers.other]\nname = \"Other\"\nbase_url = \"https://other.example/v1\"\n\n[profiles.fast]\nmodel = \"o4-mini\"\n";
        write(&file, original);
        connect(Tool::CodexCli, &d.home, &d.backups, &EP).unwrap();
        let after = fs::read_to_string(&file).unwrap();
        let want = "# my codex settings\nmodel = \"gpt-5-codex\" # favourite\nmodel_provider = \"keyway\"   # was this\n\n[mcp_servers.docs]\ncommand = \"docs-mcp\" # local\n\n[model_providers.other]\nname = \"Other\"\nbase_url = \"https://other.example/v1\"\n\n[model_providers.keyway]\nname = \"Keyway\"\nbase_url = \"http://127.0.0.1:8787/v1\"\nwire_api = \"responses\"\nenv_key = \"KEYWAY_API_KEY\"\n\n[profiles.fast]\nmodel = \"o4-mini\"\n";
        assert_eq!(after, want);
        assert!(after.parse::<DocumentMut>().is_ok());

        disconnect(Tool::CodexCli, &d.home, &d.backups).unwrap();
        assert_eq!(fs::read_to_string(&file).unwrap(), original);
    }

    #[test]
    fn codex_new_root_key_goes_before_the_first_table() {
        let d = dirs();
        let file = d.home.join(".codex/config.toml");
        write(
            &file,
            "[tui]\nnotifications = true\n\n[model_providers.keyway]\nname = \"Old\"\nquery_params = { a = \"1\" }\n",
        );
        let plan = plan(Tool::CodexCli, &d.home, &EP).unwrap();
        assert_eq!(
            plan.after,
            "model_provider = \"keyway\"\n[tui]\nnotifications = true\n\n[model_providers.keyway]\nname = \"Keyway\"\nquery_params = { a = \"1\" }\nbase_url = \"http://127.0.0.1:8787/v1\"\nwire_api = \"responses\"\nenv_key = \"KEYWAY_API_KEY\"\n"
        );
        let doc = plan.after.parse::<DocumentMut>().unwrap();
        assert_eq!(doc["model_provider"].as_str(), Some("keyway"));
        assert_eq!(doc["tui"]["notifications"].as_bool(), Some(true));
    }

    #[test]
    fn codex_invalid_toml_is_refused() {
        let d = dirs();
        let file = d.home.join(".codex/config.toml");
        write(&file, "model = \"x\"\n\n[broken\n");
        let err = connect(Tool::CodexCli, &d.home, &d.backups, &EP)
            .unwrap_err()
            .to_string();
        assert_eq!(
            err,
            "~/.codex/config.toml is not valid TOML (line 3): fix or move it, then connect again"
        );
        write(&file, "model_providers = \"nope\"\n");
        let err = plan(Tool::CodexCli, &d.home, &EP).unwrap_err().to_string();
        assert!(
            err.contains("`model_providers` that is not a table"),
            "{err}"
        );
        assert!(!d.backups.exists());
    }

    #[test]
    fn gemini_env_replaces_its_lines_and_keeps_the_rest() {
        let d = dirs();
        let file = d.home.join(".gemini/.env");
        let original = "# Gemini\r\nGEMINI_MODEL=gemini-2.5-pro\r\nexport GEMINI_API_KEY=AIza-old\r\n# GOOGLE_GEMINI_BASE_URL=commented\r\nGEMINI_API_KEY=AIza-dup\r\nOTHER=1";
        write(&file, original);
        connect(Tool::GeminiCli, &d.home, &d.backups, &EP).unwrap();
        assert_eq!(
            fs::read_to_string(&file).unwrap(),
            "# Gemini\r\nGEMINI_MODEL=gemini-2.5-pro\r\nGEMINI_API_KEY=kw-test-key\r\n# GOOGLE_GEMINI_BASE_URL=commented\r\nOTHER=1\nGOOGLE_GEMINI_BASE_URL=http://127.0.0.1:8787\n"
        );
        disconnect(Tool::GeminiCli, &d.home, &d.backups).unwrap();
        assert_eq!(fs::read_to_string(&file).unwrap(), original);
    }

    #[test]
    fn gemini_fresh_file() {
        let d = dirs();
        connect(Tool::GeminiCli, &d.home, &d.backups, &EP).unwrap();
        assert_eq!(
            fs::read_to_string(d.home.join(".gemini/.env")).unwrap(),
            "GOOGLE_GEMINI_BASE_URL=http://127.0.0.1:8787\nGEMINI_API_KEY=kw-test-key\n"
        );
    }

    #[cfg(unix)]
    #[test]
    fn a_symlinked_config_is_written_through_the_link() {
        let d = dirs();
        let real = d.home.join("dotfiles/claude-settings.json");
        write(&real, "{\"model\": \"opus\"}\n");
        let link = d.home.join(".claude/settings.json");
        fs::create_dir_all(link.parent().unwrap()).unwrap();
        std::os::unix::fs::symlink(&real, &link).unwrap();

        connect(Tool::ClaudeCode, &d.home, &d.backups, &EP).unwrap();
        assert!(
            fs::symlink_metadata(&link)
                .unwrap()
                .file_type()
                .is_symlink()
        );
        assert!(
            fs::read_to_string(&real)
                .unwrap()
                .contains("ANTHROPIC_AUTH_TOKEN")
        );
        disconnect(Tool::ClaudeCode, &d.home, &d.backups).unwrap();
        assert_eq!(
            fs::read_to_string(&real).unwrap(),
            "{\"model\": \"opus\"}\n"
        );
        assert!(
            fs::symlink_metadata(&link)
                .unwrap()
                .file_type()
                .is_symlink()
        );
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn a_failed_write_leaves_no_backup() {
        // A link into /proc reads fine, but nothing (not even root) can create files there.
        let d = dirs();
        let link = d.home.join(".gemini/.env");
        fs::create_dir_all(link.parent().unwrap()).unwrap();
        std::os::unix::fs::symlink("/proc/version", &link).unwrap();
        let err = connect(Tool::GeminiCli, &d.home, &d.backups, &EP)
            .unwrap_err()
            .to_string();
        assert!(err.starts_with("could not write ~/.gemini/.env"), "{err}");
        assert!(!is_connected(Tool::GeminiCli, &d.backups));
        assert!(!d.backups.join("gemini-cli").exists());
    }

    /// A diff as the text of a unified diff, for comparing with what `diff -u` prints.
    fn shown(lines: &[DiffLine]) -> String {
        lines
            .iter()
            .map(|l| {
                let mark = match l.kind {
                    DiffKind::Header | DiffKind::Hunk => "",
                    DiffKind::Context => " ",
                    DiffKind::Removed => "-",
                    DiffKind::Added => "+",
                };
                format!("{mark}{}\n", l.text)
            })
            .collect()
    }

    #[test]
    fn diff_has_hunks_with_context() {
        let before: String = (1..=20).map(|i| format!("{i}\n")).collect();
        let after: String = (1..=20)
            .filter(|&i| i != 18)
            .map(|i| match i {
                2 => "two\n".to_owned(),
                i => format!("{i}\n"),
            })
            .collect();
        // What `diff -u` prints for the same two files.
        assert_eq!(
            shown(&diff("f", &before, &after)),
            "--- f\n+++ f\n@@ -1,5 +1,5 @@\n 1\n-2\n+two\n 3\n 4\n 5\n@@ -15,6 +15,5 @@\n 15\n 16\n 17\n-18\n 19\n 20\n"
        );
        assert_eq!(shown(&diff("f", "", "")), "--- f\n+++ f\n");
        assert_eq!(
            shown(&diff("f", "a\n", "")),
            "--- f\n+++ f\n@@ -1 +0,0 @@\n-a\n"
        );
    }

    #[test]
    fn diff_of_very_different_large_files_stays_cheap() {
        let a: String = (0..3000).map(|i| format!("a{i}\n")).collect();
        let b: String = (0..3000).map(|i| format!("b{i}\n")).collect();
        let started = Instant::now();
        let got = diff("f", &a, &b);
        let count = |kind| got.iter().filter(|l| l.kind == kind).count();
        assert_eq!(
            (count(DiffKind::Removed), count(DiffKind::Added)),
            (3000, 3000)
        );
        assert!(
            started.elapsed() < DIFF_DEADLINE * 10,
            "{:?}",
            started.elapsed()
        );
    }

    #[test]
    fn plan_of_a_connected_tool_shows_no_change() {
        let d = dirs();
        connect(Tool::CodexCli, &d.home, &d.backups, &EP).unwrap();
        let plan = plan(Tool::CodexCli, &d.home, &EP).unwrap();
        assert!(plan.exists);
        assert_eq!(plan.before, plan.after);
        assert!(plan.diff.iter().all(|l| l.kind == DiffKind::Header));
    }

    #[test]
    fn snippets_quote_what_the_shell_would_split() {
        let ep = Endpoint {
            base: "http://127.0.0.1:8787/",
            key: "it's a key",
        };
        let shell = &snippets(Tool::ClaudeCode, &ep)[0].text;
        assert_eq!(
            shell,
            "export ANTHROPIC_BASE_URL=http://127.0.0.1:8787\nexport ANTHROPIC_AUTH_TOKEN='it'\\''s a key'\nunset ANTHROPIC_API_KEY\n"
        );
        let codex = &snippets(Tool::CodexCli, &ep)[0].text;
        assert!(
            codex.contains("base_url = \"http://127.0.0.1:8787/v1\""),
            "{codex}"
        );
    }
}
