//! Client replicas with local or shared state: the fleet-outage scenario, end to end.

use breakwater_sim::engine::run_policy;
use breakwater_sim::fleet::{FleetRow, StateSharing, compare, table};
use breakwater_sim::policy::PolicySetup;
use breakwater_sim::scenario::Scenario;

const FLEET: &str = include_str!("../scenarios/fleet-outage.toml");

fn scenario() -> Scenario {
    Scenario::from_toml(FLEET).expect("the fleet scenario is valid")
}

fn row<'a>(rows: &'a [FleetRow], replicas: u32, policy: &str) -> &'a FleetRow {
    rows.iter()
        .find(|r| r.replicas == replicas && r.policy == policy)
        .expect("a row per count and policy")
}

#[test]
fn sharing_cuts_what_reaches_the_failing_provider_and_stops_the_fleet_sooner() {
    let rows = compare(&scenario(), &[1, 10, 100]).expect("runs");
    assert_eq!(rows.len(), 6);
    // One replica: nothing to share, the same run.
    assert_eq!(
        row(&rows, 1, "local").outage,
        row(&rows, 1, "shared").outage
    );
    for replicas in [10, 100] {
        let local = &row(&rows, replicas, "local").outage;
        let shared = &row(&rows, replicas, "shared").outage;
        assert!(
            shared.attempts_to_failing * 2 < local.attempts_to_failing,
            "{replicas} replicas: {} shared vs {} local",
            shared.attempts_to_failing,
            local.attempts_to_failing
        );
        let (Some(local_stop), Some(shared_stop)) = (local.all_stopped(), shared.all_stopped())
        else {
            panic!("every replica stops within the window: {local:?} {shared:?}");
        };
        assert!(
            shared_stop < local_stop,
            "{replicas}: {shared_stop:?} vs {local_stop:?}"
        );
        assert!(shared.amplification() <= local.amplification());
    }
    // Local state grows with the fleet; shared state barely does.
    let local_growth = row(&rows, 100, "local").outage.attempts_to_failing
        / row(&rows, 1, "local").outage.attempts_to_failing;
    let shared_growth = row(&rows, 100, "shared").outage.attempts_to_failing
        / row(&rows, 1, "shared").outage.attempts_to_failing;
    assert!(
        local_growth >= 10 && shared_growth <= 2,
        "{local_growth} {shared_growth}"
    );
    let text = table(&rows);
    assert!(text.starts_with("| replicas | state |"), "{text}");
    assert_eq!(text.lines().count(), 8);
}

#[test]
fn shared_runs_are_deterministic() {
    let scenario = scenario();
    let shared = scenario
        .policies
        .iter()
        .find(|p| p.name == "shared")
        .expect("shared policy");
    let setup = PolicySetup::from_policy(&scenario, shared).expect("setup");
    assert_eq!(setup.fleet.state, StateSharing::Shared);
    let a = run_policy(&scenario, &setup).expect("run");
    let b = run_policy(&scenario, &setup).expect("run");
    assert_eq!(a.report, b.report);
    assert_eq!(a.outage, b.outage);
    assert_eq!(a.events, b.events);
}

#[test]
fn an_explicit_local_fleet_is_the_default() {
    let text = FLEET.replace(
        "fleet = { state = \"shared\", propagation_ms = 1, staleness_ms = 100 }",
        "fleet = { state = \"local\" }",
    );
    let scenario = Scenario::from_toml(&text).expect("valid");
    let runs: Vec<_> = scenario
        .policies
        .iter()
        .map(|p| {
            run_policy(
                &scenario,
                &PolicySetup::from_policy(&scenario, p).expect("setup"),
            )
        })
        .map(|r| r.expect("run"))
        .collect();
    let mut second = runs[1].report.clone();
    second.policy.clone_from(&runs[0].report.policy);
    assert_eq!(runs[0].report, second);
}

#[test]
fn bad_fleet_tables_are_errors_that_name_the_table() {
    let scenario = |fleet: &str| {
        let text = FLEET.replace(
            "fleet = { state = \"shared\", propagation_ms = 1, staleness_ms = 100 }",
            fleet,
        );
        let scenario = Scenario::from_toml(&text).expect("the table is free-form here");
        let policy = scenario.policies[1].clone();
        PolicySetup::from_policy(&scenario, &policy).map(|_| ())
    };
    for bad in [
        "fleet = { state = \"global\" }",
        "fleet = { state = \"shared\", delay_ms = 5 }",
        "fleet = { state = \"shared\", staleness_ms = 0 }",
        "fleet = { propagation_ms = -1 }",
    ] {
        let error = scenario(bad).expect_err(bad).to_string();
        assert!(error.contains("policy[1].fleet"), "{bad}: {error}");
    }
    assert!(scenario("fleet = { state = \"shared\" }").is_ok());
}
