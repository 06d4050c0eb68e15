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
