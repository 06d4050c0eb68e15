//! Behaviour of the breaker through its public API: one test per transition and cause
//! (`closed`: what trips it and what cools it down; `recovery`: open, half-open, manual
//! operations and events). The reference-model proptests are integration tests
//! (`tests/breaker_model.rs`), whose model the registry's state-machine test shares.

mod closed;
mod recovery;

use std::time::Duration;

use super::*;
use crate::backoff::{Backoff, Jitter};
use crate::class::{ClassSet, Fatal};

fn secs(n: u64) -> Time {
    Time::from_secs(n)
}

/// Three failures in a row trip it; no window; opens for 5 s doubling; 2 probes, 2 close.
fn config() -> BreakerConfig {
    BreakerConfig {
        consecutive_failures: Some(3),
        window: None,
        failure_rate: None,
        open: Backoff::exponential(Duration::from_secs(5), Duration::from_secs(120))
            .with_jitter(Jitter::None),
        half_open_probes: 2,
        close_after: 2,
        min_calls: 0,
        ..BreakerConfig::default()
    }
}

fn permit(b: &Breaker, now: Time) -> Permit {
    match b.admit(now) {
        Admit::Admitted(p) => p,
        Admit::Rejected(r) => panic!("rejected at {now}: {r:?}"),
    }
}

fn rejection(b: &Breaker, now: Time) -> Rejection {
    match b.admit(now) {
        Admit::Admitted(p) => panic!("admitted at {now}: {p:?}"),
        Admit::Rejected(r) => r,
    }
}

fn call_took(b: &Breaker, now: Time, class: Class, latency: Duration) {
    let p = permit(b, now);
    b.record(now, p, &class, latency);
}

fn call(b: &Breaker, now: Time, class: Class) {
    call_took(b, now, class, Duration::from_millis(10));
}

fn events(b: &Breaker) -> Vec<(Time, StateKind, StateKind, Cause)> {
    std::iter::from_fn(|| b.poll_event())
        .map(|e| (e.at, e.from, e.to, e.cause))
        .collect()
}

fn causes(b: &Breaker) -> Vec<Cause> {
    events(b).into_iter().map(|e| e.3).collect()
}

fn open(until: Time) -> State {
    State::Open { until }
}

const FAIL: Class = Class::Retriable;
const OK: Class = Class::Success;

#[test]
fn the_closed_state_reads_one_line_of_its_own() {
    use std::mem::{align_of, offset_of, size_of};
    // `Inner` starts a line; admit reads the gate, a fast success's record the
    // consecutive count and the rules' class table and slow-call threshold, all on the
    // first line (and the window's settled count, on the window's).
    assert!(align_of::<Inner>() >= 64);
    assert_eq!(offset_of!(Inner, gate), 0);
    assert!(offset_of!(Inner, consecutive) < 64);
    assert!(
        offset_of!(Inner, rules.counted) + size_of::<[Option<bool>; ClassKind::ALL.len()]>() <= 64
    );
    assert!(offset_of!(Inner, rules.slow_call) + size_of::<Duration>() <= 64);
}
