//! One versioned row under optimistic concurrency control (Brooker's experiment).

use std::time::Duration;

use breakwater_core::{Rng, Time};

use super::slab::{ServiceId, Slab};
use super::storms::Storms;
use super::{Arrival, AttemptSpec, Done, Response, RowOp, ServerStats, Started};
use crate::dist::{ms_to_nanos, standard_normal};
use crate::scenario::{OutageMode, RowSpec};

/// A versioned row. A request travels one network hop to the row, is applied there
/// (a read returns the version; a conditional write succeeds iff the version is the
/// one expected, bumping it), and the answer travels one hop back. Each hop is
/// `|N(mean_ms, sd_ms)|` × a latency storm's factor.
///
/// The request's arrival at the row is the "service done" event, so the version a read
/// sees and the race a write loses are decided in event order.
#[derive(Clone, Debug)]
pub struct RowServer {
    spec: RowSpec,
    version: u64,
    /// Each request on its way: the operation, whether its client gave up, its tag.
    jobs: Slab<(RowOp, bool, u64)>,
    storms: Storms,
    stats: ServerStats,
}

impl RowServer {
    /// A row at version 0.
    #[must_use]
    pub fn new(spec: RowSpec, storms: Storms) -> RowServer {
        RowServer {
            spec,
            version: 0,
            jobs: Slab::new(),
            storms,
            stats: ServerStats::default(),
        }
    }

    fn hop<R: Rng + ?Sized>(&self, now: Time, rng: &mut R) -> Duration {
        let ms = (self.spec.hop_mean_ms + self.spec.hop_sd_ms * standard_normal(rng)).abs();
        Duration::from_nanos(ms_to_nanos(ms * self.storms.at(now).latency))
    }

    /// A request leaves the client at `now`.
    pub fn on_arrival<R: Rng + ?Sized>(
        &mut self,
        now: Time,
        spec: AttemptSpec,
        rng: &mut R,
    ) -> Arrival {
        self.stats.arrivals += 1;
        let e = self.storms.at(now);
        match e.outage {
            Some(OutageMode::Connect) => {
                self.stats.connect_failed += 1;
                Arrival::Answered {
                    at: now + self.hop(now, rng),
                    response: Response::ConnectFailed,
                }
            }
            Some(OutageMode::Timeout) => {
                self.stats.hung += 1;
                Arrival::Hung
            }
            None => {
                let done_at = now + self.hop(now, rng);
                let id = self.jobs.insert((spec.row, false, spec.tag));
                Arrival::Started(Started {
                    id,
                    first_token_at: done_at,
                    done_at,
                })
            }
        }
    }

    /// The request reaches the row at `now`: it is applied, and the answer leaves.
    pub fn on_service_done<R: Rng + ?Sized>(
        &mut self,
        now: Time,
        id: ServiceId,
        rng: &mut R,
    ) -> Option<Done> {
        let (op, abandoned, tag) = self.jobs.remove(id)?;
        self.stats.served += 1;
        self.stats.wasted += u64::from(abandoned);
        let response = match op {
            RowOp::Read => Response::RowRead {
                version: self.version,
            },
            RowOp::Write { expected } if expected == self.version => {
                self.version += 1;
                Response::RowWritten {
                    version: self.version,
                }
            }
            RowOp::Write { .. } => {
                self.stats.failed += 1;
                Response::WriteConflict {
                    version: self.version,
                }
            }
        };
        Some(Done {
            response,
            at: now + self.hop(now, rng),
            abandoned,
            next: None,
            tag,
        })
    }

    /// The client of `id` gave up; the request still reaches the row.
    pub fn abandon(&mut self, id: ServiceId) {
        if let Some(job) = self.jobs.get_mut(id) {
            job.1 = true;
        }
    }

    /// The row's current version.
    #[must_use]
    pub fn version(&self) -> u64 {
        self.version
    }

    /// Unbounded (contention, not capacity, is the limit), zero in an outage.
    #[must_use]
    pub fn capacity_per_s(&self, now: Time) -> Option<f64> {
        self.storms.at(now).outage.map(|_| 0.0)
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
    use breakwater_core::rng::seeded;

    fn spec(row: RowOp) -> AttemptSpec {
        AttemptSpec {
            model: 0,
            input_tokens: 0,
            output_tokens: 0,
            row,
            tag: match row {
                RowOp::Read => 1,
                RowOp::Write { .. } => 2,
            },
        }
    }

    /// A row with 10 ms hops (sd 2 ms) and no storm.
    fn calm_row() -> RowServer {
        RowServer::new(
            RowSpec {
                hop_mean_ms: 10.0,
                hop_sd_ms: 2.0,
            },
            Storms::calm(),
        )
    }

    fn started(a: Arrival) -> Started {
        match a {
            Arrival::Started(s) => s,
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn conditional_writes_conflict_in_event_order() {
        let mut row = calm_row();
        let mut rng = seeded(4);
        // Two clients read version 0.
        let r1 = started(row.on_arrival(Time::ZERO, spec(RowOp::Read), &mut rng));
        let r2 = started(row.on_arrival(Time::ZERO, spec(RowOp::Read), &mut rng));
        let a1 = row.on_service_done(r1.done_at, r1.id, &mut rng).unwrap();
        let a2 = row.on_service_done(r2.done_at, r2.id, &mut rng).unwrap();
        assert_eq!(a1.response, Response::RowRead { version: 0 });
        assert_eq!(a2.response, Response::RowRead { version: 0 });
        assert_eq!(
            (a1.tag, a2.tag),
            (1, 1),
            "an answer carries its attempt's tag"
        );
        assert!(a1.at > r1.done_at);
        // Both write expecting 0: the first to reach the row wins, the second conflicts.
        let w1 = started(row.on_arrival(a1.at, spec(RowOp::Write { expected: 0 }), &mut rng));
        let w2 = started(row.on_arrival(a2.at, spec(RowOp::Write { expected: 0 }), &mut rng));
        let (first, second) = if w1.done_at <= w2.done_at {
            (w1, w2)
        } else {
            (w2, w1)
        };
        let d = row
            .on_service_done(first.done_at, first.id, &mut rng)
            .unwrap();
        assert_eq!(d.response, Response::RowWritten { version: 1 });
        assert_eq!(d.tag, 2);
        let d = row
            .on_service_done(second.done_at, second.id, &mut rng)
            .unwrap();
        assert_eq!(d.response, Response::WriteConflict { version: 1 });
        assert_eq!(row.version(), 1);
        assert_eq!(row.stats().failed, 1);
        // A stale id does nothing.
        assert_eq!(
            row.on_service_done(second.done_at, second.id, &mut rng),
            None
        );
    }

    #[test]
    fn abandoning_a_finished_job_does_nothing() {
        let mut row = calm_row();
        let mut rng = seeded(4);
        let r = started(row.on_arrival(Time::ZERO, spec(RowOp::Read), &mut rng));
        row.on_service_done(r.done_at, r.id, &mut rng).unwrap();
        row.abandon(r.id);
        let w = started(row.on_arrival(r.done_at, spec(RowOp::Write { expected: 0 }), &mut rng));
        assert_eq!(w.id.index(), r.id.index(), "the slot is reused");
        row.abandon(r.id);
        let d = row.on_service_done(w.done_at, w.id, &mut rng).unwrap();
        assert_eq!(d.response, Response::RowWritten { version: 1 });
        assert_eq!(row.stats().wasted, 0);
    }

    #[test]
    fn hops_are_positive_around_their_mean() {
        let row = calm_row();
        let mut rng = seeded(2);
        let hops: Vec<f64> = (0..10_000)
            .map(|_| row.hop(Time::ZERO, &mut rng).as_secs_f64() * 1e3)
            .collect();
        let mean = hops.iter().sum::<f64>() / hops.len() as f64;
        assert!((mean - 10.0).abs() < 0.1, "{mean}");
        assert!(hops.iter().all(|&h| h >= 0.0));
    }
}
