//! Request metrics and dollar cost, overall and per provider/model.
//!
//! [`Metrics`] is a plain value a driver feeds with every [`Finished`] request; wrap it
//! in a lock to share it. [`Metrics::snapshot`] gives a serialisable view with the
//! derived rates and latency percentiles.

use std::collections::HashMap;
use std::time::Duration;

use hdrhistogram::Histogram;
use serde::{Deserialize, Serialize};

use crate::cost::{BatchCost, Usage};
use crate::key::KeyHasher;
use crate::plan::{DegradedFrom, EntryEvent, Finished, Resolution, Skip};
use crate::{ClassKind, Key, Route};

/// Latencies are recorded in microseconds, from 1 µs to one hour, to 3 significant
/// figures; longer ones count as one hour.
const MAX_MICROS: u64 = 3_600_000_000;

/// Counters and a latency histogram, overall and per key.
#[derive(Clone, Debug)]
pub struct Metrics {
    overall: Counters,
    latency: Histogram<u64>,
    /// Per key, in the order first seen; [`Metrics::snapshot`] sorts them by key.
    keys: Vec<(Key, KeyStats)>,
    /// Where each key's entry is in `keys`: a hash look-up by the key's cached hash
    /// instead of a tree search comparing names, for every attempt recorded.
    index: HashMap<Key, usize, KeyHasher>,
    /// Where in `keys` the last look-up landed (0 before any).
    last: usize,
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
struct Counters {
    requests: u64,
    attempts: u64,
    retries: u64,
    fallbacks: u64,
    successes: u64,
    degraded_cache: u64,
    degraded_empty: u64,
    queued: u64,
    failed: u64,
    cache_first_hits: u64,
    cost_nanodollars: u64,
    retry_cost_nanodollars: u64,
    batch_results: u64,
    batch_cost_nanodollars: u64,
    batch_synchronous_nanodollars: u64,
}

#[derive(Clone, Debug)]
struct KeyStats {
    requests: u64,
    attempts: u64,
    retries: u64,
    successes: u64,
    classes: [u64; ClassKind::ALL.len()],
    skipped: u64,
    input_tokens: u64,
    output_tokens: u64,
    cost_nanodollars: u64,
    batch_results: u64,
    latency: Histogram<u64>,
}

fn histogram() -> Histogram<u64> {
    // Valid bounds (low 1 ≥ 1, high ≥ 2·low, 3 significant figures): cannot fail.
    Histogram::new_with_bounds(1, MAX_MICROS, 3).expect("valid histogram bounds")
}

fn micros(span: Duration) -> u64 {
    u64::try_from(span.as_micros())
        .unwrap_or(u64::MAX)
        .clamp(1, MAX_MICROS)
}

impl Default for Metrics {
    fn default() -> Metrics {
        Metrics::new()
    }
}

impl Metrics {
    /// Empty metrics.
    #[must_use]
    pub fn new() -> Metrics {
        Metrics {
            overall: Counters::default(),
            latency: histogram(),
            keys: Vec::new(),
            index: HashMap::default(),
            last: 0,
        }
    }

    /// The stats of `key`, added (empty) the first time it is seen.
    ///
    /// A route's keys are clones of the ones first recorded (the same `Arc`s), so the
    /// last key looked up is checked first by address, which compares no text; then
    /// the index (by the key's cached hash, then by its names); an unseen key is
    /// cloned in (two `Arc` increments) only then.
    fn stats_mut(&mut self, key: &Key) -> &mut KeyStats {
        let last = self.last;
        let i = if self.keys.get(last).is_some_and(|(k, _)| same_names(k, key)) {
            last
        } else if let Some(&i) = self.index.get(key) {
            i
        } else {
            let i = self.keys.len();
            self.keys.push((key.clone(), KeyStats::new()));
            self.index.insert(key.clone(), i);
            i
        };
        self.last = i;
        &mut self.keys[i].1
    }

    /// Records one finished request that ran over `route`.
    pub fn record(&mut self, route: &Route, finished: &Finished) {
        let o = &mut self.overall;
        o.requests += 1;
        o.attempts += u64::from(finished.attempts);
        o.retries += u64::from(finished.attempts.saturating_sub(1));
        o.cost_nanodollars = o
            .cost_nanodollars
            .saturating_add(finished.cost.nanodollars());
        o.retry_cost_nanodollars = o
            .retry_cost_nanodollars
            .saturating_add(finished.retry_cost.nanodollars());
        match finished.resolution {
            Resolution::Success { fallback_used, .. } => {
                o.successes += 1;
                o.fallbacks += u64::from(fallback_used);
            }
            Resolution::Degraded {
                from: DegradedFrom::Cache,
                ..
            } => o.degraded_cache += 1,
            Resolution::Degraded {
                from: DegradedFrom::Empty,
                ..
            } => o.degraded_empty += 1,
            Resolution::Queued { .. } => o.queued += 1,
            Resolution::Failed { .. } => o.failed += 1,
        }
        if !matches!(finished.resolution, Resolution::Success { .. })
            && finished
                .history
                .attempts()
                .any(|(step, _, _)| step != route.first_step())
        {
            o.fallbacks += 1;
        }
        self.latency.saturating_record(micros(finished.elapsed));

        // Steps already counted for this request (routes longer than 64 steps share bits).
        let mut seen: u64 = 0;
        let mut last_step = None;
        for entry in finished.history.entries() {
            let Some(key) = route.key(entry.step) else {
                continue;
            };
            let stats = self.stats_mut(key);
            match entry.event {
                EntryEvent::Attempt {
                    class,
                    latency,
                    usage,
                    cost,
                    ..
                } => {
                    let bit = 1u64 << (entry.step % 64);
                    if seen & bit == 0 {
                        stats.requests += 1;
                        seen |= bit;
                    }
                    stats.attempts += 1;
                    stats.retries += u64::from(last_step == Some(entry.step));
                    stats.successes += u64::from(class.kind() == ClassKind::Success);
                    stats.classes[class.kind() as usize] += 1;
                    stats.input_tokens += u64::from(usage.input_tokens);
                    stats.output_tokens += u64::from(usage.output_tokens);
                    stats.cost_nanodollars =
                        stats.cost_nanodollars.saturating_add(cost.nanodollars());
                    stats.latency.saturating_record(micros(latency));
                    last_step = Some(entry.step);
                }
                EntryEvent::Skipped(Skip::Breaker(_)) => stats.skipped += 1,
                EntryEvent::Skipped(_) | EntryEvent::Waited { .. } => {}
            }
        }
    }

    /// Records a call answered from the cache before the chain ran (an idempotent
    /// request's cache-first hit): no plan ran, so it is not among the `requests`.
    pub fn record_cache_first_hit(&mut self) {
        self.overall.cache_first_hits += 1;
    }

    /// Records one result delivered through a provider's batch API by `key`: its tokens
    /// and its [`BatchCost`] (billed at the batch price; the synchronous price is kept
    /// to report the saving). No plan ran, so it is not among the `requests`; its cost
    /// is in `cost_dollars`, overall and for the key.
    pub fn record_batch_result(&mut self, key: &Key, usage: Usage, cost: BatchCost) {
        let o = &mut self.overall;
        o.batch_results += 1;
        o.cost_nanodollars = o.cost_nanodollars.saturating_add(cost.batch.nanodollars());
        o.batch_cost_nanodollars = o
            .batch_cost_nanodollars
            .saturating_add(cost.batch.nanodollars());
        o.batch_synchronous_nanodollars = o
            .batch_synchronous_nanodollars
            .saturating_add(cost.synchronous.nanodollars());
        let stats = self.stats_mut(key);
        stats.batch_results += 1;
        stats.input_tokens += u64::from(usage.input_tokens);
        stats.output_tokens += u64::from(usage.output_tokens);
        stats.cost_nanodollars = stats
            .cost_nanodollars
            .saturating_add(cost.batch.nanodollars());
    }

    /// Adds `other`'s counts to these (e.g. the replicas of one simulated fleet).
    pub fn merge(&mut self, other: &Metrics) {
        let (a, b) = (&mut self.overall, &other.overall);
        a.requests += b.requests;
        a.attempts += b.attempts;
        a.retries += b.retries;
        a.fallbacks += b.fallbacks;
        a.successes += b.successes;
        a.degraded_cache += b.degraded_cache;
        a.degraded_empty += b.degraded_empty;
        a.queued += b.queued;
        a.failed += b.failed;
        a.cache_first_hits += b.cache_first_hits;
        a.cost_nanodollars = a.cost_nanodollars.saturating_add(b.cost_nanodollars);
        a.retry_cost_nanodollars = a
            .retry_cost_nanodollars
            .saturating_add(b.retry_cost_nanodollars);
        a.batch_results += b.batch_results;
        a.batch_cost_nanodollars = a
            .batch_cost_nanodollars
            .saturating_add(b.batch_cost_nanodollars);
        a.batch_synchronous_nanodollars = a
            .batch_synchronous_nanodollars
            .saturating_add(b.batch_synchronous_nanodollars);
        // Same bounds on both sides: adding cannot fail.
        let _ = self.latency.add(&other.latency);
        for (key, theirs) in &other.keys {
            let ours = self.stats_mut(key);
            ours.requests += theirs.requests;
            ours.attempts += theirs.attempts;
            ours.retries += theirs.retries;
            ours.successes += theirs.successes;
            for (o, t) in ours.classes.iter_mut().zip(theirs.classes) {
                *o += t;
            }
            ours.skipped += theirs.skipped;
            ours.batch_results += theirs.batch_results;
            ours.input_tokens += theirs.input_tokens;
            ours.output_tokens += theirs.output_tokens;
            ours.cost_nanodollars = ours
                .cost_nanodollars
                .saturating_add(theirs.cost_nanodollars);
            let _ = ours.latency.add(&theirs.latency);
        }
    }

    /// A serialisable view with derived rates and percentiles.
    #[must_use]
    pub fn snapshot(&self) -> MetricsSnapshot {
        let o = self.overall;
        let per_request = |n: u64| ratio(n, o.requests);
        // Keys are unique, so this is the order a map sorted by key would give.
        let mut keys: Vec<&(Key, KeyStats)> = self.keys.iter().collect();
        keys.sort_unstable_by(|a, b| a.0.cmp(&b.0));
        MetricsSnapshot {
            requests: o.requests,
            attempts: o.attempts,
            retries: o.retries,
            fallbacks: o.fallbacks,
            successes: o.successes,
            degraded: o.degraded_cache + o.degraded_empty,
            degraded_cache: o.degraded_cache,
            degraded_empty: o.degraded_empty,
            queued: o.queued,
            failed: o.failed,
            cache_first_hits: o.cache_first_hits,
            retry_rate: per_request(o.retries),
            fallback_rate: per_request(o.fallbacks),
            degraded_rate: per_request(o.degraded_cache + o.degraded_empty),
            failure_rate: per_request(o.failed),
            attempts_per_request: per_request(o.attempts),
            latency: LatencySnapshot::of(&self.latency),
            cost_dollars: o.cost_nanodollars as f64 / 1e9,
            retry_cost_dollars: o.retry_cost_nanodollars as f64 / 1e9,
            batch_results: o.batch_results,
            batch_cost_dollars: o.batch_cost_nanodollars as f64 / 1e9,
            batch_saving_dollars: o
                .batch_synchronous_nanodollars
                .saturating_sub(o.batch_cost_nanodollars) as f64
                / 1e9,
            per_key: keys
                .into_iter()
                .map(|(key, s)| KeySnapshot {
                    provider: key.provider().to_owned(),
                    model: key.model().to_owned(),
                    requests: s.requests,
                    attempts: s.attempts,
                    retries: s.retries,
                    successes: s.successes,
                    rate_limited: s.classes[ClassKind::RateLimited as usize],
                    overloaded: s.classes[ClassKind::Overloaded as usize],
                    retriable: s.classes[ClassKind::Retriable as usize],
                    ambiguous: s.classes[ClassKind::Ambiguous as usize],
                    invalid_output: s.classes[ClassKind::InvalidOutput as usize],
                    non_retriable: s.classes[ClassKind::NonRetriable as usize],
                    skipped_by_breaker: s.skipped,
                    batch_results: s.batch_results,
                    retry_rate: ratio(s.retries, s.requests),
                    input_tokens: s.input_tokens,
                    output_tokens: s.output_tokens,
                    cost_dollars: s.cost_nanodollars as f64 / 1e9,
                    attempt_latency: LatencySnapshot::of(&s.latency),
                })
                .collect(),
        }
    }
}

impl KeyStats {
    fn new() -> KeyStats {
        KeyStats {
            requests: 0,
            attempts: 0,
            retries: 0,
            successes: 0,
            classes: [0; ClassKind::ALL.len()],
            skipped: 0,
            input_tokens: 0,
            output_tokens: 0,
            cost_nanodollars: 0,
            batch_results: 0,
            latency: histogram(),
        }
    }
}

/// Whether two keys are the same by address: equal hashes and the very same provider
/// and model strings (a clone shares them). `false` says nothing; compare by value then.
fn same_names(a: &Key, b: &Key) -> bool {
    a.stable_hash() == b.stable_hash()
        && std::ptr::eq(a.provider(), b.provider())
        && std::ptr::eq(a.model(), b.model())
}

fn ratio(n: u64, d: u64) -> f64 {
    if d == 0 { 0.0 } else { n as f64 / d as f64 }
}

/// Metrics at one moment, ready to serialise.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct MetricsSnapshot {
    /// Requests finished.
    pub requests: u64,
    /// Attempts sent.
    pub attempts: u64,
    /// Attempts after each request's first.
    pub retries: u64,
    /// Requests that sent an attempt to a step after the route's first.
    pub fallbacks: u64,
    /// Requests a provider answered.
    pub successes: u64,
    /// Requests served a degraded result.
    pub degraded: u64,
    /// … from the cache.
    pub degraded_cache: u64,
    /// … as a structured empty result.
    pub degraded_empty: u64,
    /// Requests handed to the durable queue.
    pub queued: u64,
    /// Requests that failed loudly.
    pub failed: u64,
    /// Calls answered from the cache before any chain ran (cache-first, for idempotent
    /// requests); not counted in `requests`. Hits on degradation are `degraded_cache`.
    #[serde(default)]
    pub cache_first_hits: u64,
    /// Retries per request.
    pub retry_rate: f64,
    /// Share of requests that used a fallback.
    pub fallback_rate: f64,
    /// Share of requests served degraded.
    pub degraded_rate: f64,
    /// Share of requests that failed.
    pub failure_rate: f64,
    /// Attempts per request: the load amplification.
    pub attempts_per_request: f64,
    /// End-to-end latency, waits included.
    pub latency: LatencySnapshot,
    /// Dollars spent.
    pub cost_dollars: f64,
    /// Dollars spent on retries and fallbacks.
    pub retry_cost_dollars: f64,
    /// Results delivered through providers' batch APIs (not counted in `requests`).
    #[serde(default)]
    pub batch_results: u64,
    /// Dollars those results cost at batch prices (part of `cost_dollars`).
    #[serde(default)]
    pub batch_cost_dollars: f64,
    /// Dollars those results would have cost more at synchronous prices: the saving.
    #[serde(default)]
    pub batch_saving_dollars: f64,
    /// Per provider and model, sorted.
    pub per_key: Vec<KeySnapshot>,
}

/// One provider/model's share.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct KeySnapshot {
    /// The provider.
    pub provider: String,
    /// The model.
    pub model: String,
    /// Requests that sent this key at least one attempt.
    pub requests: u64,
    /// Attempts sent to it.
    pub attempts: u64,
    /// Attempts that repeated the previous attempt's key.
    pub retries: u64,
    /// Successful attempts.
    pub successes: u64,
    /// Attempts rate-limited.
    pub rate_limited: u64,
    /// Attempts that met overload.
    pub overloaded: u64,
    /// Attempts with a transient fault.
    pub retriable: u64,
    /// Attempts with an ambiguous outcome.
    pub ambiguous: u64,
    /// Attempts whose answer failed the route's validator (billed all the same).
    #[serde(default)]
    pub invalid_output: u64,
    /// Attempts with a non-retriable error.
    pub non_retriable: u64,
    /// Times its breaker turned a request away.
    pub skipped_by_breaker: u64,
    /// Results it delivered through a batch API (their tokens and cost are counted
    /// here too; they are not attempts).
    #[serde(default)]
    pub batch_results: u64,
    /// Retries per request that reached it.
    pub retry_rate: f64,
    /// Prompt tokens billed.
    pub input_tokens: u64,
    /// Completion tokens billed.
    pub output_tokens: u64,
    /// Dollars spent.
    pub cost_dollars: f64,
    /// Per-attempt latency.
    pub attempt_latency: LatencySnapshot,
}

/// Percentiles of a latency histogram, in milliseconds.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct LatencySnapshot {
    /// Median.
    pub p50_ms: f64,
    /// 95th percentile.
    pub p95_ms: f64,
    /// 99th percentile.
    pub p99_ms: f64,
    /// Maximum.
    pub max_ms: f64,
}

impl LatencySnapshot {
    fn of(h: &Histogram<u64>) -> LatencySnapshot {
        let ms = |micros: u64| micros as f64 / 1000.0;
        LatencySnapshot {
            p50_ms: ms(h.value_at_quantile(0.50)),
            p95_ms: ms(h.value_at_quantile(0.95)),
            p99_ms: ms(h.value_at_quantile(0.99)),
            max_ms: ms(h.max()),
        }
    }
}

#[cfg(test)]
mod tests;
