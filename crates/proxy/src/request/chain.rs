//! A request's way through its pools: the route it was given (perhaps by an alias, perhaps
//! to another model), then, when that pool's accounts cannot serve it, the fallback steps of
//! its policy, in order, each taking only the kinds of failure it names. Only before the first
//! byte, like failover between accounts; the answer says where it went (`x-keyway-route`).

use std::fmt::Write as _;
use std::sync::Arc;

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use keyway_core::snapshot::Route;
use keyway_core::target::FailureKind;
use keyway_core::{Snapshot, Surface};
use tracing::info;

use super::forward::{self, Answer, GiveUp, Outgoing, Trail};
use super::rewrite;
use super::surface::SurfaceError;
use super::translation::{self, Prepared};
use crate::engine::Engine;

/// One pool a request went to.
#[derive(Debug, Clone)]
pub struct Hop {
    /// The pool's policy key (`provider` or `provider/family`).
    pub scope: Arc<str>,
    /// The provider and the model family the request fell in there.
    pub provider: String,
    pub family: Option<String>,
    /// The model sent there, when not the one asked for.
    pub model: Option<String>,
    /// Why the request came here from the previous pool (`None` for the first).
    pub after: Option<FailureKind>,
    /// The pool speaks another format than the client: the request was translated.
    pub translated: bool,
}

/// Where a request went: the alias that routed it, and each pool in turn.
#[derive(Debug, Clone, Default)]
pub struct Path {
    pub alias: Option<String>,
    pub hops: Vec<Hop>,
}

impl Path {
    /// `x-keyway-route`: `alias claude-haiku-*: deepseek:deepseek-v4-flash` or
    /// `anthropic/sonnet, openrouter:anthropic/claude-sonnet-4.5 (after rate_limit)`.
    pub fn describe(&self) -> String {
        let mut out = String::new();
        if let Some(glob) = &self.alias {
            let _ = write!(out, "alias {glob}: ");
        }
        for (i, hop) in self.hops.iter().enumerate() {
            if i > 0 {
                out.push_str(", ");
            }
            out.push_str(&hop.scope);
            if let Some(m) = &hop.model {
                let _ = write!(out, ":{m}");
            }
            if hop.translated {
                out.push_str(" (translated)");
            }
            if let Some(kind) = hop.after {
                let _ = write!(out, " (after {})", kind.as_str());
            }
        }
        out
    }

    /// Whether the request went anywhere but where its model would have taken it, or was
    /// translated on its way.
    pub fn is_rerouted(&self) -> bool {
        self.alias.is_some() || self.hops.len() > 1 || self.hops.iter().any(|h| h.translated)
    }

    /// The model the answering pool was sent (the rewritten one, if any).
    pub fn last_model(&self) -> Option<&str> {
        self.hops.last().and_then(|h| h.model.as_deref())
    }
}

/// What a request came to when an answer is to be given.
pub enum Reply {
    /// An upstream's answer, to relay.
    Upstream(Answer),
    /// Keyway's own answer, asking no upstream: a token count it estimates, or a request the
    /// pool's format cannot express.
    Keyway(Response),
}

/// Send `out` along `route`, then its policy's fallback steps as failures allow. `path`
/// records where it went, whatever the outcome.
pub async fn send<'s>(
    engine: &Engine,
    snapshot: &'s Snapshot,
    route: Route<'s>,
    out: &Outgoing<'_>,
    requested_model: Option<&str>,
    trail: &mut Trail,
    path: &mut Path,
) -> Result<Reply, GiveUp> {
    path.alias = route.alias.map(str::to_owned);
    let fallbacks = snapshot.fallbacks(&route);
    let mut step = route;
    let mut next = 0;
    let mut after = None;
    let mut failed: Option<GiveUp> = None;
    loop {
        let model = step.model.or(requested_model);
        let later = &fallbacks[next..];
        let detect_context_window = later
            .iter()
            .any(|(_, s)| s.handles(FailureKind::ContextWindow));
        let translated = translation::needed(out.surface, step.provider);
        path.hops.push(Hop {
            scope: step.pool.scope.clone(),
            provider: step.provider.id.clone(),
            family: step.family.map(str::to_owned),
            model: step.model.map(str::to_owned),
            after,
            translated,
        });
        let result = if translated {
            match translated_step(out, &step) {
                Prepared::Upstream(rewritten) => {
                    let step_out = Outgoing {
                        surface: out.surface,
                        method: out.method.clone(),
                        path: &rewritten.path,
                        query: rewritten.query.clone(),
                        headers: &rewritten.headers,
                        body: rewritten.body.clone(),
                        session: out.session.clone(),
                        previous_response_id: None,
                        detect_context_window,
                        translation: Some(&rewritten.context),
                    };
                    forward::send(engine, snapshot, &step, &step_out, trail).await
                }
                // Keyway answers itself (a count it estimates, a refusal) on the way asked
                // for; a fallback step that cannot take the request leaves the failure that
                // led to it as the answer.
                Prepared::Answer(response) => match failed {
                    Some(give_up) => Err(give_up),
                    None => return Ok(Reply::Keyway(response)),
                },
            }
        } else {
            let body = rewritten_body(out, step.model);
            let gemini_path = match (out.surface, step.model) {
                (Surface::Gemini, Some(m)) => rewrite::gemini_path_with_model(out.path, m),
                _ => None,
            };
            let step_out = Outgoing {
                surface: out.surface,
                method: out.method.clone(),
                path: gemini_path.as_deref().unwrap_or(out.path),
                query: out.query.clone(),
                headers: out.headers,
                body: body.unwrap_or_else(|| out.body.clone()),
                session: out.session.clone(),
                previous_response_id: out.previous_response_id,
                detect_context_window,
                translation: None,
            };
            forward::send(engine, snapshot, &step, &step_out, trail).await
        };
        let give_up = match result {
            Ok(answer) => return Ok(Reply::Upstream(answer)),
            Err(g) => g,
        };
        let Some(kind) = give_up.kind else {
            return Err(give_up);
        };
        let taken: Vec<&Arc<str>> = path.hops.iter().map(|h| &h.scope).collect();
        let found = later
            .iter()
            .enumerate()
            .find(|(_, (r, s))| s.handles(kind) && !taken.iter().any(|t| **t == r.pool.scope));
        let Some((offset, (route, fallback))) = found else {
            return Err(give_up);
        };
        info!(
            from = %step.pool.scope,
            to = %fallback.to,
            model = model.unwrap_or("-"),
            "falling back after {}",
            kind.as_str()
        );
        next += offset + 1;
        after = Some(kind);
        failed = Some(give_up);
        step = *route;
    }
}

/// `out` rewritten for `step`'s pool, which speaks another format; or Keyway's own answer.
fn translated_step(out: &Outgoing<'_>, step: &Route<'_>) -> Prepared {
    let Some(client) = translation::client_surface(out.surface, &out.method, out.path) else {
        return Prepared::Answer(
            SurfaceError::new(
                out.surface,
                StatusCode::NOT_FOUND,
                format!(
                    "{} {} has no counterpart at {}, which speaks another API",
                    out.method, out.path, step.provider.id
                ),
            )
            .into_response(),
        );
    };
    translation::prepare(
        client,
        step.provider,
        out.path,
        out.headers,
        &out.body,
        step.model,
    )
}

/// The body for a pool that is sent `model` instead of the one asked for.
fn rewritten_body(out: &Outgoing<'_>, model: Option<&str>) -> Option<Bytes> {
    let model = model?;
    match out.surface {
        // Gemini names the model in the path.
        Surface::Gemini => None,
        _ => rewrite::body_with_model(&out.body, model),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_describe_alias_model_and_fallbacks() {
        let path = Path {
            alias: Some("claude-haiku-*".into()),
            hops: vec![Hop {
                scope: "deepseek".into(),
                provider: "deepseek".into(),
                family: None,
                model: Some("deepseek-v4-flash".into()),
                after: None,
                translated: false,
            }],
        };
        assert_eq!(
            path.describe(),
            "alias claude-haiku-*: deepseek:deepseek-v4-flash"
        );
        let path = Path {
            alias: None,
            hops: vec![
                Hop {
                    scope: "anthropic/sonnet".into(),
                    provider: "anthropic".into(),
                    family: Some("sonnet".into()),
                    model: None,
                    after: None,
                    translated: false,
                },
                Hop {
                    scope: "openrouter".into(),
                    provider: "openrouter".into(),
                    family: None,
                    model: Some("anthropic/claude-sonnet-4.5".into()),
                    after: Some(FailureKind::RateLimit),
                    translated: true,
                },
            ],
        };
        assert_eq!(
            path.describe(),
            "anthropic/sonnet, openrouter:anthropic/claude-sonnet-4.5 (translated) (after rate_limit)"
        );
        assert!(path.is_rerouted());
    }
}
