//! Breakwater's policy core.
#![cfg_attr(docsrs, feature(doc_cfg))]

pub mod backoff;
pub mod class;
pub mod key;
pub mod rng;
pub mod time;

pub use backoff::{Backoff, Jitter};
pub use class::{Class, ClassKind, ClassSet, Fatal};
pub use key::Key;
pub use rng::Rng;
pub use time::Time;
