//! A tower [`Layer`]: breakers, retry budget, backoff, Retry-After and a deadline from
//! the core, around any `Service<Req>` whose requests can be cloned.
//!
//! Each call runs the core's [`Plan`](breakwater_core::Plan) over a one-step route
//! for the layer's [`Key`], bound to the shared [`Registry`] (so every service, layer
//! and [`Client`](crate::Client) using that key shares its breaker and budget):
//!
//! | the plan says | the layer does |
//! |---|---|
//! | `Attempt` | drives the service to readiness and calls it with a clone of the request, both under `tokio::time::timeout(attempt.timeout)`; classifies the result with its [`Classify`] and reports it |
//! | `Wait { until }` | `tokio::time::sleep_until(until)`: backoff, or the server's Retry-After |
//! | `Finish` | returns the last response, or a [`BreakwaterError`] |
//!
//! The layer decides nothing itself: how many attempts, how long to wait, whether the
//! budget allows a retry, whether the breaker admits one and when the deadline ends
//! it are the plan's answers.
//!
//! # Readiness
//!
//! `poll_ready` is the inner service's: the layer adds no queue of its own, and
//! backpressure passes through. `call` takes the service that was polled ready and
//! leaves a clone in its place (as tower's `Retry` and `Buffer` advise); that service
//! makes the call's first attempt, and before every later attempt the layer polls it
//! ready again, within that attempt's timeout. A call the breaker rejects never
//! calls the inner service. An error from `poll_ready` is the inner service's error,
//! [`BreakwaterError::Inner`]; the same error during a retry's readiness is that
//! attempt's result, for the classifier.
//!
//! # Example
//!
//! ```
//! use std::sync::Arc;
//! use std::time::Duration;
//! use breakwater_core::{Key, Registry, RegistryConfig};
//! use breakwater_http::tower::{BreakwaterLayer, CallDeadline};
//! use tower::{Layer, Service, ServiceExt};
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let registry = Arc::new(Registry::new(RegistryConfig::default())?);
//! let layer = BreakwaterLayer::builder(Key::new("inventory", "v1"), registry)
//!     .attempts(3)
//!     .attempt_timeout(Duration::from_secs(2))
//!     .deadline(Duration::from_secs(5))
//!     .build()?;
//! // Any `Service<http::Request<_>, Response = http::Response<_>>` with a `Clone` request.
//! let inner = tower::service_fn(|_req: http::Request<String>| async {
//!     Ok::<_, std::convert::Infallible>(http::Response::new("in stock".to_owned()))
//! });
//! let mut service = layer.layer(inner);
//! let mut request = http::Request::new(String::new());
//! request.extensions_mut().insert(CallDeadline(Duration::from_secs(1))); // this call's own
//! let response = service.ready().await?.call(request).await?;
//! assert_eq!(response.body(), "in stock");
//! # Ok(())
//! # }
//! ```

mod classify;
mod config;
pub(crate) mod drive;
pub(crate) mod error;

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use breakwater_core::{Backoff, Key, Outcome, Registry, Route, TimeoutPhase};
use tower_layer::Layer;
use tower_service::Service;
use tracing::Instrument;

pub use classify::{CallDeadline, Classify, HttpClassify};
pub use config::{ConfigError, RetryConfig};
pub use error::BreakwaterError;

use drive::{Driver, Step};

/// Builds a [`BreakwaterLayer`]: a key, the shared registry, a [`RetryConfig`] and a
/// classifier ([`HttpClassify`] unless [`classify`](Self::classify) sets another).
#[derive(Debug)]
#[must_use]
pub struct LayerBuilder<C> {
    key: Key,
    registry: Arc<Registry>,
    config: RetryConfig,
    name: Option<String>,
    classify: C,
}

impl<C> LayerBuilder<C> {
    /// Replaces the whole configuration.
    pub fn config(mut self, config: RetryConfig) -> Self {
        self.config = config;
        self
    }

    /// Attempts per call, the first included.
    pub fn attempts(mut self, attempts: u32) -> Self {
        self.config.attempts = attempts;
        self
    }

    /// Each attempt's timeout.
    pub fn attempt_timeout(mut self, timeout: Duration) -> Self {
        self.config.attempt_timeout = timeout;
        self
    }

    /// The backoff between attempts.
    pub fn backoff(mut self, backoff: Backoff) -> Self {
        self.config.backoff = backoff;
        self
    }

    /// The deadline of a call whose request names none.
    pub fn deadline(mut self, deadline: Duration) -> Self {
        self.config.deadline = deadline;
        self
    }

    /// The seed of the backoff jitter.
    pub fn seed(mut self, seed: u64) -> Self {
        self.config.seed = seed;
        self
    }

    /// The route's name in metrics (default: the key, `provider/model`).
    pub fn name(mut self, name: &str) -> Self {
        self.name = Some(name.to_owned());
        self
    }

    /// The classifier of results (and source of per-request deadlines).
    pub fn classify<D>(self, classify: D) -> LayerBuilder<D> {
        LayerBuilder {
            key: self.key,
            registry: self.registry,
            config: self.config,
            name: self.name,
            classify,
        }
    }

    /// The layer.
    ///
    /// # Errors
    ///
    /// [`ConfigError`] if the configuration cannot work.
    pub fn build(self) -> Result<BreakwaterLayer<C>, ConfigError> {
        let name = self.name.unwrap_or_else(|| self.key.to_string());
        let route = drive::one_step_route(
            &name,
            &self.key,
            &self.config,
            self.config.attempts,
            &self.registry,
        )?;
        Ok(BreakwaterLayer {
            shared: Arc::new(Shared {
                key: self.key,
                route,
                config: self.config,
                classify: self.classify,
                calls: AtomicU64::new(0),
            }),
        })
    }
}

/// Wraps services in [`Breakwater`]. Cheap to clone; every service it wraps shares
/// the key's breaker and budget (through the registry) and the call counter that
/// numbers the jitter streams.
pub struct BreakwaterLayer<C = HttpClassify> {
    shared: Arc<Shared<C>>,
}

struct Shared<C> {
    key: Key,
    route: Route,
    config: RetryConfig,
    classify: C,
    calls: AtomicU64,
}

impl BreakwaterLayer<HttpClassify> {
    /// A builder for calls to `key`, sharing `registry`'s breaker and budget for it,
    /// with the default [`RetryConfig`] and [`HttpClassify`].
    pub fn builder(key: Key, registry: Arc<Registry>) -> LayerBuilder<HttpClassify> {
        LayerBuilder {
            key,
            registry,
            config: RetryConfig::default(),
            name: None,
            classify: HttpClassify,
        }
    }
}

impl<C> BreakwaterLayer<C> {
    /// The key whose breaker and budget the calls use.
    #[must_use]
    pub fn key(&self) -> &Key {
        &self.shared.key
    }

    /// The one-step route each call's plan runs.
    #[must_use]
    pub fn route(&self) -> &Route {
        &self.shared.route
    }

    /// The configuration.
    #[must_use]
    pub fn config(&self) -> &RetryConfig {
        &self.shared.config
    }
}

impl<C> Clone for BreakwaterLayer<C> {
    fn clone(&self) -> Self {
        BreakwaterLayer {
            shared: Arc::clone(&self.shared),
        }
    }
}

impl<C> std::fmt::Debug for BreakwaterLayer<C> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BreakwaterLayer")
            .field("key", &self.shared.key)
            .field("route", &self.shared.route.name())
            .field("config", &self.shared.config)
            .finish_non_exhaustive()
    }
}

impl<S, C> Layer<S> for BreakwaterLayer<C> {
    type Service = Breakwater<S, C>;

    fn layer(&self, inner: S) -> Breakwater<S, C> {
        Breakwater {
            inner,
            shared: Arc::clone(&self.shared),
        }
    }
}

/// A service wrapped by [`BreakwaterLayer`]: see the [module docs](self).
pub struct Breakwater<S, C = HttpClassify> {
    inner: S,
    shared: Arc<Shared<C>>,
}

impl<S: Clone, C> Clone for Breakwater<S, C> {
    fn clone(&self) -> Self {
        Breakwater {
            inner: self.inner.clone(),
            shared: Arc::clone(&self.shared),
        }
    }
}

impl<S: std::fmt::Debug, C> std::fmt::Debug for Breakwater<S, C> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Breakwater")
            .field("inner", &self.inner)
            .field("key", &self.shared.key)
            .finish_non_exhaustive()
    }
}

/// The future of a [`Breakwater`] call.
pub type ResponseFuture<T, E> =
    Pin<Box<dyn Future<Output = Result<T, BreakwaterError<E>>> + Send + 'static>>;

impl<S, C, Req> Service<Req> for Breakwater<S, C>
where
    S: Service<Req> + Clone + Send + 'static,
    S::Future: Send,
    S::Response: Send,
    S::Error: Send,
    Req: Clone + Send + 'static,
    C: Classify<Req, S::Response, S::Error> + Send + Sync + 'static,
{
    type Response = S::Response;
    type Error = BreakwaterError<S::Error>;
    type Future = ResponseFuture<S::Response, S::Error>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx).map_err(BreakwaterError::Inner)
    }

    fn call(&mut self, request: Req) -> Self::Future {
        let clone = self.inner.clone();
        let ready = std::mem::replace(&mut self.inner, clone);
        let shared = Arc::clone(&self.shared);
        Box::pin(async move { shared.run(ready, request).await })
    }
}

impl<C> Shared<C> {
    /// One call: the plan's loop, attempts sent through `service`.
    async fn run<S, Req>(
        &self,
        mut service: S,
        request: Req,
    ) -> Result<S::Response, BreakwaterError<S::Error>>
    where
        S: Service<Req>,
        Req: Clone,
        C: Classify<Req, S::Response, S::Error>,
    {
        let deadline = self
            .classify
            .deadline(&request)
            .unwrap_or(self.config.deadline);
        let n = self.calls.fetch_add(1, Ordering::Relaxed);
        let span = tracing::info_span!(
            "breakwater.call",
            key = %self.key,
            deadline_ms = deadline.as_millis() as u64,
        );
        async move {
            let mut driver = Driver::new(&self.route, deadline, drive::call_rng(self.config.seed, n));
            let mut last: Option<Result<S::Response, S::Error>> = None;
            let mut last_outcome: Option<Outcome> = None;
            loop {
                match driver.next().await {
                    Step::Attempt(attempt) => {
                        // Drop the previous result first: a response may hold a
                        // connection.
                        drop(last.take());
                        let copy = request.clone();
                        let service = &mut service;
                        let sent = tokio::time::timeout(attempt.timeout, async move {
                            std::future::poll_fn(|cx| service.poll_ready(cx)).await?;
                            service.call(copy).await
                        })
                        .await;
                        let outcome = match &sent {
                            Ok(result) => self.classify.classify(result),
                            Err(_elapsed) => Outcome::TimedOut {
                                phase: TimeoutPhase::BeforeHeaders,
                            },
                        };
                        tracing::debug!(attempt = attempt.attempt, outcome = ?outcome, "attempt ended");
                        driver.report(attempt.id, outcome);
                        last_outcome = Some(outcome);
                        last = sent.ok();
                    }
                    Step::Finish(finished) => {
                        return error::conclude(&self.key, finished, last_outcome, last);
                    }
                }
            }
        }
        .instrument(span)
        .await
    }
}
