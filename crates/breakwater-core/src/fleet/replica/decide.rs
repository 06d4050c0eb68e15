//! What a replica decides for one key: the next operation to send, and how a record
//! from the store is taken in.

use super::{FleetStats, KeySync};
use crate::Time;
use crate::breaker::{Breaker, FleetChange, FleetView, State};
use crate::fleet::record::{BreakerRecord, SharedState};
use crate::fleet::store::Op;
use crate::fleet::{FleetClock, FleetConfig};

/// Decides the next operation for a key (and applies the local fixes that need none).
pub(super) fn next_op(
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
pub(super) fn adopt(
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
