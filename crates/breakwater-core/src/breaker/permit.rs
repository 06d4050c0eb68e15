//! What admission hands out: a [`Permit`], or a [`Rejection`] that says why and until
//! when.

use std::fmt;

use super::Inner;
use crate::Time;
use crate::sync::Arc;

/// What [`Breaker::admit`](super::Breaker::admit) answers.
#[must_use]
#[derive(Debug)]
pub enum Admit {
    /// Go ahead; record the result with this permit.
    Admitted(Permit),
    /// Not now.
    Rejected(Rejection),
}

impl Admit {
    /// The permit, or the rejection.
    pub fn into_result(self) -> Result<Permit, Rejection> {
        match self {
            Admit::Admitted(permit) => Ok(permit),
            Admit::Rejected(rejection) => Err(rejection),
        }
    }

    /// Whether it was admitted.
    #[must_use]
    pub const fn is_admitted(&self) -> bool {
        matches!(self, Admit::Admitted(_))
    }
}

/// Why a breaker said no, and until when, where that is known.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Rejection {
    /// Why.
    pub reason: RejectReason,
    /// The earliest instant admission may succeed: the end of the open period or of
    /// the cooldown. `None` for HalfOpenFull (a slot may free any time) and Isolated.
    pub until: Option<Time>,
}

/// Why a breaker rejected a call.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RejectReason {
    /// It is open.
    Open,
    /// It is half-open and every probe slot is taken.
    HalfOpenFull,
    /// The key is cooling down after a Retry-After (or a manual cooldown).
    CoolingDown,
    /// It is isolated until reset.
    Isolated,
}

/// Proof of admission. Dropping it without `record` releases a half-open probe slot.
/// A closed-state permit holds no `Arc` (no refcount traffic on the hot path).
pub struct Permit {
    /// The breaker, for a probe (its drop frees the slot); `None` for a closed-state
    /// permit, and for a probe once recorded.
    pub(super) probe: Option<Arc<Inner>>,
    /// The closed period, or the probe's half-open generation.
    pub(super) id: u64,
}

impl Permit {
    /// Whether this is a half-open probe.
    #[must_use]
    pub const fn is_probe(&self) -> bool {
        self.probe.is_some()
    }
}

impl fmt::Debug for Permit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let field = if self.is_probe() {
            "probe_generation"
        } else {
            "period"
        };
        f.debug_struct("Permit").field(field, &self.id).finish()
    }
}

impl Drop for Permit {
    #[inline]
    fn drop(&mut self) {
        if let Some(inner) = self.probe.take() {
            release_probe(&inner, self.id);
        }
    }
}

#[cold]
fn release_probe(inner: &Inner, generation: u64) {
    inner.locked(|m| m.release(generation));
}
