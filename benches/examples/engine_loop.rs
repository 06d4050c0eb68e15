//! A profiling run for instruction counts: one policy's run of the engine bench's
//! closed-loop scenario (`benches/benches/sim.rs`), without criterion:
//! `engine_loop <clients> <requests> [repeat]`. Run it under callgrind and divide the
//! total by the events it prints. `repeat` plays the run that many times in one
//! process, as criterion's iterations do. What a repeated run costs depends on the
//! allocator: glibc maps a block above its mmap threshold (which adapts up to 32 MiB)
//! afresh on every allocation, so at 100,000 clients, whose request table grows to
//! 36 MB, each run faults it in again (~9,500 page faults, ~15% of the run's time).
//!
//! ```text
//! cargo build --profile bench -p breakwater-benches --example engine_loop
//! valgrind --tool=callgrind target/release/examples/engine_loop 1000 100000
//! ```
#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used)]

use std::hint::black_box;

use breakwater_sim::engine::run_policy;
use breakwater_sim::policy::PolicySetup;
use breakwater_sim::scenario::Preset;

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let clients: u32 = args.get(1).map_or(1_000, |a| a.parse().expect("clients"));
    let requests: u64 = args
        .get(2)
        .map_or(100_000, |a| a.parse().expect("requests"));
    let scenario = breakwater_benches::engine::scenario(clients, requests);
    let setup = PolicySetup::preset(&scenario, Preset::Breakwater, "breakwater");
    let repeat: u32 = args.get(3).map_or(1, |a| a.parse().expect("repeat"));
    for _ in 1..repeat {
        black_box(run_policy(&scenario, &setup).expect("the scenario runs"));
    }
    let run = black_box(run_policy(&scenario, &setup).expect("the scenario runs"));
    // A digest of everything the run produced, to check that a change kept the output.
    let json = serde_json::to_string(&(&run.report, &run.metrics, &run.servers))
        .expect("the run serialises");
    println!(
        "clients {clients} requests {requests} events {} last_finish_ns {} output-fnv {:016x}",
        run.events,
        run.last_finish.as_nanos(),
        fnv1a(json.as_bytes())
    );
}

/// FNV-1a over `bytes`.
fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, &b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    })
}
