//! End-to-end runs of the engine: determinism, and each policy's behaviour in a storm.

use std::time::Duration;

use breakwater_core::Time;
use breakwater_sim::engine::{EngineError, run_all, run_policy};
use breakwater_sim::policy::{PolicySetup, RunLimits};
use breakwater_sim::report::{Meta, csv, json, table};
use breakwater_sim::scenario::{Preset, Scenario};

/// The default storm, cut to a minute of traffic with the storm from 20 s to 40 s.
fn short_storm() -> Scenario {
    let text = breakwater_sim::scenario::DEFAULT_SCENARIO
        .replace("duration_s = 600", "duration_s = 60")
        .replace("from_s = 120", "from_s = 20")
        .replace("to_s = 300", "to_s = 40")
        .replace("at_s = 450", "at_s = 45");
    Scenario::from_toml(&text).expect("the shortened default scenario is valid")
}

fn presets(scenario: &Scenario) -> Vec<PolicySetup> {
    [
        Preset::Naive,
        Preset::SdkDefault,
        Preset::Article,
        Preset::Breakwater,
    ]
    .into_iter()
    .map(|p| PolicySetup::preset(scenario, p, p.as_str()))
    .collect()
}

fn outputs(scenario: &Scenario, threads: usize) -> (String, String, String) {
    let runs = run_all(scenario, &presets(scenario), threads).expect("presets run");
    let reports: Vec<_> = runs.into_iter().map(|r| r.report).collect();
    let meta = Meta::of(scenario);
    (table(&meta, &reports), json(&meta, &reports), csv(&reports))
}

#[test]
fn same_scenario_and_seed_give_identical_bytes() {
    let scenario = short_storm();
    let first = outputs(&scenario, 1);
    let second = outputs(&scenario, 2);
    assert!(
        first == second,
        "scenario seed {}: two runs differ\n{}\n---\n{}",
        scenario.seed,
        first.0,
        second.0
    );
    let mut reseeded = scenario.clone();
    reseeded.seed += 1;
    assert_ne!(
        outputs(&reseeded, 2).1,
        first.1,
        "another seed gives other traffic"
    );
}

#[test]
fn traffic_is_identical_across_policies() {
    let scenario = short_storm();
    let runs = run_all(&scenario, &presets(&scenario), 2).expect("presets run");
    let requests: Vec<u64> = runs.iter().map(|r| r.report.requests).collect();
    assert!(requests.windows(2).all(|w| w[0] == w[1]), "{requests:?}");
    assert!(requests[0] > 100_000, "{requests:?}");
}

#[test]
fn breakwater_degrades_instead_of_failing_and_retries_less() {
    let scenario = short_storm();
    let runs = run_all(&scenario, &presets(&scenario), 2).expect("presets run");
    let [naive, _sdk, article, breakwater] = &runs[..] else {
        unreachable!()
    };
    let (bw, nv, ar) = (&breakwater.report, &naive.report, &article.report);
    // Plain retry code fails loudly when it gives up; Breakwater degrades or queues.
    assert_eq!(bw.shares.failed, 0.0, "{bw:?}");
    assert!(nv.shares.failed > 0.0 && nv.shares.degraded == 0.0);
    // Budgets and breakers keep retries from amplifying the storm.
    assert!(bw.attempts_per_request < nv.attempts_per_request);
    assert!(bw.attempts_per_request < ar.attempts_per_request);
    // The deadline holds: nobody waits past the client's 120 s deadline (the
    // histogram keeps 3 significant figures).
    assert!(
        bw.latency_ms.max <= 120_000.0 * 1.002,
        "{}",
        bw.latency_ms.max
    );
}

#[test]
fn an_outage_with_timeouts_ends_at_the_deadline() {
    let text = r#"
        name = "outage"
        seed = 3
        duration_s = 20
        policies = ["breakwater"]
        [[provider]]
        name = "p"
        kind = "llm"
        concurrency = 100
        queue_limit = 100
        overload_start = 50
        overload_full = 100
        ttft = { median_ms = 100, sigma = 0.1 }
        per_token = { median_ms = 1, sigma = 0.1 }
        [[provider.model]]
        name = "m"
        input_price = 1.0
        output_price = 1.0
        [[storm]]
        kind = "outage"
        mode = "timeout"
        provider = "p"
        from_s = 5
        to_s = 15
        [[clients]]
        name = "c"
        kind = "open"
        rate_per_s = 50
        input_tokens = { median = 100 }
        output_tokens = { median = 20 }
        deadline_ms = 4000
    "#;
    let scenario = Scenario::from_toml(text).expect("valid scenario");
    let setup = PolicySetup::preset(&scenario, Preset::Breakwater, "breakwater");
    let run = run_policy(&scenario, &setup).expect("runs");
    // Histograms keep 3 significant figures.
    assert!(
        run.report.latency_ms.max <= 4_000.0 * 1.002,
        "{:?}",
        run.report.latency_ms
    );
    assert!(run.report.shares.degraded > 0.1, "{:?}", run.report.shares);
    assert!(run.last_finish <= scenario.end() + Duration::from_secs(4));
}

/// One LLM step with a 1 s attempt timeout against a provider whose every service
/// takes exactly `service_ms` (no spread, no output-token time).
fn exact_service(service_ms: u32) -> Scenario {
    let text = format!(
        r#"
        name = "tie"
        seed = 5
        duration_s = 10
        [[provider]]
        name = "p"
        kind = "llm"
        concurrency = 1000
        queue_limit = 1000
        overload_start = 1000
        overload_full = 2000
        ttft = {{ median_ms = {service_ms} }}
        per_token = {{ median_ms = 0 }}
        [[provider.model]]
        name = "m"
        input_price = 1.0
        output_price = 1.0
        [[clients]]
        name = "c"
        kind = "open"
        rate_per_s = 20
        input_tokens = {{ median = 100 }}
        output_tokens = {{ median = 20 }}
        deadline_ms = 60000
        [[policy]]
        name = "one-second"
        preset = "custom"
        [policy.route]
        name = "one-second"
        [[policy.route.step]]
        provider = "p"
        model = "m"
        attempts = 1
        timeout_ms = 1000
    "#
    );
    Scenario::from_toml(&text).expect("valid scenario")
}

/// An answer due at the very instant of its attempt's timeout loses to the timeout,
/// and one due a millisecond earlier wins: the engine skips a timeout only when the
/// answer is sure to come first.
#[test]
fn a_timeout_at_the_answers_instant_wins() {
    for (service_ms, answered) in [(999, true), (1000, false)] {
        let scenario = exact_service(service_ms);
        let setup = PolicySetup {
            core_metrics: true,
            ..PolicySetup::from_policy(&scenario, &scenario.policies[0]).expect("a valid policy")
        };
        let run = run_policy(&scenario, &setup).expect("runs");
        let server = &run.servers[0];
        if answered {
            assert!(server.served > 100, "{server:?}");
            assert_eq!(run.report.shares.success, 1.0, "{service_ms} ms");
            assert_eq!(server.wasted, 0, "{service_ms} ms");
        } else {
            // Every attempt times out (the service ends at that instant too, so none
            // counts as wasted work); the breaker soon stops sending.
            let metrics = run.metrics.as_ref().expect("asked for");
            let key = &metrics.per_key[0];
            assert!(key.attempts > 10, "{key:?}");
            assert_eq!(key.retriable, key.attempts, "{key:?}");
            assert_eq!(run.report.shares.success, 0.0, "{service_ms} ms");
        }
    }
}

/// A closed loop with no think time against a provider that answers in no time sends
/// again at the same instant forever: the run stops with `Stalled`, naming the policy
/// and the instant, instead of never ending.
#[test]
fn a_run_whose_clock_stops_ends_with_an_error() {
    let scenario = Scenario::from_toml(include_str!("scenarios/zero-time-loop.toml"))
        .expect("a valid scenario");
    let mut setup = PolicySetup::from_policy(&scenario, &scenario.policies[0]).expect("valid");
    setup.run_limits.events_per_instant = 10_000;
    match run_policy(&scenario, &setup) {
        Err(EngineError::Stalled { policy, limit, at }) => {
            assert_eq!((policy.as_str(), limit, at), ("naive", 10_000, Time::ZERO));
        }
        other => panic!("expected a stalled run, got {other:?}"),
    }
    // With a think time the clock moves, and the same loop runs to the end.
    let thinking = Scenario::from_toml(
        &scenario
            .source
            .replace("think_ms = 0", "think_ms = 1")
            .replace("duration_s = 10", "duration_s = 1"),
    )
    .expect("a valid scenario");
    let run = run_policy(&thinking, &setup).expect("a loop that thinks runs");
    assert!(run.report.requests > 1_000, "{}", run.report.requests);
}

/// Requests piling up in a timeout outage under long deadlines stop the run at the
/// in-flight limit with `InFlight`, instead of exhausting memory.
#[test]
fn requests_piling_up_past_the_limit_end_the_run_with_an_error() {
    let src = r#"
name = "pile-up"
seed = 1
duration_s = 60
policies = ["naive"]

[[provider]]
name = "down"
kind = "flaky"
failure_p = 0.0
latency = { median_ms = 10, sigma = 0 }

[[storm]]
name = "hang"
kind = "outage"
provider = "down"
mode = "timeout"
from_s = 1
to_s = 60

[[clients]]
name = "callers"
kind = "open"
rate_per_s = 1000
input_tokens = { median = 10 }
output_tokens = { median = 10 }
deadline_ms = 600000
"#;
    let scenario = Scenario::from_toml(src).expect("a valid scenario");
    let mut setup = PolicySetup::from_policy(&scenario, &scenario.policies[0]).expect("valid");
    setup.run_limits.in_flight = 500;
    match run_policy(&scenario, &setup) {
        Err(EngineError::InFlight { policy, limit, at }) => {
            assert_eq!((policy.as_str(), limit), ("naive", 500));
            // The outage starts at 1 s; at 1,000 arrivals a second, 500 hanging
            // requests take about half a second more.
            assert!(
                (Time::from_millis(1_300)..Time::from_millis(1_800)).contains(&at),
                "{at:?}"
            );
        }
        other => panic!("expected the in-flight limit, got {other:?}"),
    }
    // At most 59,000 requests hang at once here (a minute of arrivals): well within
    // the default limit.
    setup.run_limits = RunLimits::default();
    run_policy(&scenario, &setup).expect("runs within the default limits");
}
