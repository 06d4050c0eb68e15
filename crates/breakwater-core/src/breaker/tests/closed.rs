//! The closed state: what trips it, what counts, what cools it down.

use std::time::Duration;

use super::*;

#[test]
fn consecutive_failures_trip_and_a_success_starts_over() {
    let b = Breaker::new(config(), 0);
    call(&b, secs(0), FAIL);
    call(&b, secs(0), FAIL);
    call(&b, secs(0), OK);
    call(&b, secs(0), FAIL);
    call(&b, secs(0), FAIL);
    assert_eq!(b.state(secs(0)), State::Closed);
    call(&b, secs(1), FAIL);
    assert_eq!(b.state(secs(1)), open(secs(6)));
    assert_eq!(causes(&b), [Cause::ConsecutiveFailures]);
}

#[test]
fn failure_rate_waits_for_min_calls_and_is_judged_on_failures() {
    let b = Breaker::new(
        BreakerConfig {
            consecutive_failures: None,
            window: Some(Window::Count { size: 10 }),
            failure_rate: Some(0.5),
            min_calls: 4,
            ..config()
        },
        0,
    );
    for class in [FAIL, OK, FAIL] {
        call(&b, secs(0), class);
    }
    assert_eq!(b.state(secs(0)), State::Closed, "3 calls < min_calls");
    call(&b, secs(0), OK);
    assert_eq!(
        b.state(secs(0)),
        State::Closed,
        "2/4, but a success judges nothing"
    );
    call(&b, secs(0), FAIL);
    assert_eq!(b.state(secs(0)), open(secs(5)), "3/5");
    assert_eq!(causes(&b), [Cause::FailureRate]);
}

#[test]
fn count_window_forgets_old_failures() {
    let b = Breaker::new(
        BreakerConfig {
            consecutive_failures: None,
            window: Some(Window::Count { size: 4 }),
            failure_rate: Some(0.75),
            min_calls: 4,
            ..config()
        },
        0,
    );
    for class in [FAIL, FAIL, OK, OK, OK, FAIL, FAIL] {
        call(&b, secs(0), class);
    }
    assert_eq!(
        b.state(secs(0)),
        State::Closed,
        "the window holds OK OK FAIL FAIL"
    );
    call(&b, secs(0), FAIL);
    assert_eq!(b.state(secs(0)), open(secs(5)), "OK FAIL FAIL FAIL");
}

#[test]
fn slow_call_rate_trips_on_slow_successes() {
    let b = Breaker::new(
        BreakerConfig {
            consecutive_failures: None,
            window: Some(Window::Count { size: 10 }),
            failure_rate: Some(0.5),
            slow_call_rate: Some(0.5),
            slow_call_ms: Duration::from_secs(1),
            min_calls: 3,
            ..config()
        },
        0,
    );
    call_took(&b, secs(0), OK, Duration::from_millis(999));
    call_took(&b, secs(0), OK, Duration::from_secs(1));
    call_took(&b, secs(0), OK, Duration::from_millis(10));
    assert_eq!(b.state(secs(0)), State::Closed, "1/3 slow");
    call_took(&b, secs(0), OK, Duration::from_secs(9));
    assert_eq!(b.state(secs(0)), open(secs(5)), "2/4 slow");
    assert_eq!(causes(&b), [Cause::SlowCallRate]);
}

/// Slow successes count even into a settled window, where fast ones write nothing.
#[test]
fn slow_successes_into_a_full_window_of_fast_ones_trip_it() {
    let b = Breaker::new(
        BreakerConfig {
            consecutive_failures: None,
            window: Some(Window::Count { size: 4 }),
            failure_rate: None,
            slow_call_rate: Some(0.5),
            slow_call_ms: Duration::from_secs(1),
            min_calls: 4,
            ..config()
        },
        0,
    );
    for _ in 0..8 {
        call_took(&b, secs(0), OK, Duration::from_millis(10));
    }
    call_took(&b, secs(0), OK, Duration::from_secs(2));
    assert_eq!(b.state(secs(0)), State::Closed, "1/4 slow");
    call_took(&b, secs(0), OK, Duration::from_secs(2));
    assert_eq!(b.state(secs(0)), open(secs(5)), "2/4 slow");
}

#[test]
fn time_window_expires_old_calls() {
    let b = Breaker::new(
        BreakerConfig {
            consecutive_failures: None,
            window: Some(Window::Time {
                span: Duration::from_secs(10),
                buckets: 5,
            }),
            failure_rate: Some(0.5),
            min_calls: 3,
            ..config()
        },
        0,
    );
    call(&b, secs(0), FAIL);
    call(&b, secs(1), FAIL);
    call(&b, secs(20), OK);
    call(&b, secs(20), OK);
    call(&b, secs(21), FAIL);
    assert_eq!(
        b.state(secs(21)),
        State::Closed,
        "1/3: the first two expired"
    );
    call(&b, secs(22), FAIL);
    assert_eq!(b.state(secs(22)), open(secs(27)), "2/4");
}

#[test]
fn rate_limits_cool_down_without_counting() {
    let b = Breaker::new(config(), 0);
    let limited = Class::RateLimited {
        retry_after: Some(Duration::from_secs(3)),
    };
    call(&b, secs(0), FAIL);
    call(&b, secs(0), FAIL);
    call(&b, secs(0), limited);
    assert_eq!(b.state(secs(0)), State::Closed);
    assert_eq!(
        rejection(&b, secs(1)),
        Rejection {
            reason: RejectReason::CoolingDown,
            until: Some(secs(3))
        }
    );
    // Not a failure, and not a success either: the run of failures goes on.
    call(&b, secs(3), FAIL);
    assert_eq!(b.state(secs(3)), open(secs(8)));
    assert!(causes(&b) == [Cause::ConsecutiveFailures]);
}

#[test]
fn a_rate_limit_without_a_hint_only_counts_as_nothing() {
    let b = Breaker::new(config(), 0);
    for _ in 0..10 {
        call(&b, secs(0), Class::RateLimited { retry_after: None });
    }
    assert_eq!(b.check(secs(0)), Ok(()));
    assert_eq!(b.state(secs(0)), State::Closed);
}

#[test]
fn cool_down_extends_and_never_shortens() {
    let b = Breaker::new(config(), 0);
    b.cool_down(secs(0), secs(10));
    b.cool_down(secs(1), secs(2));
    b.cool_down(secs(1), secs(0));
    assert_eq!(b.check(secs(5)).map_err(|r| r.until), Err(Some(secs(10))));
    assert_eq!(b.check(secs(10)), Ok(()));
    assert_eq!(events(&b), [], "a cooldown is not a transition");
}

/// The fleet layer pushes a cooldown when the revision moves: one that changes nothing
/// (the same end or an earlier one) must not move it.
#[test]
fn only_a_longer_cooldown_moves_the_fleet_revision() {
    let b = Breaker::new(config(), 0);
    let revision = |b: &Breaker| b.fleet_view(secs(1)).revision;
    b.cool_down(secs(0), secs(10));
    let first = revision(&b);
    b.cool_down(secs(1), secs(10));
    b.cool_down(secs(1), secs(4));
    assert_eq!(revision(&b), first);
    b.cool_down(secs(1), secs(11));
    assert_ne!(revision(&b), first);
    assert_eq!(b.fleet_view(secs(1)).cooldown, Some(secs(11)));
}

#[test]
fn the_longest_blocker_names_the_rejection() {
    let b = Breaker::new(config(), 0);
    b.force_open(secs(0));
    b.cool_down(secs(0), secs(8));
    assert_eq!(
        rejection(&b, secs(1)),
        Rejection {
            reason: RejectReason::CoolingDown,
            until: Some(secs(8))
        }
    );
    // The open period ended at 5 s; the cooldown still holds the probes back.
    assert_eq!(rejection(&b, secs(6)).reason, RejectReason::CoolingDown);
    assert_eq!(b.state(secs(6)), State::HalfOpen);
    assert!(permit(&b, secs(8)).is_probe());

    for cooldown in [2, 5] {
        let b = Breaker::new(config(), 0);
        b.cool_down(secs(0), secs(cooldown));
        b.force_open(secs(0));
        let open = Rejection {
            reason: RejectReason::Open,
            until: Some(secs(5)),
        };
        assert_eq!(rejection(&b, secs(1)), open, "a tie goes to Open");
    }
}

#[test]
fn overload_hints_cool_down_and_still_count() {
    let b = Breaker::new(config(), 0);
    let overloaded = Class::Overloaded {
        retry_after: Some(Duration::from_secs(2)),
    };
    call(&b, secs(0), overloaded);
    assert_eq!(rejection(&b, secs(1)).reason, RejectReason::CoolingDown);
    call(&b, secs(2), overloaded);
    call(&b, secs(4), overloaded);
    assert_eq!(b.state(secs(4)), open(secs(9)));
    assert_eq!(rejection(&b, secs(7)).until, Some(secs(9)));
}

#[test]
fn non_retriable_never_counts_by_default() {
    let b = Breaker::new(config(), 0);
    for _ in 0..20 {
        call(&b, secs(0), Class::NonRetriable(Fatal::InvalidRequest));
    }
    assert_eq!(b.state(secs(0)), State::Closed);
    // It counts as the provider answering: it ends a run of failures.
    for class in [FAIL, FAIL, Class::NonRetriable(Fatal::NotFound), FAIL, FAIL] {
        call(&b, secs(0), class);
    }
    assert_eq!(b.state(secs(0)), State::Closed);

    let strict = Breaker::new(
        BreakerConfig {
            failures: ClassSet::DEFAULT_FAILURES.with(ClassKind::NonRetriable),
            ..config()
        },
        0,
    );
    for _ in 0..3 {
        call(&strict, secs(0), Class::NonRetriable(Fatal::Other));
    }
    assert_eq!(strict.state(secs(0)), open(secs(5)));
}

#[test]
fn reset_clears_the_counters_and_keeps_a_cooldown() {
    let b = Breaker::new(config(), 0);
    call(&b, secs(0), FAIL);
    call(&b, secs(0), FAIL);
    b.cool_down(secs(0), secs(1));
    b.reset(secs(0));
    assert_eq!(rejection(&b, secs(0)).reason, RejectReason::CoolingDown);
    call(&b, secs(1), FAIL);
    call(&b, secs(1), FAIL);
    assert_eq!(
        b.state(secs(1)),
        State::Closed,
        "the two before the reset are gone"
    );
}

#[test]
fn permits_from_before_a_trip_do_not_count_after_it() {
    let b = Breaker::new(config(), 0);
    let in_flight: Vec<_> = (0..5).map(|_| permit(&b, secs(0))).collect();
    for _ in 0..3 {
        call(&b, secs(0), FAIL);
    }
    call(&b, secs(5), OK);
    call(&b, secs(5), OK);
    assert_eq!(b.state(secs(5)), State::Closed);
    // The calls in flight during the outage fail late: they belong to the old period.
    for p in in_flight {
        b.record(secs(6), p, &FAIL, Duration::from_secs(6));
    }
    assert_eq!(b.state(secs(6)), State::Closed);
}

#[test]
fn the_handle_is_cheap_and_shareable() {
    fn shareable<T: Clone + Send + Sync>() {}
    fn sendable<T: Send + Sync>() {}
    shareable::<Breaker>();
    sendable::<Permit>();
    assert_eq!(std::mem::size_of::<Permit>(), 16);
    let b = Breaker::new(config(), 0);
    let c = b.clone();
    c.force_open(secs(0));
    assert_eq!(b.state(secs(0)), open(secs(5)));
    assert!(format!("{b:?}").contains("Breaker"));
    assert_eq!(b.config(), &config());
}

#[test]
fn the_class_table_follows_declaration_order() {
    for (index, kind) in ClassKind::ALL.into_iter().enumerate() {
        assert_eq!(
            kind as usize, index,
            "Rules::counted is indexed by `kind as usize`"
        );
    }
}
