//! Virtual time in real time: `virtual = start + real elapsed × speed`.
//!
//! The provider model runs in [`Time`]; tokio sleeps in [`Instant`]s. This is the one
//! place that converts between them, and the one place `serve` reads a clock.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use breakwater_core::Time;
use tokio::time::Instant;

/// How far a sleep may reach: a time further out than this is "never" (a hung answer,
/// no timer pending), kept finite so that `Instant` arithmetic cannot overflow.
const FAR: Duration = Duration::from_secs(100 * 365 * 24 * 3600);

/// Maps virtual time to real time and back.
#[derive(Clone, Copy, Debug)]
pub(crate) struct VirtualClock {
    origin: Instant,
    start: Time,
    speed: f64,
}

impl VirtualClock {
    /// A clock whose virtual time is `start` now and runs `speed` times as fast as real
    /// time. `speed` must be finite and positive (the config checks it).
    pub(crate) fn start(start: Time, speed: f64) -> VirtualClock {
        VirtualClock {
            origin: real_now(),
            start,
            speed,
        }
    }

    /// The virtual time now.
    pub(crate) fn now(&self) -> Time {
        self.at(real_now())
    }

    /// The virtual time at the real instant `at`.
    pub(crate) fn at(&self, at: Instant) -> Time {
        let elapsed = at.saturating_duration_since(self.origin).as_secs_f64() * self.speed;
        // `as` saturates: a virtual time past u64 nanoseconds (584 years) stays there.
        self.start + Duration::from_nanos((elapsed * 1e9) as u64)
    }

    /// The real instant at which virtual time reaches `t` (now or earlier for a time
    /// already past; "never" for `Time::MAX`).
    pub(crate) fn instant(&self, t: Time) -> Instant {
        self.origin + self.real(t.saturating_duration_since(self.start))
    }

    /// A virtual span in real time: `span / speed`, at most a century.
    pub(crate) fn real(&self, span: Duration) -> Duration {
        Duration::try_from_secs_f64(span.as_secs_f64() / self.speed).map_or(FAR, |d| d.min(FAR))
    }

    /// Sleeps until virtual time `t`.
    pub(crate) async fn sleep_until(&self, t: Time) {
        tokio::time::sleep_until(self.instant(t)).await;
    }
}

/// The real clock: tokio's, so that paused-time tests could drive it.
#[allow(clippy::disallowed_methods)] // serve's one monotonic clock read
fn real_now() -> Instant {
    Instant::now()
}

/// Seconds since the Unix epoch, for the `created` fields of responses.
#[allow(clippy::disallowed_methods)] // serve's one wall-clock read: a label, never a timer
pub(crate) fn unix_secs() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn virtual_spans_shrink_by_the_speed() {
        let clock = VirtualClock::start(Time::from_secs(100), 10.0);
        assert_eq!(
            clock.real(Duration::from_secs(3)),
            Duration::from_millis(300)
        );
        assert_eq!(clock.instant(Time::from_secs(100)), clock.origin);
        assert_eq!(
            clock.instant(Time::from_secs(103)),
            clock.origin + Duration::from_millis(300)
        );
        // The past maps to the origin, never before it.
        assert_eq!(clock.instant(Time::ZERO), clock.origin);
        assert_eq!(
            clock.at(clock.origin + Duration::from_millis(250)),
            Time::from_millis(102_500)
        );
        // "Never" stays finite.
        assert_eq!(clock.real(Duration::MAX), FAR);
        let slow = VirtualClock::start(Time::ZERO, 1e-12);
        assert_eq!(slow.real(Duration::from_secs(1)), FAR);
    }
}
