//! The breaker's state machine: a plain `&mut self` value, run under the breaker's lock.
//!
//! Every method is a function of the machine, its input and `now`. Each first applies
//! what time alone changes ([`Machine::normalize`]: an open period that ended becomes
//! HalfOpen, a cooldown that ended is cleared), then its own transition. The counters
//! of the closed state live outside, in atomics (see the [parent module](super)); the
//! machine only numbers the closed periods so that the lock-free side can tell a
//! current record from a stale one.

use std::time::Duration;

use super::state::EventQueue;
use super::{BreakerConfig, BreakerEvent, Cause, RejectReason, Rejection, State};
use crate::Time;
use crate::backoff::Backoff;
use crate::rng::{SeededRng, seeded};

mod fleet;

/// What an admission hands out.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Ticket {
    /// A call in closed period `period`.
    Closed { period: u64 },
    /// A probe of half-open period `generation`.
    Probe { generation: u64 },
}

/// What a probe's record means.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum ProbeResult {
    /// It counts towards `close_after`.
    Success,
    /// It re-opens the breaker.
    Failure,
    /// Neither: its slot is freed for another probe.
    Neutral,
}

/// The state machine behind the lock.
#[derive(Debug)]
pub(super) struct Machine {
    state: State,
    cooldown: Option<Time>,
    /// Trips since the breaker last closed; the next trip's backoff index.
    trips: u32,
    previous_open: Option<Duration>,
    /// The open durations' jitter stream, kept as its seed and position rather than as
    /// a live generator: a ChaCha8 generator with its buffer is ~300 bytes, read only
    /// when the breaker trips, and a registry holds one breaker per key.
    jitter: JitterStream,
    open: Backoff,
    probes: u32,
    close_after: u32,
    /// Numbers the closed periods (see [`gate`](super::gate)).
    period: u64,
    /// Numbers the half-open periods; a probe of an older one is stale.
    generation: u64,
    /// Probe slots taken in this half-open period: admitted and not freed.
    taken: u32,
    successes: u32,
    events: EventQueue,
    /// The fleet's say in this machine (see `breaker/fleet.rs`).
    fleet: FleetGate,
}

/// What a fleet-wide store adds to the machine: a revision that changes with every
/// transition or cooldown, and, while `gated`, half-open probes only as granted.
#[derive(Debug, Default)]
pub(super) struct FleetGate {
    /// Bumped by every transition and every cooldown change.
    revision: u64,
    /// Half-open admits only `granted` probes (the fleet's grants), not `probes`.
    gated: bool,
    /// Probe slots the fleet granted in this half-open period.
    granted: u32,
    /// A call found no granted slot in this half-open period.
    wanted: bool,
}

/// A [`seeded`] stream stored as its seed and how many 32-bit words it has given: a
/// draw rebuilds the generator at that position, which yields exactly the numbers the
/// live generator would have.
#[derive(Debug)]
struct JitterStream {
    seed: u64,
    words: u128,
}

impl JitterStream {
    const fn new(seed: u64) -> JitterStream {
        JitterStream { seed, words: 0 }
    }

    /// Runs `f` on the stream where the last draw left it.
    fn draw<T>(&mut self, f: impl FnOnce(&mut SeededRng) -> T) -> T {
        let mut rng = seeded(self.seed);
        rng.set_word_pos(self.words);
        let out = f(&mut rng);
        self.words = rng.get_word_pos();
        out
    }
}

impl Machine {
    /// A closed machine. Probe counts are forced to at least 1 and `close_after` into
    /// `1..=half_open_probes`, so an unvalidated config cannot wedge it half-open.
    pub(super) fn new(config: &BreakerConfig, seed: u64, event_capacity: usize) -> Machine {
        let probes = config.half_open_probes.max(1);
        Machine {
            state: State::Closed,
            cooldown: None,
            trips: 0,
            previous_open: None,
            jitter: JitterStream::new(seed),
            open: config.open,
            probes,
            close_after: config.close_after.clamp(1, probes),
            period: 0,
            generation: 0,
            taken: 0,
            successes: 0,
            events: EventQueue::new(event_capacity),
            fleet: FleetGate::default(),
        }
    }

    /// The state as of the last call (no time applied).
    pub(super) const fn current(&self) -> State {
        self.state
    }

    pub(super) const fn cooling(&self) -> bool {
        self.cooldown.is_some()
    }

    pub(super) const fn period(&self) -> u64 {
        self.period
    }

    /// Applies what time alone changes.
    pub(super) fn normalize(&mut self, now: Time) {
        match self.state {
            State::Open { until } if now >= until => {
                self.generation = self.generation.wrapping_add(1);
                self.taken = 0;
                self.successes = 0;
                self.fleet.granted = 0;
                self.fleet.wanted = false;
                self.transition(until, State::HalfOpen, Cause::OpenElapsed);
            }
            _ => {}
        }
        if self.cooldown.is_some_and(|until| now >= until) {
            self.cooldown = None;
        }
    }

    /// Why nothing may be admitted, whatever the probe slots (no time applied):
    /// Isolated; Open (or CoolingDown if the cooldown ends later) with the instant
    /// admission may resume; CoolingDown.
    pub(super) fn blocker(&self) -> Option<Rejection> {
        let (reason, until) = match (self.state, self.cooldown) {
            (State::Isolated, _) => (RejectReason::Isolated, None),
            (State::Open { until }, Some(cooldown)) if cooldown > until => {
                (RejectReason::CoolingDown, Some(cooldown))
            }
            (State::Open { until }, _) => (RejectReason::Open, Some(until)),
            (_, Some(cooldown)) => (RejectReason::CoolingDown, Some(cooldown)),
            (_, None) => return None,
        };
        Some(Rejection { reason, until })
    }

    /// Admits a call, taking a probe slot in HalfOpen.
    pub(super) fn admit(&mut self, now: Time) -> Result<Ticket, Rejection> {
        let ticket = self.check(now)?;
        if let Ticket::Probe { .. } = ticket {
            self.taken += 1;
        }
        Ok(ticket)
    }

    /// What [`admit`](Self::admit) would hand out, without taking a slot.
    pub(super) fn check(&mut self, now: Time) -> Result<Ticket, Rejection> {
        self.normalize(now);
        if let Some(rejection) = self.blocker() {
            return Err(rejection);
        }
        match self.state {
            State::HalfOpen if self.taken >= self.probe_limit() => {
                self.fleet.wanted |= self.fleet.gated;
                Err(Rejection {
                    reason: RejectReason::HalfOpenFull,
                    until: None,
                })
            }
            State::HalfOpen => Ok(Ticket::Probe {
                generation: self.generation,
            }),
            _ => Ok(Ticket::Closed {
                period: self.period,
            }),
        }
    }

    /// The state at `now`.
    pub(super) fn state(&mut self, now: Time) -> State {
        self.normalize(now);
        self.state
    }

    /// The lock-free side saw a reason to trip in closed period `period`. Ignored if
    /// that period has ended (another record tripped it first, or it was reset).
    pub(super) fn trip_closed(&mut self, now: Time, period: u64, cause: Cause) {
        self.normalize(now);
        if self.state == State::Closed && self.period == period {
            self.trip(now, cause);
        }
    }

    /// A probe of half-open period `generation` finished. Ignored if stale.
    pub(super) fn on_probe(&mut self, now: Time, generation: u64, result: ProbeResult) {
        self.normalize(now);
        if self.state != State::HalfOpen || self.generation != generation {
            return;
        }
        match result {
            ProbeResult::Failure => self.trip(now, Cause::ProbeFailed),
            ProbeResult::Success => {
                self.successes += 1;
                if self.successes >= self.close_after {
                    self.close(now, Cause::ProbesSucceeded);
                }
            }
            ProbeResult::Neutral => self.release(generation),
        }
    }

    /// Frees the slot of a probe of `generation` that will not be recorded.
    pub(super) fn release(&mut self, generation: u64) {
        if self.state == State::HalfOpen && self.generation == generation {
            self.taken = self.taken.saturating_sub(1);
        }
    }

    /// No admission before `until`; extends a cooldown, never shortens it.
    pub(super) fn cool_down(&mut self, now: Time, until: Time) {
        self.normalize(now);
        if until > now && self.cooldown.is_none_or(|c| c < until) {
            self.cooldown = Some(until);
            self.fleet.revision = self.fleet.revision.wrapping_add(1);
        }
    }

    /// A manual trip. No effect on an isolated breaker.
    pub(super) fn force_open(&mut self, now: Time) {
        self.normalize(now);
        if self.state != State::Isolated {
            self.trip(now, Cause::Forced);
        }
    }

    /// Open until reset.
    pub(super) fn isolate(&mut self, now: Time) {
        self.normalize(now);
        if self.state != State::Isolated {
            self.transition(now, State::Isolated, Cause::Isolated);
        }
    }

    /// Closed, with a fresh closed period (counters cleared) and the trip count reset.
    /// A cooldown stays: it is the provider's word, not the breaker's opinion.
    pub(super) fn reset(&mut self, now: Time) {
        self.normalize(now);
        if self.state == State::Closed {
            self.trips = 0;
            self.previous_open = None;
            self.period = self.period.wrapping_add(1);
        } else {
            self.close(now, Cause::Reset);
        }
    }

    pub(super) fn poll_event(&mut self) -> Option<BreakerEvent> {
        self.events.pop()
    }

    pub(super) const fn dropped_events(&self) -> u64 {
        self.events.dropped()
    }

    /// Opens for the next backoff duration: the n-th trip in a row waits
    /// `open.delay(n - 1, previous, rng)`.
    fn trip(&mut self, now: Time, cause: Cause) {
        let (open, trips, previous) = (self.open, self.trips, self.previous_open);
        let duration = self.jitter.draw(|rng| open.delay(trips, previous, rng));
        self.trips = self.trips.saturating_add(1);
        self.previous_open = Some(duration);
        self.transition(
            now,
            State::Open {
                until: now + duration,
            },
            cause,
        );
    }

    fn close(&mut self, now: Time, cause: Cause) {
        self.trips = 0;
        self.previous_open = None;
        self.period = self.period.wrapping_add(1);
        self.transition(now, State::Closed, cause);
    }

    fn transition(&mut self, at: Time, to: State, cause: Cause) {
        let from = self.state.kind();
        self.state = to;
        self.fleet.revision = self.fleet.revision.wrapping_add(1);
        self.events.push(BreakerEvent {
            at,
            from,
            to: to.kind(),
            cause,
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backoff::Jitter;
    use crate::breaker::StateKind;

    fn machine() -> Machine {
        let config = BreakerConfig {
            open: Backoff::exponential(Duration::from_secs(1), Duration::from_secs(4))
                .with_jitter(Jitter::None),
            half_open_probes: 2,
            close_after: 2,
            ..BreakerConfig::default()
        };
        Machine::new(&config, 1, 16)
    }

    fn secs(n: u64) -> Time {
        Time::from_secs(n)
    }

    fn events(m: &mut Machine) -> Vec<(Time, StateKind, StateKind, Cause)> {
        std::iter::from_fn(|| m.poll_event())
            .map(|e| (e.at, e.from, e.to, e.cause))
            .collect()
    }

    #[test]
    fn trips_grow_and_close_starts_over() {
        let mut m = machine();
        m.trip_closed(secs(0), 0, Cause::FailureRate);
        assert_eq!(m.state(secs(0)), State::Open { until: secs(1) });
        let Ok(Ticket::Probe { generation }) = m.admit(secs(1)) else {
            panic!("no probe");
        };
        m.on_probe(secs(1), generation, ProbeResult::Failure);
        assert_eq!(m.state(secs(1)), State::Open { until: secs(3) });
        let Ok(Ticket::Probe { generation }) = m.admit(secs(3)) else {
            panic!("no probe");
        };
        m.on_probe(secs(3), generation, ProbeResult::Success);
        m.on_probe(secs(3), generation, ProbeResult::Success);
        assert_eq!(m.state(secs(3)), State::Closed);
        assert_eq!(m.period(), 1);
        m.trip_closed(secs(4), 0, Cause::FailureRate);
        assert_eq!(m.state(secs(4)), State::Closed, "stale period");
        m.trip_closed(secs(4), 1, Cause::FailureRate);
        assert_eq!(m.state(secs(4)), State::Open { until: secs(5) });
        use Cause::*;
        use StateKind::*;
        assert_eq!(
            events(&mut m),
            [
                (secs(0), Closed, Open, FailureRate),
                (secs(1), Open, HalfOpen, OpenElapsed),
                (secs(1), HalfOpen, Open, ProbeFailed),
                (secs(3), Open, HalfOpen, OpenElapsed),
                (secs(3), HalfOpen, Closed, ProbesSucceeded),
                (secs(4), Closed, Open, FailureRate),
            ]
        );
    }

    #[test]
    fn half_open_event_is_dated_at_the_end_of_the_open_period() {
        let mut m = machine();
        m.force_open(secs(10));
        assert_eq!(m.state(secs(50)), State::HalfOpen);
        let last = events(&mut m).pop().map(|e| e.0);
        assert_eq!(last, Some(secs(11)));
    }

    #[test]
    fn slots_are_taken_released_and_stale_ones_ignored() {
        let mut m = machine();
        m.force_open(secs(0));
        let first = m.admit(secs(1)).unwrap();
        let Ticket::Probe { generation } = first else {
            panic!("{first:?}");
        };
        assert!(m.admit(secs(1)).is_ok());
        assert_eq!(
            m.admit(secs(1)).map_err(|r| r.reason),
            Err(RejectReason::HalfOpenFull)
        );
        m.release(generation);
        assert!(m.check(secs(1)).is_ok());
        m.on_probe(secs(1), generation, ProbeResult::Neutral);
        assert!(m.admit(secs(1)).is_ok());
        m.on_probe(secs(1), generation, ProbeResult::Failure);
        // A new half-open period: the old generation can neither free nor fill it.
        assert!(m.admit(secs(3)).is_ok());
        assert!(m.admit(secs(3)).is_ok());
        m.release(generation);
        m.on_probe(secs(3), generation, ProbeResult::Success);
        assert_eq!(
            m.admit(secs(3)).map_err(|r| r.reason),
            Err(RejectReason::HalfOpenFull)
        );
    }

    #[test]
    fn cooldown_extends_and_outlasts_open() {
        let mut m = machine();
        m.cool_down(secs(0), secs(5));
        m.cool_down(secs(0), secs(2));
        assert_eq!(m.blocker().and_then(|r| r.until), Some(secs(5)));
        m.force_open(secs(0));
        let r = m.check(secs(0)).unwrap_err();
        assert_eq!(
            (r.reason, r.until),
            (RejectReason::CoolingDown, Some(secs(5)))
        );
        let r = m.check(secs(2)).unwrap_err();
        assert_eq!(r.reason, RejectReason::CoolingDown);
        assert_eq!(m.current(), State::HalfOpen);
        assert!(m.admit(secs(5)).is_ok());
        assert!(!m.cooling());
    }

    #[test]
    fn manual_operations() {
        let mut m = machine();
        m.isolate(secs(0));
        m.force_open(secs(1));
        m.isolate(secs(1));
        assert_eq!(m.state(secs(100)), State::Isolated);
        assert_eq!(m.admit(secs(100)).map_err(|r| r.until), Err(None));
        m.reset(secs(100));
        m.reset(secs(100));
        assert_eq!(m.state(secs(100)), State::Closed);
        assert_eq!(m.period(), 2, "each reset starts a closed period");
        let kinds: Vec<_> = events(&mut m).iter().map(|e| e.3).collect();
        assert_eq!(kinds, [Cause::Isolated, Cause::Reset]);
    }

    #[test]
    fn unvalidated_probe_counts_are_clamped() {
        let config = BreakerConfig {
            half_open_probes: 0,
            close_after: 9,
            ..BreakerConfig::default()
        };
        let mut m = Machine::new(&config, 0, 4);
        m.force_open(secs(0));
        let Ok(Ticket::Probe { generation }) = m.admit(secs(1000)) else {
            panic!("a zero-probe config must still probe");
        };
        m.on_probe(secs(1000), generation, ProbeResult::Success);
        assert_eq!(m.state(secs(1000)), State::Closed);
    }

    proptest::proptest! {
        /// A stream rebuilt at its position for every draw gives the live generator's
        /// numbers: the open durations are those of one seeded stream, as before.
        #[test]
        fn a_jitter_stream_draws_as_one_live_generator(
            seed in proptest::prelude::any::<u64>(),
            draws in proptest::collection::vec(0usize..6, 1..40),
        ) {
            use crate::rng::Rng;
            let mut live = seeded(seed);
            let mut stream = JitterStream::new(seed);
            for n in draws {
                let ours: Vec<u64> = stream.draw(|rng| (0..n).map(|_| rng.next_u64()).collect());
                let theirs: Vec<u64> = (0..n).map(|_| live.next_u64()).collect();
                proptest::prop_assert_eq!(ours, theirs);
            }
        }
    }
}
