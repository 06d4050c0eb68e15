//! Open, half-open, manual operations and the events they emit.

use std::time::Duration;

use super::*;

#[test]
fn open_moves_to_half_open_at_the_first_admit_after_it_ends() {
    let b = Breaker::new(config(), 0);
    b.force_open(secs(10));
    let r = rejection(&b, secs(12));
    assert_eq!(
        r,
        Rejection {
            reason: RejectReason::Open,
            until: Some(secs(15))
        }
    );
    assert_eq!(b.check(secs(14)), Err(r));
    assert_eq!(b.state(secs(14)), open(secs(15)));
    assert!(permit(&b, secs(15)).is_probe());
    assert_eq!(b.state(secs(15)), State::HalfOpen);
    assert_eq!(
        events(&b),
        [
            (secs(10), StateKind::Closed, StateKind::Open, Cause::Forced),
            (
                secs(15),
                StateKind::Open,
                StateKind::HalfOpen,
                Cause::OpenElapsed
            ),
        ]
    );
}

/// A permit shows what it belongs to: its closed period, or its probe's generation.
#[test]
fn permits_show_their_period_or_probe_generation() {
    let b = Breaker::new(config(), 0);
    assert_eq!(format!("{:?}", permit(&b, secs(0))), "Permit { period: 0 }");
    b.force_open(secs(0));
    assert_eq!(
        format!("{:?}", permit(&b, secs(5))),
        "Permit { probe_generation: 1 }"
    );
}

#[test]
fn half_open_admits_n_probes_and_check_takes_none() {
    let b = Breaker::new(config(), 0);
    b.force_open(secs(0));
    assert_eq!(b.check(secs(5)), Ok(()));
    assert_eq!(b.check(secs(5)), Ok(()));
    let _first = permit(&b, secs(5));
    let _second = permit(&b, secs(5));
    let full = Rejection {
        reason: RejectReason::HalfOpenFull,
        until: None,
    };
    assert_eq!(rejection(&b, secs(5)), full);
    assert_eq!(b.check(secs(6)), Err(full));
}

#[test]
fn m_probe_successes_close_and_the_trip_count_starts_over() {
    let b = Breaker::new(config(), 0);
    b.force_open(secs(0));
    let (p1, p2) = (permit(&b, secs(5)), permit(&b, secs(5)));
    b.record(secs(5), p1, &OK, Duration::ZERO);
    assert_eq!(b.state(secs(5)), State::HalfOpen);
    b.record(secs(6), p2, &OK, Duration::ZERO);
    assert_eq!(b.state(secs(6)), State::Closed);
    assert!(!permit(&b, secs(6)).is_probe());
    b.force_open(secs(7));
    assert_eq!(
        b.state(secs(7)),
        open(secs(12)),
        "first trip of a new run: 5 s"
    );
}

#[test]
fn a_failed_probe_reopens_for_longer() {
    let b = Breaker::new(config(), 0);
    for _ in 0..3 {
        call(&b, secs(0), FAIL);
    }
    assert_eq!(b.state(secs(0)), open(secs(5)));
    call(&b, secs(5), FAIL);
    assert_eq!(b.state(secs(5)), open(secs(15)));
    call(&b, secs(15), Class::Overloaded { retry_after: None });
    assert_eq!(b.state(secs(15)), open(secs(35)));
    assert_eq!(
        causes(&b),
        [
            Cause::ConsecutiveFailures,
            Cause::OpenElapsed,
            Cause::ProbeFailed,
            Cause::OpenElapsed,
            Cause::ProbeFailed
        ]
    );
}

#[test]
fn force_open_isolate_and_reset() {
    let b = Breaker::new(config(), 0);
    b.force_open(secs(0));
    b.force_open(secs(1));
    assert_eq!(
        b.state(secs(1)),
        open(secs(11)),
        "a second trip in a row: 10 s"
    );
    b.isolate(secs(2));
    b.force_open(secs(3));
    b.isolate(secs(3));
    let isolated = Rejection {
        reason: RejectReason::Isolated,
        until: None,
    };
    assert_eq!(rejection(&b, secs(1000)), isolated);
    assert_eq!(b.check(secs(1000)), Err(isolated));
    assert_eq!(b.state(secs(1000)), State::Isolated);
    b.reset(secs(1000));
    assert_eq!(b.state(secs(1000)), State::Closed);
    assert!(!permit(&b, secs(1000)).is_probe());
    b.force_open(secs(1000));
    assert_eq!(
        b.state(secs(1000)),
        open(secs(1005)),
        "reset starts the count over"
    );
    use StateKind::*;
    assert_eq!(
        events(&b),
        [
            (secs(0), Closed, Open, Cause::Forced),
            (secs(1), Open, Open, Cause::Forced),
            (secs(2), Open, Isolated, Cause::Isolated),
            (secs(1000), Isolated, Closed, Cause::Reset),
            (secs(1000), Closed, Open, Cause::Forced),
        ]
    );
}

#[test]
fn events_come_out_in_order() {
    let b = Breaker::new(config(), 0);
    for _ in 0..3 {
        call(&b, secs(0), FAIL);
    }
    call(&b, secs(5), FAIL);
    call(&b, secs(15), OK);
    call(&b, secs(16), OK);
    use StateKind::*;
    assert_eq!(
        events(&b),
        [
            (secs(0), Closed, Open, Cause::ConsecutiveFailures),
            (secs(5), Open, HalfOpen, Cause::OpenElapsed),
            (secs(5), HalfOpen, Open, Cause::ProbeFailed),
            (secs(15), Open, HalfOpen, Cause::OpenElapsed),
            (secs(16), HalfOpen, Closed, Cause::ProbesSucceeded),
        ]
    );
    assert_eq!(b.poll_event(), None);
}

#[test]
fn the_event_queue_is_bounded_and_counts_what_it_drops() {
    let b = Breaker::new(config(), 0);
    let extra = 6;
    for n in 0..Breaker::EVENT_CAPACITY as u64 + extra {
        b.force_open(secs(n));
    }
    assert_eq!(b.dropped_events(), extra);
    let all = events(&b);
    assert_eq!(all.len(), Breaker::EVENT_CAPACITY);
    assert_eq!(all[0].0, secs(extra), "the oldest were dropped");
}

#[test]
fn a_dropped_probe_frees_its_slot_and_stale_probes_touch_nothing() {
    let b = Breaker::new(
        BreakerConfig {
            half_open_probes: 3,
            ..config()
        },
        0,
    );
    b.force_open(secs(0));
    let (a, stale_b, stale_c) = (
        permit(&b, secs(5)),
        permit(&b, secs(5)),
        permit(&b, secs(5)),
    );
    assert_eq!(rejection(&b, secs(5)).reason, RejectReason::HalfOpenFull);
    drop(stale_c);
    let c = permit(&b, secs(5));
    b.record(secs(5), a, &FAIL, Duration::ZERO);
    drop(c);
    // A new half-open period: three fresh slots.
    let (d, e, f) = (
        permit(&b, secs(15)),
        permit(&b, secs(15)),
        permit(&b, secs(15)),
    );
    assert!(d.is_probe() && e.is_probe() && f.is_probe());
    // A stale success neither closes it nor frees a slot.
    b.record(secs(15), stale_b, &OK, Duration::ZERO);
    assert_eq!(rejection(&b, secs(15)).reason, RejectReason::HalfOpenFull);
    b.record(secs(15), e, &OK, Duration::ZERO);
    assert_eq!(b.state(secs(15)), State::HalfOpen, "one success of two");
    b.record(secs(15), f, &OK, Duration::ZERO);
    assert_eq!(b.state(secs(15)), State::Closed);
    drop(d);
    assert_eq!(b.state(secs(15)), State::Closed);
}

#[test]
fn a_probe_that_counts_as_neither_frees_its_slot() {
    let b = Breaker::new(
        BreakerConfig {
            half_open_probes: 1,
            close_after: 1,
            ..config()
        },
        0,
    );
    b.force_open(secs(0));
    let p = permit(&b, secs(5));
    assert_eq!(rejection(&b, secs(5)).reason, RejectReason::HalfOpenFull);
    b.record(
        secs(5),
        p,
        &Class::RateLimited { retry_after: None },
        Duration::ZERO,
    );
    assert_eq!(b.state(secs(5)), State::HalfOpen);
    call(&b, secs(5), OK);
    assert_eq!(b.state(secs(5)), State::Closed);
}

#[test]
fn a_slow_probe_fails_only_when_slowness_is_judged() {
    let judged = BreakerConfig {
        window: Some(Window::Count { size: 10 }),
        slow_call_rate: Some(0.5),
        slow_call_ms: Duration::from_secs(1),
        half_open_probes: 1,
        close_after: 1,
        ..config()
    };
    let b = Breaker::new(judged.clone(), 0);
    b.force_open(secs(0));
    call_took(&b, secs(5), OK, Duration::from_secs(2));
    assert_eq!(b.state(secs(5)), open(secs(15)));

    let b = Breaker::new(
        BreakerConfig {
            slow_call_rate: None,
            ..judged
        },
        0,
    );
    b.force_open(secs(0));
    call_took(&b, secs(5), OK, Duration::from_secs(2));
    assert_eq!(b.state(secs(5)), State::Closed);
}

#[test]
fn a_permit_from_another_breaker_is_ignored() {
    let a = Breaker::new(config(), 0);
    let b = Breaker::new(config(), 0);
    a.force_open(secs(0));
    let probe = permit(&a, secs(5));
    b.record(secs(5), probe, &FAIL, Duration::ZERO);
    assert_eq!(a.state(secs(5)), State::HalfOpen, "released, not recorded");
    assert!(permit(&a, secs(5)).is_probe() && permit(&a, secs(5)).is_probe());
    assert_eq!(b.state(secs(5)), State::Closed);

    // Both half-open in the same generation: still not one of `b`'s probes.
    let (a, b) = (Breaker::new(config(), 0), Breaker::new(config(), 0));
    a.force_open(secs(0));
    b.force_open(secs(0));
    let probe = permit(&a, secs(5));
    b.record(secs(5), probe, &FAIL, Duration::ZERO);
    assert_eq!(b.state(secs(5)), State::HalfOpen, "no failed probe of b's");
    assert!(permit(&a, secs(5)).is_probe() && permit(&a, secs(5)).is_probe());
}

#[test]
fn open_durations_come_from_the_seeded_stream() {
    let jittered = BreakerConfig::default();
    let until = |seed| {
        let b = Breaker::new(jittered.clone(), seed);
        (0..4)
            .map(|n| {
                let now = secs(1000 * n);
                b.force_open(now);
                match b.state(now) {
                    State::Open { until } => until - now,
                    other => panic!("{other:?}"),
                }
            })
            .collect::<Vec<_>>()
    };
    let first = until(7);
    assert_eq!(first, until(7));
    assert_ne!(first, until(8));
    for (n, d) in first.into_iter().enumerate() {
        let ceiling = jittered.open.ceiling(n as u32);
        assert!(d >= ceiling / 2 && d <= ceiling, "{d:?} vs {ceiling:?}");
    }
}
