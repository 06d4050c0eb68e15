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
use breakwater_sim::scenario::Preset;
use criterion::{Criterion, Throughput};

pub(crate) fn engine(c: &mut Criterion) {
    let mut group = c.benchmark_group("sim_engine");
    // Each sample runs a whole scenario (0.1–0.5 s): few samples, short warm-up, so
    // the group stays under a minute.
    group
        .sample_size(10)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(5));
    for clients in [1_000, 10_000, 100_000] {
        let scenario =
            breakwater_benches::engine::scenario(clients, breakwater_benches::engine::REQUESTS);
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
