//! Shared by the integration tests: the breaker's sequential reference model and the
//! proptest strategies that drive it. Each test uses part of it.

pub(crate) mod breaker_model;
pub(crate) mod strategies;
