//! Client workloads: when requests arrive and what each one asks for.
//!
//! Open-loop clients are a Poisson process whose rate is piecewise constant: the
//! client's `rate` steps times any `load_spike` storm on it. [`OpenArrivals::next`]
//! draws the next arrival exactly (one exponential draw, walked across rate changes),
//! so rates switch at the right instants. Closed-loop clients are driven by the engine
//! (a worker sends its next request after the previous one finished and it thought
//! for [`ClosedLoop::think`]); a `requests` cap is shared by the population.

use std::time::Duration;

use breakwater_core::{Rng, Time};

use crate::dist::{exponential, ms_to_nanos, secs_to_nanos};
use crate::provider::Storms;
use crate::scenario::{Arrivals, Client, Scenario, StormTarget};

/// Open-loop Poisson arrivals for one client population.
#[derive(Clone, Debug)]
pub struct OpenArrivals {
    /// `(from, rate_per_s)`, sorted; each rate holds until the next `from`.
    rates: Vec<(Time, f64)>,
    end: Time,
    remaining: Option<u64>,
}

impl OpenArrivals {
    /// The arrivals of `scenario.clients[client]`, or `None` for a closed-loop client.
    ///
    /// # Panics
    ///
    /// If `client` is out of range.
    #[must_use]
    pub fn new(scenario: &Scenario, client: usize) -> Option<OpenArrivals> {
        let c = &scenario.clients[client];
        let Arrivals::Open { steps } = &c.arrivals else {
            return None;
        };
        let spikes = Storms::for_target(&scenario.storms, StormTarget::Clients(client));
        let mut times: Vec<Time> = steps
            .iter()
            .map(|s| s.at)
            .chain(spikes.boundaries().iter().copied())
            .collect();
        times.sort_unstable();
        times.dedup();
        let step_at = |t: Time| {
            steps
                .iter()
                .rev()
                .find(|s| s.at <= t)
                .map_or(0.0, |s| s.rate_per_s)
        };
        let rates = times
            .iter()
            .map(|&t| (t, step_at(t) * spikes.at(t).load))
            .collect();
        Some(OpenArrivals {
            rates,
            end: scenario.end(),
            remaining: c.requests,
        })
    }

    /// The rate at `t`, requests per second.
    #[must_use]
    pub fn rate_at(&self, t: Time) -> f64 {
        let i = self.rates.partition_point(|r| r.0 <= t);
        i.checked_sub(1)
            .and_then(|i| self.rates.get(i))
            .map_or(0.0, |r| r.1)
    }

    /// The next arrival after `now`, or `None` once the run (or the `requests` cap) is over.
    pub fn next<R: Rng + ?Sized>(&mut self, now: Time, rng: &mut R) -> Option<Time> {
        if self.remaining == Some(0) {
            return None;
        }
        let mut budget = exponential(rng, 1.0); // unit-rate time still to cover
        let mut t = now;
        let mut i = self.rates.partition_point(|r| r.0 <= t).saturating_sub(1);
        while t < self.end {
            let rate = self.rates.get(i).map_or(0.0, |r| r.1);
            let seg_end = self
                .rates
                .get(i + 1)
                .map_or(self.end, |r| r.0)
                .min(self.end);
            let span = (seg_end - t).as_secs_f64();
            if rate > 0.0 && rate * span >= budget {
                let at = t + Duration::from_nanos(secs_to_nanos(budget / rate));
                if at >= self.end {
                    return None;
                }
                if let Some(r) = &mut self.remaining {
                    *r -= 1;
                }
                return Some(at);
            }
            budget -= rate * span;
            t = seg_end;
            i += 1;
        }
        None
    }

    /// The highest rate over the run, requests per second.
    #[must_use]
    pub fn peak_rate(&self) -> f64 {
        self.rates.iter().map(|r| r.1).fold(0.0, f64::max)
    }

    /// The expected number of arrivals over the run (before a `requests` cap).
    #[must_use]
    pub fn expected_count(&self) -> f64 {
        let mut total = 0.0;
        for (i, &(from, rate)) in self.rates.iter().enumerate() {
            let to = self
                .rates
                .get(i + 1)
                .map_or(self.end, |r| r.0)
                .min(self.end);
            total += rate * (to - from).as_secs_f64();
        }
        total
    }
}

/// A closed-loop population: `workers` loops and an optional shared `requests` cap.
#[derive(Clone, Debug)]
pub struct ClosedLoop {
    /// How many loops.
    pub workers: u32,
    think_ms: f64,
    end: Time,
    remaining: Option<u64>,
}

impl ClosedLoop {
    /// The loops of `scenario.clients[client]`, or `None` for an open-loop client.
    ///
    /// # Panics
    ///
    /// If `client` is out of range.
    #[must_use]
    pub fn new(scenario: &Scenario, client: usize) -> Option<ClosedLoop> {
        let c = &scenario.clients[client];
        let Arrivals::Closed { workers, think_ms } = c.arrivals else {
            return None;
        };
        Some(ClosedLoop {
            workers,
            think_ms,
            end: scenario.end(),
            remaining: c.requests,
        })
    }

    /// A think time (exponential, mean `think_ms`; zero when `think_ms` is 0).
    pub fn think<R: Rng + ?Sized>(&self, rng: &mut R) -> Duration {
        Duration::from_nanos(ms_to_nanos(exponential(rng, self.think_ms)))
    }

    /// Whether a worker may send a request at `now` (before the end and under the cap);
    /// a `true` counts against the cap.
    pub fn may_send(&mut self, now: Time) -> bool {
        if now >= self.end || self.remaining == Some(0) {
            return false;
        }
        if let Some(r) = &mut self.remaining {
            *r -= 1;
        }
        true
    }
}

/// What one request asks for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RequestDraw {
    /// Input tokens.
    pub input_tokens: u32,
    /// Output tokens its answer will have.
    pub output_tokens: u32,
    /// A deferrable task (else interactive).
    pub deferrable: bool,
    /// Which replica sends it (uniform), in `0..replicas`.
    pub replica: u32,
}

/// Draws one request of `client`.
pub fn draw_request<R: Rng + ?Sized>(client: &Client, rng: &mut R) -> RequestDraw {
    RequestDraw {
        input_tokens: client.input_tokens.sample(rng),
        output_tokens: client.output_tokens.sample(rng),
        deferrable: crate::dist::bernoulli(rng, client.deferrable_share),
        // up_to is inclusive and replicas ≥ 1, so this fits in u32.
        replica: u32::try_from(rng.up_to(u64::from(client.replicas.max(1) - 1))).unwrap_or(0),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use breakwater_core::rng::seeded;

    const SRC: &str = r#"
name = "w"
seed = 1
duration_s = 20
policies = ["naive"]
[[provider]]
name = "p"
kind = "flaky"
[[clients]]
name = "c"
kind = "open"
rate_per_s = 100
rate = [{ at_s = 10, rate_per_s = 0 }, { at_s = 15, rate_per_s = 50 }]
replicas = 3
deferrable_share = 0.25
[[clients]]
name = "w"
kind = "closed"
workers = 4
think_ms = 100
requests = 5
[[storm]]
kind = "load_spike"
clients = "c"
from_s = 2
to_s = 4
factor = 3
"#;

    #[test]
    fn open_arrivals_follow_steps_and_spikes() {
        let s = Scenario::from_toml(SRC).unwrap();
        let mut a = OpenArrivals::new(&s, 0).unwrap();
        assert!(OpenArrivals::new(&s, 1).is_none());
        assert_eq!(a.rate_at(Time::from_secs(1)), 100.0);
        assert_eq!(a.rate_at(Time::from_secs(3)), 300.0);
        assert_eq!(a.rate_at(Time::from_secs(12)), 0.0);
        assert_eq!(a.rate_at(Time::from_secs(16)), 50.0);
        assert!((a.expected_count() - (200.0 + 600.0 + 600.0 + 250.0)).abs() < 1e-9);
        let mut rng = seeded(3);
        let mut per_s = [0u32; 20];
        let mut now = Time::ZERO;
        while let Some(t) = a.next(now, &mut rng) {
            assert!(t >= now && t < Time::from_secs(20));
            per_s[(t.as_nanos() / 1_000_000_000) as usize] += 1;
            now = t;
        }
        assert!(per_s[10..15].iter().all(|&n| n == 0), "{per_s:?}");
        let spike: u32 = per_s[2..4].iter().sum();
        let calm: u32 = per_s[4..10].iter().sum();
        assert!((520..680).contains(&spike), "{spike}");
        assert!((520..680).contains(&calm), "{calm}");
        let tail: u32 = per_s[15..].iter().sum();
        assert!((200..300).contains(&tail), "{tail}");
    }

    #[test]
    fn same_seed_same_arrivals() {
        let s = Scenario::from_toml(SRC).unwrap();
        let run = |seed| {
            let mut a = OpenArrivals::new(&s, 0).unwrap();
            let mut rng = seeded(seed);
            std::iter::successors(a.next(Time::ZERO, &mut rng), |&t| a.next(t, &mut rng))
                .collect::<Vec<_>>()
        };
        assert_eq!(run(5), run(5));
        assert_ne!(run(5), run(6));
    }

    #[test]
    fn closed_loops_share_their_cap() {
        let s = Scenario::from_toml(SRC).unwrap();
        let mut c = ClosedLoop::new(&s, 1).unwrap();
        assert_eq!(c.workers, 4);
        assert_eq!((0..8).filter(|_| c.may_send(Time::ZERO)).count(), 5);
        let mut rng = seeded(1);
        let mean = (0..10_000)
            .map(|_| c.think(&mut rng).as_secs_f64())
            .sum::<f64>()
            / 10_000.0;
        assert!((mean - 0.1).abs() < 0.005, "{mean}");
        let mut c = ClosedLoop::new(&s, 1).unwrap();
        assert!(!c.may_send(Time::from_secs(20)));
    }

    #[test]
    fn request_draws() {
        let s = Scenario::from_toml(SRC).unwrap();
        let mut rng = seeded(2);
        let draws: Vec<RequestDraw> = (0..4_000)
            .map(|_| draw_request(&s.clients[0], &mut rng))
            .collect();
        assert!(draws.iter().all(|d| d.replica < 3 && d.input_tokens == 500));
        let deferrable = draws.iter().filter(|d| d.deferrable).count();
        assert!((900..1_100).contains(&deferrable), "{deferrable}");
        assert!((0..3).all(|r| draws.iter().any(|d| d.replica == r)));
    }
}
