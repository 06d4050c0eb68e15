//! The scenario file: providers, storms, clients and the policies to compare.
//!
//! A scenario is TOML, read strictly: unknown keys are errors, every value is checked
//! (`from_s < to_s`, rates ≥ 0, probabilities in `[0, 1]`, unique names, storms that
//! name existing providers and clients…), and every error names the field path and its
//! line and column ([`ScenarioError`]). No input makes the parser panic.
//!
//! The format is documented by example in `sim/scenarios/*.toml`; [`DEFAULT_SCENARIO`]
//! is the "Sunday 2am 529 storm".

mod build;
mod error;
mod raw;
#[cfg(test)]
mod tests;

use std::time::Duration;

use breakwater_core::{Rng, Time};

use error::shown;
pub use error::{Location, ScenarioError, deserialize_table, locate};

use crate::dist::LogNormal;

/// The largest scenario the simulator runs. Past one of these a run would not fit in
/// memory or would not end in reasonable time, so the scenario is refused with an
/// error naming the field, before anything is allocated for it.
pub mod limits {
    /// The longest run, `duration_s`: seven days. (The herd index counts attempts in
    /// 100 ms buckets over the whole run: 6 million of them at this length.)
    pub const DURATION_S: f64 = 7.0 * 86_400.0;
    /// The most timeline buckets, `duration_s` / `bucket_ms`.
    pub const TIMELINE_BUCKETS: u64 = 1_000_000;
    /// Client replicas, all populations together: each has its own breakers, budgets
    /// and bound route.
    pub const REPLICAS: u64 = 10_000;
    /// Closed-loop workers, all populations together.
    pub const WORKERS: u64 = 1_000_000;
    /// The highest arrival rate of an open-loop population, load spikes included, per
    /// second. Arrival times are whole nanoseconds: far above this, successive
    /// arrivals land on the same instant and the clock stops advancing.
    pub const RATE_PER_S: f64 = 10_000_000.0;
    /// Expected open-loop arrivals over the run, all populations together (each
    /// within its `requests` cap): at the default storm's pace (about 0.5 M requests a
    /// second per core) half an hour of one core per policy.
    pub const EXPECTED_REQUESTS: f64 = 1e9;
}

/// The embedded default scenario: a 529 overload storm on a Sunday at 2am.
pub const DEFAULT_SCENARIO: &str = include_str!("../../scenarios/sunday-2am.toml");

/// A validated scenario. Indices (`StormTarget::Provider(i)`, …) point into its vectors.
#[derive(Clone, Debug, PartialEq)]
pub struct Scenario {
    /// A human name for reports.
    pub name: String,
    /// The root seed: the engine derives every entity's stream from it.
    pub seed: u64,
    /// How long clients keep sending (closed and open loops alike).
    pub duration: Duration,
    /// The timeline's resolution (`bucket_ms`, default 1 s).
    pub bucket: Duration,
    /// The server models, in file order.
    pub providers: Vec<Provider>,
    /// Faults, in file order.
    pub storms: Vec<Storm>,
    /// Client populations, in file order.
    pub clients: Vec<Client>,
    /// The policies to compare, in the order the reports show them.
    pub policies: Vec<Policy>,
    /// The source text (for locating errors in the free-form policy tables).
    pub source: String,
}

/// A provider: a named server model and its models (keys).
#[derive(Clone, Debug, PartialEq)]
pub struct Provider {
    /// The provider's name (`anthropic`): the first half of a core `Key`.
    pub name: String,
    /// The server model.
    pub kind: ProviderKind,
    /// Its models; a provider that lists none has one, `default`, priced at zero.
    pub models: Vec<Model>,
}

/// The three server models.
#[derive(Clone, Debug, PartialEq)]
pub enum ProviderKind {
    /// An LLM API: rate limits per key, concurrency slots, a queue, overload 529s.
    Llm(LlmSpec),
    /// Independent failures with probability `p(t)`.
    Flaky(FlakySpec),
    /// One versioned row under optimistic concurrency (Brooker's experiment).
    Row(RowSpec),
}

/// Per-minute limits of one key; `None` is unlimited.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Limits {
    /// Requests per minute.
    pub rpm: Option<f64>,
    /// Input tokens per minute.
    pub input_tpm: Option<f64>,
    /// Output tokens per minute.
    pub output_tpm: Option<f64>,
}

/// An LLM API's capacity model.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct LlmSpec {
    /// How deep each token bucket is, in seconds of refill (`burst_s`, default 60: a full
    /// minute's allowance, as providers' continuously refilling buckets are).
    pub burst_s: f64,
    /// Requests served at once across all the provider's models.
    pub concurrency: u32,
    /// How many requests may wait for a slot; past it, 529.
    pub queue_limit: u32,
    /// Queue depth at which 529s start (probability 0 there)…
    pub overload_start: u32,
    /// …rising linearly to probability 1 at this depth.
    pub overload_full: u32,
    /// Time to first token, in ms.
    pub ttft_ms: LogNormal,
    /// Time per output token, in ms (one draw per request, times its output tokens).
    pub per_token_ms: LogNormal,
    /// How long a rejection (429, 529, connect error) takes to reach the client.
    pub reject: Duration,
}

/// A provider that fails independently.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct FlakySpec {
    /// Failure probability outside storms.
    pub failure_p: f64,
    /// The status failures carry (default 503).
    pub status: u16,
    /// Service latency in ms (`sigma = 0` is fixed).
    pub latency_ms: LogNormal,
    /// How long a rejection (connect error, quota) takes to reach the client.
    pub reject: Duration,
}

/// One contended row: every network hop takes `|N(mean, sd)|` ms.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct RowSpec {
    /// Mean of one hop, in ms (default 10).
    pub hop_mean_ms: f64,
    /// Standard deviation of one hop, in ms (default 2).
    pub hop_sd_ms: f64,
}

/// A model of a provider: a key, its prices and its own limits.
#[derive(Clone, Debug, PartialEq)]
pub struct Model {
    /// The model's name: the second half of a core `Key`.
    pub name: String,
    /// Dollars per million input tokens.
    pub input_price: f64,
    /// Dollars per million output tokens.
    pub output_price: f64,
    /// Multiplies this model's latency (default 1).
    pub latency_factor: f64,
    /// This key's limits: the model's own, else the provider's.
    pub limits: Limits,
    /// The probability that a successful answer's output is malformed (not the JSON
    /// or shape asked for): a route step with a validator sees it as an invalid
    /// output, one without delivers it (`malformed_output`, default 0).
    pub malformed_output: f64,
}

/// A fault: what happens, to whom, from when to when.
#[derive(Clone, Debug, PartialEq)]
pub struct Storm {
    /// An optional label for reports.
    pub name: Option<String>,
    /// When it starts (inclusive).
    pub from: Time,
    /// When it ends (exclusive).
    pub to: Time,
    /// A provider or a client population.
    pub target: StormTarget,
    /// What it does.
    pub fault: Fault,
}

/// What a storm acts on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StormTarget {
    /// `Scenario::providers[i]`.
    Provider(usize),
    /// `Scenario::clients[i]`.
    Clients(usize),
}

/// The named faults.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Fault {
    /// Capacity × `factor`: rate limits and concurrency.
    Squeeze {
        /// The multiplier (0 = no capacity).
        factor: f64,
    },
    /// Extra 529s with probability `p`, and/or concurrency × `concurrency_factor`.
    Overload {
        /// Extra overload probability, combined with the queue's as `1 − (1−a)(1−b)`.
        p: f64,
        /// Concurrency multiplier (1 = unchanged).
        concurrency_factor: f64,
    },
    /// Every attempt fails.
    Outage(OutageMode),
    /// Latency × `factor`.
    Latency {
        /// The multiplier.
        factor: f64,
    },
    /// Every attempt gets a permanent-quota 429 (`insufficient_quota`).
    Quota,
    /// A client population's arrival rate × `factor`.
    LoadSpike {
        /// The multiplier.
        factor: f64,
    },
}

/// How an outage fails attempts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OutageMode {
    /// Connections are refused.
    Connect,
    /// Connections hang until the client times out.
    Timeout,
}

/// A client population.
#[derive(Clone, Debug, PartialEq)]
pub struct Client {
    /// Its name.
    pub name: String,
    /// Open-loop arrivals or closed-loop workers.
    pub arrivals: Arrivals,
    /// Replicas: each has its own breakers and budgets; requests record their replica.
    pub replicas: u32,
    /// Share of requests that are deferrable (the rest are interactive).
    pub deferrable_share: f64,
    /// Input tokens per request.
    pub input_tokens: Tokens,
    /// Output tokens per request.
    pub output_tokens: Tokens,
    /// Each request's total deadline.
    pub deadline: Duration,
    /// A fixed number of requests instead of "until `duration`".
    pub requests: Option<u64>,
    /// The route each policy uses for these clients (`[policy.route.<name>]`), if named.
    pub route: Option<String>,
}

/// How requests arrive.
#[derive(Clone, Debug, PartialEq)]
pub enum Arrivals {
    /// Poisson arrivals at a piecewise-constant rate: the first step is at time zero.
    Open {
        /// Rate steps, sorted by time, starting at zero.
        steps: Vec<RateStep>,
    },
    /// `workers` loops: send, wait for the result, think, repeat.
    Closed {
        /// How many loops.
        workers: u32,
        /// Mean think time in ms (exponential).
        think_ms: f64,
    },
}

/// From `at` on, arrivals come at `rate_per_s`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct RateStep {
    /// When the rate takes effect.
    pub at: Time,
    /// Requests per second.
    pub rate_per_s: f64,
}

/// A token count distribution: log-normal, rounded and clamped to `[1, max]`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Tokens {
    /// The distribution.
    pub dist: LogNormal,
    /// The largest count.
    pub max: u32,
}

impl Tokens {
    /// One draw.
    pub fn sample<R: Rng + ?Sized>(&self, rng: &mut R) -> u32 {
        // A draw is never NaN; rounded as `f64::round` would, then clamped to [1, max]
        // (so the cast is exact).
        let x = crate::dist::round_to_u64(self.dist.sample(rng));
        x.clamp(1, u64::from(self.max.max(1))) as u32
    }

    /// The mean of the unclamped distribution, clamped to `[1, max]`: good enough to
    /// express a capacity in requests.
    #[must_use]
    pub fn approx_mean(&self) -> f64 {
        self.dist.mean().clamp(1.0, f64::from(self.max.max(1)))
    }
}

/// A policy to compare.
#[derive(Clone, Debug, PartialEq)]
pub struct Policy {
    /// Its name in reports.
    pub name: String,
    /// The preset it starts from.
    pub preset: Preset,
    /// Free-form `route` table (parsed by the driver with [`deserialize_table`]).
    pub route: Option<Located<toml::Table>>,
    /// Free-form `registry` table.
    pub registry: Option<Located<toml::Table>>,
    /// Free-form `plan` table.
    pub plan: Option<Located<toml::Table>>,
    /// Free-form `fleet` table ([`crate::fleet::FleetOptions`]).
    pub fleet: Option<Located<toml::Table>>,
}

/// A value with the path and location it came from.
#[derive(Clone, Debug, PartialEq)]
pub struct Located<T> {
    /// The value.
    pub value: T,
    /// Its path (`policy[2].route`).
    pub path: String,
    /// Where it is written.
    pub at: Location,
}

/// The policy presets.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Preset {
    /// Retry at once, a fixed number of times, no jitter, no breaker.
    Naive,
    /// What the providers' SDKs do by default (a few retries, short exponential backoff).
    SdkDefault,
    /// The article's recommendation: backoff with full jitter, honour Retry-After.
    Article,
    /// Breakwater's defaults: budgets, breakers, fallbacks, degradation.
    Breakwater,
    /// Everything from the policy's own tables.
    Custom,
}

impl Preset {
    /// The name used in scenario files (`sdk-default`).
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Preset::Naive => "naive",
            Preset::SdkDefault => "sdk-default",
            Preset::Article => "article",
            Preset::Breakwater => "breakwater",
            Preset::Custom => "custom",
        }
    }

    /// The preset called `name`, if any.
    #[must_use]
    pub fn from_name(name: &str) -> Option<Preset> {
        [
            Preset::Naive,
            Preset::SdkDefault,
            Preset::Article,
            Preset::Breakwater,
            Preset::Custom,
        ]
        .into_iter()
        .find(|p| p.as_str() == name)
    }
}

impl Scenario {
    /// Parses and validates a scenario.
    ///
    /// # Errors
    ///
    /// The first problem found, with its field path and line and column.
    pub fn from_toml(src: &str) -> Result<Scenario, ScenarioError> {
        let de =
            toml::Deserializer::parse(src).map_err(|e| ScenarioError::from_toml(src, "", &e))?;
        let raw: raw::RawScenario = serde_path_to_error::deserialize(de).map_err(|e| {
            let path = e.path().to_string();
            let path = if path == "." { String::new() } else { path };
            ScenarioError::from_toml(src, &path, e.inner())
        })?;
        build::build(src, raw)
    }

    /// The embedded default scenario, parsed.
    ///
    /// # Panics
    ///
    /// Never: a unit test parses [`DEFAULT_SCENARIO`].
    #[must_use]
    pub fn default_storm() -> Scenario {
        #[allow(clippy::expect_used)]
        Scenario::from_toml(DEFAULT_SCENARIO).expect("the embedded scenario is valid")
    }

    /// The window the storms cover: the earliest start to the latest end, if any.
    #[must_use]
    pub fn storm_window(&self) -> Option<(Time, Time)> {
        let from = self.storms.iter().map(|s| s.from).min()?;
        let to = self.storms.iter().map(|s| s.to).max()?;
        Some((from, to))
    }

    /// The end of the run as a time (clients stop sending then).
    #[must_use]
    pub fn end(&self) -> Time {
        Time::ZERO + self.duration
    }

    /// The index of the provider called `name`.
    #[must_use]
    pub fn provider_index(&self, name: &str) -> Option<usize> {
        self.providers.iter().position(|p| p.name == name)
    }

    /// Mean input and output tokens per request across the clients, weighted by their
    /// base rate (workers count as one request per second each): what capacities in
    /// requests per second are expressed against.
    #[must_use]
    pub fn token_mix(&self) -> TokenMix {
        let (mut w, mut input, mut output) = (0.0, 0.0, 0.0);
        for c in &self.clients {
            let weight = match &c.arrivals {
                Arrivals::Open { steps } => steps.iter().map(|s| s.rate_per_s).fold(0.0, f64::max),
                Arrivals::Closed { workers, .. } => f64::from(*workers),
            };
            w += weight;
            input += weight * c.input_tokens.approx_mean();
            output += weight * c.output_tokens.approx_mean();
        }
        if w > 0.0 {
            TokenMix {
                input: input / w,
                output: output / w,
            }
        } else {
            TokenMix {
                input: 1.0,
                output: 1.0,
            }
        }
    }
}

/// Mean tokens per request, for expressing token limits as requests per second.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct TokenMix {
    /// Mean input tokens per request.
    pub input: f64,
    /// Mean output tokens per request.
    pub output: f64,
}
