//! The store's rules, as plain Rust: what an operation does to a key's record.
//!
//! A real store runs these rules atomically (the Redis adapter as Lua scripts, which
//! its tests check against this module op by op); the simulator runs this module
//! itself. Every rule is a function of the record, the operation and the caller's
//! `now` on the fleet clock.
//!
//! | op | accepted when | effect |
//! |---|---|---|
//! | [`Op::Open`] | `base ≥ epoch`, or the record is Closed | a new epoch, Open until `until`, one more trip, probes and successes cleared |
//! | [`Op::Close`] | `base ≥ epoch` and not Closed | a new epoch, Closed, trips cleared |
//! | [`Op::Isolate`] | not Isolated | a new epoch, Isolated |
//! | [`Op::CoolDown`] | always | `cooldown = max(cooldown, until)` |
//! | [`Op::Claim`] | `epoch` current, Open and `until` passed, fewer than `limit` live claims | one more claim; a lease until `now + lease` |
//! | [`Op::Release`] | `epoch` current | claims given back |
//! | [`Op::ProbeSucceeded`] | `epoch` current, Open and `until` passed | one more success (its slot stays taken, as locally); `close_after` of them close the key (a new epoch) |
//! | [`Op::Read`] | — | nothing |
//!
//! A new epoch is `max(epoch + 1, base + 1, now)`. An open from a replica that has not
//! seen the latest epoch loses to it (two replicas that trip at once open the key once),
//! except against a Closed record: a trip is new evidence, and failing safe means
//! opening. A close needs the replica to have seen the epoch it closes. Claims whose
//! lease ran out (a replica that died holding one) stop counting, so a half-open key
//! cannot be wedged; within a lease the claims of an epoch never exceed `limit`.

use std::time::Duration;

use super::FleetTime;
use super::record::{
    BreakerRecord, DecodeError, FORMAT_VERSION, SharedState, number, parse_state, state_fields,
};

/// An operation a replica asks of the store for one key.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Op {
    /// The local breaker tripped: open the key until `until`.
    Open {
        /// The epoch the replica last saw.
        base: u64,
        /// When the open period ends.
        until: FleetTime,
    },
    /// The local breaker closed (its probes succeeded, or a reset).
    Close {
        /// The epoch the replica last saw.
        base: u64,
    },
    /// The local breaker was isolated by hand.
    Isolate {
        /// The epoch the replica last saw.
        base: u64,
    },
    /// A Retry-After: no calls to the key before `until`.
    CoolDown {
        /// When the cooldown ends.
        until: FleetTime,
    },
    /// Asks for one half-open probe slot of `epoch`.
    Claim {
        /// The open epoch the probe is for.
        epoch: u64,
        /// How many probes the fleet may run at once (`half_open_probes`).
        limit: u32,
        /// How long an unreported claim counts.
        lease: Duration,
    },
    /// Gives back claimed slots that were not used.
    Release {
        /// The epoch they were claimed in.
        epoch: u64,
        /// How many.
        probes: u32,
    },
    /// A probe of `epoch` succeeded.
    ProbeSucceeded {
        /// The epoch it was claimed in.
        epoch: u64,
        /// Successes that close the key (`close_after`).
        close_after: u32,
    },
    /// Reads the record.
    Read,
}

/// What the store answers to an [`Op`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Reply {
    /// The record after the operation.
    pub record: BreakerRecord,
    /// For a [`Op::Claim`]: whether a slot was granted.
    pub granted: bool,
    /// Whether the record changed in a way the fleet must hear of (a new epoch or a
    /// longer cooldown): the store then pushes it on the channel.
    pub changed: bool,
}

/// A key's record as the store keeps it: the shared record plus the half-open
/// bookkeeping replicas never need to see.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct StoreRecord {
    /// What replicas see.
    pub record: BreakerRecord,
    /// Live claims in the current epoch.
    pub probes: u32,
    /// Probe successes in the current epoch.
    pub successes: u32,
    /// Until when the latest claim counts.
    pub lease: FleetTime,
}

impl StoreRecord {
    /// Applies `op` at `now` (the caller's fleet time).
    pub fn apply(&mut self, op: &Op, now: FleetTime) -> Reply {
        let before = self.record;
        let mut granted = false;
        let r = &mut self.record;
        let half_open =
            |r: &BreakerRecord| matches!(r.state, SharedState::Open { until } if until <= now);
        match *op {
            Op::Open { base, until } => {
                if base >= r.epoch || r.state == SharedState::Closed {
                    r.epoch = next_epoch(r.epoch, base, now);
                    r.state = SharedState::Open { until };
                    r.trips = r.trips.saturating_add(1);
                    self.probes = 0;
                    self.successes = 0;
                    self.lease = FleetTime::ZERO;
                }
            }
            Op::Close { base } => {
                if base >= r.epoch && r.state != SharedState::Closed {
                    self.close(base, now);
                }
            }
            Op::Isolate { base } => {
                if r.state != SharedState::Isolated {
                    r.epoch = next_epoch(r.epoch, base, now);
                    r.state = SharedState::Isolated;
                    self.probes = 0;
                    self.successes = 0;
                }
            }
            Op::CoolDown { until } => r.cooldown = r.cooldown.max(until),
            Op::Claim {
                epoch,
                limit,
                lease,
            } => {
                if epoch == r.epoch && half_open(r) {
                    if now >= self.lease {
                        // Every earlier claim's lease ran out.
                        self.probes = 0;
                    }
                    if self.probes < limit {
                        self.probes += 1;
                        self.lease = now.saturating_add(lease);
                        granted = true;
                    }
                }
            }
            Op::Release { epoch, probes } => {
                if epoch == r.epoch {
                    self.probes = self.probes.saturating_sub(probes);
                }
            }
            Op::ProbeSucceeded { epoch, close_after } => {
                if epoch == r.epoch && half_open(r) {
                    self.successes = self.successes.saturating_add(1);
                    if self.successes >= close_after.max(1) {
                        self.close(epoch, now);
                    }
                }
            }
            Op::Read => {}
        }
        let after = self.record;
        Reply {
            record: after,
            granted,
            changed: after.epoch != before.epoch || after.cooldown > before.cooldown,
        }
    }

    fn close(&mut self, base: u64, now: FleetTime) {
        let r = &mut self.record;
        r.epoch = next_epoch(r.epoch, base, now);
        r.state = SharedState::Closed;
        r.trips = 0;
        self.probes = 0;
        self.successes = 0;
        self.lease = FleetTime::ZERO;
    }

    /// The record as hash fields (`v`, `epoch`, `state`, `until`, `cooldown`, `trips`,
    /// `probes`, `successes`, `lease`).
    #[must_use]
    pub fn to_fields(&self) -> Vec<(&'static str, String)> {
        let mut fields = state_fields(&self.record).to_vec();
        fields.push(("probes", self.probes.to_string()));
        fields.push(("successes", self.successes.to_string()));
        fields.push(("lease", self.lease.as_millis().to_string()));
        fields
    }

    /// Reads a record from hash fields. No fields at all is a key without a record
    /// (Closed, epoch 0); a `v` other than [`FORMAT_VERSION`] is
    /// [`DecodeError::Foreign`]; unknown fields are ignored, missing counters read 0.
    pub fn from_fields<'a>(
        fields: impl IntoIterator<Item = (&'a str, &'a str)>,
    ) -> Result<StoreRecord, DecodeError> {
        let fields: Vec<(&str, &str)> = fields.into_iter().collect();
        if fields.is_empty() {
            return Ok(StoreRecord::default());
        }
        // The version first: a record of another version is foreign whatever it holds.
        match fields.iter().find(|(name, _)| *name == "v") {
            Some((_, v)) => {
                let v = number(v, "v")?;
                if v != u64::from(FORMAT_VERSION) {
                    return Err(DecodeError::Foreign(u32::try_from(v).unwrap_or(u32::MAX)));
                }
            }
            None => return Err(DecodeError::Malformed("v")),
        }
        let (mut epoch, mut until, mut cooldown, mut trips) = (0, 0, 0, 0);
        let (mut probes, mut successes, mut lease) = (0, 0, 0);
        let mut state = None;
        for (name, value) in fields {
            match name {
                "epoch" => epoch = number(value, "epoch")?,
                "state" => state = Some(value),
                "until" => until = number(value, "until")?,
                "cooldown" => cooldown = number(value, "cooldown")?,
                "trips" => trips = number(value, "trips")?,
                "probes" => probes = number(value, "probes")?,
                "successes" => successes = number(value, "successes")?,
                "lease" => lease = number(value, "lease")?,
                _ => {}
            }
        }
        let small = |n: u64, field| u32::try_from(n).map_err(|_| DecodeError::Malformed(field));
        Ok(StoreRecord {
            record: BreakerRecord {
                epoch,
                state: parse_state(
                    state.ok_or(DecodeError::Malformed("state"))?,
                    FleetTime::from_millis(until),
                )?,
                cooldown: FleetTime::from_millis(cooldown),
                trips: small(trips, "trips")?,
            },
            probes: small(probes, "probes")?,
            successes: small(successes, "successes")?,
            lease: FleetTime::from_millis(lease),
        })
    }
}

/// The epoch of an accepted transition: see the [module docs](self).
#[must_use]
pub fn next_epoch(epoch: u64, base: u64, now: FleetTime) -> u64 {
    epoch
        .saturating_add(1)
        .max(base.saturating_add(1))
        .max(now.as_millis())
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn ms(n: u64) -> FleetTime {
        FleetTime::from_millis(n)
    }

    fn open(until: u64) -> SharedState {
        SharedState::Open { until: ms(until) }
    }

    const LEASE: Duration = Duration::from_secs(10);

    #[test]
    fn concurrent_trips_open_the_key_once() {
        let mut s = StoreRecord::default();
        let a = s.apply(
            &Op::Open {
                base: 0,
                until: ms(150),
            },
            ms(100),
        );
        assert!(a.changed);
        assert_eq!(a.record.epoch, 100);
        assert_eq!(a.record.state, open(150));
        // B saw epoch 0 too: it loses to A's open and gets A's record back.
        let b = s.apply(
            &Op::Open {
                base: 0,
                until: ms(170),
            },
            ms(100),
        );
        assert!(!b.changed);
        assert_eq!(b.record, a.record);
        // Epochs within a millisecond still grow.
        let c = s.apply(
            &Op::Open {
                base: 100,
                until: ms(180),
            },
            ms(100),
        );
        assert_eq!((c.record.epoch, c.record.trips), (101, 2));
    }

    #[test]
    fn a_trip_against_a_closed_key_wins_whatever_its_base() {
        let mut s = StoreRecord::default();
        s.apply(
            &Op::Open {
                base: 0,
                until: ms(10),
            },
            ms(5),
        );
        s.apply(&Op::Close { base: 5 }, ms(20));
        assert_eq!(s.record.state, SharedState::Closed);
        let r = s.apply(
            &Op::Open {
                base: 0,
                until: ms(40),
            },
            ms(30),
        );
        assert!(r.changed);
        assert_eq!(r.record.state, open(40));
    }

    #[test]
    fn a_close_needs_the_current_epoch() {
        let mut s = StoreRecord::default();
        s.apply(
            &Op::Open {
                base: 0,
                until: ms(10),
            },
            ms(5),
        );
        assert!(!s.apply(&Op::Close { base: 4 }, ms(20)).changed);
        assert!(s.apply(&Op::Close { base: 5 }, ms(20)).changed);
        assert!(
            !s.apply(&Op::Close { base: 20 }, ms(21)).changed,
            "already closed"
        );
        assert_eq!(s.record.trips, 0);
    }

    #[test]
    fn claims_are_bounded_per_epoch_and_leases_expire() {
        let mut s = StoreRecord::default();
        s.apply(
            &Op::Open {
                base: 0,
                until: ms(100),
            },
            ms(10),
        );
        let claim = |s: &mut StoreRecord, epoch, now| {
            s.apply(
                &Op::Claim {
                    epoch,
                    limit: 2,
                    lease: LEASE,
                },
                ms(now),
            )
            .granted
        };
        assert!(!claim(&mut s, 10, 50), "still open");
        assert!(!claim(&mut s, 9, 100), "old epoch");
        assert!(claim(&mut s, 10, 100));
        assert!(claim(&mut s, 10, 101));
        assert!(!claim(&mut s, 10, 102));
        s.apply(
            &Op::Release {
                epoch: 10,
                probes: 1,
            },
            ms(103),
        );
        assert!(claim(&mut s, 10, 104));
        assert!(!claim(&mut s, 10, 105));
        // Nobody reported for a whole lease: the claims lapse.
        assert!(claim(&mut s, 10, 104 + 10_000));
    }

    #[test]
    fn close_after_successes_from_any_replica_close_the_key() {
        let mut s = StoreRecord::default();
        s.apply(
            &Op::Open {
                base: 0,
                until: ms(100),
            },
            ms(10),
        );
        let ok = Op::ProbeSucceeded {
            epoch: 10,
            close_after: 2,
        };
        assert!(!s.apply(&ok, ms(50)).changed, "not half-open yet");
        assert!(!s.apply(&ok, ms(100)).changed);
        let r = s.apply(&ok, ms(101));
        assert!(r.changed);
        assert_eq!(r.record.state, SharedState::Closed);
        assert_eq!(r.record.epoch, 101);
    }

    #[test]
    fn cooldowns_only_grow_and_isolation_is_one_epoch() {
        let mut s = StoreRecord::default();
        assert!(s.apply(&Op::CoolDown { until: ms(50) }, ms(1)).changed);
        assert!(!s.apply(&Op::CoolDown { until: ms(40) }, ms(2)).changed);
        assert_eq!(s.record.cooldown, ms(50));
        assert!(s.apply(&Op::Isolate { base: 0 }, ms(3)).changed);
        assert!(!s.apply(&Op::Isolate { base: 3 }, ms(4)).changed);
        assert!(
            !s.apply(
                &Op::Open {
                    base: 0,
                    until: ms(9)
                },
                ms(5)
            )
            .changed
        );
        assert!(s.apply(&Op::Close { base: 3 }, ms(6)).changed);
        assert!(!s.apply(&Op::Read, ms(7)).changed);
    }

    #[test]
    fn fields_round_trip_and_versions_are_checked() {
        let mut s = StoreRecord::default();
        s.apply(
            &Op::Open {
                base: 0,
                until: ms(100),
            },
            ms(10),
        );
        s.apply(
            &Op::Claim {
                epoch: 10,
                limit: 3,
                lease: LEASE,
            },
            ms(100),
        );
        let fields = s.to_fields();
        let read = StoreRecord::from_fields(fields.iter().map(|(k, v)| (*k, v.as_str())));
        assert_eq!(read, Ok(s));
        assert_eq!(StoreRecord::from_fields([]), Ok(StoreRecord::default()));
        assert_eq!(
            StoreRecord::from_fields([("v", "2"), ("epoch", "x")]),
            Err(DecodeError::Foreign(2))
        );
        assert_eq!(
            StoreRecord::from_fields([("epoch", "5"), ("state", "open")]),
            Err(DecodeError::Malformed("v"))
        );
        assert_eq!(
            StoreRecord::from_fields([("v", "1"), ("epoch", "5")]),
            Err(DecodeError::Malformed("state"))
        );
        assert_eq!(
            StoreRecord::from_fields([("v", "1"), ("state", "open"), ("extra", "ok")])
                .map(|s| s.record.state),
            Ok(open(0))
        );
    }

    fn op() -> impl Strategy<Value = Op> {
        let epoch = 0u64..40;
        prop_oneof![
            (epoch.clone(), 0u64..60).prop_map(|(base, until)| Op::Open {
                base,
                until: ms(until)
            }),
            epoch.clone().prop_map(|base| Op::Close { base }),
            epoch.clone().prop_map(|base| Op::Isolate { base }),
            (0u64..60).prop_map(|until| Op::CoolDown { until: ms(until) }),
            epoch.clone().prop_map(|epoch| Op::Claim {
                epoch,
                limit: 3,
                lease: Duration::from_secs(3600)
            }),
            (epoch.clone(), 0u32..3).prop_map(|(epoch, probes)| Op::Release { epoch, probes }),
            epoch.prop_map(|epoch| Op::ProbeSucceeded {
                epoch,
                close_after: 2
            }),
            Just(Op::Read),
        ]
    }

    proptest! {
        #[test]
        fn epochs_grow_cooldowns_grow_and_claims_never_exceed_the_limit(
            ops in proptest::collection::vec((op(), 0u64..3), 1..80)
        ) {
            let mut s = StoreRecord::default();
            let mut now = 0u64;
            let mut granted_in_epoch = 0u32;
            let mut released_in_epoch = 0u32;
            for (op, step) in ops {
                now += step;
                let before = s;
                let reply = s.apply(&op, ms(now));
                prop_assert!(s.record.epoch >= before.record.epoch);
                prop_assert!(s.record.cooldown >= before.record.cooldown);
                prop_assert_eq!(reply.record, s.record);
                if s.record.epoch != before.record.epoch {
                    prop_assert!(s.record.epoch > before.record.epoch);
                    granted_in_epoch = 0;
                    released_in_epoch = 0;
                }
                if reply.granted {
                    granted_in_epoch += 1;
                }
                if let Op::Release { epoch, probes } = op {
                    if epoch == s.record.epoch { released_in_epoch += probes; }
                }
                // Within one lease (an hour here), grants never exceed the limit plus
                // what was given back.
                prop_assert!(granted_in_epoch <= 3 + released_in_epoch);
                prop_assert!(s.probes <= 3);
            }
        }
    }
}
