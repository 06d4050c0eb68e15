//! What a fleet-wide store needs from a breaker: a view of its state, and a way to
//! apply what the fleet decided.
//!
//! The [`fleet`](crate::fleet) module reads [`Breaker::fleet_view`] to notice local
//! transitions (by their [`revision`](FleetView::revision), so nothing is lost when the
//! event queue overflows or another consumer drains it) and applies remote ones with
//! [`Breaker::apply_fleet`]. While [gated](FleetChange::Gated), the half-open state
//! admits only the probes the fleet [granted](FleetChange::Grant): a call that finds no
//! granted slot is rejected as [`HalfOpenFull`](super::RejectReason::HalfOpenFull) and
//! marks the breaker as [wanting](FleetView::probe_wanted) a probe, which the fleet
//! layer then asks the store for. Ungated (the default, and the fallback when the store
//! is unreachable) the breaker probes on its own, `half_open_probes` at a time.
//!
//! None of this touches the closed-state hot path: `admit` and `record` read the same
//! words as before, and every method here takes the breaker's lock.

use super::{Breaker, State};
use crate::Time;

/// A breaker's state as the fleet layer sees it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FleetView {
    /// The state at the `now` of the call (an ended open period reads HalfOpen).
    pub state: State,
    /// The cooldown's end, if one is set (it may have passed).
    pub cooldown: Option<Time>,
    /// Changes with every transition and every cooldown change: a view with the same
    /// revision as an earlier one saw no transition in between.
    pub revision: u64,
    /// Numbers the half-open periods (a grant names the period it is for).
    pub generation: u64,
    /// Probe successes in the current half-open period (0 outside it).
    pub probe_successes: u32,
    /// Probe slots taken (admitted, not freed) in the current half-open period.
    pub probes_taken: u32,
    /// Probe slots the fleet granted in the current half-open period.
    pub probes_granted: u32,
    /// While gated: a call found no granted slot in this half-open period.
    pub probe_wanted: bool,
    /// Whether half-open probes wait for the fleet's grants.
    pub gated: bool,
}

/// A decision of the fleet, applied to the local breaker.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FleetChange {
    /// Open until `until` (an instant already passed means half-open now). Counted as a
    /// trip; ignored by an isolated breaker and by one already open until `until`.
    Open {
        /// When the fleet's open period ends, in this process's time.
        until: Time,
    },
    /// Closed (a new closed period, the trip count started over); no-op if closed.
    Closed,
    /// Isolated until a reset.
    Isolated,
    /// No admission before `until` (extends, never shortens).
    CoolDown {
        /// When the cooldown ends.
        until: Time,
    },
    /// Whether half-open probes need the fleet's grants.
    Gated(bool),
    /// The fleet granted `probes` more probe slots for half-open period `generation`
    /// (ignored if that period is over).
    Grant {
        /// The half-open period.
        generation: u64,
        /// How many slots.
        probes: u32,
    },
    /// Takes back the granted slots of half-open period `generation` that no call has
    /// taken (so they can be handed back to the store).
    RevokeUnused {
        /// The half-open period.
        generation: u64,
    },
}

impl Breaker {
    /// The state as the fleet layer reads it (takes the lock; never on the hot path).
    #[must_use]
    pub fn fleet_view(&self, now: Time) -> FleetView {
        self.inner.locked(|m| m.fleet_view(now))
    }

    /// Applies a fleet decision and returns the view right after it, read under the
    /// same lock (so its revision includes this change and nothing later). A change
    /// that emits a transition queues a [`BreakerEvent`](super::BreakerEvent) with
    /// cause [`Fleet`](super::Cause::Fleet).
    pub fn apply_fleet(&self, now: Time, change: FleetChange) -> FleetView {
        self.inner.locked(|m| {
            m.apply_fleet(now, change);
            m.fleet_view(now)
        })
    }

    /// Takes back the unused granted probe slots of half-open period `generation`;
    /// returns how many were taken back.
    pub fn revoke_unused_probes(&self, now: Time, generation: u64) -> u32 {
        self.inner
            .locked(|m| m.apply_fleet(now, FleetChange::RevokeUnused { generation }))
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::backoff::{Backoff, Jitter};
    use crate::breaker::{Admit, BreakerConfig, Cause, RejectReason, StateKind};
    use crate::class::Class;

    fn breaker() -> Breaker {
        Breaker::new(
            BreakerConfig {
                open: Backoff::exponential(Duration::from_secs(1), Duration::from_secs(8))
                    .with_jitter(Jitter::None),
                half_open_probes: 2,
                close_after: 2,
                ..BreakerConfig::default()
            },
            3,
        )
    }

    fn secs(n: u64) -> Time {
        Time::from_secs(n)
    }

    #[test]
    fn fleet_open_and_close_are_transitions_with_their_cause() {
        let b = breaker();
        let before = b.fleet_view(secs(0)).revision;
        let view = b.apply_fleet(secs(0), FleetChange::Open { until: secs(4) });
        assert_eq!(view.state, State::Open { until: secs(4) });
        assert_ne!(view.revision, before);
        // The same open again changes nothing.
        let again = b.apply_fleet(secs(1), FleetChange::Open { until: secs(4) });
        assert_eq!(again.revision, view.revision);
        assert!(matches!(b.admit(secs(2)), Admit::Rejected(r) if r.reason == RejectReason::Open));
        let closed = b.apply_fleet(secs(2), FleetChange::Closed);
        assert_eq!(closed.state, State::Closed);
        assert!(b.admit(secs(2)).is_admitted());
        let events: Vec<_> = std::iter::from_fn(|| b.poll_event())
            .map(|e| (e.to, e.cause))
            .collect();
        assert_eq!(
            events,
            [
                (StateKind::Open, Cause::Fleet),
                (StateKind::Closed, Cause::Fleet)
            ]
        );
        // A fleet open counts as a trip: the next local trip opens for 2 s, not 1 s.
        b.apply_fleet(secs(3), FleetChange::Open { until: secs(4) });
        b.force_open(secs(3));
        assert_eq!(b.state(secs(3)), State::Open { until: secs(5) });
    }

    #[test]
    fn an_open_that_already_ended_is_half_open() {
        let b = breaker();
        let view = b.apply_fleet(secs(10), FleetChange::Open { until: secs(9) });
        assert_eq!(view.state, State::HalfOpen);
    }

    #[test]
    fn isolated_ignores_fleet_opens_and_closes_on_fleet_close() {
        let b = breaker();
        b.isolate(secs(0));
        let view = b.apply_fleet(secs(0), FleetChange::Open { until: secs(4) });
        assert_eq!(view.state, State::Isolated);
        assert_eq!(
            b.apply_fleet(secs(0), FleetChange::Closed).state,
            State::Closed
        );
    }

    #[test]
    fn gated_half_open_admits_only_granted_probes() {
        let b = breaker();
        b.apply_fleet(secs(0), FleetChange::Gated(true));
        b.force_open(secs(0));
        // Half-open at 1 s, but nothing granted: rejected, and the wish is noted.
        let r = b.admit(secs(1)).into_result().unwrap_err();
        assert_eq!(r.reason, RejectReason::HalfOpenFull);
        let view = b.fleet_view(secs(1));
        assert_eq!(view.state, State::HalfOpen);
        assert!(view.probe_wanted);
        // A grant for an older period is ignored.
        let stale = b.apply_fleet(
            secs(1),
            FleetChange::Grant {
                generation: view.generation.wrapping_sub(1),
                probes: 1,
            },
        );
        assert_eq!(stale.probes_granted, 0);
        let granted = b.apply_fleet(
            secs(1),
            FleetChange::Grant {
                generation: view.generation,
                probes: 1,
            },
        );
        assert_eq!(granted.probes_granted, 1);
        assert!(!granted.probe_wanted);
        let probe = b.admit(secs(1)).into_result().unwrap();
        assert!(probe.is_probe());
        assert!(!b.admit(secs(1)).is_admitted(), "one grant, one probe");
        b.record(secs(1), probe, &Class::Success, Duration::from_millis(5));
        let view = b.fleet_view(secs(1));
        assert_eq!((view.probe_successes, view.probes_taken), (1, 1));
        // Ungated, the breaker probes on its own again.
        b.apply_fleet(secs(1), FleetChange::Gated(false));
        let probe = b.admit(secs(1)).into_result().unwrap();
        b.record(secs(1), probe, &Class::Success, Duration::from_millis(5));
        assert_eq!(b.state(secs(1)), State::Closed);
    }

    #[test]
    fn a_grant_outside_half_open_is_ignored() {
        let b = breaker();
        b.apply_fleet(secs(0), FleetChange::Gated(true));
        b.force_open(secs(0));
        let open = b.fleet_view(secs(0));
        let view = b.apply_fleet(
            secs(0),
            FleetChange::Grant {
                generation: open.generation,
                probes: 1,
            },
        );
        assert!(matches!(view.state, State::Open { .. }));
        assert_eq!(view.probes_granted, 0);
    }

    #[test]
    fn unused_grants_are_revoked_and_counted() {
        let b = breaker();
        b.apply_fleet(secs(0), FleetChange::Gated(true));
        b.force_open(secs(0));
        let generation = b.fleet_view(secs(1)).generation;
        b.apply_fleet(
            secs(1),
            FleetChange::Grant {
                generation,
                probes: 2,
            },
        );
        let probe = b.admit(secs(1)).into_result().unwrap();
        // A revocation for another half-open period takes nothing from this one.
        assert_eq!(b.revoke_unused_probes(secs(1), generation + 1), 0);
        assert_eq!(b.revoke_unused_probes(secs(1), generation), 1);
        assert_eq!(b.revoke_unused_probes(secs(1), generation), 0);
        assert!(!b.admit(secs(1)).is_admitted());
        drop(probe);
        // The dropped probe freed its slot; the grant it held remains usable.
        assert!(b.admit(secs(1)).is_admitted());
    }

    #[test]
    fn cooldowns_bump_the_revision_only_when_they_extend() {
        let b = breaker();
        let r0 = b.fleet_view(secs(0)).revision;
        let v = b.apply_fleet(secs(0), FleetChange::CoolDown { until: secs(5) });
        assert_eq!(v.cooldown, Some(secs(5)));
        assert_ne!(v.revision, r0);
        let same = b.apply_fleet(secs(0), FleetChange::CoolDown { until: secs(3) });
        assert_eq!(same.revision, v.revision);
        assert_eq!(same.cooldown, Some(secs(5)));
    }
}
