//! Metrics of scripted requests, counted by hand: every counter, rate and per-key
//! figure, and merging.

use std::time::Duration;

use super::*;
use crate::cost::{Cost, Price, PriceTable, Usage};
use crate::outcome::{Hints, Outcome};
use crate::plan::{Action, Plan, RequestOptions, TaskKind};
use crate::registry::{Registry, RegistryConfig};
use crate::rng::seeded;
use crate::route::RouteConfig;
use crate::{Deadline, Time};

/// Three attempts on Sonnet, then two on the mini model; backoff up to 2 s.
const ROUTE: &str = r#"
    name = "chat"
    [backoff]
    base_ms = 100
    cap_ms = 2000
    [[step]]
    provider = "anthropic"
    model = "claude-sonnet-4-5"
    attempts = 3
    [[step]]
    provider = "openai"
    model = "gpt-4o-mini"
    attempts = 2
"#;

fn sonnet() -> Price {
    Price::per_million(3.0, 15.0)
}

fn mini() -> Price {
    Price::per_million(0.15, 0.6)
}

/// What a success bills; failures bill nothing.
const USAGE: Usage = Usage::new(1000, 200);
/// Every attempt takes this long.
const LATENCY: Duration = Duration::from_millis(500);

/// A fresh registry and route (so that no request's failures trip another's breaker),
/// with both breakers forced open if `open`.
fn route(open: bool) -> (Registry, Route) {
    let config = RouteConfig::from_toml(ROUTE).expect("valid route");
    let registry = Registry::new(RegistryConfig::default()).expect("valid registry");
    let prices = PriceTable::new()
        .with("claude-sonnet-4-5", sonnet())
        .with("gpt-4o-mini", mini());
    let route = Route::bind(&config, &registry, &prices).expect("bound");
    if open {
        for step in 0..2 {
            route
                .breaker(step)
                .expect("breakers on")
                .force_open(Time::ZERO);
        }
    }
    (registry, route)
}

/// Runs one request: attempt `n` answers 529 while `n < failures`, then succeeds.
fn request(route: &Route, kind: TaskKind, failures: usize, cache_hit: bool) -> Finished {
    let mut rng = seeded(7);
    let mut now = Time::from_secs(1);
    let deadline = Deadline::after(now, Duration::from_secs(60));
    let mut plan = Plan::new(route, kind, deadline, RequestOptions::default());
    let mut n = 0;
    for _ in 0..10_000 {
        match plan.poll(now, &mut rng) {
            Action::Attempt(attempt) => {
                now = now + LATENCY;
                let (outcome, usage) = if n < failures {
                    let hints = Hints::default();
                    let overloaded = Outcome::Status {
                        status: 529,
                        error: None,
                        hints,
                    };
                    (overloaded, Usage::new(0, 0))
                } else {
                    (Outcome::Success, USAGE)
                };
                n += 1;
                plan.on_outcome(now, attempt.id, outcome, usage);
            }
            Action::Wait { until } => now = until,
            Action::Notice(_) => {}
            Action::LookupCache => plan.on_cache(now, cache_hit),
            Action::Finish(finished) => return finished,
        }
    }
    panic!("plan did not finish within 10,000 polls");
}

/// Seven requests, one of each ending, and what each sent:
///
/// | request | attempts (Sonnet, mini) | retries | ends |
/// |---|---|---|---|
/// | first try | 1, 0 | 0 | success |
/// | one 529 | 2, 0 | 1 | success |
/// | three 529s | 3, 1 | 3 | success by the fallback |
/// | five 529s | 3, 2 | 4 | degraded, empty (cache miss), fallback tried |
/// | breakers open, interactive, cache hit | 0, 0 | 0 | degraded from the cache |
/// | breakers open, deferrable | 0, 0 | 0 | queued |
/// | breakers open, critical | 0, 0 | 0 | failed |
fn seven() -> Metrics {
    let mut metrics = Metrics::new();
    for (failures, kind, cache_hit, open) in [
        (0, TaskKind::Interactive, false, false),
        (1, TaskKind::Interactive, false, false),
        (3, TaskKind::Interactive, false, false),
        (5, TaskKind::Interactive, false, false),
        (0, TaskKind::Interactive, true, true),
        (0, TaskKind::Deferrable, false, true),
        (0, TaskKind::Critical, false, true),
    ] {
        let (_registry, route) = route(open);
        let finished = request(&route, kind, failures, cache_hit);
        metrics.record(&route, &finished);
    }
    metrics
}

fn dollars(cost: Cost) -> f64 {
    cost.nanodollars() as f64 / 1e9
}

/// A request that reached the fallback counts one fallback, whether the fallback
/// answered or the request degraded after it; one that stayed on its first step none.
#[test]
fn a_fallback_counts_once_whatever_the_ending() {
    for (failures, fallbacks) in [(3, 1), (5, 1), (1, 0)] {
        let (_registry, route) = route(false);
        let mut metrics = Metrics::new();
        metrics.record(
            &route,
            &request(&route, TaskKind::Interactive, failures, false),
        );
        assert_eq!(
            metrics.snapshot().fallbacks,
            fallbacks,
            "{failures} failures"
        );
    }
}

#[test]
fn counts_every_ending_and_rate() {
    let s = seven().snapshot();
    assert_eq!(
        (s.requests, s.attempts, s.retries, s.fallbacks, s.successes),
        (7, 12, 8, 2, 3)
    );
    assert_eq!(
        (
            s.degraded,
            s.degraded_cache,
            s.degraded_empty,
            s.queued,
            s.failed
        ),
        (2, 1, 1, 1, 1)
    );
    let per_request = |n: f64| n / 7.0;
    assert_eq!(s.retry_rate, per_request(8.0));
    assert_eq!(s.fallback_rate, per_request(2.0));
    assert_eq!(s.degraded_rate, per_request(2.0));
    assert_eq!(s.failure_rate, per_request(1.0));
    assert_eq!(s.attempts_per_request, per_request(12.0));
    // Two Sonnet successes and one mini; the second and third were not first attempts.
    let (s_cost, m_cost) = (sonnet().cost(USAGE), mini().cost(USAGE));
    let total = Cost::from_nanodollars(2 * s_cost.nanodollars() + m_cost.nanodollars());
    let retries = Cost::from_nanodollars(s_cost.nanodollars() + m_cost.nanodollars());
    assert_eq!(s.cost_dollars, dollars(total));
    assert_eq!(s.retry_cost_dollars, dollars(retries));
    // The slowest request: five attempts and four waits.
    assert!(s.latency.max_ms > 2500.0, "{:?}", s.latency);
    assert!(s.latency.p50_ms < s.latency.max_ms, "{:?}", s.latency);
}

#[test]
fn counts_per_key() {
    let s = seven().snapshot();
    let [sonnet_key, mini_key] = &s.per_key[..] else {
        panic!("{:?}", s.per_key);
    };
    // Sorted by key: "anthropic" before "openai".
    assert_eq!(
        (sonnet_key.provider.as_str(), sonnet_key.model.as_str()),
        ("anthropic", "claude-sonnet-4-5")
    );
    assert_eq!(mini_key.model, "gpt-4o-mini");
    let counts = |k: &KeySnapshot| {
        (
            k.requests,
            k.attempts,
            k.retries,
            k.successes,
            k.overloaded,
            k.skipped_by_breaker,
        )
    };
    assert_eq!(counts(sonnet_key), (4, 9, 5, 2, 7, 3));
    assert_eq!(counts(mini_key), (2, 3, 1, 1, 2, 3));
    for k in [sonnet_key, mini_key] {
        assert_eq!(
            (k.rate_limited, k.retriable, k.ambiguous, k.non_retriable),
            (0, 0, 0, 0)
        );
        // Every attempt took 500 ms (to the histogram's three significant figures).
        assert!((k.attempt_latency.p50_ms - 500.0).abs() < 1.0);
        assert!((k.attempt_latency.max_ms - 500.0).abs() < 1.0);
    }
    assert_eq!(sonnet_key.retry_rate, 5.0 / 4.0);
    assert_eq!(mini_key.retry_rate, 1.0 / 2.0);
    assert_eq!(
        (sonnet_key.input_tokens, sonnet_key.output_tokens),
        (2000, 400)
    );
    assert_eq!((mini_key.input_tokens, mini_key.output_tokens), (1000, 200));
    let s_cost = sonnet().cost(USAGE).nanodollars();
    assert_eq!(
        sonnet_key.cost_dollars,
        dollars(Cost::from_nanodollars(2 * s_cost))
    );
    assert_eq!(mini_key.cost_dollars, dollars(mini().cost(USAGE)));
}

#[test]
fn merging_adds_every_count() {
    let one = seven();
    let mut two = seven();
    two.merge(&one);
    let (one, two) = (one.snapshot(), two.snapshot());
    assert_eq!(
        (
            two.requests,
            two.attempts,
            two.retries,
            two.fallbacks,
            two.successes
        ),
        (14, 24, 16, 4, 6)
    );
    assert_eq!(
        (
            two.degraded_cache,
            two.degraded_empty,
            two.queued,
            two.failed
        ),
        (2, 2, 2, 2)
    );
    assert_eq!(two.cost_dollars, 2.0 * one.cost_dollars);
    assert_eq!(two.retry_cost_dollars, 2.0 * one.retry_cost_dollars);
    // Rates and percentiles are those of one copy.
    assert_eq!(two.retry_rate, one.retry_rate);
    assert_eq!(two.latency, one.latency);
    for (a, b) in one.per_key.iter().zip(&two.per_key) {
        assert_eq!(
            (
                2 * a.requests,
                2 * a.attempts,
                2 * a.retries,
                2 * a.successes
            ),
            (b.requests, b.attempts, b.retries, b.successes)
        );
        assert_eq!(
            (2 * a.overloaded, 2 * a.skipped_by_breaker),
            (b.overloaded, b.skipped_by_breaker)
        );
        assert_eq!(
            (2 * a.input_tokens, 2 * a.output_tokens),
            (b.input_tokens, b.output_tokens)
        );
        assert_eq!(2.0 * a.cost_dollars, b.cost_dollars);
        assert_eq!(a.attempt_latency, b.attempt_latency);
    }
    // Merging into nothing copies.
    let mut empty = Metrics::default();
    empty.merge(&seven());
    assert_eq!(empty.snapshot(), one);
}

#[test]
fn an_empty_record_has_zero_rates() {
    let s = Metrics::new().snapshot();
    assert_eq!((s.requests, s.retry_rate, s.cost_dollars), (0, 0.0, 0.0));
    assert!(s.per_key.is_empty());
}

#[test]
fn batch_results_show_their_cost_and_saving() {
    let mut metrics = Metrics::new();
    let key = Key::new("anthropic", "claude-sonnet-4-5");
    let usage = Usage::new(2_000, 500);
    let bill = Price::per_million(3.0, 15.0).batch_cost(usage);
    metrics.record_batch_result(&key, usage, bill);
    metrics.record_batch_result(&key, usage, bill);
    let mut other = Metrics::new();
    other.record_batch_result(&key, usage, bill);
    // Cache-first hits ran no plan either: counted apart, merged.
    metrics.record_cache_first_hit();
    other.record_cache_first_hit();
    metrics.merge(&other);
    let snapshot = metrics.snapshot();
    assert_eq!(snapshot.requests, 0);
    assert_eq!(snapshot.cache_first_hits, 2);
    assert_eq!(snapshot.batch_results, 3);
    let batch = Cost::from_dollars(3.0 * 0.00675);
    assert_eq!(Cost::from_dollars(snapshot.batch_cost_dollars), batch);
    assert_eq!(Cost::from_dollars(snapshot.cost_dollars), batch);
    assert_eq!(Cost::from_dollars(snapshot.batch_saving_dollars), batch);
    let per_key = &snapshot.per_key[0];
    assert_eq!((per_key.batch_results, per_key.attempts), (3, 0));
    assert_eq!(per_key.input_tokens, 6_000);
    assert_eq!(per_key.output_tokens, 1_500);
    assert_eq!(Cost::from_dollars(per_key.cost_dollars), batch);
}

/// A conditional step ahead of the route's first unconditional one: requests that
/// never leave that first step used no fallback, however they end.
#[test]
fn a_conditional_first_step_is_not_the_first_step() {
    let config = RouteConfig::from_toml(
        r#"
        name = "guarded"
        [[step]]
        provider = "openai"
        model = "gpt-4o-mini"
        when = "content_policy"
        [[step]]
        provider = "anthropic"
        model = "claude-sonnet-4-5"
        attempts = 2
        "#,
    )
    .expect("valid route");
    let registry = Registry::new(RegistryConfig::default()).expect("valid registry");
    let route = Route::bind(&config, &registry, &PriceTable::new()).expect("bound");
    let mut metrics = Metrics::new();
    // Both attempts answer 529: degraded (empty) after two attempts on step 1 alone.
    let finished = request(&route, TaskKind::Interactive, 2, false);
    assert!(
        matches!(finished.resolution, Resolution::Degraded { .. }),
        "{:?}",
        finished.resolution
    );
    metrics.record(&route, &finished);
    let s = metrics.snapshot();
    assert_eq!((s.requests, s.attempts, s.fallbacks), (1, 2, 0));
}

/// Keys recorded out of order, alternating, and as separate `Key::new`s with the same
/// names (other `Arc`s than the first one seen): one entry per name pair, counted
/// together, and the snapshot sorted by provider and then model, as before the index.
/// Two keys with the same hash but other names, one right after the other, stay apart.
#[test]
fn per_key_entries_are_by_name_and_sorted() {
    let usage = Usage::new(10, 1);
    let bill = Price::per_million(1.0, 1.0).batch_cost(usage);
    let order = [
        ("openai", "gpt-4o"),
        ("anthropic", "claude-sonnet-4-5"),
        ("openai", "gpt-4o"),
        ("anthropic", "claude-haiku-4-5"),
        ("openai", "gpt-4o-mini"),
        ("anthropic", "claude-sonnet-4-5"),
        ("anthropic", "claude-sonnet-4-5"),
    ];
    let mut metrics = Metrics::new();
    let shared = Key::new("anthropic", "claude-sonnet-4-5");
    for (provider, model) in order {
        metrics.record_batch_result(&Key::new(provider, model), usage, bill);
        metrics.record_batch_result(&shared, usage, bill);
    }
    let mut other = Metrics::new();
    other.record_batch_result(&Key::new("gemini", "gemini-2.5-flash"), usage, bill);
    other.record_batch_result(&Key::new("openai", "gpt-4o"), usage, bill);
    // Names that join to the same `provider/model` text hash alike: still two keys.
    other.record_batch_result(&Key::new("openai", "gpt/4o"), usage, bill);
    other.record_batch_result(&Key::new("openai/gpt", "4o"), usage, bill);
    metrics.merge(&other);
    let snapshot = metrics.snapshot();
    let got: Vec<(&str, &str, u64)> = snapshot
        .per_key
        .iter()
        .map(|k| (k.provider.as_str(), k.model.as_str(), k.batch_results))
        .collect();
    assert_eq!(
        got,
        [
            ("anthropic", "claude-haiku-4-5", 1),
            ("anthropic", "claude-sonnet-4-5", 3 + 7),
            ("gemini", "gemini-2.5-flash", 1),
            ("openai", "gpt-4o", 3),
            ("openai", "gpt-4o-mini", 1),
            ("openai", "gpt/4o", 1),
            ("openai/gpt", "4o", 1),
        ]
    );
}
