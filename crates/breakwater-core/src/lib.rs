//! Breakwater's policy core.
#![cfg_attr(docsrs, feature(doc_cfg))]

pub mod backoff;
pub mod class;
pub mod key;
pub mod outcome;
pub mod retry_after;
pub mod rng;
pub mod taxonomy;
pub mod time;

pub use backoff::{Backoff, Jitter};
pub use class::{Class, ClassKind, ClassSet, Fatal};
pub use key::Key;
pub use outcome::{ErrorCode, Hints, Outcome, TimeoutPhase};
pub use rng::Rng;
pub use taxonomy::{StatusClass, Taxonomy};
pub use time::Time;
