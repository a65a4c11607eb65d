//! Talking to a running Keyway through its management API, for commands that show live state
//! or must change the running instance's memory (client-key rotation).

use std::net::SocketAddr;
use std::time::Duration;

use anyhow::Context as _;
use keyway_core::secrets;
use serde::de::DeserializeOwned;

use crate::commands::Context;

/// A running instance, found at its listen address.
pub struct Instance {
    base: String,
    token: String,
    http: reqwest::Client,
}

impl Instance {
    /// The instance listening at `addr`, or `None` when nothing answers there. The secret
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
            .build()?;
        let instance = Instance {
            base: format!("http://{addr}/api"),
            token: token.expose().to_owned(),
            http,
        };
        match instance
            .http
            .get(format!("{}/status", instance.base))
            .bearer_auth(&instance.token)
            .send()
            .await
        {
            Ok(r) if r.status().is_success() => Ok(Some(instance)),
            Ok(r) => anyhow::bail!(
                "something answers at {addr} but refused the management token ({}); is it another program, or a Keyway with another keyring service?",
                r.status()
            ),
            Err(_) => Ok(None),
        }
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
