//! The breaker against the reference [`Model`] over random operations, and the
//! half-open probe bound.

use std::time::Duration;

use proptest::prelude::*;

use super::model::{Model, ModelPermit};
use super::*;

#[derive(Clone, Debug)]
enum Op {
    Admit,
    Check,
    Record {
        pick: usize,
        class: Class,
        latency_ms: u64,
    },
    Drop {
        pick: usize,
    },
    CoolDown {
        ms: u64,
    },
    Advance {
        ms: u64,
    },
    ForceOpen,
    Isolate,
    Reset,
}

fn class() -> impl Strategy<Value = Class> {
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

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        120 => Just(Op::Admit),
        10 => Just(Op::Check),
        120 => (any::<usize>(), class(), 0u64..400)
            .prop_map(|(pick, class, latency_ms)| Op::Record { pick, class, latency_ms }),
        10 => any::<usize>().prop_map(|pick| Op::Drop { pick }),
        6 => (0u64..500).prop_map(|ms| Op::CoolDown { ms }),
        45 => (0u64..800).prop_map(|ms| Op::Advance { ms }),
        2 => Just(Op::ForceOpen),
        1 => Just(Op::Isolate),
        3 => Just(Op::Reset),
    ]
}

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

fn config() -> impl Strategy<Value = BreakerConfig> {
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

/// What an admit or check said, comparable across the two.
fn admitted(p: &Permit) -> &'static str {
    if p.is_probe() { "probe" } else { "closed" }
}

fn model_admitted(p: &ModelPermit) -> &'static str {
    match p {
        ModelPermit::Probe { .. } => "probe",
        ModelPermit::Closed { .. } => "closed",
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(400))]

    #[test]
    fn breaker_matches_the_reference_model(
        config in config(),
        seed: u64,
        ops in proptest::collection::vec(op(), 1..250),
    ) {
        prop_assert_eq!(config.validate(), Ok(()));
        let breaker = Breaker::new(config.clone(), seed);
        let mut model = Model::new(config, seed);
        let mut held: Vec<(Permit, ModelPermit)> = Vec::new();
        let mut now = Time::from_secs(1);
        let (mut admitted_real, mut admitted_model) = (0, 0);
        for (step, op) in ops.into_iter().enumerate() {
            match op {
                Op::Admit => match (breaker.admit(now), model.admit(now)) {
                    (Admit::Admitted(p), Ok(m)) => {
                        prop_assert_eq!(admitted(&p), model_admitted(&m), "step {}", step);
                        admitted_real += 1;
                        admitted_model += 1;
                        held.push((p, m));
                    }
                    (Admit::Rejected(r), Err(m)) => prop_assert_eq!(r, m, "step {}", step),
                    (real, model) => prop_assert!(false, "step {step}: {real:?} vs {model:?}"),
                },
                Op::Check => {
                    let real = breaker.check(now);
                    let model = model.check(now).map(drop);
                    prop_assert_eq!(real, model, "step {}", step);
                }
                Op::Record { pick, class, latency_ms } => {
                    if !held.is_empty() {
                        let (p, m) = held.swap_remove(pick % held.len());
                        let latency = Duration::from_millis(latency_ms);
                        breaker.record(now, p, &class, latency);
                        model.record(now, m, &class, latency);
                    }
                }
                Op::Drop { pick } => {
                    if !held.is_empty() {
                        let (p, m) = held.swap_remove(pick % held.len());
                        drop(p);
                        model.release(m);
                    }
                }
                Op::CoolDown { ms } => {
                    let until = now + Duration::from_millis(ms);
                    breaker.cool_down(now, until);
                    model.cool_down(now, until);
                }
                Op::Advance { ms } => now = now + Duration::from_millis(ms),
                Op::ForceOpen => {
                    breaker.force_open(now);
                    model.force_open(now);
                }
                Op::Isolate => {
                    breaker.isolate(now);
                    model.isolate(now);
                }
                Op::Reset => {
                    breaker.reset(now);
                    model.reset(now);
                }
            }
            prop_assert_eq!(breaker.state(now), model.state(now), "step {}", step);
            let events: Vec<_> = std::iter::from_fn(|| breaker.poll_event()).collect();
            prop_assert_eq!(&events, &model.events, "step {}", step);
            model.events.clear();
        }
        prop_assert_eq!(admitted_real, admitted_model);
        drop(held);
    }

    #[test]
    fn half_open_never_admits_more_than_n(
        n in 1u32..6,
        ops in proptest::collection::vec((0u8..4, any::<usize>(), class()), 1..300),
    ) {
        let config = BreakerConfig {
            half_open_probes: n,
            close_after: n,
            open: Backoff::exponential(Duration::from_secs(1), Duration::from_secs(1))
                .with_jitter(Jitter::None),
            ..BreakerConfig::default()
        };
        let b = Breaker::new(config, 0);
        let mut now = Time::ZERO;
        b.force_open(now);
        let mut live: Vec<Permit> = Vec::new();
        let mut successes = 0;
        for (kind, pick, class) in ops {
            match kind {
                0 | 1 => {
                    if let Admit::Admitted(p) = b.admit(now) {
                        if p.is_probe() {
                            live.push(p);
                        }
                    }
                }
                2 if !live.is_empty() => drop(live.swap_remove(pick % live.len())),
                3 if !live.is_empty() => {
                    let p = live.swap_remove(pick % live.len());
                    b.record(now, p, &class, Duration::ZERO);
                    if matches!(class, Class::Success | Class::NonRetriable(_)) {
                        successes += 1;
                    }
                }
                _ => {}
            }
            // A new half-open period (or a close) retires the old probes.
            for event in std::iter::from_fn(|| b.poll_event()) {
                if event.to != StateKind::HalfOpen {
                    live.clear();
                    successes = 0;
                }
                if event.to == StateKind::Closed {
                    b.force_open(now);
                }
            }
            prop_assert!(live.len() + successes <= n as usize, "{} + {} > {}", live.len(), successes, n);
            now = now + Duration::from_millis(300);
        }
    }
}
