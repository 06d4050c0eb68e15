//! A request's deadline: the total time the caller allows it, attempts and waits alike.
//!
//! The caller sets a deadline when the request starts; everything after reads it:
//!
//! - every attempt's timeout is `min(per-attempt timeout, remaining)`
//!   ([`Deadline::attempt_timeout`]), so no attempt runs past the end;
//! - no wait is started that cannot be followed by a useful attempt ([`Deadline::fits`]):
//!   a Retry-After longer than what is left means "move on now", not "wait".
//!
//! A deadline is two instants and plain arithmetic on them: it never reads a clock, and
//! every method saturates instead of overflowing. [`Time::MAX`] stands for "never":
//! [`Deadline::unbounded`] ends there, and a deadline whose end would overflow ends there
//! too.

use std::time::Duration;

use crate::Time;
use crate::time::nanos;

/// The window `[start, end)` in which a request may run.
///
/// An `end` at or before `start` is allowed: the deadline is already past, and every
/// query answers as such (no attempt, no wait).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Deadline {
    start: Time,
    end: Time,
}

impl Deadline {
    /// A deadline `budget` after `start` (the end saturates at [`Time::MAX`]).
    #[must_use]
    pub const fn after(start: Time, budget: Duration) -> Deadline {
        Deadline {
            start,
            end: start.saturating_add(budget),
        }
    }

    /// A deadline from `start` to `end`; an `end` at or before `start` is already past.
    #[must_use]
    pub const fn at(start: Time, end: Time) -> Deadline {
        Deadline { start, end }
    }

    /// A deadline that never ends in practice: its end is [`Time::MAX`].
    #[must_use]
    pub const fn unbounded(start: Time) -> Deadline {
        Deadline {
            start,
            end: Time::MAX,
        }
    }

    /// When the request started.
    #[must_use]
    pub const fn start(&self) -> Time {
        self.start
    }

    /// When the request must be done.
    #[must_use]
    pub const fn end(&self) -> Time {
        self.end
    }

    /// Whether the end is [`Time::MAX`] (set by [`Deadline::unbounded`], or saturated).
    #[must_use]
    pub fn is_unbounded(&self) -> bool {
        self.end == Time::MAX
    }

    /// Time since the start; zero if `now` is before it.
    #[must_use]
    pub const fn elapsed(&self, now: Time) -> Duration {
        now.saturating_duration_since(self.start)
    }

    /// Time left before the end; zero once it has passed.
    #[must_use]
    pub const fn remaining(&self, now: Time) -> Duration {
        self.end.saturating_duration_since(now)
    }

    /// Whether the deadline has passed: `now >= end`.
    #[must_use]
    pub fn is_expired(&self, now: Time) -> bool {
        now >= self.end
    }

    /// The timeout for an attempt started at `now`: `min(per_attempt, remaining)`.
    ///
    /// `None` when the deadline has passed or `per_attempt` is zero: the answer is never
    /// `Some(Duration::ZERO)`. Whenever it is `Some(t)`, `now + t <= end`.
    #[must_use]
    pub fn attempt_timeout(&self, now: Time, per_attempt: Duration) -> Option<Duration> {
        let timeout = per_attempt.min(self.remaining(now));
        (!timeout.is_zero()).then_some(timeout)
    }

    /// Whether waiting `wait` from `now` still leaves at least `min_attempt` (and in any
    /// case some time) for an attempt before the end.
    ///
    /// When it does, [`attempt_timeout`](Deadline::attempt_timeout)`(now + wait,
    /// min_attempt)` is `Some(min_attempt)` (or `Some` of the time left, if `min_attempt`
    /// is zero).
    #[must_use]
    pub fn fits(&self, now: Time, wait: Duration, min_attempt: Duration) -> bool {
        let needed = nanos(min_attempt).max(1);
        nanos(self.remaining(now))
            .checked_sub(nanos(wait))
            .is_some_and(|left| left >= needed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    fn t(millis: u64) -> Time {
        Time::from_millis(millis)
    }

    #[test]
    fn attempt_timeout_is_capped_by_the_remaining_time() {
        let d = Deadline::after(t(1000), ms(10_000));
        assert_eq!(d.end(), t(11_000));
        assert_eq!(d.attempt_timeout(t(1000), ms(3000)), Some(ms(3000)));
        // per_attempt larger than what is left: the remainder.
        assert_eq!(d.attempt_timeout(t(9500), ms(3000)), Some(ms(1500)));
        assert_eq!(d.attempt_timeout(t(11_000), ms(3000)), None);
        assert_eq!(d.attempt_timeout(t(12_000), ms(3000)), None);
        assert_eq!(d.attempt_timeout(t(1000), Duration::ZERO), None);
        assert_eq!(d.elapsed(t(4000)), ms(3000));
        assert_eq!(d.remaining(t(4000)), ms(7000));
        assert_eq!(d.remaining(t(20_000)), Duration::ZERO);
        assert_eq!(d.elapsed(t(0)), Duration::ZERO);
    }

    #[test]
    fn already_past_at_start() {
        for d in [
            Deadline::after(t(5), Duration::ZERO),
            Deadline::at(t(5), t(5)),
            Deadline::at(t(5), t(1)),
        ] {
            assert!(d.is_expired(t(5)));
            assert_eq!(d.remaining(t(5)), Duration::ZERO);
            assert_eq!(d.attempt_timeout(t(5), ms(100)), None);
            assert!(!d.fits(t(5), Duration::ZERO, Duration::ZERO));
        }
    }

    #[test]
    fn time_max_saturates_without_panicking() {
        let late = Time::MAX.saturating_sub(ms(1));
        let d = Deadline::after(late, ms(10_000));
        assert_eq!(d.end(), Time::MAX);
        assert!(d.is_unbounded());
        assert!(!Deadline::after(t(0), ms(10_000)).is_unbounded());
        assert_eq!(d.attempt_timeout(late, ms(5)), Some(ms(1)));
        let u = Deadline::unbounded(t(0));
        assert_eq!(u, Deadline::after(t(0), Duration::MAX));
        assert_eq!(
            u.attempt_timeout(t(0), Duration::MAX),
            Some(u.remaining(t(0)))
        );
        assert!(!u.is_expired(t(1_000_000)));
        assert!(u.is_expired(Time::MAX));
        assert_eq!(u.attempt_timeout(Time::MAX, ms(1)), None);
        assert!(u.fits(t(0), Duration::from_secs(86_400 * 365), ms(30_000)));
        assert!(!u.fits(t(0), Duration::MAX, ms(1)));
        assert_eq!(u.elapsed(Time::MAX), Duration::from_nanos(u64::MAX));
    }

    #[test]
    fn fits_leaves_room_for_an_attempt() {
        let d = Deadline::after(t(0), ms(10_000));
        assert!(d.fits(t(0), ms(7000), ms(3000)));
        assert!(!d.fits(t(0), ms(7001), ms(3000)));
        assert!(!d.fits(t(0), ms(20_000), Duration::ZERO));
        // A zero minimum still needs some time after the wait.
        assert!(d.fits(t(0), ms(9999), Duration::ZERO));
        assert!(!d.fits(t(0), ms(10_000), Duration::ZERO));
        assert!(!d.fits(t(11_000), Duration::ZERO, Duration::ZERO));
    }

    proptest! {
        #[test]
        fn attempts_never_run_past_the_end(
            start: u64,
            budget: u64,
            offset: u64,
            per_attempt: u64,
        ) {
            let d = Deadline::after(Time::from_nanos(start), Duration::from_nanos(budget));
            let now = Time::from_nanos(start.saturating_add(offset % budget.saturating_add(2)));
            match d.attempt_timeout(now, Duration::from_nanos(per_attempt)) {
                Some(timeout) => {
                    prop_assert!(timeout > Duration::ZERO);
                    prop_assert!(timeout <= Duration::from_nanos(per_attempt));
                    prop_assert!(now + timeout <= d.end());
                    prop_assert!(!d.is_expired(now));
                }
                None => prop_assert!(d.is_expired(now) || per_attempt == 0),
            }
        }

        #[test]
        fn any_instants_any_spans(start: u64, end: u64, now: u64, per_attempt: u64, wait: u64, min: u64) {
            let d = Deadline::at(Time::from_nanos(start), Time::from_nanos(end));
            let now = Time::from_nanos(now);
            if let Some(timeout) = d.attempt_timeout(now, Duration::from_nanos(per_attempt)) {
                prop_assert!(now + timeout <= d.end());
            }
            let (wait, min) = (Duration::from_nanos(wait), Duration::from_nanos(min));
            if d.fits(now, wait, min) {
                let later = now + wait;
                let timeout = d.attempt_timeout(later, min.max(Duration::from_nanos(1)));
                prop_assert_eq!(timeout, Some(min.max(Duration::from_nanos(1))));
                prop_assert!(later + min <= d.end());
            }
            prop_assert_eq!(d.is_expired(now), d.remaining(now).is_zero());
        }
    }
}
