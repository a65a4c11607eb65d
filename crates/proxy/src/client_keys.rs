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

/// Every accepted key: the default one and the named ones.
pub struct ClientKeys {
    default: Arc<ClientKey>,
    named: Vec<Arc<ClientKey>>,
}

impl ClientKeys {
    /// The key `presented` matches. Every key is compared, each in constant time, so neither
    /// which key matched nor how much of one did shows in the timing.
    pub fn find(&self, presented: &str) -> Option<&Arc<ClientKey>> {
        let mut found = None;
        for key in self.iter() {
            if same_secret(presented, key.secret.expose()) {
                found = Some(key);
            }
        }
        found
    }

    pub fn get(&self, id: &str) -> Option<&Arc<ClientKey>> {
        self.iter().find(|k| &*k.id == id)
    }

    pub fn default_key(&self) -> &Arc<ClientKey> {
        &self.default
    }

    /// The default key first, then the named ones in config order.
    pub fn iter(&self) -> impl Iterator<Item = &Arc<ClientKey>> {
        std::iter::once(&self.default).chain(&self.named)
    }

    /// The keys `config` names. Secrets come from `previous` where it has them and from the
    /// keyring otherwise (on a blocking thread; the default key is created there when it does
    /// not exist yet); `default_secret` replaces the default key's (after a rotation). A named
    /// key whose secret is missing from the keyring is left out with a warning: it cannot be
    /// presented anyway.
    pub async fn load(
        config: &Config,
        store: &SecretStore,
        previous: Option<&ClientKeys>,
        default_secret: Option<Secret>,
    ) -> Result<ClientKeys, SecretError> {
        let entry_of = |id: &str| config.client_key(id);
        let mut secrets: HashMap<String, Secret> = previous
            .into_iter()
            .flat_map(ClientKeys::iter)
            .map(|k| (k.id.to_string(), k.secret.clone()))
            .collect();
        if let Some(s) = default_secret {
            secrets.insert(DEFAULT_ID.to_owned(), s);
        }
        let missing: Vec<String> = std::iter::once(DEFAULT_ID)
            .chain(config.client_keys.iter().map(|k| k.id.as_str()))
            .filter(|id| !secrets.contains_key(*id))
            .map(str::to_owned)
            .collect();
        if !missing.is_empty() {
            let store = store.clone();
            let found = run_blocking(move || {
                missing
                    .into_iter()
                    .map(|id| {
                        let entry = client_key::entry(&id);
                        let secret = if id == DEFAULT_ID {
                            Some(store.get_or_create(&entry, client_key::PREFIX)?)
                        } else {
                            store.get(&entry)?
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
        let build = |id: &str, secret: Secret| {
            let entry = entry_of(id);
            Arc::new(ClientKey {
                id: Arc::from(id),
                label: Arc::from(entry.map_or(DEFAULT_LABEL, |e| e.label.trim())),
                created_ms: entry.map_or(0, |e| e.created_ms),
                limits: entry.map(|e| e.limits).unwrap_or_default(),
                meter: previous
                    .and_then(|p| p.get(id))
                    .map_or_else(Arc::default, |k| k.meter.clone()),
                secret,
            })
        };
        let default_secret = secrets
            .remove(DEFAULT_ID)
            .ok_or_else(|| SecretError::missing(&client_key::entry(DEFAULT_ID)))?;
        let default = build(DEFAULT_ID, default_secret);
        let named = config
            .client_keys
            .iter()
            .filter(|k| k.id != DEFAULT_ID)
            .filter_map(|k| Some(build(&k.id, secrets.remove(&k.id)?)))
            .collect();
        Ok(ClientKeys { default, named })
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
