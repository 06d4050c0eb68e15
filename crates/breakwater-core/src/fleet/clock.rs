//! The fleet's clock: instants every replica agrees on.
//!
//! A [`Time`] counts from an epoch each process picks for itself, so it means nothing
//! to another replica. What the fleet shares (an open period's end, a cooldown's end,
//! a budget window) is written in [`FleetTime`]: milliseconds on a clock the whole
//! fleet reads, the Unix wall clock for the Redis adapter (replicas' clocks agree to
//! within what NTP keeps them, and an error of that size only shifts those instants by
//! as much) and virtual time for the simulator. A [`FleetClock`] converts between the
//! two, from one reading of both clocks taken by the driver.

use std::fmt;
use std::time::Duration;

use crate::Time;

const NANOS_PER_MILLI: u64 = 1_000_000;

/// An instant on the fleet's clock: milliseconds since its epoch (the Unix epoch for
/// the Redis adapter).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct FleetTime(u64);

impl FleetTime {
    /// The clock's epoch; also "none" where a record has no such instant.
    pub const ZERO: FleetTime = FleetTime(0);

    /// The instant `millis` milliseconds after the epoch.
    #[must_use]
    pub const fn from_millis(millis: u64) -> FleetTime {
        FleetTime(millis)
    }

    /// Milliseconds since the epoch.
    #[must_use]
    pub const fn as_millis(self) -> u64 {
        self.0
    }

    /// This instant plus `span` (whole milliseconds, rounded up), saturating.
    #[must_use]
    pub fn saturating_add(self, span: Duration) -> FleetTime {
        let millis = u64::try_from(span.as_nanos().div_ceil(u128::from(NANOS_PER_MILLI)))
            .unwrap_or(u64::MAX);
        FleetTime(self.0.saturating_add(millis))
    }
}

impl fmt::Display for FleetTime {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}ms", self.0)
    }
}

/// Converts between this process's [`Time`] and the fleet's [`FleetTime`].
///
/// Built from one reading of both clocks; the offset is whole milliseconds, so a fleet
/// instant converted to local time and back is unchanged.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FleetClock {
    /// `fleet milliseconds − local milliseconds`.
    offset_ms: i64,
}

impl FleetClock {
    /// The clock that maps `local` to `fleet` (one reading of both clocks).
    #[must_use]
    pub fn new(local: Time, fleet: FleetTime) -> FleetClock {
        let local_ms = i128::from(local.as_nanos() / NANOS_PER_MILLI);
        let offset = i128::from(fleet.as_millis()) - local_ms;
        FleetClock {
            offset_ms: i64::try_from(offset).unwrap_or(if offset < 0 {
                i64::MIN
            } else {
                i64::MAX
            }),
        }
    }

    /// The clock under which local and fleet time are the same (the simulator's).
    #[must_use]
    pub const fn identity() -> FleetClock {
        FleetClock { offset_ms: 0 }
    }

    /// `fleet − local`, in milliseconds.
    #[must_use]
    pub const fn offset_ms(&self) -> i64 {
        self.offset_ms
    }

    /// `time` on the fleet's clock (truncated to the millisecond; saturating).
    #[must_use]
    pub fn to_fleet(&self, time: Time) -> FleetTime {
        let millis = i128::from(time.as_nanos() / NANOS_PER_MILLI) + i128::from(self.offset_ms);
        FleetTime(clamp_u64(millis))
    }

    /// `fleet` in this process's time (saturating at [`Time::ZERO`] and [`Time::MAX`]).
    #[must_use]
    pub fn to_local(&self, fleet: FleetTime) -> Time {
        let millis = i128::from(fleet.as_millis()) - i128::from(self.offset_ms);
        // Past u64::MAX nanoseconds the product saturates, which is Time::MAX.
        Time::from_nanos(clamp_u64(millis).saturating_mul(NANOS_PER_MILLI))
    }

    /// `fleet − local` in nanoseconds.
    pub(crate) fn offset_nanos(&self) -> i128 {
        i128::from(self.offset_ms) * i128::from(NANOS_PER_MILLI)
    }
}

fn clamp_u64(value: i128) -> u64 {
    u64::try_from(value.max(0)).unwrap_or(u64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn converts_both_ways() {
        let clock = FleetClock::new(
            Time::from_millis(1500),
            FleetTime::from_millis(1_700_000_000_000),
        );
        assert_eq!(clock.offset_ms(), 1_699_999_998_500);
        assert_eq!(
            clock.to_fleet(Time::from_millis(2500)),
            FleetTime::from_millis(1_700_000_001_000)
        );
        assert_eq!(
            clock.to_local(FleetTime::from_millis(1_700_000_001_000)),
            Time::from_millis(2500)
        );
        // Before the local epoch saturates.
        assert_eq!(clock.to_local(FleetTime::ZERO), Time::ZERO);
        assert_eq!(
            FleetClock::identity().to_fleet(Time::from_nanos(2_999_999)),
            FleetTime::from_millis(2)
        );
        assert_eq!(
            FleetTime::from_millis(1).saturating_add(Duration::from_nanos(1)),
            FleetTime::from_millis(2)
        );
        assert_eq!(FleetTime::from_millis(7).to_string(), "7ms");
    }

    #[test]
    fn a_clock_behind_the_local_one_saturates_at_zero() {
        let clock = FleetClock::new(Time::from_secs(100), FleetTime::from_millis(5));
        assert_eq!(clock.to_fleet(Time::ZERO), FleetTime::ZERO);
        assert_eq!(clock.to_local(FleetTime::from_millis(u64::MAX)), Time::MAX);
    }

    proptest! {
        #[test]
        fn fleet_instants_round_trip(local in 0u64..1 << 50, fleet in 0u64..1 << 45, probe in 0u64..1 << 45) {
            let clock = FleetClock::new(Time::from_nanos(local), FleetTime::from_millis(fleet));
            let probe = FleetTime::from_millis(probe);
            let back = clock.to_local(probe);
            if back > Time::ZERO && back < Time::MAX {
                prop_assert_eq!(clock.to_fleet(back), probe);
            }
        }
    }
}
