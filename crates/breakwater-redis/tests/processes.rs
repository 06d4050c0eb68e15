//! Two processes share a trip and a cooldown: this test re-runs its own binary as the
//! second replica (`child_role`, selected by an environment variable and run with
//! `--ignored`).

mod common;

use std::process::Command;
use std::time::Duration;

use breakwater_core::breaker::RejectReason;
use breakwater_core::{Class, Key};
use common::*;

const URL: &str = "BREAKWATER_FLEET_TEST_REDIS_URL";

fn other_key() -> Key {
    Key::new("openai", "gpt-4o-mini")
}

fn cooled_key() -> Key {
    Key::new("gemini", "gemini-2.0-flash")
}

fn cooling(breaker: &breakwater_core::Breaker) -> bool {
    matches!(
        breaker.admit(now()),
        breakwater_core::Admit::Rejected(r) if r.reason == RejectReason::CoolingDown
    )
}

async fn wait_long(what: &str, mut condition: impl FnMut() -> bool) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    while !condition() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_processes_share_a_trip_and_a_cooldown() {
    let server = RedisServer::start();
    let registry = registry();
    let mine = registry.breaker(&key()).unwrap();
    let theirs = registry.breaker(&other_key()).unwrap();
    let cooled = registry.breaker(&cooled_key()).unwrap();
    let sync = attach(&registry, config(&server, "procs")).await;
    let mut child = Command::new(std::env::current_exe().unwrap());
    child
        .args(["child_role", "--exact", "--ignored", "--nocapture"])
        .env(URL, server.url());
    let child = tokio::task::spawn_blocking(move || child.output());
    // The child trips its key; this process sees it.
    wait_long("the child's trip", || is_open(&theirs)).await;
    // This process trips its key and gets a Retry-After on another; the child waits to
    // see both, then exits.
    trip(&mine);
    let permit = cooled.admit(now()).into_result().unwrap();
    let limited = Class::RateLimited {
        retry_after: Some(Duration::from_secs(60)),
    };
    cooled.record(now(), permit, &limited, Duration::from_millis(5));
    let output = child.await.unwrap().unwrap();
    assert!(
        output.status.success(),
        "the child failed: {}\n{}{}",
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    sync.stop().await;
}

/// The second replica of [`two_processes_share_a_trip_and_a_cooldown`]; not a test on
/// its own.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "the child process of two_processes_share_a_trip_and_a_cooldown"]
async fn child_role() {
    let url = std::env::var(URL).expect("run by two_processes_share_a_trip_and_a_cooldown");
    let registry = registry();
    let parents = registry.breaker(&key()).unwrap();
    let cooled = registry.breaker(&cooled_key()).unwrap();
    let mine = registry.breaker(&other_key()).unwrap();
    let config = breakwater_redis::RedisFleetConfig {
        url,
        namespace: "procs".to_owned(),
        op_timeout: Duration::from_secs(1),
        ..breakwater_redis::RedisFleetConfig::default()
    };
    let sync = attach(&registry, config).await;
    tokio::time::sleep(Duration::from_millis(50)).await;
    trip(&mine);
    wait_long("the parent's trip", || is_open(&parents)).await;
    wait_long("the parent's cooldown", || cooling(&cooled)).await;
    sync.stop().await;
}
