//! An LLM API: per-key rate limits, shared concurrency slots, a FIFO queue, overload.

use std::collections::VecDeque;
use std::time::Duration;

use breakwater_core::{Rng, Time};

use super::bucket::{TokenBucket, retry_after_secs};
use super::slab::{ServiceId, Slab};
use super::storms::{Effects, Storms};
use super::{Arrival, AttemptSpec, Done, Response, ServerStats, Started};
use crate::dist::{bernoulli, ms_to_nanos};
use crate::scenario::{LlmSpec, Model, TokenMix};

/// An LLM provider's server.
///
/// An arrival meets, in order: an outage or quota storm (answered at once); the key's
/// request, input-token and output-token buckets (a 429 whose `retry-after` is the
/// refill time rounded up to whole seconds; all three are charged on admission, output
/// tokens as providers charge `max_tokens`); overload (a 529 with probability rising
/// linearly from 0 at `overload_start` queued to 1 at `overload_full`, combined with a
/// storm's extra `p`); then a free slot (service starts) or the queue (529 when full).
/// Service time is `(ttft + output_tokens × per_token) × model factor × storm factor`,
/// drawn when service starts.
#[derive(Clone, Debug)]
pub struct LlmServer {
    spec: LlmSpec,
    keys: Vec<KeyState>,
    storms: Storms,
    busy: u32,
    queue: VecDeque<ServiceId>,
    jobs: Slab<Job>,
    /// Storm boundaries up to here have been handled.
    handled: Time,
    stats: ServerStats,
}

#[derive(Clone, Debug)]
struct KeyState {
    rpm: Option<TokenBucket>,
    input_tpm: Option<TokenBucket>,
    output_tpm: Option<TokenBucket>,
    latency_factor: f64,
}

#[derive(Clone, Copy, Debug)]
struct Job {
    /// The driver's [`AttemptSpec::tag`].
    tag: u64,
    model: u32,
    input_tokens: u32,
    output_tokens: u32,
    abandoned: bool,
    running: bool,
}

impl LlmServer {
    /// A server for `spec` with one key per model.
    #[must_use]
    pub fn new(spec: LlmSpec, models: &[Model], storms: Storms) -> LlmServer {
        let bucket = |limit: Option<f64>| limit.map(|l| TokenBucket::new(l, spec.burst_s));
        LlmServer {
            spec,
            keys: models
                .iter()
                .map(|m| KeyState {
                    rpm: bucket(m.limits.rpm),
                    input_tpm: bucket(m.limits.input_tpm),
                    output_tpm: bucket(m.limits.output_tpm),
                    latency_factor: m.latency_factor,
                })
                .collect(),
            storms,
            busy: 0,
            queue: VecDeque::new(),
            jobs: Slab::new(),
            handled: Time::ZERO,
            stats: ServerStats::default(),
        }
    }

    fn reject(&self, now: Time, response: Response) -> Arrival {
        Arrival::Answered {
            at: now + self.spec.reject,
            response,
        }
    }

    fn slots(&self, e: &Effects) -> u32 {
        // The product is in [0, concurrency]; `as` truncates toward zero.
        (f64::from(self.spec.concurrency) * e.concurrency.clamp(0.0, 1e9)) as u32
    }

    /// The 529 probability for a queue `depth` deep, before storms.
    #[must_use]
    pub fn queue_overload_p(&self, depth: usize) -> f64 {
        let (start, full) = (
            f64::from(self.spec.overload_start),
            f64::from(self.spec.overload_full),
        );
        ((depth as f64 - start) / (full - start)).clamp(0.0, 1.0)
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
        match e.outage {
            Some(crate::scenario::OutageMode::Connect) => {
                self.stats.connect_failed += 1;
                return self.reject(now, Response::ConnectFailed);
            }
            Some(crate::scenario::OutageMode::Timeout) => {
                self.stats.hung += 1;
                return Arrival::Hung;
            }
            None => {}
        }
        if e.quota {
            self.stats.quota += 1;
            return self.reject(now, Response::QuotaExhausted);
        }
        let Some(key) = self.keys.get_mut(spec.model as usize) else {
            self.stats.failed += 1;
            return self.reject(now, Response::ServerError { status: 404 });
        };
        if let Some(wait) = admit(key, now, &spec, e.capacity) {
            self.stats.rate_limited += 1;
            let wait = if wait == Duration::MAX {
                // No capacity at all: come back when the storm changes, or in a minute.
                self.storms
                    .next_change(now)
                    .map_or(Duration::from_secs(60), |t| t - now)
            } else {
                wait
            };
            return self.reject(
                now,
                Response::RateLimited {
                    retry_after: retry_after_secs(wait),
                },
            );
        }
        let p_queue = self.queue_overload_p(self.queue.len());
        let p = 1.0 - (1.0 - p_queue) * (1.0 - e.overload_p);
        if bernoulli(rng, p) {
            self.stats.overloaded += 1;
            return self.reject(now, Response::Overloaded);
        }
        let job = Job {
            tag: spec.tag,
            model: spec.model,
            input_tokens: spec.input_tokens,
            output_tokens: spec.output_tokens,
            abandoned: false,
            running: false,
        };
        if self.queue.is_empty() && self.busy < self.slots(&e) {
            let id = self.jobs.insert(job);
            return Arrival::Started(self.start(now, id, &e, rng));
        }
        if self.queue.len() >= self.spec.queue_limit as usize {
            self.stats.overloaded += 1;
            return self.reject(now, Response::Overloaded);
        }
        let id = self.jobs.insert(job);
        self.queue.push_back(id);
        self.stats.max_queue = self.stats.max_queue.max(self.queue.len() as u64);
        Arrival::Queued { id }
    }

    fn start<R: Rng + ?Sized>(
        &mut self,
        now: Time,
        id: ServiceId,
        e: &Effects,
        rng: &mut R,
    ) -> Started {
        self.busy += 1;
        let (model, output) = match self.jobs.get_mut(id) {
            Some(job) => {
                job.running = true;
                (job.model, job.output_tokens)
            }
            None => (0, 0),
        };
        let factor = self
            .keys
            .get(model as usize)
            .map_or(1.0, |k| k.latency_factor)
            * e.latency;
        let ttft = self.spec.ttft_ms.sample(rng);
        let per_token = self.spec.per_token_ms.sample(rng);
        let ms = (ttft + f64::from(output) * per_token) * factor;
        let done_at = now + Duration::from_nanos(ms_to_nanos(ms));
        Started {
            id,
            // The same draws: the first token's time is derived, never drawn, so the
            // simulator's random streams are unchanged.
            first_token_at: (now + Duration::from_nanos(ms_to_nanos(ttft * factor))).min(done_at),
            done_at,
        }
    }

    /// Starts queued jobs while slots are free at `now`.
    fn drain<R: Rng + ?Sized>(&mut self, now: Time, rng: &mut R, mut out: impl FnMut(Started)) {
        let e = self.storms.at(now);
        while self.busy < self.slots(&e) {
            let Some(id) = self.queue.pop_front() else {
                break;
            };
            out(self.start(now, id, &e, rng));
        }
    }

    /// The service of `id` ends at `now`.
    pub fn on_service_done<R: Rng + ?Sized>(
        &mut self,
        now: Time,
        id: ServiceId,
        rng: &mut R,
    ) -> Option<Done> {
        if !self.jobs.get_mut(id)?.running {
            return None;
        }
        let job = self.jobs.remove(id)?;
        self.busy = self.busy.saturating_sub(1);
        self.stats.served += 1;
        self.stats.wasted += u64::from(job.abandoned);
        let mut next = None;
        self.drain(now, rng, |s| next = Some(s));
        Some(Done {
            response: Response::Ok {
                input_tokens: job.input_tokens,
                output_tokens: job.output_tokens,
            },
            at: now,
            abandoned: job.abandoned,
            next,
            tag: job.tag,
        })
    }

    /// The client of `id` gave up; its work goes on.
    pub fn abandon(&mut self, id: ServiceId) {
        if let Some(job) = self.jobs.get_mut(id) {
            job.abandoned = true;
        }
    }

    /// The next storm boundary not yet handled.
    #[must_use]
    pub fn poll_timeout(&self) -> Option<Time> {
        self.storms
            .boundaries()
            .iter()
            .copied()
            .find(|&t| t > self.handled)
    }

    /// Handles storm boundaries up to `now`: starts queued jobs that fit.
    pub fn handle_timeout<R: Rng + ?Sized>(
        &mut self,
        now: Time,
        rng: &mut R,
        started: &mut Vec<Started>,
    ) {
        self.handled = self.handled.max(now);
        self.drain(now, rng, |s| started.push(s));
    }

    /// Requests in service.
    #[must_use]
    pub fn busy(&self) -> u32 {
        self.busy
    }

    /// Requests waiting for a slot.
    #[must_use]
    pub fn queued(&self) -> usize {
        self.queue.len()
    }

    /// Requests per second the provider could serve at `now`: the smaller of its
    /// slots ÷ mean service time (of the first model, for `mix.output` tokens) and the
    /// sum over its keys of their rate limits in requests (tokens ÷ `mix`), times the
    /// share that escapes a storm's random 529s; zero in an outage or quota storm.
    #[must_use]
    pub fn capacity_per_s(&self, now: Time, mix: TokenMix) -> f64 {
        let e = self.storms.at(now);
        if e.outage.is_some() || e.quota {
            return 0.0;
        }
        let lf = self.keys.first().map_or(1.0, |k| k.latency_factor);
        let service_s = (self.spec.ttft_ms.mean() + mix.output * self.spec.per_token_ms.mean())
            * lf
            * e.latency
            / 1e3;
        let by_slots = if service_s > 0.0 {
            f64::from(self.slots(&e)) / service_s
        } else {
            f64::INFINITY
        };
        let per_s = |b: &Option<TokenBucket>, cost: f64| {
            b.as_ref().map_or(f64::INFINITY, |b| {
                b.depth(e.capacity) / self.spec.burst_s / cost
            })
        };
        let by_limits: f64 = self
            .keys
            .iter()
            .map(|k| {
                per_s(&k.rpm, 1.0)
                    .min(per_s(&k.input_tpm, mix.input))
                    .min(per_s(&k.output_tpm, mix.output))
            })
            .sum();
        by_slots.min(by_limits) * (1.0 - e.overload_p)
    }

    /// The server's counters.
    #[must_use]
    pub fn stats(&self) -> ServerStats {
        self.stats
    }
}

/// Refills the key's buckets and admits the attempt (charging all three), or says how
/// long until all three could.
fn admit(key: &mut KeyState, now: Time, spec: &AttemptSpec, factor: f64) -> Option<Duration> {
    let costs = [
        1.0,
        f64::from(spec.input_tokens),
        f64::from(spec.output_tokens),
    ];
    let mut wait: Option<Duration> = None;
    for (bucket, cost) in [&mut key.rpm, &mut key.input_tpm, &mut key.output_tpm]
        .into_iter()
        .zip(costs)
    {
        if let Some(b) = bucket {
            b.refill(now, factor);
            if let Some(w) = b.wait_for(cost, factor) {
                wait = Some(wait.map_or(w, |x| x.max(w)));
            }
        }
    }
    if wait.is_some() {
        return wait;
    }
    for (bucket, cost) in [&mut key.rpm, &mut key.input_tpm, &mut key.output_tpm]
        .into_iter()
        .zip(costs)
    {
        if let Some(b) = bucket {
            b.take(cost, factor);
        }
    }
    None
}

#[cfg(test)]
#[path = "llm_tests.rs"]
mod tests;
