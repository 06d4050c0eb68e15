//! The soak's parts, shared by the `soak` example and `tests/soak.rs`: `serve` on
//! loopback with a storm, one `breakwater_http::Client` driven with many requests in
//! flight, and what the process holds (RSS, file descriptors, tokio tasks) read from
//! `/proc/self` and the runtime's metrics.
//!
//! Latency figures, per request:
//!
//! - **end to end**: the client's `complete` call, from the call to its answer;
//! - **added**: end to end minus the time its attempts were out (the sum of the
//!   attempt latencies in the request's history: send to outcome, as the adapter
//!   measured them). What is left is what the adapter added: planning, waiting for a
//!   connection or a task slot, backoff waits, the cache, bookkeeping.
//!
//! And a **baseline**: the same requests sent with a bare `reqwest` client straight to
//! the healthy provider, at the same concurrency, to compare end-to-end times with.
#![allow(dead_code)]
// the example and the test each use their own subset
// Measuring real elapsed time is the point here; nothing decides on it.
#![allow(clippy::disallowed_methods)]

use std::time::{Duration, Instant};

use breakwater_core::plan::EntryEvent;
use breakwater_core::{RouteConfig, TaskKind};
use breakwater_http::cache::ResponseCache;
use breakwater_http::wire::{Provider, Request};
use breakwater_http::{CallOptions, Client};
use breakwater_sim::scenario::Scenario;
use breakwater_sim::serve::{Running, ServeConfig, Server};
use futures_util::StreamExt;

/// Two providers: `anthropic` sheds every request with 529 for the whole run,
/// `openai` answers, with room for every request in flight.
pub(crate) const STORM: &str = r#"
name = "soak: anthropic overloaded throughout, openai healthy"
seed = 7
duration_s = 36000

[[provider]]
name = "anthropic"
kind = "llm"
rpm = 6_000_000
input_tpm = 6_000_000_000
output_tpm = 6_000_000_000
concurrency = 2000
queue_limit = 4000
overload_start = 4000
overload_full = 8000
reject_ms = 20
ttft = { median_ms = 300, sigma = 0.2 }
per_token = { median_ms = 4, sigma = 0.2 }

[[provider.model]]
name = "claude-sonnet-4-5"
input_price = 3.0
output_price = 15.0

[[provider]]
name = "openai"
kind = "llm"
rpm = 6_000_000
input_tpm = 6_000_000_000
output_tpm = 6_000_000_000
concurrency = 2000
queue_limit = 4000
overload_start = 4000
overload_full = 8000
reject_ms = 20
ttft = { median_ms = 200, sigma = 0.2 }
per_token = { median_ms = 4, sigma = 0.2 }

[[provider.model]]
name = "gpt-4o-mini"
input_price = 0.15
output_price = 0.60

[[storm]]
name = "529-throughout"
kind = "overload"
provider = "anthropic"
from_s = 0
to_s = 36000
p = 1.0

[[clients]]
name = "chat"
kind = "open"
rate_per_s = 20
input_tokens = { median = 200, sigma = 0.5, max = 4_000 }
output_tokens = { median = 20, sigma = 0.3, max = 64 }
deadline_ms = 10_000

[[policy]]
name = "breakwater"
preset = "breakwater"
"#;

/// [`STORM`] with every provider down: connections close without an answer.
pub(crate) fn all_down() -> String {
    let outage = |provider: &str| {
        format!(
            "\n[[storm]]\nname = \"{provider}-down\"\nkind = \"outage\"\nprovider = \"{provider}\"\n\
             from_s = 0\nto_s = 36000\nmode = \"connect\"\n"
        )
    };
    let (head, tail) = STORM
        .split_once("[[storm]]")
        .expect("the storm scenario has a storm");
    let (_, clients) = tail
        .split_once("[[clients]]")
        .expect("the storm scenario has clients");
    format!(
        "{head}{}{}\n[[clients]]{clients}",
        outage("anthropic"),
        outage("openai")
    )
}

/// `serve` for `toml` on a free loopback port, `speed` times real time.
pub(crate) async fn serve(toml: &str, speed: f64) -> Running {
    let scenario = Scenario::from_toml(toml).expect("the soak scenario parses");
    let addr = "127.0.0.1:0".parse().expect("loopback address");
    Server::bind(addr, ServeConfig::new(scenario).speed(speed))
        .await
        .expect("serve binds loopback")
}

/// A reqwest client that never goes through a proxy.
pub(crate) fn http() -> reqwest::Client {
    reqwest::Client::builder()
        .no_proxy()
        .build()
        .expect("reqwest")
}

/// The client: route `chat`, `anthropic` then `openai`, two attempts each, with a
/// response cache of 1,000 entries (every prompt differs: it fills and stays full).
pub(crate) fn client(server: &Running) -> Client {
    let route = RouteConfig::from_toml(
        r#"
        name = "chat"
        [backoff]
        base_ms = 5
        cap_ms = 40
        [[step]]
        provider = "anthropic"
        model = "claude-sonnet-4-5"
        attempts = 2
        timeout_ms = 5000
        [[step]]
        provider = "openai"
        model = "gpt-4o-mini"
        attempts = 2
        timeout_ms = 5000
        "#,
    )
    .expect("route parses");
    Client::builder()
        .provider(
            "anthropic",
            Provider::Anthropic,
            server.provider_url("anthropic"),
            "k-a",
        )
        .provider(
            "openai",
            Provider::OpenAi,
            server.provider_url("openai"),
            "k-o",
        )
        .route(route)
        .cache(ResponseCache::new(Duration::from_secs(600), 1000))
        .seed(11)
        .http_client(http())
        .build()
        .expect("client builds")
}

/// Request `i`: a prompt of its own.
pub(crate) fn request(i: u64) -> Request {
    Request::new(64)
        .system("Be brief.")
        .user(format!("Soak request {i}: say hello."))
}

/// What a load run measured.
#[derive(Debug, Default)]
pub(crate) struct Samples {
    /// Requests answered by a provider.
    pub(crate) answered: u64,
    /// Requests answered degraded (from the cache, or empty).
    pub(crate) degraded: u64,
    /// Requests that ended in an error.
    pub(crate) failed: u64,
    /// End-to-end time of each request.
    pub(crate) end_to_end: Vec<Duration>,
    /// End to end less the time its attempts were out, per request.
    pub(crate) added: Vec<Duration>,
    /// The whole run.
    pub(crate) wall: Duration,
}

impl Samples {
    /// Requests per second over the run.
    pub(crate) fn throughput(&self) -> f64 {
        self.end_to_end.len() as f64 / self.wall.as_secs_f64()
    }
}

/// Sends requests `first..first + n` through `client`, `in_flight` at a time.
pub(crate) async fn drive(client: &Client, first: u64, n: u64, in_flight: usize) -> Samples {
    let deadline = Duration::from_secs(60);
    let started = Instant::now();
    let calls = futures_util::stream::iter(first..first + n).map(|i| async move {
        let request = request(i);
        let sent = Instant::now();
        let result = client
            .complete_with(
                "chat",
                &request,
                TaskKind::Interactive,
                deadline,
                CallOptions::new(),
                |_| {},
            )
            .await;
        (sent.elapsed(), result)
    });
    let mut calls = calls.buffer_unordered(in_flight.max(1));
    let mut samples = Samples::default();
    while let Some((took, result)) = calls.next().await {
        samples.end_to_end.push(took);
        match result {
            Ok(done) => {
                if done.is_degraded() {
                    samples.degraded += 1;
                } else {
                    samples.answered += 1;
                }
                let out: Duration = done
                    .history
                    .entries()
                    .filter_map(|entry| match entry.event {
                        EntryEvent::Attempt { latency, .. } => Some(latency),
                        _ => None,
                    })
                    .sum();
                samples.added.push(took.saturating_sub(out));
            }
            Err(_) => samples.failed += 1,
        }
    }
    samples.wall = started.elapsed();
    samples
}

/// The baseline: requests `0..n` rendered for OpenAI and posted with a bare reqwest
/// client straight to `server`'s healthy `openai`, `in_flight` at a time.
pub(crate) async fn baseline(server: &Running, n: u64, in_flight: usize) -> Samples {
    let http = http();
    let base = server.provider_url("openai");
    let started = Instant::now();
    let calls = futures_util::stream::iter(0..n).map(|i| {
        let (http, base) = (http.clone(), base.clone());
        async move {
            let rendered = Provider::OpenAi.render(&request(i), "gpt-4o-mini", None, false);
            let auth = Provider::OpenAi.auth_header("k-o");
            let mut builder = http
                .post(format!("{base}{}", rendered.path))
                .header(auth.name(), auth.value())
                .body(rendered.body);
            for (name, value) in &rendered.headers {
                builder = builder.header(*name, value.as_str());
            }
            let sent = Instant::now();
            let ok = match builder.send().await {
                Ok(response) => {
                    let ok = response.status().is_success();
                    response.bytes().await.is_ok() && ok
                }
                Err(_) => false,
            };
            (sent.elapsed(), ok)
        }
    });
    let mut calls = calls.buffer_unordered(in_flight.max(1));
    let mut samples = Samples::default();
    while let Some((took, ok)) = calls.next().await {
        samples.end_to_end.push(took);
        if ok {
            samples.answered += 1;
        } else {
            samples.failed += 1;
        }
    }
    samples.wall = started.elapsed();
    samples
}

/// The `q` quantile (0..=1) of `values`, nearest rank; zero for none.
pub(crate) fn quantile(values: &[Duration], q: f64) -> Duration {
    if values.is_empty() {
        return Duration::ZERO;
    }
    let mut sorted = values.to_vec();
    sorted.sort_unstable();
    let rank = ((q * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len());
    sorted[rank - 1]
}

/// What the process holds at one moment.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Held {
    /// Resident memory now, KiB (`VmRSS`).
    pub(crate) rss_kib: u64,
    /// The most resident memory so far, KiB (`VmHWM`).
    pub(crate) peak_kib: u64,
    /// Open file descriptors (entries of `/proc/self/fd`).
    pub(crate) fds: usize,
    /// The runtime's tasks not yet finished.
    pub(crate) tasks: usize,
}

/// What the process holds now (inside a tokio runtime).
pub(crate) fn held() -> Held {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let field = |name: &str| {
        status
            .lines()
            .find_map(|line| line.strip_prefix(name))
            .and_then(|rest| rest.trim().trim_end_matches("kB").trim().parse().ok())
            .unwrap_or(0)
    };
    Held {
        rss_kib: field("VmRSS:"),
        peak_kib: field("VmHWM:"),
        fds: std::fs::read_dir("/proc/self/fd").map_or(0, Iterator::count),
        tasks: tokio::runtime::Handle::current()
            .metrics()
            .num_alive_tasks(),
    }
}

/// Waits (at most `patience`) until the open descriptors and tasks are back to
/// `start`'s, as connections close and their tasks end; returns what is held then.
pub(crate) async fn settle(start: Held, patience: Duration) -> Held {
    let until = Instant::now() + patience;
    loop {
        let now = held();
        if (now.fds <= start.fds && now.tasks <= start.tasks) || Instant::now() >= until {
            return now;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}
