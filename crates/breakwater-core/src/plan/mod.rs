//! The request plan: the per-request state machine every driver runs.
//!
//! A [`Plan`] decides everything about one request — which step to try, when to
//! retry, how long to wait, when to fall back, when to give up and what to return
//! then — and does no I/O. The driver (the HTTP adapter, the simulator, a test) owns
//! time and the network. It calls, in a loop:
//!
//! - **output** [`Plan::poll`]`(now, rng)`: what to do next, an [`Action`];
//! - **inputs** [`Plan::on_outcome`] when an attempt ends and [`Plan::on_cache`] when
//!   it answers [`Action::LookupCache`];
//! - **timer** [`Plan::poll_timeout`]: when to poll next if nothing arrives first. A
//!   spurious poll is harmless: it returns another [`Action::Wait`].
//!
//! ```
//! # use std::time::Duration;
//! # use breakwater_core::*;
//! # use breakwater_core::route::RouteConfig;
//! let config: RouteConfig = toml::from_str(r#"
//!     name = "chat"
//!     [[step]]
//!     provider = "anthropic"
//!     model = "claude-sonnet-4-5"
//! "#).unwrap();
//! let registry = Registry::new(RegistryConfig::default()).unwrap();
//! let route = Route::bind(&config, &registry, &PriceTable::new()).unwrap();
//! let mut rng = rng::seeded(7);
//! let mut now = Time::ZERO;
//! let deadline = Deadline::after(now, Duration::from_secs(30));
//! let mut plan = Plan::new(&route, TaskKind::Interactive, deadline, RequestOptions::default());
//! let finished = loop {
//!     match plan.poll(now, &mut rng) {
//!         Action::Attempt(attempt) => {
//!             // Send it with `attempt.timeout`; here the provider answers in 800 ms.
//!             now = now + Duration::from_millis(800);
//!             plan.on_outcome(now, attempt.id, Outcome::Success, Usage::new(1200, 300));
//!         }
//!         Action::Wait { until } => now = until, // sleep, or wait for an outcome
//!         Action::Notice(Notice::Slow) => {}     // tell the user: taking longer than usual
//!         Action::LookupCache => plan.on_cache(now, false),
//!         Action::Finish(finished) => break finished,
//!     }
//! };
//! assert!(finished.is_success());
//! assert_eq!(finished.attempts, 1);
//! ```
//!
//! # Rules
//!
//! - A step whose breaker is open or cooling down is skipped at once, never waited on.
//! - Every retry asks the step's budget first; a refused retry moves to the next step.
//! - The deadline holds absolutely: no attempt timeout reaches past it, and no wait
//!   starts that could not be followed by a useful attempt
//!   ([`PlanConfig::min_attempt`](crate::route::PlanConfig)). A Retry-After longer
//!   than the time left means "next step now".
//! - A provider's Retry-After is honoured: the key's breaker cools down until then.
//! - Non-retriable errors end the request, except those with a conditional step.
//! - An output that fails the step's validator is billed and recorded; the step is
//!   tried again at once up to `invalid_output_retries` times, then the next step.
//! - Ambiguous outcomes are retried at most `ambiguous_retries` times, and a stream
//!   that already delivered tokens is never retried unless the caller allows it.
//! - The slow notice fires once, when the elapsed time passes its threshold.
//! - The history is bounded: past [`PlanConfig::max_history`](crate::route::PlanConfig)
//!   entries (default 64) it keeps the first half and the latest, and counts the
//!   rest ([`History::elided`]), so a request's memory stays bounded even when every
//!   provider is down and its deadline is long.

mod history;
mod result;
#[cfg(test)]
mod tests;

use std::time::Duration;

use serde::{Deserialize, Serialize};

pub(crate) use history::MIN_HISTORY;
pub use history::{Entries, Entry, EntryEvent, History, Skip};
pub use result::{DegradedFrom, FailReason, Finished, FinishedRef, Resolution};

use crate::breaker::Admit;
use crate::budget::{RetryReason, Withdrawal};
use crate::cost::{Cost, Usage};
use crate::route::{Condition, Degrade, Route, Step};
use crate::{Class, ClassKind, Deadline, Key, Outcome, Rng, Time};

/// How a request is served when the chain cannot answer: chosen from the start.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TaskKind {
    /// A user is waiting: cached result, then structured empty result, then failure.
    #[default]
    Interactive,
    /// Can run later: handed back for the durable queue.
    Deferrable,
    /// Must not be faked: fail fast and loudly.
    Critical,
}

/// Per-request settings.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RequestOptions {
    /// Expected prompt size, for the cost ceiling.
    pub input_tokens: u32,
    /// The request's output limit, for the cost ceiling.
    pub max_output_tokens: u32,
    /// A retry or fallback whose worst-case cost would take the request's total past
    /// this is not taken.
    pub cost_ceiling: Option<Cost>,
    /// Whether a stream that broke after tokens reached the caller may be restarted.
    pub allow_restart_after_tokens: bool,
}

/// Identifies an attempt, so that a late outcome cannot be taken for a newer one's.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct AttemptId(u32);

/// An attempt the driver should send now.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Attempt<'r> {
    /// Report its outcome with this.
    pub id: AttemptId,
    /// The route step.
    pub step: usize,
    /// The provider and model.
    pub key: &'r Key,
    /// The prompt variant to render, if the step names one.
    pub prompt_variant: Option<&'r str>,
    /// The validator the output must pass, if the step (or route) names one; an output
    /// that fails it is reported as [`Outcome::InvalidOutput`].
    pub validator: Option<&'r str>,
    /// Give up on the attempt after this long: `min(step timeout, deadline left)`.
    pub timeout: Duration,
    /// 1-based, over the whole request.
    pub attempt: u32,
    /// Whether this step is not the route's first.
    pub fallback: bool,
}

/// Something the caller should be told.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Notice {
    /// The request is taking longer than usual.
    Slow,
}

/// What the driver should do next.
#[derive(Clone, Debug, PartialEq)]
#[must_use]
// `Finish` carries the history inline (no heap allocation for short requests); boxing
// it would allocate on every request's success path to save a move of a few hundred
// bytes once per request.
#[allow(clippy::large_enum_variant)]
pub enum Action<'r> {
    /// Send this attempt; report with [`Plan::on_outcome`].
    Attempt(Attempt<'r>),
    /// Poll again at `until`, or earlier if an outcome arrives.
    Wait {
        /// When the plan next has something to do.
        until: Time,
    },
    /// Tell the caller; then poll again.
    Notice(Notice),
    /// Look for a cached result and answer with [`Plan::on_cache`].
    LookupCache,
    /// The request is over.
    Finish(Finished),
}

/// One request's state machine: see the [module docs](self).
#[derive(Debug)]
pub struct Plan<'r> {
    route: &'r Route,
    kind: TaskKind,
    deadline: Deadline,
    options: RequestOptions,
    phase: Phase,
    /// The current step (below `MAX_STEPS`, so it fits: see [`Plan::step`]) and the
    /// attempts made at it.
    step: u32,
    tries: u32,
    /// The backoff's previous delay at this step (for decorrelated jitter).
    last_delay: Option<Duration>,
    /// A budget withdrawal granted for the next attempt.
    withdrawal: Option<Withdrawal>,
    attempts: u32,
    ambiguous_left: u32,
    /// Retries left at the current step after invalid outputs.
    invalid_left: u32,
    /// When to tell the caller the request is slow; `Time::MAX`: never (or told).
    notice_at: Time,
    fallback_used: bool,
    last_class: Option<ClassKind>,
    /// Why the chain ended, once it has; then the next degradation option to try.
    ended: Option<FailReason>,
    degrade_next: u32,
    cost: Cost,
    retry_cost: Cost,
    history: History,
}

#[derive(Debug)]
enum Phase {
    /// Send an attempt at the current step, or move along the chain.
    Ready,
    /// An attempt is out.
    InFlight {
        id: AttemptId,
        permit: Option<crate::breaker::Permit>,
        sent: Time,
        withdrawal: Option<Withdrawal>,
    },
    /// A retriable outcome arrived: decide the retry (needs the RNG, so in `poll`).
    Retry {
        hint: Option<Duration>,
        reason: RetryReason,
    },
    /// Waiting before a retry.
    Backoff { until: Time },
    /// Walking the task kind's degradation options.
    Degrading,
    /// Waiting for the driver's cache answer.
    AwaitCache,
    /// Over. The rest of the [`Finished`] is in the plan's fields (the history stays
    /// in `history`, so the plan holds it once and moving a phase copies little).
    Done {
        resolution: Resolution,
        elapsed: Duration,
    },
}

impl<'r> Plan<'r> {
    /// A plan for one request over `route`, which must outlive it.
    #[inline]
    pub fn new(
        route: &'r Route,
        kind: TaskKind,
        deadline: Deadline,
        options: RequestOptions,
    ) -> Plan<'r> {
        Plan {
            route,
            kind,
            deadline,
            options,
            phase: Phase::Ready,
            step: step_index(route.first_step()),
            tries: 0,
            last_delay: None,
            withdrawal: None,
            attempts: 0,
            ambiguous_left: route.plan.ambiguous_retries,
            invalid_left: route.plan.invalid_output_retries,
            notice_at: slow_notice_at(route, deadline),
            fallback_used: false,
            last_class: None,
            ended: None,
            degrade_next: 0,
            cost: Cost::ZERO,
            retry_cost: Cost::ZERO,
            history: History::with_cap(route.plan.max_history),
        }
    }

    /// Starts this plan over for a new request over `route`: afterwards it is what
    /// [`Plan::new`] with the same arguments returns, except that a history which
    /// outgrew its inline entries keeps its allocation. Dropping the old request's
    /// state is as dropping the plan (a probe permit still held is released).
    ///
    /// For a driver that keeps its plans in slots, one per request in flight (the
    /// simulator does): a new plan is a few hundred bytes, written whole into the slot
    /// on every request, where a reset writes the few fields a request starts from.
    #[inline]
    pub fn reset(
        &mut self,
        route: &'r Route,
        kind: TaskKind,
        deadline: Deadline,
        options: RequestOptions,
    ) {
        // Every field named, no `..`: a field added to `Plan` and forgotten here
        // does not compile.
        let Plan {
            route: plan_route,
            kind: plan_kind,
            deadline: plan_deadline,
            options: plan_options,
            phase,
            step,
            tries,
            last_delay,
            withdrawal,
            attempts,
            ambiguous_left,
            invalid_left,
            notice_at,
            fallback_used,
            last_class,
            ended,
            degrade_next,
            cost,
            retry_cost,
            history,
        } = self;
        *plan_route = route;
        *plan_kind = kind;
        *plan_deadline = deadline;
        *plan_options = options;
        *phase = Phase::Ready;
        *step = step_index(route.first_step());
        *tries = 0;
        *last_delay = None;
        *withdrawal = None;
        *attempts = 0;
        *ambiguous_left = route.plan.ambiguous_retries;
        *invalid_left = route.plan.invalid_output_retries;
        *notice_at = slow_notice_at(route, deadline);
        *fallback_used = false;
        *last_class = None;
        *ended = None;
        *degrade_next = 0;
        *cost = Cost::ZERO;
        *retry_cost = Cost::ZERO;
        history.reset(route.plan.max_history);
    }

    /// The request's deadline.
    #[must_use]
    pub fn deadline(&self) -> Deadline {
        self.deadline
    }

    /// The task kind.
    #[must_use]
    pub fn kind(&self) -> TaskKind {
        self.kind
    }

    /// The history so far.
    #[must_use]
    pub fn history(&self) -> &History {
        &self.history
    }

    /// The current step's index in the route.
    #[inline]
    fn step(&self) -> usize {
        self.step as usize
    }

    /// Whether the plan has finished.
    #[must_use]
    pub fn is_finished(&self) -> bool {
        matches!(self.phase, Phase::Done { .. })
    }

    /// Once the plan has finished, the finish every poll returns, borrowed: the same
    /// fields as [`Action::Finish`]'s, without its copy of the history.
    #[must_use]
    pub fn finish(&self) -> Option<FinishedRef<'_>> {
        match self.phase {
            Phase::Done {
                resolution,
                elapsed,
            } => Some(self.finished_ref(resolution, elapsed)),
            _ => None,
        }
    }

    /// What to do next. After [`Action::Finish`], every poll returns the same finish.
    pub fn poll<R: Rng + ?Sized>(&mut self, now: Time, rng: &mut R) -> Action<'r> {
        loop {
            if now >= self.notice_at && self.notice_at != Time::MAX && !self.is_finished() {
                self.notice_at = Time::MAX;
                return Action::Notice(Notice::Slow);
            }
            match self.phase {
                Phase::Done {
                    resolution,
                    elapsed,
                } => return Action::Finish(self.finished(resolution, elapsed)),
                Phase::InFlight { .. } => {
                    return Action::Wait {
                        until: self.notice_at,
                    };
                }
                Phase::AwaitCache => return Action::LookupCache,
                Phase::Backoff { until } if now < until => {
                    return Action::Wait {
                        until: self.notice_at.min(until),
                    };
                }
                Phase::Backoff { .. } => self.phase = Phase::Ready,
                Phase::Retry { hint, reason } => self.decide_retry(now, hint, reason, rng),
                Phase::Ready => {
                    if let Some(attempt) = self.next_attempt(now) {
                        return Action::Attempt(attempt);
                    }
                }
                Phase::Degrading => return self.degrade(now),
            }
        }
    }

    /// Feeds back how attempt `id` ended and what it was billed. An outcome for an
    /// attempt that is not the one in flight is ignored.
    pub fn on_outcome(&mut self, now: Time, id: AttemptId, outcome: Outcome, usage: Usage) {
        let Phase::InFlight { id: current, .. } = self.phase else {
            return;
        };
        if current != id {
            return;
        }
        let Phase::InFlight {
            permit,
            sent,
            withdrawal,
            ..
        } = std::mem::replace(&mut self.phase, Phase::Ready)
        else {
            unreachable!("matched InFlight above")
        };
        let route = self.route;
        let step = &route.steps[self.step()];
        let class = route.taxonomy.classify(&outcome);
        let latency = now.saturating_duration_since(sent);
        if let Some(breaker) = &step.breaker {
            if let Some(permit) = permit {
                breaker.record(now, permit, &class, latency);
            }
            if let Class::Overloaded {
                retry_after: Some(wait),
            } = class
            {
                breaker.cool_down(now, now.saturating_add(wait));
            }
        }
        if let Some(budget) = &step.budget {
            budget.on_attempt(now, class == Class::Success, withdrawal);
        }
        let cost = step.price.cost(usage);
        self.cost += cost;
        if self.attempts > 1 {
            self.retry_cost += cost;
        }
        self.last_class = Some(class.kind());
        self.history.push(Entry {
            step: self.step(),
            at: now,
            event: EntryEvent::Attempt {
                attempt: self.attempts,
                class,
                latency,
                usage,
                cost,
            },
        });

        let delivered = outcome.tokens_delivered();
        self.phase = match class {
            Class::Success => self.done(
                now,
                Resolution::Success {
                    step: self.step(),
                    fallback_used: self.fallback_used,
                },
            ),
            _ if delivered > 0 && !self.options.allow_restart_after_tokens => self.done(
                now,
                Resolution::Failed {
                    reason: FailReason::StreamBroken {
                        tokens_delivered: delivered,
                    },
                },
            ),
            Class::NonRetriable(fatal) => {
                match Condition::for_fatal(fatal).and_then(|c| route.conditional_step(c)) {
                    Some(target) if target != self.step() => {
                        self.enter_step(target);
                        Phase::Ready
                    }
                    _ => self.done(
                        now,
                        Resolution::Failed {
                            reason: FailReason::NonRetriable(fatal),
                        },
                    ),
                }
            }
            Class::Ambiguous if self.ambiguous_left == 0 => {
                self.ended = Some(FailReason::Exhausted {
                    last: self.last_class,
                });
                Phase::Degrading
            }
            Class::Ambiguous => {
                self.ambiguous_left -= 1;
                Phase::Retry {
                    hint: None,
                    reason: RetryReason::Error,
                }
            }
            Class::RateLimited { retry_after } | Class::Overloaded { retry_after } => {
                Phase::Retry {
                    hint: retry_after,
                    reason: RetryReason::Error,
                }
            }
            // The provider answered, only not in the shape asked for: retrying at
            // once is as good as waiting, and past the allowance the next step's
            // model (and prompt variant) may do better.
            Class::InvalidOutput if self.invalid_left > 0 => {
                self.invalid_left -= 1;
                Phase::Retry {
                    hint: Some(Duration::ZERO),
                    reason: RetryReason::Error,
                }
            }
            Class::InvalidOutput => {
                if self.advance() {
                    Phase::Ready
                } else {
                    Phase::Degrading
                }
            }
            Class::Retriable => Phase::Retry {
                hint: None,
                reason: if matches!(outcome, Outcome::TimedOut { .. }) {
                    RetryReason::Timeout
                } else {
                    RetryReason::Error
                },
            },
        };
    }

    /// Answers [`Action::LookupCache`]: whether the driver found a cached result.
    pub fn on_cache(&mut self, now: Time, hit: bool) {
        if !matches!(self.phase, Phase::AwaitCache) {
            return;
        }
        self.phase = if hit {
            let reason = self.end_reason();
            self.done(
                now,
                Resolution::Degraded {
                    from: DegradedFrom::Cache,
                    reason,
                },
            )
        } else {
            Phase::Degrading
        };
    }

    /// When the plan next needs a poll if no outcome arrives first: `None` when it
    /// only waits for an outcome or a cache answer (or is finished); a time at or
    /// before `now` means "poll now".
    #[must_use]
    pub fn poll_timeout(&self) -> Option<Time> {
        let notice = (self.notice_at != Time::MAX && !self.is_finished()).then_some(self.notice_at);
        let own = match self.phase {
            Phase::Backoff { until } => Some(until),
            Phase::Ready | Phase::Retry { .. } | Phase::Degrading => Some(Time::ZERO),
            Phase::InFlight { .. } | Phase::AwaitCache | Phase::Done { .. } => None,
        };
        match (own, notice) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// Sends an attempt at the current step, or walks the chain until one can be
    /// sent; `None` once the chain has ended (the phase is then `Degrading`).
    fn next_attempt(&mut self, now: Time) -> Option<Attempt<'r>> {
        let route = self.route;
        loop {
            if self.deadline.is_expired(now) {
                return self.end_chain(FailReason::DeadlineExceeded {
                    last: self.last_class,
                });
            }
            let step = &route.steps[self.step()];
            if self.tries >= step.attempts {
                if !self.advance() {
                    return None;
                }
                continue;
            }
            if self.attempts > 0 {
                if !self
                    .deadline
                    .fits(now, Duration::ZERO, min_attempt(route, step))
                {
                    self.skip(now, Skip::NoTimeLeft);
                    return self.end_chain(FailReason::DeadlineExceeded {
                        last: self.last_class,
                    });
                }
                if let Some(ceiling) = self.options.cost_ceiling {
                    let worst = step.price.cost(Usage::new(
                        self.options.input_tokens,
                        self.options.max_output_tokens,
                    ));
                    if self.cost.saturating_add(worst) > ceiling {
                        self.skip(now, Skip::CostCeiling);
                        if !self.advance() {
                            return None;
                        }
                        continue;
                    }
                }
            }
            let permit = match step.breaker.as_ref().map(|b| b.admit(now)) {
                None => None,
                Some(Admit::Admitted(permit)) => Some(permit),
                Some(Admit::Rejected(rejection)) => {
                    self.skip(now, Skip::Breaker(rejection));
                    if !self.advance() {
                        return None;
                    }
                    continue;
                }
            };
            let withdrawal = self.withdrawal.take();
            if self.tries == 0
                && let Some(budget) = &step.budget
            {
                budget.on_request(now);
            }
            // Not expired (checked above), so there is time for the attempt.
            let timeout = self
                .deadline
                .attempt_timeout(now, step.timeout)
                .unwrap_or(Duration::ZERO);
            let fallback = self.step() != route.first_step();
            self.fallback_used |= fallback;
            self.tries += 1;
            self.attempts += 1;
            let id = AttemptId(self.attempts);
            self.phase = Phase::InFlight {
                id,
                permit,
                sent: now,
                withdrawal,
            };
            return Some(Attempt {
                id,
                step: self.step(),
                key: &step.key,
                prompt_variant: step.prompt_variant.as_deref(),
                validator: step.validator.as_deref(),
                timeout,
                attempt: self.attempts,
                fallback,
            });
        }
    }

    /// Decides a retry at the current step: the wait, whether it fits the deadline,
    /// and the budget's say.
    // Off the success path: out of line, so that the callers on it stay small.
    #[inline(never)]
    fn decide_retry<R: Rng + ?Sized>(
        &mut self,
        now: Time,
        hint: Option<Duration>,
        reason: RetryReason,
        rng: &mut R,
    ) {
        let route = self.route;
        let step = &route.steps[self.step()];
        self.phase = Phase::Ready;
        if self.tries >= step.attempts {
            self.advance();
            return;
        }
        let wait = match hint {
            Some(wait) => wait,
            None => {
                let wait = step.backoff.delay(self.tries - 1, self.last_delay, rng);
                self.last_delay = Some(wait);
                wait
            }
        };
        if !self.deadline.fits(now, wait, min_attempt(route, step)) {
            self.skip(now, Skip::WaitBeyondDeadline { wait });
            self.advance();
            return;
        }
        if let Some(budget) = &step.budget {
            match budget.try_withdraw(now, reason) {
                Ok(withdrawal) => self.withdrawal = Some(withdrawal),
                Err(refused) => {
                    self.skip(now, Skip::Budget(refused));
                    self.advance();
                    return;
                }
            }
        }
        if !wait.is_zero() {
            self.history.push(Entry {
                step: self.step(),
                at: now,
                event: EntryEvent::Waited {
                    wait,
                    retry_after: hint.is_some(),
                },
            });
            self.phase = Phase::Backoff {
                until: now.saturating_add(wait),
            };
        }
    }

    /// Moves to the next unconditional step; ends the chain when there is none (a
    /// conditional step is the end of its own chain). Returns whether a step is left.
    // Off the success path: out of line, so that the callers on it stay small.
    #[inline(never)]
    fn advance(&mut self) -> bool {
        let next = if self.route.steps[self.step()].when.is_some() {
            None
        } else {
            self.route.next_step(self.step() + 1)
        };
        match next {
            Some(next) => {
                self.enter_step(next);
                true
            }
            None => {
                self.end_chain(FailReason::Exhausted {
                    last: self.last_class,
                });
                false
            }
        }
    }

    fn enter_step(&mut self, step: usize) {
        self.step = step_index(step);
        self.tries = 0;
        self.invalid_left = self.route.plan.invalid_output_retries;
        self.last_delay = None;
        self.withdrawal = None;
    }

    // Off the success path: out of line, so that the callers on it stay small.
    #[inline(never)]
    fn end_chain(&mut self, reason: FailReason) -> Option<Attempt<'r>> {
        self.ended = Some(reason);
        self.phase = Phase::Degrading;
        None
    }

    fn end_reason(&self) -> FailReason {
        self.ended.unwrap_or(FailReason::Exhausted {
            last: self.last_class,
        })
    }

    /// Tries the task kind's degradation options in order; fails when none is left.
    // Off the success path: out of line, so that the callers on it stay small.
    #[inline(never)]
    fn degrade(&mut self, now: Time) -> Action<'r> {
        let options = match self.kind {
            TaskKind::Interactive => &self.route.degrade.interactive,
            TaskKind::Deferrable => &self.route.degrade.deferrable,
            TaskKind::Critical => &self.route.degrade.critical,
        };
        let reason = self.end_reason();
        let resolution = match options.get(self.degrade_next as usize) {
            Some(Degrade::Cache) => {
                self.degrade_next = self.degrade_next.saturating_add(1);
                self.phase = Phase::AwaitCache;
                return Action::LookupCache;
            }
            Some(Degrade::Empty) => Resolution::Degraded {
                from: DegradedFrom::Empty,
                reason,
            },
            Some(Degrade::Queue) => Resolution::Queued { reason },
            None => Resolution::Failed { reason },
        };
        let elapsed = self.deadline.elapsed(now);
        self.phase = Phase::Done {
            resolution,
            elapsed,
        };
        Action::Finish(self.finished(resolution, elapsed))
    }

    // Off the success path: out of line, so that the callers on it stay small.
    #[inline(never)]
    fn skip(&mut self, now: Time, skip: Skip) {
        self.history.push(Entry {
            step: self.step(),
            at: now,
            event: EntryEvent::Skipped(skip),
        });
    }

    /// The phase of a plan that ends at `now` with `resolution`.
    fn done(&self, now: Time, resolution: Resolution) -> Phase {
        Phase::Done {
            resolution,
            elapsed: self.deadline.elapsed(now),
        }
    }

    /// The finished request, for every poll after the end. Inlined so that it is
    /// built in the caller's return slot rather than copied there.
    #[inline]
    fn finished(&self, resolution: Resolution, elapsed: Duration) -> Finished {
        self.finished_ref(resolution, elapsed).to_finished()
    }

    #[inline]
    fn finished_ref(&self, resolution: Resolution, elapsed: Duration) -> FinishedRef<'_> {
        FinishedRef {
            resolution,
            attempts: self.attempts,
            elapsed,
            cost: self.cost,
            retry_cost: self.retry_cost,
            history: &self.history,
        }
    }
}

/// When a request over `route` with `deadline` is taking longer than usual: its
/// start plus the route's slow-notice threshold, or never when that is zero.
#[inline]
/// When the slow notice is due; `Time::MAX` (never) when the route has none.
fn slow_notice_at(route: &Route, deadline: Deadline) -> Time {
    let slow = route.plan.slow_notice;
    if slow.is_zero() {
        Time::MAX
    } else {
        deadline.start().saturating_add(slow)
    }
}

/// A step index as the plan keeps it: validated routes have at most
/// [`MAX_STEPS`](crate::route::MAX_STEPS) steps, so it fits 32 bits.
fn step_index(step: usize) -> u32 {
    debug_assert!(
        step < crate::route::MAX_STEPS,
        "step {step} of a validated route"
    );
    step as u32
}

/// The shortest attempt worth sending at `step`.
fn min_attempt(route: &Route, step: &Step) -> Duration {
    route.plan.min_attempt.min(step.timeout)
}
