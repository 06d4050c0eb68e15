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
mod tests;
