//! Shared set-up for Breakwater's benchmarks and allocation tests: the routes and
//! registries the benches measure, built the same way every time.

pub mod adapter;
pub mod engine;
pub mod loopback;
pub mod pairs;

use std::time::Duration;

use breakwater_core::route::RouteConfig;
use breakwater_core::{Price, PriceTable, Registry, RegistryConfig, Route};

/// A two-step route (Sonnet, then gpt-4o-mini) as a service would configure it.
pub const ROUTE: &str = r#"
    name = "bench"
    [[step]]
    provider = "anthropic"
    model = "claude-sonnet-4-5"
    attempts = 3
    timeout_ms = 30000
    [[step]]
    provider = "openai"
    model = "gpt-4o-mini"
    attempts = 2
    timeout_ms = 20000
"#;

/// The registry and the bound [`ROUTE`], with default breakers and budgets.
#[must_use]
pub fn route() -> (Registry, Route) {
    route_with(RegistryConfig::default())
}

/// The registry made from `config` and the bound [`ROUTE`].
///
/// # Panics
///
/// If `config` is invalid.
#[must_use]
pub fn route_with(config: RegistryConfig) -> (Registry, Route) {
    // The constant above is valid TOML and a valid route: these cannot fail.
    let route_config: RouteConfig = toml_route(ROUTE);
    let registry = Registry::new(config).expect("bench registry is valid");
    let prices = PriceTable::new()
        .with("claude-sonnet-4-5", Price::per_million(3.0, 15.0))
        .with("gpt-4o-mini", Price::per_million(0.15, 0.6));
    let route = Route::bind(&route_config, &registry, &prices).expect("bench route is valid");
    (registry, route)
}

fn toml_route(text: &str) -> RouteConfig {
    breakwater_core::route::RouteConfig::from_toml(text).expect("bench route parses")
}

/// One second.
pub const SECOND: Duration = Duration::from_secs(1);
