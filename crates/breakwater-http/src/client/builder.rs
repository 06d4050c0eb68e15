//! Building a [`Client`]: providers, routes, the registry, prices, prompt variants.

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::sync::Arc;
use std::sync::atomic::AtomicU64;

use breakwater_core::alert::{Alarms, AlertConfig};
use breakwater_core::route::RouteError;
use breakwater_core::{Metrics, PriceTable, Registry, RegistryConfig, Route, RouteConfig};
use parking_lot::Mutex;
use reqwest::header::{HeaderName, HeaderValue};

use super::{BoundRoute, Client, Inner, ProviderEntry, Target};
use crate::cache::ResponseCache;
use crate::clock;
use crate::limits::{DEFAULT_ERROR_BODY_LIMIT, DEFAULT_RESPONSE_LIMIT};
use crate::queue::Queue;
use crate::validate::Validator;
use crate::wire::{PromptVariant, PromptVariants, Provider};

/// An API key. Its `Debug` and `Display` never show it.
#[derive(Clone, PartialEq, Eq)]
pub struct ApiKey(String);

impl ApiKey {
    /// Wraps `key`.
    #[must_use]
    pub fn new(key: impl Into<String>) -> ApiKey {
        ApiKey(key.into())
    }

    /// The key itself, to put in a request header.
    #[must_use]
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for ApiKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ApiKey(<redacted>)")
    }
}

impl fmt::Display for ApiKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<redacted>")
    }
}

impl From<String> for ApiKey {
    fn from(key: String) -> ApiKey {
        ApiKey(key)
    }
}

impl From<&str> for ApiKey {
    fn from(key: &str) -> ApiKey {
        ApiKey(key.to_owned())
    }
}

/// One provider endpoint as configured: a name that route steps refer to, the wire
/// format it speaks, its base URL and its key.
#[derive(Clone, Debug)]
pub struct ProviderConfig {
    /// The name route steps use (`provider = "..."`).
    pub name: String,
    /// The wire format.
    pub kind: Provider,
    /// The base URL, without the API path (`https://api.anthropic.com`, or a loopback
    /// address in tests).
    pub base_url: String,
    /// The API key.
    pub api_key: ApiKey,
}

/// Why a client could not be built. Never contains an API key.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum BuildError {
    /// A route does not validate or bind.
    #[error("route {route:?}: {source}")]
    Route {
        /// The route's name.
        route: String,
        /// What is wrong with it.
        source: RouteError,
    },
    /// Two routes have the same name.
    #[error("two routes are named {0:?}")]
    DuplicateRoute(String),
    /// A route step names a provider that was not configured.
    #[error("route {route:?} step {step}: no provider named {provider:?}")]
    UnknownProvider {
        /// The route's name.
        route: String,
        /// The step's index.
        step: usize,
        /// The provider it names.
        provider: String,
    },
    /// A route or step names a validator that was not registered.
    #[error("route {route:?} step {step}: no validator named {validator:?}")]
    UnknownValidator {
        /// The route.
        route: String,
        /// The step's index.
        step: usize,
        /// The validator it names.
        validator: String,
    },
    /// A route step names a prompt variant that was not configured.
    #[error("route {route:?} step {step}: no prompt variant named {variant:?}")]
    UnknownVariant {
        /// The route's name.
        route: String,
        /// The step's index.
        step: usize,
        /// The variant it names.
        variant: String,
    },
    /// A provider's base URL does not parse.
    #[error("provider {provider:?}: base URL {url:?} is not a valid URL")]
    BaseUrl {
        /// The provider's name.
        provider: String,
        /// The URL given.
        url: String,
    },
    /// A provider's API key holds bytes an HTTP header cannot carry.
    #[error("provider {provider:?}: the API key is not a valid HTTP header value")]
    ApiKey {
        /// The provider's name.
        provider: String,
    },
    /// The registry configuration is invalid.
    #[error("registry: {0}")]
    Registry(#[from] breakwater_core::registry::RegistryError),
    /// reqwest could not build its client (a TLS back-end failed to start).
    #[error("HTTP client: {0}")]
    Http(#[from] reqwest::Error),
}

/// Builds a [`Client`]; see [`Client::builder`].
#[derive(Debug, Default)]
pub struct ClientBuilder {
    providers: Vec<ProviderConfig>,
    routes: Vec<RouteConfig>,
    registry: Option<Arc<Registry>>,
    prices: PriceTable,
    variants: PromptVariants,
    seed: Option<u64>,
    response_limit: Option<usize>,
    error_body_limit: Option<usize>,
    http: Option<reqwest::Client>,
    cache: Option<ResponseCache>,
    queue: Option<Queue>,
    validators: BTreeMap<String, Validator>,
    alerts: Option<AlertConfig>,
    alerts_off: bool,
}

impl ClientBuilder {
    /// Adds a provider endpoint named `name` (what route steps refer to).
    #[must_use]
    pub fn provider(
        mut self,
        name: impl Into<String>,
        kind: Provider,
        base_url: impl Into<String>,
        api_key: impl Into<ApiKey>,
    ) -> ClientBuilder {
        self.providers.push(ProviderConfig {
            name: name.into(),
            kind,
            base_url: base_url.into(),
            api_key: api_key.into(),
        });
        self
    }

    /// Adds a route.
    #[must_use]
    pub fn route(mut self, route: RouteConfig) -> ClientBuilder {
        self.routes.push(route);
        self
    }

    /// The registry of breakers and budgets every route binds to; by default a new one
    /// with [`RegistryConfig::default`]. Share one registry between clients to share
    /// breaker state.
    #[must_use]
    pub fn registry(mut self, registry: Arc<Registry>) -> ClientBuilder {
        self.registry = Some(registry);
        self
    }

    /// Per-model prices, for cost accounting and cost ceilings.
    #[must_use]
    pub fn prices(mut self, prices: PriceTable) -> ClientBuilder {
        self.prices = prices;
        self
    }

    /// Adds the prompt variant `id`, which route steps name with `prompt_variant`.
    #[must_use]
    pub fn prompt_variant(
        mut self,
        id: impl Into<String>,
        variant: PromptVariant,
    ) -> ClientBuilder {
        self.variants.insert(id, variant);
        self
    }

    /// Registers the output validator `name`, which routes and steps name with
    /// `validator`; `json` is built in (and may be replaced).
    #[must_use]
    pub fn validator(mut self, name: impl Into<String>, validator: Validator) -> ClientBuilder {
        self.validators.insert(name.into(), validator);
        self
    }

    /// The thresholds of the rate alerts (retry, fallback and degraded rates over a
    /// sliding window; see [`breakwater_core::alert`]). On by default with
    /// [`AlertConfig::default`]: retry rate above 2% per provider/model.
    #[must_use]
    pub fn alerts(mut self, config: AlertConfig) -> ClientBuilder {
        self.alerts = Some(config);
        self.alerts_off = false;
        self
    }

    /// Turns the rate alerts off.
    #[must_use]
    pub fn without_alerts(mut self) -> ClientBuilder {
        self.alerts_off = true;
        self
    }

    /// Seeds the plans' randomness (backoff jitter): request `n` draws from a ChaCha
    /// stream derived from `seed` and `n`. Without a seed, one is taken from the clock
    /// when the client is built.
    #[must_use]
    pub fn seed(mut self, seed: u64) -> ClientBuilder {
        self.seed = Some(seed);
        self
    }

    /// The most bytes of a successful response body read; a larger body is malformed
    /// (default [`DEFAULT_RESPONSE_LIMIT`]).
    #[must_use]
    pub fn response_limit(mut self, bytes: usize) -> ClientBuilder {
        self.response_limit = Some(bytes);
        self
    }

    /// The most bytes of an error body read; the rest is dropped unread (default
    /// [`DEFAULT_ERROR_BODY_LIMIT`]).
    #[must_use]
    pub fn error_body_limit(mut self, bytes: usize) -> ClientBuilder {
        self.error_body_limit = Some(bytes);
        self
    }

    /// The reqwest client to send with (proxies, TLS roots, connection pool); by default
    /// `reqwest::Client::new()`. Do not give it a timeout: attempts are timed by the plan.
    #[must_use]
    pub fn http_client(mut self, http: reqwest::Client) -> ClientBuilder {
        self.http = Some(http);
        self
    }

    /// The response cache: successful answers are stored in it, and the plan's cache
    /// lookups answered from it. Without one, every lookup misses.
    /// `ResponseCache::default()` keeps answers 20 minutes.
    #[must_use]
    pub fn cache(mut self, cache: ResponseCache) -> ClientBuilder {
        self.cache = Some(cache);
        self
    }

    /// The durable queue: a request the plan queues is stored in it before the call
    /// returns [`Error::Queued`](super::Error::Queued). Without one, the caller gets
    /// the request back to keep. Replay it with [`Queue::drain`].
    #[must_use]
    pub fn queue(mut self, queue: Queue) -> ClientBuilder {
        self.queue = Some(queue);
        self
    }

    /// Checks everything and builds the client.
    ///
    /// # Errors
    ///
    /// A [`BuildError`] naming the route, step or provider at fault.
    pub fn build(self) -> Result<Client, BuildError> {
        let registry = match self.registry {
            Some(registry) => registry,
            None => Arc::new(Registry::new(RegistryConfig::default())?),
        };
        let mut providers = HashMap::new();
        for p in self.providers {
            let entry = provider_entry(&p)?;
            providers.insert(p.name, Arc::new(entry));
        }
        let mut validators = self.validators;
        validators
            .entry("json".to_owned())
            .or_insert_with(Validator::json);
        let mut routes = HashMap::new();
        for config in &self.routes {
            let names = Names {
                providers: &providers,
                variants: &self.variants,
                validators: &validators,
            };
            let bound = bind(config, &registry, &self.prices, &names)?;
            if routes.insert(config.name.clone(), bound).is_some() {
                return Err(BuildError::DuplicateRoute(config.name.clone()));
            }
        }
        let seed = self.seed.unwrap_or_else(|| {
            let reading = clock::read();
            let wall = reading
                .wall
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_nanos() as u64);
            wall ^ reading.now.as_nanos().rotate_left(32)
        });
        let http = match self.http {
            Some(http) => http,
            None => reqwest::Client::builder().build()?,
        };
        Ok(Client {
            inner: Arc::new(Inner {
                http,
                routes,
                registry,
                seed: super::seed_key(seed),
                requests: AtomicU64::new(0),
                response_limit: self.response_limit.unwrap_or(DEFAULT_RESPONSE_LIMIT),
                error_body_limit: self.error_body_limit.unwrap_or(DEFAULT_ERROR_BODY_LIMIT),
                metrics: Mutex::new(Metrics::new()),
                cache: self.cache,
                queue: self.queue,
                keys: AtomicU64::new(0),
                alarms: (!self.alerts_off)
                    .then(|| Mutex::new(Alarms::new(self.alerts.unwrap_or_default()))),
            }),
        })
    }
}

fn provider_entry(p: &ProviderConfig) -> Result<ProviderEntry, BuildError> {
    let base_url = p.base_url.trim_end_matches('/').to_owned();
    if reqwest::Url::parse(&base_url).is_err() {
        return Err(BuildError::BaseUrl {
            provider: p.name.clone(),
            url: p.base_url.clone(),
        });
    }
    let auth = p.kind.auth_header(p.api_key.expose());
    let mut value = HeaderValue::from_str(auth.value()).map_err(|_| BuildError::ApiKey {
        provider: p.name.clone(),
    })?;
    // Keeps the key out of reqwest's and hyper's Debug output.
    value.set_sensitive(true);
    Ok(ProviderEntry {
        name: p.name.clone(),
        kind: p.kind,
        base_url,
        auth: (HeaderName::from_static(auth.name()), value),
    })
}

/// What route steps refer to by name.
struct Names<'a> {
    providers: &'a HashMap<String, Arc<ProviderEntry>>,
    variants: &'a PromptVariants,
    validators: &'a BTreeMap<String, Validator>,
}

fn bind(
    config: &RouteConfig,
    registry: &Registry,
    prices: &PriceTable,
    names: &Names<'_>,
) -> Result<BoundRoute, BuildError> {
    let Names {
        providers,
        variants,
        validators,
    } = *names;
    let route = Route::bind(config, registry, prices).map_err(|source| BuildError::Route {
        route: config.name.clone(),
        source,
    })?;
    let mut steps = Vec::with_capacity(config.steps.len());
    for (index, step) in config.steps.iter().enumerate() {
        let provider =
            providers
                .get(&step.provider)
                .ok_or_else(|| BuildError::UnknownProvider {
                    route: config.name.clone(),
                    step: index,
                    provider: step.provider.clone(),
                })?;
        let variant = match &step.prompt_variant {
            None => None,
            Some(id) => {
                Some(
                    variants
                        .get(id)
                        .cloned()
                        .ok_or_else(|| BuildError::UnknownVariant {
                            route: config.name.clone(),
                            step: index,
                            variant: id.clone(),
                        })?,
                )
            }
        };
        let validator =
            match step.validator.as_ref().or(config.validator.as_ref()) {
                None => None,
                Some(name) => Some(validators.get(name).cloned().ok_or_else(|| {
                    BuildError::UnknownValidator {
                        route: config.name.clone(),
                        step: index,
                        validator: name.clone(),
                    }
                })?),
            };
        steps.push(Target {
            provider: Arc::clone(provider),
            variant,
            validator,
            url: super::url::ParsedUrl::default(),
            stream_url: super::url::ParsedUrl::default(),
        });
    }
    let keys = crate::metric_keys::RouteKeys::new(&route);
    Ok(BoundRoute { route, steps, keys })
}
