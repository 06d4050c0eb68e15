//! The adapter's clock: the one place in Breakwater that reads the time.
//!
//! The core never reads a clock (`clippy.toml` bans `Instant::now` and
//! `SystemTime::now`); the adapter reads it here, in [`read`], and passes the result
//! in as [`Time`] (monotonic) and [`SystemTime`] (the wall clock, only for HTTP-date
//! `Retry-After` values).
//!
//! # How monotonic time maps to tokio's
//!
//! The monotonic reading is [`tokio::time::Instant::now`], not `std`'s: under a runtime
//! whose clock is paused (`#[tokio::test(start_paused = true)]`, `tokio::time::pause`)
//! it is the runtime's virtual time, so tests that advance tokio's clock advance the
//! plan's `now` too, and the `sleep_until` a `Wait` becomes wakes at the same instant
//! the plan computed. Outside a paused runtime it is the OS monotonic clock.
//!
//! [`Time`] counts nanoseconds from a process epoch: [`EPOCH_MARGIN`] before the
//! first reading in the process. The margin matters for paused clocks: a paused
//! runtime's virtual time starts at the real instant the runtime was built, which may
//! come before the process's first reading (another test's runtime may read first);
//! without the margin its readings would saturate at zero. [`instant`] maps a [`Time`]
//! back to a tokio instant for `sleep_until`.
//!
//! Beware that a paused runtime auto-advances to the next timer whenever it is idle,
//! and waiting on a real socket counts as idle: with a paused clock, an attempt whose
//! response comes over the network may see its timeout fire first. Tests that talk to
//! a socket therefore run on the real clock with short durations.

use std::sync::OnceLock;
use std::time::{Duration, SystemTime};

use breakwater_core::Time;

/// How far before the process's first clock reading [`Time::ZERO`] lies: one day.
pub const EPOCH_MARGIN: Duration = Duration::from_secs(24 * 60 * 60);

static EPOCH: OnceLock<std::time::Instant> = OnceLock::new();

/// One reading of both clocks.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Reading {
    /// Monotonic time since the process epoch, for the plan.
    pub now: Time,
    /// The wall clock, for HTTP-date `Retry-After` values (and nothing else).
    pub wall: SystemTime,
}

/// Reads the clocks. This is the adapter's only clock read.
#[must_use]
pub fn read() -> Reading {
    read_with_epoch(true).0
}

/// Reads the monotonic clock only: [`read`]`().now` without the wall-clock read,
/// for the hot path, which needs the wall clock only for an HTTP-date `Retry-After`.
#[must_use]
pub fn now() -> Time {
    read_with_epoch(false).0.now
}

/// The tokio instant at `time`, for `sleep_until`. A time too far off to represent
/// (such as [`Time::MAX`]) maps to a year past the epoch margin, which no deadline
/// reaches.
#[must_use]
pub fn instant(time: Time) -> tokio::time::Instant {
    let epoch = match EPOCH.get() {
        Some(epoch) => *epoch,
        None => read_with_epoch(false).1,
    };
    let at = epoch
        .checked_add(Duration::from_nanos(time.as_nanos()))
        .or_else(|| epoch.checked_add(EPOCH_MARGIN + Duration::from_secs(365 * 24 * 3600)))
        .unwrap_or(epoch);
    tokio::time::Instant::from_std(at)
}

// The one allowed read of the clock in the workspace (see clippy.toml): everything
// else receives `now` from here. Without `wall`, the reading's wall clock is the Unix
// epoch (callers of `now` never see it).
#[allow(clippy::disallowed_methods)]
fn read_with_epoch(wall: bool) -> (Reading, std::time::Instant) {
    let mono = tokio::time::Instant::now().into_std();
    let wall = if wall {
        SystemTime::now()
    } else {
        SystemTime::UNIX_EPOCH
    };
    let epoch = *EPOCH.get_or_init(|| mono.checked_sub(EPOCH_MARGIN).unwrap_or(mono));
    let reading = Reading {
        now: Time::from_nanos(nanos(mono.saturating_duration_since(epoch))),
        wall,
    };
    (reading, epoch)
}

fn nanos(span: Duration) -> u64 {
    u64::try_from(span.as_nanos()).unwrap_or(u64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn follows_the_paused_clock() {
        let a = read();
        tokio::time::advance(Duration::from_secs(5)).await;
        let b = read();
        assert_eq!(b.now - a.now, Duration::from_secs(5));
        assert!(a.now > Time::ZERO);
    }

    #[tokio::test(start_paused = true)]
    async fn now_is_the_monotonic_reading() {
        let a = read();
        assert_eq!(now(), a.now);
        tokio::time::advance(Duration::from_millis(250)).await;
        assert_eq!(now() - a.now, Duration::from_millis(250));
    }

    #[tokio::test(start_paused = true)]
    async fn instant_round_trips() {
        let a = read();
        let later = a.now + Duration::from_millis(1500);
        tokio::time::sleep_until(instant(later)).await;
        assert_eq!(read().now, later);
        // Time::MAX does not panic.
        let _ = instant(Time::MAX);
    }
}
