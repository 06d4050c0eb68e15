//! The breaker against the sequential reference model (`support::breaker_model`) over
//! random operations, and the half-open probe bound.

// Each integration test uses part of the shared support.
#[allow(dead_code)]
mod support;

use std::time::Duration;

use breakwater_core::breaker::StateKind;
use breakwater_core::{Admit, Backoff, Breaker, BreakerConfig, Class, Jitter, Permit, Time};
use proptest::prelude::*;

use support::breaker_model::{Model, ModelPermit};
use support::strategies::{breaker_config, class};

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
        config in breaker_config(),
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
