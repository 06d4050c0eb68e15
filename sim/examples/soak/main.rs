//! A bounded soak of `breakwater-http` against `serve` on loopback.
//!
//! ```text
//! cargo run --release -p breakwater-sim --example soak [requests] [in-flight]
//! ```
//!
//! (10,000 requests with 500 in flight by default.) Phase 1 serves a storm (every
//! request to `anthropic` gets 529; `openai` answers) and drives one client through
//! it; it prints throughput, end-to-end and added latency (see `driver.rs` for the
//! definitions) against a bare-reqwest baseline, peak RSS, and the open file
//! descriptors and tokio tasks before, with the client still alive (its idle
//! connections pooled), and after it is dropped. Phase 2 takes every provider down and
//! sends the same number of requests twice over, printing resident memory after each
//! round: it must not grow with the number of requests.

mod driver;

use std::time::Duration;

use driver::{Held, Samples, held, quantile};

fn main() {
    let mut args = std::env::args().skip(1);
    let requests: u64 = args.next().and_then(|a| a.parse().ok()).unwrap_or(10_000);
    let in_flight: usize = args.next().and_then(|a| a.parse().ok()).unwrap_or(500);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(soak(requests, in_flight));
}

async fn soak(requests: u64, in_flight: usize) {
    println!("soak: {requests} requests, {in_flight} in flight, serve at 10x speed");
    let server = driver::serve(driver::STORM, 10.0).await;
    let start = held();
    let base = driver::baseline(&server, requests, in_flight).await;
    report("baseline (bare reqwest, straight to openai)", &base);

    let client = driver::client(&server);
    let storm = driver::drive(&client, 0, requests, in_flight).await;
    report("breakwater client through the 529 storm", &storm);
    println!(
        "  added latency (end to end less attempts out): p50 {:.2?}, p99 {:.2?}, max {:.2?}",
        quantile(&storm.added, 0.5),
        quantile(&storm.added, 0.99),
        quantile(&storm.added, 1.0)
    );
    let over = |q: f64| {
        let (ours, bare) = (
            quantile(&storm.end_to_end, q),
            quantile(&base.end_to_end, q),
        );
        ours.as_secs_f64() * 1e3 - bare.as_secs_f64() * 1e3
    };
    println!(
        "  end to end less the baseline's: p50 {:+.2} ms, p99 {:+.2} ms",
        over(0.5),
        over(0.99)
    );
    let m = client.metrics();
    println!(
        "  client metrics: {} requests, {} attempts, {} fallbacks, {} degraded, {} failed",
        m.requests, m.attempts, m.fallbacks, m.degraded, m.failed
    );
    let alive = held();
    drop(client);
    let after = driver::settle(start, Duration::from_secs(10)).await;
    print_held("start", start);
    print_held("end, client alive", alive);
    print_held("end, client dropped", after);
    server.shutdown().await;

    println!("every provider down:");
    let server = driver::serve(&driver::all_down(), 10.0).await;
    let client = driver::client(&server);
    let warm = driver::drive(&client, 0, requests / 5, in_flight).await;
    let after_warm = held();
    let round = driver::drive(&client, requests, requests, in_flight).await;
    report("  round 1", &round);
    let after_one = held();
    let round = driver::drive(&client, 2 * requests, requests, in_flight).await;
    report("  round 2", &round);
    let after_two = held();
    println!(
        "  RSS after warm-up ({} requests) {} KiB, after round 1 {} KiB, after round 2 {} KiB \
         ({:+} KiB)",
        warm.end_to_end.len(),
        after_warm.rss_kib,
        after_one.rss_kib,
        after_two.rss_kib,
        i128::from(after_two.rss_kib) - i128::from(after_one.rss_kib)
    );
    drop(client);
    server.shutdown().await;
}

fn report(name: &str, s: &Samples) {
    println!(
        "{name}: {} answered, {} degraded, {} failed in {:.2?}: {:.0} req/s; \
         end to end p50 {:.2?}, p99 {:.2?}, max {:.2?}",
        s.answered,
        s.degraded,
        s.failed,
        s.wall,
        s.throughput(),
        quantile(&s.end_to_end, 0.5),
        quantile(&s.end_to_end, 0.99),
        quantile(&s.end_to_end, 1.0)
    );
}

fn print_held(when: &str, h: Held) {
    println!(
        "  {when:>20}: RSS {} KiB (peak {} KiB), {} fds, {} tokio tasks",
        h.rss_kib, h.peak_kib, h.fds, h.tasks
    );
}
