//! Replicas in one process, each with its own registry and fleet sync, share state
//! through a real Redis.

mod common;

use std::time::Duration;

use breakwater_core::breaker::RejectReason;
use breakwater_core::budget::RetryReason;
use breakwater_core::{Admit, Class, State};
use common::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_trip_on_one_replica_opens_the_key_on_the_other() {
    let server = RedisServer::start();
    let (a, b) = (registry(), registry());
    let sync_a = attach(&a, config(&server, "trip")).await;
    let sync_b = attach(&b, config(&server, "trip")).await;
    let (ba, bb) = (a.breaker(&key()).unwrap(), b.breaker(&key()).unwrap());
    // Both syncs know the key before the trip (as a bound route makes them).
    wait_for("both to read the key", || {
        sync_a.status().stats.sent > 0 && sync_b.status().stats.sent > 0
    })
    .await;
    trip(&ba);
    assert!(is_open(&ba));
    wait_for("B to open", || is_open(&bb)).await;
    let (State::Open { until: ua }, State::Open { until: ub }) = (ba.state(now()), bb.state(now()))
    else {
        panic!("both open");
    };
    let gap = if ua > ub { ua - ub } else { ub - ua };
    // Each replica reads the wall clock once, to the millisecond.
    assert!(
        gap <= Duration::from_millis(3),
        "the same open period: {ua} vs {ub}"
    );
    // What Redis holds: a versioned record.
    let mut redis = server.client().await;
    let fields: Vec<(String, String)> = redis::cmd("HGETALL")
        .arg("breakwater:v1:trip:breaker:anthropic/claude-sonnet-4-5")
        .query_async(&mut redis)
        .await
        .unwrap();
    assert!(
        fields.contains(&("v".to_owned(), "1".to_owned())),
        "{fields:?}"
    );
    assert!(
        fields.contains(&("state".to_owned(), "open".to_owned())),
        "{fields:?}"
    );
    // A reset on B closes it on A.
    bb.reset(now());
    wait_for("A to close", || ba.state(now()) == State::Closed).await;
    sync_a.stop().await;
    sync_b.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_retry_after_on_one_replica_cools_the_key_on_the_other() {
    let server = RedisServer::start();
    let (a, b) = (registry(), registry());
    let _sync_a = attach(&a, config(&server, "cool")).await;
    let _sync_b = attach(&b, config(&server, "cool")).await;
    let (ba, bb) = (a.breaker(&key()).unwrap(), b.breaker(&key()).unwrap());
    tokio::time::sleep(Duration::from_millis(50)).await;
    let now = now();
    let permit = ba.admit(now).into_result().unwrap();
    let limited = Class::RateLimited {
        retry_after: Some(Duration::from_secs(30)),
    };
    ba.record(now, permit, &limited, Duration::from_millis(5));
    wait_for("B to cool down", || {
        matches!(bb.admit(common::now()), Admit::Rejected(r) if r.reason == RejectReason::CoolingDown)
    })
    .await;
    let rejection = bb.admit(common::now()).into_result().unwrap_err();
    let until = rejection.until.unwrap();
    let expected = now + Duration::from_secs(30);
    let gap = if until > expected {
        until - expected
    } else {
        expected - until
    };
    assert!(
        gap <= Duration::from_millis(3),
        "until the same instant: {until} vs {expected}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn half_open_admits_exactly_n_probes_across_replicas() {
    let server = RedisServer::start();
    let registries: Vec<_> = (0..3).map(|_| registry_with(300, 10)).collect();
    let mut syncs = Vec::new();
    for r in &registries {
        syncs.push(attach(r, config(&server, "probes")).await);
    }
    let breakers: Vec<_> = registries
        .iter()
        .map(|r| r.breaker(&key()).unwrap())
        .collect();
    tokio::time::sleep(Duration::from_millis(50)).await;
    trip(&breakers[0]);
    wait_for("every replica to open", || breakers.iter().all(is_open)).await;
    // After the open period, every replica tries to probe for a second.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let mut probes = Vec::new();
    let end = tokio::time::Instant::now() + Duration::from_secs(1);
    while tokio::time::Instant::now() < end {
        for (i, b) in breakers.iter().enumerate() {
            if let Admit::Admitted(p) = b.admit(now()) {
                assert!(p.is_probe());
                probes.push((i, p));
            }
        }
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    let statuses: Vec<_> = syncs.iter().map(|s| s.status()).collect();
    assert!(statuses.iter().all(|s| s.losses == 0), "{statuses:#?}");
    assert_eq!(probes.len(), 2, "half_open_probes = 2 for the whole fleet");
    // Their successes close the key everywhere.
    for (i, p) in probes {
        breakers[i].record(now(), p, &Class::Success, Duration::from_millis(5));
    }
    wait_for("every replica to close", || {
        breakers.iter().all(|b| b.state(now()) == State::Closed)
    })
    .await;
    for sync in syncs {
        assert!(sync.status().stats.granted <= 2);
        sync.stop().await;
    }
}

/// Replicas take turns draining the budget, a sync interval apart: alone each would
/// have its own reserve of 10 retries; shared, the fleet has one.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_shared_budget_bounds_the_fleets_retries() {
    let server = RedisServer::start();
    let registries: Vec<_> = (0..3).map(|_| registry()).collect();
    let mut syncs = Vec::new();
    for r in &registries {
        let _ = r.budget(&key());
        syncs.push(attach(r, config(&server, "budget")).await);
    }
    tokio::time::sleep(Duration::from_millis(250)).await;
    let mut granted = 0;
    for r in &registries {
        let budget = r.budget(&key()).unwrap();
        while budget.try_withdraw(now(), RetryReason::Error).is_ok() {
            granted += 1;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    assert_eq!(
        granted, 10,
        "one fleet, one reserve of min_per_sec · ttl = 10"
    );
    // Requests earn retries for everyone: 100 requests on one replica, 10 retries at 0.1.
    let first = registries[0].budget(&key()).unwrap();
    for _ in 0..100 {
        first.on_request(now());
    }
    tokio::time::sleep(Duration::from_millis(250)).await;
    let last = registries[2].budget(&key()).unwrap();
    let mut more = 0;
    while last.try_withdraw(now(), RetryReason::Error).is_ok() {
        more += 1;
    }
    assert_eq!(more, 10);
    // Unshared, the same turns would have granted a reserve per replica.
    let alone: usize = (0..3)
        .map(|_| {
            let budget = registry().budget(&key()).unwrap();
            std::iter::from_fn(|| budget.try_withdraw(now(), RetryReason::Error).ok()).count()
        })
        .sum();
    assert_eq!(alone, 30);
    for sync in syncs {
        sync.stop().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn records_of_another_version_are_dropped_and_counted() {
    let server = RedisServer::start();
    let a = registry();
    let mut redis = server.client().await;
    let _: () = redis::cmd("HSET")
        .arg("breakwater:v1:foreign:breaker:anthropic/claude-sonnet-4-5")
        .arg(&[
            "v",
            "2",
            "epoch",
            "99999999999999",
            "state",
            "open",
            "until",
            "99999999999999",
        ])
        .query_async(&mut redis)
        .await
        .unwrap();
    let sync = attach(&a, config(&server, "foreign")).await;
    let b = a.breaker(&key()).unwrap();
    wait_for("the foreign record to be counted", || {
        sync.status().stats.foreign > 0
    })
    .await;
    let _: () = redis::cmd("PUBLISH")
        .arg("breakwater:v1:foreign:events")
        .arg("7|99999999999999|open|99999999999999|0|1|anthropic/claude-sonnet-4-5")
        .query_async(&mut redis)
        .await
        .unwrap();
    wait_for("the foreign message to be counted", || {
        sync.status().stats.foreign > 1
    })
    .await;
    assert_eq!(b.state(now()), State::Closed);
    // The replica still works on local state, and a local trip is not applied to the
    // foreign record (the script refuses it).
    trip(&b);
    assert!(is_open(&b));
    tokio::time::sleep(Duration::from_millis(100)).await;
    let version: String = redis::cmd("HGET")
        .arg("breakwater:v1:foreign:breaker:anthropic/claude-sonnet-4-5")
        .arg("v")
        .query_async(&mut redis)
        .await
        .unwrap();
    assert_eq!(version, "2");
    sync.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stopping_puts_the_breakers_back_on_local_probing() {
    let server = RedisServer::start();
    let a = registry_with(100, 10);
    let sync = attach(&a, config(&server, "stop")).await;
    let b = a.breaker(&key()).unwrap();
    wait_for("the gate", || b.fleet_view(now()).gated).await;
    sync.stop().await;
    assert!(!b.fleet_view(now()).gated);
    trip(&b);
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert!(b.admit(now()).into_result().unwrap().is_probe());
}

/// Attached to a `breakwater_http::Client`'s registry: a trip in one client's process
/// state reaches the other client's.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn attaches_to_an_http_clients_registry() {
    use breakwater_core::RouteConfig;
    use breakwater_http::Client;
    use breakwater_http::wire::Provider;

    let server = RedisServer::start();
    let route = RouteConfig::from_toml(
        "name = \"chat\"\n[[step]]\nprovider = \"anthropic\"\nmodel = \"claude-sonnet-4-5\"\n",
    )
    .unwrap();
    let client = |registry| {
        Client::builder()
            .provider(
                "anthropic",
                Provider::Anthropic,
                "http://127.0.0.1:9",
                "key",
            )
            .route(route.clone())
            .registry(registry)
            .build()
            .unwrap()
    };
    let (a, b) = (client(registry()), client(registry()));
    let sync_a = attach(a.registry(), config(&server, "http")).await;
    let sync_b = attach(b.registry(), config(&server, "http")).await;
    // Binding the route made the key's breaker: both syncs know it.
    assert_eq!(a.registry().keys(), vec![key()]);
    tokio::time::sleep(Duration::from_millis(50)).await;
    trip(&a.registry().breaker(&key()).unwrap());
    let theirs = b.registry().breaker(&key()).unwrap();
    wait_for("the other client's breaker to open", || is_open(&theirs)).await;
    sync_a.stop().await;
    sync_b.stop().await;
}

/// A sync whose runtime is gone cannot ungate from its task: dropping it does.
#[test]
fn dropping_the_sync_ungates_even_without_its_runtime() {
    let server = RedisServer::start();
    let a = registry();
    // One thread: the task runs only inside `block_on`, so once that returns nothing
    // can run it again, and dropping the runtime drops it unpolled.
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let sync = runtime.block_on(attach(&a, config(&server, "drop")));
    let b = a.breaker(&key()).unwrap();
    runtime.block_on(wait_for("the gate", || b.fleet_view(now()).gated));
    drop(runtime);
    assert!(b.fleet_view(now()).gated, "the task died without ungating");
    drop(sync);
    assert!(!b.fleet_view(now()).gated);
}
