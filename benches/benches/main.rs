//! Breakwater's benchmarks: one criterion target, one module per group.
#![allow(missing_docs)] // criterion's macros generate undocumented functions

use criterion::{criterion_group, criterion_main};

mod adapter;
mod core;
mod fleet;
mod peers;
mod sim;
mod tower_peers;

criterion_group!(
    benches,
    core::breaker,
    core::budget,
    core::backoff,
    core::plan,
    core::registry,
    peers::breakers,
    tower_peers::breaker,
    peers::backoff,
    tower_peers::budget,
    peers::contention,
    adapter::adapter,
    sim::engine,
    fleet::fleet
);
criterion_main!(benches);
