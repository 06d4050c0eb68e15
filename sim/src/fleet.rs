//! Fleet state in the simulator: whether a policy's client replicas keep their breakers,
//! cooldowns and budgets to themselves (`local`, the default) or share them through a
//! store (`shared`), as `breakwater-redis` does in production.
//!
//! Shared state runs breakwater-core's own [`fleet`](breakwater_core::fleet) logic: each
//! replica is a [`Replica`](breakwater_core::fleet::Replica) driving its registry, and
//! the store applies the core's rules
//! ([`StoreRecord`](breakwater_core::fleet::StoreRecord),
//! [`BudgetStore`](breakwater_core::fleet::BudgetStore)). The network between them is a
//! fixed one-way `propagation_ms`, as events in virtual time: an operation reaches the
//! store after it, the answer comes back after it again, and a change is pushed to every
//! other replica after it. Replicas look at their breakers after every step of every
//! request (the adapter looks every 10 ms), and poll every `staleness_ms`.
//!
//! In a scenario, a policy's `fleet` table:
//!
//! ```toml
//! [[policy]]
//! name = "shared"
//! preset = "breakwater"
//! fleet = { state = "shared", propagation_ms = 1, staleness_ms = 100 }
//! ```

use std::time::Duration;

use breakwater_core::fleet::FleetConfig;
use breakwater_core::time::serde_ms;
use serde::Deserialize;

/// Who holds a policy's breakers and budgets.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StateSharing {
    /// Each client replica has its own (the embedded default).
    #[default]
    Local,
    /// One fleet: every replica shares them through a modelled store.
    Shared,
}

/// A policy's `fleet` table.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct FleetOptions {
    /// `local` or `shared`.
    pub state: StateSharing,
    /// One-way delay between a replica and the store (default 1 ms).
    #[serde(rename = "propagation_ms", with = "serde_ms")]
    pub propagation: Duration,
    /// How often replicas poll records and sync budgets (default 100 ms).
    #[serde(rename = "staleness_ms", with = "serde_ms")]
    pub staleness: Duration,
}

impl Default for FleetOptions {
    /// Local state (a propagation delay of 1 ms and 100 ms staleness if shared).
    fn default() -> FleetOptions {
        FleetOptions {
            state: StateSharing::Local,
            propagation: Duration::from_millis(1),
            staleness: FleetConfig::default().staleness,
        }
    }
}

impl FleetOptions {
    /// The core fleet settings these options imply.
    #[must_use]
    pub fn config(&self) -> FleetConfig {
        FleetConfig {
            staleness: self.staleness,
            ..FleetConfig::default()
        }
    }

    /// Whether the state is shared.
    #[must_use]
    pub fn shared(&self) -> bool {
        self.state == StateSharing::Shared
    }
}

/// One line of the fleet comparison: a policy at a replica count.
#[derive(Clone, Debug, PartialEq)]
pub struct FleetRow {
    /// Client replicas (every population set to this many).
    pub replicas: u32,
    /// The policy.
    pub policy: String,
    /// Its outage measures.
    pub outage: crate::engine::OutageMeasures,
}

/// Plays `scenario`'s policies with every client population at each of `replicas`
/// replicas; one row per count and policy, in that order. The scenario needs a
/// provider outage (see [`OutageMeasures`](crate::engine::OutageMeasures)).
pub fn compare(
    scenario: &crate::scenario::Scenario,
    replicas: &[u32],
) -> Result<Vec<FleetRow>, String> {
    let mut rows = Vec::new();
    for &count in replicas {
        let mut scenario = scenario.clone();
        for client in &mut scenario.clients {
            client.replicas = count.max(1);
        }
        for policy in &scenario.policies {
            let setup = crate::policy::PolicySetup::from_policy(&scenario, policy)
                .map_err(|e| e.to_string())?;
            let run = crate::engine::run_policy(&scenario, &setup).map_err(|e| e.to_string())?;
            let outage = run
                .outage
                .ok_or_else(|| "the scenario has no provider outage to measure".to_owned())?;
            rows.push(FleetRow {
                replicas: count,
                policy: setup.name.clone(),
                outage,
            });
        }
    }
    Ok(rows)
}

/// The rows as a Markdown table.
#[must_use]
pub fn table(rows: &[FleetRow]) -> String {
    let mut out = String::from(
        "| replicas | state | attempts to the failing provider | attempts per request | every replica stopped after |\n|---:|---|---:|---:|---:|\n",
    );
    for row in rows {
        let o = &row.outage;
        let stopped = o.all_stopped().map_or_else(
            || format!("> {} s", o.window.as_secs()),
            |d| format!("{:.0} ms", d.as_secs_f64() * 1e3),
        );
        out.push_str(&format!(
            "| {} | {} | {} | {:.2} | {} |\n",
            row.replicas,
            row.policy,
            o.attempts_to_failing,
            o.amplification(),
            stopped
        ));
    }
    out
}
