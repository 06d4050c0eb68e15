//! [`CallOptions`]: who a call is for, its queue identity, and the core's options.

use breakwater_core::RequestOptions;

/// How one call is made: for whom, under which idempotency key, with which core
/// options. `CallOptions::default()` is the anonymous tenant, a fresh key, default
/// options; a bare [`RequestOptions`] converts into that with its options.
///
/// ```
/// use breakwater_core::RequestOptions;
/// use breakwater_http::CallOptions;
///
/// let options = CallOptions::new()
///     .tenant("acme")
///     .idempotency_key("nightly-summary-2025-06-01")
///     .request(RequestOptions { allow_restart_after_tokens: true, ..RequestOptions::default() });
/// assert_eq!(options.tenant, "acme");
/// ```
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct CallOptions {
    /// Who the call is for. It is part of the response cache's key (no tenant is ever
    /// served another's cached answer) and is stored with a queued task. Empty: the
    /// anonymous tenant.
    pub tenant: String,
    /// The key a deferred call is queued under. The queue stores a key once, so a
    /// caller that retries the same call with the same key cannot queue the work
    /// twice. `None`: the client makes a fresh, unique key for each queued call.
    pub idempotency_key: Option<String>,
    /// The core's per-request options (cost ceiling, restarts after tokens, …).
    pub request: RequestOptions,
    /// Whether the call is idempotent and may be answered from the response cache
    /// before the chain runs. Default: the cache serves only on degradation.
    pub cache: CacheUse,
    /// For a deferrable call the plan queues: store it for a provider's batch API
    /// ([`Task::batch`](crate::queue::Task::batch)) rather than for the synchronous
    /// drain. Ignored for other task kinds. Default `false`.
    pub batch: bool,
}

/// When the response cache may answer a call. Either way, a successful answer refreshes
/// the entry, and both uses share one cache and its TTL.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum CacheUse {
    /// Only when the chain cannot answer and the route's degradation asks for the cache.
    #[default]
    OnDegradation,
    /// First: an idempotent request is looked up before any attempt, and a hit (younger
    /// than the TTL) returns at once, flagged [`from_cache`](crate::Completion::from_cache)
    /// with its age. `key`: the cache key to use instead of the one derived from the
    /// tenant, the route and the normalised request (still scoped to the tenant and
    /// route). `complete` only: streams always run the chain.
    First {
        /// An explicit key, or `None` to derive it from the request.
        key: Option<String>,
    },
}

impl CallOptions {
    /// The anonymous tenant, a fresh key, default options.
    #[must_use]
    pub fn new() -> CallOptions {
        CallOptions::default()
    }

    /// Sets the tenant.
    #[must_use]
    pub fn tenant(mut self, tenant: impl Into<String>) -> CallOptions {
        self.tenant = tenant.into();
        self
    }

    /// Sets the idempotency key for queued work.
    #[must_use]
    pub fn idempotency_key(mut self, key: impl Into<String>) -> CallOptions {
        self.idempotency_key = Some(key.into());
        self
    }

    /// Marks the call idempotent: the cache is consulted before the chain, under the
    /// key derived from the tenant, the route and the normalised request.
    #[must_use]
    pub fn cache_first(mut self) -> CallOptions {
        self.cache = CacheUse::First { key: None };
        self
    }

    /// Marks the call idempotent with an explicit cache key (scoped to the tenant and
    /// the route): the cache is consulted before the chain.
    #[must_use]
    pub fn cache_first_with_key(mut self, key: impl Into<String>) -> CallOptions {
        self.cache = CacheUse::First {
            key: Some(key.into()),
        };
        self
    }

    /// Sends the call, if the plan queues it (deferrable calls only), to a provider's
    /// batch API rather than to the synchronous drain: see [`crate::batch`].
    #[must_use]
    pub fn via_batch(mut self) -> CallOptions {
        self.batch = true;
        self
    }

    /// Sets the core's per-request options.
    #[must_use]
    pub fn request(mut self, options: RequestOptions) -> CallOptions {
        self.request = options;
        self
    }
}

impl From<RequestOptions> for CallOptions {
    fn from(request: RequestOptions) -> CallOptions {
        CallOptions {
            request,
            ..CallOptions::default()
        }
    }
}
