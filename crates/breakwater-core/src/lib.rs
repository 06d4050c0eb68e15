//! Breakwater's policy core.
#![cfg_attr(docsrs, feature(doc_cfg))]

pub mod backoff;
pub mod breaker;
pub mod budget;
pub mod class;
pub mod deadline;
pub mod key;
pub mod outcome;
pub mod retry_after;
pub mod rng;
pub mod taxonomy;
pub mod time;

pub use backoff::{Backoff, Jitter};
pub use breaker::{Admit, Breaker, BreakerConfig, BreakerEvent, Permit, RejectReason, Rejection, State, Window};
pub use budget::{
    Budget, BudgetConfig, QuotaBudget, QuotaConfig, RatioBudget, RatioConfig, Refused, RetryBudget,
    RetryReason, ThrottleBudget, ThrottleConfig, Withdrawal,
};
pub use class::{Class, ClassKind, ClassSet, Fatal};
pub use deadline::Deadline;
pub use key::Key;
pub use outcome::{ErrorCode, Hints, Outcome, TimeoutPhase};
pub use rng::Rng;
pub use taxonomy::{StatusClass, Taxonomy};
pub use time::Time;
