//! A request's [`History`]: what happened, entry by entry, kept compact.
//!
//! Every request in flight holds its plan, and the plan holds its history, so the
//! history's width is paid once per request in flight: by the adapter for each call
//! under way, and by the simulator for each of the tens of thousands of requests a
//! storm keeps out at once, where the reply's first read of its request is among the
//! run's dearest costs (the slot is out of cache by then). An [`Entry`] is 80 bytes,
//! because its parts are wide: a [`Class`] is 24 (an `Option<Duration>` and a tag), a
//! `Duration` 16, the step a `usize`. The history stores each entry as a [`Stored`] of
//! 56 bytes instead (its durations and instants as integers, its class as a one-byte
//! code) and rebuilds the [`Entry`] when read: [`History::entries`] yields entries by
//! value. Decoding gives back exactly the entry encoded (a property test covers every
//! kind of entry, durations up to `Duration::MAX`).

use std::fmt;
use std::time::Duration;

use smallvec::SmallVec;

use crate::breaker::{RejectReason, Rejection};
use crate::budget::Refused;
use crate::cost::{Cost, Usage};
use crate::{Class, Fatal, Time};

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
/// Entries are stored packed, 56 bytes each instead of an [`Entry`]'s 80, since every
/// request in flight holds its history; they are read back by value:
/// [`entries`](History::entries) is an iterator of [`Entry`], from either end.
///
/// [`PlanConfig::max_history`]: crate::route::PlanConfig::max_history
#[derive(PartialEq)]
pub struct History {
    entries: SmallVec<[Stored; 3]>,
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
    /// A copy of the entries as one block (they are `Copy`): the derived clone pushes
    /// them one by one.
    #[inline]
    fn clone(&self) -> History {
        History {
            entries: SmallVec::from_slice(&self.entries),
            elided: self.elided,
            cap: self.cap,
        }
    }
}

impl fmt::Debug for History {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("History")
            .field("entries", &DebugEntries(self))
            .field("elided", &self.elided)
            .field("cap", &self.cap)
            .finish()
    }
}

/// The entries of a history, decoded, for its `Debug`.
struct DebugEntries<'h>(&'h History);

impl fmt::Debug for DebugEntries<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list().entries(self.0.entries()).finish()
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
    ///
    /// `entry.step` must be a step of a validated route, so below
    /// [`MAX_STEPS`](crate::route::MAX_STEPS).
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
        self.entries.push(Stored::new(entry));
    }

    /// The entries kept, oldest first: all of them unless [`elided`](Self::elided)
    /// is above zero. Each is decoded as it is read; the iterator runs from either end
    /// and knows its length.
    #[must_use]
    pub fn entries(&self) -> Entries<'_> {
        Entries(self.entries.iter())
    }

    /// The attempts kept: `(step, attempt number, class)`. The attempt numbers of the
    /// elided ones are missing from the sequence.
    pub fn attempts(&self) -> impl Iterator<Item = (usize, u32, Class)> + '_ {
        self.entries().filter_map(|e| match e.event {
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

/// The entries of a [`History`], oldest first, decoded as they are read
/// ([`History::entries`]).
#[derive(Clone, Debug)]
pub struct Entries<'h>(std::slice::Iter<'h, Stored>);

impl Iterator for Entries<'_> {
    type Item = Entry;

    #[inline]
    fn next(&mut self) -> Option<Entry> {
        self.0.next().map(Stored::entry)
    }

    #[inline]
    fn size_hint(&self) -> (usize, Option<usize>) {
        self.0.size_hint()
    }

    #[inline]
    fn nth(&mut self, n: usize) -> Option<Entry> {
        self.0.nth(n).map(Stored::entry)
    }

    #[inline]
    fn last(mut self) -> Option<Entry> {
        self.next_back()
    }
}

impl DoubleEndedIterator for Entries<'_> {
    #[inline]
    fn next_back(&mut self) -> Option<Entry> {
        self.0.next_back().map(Stored::entry)
    }
}

impl ExactSizeIterator for Entries<'_> {}

impl std::iter::FusedIterator for Entries<'_> {}

/// An [`Entry`] as a [`History`] stores it: 56 bytes instead of 80.
///
/// Which fields mean something depends on `what`; the others are zero, so two stored
/// entries are equal exactly when the entries they hold are.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Stored {
    at: Time,
    /// `Attempt`: the latency in nanoseconds (a difference of two `Time`s, so it fits
    /// a `u64`). `Breaker` and `Budget`: the `until` instant's, when there is one.
    word: u64,
    /// A duration's whole seconds, with `nanos` its fraction: `Attempt`'s Retry-After
    /// (none when `nanos` is [`NO_SPAN`]), `Waited`'s and `WaitBeyondDeadline`'s wait.
    secs: u64,
    nanos: u32,
    cost: Cost,
    input_tokens: u32,
    output_tokens: u32,
    attempt: u32,
    /// Below [`MAX_STEPS`](crate::route::MAX_STEPS): route validation refuses longer routes.
    step: u32,
    what: What,
}

/// `Stored::nanos` when an attempt's class carries no Retry-After (a duration's
/// fraction is always below 10⁹).
const NO_SPAN: u32 = u32::MAX;

/// The kind of a stored entry, with the small parts of its payload.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum What {
    Attempt(Code),
    Waited { retry_after: bool },
    Breaker { reason: RejectReason, until: bool },
    Budget { until: bool },
    CostCeiling,
    WaitBeyondDeadline,
    NoTimeLeft,
}

/// A [`Class`] without its Retry-After (stored as the entry's duration).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Code {
    Success,
    Retriable,
    RateLimited,
    Overloaded,
    Ambiguous,
    NonRetriable(Fatal),
    InvalidOutput,
}

impl Stored {
    #[inline]
    fn new(entry: Entry) -> Stored {
        let mut stored = Stored {
            at: entry.at,
            word: 0,
            secs: 0,
            nanos: 0,
            cost: Cost::ZERO,
            input_tokens: 0,
            output_tokens: 0,
            attempt: 0,
            // Validated routes have at most `MAX_STEPS` (65,536) steps.
            step: u32::try_from(entry.step).unwrap_or(u32::MAX),
            what: What::NoTimeLeft,
        };
        stored.what = match entry.event {
            EntryEvent::Attempt {
                attempt,
                class,
                latency,
                usage,
                cost,
            } => {
                stored.attempt = attempt;
                stored.word = crate::time::nanos(latency);
                stored.input_tokens = usage.input_tokens;
                stored.output_tokens = usage.output_tokens;
                stored.cost = cost;
                let (code, retry_after) = match class {
                    Class::Success => (Code::Success, None),
                    Class::Retriable => (Code::Retriable, None),
                    Class::RateLimited { retry_after } => (Code::RateLimited, retry_after),
                    Class::Overloaded { retry_after } => (Code::Overloaded, retry_after),
                    Class::Ambiguous => (Code::Ambiguous, None),
                    Class::NonRetriable(fatal) => (Code::NonRetriable(fatal), None),
                    Class::InvalidOutput => (Code::InvalidOutput, None),
                };
                match retry_after {
                    Some(span) => stored.set_span(span),
                    None => stored.nanos = NO_SPAN,
                }
                What::Attempt(code)
            }
            EntryEvent::Waited { wait, retry_after } => {
                stored.set_span(wait);
                What::Waited { retry_after }
            }
            EntryEvent::Skipped(Skip::Breaker(Rejection { reason, until })) => What::Breaker {
                reason,
                until: stored.set_until(until),
            },
            EntryEvent::Skipped(Skip::Budget(Refused { until })) => What::Budget {
                until: stored.set_until(until),
            },
            EntryEvent::Skipped(Skip::CostCeiling) => What::CostCeiling,
            EntryEvent::Skipped(Skip::WaitBeyondDeadline { wait }) => {
                stored.set_span(wait);
                What::WaitBeyondDeadline
            }
            EntryEvent::Skipped(Skip::NoTimeLeft) => What::NoTimeLeft,
        };
        stored
    }

    #[inline]
    fn set_span(&mut self, span: Duration) {
        self.secs = span.as_secs();
        self.nanos = span.subsec_nanos();
    }

    /// Stores `until` in `word`; returns whether there is one.
    #[inline]
    fn set_until(&mut self, until: Option<Time>) -> bool {
        self.word = until.map_or(0, Time::as_nanos);
        until.is_some()
    }

    #[inline]
    fn span(&self) -> Duration {
        Duration::new(self.secs, self.nanos)
    }

    #[inline]
    fn until(&self, set: bool) -> Option<Time> {
        set.then(|| Time::from_nanos(self.word))
    }

    #[inline]
    fn entry(&self) -> Entry {
        let event = match self.what {
            What::Attempt(code) => {
                let retry_after = (self.nanos != NO_SPAN).then(|| self.span());
                EntryEvent::Attempt {
                    attempt: self.attempt,
                    class: match code {
                        Code::Success => Class::Success,
                        Code::Retriable => Class::Retriable,
                        Code::RateLimited => Class::RateLimited { retry_after },
                        Code::Overloaded => Class::Overloaded { retry_after },
                        Code::Ambiguous => Class::Ambiguous,
                        Code::NonRetriable(fatal) => Class::NonRetriable(fatal),
                        Code::InvalidOutput => Class::InvalidOutput,
                    },
                    latency: Duration::from_nanos(self.word),
                    usage: Usage::new(self.input_tokens, self.output_tokens),
                    cost: self.cost,
                }
            }
            What::Waited { retry_after } => EntryEvent::Waited {
                wait: self.span(),
                retry_after,
            },
            What::Breaker { reason, until } => EntryEvent::Skipped(Skip::Breaker(Rejection {
                reason,
                until: self.until(until),
            })),
            What::Budget { until } => EntryEvent::Skipped(Skip::Budget(Refused {
                until: self.until(until),
            })),
            What::CostCeiling => EntryEvent::Skipped(Skip::CostCeiling),
            What::WaitBeyondDeadline => {
                EntryEvent::Skipped(Skip::WaitBeyondDeadline { wait: self.span() })
            }
            What::NoTimeLeft => EntryEvent::Skipped(Skip::NoTimeLeft),
        };
        Entry {
            step: self.step as usize,
            at: self.at,
            event,
        }
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

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

    #[test]
    fn an_entry_is_stored_in_56_bytes() {
        assert_eq!(std::mem::size_of::<Stored>(), 56);
        assert_eq!(std::mem::size_of::<Entry>(), 80);
    }

    #[test]
    fn the_entries_read_from_either_end_and_know_their_length() {
        let mut history = History::with_cap(8);
        for n in 0..4 {
            history.push(wait(n));
        }
        let mut entries = history.entries();
        assert_eq!(entries.len(), 4);
        assert_eq!(entries.next(), Some(wait(0)));
        assert_eq!(entries.next_back(), Some(wait(3)));
        assert_eq!(entries.len(), 2);
        assert_eq!(history.entries().last(), Some(wait(3)));
        assert_eq!(history.entries().nth(2), Some(wait(2)));
        assert_eq!(
            history.entries().rev().map(|e| e.at).next(),
            Some(wait(3).at)
        );
        let debug = format!("{history:?}");
        assert!(
            debug.contains("Waited") && debug.contains("elided: 0"),
            "{debug}"
        );
    }

    fn any_span() -> impl Strategy<Value = Duration> {
        prop_oneof![
            (any::<u64>(), 0..1_000_000_000u32).prop_map(|(s, n)| Duration::new(s, n)),
            Just(Duration::ZERO),
            Just(Duration::MAX),
        ]
    }

    fn any_time() -> impl Strategy<Value = Time> {
        prop_oneof![any::<u64>().prop_map(Time::from_nanos), Just(Time::MAX)]
    }

    fn any_fatal() -> impl Strategy<Value = Fatal> {
        prop_oneof![
            Just(Fatal::InvalidRequest),
            Just(Fatal::Unauthorized),
            Just(Fatal::NotFound),
            Just(Fatal::TooLarge),
            Just(Fatal::QuotaExhausted),
            Just(Fatal::ContextWindowExceeded),
            Just(Fatal::ContentPolicy),
            Just(Fatal::Other),
        ]
    }

    fn any_class() -> impl Strategy<Value = Class> {
        prop_oneof![
            Just(Class::Success),
            Just(Class::Retriable),
            proptest::option::of(any_span())
                .prop_map(|retry_after| Class::RateLimited { retry_after }),
            proptest::option::of(any_span())
                .prop_map(|retry_after| Class::Overloaded { retry_after }),
            Just(Class::Ambiguous),
            any_fatal().prop_map(Class::NonRetriable),
            Just(Class::InvalidOutput),
        ]
    }

    fn any_skip() -> impl Strategy<Value = Skip> {
        let reason = prop_oneof![
            Just(RejectReason::Open),
            Just(RejectReason::HalfOpenFull),
            Just(RejectReason::CoolingDown),
            Just(RejectReason::Isolated),
        ];
        prop_oneof![
            (reason, proptest::option::of(any_time()))
                .prop_map(|(reason, until)| Skip::Breaker(Rejection { reason, until })),
            proptest::option::of(any_time()).prop_map(|until| Skip::Budget(Refused { until })),
            Just(Skip::CostCeiling),
            any_span().prop_map(|wait| Skip::WaitBeyondDeadline { wait }),
            Just(Skip::NoTimeLeft),
        ]
    }

    fn any_event() -> impl Strategy<Value = EntryEvent> {
        prop_oneof![
            (
                any::<u32>(),
                any_class(),
                any::<u64>(),
                any::<(u32, u32)>(),
                any::<u64>()
            )
                .prop_map(|(attempt, class, latency, (input, output), cost)| {
                    EntryEvent::Attempt {
                        attempt,
                        class,
                        latency: Duration::from_nanos(latency),
                        usage: Usage::new(input, output),
                        cost: Cost::from_nanodollars(cost),
                    }
                }),
            (any_span(), any::<bool>())
                .prop_map(|(wait, retry_after)| EntryEvent::Waited { wait, retry_after }),
            any_skip().prop_map(EntryEvent::Skipped),
        ]
    }

    fn any_entry() -> impl Strategy<Value = Entry> {
        (0..crate::route::MAX_STEPS, any_time(), any_event()).prop_map(|(step, at, event)| Entry {
            step,
            at,
            event,
        })
    }

    proptest! {
        /// Every entry a plan can record reads back exactly as it was pushed, and two
        /// stored entries are equal exactly when their entries are.
        #[test]
        fn an_entry_reads_back_as_pushed(a in any_entry(), b in any_entry()) {
            let mut history = History::with_cap(8);
            history.push(a);
            history.push(b);
            prop_assert_eq!(history.entries().collect::<Vec<_>>(), vec![a, b]);
            prop_assert_eq!(Stored::new(a) == Stored::new(b), a == b);
        }
    }
}
