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
