//! Credentials that are good to send now: an API key as it is, a subscription login refreshed
//! when its access token is about to expire (or was refused). Refreshes are single-flight per
//! account: concurrent requests share one token call, which runs on its own task so that a
//! client going away does not cancel it, and no lock is held across it.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use futures_util::FutureExt;
use futures_util::future::{BoxFuture, Shared};
use keyway_core::secrets;
use keyway_core::snapshot::{OAuthEndpoints, ProviderRoute};
use keyway_core::state::{Attention, now_ms};
use keyway_core::{AccountState, Credential, OAuthTokens, SecretStore};

use crate::blocking::run_blocking;
use crate::oauth::token::{self, TokenError};

/// A refresh in flight, shared by every request that needs it.
type Flight = Shared<BoxFuture<'static, Result<Arc<Credential>, TokenError>>>;

/// The refreshes in flight, by account id. Bounded by the number of accounts: an entry lives
/// only while its refresh runs.
#[derive(Default)]
pub struct Refreshes {
    flights: Mutex<HashMap<String, Flight>>,
}

impl Refreshes {
    /// A credential of `account_id` that is good to send now. An API key as it is; a login
    /// whose access token expires within the provider's lead time is refreshed first. After a
    /// 401 with `rejected`, the login is refreshed unless someone already replaced that token.
    pub async fn usable(
        &self,
        http: &reqwest::Client,
        store: &SecretStore,
        provider: &ProviderRoute,
        account_id: &str,
        state: &Arc<AccountState>,
        rejected: Option<&Arc<Credential>>,
    ) -> Result<Arc<Credential>, TokenError> {
        let current = state
            .credential()
            .ok_or_else(|| TokenError::Transient("no credential in the keyring".into()))?;
        let Some(tokens) = current.oauth() else {
            return Ok(current);
        };
        let endpoints = provider.oauth.clone().ok_or_else(|| {
            TokenError::Revoked(format!("{} has no subscription logins", provider.id))
        })?;
        match rejected {
            Some(used) if !Arc::ptr_eq(used, &current) => return Ok(current),
            None if tokens.expires_at_ms > now_ms() + endpoints.refresh_lead_ms => {
                return Ok(current);
            }
            _ => {}
        }
        let flight = {
            let mut flights = self.flights.lock().unwrap_or_else(|p| p.into_inner());
            match flights.get(account_id) {
                Some(f) => f.clone(),
                None => {
                    // A refresh may have finished since `current` was read: its refresh token
                    // is the live one, and the old one is already spent.
                    let latest = state.credential();
                    if let Some(latest) = latest.filter(|l| !Arc::ptr_eq(l, &current)) {
                        return Ok(latest);
                    }
                    let task = tokio::spawn(refresh_and_store(
                        http.clone(),
                        store.clone(),
                        endpoints,
                        account_id.to_owned(),
                        state.clone(),
                        tokens.clone(),
                    ));
                    let f: Flight = async move {
                        task.await.unwrap_or_else(|_| {
                            Err(TokenError::Transient("the refresh task failed".into()))
                        })
                    }
                    .boxed()
                    .shared();
                    flights.insert(account_id.to_owned(), f.clone());
                    f
                }
            }
        };
        let result = flight.clone().await;
        let mut flights = self.flights.lock().unwrap_or_else(|p| p.into_inner());
        if flights.get(account_id).is_some_and(|f| f.ptr_eq(&flight)) {
            flights.remove(account_id);
        }
        result
    }
}

/// Refresh a login and keep the result: the rotated refresh token goes to the keyring before
/// the new access token is used, since the old refresh token is dead from now on.
async fn refresh_and_store(
    http: reqwest::Client,
    store: SecretStore,
    endpoints: OAuthEndpoints,
    account_id: String,
    state: Arc<AccountState>,
    old: OAuthTokens,
) -> Result<Arc<Credential>, TokenError> {
    match token::refresh(&http, &endpoints, &old).await {
        Ok(tokens) => {
            let credential = Credential::OAuth(tokens);
            let encoded = credential.encode();
            let name = secrets::account_entry(&account_id);
            if let Err(e) = run_blocking(move || store.set(&name, &encoded)).await {
                // Losing the new refresh token would lose the login: keep using it, loudly.
                tracing::error!(account = %account_id, error = %e, "cannot save the renewed login to the keyring; it lasts until Keyway stops");
            }
            state.set_credential(Some(credential));
            tracing::info!(account = %account_id, "login renewed");
            state
                .credential()
                .ok_or_else(|| TokenError::Transient("the renewed login vanished".into()))
        }
        Err(TokenError::Revoked(reason)) => {
            state.mark(Attention::NeedsLogin, reason.clone());
            Err(TokenError::Revoked(reason))
        }
        Err(TokenError::Transient(reason)) => {
            state.record_cooldown(None, reason.clone(), now_ms());
            Err(TokenError::Transient(reason))
        }
    }
}
