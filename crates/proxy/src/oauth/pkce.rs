//! PKCE (RFC 7636, S256) and the `state` parameter: random values from the OS generator.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use rand::RngCore;
use sha2::{Digest, Sha256};

/// A PKCE verifier and its S256 challenge.
pub struct Pkce {
    pub verifier: String,
    pub challenge: String,
}

impl Pkce {
    pub fn generate() -> Pkce {
        let verifier = random_token(32);
        let challenge = URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()));
        Pkce {
            verifier,
            challenge,
        }
    }
}

/// `bytes` random bytes, base64url without padding (43 characters for 32 bytes).
pub fn random_token(bytes: usize) -> String {
    let mut buf = vec![0u8; bytes];
    rand::rng().fill_bytes(&mut buf);
    URL_SAFE_NO_PAD.encode(buf)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 4648 §5 base64url without padding, written out here so the check below does not
    /// lean on the encoder `generate` uses.
    fn base64url(bytes: &[u8]) -> String {
        const ALPHABET: &[u8; 64] =
            b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
        let mut out = String::new();
        for chunk in bytes.chunks(3) {
            let n = chunk
                .iter()
                .enumerate()
                .fold(0u32, |n, (i, b)| n | u32::from(*b) << (16 - 8 * i));
            for i in 0..=chunk.len() {
                out.push(char::from(ALPHABET[(n >> (18 - 6 * i) & 63) as usize]));
            }
        }
        out
    }

    /// S256 as RFC 7636 §4.2 defines it: BASE64URL(SHA256(ASCII(code_verifier))).
    fn s256(verifier: &str) -> String {
        base64url(&Sha256::digest(verifier.as_bytes()))
    }

    #[test]
    fn the_independent_s256_matches_the_rfc_example() {
        // RFC 7636 appendix B.
        assert_eq!(
            s256("dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"),
            "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"
        );
        // RFC 4648 §10's vectors, unpadded.
        for (plain, encoded) in [
            ("f", "Zg"),
            ("fo", "Zm8"),
            ("foo", "Zm9v"),
            ("foob", "Zm9vYg"),
        ] {
            assert_eq!(base64url(plain.as_bytes()), encoded);
        }
    }

    #[test]
    fn generate_gives_a_verifier_and_its_s256_challenge() {
        let p = Pkce::generate();
        assert_eq!(p.challenge, s256(&p.verifier));
        // RFC 7636 §4.1: 43 to 128 unreserved characters.
        assert_eq!(p.verifier.len(), 43);
        assert!(
            p.verifier
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"-._~".contains(&b)),
            "{}",
            p.verifier
        );
        let other = Pkce::generate();
        assert_ne!(p.verifier, other.verifier);
        assert_eq!(other.challenge, s256(&other.verifier));
    }
}
