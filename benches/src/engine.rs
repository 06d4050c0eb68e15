//! The simulator engine bench's scenario, shared by the criterion group
//! (`benches/sim.rs`) and the profiling loop (`examples/engine_loop.rs`), so that the
//! instructions counted are those of the run that is timed.

use breakwater_sim::scenario::Scenario;

/// Requests each case of the engine bench plays.
pub const REQUESTS: u64 = 100_000;

/// A storm-free LLM provider with room for every worker, and `clients` closed-loop
/// workers (1 s think time, so all of them have requests out at once) playing
/// `requests` requests in all.
#[must_use]
pub fn scenario(clients: u32, requests: u64) -> Scenario {
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
    // The text above is a valid scenario for any positive `clients`.
    #[allow(clippy::expect_used)]
    Scenario::from_toml(&src).expect("valid bench scenario")
}
