//! The client keys a running instance accepts: the default key and the config's named keys,
//! each with its secret (read from the keyring when the key first appears, never on the
//! request path), its limits and its [`Meter`]. Built whole and swapped in like the snapshot;
//! a key's meter carries over from one build to the next, so a config edit resets no count.

use std::collections::HashMap;
use std::sync::Arc;

use keyway_core::client_key::{self, DEFAULT_ID, DEFAULT_LABEL, Limits};
use keyway_core::meter::Meter;
use keyway_core::secrets::SecretError;
use keyway_core::{Config, Secret, SecretStore};

use crate::blocking::run_blocking;

/// One accepted key.
pub struct ClientKey {
    pub id: Arc<str>,
    pub label: Arc<str>,
    /// Unix ms; 0 for the default key and hand-written entries.
    pub created_ms: u64,
    pub limits: Limits,
    pub meter: Arc<Meter>,
    secret: Secret,
}

impl ClientKey {
    pub fn secret(&self) -> &Secret {
        &self.secret
    }

    pub fn is_default(&self) -> bool {
        &*self.id == DEFAULT_ID
    }
}

/// Every accepted key, the default first.
#[derive(Default)]
pub struct ClientKeys {
    keys: Vec<Arc<ClientKey>>,
}

impl ClientKeys {
    /// The key `presented` matches. Every key is compared, each in constant time, so neither
    /// which key matched nor how much of one did shows in the timing.
    pub fn find(&self, presented: &str) -> Option<&Arc<ClientKey>> {
        let mut found = None;
        for key in &self.keys {
            if same_secret(presented, key.secret.expose()) {
                found = Some(key);
            }
        }
        found
    }

    pub fn get(&self, id: &str) -> Option<&Arc<ClientKey>> {
        self.keys.iter().find(|k| &*k.id == id)
    }

    pub fn default_key(&self) -> Option<&Arc<ClientKey>> {
        self.get(DEFAULT_ID)
    }

    pub fn iter(&self) -> impl Iterator<Item = &Arc<ClientKey>> {
        self.keys.iter()
    }

    /// The keys `config` names, with secrets from `previous` where it has them and from the
    /// keyring otherwise (on a blocking thread); `default_secret` replaces the default key's
    /// when given (at start and after a rotation). A named key whose secret is missing from
    /// the keyring is left out with a warning: it cannot be presented anyway.
    pub async fn load(
        config: &Config,
        store: &SecretStore,
        previous: &ClientKeys,
        default_secret: Option<Secret>,
    ) -> Result<ClientKeys, SecretError> {
        let mut wanted: Vec<(String, String, u64, Limits)> = vec![(
            DEFAULT_ID.to_owned(),
            DEFAULT_LABEL.to_owned(),
            0,
            Limits::default(),
        )];
        for k in &config.client_keys {
            let entry = (k.id.clone(), k.label.trim().to_owned(), k.created_ms, k.limits);
            match wanted.iter_mut().find(|w| w.0 == k.id) {
                Some(default) => *default = entry,
                None => wanted.push(entry),
            }
        }
        let mut secrets: HashMap<String, Secret> = previous
            .keys
            .iter()
            .map(|k| (k.id.to_string(), k.secret.clone()))
            .collect();
        if let Some(s) = default_secret {
            secrets.insert(DEFAULT_ID.to_owned(), s);
        }
        let missing: Vec<String> = wanted
            .iter()
            .map(|w| w.0.clone())
            .filter(|id| !secrets.contains_key(id))
            .collect();
        if !missing.is_empty() {
            let store = store.clone();
            let found = run_blocking(move || {
                missing
                    .into_iter()
                    .map(|id| {
                        let secret = if id == DEFAULT_ID {
                            Some(store.get_or_create(&client_key::entry(&id), client_key::PREFIX)?)
                        } else {
                            store.get(&client_key::entry(&id))?
                        };
                        Ok((id, secret))
                    })
                    .collect::<Result<Vec<_>, SecretError>>()
            })
            .await?;
            for (id, secret) in found {
                match secret {
                    Some(s) => {
                        secrets.insert(id, s);
                    }
                    None => tracing::warn!(
                        key = %id,
                        "no secret in the keyring for this client key; revoke it and add a new one"
                    ),
                }
            }
        }
        let keys = wanted
            .into_iter()
            .filter_map(|(id, label, created_ms, limits)| {
                let secret = secrets.remove(&id)?;
                let meter = previous
                    .get(&id)
                    .map_or_else(Arc::default, |k| k.meter.clone());
                Some(Arc::new(ClientKey {
                    id: Arc::from(id),
                    label: Arc::from(label),
                    created_ms,
                    limits,
                    meter,
                    secret,
                }))
            })
            .collect();
        Ok(ClientKeys { keys })
    }
}

/// Equal-time comparison, so a wrong key's timing says nothing about the right one.
pub fn same_secret(a: &str, b: &str) -> bool {
    a.len() == b.len()
        && a.bytes()
            .zip(b.bytes())
            .fold(0u8, |acc, (x, y)| acc | (x ^ y))
            == 0
}
