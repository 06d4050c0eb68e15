//! A profiling loop for instruction counts, the same operations as the criterion
//! benches: `hotloop <mode> <iterations>`, mode `plan` (the request plan's success
//! path), `retry` (its one retry then success, with no budget or breaker, as the
//! bench), `ratio` / `throttle` / `quota` (budget withdraw + deposit), `count` /
//! `consecutive` (closed breaker admit + record) or `registry<N>` (look-up + admit
//! among N keys, `Registry::admit`). Run it under callgrind twice, with two iteration
//! counts, and divide the difference of the totals by the difference of the counts:
//!
//! ```text
//! cargo build --release -p breakwater-core --example hotloop
//! valgrind --tool=callgrind target/release/examples/hotloop plan 100000
//! ```
#![allow(missing_docs, clippy::unwrap_used)]

use std::hint::black_box;
use std::time::Duration;

use breakwater_core::budget::{QuotaConfig, RatioConfig, RetryReason, ThrottleConfig};
use breakwater_core::route::RouteConfig;
use breakwater_core::{
    Action, Admit, Breaker, BreakerConfig, Budget, BudgetConfig, Class, Deadline, Key, Outcome,
    Plan, Price, PriceTable, Registry, RegistryConfig, RequestOptions, RetryBudget, Route,
    TaskKind, Time, Usage, rng,
};

const ROUTE: &str = r#"
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

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let mode = args[1].as_str();
    let n: u64 = args[2].parse().unwrap();
    match mode {
        "plan" => {
            let registry = Registry::new(RegistryConfig::default()).unwrap();
            let route = bench_route(&registry);
            let mut rng = rng::seeded(1);
            for _ in 0..n {
                let now = Time::from_secs(1);
                let mut plan = Plan::new(
                    &route,
                    TaskKind::Interactive,
                    Deadline::after(now, Duration::from_secs(30)),
                    RequestOptions::default(),
                );
                let Action::Attempt(attempt) = plan.poll(now, &mut rng) else {
                    unreachable!()
                };
                let done = now + Duration::from_millis(800);
                plan.on_outcome(done, attempt.id, Outcome::Success, Usage::new(1000, 200));
                black_box(&plan.poll(done, &mut rng));
            }
        }
        "retry" => {
            let registry = Registry::new(RegistryConfig {
                budget: None,
                breaker: None,
                ..RegistryConfig::default()
            })
            .unwrap();
            let route = bench_route(&registry);
            let mut rng = rng::seeded(1);
            let overloaded = Outcome::Status {
                status: 503,
                error: None,
                hints: Default::default(),
            };
            for _ in 0..n {
                let mut now = Time::from_secs(1);
                let mut plan = Plan::new(
                    &route,
                    TaskKind::Interactive,
                    Deadline::after(now, Duration::from_secs(30)),
                    RequestOptions::default(),
                );
                let mut outcome = overloaded;
                loop {
                    match plan.poll(now, &mut rng) {
                        Action::Attempt(attempt) => {
                            now = now + Duration::from_millis(200);
                            plan.on_outcome(now, attempt.id, outcome, Usage::default());
                            outcome = Outcome::Success;
                        }
                        Action::Wait { until } => now = until,
                        other => {
                            black_box(&other);
                            break;
                        }
                    }
                }
            }
        }
        "ratio" | "throttle" | "quota" => {
            let config = match mode {
                "ratio" => BudgetConfig::Ratio(RatioConfig::default()),
                "throttle" => BudgetConfig::Throttle(ThrottleConfig::default()),
                _ => BudgetConfig::Quota(QuotaConfig::default()),
            };
            let mut budget = Budget::new(&config);
            let mut t = 0u64;
            for _ in 0..n {
                t += 1_000;
                let now = Time::from_nanos(black_box(t));
                budget.on_request(now);
                let withdrawal = budget.try_withdraw(now, RetryReason::Error).ok();
                budget.on_attempt(now, true, withdrawal);
            }
            black_box(&budget);
        }
        "count" | "consecutive" => {
            let config = if mode == "count" {
                BreakerConfig::default()
            } else {
                BreakerConfig {
                    window: None,
                    failure_rate: None,
                    ..BreakerConfig::default()
                }
            };
            let breaker = Breaker::new(config, 1);
            let now = Time::from_secs(1);
            for _ in 0..n {
                if let Admit::Admitted(permit) = breaker.admit(black_box(now)) {
                    breaker.record(now, permit, &Class::Success, Duration::from_millis(1));
                }
            }
        }
        _ => {
            let keys: usize = mode.strip_prefix("registry").unwrap().parse().unwrap();
            let registry = Registry::new(RegistryConfig::default()).unwrap();
            let names: Vec<Key> = (0..keys)
                .map(|i| Key::new("provider", &format!("model-{i}")))
                .collect();
            for key in &names {
                let _ = registry.breaker(key);
            }
            let mut i = 0;
            for _ in 0..n {
                i = (i + 7919) % keys;
                black_box(matches!(
                    registry.admit(&names[i], Time::from_secs(1)),
                    Some(Admit::Admitted(_))
                ));
            }
        }
    }
}

/// The benches' route (`breakwater_benches::route_with`): `ROUTE` at their prices.
fn bench_route(registry: &Registry) -> Route {
    let prices = PriceTable::new()
        .with("claude-sonnet-4-5", Price::per_million(3.0, 15.0))
        .with("gpt-4o-mini", Price::per_million(0.15, 0.6));
    Route::bind(&RouteConfig::from_toml(ROUTE).unwrap(), registry, &prices).unwrap()
}
