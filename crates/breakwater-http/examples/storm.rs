//! A 529 storm, replayed live against the real client.
//!
//! `breakwater-sim`'s `serve` plays `sim/scenarios/serve-529.toml` in-process at 10×
//! speed (its minute in six seconds: Anthropic answers every request with 529
//! `overloaded_error` from 10 s to 30 s, OpenAI stays healthy), and a
//! [`breakwater_http::Client`] sends requests spread evenly across the minute through a
//! route that falls back from Anthropic to OpenAI. At the end it prints how the
//! requests ended before, during and after the storm, the client's metrics, and what
//! the server saw.
//!
//! ```sh
//! cargo run -p breakwater-http --example storm            # 300 requests
//! cargo run -p breakwater-http --example storm -- 1000    # or as many as you like
//! ```

use std::error::Error;
use std::time::Duration;

use breakwater_core::{RouteConfig, TaskKind};
use breakwater_http::wire::{Provider, Request};
use breakwater_http::{Client, Error as CallError};
use breakwater_sim::scenario::Scenario;
use breakwater_sim::serve::{ServeConfig, Server};

const SCENARIO: &str = include_str!("../../../sim/scenarios/serve-529.toml");
const SPEED: f64 = 10.0;

const ROUTE: &str = r#"
name = "chat"
[backoff]
base_ms = 50
cap_ms = 400
[[step]]
provider = "anthropic"
model = "claude-sonnet-4-5"
attempts = 2
timeout_ms = 10000
[[step]]
provider = "openai"
model = "gpt-4o-mini"
attempts = 2
timeout_ms = 10000
"#;

/// How one request ended.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Ending {
    Primary,
    Fallback,
    Degraded,
    Queued,
    Failed,
}

const ENDINGS: [(Ending, &str); 5] = [
    (Ending::Primary, "anthropic"),
    (Ending::Fallback, "fallback"),
    (Ending::Degraded, "degraded"),
    (Ending::Queued, "queued"),
    (Ending::Failed, "failed"),
];

#[tokio::main]
async fn main() -> Result<(), Box<dyn Error>> {
    let requests: u32 = match std::env::args().nth(1) {
        None => 300,
        Some(n) => n
            .parse()
            .ok()
            .filter(|&n| n > 0)
            .ok_or("usage: storm [REQUESTS] (a positive number)")?,
    };
    let scenario = Scenario::from_toml(SCENARIO)?;
    let (storm_from, storm_to) = scenario.storm_window().ok_or("the scenario has no storm")?;
    let minute = scenario.duration;
    let server = Server::bind(
        "127.0.0.1:0".parse()?,
        ServeConfig::new(scenario).speed(SPEED),
    )
    .await?;
    println!(
        "serving the 529 storm at {} ({}x: {:.0} s of scenario in {:.1} s)",
        server.url(),
        SPEED,
        minute.as_secs_f64(),
        minute.as_secs_f64() / SPEED
    );
    let client = Client::builder()
        .provider(
            "anthropic",
            Provider::Anthropic,
            server.provider_url("anthropic"),
            "demo-key",
        )
        .provider(
            "openai",
            Provider::OpenAi,
            server.provider_url("openai"),
            "demo-key",
        )
        .route(RouteConfig::from_toml(ROUTE)?)
        .seed(7)
        .http_client(reqwest::Client::builder().no_proxy().build()?)
        .build()?;

    // Spread the requests evenly over the scenario's minute of virtual time.
    let real_span = minute.div_f64(SPEED);
    let began = tokio::time::Instant::now();
    let mut calls = tokio::task::JoinSet::new();
    for i in 0..requests {
        let client = client.clone();
        let at = real_span.mul_f64(f64::from(i) / f64::from(requests));
        let virtual_at = minute.mul_f64(f64::from(i) / f64::from(requests));
        calls.spawn(async move {
            tokio::time::sleep_until(began + at).await;
            let request = Request::new(128).user("Summarise the harbour report.");
            let result = client
                .complete(
                    "chat",
                    &request,
                    TaskKind::Interactive,
                    Duration::from_secs(10),
                )
                .await;
            let ending = match result {
                Ok(done) if done.is_degraded() => Ending::Degraded,
                Ok(done) if done.fallback => Ending::Fallback,
                Ok(_) => Ending::Primary,
                Err(CallError::Queued { .. }) => Ending::Queued,
                Err(_) => Ending::Failed,
            };
            (virtual_at, ending)
        });
    }
    // Phases: before the storm, during it, after it.
    let mut counts = [[0u32; 5]; 3];
    while let Some(joined) = calls.join_next().await {
        let (at, ending) = joined?;
        let phase = if at < storm_from - breakwater_core::Time::ZERO {
            0
        } else if at < storm_to - breakwater_core::Time::ZERO {
            1
        } else {
            2
        };
        let column = ENDINGS.iter().position(|(e, _)| *e == ending).unwrap_or(4);
        counts[phase][column] += 1;
    }

    println!("\nhow requests ended (answered by)");
    print!("{:<28}", "");
    for (_, name) in ENDINGS {
        print!("{name:>10}");
    }
    println!();
    let secs = |d: Duration| d.as_secs_f64();
    let from = secs(storm_from - breakwater_core::Time::ZERO);
    let to = secs(storm_to - breakwater_core::Time::ZERO);
    let phases = [
        format!("before the storm (0-{from:.0} s)"),
        format!("during the storm ({from:.0}-{to:.0} s)"),
        format!("after it ({to:.0}-{:.0} s)", secs(minute)),
    ];
    for (phase, row) in phases.iter().zip(counts) {
        print!("{phase:<28}");
        for n in row {
            print!("{n:>10}");
        }
        println!();
    }

    let m = client.metrics();
    println!("\nclient metrics");
    println!(
        "  requests {}  attempts {} ({:.2} per request)  retries {}  fallbacks {} ({:.1}%)",
        m.requests,
        m.attempts,
        m.attempts_per_request,
        m.retries,
        m.fallbacks,
        m.fallback_rate * 100.0
    );
    println!(
        "  successes {}  degraded {}  queued {}  failed {}",
        m.successes, m.degraded, m.queued, m.failed
    );
    println!(
        "  latency p50 {:.0} ms  p95 {:.0} ms  p99 {:.0} ms  max {:.0} ms (real time)",
        m.latency.p50_ms, m.latency.p95_ms, m.latency.p99_ms, m.latency.max_ms
    );
    for k in &m.per_key {
        println!(
            "  {}/{}: {} attempts, {} succeeded, {} overloaded, {} rate-limited",
            k.provider, k.model, k.attempts, k.successes, k.overloaded, k.rate_limited
        );
    }
    println!("\nwhat the server saw");
    for (name, s) in server.stats() {
        println!(
            "  {name}: {} requests, {} served, {} overloaded (529/503), {} rate-limited",
            s.arrivals, s.served, s.overloaded, s.rate_limited
        );
    }
    server.shutdown().await;
    Ok(())
}
