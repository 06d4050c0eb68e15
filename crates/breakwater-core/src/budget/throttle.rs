//! gRPC A6 retry throttling.

use serde::{Deserialize, Serialize};

use super::{BudgetError, Refused, RetryBudget, RetryReason, Withdrawal, fixed_point};
use crate::Time;

/// Fixed point: one token is this many milli-tokens (A6 keeps three decimals).
const MILLI: u64 = 1000;
/// The largest `max_tokens` A6 accepts.
const MAX_MAX_TOKENS: u32 = 1000;

/// Settings of a [`ThrottleBudget`] (A6's `retryThrottling`).
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ThrottleConfig {
    /// Tokens the bucket starts with and never exceeds; retries stop at half. In
    /// `[1, 1000]`.
    pub max_tokens: u32,
    /// Tokens each success adds back; three decimals count (0.5466 is 0.546). In
    /// `[0.001, max_tokens]`.
    pub token_ratio: f64,
}

impl Default for ThrottleConfig {
    /// The values of A6's examples: 10 tokens, 0.1 per success.
    fn default() -> ThrottleConfig {
        ThrottleConfig {
            max_tokens: 10,
            token_ratio: 0.1,
        }
    }
}

impl ThrottleConfig {
    /// Checks the settings as A6 does: `max_tokens` in `[1, 1000]`, `token_ratio` at
    /// least 0.001 (smaller truncates to nothing) and at most `max_tokens`.
    pub fn validate(&self) -> Result<(), BudgetError> {
        if !(1..=MAX_MAX_TOKENS).contains(&self.max_tokens) {
            return Err(BudgetError::MaxTokens);
        }
        if milli(self.token_ratio) == 0 || self.token_ratio > f64::from(self.max_tokens) {
            return Err(BudgetError::TokenRatio);
        }
        Ok(())
    }
}

/// gRPC's retry throttling (proposal A6): retries stop while too many attempts fail.
///
/// The bucket starts full at `max_tokens`. Each failed attempt takes one token (not
/// below zero); each successful attempt adds `token_ratio` (not above `max_tokens`). A
/// retry is granted only while the bucket holds more than `max_tokens / 2`; granting it
/// costs nothing (the failure that prompted it already paid), so the
/// [`Withdrawal::cost`] is 0 and [`RetryReason`] does not matter. Requests and time do
/// not refill the bucket, so a refusal's `until` is `None`. Counts are integer
/// milli-tokens, `token_ratio` truncated to three decimals, as in gRPC.
///
/// # Bound
///
/// Tokens stay in `[0, max_tokens]`. After `f` failed attempts with no success between
/// them, starting from at most `max_tokens`, the bucket holds at most `max_tokens − f`;
/// so once ⌈`max_tokens / 2`⌉ attempts have failed in a row (5 with the defaults), no
/// retry is granted until an attempt succeeds. More generally, at every grant, failures
/// exceed `token_ratio · successes` by less than `max_tokens / 2`, counted since the
/// bucket was last full or empty: while retries flow, at least one attempt in
/// `1 + 1/token_ratio` must succeed.
#[derive(Clone, Debug)]
pub struct ThrottleBudget {
    /// `max_tokens` in milli-tokens.
    max: u64,
    /// `token_ratio` in milli-tokens.
    refill: u64,
    /// The current count in milli-tokens, in `[0, max]`.
    tokens: u64,
}

impl ThrottleBudget {
    /// A full bucket. Never panics; settings that [`ThrottleConfig::validate`] rejects
    /// are clamped (a NaN ratio adds nothing, a ratio above `max_tokens` refills at once).
    #[must_use]
    pub fn new(config: &ThrottleConfig) -> ThrottleBudget {
        let max = u64::from(config.max_tokens) * MILLI;
        ThrottleBudget {
            max,
            refill: milli(config.token_ratio).min(max),
            tokens: max,
        }
    }

    /// Failed attempts the bucket could still absorb with retries granted, as tokens
    /// above the threshold (fractional; zero when retries are throttled).
    #[must_use]
    pub fn available(&self, _now: Time) -> f64 {
        self.tokens.saturating_sub(self.max / 2) as f64 / MILLI as f64
    }

    fn allows_retry(&self) -> bool {
        self.tokens > self.max / 2
    }
}

impl RetryBudget for ThrottleBudget {
    /// First attempts are never throttled and earn nothing.
    #[inline]
    fn on_request(&mut self, _now: Time) {}

    #[inline]
    fn try_withdraw(&mut self, _now: Time, _reason: RetryReason) -> Result<Withdrawal, Refused> {
        if self.allows_retry() {
            Ok(Withdrawal::new(0))
        } else {
            Err(Refused { until: None })
        }
    }

    #[inline]
    fn on_attempt(&mut self, _now: Time, success: bool, _withdrawal: Option<Withdrawal>) {
        self.tokens = if success {
            self.tokens.saturating_add(self.refill).min(self.max)
        } else {
            self.tokens.saturating_sub(MILLI)
        };
    }
}

/// `value` in thousandths, truncated: see [`fixed_point`].
fn milli(value: f64) -> u64 {
    fixed_point(value, MILLI as f64)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn budget(max_tokens: u32, token_ratio: f64) -> ThrottleBudget {
        ThrottleBudget::new(&ThrottleConfig {
            max_tokens,
            token_ratio,
        })
    }

    fn allowed(b: &mut ThrottleBudget) -> bool {
        b.try_withdraw(Time::ZERO, RetryReason::Error).is_ok()
    }

    #[test]
    fn five_failures_in_a_row_stop_retries_by_default() {
        let mut b = ThrottleBudget::new(&ThrottleConfig::default());
        assert_eq!(b.available(Time::ZERO), 5.0);
        for _ in 0..4 {
            b.on_attempt(Time::ZERO, false, None);
            assert!(allowed(&mut b));
        }
        b.on_attempt(Time::ZERO, false, None);
        assert_eq!(
            b.try_withdraw(Time::ZERO, RetryReason::Timeout),
            Err(Refused { until: None })
        );
        assert_eq!(b.available(Time::ZERO), 0.0);
        // 5 tokens: one success (0.1) lifts it above the threshold again.
        b.on_attempt(Time::ZERO, true, None);
        assert_eq!(b.tokens, 5100);
        assert_eq!(
            b.try_withdraw(Time::ZERO, RetryReason::Error)
                .map(Withdrawal::cost),
            Ok(0)
        );
    }

    #[test]
    fn matches_grpcs_own_example() {
        // gRPC's retry_throttle_test: 4 tokens, 1.6 per success, threshold 2.
        let mut b = budget(4, 1.6);
        b.on_attempt(Time::ZERO, false, None);
        assert!(allowed(&mut b)); // 3
        b.on_attempt(Time::ZERO, true, None);
        assert_eq!(b.tokens, 4000); // capped
        b.on_attempt(Time::ZERO, false, None);
        assert!(allowed(&mut b)); // 3
        b.on_attempt(Time::ZERO, false, None);
        assert!(!allowed(&mut b)); // 2: at the threshold
        b.on_attempt(Time::ZERO, false, None);
        assert!(!allowed(&mut b)); // 1
        b.on_attempt(Time::ZERO, true, None);
        assert_eq!(b.tokens, 2600);
        assert!(allowed(&mut b)); // 2.6 > 2
    }

    #[test]
    fn tokens_never_leave_the_range() {
        let mut b = budget(2, 0.001);
        for _ in 0..10 {
            b.on_attempt(Time::ZERO, false, None);
        }
        assert_eq!(b.tokens, 0);
        b.on_attempt(Time::ZERO, true, None);
        assert_eq!(b.tokens, 1);
        assert_eq!(budget(1, 0.5466).refill, 546);
    }

    #[test]
    fn extreme_settings_do_not_panic() {
        for (max_tokens, token_ratio) in [
            (0, 0.1),
            (u32::MAX, f64::INFINITY),
            (3, f64::NAN),
            (3, -1.0),
        ] {
            let mut b = budget(max_tokens, token_ratio);
            for success in [false, true, false] {
                b.on_attempt(Time::MAX, success, None);
                let _ = allowed(&mut b);
                assert!(b.tokens <= b.max);
                let _ = b.available(Time::ZERO);
            }
        }
        assert!(!allowed(&mut budget(0, 0.1)));
    }

    #[derive(Clone, Debug)]
    enum Op {
        Request,
        Withdraw,
        Attempt(bool),
    }

    proptest! {
        #[test]
        fn grants_stay_within_the_bound(
            max_tokens in 1u32..=20,
            ratio_milli in 1u64..3_000,
            ops in proptest::collection::vec(prop_oneof![
                Just(Op::Request),
                Just(Op::Withdraw),
                any::<bool>().prop_map(Op::Attempt),
            ], 0..300),
        ) {
            let max_tokens_f = f64::from(max_tokens);
            let token_ratio = (ratio_milli as f64 / 1000.0).min(max_tokens_f);
            let mut b = budget(max_tokens, token_ratio);
            let (max, refill) = (u64::from(max_tokens) * 1000, b.refill);
            let mut model = max;
            let mut failures_in_a_row = 0u32;
            for op in ops {
                match op {
                    Op::Request => b.on_request(Time::ZERO),
                    Op::Withdraw => {
                        let granted = allowed(&mut b);
                        prop_assert_eq!(granted, model > max / 2);
                        if granted {
                            prop_assert!(failures_in_a_row < max_tokens.div_ceil(2));
                        }
                    }
                    Op::Attempt(success) => {
                        b.on_attempt(Time::ZERO, success, None);
                        if success {
                            model = (model + refill).min(max);
                            failures_in_a_row = 0;
                        } else {
                            model = model.saturating_sub(1000);
                            failures_in_a_row += 1;
                        }
                    }
                }
                prop_assert_eq!(b.tokens, model);
                prop_assert!(b.tokens <= max);
                prop_assert!(b.available(Time::ZERO) <= max_tokens_f / 2.0);
            }
        }
    }
}
