//! The client: one call that sends a provider-neutral request through a route, every
//! decision made by the core's [`Plan`](breakwater_core::Plan).
//!
//! [`Client::complete`] is the driver loop of `breakwater_core`'s docs with real time
//! and real HTTP: it polls the plan and carries out each
//! [`Action`](breakwater_core::Action):
//!
//! | action | what the client does |
//! |---|---|
//! | `Attempt` | renders the request for the step's provider, model and prompt variant, sends it racing the call's one timer, set to the attempt's end (the slow notice's instant while that comes first), maps the result with [`outcome`](crate::outcome) and reports it with `on_outcome` |
//! | `Wait { until }` | the same timer, reset to `until` |
//! | `Notice(Slow)` | calls the caller's notice callback ([`Client::complete_with`]) |
//! | `LookupCache` | looks the tenant's request up in the [`ResponseCache`] (a miss without one) |
//! | `Finish` | returns the completion (a cached one flagged degraded, a degraded empty one), or an [`Error`]; a queued request is first stored in the durable [`Queue`], if there is one |
//!
//! The client holds no policy: it never decides to retry, wait, switch or give up.
//! Every successful completion is stored in the cache, if there is one.
//!
//! Tracing: a `breakwater.request` span per call (route, task kind, attempts,
//! resolution, cost) and a `breakwater.attempt` span per attempt (provider, model,
//! step, attempt, timeout, status, class, tokens, cost); waits and notices are events.
//! Metrics go through [`telemetry`](crate::telemetry) after each attempt and at the end.
//!
//! [`ResponseCache`]: crate::cache::ResponseCache
//! [`Queue`]: crate::queue::Queue

mod batch;
mod builder;
mod call;
mod deferred;
mod options;
mod send;
mod stream;
mod url;

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use breakwater_core::alert::{Alarms, Alert, Scope, Signal};
use breakwater_core::plan::{EntryEvent, FailReason, History};
use breakwater_core::rng::SeededRng;
use breakwater_core::{Cost, Key, Metrics, MetricsSnapshot, Notice, Registry, Route, TaskKind};
use parking_lot::Mutex;
use reqwest::header::{HeaderName, HeaderValue};

pub use builder::{ApiKey, BuildError, ClientBuilder, ProviderConfig};
pub use deferred::Deferred;
pub use options::{CacheUse, CallOptions};
pub use stream::{EventStream, StreamEvent};

use crate::cache::{CacheHit, ResponseCache};
use crate::queue::Queue;
use crate::wire::{self, PromptVariant, Provider, TokenUsage};
use call::Call;

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
    /// The ChaCha key the client's seed expands to, expanded once.
    seed: [u8; 32],
    requests: AtomicU64,
    response_limit: usize,
    error_body_limit: usize,
    metrics: Mutex<Metrics>,
    cache: Option<ResponseCache>,
    queue: Option<Queue>,
    /// Counts the idempotency keys the client made.
    keys: AtomicU64,
    /// The rate alerts, unless turned off.
    alarms: Option<Mutex<Alarms>>,
}

/// A route bound to the registry, with each step's provider and prompt variant
/// resolved once, at build.
pub(crate) struct BoundRoute {
    pub(crate) route: Route,
    pub(crate) steps: Vec<Target>,
    /// The keys of the route's hot metric series, built once.
    pub(crate) keys: crate::metric_keys::RouteKeys,
}

/// Where a step sends, and with which prompt.
pub(crate) struct Target {
    pub(crate) provider: Arc<ProviderEntry>,
    pub(crate) variant: Option<PromptVariant>,
    /// The check every answer of this step must pass.
    pub(crate) validator: Option<crate::validate::Validator>,
    /// The URL its non-streaming attempts go to, parsed once.
    pub(crate) url: url::ParsedUrl,
    /// The URL its streaming attempts go to, parsed once.
    pub(crate) stream_url: url::ParsedUrl,
}

/// A provider endpoint ready to send to.
pub(crate) struct ProviderEntry {
    pub(crate) name: String,
    pub(crate) kind: Provider,
    pub(crate) base_url: String,
    /// The authentication header, its value marked sensitive.
    pub(crate) auth: (HeaderName, HeaderValue),
}

/// What a call returns when it does not fail: a provider's answer, a cached one, or a
/// degraded empty one.
#[derive(Clone, Debug, PartialEq)]
pub struct Completion {
    /// The generated text; the cached text when served from the cache; empty when
    /// degraded to the empty result.
    pub text: String,
    /// The provider's stop reason, if it gave one (for a cached answer, the one it
    /// had).
    pub stop_reason: Option<String>,
    /// Tokens of the answering attempt; zero when degraded (a cached answer was billed
    /// when it was made).
    pub usage: TokenUsage,
    /// The provider (as named in the route) and model that answered; `None` when
    /// degraded (a cached answer's author is in [`CacheHit::key`]).
    pub key: Option<Key>,
    /// Attempts sent, all steps together.
    pub attempts: u32,
    /// Whether a step after the route's first answered.
    pub fallback: bool,
    /// What every attempt cost, failed ones included.
    pub cost: Cost,
    /// From the call's start to its end, waits included.
    pub elapsed: Duration,
    /// `Some(why)` when no provider answered: the text is then a cached answer
    /// (`from_cache` says so) or the structured empty result.
    pub degraded: Option<FailReason>,
    /// `Some` when the text is an earlier answer from the response cache: its age and
    /// author.
    pub from_cache: Option<CacheHit>,
    /// Every attempt, wait and skip.
    pub history: History,
}

impl Completion {
    /// Whether this is a degraded result (cached or empty) rather than a provider's
    /// answer to this call.
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
    /// A deferrable request the chain could not serve now. With a durable queue
    /// configured ([`ClientBuilder::queue`]) it was stored there, to be replayed by a
    /// drain ([`Queue::drain`](crate::queue::Queue::drain)); `deferred` says whether
    /// that worked.
    #[error("not served now ({reason}) after {attempts} attempts; {deferred}")]
    Queued {
        /// Why the chain could not serve it.
        reason: FailReason,
        /// Attempts sent.
        attempts: u32,
        /// Every attempt, wait and skip.
        history: History,
        /// Where the request went: the queue's task, or nowhere.
        deferred: Deferred,
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
    /// `deadline`, for the anonymous tenant. Notices are dropped; see
    /// [`Client::complete_with`].
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
            CallOptions::default(),
            |_| {},
        )
        .await
    }

    /// [`Client::complete`] with call options (the tenant, an idempotency key for
    /// queued work, the core's [`RequestOptions`](breakwater_core::RequestOptions): a cost ceiling, …; a bare
    /// `RequestOptions` converts) and a callback told of each [`Notice`] (such as
    /// "taking longer than usual") when the plan emits it; to receive notices on a
    /// channel, send from the callback. A zero `max_output_tokens` is taken from the
    /// request.
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
        options: impl Into<CallOptions>,
        on_notice: F,
    ) -> Result<Completion, Error>
    where
        F: FnMut(Notice) + Send,
    {
        let call = Call {
            route,
            request,
            kind,
            deadline,
            options: options.into(),
            defer: true,
        };
        // `run` boxes the call's state itself, once.
        self.run(call, on_notice).await
    }

    /// Feeds a finished request to the rate alarms and reports what they decide.
    fn watch(&self, route: &Route, finished: &breakwater_core::Finished) {
        let Some(alarms) = &self.inner.alarms else {
            return;
        };
        let alerts: Vec<Alert> = {
            let mut alarms = alarms.lock();
            alarms.observe(crate::clock::now(), route, finished);
            std::iter::from_fn(|| alarms.poll_alert()).collect()
        };
        for alert in &alerts {
            crate::telemetry::alert(alert);
        }
    }

    /// The rate alerts raised now (see [`breakwater_core::alert`]).
    #[must_use]
    pub fn alerts(&self) -> Vec<(Scope, Signal)> {
        self.inner
            .alarms
            .as_ref()
            .map(|a| a.lock().raised())
            .unwrap_or_default()
    }

    /// The plan RNG of the next request: the client's seed, on a ChaCha stream of its
    /// own per request.
    fn request_rng(&self) -> SeededRng {
        let n = self.inner.requests.fetch_add(1, Ordering::Relaxed);
        stream_rng(self.inner.seed, n)
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

/// The ChaCha key that `seed` expands to, as [`breakwater_core::rng::seeded`] expands it.
fn seed_key(seed: u64) -> [u8; 32] {
    breakwater_core::rng::seeded(seed).get_seed()
}

/// Stream `n` of the ChaCha generator keyed `key`: what `seeded(seed)` on stream `n`
/// draws for `key = seed_key(seed)`, without expanding the seed again.
fn stream_rng(key: [u8; 32], n: u64) -> SeededRng {
    let mut rng = <SeededRng as rand_core::SeedableRng>::from_seed(key);
    rng.set_stream(n);
    rng
}

/// The history entry of attempt `number`, if the plan recorded it.
fn attempt_entry(history: &History, number: u32) -> Option<breakwater_core::plan::Entry> {
    history
        .entries()
        .rev()
        .find(|e| matches!(e.event, EntryEvent::Attempt { attempt, .. } if attempt == number))
}

#[cfg(test)]
mod tests {
    use rand_core::RngCore;

    use super::*;

    /// A request's stream draws what the seed, expanded each time, drew on it.
    #[test]
    fn a_stream_from_the_expanded_key_draws_as_the_seed_did() {
        for seed in [0, 7, u64::MAX] {
            for n in [0, 1, 1_000_003] {
                let mut expanded = breakwater_core::rng::seeded(seed);
                expanded.set_stream(n);
                let mut keyed = stream_rng(seed_key(seed), n);
                let a: Vec<u64> = (0..40).map(|_| expanded.next_u64()).collect();
                let b: Vec<u64> = (0..40).map(|_| keyed.next_u64()).collect();
                assert_eq!(a, b, "seed {seed}, stream {n}");
            }
        }
        let mut other = stream_rng(seed_key(7), 2);
        let mut this = stream_rng(seed_key(7), 1);
        assert_ne!(other.next_u64(), this.next_u64());
    }
}
