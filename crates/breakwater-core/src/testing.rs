//! Property testing for your own configuration (cargo feature `proptest`).
//!
//! A service that embeds Breakwater wants to know that *its* routes keep their
//! promises under any sequence of provider behaviour. This module exports the
//! strategies Breakwater's own tests use (outcome scripts with Retry-After hints and
//! broken streams, clock advances, routes, budgets) and a checker that runs your route
//! under many generated scripts and reports the first broken promise with a shrunk
//! counter-example:
//!
//! ```
//! use breakwater_core::testing::Check;
//!
//! let route = r#"
//!     name = "chat"
//!     [[step]]
//!     provider = "anthropic"
//!     model = "claude-sonnet-4-5"
//!     attempts = 3
//!     timeout_ms = 20000
//!     [[step]]
//!     provider = "openai"
//!     model = "gpt-4o-mini"
//!     attempts = 2
//!     timeout_ms = 10000
//! "#;
//! let report = Check { cases: 64, ..Check::default() }.run_toml(route).expect("route keeps its promises");
//! assert_eq!(report.cases, 64);
//! ```
//!
//! The promises checked for every generated request: no attempt, timeout or wait
//! reaches past the deadline; no step gets more attempts than it allows; no budget
//! grants more retries than its documented bound; no retry or fallback takes the cost
//! past the request's ceiling; nothing follows a non-retriable outcome but its
//! conditional step; and the plan finishes within a bounded number of polls.

use std::fmt;
use std::ops::Range;
use std::time::Duration;

use proptest::prelude::*;
use proptest::test_runner::{Config, TestCaseError, TestError, TestRunner};

use crate::budget::{BudgetConfig, QuotaConfig, RatioConfig, ThrottleConfig};
use crate::cost::{Cost, PriceTable, Usage};
use crate::plan::{Action, Plan, RequestOptions, TaskKind};
use crate::registry::{BudgetScope, Registry, RegistryConfig};
use crate::route::{Route, RouteConfig, StepConfig};
use crate::{Backoff, Class, Deadline, ErrorCode, Hints, Jitter, Outcome, Time, TimeoutPhase};

/// One attempt's scripted behaviour: how long the provider takes and what it returns.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ScriptedAttempt {
    /// Time to the outcome; longer than the attempt's timeout means a timeout.
    pub latency: Duration,
    /// What the provider returns.
    pub outcome: Outcome,
    /// What it bills.
    pub usage: Usage,
}

/// A Retry-After hint: none, or 1 ms to 120 s.
pub fn retry_after() -> impl Strategy<Value = Option<Duration>> {
    prop_oneof![
        Just(None),
        (1u64..120_000).prop_map(|ms| Some(Duration::from_millis(ms)))
    ]
}

/// Any outcome an LLM provider produces: successes, the statuses of the default
/// table with and without hints and provider codes, transport errors, broken streams.
pub fn outcome() -> impl Strategy<Value = Outcome> {
    let code = prop_oneof![
        Just(None),
        Just(Some(ErrorCode::Overloaded)),
        Just(Some(ErrorCode::RateLimited)),
        Just(Some(ErrorCode::InsufficientQuota)),
        Just(Some(ErrorCode::ContextWindowExceeded)),
        Just(Some(ErrorCode::ContentPolicy)),
    ];
    let status = prop::sample::select(vec![
        400u16, 401, 403, 404, 408, 413, 422, 429, 500, 502, 503, 504, 529,
    ]);
    let should_retry = prop_oneof![4 => Just(None), 1 => any::<bool>().prop_map(Some)];
    prop_oneof![
        4 => Just(Outcome::Success),
        4 => (status, code.clone(), retry_after(), should_retry).prop_map(|(status, error, retry_after, should_retry)| {
            Outcome::Status { status, error, hints: Hints { retry_after, should_retry } }
        }),
        1 => Just(Outcome::ConnectFailed),
        1 => Just(Outcome::Reset),
        1 => Just(Outcome::MalformedBody),
        1 => Just(Outcome::InvalidOutput),
        1 => prop_oneof![Just(TimeoutPhase::BeforeHeaders), Just(TimeoutPhase::AfterHeaders)]
            .prop_map(|phase| Outcome::TimedOut { phase }),
        1 => (code, 0u32..4).prop_map(|(error, tokens_delivered)| Outcome::StreamBroken { error, tokens_delivered }),
    ]
}

/// A clock advance of up to `max`.
pub fn clock_advance(max: Duration) -> impl Strategy<Value = Duration> {
    let max_ms = u64::try_from(max.as_millis()).unwrap_or(u64::MAX).max(1);
    (0..=max_ms).prop_map(Duration::from_millis)
}

/// One scripted attempt taking up to `max_latency`, billing up to the given tokens.
pub fn scripted_attempt(
    max_latency: Duration,
    max_input: u32,
    max_output: u32,
) -> impl Strategy<Value = ScriptedAttempt> {
    (
        clock_advance(max_latency),
        outcome(),
        0..=max_input,
        0..=max_output,
    )
        .prop_map(|(latency, outcome, input, output)| ScriptedAttempt {
            latency,
            outcome,
            usage: Usage::new(input, output),
        })
}

/// A script of `len` attempts; a request's n-th attempt plays entry `n % len`.
pub fn outcome_script(
    max_latency: Duration,
    max_input: u32,
    max_output: u32,
    len: Range<usize>,
) -> impl Strategy<Value = Vec<ScriptedAttempt>> {
    prop::collection::vec(scripted_attempt(max_latency, max_input, max_output), len)
}

/// Any valid backoff.
pub fn backoff() -> impl Strategy<Value = Backoff> {
    let jitter = prop_oneof![
        Just(Jitter::None),
        Just(Jitter::Full),
        Just(Jitter::Equal),
        Just(Jitter::Decorrelated)
    ];
    (0u64..5_000, 1.0f64..4.0, 0u64..60_000, jitter).prop_map(
        |(base, multiplier, extra, jitter)| Backoff {
            base: Duration::from_millis(base),
            multiplier,
            cap: Duration::from_millis(base + extra),
            jitter,
        },
    )
}

/// Any valid budget of the three kinds.
pub fn budget_config() -> impl Strategy<Value = BudgetConfig> {
    prop_oneof![
        (0.0f64..1.0, 0u32..20, 1u64..20_000).prop_map(|(ratio, min_per_sec, ttl)| {
            BudgetConfig::Ratio(RatioConfig {
                ratio: (ratio * 1000.0).round() / 1000.0,
                min_per_sec,
                ttl: Duration::from_millis(ttl),
            })
        }),
        (1u32..50, 1u32..1000).prop_map(|(max_tokens, milli)| BudgetConfig::Throttle(
            ThrottleConfig {
                max_tokens,
                token_ratio: f64::from(milli.min(max_tokens * 1000)) / 1000.0,
            }
        )),
        (10u32..600, 1u32..10, 1u32..20, 0u32..3).prop_map(|(capacity, retry, timeout, refund)| {
            BudgetConfig::Quota(QuotaConfig {
                capacity,
                retry_cost: retry.min(capacity),
                timeout_cost: timeout.min(capacity),
                success_refund: refund,
            })
        }),
    ]
}

/// Any valid route of one to four steps over three providers, the last possibly a
/// conditional step.
pub fn route_config() -> impl Strategy<Value = RouteConfig> {
    let step = (
        0usize..3,
        1u32..5,
        100u64..30_000,
        prop::option::of(backoff()),
    )
        .prop_map(|(provider, attempts, timeout, backoff)| {
            let (provider, model) = [
                ("anthropic", "claude"),
                ("openai", "gpt"),
                ("gemini", "gemini"),
            ][provider];
            StepConfig {
                provider: provider.to_owned(),
                model: model.to_owned(),
                attempts,
                timeout: Duration::from_millis(timeout),
                backoff,
                prompt_variant: None,
                when: None,
                validator: None,
            }
        });
    (prop::collection::vec(step, 1..4), backoff(), any::<bool>()).prop_map(
        |(mut steps, backoff, conditional)| {
            if conditional && steps.len() > 1 {
                if let Some(last) = steps.last_mut() {
                    last.when = Some(crate::route::Condition::ContextWindowExceeded);
                }
            }
            RouteConfig {
                name: "generated".to_owned(),
                steps,
                backoff,
                plan: Default::default(),
                taxonomy: Default::default(),
                degrade: Default::default(),
                validator: None,
            }
        },
    )
}

/// What to check a route under.
#[derive(Clone, Debug)]
pub struct Check {
    /// Generated requests (proptest cases).
    pub cases: u32,
    /// Each request's deadline.
    pub deadline: Duration,
    /// The task kind of the requests.
    pub kind: TaskKind,
    /// Per-request options (token sizes bound the scripted usage; the cost ceiling
    /// is checked).
    pub options: RequestOptions,
    /// Breakers and budgets (a fresh registry per request).
    pub registry: RegistryConfig,
    /// Prices, for the cost ceiling.
    pub prices: PriceTable,
    /// The slowest scripted attempt.
    pub max_latency: Duration,
}

impl Default for Check {
    /// 256 interactive requests with a 30 s deadline, default registry, attempts up
    /// to 40 s (so timeouts happen), 2,000 input and 1,000 output tokens.
    fn default() -> Check {
        Check {
            cases: 256,
            deadline: Duration::from_secs(30),
            kind: TaskKind::Interactive,
            options: RequestOptions {
                input_tokens: 2_000,
                max_output_tokens: 1_000,
                cost_ceiling: None,
                allow_restart_after_tokens: false,
            },
            registry: RegistryConfig::default(),
            prices: PriceTable::new(),
            max_latency: Duration::from_secs(40),
        }
    }
}

/// What a passing check ran.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Report {
    /// Requests run (generated cases that passed; proptest stops at `Check::cases`).
    pub cases: u32,
}

/// A promise a request broke.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Promise {
    /// An attempt, its timeout or a wait reached past the deadline.
    Deadline,
    /// A step got more attempts than it allows.
    AttemptAllowance,
    /// More retries than the budget's bound.
    Budget,
    /// A retry or fallback took the cost past the ceiling.
    CostCeiling,
    /// Something other than a conditional step followed a non-retriable outcome.
    NonRetriableRetried,
    /// The plan did not finish.
    Termination,
}

/// Why a check failed.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub enum CheckError {
    /// The route does not parse or bind.
    Route(String),
    /// A generated request broke a promise; `script` is the shrunk counter-example.
    Violation {
        /// Which promise.
        promise: Promise,
        /// What happened.
        detail: String,
        /// The outcome script, shrunk.
        script: Vec<ScriptedAttempt>,
        /// The plan's RNG seed for that request.
        seed: u64,
    },
}

impl fmt::Display for CheckError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CheckError::Route(e) => write!(f, "route: {e}"),
            CheckError::Violation {
                promise,
                detail,
                script,
                seed,
            } => {
                write!(f, "{promise:?} broken: {detail}\n  seed: {seed}\n  script:")?;
                for s in script {
                    write!(
                        f,
                        "\n    {:?} after {:?}, billed {:?}",
                        s.outcome, s.latency, s.usage
                    )?;
                }
                Ok(())
            }
        }
    }
}

impl std::error::Error for CheckError {}

impl Check {
    /// Checks a route written in TOML.
    pub fn run_toml(&self, route: &str) -> Result<Report, CheckError> {
        let config = RouteConfig::from_toml(route).map_err(|e| CheckError::Route(e.to_string()))?;
        self.run(&config)
    }

    /// Checks `route` under `self.cases` generated requests.
    pub fn run(&self, route: &RouteConfig) -> Result<Report, CheckError> {
        // Bind once up front so that configuration errors are reported as such.
        Registry::new(self.registry.clone())
            .map_err(|e| CheckError::Route(e.to_string()))
            .and_then(|r| {
                Route::bind(route, &r, &self.prices).map_err(|e| CheckError::Route(e.to_string()))
            })?;
        let mut runner = TestRunner::new(Config {
            cases: self.cases,
            failure_persistence: None,
            ..Config::default()
        });
        let strategy = (
            outcome_script(
                self.max_latency,
                self.options.input_tokens,
                self.options.max_output_tokens,
                1..24,
            ),
            any::<u64>(),
        );
        let last = std::cell::RefCell::new((Promise::Termination, String::new()));
        // Counted, not copied from the configuration: the report says what really ran.
        let ran = std::cell::Cell::new(0u32);
        let result = runner.run(&strategy, |(script, seed)| {
            ran.set(ran.get() + 1);
            self.one(route, &script, seed).map_err(|(promise, detail)| {
                *last.borrow_mut() = (promise, detail.clone());
                TestCaseError::fail(detail)
            })
        });
        match result {
            Ok(()) => Ok(Report { cases: ran.get() }),
            Err(TestError::Fail(_, (script, seed))) => {
                // The last failure recorded is the shrunk case's.
                let (promise, detail) = last.into_inner();
                Err(CheckError::Violation {
                    promise,
                    detail,
                    script,
                    seed,
                })
            }
            Err(TestError::Abort(reason)) => Err(CheckError::Route(reason.to_string())),
        }
    }

    /// Runs one request and checks its promises.
    fn one(
        &self,
        config: &RouteConfig,
        script: &[ScriptedAttempt],
        seed: u64,
    ) -> Result<(), (Promise, String)> {
        let registry = Registry::new(self.registry.clone())
            .map_err(|e| (Promise::Termination, e.to_string()))?;
        let route = Route::bind(config, &registry, &self.prices)
            .map_err(|e| (Promise::Termination, e.to_string()))?;
        let start = Time::from_secs(1);
        let deadline = Deadline::after(start, self.deadline);
        let end = deadline.end();
        let mut plan = Plan::new(&route, self.kind, deadline, self.options);
        let mut rng = crate::rng::seeded(seed);
        let mut now = start;
        let mut steps = Vec::new();
        let mut first_cost = None;
        let polls = 16
            * (config
                .steps
                .iter()
                .map(|s| s.attempts as usize)
                .sum::<usize>()
                + config.steps.len())
            + 16;
        for _ in 0..polls {
            match plan.poll(now, &mut rng) {
                Action::Attempt(a) => {
                    if now >= end || now + a.timeout > end {
                        return Err((
                            Promise::Deadline,
                            format!("attempt at {now} with timeout {:?} past {end}", a.timeout),
                        ));
                    }
                    steps.push(a.step);
                    let s = script[(a.attempt as usize - 1) % script.len()];
                    let (took, outcome) = if s.latency > a.timeout {
                        (
                            a.timeout,
                            Outcome::TimedOut {
                                phase: TimeoutPhase::BeforeHeaders,
                            },
                        )
                    } else {
                        (s.latency, s.outcome)
                    };
                    now = now + took;
                    first_cost.get_or_insert_with(|| route_cost(&route, a.step, s.usage));
                    plan.on_outcome(now, a.id, outcome, s.usage);
                }
                Action::Wait { until } if until >= end => {
                    return Err((
                        Promise::Deadline,
                        format!("wait at {now} until {until}, past {end}"),
                    ));
                }
                Action::Wait { until } => now = until.max(now),
                Action::Notice(_) => {}
                Action::LookupCache => plan.on_cache(now, false),
                Action::Finish(finished) => {
                    return self.check_finished(config, &route, &steps, &finished, first_cost);
                }
            }
        }
        Err((
            Promise::Termination,
            format!("no finish after {polls} polls"),
        ))
    }

    fn check_finished(
        &self,
        config: &RouteConfig,
        route: &Route,
        steps: &[usize],
        finished: &crate::plan::Finished,
        first_cost: Option<Cost>,
    ) -> Result<(), (Promise, String)> {
        if finished.elapsed > self.deadline {
            return Err((
                Promise::Deadline,
                format!("finished after {:?}", finished.elapsed),
            ));
        }
        for (i, step) in config.steps.iter().enumerate() {
            let n = steps.iter().filter(|&&s| s == i).count();
            // A step is visited once, so its attempts are bounded by its allowance.
            if n > step.attempts as usize {
                return Err((
                    Promise::AttemptAllowance,
                    format!("step {i}: {n} attempts, {} allowed", step.attempts),
                ));
            }
        }
        let classes: Vec<(usize, Class)> = finished
            .history
            .attempts()
            .map(|(s, _, c)| (s, c))
            .collect();
        for pair in classes.windows(2) {
            if let (_, Class::NonRetriable(_)) = pair[0]
                && config.steps[pair[1].0].when.is_none()
            {
                return Err((
                    Promise::NonRetriableRetried,
                    format!("{:?} then step {}", pair[0].1, pair[1].0),
                ));
            }
        }
        if let Some(budget) = &self.registry.budget {
            let mut by_scope: Vec<(&str, usize, usize)> = Vec::new(); // (scope, retries, steps)
            for (i, w) in steps.iter().enumerate() {
                let provider = match self.registry.budget_scope {
                    BudgetScope::Global => "*",
                    _ => config.steps[*w].provider.as_str(),
                };
                let retry = i > 0 && steps[i - 1] == *w;
                match by_scope.iter_mut().find(|(p, _, _)| *p == provider) {
                    Some(entry) => {
                        entry.1 += usize::from(retry);
                        entry.2 += usize::from(!retry);
                    }
                    None => by_scope.push((provider, usize::from(retry), 1)),
                }
            }
            for (scope, retries, requests) in by_scope {
                let bound = retry_bound(budget, requests, self.deadline);
                if retries as f64 > bound {
                    return Err((
                        Promise::Budget,
                        format!("{retries} retries on budget {scope}, bound {bound:.1}"),
                    ));
                }
            }
        }
        if let (Some(ceiling), Some(first)) = (self.options.cost_ceiling, first_cost)
            && finished.cost > ceiling.max(first)
        {
            return Err((
                Promise::CostCeiling,
                format!("cost {} over ceiling {ceiling}", finished.cost),
            ));
        }
        let _ = route;
        Ok(())
    }
}

fn route_cost(route: &Route, step: usize, usage: Usage) -> Cost {
    route
        .steps
        .get(step)
        .map_or(Cost::ZERO, |s| s.price.cost(usage))
}

/// The most retries one request can draw from a fresh budget of `config` in which it
/// made `requests` first attempts, over `deadline` (the bounds each budget documents).
fn retry_bound(config: &BudgetConfig, requests: usize, deadline: Duration) -> f64 {
    match config {
        BudgetConfig::Ratio(c) => {
            let reserve = f64::from(c.min_per_sec) * c.ttl.as_secs_f64();
            let slot = c.ttl.as_secs_f64() / 10.0;
            let slots = (deadline.as_secs_f64() / slot).ceil() + 1.0;
            c.ratio * requests as f64 + reserve * (slots / 10.0).ceil()
        }
        BudgetConfig::Throttle(c) => f64::from(c.max_tokens.div_ceil(2)),
        BudgetConfig::Quota(c) => f64::from(c.capacity / c.retry_cost.min(c.timeout_cost).max(1)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `n` values of `strategy`, the same on every run.
    fn samples<S: Strategy>(strategy: S, n: usize) -> Vec<S::Value> {
        use proptest::strategy::ValueTree;
        let mut runner = TestRunner::deterministic();
        (0..n)
            .map(|_| strategy.new_tree(&mut runner).unwrap().current())
            .collect()
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(24))]

        #[test]
        fn generated_routes_keep_their_promises(route in route_config(), budget in budget_config(), scope in prop_oneof![
            Just(BudgetScope::Global), Just(BudgetScope::Provider), Just(BudgetScope::Key)
        ]) {
            let check = Check {
                cases: 16,
                registry: RegistryConfig { budget: Some(budget), budget_scope: scope, ..RegistryConfig::default() },
                ..Check::default()
            };
            if let Err(e) = check.run(&route) {
                prop_assert!(false, "{e}");
            }
        }
    }

    /// The route strategy makes valid routes only, some of them with a conditional last
    /// step (never a lone one: a route needs an unconditional step).
    #[test]
    fn generated_routes_are_valid_and_some_end_conditionally() {
        let routes = samples(route_config(), 64);
        for route in &routes {
            assert_eq!(route.validate(), Ok(()), "{route:?}");
        }
        assert!(
            routes
                .iter()
                .any(|r| r.steps.last().is_some_and(|s| s.when.is_some()))
        );
    }

    /// The backoff strategy's caps lie between the base and a minute past it: every
    /// backoff valid, some capped within a second of the base, some more than the
    /// default 30 s deadline past it.
    #[test]
    fn generated_backoffs_cap_within_a_minute_of_their_base() {
        let backoffs = samples(backoff(), 1000);
        for b in &backoffs {
            assert_eq!(b.validate(), Ok(()), "{b:?}");
        }
        let growth: Vec<Duration> = backoffs.iter().map(|b| b.cap - b.base).collect();
        assert!(growth.iter().all(|g| *g < Duration::from_secs(60)));
        assert!(growth.iter().any(|g| *g < Duration::from_secs(1)));
        assert!(growth.iter().any(|g| *g > Duration::from_secs(30)));
    }

    #[test]
    fn the_report_counts_the_requests_that_ran() {
        let check = Check {
            cases: 5,
            ..Check::default()
        };
        let text = "name = \"x\"\n[[step]]\nprovider = \"a\"\nmodel = \"m\"\nattempts = 2\n";
        assert_eq!(check.run_toml(text).unwrap(), Report { cases: 5 });
    }

    /// The ceiling bounds retries and fallbacks; the first attempt is always allowed,
    /// so a request whose first attempt alone costs more keeps the promise.
    #[test]
    fn a_first_attempt_over_the_ceiling_keeps_the_promise() {
        let check = Check {
            cases: 32,
            options: RequestOptions {
                cost_ceiling: Some(Cost::from_dollars(0.000_001)),
                ..Check::default().options
            },
            prices: PriceTable::new().with(
                "m",
                crate::cost::Price {
                    input_per_mtok: 3.0,
                    output_per_mtok: 15.0,
                    batch_input_per_mtok: None,
                    batch_output_per_mtok: None,
                },
            ),
            ..Check::default()
        };
        let text = "name = \"x\"\n[[step]]\nprovider = \"a\"\nmodel = \"m\"\nattempts = 3\n";
        assert_eq!(check.run_toml(text).unwrap(), Report { cases: 32 });
        // Far under a generous ceiling, too.
        let generous = Check {
            options: RequestOptions {
                cost_ceiling: Some(Cost::from_dollars(10.0)),
                ..check.options
            },
            ..check
        };
        assert_eq!(generous.run_toml(text).unwrap(), Report { cases: 32 });
    }

    #[test]
    fn broken_promises_are_reported() {
        let check = Check::default();
        let text = "name = \"x\"\n[[step]]\nprovider = \"a\"\nmodel = \"m\"\nattempts = 3\n";
        let config = RouteConfig::from_toml(text).unwrap();
        let registry = Registry::new(check.registry.clone()).unwrap();
        let route = Route::bind(&config, &registry, &check.prices).unwrap();
        let finished = crate::plan::Finished {
            resolution: crate::plan::Resolution::Success {
                step: 0,
                fallback_used: false,
            },
            attempts: 4,
            elapsed: Duration::from_secs(1),
            cost: Cost::ZERO,
            retry_cost: Cost::ZERO,
            history: Default::default(),
        };
        let err = check
            .check_finished(&config, &route, &[0, 0, 0, 0], &finished, None)
            .unwrap_err();
        assert_eq!(err.0, Promise::AttemptAllowance);
        let late = crate::plan::Finished {
            elapsed: Duration::from_secs(31),
            ..finished
        };
        assert_eq!(
            check
                .check_finished(&config, &route, &[0], &late, None)
                .unwrap_err()
                .0,
            Promise::Deadline
        );
        // Finishing on the deadline itself (an attempt clipped to the time left that
        // then timed out) keeps the promise.
        let on_time = crate::plan::Finished {
            elapsed: check.deadline,
            ..late
        };
        assert_eq!(
            check.check_finished(&config, &route, &[0], &on_time, None),
            Ok(())
        );
        assert!(matches!(
            check.run_toml("name = 1"),
            Err(CheckError::Route(_))
        ));
    }

    /// A violation reads as the promise, what happened, the seed and the shrunk script,
    /// one attempt a line.
    #[test]
    fn check_errors_say_what_broke_and_how_to_replay_it() {
        assert_eq!(
            CheckError::Route("no steps".to_owned()).to_string(),
            "route: no steps"
        );
        let violation = CheckError::Violation {
            promise: Promise::Deadline,
            detail: "finished after 31s".to_owned(),
            script: vec![
                ScriptedAttempt {
                    latency: Duration::from_millis(1500),
                    outcome: Outcome::Reset,
                    usage: Usage::new(10, 0),
                },
                ScriptedAttempt {
                    latency: Duration::from_secs(2),
                    outcome: Outcome::Success,
                    usage: Usage::new(10, 20),
                },
            ],
            seed: 7,
        };
        assert_eq!(
            violation.to_string(),
            "Deadline broken: finished after 31s\n  seed: 7\n  script:\
             \n    Reset after 1.5s, billed Usage { input_tokens: 10, output_tokens: 0 }\
             \n    Success after 2s, billed Usage { input_tokens: 10, output_tokens: 20 }"
        );
    }

    /// The budget promise's verdict on a request that succeeded after attempts at
    /// `steps` of a route over providers `a` and `b` (three attempts each).
    fn budget_verdict(
        budget: BudgetConfig,
        budget_scope: BudgetScope,
        steps: &[usize],
    ) -> Result<(), Promise> {
        let text = "name = \"x\"\n[[step]]\nprovider = \"a\"\nmodel = \"m\"\nattempts = 3\n\
                    [[step]]\nprovider = \"b\"\nmodel = \"m\"\nattempts = 3\n";
        let config = RouteConfig::from_toml(text).unwrap();
        let check = Check {
            registry: RegistryConfig {
                budget: Some(budget),
                budget_scope,
                ..RegistryConfig::default()
            },
            ..Check::default()
        };
        let registry = Registry::new(check.registry.clone()).unwrap();
        let route = Route::bind(&config, &registry, &check.prices).unwrap();
        let last = steps.last().copied().unwrap_or(0);
        let finished = crate::plan::Finished {
            resolution: crate::plan::Resolution::Success {
                step: last,
                fallback_used: last != 0,
            },
            attempts: u32::try_from(steps.len()).unwrap(),
            elapsed: Duration::from_secs(1),
            cost: Cost::ZERO,
            retry_cost: Cost::ZERO,
            history: Default::default(),
        };
        check
            .check_finished(&config, &route, steps, &finished, None)
            .map_err(|(promise, _)| promise)
    }

    /// A ratio bucket that earns one retry per first attempt, and keeps no reserve.
    const ONE_FOR_ONE: BudgetConfig = BudgetConfig::Ratio(RatioConfig {
        ratio: 1.0,
        min_per_sec: 0,
        ttl: Duration::from_secs(10),
    });

    /// A global budget is one pool: retries at two providers add up against one bound,
    /// where per-provider budgets each have their own.
    #[test]
    fn a_global_budget_counts_every_providers_retries_together() {
        // At most one retry (half of two tokens) per pool.
        let throttle = BudgetConfig::Throttle(ThrottleConfig {
            max_tokens: 2,
            token_ratio: 0.1,
        });
        let steps = [0, 0, 1, 1];
        assert_eq!(
            budget_verdict(throttle, BudgetScope::Global, &steps),
            Err(Promise::Budget)
        );
        assert_eq!(
            budget_verdict(throttle, BudgetScope::Provider, &steps),
            Ok(())
        );
        // A ratio bucket's bound grows with the first attempts: the two in the one
        // pool pay for its two retries.
        assert_eq!(
            budget_verdict(ONE_FOR_ONE, BudgetScope::Global, &steps),
            Ok(())
        );
    }

    /// Only a first attempt at a step earns ratio credit, never a retry: two retries
    /// on one first attempt's credit break the bound.
    #[test]
    fn retries_earn_no_ratio_credit() {
        assert_eq!(
            budget_verdict(ONE_FOR_ONE, BudgetScope::Provider, &[0, 0, 0]),
            Err(Promise::Budget)
        );
        assert_eq!(
            budget_verdict(ONE_FOR_ONE, BudgetScope::Provider, &[0, 0, 1]),
            Ok(())
        );
    }

    #[test]
    fn budget_bounds_match_the_documented_ones() {
        let quota = BudgetConfig::Quota(QuotaConfig {
            capacity: 500,
            retry_cost: 5,
            timeout_cost: 10,
            success_refund: 1,
        });
        assert_eq!(retry_bound(&quota, 1, Duration::from_secs(30)), 100.0);
        let throttle = BudgetConfig::Throttle(ThrottleConfig {
            max_tokens: 10,
            token_ratio: 0.1,
        });
        assert_eq!(retry_bound(&throttle, 1, Duration::from_secs(30)), 5.0);
        // 0.2 per request; a reserve of 100 retries per ten 1 s windows, and a 30 s
        // span counts as 31 windows: four reserves.
        let ratio = BudgetConfig::Ratio(crate::budget::RatioConfig::default());
        assert_eq!(retry_bound(&ratio, 5, Duration::from_secs(30)), 401.0);
        // A 20 s ttl has 2 s windows: a 30 s span touches 16 of them, two reserves of 20.
        let slow = BudgetConfig::Ratio(crate::budget::RatioConfig {
            ratio: 0.5,
            min_per_sec: 1,
            ttl: Duration::from_secs(20),
        });
        assert_eq!(retry_bound(&slow, 4, Duration::from_secs(30)), 42.0);
    }
}
