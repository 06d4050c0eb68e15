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
    /// Every attempt, skip and wait, in order.
    pub history: History,
}

impl Finished {
    /// Whether a provider answered.
    #[must_use]
    pub fn is_success(&self) -> bool {
        matches!(self.resolution, Resolution::Success { .. })
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

/// A request's history; the first three entries (an attempt, a wait and a retry) are
/// stored inline, so a request that succeeds at once or after one retry allocates
/// nothing.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct History(SmallVec<[Entry; 3]>);

impl History {
    pub(crate) fn push(&mut self, entry: Entry) {
        self.0.push(entry);
    }

    /// The entries, oldest first.
    #[must_use]
    pub fn entries(&self) -> &[Entry] {
        &self.0
    }

    /// The attempts alone: `(step, attempt number, class)`.
    pub fn attempts(&self) -> impl Iterator<Item = (usize, u32, Class)> + '_ {
        self.0.iter().filter_map(|e| match e.event {
            EntryEvent::Attempt { attempt, class, .. } => Some((e.step, attempt, class)),
            _ => None,
        })
    }

    /// Whether nothing was recorded.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The number of entries.
    #[must_use]
    pub fn len(&self) -> usize {
        self.0.len()
    }
}
