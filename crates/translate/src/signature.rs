//! Reasoning signatures carried through clients that cannot say whose they are.
//!
//! A signature only means something to the provider that made it: Anthropic refuses a
//! thinking block whose signature is not its own, and Gemini one it cannot read. A client may
//! switch models mid-conversation (Claude Code's `/model`, Codex's `-m`), so its history can
//! hold signatures from several providers. Where a client keeps a signature as opaque text
//! (an Anthropic client's `signature`, a Responses client's `encrypted_content`), Keyway
//! writes the maker's name in front (`keyway-gemini:…`), and on the way back gives a
//! signature only to its maker; any other is left out, and the thinking it signed is then
//! sent unsigned or not at all, as the target's rules say. A Gemini client gets signatures
//! bare, since its SDK reads `thoughtSignature` as base64.

use crate::UpstreamFormat;

/// Anthropic redacted thinking, carried in a Responses client's `encrypted_content`.
pub const REDACTED: &str = "keyway-redacted:";

fn prefix(format: UpstreamFormat) -> &'static str {
    match format {
        UpstreamFormat::Anthropic => "keyway-anthropic:",
        UpstreamFormat::OpenAi => "keyway-openai:",
        UpstreamFormat::Gemini => "keyway-gemini:",
    }
}

/// `signature`, made by `maker`, as the client should keep it. `native` is the format whose
/// signatures the client keeps bare (an Anthropic client's own).
pub fn wrap(signature: &str, maker: UpstreamFormat, native: Option<UpstreamFormat>) -> String {
    if native == Some(maker) {
        return signature.to_owned();
    }
    format!("{}{signature}", prefix(maker))
}

/// The signature in a client's `value`, when `target` made it. A bare value was made by
/// `native` (none, for a Responses client: a bare `encrypted_content` is OpenAI's own).
pub fn unwrap(
    value: String,
    target: UpstreamFormat,
    native: Option<UpstreamFormat>,
) -> Option<String> {
    for maker in [
        UpstreamFormat::Anthropic,
        UpstreamFormat::OpenAi,
        UpstreamFormat::Gemini,
    ] {
        if let Some(rest) = value.strip_prefix(prefix(maker)) {
            return (maker == target && !rest.is_empty()).then(|| rest.to_owned());
        }
    }
    (native == Some(target) && !value.is_empty()).then_some(value)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_signature_goes_back_only_to_its_maker() {
        let g = wrap(
            "abc",
            UpstreamFormat::Gemini,
            Some(UpstreamFormat::Anthropic),
        );
        assert_eq!(g, "keyway-gemini:abc");
        assert_eq!(
            unwrap(
                g.clone(),
                UpstreamFormat::Gemini,
                Some(UpstreamFormat::Anthropic)
            ),
            Some("abc".into())
        );
        assert_eq!(
            unwrap(
                g,
                UpstreamFormat::Anthropic,
                Some(UpstreamFormat::Anthropic)
            ),
            None
        );
        // An Anthropic client's own signatures are bare, and only Anthropic's.
        assert_eq!(
            wrap(
                "s",
                UpstreamFormat::Anthropic,
                Some(UpstreamFormat::Anthropic)
            ),
            "s"
        );
        assert_eq!(
            unwrap(
                "s".into(),
                UpstreamFormat::Gemini,
                Some(UpstreamFormat::Anthropic)
            ),
            None
        );
        // A Responses client's bare encrypted_content is OpenAI's.
        assert_eq!(
            unwrap("gAAAA".into(), UpstreamFormat::Anthropic, None),
            None
        );
    }
}
