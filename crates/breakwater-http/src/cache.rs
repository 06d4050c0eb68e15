//! The response cache: successful answers kept for a while, to serve when no provider
//! answers.
//!
//! The core decides *when* to ask ([`Action::LookupCache`](breakwater_core::Action),
//! by default for interactive tasks once the chain is exhausted); this cache answers.
//! A [`Client`](crate::Client) with a cache (see
//! [`ClientBuilder::cache`](crate::ClientBuilder::cache)) stores every successful
//! completion under its [`CacheKey`] and, on a lookup, serves the stored text flagged
//! degraded, with its age. Without a cache every lookup misses.
//!
//! # The key
//!
//! A [`CacheKey`] is the tenant, the route name and the normalised provider-neutral
//! request: the system prompt (absent and empty are the same, as the renderers send
//! neither), every message's role and text, the output limit, the temperature
//! (non-finite is the same as absent, as it is not sent; `-0.0` is `0.0`) and the stop
//! sequences. The request's `metadata` is left out: it only carries Anthropic's
//! `user_id`, for the provider's abuse tracking, and does not change the answer;
//! callers who need answers kept apart per user name a tenant per user.
//!
//! The full key is kept and compared on every hit, never a digest of it: a hash
//! collision cannot serve one tenant another tenant's answer.
//!
//! # Time
//!
//! Entries live for the cache's TTL (default [`ResponseCache::DEFAULT_TTL`], 20
//! minutes). Ages are measured on the adapter's monotonic clock
//! ([`clock`](crate::clock)): an entry whose age reached the TTL is a miss even
//! before the underlying cache (moka) has evicted it. The cache is bounded by a number
//! of entries; past it, moka evicts the entries least likely to be used again.

use std::sync::Arc;
use std::time::Duration;

use breakwater_core::{Key, Time};

use crate::wire::{Request, Role, TokenUsage};

/// Successful answers by tenant, route and request; cheap to clone (shared inside).
#[derive(Clone)]
pub struct ResponseCache {
    entries: moka::sync::Cache<CacheKey, Arc<CachedAnswer>>,
    ttl: Duration,
    capacity: u64,
}

/// What the cache holds for one key: the answer and when it was stored.
#[derive(Clone, Debug, PartialEq)]
pub struct CachedAnswer {
    /// The generated text.
    pub text: String,
    /// The provider's stop reason.
    pub stop_reason: Option<String>,
    /// The provider (as named in the route) and model that wrote it.
    pub key: Key,
    /// What that answer was billed.
    pub usage: TokenUsage,
    /// When it was stored, on the adapter's clock.
    pub stored_at: Time,
}

/// How old a cached answer served in place of a provider's was, and who wrote it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CacheHit {
    /// From storing to serving.
    pub age: Duration,
    /// The provider (as named in the route) and model that wrote it.
    pub key: Key,
}

/// The normalised identity of a request in the cache: see the [module docs](self#the-key).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct CacheKey {
    tenant: String,
    route: String,
    /// A caller's explicit key, instead of the request's parts (which are then empty).
    explicit: Option<String>,
    system: Option<String>,
    messages: Vec<(Role, String)>,
    max_tokens: u32,
    /// The temperature's bits, normalised.
    temperature: Option<u32>,
    stop: Vec<String>,
}

impl CacheKey {
    /// The key of `request` sent by `tenant` through `route`.
    #[must_use]
    pub fn new(tenant: &str, route: &str, request: &Request) -> CacheKey {
        CacheKey {
            tenant: tenant.to_owned(),
            route: route.to_owned(),
            explicit: None,
            system: request.system.clone().filter(|s| !s.is_empty()),
            messages: request
                .messages
                .iter()
                .map(|m| (m.role, m.content.clone()))
                .collect(),
            max_tokens: request.max_tokens,
            temperature: request
                .temperature
                .filter(|t| t.is_finite())
                // -0.0 + 0.0 is 0.0: one key for both zeros.
                .map(|t| (t + 0.0).to_bits()),
            stop: request.stop.clone(),
        }
    }

    /// The key `key`, chosen by the caller, for `tenant` through `route`. It never
    /// equals a key derived from a request.
    #[must_use]
    pub fn explicit(tenant: &str, route: &str, key: &str) -> CacheKey {
        CacheKey {
            tenant: tenant.to_owned(),
            route: route.to_owned(),
            explicit: Some(key.to_owned()),
            system: None,
            messages: Vec::new(),
            max_tokens: 0,
            temperature: None,
            stop: Vec::new(),
        }
    }

    /// The tenant.
    #[must_use]
    pub fn tenant(&self) -> &str {
        &self.tenant
    }

    /// The route's name.
    #[must_use]
    pub fn route(&self) -> &str {
        &self.route
    }
}

impl ResponseCache {
    /// The TTL of [`ResponseCache::default`]: 20 minutes.
    pub const DEFAULT_TTL: Duration = Duration::from_secs(20 * 60);

    /// The capacity of [`ResponseCache::default`]: 10,000 answers.
    pub const DEFAULT_CAPACITY: u64 = 10_000;

    /// The longest TTL kept as given; a longer one is this (moka refuses TTLs over
    /// 1,000 years).
    pub const MAX_TTL: Duration = Duration::from_secs(100 * 365 * 24 * 3600);

    /// A cache whose answers live `ttl` (at most [`MAX_TTL`](Self::MAX_TTL); zero
    /// keeps nothing servable) and that holds at most `capacity` answers (zero holds
    /// none).
    #[must_use]
    pub fn new(ttl: Duration, capacity: u64) -> ResponseCache {
        let ttl = ttl.min(Self::MAX_TTL);
        let mut builder = moka::sync::Cache::builder().max_capacity(capacity);
        if !ttl.is_zero() {
            builder = builder.time_to_live(ttl);
        }
        ResponseCache {
            entries: builder.build(),
            ttl,
            capacity,
        }
    }

    /// How long answers live.
    #[must_use]
    pub fn ttl(&self) -> Duration {
        self.ttl
    }

    /// The most answers held.
    #[must_use]
    pub fn capacity(&self) -> u64 {
        self.capacity
    }

    /// How many answers are held, after pending evictions are carried out.
    #[must_use]
    pub fn len(&self) -> u64 {
        self.entries.run_pending_tasks();
        self.entries.entry_count()
    }

    /// Whether no answer is held.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Stores `answer` under `key`, replacing what was there.
    pub fn insert(&self, key: CacheKey, answer: CachedAnswer) {
        if self.ttl.is_zero() {
            return;
        }
        self.entries.insert(key, Arc::new(answer));
    }

    /// The answer stored under `key` and its age at `now`, unless there is none or it
    /// is as old as the TTL (then it is dropped).
    #[must_use]
    pub fn lookup(&self, key: &CacheKey, now: Time) -> Option<(Arc<CachedAnswer>, Duration)> {
        let answer = self.entries.get(key)?;
        let age = now.saturating_duration_since(answer.stored_at);
        if age >= self.ttl {
            self.entries.invalidate(key);
            return None;
        }
        Some((answer, age))
    }

    /// Drops every answer.
    pub fn clear(&self) {
        self.entries.invalidate_all();
    }
}

impl Default for ResponseCache {
    /// [`DEFAULT_TTL`](Self::DEFAULT_TTL) and [`DEFAULT_CAPACITY`](Self::DEFAULT_CAPACITY).
    fn default() -> ResponseCache {
        ResponseCache::new(Self::DEFAULT_TTL, Self::DEFAULT_CAPACITY)
    }
}

impl std::fmt::Debug for ResponseCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ResponseCache")
            .field("ttl", &self.ttl)
            .field("capacity", &self.capacity)
            .field("entries", &self.entries.entry_count())
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn answer(text: &str, at: Time) -> CachedAnswer {
        CachedAnswer {
            text: text.into(),
            stop_reason: Some("end_turn".into()),
            key: Key::new("a", "m"),
            usage: TokenUsage::default(),
            stored_at: at,
        }
    }

    fn request() -> Request {
        Request::new(64).system("Be brief.").user("Say hello.")
    }

    #[test]
    fn keys_tell_tenants_routes_and_requests_apart() {
        let base = CacheKey::new("acme", "chat", &request());
        assert_eq!(base, CacheKey::new("acme", "chat", &request()));
        assert_ne!(base, CacheKey::new("globex", "chat", &request()));
        assert_ne!(base, CacheKey::new("acme", "summary", &request()));
        // A tenant/route boundary cannot be shifted to forge another key.
        assert_ne!(
            CacheKey::new("ab", "c", &request()),
            CacheKey::new("a", "bc", &request())
        );
        let mut other = request();
        other.max_tokens = 65;
        assert_ne!(base, CacheKey::new("acme", "chat", &other));
        let other = request().assistant("Hi").user("Again");
        assert_ne!(base, CacheKey::new("acme", "chat", &other));
        let mut other = request();
        other.stop = vec!["END".into()];
        assert_ne!(base, CacheKey::new("acme", "chat", &other));
        let mut other = request();
        other.temperature = Some(0.7);
        assert_ne!(base, CacheKey::new("acme", "chat", &other));
    }

    #[test]
    fn keys_normalise_what_is_not_sent() {
        let mut empty_system = request();
        empty_system.system = Some(String::new());
        let mut no_system = request();
        no_system.system = None;
        assert_eq!(
            CacheKey::new("t", "r", &empty_system),
            CacheKey::new("t", "r", &no_system)
        );
        let mut nan = request();
        nan.temperature = Some(f32::NAN);
        assert_eq!(
            CacheKey::new("t", "r", &nan),
            CacheKey::new("t", "r", &request())
        );
        let (mut neg, mut pos) = (request(), request());
        neg.temperature = Some(-0.0);
        pos.temperature = Some(0.0);
        assert_eq!(CacheKey::new("t", "r", &neg), CacheKey::new("t", "r", &pos));
        let mut tagged = request();
        tagged.metadata.insert("user_id".into(), "u-1".into());
        assert_eq!(
            CacheKey::new("t", "r", &tagged),
            CacheKey::new("t", "r", &request())
        );
    }

    #[test]
    fn lookups_give_the_age_and_honour_the_ttl() {
        let cache = ResponseCache::new(Duration::from_secs(60), 10);
        let key = CacheKey::new("t", "chat", &request());
        let t0 = Time::from_nanos(1_000);
        assert!(cache.lookup(&key, t0).is_none());
        cache.insert(key.clone(), answer("hello", t0));
        let (hit, age) = cache.lookup(&key, t0 + Duration::from_secs(59)).unwrap();
        assert_eq!(hit.text, "hello");
        assert_eq!(age, Duration::from_secs(59));
        // Another tenant's identical request misses.
        let other = CacheKey::new("u", "chat", &request());
        assert!(cache.lookup(&other, t0).is_none());
        // At the TTL (on our clock) it is gone, and stays gone.
        assert!(cache.lookup(&key, t0 + Duration::from_secs(60)).is_none());
        assert!(cache.lookup(&key, t0).is_none());
    }

    #[test]
    fn capacity_bounds_and_zero_settings_hold_nothing() {
        let cache = ResponseCache::new(Duration::from_secs(60), 3);
        for i in 0..50 {
            let key = CacheKey::new("t", "chat", &Request::new(i).user("x"));
            cache.insert(key, answer("x", Time::ZERO));
        }
        assert!(cache.len() <= 3, "{}", cache.len());
        let none = ResponseCache::new(Duration::ZERO, 10);
        let key = CacheKey::new("t", "chat", &request());
        none.insert(key.clone(), answer("x", Time::ZERO));
        assert!(none.lookup(&key, Time::ZERO).is_none());
        assert!(none.is_empty());
        // An absurd TTL is clamped, not a panic.
        let long = ResponseCache::new(Duration::MAX, 10);
        assert_eq!(long.ttl(), ResponseCache::MAX_TTL);
        let default = ResponseCache::default();
        assert_eq!(default.ttl(), Duration::from_secs(1200));
    }
}
