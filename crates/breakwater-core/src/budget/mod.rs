//! Retry budgets: how many retries the traffic can afford.
//!
//! # Why budgets and not max-retries alone
//!
//! A per-request limit of `N` retries looks cautious, but it multiplies load exactly when
//! the provider can least take it. If each attempt fails with probability `p`, one request
//! makes `1 + p + p² + … + pᴺ = (1 − pᴺ⁺¹)/(1 − p)` attempts on average: with `N = 3`
//! that is 1.11× the load at `p = 0.1`, 1.88× at `p = 0.5`, and nearly `N + 1 = 4×` as
//! `p → 1`, during an outage. The extra load slows and fails more requests, which are
//! retried in turn (a retry storm); and retries at several layers multiply.
//!
//! A budget caps retries at a *share of traffic* instead of a count per request: however
//! many requests fail, retries add at most about `ratio` to the load (`1 + ratio` times
//! the first attempts, plus a small floor so that quiet clients can still retry), and the
//! per-request limit only decides how a request spends what the budget grants. See
//! tower's [`retry::budget`](https://docs.rs/tower/latest/tower/retry/budget/index.html)
//! module docs and Finagle's
//! [`RetryBudget`](https://twitter.github.io/finagle/guide/Clients.html#retries), which the
//! ratio bucket follows; gRPC's
//! [A6 retry throttling](https://github.com/grpc/proposal/blob/master/A6-client-retries.md#throttling-retry-attempts-and-hedged-rpcs),
//! which the throttle follows; and the AWS SDKs'
//! [standard retry mode](https://docs.aws.amazon.com/sdkref/latest/guide/feature-retry-behavior.html),
//! whose retry quota the quota bucket follows.
//!
//! # The three kinds
//!
//! | kind | spends on | refills from | a retry needs | bound (see each type) |
//! |---|---|---|---|---|
//! | [`RatioBudget`] | each retry: 1 | each request: `ratio`, expiring after `ttl`; a floor of `min_per_sec` | a balance ≥ 1 | ≈ `ratio · requests + min_per_sec · (elapsed + 1.1 · ttl)` |
//! | [`ThrottleBudget`] | each failed attempt: 1 | each success: `token_ratio` | tokens > `max_tokens / 2` | ⌈`max_tokens / 2`⌉ failures in a row stop retries |
//! | [`QuotaBudget`] | each retry: `retry_cost` (`timeout_cost`) | each success: its cost back, or `success_refund` | tokens ≥ cost | costs ≤ `capacity` + refunds |
//!
//! # Protocol
//!
//! A budget is a plain `&mut self` value (sharing it between tasks is the registry's job)
//! driven by three inputs, each given `now`: [`on_request`](RetryBudget::on_request) when
//! a request's first attempt is sent, [`try_withdraw`](RetryBudget::try_withdraw) before
//! each retry, and [`on_attempt`](RetryBudget::on_attempt) when any attempt finishes,
//! with the [`Withdrawal`] that paid for it if it was a retry. Report as failures only the
//! outcomes a retry could help with (the plan passes retriable classes); a 400 is not the
//! provider's fault. Every method is O(1) or O(slots), allocates nothing and never
//! panics; a `now` earlier than one seen before counts as no time passing.

mod quota;
mod ratio;
mod throttle;

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::Time;

pub use quota::{QuotaBudget, QuotaConfig};
pub use ratio::{RatioBudget, RatioConfig};
pub use throttle::{ThrottleBudget, ThrottleConfig};

/// A bound on retries as a share of traffic: see the [module docs](self).
pub trait RetryBudget {
    /// A new request (its first attempt) was sent.
    fn on_request(&mut self, now: Time);

    /// Asks to spend on one retry. A refusal says until when, where that is known.
    fn try_withdraw(&mut self, now: Time, reason: RetryReason) -> Result<Withdrawal, Refused>;

    /// An attempt finished: `success` or not; `withdrawal` is what its retry cost, if it
    /// was a retry.
    fn on_attempt(&mut self, now: Time, success: bool, withdrawal: Option<Withdrawal>);
}

/// Why a retry is wanted: some budgets charge timeouts more.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum RetryReason {
    /// The previous attempt failed with a retriable error.
    Error,
    /// The previous attempt timed out.
    Timeout,
}

/// A granted retry: what it cost, to be handed back with the attempt's outcome
/// ([`RetryBudget::on_attempt`]) so that a budget that refunds can do so.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Withdrawal {
    cost: u32,
}

impl Withdrawal {
    const fn new(cost: u32) -> Withdrawal {
        Withdrawal { cost }
    }

    /// What the retry cost, in the granting budget's own unit: retries for
    /// [`RatioBudget`] (always 1), tokens for [`QuotaBudget`], nothing (0) for
    /// [`ThrottleBudget`], which charges failures rather than retries.
    #[must_use]
    pub const fn cost(self) -> u32 {
        self.cost
    }
}

/// A retry the budget cannot afford now.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Refused {
    /// The earliest instant at which a retry would be granted if nothing else happened
    /// meanwhile; `None` when time alone does not help (only successes or new requests
    /// refill the budget).
    pub until: Option<Time>,
}

impl fmt::Display for Refused {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.until {
            Some(until) => write!(f, "retry budget exhausted until {until}"),
            None => f.write_str("retry budget exhausted"),
        }
    }
}

impl std::error::Error for Refused {}

/// Which budget to use, and its settings.
///
/// In TOML, `kind = "ratio" | "throttle" | "quota"` plus that kind's fields, each
/// optional with the kind's documented default; `kind` is required, and a field of
/// another kind (or a misspelt one) is an error:
///
/// ```toml
/// [budget]
/// kind = "ratio"
/// ratio = 0.2
/// min_per_sec = 10
/// ttl_ms = 10000
/// ```
///
/// The default is [`RatioConfig::default`].
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum BudgetConfig {
    /// A Finagle/tower ratio bucket: [`RatioBudget`].
    Ratio(RatioConfig),
    /// gRPC A6 retry throttling: [`ThrottleBudget`].
    Throttle(ThrottleConfig),
    /// The AWS SDKs' standard retry quota: [`QuotaBudget`].
    Quota(QuotaConfig),
}

impl Default for BudgetConfig {
    /// A ratio bucket with its defaults: 20 % of requests, a floor of 10 retries per
    /// second, 10 s memory.
    fn default() -> BudgetConfig {
        BudgetConfig::Ratio(RatioConfig::default())
    }
}

impl BudgetConfig {
    /// Checks the chosen kind's settings: see [`RatioConfig::validate`],
    /// [`ThrottleConfig::validate`] and [`QuotaConfig::validate`].
    pub fn validate(&self) -> Result<(), BudgetError> {
        match self {
            BudgetConfig::Ratio(config) => config.validate(),
            BudgetConfig::Throttle(config) => config.validate(),
            BudgetConfig::Quota(config) => config.validate(),
        }
    }
}

/// A budget setting that cannot work; the message names the field.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum BudgetError {
    /// `ratio` is NaN or outside `[0, 1000]`.
    Ratio,
    /// `ttl_ms` is zero.
    Ttl,
    /// `max_tokens` is outside `[1, 1000]`.
    MaxTokens,
    /// `token_ratio` is NaN, below 0.001 (it has three decimals) or above `max_tokens`.
    TokenRatio,
    /// `capacity` is zero.
    Capacity,
    /// `retry_cost` is zero or above `capacity`.
    RetryCost,
    /// `timeout_cost` is zero or above `capacity`.
    TimeoutCost,
}

impl fmt::Display for BudgetError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            BudgetError::Ratio => "budget ratio must be a number in [0, 1000]",
            BudgetError::Ttl => "budget ttl_ms must be at least 1",
            BudgetError::MaxTokens => "budget max_tokens must be in [1, 1000]",
            BudgetError::TokenRatio => "budget token_ratio must be in [0.001, max_tokens]",
            BudgetError::Capacity => "budget capacity must be at least 1",
            BudgetError::RetryCost => "budget retry_cost must be in [1, capacity]",
            BudgetError::TimeoutCost => "budget timeout_cost must be in [1, capacity]",
        })
    }
}

impl std::error::Error for BudgetError {}

impl BudgetError {
    /// The setting at fault, as written in a configuration file (`ratio`, `ttl_ms`);
    /// a caller that nests the budget prefixes its own path.
    #[must_use]
    pub const fn path(&self) -> &'static str {
        match self {
            BudgetError::Ratio => "ratio",
            BudgetError::Ttl => "ttl_ms",
            BudgetError::MaxTokens => "max_tokens",
            BudgetError::TokenRatio => "token_ratio",
            BudgetError::Capacity => "capacity",
            BudgetError::RetryCost => "retry_cost",
            BudgetError::TimeoutCost => "timeout_cost",
        }
    }
}

/// One of the three kinds, behind [`RetryBudget`].
#[derive(Clone, Debug)]
pub enum Budget {
    /// See [`RatioBudget`].
    Ratio(RatioBudget),
    /// See [`ThrottleBudget`].
    Throttle(ThrottleBudget),
    /// See [`QuotaBudget`].
    Quota(QuotaBudget),
}

impl Budget {
    /// A fresh budget of the configured kind. Never panics, even on a configuration that
    /// [`BudgetConfig::validate`] rejects (out-of-range values are clamped).
    #[must_use]
    pub fn new(config: &BudgetConfig) -> Budget {
        match config {
            BudgetConfig::Ratio(config) => Budget::Ratio(RatioBudget::new(config)),
            BudgetConfig::Throttle(config) => Budget::Throttle(ThrottleBudget::new(config)),
            BudgetConfig::Quota(config) => Budget::Quota(QuotaBudget::new(config)),
        }
    }

    /// Whether [`RetryBudget::on_attempt`] can change the balance: false for the ratio
    /// bucket (outcomes do not count; the call only moves its window, which its next
    /// call would do anyway), true for throttling (failures and successes move the
    /// tokens) and the quota (refunds).
    #[must_use]
    pub const fn counts_attempts(&self) -> bool {
        !matches!(self, Budget::Ratio(_))
    }

    /// Before which instant (nanoseconds) a request only adds to the balance, with no
    /// other effect, so that a shared budget may count requests without its lock and
    /// deposit them in bulk ([`deposit_requests`](Self::deposit_requests)): the ratio
    /// bucket's current window end; 0 (never) for the other kinds.
    pub(crate) fn deferrable_until(&self) -> u64 {
        match self {
            Budget::Ratio(budget) => budget.window_end(),
            Budget::Throttle(_) | Budget::Quota(_) => 0,
        }
    }

    /// Deposits `requests` requests counted without the lock: for the ratio bucket,
    /// into the current window (where they were counted). The other kinds ignore
    /// requests (one can only get here if it replaced a ratio bucket while they were
    /// being counted).
    pub(crate) fn deposit_requests(&mut self, requests: u64) {
        match self {
            Budget::Ratio(budget) => budget.deposit_requests(requests),
            Budget::Throttle(_) | Budget::Quota(_) => {}
        }
    }

    /// How many retries the budget would allow now, for metrics: see each kind's
    /// `available`.
    #[must_use]
    pub fn available(&self, now: Time) -> f64 {
        match self {
            Budget::Ratio(budget) => budget.available(now),
            Budget::Throttle(budget) => budget.available(now),
            Budget::Quota(budget) => budget.available(now),
        }
    }
}

impl RetryBudget for Budget {
    #[inline]
    fn on_request(&mut self, now: Time) {
        match self {
            Budget::Ratio(budget) => budget.on_request(now),
            Budget::Throttle(budget) => budget.on_request(now),
            Budget::Quota(budget) => budget.on_request(now),
        }
    }

    #[inline]
    fn try_withdraw(&mut self, now: Time, reason: RetryReason) -> Result<Withdrawal, Refused> {
        match self {
            Budget::Ratio(budget) => budget.try_withdraw(now, reason),
            Budget::Throttle(budget) => budget.try_withdraw(now, reason),
            Budget::Quota(budget) => budget.try_withdraw(now, reason),
        }
    }

    #[inline]
    fn on_attempt(&mut self, now: Time, success: bool, withdrawal: Option<Withdrawal>) {
        match self {
            Budget::Ratio(budget) => budget.on_attempt(now, success, withdrawal),
            Budget::Throttle(budget) => budget.on_attempt(now, success, withdrawal),
            Budget::Quota(budget) => budget.on_attempt(now, success, withdrawal),
        }
    }
}

/// `value · scale` as a whole number of units, truncated, for fixed-point settings: NaN
/// and negatives give 0, huge values saturate. The product is first rounded to a
/// thousandth of a unit, so that binary noise in a decimal setting (`0.29 · 1000` may be
/// `289.999…`) does not lose a unit; digits beyond the unit are then dropped.
fn fixed_point(value: f64, scale: f64) -> u64 {
    // `as` saturates for floats and maps NaN to 0.
    ((value * scale * 1000.0).round() as u64) / 1000
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn a_refusal_says_until_when() {
        let later = Refused {
            until: Some(Time::from_millis(1500)),
        };
        assert_eq!(later.to_string(), "retry budget exhausted until 1.500000s");
        assert_eq!(
            Refused { until: None }.to_string(),
            "retry budget exhausted"
        );
    }

    #[derive(Debug, PartialEq, Serialize, Deserialize)]
    struct Doc {
        budget: BudgetConfig,
    }

    fn parse(text: &str) -> Result<BudgetConfig, toml::de::Error> {
        toml::from_str::<Doc>(text).map(|doc| doc.budget)
    }

    #[test]
    fn reads_each_kind_from_toml() {
        assert_eq!(
            parse("[budget]\nkind = \"ratio\"\nratio = 0.2\nmin_per_sec = 10\nttl_ms = 10000")
                .unwrap(),
            BudgetConfig::Ratio(RatioConfig {
                ratio: 0.2,
                min_per_sec: 10,
                ttl: Duration::from_secs(10)
            })
        );
        assert_eq!(
            parse("[budget]\nkind = \"throttle\"\nmax_tokens = 100\ntoken_ratio = 1").unwrap(),
            BudgetConfig::Throttle(ThrottleConfig {
                max_tokens: 100,
                token_ratio: 1.0
            })
        );
        assert_eq!(
            parse("[budget]\nkind = \"quota\"\ncapacity = 50\ntimeout_cost = 5").unwrap(),
            BudgetConfig::Quota(QuotaConfig {
                capacity: 50,
                timeout_cost: 5,
                ..QuotaConfig::default()
            })
        );
    }

    #[test]
    fn omitted_fields_take_the_defaults() {
        assert_eq!(
            parse("[budget]\nkind = \"ratio\"").unwrap(),
            BudgetConfig::default()
        );
        assert_eq!(
            parse("[budget]\nkind = \"ratio\"\nratio = 1").unwrap(),
            BudgetConfig::Ratio(RatioConfig {
                ratio: 1.0,
                ..RatioConfig::default()
            })
        );
        assert_eq!(
            parse("[budget]\nkind = \"throttle\"").unwrap(),
            BudgetConfig::Throttle(ThrottleConfig::default())
        );
        assert_eq!(
            parse("[budget]\nkind = \"quota\"").unwrap(),
            BudgetConfig::Quota(QuotaConfig::default())
        );
    }

    #[test]
    fn unknown_or_foreign_keys_are_errors() {
        for text in [
            "[budget]\nkind = \"ratio\"\nratoi = 0.2",
            "[budget]\nkind = \"ratio\"\nmax_tokens = 10",
            "[budget]\nkind = \"throttle\"\nratio = 0.2",
            "[budget]\nkind = \"quota\"\nttl_ms = 100",
            "[budget]\nkind = \"quota\"\nretry_costs = 5",
            "[budget]\nkind = \"bucket\"",
            "[budget]\nratio = 0.2",
            "[budget]\nkind = \"ratio\"\nttl = 100",
        ] {
            assert!(parse(text).is_err(), "accepted: {text}");
        }
    }

    #[test]
    fn round_trips_through_toml() {
        for budget in [
            BudgetConfig::default(),
            BudgetConfig::Throttle(ThrottleConfig::default()),
            BudgetConfig::Quota(QuotaConfig::default()),
        ] {
            let doc = Doc { budget };
            let text = toml::to_string(&doc).unwrap();
            assert!(text.contains("kind = "), "{text}");
            assert_eq!(toml::from_str::<Doc>(&text).unwrap(), doc);
        }
    }

    #[test]
    fn validate_names_the_field() {
        // Validates, and checks that an error's path names a setting the config has.
        let checked = |config: BudgetConfig| {
            let result = config.validate();
            if let Err(e) = result {
                assert!(
                    crate::written::written(&config, e.path()),
                    "{e:?}: {} is not in {config:?}",
                    e.path()
                );
            }
            result
        };
        let ratio = |ratio, ttl_ms| {
            checked(BudgetConfig::Ratio(RatioConfig {
                ratio,
                min_per_sec: 10,
                ttl: Duration::from_millis(ttl_ms),
            }))
        };
        assert_eq!(ratio(0.0, 1), Ok(()));
        assert_eq!(ratio(1000.0, 60_000), Ok(()));
        for bad in [-0.1, 1000.5, f64::NAN, f64::INFINITY] {
            assert_eq!(ratio(bad, 10_000), Err(BudgetError::Ratio));
        }
        assert_eq!(ratio(0.2, 0), Err(BudgetError::Ttl));
        assert!(BudgetError::Ttl.to_string().contains("ttl_ms"));

        let throttle = |max_tokens, token_ratio| {
            checked(BudgetConfig::Throttle(ThrottleConfig {
                max_tokens,
                token_ratio,
            }))
        };
        assert_eq!(throttle(10, 0.1), Ok(()));
        assert_eq!(throttle(1000, 1000.0), Ok(()));
        assert_eq!(throttle(0, 0.1), Err(BudgetError::MaxTokens));
        assert_eq!(throttle(1001, 0.1), Err(BudgetError::MaxTokens));
        for bad in [0.0, 0.0009, -1.0, 10.5, f64::NAN, f64::INFINITY] {
            assert_eq!(throttle(10, bad), Err(BudgetError::TokenRatio), "{bad}");
        }
        assert!(BudgetError::TokenRatio.to_string().contains("token_ratio"));

        let quota = |capacity, retry_cost, timeout_cost| {
            checked(BudgetConfig::Quota(QuotaConfig {
                capacity,
                retry_cost,
                timeout_cost,
                success_refund: 0,
            }))
        };
        assert_eq!(quota(500, 5, 10), Ok(()));
        assert_eq!(quota(0, 5, 10), Err(BudgetError::Capacity));
        assert_eq!(quota(500, 0, 10), Err(BudgetError::RetryCost));
        assert_eq!(quota(8, 9, 1), Err(BudgetError::RetryCost));
        assert_eq!(quota(500, 5, 0), Err(BudgetError::TimeoutCost));
        assert_eq!(quota(8, 5, 10), Err(BudgetError::TimeoutCost));
        assert!(BudgetError::Capacity.to_string().contains("capacity"));
        assert_eq!(BudgetConfig::default().validate(), Ok(()));
    }

    #[test]
    fn fixed_point_truncates_without_losing_to_noise() {
        assert_eq!(fixed_point(0.29, 1000.0), 290);
        assert_eq!(fixed_point(0.5466, 1000.0), 546);
        assert_eq!(fixed_point(498.0 / 1e6, 1e6), 498);
        assert_eq!(fixed_point(0.2, 1e6), 200_000);
        assert_eq!(fixed_point(f64::NAN, 1e6), 0);
        assert_eq!(fixed_point(-3.0, 1e6), 0);
        assert_eq!(fixed_point(f64::INFINITY, 1e6), u64::MAX / 1000);
    }

    #[test]
    fn the_enum_dispatches_to_its_kind() {
        let now = Time::ZERO;
        let mut quota = Budget::new(&BudgetConfig::Quota(QuotaConfig::default()));
        assert_eq!(quota.available(now), 100.0);
        let w = quota.try_withdraw(now, RetryReason::Timeout).unwrap();
        assert_eq!(w.cost(), 10);
        assert_eq!(quota.available(now), 98.0);
        quota.on_attempt(now, true, Some(w));
        assert_eq!(quota.available(now), 100.0);

        let mut throttle = Budget::new(&BudgetConfig::Throttle(ThrottleConfig::default()));
        throttle.on_request(now);
        for _ in 0..5 {
            throttle.on_attempt(now, false, None);
        }
        assert_eq!(
            throttle.try_withdraw(now, RetryReason::Error),
            Err(Refused { until: None })
        );

        let mut ratio = Budget::new(&BudgetConfig::default());
        assert_eq!(ratio.available(now), 100.0);
        assert!(ratio.try_withdraw(now, RetryReason::Error).is_ok());
        // What lets a shared ratio budget skip its lock on attempts: they move nothing.
        assert!(!ratio.counts_attempts());
        let before = ratio.available(now);
        ratio.on_attempt(now, false, None);
        ratio.on_attempt(now, true, None);
        assert_eq!(ratio.available(now), before);
        assert!(quota.counts_attempts() && throttle.counts_attempts());
        assert!(
            Refused {
                until: Some(Time::from_secs(1))
            }
            .to_string()
            .contains("until 1.000000s")
        );
    }
}
