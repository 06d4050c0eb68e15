//! Breakwater's benchmarks: one criterion target, one module per group.
#![allow(missing_docs)] // criterion's macros generate undocumented functions

use criterion::{criterion_group, criterion_main};

mod core;
mod fleet;
mod peers;
mod sim;

criterion_group!(
    benches,
    core::breaker,
    core::budget,
    core::backoff,
    core::plan,
    core::registry,
    peers::breakers,
    peers::backoff,
    peers::contention,
    sim::engine,
    fleet::fleet
);
criterion_main!(benches);
