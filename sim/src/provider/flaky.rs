//! A dependency that fails independently with probability `p(t)`.

use std::time::Duration;

use breakwater_core::{Rng, Time};

use super::storms::Storms;
use super::{Arrival, AttemptSpec, Response, ServerStats};
use crate::dist::{bernoulli, ms_to_nanos};
use crate::scenario::{FlakySpec, Model, OutageMode};

/// A flaky provider: no capacity limit; each attempt fails with probability
/// `1 − (1 − failure_p)(1 − storm p)` after its latency, with the configured status.
/// Stateless apart from counters, so every arrival is answered at once
/// ([`Arrival::Answered`] at `now + latency`).
#[derive(Clone, Debug)]
pub struct FlakyServer {
    spec: FlakySpec,
    latency_factors: Vec<f64>,
    storms: Storms,
    stats: ServerStats,
}

impl FlakyServer {
    /// A server for `spec`.
    #[must_use]
    pub fn new(spec: FlakySpec, models: &[Model], storms: Storms) -> FlakyServer {
        FlakyServer {
            spec,
            latency_factors: models.iter().map(|m| m.latency_factor).collect(),
            storms,
            stats: ServerStats::default(),
        }
    }

    /// An attempt arrives at `now`.
    pub fn on_arrival<R: Rng + ?Sized>(
        &mut self,
        now: Time,
        spec: AttemptSpec,
        rng: &mut R,
    ) -> Arrival {
        self.stats.arrivals += 1;
        let e = self.storms.at(now);
        let reject = |response| Arrival::Answered {
            at: now + self.spec.reject,
            response,
        };
        match e.outage {
            Some(OutageMode::Connect) => {
                self.stats.connect_failed += 1;
                return reject(Response::ConnectFailed);
            }
            Some(OutageMode::Timeout) => {
                self.stats.hung += 1;
                return Arrival::Hung;
            }
            None => {}
        }
        if e.quota {
            self.stats.quota += 1;
            return reject(Response::QuotaExhausted);
        }
        let factor = self
            .latency_factors
            .get(spec.model as usize)
            .copied()
            .unwrap_or(1.0)
            * e.latency;
        let ms = self.spec.latency_ms.sample(rng) * factor;
        let at = now + Duration::from_nanos(ms_to_nanos(ms));
        let p = 1.0 - (1.0 - self.spec.failure_p) * (1.0 - e.overload_p);
        let response = if bernoulli(rng, p) {
            self.stats.failed += 1;
            Response::ServerError {
                status: self.spec.status,
            }
        } else {
            self.stats.served += 1;
            Response::Ok {
                input_tokens: spec.input_tokens,
                output_tokens: spec.output_tokens,
            }
        };
        Arrival::Answered { at, response }
    }

    /// Unbounded, except zero in an outage or quota storm.
    #[must_use]
    pub fn capacity_per_s(&self, now: Time) -> Option<f64> {
        let e = self.storms.at(now);
        (e.outage.is_some() || e.quota).then_some(0.0)
    }

    /// The server's counters.
    #[must_use]
    pub fn stats(&self) -> ServerStats {
        self.stats
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dist::LogNormal;
    use crate::scenario::{Fault, Storm, StormTarget};
    use breakwater_core::rng::seeded;

    fn server(p: f64, storms: &[Storm]) -> FlakyServer {
        let spec = FlakySpec {
            failure_p: p,
            status: 503,
            latency_ms: LogNormal::constant(40.0),
            reject: Duration::from_millis(5),
        };
        FlakyServer::new(
            spec,
            &[],
            Storms::for_target(storms, StormTarget::Provider(0)),
        )
    }

    const SPEC: AttemptSpec = AttemptSpec {
        model: 0,
        input_tokens: 10,
        output_tokens: 5,
        row: super::super::RowOp::Read,
        tag: 0,
    };

    #[test]
    fn fails_at_its_probability_after_its_latency() {
        let mut s = server(0.5, &[]);
        let mut rng = seeded(9);
        let mut failures = 0;
        for _ in 0..10_000 {
            match s.on_arrival(Time::ZERO, SPEC, &mut rng) {
                Arrival::Answered { at, response } => {
                    assert_eq!(at, Time::from_millis(40));
                    failures += u32::from(response == Response::ServerError { status: 503 });
                }
                other => panic!("{other:?}"),
            }
        }
        assert!((4_800..5_200).contains(&failures), "{failures}");
        assert_eq!(s.capacity_per_s(Time::ZERO), None);
    }

    #[test]
    fn storms_add_failures_and_outages() {
        let storm = |from, to, fault| Storm {
            name: None,
            from: Time::from_secs(from),
            to: Time::from_secs(to),
            target: StormTarget::Provider(0),
            fault,
        };
        let mut s = server(
            0.0,
            &[
                storm(
                    1,
                    2,
                    Fault::Overload {
                        p: 1.0,
                        concurrency_factor: 1.0,
                    },
                ),
                storm(3, 4, Fault::Outage(OutageMode::Timeout)),
                storm(5, 6, Fault::Quota),
            ],
        );
        let mut rng = seeded(1);
        let mut at = |secs| s.on_arrival(Time::from_secs(secs), SPEC, &mut rng);
        assert!(matches!(
            at(0),
            Arrival::Answered {
                response: Response::Ok { .. },
                ..
            }
        ));
        assert!(matches!(
            at(1),
            Arrival::Answered {
                response: Response::ServerError { status: 503 },
                ..
            }
        ));
        assert_eq!(at(3), Arrival::Hung);
        assert!(matches!(
            at(5),
            Arrival::Answered {
                response: Response::QuotaExhausted,
                ..
            }
        ));
        assert!(matches!(
            at(6),
            Arrival::Answered {
                response: Response::Ok { .. },
                ..
            }
        ));
        assert_eq!(s.capacity_per_s(Time::from_secs(3)), Some(0.0));
    }
}
