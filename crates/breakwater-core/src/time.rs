//! Monotonic time as the driver sees it.
//!
//! The core never reads a clock. Every driver picks an epoch (process start for the
//! adapter, zero for the simulator) and passes `now` as a [`Time`]: nanoseconds since
//! that epoch. Spans are plain [`Duration`]s. Arithmetic saturates, so no input can
//! overflow or panic.

use std::fmt;
use std::ops::{Add, Sub};
use std::time::Duration;

/// A monotonic instant: nanoseconds since an epoch chosen by the driver.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Time(u64);

impl Time {
    /// The driver's epoch.
    pub const ZERO: Time = Time(0);
    /// The far future: later than any real instant.
    pub const MAX: Time = Time(u64::MAX);

    /// An instant `nanos` nanoseconds after the epoch.
    #[must_use]
    pub const fn from_nanos(nanos: u64) -> Time {
        Time(nanos)
    }

    /// An instant `millis` milliseconds after the epoch (saturating).
    #[must_use]
    pub const fn from_millis(millis: u64) -> Time {
        Time(millis.saturating_mul(1_000_000))
    }

    /// An instant `secs` seconds after the epoch (saturating).
    #[must_use]
    pub const fn from_secs(secs: u64) -> Time {
        Time(secs.saturating_mul(1_000_000_000))
    }

    /// Nanoseconds since the epoch.
    #[must_use]
    pub const fn as_nanos(self) -> u64 {
        self.0
    }

    /// This instant plus `span`, saturating at [`Time::MAX`].
    #[must_use]
    pub const fn saturating_add(self, span: Duration) -> Time {
        Time(self.0.saturating_add(nanos(span)))
    }

    /// This instant minus `span`, saturating at [`Time::ZERO`].
    #[must_use]
    pub const fn saturating_sub(self, span: Duration) -> Time {
        Time(self.0.saturating_sub(nanos(span)))
    }

    /// The span from `earlier` to `self`, or zero if `earlier` is later.
    #[must_use]
    pub const fn saturating_duration_since(self, earlier: Time) -> Duration {
        Duration::from_nanos(self.0.saturating_sub(earlier.0))
    }
}

impl Add<Duration> for Time {
    type Output = Time;

    /// Saturating: see [`Time::saturating_add`].
    fn add(self, span: Duration) -> Time {
        self.saturating_add(span)
    }
}

impl Sub<Time> for Time {
    type Output = Duration;

    /// Saturating: see [`Time::saturating_duration_since`].
    fn sub(self, earlier: Time) -> Duration {
        self.saturating_duration_since(earlier)
    }
}

impl fmt::Display for Time {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:.6}s", self.0 as f64 / 1e9)
    }
}

/// A span in nanoseconds, saturating at `u64::MAX` (about 584 years).
#[must_use]
pub const fn nanos(span: Duration) -> u64 {
    let n = span.as_nanos();
    if n > u64::MAX as u128 {
        u64::MAX
    } else {
        n as u64
    }
}

/// Serde helpers that read and write a [`Duration`] as whole milliseconds, the unit
/// configuration files use (`timeout_ms = 30000`).
pub mod serde_ms {
    use serde::{Deserialize, Deserializer, Serializer};
    use std::time::Duration;

    /// Writes `span` as milliseconds.
    pub fn serialize<S: Serializer>(span: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_u64(u64::try_from(span.as_millis()).unwrap_or(u64::MAX))
    }

    /// Reads milliseconds into a [`Duration`].
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        u64::deserialize(d).map(Duration::from_millis)
    }

    /// The same for `Option<Duration>`.
    pub mod option {
        use serde::{Deserialize, Deserializer, Serializer};
        use std::time::Duration;

        /// Writes `span` as milliseconds, or nothing.
        pub fn serialize<S: Serializer>(span: &Option<Duration>, s: S) -> Result<S::Ok, S::Error> {
            match span {
                Some(span) => {
                    s.serialize_some(&u64::try_from(span.as_millis()).unwrap_or(u64::MAX))
                }
                None => s.serialize_none(),
            }
        }

        /// Reads optional milliseconds.
        pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Duration>, D::Error> {
            Option::<u64>::deserialize(d).map(|ms| ms.map(Duration::from_millis))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, PartialEq, serde::Serialize, serde::Deserialize)]
    struct Optional {
        #[serde(default, with = "serde_ms::option")]
        wait_ms: Option<Duration>,
    }

    #[test]
    fn optional_milliseconds_round_trip() {
        for wait in [
            None,
            Some(Duration::ZERO),
            Some(Duration::from_millis(1_500)),
        ] {
            let value = Optional { wait_ms: wait };
            let json = serde_json::to_string(&value).unwrap();
            assert_eq!(
                serde_json::from_str::<Optional>(&json).unwrap(),
                value,
                "{json}"
            );
        }
        let read: Optional = serde_json::from_str(r#"{"wait_ms":250}"#).unwrap();
        assert_eq!(read.wait_ms, Some(Duration::from_millis(250)));
    }

    #[test]
    fn arithmetic_saturates() {
        assert_eq!(Time::MAX + Duration::from_secs(1), Time::MAX);
        assert_eq!(
            Time::ZERO.saturating_sub(Duration::from_secs(1)),
            Time::ZERO
        );
        assert_eq!(Time::ZERO - Time::from_secs(3), Duration::ZERO);
        assert_eq!(
            Time::from_secs(3) - Time::from_secs(1),
            Duration::from_secs(2)
        );
        assert_eq!(nanos(Duration::MAX), u64::MAX);
    }

    #[test]
    fn displays_seconds() {
        assert_eq!(Time::from_millis(1500).to_string(), "1.500000s");
    }
}
