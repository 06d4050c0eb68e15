//! What a call through the [layer](super::BreakwaterLayer) or the
//! [middleware](crate::middleware) returns when it returns no response.

use std::fmt;

use breakwater_core::breaker::{RejectReason, Rejection};
use breakwater_core::plan::{EntryEvent, FailReason, Finished, History, Resolution, Skip};
use breakwater_core::{Key, Outcome, TimeoutPhase};

use crate::clock;

/// Why a call gave no response. `E` is the inner service's error.
///
/// Which variant, by how the plan ended:
///
/// | the plan | the caller gets |
/// |---|---|
/// | success | `Ok(response)` |
/// | a non-retriable outcome (a 400, a 404, …) | `Ok(response)`: the server's answer, unchanged; [`Inner`](Self::Inner) if it was an error |
/// | no attempt could be sent: the key's breaker is open, half-open and full, isolated or cooling down | [`Rejected`](Self::Rejected) |
/// | attempts used up, the budget refused a retry, or the breaker tripped meanwhile | [`Exhausted`](Self::Exhausted) |
/// | the deadline left no time for a (further) attempt, or for the wait before it (a backoff or a Retry-After longer than the time left: the call ends at once rather than wait in vain) | [`DeadlineExceeded`](Self::DeadlineExceeded) |
///
/// Every variant but `Inner` carries the plan's [`History`]: each attempt with its
/// class and latency, each wait and why, each skip and why.
#[derive(Debug)]
#[non_exhaustive]
pub enum BreakwaterError<E> {
    /// No attempt was sent: the key's breaker would not admit one. The inner service
    /// was not called.
    Rejected {
        /// The breaker's key.
        key: Key,
        /// Open, half-open and full, isolated, or cooling down after a Retry-After.
        reason: RejectReason,
        /// When admission may succeed again, where the breaker knows (open or
        /// cooling down).
        until: Option<tokio::time::Instant>,
        /// The skips (boxed: a history holds its first entries inline).
        history: Box<History>,
    },
    /// Attempts were sent and none succeeded, and the plan allowed no further one.
    Exhausted {
        /// The breaker's key.
        key: Key,
        /// What the last attempt returned (a status with its hints, a timeout, …);
        /// `None` if no attempt was sent.
        last: Option<Outcome>,
        /// The inner service's error, if the last attempt ended in one.
        error: Option<E>,
        /// Attempts sent.
        attempts: u32,
        /// Every attempt, wait and skip.
        history: Box<History>,
    },
    /// The call's deadline ran out before an attempt succeeded, or left too little
    /// time for the next one (or for the wait before it).
    DeadlineExceeded {
        /// The breaker's key.
        key: Key,
        /// What the last attempt returned, if one was sent.
        last: Option<Outcome>,
        /// The inner service's error, if the last attempt ended in one.
        error: Option<E>,
        /// Attempts sent.
        attempts: u32,
        /// Every attempt, wait and skip.
        history: Box<History>,
    },
    /// The inner service failed (in `poll_ready`, or in a way the classifier calls
    /// non-retriable): its error, unchanged.
    Inner(E),
}

impl<E> BreakwaterError<E> {
    /// The plan's history, for every variant but [`Inner`](Self::Inner).
    #[must_use]
    pub fn history(&self) -> Option<&History> {
        match self {
            BreakwaterError::Rejected { history, .. }
            | BreakwaterError::Exhausted { history, .. }
            | BreakwaterError::DeadlineExceeded { history, .. } => Some(history.as_ref()),
            BreakwaterError::Inner(_) => None,
        }
    }

    /// Attempts sent (0 for [`Rejected`](Self::Rejected); 1 for
    /// [`Inner`](Self::Inner), which the layer cannot count).
    #[must_use]
    pub fn attempts(&self) -> u32 {
        match self {
            BreakwaterError::Rejected { .. } => 0,
            BreakwaterError::Exhausted { attempts, .. }
            | BreakwaterError::DeadlineExceeded { attempts, .. } => *attempts,
            BreakwaterError::Inner(_) => 1,
        }
    }
}

impl<E: fmt::Display> fmt::Display for BreakwaterError<E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (what, key, last, error, attempts) = match self {
            BreakwaterError::Rejected { key, reason, .. } => {
                return write!(
                    f,
                    "{key}: circuit breaker {}; no attempt sent",
                    reject_name(*reason)
                );
            }
            BreakwaterError::Inner(error) => return error.fmt(f),
            BreakwaterError::Exhausted {
                key,
                last,
                error,
                attempts,
                ..
            } => ("no success", key, last, error, attempts),
            BreakwaterError::DeadlineExceeded {
                key,
                last,
                error,
                attempts,
                ..
            } => ("deadline exceeded", key, last, error, attempts),
        };
        write!(f, "{key}: {what} after {attempts} attempts")?;
        if let Some(last) = last {
            write!(f, " (last: {}", describe(last))?;
            if let Some(error) = error {
                write!(f, ": {error}")?;
            }
            f.write_str(")")?;
        }
        Ok(())
    }
}

/// For any inner error that can be shown, so that a `BreakwaterError` of a
/// `Box<dyn Error + Send + Sync>` (tower's `BoxError`) is an error too and converts
/// into one. The inner error is in the message and in the variant's `error` field
/// rather than in `source()`, which a generic `E` cannot provide.
impl<E: fmt::Debug + fmt::Display> std::error::Error for BreakwaterError<E> {}

/// How a finished plan becomes the caller's result, given the last attempt's outcome
/// and result (see [`BreakwaterError`]'s table).
pub(crate) fn conclude<T, E>(
    key: &Key,
    finished: Finished,
    last_outcome: Option<Outcome>,
    last: Option<Result<T, E>>,
) -> Result<T, BreakwaterError<E>> {
    let Finished {
        resolution,
        attempts,
        history,
        ..
    } = finished;
    let answered = matches!(
        resolution,
        Resolution::Success { .. }
            | Resolution::Failed {
                reason: FailReason::NonRetriable(_)
            }
    );
    if answered && let Some(last) = last {
        return last.map_err(BreakwaterError::Inner);
    }
    let error = last.and_then(Result::err);
    let key = key.clone();
    let history = Box::new(history);
    if out_of_time(&resolution, &history) {
        return Err(BreakwaterError::DeadlineExceeded {
            key,
            last: last_outcome,
            error,
            attempts,
            history,
        });
    }
    if attempts == 0
        && let Some(rejection) = breaker_rejection(&history)
    {
        return Err(BreakwaterError::Rejected {
            key,
            reason: rejection.reason,
            until: rejection.until.map(clock::instant),
            history,
        });
    }
    Err(BreakwaterError::Exhausted {
        key,
        last: last_outcome,
        error,
        attempts,
        history,
    })
}

/// Whether the deadline ended the call: the plan says so, or its last word was that
/// no wait or attempt fitted in the time left (a Retry-After or backoff past the
/// deadline; too little time for a useful attempt).
fn out_of_time(resolution: &Resolution, history: &History) -> bool {
    matches!(
        resolution,
        Resolution::Failed {
            reason: FailReason::DeadlineExceeded { .. }
        }
    ) || matches!(
        history.entries().last().map(|e| e.event),
        Some(EntryEvent::Skipped(
            Skip::WaitBeyondDeadline { .. } | Skip::NoTimeLeft
        ))
    )
}

/// The last breaker rejection in `history`.
fn breaker_rejection(history: &History) -> Option<Rejection> {
    history.entries().rev().find_map(|e| match e.event {
        EntryEvent::Skipped(Skip::Breaker(rejection)) => Some(rejection),
        _ => None,
    })
}

fn reject_name(reason: RejectReason) -> &'static str {
    match reason {
        RejectReason::Open => "open",
        RejectReason::HalfOpenFull => "half-open with every probe out",
        RejectReason::CoolingDown => "cooling down after a Retry-After",
        RejectReason::Isolated => "isolated",
    }
}

/// A few words for an outcome, for messages.
fn describe(outcome: &Outcome) -> String {
    match outcome {
        Outcome::Success => "success".to_owned(),
        Outcome::Status { status, .. } => format!("status {status}"),
        Outcome::ConnectFailed => "connect failed".to_owned(),
        Outcome::TimedOut {
            phase: TimeoutPhase::BeforeHeaders,
        } => "timed out".to_owned(),
        Outcome::TimedOut {
            phase: TimeoutPhase::AfterHeaders,
        } => "timed out reading the body".to_owned(),
        Outcome::Reset => "connection reset".to_owned(),
        Outcome::MalformedBody => "malformed body".to_owned(),
        Outcome::InvalidOutput => "output failed validation".to_owned(),
        Outcome::StreamBroken { .. } => "stream broken".to_owned(),
    }
}
