//! The breaker under real threads: racing admits at the instant it turns half-open,
//! racing failures in the closed state, and probes dropped from many threads.

use std::sync::Barrier;
use std::thread;
use std::time::Duration;

use breakwater_core::breaker::{Cause, StateKind};
use breakwater_core::{Admit, Backoff, Breaker, BreakerConfig, Class, Jitter, Permit, State, Time};

const THREADS: usize = 8;

fn config(probes: u32) -> BreakerConfig {
    BreakerConfig {
        half_open_probes: probes,
        close_after: 1,
        open: Backoff::exponential(Duration::from_secs(1), Duration::from_secs(60))
            .with_jitter(Jitter::None),
        ..BreakerConfig::default()
    }
}

/// Each thread calls `admit` `tries` times at `now` and keeps what it gets, so that no
/// slot is released before every thread is done.
fn hammer(b: &Breaker, now: Time, tries: usize) -> Vec<Permit> {
    let barrier = Barrier::new(THREADS);
    thread::scope(|s| {
        let handles: Vec<_> = (0..THREADS)
            .map(|_| {
                s.spawn(|| {
                    barrier.wait();
                    (0..tries)
                        .filter_map(|_| b.admit(now).into_result().ok())
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        handles
            .into_iter()
            .flat_map(|h| h.join().expect("admit never panics"))
            .collect()
    })
}

#[test]
fn racing_admits_at_the_half_open_instant_get_exactly_n_probes() {
    for round in 0..40u32 {
        let probes = 1 + round % 5;
        let b = Breaker::new(config(probes), u64::from(round));
        b.force_open(Time::ZERO);
        let permits = hammer(&b, Time::from_secs(1), 200);
        assert_eq!(permits.len(), probes as usize, "round {round}");
        assert!(permits.iter().all(Permit::is_probe));
        assert_eq!(b.state(Time::from_secs(1)), State::HalfOpen);
        // Exactly one Open → HalfOpen transition, however many threads noticed it.
        let half_opens = std::iter::from_fn(|| b.poll_event())
            .filter(|e| e.cause == Cause::OpenElapsed)
            .count();
        assert_eq!(half_opens, 1, "round {round}");
    }
}

#[test]
fn probes_dropped_on_many_threads_free_every_slot() {
    let b = Breaker::new(config(3), 0);
    b.force_open(Time::ZERO);
    let now = Time::from_secs(1);
    let barrier = Barrier::new(THREADS);
    thread::scope(|s| {
        for _ in 0..THREADS {
            s.spawn(|| {
                barrier.wait();
                for _ in 0..2_000 {
                    // Admitted or not, the permit is dropped at once.
                    let _ = b.admit(now);
                }
            });
        }
    });
    let permits = hammer(&b, now, 50);
    assert_eq!(permits.len(), 3, "every dropped probe gave its slot back");
}

#[test]
fn racing_failures_trip_once_and_late_records_do_not_count() {
    for round in 0..10u64 {
        let b = Breaker::new(
            BreakerConfig {
                open: Backoff::exponential(Duration::from_secs(3600), Duration::from_secs(3600))
                    .with_jitter(Jitter::None),
                ..BreakerConfig::default()
            },
            round,
        );
        let barrier = Barrier::new(THREADS);
        let now = Time::from_secs(1);
        thread::scope(|s| {
            for t in 0..THREADS {
                let (b, barrier) = (&b, &barrier);
                s.spawn(move || {
                    barrier.wait();
                    for i in 0..2_000 {
                        if let Admit::Admitted(p) = b.admit(now) {
                            let class = if (i + t) % 4 == 0 {
                                Class::Success
                            } else {
                                Class::Retriable
                            };
                            b.record(now, p, &class, Duration::from_millis(5));
                        }
                    }
                });
            }
        });
        let events: Vec<_> = std::iter::from_fn(|| b.poll_event()).collect();
        assert_eq!(events.len(), 1, "round {round}: {events:?}");
        assert_eq!(
            (events[0].from, events[0].to),
            (StateKind::Closed, StateKind::Open)
        );
        assert!(matches!(b.state(now), State::Open { .. }));
    }
}

#[test]
fn successes_on_many_threads_never_trip() {
    let b = Breaker::new(
        BreakerConfig {
            window: Some(breakwater_core::Window::Time {
                span: Duration::from_secs(10),
                buckets: 10,
            }),
            ..BreakerConfig::default()
        },
        0,
    );
    let barrier = Barrier::new(THREADS);
    thread::scope(|s| {
        for t in 0..THREADS as u64 {
            let (b, barrier) = (&b, &barrier);
            s.spawn(move || {
                barrier.wait();
                for i in 0..20_000u64 {
                    let now = Time::from_millis(i + t);
                    let p = b.admit(now).into_result().expect("closed");
                    b.record(now, p, &Class::Success, Duration::from_millis(1));
                }
            });
        }
    });
    assert_eq!(b.state(Time::from_secs(30)), State::Closed);
    assert_eq!(b.poll_event(), None);
}
