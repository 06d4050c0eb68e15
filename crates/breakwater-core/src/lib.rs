//! Breakwater's policy core.
#![cfg_attr(docsrs, feature(doc_cfg))]

pub mod backoff;
pub mod breaker;
pub mod class;
pub mod key;
pub mod rng;
pub mod time;

pub use backoff::{Backoff, Jitter};
pub use breaker::{
    Admit, Breaker, BreakerConfig, BreakerEvent, Permit, RejectReason, Rejection, State, Window,
};
pub use class::{Class, ClassKind, ClassSet, Fatal};
pub use key::Key;
pub use rng::Rng;
pub use time::Time;
