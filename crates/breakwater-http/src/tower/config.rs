//! The settings of the one-step route the layer and the middleware build.

use std::time::Duration;

use breakwater_core::route::RouteError;
use breakwater_core::{Backoff, Taxonomy};

/// How hard to try one call: the one-step route the layer (and the
/// [middleware](crate::middleware)) builds for its key.
#[derive(Clone, Debug, PartialEq)]
pub struct RetryConfig {
    /// Attempts per call, the first included (default 3).
    pub attempts: u32,
    /// Each attempt's timeout, readiness included (default 30 s); the deadline may cut
    /// it shorter.
    pub attempt_timeout: Duration,
    /// The delay before a retry when the server gives no Retry-After (default: the
    /// core's, 500 ms doubling to 30 s with full jitter).
    pub backoff: Backoff,
    /// A call's deadline unless the request names its own (default 60 s).
    pub deadline: Duration,
    /// The shortest attempt worth starting after a failure (default 1 s, or the
    /// attempt timeout if shorter): no wait or retry is begun that would leave less.
    pub min_attempt: Duration,
    /// Retries after ambiguous outcomes (a 408), per call (default 1).
    pub ambiguous_retries: u32,
    /// What each status means (default: the core's table: 429 rate-limited, 5xx
    /// retriable, 408 ambiguous, other 4xx non-retriable).
    pub taxonomy: Taxonomy,
    /// The seed of the backoff jitter; call `n` draws from ChaCha stream `n` of it.
    pub seed: u64,
}

impl Default for RetryConfig {
    fn default() -> RetryConfig {
        RetryConfig {
            attempts: 3,
            attempt_timeout: Duration::from_secs(30),
            backoff: Backoff::default(),
            deadline: Duration::from_secs(60),
            min_attempt: Duration::from_secs(1),
            ambiguous_retries: 1,
            taxonomy: Taxonomy::default(),
            seed: 0,
        }
    }
}

/// A configuration that cannot work.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// The route it makes is invalid: zero attempts, a zero attempt timeout, or a
    /// backoff whose cap is below its base or whose multiplier is below 1.
    #[error("{0}")]
    Route(RouteError),
    /// The deadline is zero: no call could ever be sent.
    #[error("the call deadline must be positive")]
    ZeroDeadline,
}
