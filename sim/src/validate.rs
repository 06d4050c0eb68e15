//! Validation against published results: the simulator's engine and the core's
//! backoff, run on experiments whose answers are known.
//!
//! - **Brooker, "Exponential Backoff And Jitter"** (AWS Architecture Blog, 2015; its
//!   simulator is aws-samples/aws-arch-backoff-simulator): 100 clients each write once
//!   to one row under optimistic concurrency. An attempt is a read round trip and a
//!   conditional-write round trip, four hops of |N(10 ms, 2 ms)|; only writes count as
//!   calls. Backoff `min(2000, 5·2ⁿ)` ms with n = 1 at the first backoff; decorrelated
//!   keeps a sleep that starts at 5 ms. Mean of 100 runs.
//! - **Load amplification**: with independent failure probability `p` and `N` retries,
//!   attempts per request are `(1 − p^(N+1)) / (1 − p)`; a 10 % ratio budget keeps it
//!   near 1.1 even at p = 0.9 (the SRE book's "just below 3×" against "1.1×").

use std::time::Duration;

use breakwater_core::budget::RatioConfig;
use breakwater_core::route::{Degradation, PlanConfig, RouteConfig, StepConfig};
use breakwater_core::{Backoff, BudgetConfig, Jitter, RegistryConfig, StatusClass, Taxonomy};
use serde::Serialize;

use crate::engine::{EngineError, run_policy};
use crate::policy::{ClientOptions, PolicySetup};
use crate::scenario::{ProviderKind, Scenario, ScenarioError};

/// The Brooker experiment's scenario.
pub const BROOKER_SCENARIO: &str = include_str!("../scenarios/brooker-occ.toml");
/// The amplification experiment's scenario.
pub const AMPLIFICATION_SCENARIO: &str = include_str!("../scenarios/amplification.toml");

/// One row of the validation table: ours beside the published figure.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Check {
    /// The experiment and variant.
    pub name: String,
    /// What is compared.
    pub measure: String,
    /// Our figure.
    pub ours: f64,
    /// The published or closed-form figure.
    pub reference: f64,
    /// The tolerance, as a fraction of the reference (`None`: ordering only).
    pub tolerance: Option<f64>,
    /// Whether ours is within it.
    pub pass: bool,
}

/// A validation that could not run.
#[derive(Debug, thiserror::Error)]
pub enum ValidateError {
    /// A built-in scenario did not load.
    #[error(transparent)]
    Scenario(#[from] ScenarioError),
    /// A run failed.
    #[error(transparent)]
    Engine(#[from] EngineError),
}

/// Brooker's five strategies: (name, backoff, reference calls, reference completion s).
const BROOKER: [(&str, Backoff, f64, f64); 5] = [
    (
        "no backoff",
        Backoff {
            base: Duration::ZERO,
            multiplier: 1.0,
            cap: Duration::ZERO,
            jitter: Jitter::None,
        },
        2424.0,
        2.0,
    ),
    (
        "exponential",
        Backoff {
            base: Duration::from_millis(10),
            multiplier: 2.0,
            cap: Duration::from_millis(2000),
            jitter: Jitter::None,
        },
        1851.0,
        63.0,
    ),
    (
        "full jitter",
        Backoff {
            base: Duration::from_millis(10),
            multiplier: 2.0,
            cap: Duration::from_millis(2000),
            jitter: Jitter::Full,
        },
        795.0,
        4.8,
    ),
    (
        "equal jitter",
        Backoff {
            base: Duration::from_millis(10),
            multiplier: 2.0,
            cap: Duration::from_millis(2000),
            jitter: Jitter::Equal,
        },
        813.0,
        6.6,
    ),
    (
        "decorrelated",
        Backoff {
            base: Duration::from_millis(5),
            multiplier: 2.0,
            cap: Duration::from_millis(2000),
            jitter: Jitter::Decorrelated,
        },
        999.0,
        4.5,
    ),
];

/// A single-step policy that retries until it succeeds (or `attempts` run out), with
/// no budget, breaker, deadline or degradation: the retry loop of the experiments.
fn retry_loop(
    scenario: &Scenario,
    name: &str,
    backoff: Backoff,
    attempts: u32,
    budget: Option<BudgetConfig>,
) -> PolicySetup {
    let provider = &scenario.providers[0];
    let model = provider
        .models
        .first()
        .map_or(provider.name.clone(), |m| m.name.clone());
    PolicySetup {
        name: name.to_owned(),
        route: RouteConfig {
            name: name.to_owned(),
            steps: vec![StepConfig {
                provider: provider.name.clone(),
                model,
                attempts,
                timeout: Duration::from_secs(3600),
                backoff: None,
                prompt_variant: None,
                when: None,
                validator: None,
            }],
            backoff,
            plan: PlanConfig {
                slow_notice: Duration::ZERO,
                ..PlanConfig::default()
            },
            // A lost conditional write (409) is worth retrying here.
            taxonomy: Taxonomy::default().with_status(409, StatusClass::Retriable),
            validator: None,
            degrade: Degradation {
                interactive: Vec::new(),
                deferrable: Vec::new(),
                critical: Vec::new(),
            },
        },
        registry: RegistryConfig {
            breaker: None,
            budget,
            ..RegistryConfig::default()
        },
        client: ClientOptions {
            deadline: false,
            retry_after_max: None,
        },
        fleet: crate::fleet::FleetOptions::default(),
        core_metrics: false,
        run_limits: crate::policy::RunLimits::default(),
    }
}

/// Brooker's experiment, `runs` seeds per strategy: calls within ±10 % of each
/// published figure, completion times in the published order.
pub fn brooker(runs: u32) -> Result<Vec<Check>, ValidateError> {
    let base = Scenario::from_toml(BROOKER_SCENARIO)?;
    let mut checks = Vec::new();
    let mut completions = Vec::new();
    for (name, backoff, calls_ref, completion_ref) in BROOKER {
        let setup = retry_loop(&base, name, backoff, 100_000, None);
        let (mut calls, mut completion) = (0.0, 0.0);
        for run in 0..runs {
            let mut scenario = base.clone();
            scenario.seed = base.seed.wrapping_add(u64::from(run));
            let result = run_policy(&scenario, &setup)?;
            calls += result.row_writes as f64;
            completion += result.last_finish.as_nanos() as f64 / 1e9;
        }
        let (calls, completion) = (calls / f64::from(runs), completion / f64::from(runs));
        checks.push(check(
            format!("Brooker OCC, {name}"),
            "calls",
            calls,
            calls_ref,
            Some(0.10),
        ));
        completions.push((name, completion, completion_ref));
    }
    // Completion times: the same order as published, compared as a ranking.
    let rank = |values: Vec<f64>| {
        let mut order: Vec<usize> = (0..values.len()).collect();
        order.sort_by(|&a, &b| values[a].total_cmp(&values[b]));
        order
    };
    let ours = rank(completions.iter().map(|c| c.1).collect());
    let theirs = rank(completions.iter().map(|c| c.2).collect());
    for (i, (name, completion, reference)) in completions.iter().enumerate() {
        let same_rank = ours.iter().position(|&x| x == i) == theirs.iter().position(|&x| x == i);
        checks.push(Check {
            name: format!("Brooker OCC, {name}"),
            measure: "completion s (rank)".to_owned(),
            ours: *completion,
            reference: *reference,
            tolerance: None,
            pass: same_rank,
        });
    }
    Ok(checks)
}

/// Load amplification over `requests` requests: closed form at p = 0.5 and p = 0.9
/// with 3 immediate retries, and a 10 % ratio budget at p = 0.9.
pub fn amplification(requests: u64) -> Result<Vec<Check>, ValidateError> {
    let mut base = Scenario::from_toml(AMPLIFICATION_SCENARIO)?;
    let rate: f64 = 500.0;
    base.duration = Duration::from_secs_f64(requests as f64 / rate + 1.0);
    let no_wait = Backoff {
        base: Duration::ZERO,
        multiplier: 1.0,
        cap: Duration::ZERO,
        jitter: Jitter::None,
    };
    let mut checks = Vec::new();
    for (p, budget, reference, tolerance) in [
        (0.5, false, (1.0 - 0.5f64.powi(4)) / 0.5, 0.02),
        (0.9, false, (1.0 - 0.9f64.powi(4)) / 0.1, 0.02),
        (0.9, true, 1.15, 0.0),
    ] {
        let mut scenario = base.clone();
        if let ProviderKind::Flaky(spec) = &mut scenario.providers[0].kind {
            spec.failure_p = p;
        }
        let budget_config = budget.then_some(BudgetConfig::Ratio(RatioConfig {
            ratio: 0.1,
            min_per_sec: 1,
            ttl: Duration::from_secs(10),
        }));
        let name = if budget {
            "3 retries + 10% budget"
        } else {
            "3 retries"
        };
        let setup = retry_loop(&scenario, name, no_wait, 4, budget_config);
        let run = run_policy(&scenario, &setup)?;
        let ours = run.report.attempts_per_request;
        let label = format!("amplification p = {p}, {name}");
        checks.push(if budget {
            Check {
                name: label,
                measure: "attempts/request ≤".to_owned(),
                ours,
                reference,
                tolerance: None,
                pass: ours <= reference,
            }
        } else {
            check(label, "attempts/request", ours, reference, Some(tolerance))
        });
    }
    Ok(checks)
}

fn check(name: String, measure: &str, ours: f64, reference: f64, tolerance: Option<f64>) -> Check {
    let pass = tolerance.is_none_or(|t| (ours - reference).abs() <= t * reference.abs());
    Check {
        name,
        measure: measure.to_owned(),
        ours,
        reference,
        tolerance,
        pass,
    }
}

/// The validation table for people.
#[must_use]
pub fn table(checks: &[Check]) -> String {
    use std::fmt::Write as _;
    let mut out = String::new();
    let _ = writeln!(
        out,
        "{:<46} {:<22} {:>10} {:>10} {:>9}  ok",
        "experiment", "measure", "ours", "reference", "tolerance"
    );
    for c in checks {
        let tolerance = match c.tolerance {
            Some(t) => format!("±{:.0}%", t * 100.0),
            None if c.measure.ends_with('≤') => "bound".to_owned(),
            None => "order".to_owned(),
        };
        let _ = writeln!(
            out,
            "{:<46} {:<22} {:>10.3} {:>10.3} {:>9}  {}",
            c.name,
            c.measure,
            c.ours,
            c.reference,
            tolerance,
            if c.pass { "yes" } else { "NO" }
        );
    }
    out
}
