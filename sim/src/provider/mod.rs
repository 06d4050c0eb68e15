//! The server models: event-driven state machines the engine feeds with arrivals and
//! service completions, in virtual time.
//!
//! # How the engine drives a [`Server`]
//!
//! - An attempt reaches the provider: [`Server::on_arrival`]. The answer is
//!   [`Arrival::Answered`] (a response that reaches the client at `at`: 429, 529,
//!   connect error, a flaky call's result…), [`Arrival::Started`] (call
//!   [`Server::on_service_done`] at `done_at`), [`Arrival::Queued`] (it starts when a
//!   later completion or timeout says so) or [`Arrival::Hung`] (no answer, ever: the
//!   client's timeout decides).
//! - At a `done_at`: [`Server::on_service_done`] gives the response, when it reaches
//!   the client, and possibly the next queued job that started.
//! - At [`Server::poll_timeout`]: [`Server::handle_timeout`] (storm boundaries may free
//!   slots and start queued jobs). A spurious call is a harmless no-op.
//! - A client gave up on a job: [`Server::abandon`]. The work is NOT cancelled — the slot
//!   stays busy until its service ends, as real providers do; the call only counts it.
//!
//! Storms act through the time: each call looks up the [`Effects`] in force at `now`.
//! No call allocates in steady state (queues are `VecDeque`s, jobs live in a slab).

mod bucket;
mod flaky;
mod llm;
mod row;
mod slab;
mod storms;

use std::time::Duration;

use breakwater_core::{Rng, Time};
use serde::Serialize;

pub use bucket::{TokenBucket, retry_after_secs};
pub use flaky::FlakyServer;
pub use llm::LlmServer;
pub use row::RowServer;
pub use slab::ServiceId;
pub use storms::{Effects, Storms};

use crate::scenario::{ProviderKind, Scenario, StormTarget, TokenMix};

/// What an attempt asks of a provider.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AttemptSpec {
    /// The model's index in the provider's `models` (the key).
    pub model: u32,
    /// Input tokens (LLM providers).
    pub input_tokens: u32,
    /// Output tokens the answer will have (LLM providers).
    pub output_tokens: u32,
    /// The operation (row providers; others ignore it).
    pub row: RowOp,
    /// The driver's own reference for this attempt, handed back unread in
    /// [`Done::tag`], so the driver finds its request without a table of its own.
    pub tag: u64,
}

/// An operation on the contended row.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum RowOp {
    /// Read the row's version.
    #[default]
    Read,
    /// Write iff the version is still `expected`.
    Write {
        /// The version the client read.
        expected: u64,
    },
}

/// What a provider answered. The driver maps these to core outcomes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Response {
    /// 200 with the answer's usage.
    Ok {
        /// Input tokens billed.
        input_tokens: u32,
        /// Output tokens billed.
        output_tokens: u32,
    },
    /// 429 from a rate limit, with the `retry-after` its bucket implies (whole seconds).
    RateLimited {
        /// When enough capacity will have refilled, rounded up to whole seconds.
        retry_after: Duration,
    },
    /// 429 `insufficient_quota`: permanent until someone pays.
    QuotaExhausted,
    /// 529 `overloaded_error` (or 503 from a full queue).
    Overloaded,
    /// A failure status (a flaky provider's 503, or 404 for an unknown model index).
    ServerError {
        /// The HTTP status.
        status: u16,
    },
    /// The connection was refused.
    ConnectFailed,
    /// The row's version, read.
    RowRead {
        /// The version at the time the read reached the row.
        version: u64,
    },
    /// The conditional write succeeded.
    RowWritten {
        /// The row's new version.
        version: u64,
    },
    /// The conditional write lost: the version had changed.
    WriteConflict {
        /// The row's current version.
        version: u64,
    },
}

/// The immediate result of an arrival.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Arrival {
    /// Answered without service; the answer reaches the client at `at`.
    Answered {
        /// When the client receives it.
        at: Time,
        /// The answer.
        response: Response,
    },
    /// Service started; call [`Server::on_service_done`] at `done_at`.
    Started(Started),
    /// Waiting for a slot: it will appear as `next` of a completion or from
    /// [`Server::handle_timeout`].
    Queued {
        /// The job.
        id: ServiceId,
    },
    /// No answer will ever come (an outage in `timeout` mode).
    Hung,
}

/// A job that entered service.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Started {
    /// The job.
    pub id: ServiceId,
    /// When the first output token is ready (`done_at` for models without tokens): a
    /// live driver paces a stream between it and `done_at`.
    pub first_token_at: Time,
    /// When its service ends.
    pub done_at: Time,
}

/// A finished service.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Done {
    /// The answer.
    pub response: Response,
    /// When it reaches the client (≥ the completion time).
    pub at: Time,
    /// Whether the job's client had given up ([`Server::abandon`]): wasted work.
    pub abandoned: bool,
    /// The queued job that took the freed slot, if any.
    pub next: Option<Started>,
    /// The finished job's [`AttemptSpec::tag`].
    pub tag: u64,
}

/// Counters a server keeps (for reports and tests).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct ServerStats {
    /// Attempts that arrived.
    pub arrivals: u64,
    /// Services that completed.
    pub served: u64,
    /// Completed services whose client had already given up.
    pub wasted: u64,
    /// 429s from rate limits.
    pub rate_limited: u64,
    /// 529s (queue depth, storms, full queue).
    pub overloaded: u64,
    /// Failures (flaky statuses, conflicts).
    pub failed: u64,
    /// Connect errors.
    pub connect_failed: u64,
    /// Hung attempts.
    pub hung: u64,
    /// Quota 429s.
    pub quota: u64,
    /// The deepest the queue has been.
    pub max_queue: u64,
}

/// One provider's server model.
#[derive(Clone, Debug)]
pub enum Server {
    /// An LLM API.
    Llm(LlmServer),
    /// A flaky dependency.
    Flaky(FlakyServer),
    /// A contended row.
    Row(RowServer),
}

impl Server {
    /// The server for `scenario.providers[index]`, with its storms.
    ///
    /// # Panics
    ///
    /// If `index` is out of range.
    #[must_use]
    pub fn new(scenario: &Scenario, index: usize) -> Server {
        let p = &scenario.providers[index];
        let storms = Storms::for_target(&scenario.storms, StormTarget::Provider(index));
        match &p.kind {
            ProviderKind::Llm(spec) => Server::Llm(LlmServer::new(*spec, &p.models, storms)),
            ProviderKind::Flaky(spec) => Server::Flaky(FlakyServer::new(*spec, &p.models, storms)),
            ProviderKind::Row(spec) => Server::Row(RowServer::new(*spec, storms)),
        }
    }

    /// An attempt arrives at `now`.
    pub fn on_arrival<R: Rng + ?Sized>(
        &mut self,
        now: Time,
        spec: AttemptSpec,
        rng: &mut R,
    ) -> Arrival {
        match self {
            Server::Llm(s) => s.on_arrival(now, spec, rng),
            Server::Flaky(s) => s.on_arrival(now, spec, rng),
            Server::Row(s) => s.on_arrival(now, spec, rng),
        }
    }

    /// The service of `id` ends at `now`. `None` for an unknown or stale id.
    pub fn on_service_done<R: Rng + ?Sized>(
        &mut self,
        now: Time,
        id: ServiceId,
        rng: &mut R,
    ) -> Option<Done> {
        match self {
            Server::Llm(s) => s.on_service_done(now, id, rng),
            Server::Flaky(_) => None,
            Server::Row(s) => s.on_service_done(now, id, rng),
        }
    }

    /// Whether a started job's answer reaches the client the moment its service ends,
    /// whatever happens meanwhile: an LLM's answer does (a storm never cuts a running
    /// job short, and only the client abandons one); a row's answer travels back a hop,
    /// and a flaky server starts no job.
    #[must_use]
    pub fn answers_when_done(&self) -> bool {
        matches!(self, Server::Llm(_))
    }

    /// The client of `id` gave up. The work goes on; this only counts it as wasted.
    pub fn abandon(&mut self, id: ServiceId) {
        match self {
            Server::Llm(s) => s.abandon(id),
            Server::Flaky(_) => {}
            Server::Row(s) => s.abandon(id),
        }
    }

    /// When [`handle_timeout`](Self::handle_timeout) should next be called.
    #[must_use]
    pub fn poll_timeout(&self) -> Option<Time> {
        match self {
            Server::Llm(s) => s.poll_timeout(),
            Server::Flaky(_) | Server::Row(_) => None,
        }
    }

    /// Storm boundaries: starts queued jobs that now fit, appending them to `started`.
    pub fn handle_timeout<R: Rng + ?Sized>(
        &mut self,
        now: Time,
        rng: &mut R,
        started: &mut Vec<Started>,
    ) {
        if let Server::Llm(s) = self {
            s.handle_timeout(now, rng, started);
        }
    }

    /// Requests per second this provider could serve at `now` (for offered load ÷
    /// capacity), `None` when unbounded. See each model for its definition.
    #[must_use]
    pub fn capacity_per_s(&self, now: Time, mix: TokenMix) -> Option<f64> {
        match self {
            Server::Llm(s) => Some(s.capacity_per_s(now, mix)),
            Server::Flaky(s) => s.capacity_per_s(now),
            Server::Row(s) => s.capacity_per_s(now),
        }
    }

    /// The server's counters.
    #[must_use]
    pub fn stats(&self) -> ServerStats {
        match self {
            Server::Llm(s) => s.stats(),
            Server::Flaky(s) => s.stats(),
            Server::Row(s) => s.stats(),
        }
    }
}
