//! The discrete-event engine: clients, breakwater-core plans and server models in
//! virtual time.
//!
//! One [`run_policy`] plays a scenario's traffic against one policy. Events are ordered
//! by (time, sequence) and the clock jumps from one to the next. Every random stream is
//! a ChaCha seeded from the scenario's seed and the entity's name and index — arrival
//! times and request sizes per client population, service times per provider, backoff
//! jitter per client replica — so the traffic is identical for every policy and a run is
//! a pure function of the scenario.
//!
//! The engine decides nothing: each request is a [`Plan`] and the engine only carries
//! out its [`Action`]s, turning server responses into core [`Outcome`]s the way the
//! HTTP adapter turns HTTP responses into them.

mod clients;
mod fleet;
mod outage;
mod queue;

use std::time::Duration;

use breakwater_core::plan::EntryEvent;
use breakwater_core::rng::{SeededRng, seeded};
use breakwater_core::{
    Action, AttemptId, Class, Deadline, ErrorCode, Hints, Metrics, MetricsSnapshot, Outcome, Plan,
    Registry, RequestOptions, Resolution, Rng, Route, TaskKind, Time, TimeoutPhase, Usage,
};

pub use clients::Population;
pub use outage::OutageMeasures;
pub use queue::EventQueue;

use fleet::{FleetEvent, FleetModel};

use crate::measure::{Collector, MeasureConfig, PolicyReport, RequestRecord};
use crate::policy::{PolicySetup, prices};
use crate::provider::{
    Arrival, AttemptSpec, Response, RowOp, Server, ServerStats, ServiceId, Started,
};
use crate::scenario::Scenario;

/// Everything one policy's run produced.
#[derive(Clone, Debug)]
pub struct PolicyRun {
    /// The measures.
    pub report: PolicyReport,
    /// The core's own metrics, all replicas merged, when the setup asked for them
    /// ([`PolicySetup::core_metrics`]).
    pub metrics: Option<MetricsSnapshot>,
    /// Each provider's counters, in scenario order.
    pub servers: Vec<ServerStats>,
    /// Events processed.
    pub events: u64,
    /// Conditional writes sent (the row model's "calls").
    pub row_writes: u64,
    /// When the last request finished.
    pub last_finish: Time,
    /// The start of the scenario's first provider outage, across the client replicas
    /// (kept out of the report, which stays as it was).
    pub outage: Option<OutageMeasures>,
}

/// A setup that cannot run.
#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    /// The policy's registry or route is invalid.
    #[error("policy {policy}: {message}")]
    Policy {
        /// The policy.
        policy: String,
        /// What is wrong.
        message: String,
    },
    /// A route step names a provider or model the scenario lacks.
    #[error(
        "policy {policy}: step {step} names {provider}/{model}, which the scenario does not have"
    )]
    UnknownModel {
        /// The policy.
        policy: String,
        /// The step.
        step: usize,
        /// Its provider.
        provider: String,
        /// Its model.
        model: String,
    },
    /// More requests were in flight at once than the setup allows
    /// ([`RunLimits::in_flight`](crate::policy::RunLimits)).
    #[error(
        "policy {policy}: more than {limit} requests in flight at t = {at}; arrivals \
         outpace answers for too long (lower the rates, or shorten the deadlines)"
    )]
    InFlight {
        /// The policy.
        policy: String,
        /// The limit.
        limit: u32,
        /// When it was crossed.
        at: Time,
    },
    /// Virtual time stopped: more events at one instant than the setup allows
    /// ([`RunLimits::events_per_instant`](crate::policy::RunLimits)).
    #[error(
        "policy {policy}: more than {limit} events at t = {at} without the clock \
         advancing; a closed loop with think_ms = 0 whose answers take no time sends \
         again at the same instant forever (give it a think time or a requests cap)"
    )]
    Stalled {
        /// The policy.
        policy: String,
        /// The limit.
        limit: u64,
        /// The instant.
        at: Time,
    },
}

/// Derives an entity's seed from the root seed, a kind and an index (SplitMix64 over
/// an FNV-1a hash of the kind), so streams are independent and stable.
#[must_use]
pub fn derive_seed(root: u64, kind: &str, index: u64) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in kind.bytes() {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    let mut z = root ^ h ^ index.wrapping_mul(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// Plays `scenario`'s traffic against `setup`.
pub fn run_policy(scenario: &Scenario, setup: &PolicySetup) -> Result<PolicyRun, EngineError> {
    let policy_error = |message: String| EngineError::Policy {
        policy: setup.name.clone(),
        message,
    };
    // Where each route step goes.
    let mut targets = Vec::with_capacity(setup.route.steps.len());
    for (step, s) in setup.route.steps.iter().enumerate() {
        let found = scenario.provider_index(&s.provider).and_then(|p| {
            let models = &scenario.providers[p].models;
            if models.is_empty() {
                Some((p as u32, 0))
            } else {
                models
                    .iter()
                    .position(|m| m.name == s.model)
                    .map(|m| (p as u32, m as u32))
            }
        });
        let Some(target) = found else {
            return Err(EngineError::UnknownModel {
                policy: setup.name.clone(),
                step,
                provider: s.provider.clone(),
                model: s.model.clone(),
            });
        };
        targets.push(target);
    }
    // One registry and bound route per client replica.
    let price_table = prices(scenario);
    let populations_replicas: Vec<u32> =
        scenario.clients.iter().map(|c| c.replicas.max(1)).collect();
    let replica_count: u32 = populations_replicas.iter().sum();
    let mut registries = Vec::with_capacity(replica_count as usize);
    for r in 0..replica_count {
        let mut config = setup.registry.clone();
        config.seed = derive_seed(config.seed ^ scenario.seed, "replica", u64::from(r));
        registries.push(Registry::new(config).map_err(|e| policy_error(e.to_string()))?);
    }
    let routes: Vec<Route> = registries
        .iter()
        .map(|registry| Route::bind(&setup.route, registry, &price_table))
        .collect::<Result<_, _>>()
        .map_err(|e| policy_error(e.to_string()))?;

    let mut sim = Sim::new(scenario, setup, &routes, &registries, targets);
    sim.run()?;
    Ok(sim.finish())
}

/// The requests, by slot. A slot outlives its request: the next request to take it
/// (from `Sim::free`) resets the plan in place and sets the other fields.
struct Slots<'r>(Vec<Req<'r>>);

impl<'r> Slots<'r> {
    /// The request in flight in slot `idx`.
    fn get(&self, idx: u32) -> Option<&Req<'r>> {
        self.0.get(idx as usize).filter(|r| r.live)
    }

    fn get_mut(&mut self, idx: u32) -> Option<&mut Req<'r>> {
        self.0.get_mut(idx as usize).filter(|r| r.live)
    }
}

/// A request, in flight while `live`.
///
/// The generations that make stale events harmless live in the slot, beside the
/// fields read with them: an event's check and its work then read one slot, which
/// matters when the slots outgrow the caches (100,000 clients).
struct Req<'r> {
    plan: Plan<'r>,
    /// Whether the slot holds a request in flight; a finished one's slot is free.
    live: bool,
    /// Bumped on every attempt and when the request ends (an event's `attempt_gen`).
    attempt_gen: u32,
    /// Bumped when the slot is reused (a `Wake` event's `life`).
    life: u32,
    /// The rest of the request in the slot (the last one's, once it is free).
    call: Call,
}

/// A request's own state beside its plan, set whole when the request starts.
struct Call {
    replica: u32,
    population: u32,
    worker: bool,
    start: Time,
    input: u32,
    output: u32,
    /// The attempt out, if any.
    attempt: Option<Out>,
    /// The server job serving the attempt out, if any (kept until the reply arrives,
    /// though the job may have finished: abandoning a finished job does nothing).
    job: Option<ServiceId>,
    /// The plan timer already scheduled.
    wake_at: Time,
    /// Whether the last answer's output was malformed and no validator checked it.
    malformed: bool,
}

/// An attempt out: its id, where it went, and whether its step checks the output.
#[derive(Clone, Copy, Debug)]
struct Out {
    id: AttemptId,
    provider: u32,
    model: u32,
    validated: bool,
}

/// Events, each for an entity; `attempt_gen` fields make stale events harmless.
#[derive(Clone, Copy, Debug)]
enum Ev {
    /// A client population's next arrival (open loop) or a worker's next request.
    Arrival { population: u32, worker: bool },
    /// A plan timer.
    Wake { req: u32, life: u32 },
    /// A response reaches the client.
    Reply {
        req: u32,
        attempt_gen: u32,
        response: Response,
    },
    /// The client's attempt timeout.
    Timeout { req: u32, attempt_gen: u32 },
    /// A server finishes a job.
    ServiceDone { provider: u32, id: ServiceId },
    /// A server's storm boundary.
    ServerTimer { provider: u32 },
    /// Shared state on its way between a replica and the store.
    Fleet(FleetEvent),
}

/// Every request slot holds a request in flight, and the run's limit allows no more.
struct Full;

struct Sim<'r> {
    scenario: &'r Scenario,
    setup: &'r PolicySetup,
    routes: &'r [Route],
    registries: &'r [Registry],
    targets: Vec<(u32, u32)>,
    queue: EventQueue<Ev>,
    servers: Vec<Server>,
    server_rngs: Vec<SeededRng>,
    /// Per provider: the stream that decides which answers are malformed, only for a
    /// provider with a model whose `malformed_output` rate is above zero.
    malformed_rngs: Vec<Option<SeededRng>>,
    populations: Vec<Population>,
    plan_rngs: Vec<SeededRng>,
    requests: Slots<'r>,
    free: Vec<u32>,
    collector: Collector,
    /// The core's metrics, when the setup asked for them.
    metrics: Option<Metrics>,
    row_writes: u64,
    last_finish: Time,
    /// The store and the replicas' fleet machines, for shared state.
    fleet: Option<FleetModel>,
    fleet_out: Vec<(Time, FleetEvent)>,
    outage: Option<OutageMeasures>,
}

impl<'r> Sim<'r> {
    fn new(
        scenario: &'r Scenario,
        setup: &'r PolicySetup,
        routes: &'r [Route],
        registries: &'r [Registry],
        targets: Vec<(u32, u32)>,
    ) -> Sim<'r> {
        let servers: Vec<Server> = (0..scenario.providers.len())
            .map(|i| Server::new(scenario, i))
            .collect();
        let server_rngs = (0..servers.len())
            .map(|i| seeded(derive_seed(scenario.seed, "provider", i as u64)))
            .collect();
        let mut offset = 0;
        let populations = scenario
            .clients
            .iter()
            .enumerate()
            .map(|(i, client)| {
                let p = Population::new(
                    scenario,
                    i,
                    offset,
                    derive_seed(scenario.seed, "clients", i as u64),
                );
                offset += client.replicas.max(1);
                p
            })
            .collect();
        let malformed_rngs = scenario
            .providers
            .iter()
            .enumerate()
            .map(|(i, p)| {
                p.models
                    .iter()
                    .any(|m| m.malformed_output > 0.0)
                    .then(|| seeded(derive_seed(scenario.seed, "malformed", i as u64)))
            })
            .collect();
        let plan_rngs = (0..routes.len())
            .map(|r| seeded(derive_seed(scenario.seed, "plans", r as u64)))
            .collect();
        let fleet = setup
            .fleet
            .shared()
            .then(|| FleetModel::new(&setup.fleet, registries));
        Sim {
            scenario,
            setup,
            routes,
            registries,
            targets,
            queue: EventQueue::new(),
            servers,
            server_rngs,
            malformed_rngs,
            populations,
            plan_rngs,
            requests: Slots(Vec::new()),
            free: Vec::new(),
            collector: Collector::new(MeasureConfig::for_scenario(scenario)),
            metrics: setup.core_metrics.then(Metrics::new),
            row_writes: 0,
            last_finish: Time::ZERO,
            fleet,
            fleet_out: Vec::new(),
            outage: OutageMeasures::for_scenario(scenario, routes.len()),
        }
    }

    fn run(&mut self) -> Result<(), EngineError> {
        for (p, server) in self.servers.iter().enumerate() {
            if let Some(at) = server.poll_timeout() {
                self.queue
                    .schedule(at, Ev::ServerTimer { provider: p as u32 });
            }
        }
        for (i, population) in self.populations.iter_mut().enumerate() {
            for (at, worker) in population.first_arrivals() {
                self.queue.schedule(
                    at,
                    Ev::Arrival {
                        population: i as u32,
                        worker,
                    },
                );
            }
        }
        let limits = self.setup.run_limits;
        // The events since the clock last moved.
        let (mut instant, mut at_instant) = (Time::ZERO, 0u64);
        while let Some((now, event)) = self.queue.pop() {
            if now == instant {
                at_instant += 1;
                if at_instant > limits.events_per_instant {
                    return Err(self.stalled(now));
                }
            } else {
                (instant, at_instant) = (now, 1);
            }
            match event {
                Ev::Arrival { population, worker } => {
                    if let Err(Full) = self.on_arrival(now, population, worker) {
                        return Err(self.full(now));
                    }
                }
                Ev::Wake { req, life } => {
                    if let Some(r) = self.requests.get_mut(req)
                        && r.life == life
                        && r.call.wake_at == now
                    {
                        r.call.wake_at = Time::MAX;
                        self.drive(now, req);
                    }
                }
                Ev::Reply {
                    req,
                    attempt_gen,
                    response,
                } => self.on_reply(now, req, attempt_gen, response),
                Ev::Timeout { req, attempt_gen } => self.on_timeout(now, req, attempt_gen),
                Ev::ServiceDone { provider, id } => self.on_service_done(now, provider, id),
                Ev::ServerTimer { provider } => {
                    let mut started = Vec::new();
                    let p = provider as usize;
                    self.servers[p].handle_timeout(now, &mut self.server_rngs[p], &mut started);
                    for s in started {
                        self.queue
                            .schedule(s.done_at, Ev::ServiceDone { provider, id: s.id });
                    }
                    if let Some(at) = self.servers[p].poll_timeout() {
                        self.queue.schedule(at, Ev::ServerTimer { provider });
                    }
                }
                Ev::Fleet(event) => self.on_fleet(now, event),
            }
        }
        Ok(())
    }

    #[cold]
    fn stalled(&self, now: Time) -> EngineError {
        EngineError::Stalled {
            policy: self.setup.name.clone(),
            limit: self.setup.run_limits.events_per_instant,
            at: now,
        }
    }

    #[cold]
    fn full(&self, now: Time) -> EngineError {
        EngineError::InFlight {
            policy: self.setup.name.clone(),
            limit: self.setup.run_limits.in_flight,
            at: now,
        }
    }

    /// Starts the request arriving now; `Err` when it would pass the in-flight limit.
    fn on_arrival(&mut self, now: Time, population: u32, worker: bool) -> Result<(), Full> {
        let pop = &mut self.populations[population as usize];
        let Some(new) = pop.next_request(now, worker) else {
            return Ok(());
        };
        if let Some(outage) = &mut self.outage {
            outage.on_request(now);
        }
        if !worker && let Some(at) = pop.next_arrival(now) {
            self.queue.schedule(at, Ev::Arrival { population, worker });
        }
        let deadline = if self.setup.client.deadline {
            Deadline::after(now, new.deadline)
        } else {
            Deadline::unbounded(now)
        };
        let kind = if new.deferrable {
            TaskKind::Deferrable
        } else {
            TaskKind::Interactive
        };
        let options = RequestOptions {
            input_tokens: new.input_tokens,
            max_output_tokens: new.output_tokens,
            ..RequestOptions::default()
        };
        let route = &self.routes[new.replica as usize];
        let call = Call {
            replica: new.replica,
            population,
            worker,
            start: now,
            input: new.input_tokens,
            output: new.output_tokens,
            attempt: None,
            job: None,
            wake_at: Time::MAX,
            malformed: false,
        };
        // A free slot's plan is reset in place: a new plan is a few hundred bytes,
        // and writing one whole into the slot was a memcpy per request.
        let idx = match self.free.pop() {
            Some(idx) => {
                let req = &mut self.requests.0[idx as usize];
                req.plan.reset(route, kind, deadline, options);
                req.live = true;
                req.life = req.life.wrapping_add(1);
                req.call = call;
                idx
            }
            None => {
                // No free slot: every slot holds a request in flight.
                if self.requests.0.len() >= self.setup.run_limits.in_flight as usize {
                    return Err(Full);
                }
                self.requests.0.push(Req {
                    plan: Plan::new(route, kind, deadline, options),
                    live: true,
                    attempt_gen: 0,
                    life: 0,
                    call,
                });
                (self.requests.0.len() - 1) as u32
            }
        };
        self.drive(now, idx);
        Ok(())
    }

    /// Polls request `idx`'s plan and carries out what it says until it waits; then
    /// the request's replica looks at its shared state.
    fn drive(&mut self, now: Time, idx: u32) {
        let Some(replica) = self.requests.get(idx).map(|r| r.call.replica) else {
            return;
        };
        self.drive_plan(now, idx);
        self.after_step(now, replica);
    }

    fn drive_plan(&mut self, now: Time, idx: u32) {
        loop {
            let Some(req) = self.requests.get_mut(idx) else {
                return;
            };
            // A finished plan's poll would only hand back a copy of its finish.
            if req.plan.is_finished() {
                self.finish_request(now, idx);
                return;
            }
            let action = req
                .plan
                .poll(now, &mut self.plan_rngs[req.call.replica as usize]);
            match action {
                Action::Attempt(attempt) => {
                    let (provider, model) = self.targets[attempt.step];
                    req.call.attempt = Some(Out {
                        id: attempt.id,
                        provider,
                        model,
                        validated: attempt.validator.is_some(),
                    });
                    req.attempt_gen = req.attempt_gen.wrapping_add(1);
                    let attempt_gen = req.attempt_gen;
                    let spec = AttemptSpec {
                        model,
                        input_tokens: req.call.input,
                        output_tokens: req.call.output,
                        row: RowOp::Read,
                        tag: job_tag(idx, attempt_gen),
                    };
                    self.collector
                        .on_attempt(now, provider as usize, attempt.attempt > 1);
                    if let Some(outage) = &mut self.outage {
                        outage.on_attempt(now, provider as usize);
                    }
                    let timeout_at = now + attempt.timeout;
                    if !self.send(now, idx, attempt_gen, provider, spec, timeout_at) {
                        self.queue.schedule(
                            timeout_at,
                            Ev::Timeout {
                                req: idx,
                                attempt_gen,
                            },
                        );
                    }
                    return;
                }
                Action::Wait { until } => {
                    if until != Time::MAX && until < req.call.wake_at {
                        req.call.wake_at = until;
                        self.queue.schedule(
                            until,
                            Ev::Wake {
                                req: idx,
                                life: req.life,
                            },
                        );
                    }
                    return;
                }
                Action::Notice(_) => {}
                Action::LookupCache => req.plan.on_cache(now, false),
                // Read from the plan, where it lies (a degraded finish comes this way;
                // a plan finished by its last outcome is caught before the poll).
                Action::Finish(_) => {
                    self.finish_request(now, idx);
                    return;
                }
            }
        }
    }

    /// Sends an attempt (or a row write) to `provider`. Returns whether its answer is
    /// already scheduled to arrive by `timeout_at` (no timeout event needed).
    fn send(
        &mut self,
        now: Time,
        idx: u32,
        attempt_gen: u32,
        provider: u32,
        spec: AttemptSpec,
        timeout_at: Time,
    ) -> bool {
        let p = provider as usize;
        match self.servers[p].on_arrival(now, spec, &mut self.server_rngs[p]) {
            Arrival::Answered { at, response } => {
                self.queue.schedule(
                    at,
                    Ev::Reply {
                        req: idx,
                        attempt_gen,
                        response,
                    },
                );
                at <= timeout_at
            }
            Arrival::Started(Started { id, done_at, .. }) => {
                self.track_job(idx, id);
                self.queue
                    .schedule(done_at, Ev::ServiceDone { provider, id });
                // The answer is scheduled when the service ends, at `done_at`: before a
                // timeout at any later instant, which then needs no event. A timeout at
                // `done_at` itself, scheduled now, pops before that answer and wins.
                self.servers[p].answers_when_done() && done_at < timeout_at
            }
            Arrival::Queued { id } => {
                self.track_job(idx, id);
                false
            }
            Arrival::Hung => false,
        }
    }

    /// Request `idx` is served by job `id` (which carries the request's tag, so the
    /// server's answer finds the request; the request keeps the id to abandon it).
    fn track_job(&mut self, idx: u32, id: ServiceId) {
        if let Some(req) = self.requests.get_mut(idx) {
            req.call.job = Some(id);
        }
    }

    fn on_service_done(&mut self, now: Time, provider: u32, id: ServiceId) {
        let p = provider as usize;
        let Some(done) = self.servers[p].on_service_done(now, id, &mut self.server_rngs[p]) else {
            return;
        };
        if let Some(next) = done.next {
            self.queue.schedule(
                next.done_at,
                Ev::ServiceDone {
                    provider,
                    id: next.id,
                },
            );
        }
        // An abandoned job's request has moved on (its timeout fired): no answer.
        if !done.abandoned {
            // The request's slot is not touched here: its `call.job` keeps the finished
            // job's id until the reply arrives (or the timeout fires first, whose
            // `abandon` of a finished id is a no-op: the server's ids carry
            // generations). With many requests in flight the slot is out of cache by
            // now, and the reply reads it again anyway.
            let (req, attempt_gen) = tagged_request(done.tag);
            self.queue.schedule(
                done.at,
                Ev::Reply {
                    req,
                    attempt_gen,
                    response: done.response,
                },
            );
        }
    }

    fn current(&self, idx: u32, attempt_gen: u32) -> bool {
        self.requests
            .get(idx)
            .is_some_and(|r| r.attempt_gen == attempt_gen && r.call.attempt.is_some())
    }

    fn on_timeout(&mut self, now: Time, idx: u32, attempt_gen: u32) {
        if !self.current(idx, attempt_gen) {
            return;
        }
        let Some(req) = self.requests.get_mut(idx) else {
            return;
        };
        let Some(Out { id, provider, .. }) = req.call.attempt.take() else {
            return;
        };
        if let Some(job) = req.call.job.take() {
            self.servers[provider as usize].abandon(job);
        }
        let outcome = Outcome::TimedOut {
            phase: TimeoutPhase::BeforeHeaders,
        };
        req.plan.on_outcome(now, id, outcome, Usage::default());
        self.drive(now, idx);
    }

    fn on_reply(&mut self, now: Time, idx: u32, attempt_gen: u32, response: Response) {
        if !self.current(idx, attempt_gen) {
            return;
        }
        let Some(req) = self.requests.get_mut(idx) else {
            return;
        };
        let Some(out) = req.call.attempt else {
            return;
        };
        let provider = out.provider;
        if let Response::RowRead { version } = response {
            // The read half of an optimistic-concurrency attempt: now the write.
            self.row_writes += 1;
            let spec = AttemptSpec {
                model: 0,
                input_tokens: req.call.input,
                output_tokens: req.call.output,
                row: RowOp::Write { expected: version },
                tag: job_tag(idx, attempt_gen),
            };
            // The attempt's timeout event is already scheduled (a row attempt is never
            // answered at once), so the write needs none of its own.
            self.send(now, idx, attempt_gen, provider, spec, Time::ZERO);
            return;
        }
        req.call.attempt = None;
        req.call.job = None;
        let (mut outcome, usage) = outcome(response, self.setup.client.retry_after_max);
        if matches!(outcome, Outcome::Success)
            && let Some(rng) = &mut self.malformed_rngs[provider as usize]
        {
            let p = self.scenario.providers[provider as usize].models[out.model as usize]
                .malformed_output;
            // A draw only for a model that can be malformed, so a model at zero leaves
            // the stream (and every other model's draws) as they were.
            if p > 0.0 && rng.next_f64() < p {
                if out.validated {
                    outcome = Outcome::InvalidOutput;
                } else {
                    req.call.malformed = true;
                }
            }
        }
        req.plan.on_outcome(now, out.id, outcome, usage);
        self.drive(now, idx);
    }
}

/// The tag an attempt's server job carries: the request's slot and the attempt's
/// generation, so the server's answer finds its request (and a stale one is told apart).
fn job_tag(idx: u32, attempt_gen: u32) -> u64 {
    (u64::from(idx) << 32) | u64::from(attempt_gen)
}

/// The slot and attempt generation of a [`job_tag`].
fn tagged_request(tag: u64) -> (u32, u32) {
    ((tag >> 32) as u32, tag as u32)
}

/// A server response as the core sees it: what the HTTP adapter would make of the same
/// status, headers and body (Retry-After clamped to `retry_after_max`, or ignored).
fn outcome(response: Response, retry_after_max: Option<Duration>) -> (Outcome, Usage) {
    {
        let status = |status: u16, error: Option<ErrorCode>, retry_after: Option<Duration>| {
            Outcome::Status {
                status,
                error,
                hints: Hints {
                    retry_after,
                    should_retry: None,
                },
            }
        };
        match response {
            Response::Ok {
                input_tokens,
                output_tokens,
            } => (Outcome::Success, Usage::new(input_tokens, output_tokens)),
            Response::RateLimited { retry_after } => {
                let hint = retry_after_max
                    .map(|max| retry_after.min(max))
                    .filter(|d| !d.is_zero());
                (
                    status(429, Some(ErrorCode::RateLimited), hint),
                    Usage::default(),
                )
            }
            Response::QuotaExhausted => (
                status(429, Some(ErrorCode::InsufficientQuota), None),
                Usage::default(),
            ),
            Response::Overloaded => (
                status(529, Some(ErrorCode::Overloaded), None),
                Usage::default(),
            ),
            Response::ServerError { status: code } => (status(code, None, None), Usage::default()),
            Response::ConnectFailed => (Outcome::ConnectFailed, Usage::default()),
            Response::RowWritten { .. } => (Outcome::Success, Usage::default()),
            Response::WriteConflict { .. } => (status(409, None, None), Usage::default()),
            // Handled in `on_reply`; a stray one is a malformed answer.
            Response::RowRead { .. } => (Outcome::MalformedBody, Usage::default()),
        }
    }
}

impl Sim<'_> {
    /// Request `idx`'s plan has finished: records it and frees its slot.
    fn finish_request(&mut self, now: Time, idx: u32) {
        // Read in place, and the slot kept for the next request: taking the request
        // out would copy it. The finish too is read in place: a poll's `Finished`
        // owns a copy of the history, up to `max_history` entries for a request that
        // retried through a storm (6% of the default run's time).
        let Some(req) = self.requests.get_mut(idx) else {
            return;
        };
        let Some(finished) = req.plan.finish() else {
            return;
        };
        let (resolution, attempts, cost, retry_cost) = (
            finished.resolution,
            finished.attempts,
            finished.cost,
            finished.retry_cost,
        );
        let (start, replica, population, worker) = (
            req.call.start,
            req.call.replica,
            req.call.population,
            req.call.worker,
        );
        let malformed = req.call.malformed;
        req.live = false;
        req.attempt_gen = req.attempt_gen.wrapping_add(1);
        self.free.push(idx);
        // The slot is free but untouched until a new request takes it: its plan still
        // holds the finish, read below by index (the live-only accessors skip it now).
        let plan = &self.requests.0[idx as usize].plan;
        let resolution = match resolution {
            Resolution::Success { .. } => crate::measure::Resolution::Success,
            Resolution::Degraded { .. } => crate::measure::Resolution::Degraded,
            Resolution::Queued { .. } => crate::measure::Resolution::Queued,
            Resolution::Failed { .. } => crate::measure::Resolution::Failed,
        };
        if self.malformed_rngs.iter().any(Option::is_some) {
            for entry in plan.history().entries() {
                if let EntryEvent::Attempt {
                    class: Class::InvalidOutput,
                    cost,
                    ..
                } = entry.event
                {
                    self.collector
                        .on_invalid_output(entry.at, cost.nanodollars());
                }
            }
        }
        self.collector.on_request(&RequestRecord {
            start,
            end: now,
            resolution,
            attempts,
            cost_nanodollars: cost.nanodollars(),
            retry_cost_nanodollars: retry_cost.nanodollars(),
            malformed: malformed && resolution == crate::measure::Resolution::Success,
        });
        if let Some(metrics) = &mut self.metrics
            && let Some(finished) = plan.finish()
        {
            metrics.record(&self.routes[replica as usize], &finished.to_finished());
        }
        self.last_finish = self.last_finish.max(now);
        if worker && let Some(at) = self.populations[population as usize].think(now) {
            self.queue.schedule(
                at,
                Ev::Arrival {
                    population,
                    worker: true,
                },
            );
        }
    }

    fn finish(self) -> PolicyRun {
        let mix = self.scenario.token_mix();
        let servers = &self.servers;
        let report = self.collector.finish(&self.setup.name, |provider, t| {
            servers.get(provider).and_then(|s| s.capacity_per_s(t, mix))
        });
        PolicyRun {
            report,
            metrics: self.metrics.as_ref().map(Metrics::snapshot),
            servers: self.servers.iter().map(Server::stats).collect(),
            events: self.queue.popped(),
            row_writes: self.row_writes,
            last_finish: self.last_finish,
            outage: self.outage,
        }
    }
}

/// Runs every policy on the same traffic, spread over `threads` threads; the results
/// come back in `setups` order whatever the timing.
pub fn run_all(
    scenario: &Scenario,
    setups: &[PolicySetup],
    threads: usize,
) -> Result<Vec<PolicyRun>, EngineError> {
    let next = std::sync::atomic::AtomicUsize::new(0);
    let slots: Vec<std::sync::Mutex<Option<Result<PolicyRun, EngineError>>>> =
        setups.iter().map(|_| std::sync::Mutex::new(None)).collect();
    std::thread::scope(|s| {
        for _ in 0..threads.clamp(1, setups.len().max(1)) {
            s.spawn(|| {
                loop {
                    let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    let Some(setup) = setups.get(i) else { break };
                    let result = run_policy(scenario, setup);
                    if let Ok(mut slot) = slots[i].lock() {
                        *slot = Some(result);
                    }
                }
            });
        }
    });
    slots
        .into_iter()
        .zip(setups)
        .map(|(slot, setup)| {
            slot.into_inner().ok().flatten().unwrap_or_else(|| {
                Err(EngineError::Policy {
                    policy: setup.name.clone(),
                    message: "its run panicked".to_owned(),
                })
            })
        })
        .collect()
}
