//! What a plan hands back: [`Finished`], and the attempt history it carries.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::History;
use crate::cost::Cost;
use crate::{ClassKind, Fatal};

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
