//! The [`Registry`] against a sequential reference model, as a proptest state machine:
//! random runs of admit and record (by key, or through a handle to the breaker; every
//! class, 429s with Retry-After among them), drop a permit, advance time, and the
//! budget's deposit, withdrawal and settlement, over three keys of two providers.
//! After every step each key's breaker state, admission answer and events, each
//! budget's balance and the set of keys with a breaker must be what the model says.
//!
//! The model keeps one reference breaker per key (`support::breaker_model`, shared
//! with the breaker's own proptest) and one plainly written budget per budget scope.
//! Open durations are unjittered here: which seed each key's breaker gets is the
//! registry's business, and the breaker's proptest covers jitter against its seed.

// Each integration test uses part of the shared support.
#[allow(dead_code)]
mod support;

use std::collections::BTreeSet;
use std::time::Duration;

use breakwater_core::breaker::{BreakerEvent, Rejection};
use breakwater_core::registry::BudgetScope;
use breakwater_core::{
    BudgetConfig, Class, Jitter, Key, Permit, QuotaConfig, RatioConfig, Refused, Registry,
    RegistryConfig, RetryReason, ThrottleConfig, Time, Withdrawal,
};
use proptest::prelude::*;
use proptest_state_machine::{ReferenceStateMachine, StateMachineTest, prop_state_machine};

use support::breaker_model::{Model, ModelPermit};
use support::strategies::{breaker_config, class};

/// Two models of one provider and one of another: every budget scope tells them apart
/// differently.
const KEYS: [(&str, &str); 3] = [
    ("anthropic", "claude-sonnet-4-5"),
    ("anthropic", "claude-haiku-4-5"),
    ("openai", "gpt-4o-mini"),
];

fn key(index: usize) -> Key {
    let (provider, model) = KEYS[index];
    Key::new(provider, model)
}

/// The budget slot a key draws from under `scope`.
fn scope_slot(scope: BudgetScope, key: usize) -> usize {
    match scope {
        BudgetScope::Global => 0,
        BudgetScope::Provider => usize::from(KEYS[key].0 != KEYS[0].0),
        BudgetScope::Key => key,
    }
}

/// One step of the run.
#[derive(Clone, Debug)]
enum Step {
    /// Ask `key`'s breaker for admission; keep the permit. `by_key`: through
    /// [`Registry::admit`] (the look-up by key), else through a handle to the breaker.
    Admit { key: usize, by_key: bool },
    /// Record the outcome of held permit `permit` (`by_key` as for `Admit`).
    Record {
        permit: usize,
        by_key: bool,
        class: Class,
        latency_ms: u64,
    },
    /// Drop held permit `permit` without an outcome.
    Drop { permit: usize },
    /// Let time pass.
    Advance { ms: u64 },
    /// A request's first attempt was sent through `key`: the budget's deposit.
    Request { key: usize },
    /// Ask `key`'s budget for a retry; keep the withdrawal.
    Withdraw { key: usize, reason: RetryReason },
    /// A first attempt through `key` finished.
    FirstAttempt { key: usize, success: bool },
    /// The retry paid for by held withdrawal `withdrawal` finished.
    Retry { withdrawal: usize, success: bool },
}

/// The reference: plain values, one step at a time.
#[derive(Clone, Debug)]
struct Reference {
    config: RegistryConfig,
    now: Time,
    /// One reference breaker per key; `None` when breakers are off.
    breakers: Option<Vec<Model>>,
    /// One budget per scope slot; `None` when budgets are off.
    budgets: Option<Vec<BudgetModel>>,
    /// The keys whose breaker was asked for: the registry's `keys()`.
    used: BTreeSet<usize>,
    /// Held permits: (key, permit).
    permits: Vec<(usize, ModelPermit)>,
    /// Held withdrawals: (key, cost).
    withdrawals: Vec<(usize, u32)>,
    /// What the last step answered, for the system under test to match.
    answer: Answer,
}

#[derive(Clone, Debug, PartialEq)]
enum Answer {
    None,
    /// A breaker admitted a closed-state call or a probe.
    Admitted {
        probe: bool,
    },
    Rejected(Rejection),
    /// A withdrawal's cost, or its refusal.
    Withdrawal(Result<u32, Refused>),
}

impl Reference {
    fn slot(&self, key: usize) -> usize {
        scope_slot(self.config.budget_scope, key)
    }

    fn breaker(&mut self, key: usize) -> Option<&mut Model> {
        let breakers = self.breakers.as_mut()?;
        self.used.insert(key);
        Some(&mut breakers[key])
    }
}

/// The registry's budget configurations: small, so that runs reach the edges.
fn budget_config() -> impl Strategy<Value = BudgetConfig> {
    let ratio = (
        proptest::sample::select(&[0.0, 0.1, 0.25, 0.5, 1.0, 2.0][..]),
        0u32..3,
        10u64..3000,
    )
        .prop_map(|(ratio, min_per_sec, ttl_ms)| {
            BudgetConfig::Ratio(RatioConfig {
                ratio,
                min_per_sec,
                ttl: Duration::from_millis(ttl_ms),
            })
        });
    let throttle = (
        1u32..6,
        proptest::sample::select(&[0.1, 0.25, 0.5, 1.0][..]),
    )
        .prop_map(|(max_tokens, token_ratio)| {
            BudgetConfig::Throttle(ThrottleConfig {
                max_tokens,
                token_ratio,
            })
        });
    let quota = (1u32..20, 1u32..20, 1u32..20, 0u32..3).prop_map(
        |(capacity, retry_cost, timeout_cost, success_refund)| {
            BudgetConfig::Quota(QuotaConfig {
                capacity,
                retry_cost: retry_cost.min(capacity),
                timeout_cost: timeout_cost.min(capacity),
                success_refund,
            })
        },
    );
    prop_oneof![ratio, throttle, quota]
}

fn registry_config() -> impl Strategy<Value = RegistryConfig> {
    let breaker = breaker_config().prop_map(|mut config| {
        config.open.jitter = Jitter::None;
        config
    });
    let scope = prop_oneof![
        Just(BudgetScope::Global),
        Just(BudgetScope::Provider),
        Just(BudgetScope::Key),
    ];
    (
        proptest::option::weighted(0.9, breaker),
        proptest::option::weighted(0.9, budget_config()),
        scope,
        any::<u64>(),
    )
        .prop_map(|(breaker, budget, budget_scope, seed)| RegistryConfig {
            breaker,
            budget,
            budget_scope,
            seed,
        })
}

struct RegistryMachine;

impl ReferenceStateMachine for RegistryMachine {
    type State = Reference;
    type Transition = Step;

    fn init_state() -> BoxedStrategy<Reference> {
        registry_config()
            .prop_map(|config| Reference {
                breakers: config
                    .breaker
                    .as_ref()
                    .map(|b| (0..KEYS.len()).map(|_| Model::new(b.clone(), 0)).collect()),
                budgets: config
                    .budget
                    .map(|b| (0..KEYS.len()).map(|_| BudgetModel::new(&b)).collect()),
                config,
                now: Time::from_secs(1),
                used: BTreeSet::new(),
                permits: Vec::new(),
                withdrawals: Vec::new(),
                answer: Answer::None,
            })
            .boxed()
    }

    fn transitions(state: &Reference) -> BoxedStrategy<Step> {
        let keys = 0..KEYS.len();
        let reason = prop_oneof![Just(RetryReason::Error), Just(RetryReason::Timeout)];
        let permits = state.permits.len().max(1);
        let withdrawals = state.withdrawals.len().max(1);
        prop_oneof![
            12 => (keys.clone(), any::<bool>()).prop_map(|(key, by_key)| Step::Admit { key, by_key }),
            12 => (0..permits, any::<bool>(), class(), 0u64..400).prop_map(
                |(permit, by_key, class, latency_ms)| Step::Record { permit, by_key, class, latency_ms },
            ),
            2 => (0..permits).prop_map(|permit| Step::Drop { permit }),
            5 => (0u64..800).prop_map(|ms| Step::Advance { ms }),
            4 => keys.clone().prop_map(|key| Step::Request { key }),
            4 => (keys.clone(), reason).prop_map(|(key, reason)| Step::Withdraw { key, reason }),
            2 => (keys, any::<bool>())
                .prop_map(|(key, success)| Step::FirstAttempt { key, success }),
            3 => (0..withdrawals, any::<bool>())
                .prop_map(|(withdrawal, success)| Step::Retry { withdrawal, success }),
        ]
        .boxed()
    }

    fn preconditions(state: &Reference, step: &Step) -> bool {
        match step {
            Step::Record { permit, .. } | Step::Drop { permit } => *permit < state.permits.len(),
            Step::Retry { withdrawal, .. } => *withdrawal < state.withdrawals.len(),
            _ => true,
        }
    }

    fn apply(mut state: Reference, step: &Step) -> Reference {
        let now = state.now;
        state.answer = Answer::None;
        match *step {
            Step::Admit { key, .. } => {
                if let Some(model) = state.breaker(key) {
                    state.answer = match model.admit(now) {
                        Ok(permit) => {
                            state.permits.push((key, permit));
                            Answer::Admitted {
                                probe: matches!(permit, ModelPermit::Probe { .. }),
                            }
                        }
                        Err(rejection) => Answer::Rejected(rejection),
                    };
                }
            }
            Step::Record {
                permit,
                ref class,
                latency_ms,
                ..
            } => {
                let (key, permit) = state.permits.remove(permit);
                if let Some(model) = state.breaker(key) {
                    model.record(now, permit, class, Duration::from_millis(latency_ms));
                }
            }
            Step::Drop { permit } => {
                let (key, permit) = state.permits.remove(permit);
                if let Some(model) = state.breaker(key) {
                    model.release(permit);
                }
            }
            Step::Advance { ms } => state.now = now + Duration::from_millis(ms),
            Step::Request { key } => {
                let slot = state.slot(key);
                if let Some(budgets) = &mut state.budgets {
                    budgets[slot].on_request(now);
                }
            }
            Step::Withdraw { key, reason } => {
                let slot = state.slot(key);
                if let Some(budgets) = &mut state.budgets {
                    let answer = budgets[slot].try_withdraw(now, reason);
                    if let Ok(cost) = answer {
                        state.withdrawals.push((key, cost));
                    }
                    state.answer = Answer::Withdrawal(answer);
                }
            }
            Step::FirstAttempt { key, success } => {
                let slot = state.slot(key);
                if let Some(budgets) = &mut state.budgets {
                    budgets[slot].on_attempt(now, success, None);
                }
            }
            Step::Retry {
                withdrawal,
                success,
            } => {
                let (key, cost) = state.withdrawals.remove(withdrawal);
                let slot = state.slot(key);
                if let Some(budgets) = &mut state.budgets {
                    budgets[slot].on_attempt(now, success, Some(cost));
                }
            }
        }
        state
    }
}

/// The registry, with what the run holds: permits, withdrawals, and each key's events
/// so far.
struct System {
    registry: Registry,
    now: Time,
    permits: Vec<(usize, Permit)>,
    withdrawals: Vec<(usize, Withdrawal)>,
    events: Vec<Vec<BreakerEvent>>,
}

struct RegistryTest;

impl StateMachineTest for RegistryTest {
    type SystemUnderTest = System;
    type Reference = RegistryMachine;

    fn init_test(reference: &Reference) -> System {
        System {
            registry: Registry::new(reference.config.clone()).expect("a valid configuration"),
            now: reference.now,
            permits: Vec::new(),
            withdrawals: Vec::new(),
            events: vec![Vec::new(); KEYS.len()],
        }
    }

    fn apply(mut system: System, reference: &Reference, step: Step) -> System {
        let now = system.now;
        let registry = &system.registry;
        let mut answer = Answer::None;
        match step {
            Step::Admit { key: k, by_key } => {
                let admitted = if by_key {
                    registry.admit(&key(k), now)
                } else {
                    registry.breaker(&key(k)).map(|breaker| breaker.admit(now))
                };
                if let Some(admitted) = admitted {
                    answer = match admitted.into_result() {
                        Ok(permit) => {
                            let probe = permit.is_probe();
                            system.permits.push((k, permit));
                            Answer::Admitted { probe }
                        }
                        Err(rejection) => Answer::Rejected(rejection),
                    };
                }
            }
            Step::Record {
                permit,
                by_key,
                class,
                latency_ms,
            } => {
                let (k, permit) = system.permits.remove(permit);
                let latency = Duration::from_millis(latency_ms);
                if by_key {
                    registry.record(&key(k), now, permit, &class, latency);
                } else {
                    let breaker = registry.breaker(&key(k)).expect("it admitted the permit");
                    breaker.record(now, permit, &class, latency);
                }
            }
            Step::Drop { permit } => drop(system.permits.remove(permit)),
            Step::Advance { ms } => system.now = now + Duration::from_millis(ms),
            Step::Request { key: k } => {
                if let Some(budget) = registry.budget(&key(k)) {
                    budget.on_request(now);
                }
            }
            Step::Withdraw { key: k, reason } => {
                if let Some(budget) = registry.budget(&key(k)) {
                    let granted = budget.try_withdraw(now, reason);
                    if let Ok(withdrawal) = granted {
                        system.withdrawals.push((k, withdrawal));
                    }
                    answer = Answer::Withdrawal(granted.map(Withdrawal::cost));
                }
            }
            Step::FirstAttempt { key: k, success } => {
                if let Some(budget) = registry.budget(&key(k)) {
                    budget.on_attempt(now, success, None);
                }
            }
            Step::Retry {
                withdrawal,
                success,
            } => {
                let (k, withdrawal) = system.withdrawals.remove(withdrawal);
                let budget = registry.budget(&key(k)).expect("it granted the withdrawal");
                budget.on_attempt(now, success, Some(withdrawal));
            }
        }
        assert_eq!(answer, reference.answer);
        observe(&mut system, reference);
        system
    }

    fn check_invariants(system: &System, reference: &Reference) {
        let mut keys: Vec<Key> = reference.used.iter().map(|&k| key(k)).collect();
        keys.sort();
        assert_eq!(system.registry.keys(), keys);
        assert_eq!(system.permits.len(), reference.permits.len());
        assert_eq!(system.withdrawals.len(), reference.withdrawals.len());
    }
}

/// Compares what can be seen of every key's breaker and budget with the model: a copy
/// of it, since looking (`state`, `check`) applies what time alone changes, as it does
/// to the registry. Both do so again, identically, at their next step.
fn observe(system: &mut System, reference: &Reference) {
    let now = system.now;
    for k in 0..KEYS.len() {
        if let Some(models) = &reference.breakers {
            // Only a breaker already made: looking must not make one.
            if reference.used.contains(&k) {
                let breaker = system.registry.breaker(&key(k)).expect("breakers are on");
                let mut model = models[k].clone();
                assert_eq!(breaker.state(now), model.state(now), "key {k}");
                assert_eq!(breaker.check(now), model.check(now).map(drop), "key {k}");
                system.events[k].extend(std::iter::from_fn(|| breaker.poll_event()));
                assert_eq!(system.events[k], model.events, "key {k}");
            }
        } else {
            assert!(system.registry.breaker(&key(k)).is_none());
        }
        match (&reference.budgets, system.registry.budget(&key(k))) {
            (Some(models), Some(budget)) => {
                let expected = models[reference.slot(k)].available(now);
                assert_eq!(budget.with(|b| b.available(now)), expected, "key {k}");
            }
            (None, None) => {}
            (model, real) => panic!(
                "budgets on: model {}, registry {}",
                model.is_some(),
                real.is_some()
            ),
        }
    }
}

/// A retry budget of one of the three kinds, written from their documentation.
#[derive(Clone, Debug)]
enum BudgetModel {
    /// Entries (window, micro-retries): each request deposits `ratio`, each grant takes
    /// one retry; an entry lives ten windows of `ttl / 10`.
    Ratio {
        deposit: i64,
        reserve: i64,
        window_nanos: u64,
        latest: u64,
        entries: Vec<(u64, i64)>,
    },
    /// Milli-tokens in `[0, max]`: a failure takes 1000, a success adds `refill`; a
    /// retry needs more than half.
    Throttle { max: u64, refill: u64, tokens: u64 },
    /// Tokens in `[0, capacity]`: a retry costs `retry_cost` (or `timeout_cost`); a
    /// success refunds its retry's cost, or `success_refund` for a first attempt.
    Quota { config: QuotaConfig, tokens: u32 },
}

const MICRO: i64 = 1_000_000;

impl BudgetModel {
    fn new(config: &BudgetConfig) -> BudgetModel {
        match *config {
            BudgetConfig::Ratio(c) => {
                let ttl = c.ttl.as_nanos() as u64;
                BudgetModel::Ratio {
                    deposit: (c.ratio * MICRO as f64).round() as i64,
                    reserve: (u128::from(c.min_per_sec) * u128::from(ttl) / 1000) as i64,
                    window_nanos: (ttl / 10).max(1),
                    latest: 0,
                    entries: Vec::new(),
                }
            }
            BudgetConfig::Throttle(c) => {
                let max = u64::from(c.max_tokens) * 1000;
                BudgetModel::Throttle {
                    max,
                    refill: ((c.token_ratio * 1000.0).round() as u64).min(max),
                    tokens: max,
                }
            }
            BudgetConfig::Quota(config) => BudgetModel::Quota {
                config,
                tokens: config.capacity,
            },
        }
    }

    /// Ratio only: moves to `now`'s window (never back) and returns it.
    fn window(&mut self, now: Time) -> u64 {
        match self {
            BudgetModel::Ratio {
                window_nanos,
                latest,
                entries,
                ..
            } => {
                *latest = (now.as_nanos() / *window_nanos).max(*latest);
                let current = *latest;
                entries.retain(|(w, _)| current - w < 10);
                current
            }
            _ => 0,
        }
    }

    fn on_request(&mut self, now: Time) {
        let window = self.window(now);
        if let BudgetModel::Ratio {
            deposit, entries, ..
        } = self
        {
            entries.push((window, *deposit));
        }
    }

    fn try_withdraw(&mut self, now: Time, reason: RetryReason) -> Result<u32, Refused> {
        let window = self.window(now);
        match self {
            BudgetModel::Ratio {
                reserve,
                window_nanos,
                entries,
                ..
            } => {
                let balance = *reserve + entries.iter().map(|e| e.1).sum::<i64>();
                if balance >= MICRO {
                    entries.push((window, -MICRO));
                    return Ok(1);
                }
                // The first expiry after which what is left reaches one retry.
                let windows: BTreeSet<u64> = entries.iter().map(|e| e.0).collect();
                let until = windows.into_iter().find_map(|w| {
                    let left: i64 = entries.iter().filter(|e| e.0 > w).map(|e| e.1).sum();
                    (*reserve + left >= MICRO).then(|| Time::from_nanos((w + 10) * *window_nanos))
                });
                Err(Refused { until })
            }
            BudgetModel::Throttle { max, tokens, .. } => {
                if *tokens > *max / 2 {
                    Ok(0)
                } else {
                    Err(Refused { until: None })
                }
            }
            BudgetModel::Quota { config, tokens } => {
                let cost = match reason {
                    RetryReason::Error => config.retry_cost,
                    RetryReason::Timeout => config.timeout_cost,
                };
                if *tokens >= cost {
                    *tokens -= cost;
                    Ok(cost)
                } else {
                    Err(Refused { until: None })
                }
            }
        }
    }

    fn on_attempt(&mut self, now: Time, success: bool, paid: Option<u32>) {
        self.window(now);
        match self {
            BudgetModel::Ratio { .. } => {}
            BudgetModel::Throttle {
                max,
                refill,
                tokens,
            } => {
                *tokens = if success {
                    (*tokens + *refill).min(*max)
                } else {
                    tokens.saturating_sub(1000)
                };
            }
            BudgetModel::Quota { config, tokens } => {
                if success {
                    let refund = paid.unwrap_or(config.success_refund);
                    *tokens = (*tokens + refund).min(config.capacity);
                }
            }
        }
    }

    /// Retries available now, as the budgets report it.
    fn available(&self, now: Time) -> f64 {
        match self {
            BudgetModel::Ratio {
                reserve,
                window_nanos,
                latest,
                entries,
                ..
            } => {
                let current = (now.as_nanos() / window_nanos).max(*latest);
                let live: i64 = entries
                    .iter()
                    .filter(|(w, _)| current - w < 10)
                    .map(|e| e.1)
                    .sum();
                (reserve + live).max(0) as f64 / MICRO as f64
            }
            BudgetModel::Throttle { max, tokens, .. } => {
                tokens.saturating_sub(max / 2) as f64 / 1000.0
            }
            BudgetModel::Quota { config, tokens } => {
                f64::from(*tokens) / f64::from(config.retry_cost.max(1))
            }
        }
    }
}

prop_state_machine! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn registry_matches_the_reference_model(sequential 1..150 => RegistryTest);
}
