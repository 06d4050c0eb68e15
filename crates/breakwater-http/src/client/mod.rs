//! The client: one call that sends a provider-neutral request through a route, every
//! decision made by the core's [`Plan`].
//!
//! [`Client::complete`] is the driver loop of `breakwater_core`'s docs with real time
//! and real HTTP: it polls the plan and carries out each [`Action`]:
//!
//! | action | what the client does |
//! |---|---|
//! | `Attempt` | renders the request for the step's provider, model and prompt variant, sends it under `tokio::time::timeout(attempt.timeout)`, maps the result with [`outcome`](crate::outcome) and reports it with `on_outcome` |
//! | `Wait { until }` | `tokio::time::sleep_until(until)` |
//! | `Notice(Slow)` | calls the caller's notice callback ([`Client::complete_with`]) |
//! | `LookupCache` | answers "miss": the response cache is not built yet |
//! | `Finish` | returns the completion, a degraded empty completion, or an [`Error`] |
//!
//! The client holds no policy: it never decides to retry, wait, switch or give up.
//!
//! Tracing: a `breakwater.request` span per call (route, task kind, attempts,
//! resolution, cost) and a `breakwater.attempt` span per attempt (provider, model,
//! step, attempt, timeout, status, class, tokens, cost); waits and notices are events.
//! Metrics go through [`telemetry`](crate::telemetry) after each attempt and at the end.

mod builder;
mod send;
mod stream;

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use breakwater_core::plan::{EntryEvent, FailReason, History};
use breakwater_core::rng::SeededRng;
use breakwater_core::{
    Action, Cost, Deadline, Key, Metrics, MetricsSnapshot, Notice, Plan, Registry, RequestOptions,
    Resolution, Route, TaskKind,
};
use parking_lot::Mutex;
use reqwest::header::{HeaderName, HeaderValue};
use tracing::Instrument;
use tracing::field::{Empty, display};

pub use builder::{ApiKey, BuildError, ClientBuilder, ProviderConfig};
pub use stream::StreamEvent;

use crate::clock;
use crate::wire::{self, PromptVariant, Provider, TokenUsage};

/// Sends requests through routes, driving the core's plan. Cheap to clone (an `Arc`
/// inside); `Send + Sync`, so one client serves every task of a process.
#[derive(Clone)]
pub struct Client {
    inner: Arc<Inner>,
}

struct Inner {
    http: reqwest::Client,
    routes: HashMap<String, BoundRoute>,
    registry: Arc<Registry>,
    seed: u64,
    requests: AtomicU64,
    response_limit: usize,
    error_body_limit: usize,
    metrics: Mutex<Metrics>,
}

/// A route bound to the registry, with each step's provider and prompt variant
/// resolved once, at build.
struct BoundRoute {
    route: Route,
    steps: Vec<Target>,
}

/// Where a step sends, and with which prompt.
struct Target {
    provider: Arc<ProviderEntry>,
    variant: Option<PromptVariant>,
}

/// A provider endpoint ready to send to.
struct ProviderEntry {
    name: String,
    kind: Provider,
    base_url: String,
    /// The authentication header, its value marked sensitive.
    auth: (HeaderName, HeaderValue),
}

/// What a call returns when it does not fail: a provider's answer, or a degraded
/// (empty) one.
#[derive(Clone, Debug, PartialEq)]
pub struct Completion {
    /// The generated text; empty when degraded.
    pub text: String,
    /// The provider's stop reason, if it gave one.
    pub stop_reason: Option<String>,
    /// Tokens of the answering attempt.
    pub usage: TokenUsage,
    /// The provider (as named in the route) and model that answered; `None` when
    /// degraded.
    pub key: Option<Key>,
    /// Attempts sent, all steps together.
    pub attempts: u32,
    /// Whether a step after the route's first answered.
    pub fallback: bool,
    /// What every attempt cost, failed ones included.
    pub cost: Cost,
    /// From the call's start to its end, waits included.
    pub elapsed: Duration,
    /// `Some(why)` when no provider answered and this is the structured empty result.
    pub degraded: Option<FailReason>,
    /// Every attempt, wait and skip.
    pub history: History,
}

impl Completion {
    /// Whether this is a degraded (empty) result rather than a provider's answer.
    #[must_use]
    pub fn is_degraded(&self) -> bool {
        self.degraded.is_some()
    }
}

/// Why a call returned no completion. Never contains an API key (nor a provider's
/// error message, which may echo part of one).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// No route has this name.
    #[error("no route named {0:?}")]
    UnknownRoute(String),
    /// A deferrable request the chain could not serve now: hand it to a durable queue
    /// (not part of this client yet) to run later.
    #[error("not served now, to be queued ({reason}) after {attempts} attempts")]
    Queued {
        /// Why the chain could not serve it.
        reason: FailReason,
        /// Attempts sent.
        attempts: u32,
        /// Every attempt, wait and skip.
        history: History,
    },
    /// A stream broke after text reached the caller, who did not allow a restart.
    #[error("stream broken after {tokens_delivered} tokens")]
    StreamBroken {
        /// Text deltas the caller had received.
        tokens_delivered: u32,
        /// The text received, which the provider never finished.
        partial: String,
        /// The provider and model that wrote it.
        key: Option<Key>,
        /// What the broken attempt reported of its usage.
        usage: TokenUsage,
        /// Every attempt, wait and skip.
        history: History,
    },
    /// The request failed loudly.
    #[error("request failed after {attempts} attempts: {reason}")]
    Failed {
        /// Why.
        reason: FailReason,
        /// Attempts sent.
        attempts: u32,
        /// Every attempt, wait and skip.
        history: History,
    },
}

impl Client {
    /// A builder: add providers, routes and settings, then [`build`](ClientBuilder::build).
    #[must_use]
    pub fn builder() -> ClientBuilder {
        ClientBuilder::default()
    }

    /// The metrics of every call finished so far.
    #[must_use]
    pub fn metrics(&self) -> MetricsSnapshot {
        self.inner.metrics.lock().snapshot()
    }

    /// The registry of breakers and budgets the routes use.
    #[must_use]
    pub fn registry(&self) -> &Arc<Registry> {
        &self.inner.registry
    }

    /// Sends `request` through `route` as a `kind` task that must finish within
    /// `deadline`. Notices are dropped; see [`Client::complete_with`].
    ///
    /// # Errors
    ///
    /// [`Error::UnknownRoute`], [`Error::Queued`] or [`Error::Failed`], as the plan
    /// decided.
    pub async fn complete(
        &self,
        route: &str,
        request: &wire::Request,
        kind: TaskKind,
        deadline: Duration,
    ) -> Result<Completion, Error> {
        self.complete_with(
            route,
            request,
            kind,
            deadline,
            RequestOptions::default(),
            |_| {},
        )
        .await
    }

    /// [`Client::complete`] with per-request options (a cost ceiling, …) and a callback
    /// told of each [`Notice`] (such as "taking longer than usual") when the plan
    /// emits it; to receive notices on a channel, send from the callback. A zero
    /// `options.max_output_tokens` is taken from the request.
    ///
    /// # Errors
    ///
    /// As [`Client::complete`].
    pub async fn complete_with<F>(
        &self,
        route: &str,
        request: &wire::Request,
        kind: TaskKind,
        deadline: Duration,
        mut options: RequestOptions,
        mut on_notice: F,
    ) -> Result<Completion, Error>
    where
        F: FnMut(Notice) + Send,
    {
        let inner = &*self.inner;
        let bound = inner
            .routes
            .get(route)
            .ok_or_else(|| Error::UnknownRoute(route.to_owned()))?;
        if options.max_output_tokens == 0 {
            options.max_output_tokens = request.max_tokens;
        }
        let span = tracing::info_span!(
            "breakwater.request",
            route,
            kind = ?kind,
            deadline_ms = deadline.as_millis() as u64,
            attempts = Empty,
            resolution = Empty,
            cost = Empty,
        );
        let mut rng = self.request_rng();
        async move {
            let start = clock::read().now;
            let mut plan = Plan::new(
                &bound.route,
                kind,
                Deadline::after(start, deadline),
                options,
            );
            let mut observer = crate::telemetry::Observer::new(&bound.route, kind);
            // The answer of the last successful attempt, for the plan's `Success`.
            let mut answer: Option<(wire::Completion, Key)> = None;
            let finished = loop {
                let now = clock::read().now;
                match plan.poll(now, &mut rng) {
                    Action::Attempt(attempt) => {
                        let target = &bound.steps[attempt.step];
                        let key = attempt.key.clone();
                        // While the attempt is out, the plan's only timer is the slow
                        // notice: race the send against it so the caller hears at the
                        // threshold, not when the attempt ends.
                        let send = self.send(target, &attempt, request);
                        tokio::pin!(send);
                        let (exchange, attempt_span) = loop {
                            let Some(at) = plan.poll_timeout() else { break send.await };
                            tokio::select! {
                                done = &mut send => break done,
                                () = tokio::time::sleep_until(clock::instant(at)) => {
                                    if let Action::Notice(notice) = plan.poll(clock::read().now, &mut rng) {
                                        tracing::info!(notice = ?notice, "notice");
                                        on_notice(notice);
                                    }
                                }
                            }
                        };
                        let ended = clock::read().now;
                        let id = attempt.id;
                        let number = attempt.attempt;
                        if let Some(completion) = exchange.completion {
                            answer = Some((completion, key));
                        }
                        plan.on_outcome(ended, id, exchange.outcome, exchange.usage);
                        send::record_attempt(&attempt_span, plan.history(), number);
                        observer.update(plan.history());
                    }
                    Action::Wait { until } => {
                        tracing::debug!(wait_ms = (until - now).as_millis() as u64, "waiting");
                        tokio::time::sleep_until(clock::instant(until)).await;
                    }
                    Action::Notice(notice) => {
                        tracing::info!(notice = ?notice, "notice");
                        on_notice(notice);
                    }
                    Action::LookupCache => {
                        // Known gap: the response cache is not built yet, so every
                        // lookup is a miss and the plan moves to its next option.
                        plan.on_cache(now, false);
                    }
                    Action::Finish(finished) => break finished,
                }
            };
            inner.metrics.lock().record(&bound.route, &finished);
            observer.finish(&finished);
            let span = tracing::Span::current();
            span.record("attempts", finished.attempts);
            span.record("cost", display(finished.cost));
            let f = finished;
            match f.resolution {
                Resolution::Success { fallback_used, .. } => {
                    span.record("resolution", "success");
                    // The plan reports success only after an attempt whose outcome
                    // was `Success`, which always carries a parsed completion.
                    let (completion, key) = answer.unwrap_or_else(|| {
                        (
                            wire::Completion {
                                text: String::new(),
                                stop_reason: None,
                                usage: TokenUsage::default(),
                            },
                            Key::new("", ""),
                        )
                    });
                    Ok(Completion {
                        text: completion.text,
                        stop_reason: completion.stop_reason,
                        usage: completion.usage,
                        key: Some(key),
                        attempts: f.attempts,
                        fallback: fallback_used,
                        cost: f.cost,
                        elapsed: f.elapsed,
                        degraded: None,
                        history: f.history,
                    })
                }
                // `Degraded { from: Cache }` cannot come while every lookup misses;
                // were it to, the caller still gets an honest degraded result.
                Resolution::Degraded { reason, .. } => {
                    span.record("resolution", "degraded");
                    Ok(Completion {
                        text: String::new(),
                        stop_reason: None,
                        usage: TokenUsage::default(),
                        key: None,
                        attempts: f.attempts,
                        fallback: false,
                        cost: f.cost,
                        elapsed: f.elapsed,
                        degraded: Some(reason),
                        history: f.history,
                    })
                }
                Resolution::Queued { reason } => {
                    span.record("resolution", "queued");
                    Err(Error::Queued {
                        reason,
                        attempts: f.attempts,
                        history: f.history,
                    })
                }
                Resolution::Failed { reason } => {
                    span.record("resolution", "failed");
                    Err(Error::Failed {
                        reason,
                        attempts: f.attempts,
                        history: f.history,
                    })
                }
            }
        }
        .instrument(span)
        .await
    }

    /// The plan RNG of the next request: the client's seed, on a ChaCha stream of its
    /// own per request.
    fn request_rng(&self) -> SeededRng {
        let n = self.inner.requests.fetch_add(1, Ordering::Relaxed);
        let mut rng = breakwater_core::rng::seeded(self.inner.seed);
        rng.set_stream(n);
        rng
    }
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut providers: Vec<(&str, &str, &str)> = Vec::new();
        let mut routes: Vec<&str> = self.inner.routes.keys().map(String::as_str).collect();
        routes.sort_unstable();
        for bound in self.inner.routes.values() {
            for target in &bound.steps {
                let p = &*target.provider;
                let entry = (p.name.as_str(), p.kind.name(), p.base_url.as_str());
                if !providers.contains(&entry) {
                    providers.push(entry);
                }
            }
        }
        providers.sort_unstable();
        f.debug_struct("Client")
            .field("providers", &providers)
            .field("routes", &routes)
            .field("response_limit", &self.inner.response_limit)
            .field("error_body_limit", &self.inner.error_body_limit)
            .finish_non_exhaustive()
    }
}

/// The history entry of attempt `number`, if the plan recorded it.
fn attempt_entry(history: &History, number: u32) -> Option<&breakwater_core::plan::Entry> {
    history
        .entries()
        .iter()
        .rev()
        .find(|e| matches!(e.event, EntryEvent::Attempt { attempt, .. } if attempt == number))
}
