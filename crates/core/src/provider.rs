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

/// The client-facing API shape of a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Surface {
    AnthropicMessages,
    OpenAiChat,
    OpenAiResponses,
    Gemini,
}

impl Surface {
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
