//! Replicas and a store in one process: the fleet's behaviour end to end, with every
//! message delivered by hand (in order, late, twice, or never).

use std::collections::BTreeMap;
use std::time::Duration;

use proptest::prelude::*;

use super::*;
use crate::backoff::{Backoff, Jitter};
use crate::breaker::{Admit, BreakerConfig, Permit, RejectReason, State};
use crate::class::Class;
use crate::registry::{Registry, RegistryConfig};
use crate::{Key, Time};

fn key() -> Key {
    Key::new("anthropic", "claude-sonnet-4-5")
}

fn registry() -> Registry {
    Registry::new(RegistryConfig {
        breaker: Some(BreakerConfig {
            consecutive_failures: Some(3),
            window: None,
            failure_rate: None,
            min_calls: 0,
            open: Backoff::exponential(Duration::from_secs(1), Duration::from_secs(8))
                .with_jitter(Jitter::None),
            half_open_probes: 2,
            close_after: 2,
            ..BreakerConfig::default()
        }),
        ..RegistryConfig::default()
    })
    .unwrap()
}

fn config() -> FleetConfig {
    FleetConfig {
        staleness: Duration::from_millis(100),
        probe_lease: Duration::from_secs(3600),
        grant_idle: Duration::from_secs(3600),
    }
}

struct Node {
    registry: Registry,
    replica: Replica,
}

/// R replicas and a store; messages delivered at once, in order.
struct Fleet {
    nodes: Vec<Node>,
    store: BTreeMap<String, StoreRecord>,
    now: Time,
}

impl Fleet {
    fn new(replicas: u64) -> Fleet {
        Fleet::with_config(replicas, config())
    }

    fn with_config(replicas: u64, config: FleetConfig) -> Fleet {
        let nodes = (0..replicas)
            .map(|id| {
                let registry = registry();
                let _ = registry.breaker(&key());
                let mut replica = Replica::new(id, config, FleetClock::identity());
                replica.set_connected(Time::ZERO, &registry, true);
                Node { registry, replica }
            })
            .collect();
        Fleet {
            nodes,
            store: BTreeMap::new(),
            now: Time::ZERO,
        }
    }

    fn breaker(&self, node: usize) -> crate::Breaker {
        self.nodes[node].registry.breaker(&key()).unwrap()
    }

    /// Every node sends what it has; the store answers and pushes changes to all.
    fn round(&mut self) -> usize {
        let now = self.now;
        let mut sent = 0;
        for i in 0..self.nodes.len() {
            let ops = {
                let node = &mut self.nodes[i];
                node.replica.poll_ops(now, &node.registry)
            };
            for (key, op) in ops {
                sent += 1;
                let name = key.to_string();
                let reply = self
                    .store
                    .entry(name.clone())
                    .or_default()
                    .apply(&op, FleetClock::identity().to_fleet(now));
                let node = &mut self.nodes[i];
                let breaker = node.registry.breaker(&key).unwrap();
                node.replica.on_reply(now, &key, &breaker, Ok(reply));
                if reply.changed {
                    let message = Update {
                        name,
                        record: reply.record,
                    }
                    .encode();
                    for other in &mut self.nodes {
                        other.replica.on_message(now, &other.registry, &message);
                    }
                }
            }
        }
        sent
    }

    fn settle(&mut self) {
        for _ in 0..20 {
            if self.round() == 0 {
                return;
            }
        }
        panic!("the fleet does not settle");
    }

    fn at(&mut self, millis: u64) {
        self.now = Time::from_millis(millis);
    }

    /// Trips the key on node 0 (three failures at 0), lets every replica learn it and
    /// moves to 1 s, past the open period, so that the key's next admission is a
    /// probe. Returns node 0's breaker.
    fn trip_then_pass_the_open_period(&mut self) -> crate::Breaker {
        self.settle();
        let a = self.breaker(0);
        for _ in 0..3 {
            fail(&a, Time::ZERO);
        }
        self.settle();
        self.at(1000);
        a
    }
}

fn fail(b: &crate::Breaker, now: Time) {
    if let Admit::Admitted(p) = b.admit(now) {
        b.record(now, p, &Class::Retriable, Duration::from_millis(5));
    }
}

/// A replica of its own (no [`Fleet`]: the store's replies are delivered by hand),
/// connected at 0; its registry and its key's breaker.
fn lone_replica() -> (Registry, crate::Breaker, Replica) {
    let registry = registry();
    let breaker = registry.breaker(&key()).unwrap();
    let mut replica = Replica::new(1, config(), FleetClock::identity());
    replica.set_connected(Time::ZERO, &registry, true);
    (registry, breaker, replica)
}

#[test]
fn one_replicas_trip_opens_the_key_everywhere_and_its_close_closes_it() {
    let mut fleet = Fleet::new(3);
    fleet.settle();
    let a = fleet.breaker(0);
    for _ in 0..3 {
        fail(&a, Time::ZERO);
    }
    assert_eq!(
        a.state(Time::ZERO),
        State::Open {
            until: Time::from_secs(1)
        }
    );
    fleet.settle();
    for node in 1..3 {
        assert_eq!(
            fleet.breaker(node).state(Time::ZERO),
            State::Open {
                until: Time::from_secs(1)
            },
            "node {node}"
        );
    }
    // Re-closing by hand on one replica closes the key fleet-wide.
    fleet.at(100);
    a.reset(fleet.now);
    fleet.settle();
    for node in 0..3 {
        assert_eq!(fleet.breaker(node).state(fleet.now), State::Closed);
    }
}

#[test]
fn one_replicas_isolation_isolates_the_key_everywhere() {
    let mut fleet = Fleet::new(2);
    fleet.settle();
    fleet.breaker(0).isolate(Time::ZERO);
    fleet.settle();
    assert_eq!(
        fleet.store[&key().to_string()].record.state,
        SharedState::Isolated
    );
    assert_eq!(fleet.breaker(1).state(Time::ZERO), State::Isolated);
}

#[test]
fn a_cooldown_holds_for_every_replica() {
    let mut fleet = Fleet::new(2);
    fleet.settle();
    let a = fleet.breaker(0);
    let p = a.admit(Time::ZERO).into_result().unwrap();
    let limited = Class::RateLimited {
        retry_after: Some(Duration::from_secs(30)),
    };
    a.record(Time::ZERO, p, &limited, Duration::from_millis(5));
    fleet.settle();
    let b = fleet.breaker(1);
    let rejection = b.admit(Time::from_secs(1)).into_result().unwrap_err();
    assert_eq!(rejection.reason, RejectReason::CoolingDown);
    assert_eq!(rejection.until, Some(Time::from_secs(30)));
    assert!(b.admit(Time::from_secs(30)).is_admitted());
}

/// Admits on every node until nothing more is admitted, settling in between; returns
/// the probe permits with their nodes.
fn probe_everywhere(fleet: &mut Fleet) -> Vec<(usize, Permit)> {
    let mut probes = Vec::new();
    for _ in 0..5 {
        for node in 0..fleet.nodes.len() {
            if let Admit::Admitted(p) = fleet.breaker(node).admit(fleet.now) {
                assert!(p.is_probe());
                probes.push((node, p));
            }
        }
        fleet.settle();
    }
    probes
}

#[test]
fn half_open_admits_n_probes_across_the_fleet_and_their_successes_close_it() {
    let mut fleet = Fleet::new(5);
    fleet.trip_then_pass_the_open_period();
    let probes = probe_everywhere(&mut fleet);
    assert_eq!(probes.len(), 2, "half_open_probes = 2 for the whole fleet");
    // Two claims granted; every replica asked once more and was denied (the three
    // without a probe, and the two owners wanting a second one).
    let stats: Vec<(u64, u64)> = fleet
        .nodes
        .iter()
        .map(|node| (node.replica.stats().granted, node.replica.stats().denied))
        .collect();
    assert_eq!(stats.iter().map(|s| s.0).sum::<u64>(), 2, "{stats:?}");
    assert!(stats.iter().all(|s| s.1 == 1), "{stats:?}");
    // Each success is reported; the second closes the key for everyone, although no
    // replica saw two successes itself.
    let now = fleet.now;
    let owners: Vec<usize> = probes.iter().map(|(node, _)| *node).collect();
    assert_ne!(
        owners[0], owners[1],
        "each grant went to a replica that wanted one"
    );
    for (i, (node, p)) in probes.into_iter().enumerate() {
        fleet
            .breaker(node)
            .record(now, p, &Class::Success, Duration::from_millis(5));
        fleet.settle();
        if i == 0 {
            // Reported once: one success of two closes nothing.
            let store = &fleet.store[&key().to_string()];
            assert_eq!(store.successes, 1, "{store:?}");
        }
    }
    for node in 0..5 {
        assert_eq!(fleet.breaker(node).state(now), State::Closed, "node {node}");
    }
}

#[test]
fn a_failed_probe_reopens_the_key_everywhere() {
    let mut fleet = Fleet::new(3);
    fleet.trip_then_pass_the_open_period();
    let mut probes = probe_everywhere(&mut fleet);
    let (owner, p) = probes.pop().unwrap();
    // The other probe succeeds first (reported: one of two), then this one fails.
    let (other, q) = probes.pop().unwrap();
    fleet
        .breaker(other)
        .record(fleet.now, q, &Class::Success, Duration::from_millis(5));
    fleet.settle();
    fleet
        .breaker(owner)
        .record(fleet.now, p, &Class::Retriable, Duration::from_millis(5));
    fleet.settle();
    for node in 0..3 {
        // The second trip in a row opens for 2 s.
        assert_eq!(
            fleet.breaker(node).state(fleet.now),
            State::Open {
                until: Time::from_secs(3)
            },
            "node {node}"
        );
    }
    // The next half-open period counts its successes afresh: its two close the key.
    fleet.at(3000);
    for (node, p) in probe_everywhere(&mut fleet) {
        fleet
            .breaker(node)
            .record(fleet.now, p, &Class::Success, Duration::from_millis(5));
        fleet.settle();
    }
    for node in 0..3 {
        assert_eq!(fleet.breaker(node).state(fleet.now), State::Closed);
    }
}

/// One replica whose key tripped at 0 and is half-open at 1 s, gated by the fleet,
/// with grants idle after 100 ms; and its breaker.
fn half_open_alone() -> (Fleet, crate::Breaker) {
    let mut fleet = Fleet::with_config(
        1,
        FleetConfig {
            grant_idle: Duration::from_millis(100),
            ..config()
        },
    );
    let a = fleet.trip_then_pass_the_open_period();
    (fleet, a)
}

/// A grant left unused for `grant_idle` goes back to the store, so another replica
/// may probe in its place.
#[test]
fn an_idle_grant_is_released() {
    let (mut fleet, a) = half_open_alone();
    // Half-open and gated: the first admit asks the fleet, the grant comes back.
    assert!(!a.admit(fleet.now).is_admitted());
    fleet.settle();
    assert_eq!(fleet.nodes[0].replica.stats().granted, 1);
    fleet.at(1100);
    let node = &mut fleet.nodes[0];
    let ops = node.replica.poll_ops(fleet.now, &node.registry);
    assert!(
        matches!(ops[..], [(_, Op::Release { probes: 1, .. })]),
        "{ops:?}"
    );
}

/// Cut off from the store, a replica stops waiting for grants: its gated breakers
/// probe on their own.
#[test]
fn losing_the_store_ungates_a_half_open_breaker() {
    let (mut fleet, a) = half_open_alone();
    assert!(
        !a.admit(fleet.now).is_admitted(),
        "gated: it asks the fleet"
    );
    let node = &mut fleet.nodes[0];
    node.replica.set_connected(fleet.now, &node.registry, false);
    let probe = a.admit(fleet.now).into_result().unwrap();
    assert!(probe.is_probe());
}

/// A grant whose probe was taken has nothing to give back.
#[test]
fn a_used_grant_is_not_released() {
    let (mut fleet, a) = half_open_alone();
    assert!(!a.admit(fleet.now).is_admitted());
    fleet.settle();
    let probe = a.admit(fleet.now);
    assert!(probe.is_admitted());
    fleet.at(1100);
    let node = &mut fleet.nodes[0];
    let ops = node.replica.poll_ops(fleet.now, &node.registry);
    assert!(
        !ops.iter().any(|(_, op)| matches!(op, Op::Release { .. })),
        "{ops:?}"
    );
    drop(probe);
}

#[test]
fn without_the_store_each_replica_probes_on_its_own() {
    let mut fleet = Fleet::new(2);
    fleet.settle();
    let a = fleet.breaker(0);
    for _ in 0..3 {
        fail(&a, Time::ZERO);
    }
    fleet.settle();
    let now = Time::from_secs(1);
    for node in &mut fleet.nodes {
        node.replica.set_connected(now, &node.registry, false);
        assert!(node.replica.poll_ops(now, &node.registry).is_empty());
    }
    for node in 0..2 {
        let b = fleet.breaker(node);
        let first = b.admit(now).into_result().unwrap();
        let second = b.admit(now).into_result().unwrap();
        assert!(
            first.is_probe() && second.is_probe(),
            "node {node} probes locally"
        );
        assert!(!b.admit(now).is_admitted());
    }
}

#[test]
fn a_store_that_lost_its_data_gets_the_open_keys_again() {
    let mut fleet = Fleet::new(2);
    fleet.settle();
    let a = fleet.breaker(0);
    for _ in 0..3 {
        fail(&a, Time::ZERO);
    }
    fleet.settle();
    // The store restarts empty; the replicas notice (a failure), then reconnect.
    fleet.store.clear();
    fleet.at(200);
    let now = fleet.now;
    for node in &mut fleet.nodes {
        node.replica.set_connected(now, &node.registry, false);
        node.replica.set_connected(now, &node.registry, true);
    }
    fleet.settle();
    let record = fleet.store[&key().to_string()].record;
    assert_eq!(
        record.state,
        SharedState::Open {
            until: FleetTime::from_millis(1000)
        }
    );
    // A replica that joins now learns of it.
    let mut late = Fleet::new(1);
    late.store = fleet.store.clone();
    late.at(200);
    late.settle();
    assert_eq!(
        late.breaker(0).state(late.now),
        State::Open {
            until: Time::from_secs(1)
        }
    );
}

#[test]
fn foreign_and_malformed_messages_are_counted_and_never_applied() {
    let mut fleet = Fleet::new(1);
    fleet.settle();
    let node = &mut fleet.nodes[0];
    let name = key().to_string();
    node.replica.on_message(
        Time::ZERO,
        &node.registry,
        &format!("2|999|open|5000|0|1|{name}"),
    );
    node.replica
        .on_message(Time::ZERO, &node.registry, "garbage");
    let stats = node.replica.stats();
    assert_eq!((stats.foreign, stats.malformed, stats.applied), (1, 1, 0));
    assert_eq!(
        node.registry.breaker(&key()).unwrap().state(Time::ZERO),
        State::Closed
    );
}

#[test]
fn a_failed_operation_leaves_local_state_and_is_tried_again() {
    let (registry, breaker, mut replica) = lone_replica();
    let mut store = StoreRecord::default();
    let ops = replica.poll_ops(Time::ZERO, &registry);
    assert_eq!(ops, [(key(), Op::Read)]);
    let reply = store.apply(&Op::Read, FleetTime::ZERO);
    replica.on_reply(Time::ZERO, &key(), &breaker, Ok(reply));
    breaker.force_open(Time::ZERO);
    let ops = replica.poll_ops(Time::ZERO, &registry);
    assert!(matches!(ops[..], [(_, Op::Open { .. })]));
    assert!(
        replica.poll_ops(Time::ZERO, &registry).is_empty(),
        "one op in flight per key"
    );
    replica.on_reply(Time::ZERO, &key(), &breaker, Err(OpFailed));
    assert_eq!(replica.stats().failed, 1);
    assert!(matches!(breaker.state(Time::ZERO), State::Open { .. }));
    let ops = replica.poll_ops(Time::ZERO, &registry);
    assert!(
        matches!(ops[..], [(_, Op::Open { .. })]),
        "sent again: {ops:?}"
    );
    assert_eq!(replica.stats().sent, 3, "read, open, open again");
}

/// One key polled on its own gets what `poll_ops` would send for it (a first read),
/// and nothing more while that is in flight.
#[test]
fn one_key_can_be_polled_alone() {
    let (_registry, breaker, mut replica) = lone_replica();
    assert_eq!(
        replica.poll_key(Time::ZERO, &key(), &breaker),
        Some(Op::Read)
    );
    assert_eq!(replica.poll_key(Time::ZERO, &key(), &breaker), None);
    assert_eq!(replica.stats().sent, 1);
}

/// A key the replica meets for the first time is read before anything is published,
/// even when its local breaker already tripped: the store's epoch comes first.
#[test]
fn a_key_seen_for_the_first_time_is_read_before_it_is_published() {
    let (registry, breaker, mut replica) = lone_replica();
    let now = Time::from_millis(50);
    breaker.force_open(now);
    let mut store = StoreRecord::default();
    let ops = replica.poll_ops(now, &registry);
    assert_eq!(
        ops,
        [(key(), Op::Read)],
        "published before reading: {ops:?}"
    );
    let reply = store.apply(&Op::Read, FleetTime::ZERO);
    replica.on_reply(now, &key(), &breaker, Ok(reply));
    let ops = replica.poll_ops(now, &registry);
    assert!(matches!(ops[..], [(_, Op::Open { .. })]), "{ops:?}");
}

/// A lone replica that read `store`'s record at 0 and then, away from the store, was
/// reset by hand and tripped on its own at 1 s; back when that trip's open period
/// ended (half-open, a state the fleet never heard of), it has read the record again:
/// the same epoch, so nothing was applied. Its registry, breaker, replica and that
/// instant.
fn half_open_on_return(mut store: StoreRecord) -> (Registry, crate::Breaker, Replica, Time) {
    let (registry, breaker, mut replica) = lone_replica();
    assert_eq!(replica.poll_ops(Time::ZERO, &registry), [(key(), Op::Read)]);
    let reply = store.apply(&Op::Read, FleetTime::ZERO);
    replica.on_reply(Time::ZERO, &key(), &breaker, Ok(reply));
    replica.set_connected(Time::ZERO, &registry, false);
    breaker.reset(Time::ZERO);
    breaker.force_open(Time::from_secs(1));
    let State::Open { until: now } = breaker.state(Time::from_secs(1)) else {
        panic!("forced open");
    };
    assert_eq!(breaker.state(now), State::HalfOpen);
    replica.set_connected(now, &registry, true);
    assert_eq!(replica.poll_ops(now, &registry), [(key(), Op::Read)]);
    let applied = replica.stats().applied;
    let reply = store.apply(&Op::Read, FleetClock::identity().to_fleet(now));
    replica.on_reply(now, &key(), &breaker, Ok(reply));
    assert_eq!(replica.stats().applied, applied, "the same epoch");
    (registry, breaker, replica, now)
}

/// Half-open on its own while the fleet's open period runs longer: the fleet's open
/// period is taken on.
#[test]
fn a_local_half_open_takes_on_the_fleets_longer_open() {
    let mut store = StoreRecord::default();
    let until = FleetTime::from_millis(10_000);
    let _ = store.apply(&Op::Open { base: 0, until }, FleetTime::ZERO);
    let (registry, breaker, mut replica, now) = half_open_on_return(store);
    assert!(now < Time::from_secs(10));
    assert!(replica.poll_ops(now, &registry).is_empty());
    assert_eq!(
        breaker.state(now),
        State::Open {
            until: Time::from_secs(10)
        }
    );
}

/// Half-open on its own while the fleet's record is closed, or isolated: the same.
#[test]
fn a_local_half_open_takes_on_the_fleets_close_or_isolation() {
    let mut isolated = StoreRecord::default();
    let _ = isolated.apply(&Op::Isolate { base: 0 }, FleetTime::ZERO);
    for (store, state) in [
        (StoreRecord::default(), State::Closed),
        (isolated, State::Isolated),
    ] {
        let (registry, breaker, mut replica, now) = half_open_on_return(store);
        assert!(replica.poll_ops(now, &registry).is_empty());
        assert_eq!(breaker.state(now), state);
    }
}

#[test]
fn poll_timeout_names_the_next_poll_and_budget_sync() {
    let registry = registry();
    let _ = registry.budget(&key());
    let mut replica = Replica::new(1, config(), FleetClock::identity());
    assert_eq!(replica.poll_timeout(), None, "disconnected");
    assert!(
        replica
            .budget_pushes(Time::from_secs(60), &registry)
            .is_empty(),
        "nothing is pushed while disconnected, however late"
    );
    replica.set_connected(Time::ZERO, &registry, true);
    let breaker = registry.breaker(&key()).unwrap();
    let ops = replica.poll_ops(Time::ZERO, &registry);
    assert_eq!(replica.budget_pushes(Time::ZERO, &registry).len(), 1);
    assert!(replica.budget_pushes(Time::ZERO, &registry).is_empty());
    replica.on_reply(
        Time::ZERO,
        &ops[0].0,
        &breaker,
        Ok(StoreRecord::default().apply(&Op::Read, FleetTime::ZERO)),
    );
    assert_eq!(replica.poll_timeout(), Some(Time::from_millis(100)));
}

#[test]
fn a_failed_budget_push_is_counted_and_sent_again() {
    let registry = registry();
    let _ = registry.budget(&key());
    let mut replica = Replica::new(1, config(), FleetClock::identity());
    replica.set_connected(Time::ZERO, &registry, true);
    let pushes = replica.budget_pushes(Time::ZERO, &registry);
    assert_eq!(pushes.len(), 1);
    replica.on_budget_reply(Time::ZERO, &registry, &pushes[0].0, Err(OpFailed));
    assert_eq!(replica.stats().failed, 1);
    let again = replica.budget_pushes(Time::from_millis(100), &registry);
    assert_eq!(again.len(), 1, "the mirror is free to send again");
}

#[test]
fn a_budget_reply_brings_in_the_other_replicas_share() {
    let now = Time::from_millis(10);
    let mut store = BudgetStore::new();
    let mut nodes: Vec<(Registry, Replica)> = (0..2)
        .map(|id| {
            let registry = registry();
            let _ = registry.budget(&key());
            let mut replica = Replica::new(id, config(), FleetClock::identity());
            replica.set_connected(Time::ZERO, &registry, true);
            (registry, replica)
        })
        .collect();
    assert_eq!(nodes[0].1.id(), 0);
    assert_eq!(nodes[1].1.id(), 1);
    let available =
        |registry: &Registry| registry.budget(&key()).unwrap().with(|b| b.available(now));
    let alone = available(&nodes[1].0);
    for _ in 0..5 {
        nodes[0].0.budget(&key()).unwrap().on_request(now);
    }
    for (registry, replica) in &mut nodes {
        for (scope, push) in replica.budget_pushes(now, registry) {
            let totals = store.apply(&push);
            replica.on_budget_reply(now, registry, &scope, Ok(&totals));
        }
    }
    // Five requests at ratio 0.2: one retry more for the replica that made none.
    assert!((available(&nodes[1].0) - alone - 1.0).abs() < 1e-9);
}

/// The record of `epoch` (one state per epoch, as the store writes them; the cooldown
/// may differ between two messages of an epoch).
fn record(epoch: u64, cooldown: u64) -> BreakerRecord {
    BreakerRecord {
        epoch,
        state: match epoch % 3 {
            0 => SharedState::Closed,
            1 => SharedState::Open {
                until: FleetTime::from_millis(epoch * 10 + 50_000),
            },
            _ => SharedState::Isolated,
        },
        cooldown: FleetTime::from_millis(cooldown),
        trips: 0,
    }
}

/// A replica starts disconnected and says what it was last told.
#[test]
fn connected_is_what_the_replica_was_last_told() {
    let registry = registry();
    let mut replica = Replica::new(1, config(), FleetClock::identity());
    assert!(!replica.connected());
    replica.set_connected(Time::ZERO, &registry, true);
    assert!(replica.connected());
    replica.set_connected(Time::ZERO, &registry, false);
    assert!(!replica.connected());
}

/// A read answered with an older record than the replica has since learned (the
/// update overtook the reply) is stale: counted, not adopted. So is a pushed update of
/// epoch 0: only the store's own answer of 0 means it lost its data.
#[test]
fn records_older_than_the_known_one_are_stale() {
    let (registry, breaker, mut replica) = lone_replica();
    let now = Time::from_secs(1);
    assert_eq!(replica.poll_ops(now, &registry), [(key(), Op::Read)]);
    let update = |record| Update {
        name: key().to_string(),
        record,
    };
    replica.on_update(now, &registry, &update(record(4, 0)));
    let older = Reply {
        record: record(3, 0),
        granted: false,
        changed: false,
    };
    replica.on_reply(now, &key(), &breaker, Ok(older));
    assert_eq!(replica.known(&key()), Some(record(4, 0)));
    replica.on_update(now, &registry, &update(record(0, 0)));
    assert_eq!(replica.known(&key()), Some(record(4, 0)));
    assert_eq!(replica.stats().stale, 2);
}

proptest! {
    /// Whatever order updates arrive in, late or twice, a replica ends on the record of
    /// the latest epoch, its cooldown is the largest seen, and it applies a record only
    /// when it is newer than every one before.
    #[test]
    fn any_delivery_order_converges_on_the_latest_epoch(
        records in proptest::collection::vec((1u64..50, 0u64..100_000), 1..20),
        order in proptest::collection::vec(any::<prop::sample::Index>(), 1..60),
    ) {
        let (registry, breaker, mut replica) = lone_replica();
        let _ = replica.poll_ops(Time::ZERO, &registry);
        let updates: Vec<Update> = records
            .iter()
            .map(|&(e, c)| Update { name: key().to_string(), record: record(e, c) })
            .collect();
        // Deliver a random sequence (duplicates and reordering), then every update once.
        let mut best = 0;
        let mut applied = 0;
        let now = Time::from_secs(1);
        for update in order.iter().map(|i| &updates[i.index(updates.len())]).chain(&updates) {
            if update.record.epoch > best {
                best = update.record.epoch;
                applied += 1;
            }
            replica.on_update(now, &registry, update);
        }
        let latest = updates.iter().map(|u| u.record.epoch).max().unwrap();
        let known = replica.known(&key()).unwrap();
        prop_assert_eq!(known.epoch, latest);
        let winner = updates.iter().find(|u| u.record.epoch == latest).unwrap().record;
        prop_assert_eq!(known.state, winner.state);
        prop_assert_eq!(known.cooldown, updates.iter().map(|u| u.record.cooldown).max().unwrap());
        prop_assert_eq!(replica.stats().applied, applied);
        let local = breaker.state(now);
        match winner.state {
            SharedState::Closed => prop_assert_eq!(local, State::Closed),
            SharedState::Open { until } => prop_assert_eq!(local, State::Open { until: Time::from_millis(until.as_millis()) }),
            SharedState::Isolated => prop_assert_eq!(local, State::Isolated),
        }
    }

    /// Replicas that admit calls, claim and report in any interleaving, with the
    /// store's answers delivered late and in any order, never run more than
    /// `half_open_probes` probes in one epoch across the fleet.
    #[test]
    fn probes_never_exceed_n_per_epoch_across_the_fleet(
        steps in proptest::collection::vec((0usize..4, 0u8..4, any::<prop::sample::Index>()), 1..200),
    ) {
        let mut fleet = Fleet::new(4);
        fleet.trip_then_pass_the_open_period();
        let mut pending: Vec<(usize, Key, Op)> = Vec::new();
        let mut held: Vec<(usize, Permit, u64)> = Vec::new();
        let mut probes_per_epoch: BTreeMap<u64, u32> = BTreeMap::new();
        for (node, action, pick) in steps {
            let now = fleet.now;
            match action {
                0 => {
                    let b = fleet.breaker(node);
                    if let Admit::Admitted(p) = b.admit(now) {
                        if p.is_probe() {
                            let epoch = fleet.nodes[node].replica.known(&key()).unwrap().epoch;
                            let n = probes_per_epoch.entry(epoch).or_default();
                            *n += 1;
                            prop_assert!(*n <= 2, "{} probes in epoch {}", n, epoch);
                        }
                        held.push((node, p, 0));
                    }
                }
                1 => {
                    let n = &mut fleet.nodes[node];
                    for (k, op) in n.replica.poll_ops(now, &n.registry) {
                        pending.push((node, k, op));
                    }
                }
                2 if !pending.is_empty() => {
                    let (node, k, op) = pending.remove(pick.index(pending.len()));
                    let name = k.to_string();
                    let reply = fleet.store.entry(name.clone()).or_default().apply(&op, FleetTime::from_millis(now.as_nanos() / 1_000_000));
                    let b = fleet.nodes[node].registry.breaker(&k).unwrap();
                    fleet.nodes[node].replica.on_reply(now, &k, &b, Ok(reply));
                    if reply.changed {
                        let m = Update { name, record: reply.record }.encode();
                        for other in &mut fleet.nodes {
                            other.replica.on_message(now, &other.registry, &m);
                        }
                    }
                }
                3 if !held.is_empty() => {
                    let (node, p, _) = held.remove(pick.index(held.len()));
                    let class = if pick.index(2) == 0 { Class::Success } else { Class::Retriable };
                    fleet.breaker(node).record(now, p, &class, Duration::from_millis(5));
                }
                _ => fleet.now = fleet.now + Duration::from_millis(50),
            }
        }
    }
}

#[test]
fn config_errors_name_the_setting() {
    let zero = Duration::ZERO;
    let stale = FleetConfig {
        staleness: zero,
        ..FleetConfig::default()
    };
    assert_eq!(stale.validate(), Err(FleetConfigError::Staleness));
    let lease = FleetConfig {
        probe_lease: zero,
        ..FleetConfig::default()
    };
    assert_eq!(lease.validate(), Err(FleetConfigError::ProbeLease));
    for bad in [stale, lease] {
        let path = bad.validate().unwrap_err().path();
        assert!(crate::written::written(&bad, path), "{path} in {bad:?}");
    }
    assert_eq!(
        FleetConfigError::Staleness.to_string(),
        "fleet staleness_ms must be at least 1"
    );
    assert_eq!(
        FleetConfigError::ProbeLease.to_string(),
        "fleet probe_lease_ms must be at least 1"
    );
}
