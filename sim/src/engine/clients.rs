//! Client populations as the engine sees them: the [`workload`](crate::workload)
//! generators plus the population's own seeded stream and its replicas' numbering.
//!
//! A population draws everything from its own stream — arrival times, request sizes,
//! task kinds, think times — independently of any policy, so every policy sees the
//! same requests at the same instants.

use std::time::Duration;

use breakwater_core::Time;
use breakwater_core::rng::{SeededRng, seeded};

use crate::scenario::Scenario;
use crate::workload::{ClosedLoop, OpenArrivals, draw_request};

/// One client population's generator.
#[derive(Clone, Debug)]
pub struct Population {
    client: crate::scenario::Client,
    open: Option<OpenArrivals>,
    closed: Option<ClosedLoop>,
    rng: SeededRng,
    replica_offset: u32,
}

/// A request a population sends.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct NewRequest {
    /// The replica (global index) that sends it.
    pub replica: u32,
    /// Prompt tokens.
    pub input_tokens: u32,
    /// Output tokens the answer will have.
    pub output_tokens: u32,
    /// Whether it is a deferrable task.
    pub deferrable: bool,
    /// Its total deadline.
    pub deadline: Duration,
}

impl Population {
    /// The generator for `scenario.clients[index]`, whose replicas are numbered from
    /// `replica_offset`.
    #[must_use]
    pub fn new(scenario: &Scenario, index: usize, replica_offset: u32, seed: u64) -> Population {
        Population {
            client: scenario.clients[index].clone(),
            open: OpenArrivals::new(scenario, index),
            closed: ClosedLoop::new(scenario, index),
            rng: seeded(seed),
            replica_offset,
        }
    }

    /// The first arrivals: one for an open loop, one per worker for a closed loop
    /// (`true` marks worker arrivals).
    pub fn first_arrivals(&mut self) -> Vec<(Time, bool)> {
        if let Some(open) = &mut self.open {
            return open
                .next(Time::ZERO, &mut self.rng)
                .map(|t| (t, false))
                .into_iter()
                .collect();
        }
        let workers = self.closed.as_ref().map_or(0, |c| c.workers);
        (0..workers)
            .filter_map(|_| self.think(Time::ZERO).map(|t| (t, true)))
            .collect()
    }

    /// The request arriving now, or `None` when a closed loop is done (past the
    /// duration or its request cap; open loops stop by not arriving).
    pub fn next_request(&mut self, now: Time, worker: bool) -> Option<NewRequest> {
        if worker && !self.closed.as_mut().is_some_and(|c| c.may_send(now)) {
            return None;
        }
        let draw = draw_request(&self.client, &mut self.rng);
        Some(NewRequest {
            replica: self.replica_offset + draw.replica,
            input_tokens: draw.input_tokens,
            output_tokens: draw.output_tokens,
            deferrable: draw.deferrable,
            deadline: self.client.deadline,
        })
    }

    /// The next open-loop arrival after `now`.
    pub fn next_arrival(&mut self, now: Time) -> Option<Time> {
        self.open.as_mut()?.next(now, &mut self.rng)
    }

    /// When a closed-loop worker that finished at `now` sends again.
    pub fn think(&mut self, now: Time) -> Option<Time> {
        let closed = self.closed.as_ref()?;
        Some(now + closed.think(&mut self.rng))
    }
}
