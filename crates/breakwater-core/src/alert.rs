//! Rate alerts: a retry rate above a percent or two means something structural is
//! wrong (a rotated key, a per-minute limit that needs a higher tier, a provider in
//! trouble), not bad luck. [`Alarms`] watches, over a sliding window:
//!
//! - the **retry rate** per provider/model key: attempts that repeat the request's
//!   previous step, over all attempts at the key (default threshold 2%);
//! - the **fallback rate** per route: requests answered by a step after the first
//!   (default 5%);
//! - the **degraded rate** per route: requests answered from the cache or with the
//!   empty result (default 1%).
//!
//! It raises an [`Alert`] once when a rate crosses its threshold and clears it once
//! when the rate falls back below the threshold times `clear_below` (hysteresis, so a
//! rate hovering at the threshold does not flap). A raised retry alert names the
//! [`LikelyCause`] when the failed attempts' classes point to one: mostly 429s →
//! quota or tier; mostly 401/403 → API keys; mostly 529/503/timeouts → the provider.
//!
//! Pure like the rest of the core: time comes in as an argument, alerts go out through
//! [`Alarms::poll_alert`]. The driver feeds every finished request to
//! [`Alarms::observe`] and turns alerts into log lines and metrics. Rates are judged
//! when a request of the route is observed, so a route that falls silent keeps its
//! alerts until its next request.
//!
//! ```
//! # use std::time::Duration;
//! # use breakwater_core::alert::{AlertConfig, Alarms, AlertState, Signal};
//! # use breakwater_core::*;
//! # use breakwater_core::plan::{Entry, EntryEvent, History};
//! let config: RouteConfig = toml::from_str(r#"
//!     name = "chat"
//!     [[step]]
//!     provider = "anthropic"
//!     model = "claude-sonnet-4-5"
//! "#).unwrap();
//! let registry = Registry::new(RegistryConfig::default()).unwrap();
//! let route = Route::bind(&config, &registry, &PriceTable::new()).unwrap();
//! let mut alarms = Alarms::new(AlertConfig { min_attempts: 10, ..AlertConfig::default() });
//! // ... for every finished request: alarms.observe(now, &route, &finished);
//! while let Some(alert) = alarms.poll_alert() {
//!     println!("{alert}"); // or tracing::warn!, and a metric
//! }
//! ```

use std::collections::{HashMap, VecDeque};
use std::fmt;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::class::{Class, Fatal};
use crate::key::KeyHasher;
use crate::plan::{EntryEvent, Finished, Resolution};
use crate::route::Route;
use crate::time::serde_ms;
use crate::{Key, Time};

/// Thresholds and the window of [`Alarms`].
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AlertConfig {
    /// How far back the rates look (default 5 minutes).
    #[serde(rename = "window_ms", with = "serde_ms")]
    pub window: Duration,
    /// Retries over attempts, per key, above which an alert is raised (default 0.02).
    pub retry_rate: f64,
    /// Requests answered by a fallback step, per route (default 0.05).
    pub fallback_rate: f64,
    /// Requests answered degraded, per route (default 0.01).
    pub degraded_rate: f64,
    /// A raised alert clears when its rate falls to or below `threshold ×
    /// clear_below` (default 0.5).
    pub clear_below: f64,
    /// Attempts (for a key) or requests (for a route) the window must hold before its
    /// rate is judged at all (default 100): three retries in the first ten calls of
    /// the day are not a trend.
    pub min_attempts: u32,
}

impl Default for AlertConfig {
    fn default() -> AlertConfig {
        AlertConfig {
            window: Duration::from_secs(300),
            retry_rate: 0.02,
            fallback_rate: 0.05,
            degraded_rate: 0.01,
            clear_below: 0.5,
            min_attempts: 100,
        }
    }
}

/// Which rate an alert is about.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Signal {
    /// Retries over attempts at a provider/model key.
    RetryRate,
    /// Requests answered by a fallback step, of a route.
    FallbackRate,
    /// Requests answered degraded, of a route.
    DegradedRate,
}

impl Signal {
    /// A stable snake_case name, for metric labels.
    #[must_use]
    pub const fn name(self) -> &'static str {
        match self {
            Signal::RetryRate => "retry_rate",
            Signal::FallbackRate => "fallback_rate",
            Signal::DegradedRate => "degraded_rate",
        }
    }
}

/// What the failed attempts behind a retry alert point to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LikelyCause {
    /// Mostly 429s: the account's quota or rate-limit tier is too small for the load.
    QuotaOrTier,
    /// Mostly 401/403: a key was rotated, revoked or lacks a permission.
    Keys,
    /// Mostly 529/503, 5xx and timeouts: the provider is overloaded or failing.
    ProviderTrouble,
}

impl fmt::Display for LikelyCause {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            LikelyCause::QuotaOrTier => "mostly 429s: quota or rate-limit tier",
            LikelyCause::Keys => "mostly 401/403: API keys",
            LikelyCause::ProviderTrouble => "mostly 529/503/5xx/timeouts: provider overload",
        })
    }
}

/// Whether an alert starts or ends.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum AlertState {
    /// The rate crossed its threshold.
    Raised {
        /// The likely cause, for retry alerts whose failures point to one.
        cause: Option<LikelyCause>,
    },
    /// The rate fell back below the clearing level.
    Cleared,
}

/// What an alert is about: a provider/model key or a route.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Scope {
    /// A provider and model.
    Key(Key),
    /// A route, by name.
    Route(String),
}

impl fmt::Display for Scope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Scope::Key(key) => write!(f, "{key}"),
            Scope::Route(name) => write!(f, "route {name}"),
        }
    }
}

/// One alert raised or cleared.
#[derive(Clone, Debug, PartialEq)]
pub struct Alert {
    /// When it was decided.
    pub at: Time,
    /// The key or route.
    pub scope: Scope,
    /// Which rate.
    pub signal: Signal,
    /// Raised or cleared.
    pub state: AlertState,
    /// The rate over the window when decided.
    pub rate: f64,
    /// The threshold it was judged against.
    pub threshold: f64,
    /// Attempts or requests in the window.
    pub samples: u64,
}

impl fmt::Display for Alert {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let what = self.signal.name();
        let pct = self.rate * 100.0;
        let limit = self.threshold * 100.0;
        match self.state {
            AlertState::Raised { cause } => {
                write!(
                    f,
                    "{}: {what} {pct:.1}% above {limit:.1}% over {} samples",
                    self.scope, self.samples
                )?;
                if let Some(cause) = cause {
                    write!(f, " ({cause})")?;
                }
                Ok(())
            }
            AlertState::Cleared => write!(f, "{}: {what} back to {pct:.1}%", self.scope),
        }
    }
}

/// The sliding windows and alert states of every key and route seen.
#[derive(Debug)]
pub struct Alarms {
    config: AlertConfig,
    /// A bucket's width: a tenth of the window, in nanoseconds (at least one).
    bucket_ns: u64,
    /// Looked up on every request, so hashed (a key's hash is computed once, when it
    /// is made, and a key compares by pointer first); [`Alarms::raised`] sorts.
    keys: HashMap<Key, Tracked, KeyHasher>,
    routes: HashMap<String, Tracked, KeyHasher>,
    alerts: VecDeque<Alert>,
}

/// One window with the states of the signals judged on it.
#[derive(Debug, Default)]
struct Tracked {
    window: Window,
    /// Raised signals (a scope has at most two).
    raised: Vec<Signal>,
}

/// Counts in time buckets; the window is `BUCKETS` buckets wide.
#[derive(Debug, Default)]
struct Window {
    buckets: VecDeque<(u64, Counts)>,
    /// The sum of `buckets`, kept as they come and go: judging a request's rates
    /// reads it instead of adding up the buckets.
    sum: Counts,
}

/// How many buckets a window has: rates move in steps of a tenth of the window.
const BUCKETS: u64 = 10;

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
struct Counts {
    /// Attempts (key) or requests (route).
    total: u64,
    /// Retries (key) — or fallbacks (route).
    retries: u64,
    /// Degraded requests (route).
    degraded: u64,
    /// Failed attempts by cause (key).
    rate_limited: u64,
    unauthorized: u64,
    trouble: u64,
}

impl Counts {
    fn add(&mut self, other: &Counts) {
        self.total += other.total;
        self.retries += other.retries;
        self.degraded += other.degraded;
        self.rate_limited += other.rate_limited;
        self.unauthorized += other.unauthorized;
        self.trouble += other.trouble;
    }

    /// Takes away `other`, which was added before.
    fn sub(&mut self, other: &Counts) {
        self.total -= other.total;
        self.retries -= other.retries;
        self.degraded -= other.degraded;
        self.rate_limited -= other.rate_limited;
        self.unauthorized -= other.unauthorized;
        self.trouble -= other.trouble;
    }
}

impl Window {
    /// Adds `counts` to `bucket` (the newest, or a new one after it).
    fn record(&mut self, bucket: u64, counts: &Counts) {
        match self.buckets.back_mut() {
            Some((b, newest)) if *b == bucket => newest.add(counts),
            _ => self.buckets.push_back((bucket, *counts)),
        }
        self.sum.add(counts);
    }

    /// The totals of the buckets within the window ending at `bucket`; older buckets
    /// are dropped.
    fn totals(&mut self, bucket: u64) -> Counts {
        while let Some(&(b, old)) = self.buckets.front() {
            if b + BUCKETS <= bucket {
                self.buckets.pop_front();
                self.sum.sub(&old);
            } else {
                break;
            }
        }
        self.sum
    }
}

impl Alarms {
    /// Windows start empty; no alert is raised.
    #[must_use]
    pub fn new(config: AlertConfig) -> Alarms {
        let width = (config.window.as_nanos() / u128::from(BUCKETS)).max(1);
        Alarms {
            config,
            // A tenth of a window over 584 years is past any clock reading: one
            // bucket, as it was.
            bucket_ns: u64::try_from(width).unwrap_or(u64::MAX),
            keys: HashMap::default(),
            routes: HashMap::default(),
            alerts: VecDeque::new(),
        }
    }

    /// The thresholds in force.
    #[must_use]
    pub fn config(&self) -> &AlertConfig {
        &self.config
    }

    /// Counts one finished request of `route` and judges the rates it touched. Times
    /// must not go backwards (an earlier `now` is counted in the latest bucket).
    pub fn observe(&mut self, now: Time, route: &Route, finished: &Finished) {
        let bucket = self.bucket(now);
        let mut previous_step = None;
        for entry in finished.history.entries() {
            let EntryEvent::Attempt { class, .. } = entry.event else {
                continue;
            };
            let Some(key) = route.key(entry.step) else {
                continue;
            };
            let retry = previous_step == Some(entry.step);
            previous_step = Some(entry.step);
            // Looked up before inserting: `entry` needs an owned key, and cloning one
            // on every attempt is two atomic reference-count updates.
            let tracked = match self.keys.get_mut(key) {
                Some(tracked) => tracked,
                None => self.keys.entry(key.clone()).or_default(),
            };
            let mut counts = Counts {
                total: 1,
                retries: u64::from(retry),
                ..Counts::default()
            };
            match class {
                Class::RateLimited { .. } => counts.rate_limited = 1,
                Class::NonRetriable(Fatal::Unauthorized) => counts.unauthorized = 1,
                Class::Overloaded { .. } | Class::Retriable => counts.trouble = 1,
                _ => {}
            }
            tracked.window.record(bucket, &counts);
        }
        let (fallback, degraded) = match finished.resolution {
            Resolution::Success { fallback_used, .. } => (fallback_used, false),
            Resolution::Degraded { .. } => (false, true),
            Resolution::Queued { .. } | Resolution::Failed { .. } => (false, false),
        };
        let tracked = match self.routes.get_mut(route.name()) {
            Some(tracked) => tracked,
            None => self.routes.entry(route.name().to_owned()).or_default(),
        };
        let counts = Counts {
            total: 1,
            retries: u64::from(fallback),
            degraded: u64::from(degraded),
            ..Counts::default()
        };
        tracked.window.record(bucket, &counts);
        self.judge(now, bucket, route);
    }

    /// The next alert raised or cleared, oldest first.
    pub fn poll_alert(&mut self) -> Option<Alert> {
        self.alerts.pop_front()
    }

    /// The signals raised now, by scope, in a stable order.
    #[must_use]
    pub fn raised(&self) -> Vec<(Scope, Signal)> {
        let keys = self
            .keys
            .iter()
            .flat_map(|(key, t)| t.raised.iter().map(|s| (Scope::Key(key.clone()), *s)));
        let routes = self
            .routes
            .iter()
            .flat_map(|(name, t)| t.raised.iter().map(|s| (Scope::Route(name.clone()), *s)));
        let mut raised: Vec<(Scope, Signal)> = keys.chain(routes).collect();
        // Stable: a scope's signals stay in the order they were raised.
        raised.sort_by(|a, b| a.0.cmp(&b.0));
        raised
    }

    fn bucket(&self, now: Time) -> u64 {
        now.as_nanos() / self.bucket_ns
    }

    /// Judges the keys of `route` and the route itself, in `bucket` (that of `now`).
    fn judge(&mut self, now: Time, bucket: u64, route: &Route) {
        let config = self.config;
        for step in 0..route.len() {
            let Some(key) = route.key(step) else { continue };
            let Some(tracked) = self.keys.get_mut(key) else {
                continue;
            };
            let totals = tracked.window.totals(bucket);
            let cause = likely_cause(&totals);
            let scope = || Scope::Key(key.clone());
            let judged = Judged::new(&config, totals.total, totals.retries, config.retry_rate);
            judged.apply(
                now,
                tracked,
                Signal::RetryRate,
                cause,
                scope,
                &mut self.alerts,
            );
        }
        if let Some(tracked) = self.routes.get_mut(route.name()) {
            let totals = tracked.window.totals(bucket);
            let scope = || Scope::Route(route.name().to_owned());
            let fallback = Judged::new(&config, totals.total, totals.retries, config.fallback_rate);
            fallback.apply(
                now,
                tracked,
                Signal::FallbackRate,
                None,
                scope,
                &mut self.alerts,
            );
            let degraded =
                Judged::new(&config, totals.total, totals.degraded, config.degraded_rate);
            degraded.apply(
                now,
                tracked,
                Signal::DegradedRate,
                None,
                scope,
                &mut self.alerts,
            );
        }
    }
}

/// One rate judged against its threshold.
struct Judged {
    samples: u64,
    rate: f64,
    threshold: f64,
    clear_at: f64,
    enough: bool,
}

impl Judged {
    fn new(config: &AlertConfig, total: u64, hits: u64, threshold: f64) -> Judged {
        #[allow(clippy::cast_precision_loss)] // counts far below 2^52
        let rate = if total == 0 {
            0.0
        } else {
            hits as f64 / total as f64
        };
        Judged {
            samples: total,
            rate,
            threshold,
            clear_at: threshold * config.clear_below,
            enough: total >= u64::from(config.min_attempts),
        }
    }

    /// Raises or clears `signal` on `tracked` if the rate says so.
    fn apply(
        &self,
        now: Time,
        tracked: &mut Tracked,
        signal: Signal,
        cause: Option<LikelyCause>,
        scope: impl Fn() -> Scope,
        alerts: &mut VecDeque<Alert>,
    ) {
        let raised = tracked.raised.contains(&signal);
        let state = if !raised && self.enough && self.rate > self.threshold {
            tracked.raised.push(signal);
            AlertState::Raised { cause }
        } else if raised && self.rate <= self.clear_at {
            // Clearing needs no minimum: a window that has emptied has no retries.
            tracked.raised.retain(|s| *s != signal);
            AlertState::Cleared
        } else {
            return;
        };
        alerts.push_back(Alert {
            at: now,
            scope: scope(),
            signal,
            state,
            rate: self.rate,
            threshold: self.threshold,
            samples: self.samples,
        });
    }
}

/// The cause most failed attempts point to, if more than half point to one.
fn likely_cause(counts: &Counts) -> Option<LikelyCause> {
    let failed = counts.rate_limited + counts.unauthorized + counts.trouble;
    [
        (counts.rate_limited, LikelyCause::QuotaOrTier),
        (counts.unauthorized, LikelyCause::Keys),
        (counts.trouble, LikelyCause::ProviderTrouble),
    ]
    .into_iter()
    .find(|(n, _)| *n * 2 > failed)
    .map(|(_, cause)| cause)
}

#[cfg(test)]
mod tests;
