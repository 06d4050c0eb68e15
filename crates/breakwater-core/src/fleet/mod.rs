//! Sharing breakers, cooldowns and a retry budget across a fleet of replicas, as a
//! pure state machine: the Redis adapter (`breakwater-redis`) and the simulator drive
//! this same code.
//!
//! # Why
//!
//! A fleet of replicas each discovering an outage alone is a thundering herd of its
//! own: every replica sends its own `consecutive_failures` to the failing provider
//! before its breaker trips, probes on its own when the open period ends, and retries
//! out of its own budget, so the fleet retries as much as all of them together.
//! Sharing makes one replica's trip, one 429's Retry-After, one fleet's budget hold
//! for all.
//!
//! # What stays local
//!
//! The hot path. A replica never waits on the store to admit or record a call: its
//! local [`Breaker`](crate::Breaker) and budget decide, as without a fleet. What the
//! fleet decided reaches them asynchronously, and what they did reaches the fleet the
//! same way; staleness is bounded by the driver's intervals (pushes on transitions,
//! polls every [`FleetConfig::staleness`]).
//!
//! # The parts
//!
//! - [`FleetClock`] / [`FleetTime`]: instants every replica agrees on.
//! - [`BreakerRecord`], [`Update`]: a key's shared breaker state with its epoch, and
//!   its versioned wire form ([`FORMAT_VERSION`]); a record of another version is
//!   dropped and counted, never applied.
//! - [`StoreRecord`], [`Op`]: the store's rules (atomic in the store: Lua in Redis).
//! - [`Replica`]: per replica, turns local transitions into [`Op`]s and the store's
//!   records into [`FleetChange`](crate::breaker::FleetChange)s on local breakers.
//! - [`BudgetMirror`], [`BudgetStore`]: the fleet-wide ratio budget.
//!
//! # Breakers
//!
//! Each accepted transition gets a new epoch from the store; a replica applies a
//! record only if its epoch is newer than the one it knows, so any interleaving, delay
//! or duplication of updates converges on the latest epoch. Cooldowns are a
//! max-register beside the epoch (they only extend). A local trip is published as
//! [`Op::Open`], a local close as [`Op::Close`], a Retry-After as [`Op::CoolDown`].
//!
//! Half-open probes are fleet-wide: while the store is reachable every breaker is
//! *gated* ([`FleetChange::Gated`](crate::breaker::FleetChange::Gated)): when its open
//! period ends, a call that wants to probe is rejected and the replica claims a slot
//! from the store ([`Op::Claim`], at most `half_open_probes` per epoch across the
//! fleet); a grant lets the next call probe. Successes are reported
//! ([`Op::ProbeSucceeded`]) and `close_after` of them, from any replicas, close the key
//! for everyone; a failed probe re-opens it (a local trip, published). Grants a replica
//! does not use within [`FleetConfig::grant_idle`] are handed back; claims of a replica
//! that died lapse after [`FleetConfig::probe_lease`]. When the store is unreachable
//! the breakers are ungated: each replica probes on its own, as without a fleet.
//!
//! # Budgets
//!
//! See [`budget`]: the ratio bucket is shared (one reserve and one ratio for the whole
//! fleet); the throttle and quota kinds stay local.

pub mod budget;
mod clock;
pub mod record;
mod replica;
pub mod store;

#[cfg(test)]
mod tests;

use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::time::serde_ms;

pub use budget::{BudgetMirror, BudgetPush, BudgetStore, WINDOWS};
pub use clock::{FleetClock, FleetTime};
pub use record::{BreakerRecord, DecodeError, FORMAT_VERSION, SharedState, Update};
pub use replica::{FleetStats, OpFailed, Replica};
pub use store::{Op, Reply, StoreRecord, next_epoch};

/// How a replica shares state with the fleet.
///
/// ```toml
/// staleness_ms = 100
/// probe_lease_ms = 60000
/// grant_idle_ms = 1000
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct FleetConfig {
    /// How often each key's record is polled and each shared budget synced: the bound
    /// on how stale a replica's view is when pushes are lost. Default 100 ms.
    #[serde(rename = "staleness_ms", with = "serde_ms")]
    pub staleness: Duration,
    /// How long a probe claim counts without a report (a replica that died holding
    /// one). Longer than a probe can take. Default 60 s.
    #[serde(rename = "probe_lease_ms", with = "serde_ms")]
    pub probe_lease: Duration,
    /// A granted probe slot not used within this is handed back. Default 1 s.
    #[serde(rename = "grant_idle_ms", with = "serde_ms")]
    pub grant_idle: Duration,
}

impl Default for FleetConfig {
    /// 100 ms staleness, a 60 s probe lease, grants handed back after 1 s unused.
    fn default() -> FleetConfig {
        FleetConfig {
            staleness: Duration::from_millis(100),
            probe_lease: Duration::from_secs(60),
            grant_idle: Duration::from_secs(1),
        }
    }
}

/// A fleet setting that cannot work.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum FleetConfigError {
    /// `staleness_ms` is zero.
    Staleness,
    /// `probe_lease_ms` is zero.
    ProbeLease,
}

impl std::fmt::Display for FleetConfigError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            FleetConfigError::Staleness => "fleet staleness_ms must be at least 1",
            FleetConfigError::ProbeLease => "fleet probe_lease_ms must be at least 1",
        })
    }
}

impl std::error::Error for FleetConfigError {}

impl FleetConfigError {
    /// The setting at fault, as written in a configuration file (`staleness_ms`,
    /// `probe_lease_ms`).
    #[must_use]
    pub const fn path(&self) -> &'static str {
        match self {
            FleetConfigError::Staleness => "staleness_ms",
            FleetConfigError::ProbeLease => "probe_lease_ms",
        }
    }
}

impl FleetConfig {
    /// Checks the settings: `staleness` and `probe_lease` not zero.
    pub fn validate(&self) -> Result<(), FleetConfigError> {
        if self.staleness.is_zero() {
            return Err(FleetConfigError::Staleness);
        }
        if self.probe_lease.is_zero() {
            return Err(FleetConfigError::ProbeLease);
        }
        Ok(())
    }
}
