//! The management API under `/api`: status, accounts and policies. It is the one backend
//! interface of every UI and of `keyway account list` against a running instance. Responses
//! never contain account secrets. Mutations go through [`Engine::edit`]: validated as a whole,
//! saved atomically, swapped in — or nothing changes.

use std::sync::Arc;

use axum::Json;
use axum::extract::{FromRequest, Path, State};
use axum::http::{Method, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::MethodRouter;
use indexmap::IndexMap;
use keyway_core::account::AccountKind;
use keyway_core::config::{AccountConfig, Config, PolicyConfig};
use keyway_core::state::{AccountStatus, now_ms};
use keyway_core::{ConfigError, Credential, PolicyKey, Secret, Snapshot, Strategy};
use serde::{Deserialize, Serialize};
use serde_json::json;

use keyway_core::edit::ConfigDocument;

use crate::engine::{EditError, Engine};
use crate::history::Totals;
use crate::logins::{CancelError, LoginView, unconfirmed_terms};
use crate::oauth::import;

mod connect;
mod settings;
mod traffic;

/// Every management route as (method, path under `/api`, handler). The router is built from
/// this list and a test checks `docs/API.md` against it, so the reference cannot drift.
pub fn routes() -> Vec<(Method, &'static str, MethodRouter<Arc<Engine>>)> {
    use axum::routing::{delete, get, patch, post, put};
    vec![
        (Method::GET, "/status", get(status)),
        (Method::GET, "/requests", get(traffic::recent_requests)),
        (Method::GET, "/events", get(traffic::events)),
        (Method::GET, "/accounts", get(list_accounts)),
        (Method::POST, "/accounts", post(add_account)),
        (Method::PATCH, "/accounts/{id}", patch(update_account)),
        (Method::DELETE, "/accounts/{id}", delete(remove_account)),
        (Method::GET, "/providers", get(list_providers)),
        (Method::POST, "/logins", post(start_login)),
        (Method::GET, "/logins/{id}", get(login_status)),
        (Method::DELETE, "/logins/{id}", delete(cancel_login)),
        (Method::POST, "/logins/{id}/code", post(paste_login_code)),
        (Method::POST, "/imports", post(import_login)),
        (Method::GET, "/policies", get(list_policies)),
        (
            Method::PUT,
            "/policies/{provider}",
            put(put_provider_policy),
        ),
        (
            Method::PUT,
            "/policies/{provider}/{family}",
            put(put_family_policy),
        ),
        (
            Method::DELETE,
            "/policies/{provider}",
            delete(delete_provider_policy),
        ),
        (
            Method::DELETE,
            "/policies/{provider}/{family}",
            delete(delete_family_policy),
        ),
        (Method::POST, "/policies/preview", post(preview_policy)),
        (Method::GET, "/usage", get(traffic::usage)),
        (Method::GET, "/usage.csv", get(traffic::usage_csv)),
        (Method::GET, "/connect", get(connect::list)),
        (
            Method::POST,
            "/connect/{tool}/preview",
            post(connect::preview),
        ),
        (Method::POST, "/connect/{tool}", post(connect::connect)),
        (
            Method::DELETE,
            "/connect/{tool}",
            delete(connect::disconnect),
        ),
        (Method::POST, "/pause", post(pause)),
        (Method::POST, "/resume", post(resume)),
        (Method::GET, "/client-key", get(client_key)),
        (Method::POST, "/client-key/rotate", post(rotate_client_key)),
        (Method::GET, "/settings", get(settings::get_settings)),
        (Method::PATCH, "/settings", patch(settings::patch_settings)),
        (Method::POST, "/logs/open", post(settings::open_logs)),
    ]
}

/// An error of the management API: `{"error": {"message": ...}}` with a fitting status.
#[derive(Debug)]
pub struct ApiError {
    status: StatusCode,
    message: String,
}

impl ApiError {
    pub fn new(status: StatusCode, message: impl Into<String>) -> Self {
        ApiError {
            status,
            message: message.into(),
        }
    }
}

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        (
            self.status,
            Json(json!({ "error": { "message": self.message } })),
        )
            .into_response()
    }
}

impl From<EditError> for ApiError {
    fn from(e: EditError) -> Self {
        let status = match e {
            EditError::Invalid(_) => StatusCode::BAD_REQUEST,
            EditError::NotFound(_) => StatusCode::NOT_FOUND,
            EditError::Broken(_) => StatusCode::CONFLICT,
            EditError::Io(_) => StatusCode::INTERNAL_SERVER_ERROR,
        };
        ApiError::new(status, e.to_string())
    }
}

type ApiResult<T> = Result<T, ApiError>;

/// A JSON body whose rejection (bad JSON, unknown field, wrong type) is an [`ApiError`] in the
/// API's own error shape, naming what is wrong.
pub struct ApiJson<T>(pub T);

impl<S: Send + Sync, T: serde::de::DeserializeOwned> FromRequest<S> for ApiJson<T> {
    type Rejection = ApiError;

    async fn from_request(request: axum::extract::Request, state: &S) -> Result<Self, ApiError> {
        match Json::<T>::from_request(request, state).await {
            Ok(Json(value)) => Ok(ApiJson(value)),
            // A well-formed body with a wrong value (a weight too large for u32) is bad input
            // like any other: 400, naming the field.
            Err(rejection) => Err(ApiError::new(
                match rejection.status() {
                    StatusCode::UNPROCESSABLE_ENTITY => StatusCode::BAD_REQUEST,
                    other => other,
                },
                rejection.body_text(),
            )),
        }
    }
}

/// An account as the API shows it: metadata from the config, live state from the engine.
#[derive(Debug, Serialize, Deserialize, Clone, PartialEq)]
pub struct AccountView {
    pub id: String,
    pub label: String,
    pub provider: String,
    pub kind: AccountKind,
    pub enabled: bool,
    pub weight: u32,
    /// `None` when no instance is running (CLI only).
    pub live: Option<AccountStatus>,
    /// Requests and tokens since local midnight, from the usage history.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub today: Option<Totals>,
}

impl AccountView {
    pub fn new(a: &AccountConfig, live: Option<AccountStatus>) -> AccountView {
        AccountView {
            id: a.id.clone(),
            label: a.label.clone(),
            provider: a.provider.clone(),
            kind: a.kind,
            enabled: a.enabled,
            weight: a.weight,
            live,
            today: None,
        }
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct PolicyView {
    /// `provider` or `provider/family`.
    pub key: String,
    pub provider: String,
    pub family: Option<String>,
    pub strategy: Strategy,
    /// False for the built-in default (round-robin over all enabled accounts).
    pub configured: bool,
    /// The accounts as configured (empty: all enabled accounts of the provider).
    pub accounts: Vec<String>,
    pub weights: IndexMap<String, u32>,
    /// The accounts actually taking part now, in order, with their effective weights.
    pub members: Vec<MemberView>,
}

#[derive(Debug, Clone, Serialize)]
pub struct MemberView {
    pub id: String,
    pub weight: u32,
}

pub fn account_views(snapshot: &Snapshot) -> Vec<AccountView> {
    let now = now_ms();
    snapshot
        .config
        .accounts
        .iter()
        .map(|a| AccountView::new(a, snapshot.state(&a.id).map(|s| s.status(now))))
        .collect()
}

pub fn policy_views(snapshot: &Snapshot) -> Vec<PolicyView> {
    let config = &snapshot.config;
    let mut out = Vec::new();
    for provider in snapshot.providers() {
        for (family, pool, configured) in provider.pools() {
            let key = match family {
                Some(f) => format!("{}/{f}", provider.id),
                None => provider.id.clone(),
            };
            let policy = config.policies.get(&key);
            out.push(PolicyView {
                provider: provider.id.clone(),
                family: family.map(str::to_owned),
                strategy: pool.strategy,
                configured,
                accounts: policy.map(|p| p.accounts.clone()).unwrap_or_default(),
                weights: policy.map(|p| p.weights.clone()).unwrap_or_default(),
                members: pool
                    .members
                    .iter()
                    .map(|m| MemberView {
                        id: m.id.to_string(),
                        weight: m.weight,
                    })
                    .collect(),
                key,
            });
        }
    }
    out
}

pub async fn status(State(engine): State<Arc<Engine>>) -> Json<serde_json::Value> {
    let rejected: Option<ConfigError> = engine.rejected_edit();
    Json(json!({
        "version": env!("CARGO_PKG_VERSION"),
        "listen": engine.listen().map(|a| a.to_string()),
        "paused": engine.paused(),
        "config": {
            "path": engine.config_path().display().to_string(),
            "ok": rejected.is_none(),
            "error": rejected,
        },
        "traffic": engine.traffic().last_minute(now_ms()),
        "accounts": accounts_with_today(&engine).await,
    }))
}

pub async fn list_accounts(State(engine): State<Arc<Engine>>) -> Json<Vec<AccountView>> {
    Json(accounts_with_today(&engine).await)
}

/// The account views with today's totals from the usage history (left out if it is off).
async fn accounts_with_today(engine: &Engine) -> Vec<AccountView> {
    let mut views = account_views(&engine.snapshot());
    let Some(history) = engine.traffic().history() else {
        return views;
    };
    match history.today_by_account().await {
        Ok(today) => {
            for view in &mut views {
                view.today = Some(
                    today
                        .iter()
                        .find(|t| t.key == view.id)
                        .cloned()
                        .unwrap_or_else(|| Totals {
                            key: view.id.clone(),
                            ..Totals::default()
                        }),
                );
            }
        }
        Err(e) => tracing::warn!(error = %e, "today's usage is not shown"),
    }
    views
}

#[derive(Serialize)]
pub struct ProviderView {
    id: String,
    kind: &'static str,
    base_url: String,
    login: bool,
    /// The statement to confirm before a login or import; `None` once accepted.
    terms: Option<&'static str>,
    terms_accepted: bool,
    families: Vec<String>,
}

pub async fn list_providers(State(engine): State<Arc<Engine>>) -> Json<Vec<ProviderView>> {
    let snapshot = engine.snapshot();
    Json(
        snapshot
            .providers()
            .iter()
            .map(|p| ProviderView {
                id: p.id.clone(),
                kind: p.kind.as_str(),
                base_url: p.base_url.clone(),
                login: p.oauth.is_some(),
                terms: unconfirmed_terms(p, false).filter(|_| p.oauth.is_some()),
                terms_accepted: p.oauth.is_some() && unconfirmed_terms(p, false).is_none(),
                families: p.families.names().map(str::to_owned).collect(),
            })
            .collect(),
    )
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewAccount {
    provider: String,
    label: String,
    secret: String,
    #[serde(default = "one")]
    weight: u32,
}

fn one() -> u32 {
    1
}

/// Checks shared by the CLI and the API for a new account's provider and label.
pub fn check_new_account(config: &Config, provider: &str, label: &str) -> Result<(), String> {
    if config.provider_kind(provider).is_none() {
        return Err(format!(
            "unknown provider `{provider}`; known providers: {}",
            config.provider_ids().collect::<Vec<_>>().join(", ")
        ));
    }
    if label.trim().is_empty() {
        return Err("the label is empty; give the account a name you will recognise".to_owned());
    }
    Ok(())
}

/// Checks shared by the CLI and the API for a new account's secret.
pub fn check_secret(secret: &str) -> Result<(), String> {
    let secret = secret.trim();
    if secret.is_empty() {
        return Err("the secret is empty; paste the provider's API key".to_owned());
    }
    if secret.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(
            "the secret contains spaces or control characters; paste only the API key".to_owned(),
        );
    }
    Ok(())
}

pub async fn add_account(
    State(engine): State<Arc<Engine>>,
    ApiJson(new): ApiJson<NewAccount>,
) -> ApiResult<(StatusCode, Json<AccountView>)> {
    let current = engine.snapshot();
    check_new_account(&current.config, &new.provider, &new.label)
        .and_then(|()| check_secret(&new.secret))
        .map_err(|m| ApiError::new(StatusCode::BAD_REQUEST, m))?;
    let id = engine
        .add_account(
            &new.provider,
            new.label.trim().to_owned(),
            new.weight,
            Credential::ApiKey(Secret::new(new.secret.trim())),
            false,
        )
        .await?;
    let view = accounts_with_today(&engine)
        .await
        .into_iter()
        .find(|a| a.id == id)
        .ok_or_else(|| {
            ApiError::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                "the account vanished after saving",
            )
        })?;
    Ok((StatusCode::CREATED, Json(view)))
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct AccountChange {
    pub label: Option<String>,
    pub weight: Option<u32>,
    pub enabled: Option<bool>,
}

pub async fn update_account(
    State(engine): State<Arc<Engine>>,
    Path(id): Path<String>,
    ApiJson(change): ApiJson<AccountChange>,
) -> ApiResult<Json<AccountView>> {
    change_account(&engine, &id, change).await.map(Json)
}

/// Apply `change` to account `id` as one edit; the API and the tray both come here.
pub async fn change_account(
    engine: &Engine,
    id: &str,
    change: AccountChange,
) -> ApiResult<AccountView> {
    let id = id.to_owned();
    engine
        .edit(|doc, config| {
            if config.account(&id).is_none() {
                return Err(unknown_account(&id));
            }
            if let Some(label) = &change.label {
                if label.trim().is_empty() {
                    return Err(EditError::Invalid("the label is empty".to_owned()));
                }
                doc.set_account_field(&id, "label", label.trim().into());
            }
            if let Some(weight) = change.weight {
                doc.set_account_field(&id, "weight", i64::from(weight).into());
            }
            if let Some(enabled) = change.enabled {
                doc.set_account_field(&id, "enabled", enabled.into());
            }
            Ok(())
        })
        .await?;
    let snapshot = engine.snapshot();
    if change.enabled == Some(true)
        && let Some(state) = snapshot.state(&id)
    {
        // Enabling is how a user says "try it again": forget cooldowns and refusals.
        state.reset();
    }
    accounts_with_today(engine)
        .await
        .into_iter()
        .find(|a| a.id == id)
        .ok_or_else(|| unknown_account(&id).into())
}

pub async fn remove_account(
    State(engine): State<Arc<Engine>>,
    Path(id): Path<String>,
) -> ApiResult<Json<serde_json::Value>> {
    let removed_policies = engine
        .edit(|doc, _| doc.remove_account(&id).ok_or_else(|| unknown_account(&id)))
        .await?;
    if let Err(e) = engine.delete_account_secret(&id).await {
        tracing::warn!(account = %id, error = %e, "account removed but its keyring entry could not be deleted");
    }
    Ok(Json(
        json!({ "removed": id, "removed_policies": removed_policies }),
    ))
}

fn unknown_account(id: &str) -> EditError {
    EditError::NotFound(format!(
        "no account `{id}`; list them with GET /api/accounts"
    ))
}

pub async fn list_policies(State(engine): State<Arc<Engine>>) -> Json<Vec<PolicyView>> {
    Json(policy_views(&engine.snapshot()))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PolicyBody {
    strategy: String,
    #[serde(default)]
    accounts: Vec<String>,
    #[serde(default)]
    weights: IndexMap<String, u32>,
}

fn policy_key(provider: &str, family: Option<&str>) -> ApiResult<PolicyKey> {
    let raw = match family {
        Some(f) => format!("{provider}/{f}"),
        None => provider.to_owned(),
    };
    raw.parse().map_err(|e: keyway_core::policy::BadPolicyKey| {
        ApiError::new(StatusCode::BAD_REQUEST, e.to_string())
    })
}

impl PolicyBody {
    fn into_policy(self) -> ApiResult<PolicyConfig> {
        let strategy: Strategy =
            self.strategy
                .parse()
                .map_err(|e: keyway_core::strategy::UnknownStrategy| {
                    ApiError::new(StatusCode::BAD_REQUEST, e.to_string())
                })?;
        Ok(PolicyConfig {
            strategy,
            accounts: self.accounts,
            weights: self.weights,
        })
    }
}

async fn put_policy(
    engine: &Engine,
    key: PolicyKey,
    body: PolicyBody,
) -> ApiResult<Json<PolicyView>> {
    apply_policy(engine, key, body.into_policy()?)
        .await
        .map(Json)
}

/// Change only the strategy of the policy `key` (`provider` or `provider/family`), keeping
/// its accounts and weights; a pool on the default policy gets a policy of its own.
pub async fn set_strategy(engine: &Engine, key: &str, strategy: Strategy) -> ApiResult<PolicyView> {
    let key: PolicyKey = key
        .parse()
        .map_err(|e: keyway_core::policy::BadPolicyKey| {
            ApiError::new(StatusCode::BAD_REQUEST, e.to_string())
        })?;
    let current = engine
        .snapshot()
        .config
        .policies
        .get(&key.to_string())
        .cloned();
    let policy = match current {
        Some(p) => PolicyConfig { strategy, ..p },
        None => PolicyConfig {
            strategy,
            accounts: Vec::new(),
            weights: IndexMap::new(),
        },
    };
    apply_policy(engine, key, policy).await
}

/// Save `policy` as `key` and swap it in; the API and the tray both come here.
async fn apply_policy(
    engine: &Engine,
    key: PolicyKey,
    policy: PolicyConfig,
) -> ApiResult<PolicyView> {
    engine
        .edit(|doc, _| {
            doc.set_policy(&key, &policy);
            Ok(())
        })
        .await?;
    let wanted = key.to_string();
    policy_views(&engine.snapshot())
        .into_iter()
        .find(|p| p.key == wanted)
        .ok_or_else(|| {
            ApiError::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                "the policy vanished after saving",
            )
        })
}

/// Most picks a preview may ask for.
const PREVIEW_MAX: usize = 100;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PreviewBody {
    provider: String,
    family: Option<String>,
    strategy: String,
    #[serde(default)]
    accounts: Vec<String>,
    #[serde(default)]
    weights: IndexMap<String, u32>,
    count: Option<usize>,
}

/// The picks a policy would make, from a snapshot built off to the side with fresh selectors:
/// nothing is saved and the live pools keep their place.
pub async fn preview_policy(
    State(engine): State<Arc<Engine>>,
    ApiJson(body): ApiJson<PreviewBody>,
) -> ApiResult<Json<serde_json::Value>> {
    let key = policy_key(&body.provider, body.family.as_deref())?;
    let count = body.count.unwrap_or(10).min(PREVIEW_MAX);
    let policy = PolicyBody {
        strategy: body.strategy,
        accounts: body.accounts,
        weights: body.weights,
    }
    .into_policy()?;
    let path = engine.config_path();
    let mut doc = if path.exists() {
        ConfigDocument::load(path).map_err(EditError::Broken)?
    } else {
        ConfigDocument::default_at(path)
    };
    doc.set_policy(&key, &policy);
    let config = doc
        .validate()
        .map_err(|e| ApiError::new(StatusCode::BAD_REQUEST, e.message))?;
    let trial = Snapshot::build(Arc::new(config), engine.registry(), None);
    let family = body.family.as_deref();
    let pool = trial
        .provider(&body.provider)
        .and_then(|p| {
            p.pools()
                .find(|(f, _, _)| *f == family)
                .map(|(_, pool, _)| pool.clone())
        })
        .ok_or_else(|| {
            ApiError::new(
                StatusCode::NOT_FOUND,
                format!("`{key}` is not a provider or family Keyway knows"),
            )
        })?;
    let now = now_ms();
    let picks: Vec<String> = (0..count)
        .map_while(|_| pool.pick(now, &[]).map(|i| pool.members[i].id.to_string()))
        .collect();
    Ok(Json(json!({ "picks": picks })))
}

pub async fn put_provider_policy(
    State(engine): State<Arc<Engine>>,
    Path(provider): Path<String>,
    ApiJson(body): ApiJson<PolicyBody>,
) -> ApiResult<Json<PolicyView>> {
    put_policy(&engine, policy_key(&provider, None)?, body).await
}

pub async fn put_family_policy(
    State(engine): State<Arc<Engine>>,
    Path((provider, family)): Path<(String, String)>,
    ApiJson(body): ApiJson<PolicyBody>,
) -> ApiResult<Json<PolicyView>> {
    put_policy(&engine, policy_key(&provider, Some(&family))?, body).await
}

async fn delete_policy(engine: &Engine, key: PolicyKey) -> ApiResult<StatusCode> {
    engine
        .edit(|doc, _| {
            if doc.remove_policy(&key) {
                Ok(())
            } else {
                Err(EditError::NotFound(format!(
                    "no policy `{key}` is configured"
                )))
            }
        })
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

pub async fn delete_provider_policy(
    State(engine): State<Arc<Engine>>,
    Path(provider): Path<String>,
) -> ApiResult<StatusCode> {
    delete_policy(&engine, policy_key(&provider, None)?).await
}

pub async fn delete_family_policy(
    State(engine): State<Arc<Engine>>,
    Path((provider, family)): Path<(String, String)>,
) -> ApiResult<StatusCode> {
    delete_policy(&engine, policy_key(&provider, Some(&family))?).await
}

pub async fn pause(State(engine): State<Arc<Engine>>) -> Json<serde_json::Value> {
    engine.set_paused(true);
    Json(json!({ "paused": true }))
}

pub async fn resume(State(engine): State<Arc<Engine>>) -> Json<serde_json::Value> {
    engine.set_paused(false);
    Json(json!({ "paused": false }))
}

pub async fn client_key(State(engine): State<Arc<Engine>>) -> Json<serde_json::Value> {
    Json(json!({ "key": engine.client_key().expose() }))
}

pub async fn rotate_client_key(
    State(engine): State<Arc<Engine>>,
) -> ApiResult<Json<serde_json::Value>> {
    let key = engine
        .rotate_client_key()
        .await
        .map_err(|e| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))?;
    Ok(Json(json!({ "key": key.expose() })))
}

pub async fn not_found() -> ApiError {
    ApiError::new(
        StatusCode::NOT_FOUND,
        "no such management endpoint; see the README's management API section",
    )
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewLogin {
    provider: String,
    label: String,
    /// ChatGPT's device-code flow instead of a browser redirect.
    #[serde(default)]
    device_code: bool,
    /// The browser is on another machine: show a code to paste instead of redirecting.
    #[serde(default)]
    manual: bool,
    #[serde(default)]
    accept_terms_risk: bool,
}

/// The terms statement as a refusal the client can show and confirm.
fn terms_refusal(terms: &str) -> ApiError {
    ApiError::new(
        StatusCode::BAD_REQUEST,
        format!("{terms} To go ahead, send the request again with \"accept_terms_risk\": true."),
    )
}

fn login_route<'a>(
    snapshot: &'a Snapshot,
    provider: &str,
) -> ApiResult<&'a keyway_core::ProviderRoute> {
    snapshot
        .provider(provider)
        .filter(|p| p.oauth.is_some())
        .ok_or_else(|| {
            ApiError::new(
                StatusCode::BAD_REQUEST,
                format!("`{provider}` has no subscription login; use anthropic or openai"),
            )
        })
}

pub async fn start_login(
    State(engine): State<Arc<Engine>>,
    ApiJson(body): ApiJson<NewLogin>,
) -> ApiResult<(StatusCode, Json<LoginView>)> {
    if body.label.trim().is_empty() {
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "the label is empty; give the account a name you will recognise",
        ));
    }
    let snapshot = engine.snapshot();
    let route = login_route(&snapshot, &body.provider)?;
    if let Some(terms) = unconfirmed_terms(route, body.accept_terms_risk) {
        return Err(terms_refusal(terms));
    }
    let view = engine
        .start_login(
            &body.provider,
            body.label.trim().to_owned(),
            body.device_code,
            body.manual,
        )
        .await
        .map_err(|e| ApiError::new(StatusCode::BAD_REQUEST, e.0))?;
    Ok((StatusCode::CREATED, Json(view)))
}

pub async fn login_status(
    State(engine): State<Arc<Engine>>,
    Path(id): Path<String>,
) -> ApiResult<Json<LoginView>> {
    engine
        .logins()
        .view(&id)
        .map(Json)
        .ok_or_else(|| ApiError::new(StatusCode::NOT_FOUND, format!("no login `{id}`")))
}

pub async fn cancel_login(
    State(engine): State<Arc<Engine>>,
    Path(id): Path<String>,
) -> ApiResult<Json<LoginView>> {
    engine.logins().cancel(&id).map(Json).map_err(|e| match e {
        CancelError::Unknown => ApiError::new(StatusCode::NOT_FOUND, format!("no login `{id}`")),
        CancelError::Finished(state) => ApiError::new(
            StatusCode::CONFLICT,
            format!("login `{id}` already ended ({state})"),
        ),
    })
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PastedCode {
    /// `code#state`, a bare code, or the redirect URL from the browser.
    code: String,
}

pub async fn paste_login_code(
    State(engine): State<Arc<Engine>>,
    Path(id): Path<String>,
    ApiJson(body): ApiJson<PastedCode>,
) -> ApiResult<(StatusCode, Json<LoginView>)> {
    if !engine.logins().paste(&id, body.code) {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            format!("login `{id}` is not waiting for a code"),
        ));
    }
    login_status(State(engine), Path(id))
        .await
        .map(|v| (StatusCode::ACCEPTED, v))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewImport {
    /// `claude-code` or `codex-cli`.
    source: String,
    /// The credentials file [default: where the CLI keeps it].
    path: Option<std::path::PathBuf>,
    label: Option<String>,
    #[serde(default)]
    accept_terms_risk: bool,
}

pub async fn import_login(
    State(engine): State<Arc<Engine>>,
    ApiJson(body): ApiJson<NewImport>,
) -> ApiResult<(StatusCode, Json<serde_json::Value>)> {
    let source = import::Source::parse(&body.source)
        .map_err(|m| ApiError::new(StatusCode::BAD_REQUEST, m))?;
    let snapshot = engine.snapshot();
    let route = login_route(&snapshot, source.provider())?;
    if let Some(terms) = unconfirmed_terms(route, body.accept_terms_risk) {
        return Err(terms_refusal(terms));
    }
    let home = keyway_core::paths::home_dir();
    let path = body.path.clone();
    let tokens = tokio::task::spawn_blocking(move || import::read(source, path.as_deref(), &home))
        .await
        .map_err(|_| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "the import task failed"))?
        .map_err(|m| ApiError::new(StatusCode::BAD_REQUEST, m))?;
    let label = body.label.unwrap_or_else(|| source.label().to_owned());
    let id = engine
        .add_account(source.provider(), label, 1, Credential::OAuth(tokens), true)
        .await?;
    let account = account_views(&engine.snapshot())
        .into_iter()
        .find(|a| a.id == id);
    Ok((
        StatusCode::CREATED,
        Json(json!({ "account": account, "warning": source.sharing_warning() })),
    ))
}

#[cfg(test)]
mod reference {
    use std::collections::BTreeSet;

    /// `docs/API.md` has a `### METHOD /api/path` heading for every route, and no other.
    #[test]
    fn the_api_reference_lists_exactly_the_routes() {
        let doc = include_str!("../../../../docs/API.md");
        let documented: Vec<&str> = doc.lines().filter_map(|l| l.strip_prefix("### ")).collect();
        let unique: BTreeSet<&str> = documented.iter().copied().collect();
        assert_eq!(
            unique.len(),
            documented.len(),
            "a route is documented twice"
        );
        let served: BTreeSet<String> = super::routes()
            .iter()
            .map(|(method, path, _)| format!("{method} /api{path}"))
            .collect();
        let documented: BTreeSet<String> = unique.into_iter().map(str::to_owned).collect();
        assert_eq!(
            documented.difference(&served).collect::<Vec<_>>(),
            Vec::<&String>::new(),
            "documented but not served"
        );
        assert_eq!(
            served.difference(&documented).collect::<Vec<_>>(),
            Vec::<&String>::new(),
            "served but not documented in docs/API.md"
        );
    }
}
