//! Routes: the ordered chain of steps a request may take.
//!
//! A [`RouteConfig`] is what a configuration file says (serde, TOML); a [`Route`] is
//! that chain bound to a [`Registry`]: each step holds its breaker, budget and price,
//! so a plan never looks anything up by name.
//!
//! Two orders are common and both are just a list of steps:
//!
//! - **capability-ordered**, start capable and degrade:
//!   Sonnet → Haiku → gpt-4o-mini;
//! - **cost-ordered**, start cheap and escalate:
//!   gpt-4o-mini → Haiku → Sonnet.
//!
//! A step with `when` is *conditional*: the normal chain skips it, and only the
//! matching error leads to it (a context-window-exceeded error to a larger-context
//! model, a content-policy refusal to a model that takes the request). Every other
//! non-retriable error ends the request at once.
//!
//! ```
//! use breakwater_core::route::RouteConfig;
//!
//! let route: RouteConfig = toml::from_str(r#"
//!     name = "chat"
//!
//!     [[step]]                      # capable first
//!     provider = "anthropic"
//!     model = "claude-sonnet-4-5"
//!     attempts = 3
//!     timeout_ms = 30000
//!     prompt_variant = "claude"
//!
//!     [[step]]                      # then a smaller model of the same family
//!     provider = "anthropic"
//!     model = "claude-haiku-4-5"
//!     attempts = 2
//!     timeout_ms = 20000
//!     prompt_variant = "claude"
//!
//!     [[step]]                      # then another provider, with its own prompt
//!     provider = "openai"
//!     model = "gpt-4o-mini"
//!     attempts = 2
//!     timeout_ms = 20000
//!     prompt_variant = "gpt"
//!
//!     [[step]]                      # only for prompts too long for the others
//!     provider = "gemini"
//!     model = "gemini-2.5-pro"
//!     when = "context_window_exceeded"
//!     attempts = 1
//!     timeout_ms = 60000
//! "#).unwrap();
//! assert_eq!(route.steps.len(), 4);
//! ```

use std::fmt;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::breaker::{Breaker, Rejection};
use crate::cost::{Price, PriceTable};
use crate::registry::{Registry, SharedBudget};
use crate::taxonomy::Taxonomy;
use crate::time::serde_ms;
use crate::{Backoff, Fatal, Key, Time};

/// A route as configured.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RouteConfig {
    /// The route's name, for metrics and logs.
    pub name: String,
    /// The steps, in order (`[[step]]` in TOML).
    #[serde(rename = "step")]
    pub steps: Vec<StepConfig>,
    /// The backoff of steps that do not set their own.
    #[serde(default)]
    pub backoff: Backoff,
    /// Timers and limits of the plan.
    #[serde(default)]
    pub plan: PlanConfig,
    /// How outcomes are classified.
    #[serde(default)]
    pub taxonomy: Taxonomy,
    /// What each task kind gets when the chain is exhausted.
    #[serde(default)]
    pub degrade: Degradation,
    /// The output validator of steps that do not name their own: a name the driver
    /// resolves (the HTTP adapter knows `json` and the validators registered with it).
    #[serde(default)]
    pub validator: Option<String>,
}

/// One step of a route: a model at a provider and how hard to try it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StepConfig {
    /// The provider's name (`anthropic`, `openai`, `gemini`, or your own).
    pub provider: String,
    /// The model at that provider.
    pub model: String,
    /// Attempts allowed at this step, the first included (default 3).
    #[serde(default = "default_attempts")]
    pub attempts: u32,
    /// The per-attempt timeout (default 60 s); the deadline may cut it shorter.
    #[serde(rename = "timeout_ms", with = "serde_ms", default = "default_timeout")]
    pub timeout: Duration,
    /// This step's backoff, instead of the route's.
    #[serde(default)]
    pub backoff: Option<Backoff>,
    /// The prompt variant to render for this step's model family.
    #[serde(default)]
    pub prompt_variant: Option<String>,
    /// Makes the step conditional: only this error leads to it.
    #[serde(default)]
    pub when: Option<Condition>,
    /// This step's output validator, instead of the route's.
    #[serde(default)]
    pub validator: Option<String>,
}

fn default_attempts() -> u32 {
    3
}

fn default_timeout() -> Duration {
    Duration::from_secs(60)
}

/// The errors that lead to a conditional step.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Condition {
    /// The prompt did not fit the model's context window.
    ContextWindowExceeded,
    /// The provider refused the content.
    ContentPolicy,
}

impl Condition {
    /// The condition a non-retriable error leads to, if any.
    #[must_use]
    pub const fn for_fatal(fatal: Fatal) -> Option<Condition> {
        match fatal {
            Fatal::ContextWindowExceeded => Some(Condition::ContextWindowExceeded),
            Fatal::ContentPolicy => Some(Condition::ContentPolicy),
            _ => None,
        }
    }
}

/// Timers and limits of a request plan.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PlanConfig {
    /// When the "taking longer than usual" notice fires (default 10 s after the start).
    #[serde(rename = "slow_notice_ms", with = "serde_ms")]
    pub slow_notice: Duration,
    /// The shortest attempt worth starting after a wait or a failure (default 1 s,
    /// or the step's timeout if shorter): a wait is not started, and a retry or
    /// fallback not sent, unless at least this much of the deadline is left for it.
    #[serde(rename = "min_attempt_ms", with = "serde_ms")]
    pub min_attempt: Duration,
    /// Retries allowed after ambiguous outcomes (408, broken streams), per request
    /// (default 1).
    pub ambiguous_retries: u32,
    /// Retries at the same step after an output failed validation, per step (default
    /// 1); then the plan moves to the next step, whose prompt variant may do better.
    /// They count towards the step's attempts.
    pub invalid_output_retries: u32,
    /// The most entries a request's [`History`](crate::plan::History) keeps (default
    /// 64, at least 2, at most 65,536). Past it, the first half and the latest entries
    /// are kept and the rest counted as elided, so a request that keeps failing while
    /// every provider is down holds bounded memory. Metrics and alerts read the kept
    /// entries only.
    pub max_history: u32,
}

/// [`PlanConfig::max_history`]'s default.
pub(crate) const DEFAULT_MAX_HISTORY: u32 = 64;
/// [`PlanConfig::max_history`]'s largest accepted value.
const MAX_HISTORY_LIMIT: u32 = 65_536;

/// The most steps a route may have. Far beyond any real fallback chain; it bounds a
/// step's index so that a request's [`History`](crate::plan::History) can store it in
/// 32 bits.
pub const MAX_STEPS: usize = 65_536;

impl Default for PlanConfig {
    fn default() -> PlanConfig {
        PlanConfig {
            slow_notice: Duration::from_secs(10),
            min_attempt: Duration::from_secs(1),
            ambiguous_retries: 1,
            invalid_output_retries: 1,
            max_history: DEFAULT_MAX_HISTORY,
        }
    }
}

/// What a request gets when the chain is exhausted, per task kind: the options are
/// tried in order, and a request that runs out of them fails loudly.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Degradation {
    /// For interactive tasks (default: a cached result, then a structured empty one).
    pub interactive: Vec<Degrade>,
    /// For deferrable tasks (default: the durable queue).
    pub deferrable: Vec<Degrade>,
    /// For critical tasks (default: nothing, fail fast and loudly).
    pub critical: Vec<Degrade>,
}

impl Default for Degradation {
    fn default() -> Degradation {
        Degradation {
            interactive: vec![Degrade::Cache, Degrade::Empty],
            deferrable: vec![Degrade::Queue],
            critical: Vec::new(),
        }
    }
}

/// One way to answer a request the chain could not serve.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Degrade {
    /// A cached result, if the driver has one.
    Cache,
    /// A structured empty result flagged degraded.
    Empty,
    /// Hand the request back for the durable queue.
    Queue,
}

/// A route that cannot work.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum RouteError {
    /// The text is not a valid route file; the message names the line and field.
    Parse {
        /// The parser's message.
        message: String,
    },
    /// The route has no unconditional step.
    NoSteps,
    /// The route has more than [`MAX_STEPS`] steps.
    TooManySteps {
        /// How many it has.
        steps: usize,
    },
    /// A step allows no attempts.
    ZeroAttempts {
        /// The step's index.
        step: usize,
    },
    /// A step's timeout is zero.
    ZeroTimeout {
        /// The step's index.
        step: usize,
    },
    /// `plan.max_history` is outside `[2, 65536]`.
    MaxHistory {
        /// The value given.
        max_history: u32,
    },
    /// A backoff setting is invalid.
    Backoff {
        /// The step's index, or `None` for the route's own backoff.
        step: Option<usize>,
        /// What is wrong.
        error: crate::backoff::BackoffError,
    },
}

impl fmt::Display for RouteError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RouteError::Parse { message } => write!(f, "route: {message}"),
            RouteError::NoSteps => f.write_str("route has no unconditional step"),
            RouteError::TooManySteps { steps } => {
                write!(f, "route has {steps} steps, more than {MAX_STEPS}")
            }
            RouteError::ZeroAttempts { step } => {
                write!(f, "step[{step}].attempts must be at least 1")
            }
            RouteError::ZeroTimeout { step } => {
                write!(f, "step[{step}].timeout_ms must be positive")
            }
            RouteError::MaxHistory { max_history } => write!(
                f,
                "plan.max_history must be in [{}, {MAX_HISTORY_LIMIT}], not {max_history}",
                crate::plan::MIN_HISTORY
            ),
            RouteError::Backoff {
                step: Some(step),
                error,
            } => write!(f, "step[{step}].backoff: {error}"),
            // The message starts with "backoff".
            RouteError::Backoff { step: None, error } => error.fmt(f),
        }
    }
}

impl std::error::Error for RouteError {}

impl RouteError {
    /// The setting at fault, as written in a route file (`step[1].timeout_ms`,
    /// `backoff.multiplier`; `step` for a route without an unconditional step); `None`
    /// for a file that does not parse (its message names the place).
    #[must_use]
    pub fn path(&self) -> Option<String> {
        Some(match self {
            RouteError::Parse { .. } => return None,
            RouteError::NoSteps | RouteError::TooManySteps { .. } => "step".to_owned(),
            RouteError::ZeroAttempts { step } => format!("step[{step}].attempts"),
            RouteError::ZeroTimeout { step } => format!("step[{step}].timeout_ms"),
            RouteError::MaxHistory { .. } => "plan.max_history".to_owned(),
            RouteError::Backoff { step: None, error } => format!("backoff.{}", error.path()),
            RouteError::Backoff {
                step: Some(step),
                error,
            } => format!("step[{step}].backoff.{}", error.path()),
        })
    }
}

impl RouteConfig {
    /// Parses and checks a route written in TOML.
    pub fn from_toml(text: &str) -> Result<RouteConfig, RouteError> {
        let config: RouteConfig = toml::from_str(text).map_err(|e| RouteError::Parse {
            message: e.to_string().trim_end().to_owned(),
        })?;
        config.validate()?;
        Ok(config)
    }

    /// Checks the route without binding it.
    pub fn validate(&self) -> Result<(), RouteError> {
        if !self.steps.iter().any(|s| s.when.is_none()) {
            return Err(RouteError::NoSteps);
        }
        if self.steps.len() > MAX_STEPS {
            return Err(RouteError::TooManySteps {
                steps: self.steps.len(),
            });
        }
        let max_history = self.plan.max_history;
        if !(crate::plan::MIN_HISTORY..=MAX_HISTORY_LIMIT).contains(&max_history) {
            return Err(RouteError::MaxHistory { max_history });
        }
        self.backoff
            .validate()
            .map_err(|error| RouteError::Backoff { step: None, error })?;
        for (step, s) in self.steps.iter().enumerate() {
            if s.attempts == 0 {
                return Err(RouteError::ZeroAttempts { step });
            }
            if s.timeout.is_zero() {
                return Err(RouteError::ZeroTimeout { step });
            }
            if let Some(backoff) = &s.backoff {
                backoff.validate().map_err(|error| RouteError::Backoff {
                    step: Some(step),
                    error,
                })?;
            }
        }
        Ok(())
    }
}

/// A route bound to a registry and a price table: what a [`Plan`](crate::Plan) runs.
#[derive(Clone, Debug)]
pub struct Route {
    name: String,
    pub(crate) steps: Vec<Step>,
    /// The first unconditional step: where every request starts (0 if there is none,
    /// which validation rules out).
    first: usize,
    pub(crate) plan: PlanConfig,
    pub(crate) taxonomy: Taxonomy,
    pub(crate) degrade: Degradation,
    unpriced: Vec<String>,
}

/// A bound step.
#[derive(Clone, Debug)]
pub(crate) struct Step {
    pub(crate) key: Key,
    pub(crate) breaker: Option<Breaker>,
    pub(crate) budget: Option<SharedBudget>,
    pub(crate) price: Price,
    pub(crate) attempts: u32,
    pub(crate) timeout: Duration,
    pub(crate) backoff: Backoff,
    pub(crate) prompt_variant: Option<String>,
    pub(crate) when: Option<Condition>,
    pub(crate) validator: Option<String>,
}

impl Route {
    /// Binds `config` to `registry`'s breakers and budgets and to `prices`.
    pub fn bind(
        config: &RouteConfig,
        registry: &Registry,
        prices: &PriceTable,
    ) -> Result<Route, RouteError> {
        config.validate()?;
        let mut unpriced = Vec::new();
        let steps = config
            .steps
            .iter()
            .map(|s| {
                let key = Key::new(&s.provider, &s.model);
                let price = prices.price(&s.model).unwrap_or_else(|| {
                    if !unpriced.contains(&s.model) {
                        unpriced.push(s.model.clone());
                    }
                    Price::default()
                });
                Step {
                    breaker: registry.breaker(&key),
                    budget: registry.budget(&key),
                    price,
                    attempts: s.attempts,
                    timeout: s.timeout,
                    backoff: s.backoff.unwrap_or(config.backoff),
                    prompt_variant: s.prompt_variant.clone(),
                    when: s.when,
                    validator: s.validator.clone().or_else(|| config.validator.clone()),
                    key,
                }
            })
            .collect::<Vec<Step>>();
        Ok(Route {
            name: config.name.clone(),
            first: steps.iter().position(|s| s.when.is_none()).unwrap_or(0),
            steps,
            plan: config.plan,
            taxonomy: config.taxonomy.clone(),
            degrade: config.degrade.clone(),
            unpriced,
        })
    }

    /// The route's name.
    #[must_use]
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The number of steps, conditional ones included.
    #[must_use]
    pub fn len(&self) -> usize {
        self.steps.len()
    }

    /// Whether the route has no steps (never true for a bound route).
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.steps.is_empty()
    }

    /// Step `index`'s key.
    #[must_use]
    pub fn key(&self, index: usize) -> Option<&Key> {
        self.steps.get(index).map(|s| &s.key)
    }

    /// Step `index`'s breaker, if breakers are on.
    #[must_use]
    pub fn breaker(&self, index: usize) -> Option<&Breaker> {
        self.steps.get(index).and_then(|s| s.breaker.as_ref())
    }

    /// Models the price table did not list (they count as free).
    #[must_use]
    pub fn unpriced_models(&self) -> &[String] {
        &self.unpriced
    }

    /// The plan settings.
    #[must_use]
    pub fn plan_config(&self) -> &PlanConfig {
        &self.plan
    }

    /// Whether a request over this route could send an attempt at `now`: `Ok` when
    /// some unconditional step's breaker would admit (or the step has none), checked
    /// with [`Breaker::check`], which takes no half-open probe slot. Otherwise the
    /// rejection that ends soonest: the smallest `until`, and one without an `until`
    /// (half-open full, isolated) only when no step names an end.
    ///
    /// For drivers that hold work back until a route can take it, such as a durable
    /// queue's drain; a plan does its own admission and never needs this.
    pub fn check(&self, now: Time) -> Result<(), Rejection> {
        self.admitting_step(now).map(drop)
    }

    /// The first unconditional step whose breaker would admit an attempt at `now` (or
    /// that has none), read as [`Route::check`] reads them; otherwise the rejection
    /// that ends soonest, as [`Route::check`] gives it.
    ///
    /// For drivers that send work somewhere other than a plan's attempts, such as a
    /// batch API: the step they pick is the one a plan would try first.
    pub fn admitting_step(&self, now: Time) -> Result<usize, Rejection> {
        let mut soonest: Option<Rejection> = None;
        for (index, step) in self.steps.iter().enumerate() {
            if step.when.is_some() {
                continue;
            }
            let Some(breaker) = &step.breaker else {
                return Ok(index);
            };
            match breaker.check(now) {
                Ok(()) => return Ok(index),
                Err(rejection) => {
                    let sooner = match (soonest.and_then(|s| s.until), rejection.until) {
                        (_, None) => soonest.is_none(),
                        (None, Some(_)) => true,
                        (Some(held), Some(new)) => new < held,
                    };
                    if sooner {
                        soonest = Some(rejection);
                    }
                }
            }
        }
        // A bound route has an unconditional step, so a rejection was seen if we got
        // here; the fallback keeps the function total.
        Err(soonest.unwrap_or(Rejection {
            reason: crate::breaker::RejectReason::Isolated,
            until: None,
        }))
    }

    /// How the route classifies outcomes.
    #[must_use]
    pub fn taxonomy(&self) -> &Taxonomy {
        &self.taxonomy
    }

    /// Step `index`'s price, if the step exists (a model the price table did not list
    /// is free: see [`Route::unpriced_models`]).
    #[must_use]
    pub fn price(&self, index: usize) -> Option<Price> {
        self.steps.get(index).map(|s| s.price)
    }

    /// The first unconditional step: where every request starts.
    #[inline]
    pub(crate) fn first_step(&self) -> usize {
        self.first
    }

    /// The first unconditional step at or after `from`.
    pub(crate) fn next_step(&self, from: usize) -> Option<usize> {
        (from..self.steps.len()).find(|&i| self.steps[i].when.is_none())
    }

    /// The first step for `condition`, if the route has one.
    pub(crate) fn conditional_step(&self, condition: Condition) -> Option<usize> {
        self.steps.iter().position(|s| s.when == Some(condition))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::registry::RegistryConfig;

    const COST_ORDERED: &str = r#"
        name = "summaries"
        [backoff]
        base_ms = 200
        cap_ms = 5000
        [[step]]
        provider = "openai"
        model = "gpt-4o-mini"
        attempts = 2
        timeout_ms = 10000
        [[step]]
        provider = "anthropic"
        model = "claude-haiku-4-5"
        [[step]]
        provider = "anthropic"
        model = "claude-sonnet-4-5"
        attempts = 1
        [degrade]
        interactive = ["empty"]
    "#;

    #[test]
    fn cost_ordered_route_binds() {
        let config: RouteConfig = toml::from_str(COST_ORDERED).unwrap();
        let registry = Registry::new(RegistryConfig::default()).unwrap();
        let prices = PriceTable::new().with("gpt-4o-mini", Price::per_million(0.15, 0.6));
        let route = Route::bind(&config, &registry, &prices).unwrap();
        assert_eq!(route.len(), 3);
        assert!(!route.is_empty());
        assert_eq!(route.key(0), Some(&Key::new("openai", "gpt-4o-mini")));
        assert_eq!(route.steps[1].attempts, 3);
        assert_eq!(route.steps[1].timeout, Duration::from_secs(60));
        assert_eq!(route.steps[0].backoff.base, Duration::from_millis(200));
        assert_eq!(
            route.unpriced_models(),
            ["claude-haiku-4-5", "claude-sonnet-4-5"]
        );
        assert_eq!(route.degrade.interactive, [Degrade::Empty]);
        assert_eq!(route.degrade.deferrable, [Degrade::Queue]);
    }

    #[test]
    fn each_error_names_the_setting_it_is_about() {
        let step = "[[step]]\nprovider = \"a\"\nmodel = \"m\"\n";
        let cases = [
            ("step = []".to_owned(), "step"),
            (format!("{step}attempts = 0"), "step[0].attempts"),
            (
                format!("{step}[[step]]\nprovider = \"b\"\nmodel = \"m\"\ntimeout_ms = 0"),
                "step[1].timeout_ms",
            ),
            (format!("{step}[plan]\nmax_history = 1"), "plan.max_history"),
            (
                format!("{step}[backoff]\nbase_ms = 100\ncap_ms = 1000\nmultiplier = 0.5"),
                "backoff.multiplier",
            ),
            (
                format!("{step}[step.backoff]\nbase_ms = 100\ncap_ms = 10"),
                "step[0].backoff.cap_ms",
            ),
        ];
        for (body, path) in cases {
            let text = format!("name = \"x\"\n{body}");
            let config: RouteConfig = toml::from_str(&text).unwrap();
            let error = config.validate().unwrap_err();
            assert_eq!(error.path().as_deref(), Some(path), "{text}");
            assert!(crate::written::written(&config, path), "{path} in {text}");
        }
        let parse = RouteConfig::from_toml("name = 1").unwrap_err();
        assert_eq!(
            parse.path(),
            None,
            "a parse error's message names the place"
        );
    }

    #[test]
    fn bad_routes_are_refused_precisely() {
        let parse = |text: &str| toml::from_str::<RouteConfig>(text).unwrap().validate();
        assert_eq!(parse("name = \"x\"\nstep = []"), Err(RouteError::NoSteps));
        assert_eq!(
            parse("name = \"x\"\n[[step]]\nprovider = \"a\"\nmodel = \"m\"\nattempts = 0"),
            Err(RouteError::ZeroAttempts { step: 0 })
        );
        let only_conditional =
            "name = \"x\"\n[[step]]\nprovider = \"a\"\nmodel = \"m\"\nwhen = \"content_policy\"";
        assert_eq!(parse(only_conditional), Err(RouteError::NoSteps));
        let mut long =
            RouteConfig::from_toml("name = \"x\"\n[[step]]\nprovider = \"a\"\nmodel = \"m\"")
                .unwrap();
        long.steps = vec![long.steps[0].clone(); MAX_STEPS];
        assert_eq!(long.validate(), Ok(()));
        long.steps.push(long.steps[0].clone());
        let err = long.validate().unwrap_err();
        assert_eq!(err, RouteError::TooManySteps { steps: 65_537 });
        assert_eq!(err.to_string(), "route has 65537 steps, more than 65536");
        let err = RouteConfig::from_toml("name = \"x\"\nstep = []\nretries = 3").unwrap_err();
        let text = err.to_string();
        assert!(
            text.contains("retries") && text.contains("line 3"),
            "{text}"
        );
    }

    #[test]
    fn max_history_is_read_and_checked() {
        let step = "name = \"x\"\n[[step]]\nprovider = \"a\"\nmodel = \"m\"\n";
        let with = |n: u64| RouteConfig::from_toml(&format!("{step}[plan]\nmax_history = {n}"));
        assert_eq!(with(2).unwrap().plan.max_history, 2);
        assert_eq!(with(65_536).unwrap().plan.max_history, 65_536);
        assert_eq!(
            RouteConfig::from_toml(step).unwrap().plan.max_history,
            DEFAULT_MAX_HISTORY
        );
        for bad in [0u32, 1, 65_537] {
            let err = with(u64::from(bad)).unwrap_err();
            assert_eq!(err, RouteError::MaxHistory { max_history: bad });
            assert!(err.to_string().contains("plan.max_history"), "{err}");
        }
        // Not a u32 at all: a parse error that names the field.
        let err = with(1 << 40).unwrap_err().to_string();
        assert!(err.contains("max_history"), "{err}");
        // A bound route's plans take the cap.
        let registry = Registry::new(RegistryConfig::default()).unwrap();
        let route = Route::bind(&with(7).unwrap(), &registry, &PriceTable::new()).unwrap();
        let plan = crate::Plan::new(
            &route,
            crate::TaskKind::Interactive,
            crate::Deadline::unbounded(Time::ZERO),
            crate::RequestOptions::default(),
        );
        assert_eq!(plan.history().cap(), 7);
        assert_eq!(route.plan_config(), &with(7).unwrap().plan);
    }

    #[test]
    fn check_reads_breakers_without_taking_a_probe() {
        use crate::breaker::{Admit, BreakerConfig, RejectReason};
        let config: RouteConfig = toml::from_str(
            r#"
            name = "x"
            [[step]]
            provider = "a"
            model = "m"
            [[step]]
            provider = "b"
            model = "big"
            when = "context_window_exceeded"
            [[step]]
            provider = "c"
            model = "m"
            "#,
        )
        .unwrap();
        let breaker = BreakerConfig {
            half_open_probes: 1,
            close_after: 1,
            ..BreakerConfig::default()
        };
        let registry = Registry::new(RegistryConfig {
            breaker: Some(breaker),
            ..RegistryConfig::default()
        })
        .unwrap();
        let route = Route::bind(&config, &registry, &PriceTable::new()).unwrap();
        let t0 = Time::ZERO;
        assert_eq!(route.check(t0), Ok(()));
        // Both unconditional steps open; the conditional one's closed breaker does not
        // count: the route cannot take an ordinary request.
        route.breaker(0).unwrap().force_open(t0);
        route.breaker(2).unwrap().force_open(t0);
        let until_a = match route.breaker(0).unwrap().check(t0) {
            Err(r) => r.until.unwrap(),
            Ok(()) => panic!("open breaker admits"),
        };
        let until_c = match route.breaker(2).unwrap().check(t0) {
            Err(r) => r.until.unwrap(),
            Ok(()) => panic!("open breaker admits"),
        };
        let rejection = route.check(t0).unwrap_err();
        assert_eq!(rejection.reason, RejectReason::Open);
        assert_eq!(rejection.until, Some(until_a.min(until_c)));
        // Once the first open period passes the route admits, and checking (twice)
        // takes no probe slot: the single probe is still there to admit.
        let later = until_a.max(until_c);
        assert_eq!(route.check(later), Ok(()));
        assert_eq!(route.check(later), Ok(()));
        assert!(matches!(
            route.breaker(0).unwrap().admit(later),
            Admit::Admitted(p) if p.is_probe()
        ));
        // Isolated steps name no end.
        route.breaker(0).unwrap().isolate(later);
        route.breaker(2).unwrap().isolate(later);
        assert_eq!(
            route.check(later).unwrap_err(),
            Rejection {
                reason: RejectReason::Isolated,
                until: None
            }
        );
        // No breakers at all: always admits.
        let off = Registry::new(RegistryConfig {
            breaker: None,
            ..RegistryConfig::default()
        })
        .unwrap();
        let free = Route::bind(&config, &off, &PriceTable::new()).unwrap();
        assert_eq!(free.check(t0), Ok(()));
    }

    #[test]
    fn admitting_step_names_the_first_unconditional_step_that_admits() {
        use crate::breaker::{FleetChange, RejectReason};
        let config: RouteConfig = toml::from_str(
            r#"
            name = "x"
            [[step]]
            provider = "a"
            model = "m"
            [[step]]
            provider = "b"
            model = "big"
            when = "context_window_exceeded"
            [[step]]
            provider = "c"
            model = "m2"
            "#,
        )
        .unwrap();
        let registry = Registry::new(RegistryConfig::default()).unwrap();
        let prices = PriceTable::new().with("m2", Price::per_million(1.0, 2.0));
        let route = Route::bind(&config, &registry, &prices).unwrap();
        let t0 = Time::ZERO;
        assert_eq!(route.admitting_step(t0), Ok(0));
        route.breaker(0).unwrap().force_open(t0);
        // The conditional step 1 is never named, however closed its breaker.
        assert_eq!(route.admitting_step(t0), Ok(2));
        assert_eq!(route.price(2), Some(Price::per_million(1.0, 2.0)));
        assert_eq!(route.price(0), Some(Price::default()));
        assert_eq!(route.price(3), None);
        route.breaker(2).unwrap().force_open(t0);
        let (Err(step), Err(route_check)) = (route.admitting_step(t0), route.check(t0)) else {
            panic!("both unconditional steps are open");
        };
        assert_eq!(step, route_check);
        assert_eq!(route.taxonomy(), &Taxonomy::default());
        // Two rejections that end at the same instant: the earlier step's is named.
        let until = route.breaker(0).unwrap().check(t0).unwrap_err().until;
        let last = route.breaker(2).unwrap();
        last.reset(t0);
        last.apply_fleet(
            t0,
            FleetChange::CoolDown {
                until: until.unwrap(),
            },
        );
        let cooling = last.check(t0).unwrap_err();
        assert_eq!(
            (cooling.reason, cooling.until),
            (RejectReason::CoolingDown, until)
        );
        let open = Rejection {
            reason: RejectReason::Open,
            until,
        };
        assert_eq!(route.admitting_step(t0), Err(open));
    }

    #[test]
    fn a_route_keeps_its_own_taxonomy() {
        let config = RouteConfig::from_toml(
            "name = \"x\"\n[taxonomy]\noverrides = { \"409\" = \"retriable\" }\n\
             [[step]]\nprovider = \"a\"\nmodel = \"m\"\n",
        )
        .unwrap();
        let registry = Registry::new(RegistryConfig::default()).unwrap();
        let route = Route::bind(&config, &registry, &PriceTable::new()).unwrap();
        assert_eq!(route.taxonomy(), &config.taxonomy);
        assert_ne!(route.taxonomy(), &Taxonomy::default());
    }

    #[test]
    fn conditional_steps_are_skipped_in_order() {
        let config: RouteConfig = toml::from_str(
            r#"
            name = "x"
            [[step]]
            provider = "a"
            model = "small"
            [[step]]
            provider = "b"
            model = "large"
            when = "context_window_exceeded"
            [[step]]
            provider = "c"
            model = "other"
            "#,
        )
        .unwrap();
        let registry = Registry::new(RegistryConfig::default()).unwrap();
        let route = Route::bind(&config, &registry, &PriceTable::new()).unwrap();
        assert_eq!(route.next_step(1), Some(2));
        assert_eq!(
            route.conditional_step(Condition::ContextWindowExceeded),
            Some(1)
        );
        assert_eq!(route.conditional_step(Condition::ContentPolicy), None);
    }
}
