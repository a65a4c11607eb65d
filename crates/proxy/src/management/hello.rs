//! Proving to a command that it reached this Keyway before it sends the management token:
//! `GET /api/hello?nonce=…` needs no token and answers an HMAC of the nonce and this
//! instance's listen address, keyed with the token. Only a process that holds the token can
//! answer; a process squatting the port gets nothing worth having, and cannot borrow the
//! answer of a Keyway listening elsewhere (the address is part of what is signed). The
//! management token itself can be rotated; the old one stops working at once.

use std::sync::Arc;

use axum::Json;
use axum::extract::{Query, State};
use hmac::{Hmac, KeyInit, Mac};
use serde::{Deserialize, Serialize};
use sha2::Sha256;

use super::error::{Error, Result};
use super::state::Management;

/// The length a nonce must have, in bytes.
const NONCE_BYTES: std::ops::RangeInclusive<usize> = 16..=128;

/// The proof that whoever answers `nonce` for `listen` holds `token`: hex
/// HMAC-SHA256(token, "keyway hello v1\n" + nonce + "\n" + listen).
pub fn hello_proof(token: &str, nonce: &str, listen: &str) -> String {
    let mut mac = <Hmac<Sha256> as KeyInit>::new_from_slice(token.as_bytes())
        .unwrap_or_else(|_| unreachable!("HMAC takes a key of any length"));
    mac.update(b"keyway hello v1\n");
    mac.update(nonce.as_bytes());
    mac.update(b"\n");
    mac.update(listen.as_bytes());
    let bytes = mac.finalize().into_bytes();
    let mut hex = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        hex.push_str(&format!("{b:02x}"));
    }
    hex
}

#[derive(Deserialize)]
pub struct HelloQuery {
    nonce: String,
}

/// `GET /api/hello?nonce=…`
#[cfg_attr(test, derive(ts_rs::TS))]
#[derive(Serialize)]
pub struct Hello {
    /// Keyway's version.
    keyway: &'static str,
    /// Where this instance listens, as signed.
    listen: String,
    /// [`hello_proof`] of the nonce and `listen`.
    proof: String,
}

pub async fn hello(
    State(management): State<Arc<Management>>,
    Query(query): Query<HelloQuery>,
) -> Result<Json<Hello>> {
    if !NONCE_BYTES.contains(&query.nonce.len()) {
        return Err(Error::BadRequest(format!(
            "the nonce must be {} to {} characters",
            NONCE_BYTES.start(),
            NONCE_BYTES.end()
        )));
    }
    let listen = management
        .server()
        .listen()
        .map(|a| a.to_string())
        .ok_or_else(|| Error::Unavailable("Keyway is still starting".into()))?;
    let proof = hello_proof(management.token().expose(), &query.nonce, &listen);
    Ok(Json(Hello {
        keyway: env!("CARGO_PKG_VERSION"),
        listen,
        proof,
    }))
}

/// `POST /api/management-token/rotate`
#[cfg_attr(test, derive(ts_rs::TS))]
#[derive(Serialize)]
pub struct ManagementToken {
    token: String,
}

pub async fn rotate_token(
    State(management): State<Arc<Management>>,
) -> Result<Json<ManagementToken>> {
    let token = management.rotate_token().await?;
    Ok(Json(ManagementToken {
        token: token.expose().to_owned(),
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_proof_binds_token_nonce_and_address() {
        let p = hello_proof("kwm-a", "0123456789abcdef", "127.0.0.1:8765");
        assert_eq!(p.len(), 64);
        assert_eq!(
            p,
            hello_proof("kwm-a", "0123456789abcdef", "127.0.0.1:8765")
        );
        assert_ne!(
            p,
            hello_proof("kwm-b", "0123456789abcdef", "127.0.0.1:8765")
        );
        assert_ne!(
            p,
            hello_proof("kwm-a", "0123456789abcdee", "127.0.0.1:8765")
        );
        assert_ne!(
            p,
            hello_proof("kwm-a", "0123456789abcdef", "127.0.0.1:9999")
        );
    }
}
