//! The per-policy report: totals, the measures, and the timelines.

use breakwater_core::Time;
use serde::Serialize;

use super::stats::{Recovery, RecoveryInput, herd_index, recovery};
use super::{Collector, Resolution, index};

/// Everything measured for one policy. Serializes with a stable key order.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct PolicyReport {
    /// The policy's name.
    pub policy: String,
    /// Requests finished.
    pub requests: u64,
    /// Attempts sent.
    pub attempts: u64,
    /// How requests ended, as shares of all requests.
    pub shares: Shares,
    /// Attempts per request (amplification).
    pub attempts_per_request: f64,
    /// Peak-to-mean of attempts per 100 ms bucket in the storm window (the whole run
    /// when there is no storm).
    pub herd_index: f64,
    /// The most attempts in any 20 ms window.
    pub peak_attempts_20ms: u64,
    /// Request latency, waits included.
    pub latency_ms: Latency,
    /// Total cost in nanodollars.
    pub cost_nanodollars: u64,
    /// The part spent on retries.
    pub retry_cost_nanodollars: u64,
    /// Dollars per 1,000 requests.
    pub dollars_per_1k: f64,
    /// Retry cost ÷ total cost (0 when nothing cost anything).
    pub retry_cost_share: f64,
    /// Time to recover after the storm.
    pub recovery: Recovery,
    /// Malformed answers: what validators caught and what reached callers.
    pub malformed_output: MalformedOutput,
    /// Per-bucket series.
    pub timeline: Timeline,
}

/// Shares of requests by resolution (each in `[0, 1]`, summing to 1 when any).
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize)]
pub struct Shares {
    /// Answered by a provider.
    pub success: f64,
    /// Degraded (cache or empty).
    pub degraded: f64,
    /// Queued for later.
    pub queued: f64,
    /// Failed.
    pub failed: f64,
}

/// Malformed output (the scenario's per-model `malformed_output` rates): attempts
/// whose output a validator rejected, which are billed and then retried or fallen back
/// from, and requests that succeeded with malformed output because nothing checked it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize)]
pub struct MalformedOutput {
    /// Attempts whose output failed the step's validator.
    pub invalid_attempts: u64,
    /// What those attempts cost, in nanodollars (part of the total cost).
    pub invalid_nanodollars: u64,
    /// The same in dollars per 1,000 requests.
    pub invalid_dollars_per_1k: f64,
    /// Requests that succeeded with malformed output (no validator on the step).
    pub delivered: u64,
    /// The same as a share of all requests.
    pub delivered_share: f64,
    /// What those requests cost, in nanodollars (part of the total cost).
    pub delivered_nanodollars: u64,
    /// The same in dollars per 1,000 requests.
    pub delivered_dollars_per_1k: f64,
}

impl MalformedOutput {
    /// Whether any malformed output was seen, caught or delivered.
    #[must_use]
    pub fn any(&self) -> bool {
        self.invalid_attempts > 0 || self.delivered > 0
    }
}

/// Latency quantiles in milliseconds (HDR histogram, 3 significant digits).
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize)]
pub struct Latency {
    /// Median.
    pub p50: f64,
    /// 95th percentile.
    pub p95: f64,
    /// 99th percentile.
    pub p99: f64,
    /// Maximum.
    pub max: f64,
}

/// Per-bucket series; bucket `i` covers `[i·bucket_s, (i+1)·bucket_s)`.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Timeline {
    /// The bucket width in seconds.
    pub bucket_s: f64,
    /// Attempts per second sent to all providers.
    pub offered_per_s: Vec<f64>,
    /// The providers' summed capacity in requests per second (`None` when any is unbounded).
    pub capacity_per_s: Vec<Option<f64>>,
    /// Success share of requests started in the bucket (`None` when none started).
    pub success_rate: Vec<Option<f64>>,
    /// Retries (attempts after a request's first) per second.
    pub retries_per_s: Vec<f64>,
    /// Attempts whose output failed its validator, per second (by when they ended).
    pub invalid_outputs_per_s: Vec<f64>,
    /// Requests started in the bucket that got malformed output, per second.
    pub malformed_delivered_per_s: Vec<f64>,
    /// The same load and capacity per provider.
    pub providers: Vec<ProviderTimeline>,
}

/// One provider's offered load and capacity per bucket.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct ProviderTimeline {
    /// The provider's name.
    pub name: String,
    /// Attempts per second sent to it.
    pub offered_per_s: Vec<f64>,
    /// Its capacity in requests per second (`None` = unbounded).
    pub capacity_per_s: Vec<Option<f64>>,
}

fn share(n: u64, of: u64) -> f64 {
    if of == 0 { 0.0 } else { n as f64 / of as f64 }
}

pub(super) fn build(
    c: Collector,
    name: &str,
    mut capacity: impl FnMut(usize, Time) -> Option<f64>,
) -> PolicyReport {
    let t = c.totals;
    let n = c.buckets.len();
    let bucket_s = c.config.bucket.as_secs_f64();
    let bucket_ns = u64::try_from(c.config.bucket.as_nanos()).unwrap_or(u64::MAX);
    let per_s = |count: u64| {
        if bucket_s > 0.0 {
            count as f64 / bucket_s
        } else {
            0.0
        }
    };
    let starts: Vec<Time> = (0..n as u64)
        .map(|i| Time::from_nanos(i.saturating_mul(bucket_ns)))
        .collect();
    let providers: Vec<ProviderTimeline> = c
        .config
        .providers
        .iter()
        .enumerate()
        .map(|(p, name)| {
            let counts = c.offered.get(p).map_or(&[][..], Vec::as_slice);
            ProviderTimeline {
                name: name.clone(),
                offered_per_s: (0..n)
                    .map(|i| per_s(counts.get(i).copied().unwrap_or(0)))
                    .collect(),
                capacity_per_s: starts.iter().map(|&s| capacity(p, s)).collect(),
            }
        })
        .collect();
    let capacity_per_s = (0..n)
        .map(|i| {
            providers
                .iter()
                .map(|p| p.capacity_per_s.get(i).copied().flatten())
                .sum::<Option<f64>>()
        })
        .collect();
    let (storm_from, storm_to) = c.config.storm.unwrap_or((Time::ZERO, c.config.end));
    let herd = {
        let lo = index(storm_from, c.herd_ns).min(c.herd.len());
        let to_ns = storm_to.as_nanos();
        let hi = usize::try_from(to_ns.div_ceil(c.herd_ns))
            .unwrap_or(usize::MAX)
            .clamp(lo, c.herd.len());
        herd_index(&c.herd[lo..hi])
    };
    let requests: Vec<u64> = c.buckets.iter().map(|b| b.requests).collect();
    let successes: Vec<u64> = c.buckets.iter().map(|b| b.successes).collect();
    let recovery = recovery(RecoveryInput {
        requests: &requests,
        successes: &successes,
        bucket: c.config.bucket,
        storm: c.config.storm,
        window: c.config.recovery_window,
        tolerance: c.config.recovery_tolerance,
    });
    let q = |quantile: f64| {
        if c.latency_us.is_empty() {
            0.0
        } else {
            c.latency_us.value_at_quantile(quantile) as f64 / 1e3
        }
    };
    PolicyReport {
        policy: name.to_owned(),
        requests: t.requests,
        attempts: t.attempts,
        shares: Shares {
            success: share(t.by_resolution[Resolution::Success as usize], t.requests),
            degraded: share(t.by_resolution[Resolution::Degraded as usize], t.requests),
            queued: share(t.by_resolution[Resolution::Queued as usize], t.requests),
            failed: share(t.by_resolution[Resolution::Failed as usize], t.requests),
        },
        attempts_per_request: share(t.attempts, t.requests),
        herd_index: herd,
        peak_attempts_20ms: c.peak.peak(),
        latency_ms: Latency {
            p50: q(0.5),
            p95: q(0.95),
            p99: q(0.99),
            max: if c.latency_us.is_empty() {
                0.0
            } else {
                c.latency_us.max() as f64 / 1e3
            },
        },
        cost_nanodollars: t.cost,
        retry_cost_nanodollars: t.retry_cost,
        dollars_per_1k: share(t.cost, t.requests) * 1000.0 / 1e9,
        retry_cost_share: share(t.retry_cost, t.cost),
        recovery,
        malformed_output: MalformedOutput {
            invalid_attempts: t.invalid_outputs,
            invalid_nanodollars: t.invalid_cost,
            invalid_dollars_per_1k: share(t.invalid_cost, t.requests) * 1000.0 / 1e9,
            delivered: t.malformed,
            delivered_share: share(t.malformed, t.requests),
            delivered_nanodollars: t.malformed_cost,
            delivered_dollars_per_1k: share(t.malformed_cost, t.requests) * 1000.0 / 1e9,
        },
        timeline: Timeline {
            bucket_s,
            offered_per_s: c.buckets.iter().map(|b| per_s(b.attempts)).collect(),
            capacity_per_s,
            success_rate: c
                .buckets
                .iter()
                .map(|b| (b.requests > 0).then(|| share(b.successes, b.requests)))
                .collect(),
            retries_per_s: c.buckets.iter().map(|b| per_s(b.retries)).collect(),
            invalid_outputs_per_s: c.buckets.iter().map(|b| per_s(b.invalid_outputs)).collect(),
            malformed_delivered_per_s: c.buckets.iter().map(|b| per_s(b.malformed)).collect(),
            providers,
        },
    }
}
