//! The run loop the tower layer and the middleware share: the core's plan over a
//! one-step route, with real time. The caller sends each attempt itself (so that it
//! may borrow what it likes while it does) and reports the outcome.

use std::time::Duration;

use breakwater_core::plan::Finished;
use breakwater_core::rng::SeededRng;
use breakwater_core::route::{Degradation, PlanConfig, StepConfig};
use breakwater_core::{
    Action, Attempt, AttemptId, Deadline, Key, Outcome, Plan, PriceTable, Registry, RequestOptions,
    Route, RouteConfig, TaskKind, Usage,
};

use super::{ConfigError, RetryConfig};
use crate::clock;
use crate::telemetry::Observer;

/// The task kind of every call: nothing is faked, a call that cannot be served fails
/// (the routes built here have no degradation options either).
pub(crate) const KIND: TaskKind = TaskKind::Critical;

/// What the caller does next.
// As the core's `Action`: the finish carries the history inline, once per call.
#[allow(clippy::large_enum_variant)]
pub(crate) enum Step<'r> {
    /// Send this attempt under `attempt.timeout`, then [`Driver::report`].
    Attempt(Attempt<'r>),
    /// The call is over.
    Finish(Finished),
}

/// One call's plan, its randomness and its metrics.
pub(crate) struct Driver<'r> {
    plan: Plan<'r>,
    rng: SeededRng,
    observer: Observer<'r>,
}

impl<'r> Driver<'r> {
    /// A call over `route` that must be over within `deadline` from now.
    pub(crate) fn new(route: &'r Route, deadline: Duration, rng: SeededRng) -> Driver<'r> {
        let start = clock::read().now;
        Driver {
            plan: Plan::new(
                route,
                KIND,
                Deadline::after(start, deadline),
                RequestOptions::default(),
            ),
            rng,
            observer: Observer::new(route, KIND),
        }
    }

    /// Carries out the plan's waits and answers until it wants an attempt sent or is
    /// over. Must not be called while an attempt is out.
    pub(crate) async fn next(&mut self) -> Step<'r> {
        loop {
            let now = clock::read().now;
            match self.plan.poll(now, &mut self.rng) {
                Action::Attempt(attempt) => return Step::Attempt(attempt),
                Action::Wait { until } => {
                    tracing::debug!(wait_ms = (until - now).as_millis() as u64, "waiting");
                    tokio::time::sleep_until(clock::instant(until)).await;
                }
                // The routes built here turn the slow notice off; a call has no one
                // to tell it to.
                Action::Notice(_) => {}
                // Nor do they degrade to a cache; answer "miss" should one ask.
                Action::LookupCache => self.plan.on_cache(now, false),
                Action::Finish(finished) => {
                    self.observer.finish(&finished);
                    return Step::Finish(finished);
                }
            }
        }
    }

    /// Reports how attempt `id` ended.
    pub(crate) fn report(&mut self, id: AttemptId, outcome: Outcome) {
        self.plan
            .on_outcome(clock::read().now, id, outcome, Usage::default());
        self.observer.update(self.plan.history());
    }
}

/// The one-step route named `name` that sends to `key` as `config` says, bound to
/// `registry`'s breaker and budget for `key`. `attempts` overrides the config's.
pub(crate) fn one_step_route(
    name: &str,
    key: &Key,
    config: &RetryConfig,
    attempts: u32,
    registry: &Registry,
) -> Result<Route, ConfigError> {
    let route = route_config(name, key, config, attempts)?;
    Route::bind(&route, registry, &PriceTable::new()).map_err(ConfigError::Route)
}

/// The configuration of [`one_step_route`]'s route, checked.
pub(crate) fn route_config(
    name: &str,
    key: &Key,
    config: &RetryConfig,
    attempts: u32,
) -> Result<RouteConfig, ConfigError> {
    if config.deadline.is_zero() {
        return Err(ConfigError::ZeroDeadline);
    }
    let route = RouteConfig {
        name: name.to_owned(),
        steps: vec![StepConfig {
            provider: key.provider().to_owned(),
            model: key.model().to_owned(),
            attempts,
            timeout: config.attempt_timeout,
            backoff: Some(config.backoff),
            prompt_variant: None,
            when: None,
            validator: None,
        }],
        backoff: config.backoff,
        plan: PlanConfig {
            slow_notice: Duration::ZERO,
            min_attempt: config.min_attempt,
            ambiguous_retries: config.ambiguous_retries,
            ..PlanConfig::default()
        },
        taxonomy: config.taxonomy.clone(),
        degrade: Degradation {
            interactive: Vec::new(),
            deferrable: Vec::new(),
            critical: Vec::new(),
        },
        validator: None,
    };
    route.validate().map_err(ConfigError::Route)?;
    Ok(route)
}

/// The RNG of call number `n` of a layer or middleware seeded with `seed`.
pub(crate) fn call_rng(seed: u64, n: u64) -> SeededRng {
    let mut rng = breakwater_core::rng::seeded(seed);
    rng.set_stream(n);
    rng
}
