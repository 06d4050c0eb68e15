//! The store's rules, case by case, and a proptest over any sequence of operations.
use super::*;
use proptest::prelude::*;

fn ms(n: u64) -> FleetTime {
    FleetTime::from_millis(n)
}

fn open(until: u64) -> SharedState {
    SharedState::Open { until: ms(until) }
}

const LEASE: Duration = Duration::from_secs(10);

#[test]
fn concurrent_trips_open_the_key_once() {
    let mut s = StoreRecord::default();
    let a = s.apply(
        &Op::Open {
            base: 0,
            until: ms(150),
        },
        ms(100),
    );
    assert!(a.changed);
    assert_eq!(a.record.epoch, 100);
    assert_eq!(a.record.state, open(150));
    // B saw epoch 0 too: it loses to A's open and gets A's record back.
    let b = s.apply(
        &Op::Open {
            base: 0,
            until: ms(170),
        },
        ms(100),
    );
    assert!(!b.changed);
    assert_eq!(b.record, a.record);
    // Epochs within a millisecond still grow.
    let c = s.apply(
        &Op::Open {
            base: 100,
            until: ms(180),
        },
        ms(100),
    );
    assert_eq!((c.record.epoch, c.record.trips), (101, 2));
}

#[test]
fn a_trip_against_a_closed_key_wins_whatever_its_base() {
    let mut s = StoreRecord::default();
    s.apply(
        &Op::Open {
            base: 0,
            until: ms(10),
        },
        ms(5),
    );
    s.apply(&Op::Close { base: 5 }, ms(20));
    assert_eq!(s.record.state, SharedState::Closed);
    let r = s.apply(
        &Op::Open {
            base: 0,
            until: ms(40),
        },
        ms(30),
    );
    assert!(r.changed);
    assert_eq!(r.record.state, open(40));
}

#[test]
fn a_close_needs_the_current_epoch() {
    let mut s = StoreRecord::default();
    s.apply(
        &Op::Open {
            base: 0,
            until: ms(10),
        },
        ms(5),
    );
    assert!(!s.apply(&Op::Close { base: 4 }, ms(20)).changed);
    assert!(s.apply(&Op::Close { base: 5 }, ms(20)).changed);
    assert!(
        !s.apply(&Op::Close { base: 20 }, ms(21)).changed,
        "already closed"
    );
    assert_eq!(s.record.trips, 0);
}

#[test]
fn claims_are_bounded_per_epoch_and_leases_expire() {
    let mut s = StoreRecord::default();
    s.apply(
        &Op::Open {
            base: 0,
            until: ms(100),
        },
        ms(10),
    );
    let claim = |s: &mut StoreRecord, epoch, now| {
        s.apply(
            &Op::Claim {
                epoch,
                limit: 2,
                lease: LEASE,
            },
            ms(now),
        )
        .granted
    };
    assert!(!claim(&mut s, 10, 50), "still open");
    assert!(!claim(&mut s, 9, 100), "old epoch");
    assert!(claim(&mut s, 10, 100));
    assert!(claim(&mut s, 10, 101));
    assert!(!claim(&mut s, 10, 102));
    s.apply(
        &Op::Release {
            epoch: 10,
            probes: 1,
        },
        ms(103),
    );
    assert!(claim(&mut s, 10, 104));
    assert!(!claim(&mut s, 10, 105));
    // Nobody reported for a whole lease: the claims lapse.
    assert!(claim(&mut s, 10, 104 + 10_000));
}

#[test]
fn close_after_successes_from_any_replica_close_the_key() {
    let mut s = StoreRecord::default();
    s.apply(
        &Op::Open {
            base: 0,
            until: ms(100),
        },
        ms(10),
    );
    let ok = Op::ProbeSucceeded {
        epoch: 10,
        close_after: 2,
    };
    assert!(!s.apply(&ok, ms(50)).changed, "not half-open yet");
    assert!(!s.apply(&ok, ms(100)).changed);
    let r = s.apply(&ok, ms(101));
    assert!(r.changed);
    assert_eq!(r.record.state, SharedState::Closed);
    assert_eq!(r.record.epoch, 101);
}

#[test]
fn cooldowns_only_grow_and_isolation_is_one_epoch() {
    let mut s = StoreRecord::default();
    assert!(s.apply(&Op::CoolDown { until: ms(50) }, ms(1)).changed);
    assert!(!s.apply(&Op::CoolDown { until: ms(40) }, ms(2)).changed);
    assert_eq!(s.record.cooldown, ms(50));
    assert!(s.apply(&Op::Isolate { base: 0 }, ms(3)).changed);
    assert!(!s.apply(&Op::Isolate { base: 3 }, ms(4)).changed);
    assert!(
        !s.apply(
            &Op::Open {
                base: 0,
                until: ms(9)
            },
            ms(5)
        )
        .changed
    );
    assert!(s.apply(&Op::Close { base: 3 }, ms(6)).changed);
    assert!(!s.apply(&Op::Read, ms(7)).changed);
}

#[test]
fn fields_round_trip_and_versions_are_checked() {
    let mut s = StoreRecord::default();
    s.apply(
        &Op::Open {
            base: 0,
            until: ms(100),
        },
        ms(10),
    );
    s.apply(
        &Op::Claim {
            epoch: 10,
            limit: 3,
            lease: LEASE,
        },
        ms(100),
    );
    s.apply(&Op::CoolDown { until: ms(300) }, ms(100));
    s.apply(
        &Op::ProbeSucceeded {
            epoch: s.record.epoch,
            close_after: 3,
        },
        ms(100),
    );
    assert_eq!(s.successes, 1, "every field is set before the round trip");
    let fields = s.to_fields();
    let read = StoreRecord::from_fields(fields.iter().map(|(k, v)| (*k, v.as_str())));
    assert_eq!(read, Ok(s));
    assert_eq!(StoreRecord::from_fields([]), Ok(StoreRecord::default()));
    assert_eq!(
        StoreRecord::from_fields([("v", "2"), ("epoch", "x")]),
        Err(DecodeError::Foreign(2))
    );
    assert_eq!(
        StoreRecord::from_fields([("epoch", "5"), ("state", "open")]),
        Err(DecodeError::Malformed("v"))
    );
    assert_eq!(
        StoreRecord::from_fields([("v", "1"), ("epoch", "5")]),
        Err(DecodeError::Malformed("state"))
    );
    assert_eq!(
        StoreRecord::from_fields([("v", "1"), ("state", "open"), ("extra", "ok")])
            .map(|s| s.record.state),
        Ok(open(0))
    );
}

fn op() -> impl Strategy<Value = Op> {
    let epoch = 0u64..40;
    prop_oneof![
        (epoch.clone(), 0u64..60).prop_map(|(base, until)| Op::Open {
            base,
            until: ms(until)
        }),
        epoch.clone().prop_map(|base| Op::Close { base }),
        epoch.clone().prop_map(|base| Op::Isolate { base }),
        (0u64..60).prop_map(|until| Op::CoolDown { until: ms(until) }),
        epoch.clone().prop_map(|epoch| Op::Claim {
            epoch,
            limit: 3,
            lease: Duration::from_secs(3600)
        }),
        (epoch.clone(), 0u32..3).prop_map(|(epoch, probes)| Op::Release { epoch, probes }),
        epoch.prop_map(|epoch| Op::ProbeSucceeded {
            epoch,
            close_after: 2
        }),
        Just(Op::Read),
    ]
}

proptest! {
    #[test]
    fn epochs_grow_cooldowns_grow_and_claims_never_exceed_the_limit(
        ops in proptest::collection::vec((op(), 0u64..3), 1..80)
    ) {
        let mut s = StoreRecord::default();
        let mut now = 0u64;
        let mut granted_in_epoch = 0u32;
        let mut released_in_epoch = 0u32;
        for (op, step) in ops {
            now += step;
            let before = s;
            let reply = s.apply(&op, ms(now));
            prop_assert!(s.record.epoch >= before.record.epoch);
            prop_assert!(s.record.cooldown >= before.record.cooldown);
            prop_assert_eq!(reply.record, s.record);
            if s.record.epoch != before.record.epoch {
                prop_assert!(s.record.epoch > before.record.epoch);
                granted_in_epoch = 0;
                released_in_epoch = 0;
            }
            if reply.granted {
                granted_in_epoch += 1;
            }
            if let Op::Release { epoch, probes } = op {
                if epoch == s.record.epoch { released_in_epoch += probes; }
            }
            // Within one lease (an hour here), grants never exceed the limit plus
            // what was given back.
            prop_assert!(granted_in_epoch <= 3 + released_in_epoch);
            prop_assert!(s.probes <= 3);
        }
    }
}
