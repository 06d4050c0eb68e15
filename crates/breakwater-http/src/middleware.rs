//! A `reqwest-middleware` middleware: the core's plan around every request of a
//! `ClientWithMiddleware`, for plain HTTP calls.
//!
//! Per request, [`BreakwaterMiddleware`] picks a [`Key`] (by default the URL's host and
//! port, [`host_key`]; any closure with [`MiddlewareBuilder::key_with`]), binds a
//! one-step route for it to the shared [`Registry`] (once per key), and drives the
//! plan: each attempt goes down the rest of the middleware chain under the attempt's
//! timeout; the response or error becomes an [`Outcome`] (a 2xx is a success, any
//! other status a `Status` with its `Retry-After`/`x-should-retry` hints, a transport
//! error as [`crate::outcome::from_transport`] maps it); waits are the plan's. So
//! Retry-After is honoured, retries draw from the key's budget, and a key whose
//! breaker is open sends nothing.
//!
//! | the plan ends | the caller gets |
//! |---|---|
//! | success, or a non-retriable status (400, 404, …) | `Ok(response)`, with a [`CallReport`] in its extensions |
//! | otherwise | `Err(reqwest_middleware::Error::Middleware(_))` wrapping a [`BreakwaterError`]`<reqwest::Error>` with the history ([`breakwater_error`] finds it) |
//! | a transport error that the plan did not retry | `Err(reqwest_middleware::Error::Reqwest(_))`, unchanged |
//!
//! Only a request whose body can be cloned (`Request::try_clone`: no streaming body)
//! can be sent twice: such a request runs the configured route; any other runs the
//! same key's route with a single attempt (same breaker, same budget). An error from a
//! middleware further down the chain is not a fact about the server: it is returned
//! at once, unchanged, and the plan is abandoned (its breaker permit released,
//! nothing recorded). A call's deadline is the [`CallDeadline`] in the request's
//! extensions (`RequestBuilder::with_extension`), or the configured one.
//!
//! The URL is never logged, and the reqwest errors the middleware returns come without
//! it (`reqwest::Error::without_url`): a query string may carry a key. The
//! `breakwater.call` span names the key and the method.
//!
//! ```
//! use std::sync::Arc;
//! use breakwater_core::{Registry, RegistryConfig};
//! use breakwater_http::middleware::BreakwaterMiddleware;
//!
//! let registry = Arc::new(Registry::new(RegistryConfig::default()).unwrap());
//! let middleware = BreakwaterMiddleware::builder(registry).attempts(4).build().unwrap();
//! let client = reqwest_middleware::ClientBuilder::new(reqwest::Client::new())
//!     .with(middleware)
//!     .build();
//! # drop(client);
//! ```

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use breakwater_core::plan::History;
use breakwater_core::{Backoff, Key, Outcome, Registry, Route, TimeoutPhase};
use http::Extensions;
use parking_lot::RwLock;
use reqwest::{Request, Response};
use reqwest_middleware::{Middleware, Next};
use tracing::Instrument;

use crate::outcome::from_transport;
use crate::tower::drive::{self, Driver, Step};
use crate::tower::{BreakwaterError, CallDeadline, ConfigError, HttpClassify, RetryConfig};

/// Picks a request's key.
type KeyFn = Box<dyn Fn(&Request) -> Key + Send + Sync>;

/// The key of a request by its URL: the host (with the port, when the URL names one)
/// as the provider, `*` as the model.
#[must_use]
pub fn host_key(request: &Request) -> Key {
    let url = request.url();
    let host = url.host_str().unwrap_or("unknown");
    match url.port() {
        Some(port) => Key::new(&format!("{host}:{port}"), "*"),
        None => Key::new(host, "*"),
    }
}

/// What a call took, in the extensions of every response the middleware returns.
#[derive(Clone, Debug, PartialEq)]
pub struct CallReport {
    /// The key whose breaker and budget the call used.
    pub key: Key,
    /// Attempts sent.
    pub attempts: u32,
    /// Every attempt, wait and skip.
    pub history: History,
}

/// The [`BreakwaterError`] inside a `reqwest-middleware` error, if this middleware
/// returned it.
#[must_use]
pub fn breakwater_error(
    error: &reqwest_middleware::Error,
) -> Option<&BreakwaterError<reqwest::Error>> {
    match error {
        reqwest_middleware::Error::Middleware(inner) => inner.downcast_ref(),
        reqwest_middleware::Error::Reqwest(_) => None,
    }
}

/// Builds a [`BreakwaterMiddleware`].
#[must_use]
pub struct MiddlewareBuilder {
    registry: Arc<Registry>,
    config: RetryConfig,
    key_of: KeyFn,
}

impl MiddlewareBuilder {
    /// Replaces the whole configuration.
    pub fn config(mut self, config: RetryConfig) -> Self {
        self.config = config;
        self
    }

    /// Attempts per call (for requests that can be resent), the first included.
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

    /// The deadline of a call whose request carries no [`CallDeadline`].
    pub fn deadline(mut self, deadline: Duration) -> Self {
        self.config.deadline = deadline;
        self
    }

    /// The seed of the backoff jitter.
    pub fn seed(mut self, seed: u64) -> Self {
        self.config.seed = seed;
        self
    }

    /// How a request's key is chosen (default [`host_key`]).
    pub fn key_with<F>(mut self, key_of: F) -> Self
    where
        F: Fn(&Request) -> Key + Send + Sync + 'static,
    {
        self.key_of = Box::new(key_of);
        self
    }

    /// The middleware.
    ///
    /// # Errors
    ///
    /// [`ConfigError`] if the configuration cannot work.
    pub fn build(self) -> Result<BreakwaterMiddleware, ConfigError> {
        drive::route_config(
            "check",
            &Key::new("check", "*"),
            &self.config,
            self.config.attempts,
        )?;
        Ok(BreakwaterMiddleware {
            shared: Arc::new(Shared {
                registry: self.registry,
                config: self.config,
                key_of: self.key_of,
                routes: RwLock::new(HashMap::new()),
                calls: AtomicU64::new(0),
            }),
        })
    }
}

impl std::fmt::Debug for MiddlewareBuilder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MiddlewareBuilder")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

/// The middleware: see the [module docs](self). Cheap to clone.
#[derive(Clone)]
pub struct BreakwaterMiddleware {
    shared: Arc<Shared>,
}

struct Shared {
    registry: Arc<Registry>,
    config: RetryConfig,
    key_of: KeyFn,
    /// Each key's routes, bound on first use.
    routes: RwLock<HashMap<Key, Arc<Routes>>>,
    calls: AtomicU64,
}

/// A key's two routes: the configured one, and one attempt for bodies that cannot be
/// resent.
struct Routes {
    retrying: Route,
    single: Route,
}

impl BreakwaterMiddleware {
    /// A builder sharing `registry`'s breakers and budgets, with the default
    /// [`RetryConfig`] and [`host_key`].
    pub fn builder(registry: Arc<Registry>) -> MiddlewareBuilder {
        MiddlewareBuilder {
            registry,
            config: RetryConfig::default(),
            key_of: Box::new(host_key),
        }
    }

    /// The configuration.
    #[must_use]
    pub fn config(&self) -> &RetryConfig {
        &self.shared.config
    }
}

impl std::fmt::Debug for BreakwaterMiddleware {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut keys: Vec<Key> = self.shared.routes.read().keys().cloned().collect();
        keys.sort();
        f.debug_struct("BreakwaterMiddleware")
            .field("config", &self.shared.config)
            .field("keys", &keys)
            .finish_non_exhaustive()
    }
}

#[async_trait::async_trait]
impl Middleware for BreakwaterMiddleware {
    async fn handle(
        &self,
        request: Request,
        extensions: &mut Extensions,
        next: Next<'_>,
    ) -> reqwest_middleware::Result<Response> {
        self.shared.handle(request, extensions, next).await
    }
}

impl Shared {
    /// `key`'s routes, bound on first use.
    fn routes(&self, key: &Key) -> Result<Arc<Routes>, ConfigError> {
        if let Some(found) = self.routes.read().get(key) {
            return Ok(Arc::clone(found));
        }
        let name = key.to_string();
        let bind =
            |attempts| drive::one_step_route(&name, key, &self.config, attempts, &self.registry);
        let routes = Arc::new(Routes {
            retrying: bind(self.config.attempts)?,
            single: bind(1)?,
        });
        Ok(Arc::clone(
            self.routes.write().entry(key.clone()).or_insert(routes),
        ))
    }

    async fn handle(
        &self,
        request: Request,
        extensions: &mut Extensions,
        next: Next<'_>,
    ) -> reqwest_middleware::Result<Response> {
        let key = (self.key_of)(&request);
        let routes = self
            .routes(&key)
            .map_err(reqwest_middleware::Error::middleware)?;
        let resendable = request.try_clone().is_some();
        let route = if resendable {
            &routes.retrying
        } else {
            &routes.single
        };
        let deadline = extensions
            .get::<CallDeadline>()
            .map_or(self.config.deadline, |d| d.0);
        let n = self.calls.fetch_add(1, Ordering::Relaxed);
        let span = tracing::info_span!(
            "breakwater.call",
            key = %key,
            method = %request.method(),
            resendable,
            deadline_ms = deadline.as_millis() as u64,
        );
        async move {
            let mut driver = Driver::new(route, deadline, drive::call_rng(self.config.seed, n));
            let mut original = Some(request);
            let mut last: Option<Result<Response, reqwest::Error>> = None;
            let mut last_outcome = None;
            let finished = loop {
                let attempt = match driver.next().await {
                    Step::Attempt(attempt) => attempt,
                    Step::Finish(finished) => break finished,
                };
                drop(last.take());
                let this = if resendable {
                    original.as_ref().and_then(Request::try_clone)
                } else {
                    original.take()
                };
                let Some(this) = this else {
                    // Unreachable: a request that cannot be resent runs the
                    // single-attempt route. Were it reached, nothing was sent.
                    driver.report(attempt.id, Outcome::ConnectFailed);
                    continue;
                };
                let sent =
                    tokio::time::timeout(attempt.timeout, next.clone().run(this, extensions)).await;
                let result = match sent {
                    Err(_elapsed) => None,
                    Ok(Ok(response)) => Some(Ok(response)),
                    // Without its URL: a query string may carry a key.
                    Ok(Err(reqwest_middleware::Error::Reqwest(error))) => {
                        Some(Err(error.without_url()))
                    }
                    Ok(Err(other @ reqwest_middleware::Error::Middleware(_))) => return Err(other),
                };
                let outcome = match &result {
                    None => Outcome::TimedOut {
                        phase: TimeoutPhase::BeforeHeaders,
                    },
                    Some(Ok(response)) => {
                        HttpClassify::response(response.status(), response.headers())
                    }
                    Some(Err(error)) => from_transport(error, TimeoutPhase::BeforeHeaders),
                };
                tracing::debug!(attempt = attempt.attempt, outcome = ?outcome, "attempt ended");
                driver.report(attempt.id, outcome);
                last_outcome = Some(outcome);
                last = result;
            };
            let report = CallReport {
                key: key.clone(),
                attempts: finished.attempts,
                history: finished.history.clone(),
            };
            match crate::tower::error::conclude(&key, finished, last_outcome, last) {
                Ok(mut response) => {
                    response.extensions_mut().insert(report);
                    Ok(response)
                }
                Err(BreakwaterError::Inner(error)) => {
                    Err(reqwest_middleware::Error::Reqwest(error))
                }
                Err(error) => Err(reqwest_middleware::Error::middleware(error)),
            }
        }
        .instrument(span)
        .await
    }
}
