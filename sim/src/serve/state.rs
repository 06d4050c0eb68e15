//! The provider models behind one lock, and the task that drives their timers.
//!
//! Requests call [`Shared::arrive`]; the driver ([`drive`]) calls `on_service_done` at
//! each started job's `done_at` and `handle_timeout` at each storm boundary, in time
//! order, exactly as the simulator's event loop does, and hands jobs that leave the
//! queue to the requests waiting for them. Times passed to the model are the events'
//! own virtual times, not the (slightly later) time the driver woke up.

use std::cmp::Reverse;
use std::collections::{BTreeMap, BinaryHeap};
use std::sync::Arc;

use breakwater_core::Time;
use breakwater_core::rng::{SeededRng, seeded};
use parking_lot::Mutex;
use tokio::sync::{Notify, oneshot, watch};

use super::batch::{BatchSettings, Store};
use super::catalog::{Catalog, Target};
use super::clock::VirtualClock;
use crate::dist::LogNormal;
use crate::engine::derive_seed;
use crate::provider::{
    Arrival, AttemptSpec, Response, RowOp, Server, ServerStats, ServiceId, Started,
};
use crate::scenario::{Scenario, Tokens};

/// Output tokens when the scenario has no client population to take them from.
const DEFAULT_OUTPUT: Tokens = Tokens {
    dist: LogNormal {
        median: 64.0,
        sigma: 0.5,
    },
    max: 1024,
};

/// What the model made of an arrival.
#[derive(Debug)]
pub(crate) enum Admission {
    /// An answer without service, due at `at`.
    Answered {
        /// When it reaches the client.
        at: Time,
        /// The answer.
        response: Response,
    },
    /// Service started.
    Started(Started),
    /// Waiting for a slot: the start comes on the channel.
    Queued {
        /// The job.
        id: ServiceId,
        /// Its start.
        start: oneshot::Receiver<Started>,
    },
    /// No answer, ever.
    Hung,
}

/// An arrival's admission, and the draws for its answer.
#[derive(Debug)]
pub(crate) struct Admitted {
    /// What the model said.
    pub(crate) admission: Admission,
    /// Input tokens, as estimated.
    pub(crate) input_tokens: u32,
    /// Output tokens the answer has: min(max_tokens, drawn).
    pub(crate) output_tokens: u32,
    /// Whether the caller's limit cut the answer short.
    pub(crate) hit_limit: bool,
    /// Seeds the answer's words.
    pub(crate) text_seed: u64,
    /// A number for the response id, unique per server.
    pub(crate) serial: u64,
}

struct Slot {
    server: Server,
    /// The model's own stream, derived as the simulator derives a provider's.
    rng: SeededRng,
    /// Output-token counts and text seeds.
    draws: SeededRng,
}

struct State {
    slots: Vec<Slot>,
    /// Started jobs by `done_at` (then arrival order).
    services: BinaryHeap<Reverse<(Time, u64, usize, ServiceId)>>,
    /// Requests waiting for their queued job to start.
    waiters: BTreeMap<(usize, ServiceId), oneshot::Sender<Started>>,
    sequence: u64,
}

/// Everything the connections and the driver share.
pub(crate) struct Shared {
    pub(crate) clock: VirtualClock,
    pub(crate) catalog: Catalog,
    pub(crate) body_limit: usize,
    /// The batches and files of the batch APIs.
    pub(crate) batches: Mutex<Store>,
    output: Tokens,
    state: Mutex<State>,
    /// Wakes the driver when an earlier event is scheduled.
    wake: Notify,
    stop: watch::Sender<bool>,
}

impl Shared {
    pub(crate) fn new(
        scenario: &Scenario,
        seed: u64,
        clock: VirtualClock,
        body_limit: usize,
        batch: BatchSettings,
    ) -> Shared {
        let catalog = Catalog::of(scenario);
        let slots = catalog
            .scenario_indices()
            .map(|i| Slot {
                server: Server::new(scenario, i),
                rng: seeded(derive_seed(seed, "provider", i as u64)),
                draws: seeded(derive_seed(seed, "serve-output", i as u64)),
            })
            .collect();
        let output = scenario
            .clients
            .first()
            .map_or(DEFAULT_OUTPUT, |c| c.output_tokens);
        Shared {
            clock,
            catalog,
            body_limit,
            batches: Mutex::new(Store::new(batch, scenario.clone(), seed, output)),
            output,
            state: Mutex::new(State {
                slots,
                services: BinaryHeap::new(),
                waiters: BTreeMap::new(),
                sequence: 0,
            }),
            wake: Notify::new(),
            stop: watch::channel(false).0,
        }
    }

    /// An attempt on `target` arrives now.
    pub(crate) fn arrive(
        &self,
        target: Target,
        text_bytes: usize,
        max_tokens: Option<u32>,
    ) -> Admitted {
        let now = self.clock.now();
        let mut state = self.state.lock();
        let state = &mut *state;
        state.sequence += 1;
        let serial = state.sequence;
        let Some(slot) = state.slots.get_mut(target.slot) else {
            // The catalog only hands out slots it has.
            return Admitted {
                admission: Admission::Answered {
                    at: now,
                    response: Response::ServerError { status: 404 },
                },
                input_tokens: 0,
                output_tokens: 0,
                hit_limit: false,
                text_seed: 0,
                serial,
            };
        };
        let drawn = self.output.sample(&mut slot.draws);
        let text_seed = breakwater_core::Rng::next_u64(&mut slot.draws);
        let output_tokens = max_tokens.map_or(drawn, |m| drawn.min(m));
        let input_tokens = u32::try_from(text_bytes / 4).unwrap_or(u32::MAX).max(1);
        let spec = AttemptSpec {
            model: target.model,
            input_tokens,
            output_tokens,
            row: RowOp::Read,
            // Unread: serve finds its jobs by their ids.
            tag: 0,
        };
        let admission = match slot.server.on_arrival(now, spec, &mut slot.rng) {
            Arrival::Answered { at, response } => Admission::Answered { at, response },
            Arrival::Started(started) => {
                state
                    .services
                    .push(Reverse((started.done_at, serial, target.slot, started.id)));
                self.wake.notify_one();
                Admission::Started(started)
            }
            Arrival::Queued { id } => {
                let (tx, rx) = oneshot::channel();
                state.waiters.insert((target.slot, id), tx);
                Admission::Queued { id, start: rx }
            }
            Arrival::Hung => Admission::Hung,
        };
        Admitted {
            admission,
            input_tokens,
            output_tokens,
            hit_limit: max_tokens.is_some_and(|m| drawn >= m),
            text_seed,
            serial,
        }
    }

    /// The client of job `id` went away: the model counts its work as wasted.
    pub(crate) fn abandon(&self, slot: usize, id: ServiceId) {
        let mut state = self.state.lock();
        state.waiters.remove(&(slot, id));
        if let Some(s) = state.slots.get_mut(slot) {
            s.server.abandon(id);
        }
    }

    /// Each served provider's counters.
    pub(crate) fn stats(&self) -> Vec<(String, ServerStats)> {
        let state = self.state.lock();
        self.catalog
            .names()
            .zip(&state.slots)
            .map(|(name, s)| (name.to_owned(), s.server.stats()))
            .collect()
    }

    /// Asks everything to stop.
    pub(crate) fn stop(&self) {
        self.stop.send_replace(true);
    }

    /// Resolves once a stop was asked for.
    pub(crate) async fn stopped(&self) {
        let mut rx = self.stop.subscribe();
        // An error means the sender is gone, which is a stop as well.
        let _ = rx.wait_for(|stopped| *stopped).await;
    }
}

impl State {
    /// The earliest pending event: a service end or a storm boundary.
    fn next_event(&self) -> Option<Time> {
        let service = self.services.peek().map(|Reverse((t, ..))| *t);
        let timers = self.slots.iter().filter_map(|s| s.server.poll_timeout());
        service.into_iter().chain(timers).min()
    }

    /// Handles every event due at or before `now`, in time order.
    fn advance(&mut self, now: Time) {
        while let Some(t) = self.next_event().filter(|&t| t <= now) {
            let mut started = Vec::new();
            let due_service = self
                .services
                .peek()
                .is_some_and(|Reverse((done_at, ..))| *done_at == t);
            if due_service {
                let Some(Reverse((_, _, slot, id))) = self.services.pop() else {
                    continue;
                };
                if let Some(s) = self.slots.get_mut(slot)
                    && let Some(done) = s.server.on_service_done(t, id, &mut s.rng)
                    && let Some(next) = done.next
                {
                    started.push((slot, next));
                }
            } else {
                for (slot, s) in self.slots.iter_mut().enumerate() {
                    if s.server.poll_timeout() == Some(t) {
                        let mut list = Vec::new();
                        s.server.handle_timeout(t, &mut s.rng, &mut list);
                        started.extend(list.into_iter().map(|st| (slot, st)));
                    }
                }
            }
            for (slot, st) in started {
                self.sequence += 1;
                self.services
                    .push(Reverse((st.done_at, self.sequence, slot, st.id)));
                if let Some(waiter) = self.waiters.remove(&(slot, st.id)) {
                    // A waiter that left has abandoned the job already.
                    let _ = waiter.send(st);
                }
            }
        }
    }
}

/// Drives the models' timers until a stop is asked for.
pub(crate) async fn drive(shared: Arc<Shared>) {
    loop {
        let next = shared.state.lock().next_event();
        let sleep = tokio::time::sleep_until(shared.clock.instant(next.unwrap_or(Time::MAX)));
        tokio::select! {
            () = sleep => {}
            () = shared.wake.notified() => {}
            () = shared.stopped() => return,
        }
        let now = shared.clock.now();
        shared.state.lock().advance(now);
    }
}
