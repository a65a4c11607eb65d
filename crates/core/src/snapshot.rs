//! The snapshot: config, providers with their families, and the pool serving every
//! (provider, family). Built whole off to the side, then swapped in atomically by the engine.

use std::collections::HashMap;
use std::sync::Arc;

use crate::config::{Config, PolicyConfig};
use crate::family::{FamilySet, MAX_MODEL_BYTES};
use crate::pool::{Member, Pool};
use crate::prices::Prices;
use crate::provider::{self, AuthHeader, Format, ProviderKind, Surface};
use crate::state::{AccountState, StateRegistry};
use crate::strategy::Strategy;
use crate::target::{FallbackStep, Target};
use wildmatch::WildMatch;

/// `text` as a URI the way a URL parser reads it (hosts in their ASCII form, paths
/// percent-encoded), or `None` when it is not a valid URL.
pub fn parse_uri(text: &str) -> Option<http::Uri> {
    let url = url::Url::parse(text).ok()?;
    http::Uri::try_from(url.as_str()).ok()
}

pub struct ProviderRoute {
    pub id: String,
    pub kind: ProviderKind,
    /// The wire format it speaks.
    pub format: Format,
    /// Where its keys go.
    pub auth: AuthHeader,
    /// Without a trailing slash.
    pub base_url: String,
    /// `base_url` parsed once (`None` when the URL parser refuses it), so a request's URI is
    /// the base's scheme and authority with its own path and query, not a whole URL parsed
    /// again, host and all, on every request.
    pub base: Option<http::Uri>,
    /// Subscription login endpoints (anthropic and openai), with config overrides applied.
    pub oauth: Option<OAuthEndpoints>,
    pub families: FamilySet,
    /// How long the provider keeps an unused prompt cache (ms).
    pub cache_ttl_ms: u64,
    /// The pool of each family, by family index; families without their own policy share
    /// `any_pool`.
    family_pools: Vec<Arc<Pool>>,
    /// Serves models that match no family, and every family without a policy of its own.
    any_pool: Arc<Pool>,
    /// Whether `any_pool` comes from an explicit `[policies.<provider>]`.
    any_is_policy: bool,
}

/// A provider's login endpoints as this snapshot uses them.
#[derive(Debug, Clone)]
pub struct OAuthEndpoints {
    pub client_id: &'static str,
    pub authorize_url: String,
    pub token_url: String,
    pub scopes: &'static str,
    pub redirect_port: u16,
    pub redirect_path: &'static str,
    pub device_url: Option<String>,
    pub backend_url: Option<String>,
    pub refresh_lead_ms: u64,
    pub terms_risk: &'static str,
    /// The user already confirmed `terms_risk`.
    pub terms_accepted: bool,
}

impl OAuthEndpoints {
    fn resolve(
        kind: ProviderKind,
        user: Option<&crate::config::ProviderConfig>,
    ) -> Option<OAuthEndpoints> {
        let d = provider::oauth_defaults(kind)?;
        let o = user.and_then(|p| p.oauth.clone()).unwrap_or_default();
        let trim = |s: String| s.trim_end_matches('/').to_owned();
        Some(OAuthEndpoints {
            client_id: d.client_id,
            authorize_url: o
                .authorize_url
                .unwrap_or_else(|| d.authorize_url.to_owned()),
            token_url: o.token_url.unwrap_or_else(|| d.token_url.to_owned()),
            scopes: d.scopes,
            redirect_port: o.redirect_port.unwrap_or(d.redirect_port),
            redirect_path: d.redirect_path,
            device_url: o.device_url.or(d.device_url.map(str::to_owned)).map(trim),
            backend_url: o.backend_url.or(d.backend_url.map(str::to_owned)).map(trim),
            refresh_lead_ms: d.refresh_lead_secs * 1000,
            terms_risk: d.terms_risk,
            terms_accepted: user.is_some_and(|p| p.oauth_terms_accepted),
        })
    }

    /// The loopback redirect URI the provider's client registered.
    pub fn redirect_uri(&self) -> String {
        format!(
            "http://localhost:{}{}",
            self.redirect_port, self.redirect_path
        )
    }
}

/// Where one request goes.
#[derive(Clone, Copy)]
pub struct Route<'a> {
    pub provider: &'a ProviderRoute,
    pub family: Option<&'a str>,
    pub pool: &'a Arc<Pool>,
    /// The model to send instead of the one asked for (an alias's or a fallback step's).
    pub model: Option<&'a str>,
    /// The alias (its model glob) that sent the request here.
    pub alias: Option<&'a str>,
}

/// One `[aliases]` entry, its glob compiled.
struct Alias {
    glob: String,
    pattern: WildMatch,
    target: Target,
}

pub struct Snapshot {
    pub config: Arc<Config>,
    /// What requests cost: the config's price overrides over the built-in table.
    pub prices: Arc<Prices>,
    providers: Vec<ProviderRoute>,
    aliases: Vec<Alias>,
    states: HashMap<String, Arc<AccountState>>,
}

impl ProviderRoute {
    /// The statement of the provider's terms risk, when its subscription logins need a
    /// confirmation the user has not given before and does not give now (`accept_now`).
    pub fn unconfirmed_terms(&self, accept_now: bool) -> Option<&'static str> {
        let o = self.oauth.as_ref()?;
        (!o.terms_accepted && !accept_now).then_some(o.terms_risk)
    }

    /// The pool serving `family` (None = a model matching no family).
    pub fn pool(&self, family: Option<usize>) -> &Arc<Pool> {
        family.map_or(&self.any_pool, |f| &self.family_pools[f])
    }

    /// Every pool by the key it is (or would be) configured under, and whether it has a
    /// policy of its own: the provider-wide pool first, then each family. A family without a
    /// policy is served by the provider-wide pool, so that pool appears under its name too.
    pub fn pools(&self) -> impl Iterator<Item = (Option<&str>, &Arc<Pool>, bool)> {
        std::iter::once((None, &self.any_pool, self.any_is_policy)).chain(
            self.family_pools.iter().enumerate().map(|(i, p)| {
                (
                    Some(self.families.name(i)),
                    p,
                    !Arc::ptr_eq(p, &self.any_pool),
                )
            }),
        )
    }
}

impl Snapshot {
    /// Build a complete snapshot of `config`. Pools of `previous` whose shape is unchanged are
    /// reused so that their selectors keep their place in the sequence. An account that
    /// `previous` had disabled and `config` enables starts afresh (cooldown and attention
    /// cleared): re-enabling is how a user says "try it again".
    pub fn build(
        config: Arc<Config>,
        registry: &StateRegistry,
        previous: Option<&Snapshot>,
    ) -> Snapshot {
        registry.retain(|id| config.account(id).is_some());
        let mut states = HashMap::new();
        for a in &config.accounts {
            let state = registry.get_or_create(&a.id);
            let was_disabled = previous
                .and_then(|p| p.config.account(&a.id))
                .is_some_and(|old| !old.enabled);
            if was_disabled && a.enabled {
                state.reset();
            }
            // Limits are config, checked against counters that live in the state.
            state.set_limits(&a.limits);
            states.insert(a.id.clone(), state);
        }

        let providers = config
            .provider_ids()
            .map(|id| build_provider(&config, id, &states, previous.and_then(|p| p.provider(id))))
            .collect();
        let aliases = config
            .aliases
            .iter()
            .map(|(glob, target)| Alias {
                glob: glob.clone(),
                pattern: WildMatch::new(glob),
                target: target.clone(),
            })
            .collect();
        Snapshot {
            prices: Arc::new(Prices::from_config(&config)),
            config,
            providers,
            aliases,
            states,
        }
    }

    pub fn provider(&self, id: &str) -> Option<&ProviderRoute> {
        self.providers.iter().find(|p| p.id == id)
    }

    pub fn providers(&self) -> &[ProviderRoute] {
        &self.providers
    }

    /// The pool serving policy key `scope` (`provider` or `provider/family`).
    pub fn pool(&self, scope: &str) -> Option<&Arc<Pool>> {
        let (provider, _) = scope.split_once('/').unwrap_or((scope, ""));
        self.provider(provider)?
            .pools()
            .map(|(_, pool, _)| pool)
            .find(|pool| &*pool.scope == scope)
    }

    pub fn state(&self, account_id: &str) -> Option<&Arc<AccountState>> {
        self.states.get(account_id)
    }

    /// The provider, family and pool for a request of `surface` asking for `model`.
    ///
    /// The first alias whose glob matches the model decides, whatever format its provider
    /// speaks (the request is then translated); else the first custom provider (preset or the user's own) of that
    /// format one of whose families matches the model; else the built-in provider of the
    /// format (`anthropic`, `openai`, `google`).
    pub fn route(&self, surface: Surface, model: Option<&str>) -> Option<Route<'_>> {
        let format = Format::of(surface);
        // As with families: a name no real model has matches no alias glob, so megabytes a
        // client sent are never matched against them.
        if let Some(m) = model.filter(|m| m.len() <= MAX_MODEL_BYTES) {
            for alias in &self.aliases {
                if !alias.pattern.matches(m) {
                    continue;
                }
                if let Some(route) = self.route_to(&alias.target, Some(m)) {
                    return Some(Route {
                        alias: Some(&alias.glob),
                        ..route
                    });
                }
            }
        }
        let custom = model.and_then(|m| {
            self.providers
                .iter()
                .filter(|p| p.kind == ProviderKind::Custom && p.format == format)
                .find_map(|p| p.families.resolve(m).map(|f| (p, Some(f))))
        });
        let (provider, family) = match custom {
            Some(found) => found,
            None => {
                let built_in = provider::BUILT_INS.iter().find(|b| b.format() == format)?;
                (self.provider(built_in.id)?, None)
            }
        };
        let family = family.or_else(|| model.and_then(|m| provider.families.resolve(m)));
        Some(Route {
            provider,
            family: family.map(|f| provider.families.name(f)),
            pool: provider.pool(family),
            model: None,
            alias: None,
        })
    }

    /// Where `target` sends a request for `requested` (an alias or a fallback step): its
    /// provider, its family or the family the (rewritten) model falls in, that pool.
    pub fn route_to<'a>(
        &'a self,
        target: &'a Target,
        requested: Option<&str>,
    ) -> Option<Route<'a>> {
        let provider = self.provider(&target.provider)?;
        let family = match &target.family {
            Some(name) => Some(provider.families.index_of(name)?),
            None => target
                .model
                .as_deref()
                .or(requested)
                .and_then(|m| provider.families.resolve(m)),
        };
        Some(Route {
            provider,
            family: family.map(|f| provider.families.name(f)),
            pool: provider.pool(family),
            model: target.model.as_deref(),
            alias: None,
        })
    }

    /// The fallback chain of the policy serving `route`, each step resolved, in order.
    pub fn fallbacks<'a>(&'a self, route: &Route<'_>) -> Vec<(Route<'a>, &'a FallbackStep)> {
        self.config
            .policies
            .get(&*route.pool.scope)
            .map(|p| p.fallback.as_slice())
            .unwrap_or_default()
            .iter()
            .filter_map(|step| Some((self.route_to(&step.to, None)?, step)))
            .collect()
    }
}

fn build_provider(
    config: &Config,
    id: &str,
    states: &HashMap<String, Arc<AccountState>>,
    previous: Option<&ProviderRoute>,
) -> ProviderRoute {
    let built_in = provider::built_in(id);
    let preset = config.preset(id);
    let user = config.providers.get(id);
    let kind = config
        .provider_kind(id)
        .expect("provider ids come from the config");
    let base_url = user
        .and_then(|p| p.base_url.as_deref())
        .or(built_in.map(|b| b.default_base_url))
        .or(preset.map(|p| p.base_url.as_str()))
        .unwrap_or_default()
        .trim_end_matches('/')
        .to_owned();
    let preset_families: Vec<(&str, Vec<&str>)> = preset
        .map(|p| {
            p.families
                .iter()
                .map(|(n, g)| (n.as_str(), g.iter().map(String::as_str).collect()))
                .collect()
        })
        .unwrap_or_default();
    // A preset's families are its defaults, as a built-in's are.
    let preset_families: Vec<(&str, &[&str])> = preset_families
        .iter()
        .map(|(n, g)| (*n, g.as_slice()))
        .collect();
    let families = FamilySet::new(
        user.into_iter()
            .flat_map(|p| p.families.iter().map(|(n, g)| (n.as_str(), g.as_slice()))),
        built_in.map_or(preset_families.as_slice(), |b| b.families),
    );

    let reuse = |family: Option<&str>| {
        previous.map(|p| p.pool(family.and_then(|f| p.families.index_of(f))))
    };
    let any_policy = config.policies.get(id);
    let any_pool = make_pool(
        config,
        id,
        id,
        any_policy,
        states,
        reuse(None).filter(|_| previous.is_some_and(|p| p.any_is_policy == any_policy.is_some())),
    );
    let family_pools = (0..families.len())
        .map(|i| {
            let name = families.name(i);
            let scope = format!("{id}/{name}");
            match config.policies.get(&scope) {
                Some(policy) => {
                    let prev = previous
                        .filter(|p| {
                            p.families
                                .index_of(name)
                                .is_some_and(|fi| !Arc::ptr_eq(&p.family_pools[fi], &p.any_pool))
                        })
                        .and_then(|_| reuse(Some(name)));
                    make_pool(config, id, &scope, Some(policy), states, prev)
                }
                None => any_pool.clone(),
            }
        })
        .collect();
    ProviderRoute {
        id: id.to_owned(),
        kind,
        format: config
            .provider_format(id)
            .expect("provider ids come from the config"),
        auth: config
            .provider_auth(id)
            .expect("provider ids come from the config"),
        base: parse_uri(&base_url),
        base_url,
        oauth: OAuthEndpoints::resolve(kind, user),
        families,
        cache_ttl_ms: user
            .and_then(|p| p.cache_ttl_secs)
            .unwrap_or(provider::DEFAULT_CACHE_TTL_SECS)
            .saturating_mul(1000),
        family_pools,
        any_pool,
        any_is_policy: any_policy.is_some(),
    }
}

/// The pool for `policy` (or the default: round-robin over the provider's enabled accounts in
/// configured order), reusing `previous` when it has the same shape.
fn make_pool(
    config: &Config,
    provider: &str,
    scope: &str,
    policy: Option<&PolicyConfig>,
    states: &HashMap<String, Arc<AccountState>>,
    previous: Option<&Arc<Pool>>,
) -> Arc<Pool> {
    let strategy = policy.map_or(Strategy::RoundRobin, |p| p.strategy);
    let sessions = policy.map(PolicyConfig::sessions).unwrap_or_default();
    let listed = policy.map(|p| p.accounts.as_slice()).unwrap_or_default();
    let accounts: Vec<_> = if listed.is_empty() {
        config
            .accounts
            .iter()
            .filter(|a| a.provider == provider)
            .collect()
    } else {
        listed.iter().filter_map(|id| config.account(id)).collect()
    };
    let shape: Vec<(&str, u32)> = accounts
        .iter()
        .filter(|a| a.enabled)
        .map(|a| {
            let weight = policy
                .and_then(|p| p.weights.get(&a.id).copied())
                .unwrap_or(a.weight);
            (a.id.as_str(), weight)
        })
        .collect();
    if let Some(prev) = previous
        && prev.has_shape(scope, strategy, sessions, &shape)
    {
        return prev.clone();
    }
    let members = shape
        .into_iter()
        .map(|(id, weight)| {
            let kind = config.account(id).map(|a| a.kind).unwrap_or_default();
            Member::new(Arc::from(id), kind, weight, states[id].clone())
        })
        .collect();
    Arc::new(Pool::new(Arc::from(scope), strategy, sessions, members))
}

#[cfg(test)]
mod tests {
    use super::*;

    const CONFIG: &str = r#"
[[accounts]]
id = "a1"
provider = "anthropic"
label = "one"

[[accounts]]
id = "a2"
provider = "anthropic"
label = "two"

[[accounts]]
id = "or1"
provider = "openrouter"
label = "or"

[providers.openrouter]
base_url = "https://openrouter.ai/api/v1"
[providers.openrouter.families]
llama = ["meta-llama/*"]

[policies."anthropic/opus"]
strategy = "priority"
accounts = ["a2", "a1"]
"#;

    fn snapshot(text: &str, registry: &StateRegistry, prev: Option<&Snapshot>) -> Snapshot {
        Snapshot::build(Arc::new(Config::parse(text, None).unwrap()), registry, prev)
    }

    #[test]
    fn aliases_take_real_model_names_only() {
        let text = format!(
            "{CONFIG}\n[aliases]\n\"claude-haiku-*\" = \"anthropic/opus:claude-opus-4-1\"\n"
        );
        let reg = StateRegistry::default();
        let s = snapshot(&text, &reg, None);
        let r = s
            .route(Surface::AnthropicMessages, Some("claude-haiku-4-5"))
            .unwrap();
        assert_eq!(r.alias, Some("claude-haiku-*"));
        assert_eq!(r.model, Some("claude-opus-4-1"));
        assert_eq!(r.family, Some("opus"));
        // A name longer than any real model's is matched against no glob, an alias's neither.
        let huge = format!("claude-haiku-{}", "x".repeat(MAX_MODEL_BYTES));
        let r = s.route(Surface::AnthropicMessages, Some(&huge)).unwrap();
        assert_eq!((r.alias, r.model, r.family), (None, None, None));
        assert_eq!(r.provider.id, "anthropic");
    }

    #[test]
    fn routes_by_surface_and_model() {
        let reg = StateRegistry::default();
        let s = snapshot(CONFIG, &reg, None);
        let r = s
            .route(Surface::AnthropicMessages, Some("claude-opus-4-1"))
            .unwrap();
        assert_eq!(
            (r.provider.id.as_str(), r.family),
            ("anthropic", Some("opus"))
        );
        assert_eq!(r.pool.strategy, Strategy::Priority);
        assert_eq!(&*r.pool.members[0].id, "a2");

        let r = s
            .route(Surface::AnthropicMessages, Some("claude-sonnet-4-5"))
            .unwrap();
        assert_eq!(
            r.pool.strategy,
            Strategy::RoundRobin,
            "no sonnet policy: provider default"
        );

        let r = s
            .route(Surface::OpenAiChat, Some("meta-llama/llama-3-70b"))
            .unwrap();
        assert_eq!(r.provider.id, "openrouter");
        assert_eq!(r.provider.base_url, "https://openrouter.ai/api/v1");
        let r = s.route(Surface::OpenAiChat, Some("gpt-4o")).unwrap();
        assert_eq!((r.provider.id.as_str(), r.family), ("openai", Some("gpt")));
    }

    #[test]
    fn unchanged_pools_survive_a_swap() {
        let reg = StateRegistry::default();
        let s1 = snapshot(CONFIG, &reg, None);
        let edited = CONFIG.replace("label = \"two\"", "label = \"renamed\"");
        let s2 = snapshot(&edited, &reg, Some(&s1));
        let p1 = s1
            .route(Surface::AnthropicMessages, Some("opus"))
            .unwrap()
            .pool;
        let p2 = s2
            .route(Surface::AnthropicMessages, Some("opus"))
            .unwrap()
            .pool;
        assert!(Arc::ptr_eq(p1, p2));

        let reordered = CONFIG.replace("[\"a2\", \"a1\"]", "[\"a1\", \"a2\"]");
        let s3 = snapshot(&reordered, &reg, Some(&s2));
        let p3 = s3
            .route(Surface::AnthropicMessages, Some("opus"))
            .unwrap()
            .pool;
        assert!(!Arc::ptr_eq(p2, p3));
        assert!(
            Arc::ptr_eq(s1.state("a1").unwrap(), s3.state("a1").unwrap()),
            "account state outlives swaps"
        );
    }
}
