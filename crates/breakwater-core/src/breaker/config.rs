//! Breaker settings: what trips it, how long it stays open, how it closes again.

use std::fmt;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::backoff::{Backoff, BackoffError, Jitter};
use crate::class::ClassSet;
use crate::time::serde_ms;

use super::off_or;

/// How a [`Breaker`](super::Breaker) decides to trip, and how it recovers.
///
/// In TOML every field may be left out (it takes its default). The optional checks are
/// turned off with `false`, since TOML has no null (JSON also accepts `null`):
///
/// ```toml
/// consecutive_failures = 5
/// failure_rate = 0.5
/// slow_call_rate = false
/// slow_call_ms = 30000
/// min_calls = 20
/// half_open_probes = 3
/// close_after = 2
/// failures = ["retriable", "overloaded", "ambiguous"]
/// window = { kind = "time", span_ms = 60000, buckets = 12 }  # or { kind = "count", size = 100 }, or false
/// open = { base_ms = 5000, multiplier = 2.0, cap_ms = 120000, jitter = "equal" }
/// ```
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct BreakerConfig {
    /// Trip after this many failures in a row (a success in between starts over).
    #[serde(with = "off_or")]
    pub consecutive_failures: Option<u32>,
    /// The calls the rates are computed over; `None` turns both rates off.
    #[serde(with = "off_or")]
    pub window: Option<Window>,
    /// Trip when failures / calls in the window reach this share (in `(0, 1]`).
    #[serde(with = "off_or")]
    pub failure_rate: Option<f64>,
    /// Trip when slow calls / calls in the window reach this share (in `(0, 1]`).
    #[serde(with = "off_or")]
    pub slow_call_rate: Option<f64>,
    /// A call that took at least this long is slow.
    #[serde(with = "serde_ms")]
    pub slow_call_ms: Duration,
    /// The rates are only judged once the window holds at least this many calls.
    pub min_calls: u32,
    /// The open duration of the n-th trip in a row is `open.delay(n - 1, previous, ..)`,
    /// drawn from the breaker's own seeded RNG; a close starts the count over.
    pub open: Backoff,
    /// How many probes HalfOpen admits (`N`). A probe dropped without a record, or
    /// recorded with a class that is neither a failure nor a success, frees its slot.
    pub half_open_probes: u32,
    /// How many probe successes close the breaker (`M`, at most `N`).
    pub close_after: u32,
    /// The classes that count as failures. `Success` and `NonRetriable` outside this set
    /// count as successes (the provider answered); other classes outside it (by default
    /// `RateLimited`) count as neither.
    pub failures: ClassSet,
}

impl Default for BreakerConfig {
    /// Five failures in a row, or half of the last 100 calls once 20 were made, trip it;
    /// it opens for 5 s, doubling per repeated trip up to 120 s with equal jitter; three
    /// probes, two successes close it; slow calls (30 s) are not judged.
    fn default() -> BreakerConfig {
        BreakerConfig {
            consecutive_failures: Some(5),
            window: Some(Window::Count { size: 100 }),
            failure_rate: Some(0.5),
            slow_call_rate: None,
            slow_call_ms: Duration::from_secs(30),
            min_calls: 20,
            open: Backoff {
                base: Duration::from_secs(5),
                multiplier: 2.0,
                cap: Duration::from_secs(120),
                jitter: Jitter::Equal,
            },
            half_open_probes: 3,
            close_after: 2,
            failures: ClassSet::DEFAULT_FAILURES,
        }
    }
}

impl BreakerConfig {
    /// Checks that the settings can work. [`Breaker::new`](super::Breaker::new) never
    /// panics on a config that fails this, but may not behave as intended.
    pub fn validate(&self) -> Result<(), BreakerError> {
        if self.consecutive_failures == Some(0) {
            return Err(BreakerError::ZeroConsecutiveFailures);
        }
        let bad = |rate: Option<f64>| rate.is_some_and(|r| !(r > 0.0 && r <= 1.0));
        if bad(self.failure_rate) {
            return Err(BreakerError::BadFailureRate);
        }
        if bad(self.slow_call_rate) {
            return Err(BreakerError::BadSlowCallRate);
        }
        match self.window {
            None if self.failure_rate.is_some() || self.slow_call_rate.is_some() => {
                return Err(BreakerError::RateWithoutWindow);
            }
            None => {}
            Some(Window::Count { size }) if size == 0 || size > Window::MAX_SIZE => {
                return Err(BreakerError::BadWindow);
            }
            Some(Window::Count { size }) if self.min_calls > size => {
                return Err(BreakerError::MinCallsAboveWindow);
            }
            Some(Window::Time { span, buckets })
                if buckets == 0
                    || buckets > Window::MAX_BUCKETS
                    || span.as_nanos() < u128::from(buckets) =>
            {
                return Err(BreakerError::BadWindow);
            }
            Some(_) => {}
        }
        if self.half_open_probes == 0 {
            return Err(BreakerError::NoProbes);
        }
        if self.close_after == 0 || self.close_after > self.half_open_probes {
            return Err(BreakerError::BadCloseAfter);
        }
        self.open.validate().map_err(BreakerError::Open)
    }
}

/// The calls a breaker's rates are computed over.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum Window {
    /// The last `size` calls.
    Count {
        /// How many calls (1 to [`Window::MAX_SIZE`]).
        size: u32,
    },
    /// The calls of the last `span`, kept in `buckets` buckets of `span / buckets`
    /// each: the window is the current bucket and the `buckets - 1` before it, so it
    /// reaches between `span - span / buckets` and `span` into the past.
    Time {
        /// How far back the window reaches.
        #[serde(rename = "span_ms", with = "serde_ms")]
        span: Duration,
        /// How many buckets (1 to [`Window::MAX_BUCKETS`]).
        buckets: u32,
    },
}

impl Window {
    /// The largest count window (one byte per call).
    pub const MAX_SIZE: u32 = 1 << 16;
    /// The most buckets a time window may have.
    pub const MAX_BUCKETS: u32 = 1 << 10;
}

/// A breaker setting that cannot work.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum BreakerError {
    /// `consecutive_failures` is 0.
    ZeroConsecutiveFailures,
    /// `failure_rate` is not in `(0, 1]`.
    BadFailureRate,
    /// `slow_call_rate` is not in `(0, 1]`.
    BadSlowCallRate,
    /// A rate is set but the window is off.
    RateWithoutWindow,
    /// The window is empty or too large, or its buckets are shorter than a nanosecond.
    BadWindow,
    /// `min_calls` exceeds the count window's size: the rates could never be judged.
    MinCallsAboveWindow,
    /// `half_open_probes` is 0: the breaker could never close.
    NoProbes,
    /// `close_after` is 0 or above `half_open_probes`.
    BadCloseAfter,
    /// The open backoff is invalid.
    Open(BackoffError),
}

impl fmt::Display for BreakerError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            BreakerError::ZeroConsecutiveFailures => {
                f.write_str("breaker consecutive_failures must be ≥ 1 (or false)")
            }
            BreakerError::BadFailureRate => f.write_str("breaker failure_rate must be in (0, 1]"),
            BreakerError::BadSlowCallRate => {
                f.write_str("breaker slow_call_rate must be in (0, 1]")
            }
            BreakerError::RateWithoutWindow => {
                f.write_str("breaker rates need a window (set window, or turn the rates off)")
            }
            BreakerError::BadWindow => write!(
                f,
                "breaker window needs 1 to {} calls, or 1 to {} buckets of at least 1 ns",
                Window::MAX_SIZE,
                Window::MAX_BUCKETS
            ),
            BreakerError::MinCallsAboveWindow => {
                f.write_str("breaker min_calls exceeds the count window's size")
            }
            BreakerError::NoProbes => f.write_str("breaker half_open_probes must be ≥ 1"),
            BreakerError::BadCloseAfter => {
                f.write_str("breaker close_after must be between 1 and half_open_probes")
            }
            BreakerError::Open(e) => write!(f, "breaker open: {e}"),
        }
    }
}

impl BreakerError {
    /// The setting at fault, as written in a configuration file (`failure_rate`,
    /// `open.multiplier`); a caller that nests the breaker prefixes its own path. A
    /// rate without a window names the window.
    #[must_use]
    pub fn path(&self) -> String {
        match self {
            BreakerError::ZeroConsecutiveFailures => "consecutive_failures".to_owned(),
            BreakerError::BadFailureRate => "failure_rate".to_owned(),
            BreakerError::BadSlowCallRate => "slow_call_rate".to_owned(),
            BreakerError::RateWithoutWindow | BreakerError::BadWindow => "window".to_owned(),
            BreakerError::MinCallsAboveWindow => "min_calls".to_owned(),
            BreakerError::NoProbes => "half_open_probes".to_owned(),
            BreakerError::BadCloseAfter => "close_after".to_owned(),
            BreakerError::Open(e) => format!("open.{}", e.path()),
        }
    }
}

impl std::error::Error for BreakerError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            BreakerError::Open(e) => Some(e),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::class::ClassKind;

    #[test]
    fn defaults_are_valid_and_documented() {
        let c = BreakerConfig::default();
        assert_eq!(c.validate(), Ok(()));
        assert_eq!(c.consecutive_failures, Some(5));
        assert_eq!(c.window, Some(Window::Count { size: 100 }));
        assert_eq!(c.open.ceiling(0), Duration::from_secs(5));
        assert_eq!(c.open.ceiling(10), Duration::from_secs(120));
        assert_eq!(c.open.jitter, Jitter::Equal);
        assert_eq!((c.half_open_probes, c.close_after, c.min_calls), (3, 2, 20));
    }

    #[test]
    fn reads_toml_with_defaults_and_off_switches() {
        let c: BreakerConfig = toml::from_str(
            "consecutive_failures = false\nwindow = { kind = \"time\", span_ms = 60000, buckets = 12 }\n\
             slow_call_rate = 0.8\nfailure_rate = 1\nfailures = [\"retriable\"]",
        )
        .unwrap();
        assert_eq!(c.consecutive_failures, None);
        assert_eq!(
            c.window,
            Some(Window::Time {
                span: Duration::from_secs(60),
                buckets: 12
            })
        );
        assert_eq!((c.failure_rate, c.slow_call_rate), (Some(1.0), Some(0.8)));
        assert_eq!(c.failures, ClassSet::EMPTY.with(ClassKind::Retriable));
        assert_eq!(c.min_calls, 20);
        assert_eq!(c.validate(), Ok(()));

        let off: BreakerConfig = toml::from_str("window = false\nfailure_rate = false\n").unwrap();
        assert_eq!((off.window, off.failure_rate), (None, None));
        assert_eq!(off.validate(), Ok(()));
    }

    #[test]
    fn rejects_unknown_and_malformed_fields() {
        for text in [
            "consecutive = 3",
            "consecutive_failures = true",
            "consecutive_failures = -1",
            "window = { kind = \"count\", size = 10, extra = 1 }",
            "window = { kind = \"sliding\", size = 10 }",
            "window = 10",
        ] {
            assert!(toml::from_str::<BreakerConfig>(text).is_err(), "{text}");
        }
    }

    #[test]
    fn round_trips_through_toml_and_json() {
        let configs = [
            BreakerConfig::default(),
            BreakerConfig {
                consecutive_failures: None,
                window: Some(Window::Time {
                    span: Duration::from_secs(10),
                    buckets: 5,
                }),
                slow_call_rate: Some(0.25),
                ..BreakerConfig::default()
            },
            BreakerConfig {
                window: None,
                failure_rate: None,
                ..BreakerConfig::default()
            },
        ];
        for c in configs {
            let text = toml::to_string(&c).unwrap();
            assert_eq!(toml::from_str::<BreakerConfig>(&text).unwrap(), c, "{text}");
            let json = serde_json::to_string(&c).unwrap();
            assert_eq!(serde_json::from_str::<BreakerConfig>(&json).unwrap(), c);
        }
        let nulls: BreakerConfig =
            serde_json::from_str(r#"{"window": null, "failure_rate": null}"#).unwrap();
        assert_eq!((nulls.window, nulls.failure_rate), (None, None));
    }

    #[test]
    fn validate_accepts_each_bound_and_rejects_one_past_it() {
        let ok = BreakerConfig::default();
        let with = |change: &dyn Fn(&mut BreakerConfig)| {
            let mut config = ok.clone();
            change(&mut config);
            config.validate()
        };
        let time = |span, buckets| Some(Window::Time { span, buckets });
        let max = Window::MAX_BUCKETS;
        assert_eq!(with(&|c| c.failure_rate = Some(1.0)), Ok(()));
        assert_eq!(
            with(&|c| c.failure_rate = Some(0.0)),
            Err(BreakerError::BadFailureRate)
        );
        assert_eq!(with(&|c| c.slow_call_rate = Some(1.0)), Ok(()));
        assert_eq!(
            with(&|c| c.slow_call_rate = Some(0.0)),
            Err(BreakerError::BadSlowCallRate)
        );
        let size = |size| {
            move |c: &mut BreakerConfig| {
                c.window = Some(Window::Count { size });
                c.min_calls = 1;
            }
        };
        assert_eq!(with(&size(1)), Ok(()));
        assert_eq!(with(&size(Window::MAX_SIZE)), Ok(()));
        assert_eq!(
            with(&size(Window::MAX_SIZE + 1)),
            Err(BreakerError::BadWindow)
        );
        assert_eq!(
            with(&|c| c.min_calls = 100),
            Ok(()),
            "min_calls may equal the window"
        );
        assert_eq!(
            with(&|c| c.min_calls = 101),
            Err(BreakerError::MinCallsAboveWindow)
        );
        let span = Duration::from_secs(10);
        assert_eq!(with(&|c| c.window = time(span, 1)), Ok(()));
        assert_eq!(with(&|c| c.window = time(span, max)), Ok(()));
        assert_eq!(
            with(&|c| c.window = time(span, max + 1)),
            Err(BreakerError::BadWindow)
        );
        // A bucket may be as short as a nanosecond, not shorter.
        let nanos = Duration::from_nanos(4);
        assert_eq!(with(&|c| c.window = time(nanos, 4)), Ok(()));
        assert_eq!(
            with(&|c| c.window = time(nanos, 5)),
            Err(BreakerError::BadWindow)
        );
        assert_eq!(with(&|c| c.close_after = 3), Ok(()), "all probes");
        assert_eq!(with(&|c| c.close_after = 1), Ok(()));
        assert_eq!(
            with(&|c| c.half_open_probes = 1),
            Err(BreakerError::BadCloseAfter)
        );
    }

    #[test]
    fn validate_names_each_problem() {
        let ok = BreakerConfig::default();
        let cases = [
            (
                BreakerConfig {
                    consecutive_failures: Some(0),
                    ..ok.clone()
                },
                BreakerError::ZeroConsecutiveFailures,
            ),
            (
                BreakerConfig {
                    failure_rate: Some(f64::NAN),
                    ..ok.clone()
                },
                BreakerError::BadFailureRate,
            ),
            (
                BreakerConfig {
                    slow_call_rate: Some(1.5),
                    ..ok.clone()
                },
                BreakerError::BadSlowCallRate,
            ),
            (
                BreakerConfig {
                    window: None,
                    ..ok.clone()
                },
                BreakerError::RateWithoutWindow,
            ),
            (
                BreakerConfig {
                    window: Some(Window::Count { size: 0 }),
                    ..ok.clone()
                },
                BreakerError::BadWindow,
            ),
            (
                BreakerConfig {
                    window: Some(Window::Time {
                        span: Duration::from_nanos(3),
                        buckets: 4,
                    }),
                    ..ok.clone()
                },
                BreakerError::BadWindow,
            ),
            (
                BreakerConfig {
                    window: Some(Window::Count { size: 10 }),
                    ..ok.clone()
                },
                BreakerError::MinCallsAboveWindow,
            ),
            (
                BreakerConfig {
                    half_open_probes: 0,
                    close_after: 0,
                    ..ok.clone()
                },
                BreakerError::NoProbes,
            ),
            (
                BreakerConfig {
                    close_after: 4,
                    ..ok.clone()
                },
                BreakerError::BadCloseAfter,
            ),
            (
                BreakerConfig {
                    open: Backoff {
                        multiplier: 0.5,
                        ..ok.open
                    },
                    ..ok.clone()
                },
                BreakerError::Open(BackoffError::BadMultiplier),
            ),
        ];
        for (config, error) in cases {
            assert_eq!(config.validate(), Err(error), "{config:?}");
            assert!(!error.to_string().is_empty());
            assert!(
                crate::written::written(&config, &error.path()),
                "{error:?}: {} is not in {config:?}",
                error.path()
            );
            // Only a bad open backoff has a cause of its own.
            let source = std::error::Error::source(&error).map(ToString::to_string);
            match error {
                BreakerError::Open(inner) => assert_eq!(source, Some(inner.to_string())),
                _ => assert_eq!(source, None),
            }
        }
    }
}
