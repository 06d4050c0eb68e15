//! `serve`: the simulator's provider models as a live HTTP server on loopback.
//!
//! The same [`provider`](crate::provider) models and storm timeline that `run` plays in
//! virtual time answer real HTTP requests here, in real time scaled by a speed factor:
//! virtual time is `start + real elapsed × speed`, so `speed = 10` plays a 60 s storm
//! in 6 s and divides every latency and every Retry-After by 10. Real clients (curl,
//! the official SDKs, `breakwater-http`'s `Client`) can then be run against a replayed
//! storm.
//!
//! ```no_run
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! use breakwater_sim::scenario::Scenario;
//! use breakwater_sim::serve::{ServeConfig, Server};
//!
//! let config = ServeConfig::new(Scenario::default_storm()).speed(10.0);
//! let running = Server::bind("127.0.0.1:0".parse()?, config).await?;
//! println!("base URL: {}", running.url());
//! // ... send requests ...
//! running.shutdown().await;
//! # Ok(()) }
//! ```
//!
//! # Endpoints
//!
//! Every served model answers in all three wire formats:
//!
//! | wire | endpoint | key |
//! |---|---|---|
//! | Anthropic Messages | `POST /v1/messages` | `x-api-key` or `Authorization: Bearer …` (and `anthropic-version`) |
//! | OpenAI Chat Completions | `POST /v1/chat/completions` | `Authorization: Bearer …` |
//! | Gemini | `POST /v1beta/models/{model}:generateContent`, `:streamGenerateContent?alt=sse` (also under `/v1/models/`) | `x-goog-api-key` or `?key=` |
//! | Anthropic Message Batches | `POST /v1/messages/batches`, `GET …/{id}`, `GET …/{id}/results`, `POST …/{id}/cancel` | as Messages |
//! | OpenAI Files and Batch | `POST /v1/files`, `GET /v1/files/{id}/content`, `POST /v1/batches`, `GET /v1/batches/{id}`, `POST …/{id}/cancel` | `Authorization: Bearer …` |
//!
//! Batches are processed on the serve clock over [`BatchSettings::turnaround`], each
//! request answered as the storm in force when it is processed decides; see the
//! `batch` module for the shapes and limits.
//!
//! Any non-empty key is accepted. A request names a model of the scenario: at the root
//! (`http://addr/v1/messages`) the model name must belong to exactly one provider; under
//! a provider's prefix (`http://addr/anthropic/v1/messages`, base URL
//! `http://addr/anthropic`) it is looked up in that provider. Every `llm` and `flaky`
//! provider is served; `row` providers are not. An unknown model or provider gets a 404,
//! a missing key a 401, a malformed body a 400 and a body over the limit
//! ([`ServeConfig::body_limit`], 4 MiB by default) a 413, each in the endpoint's own
//! error format.
//!
//! # What the model's answers look like
//!
//! | the model says | the client gets |
//! |---|---|
//! | started (at once, or after queueing) | 200 at the end of service; a stream opens when service starts, its text paced from the first token's time to the end |
//! | rate limited | 429 after the rejection delay, with the bucket's refill time ÷ speed as Retry-After (`retry-after`, `retry-after-ms`; Gemini: `RetryInfo.retryDelay`) |
//! | quota storm | 402 `billing_error` (Anthropic), 429 `insufficient_quota` (OpenAI), 429 `RESOURCE_EXHAUSTED` per-day quota (Gemini) |
//! | overloaded | 529 `overloaded_error` (Anthropic), 503 (OpenAI, Gemini `UNAVAILABLE`) |
//! | a failure status (flaky providers) | that status, in the wire's error shape |
//! | outage, `connect` | the connection closes without an answer (one port serves every provider, so a refusal cannot be had per provider: clients see a reset) |
//! | outage, `timeout` | nothing, until the client leaves |
//!
//! A success's text is seeded filler words, one per output token: the count is drawn
//! from the scenario's first client population and cut at the request's `max_tokens`.
//! Input tokens are estimated as prompt bytes ÷ 4. A client that leaves while its job
//! is queued or in service is reported to the model with `abandon`, as the simulator
//! does for an attempt that timed out: the work goes on and counts as wasted.
//!
//! The random streams are seeded as the simulator's (one ChaCha stream per provider
//! model, one for answers), but real-time arrival order is not deterministic: two runs
//! of `serve` need not answer alike.

mod batch;
mod catalog;
mod clock;
mod exchange;
mod filler;
mod http;
mod route;
mod state;
mod wire;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use breakwater_core::Time;
use tokio::net::TcpListener;
use tokio::task::JoinHandle;

pub use batch::{BatchSettings, BatchStats};
pub use catalog::ServedModel;

use crate::provider::ServerStats;
use crate::scenario::Scenario;
use clock::VirtualClock;
use state::Shared;

/// The default largest request body: 4 MiB.
pub const DEFAULT_BODY_LIMIT: usize = 4 << 20;

/// How to serve a scenario.
#[derive(Clone, Debug)]
pub struct ServeConfig {
    /// The providers, their models and the storm timeline.
    pub scenario: Scenario,
    /// Virtual seconds per real second (1 = real time; 10 = ten times as fast).
    pub speed: f64,
    /// The virtual time at which serving starts: skip a quiet lead-in and start in the
    /// middle of a storm.
    pub start: Duration,
    /// Stop by itself after this much real time; `None` runs until
    /// [`Running::shutdown`] (or drop).
    pub duration: Option<Duration>,
    /// The root seed of the random streams (the scenario's by default).
    pub seed: u64,
    /// The largest request body read; a larger one gets a 413.
    pub body_limit: usize,
    /// How batches are run: turnaround, expiry, limits.
    pub batch: BatchSettings,
}

impl ServeConfig {
    /// `scenario` in real time from its beginning, until stopped, with its own seed.
    #[must_use]
    pub fn new(scenario: Scenario) -> ServeConfig {
        ServeConfig {
            seed: scenario.seed,
            scenario,
            speed: 1.0,
            start: Duration::ZERO,
            duration: None,
            body_limit: DEFAULT_BODY_LIMIT,
            batch: BatchSettings::default(),
        }
    }

    /// Sets [`batch`](Self::batch).
    #[must_use]
    pub fn batch(mut self, batch: BatchSettings) -> ServeConfig {
        self.batch = batch;
        self
    }

    /// Sets [`speed`](Self::speed).
    #[must_use]
    pub fn speed(mut self, speed: f64) -> ServeConfig {
        self.speed = speed;
        self
    }

    /// Sets [`start`](Self::start).
    #[must_use]
    pub fn start(mut self, start: Duration) -> ServeConfig {
        self.start = start;
        self
    }

    /// Sets [`duration`](Self::duration).
    #[must_use]
    pub fn duration(mut self, duration: Duration) -> ServeConfig {
        self.duration = Some(duration);
        self
    }

    /// Sets [`seed`](Self::seed).
    #[must_use]
    pub fn seed(mut self, seed: u64) -> ServeConfig {
        self.seed = seed;
        self
    }
}

/// Why `serve` could not start.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ServeError {
    /// The speed is not a finite positive number.
    #[error("speed must be a finite number above zero, found {0}")]
    Speed(f64),
    /// The start time is too far out to be a virtual time.
    #[error("start must be under 584 years")]
    Start,
    /// The scenario has no provider that `serve` can answer for.
    #[error("the scenario has no `llm` or `flaky` provider to serve")]
    NothingToServe,
    /// The address could not be bound.
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        /// The address asked for.
        addr: SocketAddr,
        /// What the OS said.
        source: std::io::Error,
    },
}

/// Starts servers; see [`Server::bind`].
#[derive(Debug)]
pub struct Server;

impl Server {
    /// Binds `addr` and serves `config` on it until the returned handle is shut down,
    /// dropped, or its `duration` has passed. Must be called inside a tokio runtime.
    ///
    /// # Errors
    ///
    /// [`ServeError`]: a bad speed, a scenario with nothing to serve, an address that
    /// cannot be bound.
    pub async fn bind(addr: SocketAddr, config: ServeConfig) -> Result<Running, ServeError> {
        if !(config.speed.is_finite() && config.speed > 0.0) {
            return Err(ServeError::Speed(config.speed));
        }
        let start = u64::try_from(config.start.as_nanos()).map_err(|_| ServeError::Start)?;
        if catalog::Catalog::of(&config.scenario).models().is_empty() {
            return Err(ServeError::NothingToServe);
        }
        let listener = TcpListener::bind(addr)
            .await
            .map_err(|source| ServeError::Bind { addr, source })?;
        let local_addr = listener
            .local_addr()
            .map_err(|source| ServeError::Bind { addr, source })?;
        let clock = VirtualClock::start(Time::from_nanos(start), config.speed);
        let shared = Arc::new(Shared::new(
            &config.scenario,
            config.seed,
            clock,
            config.body_limit,
            config.batch.clone(),
        ));
        let models = shared.catalog.models();
        let mut tasks = vec![
            tokio::spawn(state::drive(Arc::clone(&shared))),
            tokio::spawn(http::accept(listener, Arc::clone(&shared))),
        ];
        if let Some(duration) = config.duration {
            let shared = Arc::clone(&shared);
            tasks.push(tokio::spawn(async move {
                tokio::select! {
                    () = tokio::time::sleep(duration) => shared.stop(),
                    () = shared.stopped() => {}
                }
            }));
        }
        Ok(Running {
            local_addr,
            shared,
            models,
            tasks,
        })
    }
}

/// A server that is running. Dropping it stops the server (in the background);
/// [`shutdown`](Self::shutdown) stops it and waits.
#[derive(Debug)]
pub struct Running {
    local_addr: SocketAddr,
    shared: Arc<Shared>,
    models: Vec<ServedModel>,
    tasks: Vec<JoinHandle<()>>,
}

impl Running {
    /// The address it listens on.
    #[must_use]
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// The root base URL, `http://127.0.0.1:PORT`.
    #[must_use]
    pub fn url(&self) -> String {
        format!("http://{}", self.local_addr)
    }

    /// The base URL of one provider's models, `http://127.0.0.1:PORT/<provider>`.
    #[must_use]
    pub fn provider_url(&self, provider: &str) -> String {
        format!("http://{}/{provider}", self.local_addr)
    }

    /// The models it answers for.
    #[must_use]
    pub fn models(&self) -> &[ServedModel] {
        &self.models
    }

    /// Scenario providers it does not serve (`row` providers).
    #[must_use]
    pub fn skipped(&self) -> &[String] {
        self.shared.catalog.skipped()
    }

    /// The virtual time now.
    #[must_use]
    pub fn virtual_now(&self) -> Time {
        self.shared.clock.now()
    }

    /// The real time until virtual time `t` (zero if it has passed).
    #[must_use]
    pub fn real_until(&self, t: Time) -> Duration {
        self.shared
            .clock
            .real(t.saturating_duration_since(self.virtual_now()))
    }

    /// Each served provider's counters (arrivals, served, 429s, 529s, wasted work…).
    #[must_use]
    pub fn stats(&self) -> Vec<(String, ServerStats)> {
        self.shared.stats()
    }

    /// What the batch APIs have done: batches created, and their requests by state
    /// as they stand now.
    #[must_use]
    pub fn batch_stats(&self) -> BatchStats {
        self.shared.batches.lock().stats(self.virtual_now())
    }

    /// Resolves when the server has been asked to stop (its duration passed, or
    /// [`shutdown`](Self::shutdown) was called).
    pub async fn stopped(&self) {
        self.shared.stopped().await;
    }

    /// Stops accepting, cuts answers in progress, and waits for the tasks to end.
    pub async fn shutdown(mut self) {
        self.shared.stop();
        for task in self.tasks.drain(..) {
            // A task that panicked has nothing left to stop.
            let _ = task.await;
        }
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        self.shared.stop();
    }
}

/// Parses a span as the CLI takes it: `500ms`, `60s`, `2m`, `1h`, or bare seconds
/// (`1.5`).
///
/// # Errors
///
/// A message naming the text that is not a span.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let t = text.trim();
    let (number, unit) = match t.find(|c: char| c.is_ascii_alphabetic()) {
        Some(i) => t.split_at(i),
        None => (t, "s"),
    };
    let scale = match unit {
        "ms" => 1e-3,
        "s" => 1.0,
        "m" => 60.0,
        "h" => 3600.0,
        _ => {
            return Err(format!(
                "{text:?} is not a duration (use 500ms, 60s, 2m or 1h)"
            ));
        }
    };
    number
        .trim()
        .parse::<f64>()
        .ok()
        .filter(|n| n.is_finite() && *n >= 0.0)
        .and_then(|n| Duration::try_from_secs_f64(n * scale).ok())
        .ok_or_else(|| format!("{text:?} is not a duration (use 500ms, 60s, 2m or 1h)"))
}

impl std::fmt::Debug for Shared {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Shared")
            .field("clock", &self.clock)
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_parse_with_units() {
        assert_eq!(parse_duration("60s"), Ok(Duration::from_secs(60)));
        assert_eq!(parse_duration("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(parse_duration("2m"), Ok(Duration::from_secs(120)));
        assert_eq!(parse_duration("1h"), Ok(Duration::from_secs(3600)));
        assert_eq!(parse_duration("1.5"), Ok(Duration::from_millis(1500)));
        for bad in ["", "s", "-1s", "10x", "1e400s", "NaN", "ten"] {
            assert!(parse_duration(bad).is_err(), "{bad:?}");
        }
    }
}
