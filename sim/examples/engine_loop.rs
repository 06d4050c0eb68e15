//! A profiling run for instruction counts: one policy's run of the engine bench's
//! closed-loop scenario (`benches/benches/sim.rs`), without criterion:
//! `engine_loop <clients> <requests>`. Run it under callgrind and divide the total by
//! the events it prints:
//!
//! ```text
//! cargo build --release -p breakwater-sim --example engine_loop
//! valgrind --tool=callgrind target/release/examples/engine_loop 1000 100000
//! ```
#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used)]

use std::hint::black_box;

use breakwater_sim::engine::run_policy;
use breakwater_sim::policy::PolicySetup;
use breakwater_sim::scenario::{Preset, Scenario};

/// The bench's scenario: a storm-free LLM provider with room for every worker, and
/// `clients` closed-loop workers with a 1 s think time.
fn scenario(clients: u32, requests: u64) -> Scenario {
    let src = format!(
        r#"
name = "engine throughput, {clients} clients"
seed = 1
duration_s = 3600
policies = ["breakwater"]

[[provider]]
name = "llm"
kind = "llm"
concurrency = {clients}
queue_limit = {clients}
overload_start = {clients}
overload_full = {full}
ttft = {{ median_ms = 500, sigma = 0.4 }}
per_token = {{ median_ms = 2, sigma = 0.25 }}
[[provider.model]]
name = "m"
input_price = 3.0
output_price = 15.0

[[clients]]
name = "workers"
kind = "closed"
workers = {clients}
think_ms = 1000
requests = {requests}
input_tokens = {{ median = 1000, sigma = 0.5 }}
output_tokens = {{ median = 200, sigma = 0.5 }}
deadline_ms = 30000
"#,
        full = 2 * clients,
    );
    Scenario::from_toml(&src).expect("valid scenario")
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let clients: u32 = args.get(1).map_or(1_000, |a| a.parse().expect("clients"));
    let requests: u64 = args
        .get(2)
        .map_or(100_000, |a| a.parse().expect("requests"));
    let scenario = scenario(clients, requests);
    let setup = PolicySetup::preset(&scenario, Preset::Breakwater, "breakwater");
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
