//! One replica's side of the fleet: what to tell the store, and what to apply locally.

use std::collections::BTreeMap;

use super::budget::{BudgetMirror, BudgetPush};
use super::record::{BreakerRecord, DecodeError, Update};
use super::store::{Op, Reply};
use super::{FleetClock, FleetConfig};
use crate::breaker::{Breaker, FleetChange};
use crate::registry::Registry;
use crate::{Key, Time};

mod decide;

use decide::{adopt, next_op};

/// An operation that did not complete (timed out, or the store could not be reached):
/// the replica carries on with its local state.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct OpFailed;

/// Counters of what a replica did, for logs and tests.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct FleetStats {
    /// Records of a newer epoch applied to a local breaker.
    pub applied: u64,
    /// Records not newer than what the replica knew (stale or duplicate): dropped.
    pub stale: u64,
    /// Records or messages of another format version: dropped, never applied.
    pub foreign: u64,
    /// Messages that could not be read at all: dropped.
    pub malformed: u64,
    /// Operations sent.
    pub sent: u64,
    /// Operations that failed.
    pub failed: u64,
    /// Probe slots the store granted.
    pub granted: u64,
    /// Probe claims the store denied.
    pub denied: u64,
}

/// The per-replica state machine of fleet sharing: see the [module docs](super).
///
/// # Driving it
///
/// - Outputs: [`poll_ops`](Self::poll_ops) (one operation per key at most, while the
///   previous one is unanswered nothing more for that key) and
///   [`budget_pushes`](Self::budget_pushes) (due every staleness interval).
/// - Inputs: [`on_reply`](Self::on_reply) and [`on_budget_reply`](Self::on_budget_reply)
///   for each of those (a failure too), [`on_message`](Self::on_message) for each pushed
///   update, [`set_connected`](Self::set_connected) when the store is lost or found.
/// - Timer: [`poll_timeout`](Self::poll_timeout), the next instant `poll_ops` or
///   `budget_pushes` has something to do on its own (a spurious call is harmless).
///
/// Call `poll_ops` often (after local activity, or every few milliseconds): it is how
/// local transitions are noticed. It takes each breaker's lock once, never the
/// closed-state hot path's words.
#[derive(Debug)]
pub struct Replica {
    id: u64,
    config: FleetConfig,
    clock: FleetClock,
    connected: bool,
    keys: BTreeMap<Key, KeySync>,
    names: BTreeMap<String, Key>,
    budgets: BTreeMap<Key, BudgetMirror>,
    next_budget_sync: Time,
    stats: FleetStats,
}

/// What a replica knows and is doing about one key.
#[derive(Debug, Default)]
struct KeySync {
    /// The fleet's record as last learnt (the cooldown merged by max).
    known: BreakerRecord,
    in_flight: Option<Op>,
    /// The half-open period a claim in flight is for.
    claim_generation: u64,
    /// When the latest grant arrived, while it may be unused.
    granted_at: Option<Time>,
    /// Probe successes already reported: (half-open period, count).
    reported: (u64, u32),
    /// No claim before this (after a denial).
    claim_after: Time,
    /// The next poll of the record.
    next_read: Time,
    /// Read the record before anything else (after connecting).
    needs_read: bool,
}

impl Replica {
    /// Replica `id` (unique in the fleet), with `config`, converting time with `clock`.
    /// It starts disconnected: nothing is sent before [`set_connected`](Self::set_connected).
    #[must_use]
    pub fn new(id: u64, config: FleetConfig, clock: FleetClock) -> Replica {
        Replica {
            id,
            config,
            clock,
            connected: false,
            keys: BTreeMap::new(),
            names: BTreeMap::new(),
            budgets: BTreeMap::new(),
            next_budget_sync: Time::ZERO,
            stats: FleetStats::default(),
        }
    }

    /// The replica's id.
    #[must_use]
    pub const fn id(&self) -> u64 {
        self.id
    }

    /// The counters.
    #[must_use]
    pub const fn stats(&self) -> FleetStats {
        self.stats
    }

    /// Whether the store is reachable, as last told.
    #[must_use]
    pub const fn connected(&self) -> bool {
        self.connected
    }

    /// What the replica knows of `key`'s fleet record.
    #[must_use]
    pub fn known(&self, key: &Key) -> Option<BreakerRecord> {
        self.keys.get(key).map(|k| k.known)
    }

    /// The store was found (`true`) or lost (`false`). Lost: every breaker goes back to
    /// local behaviour (half-open probes no longer wait for grants), operations in
    /// flight are forgotten (their replies, if any still come, are ignored). Found:
    /// each key's record is read again before anything is published, and local
    /// transitions the fleet missed are published then.
    pub fn set_connected(&mut self, now: Time, registry: &Registry, connected: bool) {
        if self.connected == connected {
            return;
        }
        self.connected = connected;
        for ks in self.keys.values_mut() {
            ks.in_flight = None;
            ks.needs_read = connected;
        }
        for mirror in self.budgets.values_mut() {
            mirror.abort();
        }
        self.next_budget_sync = now;
        if !connected {
            for key in registry.keys() {
                if let Some(breaker) = registry.breaker(&key) {
                    breaker.apply_fleet(now, FleetChange::Gated(false));
                }
            }
        }
    }

    /// The operations to send now, at most one per key, each marked in flight until its
    /// [`on_reply`](Self::on_reply). Empty while disconnected.
    pub fn poll_ops(&mut self, now: Time, registry: &Registry) -> Vec<(Key, Op)> {
        let mut ops = Vec::new();
        for key in registry.keys() {
            let Some(breaker) = registry.breaker(&key) else {
                continue;
            };
            if let Some(op) = self.scan(now, &key, &breaker) {
                ops.push((key, op));
            }
        }
        ops
    }

    /// The operation to send now for one key, if any (marked in flight).
    pub fn poll_key(&mut self, now: Time, key: &Key, breaker: &Breaker) -> Option<Op> {
        self.scan(now, key, breaker)
    }

    fn scan(&mut self, now: Time, key: &Key, breaker: &Breaker) -> Option<Op> {
        if !self.keys.contains_key(key) {
            self.names.insert(key.to_string(), key.clone());
            self.keys.insert(
                key.clone(),
                KeySync {
                    needs_read: true,
                    ..KeySync::default()
                },
            );
        }
        let connected = self.connected;
        let ks = self.keys.get_mut(key)?;
        if ks.in_flight.is_some() {
            return None;
        }
        let mut view = breaker.fleet_view(now);
        if view.gated != connected {
            view = breaker.apply_fleet(now, FleetChange::Gated(connected));
        }
        if !connected {
            return None;
        }
        let op = next_op(&self.config, &self.clock, now, ks, breaker, &mut view)?;
        ks.in_flight = Some(op);
        self.stats.sent += 1;
        Some(op)
    }

    /// The answer to the operation in flight for `key` (or its failure).
    pub fn on_reply(
        &mut self,
        now: Time,
        key: &Key,
        breaker: &Breaker,
        reply: Result<Reply, OpFailed>,
    ) {
        let Some(ks) = self.keys.get_mut(key) else {
            return;
        };
        let Some(op) = ks.in_flight.take() else {
            return;
        };
        let reply = match reply {
            Ok(reply) => reply,
            Err(OpFailed) => {
                self.stats.failed += 1;
                if let Op::Claim { .. } = op {
                    ks.claim_after = now + self.config.staleness;
                }
                return;
            }
        };
        ks.next_read = now + self.config.staleness;
        if let Op::Read = op {
            ks.needs_read = false;
        }
        let claimed_epoch = match op {
            Op::Claim { epoch, .. } => Some(epoch),
            _ => None,
        };
        adopt(
            &self.clock,
            &mut self.stats,
            now,
            ks,
            breaker,
            reply.record,
            true,
        );
        if let Some(epoch) = claimed_epoch {
            if reply.granted && ks.known.epoch == epoch {
                breaker.apply_fleet(
                    now,
                    FleetChange::Grant {
                        generation: ks.claim_generation,
                        probes: 1,
                    },
                );
                ks.granted_at = Some(now);
                self.stats.granted += 1;
            } else {
                self.stats.denied += 1;
                ks.claim_after = now + self.config.staleness;
            }
        }
    }

    /// A record the store pushed (already decoded). Applied only if its epoch is newer
    /// than the replica's; its cooldown is merged by max.
    pub fn on_update(&mut self, now: Time, registry: &Registry, update: &Update) {
        let Some(key) = self.names.get(&update.name) else {
            return;
        };
        let Some(breaker) = registry.breaker(key) else {
            return;
        };
        let Some(ks) = self.keys.get_mut(key) else {
            return;
        };
        adopt(
            &self.clock,
            &mut self.stats,
            now,
            ks,
            &breaker,
            update.record,
            false,
        );
    }

    /// A message from the fleet's channel: decoded, then as [`on_update`](Self::on_update).
    /// One of another format version is counted in [`FleetStats::foreign`] and dropped.
    pub fn on_message(&mut self, now: Time, registry: &Registry, message: &str) {
        match Update::decode(message) {
            Ok(update) => self.on_update(now, registry, &update),
            Err(error) => self.count_decode_error(error),
        }
    }

    /// Counts a record or message that could not be read (the driver's decoding of a
    /// reply, for instance).
    pub fn count_decode_error(&mut self, error: DecodeError) {
        match error {
            DecodeError::Foreign(_) => self.stats.foreign += 1,
            DecodeError::Malformed(_) => self.stats.malformed += 1,
        }
    }

    /// The budget syncs due now: one push per ratio budget of the registry, every
    /// staleness interval, none while disconnected or while that budget's previous push
    /// is unanswered.
    pub fn budget_pushes(&mut self, now: Time, registry: &Registry) -> Vec<(Key, BudgetPush)> {
        if !self.connected || now < self.next_budget_sync {
            return Vec::new();
        }
        self.next_budget_sync = now + self.config.staleness;
        let mut pushes = Vec::new();
        for (scope, budget) in registry.budgets() {
            let mirror = self
                .budgets
                .entry(scope.clone())
                .or_insert_with(|| BudgetMirror::new(self.id, self.clock));
            if let Some(push) = mirror.begin(now, &budget) {
                pushes.push((scope, push));
            }
        }
        pushes
    }

    /// The store's totals for the push of budget `scope` (or its failure).
    pub fn on_budget_reply(
        &mut self,
        now: Time,
        registry: &Registry,
        scope: &Key,
        totals: Result<&[(u64, i64)], OpFailed>,
    ) {
        let Some(mirror) = self.budgets.get_mut(scope) else {
            return;
        };
        match (totals, registry.budget(scope)) {
            (Ok(totals), Some(budget)) => mirror.finish(now, &budget, totals),
            (Err(OpFailed), _) => {
                self.stats.failed += 1;
                mirror.abort();
            }
            _ => mirror.abort(),
        }
    }

    /// The next instant at which [`poll_ops`](Self::poll_ops) or
    /// [`budget_pushes`](Self::budget_pushes) has something due on its own: a poll of a
    /// record, a budget sync, an idle grant to return, a claim to retry. `None` while
    /// disconnected.
    #[must_use]
    pub fn poll_timeout(&self) -> Option<Time> {
        if !self.connected {
            return None;
        }
        let mut next = self.next_budget_sync;
        for ks in self.keys.values().filter(|k| k.in_flight.is_none()) {
            next = next.min(ks.next_read);
            if let Some(at) = ks.granted_at {
                next = next.min(at + self.config.grant_idle);
            }
        }
        Some(next)
    }
}
