//! The two words the lock-free paths read: the *gate* and the *blocked* word.
//!
//! # The gate
//!
//! `gate = period << 2 | tag`. The tag says what the fast paths may do:
//!
//! | tag | meaning | `admit` | `record` of a closed permit |
//! |---|---|---|---|
//! | [`ADMITTING`] | Closed, no cooldown | admitted without a lock | counted if `period` matches |
//! | [`COOLING`] | Closed, cooling down | slow path | counted if `period` matches |
//! | [`NOT_CLOSED`] | Open, HalfOpen or Isolated | slow path | ignored (stale) |
//!
//! `period` numbers the closed periods: it grows each time the breaker enters Closed
//! (or is reset), so a permit admitted before a trip cannot count against the closed
//! period that follows it. A closed breaker in its first period has a gate of 0.
//!
//! # The blocked word
//!
//! `blocked = reason << 62 | until` answers a rejection without the lock while
//! `now < until`: Open or CoolingDown with their instant, or Isolated with
//! [`FOREVER`]. It is 0 when there is no such answer (HalfOpen, or an instant too far
//! away to fit in 62 bits); the caller then takes the lock.
//!
//! # Orderings
//!
//! Both words are written only under the breaker's mutex, `blocked` first and then
//! `gate`, each with `Release`; readers load `gate` with `Acquire` and only then
//! `blocked` (`Acquire`). So a reader that sees a new gate also sees the blocked word
//! of that transition or a later one, never an older one; and a reader that sees a
//! new closed period also sees the statistics cleared before it was published (the
//! lock holder clears them before it stores the gate). A reader that sees the old gate
//! acts as if it ran just before the transition, which it may have. Nothing else is
//! published through these words, so stronger orderings would buy nothing.
//!
//! A breaker a registry made also stores its gate, with the same value and `Release`,
//! into a [`Mirror`] right after the gate itself, still under the lock; the registry's
//! look-up by key reads the mirror (`Acquire`) in place of the gate. A reader that sees
//! the mirror's new value has seen everything the gate's store published; one that
//! sees the old value acts as if it ran before the transition, as above.

use std::ops::Deref;

use super::{RejectReason, Rejection};
use crate::Time;
use crate::sync::Ordering::{Acquire, Release};
use crate::sync::{Arc, AtomicU64};

/// Tag: Closed and admitting; `admit` takes no lock.
pub(super) const ADMITTING: u64 = 0;
/// Tag: Closed but cooling down.
pub(super) const COOLING: u64 = 1;
/// Tag: Open, HalfOpen or Isolated.
pub(super) const NOT_CLOSED: u64 = 2;
const TAG_MASK: u64 = 0b11;

/// The gate word for a closed breaker in `period`, cooling down or not.
pub(super) const fn closed(period: u64, cooling: bool) -> u64 {
    (period << 2) | if cooling { COOLING } else { ADMITTING }
}

/// The period of an admitting gate: `Some` only when `admit` may skip the lock.
#[inline]
pub(super) const fn admitting(gate: u64) -> Option<u64> {
    if gate & TAG_MASK == ADMITTING {
        Some(gate >> 2)
    } else {
        None
    }
}

/// The period of a closed gate (admitting or cooling): `None` when not closed.
#[inline]
pub(super) const fn closed_period(gate: u64) -> Option<u64> {
    if gate & TAG_MASK == NOT_CLOSED {
        None
    } else {
        Some(gate >> 2)
    }
}

const REASON_SHIFT: u32 = 62;
const UNTIL_MASK: u64 = (1 << REASON_SHIFT) - 1;
/// The `until` an isolated breaker stores: later than any instant the lock-free path
/// answers for (past it, the locked path answers, with the same result).
pub(super) const FOREVER: u64 = UNTIL_MASK;

/// The blocked word for a rejection, or 0 when it cannot be answered lock-free.
pub(super) fn blocked(rejection: Option<Rejection>) -> u64 {
    let Some(rejection) = rejection else { return 0 };
    let (code, until) = match (rejection.reason, rejection.until) {
        (RejectReason::Isolated, _) => (3, FOREVER),
        (RejectReason::Open, Some(until)) => (1, until.as_nanos()),
        (RejectReason::CoolingDown, Some(until)) => (2, until.as_nanos()),
        _ => return 0,
    };
    if until > UNTIL_MASK {
        return 0;
    }
    (code << REASON_SHIFT) | until
}

/// The rejection a blocked word gives at `now`, if it still holds.
#[inline]
pub(super) fn rejection(blocked: u64, now: Time) -> Option<Rejection> {
    let until = blocked & UNTIL_MASK;
    if blocked == 0 || now.as_nanos() >= until {
        return None;
    }
    let (reason, until) = match blocked >> REASON_SHIFT {
        1 => (RejectReason::Open, Some(Time::from_nanos(until))),
        2 => (RejectReason::CoolingDown, Some(Time::from_nanos(until))),
        _ => (RejectReason::Isolated, None),
    };
    Some(Rejection { reason, until })
}

/// Gate words of several breakers on one cache line: a registry keeps a copy of each
/// of its breakers' gates in one ([`Mirror`]), so that a look-up by key reads a word
/// packed with other keys' words rather than a cache line of the breaker's own. With
/// thousands of keys the difference is whether the words a look-up reads stay in the
/// cache (see the registry's `Breakers`).
#[derive(Debug)]
#[repr(align(64))]
pub(crate) struct GateLine([AtomicU64; GateLine::WORDS]);

impl GateLine {
    /// Words per line (8 bytes each, 64 bytes in all).
    pub(crate) const WORDS: usize = 8;

    pub(crate) fn new() -> GateLine {
        GateLine(std::array::from_fn(|_| AtomicU64::new(closed(0, false))))
    }
}

/// A copy of one breaker's gate word, in a [`GateLine`]. Only the breaker writes it,
/// under its lock, right after the gate and with the same value and ordering, so that
/// once the lock is released the two are equal; a reader of the copy is a reader of
/// the gate a moment earlier (see the module docs' orderings).
#[derive(Clone, Debug)]
pub(crate) struct Mirror {
    line: Arc<GateLine>,
    index: usize,
}

impl Mirror {
    /// Word `index` (below [`GateLine::WORDS`]) of `line`; it must belong to no other
    /// breaker.
    pub(crate) fn new(line: Arc<GateLine>, index: usize) -> Mirror {
        Mirror { line, index }
    }

    /// The gate as last published.
    #[inline]
    pub(crate) fn load(&self) -> u64 {
        self.line.0[self.index].load(Acquire)
    }

    pub(super) fn store(&self, gate: u64) {
        self.line.0[self.index].store(gate, Release);
    }
}

/// Keeps a value on its own cache line, so that writes to it do not slow down readers
/// of its neighbours (the gate is read on every admit; the window index is written on
/// every record).
#[derive(Debug, Default)]
#[repr(align(128))]
pub(super) struct Padded<T>(pub(super) T);

impl<T> Deref for Padded<T> {
    type Target = T;

    fn deref(&self) -> &T {
        &self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gate_round_trips() {
        assert_eq!(closed(0, false), 0);
        assert_eq!(admitting(closed(7, false)), Some(7));
        assert_eq!(admitting(closed(7, true)), None);
        assert_eq!(closed_period(closed(7, true)), Some(7));
        assert_eq!(closed_period(NOT_CLOSED), None);
        assert_eq!(admitting(NOT_CLOSED), None);
    }

    #[test]
    fn blocked_answers_until_its_instant() {
        let open = Rejection {
            reason: RejectReason::Open,
            until: Some(Time::from_secs(5)),
        };
        let word = blocked(Some(open));
        assert_eq!(rejection(word, Time::from_secs(4)), Some(open));
        assert_eq!(rejection(word, Time::from_secs(5)), None);

        let cooling = Rejection {
            reason: RejectReason::CoolingDown,
            until: Some(Time::from_millis(1)),
        };
        assert_eq!(rejection(blocked(Some(cooling)), Time::ZERO), Some(cooling));

        let isolated = Rejection {
            reason: RejectReason::Isolated,
            until: None,
        };
        let word = blocked(Some(isolated));
        assert_eq!(rejection(word, Time::from_secs(1 << 30)), Some(isolated));
        assert_eq!(rejection(word, Time::MAX), None);
    }

    #[test]
    fn unanswerable_rejections_take_the_lock() {
        assert_eq!(blocked(None), 0);
        let full = Rejection {
            reason: RejectReason::HalfOpenFull,
            until: None,
        };
        assert_eq!(blocked(Some(full)), 0);
        let far = Rejection {
            reason: RejectReason::Open,
            until: Some(Time::MAX),
        };
        assert_eq!(blocked(Some(far)), 0);
        assert_eq!(rejection(0, Time::ZERO), None);
    }
}
