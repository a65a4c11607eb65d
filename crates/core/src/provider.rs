//! Provider definitions: the one place that knows each built-in provider's id, default base
//! URL, auth header and default model families, and the presets (other vendors' endpoints
//! that speak one of the formats, `data/presets.toml`). Everything else asks this module.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::LazyLock;

use serde::{Deserialize, Serialize};

/// Which provider a provider is: one of the built-ins, whose logins, quota endpoints and
/// error quirks Keyway knows, or a custom one (a preset or the user's own), known only by its
/// format, base URL and auth header.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ProviderKind {
    /// Anthropic Messages API, `x-api-key` auth.
    Anthropic,
    /// OpenAI Chat Completions and Responses, bearer auth.
    OpenAi,
    /// Google Gemini generateContent, `x-goog-api-key` auth.
    Google,
    /// A preset or user-defined service speaking one of the [`Format`]s. Its base URL is
    /// taken as the service documents it for that format's SDKs.
    Custom,
}

impl ProviderKind {
    pub fn as_str(self) -> &'static str {
        match self {
            ProviderKind::Anthropic => "anthropic",
            ProviderKind::OpenAi => "openai",
            ProviderKind::Google => "google",
            ProviderKind::Custom => "custom",
        }
    }
}

/// The wire format a provider speaks: which client requests it can serve as they are.
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Format {
    /// Anthropic Messages.
    Anthropic,
    /// OpenAI Chat Completions and Responses.
    #[serde(rename = "openai")]
    OpenAi,
    /// Gemini generateContent.
    Gemini,
}

impl Format {
    pub fn as_str(self) -> &'static str {
        match self {
            Format::Anthropic => "anthropic",
            Format::OpenAi => "openai",
            Format::Gemini => "gemini",
        }
    }

    /// The format of a client request of `surface`.
    pub fn of(surface: Surface) -> Format {
        match surface {
            Surface::AnthropicMessages => Format::Anthropic,
            Surface::OpenAiChat | Surface::OpenAiResponses => Format::OpenAi,
            Surface::Gemini => Format::Gemini,
        }
    }

    /// Whether a request of `surface` can be served as it is by a provider of this format.
    pub fn serves(self, surface: Surface) -> bool {
        Format::of(surface) == self
    }

    /// Where the key goes, unless the provider says otherwise.
    pub fn default_auth(self) -> AuthHeader {
        match self {
            Format::Anthropic => AuthHeader::XApiKey,
            Format::OpenAi => AuthHeader::Bearer,
            Format::Gemini => AuthHeader::XGoogApiKey,
        }
    }
}

impl fmt::Display for Format {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The client-facing API shape of a request.
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Surface {
    AnthropicMessages,
    #[serde(rename = "openai_chat")]
    OpenAiChat,
    #[serde(rename = "openai_responses")]
    OpenAiResponses,
    Gemini,
}

impl Surface {
    /// The name in records and the API, as it serializes.
    pub fn as_str(self) -> &'static str {
        match self {
            Surface::AnthropicMessages => "anthropic_messages",
            Surface::OpenAiChat => "openai_chat",
            Surface::OpenAiResponses => "openai_responses",
            Surface::Gemini => "gemini",
        }
    }
}

impl fmt::Display for Surface {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Where a provider's secret goes on the upstream request.
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum AuthHeader {
    /// `x-api-key: <secret>`
    #[serde(rename = "x-api-key")]
    XApiKey,
    /// `authorization: Bearer <secret>`
    #[serde(rename = "bearer")]
    Bearer,
    /// `x-goog-api-key: <secret>`
    #[serde(rename = "x-goog-api-key")]
    XGoogApiKey,
}

/// Another vendor's endpoint that speaks one of the formats, usable with only a key.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Preset {
    /// The vendor's name, for screens.
    pub name: String,
    pub format: Format,
    pub base_url: String,
    pub auth: AuthHeader,
    /// The vendor's own documentation of this endpoint.
    pub docs: String,
    /// Family name → model globs, in match order.
    pub families: BTreeMap<String, Vec<String>>,
}

/// The presets, parsed on first use. They are part of the program: a file that does not parse
/// is a bug (a test parses it).
static PRESETS: LazyLock<BTreeMap<String, Preset>> = LazyLock::new(|| {
    toml::from_str(include_str!("../data/presets.toml"))
        .expect("the embedded presets parse (see the provider tests)")
});

/// Every preset, by id.
pub fn presets() -> &'static BTreeMap<String, Preset> {
    &PRESETS
}

pub fn preset(id: &str) -> Option<&'static Preset> {
    PRESETS.get(id)
}

/// A provider compiled into Keyway.
pub struct BuiltIn {
    pub id: &'static str,
    pub kind: ProviderKind,
    /// Origin only (`scheme://host[:port]`); the client's path is forwarded under it.
    pub default_base_url: &'static str,
    /// Families in match order: the first whose globs match the model wins.
    pub families: &'static [(&'static str, &'static [&'static str])],
}

pub const ANTHROPIC: &str = "anthropic";
pub const OPENAI: &str = "openai";
pub const GOOGLE: &str = "google";

pub const BUILT_INS: &[BuiltIn] = &[
    BuiltIn {
        id: ANTHROPIC,
        kind: ProviderKind::Anthropic,
        default_base_url: "https://api.anthropic.com",
        families: &[
            ("opus", &["*opus*"]),
            ("sonnet", &["*sonnet*"]),
            ("haiku", &["*haiku*"]),
        ],
    },
    BuiltIn {
        id: OPENAI,
        kind: ProviderKind::OpenAi,
        default_base_url: "https://api.openai.com",
        families: &[
            ("codex", &["*codex*"]),
            ("mini", &["*-mini*", "*-nano*"]),
            ("reasoning", &["o1*", "o3*", "o4*"]),
            ("gpt", &["gpt-*", "chatgpt-*"]),
        ],
    },
    BuiltIn {
        id: GOOGLE,
        kind: ProviderKind::Google,
        default_base_url: "https://generativelanguage.googleapis.com",
        families: &[("pro", &["*-pro*"]), ("flash", &["*flash*"])],
    },
];

/// A provider's subscription login (OAuth) parameters, from its public CLI client.
pub struct OAuthDefaults {
    pub client_id: &'static str,
    pub authorize_url: &'static str,
    pub token_url: &'static str,
    pub scopes: &'static str,
    /// The loopback port and path the provider's client registered as redirect.
    pub redirect_port: u16,
    pub redirect_path: &'static str,
    /// Origin of the device-code endpoints (OpenAI only).
    pub device_url: Option<&'static str>,
    /// Origin of the subscription backend (ChatGPT's Codex endpoint and usage).
    pub backend_url: Option<&'static str>,
    /// Refresh this long before the access token expires.
    pub refresh_lead_secs: u64,
    /// The provider's terms-of-use risk, shown before the first login.
    pub terms_risk: &'static str,
}

/// How long providers keep an unused prompt cache by default: Anthropic's 5-minute
/// ephemeral cache; OpenAI's and Gemini's implicit caches last minutes too.
pub const DEFAULT_CACHE_TTL_SECS: u64 = 300;

/// The beta flag Anthropic requires on requests made with an OAuth token.
pub const ANTHROPIC_OAUTH_BETA: &str = "oauth-2025-04-20";

const CLAUDE_OAUTH: OAuthDefaults = OAuthDefaults {
    client_id: "9d1c250a-e61b-44d9-88ed-5944d1962f5e",
    authorize_url: "https://claude.ai/oauth/authorize",
    token_url: "https://platform.claude.com/v1/oauth/token",
    scopes: "user:profile user:inference",
    redirect_port: 54545,
    redirect_path: "/callback",
    device_url: None,
    backend_url: None,
    refresh_lead_secs: 300,
    terms_risk: "Anthropic's terms reserve Claude Free/Pro/Max logins for Claude Code and Claude.ai. \
        Using your subscription through Keyway may breach them, and Anthropic may limit or close the \
        account. Keyway forwards your tools' own requests and never disguises them as Claude Code.",
};

const CHATGPT_OAUTH: OAuthDefaults = OAuthDefaults {
    client_id: "app_EMoamEEZ73f0CkXaXp7hrann",
    authorize_url: "https://auth.openai.com/oauth/authorize",
    token_url: "https://auth.openai.com/oauth/token",
    scopes: "openid email profile offline_access",
    redirect_port: 1455,
    redirect_path: "/auth/callback",
    device_url: Some("https://auth.openai.com"),
    backend_url: Some("https://chatgpt.com"),
    refresh_lead_secs: 600,
    terms_risk: "OpenAI has not said whether ChatGPT/Codex logins may be used by third-party tools. \
        Using your subscription through Keyway may breach its terms, and OpenAI may limit the account. \
        A login shares its refresh token with nothing else: keep it out of a running Codex CLI.",
};

/// Subscription login parameters of a provider kind, if it offers logins.
pub fn oauth_defaults(kind: ProviderKind) -> Option<&'static OAuthDefaults> {
    match kind {
        ProviderKind::Anthropic => Some(&CLAUDE_OAUTH),
        ProviderKind::OpenAi => Some(&CHATGPT_OAUTH),
        ProviderKind::Google | ProviderKind::Custom => None,
    }
}

pub fn built_in(id: &str) -> Option<&'static BuiltIn> {
    BUILT_INS.iter().find(|b| b.id == id)
}

impl BuiltIn {
    pub fn format(&self) -> Format {
        match self.kind {
            ProviderKind::Anthropic => Format::Anthropic,
            ProviderKind::Google => Format::Gemini,
            ProviderKind::OpenAi | ProviderKind::Custom => Format::OpenAi,
        }
    }
}

/// Provider ids are used in config keys, policy keys (`provider/family`) and account ids.
pub fn is_valid_id(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= 40
        && id
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn presets_parse_and_are_usable() {
        assert!(presets().len() >= 5);
        for (id, p) in presets() {
            assert!(is_valid_id(id), "{id}");
            assert!(built_in(id).is_none(), "{id} shadows a built-in");
            assert!(p.base_url.starts_with("https://"), "{id}");
            assert!(p.docs.starts_with("https://"), "{id}");
            assert!(!p.families.is_empty(), "{id}");
        }
        assert_eq!(
            preset("deepseek").map(|p| p.format),
            Some(Format::Anthropic)
        );
    }
}
