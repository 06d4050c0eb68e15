//! Peers measured on the same operations as ours, in the same run: failsafe and
//! recloser for the circuit breaker, backon for a jittered exponential backoff delay.
//! (Their breakers read the clock themselves; ours takes `now` as an argument.)

use std::hint::black_box;
use std::time::Duration;

use backon::BackoffBuilder;
use criterion::Criterion;

pub(crate) fn breakers(c: &mut Criterion) {
    let mut group = c.benchmark_group("peers/breaker");
    let failsafe = failsafe::Config::new().build();
    group.bench_function("closed_admit_record/failsafe", |b| {
        b.iter(|| {
            if failsafe.is_call_permitted() {
                failsafe.on_success();
            }
        });
    });
    let recloser = recloser::Recloser::default();
    group.bench_function("closed_admit_record/recloser", |b| {
        b.iter(|| black_box(recloser.call(|| Ok::<(), ()>(()))));
    });

    let open_failsafe = failsafe::Config::new().build();
    for _ in 0..32 {
        open_failsafe.on_error();
    }
    assert!(
        !open_failsafe.is_call_permitted(),
        "failsafe breaker should be open"
    );
    group.bench_function("open_rejection/failsafe", |b| {
        b.iter(|| black_box(open_failsafe.is_call_permitted()));
    });
    let open_recloser = recloser::Recloser::custom()
        .closed_len(1)
        .open_wait(Duration::from_secs(3600))
        .build();
    for _ in 0..2 {
        let _ = open_recloser.call(|| Err::<(), ()>(()));
    }
    assert!(
        matches!(
            open_recloser.call(|| Ok::<(), ()>(())),
            Err(recloser::Error::Rejected)
        ),
        "recloser should be open"
    );
    group.bench_function("open_rejection/recloser", |b| {
        b.iter(|| black_box(open_recloser.call(|| Ok::<(), ()>(()))));
    });
    group.finish();
}

pub(crate) fn backoff(c: &mut Criterion) {
    let mut group = c.benchmark_group("peers/backoff");
    let builder = backon::ExponentialBuilder::default()
        .with_min_delay(Duration::from_millis(500))
        .with_max_delay(Duration::from_secs(30))
        .with_jitter()
        .without_max_times();
    group.bench_function("delay/backon_exponential_jitter", |b| {
        b.iter(|| black_box(builder.build().next()));
    });
    group.finish();
}

/// Two threads (this machine's cores) admitting and recording at once, on one shared
/// breaker and on one breaker each; the time is per operation per thread.
pub(crate) fn contention(c: &mut Criterion) {
    use breakwater_core::{Admit, Breaker, BreakerConfig, Class, Time};

    let mut group = c.benchmark_group("contention/2_threads");
    let ours = || Breaker::new(BreakerConfig::default(), 1);
    let shared = ours();
    let own = [ours(), ours()];
    let admit_record = |breaker: &Breaker| {
        if let Admit::Admitted(permit) = breaker.admit(Time::from_secs(1)) {
            breaker.record(
                Time::from_secs(1),
                permit,
                &Class::Success,
                Duration::from_millis(1),
            );
        }
    };
    group.bench_function("breakwater/one_key", |b| {
        b.iter_custom(|iters| on_two_threads(iters, |_| admit_record(&shared)));
    });
    group.bench_function("breakwater/distinct_keys", |b| {
        b.iter_custom(|iters| on_two_threads(iters, |t| admit_record(&own[t])));
    });
    let failsafe_shared = failsafe::Config::new().build();
    let failsafe_own = [
        failsafe::Config::new().build(),
        failsafe::Config::new().build(),
    ];
    group.bench_function("failsafe/one_key", |b| {
        b.iter_custom(|iters| {
            on_two_threads(iters, |_| {
                if failsafe_shared.is_call_permitted() {
                    failsafe_shared.on_success();
                }
            })
        });
    });
    group.bench_function("failsafe/distinct_keys", |b| {
        b.iter_custom(|iters| {
            on_two_threads(iters, |t| {
                if failsafe_own[t].is_call_permitted() {
                    failsafe_own[t].on_success();
                }
            })
        });
    });
    group.finish();
}

/// Runs `op(thread)` `iters` times on each of two threads started together; returns
/// the wall time (the bench's one clock read, outside any library code).
#[allow(clippy::disallowed_methods)]
fn on_two_threads(iters: u64, op: impl Fn(usize) + Sync) -> Duration {
    let barrier = std::sync::Barrier::new(3);
    std::thread::scope(|s| {
        for t in 0..2 {
            let (barrier, op) = (&barrier, &op);
            s.spawn(move || {
                barrier.wait();
                for _ in 0..iters {
                    op(t);
                }
                barrier.wait();
            });
        }
        barrier.wait();
        let start = std::time::Instant::now();
        barrier.wait();
        start.elapsed()
    })
}
