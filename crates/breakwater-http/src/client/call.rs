//! One call: the driver loop over the core's plan, and what its finish becomes.

use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::time::Duration;

use breakwater_core::plan::{DegradedFrom, FailReason, Finished, History};
use breakwater_core::{
    Action, Cost, Deadline, Key, Notice, Plan, Rejection, Resolution, TaskKind, Time,
};
use tracing::Instrument;
use tracing::field::{Empty, display};

use super::options::CacheUse;
use super::{CallOptions, Client, Completion, Deferred, Error, send};
use crate::cache::{CacheHit, CacheKey, CachedAnswer};
use crate::clock;
use crate::outcome::{self, Exchange};
use crate::queue::Task;
use crate::wire::{self, TokenUsage};

/// Everything one call is about.
pub(super) struct Call<'a> {
    pub(super) route: &'a str,
    pub(super) request: &'a wire::Request,
    pub(super) kind: TaskKind,
    pub(super) deadline: Duration,
    pub(super) options: CallOptions,
    /// Whether a `Queued` finish is stored in the queue (not when the queue's own
    /// drain replays a task: it is there already).
    pub(super) defer: bool,
}

impl Call<'_> {
    pub(super) fn cache_key(&self) -> CacheKey {
        match &self.options.cache {
            CacheUse::First { key: Some(key) } => {
                CacheKey::explicit(&self.options.tenant, self.route, key)
            }
            _ => CacheKey::new(&self.options.tenant, self.route, self.request),
        }
    }
}

impl Client {
    /// Drives one call's plan to its end.
    pub(super) async fn run<F>(&self, call: Call<'_>, mut on_notice: F) -> Result<Completion, Error>
    where
        F: FnMut(Notice) + Send,
    {
        let inner = &*self.inner;
        let route = call.route;
        let bound = inner
            .routes
            .get(route)
            .ok_or_else(|| Error::UnknownRoute(route.to_owned()))?;
        if matches!(call.options.cache, CacheUse::First { .. }) {
            if let Some(done) = self.cache_first(&call) {
                return Ok(done);
            }
        }
        let mut options = call.options.request;
        if options.max_output_tokens == 0 {
            options.max_output_tokens = call.request.max_tokens;
        }
        let span = tracing::info_span!(
            "breakwater.request",
            route,
            kind = ?call.kind,
            deadline_ms = call.deadline.as_millis() as u64,
            attempts = Empty,
            resolution = Empty,
            cost = Empty,
        );
        let mut rng = self.request_rng();
        // Boxed once, here: the call's state is kilobytes (the attempt's future
        // inside), which the `instrument` wrapper and every `.await` above would
        // otherwise copy whole.
        Box::pin(async move {
            let start = clock::now();
            let deadline = Deadline::after(start, call.deadline);
            let mut plan = Plan::new(&bound.route, call.kind, deadline, options);
            let mut observer =
                crate::telemetry::Observer::with_keys(&bound.route, call.kind, &bound.keys);
            // The answer of the last successful attempt, for the plan's `Success`.
            let mut answer: Option<(wire::Completion, Key)> = None;
            let mut cached: Option<(Arc<CachedAnswer>, Duration)> = None;
            // The call's one timer, reset for each attempt's end, notice and wait.
            let timer = tokio::time::sleep_until(clock::instant(deadline.end()));
            tokio::pin!(timer);
            let (reason, attempts, history) = loop {
                let now = clock::now();
                // Decided without awaiting, so that the plan's action (a finished
                // request's size) is not held in the call's state across the awaits.
                let step = match plan.poll(now, &mut rng) {
                    Action::Attempt(attempt) => Step::Attempt(attempt),
                    Action::Wait { until } => Step::Wait(until),
                    Action::Notice(notice) => {
                        tracing::info!(notice = ?notice, "notice");
                        on_notice(notice);
                        continue;
                    }
                    Action::LookupCache => {
                        cached = self.lookup(&call, now);
                        tracing::debug!(hit = cached.is_some(), "cache lookup");
                        plan.on_cache(now, cached.is_some());
                        continue;
                    }
                    // Settled without awaiting, and the loop left with only what a
                    // queue write needs: the finished request, the completion being
                    // built and the plan's action take no room in the call's state.
                    Action::Finish(finished) => {
                        let answer = answer.take();
                        match self.settle(&call, bound, &mut observer, finished, answer, cached.take()) {
                            Concluded::Done(done) => return done,
                            Concluded::Defer {
                                reason,
                                attempts,
                                history,
                            } => break (reason, attempts, history),
                        }
                    }
                };
                match step {
                    Step::Attempt(attempt) => {
                        let target = &bound.steps[attempt.step];
                        let key = attempt.key.clone();
                        // One timer for the attempt: its end (the plan's `now` plus its
                        // timeout, which the plan capped at the deadline), or the slow
                        // notice while that comes first, so the caller hears at the
                        // threshold, not when the attempt ends.
                        let ends = now + attempt.timeout;
                        let headers = AtomicBool::new(false);
                        let (send, attempt_span) =
                            self.send(target, &attempt, call.request, &headers);
                        // Boxed: the attempt's future is the largest part of the call's
                        // state, which is otherwise that much larger for every await.
                        let mut send = Box::pin(send);
                        let exchange = loop {
                            let notice = plan.poll_timeout().filter(|at| *at < ends);
                            timer.as_mut().reset(clock::instant(notice.unwrap_or(ends)));
                            tokio::select! {
                                biased;
                                done = &mut send => break done,
                                () = timer.as_mut() => {
                                    if notice.is_none() {
                                        break Exchange::bare(outcome::timed_out(send::phase(&headers)));
                                    }
                                    if let Action::Notice(notice) = plan.poll(clock::now(), &mut rng) {
                                        tracing::info!(notice = ?notice, "notice");
                                        on_notice(notice);
                                    }
                                }
                            }
                        };
                        let ended = clock::now();
                        let id = attempt.id;
                        let number = attempt.attempt;
                        if let Some(completion) = exchange.completion {
                            answer = Some((completion, key));
                        }
                        plan.on_outcome(ended, id, exchange.outcome, exchange.usage);
                        send::record_attempt(&attempt_span, plan.history(), number);
                        observer.update(plan.history());
                    }
                    Step::Wait(until) => {
                        tracing::debug!(wait_ms = (until - now).as_millis() as u64, "waiting");
                        timer.as_mut().reset(clock::instant(until));
                        timer.as_mut().await;
                    }
                }
            };
            // Boxed: the queue's write is a rare and large state.
            let deferred = Box::pin(self.defer(&call)).await;
            Err(Error::Queued {
                reason,
                attempts,
                history,
                deferred,
            })
        })
        .instrument(span)
        .await
    }

    /// An idempotent call's answer from the cache, before any attempt, if it holds one.
    fn cache_first(&self, call: &Call<'_>) -> Option<Completion> {
        let (hit, age) = self.lookup(call, clock::now())?;
        self.inner.metrics.lock().record_cache_first_hit();
        crate::telemetry::cache_first_hit(call.route);
        tracing::debug!(
            route = call.route,
            age_ms = age.as_millis() as u64,
            "cache-first hit"
        );
        Some(Completion {
            text: hit.text.clone(),
            stop_reason: hit.stop_reason.clone(),
            usage: TokenUsage::default(),
            key: None,
            attempts: 0,
            fallback: false,
            cost: Cost::ZERO,
            elapsed: Duration::ZERO,
            degraded: None,
            from_cache: Some(CacheHit {
                age,
                key: hit.key.clone(),
            }),
            history: History::default(),
        })
    }

    /// The cached answer to `call`, if a cache holds one.
    pub(super) fn lookup(
        &self,
        call: &Call<'_>,
        now: Time,
    ) -> Option<(Arc<CachedAnswer>, Duration)> {
        self.inner.cache.as_ref()?.lookup(&call.cache_key(), now)
    }

    /// Records a finished request (metrics, alarms, telemetry, the call's span) and
    /// concludes it.
    fn settle(
        &self,
        call: &Call<'_>,
        bound: &super::BoundRoute,
        observer: &mut crate::telemetry::Observer<'_>,
        finished: Finished,
        answer: Option<(wire::Completion, Key)>,
        cached: Option<(Arc<CachedAnswer>, Duration)>,
    ) -> Concluded {
        self.inner.metrics.lock().record(&bound.route, &finished);
        self.watch(&bound.route, &finished);
        observer.finish(&finished);
        let span = tracing::Span::current();
        span.record("attempts", finished.attempts);
        span.record("cost", display(finished.cost));
        span.record("resolution", resolution_name(&finished.resolution));
        self.conclude(call, finished, answer, cached)
    }

    /// What the plan's finish becomes for the caller, or, for a queued request that
    /// the call stores, what the queue write must be told.
    fn conclude(
        &self,
        call: &Call<'_>,
        f: Finished,
        answer: Option<(wire::Completion, Key)>,
        cached: Option<(Arc<CachedAnswer>, Duration)>,
    ) -> Concluded {
        let mut done = Completion {
            text: String::new(),
            stop_reason: None,
            usage: TokenUsage::default(),
            key: None,
            attempts: f.attempts,
            fallback: false,
            cost: f.cost,
            elapsed: f.elapsed,
            degraded: None,
            from_cache: None,
            history: f.history,
        };
        Concluded::Done(match f.resolution {
            Resolution::Success { fallback_used, .. } => {
                // The plan reports success only after an attempt whose outcome was
                // `Success`, which always carries a parsed completion.
                if let Some((completion, key)) = answer {
                    self.remember(call, &completion, &key);
                    done.text = completion.text;
                    done.stop_reason = completion.stop_reason;
                    done.usage = completion.usage;
                    done.key = Some(key);
                }
                done.fallback = fallback_used;
                Ok(done)
            }
            Resolution::Degraded { from, reason } => {
                done.degraded = Some(reason);
                // The plan says `Cache` only after a lookup that hit.
                if let (DegradedFrom::Cache, Some((hit, age))) = (from, cached) {
                    done.text.clone_from(&hit.text);
                    done.stop_reason.clone_from(&hit.stop_reason);
                    done.from_cache = Some(CacheHit {
                        age,
                        key: hit.key.clone(),
                    });
                }
                Ok(done)
            }
            Resolution::Queued { reason } if call.defer => {
                return Concluded::Defer {
                    reason,
                    attempts: f.attempts,
                    history: done.history,
                };
            }
            Resolution::Queued { reason } => Err(Error::Queued {
                reason,
                attempts: f.attempts,
                history: done.history,
                deferred: Deferred::NotQueued,
            }),
            Resolution::Failed { reason } => Err(Error::Failed {
                reason,
                attempts: f.attempts,
                history: done.history,
            }),
        })
    }

    /// Stores a successful answer in the cache, if there is one.
    pub(super) fn remember(&self, call: &Call<'_>, completion: &wire::Completion, key: &Key) {
        if let Some(cache) = &self.inner.cache {
            cache.insert(
                call.cache_key(),
                CachedAnswer {
                    text: completion.text.clone(),
                    stop_reason: completion.stop_reason.clone(),
                    key: key.clone(),
                    usage: completion.usage,
                    stored_at: clock::now(),
                },
            );
        }
    }

    /// Replays a queued task through its route, as the queue's drain does: with the
    /// task's tenant and key, and without queueing it again.
    pub(crate) async fn replay(&self, task: &Task) -> Result<Completion, Error> {
        let call = Call {
            route: &task.route,
            request: &task.request,
            kind: task.kind,
            deadline: task.deadline,
            options: CallOptions {
                tenant: task.tenant.clone(),
                idempotency_key: Some(task.key.clone()),
                ..CallOptions::default()
            },
            defer: false,
        };
        self.run(call, |_| {}).await
    }

    /// Whether `route` could send an attempt now (see
    /// [`Route::check`](breakwater_core::Route::check)); `None` for an unknown route.
    pub(crate) fn route_check(&self, route: &str) -> Option<Result<(), Rejection>> {
        let bound = self.inner.routes.get(route)?;
        Some(bound.route.check(clock::now()))
    }
}

/// What the driver does with the plan's action after deciding it: the only two
/// actions it awaits on.
enum Step<'r> {
    /// Send this attempt.
    Attempt(breakwater_core::Attempt<'r>),
    /// Sleep until then.
    Wait(Time),
}

/// What [`Client::conclude`] leaves to do.
// `Done` carries the completion inline, as the call returns it.
#[allow(clippy::large_enum_variant)]
enum Concluded {
    /// The call's answer.
    Done(Result<Completion, Error>),
    /// A queued request to store in the queue first.
    Defer {
        reason: FailReason,
        attempts: u32,
        history: History,
    },
}

fn resolution_name(resolution: &Resolution) -> &'static str {
    match resolution {
        Resolution::Success { .. } => "success",
        Resolution::Degraded {
            from: DegradedFrom::Cache,
            ..
        } => "degraded_cache",
        Resolution::Degraded { .. } => "degraded",
        Resolution::Queued { .. } => "queued",
        Resolution::Failed { .. } => "failed",
    }
}
