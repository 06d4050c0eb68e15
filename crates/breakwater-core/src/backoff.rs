//! Exponential backoff with jitter.
//!
//! # Numbering
//!
//! `retry` counts the waits of one sequence from zero: the wait before the first retry
//! is `retry = 0`, before the second `retry = 1`, and so on. The un-jittered delay
//! (the *ceiling*) is `min(cap, base · multiplierʳᵉᵗʳʸ)`.
//!
//! # Jitter
//!
//! Clients that fail together and wait the same time retry together: the thundering
//! herd. Jitter spreads them out (Brooker, "Exponential Backoff And Jitter", 2015):
//!
//! | jitter | delay for ceiling `v` |
//! |---|---|
//! | [`Jitter::None`] | `v` |
//! | [`Jitter::Full`] (default) | uniform in `[0, v]` |
//! | [`Jitter::Equal`] | `v/2 +` uniform in `[0, v/2]` |
//! | [`Jitter::Decorrelated`] | uniform in `[base, min(cap, 3 · previous)]`, `previous` starting at `base` |
//! | [`Jitter::Proportional`] | `v · (1 − 0.25 · U)`, U uniform in `[0, 1)`: what the official Anthropic and OpenAI SDKs do |
//!
//! Full jitter does the least total work for a contended resource; equal jitter keeps
//! a floor under every wait; decorrelated grows from the previous wait rather than from
//! the retry count. Every draw comes from the [`Rng`] passed in.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::Rng;
use crate::time::{nanos, serde_ms};

/// How a backoff delay is randomised: see the [module docs](self).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Jitter {
    /// No randomness: every client waits the ceiling.
    None,
    /// Uniform in `[0, ceiling]`.
    #[default]
    Full,
    /// Half the ceiling plus uniform in `[0, ceiling/2]`.
    Equal,
    /// Uniform in `[base, min(cap, 3 · previous)]`.
    Decorrelated,
    /// `ceiling · (1 − 0.25 · U)`: at most a quarter off the ceiling, as the official
    /// Anthropic and OpenAI SDKs jitter (so clients stay nearly in step).
    Proportional,
}

/// An exponential backoff schedule: `min(cap, base · multiplierʳᵉᵗʳʸ)`, jittered.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Backoff {
    /// The ceiling of the first wait.
    #[serde(rename = "base_ms", with = "serde_ms")]
    pub base: Duration,
    /// How much the ceiling grows per retry (at least 1).
    #[serde(default = "default_multiplier")]
    pub multiplier: f64,
    /// No wait is ever longer.
    #[serde(rename = "cap_ms", with = "serde_ms")]
    pub cap: Duration,
    /// How the delay is randomised.
    #[serde(default)]
    pub jitter: Jitter,
}

fn default_multiplier() -> f64 {
    2.0
}

impl Default for Backoff {
    /// 500 ms doubling to a 30 s cap with full jitter.
    fn default() -> Backoff {
        Backoff {
            base: Duration::from_millis(500),
            multiplier: 2.0,
            cap: Duration::from_secs(30),
            jitter: Jitter::Full,
        }
    }
}

/// A backoff setting that cannot work.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum BackoffError {
    /// The multiplier is below 1, NaN or infinite.
    BadMultiplier,
    /// The cap is below the base.
    CapBelowBase,
}

impl std::fmt::Display for BackoffError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            BackoffError::BadMultiplier => {
                f.write_str("backoff multiplier must be a finite number ≥ 1")
            }
            BackoffError::CapBelowBase => f.write_str("backoff cap_ms must be ≥ base_ms"),
        }
    }
}

impl std::error::Error for BackoffError {}

impl BackoffError {
    /// The setting at fault, as written in a configuration file (`multiplier`,
    /// `cap_ms`); a caller that nests the backoff prefixes its own path.
    #[must_use]
    pub const fn path(&self) -> &'static str {
        match self {
            BackoffError::BadMultiplier => "multiplier",
            BackoffError::CapBelowBase => "cap_ms",
        }
    }
}

impl Backoff {
    /// A schedule with the given base, multiplier 2, cap and full jitter.
    #[must_use]
    pub const fn exponential(base: Duration, cap: Duration) -> Backoff {
        Backoff {
            base,
            multiplier: 2.0,
            cap,
            jitter: Jitter::Full,
        }
    }

    /// The same schedule with another jitter.
    #[must_use]
    pub const fn with_jitter(mut self, jitter: Jitter) -> Backoff {
        self.jitter = jitter;
        self
    }

    /// Checks the settings: a multiplier ≥ 1 and a cap ≥ base.
    pub fn validate(&self) -> Result<(), BackoffError> {
        if !self.multiplier.is_finite() || self.multiplier < 1.0 {
            return Err(BackoffError::BadMultiplier);
        }
        if self.cap < self.base {
            return Err(BackoffError::CapBelowBase);
        }
        Ok(())
    }

    /// The un-jittered delay before retry number `retry` (from 0):
    /// `min(cap, base · multiplierʳᵉᵗʳʸ)`. Never panics, whatever the settings.
    #[must_use]
    pub fn ceiling(&self, retry: u32) -> Duration {
        let base = nanos(self.base) as f64;
        let cap = nanos(self.cap);
        let multiplier = if self.multiplier.is_finite() {
            self.multiplier.max(1.0)
        } else {
            1.0
        };
        let grown = base * pow(multiplier, retry);
        // `as` saturates for floats: NaN → 0, +inf → u64::MAX.
        let grown = if grown.is_nan() {
            u64::MAX
        } else {
            grown as u64
        };
        Duration::from_nanos(grown.min(cap))
    }

    /// The jittered delay before retry number `retry`. `previous` is the delay this
    /// schedule returned for the previous retry of the same sequence (only
    /// [`Jitter::Decorrelated`] uses it; `None` at the first retry).
    pub fn delay<R: Rng + ?Sized>(
        &self,
        retry: u32,
        previous: Option<Duration>,
        rng: &mut R,
    ) -> Duration {
        match self.jitter {
            Jitter::None => self.ceiling(retry),
            Jitter::Full => Duration::from_nanos(rng.up_to(nanos(self.ceiling(retry)))),
            Jitter::Equal => {
                let v = nanos(self.ceiling(retry));
                let half = v / 2;
                Duration::from_nanos(v - half + rng.up_to(half))
            }
            Jitter::Proportional => {
                let v = nanos(self.ceiling(retry));
                Duration::from_nanos(v - rng.up_to(v / 4))
            }
            Jitter::Decorrelated => {
                let cap = nanos(self.cap);
                let low = nanos(self.base).min(cap);
                let previous = previous.map_or(low, nanos).max(low);
                let high = previous.saturating_mul(3).min(cap);
                Duration::from_nanos(low + rng.up_to(high - low))
            }
        }
    }
}

/// `x^n` by repeated squaring: a fixed sequence of IEEE multiplications, so every
/// machine computes the same bits (`f64::powi`'s precision is platform-dependent, and the
/// simulator promises identical output everywhere). Stops early once the result is
/// infinite.
fn pow(x: f64, mut n: u32) -> f64 {
    let (mut base, mut acc) = (x, 1.0f64);
    while n > 0 {
        if n & 1 == 1 {
            acc *= base;
        }
        n >>= 1;
        base *= base;
        if acc.is_infinite() {
            break;
        }
    }
    acc
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rng::seeded;

    #[test]
    fn pow_by_squaring_is_exact_for_powers_of_two() {
        assert_eq!(pow(2.0, 0), 1.0);
        assert_eq!(pow(2.0, 10), 1024.0);
        assert_eq!(pow(1.5, 3), 3.375);
        assert_eq!(pow(2.0, 2000), f64::INFINITY);
        assert_eq!(pow(1.0, u32::MAX), 1.0);
    }
    use proptest::prelude::*;

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    #[test]
    fn ceiling_doubles_to_the_cap() {
        let b = Backoff::exponential(ms(100), ms(1000));
        let ceilings: Vec<_> = (0..6).map(|n| b.ceiling(n)).collect();
        assert_eq!(
            ceilings,
            [ms(100), ms(200), ms(400), ms(800), ms(1000), ms(1000)]
        );
        assert_eq!(b.ceiling(u32::MAX), ms(1000));
    }

    #[test]
    fn absurd_settings_do_not_panic() {
        let mut rng = seeded(1);
        for multiplier in [f64::NAN, f64::INFINITY, -3.0, 0.0, 1e308] {
            let b = Backoff {
                base: Duration::MAX,
                multiplier,
                cap: Duration::MAX,
                jitter: Jitter::Equal,
            };
            let _ = b.delay(40, None, &mut rng);
            assert!(b.ceiling(1000) <= Duration::MAX);
        }
        let inverted = Backoff {
            base: ms(10),
            multiplier: 2.0,
            cap: ms(5),
            jitter: Jitter::Decorrelated,
        };
        assert_eq!(inverted.validate(), Err(BackoffError::CapBelowBase));
        // A cap equal to the base is a constant delay, and valid.
        let constant = Backoff {
            cap: ms(10),
            ..inverted
        };
        assert_eq!(constant.validate(), Ok(()));
        assert!(inverted.delay(3, Some(ms(100)), &mut rng) <= ms(5));
    }

    #[test]
    fn rejects_bad_multipliers() {
        let b = Backoff {
            multiplier: 0.5,
            ..Backoff::default()
        };
        assert_eq!(b.validate(), Err(BackoffError::BadMultiplier));
        assert_eq!(Backoff::default().validate(), Ok(()));
        let constant = Backoff {
            multiplier: 1.0,
            ..Backoff::default()
        };
        assert_eq!(constant.validate(), Ok(()), "a constant backoff is valid");
    }

    #[test]
    fn errors_name_the_setting_to_fix() {
        assert_eq!(
            BackoffError::BadMultiplier.to_string(),
            "backoff multiplier must be a finite number ≥ 1"
        );
        assert_eq!(
            BackoffError::CapBelowBase.to_string(),
            "backoff cap_ms must be ≥ base_ms"
        );
        let inverted = Backoff {
            base: ms(100),
            cap: ms(10),
            ..Backoff::default()
        };
        let flat = Backoff {
            multiplier: 0.5,
            ..Backoff::default()
        };
        for bad in [inverted, flat] {
            let path = bad.validate().unwrap_err().path();
            assert!(crate::written::written(&bad, path), "{path} in {bad:?}");
        }
    }

    #[test]
    fn reads_from_toml() {
        let b: Backoff =
            toml::from_str("base_ms = 250\ncap_ms = 8000\njitter = \"equal\"").unwrap();
        assert_eq!(
            b,
            Backoff {
                base: ms(250),
                multiplier: 2.0,
                cap: ms(8000),
                jitter: Jitter::Equal
            }
        );
        assert!(toml::from_str::<Backoff>("base_ms = 1\ncap_ms = 2\nbase = 3").is_err());
    }

    fn schedule() -> impl Strategy<Value = Backoff> {
        (1u64..5_000, 1.0f64..4.0, 0u64..120_000).prop_map(|(base, multiplier, extra)| Backoff {
            base: ms(base),
            multiplier,
            cap: ms(base + extra),
            jitter: Jitter::Full,
        })
    }

    /// Proportional jitter spreads over the whole quarter, not a few nanoseconds of it.
    #[test]
    fn proportional_jitter_spreads_over_the_quarter() {
        let b = Backoff::exponential(Duration::from_secs(1), Duration::from_secs(8))
            .with_jitter(Jitter::Proportional);
        let v = b.ceiling(0);
        let least = (0..200)
            .map(|seed| b.delay(0, None, &mut seeded(seed)))
            .min()
            .unwrap();
        assert!(least >= v - v / 4 && least < v - v / 5, "{least:?}");
    }

    proptest! {
        #[test]
        fn full_jitter_stays_within_the_ceiling(b in schedule(), retry in 0u32..64, seed: u64) {
            let d = b.with_jitter(Jitter::Full).delay(retry, None, &mut seeded(seed));
            prop_assert!(d <= b.ceiling(retry));
            prop_assert!(b.ceiling(retry) <= b.cap);
        }

        #[test]
        fn equal_jitter_keeps_half(b in schedule(), retry in 0u32..64, seed: u64) {
            let v = b.ceiling(retry);
            let d = b.with_jitter(Jitter::Equal).delay(retry, None, &mut seeded(seed));
            prop_assert!(d <= v && d >= v / 2, "{d:?} outside [{:?}, {v:?}]", v / 2);
        }

        #[test]
        fn proportional_jitter_takes_at_most_a_quarter_off(b in schedule(), retry in 0u32..64, seed: u64) {
            let v = b.ceiling(retry);
            let d = b.with_jitter(Jitter::Proportional).delay(retry, None, &mut seeded(seed));
            prop_assert!(d <= v && d >= v - v / 4, "{d:?} outside [3/4·{v:?}, {v:?}]");
        }

        #[test]
        fn decorrelated_grows_from_the_previous(b in schedule(), previous in 0u64..200_000, seed: u64) {
            let b = b.with_jitter(Jitter::Decorrelated);
            let previous = ms(previous);
            let d = b.delay(0, Some(previous), &mut seeded(seed));
            let high = (previous.max(b.base) * 3).min(b.cap);
            prop_assert!(d >= b.base.min(b.cap) && d <= high, "{d:?} outside [{:?}, {high:?}]", b.base);
        }

        #[test]
        fn same_seed_same_delays(b in schedule(), seed: u64, jitter in prop_oneof![
            Just(Jitter::None), Just(Jitter::Full), Just(Jitter::Equal), Just(Jitter::Decorrelated),
            Just(Jitter::Proportional)
        ]) {
            let b = b.with_jitter(jitter);
            let run = |seed| {
                let mut rng = seeded(seed);
                let mut previous = None;
                (0..10).map(|n| {
                    let d = b.delay(n, previous, &mut rng);
                    previous = Some(d);
                    d
                }).collect::<Vec<_>>()
            };
            prop_assert_eq!(run(seed), run(seed));
        }
    }
}
