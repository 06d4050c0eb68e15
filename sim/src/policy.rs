//! Policies: the presets and custom tables turned into breakwater-core configuration.
//!
//! A policy is nothing but core configuration — a [`RouteConfig`], a
//! [`RegistryConfig`] and how the simulated client reads headers — so every decision
//! the simulator measures is made by breakwater-core itself.
//!
//! | preset | route | backoff | budget | breaker | deadline | Retry-After |
//! |---|---|---|---|---|---|---|
//! | `naive` | primary model, 4 attempts | none (immediate) | – | – | – | ignored |
//! | `sdk-default` | primary model, 3 attempts | `min(0.5 s·2ⁿ, 8 s) × (1 − 0.25·U)` | – | – | – | honoured up to 60 s |
//! | `article` | the primary provider's models (Sonnet → Haiku), 5 attempts each | full jitter, 1 s base, 60 s cap | – | – | – | honoured up to 60 s |
//! | `breakwater` | every model, capability order, 3/2/2 attempts | full jitter, 250 ms base, 4 s cap | ratio 10 %, per provider | default | the client's | honoured up to 60 s |
//!
//! Only `breakwater` degrades (a cached or empty result for interactive requests, the
//! queue for deferrable ones); the others fail when they give up, as plain retry code
//! does.

use std::time::Duration;

use breakwater_core::budget::RatioConfig;
use breakwater_core::registry::BudgetScope;
use breakwater_core::route::{Degradation, PlanConfig, RouteConfig, StepConfig};
use breakwater_core::{
    Backoff, BreakerConfig, BudgetConfig, Jitter, Price, PriceTable, RegistryConfig,
};
use serde::Deserialize;

use crate::fleet::FleetOptions;
use crate::scenario::{Located, Policy, Preset, Scenario, ScenarioError};

/// A policy ready to run: core configuration plus the client's header handling.
#[derive(Clone, Debug, PartialEq)]
pub struct PolicySetup {
    /// The policy's name in reports.
    pub name: String,
    /// The fallback chain.
    pub route: RouteConfig,
    /// Breakers and budgets (each client replica gets its own registry).
    pub registry: RegistryConfig,
    /// How the simulated client treats requests and headers.
    pub client: ClientOptions,
    /// Whether the client replicas share their state (default: each keeps its own).
    pub fleet: FleetOptions,
    /// Whether the run also records every finished request in the core's
    /// [`Metrics`](breakwater_core::Metrics), as the adapter does, and returns their
    /// snapshot in [`PolicyRun::metrics`](crate::engine::PolicyRun::metrics). Off by
    /// default: the reports are built from the simulator's own measures, and the
    /// core's metrics cost about a tenth of the engine's work per request.
    pub core_metrics: bool,
    /// Bounds on the run, past which it stops with an error rather than exhaust
    /// memory or never end.
    pub run_limits: RunLimits,
}

/// Bounds on one policy's run that a scenario's fields cannot bound ahead of time.
///
/// The scenario's own [limits](crate::scenario::limits) keep its size in check; these
/// catch what only the run shows. Requests pile up when arrivals outpace answers for
/// long (a timeout outage under long deadlines), each holding about 600 bytes; and a
/// closed loop whose answers take no time (`think_ms = 0` against an instant error)
/// sends again at the same instant forever, so virtual time stops.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RunLimits {
    /// Requests in flight at once.
    pub in_flight: u32,
    /// Events at one instant.
    pub events_per_instant: u64,
}

impl Default for RunLimits {
    /// 2,000,000 requests in flight (about 1.2 GB), 10,000,000 events at one instant
    /// (seconds of work).
    fn default() -> RunLimits {
        RunLimits {
            in_flight: 2_000_000,
            events_per_instant: 10_000_000,
        }
    }
}

/// What the simulated client does outside the core: which deadline it sets and how
/// it reads Retry-After (the adapter's header parsing, with its clamp).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ClientOptions {
    /// Whether requests carry the client population's deadline (otherwise none).
    pub deadline: bool,
    /// Retry-After values are clamped to this; `None` ignores the header.
    #[serde(
        rename = "retry_after_max_ms",
        with = "breakwater_core::time::serde_ms::option"
    )]
    pub retry_after_max: Option<Duration>,
}

impl Default for ClientOptions {
    fn default() -> ClientOptions {
        ClientOptions {
            deadline: true,
            retry_after_max: Some(Duration::from_secs(60)),
        }
    }
}

impl PolicySetup {
    /// The setup of `policy` in `scenario`: its preset, overridden by its tables.
    pub fn from_policy(scenario: &Scenario, policy: &Policy) -> Result<PolicySetup, ScenarioError> {
        let mut setup = PolicySetup::preset(scenario, policy.preset, &policy.name);
        if let Some(route) = &policy.route {
            setup.route = parse(scenario, route)?;
        }
        if let Some(registry) = &policy.registry {
            setup.registry = parse(scenario, registry)?;
        }
        if let Some(plan) = &policy.plan {
            setup.client = parse(scenario, plan)?;
        }
        if let Some(fleet) = &policy.fleet {
            setup.fleet = parse(scenario, fleet)?;
            setup.fleet.config().validate().map_err(|e| {
                let at = format!("{}.{}", fleet.path, e.path());
                ScenarioError::at_path(&scenario.source, &at, e.to_string())
            })?;
        }
        // A semantic error names the setting under its table, or the policy when the
        // setting comes from the preset (which the presets' tests keep from happening).
        setup.route.validate().map_err(|e| {
            let at = match (&policy.route, e.path()) {
                (Some(route), Some(path)) => format!("{}.{path}", route.path),
                (Some(route), None) => route.path.clone(),
                (None, _) => "policy".to_owned(),
            };
            ScenarioError::at_path(&scenario.source, &at, e.to_string())
        })?;
        breakwater_core::Registry::new(setup.registry.clone()).map_err(|e| {
            let at = policy.registry.as_ref().map_or_else(
                || "policy".to_owned(),
                |r| format!("{}.{}", r.path, e.path()),
            );
            ScenarioError::at_path(&scenario.source, &at, e.to_string())
        })?;
        Ok(setup)
    }

    /// A preset over the scenario's providers. The *primary* is the first model of the
    /// first provider; `breakwater` chains every model in scenario order.
    #[must_use]
    pub fn preset(scenario: &Scenario, preset: Preset, name: &str) -> PolicySetup {
        let models: Vec<(&str, &str)> = scenario
            .providers
            .iter()
            .flat_map(|p| {
                p.models
                    .iter()
                    .map(move |m| (p.name.as_str(), m.name.as_str()))
            })
            .collect();
        let primary = models.first().copied().unwrap_or(("none", "none"));
        let step = |(provider, model): (&str, &str), attempts: u32, timeout_s: u64| StepConfig {
            provider: provider.to_owned(),
            model: model.to_owned(),
            attempts,
            timeout: Duration::from_secs(timeout_s),
            backoff: None,
            prompt_variant: None,
            when: None,
            validator: None,
        };
        let no_state = RegistryConfig {
            breaker: None,
            budget: None,
            ..RegistryConfig::default()
        };
        let unbounded = ClientOptions {
            deadline: false,
            retry_after_max: Some(Duration::from_secs(60)),
        };
        // Retry code without Breakwater has no degradation: when it gives up, the
        // caller gets the error.
        let no_degradation = Degradation {
            interactive: Vec::new(),
            deferrable: Vec::new(),
            critical: Vec::new(),
        };
        let route = |steps: Vec<StepConfig>, backoff: Backoff| RouteConfig {
            name: name.to_owned(),
            steps,
            backoff,
            plan: PlanConfig::default(),
            taxonomy: Default::default(),
            degrade: no_degradation.clone(),
            validator: None,
        };
        let (route, registry, client) = match preset {
            Preset::Naive => (
                route(
                    vec![step(primary, 4, 60)],
                    Backoff {
                        base: Duration::ZERO,
                        multiplier: 1.0,
                        cap: Duration::ZERO,
                        jitter: Jitter::None,
                    },
                ),
                no_state,
                ClientOptions {
                    deadline: false,
                    retry_after_max: None,
                },
            ),
            Preset::SdkDefault => (
                route(
                    vec![step(primary, 3, 600)],
                    Backoff {
                        base: Duration::from_millis(500),
                        multiplier: 2.0,
                        cap: Duration::from_secs(8),
                        jitter: Jitter::Proportional,
                    },
                ),
                no_state,
                unbounded,
            ),
            Preset::Article => {
                let first_provider = primary.0;
                let steps = models
                    .iter()
                    .filter(|(p, _)| *p == first_provider)
                    .take(2)
                    .map(|m| step(*m, 5, 60))
                    .collect();
                (
                    route(
                        steps,
                        Backoff {
                            base: Duration::from_secs(1),
                            multiplier: 2.0,
                            cap: Duration::from_secs(60),
                            jitter: Jitter::Full,
                        },
                    ),
                    no_state,
                    unbounded,
                )
            }
            Preset::Breakwater | Preset::Custom => {
                let steps = models
                    .iter()
                    .enumerate()
                    .map(|(i, m)| step(*m, if i == 0 { 3 } else { 2 }, 30))
                    .collect();
                let registry = RegistryConfig {
                    breaker: Some(BreakerConfig::default()),
                    budget: Some(BudgetConfig::Ratio(RatioConfig {
                        ratio: 0.1,
                        min_per_sec: 10,
                        ttl: Duration::from_secs(10),
                    })),
                    budget_scope: BudgetScope::Provider,
                    seed: scenario.seed,
                };
                let backoff = Backoff {
                    base: Duration::from_millis(250),
                    multiplier: 2.0,
                    cap: Duration::from_secs(4),
                    jitter: Jitter::Full,
                };
                let route = RouteConfig {
                    degrade: Degradation::default(),
                    ..route(steps, backoff)
                };
                (route, registry, ClientOptions::default())
            }
        };
        PolicySetup {
            name: name.to_owned(),
            route,
            registry,
            client,
            fleet: FleetOptions::default(),
            core_metrics: false,
            run_limits: RunLimits::default(),
        }
    }
}

/// The scenario's model prices as a core price table.
#[must_use]
pub fn prices(scenario: &Scenario) -> PriceTable {
    let mut table = PriceTable::new();
    for provider in &scenario.providers {
        for model in &provider.models {
            table.insert(
                &model.name,
                Price::per_million(model.input_price, model.output_price),
            );
        }
    }
    table
}

/// A policy's free-form table as `T`; an error names the field inside it and its line.
fn parse<T: serde::de::DeserializeOwned>(
    scenario: &Scenario,
    table: &Located<toml::Table>,
) -> Result<T, ScenarioError> {
    crate::scenario::deserialize_table(&scenario.source, &table.path, &table.value)
}

#[cfg(test)]
mod tests {
    use super::*;

    const AMPLIFICATION: &str = include_str!("../scenarios/amplification.toml");

    /// A fifth policy with `tables`, set up: the error's path, line and column.
    fn refused(tables: &str) -> (String, usize, usize) {
        let text = format!(
            "{AMPLIFICATION}\n[[policy]]\nname = \"tuned\"\npreset = \"breakwater\"\n{tables}\n"
        );
        let scenario = Scenario::from_toml(&text).expect("the tables are free-form here");
        let error = PolicySetup::from_policy(&scenario, &scenario.policies[4])
            .expect_err(tables)
            .clone();
        (error.path, error.at.line, error.at.column)
    }

    /// Where `value` is written on the line holding `key`, in the policy's tables.
    fn place(tables: &str, key: &str, value: &str) -> (usize, usize) {
        let before = AMPLIFICATION.lines().count() + 4;
        let (index, line) = tables
            .lines()
            .enumerate()
            .find(|(_, l)| l.contains(key))
            .expect("the key");
        let column = line[line.find(key).expect("the key")..]
            .find(value)
            .expect("the value")
            + line.find(key).expect("the key")
            + 1;
        (before + index + 1, column)
    }

    /// A setting the core refuses after parsing (a rate above 1, a multiplier below 1)
    /// is named by its own path and place, as a value of the wrong type is.
    #[test]
    fn a_refused_setting_is_named_by_its_path_and_place() {
        let step = "[[policy.route.step]]\nprovider = \"flaky\"\nmodel = \"m\"";
        let cases = [
            (
                format!(
                    "[policy.route]\nname = \"r\"\nbackoff = {{ base_ms = 1, cap_ms = 9, multiplier = 0.5 }}\n{step}"
                ),
                "policy[4].route.backoff.multiplier",
                ("multiplier", "0.5"),
            ),
            (
                format!(
                    "[policy.route]\nname = \"r\"\nbackoff = {{ base_ms = 1, cap_ms = 9 }}\n{step}\nattempts = 0"
                ),
                "policy[4].route.step[0].attempts",
                ("attempts", "0"),
            ),
            (
                "[policy.registry]\nbreaker = { failure_rate = 2.0 }".to_owned(),
                "policy[4].registry.breaker.failure_rate",
                ("failure_rate", "2.0"),
            ),
            (
                "[policy.registry.budget]\nkind = \"ratio\"\nratio = -1.0".to_owned(),
                "policy[4].registry.budget.ratio",
                ("ratio =", "-1.0"),
            ),
            (
                "[policy.fleet]\nstate = \"shared\"\nstaleness_ms = 0".to_owned(),
                "policy[4].fleet.staleness_ms",
                ("staleness_ms", "0"),
            ),
        ];
        for (tables, path, (key, value)) in cases {
            let (found, line, column) = refused(&tables);
            assert_eq!(found, path, "{tables}");
            assert_eq!((line, column), place(&tables, key, value), "{tables}");
        }
    }
}
