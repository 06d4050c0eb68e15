//! What the first seconds of an outage look like across a policy's client replicas:
//! how many attempts still reach the failing provider, how much the fleet retries, and
//! how long until every replica has stopped sending to it (its breaker left Closed).
//!
//! Measured for the scenario's first `outage` storm on a provider, over its first
//! [`OutageMeasures::WINDOW`] (or the whole outage if shorter). These numbers are kept
//! beside the report, not in it, so the report of a scenario is the same as before.

use std::time::Duration;

use breakwater_core::Time;

use crate::scenario::{Fault, Scenario, StormTarget};

/// The fleet's behaviour at the start of an outage.
#[derive(Clone, Debug, PartialEq)]
pub struct OutageMeasures {
    /// The failing provider (index in the scenario).
    pub provider: usize,
    /// When the outage starts.
    pub from: Time,
    /// How long is measured.
    pub window: Duration,
    /// Attempts sent to the failing provider in the window.
    pub attempts_to_failing: u64,
    /// Attempts sent to any provider in the window.
    pub attempts: u64,
    /// Requests that arrived in the window.
    pub requests: u64,
    /// Per client replica: how long after `from` its breaker for the failing provider
    /// first left Closed (`None`: not within the window).
    pub stopped: Vec<Option<Duration>>,
}

impl OutageMeasures {
    /// The longest window measured: the first seconds are where replicas differ.
    pub const WINDOW: Duration = Duration::from_secs(10);

    /// Measures for `scenario`'s first provider outage, if it has one.
    #[must_use]
    pub fn for_scenario(scenario: &Scenario, replicas: usize) -> Option<OutageMeasures> {
        let storm = scenario.storms.iter().find(|s| {
            matches!(s.fault, Fault::Outage(_)) && matches!(s.target, StormTarget::Provider(_))
        })?;
        let StormTarget::Provider(provider) = storm.target else {
            return None;
        };
        Some(OutageMeasures {
            provider,
            from: storm.from,
            window: (storm.to - storm.from).min(Self::WINDOW),
            attempts_to_failing: 0,
            attempts: 0,
            requests: 0,
            stopped: vec![None; replicas],
        })
    }

    /// Attempts per request that arrived in the window (all providers).
    #[must_use]
    pub fn amplification(&self) -> f64 {
        if self.requests == 0 {
            0.0
        } else {
            self.attempts as f64 / self.requests as f64
        }
    }

    /// When the last replica stopped sending, after `from`; `None` if one never did
    /// within the window.
    #[must_use]
    pub fn all_stopped(&self) -> Option<Duration> {
        self.stopped
            .iter()
            .try_fold(Duration::ZERO, |latest, s| s.map(|s| latest.max(s)))
    }

    pub(super) fn within(&self, now: Time) -> bool {
        now >= self.from && now - self.from < self.window
    }

    pub(super) fn on_request(&mut self, now: Time) {
        if self.within(now) {
            self.requests += 1;
        }
    }

    pub(super) fn on_attempt(&mut self, now: Time, provider: usize) {
        if self.within(now) {
            self.attempts += 1;
            if provider == self.provider {
                self.attempts_to_failing += 1;
            }
        }
    }

    /// Whether replica `r` still needs watching at `now`.
    pub(super) fn watching(&self, now: Time, r: usize) -> bool {
        self.within(now) && self.stopped.get(r).is_some_and(Option::is_none)
    }

    pub(super) fn stop(&mut self, now: Time, r: usize) {
        if let Some(slot) = self.stopped.get_mut(r) {
            *slot = Some(now - self.from);
        }
    }
}
