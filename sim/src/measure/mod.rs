//! Per-policy collectors: the engine feeds one [`Collector`] per policy with every
//! attempt it sends and every request it finishes; [`Collector::finish`] turns them
//! into a [`PolicyReport`].
//!
//! Memory stays bounded by the run's length, not its traffic: counts per timeline
//! bucket and per 100 ms herd bucket, a sliding window for the 20 ms peak, and an
//! HDR histogram for latency.

mod stats;
mod summary;

use std::time::Duration;

use breakwater_core::Time;
use hdrhistogram::Histogram;

pub use stats::{PeakWindow, Recovery, RecoveryInput, herd_index, recovery};
pub use summary::{Latency, MalformedOutput, PolicyReport, ProviderTimeline, Shares, Timeline};

use crate::scenario::Scenario;

/// How a request ended (the driver maps the core's resolution to this).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Resolution {
    /// Answered by a provider.
    Success,
    /// Served from cache or an empty, flagged result.
    Degraded,
    /// Accepted for later (deferrable tasks).
    Queued,
    /// Failed.
    Failed,
}

/// One finished request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RequestRecord {
    /// When the caller asked.
    pub start: Time,
    /// When the caller got the result (waits included).
    pub end: Time,
    /// How it ended.
    pub resolution: Resolution,
    /// Attempts sent for it.
    pub attempts: u32,
    /// What it cost, in nanodollars.
    pub cost_nanodollars: u64,
    /// The part of the cost spent on attempts after the first.
    pub retry_cost_nanodollars: u64,
    /// Whether it succeeded with a malformed output that no validator checked.
    pub malformed: bool,
}

/// What the collector measures over, and how.
#[derive(Clone, Debug, PartialEq)]
pub struct MeasureConfig {
    /// The timeline's bucket width.
    pub bucket: Duration,
    /// The end of the run (sizes the timeline; later events extend it).
    pub end: Time,
    /// The storm window, for the herd index and recovery.
    pub storm: Option<(Time, Time)>,
    /// Bucket width of the herd index (100 ms).
    pub herd_bucket: Duration,
    /// Width of the sliding peak window (20 ms).
    pub peak_window: Duration,
    /// Trailing window of the recovery measure (10 s).
    pub recovery_window: Duration,
    /// How close to the pre-storm success rate counts as recovered (0.01).
    pub recovery_tolerance: f64,
    /// The providers' names, in scenario order (attempts name them by index).
    pub providers: Vec<String>,
}

impl MeasureConfig {
    /// The defaults for `scenario`.
    #[must_use]
    pub fn for_scenario(scenario: &Scenario) -> MeasureConfig {
        MeasureConfig {
            bucket: scenario.bucket,
            end: scenario.end(),
            storm: scenario.storm_window(),
            herd_bucket: Duration::from_millis(100),
            peak_window: Duration::from_millis(20),
            recovery_window: Duration::from_secs(10),
            recovery_tolerance: 0.01,
            providers: scenario.providers.iter().map(|p| p.name.clone()).collect(),
        }
    }
}

#[derive(Clone, Copy, Debug, Default)]
struct Bucket {
    attempts: u64,
    retries: u64,
    requests: u64,
    successes: u64,
    invalid_outputs: u64,
    malformed: u64,
}

/// Everything measured for one policy.
#[derive(Clone, Debug)]
pub struct Collector {
    config: MeasureConfig,
    buckets: Vec<Bucket>,
    /// Attempts per provider per bucket.
    offered: Vec<Vec<u64>>,
    herd: Vec<u64>,
    peak: PeakWindow,
    latency_us: Histogram<u64>,
    totals: Totals,
    /// `config.bucket` and `config.herd_bucket` in nanoseconds.
    bucket_ns: u64,
    herd_ns: u64,
}

#[derive(Clone, Copy, Debug, Default)]
struct Totals {
    requests: u64,
    by_resolution: [u64; 4],
    attempts: u64,
    cost: u64,
    retry_cost: u64,
    invalid_outputs: u64,
    invalid_cost: u64,
    malformed: u64,
    malformed_cost: u64,
}

/// A bucket width in whole nanoseconds (at least 1), computed once per collector.
fn width_ns(width: Duration) -> u64 {
    u64::try_from(width.as_nanos()).unwrap_or(u64::MAX).max(1)
}

fn index(t: Time, width_ns: u64) -> usize {
    usize::try_from(t.as_nanos() / width_ns).unwrap_or(usize::MAX)
}

fn slot<T: Default + Clone>(v: &mut Vec<T>, i: usize) -> Option<&mut T> {
    // Past ~1e8 buckets something is wrong with the caller's times; drop, don't OOM.
    if i >= 100_000_000 {
        return None;
    }
    if i >= v.len() {
        v.resize(i + 1, T::default());
    }
    v.get_mut(i)
}

impl Collector {
    /// An empty collector.
    #[must_use]
    pub fn new(config: MeasureConfig) -> Collector {
        let (bucket_ns, herd_ns) = (width_ns(config.bucket), width_ns(config.herd_bucket));
        let n = index(config.end, bucket_ns).max(1);
        let herd = index(config.end, herd_ns).max(1);
        Collector {
            buckets: vec![Bucket::default(); n],
            offered: vec![vec![0; n]; config.providers.len()],
            herd: vec![0; herd],
            peak: PeakWindow::new(config.peak_window),
            // 1 µs to 1 h at 3 significant digits; larger values saturate at the top.
            // These bounds (low ≥ 1, high ≥ 2·low, digits ≤ 5) are valid, so this cannot fail.
            #[allow(clippy::expect_used)]
            latency_us: Histogram::new_with_bounds(1, 3_600_000_000, 3).expect("valid bounds"),
            totals: Totals::default(),
            bucket_ns,
            herd_ns,
            config,
        }
    }

    /// An attempt was sent to `provider` (scenario index) at `at`; `retry` when it is
    /// not the request's first. Times should be non-decreasing (event order).
    pub fn on_attempt(&mut self, at: Time, provider: usize, retry: bool) {
        self.totals.attempts += 1;
        let i = index(at, self.bucket_ns);
        if let Some(b) = slot(&mut self.buckets, i) {
            b.attempts += 1;
            b.retries += u64::from(retry);
        }
        if let Some(per) = self.offered.get_mut(provider) {
            if let Some(c) = slot(per, i) {
                *c += 1;
            }
        }
        if let Some(c) = slot(&mut self.herd, index(at, self.herd_ns)) {
            *c += 1;
        }
        self.peak.push(at);
    }

    /// An attempt's output failed its validator at `at`; it cost `cost_nanodollars`.
    pub fn on_invalid_output(&mut self, at: Time, cost_nanodollars: u64) {
        let t = &mut self.totals;
        t.invalid_outputs += 1;
        t.invalid_cost = t.invalid_cost.saturating_add(cost_nanodollars);
        if let Some(b) = slot(&mut self.buckets, index(at, self.bucket_ns)) {
            b.invalid_outputs += 1;
        }
    }

    /// A request finished.
    pub fn on_request(&mut self, r: &RequestRecord) {
        let t = &mut self.totals;
        t.requests += 1;
        if r.malformed {
            t.malformed += 1;
            t.malformed_cost = t.malformed_cost.saturating_add(r.cost_nanodollars);
        }
        t.by_resolution[r.resolution as usize] += 1;
        t.cost = t.cost.saturating_add(r.cost_nanodollars);
        t.retry_cost = t.retry_cost.saturating_add(r.retry_cost_nanodollars);
        let us = u64::try_from((r.end - r.start).as_micros()).unwrap_or(u64::MAX);
        self.latency_us.saturating_record(us.max(1));
        if let Some(b) = slot(&mut self.buckets, index(r.start, self.bucket_ns)) {
            b.requests += 1;
            b.successes += u64::from(r.resolution == Resolution::Success);
            b.malformed += u64::from(r.malformed);
        }
    }

    /// The report for policy `name`. `capacity(provider, t)` gives a provider's capacity
    /// in requests per second at `t` (`None` = unbounded), e.g. from
    /// [`Server::capacity_per_s`](crate::provider::Server::capacity_per_s); it is
    /// sampled at each bucket's start.
    pub fn finish(
        self,
        name: &str,
        capacity: impl FnMut(usize, Time) -> Option<f64>,
    ) -> PolicyReport {
        summary::build(self, name, capacity)
    }
}

#[cfg(test)]
mod tests;
