//! A circuit breaker per provider/model key: stop sending to a key that is failing,
//! probe it after a while, resume when it answers again.
//!
//! ```text
//!            failures trip it                  open period ends (at the next call)
//!  Closed ─────────────────────▶ Open{until} ─────────────────────▶ HalfOpen
//!     ▲                            ▲                                   │ │
//!     │                            └───────── a probe fails ───────────┘ │
//!     └─────────────────── close_after probes succeed ───────────────────┘
//!  force_open: any → Open · isolate: any → Isolated · reset: any → Closed
//! ```
//!
//! # Use
//!
//! [`Breaker::admit`] before each attempt; with the [`Permit`] it gives, send the
//! request, then [`Breaker::record`] its [`Class`] and latency. Dropping a permit
//! abandons the attempt: a probe's slot is freed, a closed-state permit counts nothing.
//! [`Breaker::check`] asks without taking a slot (to skip a step whose breaker is
//! open). Time is always passed in; the breaker never reads a clock, and its only
//! randomness (the jitter of open durations) comes from its own seeded ChaCha stream.
//! Transitions are queued as [`BreakerEvent`]s for [`Breaker::poll_event`].
//!
//! # Counting
//!
//! A record's class is a *failure* if it is in [`BreakerConfig::failures`]; otherwise
//! `Success` and `NonRetriable` count as *successes* (the provider answered: a 400 is
//! the caller's fault) and anything else (by default `RateLimited`) counts as neither.
//! A call is *slow* if its latency is at least `slow_call_ms`. In the closed state a
//! failure adds to the consecutive-failure count and a success clears it; both go into
//! the window with their slow flag. After a record that adds a failure or a slow call,
//! the breaker trips on, in this order: `consecutive_failures` in a row, the window's
//! failure rate, its slow-call rate (both only once it holds `min_calls` calls).
//!
//! Only records of the current closed period count: a permit admitted before a trip
//! (or a reset) that is recorded after it is ignored, so slow calls in flight during
//! an outage cannot re-trip the breaker the moment it closes.
//!
//! # Open, half-open, cooldown
//!
//! The n-th trip in a row opens for `open.delay(n - 1, previous)`; closing starts the
//! count over. Once the open period has passed, the next call moves the breaker to
//! HalfOpen, which admits `half_open_probes` probes in total, however many threads
//! race for them. `close_after` successes close it; one failure (or, when slow calls
//! are judged, one slow success) re-opens it for the next, longer, duration. A probe
//! that is dropped, or recorded with a class that counts as neither, frees its slot.
//! A permit of an earlier half-open period frees and fills nothing.
//!
//! A `Retry-After` hint in a record (`RateLimited` or `Overloaded` with `retry_after`)
//! and [`Breaker::cool_down`] set a cooldown: no admission before its instant,
//! whatever the state, without counting a failure. It only ever extends, and a reset
//! keeps it (it is the provider's word). A rejection names the blocker that lasts
//! longest: `Open` until its end, or `CoolingDown` if the cooldown outlasts it.
//!
//! # Sharing and speed
//!
//! [`Breaker`] is a cheap handle (`Clone + Send + Sync`, an `Arc` inside). The closed
//! state's admit and record take no lock and do not allocate:
//!
//! - `admit` is one `Acquire` load of the *gate* word (see `gate.rs`): when it says
//!   Closed and not cooling down, the permit just carries the closed period (no `Arc`,
//!   no reference counting).
//! - `record` of a fast success first asks whether it would change anything: when
//!   no failure in a row is counted and the window is settled (a full count window
//!   holding no failure or slow call), it would not, in any period, so it returns
//!   after those loads (three for the default window, one with `window: None`) without
//!   even checking the gate. Otherwise it loads the gate to check the period, clears
//!   the consecutive-failure counter only if it is not already zero, and moves the
//!   window (count window: a `fetch_add` on the call index and, only if the slot's
//!   flags change, a swap and counter adjustments; time window: the bucket for `now`,
//!   reset by CAS when stale).
//! - Failures and slow calls also compute the rates; a trip takes the lock.
//!
//! Everything else (Open, HalfOpen, Isolated, a cooldown, manual operations) takes a
//! `parking_lot` mutex around a plain `&mut self` state machine (`transitions.rs`);
//! each transition republishes the gate under the lock, so the fast path sees it.
//! Rejections while Open, cooling down or isolated are answered from a second word
//! without the lock. The orderings, and the small inaccuracies the lock-free window
//! accepts under races, are documented in `gate.rs` and `window.rs`. In short: a
//! record that passed the period check just before a transition may still land in
//! the next period's counters, and a failure racing a success may be lost from the
//! consecutive count. Such errors are bounded by the records in flight at that
//! instant, and every trip is re-checked under the lock (its closed period must still
//! be current), so racing records trip a breaker once, never twice.
//!
//! The atomics, the mutex and the `Arc` come from the crate's `sync` module, which
//! `--cfg loom` swaps for loom's model-checked versions; `tests/loom.rs` runs the
//! races above, and the half-open probe bound, under every interleaving.

mod config;
pub mod fleet;
mod gate;
mod off_or;
mod permit;
mod state;
mod transitions;
mod window;

#[cfg(test)]
mod tests;

use std::fmt;
use std::time::Duration;

pub use config::{BreakerConfig, BreakerError, Window};
pub use fleet::{FleetChange, FleetView};
pub use permit::{Admit, Permit, RejectReason, Rejection};
pub use state::{BreakerEvent, Cause, State, StateKind};

use crate::class::{Class, ClassKind};
use crate::sync::Ordering::{Acquire, Relaxed, Release};
use crate::sync::{Arc, AtomicU64, Mutex};
use crate::time::Time;
use gate::Padded;
pub(crate) use gate::{GateLine, Mirror};
use transitions::{Machine, ProbeResult, Ticket};
use window::{Stats, Totals};

/// A circuit breaker shared by every request to one key: see the [module docs](self).
#[derive(Clone)]
pub struct Breaker {
    inner: Arc<Inner>,
}

impl Breaker {
    /// How many events the queue holds before it drops the oldest.
    pub const EVENT_CAPACITY: usize = 64;

    /// A closed breaker. `seed` seeds the ChaCha stream that jitters its open
    /// durations. Never panics: validate the config first with
    /// [`BreakerConfig::validate`]; an invalid one is clamped into something that runs.
    #[must_use]
    pub fn new(config: BreakerConfig, seed: u64) -> Breaker {
        Breaker::build(config, seed, None)
    }

    /// A closed breaker that also publishes its gate word to `mirror` (the registry's:
    /// see [`Breaker::admit_from`]).
    pub(crate) fn mirrored(config: BreakerConfig, seed: u64, mirror: Mirror) -> Breaker {
        Breaker::build(config, seed, Some(mirror))
    }

    fn build(config: BreakerConfig, seed: u64, mirror: Option<Mirror>) -> Breaker {
        let gate = gate::closed(0, false);
        if let Some(mirror) = &mirror {
            mirror.store(gate);
        }
        Breaker {
            inner: Arc::new(Inner {
                gate: AtomicU64::new(gate),
                blocked: AtomicU64::new(0),
                consecutive: AtomicU64::new(0),
                mirror,
                rules: Rules::new(&config),
                window: config.window.map(Stats::new),
                machine: Padded(Mutex::new(Machine::new(
                    &config,
                    seed,
                    Breaker::EVENT_CAPACITY,
                ))),
                config,
            }),
        }
    }

    /// The settings it was built with.
    #[must_use]
    pub fn config(&self) -> &BreakerConfig {
        &self.inner.config
    }

    /// Admission. Open past its `until` moves to HalfOpen here (no separate tick
    /// needed); in HalfOpen this takes a probe slot.
    #[inline]
    pub fn admit(&self, now: Time) -> Admit {
        self.admit_from(self.inner.gate.load(Acquire), now)
    }

    /// [`admit`](Self::admit), given the gate word as read from this breaker's
    /// [`Mirror`] (or its own gate).
    #[inline]
    pub(crate) fn admit_from(&self, gate: u64, now: Time) -> Admit {
        match gate::admitting(gate) {
            Some(period) => Admit::Admitted(Permit {
                probe: None,
                id: period,
            }),
            None => self.admit_slow(now),
        }
    }

    #[cold]
    fn admit_slow(&self, now: Time) -> Admit {
        if let Some(rejection) = self.inner.lock_free_rejection(now) {
            return Admit::Rejected(rejection);
        }
        Admit::Admitted(match self.inner.locked(|m| m.admit(now)) {
            Ok(Ticket::Closed { period }) => Permit {
                probe: None,
                id: period,
            },
            Ok(Ticket::Probe { generation }) => Permit {
                probe: Some(Arc::clone(&self.inner)),
                id: generation,
            },
            Err(rejection) => return Admit::Rejected(rejection),
        })
    }

    /// Whether [`admit`](Self::admit) would succeed, without taking a probe slot
    /// (for skipping steps).
    pub fn check(&self, now: Time) -> Result<(), Rejection> {
        if gate::admitting(self.inner.gate.load(Acquire)).is_some() {
            return Ok(());
        }
        if let Some(rejection) = self.inner.lock_free_rejection(now) {
            return Err(rejection);
        }
        self.inner.locked(|m| m.check(now).map(drop))
    }

    /// Records the attempt's result: `class` decides failure (see the
    /// [module docs](self#counting)), `latency` slowness. A `retry_after` in the class
    /// (`RateLimited`, `Overloaded`) cools the key down until `now + retry_after`; a
    /// rate limit is not a failure. A permit from another breaker is ignored (a probe
    /// one is released on its own breaker).
    #[inline]
    pub fn record(&self, now: Time, permit: Permit, class: &Class, latency: Duration) {
        if let Some(wait) = class.retry_after() {
            self.cool_down(now, now + wait);
        }
        let rules = &self.inner.rules;
        let counted = rules.counted[class.kind() as usize];
        let slow = latency >= rules.slow_call;
        if permit.probe.is_some() {
            self.record_probe(now, permit, counted, slow);
        } else {
            let period = permit.id;
            // A closed-state permit holds nothing to release: forgetting it drops
            // nothing and saves the call to its drop glue on every record.
            std::mem::forget(permit);
            if let Some(failure) = counted {
                self.record_closed(now, period, failure, slow);
            }
        }
    }

    #[inline]
    fn record_closed(&self, now: Time, period: u64, failure: bool, slow: bool) {
        let inner = &*self.inner;
        // A fast success with nothing to clear (no failure in a row, a settled window)
        // changes nothing in any period: it needs no gate check either.
        if !failure && !slow && inner.quiet() {
            return;
        }
        if gate::closed_period(inner.gate.load(Acquire)) != Some(period) {
            return;
        }
        let rules = &inner.rules;
        let mut cause = None;
        if let Some(limit) = rules.consecutive {
            // Relaxed, and a success's load-then-store may erase a failure that races
            // it; that run of failures was broken by the success anyway.
            if failure {
                if inner.consecutive.fetch_add(1, Relaxed).wrapping_add(1) >= limit {
                    cause = Some(Cause::ConsecutiveFailures);
                }
            } else if inner.consecutive.load(Relaxed) != 0 {
                // Load first: a store to a counter that is already zero would still
                // take the cache line away from every other core.
                inner.consecutive.store(0, Relaxed);
            }
        }
        if let Some(window) = &inner.window {
            window.push(now, failure, slow);
            if cause.is_none() && (failure || slow) {
                cause = rules.rate_cause(window.totals(now));
            }
        }
        if let Some(cause) = cause {
            inner.locked(|m| m.trip_closed(now, period, cause));
        }
    }

    #[cold]
    fn record_probe(&self, now: Time, mut permit: Permit, counted: Option<bool>, slow: bool) {
        let generation = permit.id;
        match &permit.probe {
            Some(inner) if Arc::ptr_eq(inner, &self.inner) => permit.probe = None,
            // Dropping the permit releases the slot on its own breaker.
            _ => return,
        }
        let result = match counted {
            Some(true) => ProbeResult::Failure,
            Some(false) if slow && self.inner.rules.slow_call_rate.is_some() => {
                ProbeResult::Failure
            }
            Some(false) => ProbeResult::Success,
            None => ProbeResult::Neutral,
        };
        self.inner.locked(|m| m.on_probe(now, generation, result));
    }

    /// No admission before `until` (extends, never shortens); not a failure.
    pub fn cool_down(&self, now: Time, until: Time) {
        if until > now {
            self.inner.locked(|m| m.cool_down(now, until));
        }
    }

    /// A manual trip, timed like a trip (and counted as one for the next duration).
    /// No effect on an isolated breaker.
    pub fn force_open(&self, now: Time) {
        self.inner.locked(|m| m.force_open(now));
    }

    /// Open until [`reset`](Self::reset).
    pub fn isolate(&self, now: Time) {
        self.inner.locked(|m| m.isolate(now));
    }

    /// Closed, counters cleared, the trip count started over. A cooldown stays.
    pub fn reset(&self, now: Time) {
        self.inner.locked(|m| m.reset(now));
    }

    /// The state at `now` (an ended open period reads, and becomes, HalfOpen).
    #[must_use]
    pub fn state(&self, now: Time) -> State {
        if gate::closed_period(self.inner.gate.load(Acquire)).is_some() {
            return State::Closed;
        }
        self.inner.locked(|m| m.state(now))
    }

    /// Transitions as values, oldest first (bounded queue; oldest dropped when full,
    /// counted by [`dropped_events`](Self::dropped_events)).
    #[must_use]
    pub fn poll_event(&self) -> Option<BreakerEvent> {
        self.inner.machine.lock().poll_event()
    }

    /// How many events were dropped because the queue was full.
    #[must_use]
    pub fn dropped_events(&self) -> u64 {
        self.inner.machine.lock().dropped_events()
    }
}

impl fmt::Debug for Breaker {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Breaker")
            .field("gate", &self.inner.gate.load(Relaxed))
            .field("config", &self.inner.config)
            .finish_non_exhaustive()
    }
}

/// The shared part of a breaker.
///
/// In declared order (`repr(C)`; `Inner` is 128-aligned, so it starts a cache line):
/// the first line holds the gate, the blocked word, the consecutive count and the
/// start of the read-only rules, what the closed state's admit and record read; then
/// the config, the window (128-aligned), the mutex last (ordered so that the
/// alignments pad little).
#[repr(C)]
struct Inner {
    /// See `gate.rs`.
    gate: AtomicU64,
    /// See `gate.rs`.
    blocked: AtomicU64,
    /// Failures in a row in the current closed period.
    consecutive: AtomicU64,
    /// Where the gate is copied for a registry, if a registry made the breaker.
    mirror: Option<Mirror>,
    rules: Rules,
    config: BreakerConfig,
    window: Option<Stats>,
    /// On its own cache line: the slow path's writes stay off the gate's line.
    machine: Padded<Mutex<Machine>>,
}

impl Inner {
    /// Whether a fast success would change nothing: no failures in a row to clear and
    /// no window, or a settled one (see `window.rs`). Relaxed, as the records are.
    #[inline]
    fn quiet(&self) -> bool {
        self.consecutive.load(Relaxed) == 0 && self.window.as_ref().is_none_or(Stats::settled)
    }

    #[inline]
    fn lock_free_rejection(&self, now: Time) -> Option<Rejection> {
        gate::rejection(self.blocked.load(Acquire), now)
    }

    /// Runs `op` on the machine under the lock; then, if a closed period began, clears
    /// the counters, and republishes the gate and blocked words (in that order: see
    /// `gate.rs`) before unlocking.
    fn locked<T>(&self, op: impl FnOnce(&mut Machine) -> T) -> T {
        let mut machine = self.machine.lock();
        let period = machine.period();
        let out = op(&mut machine);
        if machine.period() != period {
            self.consecutive.store(0, Relaxed);
            if let Some(window) = &self.window {
                window.clear();
            }
        }
        let blocked = gate::blocked(machine.blocker());
        let gate = match machine.current() {
            State::Closed => gate::closed(machine.period(), machine.cooling()),
            _ => gate::NOT_CLOSED,
        };
        // Only lock holders store, so these Relaxed loads read the latest values;
        // skipping equal stores keeps the readers' cache lines valid.
        if self.blocked.load(Relaxed) != blocked {
            self.blocked.store(blocked, Release);
        }
        if self.gate.load(Relaxed) != gate {
            self.gate.store(gate, Release);
            if let Some(mirror) = &self.mirror {
                mirror.store(gate);
            }
        }
        out
    }
}

/// The config as the lock-free paths use it. `repr(C)`, every record's two fields
/// first: they share the gate's cache line (see [`Inner`]).
#[repr(C)]
struct Rules {
    /// Per [`ClassKind`] (in declaration order): `Some(true)` a failure, `Some(false)`
    /// a success, `None` neither.
    counted: [Option<bool>; ClassKind::ALL.len()],
    slow_call: Duration,
    consecutive: Option<u64>,
    failure_rate: Option<f64>,
    slow_call_rate: Option<f64>,
    min_calls: u32,
}

impl Rules {
    fn new(config: &BreakerConfig) -> Rules {
        Rules {
            counted: ClassKind::ALL.map(|kind| {
                if config.failures.contains(kind) {
                    Some(true)
                } else if matches!(kind, ClassKind::Success | ClassKind::NonRetriable) {
                    Some(false)
                } else {
                    None
                }
            }),
            consecutive: config.consecutive_failures.map(|n| u64::from(n.max(1))),
            failure_rate: config.failure_rate,
            slow_call_rate: config.slow_call_rate,
            slow_call: config.slow_call_ms,
            min_calls: config.min_calls,
        }
    }

    /// The rate that trips the breaker, if any, once the window holds `min_calls`.
    fn rate_cause(&self, totals: Totals) -> Option<Cause> {
        if totals.calls == 0 || totals.calls < self.min_calls {
            return None;
        }
        let calls = f64::from(totals.calls);
        let reached =
            |rate: Option<f64>, count: u32| rate.is_some_and(|r| f64::from(count) / calls >= r);
        if reached(self.failure_rate, totals.failures) {
            Some(Cause::FailureRate)
        } else if reached(self.slow_call_rate, totals.slow) {
            Some(Cause::SlowCallRate)
        } else {
            None
        }
    }
}
