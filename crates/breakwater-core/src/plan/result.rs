//! What a plan hands back: [`Finished`], and the attempt history it carries.

use std::time::Duration;

use serde::{Deserialize, Serialize};
use smallvec::SmallVec;

use crate::breaker::Rejection;
use crate::budget::Refused;
use crate::cost::{Cost, Usage};
use crate::{Class, ClassKind, Fatal, Time};

/// How a request ended, with everything a caller or a metrics sink needs.
#[derive(Clone, Debug, PartialEq)]
pub struct Finished {
    /// Success, degraded, queued or failed.
    pub resolution: Resolution,
    /// Attempts sent, all steps together.
    pub attempts: u32,
    /// From the plan's start to the finish, waits included.
    pub elapsed: Duration,
    /// What every attempt cost, failed ones included.
    pub cost: Cost,
    /// The part of `cost` spent on attempts after the request's first: retries and
    /// fallbacks.
    pub retry_cost: Cost,
    /// Every attempt, skip and wait, in order; past the route's
    /// [`max_history`](crate::route::PlanConfig::max_history), the first and the latest
    /// ones, with the number left out in [`History::elided`].
    pub history: History,
}

impl Finished {
    /// Whether a provider answered.
    #[must_use]
    pub fn is_success(&self) -> bool {
        matches!(self.resolution, Resolution::Success { .. })
    }
}

/// A finished plan's [`Finished`], borrowed from the plan ([`Plan::finish`]): the same
/// fields, the history by reference. [`Action::Finish`] carries a copy of the history,
/// which a driver that reads the finish where it lies need not pay for (a request
/// that retried through a storm holds up to `max_history` entries).
///
/// [`Plan::finish`]: super::Plan::finish
/// [`Action::Finish`]: super::Action::Finish
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct FinishedRef<'p> {
    /// See [`Finished::resolution`].
    pub resolution: Resolution,
    /// See [`Finished::attempts`].
    pub attempts: u32,
    /// See [`Finished::elapsed`].
    pub elapsed: Duration,
    /// See [`Finished::cost`].
    pub cost: Cost,
    /// See [`Finished::retry_cost`].
    pub retry_cost: Cost,
    /// See [`Finished::history`].
    pub history: &'p History,
}

impl FinishedRef<'_> {
    /// Whether a provider answered.
    #[must_use]
    pub fn is_success(&self) -> bool {
        matches!(self.resolution, Resolution::Success { .. })
    }

    /// The owned [`Finished`], the history copied: what [`Action::Finish`] carries.
    ///
    /// [`Action::Finish`]: super::Action::Finish
    #[must_use]
    pub fn to_finished(&self) -> Finished {
        Finished {
            resolution: self.resolution,
            attempts: self.attempts,
            elapsed: self.elapsed,
            cost: self.cost,
            retry_cost: self.retry_cost,
            history: self.history.clone(),
        }
    }
}

/// The four ways a request ends.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Resolution {
    /// A provider answered.
    Success {
        /// The route step that answered (see [`Route::key`](crate::Route::key)).
        step: usize,
        /// Whether that step is not the route's first.
        fallback_used: bool,
    },
    /// The chain could not answer; the caller gets a degraded result instead.
    Degraded {
        /// Where the degraded result comes from.
        from: DegradedFrom,
        /// Why the chain could not answer.
        reason: FailReason,
    },
    /// A deferrable request handed back for the durable queue.
    Queued {
        /// Why the chain could not answer now.
        reason: FailReason,
    },
    /// A loud failure: the history says what happened.
    Failed {
        /// Why.
        reason: FailReason,
    },
}

/// Where a degraded answer comes from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DegradedFrom {
    /// The driver's cache of earlier successful responses.
    Cache,
    /// A structured empty result flagged degraded.
    Empty,
}

/// Why the chain did not produce an answer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FailReason {
    /// A non-retriable error with no designated fallback: surfaced at once.
    NonRetriable(Fatal),
    /// Every step was tried or skipped; `last` is the class of the last attempt
    /// (`None`: no attempt could be sent, every step was unavailable).
    Exhausted {
        /// The last attempt's class.
        last: Option<ClassKind>,
    },
    /// The deadline left no time for another useful attempt.
    DeadlineExceeded {
        /// The last attempt's class, if any attempt was sent.
        last: Option<ClassKind>,
    },
    /// A stream broke after tokens reached the caller, who did not allow a restart.
    StreamBroken {
        /// Output tokens the caller had received.
        tokens_delivered: u32,
    },
}

impl std::fmt::Display for FailReason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            FailReason::NonRetriable(fatal) => write!(f, "non-retriable error: {fatal}"),
            FailReason::Exhausted { last: Some(last) } => {
                write!(f, "every step exhausted (last: {last})")
            }
            FailReason::Exhausted { last: None } => f.write_str("no step available"),
            FailReason::DeadlineExceeded { .. } => f.write_str("deadline exceeded"),
            FailReason::StreamBroken { tokens_delivered } => {
                write!(f, "stream broke after {tokens_delivered} tokens")
            }
        }
    }
}

/// One line of a request's history.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Entry {
    /// The route step concerned.
    pub step: usize,
    /// When it happened (for an attempt: when it ended).
    pub at: Time,
    /// What happened.
    pub event: EntryEvent,
}

/// What a history entry records.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum EntryEvent {
    /// An attempt ended.
    Attempt {
        /// 1-based, counted over the whole request.
        attempt: u32,
        /// How its outcome was classified.
        class: Class,
        /// From send to outcome.
        latency: Duration,
        /// Tokens billed.
        usage: Usage,
        /// What it cost.
        cost: Cost,
    },
    /// The plan waited before a retry.
    Waited {
        /// How long.
        wait: Duration,
        /// Whether the provider's Retry-After set it (rather than the backoff).
        retry_after: bool,
    },
    /// A step, or a retry at it, was passed over.
    Skipped(Skip),
}

/// Why the plan passed a step or a retry over.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Skip {
    /// The step's breaker is open, half-open and full, isolated or cooling down.
    Breaker(Rejection),
    /// The retry budget refused the retry.
    Budget(Refused),
    /// The attempt's expected cost would cross the request's cost ceiling.
    CostCeiling,
    /// The wait (Retry-After or backoff) would leave no time for a useful attempt.
    WaitBeyondDeadline {
        /// The wait that did not fit.
        wait: Duration,
    },
    /// Too little of the deadline is left for a useful attempt.
    NoTimeLeft,
}

/// A request's history, oldest first, bounded by a cap ([`PlanConfig::max_history`]).
///
/// The first three entries (an attempt, a wait and a retry) are stored inline, so a
/// request that succeeds at once or after one retry allocates nothing. Past the cap,
/// the history keeps its first `cap / 2` entries (how the request began) and the
/// latest ones (how it ended), and counts the entries dropped from between them:
/// [`elided`](History::elided) says how many, [`elided_at`](History::elided_at) where.
/// So a request that keeps failing while every provider is down holds at most `cap`
/// entries, however long its deadline.
///
/// [`PlanConfig::max_history`]: crate::route::PlanConfig::max_history
#[derive(Debug, PartialEq)]
pub struct History {
    entries: SmallVec<[Entry; 3]>,
    /// Entries dropped from between the first `cap / 2` and the latest.
    elided: u64,
    /// At least [`MIN_HISTORY`].
    cap: u32,
}

/// The smallest history cap: the first entry and the latest.
pub(crate) const MIN_HISTORY: u32 = 2;

impl Default for History {
    /// An empty history with the default cap ([`PlanConfig::default`]'s
    /// `max_history`, 64 entries).
    ///
    /// [`PlanConfig::default`]: crate::route::PlanConfig
    fn default() -> History {
        History::with_cap(crate::route::DEFAULT_MAX_HISTORY)
    }
}

impl Clone for History {
    /// A copy of the entries as one block (entries are `Copy`): the derived clone
    /// pushes them one by one.
    #[inline]
    fn clone(&self) -> History {
        History {
            entries: SmallVec::from_slice(&self.entries),
            elided: self.elided,
            cap: self.cap,
        }
    }
}

impl History {
    /// An empty history that holds at most `cap` entries (at least
    /// [`MIN_HISTORY`]: a smaller cap is raised to it).
    #[inline]
    pub(crate) fn with_cap(cap: u32) -> History {
        History {
            entries: SmallVec::new(),
            elided: 0,
            cap: cap.max(MIN_HISTORY),
        }
    }

    /// Empties it for a new request with `cap` (raised as in [`with_cap`](Self::with_cap)),
    /// keeping the entries' allocation if there is one.
    #[inline]
    pub(crate) fn reset(&mut self, cap: u32) {
        self.entries.clear();
        self.elided = 0;
        self.cap = cap.max(MIN_HISTORY);
    }

    /// Appends `entry`; at the cap, first drops the oldest entry after the kept head.
    #[inline]
    pub(crate) fn push(&mut self, entry: Entry) {
        // A u32 cap fits usize on every platform Rust supports for this crate (≥ 32 bit).
        let cap = self.cap as usize;
        if self.entries.len() >= cap {
            // Beyond the cap only: a shift of at most `cap / 2` entries per push, no
            // allocation (the vector is already at its largest).
            self.entries.remove(cap / 2);
            self.elided = self.elided.saturating_add(1);
        }
        self.entries.push(entry);
    }

    /// The entries kept, oldest first: all of them unless [`elided`](Self::elided)
    /// is above zero.
    #[must_use]
    pub fn entries(&self) -> &[Entry] {
        &self.entries
    }

    /// The attempts kept: `(step, attempt number, class)`. The attempt numbers of the
    /// elided ones are missing from the sequence.
    pub fn attempts(&self) -> impl Iterator<Item = (usize, u32, Class)> + '_ {
        self.entries.iter().filter_map(|e| match e.event {
            EntryEvent::Attempt { attempt, class, .. } => Some((e.step, attempt, class)),
            _ => None,
        })
    }

    /// How many entries were dropped to keep within the cap (0 for every request
    /// whose history fits).
    #[must_use]
    pub fn elided(&self) -> u64 {
        self.elided
    }

    /// Where the dropped entries were: the index in [`entries`](Self::entries) of the
    /// first entry kept after them. `None` when nothing was dropped.
    #[must_use]
    pub fn elided_at(&self) -> Option<usize> {
        (self.elided > 0).then_some(self.cap as usize / 2)
    }

    /// The most entries kept.
    #[must_use]
    pub fn cap(&self) -> u32 {
        self.cap
    }

    /// Whether nothing was recorded.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// The number of entries kept.
    #[must_use]
    pub fn len(&self) -> usize {
        self.entries.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn wait(n: u64) -> Entry {
        Entry {
            step: 0,
            at: Time::from_millis(n),
            event: EntryEvent::Waited {
                wait: Duration::from_millis(n),
                retry_after: false,
            },
        }
    }

    fn times(history: &History) -> Vec<u64> {
        history
            .entries()
            .iter()
            .map(|e| e.at.as_nanos() / 1_000_000)
            .collect()
    }

    #[test]
    fn past_the_cap_keeps_the_first_half_and_the_latest() {
        let mut history = History::with_cap(6);
        for n in 0..6 {
            history.push(wait(n));
        }
        assert_eq!(
            (history.len(), history.elided(), history.elided_at()),
            (6, 0, None)
        );
        for n in 6..10 {
            history.push(wait(n));
        }
        assert_eq!(times(&history), [0, 1, 2, 7, 8, 9]);
        assert_eq!(history.elided(), 4);
        assert_eq!(history.elided_at(), Some(3));
        // An odd cap keeps fewer at the head than at the tail.
        let mut odd = History::with_cap(5);
        for n in 0..8 {
            odd.push(wait(n));
        }
        assert_eq!(times(&odd), [0, 1, 5, 6, 7]);
        assert_eq!(odd.elided_at(), Some(2));
    }

    #[test]
    fn the_smallest_cap_keeps_the_first_and_the_latest() {
        for cap in [0, 1, 2] {
            let mut history = History::with_cap(cap);
            for n in 0..5 {
                history.push(wait(n));
            }
            assert_eq!(history.cap(), MIN_HISTORY);
            assert_eq!(times(&history), [0, 4]);
            assert_eq!(history.elided(), 3);
        }
        assert_eq!(History::default().cap(), crate::route::DEFAULT_MAX_HISTORY);
        assert!(History::default().is_empty());
    }
}
