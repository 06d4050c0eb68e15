//! `breakwater_sim::scenario`: the strict TOML loader, and what is built from a
//! scenario before and during a run.
//!
//! The input is the TOML text (inputs that are not UTF-8 are skipped: the loader takes a
//! `&str`). A scenario that loads is then turned into everything a run needs, each step
//! of which reads the values: every policy's setup (its tables parsed and validated by
//! the core), the servers, the workloads, a few draws of each, the description. Then a
//! small run of each policy, with every client capped at a few requests and the
//! duration at a minute, so that one input stays fast; its report is rendered.

#![no_main]

use std::time::Duration;

use breakwater_core::rng::seeded;
use breakwater_sim::engine::run_policy;
use breakwater_sim::policy::{PolicySetup, prices};
use breakwater_sim::provider::Server;
use breakwater_sim::report::{self, Meta};
use breakwater_sim::scenario::Scenario;
use breakwater_sim::workload::{ClosedLoop, OpenArrivals, draw_request};
use libfuzzer_sys::fuzz_target;

/// Requests per client population in the small run.
const RUN_REQUESTS: u64 = 8;
/// The small run's longest duration.
const RUN_DURATION: Duration = Duration::from_secs(60);

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(mut scenario) = Scenario::from_toml(text) else {
        return;
    };

    let setups: Vec<PolicySetup> = scenario
        .policies
        .iter()
        .filter_map(|p| PolicySetup::from_policy(&scenario, p).ok())
        .collect();
    let _ = prices(&scenario);
    let _ = scenario.token_mix();
    let _ = scenario.storm_window();
    let _ = report::describe(&scenario);

    let mut rng = seeded(scenario.seed);
    for i in 0..scenario.providers.len() {
        let server = Server::new(&scenario, i);
        let _ = server.poll_timeout();
        let _ = server.capacity_per_s(breakwater_core::Time::ZERO, scenario.token_mix());
        let _ = server.stats();
    }
    for (i, client) in scenario.clients.iter().enumerate() {
        if let Some(mut open) = OpenArrivals::new(&scenario, i) {
            let _ = open.expected_count();
            let mut now = breakwater_core::Time::ZERO;
            for _ in 0..4 {
                match open.next(now, &mut rng) {
                    Some(at) => {
                        assert!(at >= now && at < scenario.end(), "arrival at {at:?}");
                        now = at;
                    }
                    None => break,
                }
            }
        }
        if let Some(closed) = ClosedLoop::new(&scenario, i) {
            let _ = closed.think(&mut rng);
        }
        for _ in 0..4 {
            let draw = draw_request(client, &mut rng);
            assert!(draw.replica < client.replicas.max(1));
            assert!((1..=client.input_tokens.max.max(1)).contains(&draw.input_tokens));
            assert!((1..=client.output_tokens.max.max(1)).contains(&draw.output_tokens));
        }
    }

    // The small run.
    scenario.duration = scenario.duration.min(RUN_DURATION);
    for client in &mut scenario.clients {
        client.requests = Some(client.requests.unwrap_or(RUN_REQUESTS).min(RUN_REQUESTS));
    }
    let meta = Meta::of(&scenario);
    let mut reports = Vec::new();
    for setup in &setups {
        if let Ok(run) = run_policy(&scenario, setup) {
            reports.push(run.report);
        }
    }
    let _ = report::table(&meta, &reports);
    let _ = report::json(&meta, &reports);
    let _ = report::csv(&reports);
});
