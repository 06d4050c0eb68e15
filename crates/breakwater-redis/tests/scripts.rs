//! The Lua scripts follow the core's store rules: the same random operations run on
//! Redis and on `StoreRecord` / `BudgetStore` give the same answers, the same stored
//! record, and the same pushed messages.

mod common;

use std::time::Duration;

use breakwater_core::Rng;
use breakwater_core::fleet::{
    BudgetPush, BudgetStore, FleetTime, Op, StoreRecord, Update, WINDOWS,
};
use breakwater_core::rng::seeded;
use breakwater_redis::scripts;
use common::RedisServer;
use redis::Value;

fn random_op(rng: &mut impl Rng, epoch: u64) -> Op {
    // Bases near the current epoch, so that both sides of every rule are taken.
    let near = |rng: &mut dyn Rng| epoch.saturating_sub(1) + rng.up_to(2);
    let until = FleetTime::from_millis(1_000 + rng.up_to(400));
    match rng.up_to(8) {
        0 | 1 => Op::Open {
            base: near(rng),
            until,
        },
        2 => Op::Close { base: near(rng) },
        3 => Op::Isolate { base: near(rng) },
        4 => Op::CoolDown { until },
        5 => Op::Claim {
            epoch: near(rng),
            limit: 2,
            lease: Duration::from_millis(50 + rng.up_to(100)),
        },
        6 => Op::Release {
            epoch: near(rng),
            probes: if rng.up_to(1) == 0 { 1 } else { 2 },
        },
        7 => Op::ProbeSucceeded {
            epoch: near(rng),
            close_after: 2,
        },
        _ => Op::Read,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_breaker_script_follows_the_store_rules() {
    let server = RedisServer::start();
    let mut redis = server.client().await;
    let client = redis::Client::open(format!("{}?protocol=resp3", server.url())).unwrap();
    let (tx, mut messages) = tokio::sync::mpsc::unbounded_channel();
    let config = redis::AsyncConnectionConfig::new().set_push_sender(tx);
    let mut subscriber = client
        .get_multiplexed_async_connection_with_config(&config)
        .await
        .unwrap();
    subscriber.subscribe("events").await.unwrap();
    let script = redis::Script::new(scripts::BREAKER);
    let mut rng = seeded(7);
    for sequence in 0..40 {
        let key = format!("record:{sequence}");
        let name = format!("p/m{sequence}");
        let mut model = StoreRecord::default();
        let mut now = 900;
        for _ in 0..60 {
            now += rng.up_to(60);
            let fleet_now = FleetTime::from_millis(now);
            let op = random_op(&mut rng, model.record.epoch);
            let expected = model.apply(&op, fleet_now);
            let args = scripts::breaker_args(&op, fleet_now);
            let answer: Value = script
                .key(&key)
                .arg(&args[..])
                .arg("events")
                .arg(&name)
                .arg(60_000)
                .invoke_async(&mut redis)
                .await
                .unwrap();
            let reply = scripts::breaker_reply(&answer).unwrap();
            assert_eq!(reply, expected, "{op:?} at {now} in sequence {sequence}");
            let fields: Vec<(String, String)> = redis::cmd("HGETALL")
                .arg(&key)
                .query_async(&mut redis)
                .await
                .unwrap();
            let stored =
                StoreRecord::from_fields(fields.iter().map(|(k, v)| (k.as_str(), v.as_str())));
            assert_eq!(stored, Ok(model), "{op:?} at {now} in sequence {sequence}");
            if expected.changed {
                let push = loop {
                    let push = tokio::time::timeout(Duration::from_secs(5), messages.recv())
                        .await
                        .unwrap()
                        .unwrap();
                    if push.kind == redis::PushKind::Message {
                        break push;
                    }
                };
                let Some(Value::BulkString(bytes)) = push.data.last() else {
                    panic!("{push:?}");
                };
                let update = Update::decode(std::str::from_utf8(bytes).unwrap()).unwrap();
                assert_eq!(
                    update,
                    Update {
                        name: name.clone(),
                        record: expected.record
                    }
                );
            }
        }
    }
    while let Ok(push) = messages.try_recv() {
        assert_ne!(
            push.kind,
            redis::PushKind::Message,
            "a message for every change, and no other"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_budget_script_follows_the_budget_store() {
    let server = RedisServer::start();
    let mut redis = server.client().await;
    let script = redis::Script::new(scripts::BUDGET);
    let mut rng = seeded(11);
    let mut model = BudgetStore::new();
    let mut windows = [1_700_000_000u64; 3];
    for _ in 0..300 {
        let replica = usize::try_from(rng.up_to(2)).unwrap();
        // Replicas move forward at their own pace, sometimes a window or more behind.
        windows[replica] += rng.up_to(2) * rng.up_to(1);
        if rng.up_to(20) == 0 {
            windows[replica] += 12;
        }
        let window = windows[replica];
        let mut contributions = Vec::new();
        for w in window - (WINDOWS - 1)..=window {
            if rng.up_to(3) > 0 {
                let units = i64::try_from(rng.up_to(4_000_000)).unwrap() - 2_000_000;
                contributions.push((w, units));
            }
        }
        let push = BudgetPush {
            replica: replica as u64,
            window,
            window_nanos: 1_000_000_000,
            contributions,
        };
        let expected = model.apply(&push);
        let answer: Value = script
            .key("budget")
            .arg(scripts::budget_args(&push, WINDOWS, 60_000))
            .invoke_async(&mut redis)
            .await
            .unwrap();
        let totals = scripts::budget_reply(&answer, window, WINDOWS).unwrap();
        assert_eq!(totals, expected, "{push:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn both_scripts_refuse_hashes_of_another_version() {
    let server = RedisServer::start();
    let mut redis = server.client().await;
    for key in ["record", "budget"] {
        let _: () = redis::cmd("HSET")
            .arg(key)
            .arg(&["v", "9", "epoch", "5"])
            .query_async(&mut redis)
            .await
            .unwrap();
    }
    let answer: Value = redis::Script::new(scripts::BREAKER)
        .key("record")
        .arg(&scripts::breaker_args(&Op::Close { base: 99 }, FleetTime::from_millis(5))[..])
        .arg("events")
        .arg("p/m")
        .arg(1000)
        .invoke_async(&mut redis)
        .await
        .unwrap();
    assert!(scripts::breaker_reply(&answer).is_err());
    let push = BudgetPush {
        replica: 1,
        window: 10,
        window_nanos: 1,
        contributions: vec![(10, 5)],
    };
    let answer: Value = redis::Script::new(scripts::BUDGET)
        .key("budget")
        .arg(scripts::budget_args(&push, WINDOWS, 1000))
        .invoke_async(&mut redis)
        .await
        .unwrap();
    assert!(scripts::budget_reply(&answer, 10, WINDOWS).is_err());
    let untouched: Vec<(String, String)> = redis::cmd("HGETALL")
        .arg("record")
        .query_async(&mut redis)
        .await
        .unwrap();
    assert_eq!(untouched.len(), 2);
}
