//! A continuously refilling token bucket, as providers' per-minute limits are.

use std::time::Duration;

use breakwater_core::Time;

/// A per-minute limit as a bucket `per_minute / 60` tokens per second deep `burst_s`
/// seconds of refill, starting full. A storm's capacity factor scales both the refill
/// rate and the depth, taken at the time of each call (so refill across a storm
/// boundary uses the factor at the later time: close enough at request rates, where
/// calls are milliseconds apart).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct TokenBucket {
    per_s: f64,
    burst_s: f64,
    level: f64,
    last: Time,
}

impl TokenBucket {
    /// A full bucket for `per_minute`, `burst_s` seconds deep.
    #[must_use]
    pub fn new(per_minute: f64, burst_s: f64) -> TokenBucket {
        let per_s = per_minute / 60.0;
        TokenBucket {
            per_s,
            burst_s,
            level: per_s * burst_s,
            last: Time::ZERO,
        }
    }

    /// The bucket's depth under `factor`.
    #[must_use]
    pub fn depth(&self, factor: f64) -> f64 {
        self.per_s * factor * self.burst_s
    }

    /// Tokens available now (after refill at `factor`).
    pub fn refill(&mut self, now: Time, factor: f64) -> f64 {
        let dt = now.saturating_duration_since(self.last).as_secs_f64();
        let max = self.depth(factor);
        self.level = (self.level + self.per_s * factor * dt).min(max);
        self.last = self.last.max(now);
        self.level
    }

    /// How long until `cost` tokens are available at `factor`, if they are not now
    /// (call [`refill`](Self::refill) first). A cost above the depth needs a full bucket.
    /// `None`: available now. `Some(Duration::MAX)`: never at this factor.
    #[must_use]
    pub fn wait_for(&self, cost: f64, factor: f64) -> Option<Duration> {
        let rate = self.per_s * factor;
        if rate <= 0.0 || rate.is_nan() {
            return (cost > 0.0).then_some(Duration::MAX);
        }
        let need = cost.min(self.depth(factor));
        if self.level >= need {
            return None;
        }
        Some(Duration::try_from_secs_f64((need - self.level) / rate).unwrap_or(Duration::MAX))
    }

    /// Takes `cost` tokens (at most the bucket's depth). The level may not go below zero.
    pub fn take(&mut self, cost: f64, factor: f64) {
        self.level = (self.level - cost.min(self.depth(factor))).max(0.0);
    }
}

/// A wait as providers state it in `retry-after`: whole seconds, rounded up, at least 1.
#[must_use]
pub fn retry_after_secs(wait: Duration) -> Duration {
    let whole = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
    Duration::from_secs(whole.max(1))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refills_continuously_up_to_its_depth() {
        let mut b = TokenBucket::new(60.0, 10.0); // 1/s, 10 deep
        assert_eq!(b.refill(Time::ZERO, 1.0), 10.0);
        b.take(10.0, 1.0);
        assert_eq!(b.refill(Time::from_millis(2500), 1.0), 2.5);
        assert_eq!(b.refill(Time::from_secs(100), 1.0), 10.0);
    }

    #[test]
    fn retry_after_is_the_refill_time_rounded_up() {
        let mut b = TokenBucket::new(60.0, 10.0);
        b.take(10.0, 1.0);
        b.refill(Time::from_millis(200), 1.0); // 0.2 tokens
        let wait = b.wait_for(1.0, 1.0).unwrap();
        assert_eq!(wait, Duration::from_millis(800));
        assert_eq!(retry_after_secs(wait), Duration::from_secs(1));
        // 3 tokens at 0.2: 2.8 s → "3".
        let wait = b.wait_for(3.0, 1.0).unwrap();
        assert!((wait.as_secs_f64() - 2.8).abs() < 1e-9);
        assert_eq!(retry_after_secs(wait), Duration::from_secs(3));
        assert_eq!(
            retry_after_secs(Duration::from_secs(2)),
            Duration::from_secs(2)
        );
        assert_eq!(retry_after_secs(Duration::ZERO), Duration::from_secs(1));
        // Half the capacity: half the refill rate, twice the wait.
        let wait = b.wait_for(1.0, 0.5).unwrap();
        assert!((wait.as_secs_f64() - 1.6).abs() < 1e-9, "{wait:?}");
        assert_eq!(b.wait_for(1.0, 0.0), Some(Duration::MAX));
    }

    #[test]
    fn a_cost_above_the_depth_needs_a_full_bucket() {
        let mut b = TokenBucket::new(60.0, 10.0);
        assert_eq!(b.wait_for(50.0, 1.0), None);
        b.take(50.0, 1.0);
        assert_eq!(b.refill(Time::ZERO, 1.0), 0.0);
        assert_eq!(b.wait_for(50.0, 1.0), Some(Duration::from_secs(10)));
    }

    #[test]
    fn a_squeeze_shrinks_the_level() {
        let mut b = TokenBucket::new(60.0, 10.0);
        assert_eq!(b.refill(Time::from_secs(1), 0.3), 3.0);
    }
}
