//! The core's hot paths: breaker admit + record, budget withdraw + deposit, one
//! backoff delay, the request plan's whole success path, and registry look-ups.

use std::collections::HashMap;
use std::hint::black_box;
use std::sync::Arc;
use std::sync::atomic::AtomicU64;
use std::sync::atomic::Ordering::Acquire;
use std::time::Duration;

use breakwater_benches::route;
use breakwater_core::budget::{QuotaConfig, RatioConfig, RetryReason, ThrottleConfig};
use breakwater_core::key::KeyHasher;
use breakwater_core::registry::SharedBudget;
use breakwater_core::{
    Action, Admit, Backoff, Breaker, BreakerConfig, Budget, BudgetConfig, Class, Deadline, Jitter,
    Key, Outcome, Plan, Registry, RegistryConfig, RequestOptions, RetryBudget, TaskKind, Time,
    Usage, rng,
};
use criterion::{BatchSize, Criterion};

pub(crate) fn breaker(c: &mut Criterion) {
    let mut group = c.benchmark_group("breaker");
    let configs = [
        (
            "consecutive_only",
            BreakerConfig {
                window: None,
                failure_rate: None,
                ..BreakerConfig::default()
            },
        ),
        ("count_window", BreakerConfig::default()),
    ];
    for (name, config) in configs {
        let breaker = Breaker::new(config, 1);
        let now = Time::from_secs(1);
        group.bench_function(format!("closed_admit_record/{name}"), |b| {
            b.iter(|| {
                if let Admit::Admitted(permit) = breaker.admit(black_box(now)) {
                    breaker.record(now, permit, &Class::Success, Duration::from_millis(1));
                }
            });
        });
    }
    let open = Breaker::new(BreakerConfig::default(), 1);
    open.force_open(Time::ZERO);
    group.bench_function("open_rejection", |b| {
        b.iter(|| {
            black_box(matches!(
                open.admit(black_box(Time::from_secs(1))),
                Admit::Rejected(_)
            ))
        });
    });
    group.finish();
}

pub(crate) fn budget(c: &mut Criterion) {
    let mut group = c.benchmark_group("budget/withdraw_deposit");
    let kinds = [
        ("ratio", BudgetConfig::Ratio(RatioConfig::default())),
        (
            "throttle",
            BudgetConfig::Throttle(ThrottleConfig::default()),
        ),
        ("quota", BudgetConfig::Quota(QuotaConfig::default())),
    ];
    for (name, config) in kinds {
        let mut budget = Budget::new(&config);
        let mut t = 0u64;
        group.bench_function(name, |b| {
            b.iter(|| {
                t += 1_000;
                let now = Time::from_nanos(t);
                budget.on_request(now);
                let withdrawal = budget.try_withdraw(now, RetryReason::Error).ok();
                budget.on_attempt(now, true, withdrawal);
            });
        });
    }
    // The ratio budget as plans share it: behind the registry's lock.
    let shared = SharedBudget::new(Budget::new(&BudgetConfig::Ratio(RatioConfig::default())));
    let mut t = 0u64;
    group.bench_function("ratio_shared", |b| {
        b.iter(|| {
            t += 1_000;
            let now = Time::from_nanos(t);
            shared.on_request(now);
            let withdrawal = shared.try_withdraw(now, RetryReason::Error).ok();
            shared.on_attempt(now, true, withdrawal);
        });
    });
    group.finish();
}

pub(crate) fn backoff(c: &mut Criterion) {
    let mut group = c.benchmark_group("backoff/delay");
    let mut rng = rng::seeded(1);
    for jitter in [Jitter::Full, Jitter::Equal, Jitter::Decorrelated] {
        let backoff = Backoff::exponential(Duration::from_millis(500), Duration::from_secs(30))
            .with_jitter(jitter);
        group.bench_function(format!("{jitter:?}").to_lowercase(), |b| {
            b.iter(|| {
                black_box(backoff.delay(black_box(3), Some(Duration::from_secs(2)), &mut rng))
            });
        });
    }
    group.finish();
}

pub(crate) fn plan(c: &mut Criterion) {
    let (_registry, route) = route();
    let mut rng = rng::seeded(1);
    let mut group = c.benchmark_group("plan");
    group.bench_function("success_path", |b| {
        b.iter(|| {
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
            // Looked at where it lies, as a driver matches on it: returning the
            // 320-byte action to criterion would add two copies of it to the figure.
            black_box(&plan.poll(done, &mut rng));
        });
    });
    // Without a budget or a breaker: a failure in every iteration, with the clock
    // frozen, would drain any budget and trip any breaker, and the bench would measure
    // the fallback path instead of a retry.
    let (_stateless, retry_route) = breakwater_benches::route_with(RegistryConfig {
        budget: None,
        breaker: None,
        ..RegistryConfig::default()
    });
    group.bench_function("one_retry_then_success", |b| {
        let overloaded = Outcome::Status {
            status: 503,
            error: None,
            hints: Default::default(),
        };
        b.iter(|| {
            let mut now = Time::from_secs(1);
            let mut plan = Plan::new(
                &retry_route,
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
                    other => break black_box(other),
                }
            }
        });
    });
    group.finish();
}

pub(crate) fn registry(c: &mut Criterion) {
    let sizes: Vec<Keyed> = [1, 100, 10_000].into_iter().map(Keyed::new).collect();
    let mut group = c.benchmark_group("registry/lookup_admit");
    for keyed in &sizes {
        group.bench_function(format!("{}_keys", keyed.names.len()), |b| {
            b.iter_batched_ref(
                caller_key(&keyed.names),
                |key| {
                    black_box(matches!(
                        keyed.registry.admit(key, Time::from_secs(1)),
                        Some(Admit::Admitted(_))
                    ))
                },
                BatchSize::SmallInput,
            );
        });
    }
    group.finish();
    let mut group = c.benchmark_group("registry/floor_hashmap_load");
    for keyed in &sizes {
        group.bench_function(format!("{}_keys", keyed.names.len()), |b| {
            b.iter_batched_ref(
                caller_key(&keyed.names),
                |key| black_box(keyed.floor.get(key).map(|word| word.load(Acquire))),
                BatchSize::SmallInput,
            );
        });
    }
    group.finish();
}

/// A registry holding a breaker for each of `names`, and a floor to compare it with:
/// the same keys' state behind a pointer in a plain map (the same hash and equality),
/// of which a call reads one word, the least such a registry does per call.
struct Keyed {
    names: Vec<Key>,
    registry: Registry,
    floor: HashMap<Key, Arc<AtomicU64>, KeyHasher>,
}

impl Keyed {
    fn new(keys: usize) -> Keyed {
        let names: Vec<Key> = (0..keys)
            .map(|i| Key::new("provider", &format!("model-{i}")))
            .collect();
        let registry = Registry::new(RegistryConfig::default()).expect("default registry is valid");
        for key in &names {
            let _ = registry.breaker(key);
        }
        let floor = names
            .iter()
            .map(|key| (key.clone(), Arc::new(AtomicU64::new(0))))
            .collect();
        Keyed {
            names,
            registry,
            floor,
        }
    }
}

/// The key of each call, untimed: the next of `names` by a stride prime to their
/// count, cloned, so that the caller holds its key as a caller does (a key it just
/// built or keeps at hand). Reading it from a table as large as the registry's would
/// add a cache miss of the bench's own to every call at 10,000 keys.
fn caller_key(names: &[Key]) -> impl FnMut() -> Key + '_ {
    let mut i = 0;
    move || {
        i = (i + 7919) % names.len();
        names[i].clone()
    }
}
