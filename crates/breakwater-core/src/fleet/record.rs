//! What the fleet shares about a key, and how it is written down.
//!
//! A [`BreakerRecord`] is the fleet's view of one key's breaker: its epoch (every
//! accepted transition gives a larger one), its state and its cooldown. It travels in
//! two forms, both versioned with [`FORMAT_VERSION`] so that replicas of different
//! versions fail safe (an update they cannot read is dropped and counted, never
//! applied):
//!
//! - a hash of fields in the store (see [`StoreRecord`](super::StoreRecord)):
//!   `v`, `epoch`, `state`, `until`, `cooldown`, `trips`, and the store's own
//!   `probes`, `successes`, `lease`;
//! - a one-line message on the fleet's channel, pushed on every accepted change:
//!   `v|epoch|state|until|cooldown|trips|name`, where `state` is `closed`, `open` or
//!   `isolated`, instants are [`FleetTime`] milliseconds (0 for none) and `name` is the
//!   key as `provider/model` (last, so it may hold any character).

use std::fmt;

use super::FleetTime;

/// The format of every record and message; anything else is foreign.
pub const FORMAT_VERSION: u32 = 1;

/// The fleet's breaker state for a key. Half-open is not a state of its own: it is an
/// `Open` whose `until` has passed, probing under the store's grants.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum SharedState {
    /// Calls flow (also what a key without a record is).
    #[default]
    Closed,
    /// No calls until `until`; probes (granted by the store) after it.
    Open {
        /// When the open period ends.
        until: FleetTime,
    },
    /// Opened by hand until a reset.
    Isolated,
}

impl SharedState {
    /// The name used in records and messages.
    #[must_use]
    pub const fn name(&self) -> &'static str {
        match self {
            SharedState::Closed => "closed",
            SharedState::Open { .. } => "open",
            SharedState::Isolated => "isolated",
        }
    }

    fn until(&self) -> FleetTime {
        match self {
            SharedState::Open { until } => *until,
            _ => FleetTime::ZERO,
        }
    }

    fn parse(name: &str, until: FleetTime) -> Result<SharedState, DecodeError> {
        match name {
            "closed" => Ok(SharedState::Closed),
            "open" => Ok(SharedState::Open { until }),
            "isolated" => Ok(SharedState::Isolated),
            _ => Err(DecodeError::Malformed("state")),
        }
    }
}

/// One key's breaker as the fleet knows it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct BreakerRecord {
    /// Orders the records of a key: each accepted transition gets a larger epoch (a
    /// hybrid clock: at least one more than before, and at least the fleet's
    /// milliseconds then, so epochs keep growing even across a store that lost its
    /// data). 0 is a key without a record.
    pub epoch: u64,
    /// The state.
    pub state: SharedState,
    /// The latest cooldown end anyone published ([`FleetTime::ZERO`] for none). It only
    /// grows, whatever the epoch: a Retry-After is the provider's word.
    pub cooldown: FleetTime,
    /// Trips since the key last closed, fleet-wide.
    pub trips: u32,
}

/// Why a record or message could not be read.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum DecodeError {
    /// Written in another format version: dropped, never applied.
    Foreign(u32),
    /// Not a record of any version (the field named is missing or bad).
    Malformed(&'static str),
}

impl fmt::Display for DecodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DecodeError::Foreign(v) => {
                write!(
                    f,
                    "fleet record of format version {v}, this replica reads {FORMAT_VERSION}"
                )
            }
            DecodeError::Malformed(field) => write!(f, "malformed fleet record: field `{field}`"),
        }
    }
}

impl std::error::Error for DecodeError {}

/// A pushed change: which key, and its record.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Update {
    /// The key as `provider/model`.
    pub name: String,
    /// Its record after the change.
    pub record: BreakerRecord,
}

impl Update {
    /// The one-line message form (see the [module docs](self)).
    #[must_use]
    pub fn encode(&self) -> String {
        let r = &self.record;
        format!(
            "{FORMAT_VERSION}|{}|{}|{}|{}|{}|{}",
            r.epoch,
            r.state.name(),
            r.state.until().as_millis(),
            r.cooldown.as_millis(),
            r.trips,
            self.name
        )
    }

    /// Reads a message. The version is read first: a message of another version is
    /// [`DecodeError::Foreign`] whatever follows.
    pub fn decode(message: &str) -> Result<Update, DecodeError> {
        let mut parts = message.splitn(7, '|');
        let version = parts.next().unwrap_or_default();
        let version: u32 = version.parse().map_err(|_| DecodeError::Malformed("v"))?;
        if version != FORMAT_VERSION {
            return Err(DecodeError::Foreign(version));
        }
        let mut next = |field: &'static str| parts.next().ok_or(DecodeError::Malformed(field));
        let epoch = number(next("epoch")?, "epoch")?;
        let state = next("state")?;
        let until = FleetTime::from_millis(number(next("until")?, "until")?);
        let cooldown = FleetTime::from_millis(number(next("cooldown")?, "cooldown")?);
        let trips = u32::try_from(number(next("trips")?, "trips")?)
            .map_err(|_| DecodeError::Malformed("trips"))?;
        let name = next("name")?.to_owned();
        Ok(Update {
            name,
            record: BreakerRecord {
                epoch,
                state: SharedState::parse(state, until)?,
                cooldown,
                trips,
            },
        })
    }
}

/// Reads a non-negative whole number (Lua may write `12.0` for an integer-valued
/// double; that is accepted).
pub(crate) fn number(text: &str, field: &'static str) -> Result<u64, DecodeError> {
    let text = text.strip_suffix(".0").unwrap_or(text);
    text.parse().map_err(|_| DecodeError::Malformed(field))
}

pub(crate) fn state_fields(record: &BreakerRecord) -> [(&'static str, String); 6] {
    [
        ("v", FORMAT_VERSION.to_string()),
        ("epoch", record.epoch.to_string()),
        ("state", record.state.name().to_owned()),
        ("until", record.state.until().as_millis().to_string()),
        ("cooldown", record.cooldown.as_millis().to_string()),
        ("trips", record.trips.to_string()),
    ]
}

pub(crate) fn parse_state(name: &str, until: FleetTime) -> Result<SharedState, DecodeError> {
    SharedState::parse(name, until)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn messages_round_trip_and_keep_odd_names() {
        let update = Update {
            name: "fireworks/accounts/x|y/models/z".to_owned(),
            record: BreakerRecord {
                epoch: 1_700_000_000_123,
                state: SharedState::Open {
                    until: FleetTime::from_millis(1_700_000_005_000),
                },
                cooldown: FleetTime::from_millis(9),
                trips: 2,
            },
        };
        let text = update.encode();
        assert_eq!(
            text,
            "1|1700000000123|open|1700000005000|9|2|fireworks/accounts/x|y/models/z"
        );
        assert_eq!(Update::decode(&text), Ok(update));
    }

    #[test]
    fn other_versions_are_foreign_and_junk_is_malformed() {
        assert_eq!(
            Update::decode("2|anything at all"),
            Err(DecodeError::Foreign(2))
        );
        assert_eq!(Update::decode(""), Err(DecodeError::Malformed("v")));
        assert_eq!(
            Update::decode("1|5|open"),
            Err(DecodeError::Malformed("until"))
        );
        assert_eq!(
            Update::decode("1|5|ajar|0|0|0|a/b"),
            Err(DecodeError::Malformed("state"))
        );
        assert_eq!(
            Update::decode("1|-5|open|0|0|0|a/b"),
            Err(DecodeError::Malformed("epoch"))
        );
        assert_eq!(
            Update::decode("1|5|open|0|0|99999999999|a/b"),
            Err(DecodeError::Malformed("trips"))
        );
        assert!(DecodeError::Foreign(2).to_string().contains("version 2"));
        // Lua's integer-valued doubles are read as integers.
        assert_eq!(
            Update::decode("1|5.0|closed|0|0|0|a/b").map(|u| u.record.epoch),
            Ok(5)
        );
    }

    fn record() -> impl Strategy<Value = BreakerRecord> {
        (
            any::<u64>(),
            0u8..3,
            any::<u64>(),
            any::<u64>(),
            any::<u32>(),
        )
            .prop_map(|(epoch, state, until, cooldown, trips)| BreakerRecord {
                epoch,
                state: match state {
                    0 => SharedState::Closed,
                    1 => SharedState::Open {
                        until: FleetTime::from_millis(until),
                    },
                    _ => SharedState::Isolated,
                },
                cooldown: FleetTime::from_millis(cooldown),
                trips,
            })
    }

    proptest! {
        #[test]
        fn any_record_round_trips(record in record(), name in ".*") {
            let update = Update { name, record };
            prop_assert_eq!(Update::decode(&update.encode()), Ok(update));
        }

        #[test]
        fn decoding_never_panics(text in ".*") {
            let _ = Update::decode(&text);
        }
    }
}
