//! The simulator's engine throughput: events per second for one policy's run of a
//! closed-loop scenario with 1,000, 10,000 and 100,000 clients, so the report shows how
//! the cost per event grows with load (more requests in flight: a deeper event queue,
//! more plans and server jobs live at once).
//!
//! Every case plays the same number of requests (a `requests` cap), so each sample does
//! comparable work; the event count of a case is measured once, outside the timed part
//! (the run is deterministic, so every iteration processes exactly that many).

use std::hint::black_box;
use std::time::Duration;

use breakwater_sim::engine::run_policy;
use breakwater_sim::policy::PolicySetup;
use breakwater_sim::scenario::{Preset, Scenario};
use criterion::{Criterion, Throughput};

/// Requests each case plays.
const REQUESTS: u64 = 100_000;

/// A storm-free LLM provider with room for every worker, and `clients` closed-loop
/// workers (1 s think time, so all of them have requests out at once).
fn scenario(clients: u32) -> Scenario {
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
requests = {REQUESTS}
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

pub(crate) fn engine(c: &mut Criterion) {
    let mut group = c.benchmark_group("sim_engine");
    // Each sample runs a whole scenario (0.1–0.5 s): few samples, short warm-up, so
    // the group stays under a minute.
    group
        .sample_size(10)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(5));
    for clients in [1_000, 10_000, 100_000] {
        let scenario = scenario(clients);
        let setup = PolicySetup::preset(&scenario, Preset::Breakwater, "breakwater");
        #[allow(clippy::expect_used)]
        let events = run_policy(&scenario, &setup)
            .expect("the bench scenario runs")
            .events;
        group.throughput(Throughput::Elements(events));
        group.bench_function(format!("closed_loop/{clients}_clients"), |b| {
            b.iter(|| black_box(run_policy(black_box(&scenario), &setup)));
        });
    }
    group.finish();
}
