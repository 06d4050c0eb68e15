//! A small sequential reference model of the breaker, written for obviousness: it
//! keeps every call in a plain `Vec` and recounts the window from scratch each time;
//! no atomics, no gate, no lock-free shortcuts. Driven from the same seed as the
//! breaker, its jittered open durations match draw for draw.

use std::time::Duration;

use breakwater_core::breaker::{
    BreakerConfig, BreakerEvent, Cause, RejectReason, Rejection, State, Window,
};
use breakwater_core::rng::{SeededRng, seeded};
use breakwater_core::time::nanos;
use breakwater_core::{Class, Time};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum ModelPermit {
    Closed { period: u64 },
    Probe { generation: u64 },
}

#[derive(Clone, Debug)]
pub(crate) struct Model {
    config: BreakerConfig,
    rng: SeededRng,
    state: State,
    cooldown: Option<Time>,
    trips: u32,
    previous_open: Option<Duration>,
    period: u64,
    generation: u64,
    taken: u32,
    successes: u32,
    consecutive: u32,
    /// Every counted call of this closed period: (time, failure, slow).
    calls: Vec<(Time, bool, bool)>,
    pub(crate) events: Vec<BreakerEvent>,
}

impl Model {
    pub(crate) fn new(config: BreakerConfig, seed: u64) -> Model {
        Model {
            config,
            rng: seeded(seed),
            state: State::Closed,
            cooldown: None,
            trips: 0,
            previous_open: None,
            period: 0,
            generation: 0,
            taken: 0,
            successes: 0,
            consecutive: 0,
            calls: Vec::new(),
            events: Vec::new(),
        }
    }

    fn go(&mut self, at: Time, to: State, cause: Cause) {
        let from = self.state.kind();
        self.state = to;
        self.events.push(BreakerEvent {
            at,
            from,
            to: to.kind(),
            cause,
        });
    }

    fn tick(&mut self, now: Time) {
        if let State::Open { until } = self.state {
            if now >= until {
                self.generation += 1;
                self.taken = 0;
                self.successes = 0;
                self.go(until, State::HalfOpen, Cause::OpenElapsed);
            }
        }
        if self.cooldown.is_some_and(|c| now >= c) {
            self.cooldown = None;
        }
    }

    fn trip(&mut self, now: Time, cause: Cause) {
        let d = self
            .config
            .open
            .delay(self.trips, self.previous_open, &mut self.rng);
        self.trips += 1;
        self.previous_open = Some(d);
        self.go(now, State::Open { until: now + d }, cause);
    }

    fn start_closed_period(&mut self) {
        self.trips = 0;
        self.previous_open = None;
        self.period += 1;
        self.consecutive = 0;
        self.calls.clear();
    }

    fn blocked(&self) -> Option<Rejection> {
        let r = |reason, until| Some(Rejection { reason, until });
        match (self.state, self.cooldown) {
            (State::Isolated, _) => r(RejectReason::Isolated, None),
            (State::Open { until }, Some(c)) if c > until => r(RejectReason::CoolingDown, Some(c)),
            (State::Open { until }, _) => r(RejectReason::Open, Some(until)),
            (_, Some(c)) => r(RejectReason::CoolingDown, Some(c)),
            _ => None,
        }
    }

    pub(crate) fn check(&mut self, now: Time) -> Result<ModelPermit, Rejection> {
        self.tick(now);
        if let Some(r) = self.blocked() {
            return Err(r);
        }
        if self.state == State::HalfOpen {
            if self.taken < self.config.half_open_probes {
                Ok(ModelPermit::Probe {
                    generation: self.generation,
                })
            } else {
                Err(Rejection {
                    reason: RejectReason::HalfOpenFull,
                    until: None,
                })
            }
        } else {
            Ok(ModelPermit::Closed {
                period: self.period,
            })
        }
    }

    pub(crate) fn admit(&mut self, now: Time) -> Result<ModelPermit, Rejection> {
        let p = self.check(now)?;
        if let ModelPermit::Probe { .. } = p {
            self.taken += 1;
        }
        Ok(p)
    }

    pub(crate) fn cool_down(&mut self, now: Time, until: Time) {
        self.tick(now);
        if until > now && self.cooldown.is_none_or(|c| until > c) {
            self.cooldown = Some(until);
        }
    }

    /// `(calls, failures, slow)` in the window at `now`, counted from scratch.
    fn window(&self, now: Time) -> (u32, u32, u32) {
        let in_window: Vec<_> = match self.config.window {
            None => Vec::new(),
            Some(Window::Count { size }) => {
                let skip = self.calls.len().saturating_sub(size as usize);
                self.calls[skip..].to_vec()
            }
            Some(Window::Time { span, buckets }) => {
                let width = nanos(span) / u64::from(buckets);
                let bucket = |t: Time| t.as_nanos() / width;
                let current = bucket(now);
                self.calls
                    .iter()
                    .filter(|(t, ..)| current - bucket(*t) < u64::from(buckets))
                    .copied()
                    .collect()
            }
        };
        let count =
            |f: fn(&(Time, bool, bool)) -> bool| in_window.iter().filter(|c| f(c)).count() as u32;
        (in_window.len() as u32, count(|c| c.1), count(|c| c.2))
    }

    pub(crate) fn record(
        &mut self,
        now: Time,
        permit: ModelPermit,
        class: &Class,
        latency: Duration,
    ) {
        if let Some(wait) = class.retry_after() {
            self.cool_down(now, now + wait);
        }
        let failure = self.config.failures.contains(class.kind());
        let success = !failure && matches!(class, Class::Success | Class::NonRetriable(_));
        let slow = latency >= self.config.slow_call_ms;
        self.tick(now);
        match permit {
            ModelPermit::Closed { period } => {
                if self.state != State::Closed || period != self.period || !(failure || success) {
                    return;
                }
                if failure {
                    self.consecutive += 1;
                } else {
                    self.consecutive = 0;
                }
                if self.config.window.is_some() {
                    self.calls.push((now, failure, slow));
                }
                if self
                    .config
                    .consecutive_failures
                    .is_some_and(|n| failure && self.consecutive >= n)
                {
                    return self.trip(now, Cause::ConsecutiveFailures);
                }
                if !(failure || slow) {
                    return;
                }
                let (calls, failures, slows) = self.window(now);
                if calls == 0 || calls < self.config.min_calls {
                    return;
                }
                let rate = |n: u32| f64::from(n) / f64::from(calls);
                if self
                    .config
                    .failure_rate
                    .is_some_and(|r| rate(failures) >= r)
                {
                    self.trip(now, Cause::FailureRate);
                } else if self.config.slow_call_rate.is_some_and(|r| rate(slows) >= r) {
                    self.trip(now, Cause::SlowCallRate);
                }
            }
            ModelPermit::Probe { generation } => {
                if self.state != State::HalfOpen || generation != self.generation {
                    return;
                }
                let slow_fails = slow && self.config.slow_call_rate.is_some();
                if failure || (success && slow_fails) {
                    self.trip(now, Cause::ProbeFailed);
                } else if success {
                    self.successes += 1;
                    if self.successes >= self.config.close_after {
                        self.start_closed_period();
                        self.go(now, State::Closed, Cause::ProbesSucceeded);
                    }
                } else {
                    self.taken -= 1;
                }
            }
        }
    }

    pub(crate) fn release(&mut self, permit: ModelPermit) {
        if let ModelPermit::Probe { generation } = permit {
            if self.state == State::HalfOpen && generation == self.generation {
                self.taken -= 1;
            }
        }
    }

    pub(crate) fn force_open(&mut self, now: Time) {
        self.tick(now);
        if self.state != State::Isolated {
            self.trip(now, Cause::Forced);
        }
    }

    pub(crate) fn isolate(&mut self, now: Time) {
        self.tick(now);
        if self.state != State::Isolated {
            self.go(now, State::Isolated, Cause::Isolated);
        }
    }

    pub(crate) fn reset(&mut self, now: Time) {
        self.tick(now);
        let was = self.state;
        self.start_closed_period();
        if was != State::Closed {
            self.go(now, State::Closed, Cause::Reset);
        }
    }

    pub(crate) fn state(&mut self, now: Time) -> State {
        self.tick(now);
        self.state
    }
}
