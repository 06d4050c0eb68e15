//! The AWS SDKs' standard-mode retry quota.

use serde::{Deserialize, Serialize};

use super::{BudgetError, Refused, RetryBudget, RetryReason, Withdrawal};
use crate::Time;

/// Settings of a [`QuotaBudget`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct QuotaConfig {
    /// Tokens the bucket starts with and never exceeds (AWS `INITIAL_RETRY_TOKENS`).
    pub capacity: u32,
    /// Tokens a retry after an error costs (`RETRY_COST`). In `[1, capacity]`.
    pub retry_cost: u32,
    /// Tokens a retry after a timeout costs (`TIMEOUT_RETRY_COST`). In `[1, capacity]`.
    pub timeout_cost: u32,
    /// Tokens a success that was not a retry adds (`NO_RETRY_INCREMENT`); 0 leaves
    /// refunds of retries that succeeded as the only refill.
    pub success_refund: u32,
}

impl Default for QuotaConfig {
    /// The AWS SDKs' standard mode: 500 tokens, a retry costs 5, a timeout retry 10, a
    /// first-attempt success adds 1.
    fn default() -> QuotaConfig {
        QuotaConfig {
            capacity: 500,
            retry_cost: 5,
            timeout_cost: 10,
            success_refund: 1,
        }
    }
}

impl QuotaConfig {
    /// Checks the settings: `capacity` at least 1, both costs in `[1, capacity]` (a free
    /// retry is no budget, and one dearer than the bucket is never granted).
    pub fn validate(&self) -> Result<(), BudgetError> {
        if self.capacity == 0 {
            return Err(BudgetError::Capacity);
        }
        if !(1..=self.capacity).contains(&self.retry_cost) {
            return Err(BudgetError::RetryCost);
        }
        if !(1..=self.capacity).contains(&self.timeout_cost) {
            return Err(BudgetError::TimeoutCost);
        }
        Ok(())
    }
}

/// The retry quota of the AWS SDKs' standard retry mode: a bucket of tokens that retries
/// spend and successes refill.
///
/// The bucket starts full at `capacity`. A retry costs `retry_cost`, or `timeout_cost`
/// when the attempt before it timed out ([`RetryReason::Timeout`]), and is refused if the
/// bucket holds less. A successful attempt gives back its retry's cost if it was a retry
/// (pass its [`Withdrawal`]), and otherwise adds `success_refund`; the bucket never holds
/// more than `capacity`. Failures and time change nothing, so a refusal's `until` is
/// `None`.
///
/// # Bound
///
/// Tokens stay in `[0, capacity]`, and over any run the costs of the granted retries add
/// up to at most `capacity` plus the refunds received (the costs handed back and
/// `success_refund` per first-attempt success). With the defaults and nothing succeeding,
/// that is 100 retries (500 / 5) or 50 after timeouts, then none until successes refill
/// the bucket.
#[derive(Clone, Debug)]
pub struct QuotaBudget {
    config: QuotaConfig,
    /// In `[0, capacity]`.
    tokens: u32,
}

impl QuotaBudget {
    /// A full bucket. Never panics; with costs of zero (which
    /// [`QuotaConfig::validate`] rejects) retries are free and always granted.
    #[must_use]
    pub fn new(config: &QuotaConfig) -> QuotaBudget {
        QuotaBudget {
            config: *config,
            tokens: config.capacity,
        }
    }

    /// Retries after errors the bucket could pay for now (fractional: tokens divided by
    /// `retry_cost`).
    #[must_use]
    pub fn available(&self, _now: Time) -> f64 {
        f64::from(self.tokens) / f64::from(self.config.retry_cost.max(1))
    }

    fn cost(&self, reason: RetryReason) -> u32 {
        match reason {
            RetryReason::Error => self.config.retry_cost,
            RetryReason::Timeout => self.config.timeout_cost,
        }
    }
}

impl RetryBudget for QuotaBudget {
    /// First attempts cost nothing.
    #[inline]
    fn on_request(&mut self, _now: Time) {}

    #[inline]
    fn try_withdraw(&mut self, _now: Time, reason: RetryReason) -> Result<Withdrawal, Refused> {
        let cost = self.cost(reason);
        match self.tokens.checked_sub(cost) {
            Some(left) => {
                self.tokens = left;
                Ok(Withdrawal::new(cost))
            }
            None => Err(Refused { until: None }),
        }
    }

    #[inline]
    fn on_attempt(&mut self, _now: Time, success: bool, withdrawal: Option<Withdrawal>) {
        if success {
            let refund = withdrawal.map_or(self.config.success_refund, Withdrawal::cost);
            self.tokens = self.tokens.saturating_add(refund).min(self.config.capacity);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const NOW: Time = Time::ZERO;

    #[test]
    fn a_hundred_retries_in_a_row_then_refused() {
        let mut b = QuotaBudget::new(&QuotaConfig::default());
        assert_eq!(b.available(NOW), 100.0);
        for _ in 0..100 {
            let w = b.try_withdraw(NOW, RetryReason::Error).unwrap();
            assert_eq!(w.cost(), 5);
            b.on_attempt(NOW, false, Some(w));
        }
        assert_eq!(b.tokens, 0);
        assert_eq!(
            b.try_withdraw(NOW, RetryReason::Error),
            Err(Refused { until: None })
        );
        // Requests and time do not refill it; first-attempt successes do, by one token.
        b.on_request(Time::MAX);
        for _ in 0..4 {
            b.on_attempt(NOW, true, None);
        }
        assert!(b.try_withdraw(NOW, RetryReason::Error).is_err());
        b.on_attempt(NOW, true, None);
        assert!(b.try_withdraw(NOW, RetryReason::Error).is_ok());
    }

    #[test]
    fn a_timeout_retry_costs_ten_and_refunds_return_the_cost() {
        let mut b = QuotaBudget::new(&QuotaConfig::default());
        let w = b.try_withdraw(NOW, RetryReason::Timeout).unwrap();
        assert_eq!(w.cost(), 10);
        assert_eq!(b.tokens, 490);
        // A successful retry gives its own cost back, not the first-attempt increment.
        b.on_attempt(NOW, true, Some(w));
        assert_eq!(b.tokens, 500);
        // Never above capacity.
        b.on_attempt(NOW, true, None);
        assert_eq!(b.tokens, 500);
        let w = b.try_withdraw(NOW, RetryReason::Error).unwrap();
        b.on_attempt(NOW, false, Some(w));
        assert_eq!(b.tokens, 495);
        b.on_attempt(NOW, true, None);
        assert_eq!(b.tokens, 496);
        // Fifty timeout retries from full, then refused.
        let mut b = QuotaBudget::new(&QuotaConfig::default());
        let granted = (0..60)
            .filter(|_| b.try_withdraw(NOW, RetryReason::Timeout).is_ok())
            .count();
        assert_eq!(granted, 50);
    }

    #[test]
    fn extreme_settings_do_not_panic() {
        for (capacity, retry_cost, timeout_cost, success_refund) in [
            (0, 0, 0, 0),
            (u32::MAX, 1, u32::MAX, u32::MAX),
            (5, 9, 9, 1),
        ] {
            let mut b = QuotaBudget::new(&QuotaConfig {
                capacity,
                retry_cost,
                timeout_cost,
                success_refund,
            });
            for reason in [RetryReason::Error, RetryReason::Timeout] {
                let w = b.try_withdraw(NOW, reason);
                b.on_attempt(NOW, true, w.ok());
                b.on_attempt(NOW, true, None);
                assert!(b.tokens <= capacity);
                let _ = b.available(NOW);
            }
        }
    }

    #[derive(Clone, Debug)]
    enum Op {
        Request,
        Withdraw(bool),
        Attempt { success: bool, retry: bool },
    }

    proptest! {
        #[test]
        fn grants_stay_within_the_bound(
            capacity in 1u32..600,
            retry_cost in 1u32..20,
            timeout_cost in 1u32..40,
            success_refund in 0u32..5,
            ops in proptest::collection::vec(prop_oneof![
                1 => Just(Op::Request),
                3 => any::<bool>().prop_map(Op::Withdraw),
                3 => (any::<bool>(), any::<bool>())
                    .prop_map(|(success, retry)| Op::Attempt { success, retry }),
            ], 0..400),
        ) {
            let config = QuotaConfig { capacity, retry_cost, timeout_cost, success_refund };
            let mut b = QuotaBudget::new(&config);
            let mut last = None;
            let (mut spent, mut refunded, mut model) = (0u64, 0u64, capacity);
            for op in ops {
                match op {
                    Op::Request => b.on_request(NOW),
                    Op::Withdraw(timeout) => {
                        let reason = if timeout { RetryReason::Timeout } else { RetryReason::Error };
                        let cost = if timeout { timeout_cost } else { retry_cost };
                        match b.try_withdraw(NOW, reason) {
                            Ok(w) => {
                                prop_assert!(model >= cost);
                                prop_assert_eq!(w.cost(), cost);
                                model -= cost;
                                spent += u64::from(cost);
                                last = Some(w);
                            }
                            Err(refused) => {
                                prop_assert!(model < cost);
                                prop_assert_eq!(refused.until, None);
                            }
                        }
                    }
                    Op::Attempt { success, retry } => {
                        let withdrawal = if retry { last } else { None };
                        b.on_attempt(NOW, success, withdrawal);
                        if success {
                            let refund = withdrawal.map_or(success_refund, Withdrawal::cost);
                            refunded += u64::from(refund);
                            model = (model + refund).min(capacity);
                        }
                    }
                }
                prop_assert_eq!(b.tokens, model);
                prop_assert!(b.tokens <= capacity);
                prop_assert!(spent <= u64::from(capacity) + refunded);
            }
        }
    }
}
