//! Breakwater's policy core: a pure, clock-injected state machine that decides when to
//! retry, when to stop, when to switch model or provider, and what to return when
//! nothing answers, for services that call LLM APIs.
//!
//! The core never reads a clock, sleeps, draws from a global RNG or touches the
//! network: time comes in as a [`Time`] argument, randomness as an [`Rng`], outcomes as
//! [`Outcome`] values, and decisions go out as [`Action`]s. The HTTP adapter drives it
//! with real time and sockets, the simulator with virtual time; both run this code.
//!
//! The pieces, each a module: [`taxonomy`] (what an outcome means), [`retry_after`],
//! [`backoff`], [`budget`] (retries as a share of traffic), [`deadline`], [`breaker`]
//! (per provider/model), [`registry`] (the shared state), [`fleet`] (sharing it across
//! replicas), [`route`] (fallback chains),
//! [`plan`] (the per-request state machine), [`metrics`] and [`cost`].
//!
//! Every driver runs the same loop: poll the plan, act, report back.
//!
//! ```
//! use std::time::Duration;
//! use breakwater_core::*;
//!
//! let route = RouteConfig::from_toml(r#"
//!     name = "chat"
//!     [[step]]
//!     provider = "anthropic"
//!     model = "claude-sonnet-4-5"
//!     [[step]]
//!     provider = "openai"
//!     model = "gpt-4o-mini"
//! "#).unwrap();
//! let registry = Registry::new(RegistryConfig::default()).unwrap();
//! let route = Route::bind(&route, &registry, &PriceTable::new()).unwrap();
//!
//! let mut rng = rng::seeded(42);
//! let mut now = Time::ZERO;
//! let deadline = Deadline::after(now, Duration::from_secs(30));
//! let mut plan = Plan::new(&route, TaskKind::Interactive, deadline, RequestOptions::default());
//! let mut replies = [Outcome::Status { status: 529, error: None, hints: Hints::default() }, Outcome::Success].into_iter();
//! let finished = loop {
//!     match plan.poll(now, &mut rng) {
//!         Action::Attempt(attempt) => {
//!             now = now + Duration::from_millis(500); // the provider answers
//!             plan.on_outcome(now, attempt.id, replies.next().unwrap(), Usage::new(900, 120));
//!         }
//!         Action::Wait { until } => now = until,
//!         Action::Notice(Notice::Slow) => println!("taking longer than usual"),
//!         Action::LookupCache => plan.on_cache(now, false),
//!         Action::Finish(finished) => break finished,
//!     }
//! };
//! assert!(finished.is_success());
//! assert_eq!(finished.attempts, 2);
//! ```
#![cfg_attr(docsrs, feature(doc_cfg))]

pub mod alert;
pub mod backoff;
pub mod breaker;
pub mod budget;
pub mod class;
pub mod cost;
pub mod deadline;
pub mod fleet;
pub mod key;
pub mod metrics;
pub mod outcome;
pub mod plan;
pub mod registry;
pub mod retry_after;
pub mod rng;
pub mod route;
mod sync;
pub mod taxonomy;
#[cfg(feature = "proptest")]
pub mod testing;
pub mod time;

#[cfg(test)]
mod written;

pub use backoff::{Backoff, Jitter};
pub use breaker::{
    Admit, Breaker, BreakerConfig, BreakerEvent, Permit, RejectReason, Rejection, State, Window,
};
pub use budget::{
    Budget, BudgetConfig, QuotaBudget, QuotaConfig, RatioBudget, RatioConfig, Refused, RetryBudget,
    RetryReason, ThrottleBudget, ThrottleConfig, Withdrawal,
};
pub use class::{Class, ClassKind, ClassSet, Fatal};
pub use cost::{BATCH_DISCOUNT, BatchCost, Cost, Price, PriceTable, Usage};
pub use deadline::Deadline;
pub use key::Key;
pub use metrics::{Metrics, MetricsSnapshot};
pub use outcome::{ErrorCode, Hints, Outcome, TimeoutPhase};
pub use plan::{
    Action, Attempt, AttemptId, Finished, FinishedRef, Notice, Plan, RequestOptions, Resolution,
    TaskKind,
};
pub use registry::{Registry, RegistryConfig};
pub use rng::Rng;
pub use route::{Route, RouteConfig};
pub use taxonomy::{StatusClass, Taxonomy};
pub use time::Time;
