//! Redis killed or hung mid-run: requests keep flowing on local state, never wait on
//! Redis, and the fleet resynchronises when Redis is back.

mod common;

use std::time::Duration;

use breakwater_core::budget::RetryReason;
use breakwater_core::{Admit, Class, Key, State};
use breakwater_redis::RedisFleetConfig;
use common::*;
use tokio::time::Instant;

/// The default 20 ms operation bound, and quick reconnects.
fn fault_config(server: &RedisServer, namespace: &str) -> RedisFleetConfig {
    RedisFleetConfig {
        url: server.url(),
        namespace: namespace.to_owned(),
        reconnect_max: Duration::from_millis(200),
        ..RedisFleetConfig::default()
    }
}

fn busy_key() -> Key {
    Key::new("openai", "gpt-4o-mini")
}

/// One request's breaker and budget calls on `registry`, each timed; returns the
/// longest and whether the call was admitted.
fn request(registry: &breakwater_core::Registry) -> (Duration, bool) {
    let breaker = registry.breaker(&busy_key()).expect("breakers on");
    let budget = registry.budget(&busy_key()).expect("budgets on");
    let mut longest = Duration::ZERO;
    let mut timed = |f: &mut dyn FnMut()| {
        let start = Instant::now();
        f();
        longest = longest.max(start.elapsed());
    };
    let mut admitted = false;
    let mut admit = None;
    timed(&mut || admit = Some(breaker.admit(now())));
    timed(&mut || budget.on_request(now()));
    if let Some(Admit::Admitted(permit)) = admit {
        admitted = true;
        let mut permit = Some(permit);
        timed(&mut || {
            breaker.record(
                now(),
                permit.take().expect("recorded once"),
                &Class::Success,
                Duration::from_millis(3),
            );
        });
    }
    timed(&mut || {
        let _ = budget.try_withdraw(now(), RetryReason::Error);
    });
    timed(&mut || budget.on_attempt(now(), true, None));
    (longest, admitted)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_killed_mid_run_requests_flow_then_state_resynchronises() {
    let mut server = RedisServer::start();
    let (a, b) = (registry(), registry());
    let sync_a = attach(&a, fault_config(&server, "kill")).await;
    let sync_b = attach(&b, fault_config(&server, "kill")).await;
    let (ka, kb) = (a.breaker(&key()).unwrap(), b.breaker(&key()).unwrap());
    tokio::time::sleep(Duration::from_millis(50)).await;
    let mut admitted = 0;
    for i in 0..300 {
        if i == 50 {
            server.kill();
        }
        if i == 100 {
            wait_for("A to notice", || !sync_a.status().connected).await;
            // A trip while Redis is away stays local for now.
            trip(&ka);
            assert!(is_open(&ka));
        }
        if i == 150 {
            assert_eq!(
                kb.state(now()),
                State::Closed,
                "nothing to share it through"
            );
            server.restart();
        }
        for registry in [&a, &b] {
            admitted += usize::from(request(registry).1);
        }
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    assert_eq!(
        admitted, 600,
        "every request on the closed key went through"
    );
    // Back: A publishes its open key again into the empty Redis, and B learns of it.
    wait_for("B to see A's trip", || is_open(&kb)).await;
    let (sa, sb) = (sync_a.status(), sync_b.status());
    assert!(sa.connected && sb.connected);
    assert!(sa.losses >= 1 && sb.losses >= 1, "{sa:?} {sb:?}");
    sync_a.stop().await;
    sync_b.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_hung_no_call_waits_longer_than_the_operation_timeout() {
    let server = RedisServer::start();
    let a = registry_with(200, 10);
    let config = fault_config(&server, "hang");
    let bound = config.op_timeout;
    let sync = attach(&a, config).await;
    let ka = a.breaker(&key()).unwrap();
    let _ = a.breaker(&busy_key());
    tokio::time::sleep(Duration::from_millis(50)).await;
    server.pause();
    let mut longest = Duration::ZERO;
    let start = Instant::now();
    let mut tripped = false;
    while start.elapsed() < Duration::from_millis(800) {
        let (took, admitted) = request(&a);
        assert!(admitted, "the busy key stays closed");
        longest = longest.max(took);
        // Transitions too: the sync task has something to publish while Redis hangs.
        if !tripped && start.elapsed() > Duration::from_millis(100) {
            trip(&ka);
            tripped = true;
        }
        let permit = ka.admit(now());
        drop(permit);
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    assert!(
        longest < bound,
        "a breaker or budget call took {longest:?}, past the {bound:?} operation timeout"
    );
    assert!(!sync.status().connected, "the sync noticed the hang");
    server.resume();
    wait_for("the sync to reconnect", || sync.status().connected).await;
    // The trip could not be published during the hang, and its open period (200 ms)
    // ran out: back in touch, the fleet's word (closed) stands.
    wait_for("A to follow the fleet's record", || {
        ka.state(now()) == State::Closed
    })
    .await;
    sync.stop().await;
}
