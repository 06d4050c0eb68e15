//! The scenario that `benches/peers/simpy-compare` plays against SimPy still parses,
//! still makes clients retry and fail (or the comparison would not exercise retries),
//! and our engine still counts the events the script's event accounting assumes.

use breakwater_sim::engine::run_policy;
use breakwater_sim::policy::PolicySetup;
use breakwater_sim::scenario::Scenario;

const MODEL: &str = include_str!("../peers/mm1.toml");

#[test]
fn the_shared_model_runs_with_retries_and_the_assumed_event_count() {
    let scenario = Scenario::from_toml(MODEL).unwrap();
    let [policy] = scenario.policies.as_slice() else {
        panic!("the model has one policy");
    };
    let setup = PolicySetup::from_policy(&scenario, policy).unwrap();
    let run = run_policy(&scenario, &setup).unwrap();
    let report = &run.report;
    assert_eq!(report.requests, 200_000);
    assert!(
        report.attempts_per_request > 1.2,
        "{}",
        report.attempts_per_request
    );
    assert!(report.attempts_per_request <= 4.0);
    let failed = report.shares.failed;
    assert!(failed > 0.0 && failed < 0.5, "failed share {failed}");
    assert_eq!(report.shares.degraded + report.shares.queued, 0.0);
    // One arrival per request; per served attempt the service's end, the reply and,
    // unless it started at once and ended before its timeout, the stale timeout check;
    // per rejected attempt its reply; per retry a wake-up (full jitter never draws
    // exactly zero here): 2 × (successes + attempts), less the attempts served at once.
    // The load keeps the queue busy, so those are a handful.
    let successes = (report.shares.success * report.requests as f64).round() as u64;
    let assumed = 2 * (successes + report.attempts);
    let unqueued = assumed
        .checked_sub(run.events)
        .expect("no more events than assumed");
    assert!(
        unqueued < report.attempts / 1_000,
        "{unqueued} attempts served at once"
    );
}
