//! One replica's side of the fleet: what to tell the store, and what to apply locally.

use std::collections::BTreeMap;

use super::budget::{BudgetMirror, BudgetPush};
use super::record::{BreakerRecord, DecodeError, SharedState, Update};
use super::store::{Op, Reply};
use super::{FleetClock, FleetConfig};
use crate::breaker::{Breaker, FleetChange, FleetView, State};
use crate::registry::Registry;
use crate::{Key, Time};

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

/// Decides the next operation for a key (and applies the local fixes that need none).
fn next_op(
    config: &FleetConfig,
    clock: &FleetClock,
    now: Time,
    ks: &mut KeySync,
    breaker: &Breaker,
    view: &mut FleetView,
) -> Option<Op> {
    if ks.needs_read {
        return Some(Op::Read);
    }
    let base = ks.known.epoch;
    let now_fleet = clock.to_fleet(now);
    // 1. A state the local breaker reached on its own.
    match (view.state, ks.known.state) {
        (State::Open { until }, fleet) if until > now => {
            let until = clock.to_fleet(until);
            if fleet != (SharedState::Open { until }) {
                return Some(Op::Open { base, until });
            }
        }
        (State::Closed, SharedState::Open { .. } | SharedState::Isolated) => {
            return Some(Op::Close { base });
        }
        (State::Isolated, fleet) if fleet != SharedState::Isolated => {
            return Some(Op::Isolate { base });
        }
        // Half-open on its own (a local trip the fleet never heard of, whose open period
        // ran out while the store was away): the fleet's word stands.
        (State::HalfOpen, SharedState::Closed) => {
            *view = breaker.apply_fleet(now, FleetChange::Closed);
        }
        (State::HalfOpen, SharedState::Isolated) => {
            *view = breaker.apply_fleet(now, FleetChange::Isolated);
        }
        (State::HalfOpen, SharedState::Open { until }) if until > now_fleet => {
            let until = clock.to_local(until);
            *view = breaker.apply_fleet(now, FleetChange::Open { until });
        }
        _ => {}
    }
    // 2. A cooldown the fleet has not heard of.
    if let Some(cooldown) = view.cooldown {
        let fleet = clock.to_fleet(cooldown);
        if cooldown > now && fleet > ks.known.cooldown {
            return Some(Op::CoolDown { until: fleet });
        }
    }
    // 3. Half-open under the fleet's grants.
    if view.state != State::HalfOpen {
        // Grants only live in a half-open period.
        ks.granted_at = None;
    }
    let half_open = matches!(ks.known.state, SharedState::Open { until } if until <= now_fleet);
    let epoch = ks.known.epoch;
    if let Some(at) = ks.granted_at
        && now >= at + config.grant_idle
    {
        ks.granted_at = None;
        let probes = breaker.revoke_unused_probes(now, view.generation);
        view.probes_granted -= probes;
        if probes > 0 && half_open {
            return Some(Op::Release { epoch, probes });
        }
    }
    if view.state == State::HalfOpen && view.gated && half_open {
        let config_probes = breaker.config().half_open_probes.max(1);
        if ks.reported.0 != view.generation {
            ks.reported = (view.generation, 0);
        }
        if view.probe_successes > ks.reported.1 {
            ks.reported.1 += 1;
            let close_after = breaker.config().close_after.clamp(1, config_probes);
            return Some(Op::ProbeSucceeded { epoch, close_after });
        }
        if view.probe_wanted && view.probes_granted <= view.probes_taken && now >= ks.claim_after {
            ks.claim_generation = view.generation;
            return Some(Op::Claim {
                epoch,
                limit: config_probes,
                lease: config.probe_lease,
            });
        }
    }
    // 4. The backstop: poll the record every staleness interval.
    if now >= ks.next_read {
        return Some(Op::Read);
    }
    None
}

/// Takes in a record: its cooldown merged by max; its state applied if its epoch is
/// newer. A store's answer of epoch 0 (no record: the store lost its data) is adopted
/// without touching the local breaker, so that what the local breaker holds is
/// published again.
fn adopt(
    clock: &FleetClock,
    stats: &mut FleetStats,
    now: Time,
    ks: &mut KeySync,
    breaker: &Breaker,
    record: BreakerRecord,
    from_store: bool,
) {
    if record.cooldown > ks.known.cooldown {
        ks.known.cooldown = record.cooldown;
        let until = clock.to_local(record.cooldown);
        if until > now {
            breaker.apply_fleet(now, FleetChange::CoolDown { until });
        }
    }
    if record.epoch > ks.known.epoch {
        let cooldown = ks.known.cooldown;
        ks.known = BreakerRecord { cooldown, ..record };
        ks.granted_at = None;
        reconcile(clock, now, breaker, record.state);
        stats.applied += 1;
    } else if record.epoch == ks.known.epoch {
        ks.known.trips = record.trips;
    } else if from_store && record.epoch == 0 {
        ks.known = record;
    } else {
        stats.stale += 1;
    }
}

/// Brings the local breaker to the fleet's state, unless it is there already.
fn reconcile(clock: &FleetClock, now: Time, breaker: &Breaker, state: SharedState) {
    let view = breaker.fleet_view(now);
    let change = match state {
        SharedState::Open { until } => {
            if matches!(view.state, State::Open { until: local } if clock.to_fleet(local) == until)
            {
                return;
            }
            if view.state == State::Isolated {
                // The fleet lifted the isolation since (a newer epoch): follow it.
                breaker.apply_fleet(now, FleetChange::Closed);
            }
            FleetChange::Open {
                until: clock.to_local(until),
            }
        }
        SharedState::Closed if view.state != State::Closed => FleetChange::Closed,
        SharedState::Isolated if view.state != State::Isolated => FleetChange::Isolated,
        _ => return,
    };
    breaker.apply_fleet(now, change);
}
