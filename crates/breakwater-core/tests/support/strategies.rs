//! Proptest strategies for breaker configurations and classes.

use std::time::Duration;

use breakwater_core::class::Fatal;
use breakwater_core::{Backoff, BreakerConfig, Class, ClassKind, ClassSet, Jitter, Window};
use proptest::prelude::*;

/// A class, successes and retriable failures most often; rate limits and overloads
/// with or without a Retry-After hint.
pub(crate) fn class() -> impl Strategy<Value = Class> {
    let hint = proptest::option::of((0u64..300).prop_map(Duration::from_millis));
    prop_oneof![
        4 => Just(Class::Success),
        3 => Just(Class::Retriable),
        1 => Just(Class::Ambiguous),
        1 => Just(Class::NonRetriable(Fatal::InvalidRequest)),
        1 => hint.clone().prop_map(|retry_after| Class::RateLimited { retry_after }),
        1 => hint.prop_map(|retry_after| Class::Overloaded { retry_after }),
    ]
}

/// No window, or a count or time window of a few calls or buckets.
fn window() -> impl Strategy<Value = Option<Window>> {
    prop_oneof![
        1 => Just(None),
        2 => (1u32..12).prop_map(|size| Some(Window::Count { size })),
        2 => (50u64..2000, 1u32..6).prop_map(|(ms, buckets)| Some(Window::Time {
            span: Duration::from_millis(ms),
            buckets,
        })),
    ]
}

/// A valid breaker configuration: any mix of the checks, small windows, rates that
/// counts can hit exactly, every jitter, small probe counts.
pub(crate) fn breaker_config() -> impl Strategy<Value = BreakerConfig> {
    // Mostly shares that a count of calls can hit exactly, so `>=` is tested at equality.
    let rate = || {
        proptest::option::of(prop_oneof![
            3 => proptest::sample::select(&[0.2, 0.25, 0.4, 0.5, 0.6, 0.75, 0.8, 1.0][..]),
            1 => 0.05f64..=1.0,
        ])
    };
    let jitter = prop_oneof![
        Just(Jitter::None),
        Just(Jitter::Full),
        Just(Jitter::Equal),
        Just(Jitter::Decorrelated)
    ];
    let open = (1u64..500, 1.0f64..3.0, 0u64..2000, jitter).prop_map(
        |(base, multiplier, extra, jitter)| Backoff {
            base: Duration::from_millis(base),
            multiplier,
            cap: Duration::from_millis(base + extra),
            jitter,
        },
    );
    let failures = prop_oneof![
        Just(ClassSet::DEFAULT_FAILURES),
        Just(ClassSet::DEFAULT_FAILURES.with(ClassKind::RateLimited)),
        Just(
            ClassSet::EMPTY
                .with(ClassKind::Retriable)
                .with(ClassKind::NonRetriable)
        ),
    ];
    (
        proptest::option::of(1u32..6),
        window(),
        (rate(), rate()),
        (1u64..300, 0u32..12),
        open,
        (1u32..5, 1u32..5),
        failures,
    )
        .prop_map(
            |(
                consecutive,
                window,
                (failure_rate, slow_call_rate),
                (slow_ms, min_calls),
                open,
                (n, m),
                failures,
            )| {
                let min_calls = match window {
                    Some(Window::Count { size }) => min_calls.min(size),
                    _ => min_calls,
                };
                BreakerConfig {
                    consecutive_failures: consecutive,
                    window,
                    failure_rate: failure_rate.filter(|_| window.is_some()),
                    slow_call_rate: slow_call_rate.filter(|_| window.is_some()),
                    slow_call_ms: Duration::from_millis(slow_ms),
                    min_calls,
                    open,
                    half_open_probes: n,
                    close_after: m.min(n),
                    failures,
                }
            },
        )
}
