//! Provider definitions: the one place that knows each built-in provider's id, default base
//! URL, auth header and default model families. Everything else asks this module.

use std::fmt;

/// How a provider is spoken to upstream.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ProviderKind {
    /// Anthropic Messages API, `x-api-key` auth.
    Anthropic,
    /// OpenAI Chat Completions and Responses, bearer auth.
    OpenAi,
    /// Google Gemini generateContent, `x-goog-api-key` auth.
    Google,
    /// A user-defined OpenAI-compatible service (OpenRouter, DeepSeek, Ollama, ...). Its base
    /// URL is taken as the service documents it, usually ending in `/v1`.
    OpenAiCompatible,
}

impl ProviderKind {
    pub fn as_str(self) -> &'static str {
        match self {
            ProviderKind::Anthropic => "anthropic",
            ProviderKind::OpenAi => "openai",
            ProviderKind::Google => "google",
            ProviderKind::OpenAiCompatible => "openai_compatible",
        }
    }
}

/// The client-facing API shape of a request.
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize)]
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
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuthHeader {
    /// `x-api-key: <secret>`
    XApiKey,
    /// `authorization: Bearer <secret>`
    Bearer,
    /// `x-goog-api-key: <secret>`
    XGoogApiKey,
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
        ProviderKind::Google | ProviderKind::OpenAiCompatible => None,
    }
}

pub fn built_in(id: &str) -> Option<&'static BuiltIn> {
    BUILT_INS.iter().find(|b| b.id == id)
}

impl ProviderKind {
    pub fn auth_header(self) -> AuthHeader {
        match self {
            ProviderKind::Anthropic => AuthHeader::XApiKey,
            ProviderKind::OpenAi | ProviderKind::OpenAiCompatible => AuthHeader::Bearer,
            ProviderKind::Google => AuthHeader::XGoogApiKey,
        }
    }

    /// Whether a request of this surface can be served by this kind of provider.
    pub fn serves(self, surface: Surface) -> bool {
        match self {
            ProviderKind::Anthropic => surface == Surface::AnthropicMessages,
            ProviderKind::OpenAi | ProviderKind::OpenAiCompatible => {
                matches!(surface, Surface::OpenAiChat | Surface::OpenAiResponses)
            }
            ProviderKind::Google => surface == Surface::Gemini,
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
