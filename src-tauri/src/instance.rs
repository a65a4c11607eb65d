//! Talking to a running Keyway through its management API, for commands that show live state
//! or must change the running instance's memory (client-key and token rotation).
//!
//! The token goes only to a process that first proved it holds it: `GET /api/hello` with a
//! fresh nonce must come back signed with the token and the address asked (see
//! [`keyway_proxy::hello_proof`]). Whatever else listens on the address gets the nonce and
//! nothing more.

use std::net::SocketAddr;
use std::time::Duration;

use anyhow::Context as _;
use keyway_core::{Secret, secrets};
use serde::de::DeserializeOwned;
use serde_json::Value;

use crate::commands::Context;

/// A running instance, found at its listen address.
pub struct Instance {
    base: String,
    token: String,
    http: reqwest::Client,
}

impl Instance {
    /// The instance listening at `addr`, or `None` when nothing answers there. Fails when
    /// something answers but cannot prove it is this Keyway; it is sent no token. The secret
    /// store (for the management token) is opened only when something listens.
    pub async fn find(addr: SocketAddr, ctx: &Context) -> anyhow::Result<Option<Instance>> {
        if !listening(addr).await {
            return Ok(None);
        }
        let store = ctx.secrets().await?;
        let token = tokio::task::spawn_blocking(move || store.get(secrets::MANAGEMENT_TOKEN))
            .await
            .context("secret store task failed")??;
        let Some(token) = token else { return Ok(None) };
        let http = reqwest::Client::builder()
            .connect_timeout(Duration::from_millis(500))
            .timeout(Duration::from_secs(10))
            .redirect(reqwest::redirect::Policy::none())
            .no_proxy()
            .build()?;
        let instance = Instance {
            base: format!("http://{addr}/api"),
            token: token.expose().to_owned(),
            http,
        };
        let nonce = Secret::random("");
        let answer = match instance
            .http
            .get(format!("{}/hello", instance.base))
            .query(&[("nonce", nonce.expose())])
            .send()
            .await
        {
            Ok(r) => r,
            Err(e) if e.is_connect() => return Ok(None),
            Err(e) => anyhow::bail!(
                "something listens at {addr} but does not answer as Keyway ({e}); nothing was sent to it"
            ),
        };
        let proof: Option<String> = if answer.status().is_success() {
            answer
                .json::<Value>()
                .await
                .ok()
                .and_then(|v| v["proof"].as_str().map(str::to_owned))
        } else {
            None
        };
        let expected =
            keyway_proxy::hello_proof(&instance.token, nonce.expose(), &addr.to_string());
        if proof.as_deref() != Some(expected.as_str()) {
            anyhow::bail!(
                "something listens at {addr} but it is not this Keyway: it could not prove that it holds the management token, so the token was not sent to it. Is it another program, or a Keyway with another config or keyring service?"
            );
        }
        Ok(Some(instance))
    }

    pub async fn get<T: DeserializeOwned>(&self, path: &str) -> anyhow::Result<T> {
        let r = self
            .http
            .get(format!("{}{path}", self.base))
            .bearer_auth(&self.token)
            .send()
            .await?;
        api_result(r).await
    }

    pub async fn post<T: DeserializeOwned>(&self, path: &str) -> anyhow::Result<T> {
        let r = self
            .http
            .post(format!("{}{path}", self.base))
            .bearer_auth(&self.token)
            .send()
            .await?;
        api_result(r).await
    }

    pub async fn patch<T: DeserializeOwned>(
        &self,
        path: &str,
        body: &serde_json::Value,
    ) -> anyhow::Result<T> {
        let r = self
            .http
            .patch(format!("{}{path}", self.base))
            .bearer_auth(&self.token)
            .json(body)
            .send()
            .await?;
        api_result(r).await
    }
}

impl Instance {
    /// A call with a JSON body (`POST`, `PUT`, `DELETE`); the answer's JSON, `null` for none.
    pub async fn send<T: DeserializeOwned>(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<&serde_json::Value>,
    ) -> anyhow::Result<T> {
        let mut request = self
            .http
            .request(method, format!("{}{path}", self.base))
            .bearer_auth(&self.token);
        if let Some(body) = body {
            request = request.json(body);
        }
        let r = request.send().await?;
        if r.status() == reqwest::StatusCode::NO_CONTENT {
            return Ok(serde_json::from_value(serde_json::Value::Null)?);
        }
        api_result(r).await
    }
}

/// Whether anything accepts connections at `addr`.
pub async fn listening(addr: SocketAddr) -> bool {
    matches!(
        tokio::time::timeout(
            Duration::from_millis(500),
            tokio::net::TcpStream::connect(addr)
        )
        .await,
        Ok(Ok(_))
    )
}

/// The body of a successful answer, or the API's own error message.
async fn api_result<T: DeserializeOwned>(r: reqwest::Response) -> anyhow::Result<T> {
    if r.status().is_success() {
        return Ok(r.json().await?);
    }
    let status = r.status();
    let body: serde_json::Value = r.json().await.unwrap_or_default();
    match body["error"]["message"].as_str() {
        Some(m) => anyhow::bail!("{m}"),
        None => anyhow::bail!("the running Keyway answered {status}"),
    }
}
