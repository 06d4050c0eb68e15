//! A breaker's states and the events its transitions emit.

use std::collections::VecDeque;
use std::fmt;

use crate::Time;

/// Where a breaker stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum State {
    /// Calls flow; failures are counted.
    Closed,
    /// No calls until `until`; the first admit at or after it moves to HalfOpen.
    Open {
        /// When the open period ends.
        until: Time,
    },
    /// A few probes test the key; their results close or re-open the breaker.
    HalfOpen,
    /// Opened by hand until [`reset`](super::Breaker::reset).
    Isolated,
}

impl State {
    /// The state without its payload.
    #[must_use]
    pub const fn kind(&self) -> StateKind {
        match self {
            State::Closed => StateKind::Closed,
            State::Open { .. } => StateKind::Open,
            State::HalfOpen => StateKind::HalfOpen,
            State::Isolated => StateKind::Isolated,
        }
    }
}

/// A [`State`] without its payload.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum StateKind {
    /// See [`State::Closed`].
    Closed,
    /// See [`State::Open`].
    Open,
    /// See [`State::HalfOpen`].
    HalfOpen,
    /// See [`State::Isolated`].
    Isolated,
}

impl StateKind {
    /// A stable snake_case name.
    #[must_use]
    pub const fn name(self) -> &'static str {
        match self {
            StateKind::Closed => "closed",
            StateKind::Open => "open",
            StateKind::HalfOpen => "half_open",
            StateKind::Isolated => "isolated",
        }
    }
}

impl fmt::Display for StateKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Why a transition happened.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Cause {
    /// `consecutive_failures` failures in a row.
    ConsecutiveFailures,
    /// The failure rate over the window reached `failure_rate`.
    FailureRate,
    /// The slow-call rate over the window reached `slow_call_rate`.
    SlowCallRate,
    /// The open period ended.
    OpenElapsed,
    /// A probe failed (or was slow while slow calls are judged).
    ProbeFailed,
    /// `close_after` probes succeeded.
    ProbesSucceeded,
    /// [`force_open`](super::Breaker::force_open).
    Forced,
    /// [`isolate`](super::Breaker::isolate).
    Isolated,
    /// [`reset`](super::Breaker::reset).
    Reset,
    /// The fleet's shared state ([`apply_fleet`](super::Breaker::apply_fleet)).
    Fleet,
}

impl Cause {
    /// A stable snake_case name.
    #[must_use]
    pub const fn name(self) -> &'static str {
        match self {
            Cause::ConsecutiveFailures => "consecutive_failures",
            Cause::FailureRate => "failure_rate",
            Cause::SlowCallRate => "slow_call_rate",
            Cause::OpenElapsed => "open_elapsed",
            Cause::ProbeFailed => "probe_failed",
            Cause::ProbesSucceeded => "probes_succeeded",
            Cause::Forced => "forced",
            Cause::Isolated => "isolated",
            Cause::Reset => "reset",
            Cause::Fleet => "fleet",
        }
    }
}

impl fmt::Display for Cause {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// One transition, as a value for logs and metrics.
///
/// `at` is the `now` of the call that made it, except for Open → HalfOpen, whose `at`
/// is the end of the open period (the breaker notices it at its next call, but the
/// event does not depend on when that call comes).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BreakerEvent {
    /// When it happened.
    pub at: Time,
    /// The state it left.
    pub from: StateKind,
    /// The state it entered (may equal `from`: a forced re-open).
    pub to: StateKind,
    /// Why.
    pub cause: Cause,
}

/// A bounded queue of events: the oldest is dropped (and counted) when it is full.
/// Its storage is allocated whole at the first event: most breakers never change
/// state, and a registry holds one per key.
#[derive(Debug)]
pub(super) struct EventQueue {
    events: VecDeque<BreakerEvent>,
    capacity: usize,
    dropped: u64,
}

impl EventQueue {
    pub(super) const fn new(capacity: usize) -> EventQueue {
        EventQueue {
            events: VecDeque::new(),
            capacity,
            dropped: 0,
        }
    }

    pub(super) fn push(&mut self, event: BreakerEvent) {
        if self.events.len() >= self.capacity {
            self.events.pop_front();
            self.dropped = self.dropped.saturating_add(1);
        }
        if self.events.capacity() == 0 {
            self.events.reserve_exact(self.capacity.max(1));
        }
        self.events.push_back(event);
    }

    pub(super) fn pop(&mut self) -> Option<BreakerEvent> {
        self.events.pop_front()
    }

    pub(super) const fn dropped(&self) -> u64 {
        self.dropped
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(n: u64) -> BreakerEvent {
        BreakerEvent {
            at: Time::from_secs(n),
            from: StateKind::Closed,
            to: StateKind::Open,
            cause: Cause::Forced,
        }
    }

    #[test]
    fn queue_storage_comes_with_the_first_event_and_does_not_grow() {
        let mut q = EventQueue::new(64);
        assert_eq!(q.events.capacity(), 0, "no storage before an event");
        q.push(event(0));
        let capacity = q.events.capacity();
        assert!(capacity >= 64, "{capacity}");
        for n in 1..200 {
            q.push(event(n));
        }
        assert_eq!(q.events.capacity(), capacity, "allocated once");
        assert_eq!(q.dropped(), 200 - 64);
    }

    #[test]
    fn queue_drops_the_oldest_and_counts() {
        let mut q = EventQueue::new(3);
        for n in 0..5 {
            q.push(event(n));
        }
        assert_eq!(q.dropped(), 2);
        let left: Vec<_> = std::iter::from_fn(|| q.pop()).map(|e| e.at).collect();
        assert_eq!(
            left,
            [Time::from_secs(2), Time::from_secs(3), Time::from_secs(4)]
        );
    }

    #[test]
    fn names() {
        assert_eq!(State::Open { until: Time::ZERO }.kind(), StateKind::Open);
        assert_eq!(StateKind::HalfOpen.to_string(), "half_open");
        assert_eq!(Cause::ProbesSucceeded.to_string(), "probes_succeeded");
    }
}
