//! The shared state many requests use at once: a circuit breaker per [`Key`] and a
//! retry budget per provider (or per key, or one for all).
//!
//! A [`Registry`] is `Send + Sync`; share it by reference or in an `Arc`. Keys are
//! resolved once, when a route is [bound](crate::Route::bind): a bound route holds its
//! steps' breaker and budget handles, so the per-attempt path does no map look-up.
//!
//! The registry is the in-process state store. The same handles are where a
//! fleet-wide store (shared breakers and budgets across replicas) plugs in.

use std::collections::HashMap;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::breaker::{Admit, Breaker, BreakerConfig, BreakerError, GateLine, Mirror, Permit};
use crate::budget::{
    Budget, BudgetConfig, BudgetError, Refused, RetryBudget, RetryReason, Withdrawal,
};
use crate::class::Class;
use crate::key::KeyHasher;
use crate::sync::Ordering::Relaxed;
use crate::sync::{Arc, AtomicBool, AtomicU64, Mutex, RwLock};
use crate::{Key, Time};

/// How budgets are shared between keys.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum BudgetScope {
    /// One budget for every key.
    Global,
    /// One budget per provider, shared by its models (the default: an outage is
    /// usually provider-wide).
    #[default]
    Provider,
    /// One budget per provider and model.
    Key,
}

/// How a registry makes its breakers and budgets.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RegistryConfig {
    /// The configuration every key's breaker gets; `None` turns breakers off (every
    /// admission succeeds and nothing is counted).
    pub breaker: Option<BreakerConfig>,
    /// The retry budget; `None` allows every retry the route permits.
    pub budget: Option<BudgetConfig>,
    /// Which keys share a budget.
    pub budget_scope: BudgetScope,
    /// Seed of the breakers' jitter streams (each key derives its own from it).
    pub seed: u64,
}

impl Default for RegistryConfig {
    /// Default breakers, a default ratio budget per provider, seed 0.
    fn default() -> RegistryConfig {
        RegistryConfig {
            breaker: Some(BreakerConfig::default()),
            budget: Some(BudgetConfig::default()),
            budget_scope: BudgetScope::Provider,
            seed: 0,
        }
    }
}

/// A registry setting that cannot work.
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub enum RegistryError {
    /// The breaker configuration is invalid.
    Breaker(BreakerError),
    /// The budget configuration is invalid.
    Budget(BudgetError),
}

impl std::fmt::Display for RegistryError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            // Each message starts with what it is about ("breaker failure_rate …").
            RegistryError::Breaker(e) => e.fmt(f),
            RegistryError::Budget(e) => e.fmt(f),
        }
    }
}

impl std::error::Error for RegistryError {}

impl RegistryError {
    /// The setting at fault, as written in a configuration file
    /// (`breaker.failure_rate`, `budget.ratio`).
    #[must_use]
    pub fn path(&self) -> String {
        match self {
            RegistryError::Breaker(e) => format!("breaker.{}", e.path()),
            RegistryError::Budget(e) => format!("budget.{}", e.path()),
        }
    }
}

/// Breakers and budgets keyed by provider and model, shared by concurrent requests.
#[derive(Debug)]
pub struct Registry {
    config: RegistryConfig,
    breakers: RwLock<Breakers>,
    budgets: RwLock<HashMap<Key, SharedBudget, KeyHasher>>,
}

/// The registry's breakers. A look-up by key reads the table's slot (the key inline,
/// compared by hash and pointers) and the breaker's gate through its [`Mirror`], a
/// word packed eight to a cache line with other keys' gates, not the breaker's own
/// cache line: with thousands of keys, one line per key is what falls out of the
/// cache (the registry bench at 10,000 keys: 3.4× the cost of one key when each
/// look-up read its breaker's own line, 1.8× with packed words and two-word keys).
#[derive(Debug, Default)]
struct Breakers {
    slots: HashMap<Key, Slot, KeyHasher>,
    /// The line the next breaker's mirror goes to, and how many of its words are taken.
    line: Option<(Arc<GateLine>, usize)>,
}

/// A key's breaker and the copy of its gate that look-ups by key read.
#[derive(Debug)]
struct Slot {
    gate: Mirror,
    breaker: Breaker,
}

impl Breakers {
    /// A word of the current line for a new breaker, starting a new line when it is full.
    fn next_mirror(&mut self) -> Mirror {
        match &mut self.line {
            Some((line, used)) if *used < GateLine::WORDS => {
                *used += 1;
                Mirror::new(Arc::clone(line), *used - 1)
            }
            _ => {
                let line = Arc::new(GateLine::new());
                let mirror = Mirror::new(Arc::clone(&line), 0);
                self.line = Some((line, 1));
                mirror
            }
        }
    }
}

impl Registry {
    /// A registry with `config`, checked first.
    pub fn new(config: RegistryConfig) -> Result<Registry, RegistryError> {
        if let Some(breaker) = &config.breaker {
            breaker.validate().map_err(RegistryError::Breaker)?;
        }
        if let Some(budget) = &config.budget {
            budget.validate().map_err(RegistryError::Budget)?;
        }
        Ok(Registry {
            config,
            breakers: RwLock::new(Breakers::default()),
            budgets: RwLock::new(HashMap::default()),
        })
    }

    /// The configuration.
    #[must_use]
    pub fn config(&self) -> &RegistryConfig {
        &self.config
    }

    /// `key`'s breaker, made on first use; `None` when breakers are off.
    #[must_use]
    pub fn breaker(&self, key: &Key) -> Option<Breaker> {
        self.with_slot(key, |slot| slot.breaker.clone())
    }

    /// [`Breaker::admit`] on `key`'s breaker (made on first use) without taking a
    /// handle to it; `None` when breakers are off. Record the permit with
    /// [`record`](Self::record) under the same key.
    ///
    /// For a caller that has a key but no bound route: a look-up with no
    /// reference-count round trip on the breaker (a [bound](crate::Route::bind) route holds
    /// its handles and looks nothing up).
    pub fn admit(&self, key: &Key, now: Time) -> Option<Admit> {
        self.with_slot(key, |slot| slot.breaker.admit_from(slot.gate.load(), now))
    }

    /// [`Breaker::record`] on `key`'s breaker (made on first use); nothing when
    /// breakers are off.
    pub fn record(&self, key: &Key, now: Time, permit: Permit, class: &Class, latency: Duration) {
        self.with_slot(key, |slot| slot.breaker.record(now, permit, class, latency));
    }

    /// Runs `f` on `key`'s slot, made on first use; `None` when breakers are off. `f`
    /// runs under the table's lock (the read lock, or the write lock on the key's
    /// first use): it must not look up a breaker.
    fn with_slot<T>(&self, key: &Key, f: impl FnOnce(&Slot) -> T) -> Option<T> {
        let config = self.config.breaker.as_ref()?;
        if let Some(slot) = self.breakers.read().slots.get(key) {
            return Some(f(slot));
        }
        let mut breakers = self.breakers.write();
        if !breakers.slots.contains_key(key) {
            // (Else made by another thread between the two locks.)
            let seed = self.config.seed ^ stable_hash(key);
            let gate = breakers.next_mirror();
            let breaker = Breaker::mirrored(config.clone(), seed, gate.clone());
            breakers.slots.insert(key.clone(), Slot { gate, breaker });
        }
        // Under the write lock: this is a key's first use.
        breakers.slots.get(key).map(f)
    }

    /// The budget that retries to `key` draw from, made on first use; `None` when
    /// budgets are off.
    #[must_use]
    pub fn budget(&self, key: &Key) -> Option<SharedBudget> {
        let config = self.config.budget.as_ref()?;
        let scope = match self.config.budget_scope {
            BudgetScope::Global => Key::new("*", "*"),
            BudgetScope::Provider => Key::new(key.provider(), "*"),
            BudgetScope::Key => key.clone(),
        };
        if let Some(found) = self.budgets.read().get(&scope) {
            return Some(found.clone());
        }
        let mut budgets = self.budgets.write();
        Some(
            budgets
                .entry(scope)
                .or_insert_with(|| SharedBudget::new(Budget::new(config)))
                .clone(),
        )
    }

    /// Every budget made so far, with the key it is shared under (`*/*` for a global
    /// budget, `provider/*` per provider, the key itself per key), sorted by that key.
    #[must_use]
    pub fn budgets(&self) -> Vec<(Key, SharedBudget)> {
        let mut budgets: Vec<(Key, SharedBudget)> = self
            .budgets
            .read()
            .iter()
            .map(|(key, budget)| (key.clone(), budget.clone()))
            .collect();
        budgets.sort_by(|a, b| a.0.cmp(&b.0));
        budgets
    }

    /// Every key that has a breaker, sorted.
    #[must_use]
    pub fn keys(&self) -> Vec<Key> {
        let mut keys: Vec<Key> = self.breakers.read().slots.keys().cloned().collect();
        keys.sort();
        keys
    }
}

/// A breaker's seed for `key`: see [`Key::stable_hash`].
fn stable_hash(key: &Key) -> u64 {
    key.stable_hash()
}

/// A retry budget shared by every request that draws from it (a lock around the
/// plain [`Budget`]: budget operations are a handful of integer steps).
///
/// The per-request calls avoid the lock where the kind allows:
///
/// - [`on_request`](Self::on_request) on a ratio bucket, while its current window
///   lasts, only counts the request (one `fetch_add`); every call that takes the lock
///   first deposits what was counted, into the current window, and only then acts. The
///   window only moves under the lock, so a counted request lands in the window that
///   was current when it was counted: the same balance and answers as if it had taken
///   the lock at that instant (loom checks the race with a window move).
///   One exception: requests counted while [`with_mut`](Self::with_mut) replaces the
///   budget go to the new budget's current window.
/// - [`on_attempt`](Self::on_attempt) skips the lock for a kind whose balance attempt
///   outcomes do not change (the ratio bucket).
///
/// So a ratio-budgeted request's success path takes no lock at all.
#[derive(Clone, Debug)]
pub struct SharedBudget(Arc<Shared>);

#[derive(Debug)]
struct Shared {
    /// Whether the budget's kind acts on attempt outcomes ([`Budget::counts_attempts`]).
    /// Set under the lock whenever the kind may have changed (only
    /// [`with_mut`](SharedBudget::with_mut) can change it), read `Relaxed` without it:
    /// it publishes nothing else. A reader that sees the old value acts as if its call
    /// came just before the change, which it may have.
    counts_attempts: AtomicBool,
    /// [`Budget::deferrable_until`], republished under the lock after every call that
    /// may move it; read `Relaxed` without the lock. It only grows while the kind stays
    /// a ratio bucket, so a stale value is an earlier instant and only sends a request
    /// to the lock when it could have been counted.
    deferrable_until: AtomicU64,
    /// Requests counted without the lock, not yet deposited. Every holder of the lock
    /// takes them (a `swap` to 0, under the lock, so exactly one holder deposits each).
    pending: AtomicU64,
    budget: Mutex<Budget>,
}

impl SharedBudget {
    /// Shares `budget`.
    #[must_use]
    pub fn new(budget: Budget) -> SharedBudget {
        SharedBudget(Arc::new(Shared {
            counts_attempts: AtomicBool::new(budget.counts_attempts()),
            deferrable_until: AtomicU64::new(budget.deferrable_until()),
            pending: AtomicU64::new(0),
            budget: Mutex::new(budget),
        }))
    }

    /// See [`RetryBudget::on_request`].
    #[inline]
    pub fn on_request(&self, now: Time) {
        if now.as_nanos() < self.0.deferrable_until.load(Relaxed) {
            self.0.pending.fetch_add(1, Relaxed);
            return;
        }
        self.locked(|budget| budget.on_request(now));
    }

    /// See [`RetryBudget::try_withdraw`].
    pub fn try_withdraw(&self, now: Time, reason: RetryReason) -> Result<Withdrawal, Refused> {
        self.locked(|budget| budget.try_withdraw(now, reason))
    }

    /// See [`RetryBudget::on_attempt`]. Takes no lock when the kind ignores attempt
    /// outcomes (the call would only move its window, which its next call does anyway).
    #[inline]
    pub fn on_attempt(&self, now: Time, success: bool, withdrawal: Option<Withdrawal>) {
        if self.0.counts_attempts.load(Relaxed) {
            self.locked(|budget| budget.on_attempt(now, success, withdrawal));
        }
    }

    /// Runs `f` on the budget under its lock, mutably (the fleet layer merges the
    /// fleet's balance in this way). Requests counted without the lock are deposited
    /// first.
    pub fn with_mut<T>(&self, f: impl FnOnce(&mut Budget) -> T) -> T {
        let shared = &*self.0;
        let mut budget = shared.budget.lock();
        deposit_pending(shared, &mut budget);
        let out = f(&mut budget);
        // `f` may have replaced the budget with another kind.
        shared
            .counts_attempts
            .store(budget.counts_attempts(), Relaxed);
        shared
            .deferrable_until
            .store(budget.deferrable_until(), Relaxed);
        out
    }

    /// Runs `f` on the budget under its lock (for inspection), after depositing the
    /// requests counted without it.
    pub fn with<T>(&self, f: impl FnOnce(&Budget) -> T) -> T {
        self.locked(|budget| f(budget))
    }

    /// Whether `self` and `other` are the same budget.
    #[must_use]
    pub fn ptr_eq(&self, other: &SharedBudget) -> bool {
        Arc::ptr_eq(&self.0, &other.0)
    }

    /// Runs `f` under the lock, after the pending deposits, and republishes how long
    /// requests may be deferred (`f` may have moved the window).
    fn locked<T>(&self, f: impl FnOnce(&mut Budget) -> T) -> T {
        let shared = &*self.0;
        let mut budget = shared.budget.lock();
        deposit_pending(shared, &mut budget);
        let out = f(&mut budget);
        let until = budget.deferrable_until();
        if shared.deferrable_until.load(Relaxed) != until {
            shared.deferrable_until.store(until, Relaxed);
        }
        out
    }
}

/// Deposits the requests counted without the lock; `budget` is `shared`'s, locked.
#[inline]
fn deposit_pending(shared: &Shared, budget: &mut Budget) {
    // Skip the swap (a write to a line every request touches) when nothing is pending.
    if shared.pending.load(Relaxed) != 0 {
        let requests = shared.pending.swap(0, Relaxed);
        budget.deposit_requests(requests);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn breakers_are_shared_per_key() {
        let registry = Registry::new(RegistryConfig::default()).unwrap();
        let sonnet = Key::new("anthropic", "claude-sonnet-4-5");
        let a = registry.breaker(&sonnet).unwrap();
        a.force_open(Time::ZERO);
        let b = registry.breaker(&sonnet).unwrap();
        assert!(matches!(
            b.state(Time::ZERO),
            crate::breaker::State::Open { .. }
        ));
        let haiku = Key::new("anthropic", "claude-haiku-4-5");
        assert_eq!(
            registry.breaker(&haiku).unwrap().state(Time::ZERO),
            crate::breaker::State::Closed
        );
        assert_eq!(registry.keys(), vec![haiku, sonnet]);
    }

    /// A thousand keys keep a thousand breakers, however their hashes fall in the table.
    #[test]
    fn every_key_keeps_its_own_breaker() {
        let registry = Registry::new(RegistryConfig::default()).unwrap();
        let keys: Vec<Key> = (0..1000)
            .map(|i| Key::new("p", &format!("m-{i}")))
            .collect();
        for key in keys.iter().step_by(2) {
            registry.breaker(key).unwrap().force_open(Time::ZERO);
        }
        for (i, key) in keys.iter().enumerate() {
            let state = registry.breaker(key).unwrap().state(Time::ZERO);
            assert_eq!(
                matches!(state, crate::breaker::State::Open { .. }),
                i % 2 == 0,
                "{key}: {state:?}"
            );
        }
        assert_eq!(registry.keys().len(), 1000);
    }

    #[test]
    fn admit_and_record_by_key_reach_the_keys_breaker() {
        let registry = Registry::new(RegistryConfig::default()).unwrap();
        let now = Time::from_secs(1);
        let sonnet = Key::new("anthropic", "claude-sonnet-4-5");
        // Made on first use, by admit alone; the same names, separately allocated, find it.
        let failures = BreakerConfig::default().consecutive_failures.unwrap();
        for _ in 0..failures {
            let Some(Admit::Admitted(permit)) = registry.admit(&sonnet, now) else {
                panic!("a closed breaker admits");
            };
            let again = Key::new("anthropic", "claude-sonnet-4-5");
            registry.record(&again, now, permit, &Class::Retriable, Duration::ZERO);
        }
        assert_eq!(registry.keys(), vec![sonnet.clone()]);
        assert!(matches!(
            registry.breaker(&sonnet).unwrap().state(now),
            crate::breaker::State::Open { .. }
        ));
        assert!(matches!(
            registry.admit(&sonnet, now),
            Some(Admit::Rejected(_))
        ));
        // Another key's breaker is untouched.
        let haiku = Key::new("anthropic", "claude-haiku-4-5");
        assert!(matches!(
            registry.admit(&haiku, now),
            Some(Admit::Admitted(_))
        ));
    }

    #[test]
    fn budget_scope_decides_sharing() {
        let sonnet = Key::new("anthropic", "claude-sonnet-4-5");
        let haiku = Key::new("anthropic", "claude-haiku-4-5");
        let mini = Key::new("openai", "gpt-4o-mini");
        let same = |scope, a: &Key, b: &Key| {
            let registry = Registry::new(RegistryConfig {
                budget_scope: scope,
                ..RegistryConfig::default()
            })
            .unwrap();
            registry
                .budget(a)
                .unwrap()
                .ptr_eq(&registry.budget(b).unwrap())
        };
        assert!(same(BudgetScope::Provider, &sonnet, &haiku));
        assert!(!same(BudgetScope::Provider, &sonnet, &mini));
        assert!(same(BudgetScope::Global, &sonnet, &mini));
        assert!(!same(BudgetScope::Key, &sonnet, &haiku));
    }

    #[test]
    fn budgets_lists_each_shared_budget_once_by_its_scope_key() {
        let registry = Registry::new(RegistryConfig::default()).unwrap();
        assert!(registry.budgets().is_empty());
        let sonnet = registry.budget(&Key::new("anthropic", "claude-sonnet-4-5"));
        let _haiku = registry.budget(&Key::new("anthropic", "claude-haiku-4-5"));
        let _mini = registry.budget(&Key::new("openai", "gpt-4o-mini"));
        let listed = registry.budgets();
        let keys: Vec<String> = listed.iter().map(|(k, _)| k.to_string()).collect();
        assert_eq!(keys, ["anthropic/*", "openai/*"]);
        assert!(listed[0].1.ptr_eq(&sonnet.unwrap()));
    }

    #[test]
    fn a_ratio_budget_ignores_outcomes_and_the_others_do_not() {
        use crate::budget::{QuotaConfig, RatioConfig};
        let now = Time::ZERO;
        let ratio = SharedBudget::new(Budget::new(&BudgetConfig::Ratio(RatioConfig::default())));
        let w = ratio.try_withdraw(now, RetryReason::Error).ok();
        let before = ratio.with(|b| b.available(now));
        ratio.on_attempt(now, true, w);
        assert_eq!(ratio.with(|b| b.available(now)), before);
        // Replaced by a kind that refunds successes: on_attempt reaches it.
        ratio.with_mut(|b| *b = Budget::new(&BudgetConfig::Quota(QuotaConfig::default())));
        let w = ratio.try_withdraw(now, RetryReason::Error).ok();
        assert_eq!(ratio.with(|b| b.available(now)), 99.0);
        ratio.on_attempt(now, true, w);
        assert_eq!(ratio.with(|b| b.available(now)), 100.0);
    }

    fn ratio(ratio: f64, min_per_sec: u32) -> SharedBudget {
        use crate::budget::RatioConfig;
        SharedBudget::new(Budget::new(&BudgetConfig::Ratio(RatioConfig {
            ratio,
            min_per_sec,
            ..RatioConfig::default()
        })))
    }

    #[test]
    fn requests_counted_without_the_lock_are_deposited_before_a_withdrawal() {
        // No reserve: only deposits pay for a retry; two requests at 0.5 pay for one.
        let budget = ratio(0.5, 0);
        let now = Time::from_millis(1500);
        budget.on_request(now);
        assert!(budget.try_withdraw(now, RetryReason::Error).is_err());
        // The window [1 s, 2 s) is current now: this one is only counted...
        budget.on_request(now);
        assert_eq!(budget.0.pending.load(Relaxed), 1);
        // ...and deposited by the next call under the lock, before it answers.
        assert!(budget.try_withdraw(now, RetryReason::Error).is_ok());
        assert_eq!(budget.0.pending.load(Relaxed), 0);
        assert_eq!(budget.with(|b| b.available(now)), 0.0);
    }

    #[test]
    fn a_counted_request_lives_in_the_window_it_was_counted_in() {
        let budget = ratio(1.0, 0);
        budget.on_request(Time::from_millis(1500));
        budget.on_request(Time::from_millis(1600));
        assert_eq!(budget.0.pending.load(Relaxed), 1);
        // Both belong to window [1 s, 2 s) and expire ten windows (the 10 s ttl) later.
        let at = |ms| budget.with(|b| b.available(Time::from_millis(ms)));
        assert_eq!(at(10_999), 2.0);
        assert_eq!(at(11_000), 0.0);
        // A request at the window's end is not deferred: it deposits the counted one
        // into the window it was counted in, then moves the window for its own.
        let budget = ratio(1.0, 0);
        budget.on_request(Time::from_millis(1500));
        budget.on_request(Time::from_millis(1600));
        budget.on_request(Time::from_secs(2));
        assert_eq!(budget.0.pending.load(Relaxed), 0);
        let at = |ms| budget.with(|b| b.available(Time::from_millis(ms)));
        assert_eq!((at(11_000), at(12_000)), (1.0, 0.0));
    }

    #[test]
    fn counted_requests_replaced_with_the_kind_are_dropped() {
        use crate::budget::QuotaConfig;
        let budget = ratio(1.0, 0);
        budget.on_request(Time::from_millis(1500));
        budget.on_request(Time::from_millis(1600));
        // The replacement runs after the deposit; a quota then ignores requests, and
        // nothing is deferred any more.
        let before = budget.with_mut(|b| {
            let before = b.available(Time::from_millis(1600));
            *b = Budget::new(&BudgetConfig::Quota(QuotaConfig::default()));
            before
        });
        assert_eq!(before, 2.0);
        assert_eq!(budget.0.deferrable_until.load(Relaxed), 0);
        budget.on_request(Time::from_millis(1700));
        assert_eq!(budget.0.pending.load(Relaxed), 0);
        // Counted under a ratio bucket, deposited into a quota: nothing happens.
        budget.0.pending.store(3, Relaxed);
        assert_eq!(budget.with(|b| b.available(Time::from_secs(2))), 100.0);
        assert_eq!(budget.0.pending.load(Relaxed), 0);
    }

    proptest::proptest! {
        /// Driven from one thread, a shared ratio bucket (which defers deposits)
        /// answers every call as the plain one does.
        #[test]
        fn a_shared_ratio_budget_answers_as_the_plain_one(
            milli in 0u32..2_000,
            min_per_sec in 0u32..5,
            ttl_ms in 1u64..20_000,
            ops in proptest::collection::vec((0u64..3_000, 0u8..4), 1..100),
        ) {
            use crate::budget::RatioConfig;
            let config = BudgetConfig::Ratio(RatioConfig {
                ratio: f64::from(milli) / 1000.0,
                min_per_sec,
                ttl: std::time::Duration::from_millis(ttl_ms),
            });
            let shared = SharedBudget::new(Budget::new(&config));
            let mut plain = Budget::new(&config);
            let mut now = Time::ZERO;
            for (step_ms, op) in ops {
                now = now + std::time::Duration::from_millis(step_ms);
                match op {
                    0 | 1 => {
                        shared.on_request(now);
                        plain.on_request(now);
                    }
                    2 => {
                        let a = shared.try_withdraw(now, RetryReason::Error);
                        let b = plain.try_withdraw(now, RetryReason::Error);
                        proptest::prop_assert_eq!(
                            a.map(Withdrawal::cost),
                            b.map(Withdrawal::cost)
                        );
                    }
                    _ => proptest::prop_assert_eq!(
                        shared.with(|b| b.available(now)),
                        plain.available(now)
                    ),
                }
            }
        }
    }

    #[test]
    fn an_invalid_config_is_refused_naming_its_part() {
        use crate::budget::{BudgetError, RatioConfig};
        let breaker = RegistryConfig {
            breaker: Some(BreakerConfig {
                consecutive_failures: Some(0),
                ..BreakerConfig::default()
            }),
            ..RegistryConfig::default()
        };
        let error = Registry::new(breaker.clone()).unwrap_err();
        assert_eq!(
            error,
            RegistryError::Breaker(BreakerError::ZeroConsecutiveFailures)
        );
        assert_eq!(error.path(), "breaker.consecutive_failures");
        assert!(crate::written::written(&breaker, &error.path()));
        assert!(
            error
                .to_string()
                .starts_with("breaker consecutive_failures"),
            "{error}"
        );
        let budget = RegistryConfig {
            budget: Some(BudgetConfig::Ratio(RatioConfig {
                ratio: f64::NAN,
                ..RatioConfig::default()
            })),
            ..RegistryConfig::default()
        };
        let error = Registry::new(budget.clone()).unwrap_err();
        assert_eq!(error, RegistryError::Budget(BudgetError::Ratio));
        assert_eq!(error.path(), "budget.ratio");
        assert!(crate::written::written(&budget, &error.path()));
        assert!(error.to_string().starts_with("budget ratio"), "{error}");
    }

    #[test]
    fn off_means_none() {
        let config = RegistryConfig {
            breaker: None,
            budget: None,
            ..RegistryConfig::default()
        };
        let registry = Registry::new(config.clone()).unwrap();
        assert_eq!(registry.config(), &config);
        let key = Key::new("a", "b");
        assert!(registry.breaker(&key).is_none());
        assert!(registry.admit(&key, Time::ZERO).is_none());
        let permit = Breaker::new(BreakerConfig::default(), 0)
            .admit(Time::ZERO)
            .into_result()
            .unwrap();
        registry.record(&key, Time::ZERO, permit, &Class::Success, Duration::ZERO);
        assert!(registry.keys().is_empty());
        assert!(registry.budget(&key).is_none());
    }

    #[test]
    fn each_key_jitters_from_the_seed_mixed_with_its_name() {
        let config = BreakerConfig::default();
        let registry = Registry::new(RegistryConfig {
            breaker: Some(config.clone()),
            seed: u64::MAX,
            ..RegistryConfig::default()
        })
        .unwrap();
        let key = Key::new("anthropic", "claude-sonnet-4-5");
        let alone = Breaker::new(config, u64::MAX ^ stable_hash(&key));
        // The default open duration has equal jitter: five trips draw five times.
        let opens = |b: &Breaker| {
            (1..=5u64)
                .map(|n| {
                    let now = Time::from_secs(n * 1000);
                    b.force_open(now);
                    b.state(now)
                })
                .collect::<Vec<_>>()
        };
        assert_eq!(opens(&registry.breaker(&key).unwrap()), opens(&alone));
    }

    #[test]
    fn seeds_are_stable_across_processes() {
        assert_eq!(
            stable_hash(&Key::new("a", "b")),
            stable_hash(&Key::new("a", "b"))
        );
        assert_ne!(
            stable_hash(&Key::new("a", "b")),
            stable_hash(&Key::new("ab", ""))
        );
    }
}
