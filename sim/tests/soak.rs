//! A reduced soak (the `soak` example's parts): 2,000 requests with 200 in flight
//! through one `breakwater_http::Client` against `serve` during a 529 storm, after
//! which the open file descriptors and tokio tasks are back to their starting count;
//! and with every provider down, resident memory does not grow with the number of
//! requests. No timing is asserted.

#[path = "../examples/soak/driver.rs"]
mod driver;

use std::time::Duration;

const REQUESTS: u64 = 2_000;
const IN_FLIGHT: usize = 200;

/// Descriptors and resident memory are the whole process's: one test at a time.
static ALONE: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn alone() -> std::sync::MutexGuard<'static, ()> {
    ALONE
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime")
}

#[test]
fn descriptors_and_tasks_return_to_the_start_after_a_storm() {
    let _alone = alone();
    runtime().block_on(async {
        let server = driver::serve(driver::STORM, 10.0).await;
        let start = driver::held();
        let client = driver::client(&server);
        let run = driver::drive(&client, 0, REQUESTS, IN_FLIGHT).await;
        assert_eq!(run.end_to_end.len() as u64, REQUESTS);
        // Every request rides the storm out on `openai` (the deadline is generous).
        assert_eq!((run.answered, run.failed), (REQUESTS, 0), "{run:?}");
        let m = client.metrics();
        assert_eq!(m.requests, REQUESTS);
        assert!(m.fallbacks > 0, "the storm made the client fall back");
        let alive = driver::held();
        assert!(
            alive.fds > start.fds,
            "pooled connections hold descriptors while the client lives: {alive:?} {start:?}"
        );
        drop(client);
        let end = driver::settle(start, Duration::from_secs(30)).await;
        assert_eq!(
            (end.fds, end.tasks),
            (start.fds, start.tasks),
            "start {start:?}, client alive {alive:?}, dropped {end:?}"
        );
        server.shutdown().await;
    });
}

#[test]
fn memory_does_not_grow_with_requests_when_every_provider_is_down() {
    let _alone = alone();
    runtime().block_on(async {
        let server = driver::serve(&driver::all_down(), 10.0).await;
        let client = driver::client(&server);
        // Warm up: pools, caches and allocator arenas reach their working size.
        let warm = driver::drive(&client, 0, REQUESTS, IN_FLIGHT).await;
        assert_eq!(warm.answered, 0, "nothing can answer: {warm:?}");
        let after_warm = driver::held();
        let one = driver::drive(&client, REQUESTS, REQUESTS, IN_FLIGHT).await;
        let after_one = driver::held();
        let two = driver::drive(&client, 2 * REQUESTS, 2 * REQUESTS, IN_FLIGHT).await;
        let after_two = driver::held();
        for run in [&one, &two] {
            assert_eq!(run.answered, 0);
            assert_eq!(run.degraded + run.failed, run.end_to_end.len() as u64);
        }
        // Twice the requests again, and resident memory stays within a small fixed
        // margin of where one round left it: nothing grows per request.
        let margin_kib = 8 * 1024;
        assert!(
            after_two.rss_kib <= after_one.rss_kib + margin_kib,
            "RSS after warm-up {} KiB, after {REQUESTS} more {} KiB, after {} more {} KiB",
            after_warm.rss_kib,
            after_one.rss_kib,
            2 * REQUESTS,
            after_two.rss_kib
        );
        drop(client);
        server.shutdown().await;
    });
}
