//! The metric keys of a route's hot series, built once per route instead of once per
//! call.
//!
//! A `metrics` macro with run-time labels builds its [`Key`] on every use — a label
//! vector, the label values, a hash — before it asks the recorder for a handle. The
//! series every successful request touches (`breakwater_requests_total`,
//! `breakwater_request_duration_seconds`, `breakwater_attempts_total`,
//! `breakwater_attempt_duration_seconds`, `breakwater_tokens_total`,
//! `breakwater_cost_nanodollars_total`) have labels fixed by the route, so their keys
//! are built here when the client is, and each use only asks the *current* recorder
//! for the handle of a ready key: the same registration as the macro's, against
//! whichever recorder is installed at that moment, without the building. Rarer series
//! (waits, skips, fallbacks, degraded answers, alerts, breaker transitions) keep the
//! macros.

use breakwater_core::plan::Resolution;
use breakwater_core::{ClassKind, Route, TaskKind};
use metrics::{Key, Label, Level, Metadata, SharedString};

use crate::telemetry::{
    ATTEMPT_DURATION_SECONDS, ATTEMPTS_TOTAL, COST_NANODOLLARS_TOTAL, REQUEST_DURATION_SECONDS,
    REQUESTS_TOTAL, TOKENS_TOTAL, kind_name,
};

/// What the macros in `telemetry` register with: the same target, level and module.
pub(crate) static METADATA: Metadata<'static> = Metadata::new(
    "breakwater_http::telemetry",
    Level::INFO,
    Some("breakwater_http::telemetry"),
);

/// Every task kind, in [`kind_index`] order.
const KINDS: [TaskKind; 3] = [
    TaskKind::Interactive,
    TaskKind::Deferrable,
    TaskKind::Critical,
];

/// The `resolution` label values, in [`resolution_index`] order.
const RESOLUTIONS: [&str; 4] = ["success", "degraded", "queued", "failed"];

/// The ready keys of one route.
#[derive(Debug)]
pub(crate) struct RouteKeys {
    /// `breakwater_requests_total` by task kind, then resolution.
    requests: [[Key; 4]; 3],
    /// `breakwater_request_duration_seconds` by resolution.
    durations: [Key; 4],
    /// Per step of the route, in its order.
    steps: Vec<StepKeys>,
}

/// The ready keys of one step (its `provider` and `model` labels).
#[derive(Debug)]
pub(crate) struct StepKeys {
    /// `breakwater_attempts_total` by class kind, in [`ClassKind::ALL`] order.
    attempts: [Key; ClassKind::ALL.len()],
    /// `breakwater_attempt_duration_seconds`.
    pub(crate) attempt_duration: Key,
    /// `breakwater_tokens_total`, `input` then `output`.
    pub(crate) tokens: [Key; 2],
    /// `breakwater_cost_nanodollars_total`.
    pub(crate) cost: Key,
}

impl RouteKeys {
    /// The keys of `route`'s series.
    pub(crate) fn new(route: &Route) -> RouteKeys {
        let name = SharedString::from(route.name().to_owned());
        let requests = KINDS.map(|kind| {
            RESOLUTIONS.map(|resolution| {
                Key::from_parts(
                    REQUESTS_TOTAL,
                    vec![
                        Label::new("route", name.clone()),
                        Label::from_static_parts("kind", kind_name(kind)),
                        Label::from_static_parts("resolution", resolution),
                    ],
                )
            })
        });
        let durations = RESOLUTIONS.map(|resolution| {
            Key::from_parts(
                REQUEST_DURATION_SECONDS,
                vec![
                    Label::new("route", name.clone()),
                    Label::from_static_parts("resolution", resolution),
                ],
            )
        });
        let steps = (0..route.len())
            .filter_map(|step| route.key(step))
            .map(|key| StepKeys::new(key.provider(), key.model()))
            .collect();
        RouteKeys {
            requests,
            durations,
            steps,
        }
    }

    /// The `breakwater_requests_total` key of a `kind` request that ended so.
    pub(crate) fn requests(&self, kind: TaskKind, resolution: &Resolution) -> &Key {
        &self.requests[kind_index(kind)][resolution_index(resolution)]
    }

    /// The `breakwater_request_duration_seconds` key of a request that ended so.
    pub(crate) fn duration(&self, resolution: &Resolution) -> &Key {
        &self.durations[resolution_index(resolution)]
    }

    /// The keys of step `step`.
    pub(crate) fn step(&self, step: usize) -> Option<&StepKeys> {
        self.steps.get(step)
    }
}

impl StepKeys {
    fn new(provider: &str, model: &str) -> StepKeys {
        let provider = SharedString::from(provider.to_owned());
        let model = SharedString::from(model.to_owned());
        let labels = |extra: Option<(&'static str, &'static str)>| {
            let mut labels = vec![
                Label::new("provider", provider.clone()),
                Label::new("model", model.clone()),
            ];
            if let Some((key, value)) = extra {
                labels.push(Label::from_static_parts(key, value));
            }
            labels
        };
        StepKeys {
            attempts: ClassKind::ALL.map(|class| {
                Key::from_parts(ATTEMPTS_TOTAL, labels(Some(("class", class.name()))))
            }),
            attempt_duration: Key::from_parts(ATTEMPT_DURATION_SECONDS, labels(None)),
            tokens: ["input", "output"].map(|direction| {
                Key::from_parts(TOKENS_TOTAL, labels(Some(("direction", direction))))
            }),
            cost: Key::from_parts(COST_NANODOLLARS_TOTAL, labels(None)),
        }
    }

    /// The `breakwater_attempts_total` key of class `class`.
    pub(crate) fn attempts(&self, class: ClassKind) -> Option<&Key> {
        let i = ClassKind::ALL.iter().position(|k| *k == class)?;
        self.attempts.get(i)
    }
}

/// Increments the counter `key` of the current recorder by `by`.
pub(crate) fn increment(key: &Key, by: u64) {
    metrics::with_recorder(|r| r.register_counter(key, &METADATA)).increment(by);
}

/// Records `value` in the histogram `key` of the current recorder.
pub(crate) fn record(key: &Key, value: f64) {
    metrics::with_recorder(|r| r.register_histogram(key, &METADATA)).record(value);
}

const fn kind_index(kind: TaskKind) -> usize {
    match kind {
        TaskKind::Interactive => 0,
        TaskKind::Deferrable => 1,
        TaskKind::Critical => 2,
    }
}

const fn resolution_index(resolution: &Resolution) -> usize {
    match resolution {
        Resolution::Success { .. } => 0,
        Resolution::Degraded { .. } => 1,
        Resolution::Queued { .. } => 2,
        Resolution::Failed { .. } => 3,
    }
}

#[cfg(test)]
mod tests {
    use breakwater_core::{ClassKind, PriceTable, Registry, RegistryConfig, RouteConfig};

    use super::{KINDS, RESOLUTIONS, RouteKeys};
    use crate::telemetry::kind_name;

    fn label<'k>(key: &'k metrics::Key, name: &str) -> Option<&'k str> {
        key.labels().find(|l| l.key() == name).map(|l| l.value())
    }

    #[test]
    fn keys_carry_the_labels_they_are_filed_under() {
        let config =
            RouteConfig::from_toml("name = \"chat\"\n[[step]]\nprovider = \"p\"\nmodel = \"m\"\n")
                .expect("route");
        let route = breakwater_core::Route::bind(
            &config,
            &Registry::new(RegistryConfig::default()).expect("registry"),
            &PriceTable::new(),
        )
        .expect("binds");
        let keys = RouteKeys::new(&route);
        for (k, kind) in KINDS.into_iter().enumerate() {
            for (r, resolution) in RESOLUTIONS.into_iter().enumerate() {
                let key = &keys.requests[k][r];
                assert_eq!(label(key, "kind"), Some(kind_name(kind)));
                assert_eq!(label(key, "resolution"), Some(resolution));
                assert_eq!(label(key, "route"), Some("chat"));
            }
        }
        let step = keys.step(0).expect("one step");
        for class in ClassKind::ALL {
            let key = step.attempts(class).expect("every class has a key");
            assert_eq!(label(key, "class"), Some(class.name()));
            assert_eq!(label(key, "provider"), Some("p"));
            assert_eq!(label(key, "model"), Some("m"));
        }
        assert!(keys.step(1).is_none());
    }
}
