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
    /// Unix seconds at `origin`: labels (`created_at`), never timers.
    wall_origin: f64,
}

impl VirtualClock {
    /// A clock whose virtual time is `start` now and runs `speed` times as fast as real
    /// time. `speed` must be finite and positive (the config checks it).
    pub(crate) fn start(start: Time, speed: f64) -> VirtualClock {
        VirtualClock {
            origin: real_now(),
            start,
            speed,
            wall_origin: unix_secs_f64(),
        }
    }

    /// The Unix time, in whole seconds, at which virtual time reaches (or reached)
    /// `t`: a label for the batch APIs' timestamps.
    pub(crate) fn unix_at(&self, t: Time) -> u64 {
        let ahead = self
            .real(t.saturating_duration_since(self.start))
            .as_secs_f64();
        let behind = self
            .real(self.start.saturating_duration_since(t))
            .as_secs_f64();
        // Finite and far below 2^63 seconds: the cast is exact enough for a label.
        (self.wall_origin + ahead - behind).max(0.0) as u64
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

#[allow(clippy::disallowed_methods)] // the same wall-clock read, as a fraction, for labels
fn unix_secs_f64() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64())
}

/// Unix seconds as an RFC 3339 UTC timestamp (`2024-09-24T18:37:24Z`), as Anthropic's
/// batch objects carry them.
pub(crate) fn rfc3339(secs: u64) -> String {
    let days = secs / 86_400;
    let rest = secs % 86_400;
    // Howard Hinnant's civil-from-days, for days since 1970-01-01 (never negative).
    let z = days + 719_468;
    let era = z / 146_097;
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + u64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z",
        rest / 3600,
        rest % 3600 / 60,
        rest % 60
    )
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

    #[test]
    fn labels_follow_the_virtual_clock() {
        let clock = VirtualClock::start(Time::from_secs(100), 10.0);
        let now = clock.unix_at(Time::from_secs(100));
        assert_eq!(clock.unix_at(Time::from_secs(200)), now + 10);
        assert!(clock.unix_at(Time::from_secs(90)) + 1 >= now);
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00Z");
        assert_eq!(rfc3339(1_727_203_044), "2024-09-24T18:37:24Z");
        assert_eq!(rfc3339(951_782_400), "2000-02-29T00:00:00Z");
        assert_eq!(rfc3339(4_102_444_799), "2099-12-31T23:59:59Z");
    }
}
