//! Malformed output: a validator turns it into billed invalid-output attempts that the
//! plan retries or falls back from; without one, it reaches the caller.

use breakwater_sim::engine::{PolicyRun, run_all};
use breakwater_sim::policy::PolicySetup;
use breakwater_sim::report::{Meta, csv, json, table};
use breakwater_sim::scenario::Scenario;

const SCENARIO: &str = include_str!("../scenarios/malformed-output.toml");

fn runs(src: &str) -> (Scenario, Vec<PolicyRun>) {
    let scenario = Scenario::from_toml(src).expect("the malformed-output scenario is valid");
    let setups: Vec<PolicySetup> = scenario
        .policies
        .iter()
        .map(|p| PolicySetup {
            // The core's own count of invalid outputs is checked against ours.
            core_metrics: true,
            ..PolicySetup::from_policy(&scenario, p).expect("its policies are valid")
        })
        .collect();
    let runs = run_all(&scenario, &setups, 2).expect("its policies run");
    (scenario, runs)
}

#[test]
fn the_validator_delivers_no_malformed_output_and_pays_for_its_retries() {
    let (scenario, runs) = runs(SCENARIO);
    let (unchecked, validated) = (&runs[0].report, &runs[1].report);
    assert_eq!(unchecked.policy, "unchecked");
    assert_eq!(validated.policy, "validated");
    let seed = scenario.seed;

    // Without a validator, malformed answers are successes the caller cannot use:
    // at least the fallback's 8% of the minute it serves everything (~6,000 requests).
    let u = unchecked.malformed_output;
    assert_eq!(u.invalid_attempts, 0, "seed {seed}");
    assert!(u.delivered > 240, "seed {seed}: {u:?}");
    assert!(u.delivered_nanodollars > 0 && u.delivered_nanodollars < unchecked.cost_nanodollars);

    // With one, none reaches a caller; each is an attempt, billed and retried.
    let v = validated.malformed_output;
    assert_eq!(v.delivered, 0, "seed {seed}");
    assert_eq!(v.delivered_nanodollars, 0);
    assert!(v.invalid_attempts > 240, "seed {seed}: {v:?}");
    assert!(v.invalid_nanodollars > 0 && v.invalid_nanodollars < validated.cost_nanodollars);
    assert!(
        validated.attempts >= unchecked.attempts + v.invalid_attempts / 2,
        "seed {seed}: the invalid outputs' retries are extra attempts"
    );
    assert!(validated.retry_cost_nanodollars > unchecked.retry_cost_nanodollars);
    // Two malformed answers in a row at the last step leave nothing to retry: the
    // request degrades rather than delivering garbage.
    assert!(validated.shares.degraded > 0.0);
    assert_eq!(
        validated.timeline.invalid_outputs_per_s.iter().sum::<f64>() as u64,
        v.invalid_attempts
    );

    // The core's history agrees: the attempts it classified as invalid output.
    let invalid: u64 = runs[1]
        .metrics
        .as_ref()
        .expect("asked for")
        .per_key
        .iter()
        .map(|k| k.invalid_output)
        .sum();
    assert_eq!(invalid, v.invalid_attempts);
}

#[test]
fn malformed_output_runs_are_deterministic_and_shown() {
    let (scenario, first) = runs(SCENARIO);
    let (_, second) = runs(SCENARIO);
    let meta = Meta::of(&scenario);
    let reports = |r: &[PolicyRun]| r.iter().map(|r| r.report.clone()).collect::<Vec<_>>();
    let (a, b) = (reports(&first), reports(&second));
    assert_eq!(json(&meta, &a), json(&meta, &b));
    assert_eq!(csv(&a), csv(&b));
    let t = table(&meta, &a);
    assert_eq!(t, table(&meta, &b));
    assert!(
        t.contains("invalid outputs") && t.contains("malformed deliv. %"),
        "{t}"
    );
    assert!(csv(&a).starts_with("policy,") && csv(&a).contains(",malformed_delivered_per_s\n"));
}

#[test]
fn a_zero_rate_draws_nothing() {
    // The same scenario with every rate at zero: no malformed output anywhere, and the
    // table has no malformed rows.
    let src = SCENARIO
        .replace("malformed_output = 0.005", "malformed_output = 0")
        .replace("malformed_output = 0.08", "malformed_output = 0");
    let (scenario, runs) = runs(&src);
    for r in &runs {
        assert_eq!(
            r.report.malformed_output,
            Default::default(),
            "{}",
            r.report.policy
        );
    }
    let reports: Vec<_> = runs.iter().map(|r| r.report.clone()).collect();
    let t = table(&Meta::of(&scenario), &reports);
    assert!(!t.contains("malformed"), "{t}");
    // With nothing malformed, the validated route behaves like the unchecked one.
    assert_eq!(runs[0].report.shares, runs[1].report.shares);
}
