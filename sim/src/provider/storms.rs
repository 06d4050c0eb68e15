//! The storm timeline: what faults are in force at a given time.
//!
//! Built once from the scenario's storms for one target (a provider or a client
//! population) as sorted, non-overlapping segments with their combined [`Effects`];
//! [`Storms::at`] is amortised O(1) for non-decreasing times (a cursor) and O(log n)
//! otherwise.

use std::cell::Cell;

use breakwater_core::Time;

use crate::scenario::{Fault, OutageMode, Storm, StormTarget};

/// The combined effect of every storm in force at one time. Overlaps combine:
/// factors multiply, probabilities combine as `1 − Π(1 − p)`, an outage in `timeout`
/// mode wins over `connect`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Effects {
    /// Rate-limit capacity multiplier (squeeze).
    pub capacity: f64,
    /// Concurrency multiplier (squeeze × overload's `concurrency_factor`).
    pub concurrency: f64,
    /// Extra overload (529) or failure probability.
    pub overload_p: f64,
    /// An outage, if one is in force.
    pub outage: Option<OutageMode>,
    /// Latency multiplier.
    pub latency: f64,
    /// Every attempt gets a permanent-quota 429.
    pub quota: bool,
    /// Arrival-rate multiplier (load spikes, for client timelines).
    pub load: f64,
}

impl Effects {
    /// No storm.
    pub const CALM: Effects = Effects {
        capacity: 1.0,
        concurrency: 1.0,
        overload_p: 0.0,
        outage: None,
        latency: 1.0,
        quota: false,
        load: 1.0,
    };

    fn add(&mut self, fault: Fault) {
        match fault {
            Fault::Squeeze { factor } => {
                self.capacity *= factor;
                self.concurrency *= factor;
            }
            Fault::Overload {
                p,
                concurrency_factor,
            } => {
                self.overload_p = 1.0 - (1.0 - self.overload_p) * (1.0 - p);
                self.concurrency *= concurrency_factor;
            }
            Fault::Outage(mode) => {
                self.outage = match (self.outage, mode) {
                    (Some(OutageMode::Timeout), _) | (_, OutageMode::Timeout) => {
                        Some(OutageMode::Timeout)
                    }
                    _ => Some(OutageMode::Connect),
                };
            }
            Fault::Latency { factor } => self.latency *= factor,
            Fault::Quota => self.quota = true,
            Fault::LoadSpike { factor } => self.load *= factor,
        }
    }
}

/// A piecewise-constant timeline of [`Effects`].
#[derive(Clone, Debug)]
pub struct Storms {
    /// Segment `i` covers `[starts[i], starts[i + 1])`; `starts[0]` is zero.
    starts: Vec<Time>,
    effects: Vec<Effects>,
    cursor: Cell<usize>,
}

impl Storms {
    /// No storms, ever.
    #[must_use]
    pub fn calm() -> Storms {
        Storms {
            starts: vec![Time::ZERO],
            effects: vec![Effects::CALM],
            cursor: Cell::new(0),
        }
    }

    /// The timeline of the storms that act on `target`.
    #[must_use]
    pub fn for_target(storms: &[Storm], target: StormTarget) -> Storms {
        let mine: Vec<&Storm> = storms
            .iter()
            .filter(|s| s.target == target && s.from < s.to)
            .collect();
        let mut starts: Vec<Time> = mine.iter().flat_map(|s| [s.from, s.to]).collect();
        starts.push(Time::ZERO);
        starts.sort_unstable();
        starts.dedup();
        let effects = starts
            .iter()
            .map(|&t| {
                let mut e = Effects::CALM;
                for s in mine.iter().filter(|s| s.from <= t && t < s.to) {
                    e.add(s.fault);
                }
                e
            })
            .collect();
        Storms {
            starts,
            effects,
            cursor: Cell::new(0),
        }
    }

    fn segment(&self, now: Time) -> usize {
        let c = self.cursor.get();
        let fits = |i: usize| {
            self.starts.get(i).is_some_and(|&s| s <= now)
                && self.starts.get(i + 1).is_none_or(|&next| now < next)
        };
        if fits(c) {
            return c;
        }
        if fits(c + 1) {
            self.cursor.set(c + 1);
            return c + 1;
        }
        // starts[0] is zero, so the partition point is at least 1.
        let i = self.starts.partition_point(|&s| s <= now).saturating_sub(1);
        self.cursor.set(i);
        i
    }

    /// The effects in force at `now`.
    #[must_use]
    pub fn at(&self, now: Time) -> Effects {
        self.effects
            .get(self.segment(now))
            .copied()
            .unwrap_or(Effects::CALM)
    }

    /// The first time after `now` at which the effects change, if any.
    #[must_use]
    pub fn next_change(&self, now: Time) -> Option<Time> {
        self.starts.get(self.segment(now) + 1).copied()
    }

    /// Every boundary, sorted (zero first).
    #[must_use]
    pub fn boundaries(&self) -> &[Time] {
        &self.starts
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn storm(from: u64, to: u64, fault: Fault) -> Storm {
        Storm {
            name: None,
            from: Time::from_secs(from),
            to: Time::from_secs(to),
            target: StormTarget::Provider(0),
            fault,
        }
    }

    #[test]
    fn storms_switch_on_and_off_at_their_bounds() {
        let s = Storms::for_target(
            &[
                storm(10, 20, Fault::Squeeze { factor: 0.5 }),
                storm(
                    15,
                    30,
                    Fault::Overload {
                        p: 0.5,
                        concurrency_factor: 1.0,
                    },
                ),
                storm(0, 5, Fault::Squeeze { factor: 0.1 }),
            ],
            StormTarget::Provider(0),
        );
        let at = |ms: u64| s.at(Time::from_millis(ms));
        assert_eq!(at(0).capacity, 0.1);
        assert_eq!(at(4_999).capacity, 0.1);
        assert_eq!(at(5_000), Effects::CALM);
        assert_eq!(at(9_999), Effects::CALM);
        assert_eq!(at(10_000).capacity, 0.5);
        assert_eq!(at(15_000).overload_p, 0.5);
        assert_eq!(at(15_000).concurrency, 0.5);
        assert_eq!(at(20_000).capacity, 1.0);
        assert_eq!(at(29_999).overload_p, 0.5);
        assert_eq!(at(30_000), Effects::CALM);
        // Backwards lookups still work (binary search).
        assert_eq!(at(12_000).capacity, 0.5);
        assert_eq!(
            s.next_change(Time::from_secs(12)),
            Some(Time::from_secs(15))
        );
        assert_eq!(s.next_change(Time::from_secs(31)), None);
        // Other targets see nothing.
        let other = Storms::for_target(&[storm(10, 20, Fault::Quota)], StormTarget::Provider(1));
        assert_eq!(other.at(Time::from_secs(15)), Effects::CALM);
    }

    #[test]
    fn overlaps_combine() {
        let s = Storms::for_target(
            &[
                storm(
                    0,
                    10,
                    Fault::Overload {
                        p: 0.5,
                        concurrency_factor: 0.5,
                    },
                ),
                storm(
                    0,
                    10,
                    Fault::Overload {
                        p: 0.5,
                        concurrency_factor: 1.0,
                    },
                ),
                storm(0, 10, Fault::Outage(OutageMode::Connect)),
                storm(0, 10, Fault::Outage(OutageMode::Timeout)),
                storm(0, 10, Fault::Latency { factor: 3.0 }),
            ],
            StormTarget::Provider(0),
        );
        let e = s.at(Time::from_secs(1));
        assert_eq!(e.overload_p, 0.75);
        assert_eq!(e.concurrency, 0.5);
        assert_eq!(e.outage, Some(OutageMode::Timeout));
        assert_eq!(e.latency, 3.0);
    }
}
