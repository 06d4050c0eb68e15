//! The machine's side of fleet-wide sharing: applying what the fleet decided, and the
//! half-open probes the fleet grants (see [`breaker::fleet`](crate::breaker::fleet)).

use super::{Cause, Machine, State};
use crate::Time;
use crate::breaker::fleet::{FleetChange, FleetView};

impl Machine {
    /// The half-open probe limit: the configured `N`, or the fleet's grants while gated.
    pub(in crate::breaker) fn probe_limit(&self) -> u32 {
        if self.fleet.gated {
            self.fleet.granted.min(self.probes)
        } else {
            self.probes
        }
    }

    /// What the fleet layer reads, at `now`.
    pub(in crate::breaker) fn fleet_view(&mut self, now: Time) -> FleetView {
        self.normalize(now);
        FleetView {
            state: self.state,
            cooldown: self.cooldown,
            revision: self.fleet.revision,
            generation: self.generation,
            probe_successes: if self.state == State::HalfOpen {
                self.successes
            } else {
                0
            },
            probes_taken: if self.state == State::HalfOpen {
                self.taken
            } else {
                0
            },
            probes_granted: self.fleet.granted,
            probe_wanted: self.fleet.wanted,
            gated: self.fleet.gated,
        }
    }

    /// Applies one fleet decision; returns how many granted probe slots a
    /// [`FleetChange::RevokeUnused`] took back (0 for every other change).
    pub(in crate::breaker) fn apply_fleet(&mut self, now: Time, change: FleetChange) -> u32 {
        self.normalize(now);
        match change {
            FleetChange::Open { until } => self.open_until(now, until),
            FleetChange::Closed => {
                if self.state != State::Closed {
                    self.close(now, Cause::Fleet);
                }
            }
            FleetChange::Isolated => self.isolate(now),
            FleetChange::CoolDown { until } => self.cool_down(now, until),
            FleetChange::Gated(gated) => {
                self.fleet.gated = gated;
                self.fleet.wanted = false;
            }
            FleetChange::Grant { generation, probes } => {
                if self.state == State::HalfOpen && self.generation == generation {
                    self.fleet.granted = self.fleet.granted.saturating_add(probes);
                    self.fleet.wanted = false;
                }
            }
            FleetChange::RevokeUnused { generation } => {
                if self.state == State::HalfOpen && self.generation == generation {
                    let kept = self.fleet.granted.min(self.taken);
                    let revoked = self.fleet.granted - kept;
                    self.fleet.granted = kept;
                    return revoked;
                }
            }
        }
        0
    }

    /// Open until `until` because the fleet says so: counted as a trip (the next local
    /// trip's open duration grows from it). No effect on an isolated breaker, nor on one
    /// already open until that very instant.
    fn open_until(&mut self, now: Time, until: Time) {
        if self.state == State::Isolated || self.state == (State::Open { until }) {
            return;
        }
        self.trips = self.trips.saturating_add(1);
        self.previous_open = Some(until.saturating_duration_since(now));
        self.transition(now, State::Open { until }, Cause::Fleet);
        // An open period that already ended is half-open at once.
        self.normalize(now);
    }
}
