//! Metrics through the [`metrics`] facade, and `tracing` events for breaker
//! transitions.
//!
//! Every driver in this crate (the [`Client`](crate::Client), the
//! [tower layer](crate::tower) and the [middleware](crate::middleware)) reports what
//! its plan did through an [`Observer`]: it reads the plan's [`History`] as entries are
//! added (after each attempt) and the [`Finished`] request at the end, so the numbers
//! are the plan's own facts, not a second account of them. Nothing is recorded unless
//! the application installs a recorder (`metrics-exporter-prometheus`, …); without
//! one each call is a no-op. [`describe`] registers the descriptions and units below.
//!
//! | name | kind | labels | what |
//! |---|---|---|---|
//! | `breakwater_requests_total` | counter | `route`, `kind`, `resolution` | finished requests; `kind` is `interactive`, `deferrable` or `critical`; `resolution` is `success`, `degraded`, `queued` or `failed` |
//! | `breakwater_request_duration_seconds` | histogram | `route`, `resolution` | from a request's start to its finish, waits included |
//! | `breakwater_attempts_total` | counter | `provider`, `model`, `class` | attempts by the class the plan gave their outcome (`success`, `retriable`, `rate_limited`, `overloaded`, `ambiguous`, `non_retriable`) |
//! | `breakwater_attempt_duration_seconds` | histogram | `provider`, `model` | from an attempt's send to its outcome |
//! | `breakwater_wait_seconds` | histogram | `provider`, `model`, `source` | retry delays; `source` is `retry_after` (the server's hint) or `backoff` |
//! | `breakwater_skips_total` | counter | `provider`, `model`, `reason` | steps or retries passed over: `breaker`, `budget`, `cost_ceiling`, `wait_beyond_deadline`, `no_time_left` |
//! | `breakwater_tokens_total` | counter | `provider`, `model`, `direction` | tokens billed, `direction` `input` or `output` |
//! | `breakwater_cost_nanodollars_total` | counter | `provider`, `model` | what attempts cost, in billionths of a dollar (a counter must count integers; divide by 10⁹ for dollars) |
//! | `breakwater_fallbacks_total` | counter | `route` | requests in which an attempt went to a step after the route's first |
//! | `breakwater_degraded_total` | counter | `route`, `from` | requests answered with a degraded result, `from` `cache` or `empty` |
//! | `breakwater_cache_hits_total` | counter | `route`, `use` | answers served from the response cache: `use` is `first` (an idempotent request's cache-first lookup, before any attempt) or `degradation` (the chain could not answer) |
//! | `breakwater_alerts_total` | counter | `scope`, `signal`, `state` | rate alerts ([`breakwater_core::alert`]) raised or cleared: `scope` is `provider/model` or `route:name`, `signal` `retry_rate`, `fallback_rate` or `degraded_rate`, `state` `raised` or `cleared` |
//! | `breakwater_alert_active` | gauge | `scope`, `signal` | 1 while the alert is raised, 0 once cleared |
//! | `breakwater_breaker_transitions_total` | counter | `key`, `to`, `cause` | breaker state changes; `key` is `provider/model`, `to` is `closed`, `open`, `half_open` or `isolated`, `cause` as [`Cause::name`](breakwater_core::breaker::Cause::name) |
//!
//! `provider` and `model` are the names of the route's step (as configured), `route` the
//! route's name: never a URL, a header or a key. A breaker transition is also a
//! `tracing` event (target `breakwater::breaker`, `warn` when it opens, `info`
//! otherwise) with `key`, `from`, `to` and `cause`. The core queues each transition
//! once ([`Breaker::poll_event`](breakwater_core::Breaker::poll_event)); whichever
//! request's observer drains it reports it, so each is counted once per process.

use std::sync::Arc;

use crate::metric_keys::{self, RouteKeys, StepKeys};
use breakwater_core::alert::{Alert, AlertState, Scope};
use breakwater_core::breaker::StateKind;
use breakwater_core::plan::{DegradedFrom, EntryEvent, Finished, History, Resolution, Skip};
use breakwater_core::{BreakerEvent, Key, Route, TaskKind};
use metrics::{
    SharedString, Unit, counter, describe_counter, describe_gauge, describe_histogram, gauge,
    histogram,
};

/// Finished requests: `route`, `kind`, `resolution`.
pub const REQUESTS_TOTAL: &str = "breakwater_requests_total";
/// Request duration in seconds: `route`, `resolution`.
pub const REQUEST_DURATION_SECONDS: &str = "breakwater_request_duration_seconds";
/// Attempts: `provider`, `model`, `class`.
pub const ATTEMPTS_TOTAL: &str = "breakwater_attempts_total";
/// Attempt duration in seconds: `provider`, `model`.
pub const ATTEMPT_DURATION_SECONDS: &str = "breakwater_attempt_duration_seconds";
/// Retry delays in seconds: `provider`, `model`, `source`.
pub const WAIT_SECONDS: &str = "breakwater_wait_seconds";
/// Steps or retries passed over: `provider`, `model`, `reason`.
pub const SKIPS_TOTAL: &str = "breakwater_skips_total";
/// Tokens billed: `provider`, `model`, `direction`.
pub const TOKENS_TOTAL: &str = "breakwater_tokens_total";
/// Cost in nanodollars: `provider`, `model`.
pub const COST_NANODOLLARS_TOTAL: &str = "breakwater_cost_nanodollars_total";
/// Requests that used a fallback step: `route`.
pub const FALLBACKS_TOTAL: &str = "breakwater_fallbacks_total";
/// Degraded answers: `route`, `from`.
pub const DEGRADED_TOTAL: &str = "breakwater_degraded_total";
/// Cache hits: `route`, `use` (`first` or `degradation`).
pub const CACHE_HITS_TOTAL: &str = "breakwater_cache_hits_total";
/// Rate alerts raised or cleared: `scope`, `signal`, `state`.
pub const ALERTS_TOTAL: &str = "breakwater_alerts_total";
/// Whether a rate alert is raised (1) or not (0): `scope`, `signal`.
pub const ALERT_ACTIVE: &str = "breakwater_alert_active";
/// Breaker state changes: `key`, `to`, `cause`.
pub const BREAKER_TRANSITIONS_TOTAL: &str = "breakwater_breaker_transitions_total";

/// Registers the description and unit of every metric above with the installed
/// recorder (call once, after installing it).
pub fn describe() {
    describe_counter!(
        CACHE_HITS_TOTAL,
        "Answers served from the response cache, by use"
    );
    describe_counter!(ALERTS_TOTAL, "Rate alerts raised or cleared");
    describe_gauge!(ALERT_ACTIVE, "1 while a rate alert is raised");
    describe_counter!(
        REQUESTS_TOTAL,
        "Finished requests by route, task kind and resolution"
    );
    describe_histogram!(
        REQUEST_DURATION_SECONDS,
        Unit::Seconds,
        "Request duration, waits included"
    );
    describe_counter!(ATTEMPTS_TOTAL, "Attempts by provider, model and class");
    describe_histogram!(
        ATTEMPT_DURATION_SECONDS,
        Unit::Seconds,
        "Attempt duration, send to outcome"
    );
    describe_histogram!(WAIT_SECONDS, Unit::Seconds, "Retry delays");
    describe_counter!(SKIPS_TOTAL, "Steps or retries passed over, by reason");
    describe_counter!(TOKENS_TOTAL, "Tokens billed, by direction");
    describe_counter!(COST_NANODOLLARS_TOTAL, "Attempt cost in nanodollars");
    describe_counter!(FALLBACKS_TOTAL, "Requests that used a fallback step");
    describe_counter!(DEGRADED_TOTAL, "Requests answered with a degraded result");
    describe_counter!(BREAKER_TRANSITIONS_TOTAL, "Circuit breaker state changes");
}

/// Reports one request's plan: feed it the history after each attempt
/// ([`update`](Self::update)) and the finished request at the end
/// ([`finish`](Self::finish)). Each history entry is reported once.
#[derive(Debug)]
pub struct Observer<'r> {
    route: &'r Route,
    kind: TaskKind,
    /// History entries already reported.
    seen: usize,
    /// The `provider` and `model` labels of the step last reported. Shared strings: each
    /// metric's labels then count references instead of copying names, which matters
    /// because the `metrics` macros build their labels even when no recorder is
    /// installed.
    labels: Option<(usize, SharedString, SharedString)>,
    /// The route's ready keys of its hot series, when the driver keeps them.
    keys: Option<&'r RouteKeys>,
}

impl<'r> Observer<'r> {
    /// An observer of a `kind` request over `route`.
    #[must_use]
    pub fn new(route: &'r Route, kind: TaskKind) -> Observer<'r> {
        Observer {
            route,
            kind,
            seen: 0,
            labels: None,
            keys: None,
        }
    }

    /// An observer that reports the hot series through `keys`, built once for `route`
    /// (see [`metric_keys`]), instead of building each key per
    /// call.
    #[must_use]
    pub(crate) fn with_keys(route: &'r Route, kind: TaskKind, keys: &'r RouteKeys) -> Observer<'r> {
        Observer {
            keys: Some(keys),
            ..Observer::new(route, kind)
        }
    }

    /// Reports the entries added to `history` since the last call (attempts, waits,
    /// skips) and the transitions the route's breakers queued meanwhile.
    pub fn update(&mut self, history: &History) {
        for entry in history.entries().skip(self.seen) {
            if let (Some(keys), EntryEvent::Attempt { .. }) = (self.keys, &entry.event)
                && let Some(step) = keys.step(entry.step)
                && attempt_metrics(step, &entry.event)
            {
                continue;
            }
            let Some(key) = self.route.key(entry.step) else {
                continue;
            };
            let (provider, model) = match &self.labels {
                Some((step, provider, model)) if *step == entry.step => (provider, model),
                _ => {
                    let labels = self.labels.insert((
                        entry.step,
                        shared(key.provider()),
                        shared(key.model()),
                    ));
                    (&labels.1, &labels.2)
                }
            };
            entry_metrics(provider, model, &entry.event);
        }
        self.seen = self.seen.max(history.len());
        breaker_transitions(self.route);
    }

    /// Reports what [`update`](Self::update) has not yet, then the request itself.
    pub fn finish(&mut self, finished: &Finished) {
        self.update(&finished.history);
        let route = || shared(self.route.name());
        let resolution = resolution_name(&finished.resolution);
        if let Some(keys) = self.keys {
            metric_keys::increment(keys.requests(self.kind, &finished.resolution), 1);
            metric_keys::record(
                keys.duration(&finished.resolution),
                finished.elapsed.as_secs_f64(),
            );
        } else {
            let route = route();
            counter!(
                REQUESTS_TOTAL,
                "route" => route.clone(),
                "kind" => kind_name(self.kind),
                "resolution" => resolution,
            )
            .increment(1);
            histogram!(
                REQUEST_DURATION_SECONDS,
                "route" => route,
                "resolution" => resolution,
            )
            .record(finished.elapsed.as_secs_f64());
        }
        if used_fallback(finished) {
            counter!(FALLBACKS_TOTAL, "route" => route()).increment(1);
        }
        if let Resolution::Degraded { from, .. } = finished.resolution {
            let from = match from {
                DegradedFrom::Cache => "cache",
                DegradedFrom::Empty => "empty",
            };
            counter!(DEGRADED_TOTAL, "route" => route(), "from" => from).increment(1);
            if from == "cache" {
                counter!(CACHE_HITS_TOTAL, "route" => route(), "use" => "degradation").increment(1);
            }
        }
    }
}

/// Reports an idempotent request of `route` answered from the cache before any attempt.
pub fn cache_first_hit(route: &str) {
    counter!(CACHE_HITS_TOTAL, "route" => route.to_owned(), "use" => "first").increment(1);
}

/// Reports a rate alert: a counter, a gauge, and a `tracing` event (target
/// `breakwater::alert`; `warn` when raised, `info` when cleared).
pub fn alert(alert: &Alert) {
    let scope = match &alert.scope {
        Scope::Key(key) => key.to_string(),
        Scope::Route(name) => format!("route:{name}"),
    };
    let signal = alert.signal.name();
    match alert.state {
        AlertState::Raised { cause } => {
            let cause = cause.map(|c| c.to_string());
            tracing::warn!(
                target: "breakwater::alert",
                scope = %scope,
                signal,
                rate = alert.rate,
                threshold = alert.threshold,
                samples = alert.samples,
                cause = cause.as_deref().unwrap_or("unknown"),
                "{alert}"
            );
            counter!(ALERTS_TOTAL, "scope" => scope.clone(), "signal" => signal, "state" => "raised")
                .increment(1);
            gauge!(ALERT_ACTIVE, "scope" => scope, "signal" => signal).set(1.0);
        }
        AlertState::Cleared => {
            tracing::info!(
                target: "breakwater::alert",
                scope = %scope,
                signal,
                rate = alert.rate,
                "{alert}"
            );
            counter!(ALERTS_TOTAL, "scope" => scope.clone(), "signal" => signal, "state" => "cleared")
                .increment(1);
            gauge!(ALERT_ACTIVE, "scope" => scope, "signal" => signal).set(0.0);
        }
    }
}

/// A label value that clones as a reference count.
fn shared(name: &str) -> SharedString {
    SharedString::from(Arc::<str>::from(name))
}

/// The metrics of an attempt entry through the step's ready keys; `false` (nothing
/// recorded) for any other entry or a class without a key.
fn attempt_metrics(keys: &StepKeys, event: &EntryEvent) -> bool {
    let EntryEvent::Attempt {
        class,
        latency,
        usage,
        cost,
        ..
    } = *event
    else {
        return false;
    };
    let Some(attempts) = keys.attempts(class.kind()) else {
        return false;
    };
    metric_keys::increment(attempts, 1);
    metric_keys::record(&keys.attempt_duration, latency.as_secs_f64());
    metric_keys::increment(&keys.tokens[0], u64::from(usage.input_tokens));
    metric_keys::increment(&keys.tokens[1], u64::from(usage.output_tokens));
    metric_keys::increment(&keys.cost, cost.nanodollars());
    true
}

/// The metrics of one history entry at the step labelled `provider` and `model`.
fn entry_metrics(provider: &SharedString, model: &SharedString, event: &EntryEvent) {
    match *event {
        EntryEvent::Attempt {
            class,
            latency,
            usage,
            cost,
            ..
        } => {
            counter!(
                ATTEMPTS_TOTAL,
                "provider" => provider.clone(),
                "model" => model.clone(),
                "class" => class.kind().name(),
            )
            .increment(1);
            histogram!(
                ATTEMPT_DURATION_SECONDS,
                "provider" => provider.clone(),
                "model" => model.clone(),
            )
            .record(latency.as_secs_f64());
            for (direction, tokens) in [
                ("input", usage.input_tokens),
                ("output", usage.output_tokens),
            ] {
                counter!(
                    TOKENS_TOTAL,
                    "provider" => provider.clone(),
                    "model" => model.clone(),
                    "direction" => direction,
                )
                .increment(u64::from(tokens));
            }
            counter!(COST_NANODOLLARS_TOTAL, "provider" => provider.clone(), "model" => model.clone())
                .increment(cost.nanodollars());
        }
        EntryEvent::Waited { wait, retry_after } => {
            let source = if retry_after {
                "retry_after"
            } else {
                "backoff"
            };
            histogram!(
                WAIT_SECONDS,
                "provider" => provider.clone(),
                "model" => model.clone(),
                "source" => source,
            )
            .record(wait.as_secs_f64());
        }
        EntryEvent::Skipped(skip) => {
            counter!(
                SKIPS_TOTAL,
                "provider" => provider.clone(),
                "model" => model.clone(),
                "reason" => skip_name(&skip),
            )
            .increment(1);
        }
    }
}

/// Drains every breaker of `route` and reports each transition.
fn breaker_transitions(route: &Route) {
    for step in 0..route.len() {
        let (Some(breaker), Some(key)) = (route.breaker(step), route.key(step)) else {
            continue;
        };
        while let Some(event) = breaker.poll_event() {
            transition(key, &event);
        }
    }
}

/// One breaker transition: a counter and a `tracing` event.
fn transition(key: &Key, event: &BreakerEvent) {
    if event.to == StateKind::Open {
        tracing::warn!(
            target: "breakwater::breaker",
            key = %key,
            from = %event.from,
            to = %event.to,
            cause = %event.cause,
            "circuit breaker transition",
        );
    } else {
        tracing::info!(
            target: "breakwater::breaker",
            key = %key,
            from = %event.from,
            to = %event.to,
            cause = %event.cause,
            "circuit breaker transition",
        );
    }
    counter!(
        BREAKER_TRANSITIONS_TOTAL,
        "key" => key.to_string(),
        "to" => event.to.name(),
        "cause" => event.cause.name(),
    )
    .increment(1);
}

/// Whether an attempt went to a step other than the request's first. The plan's first
/// history entry is always at the route's first step, so any attempt at another
/// step is a fallback's.
fn used_fallback(finished: &Finished) -> bool {
    if let Resolution::Success { fallback_used, .. } = finished.resolution {
        return fallback_used;
    }
    let Some(first) = finished.history.entries().next().map(|e| e.step) else {
        return false;
    };
    finished
        .history
        .attempts()
        .any(|(step, _, _)| step != first)
}

/// The `kind` label.
#[must_use]
pub const fn kind_name(kind: TaskKind) -> &'static str {
    match kind {
        TaskKind::Interactive => "interactive",
        TaskKind::Deferrable => "deferrable",
        TaskKind::Critical => "critical",
    }
}

/// The `resolution` label.
#[must_use]
pub const fn resolution_name(resolution: &Resolution) -> &'static str {
    match resolution {
        Resolution::Success { .. } => "success",
        Resolution::Degraded { .. } => "degraded",
        Resolution::Queued { .. } => "queued",
        Resolution::Failed { .. } => "failed",
    }
}

/// The `reason` label of a skip.
#[must_use]
pub const fn skip_name(skip: &Skip) -> &'static str {
    match skip {
        Skip::Breaker(_) => "breaker",
        Skip::Budget(_) => "budget",
        Skip::CostCeiling => "cost_ceiling",
        Skip::WaitBeyondDeadline { .. } => "wait_beyond_deadline",
        Skip::NoTimeLeft => "no_time_left",
    }
}
