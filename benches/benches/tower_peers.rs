//! The tower ecosystem's answers to the same operations: tower-resilience's circuit
//! breaker (a `Layer`) and tower's own `TpsBudget`.
//!
//! tower-resilience's breaker exists only as a service wrapper, so its per-call cost is
//! measured as a call through the layered service minus the same call to the bare
//! service, both on a trivially ready `service_fn` polled once with a no-op waker (the
//! inner future and the breaker's uncontended `tokio::sync::Mutex` are ready at once, so
//! no runtime is involved). `benches/table` does the subtraction.

use std::convert::Infallible;
use std::future::{Future, Ready, ready};
use std::hint::black_box;
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use criterion::Criterion;
use tower::retry::budget::{Budget as _, TpsBudget};
use tower::{Service, service_fn};
use tower_resilience::circuitbreaker::CircuitBreakerLayer;

/// Readiness, call and the call's future, each polled once: the services here never
/// wait. `None` if any of them would.
fn call_now<S: Service<u64>>(
    service: &mut S,
    request: u64,
) -> Option<Result<S::Response, S::Error>> {
    let mut cx = Context::from_waker(Waker::noop());
    match service.poll_ready(&mut cx) {
        Poll::Ready(Ok(())) => {}
        Poll::Ready(Err(e)) => return Some(Err(e)),
        Poll::Pending => return None,
    }
    let mut future = std::pin::pin!(service.call(request));
    match future.as_mut().poll(&mut cx) {
        Poll::Ready(result) => Some(result),
        Poll::Pending => None,
    }
}

fn echo(request: u64) -> Ready<Result<u64, Infallible>> {
    ready(Ok(request))
}

pub(crate) fn breaker(c: &mut Criterion) {
    let mut group = c.benchmark_group("peers/breaker");
    let mut bare = service_fn(echo);
    group.bench_function("closed_admit_record/tower_resilience_bare_service", |b| {
        b.iter(|| black_box(call_now(&mut bare, black_box(1))));
    });
    // Its defaults: failure rate 50% over a count window of 100 calls, as ours.
    #[allow(clippy::expect_used)]
    let layer = CircuitBreakerLayer::builder()
        .build()
        .expect("default breaker config is valid");
    let mut closed = layer.layer_fn(service_fn(echo));
    assert!(
        matches!(call_now(&mut closed, 1), Some(Ok(1))),
        "the closed breaker passes calls through"
    );
    group.bench_function("closed_admit_record/tower_resilience_layered", |b| {
        b.iter(|| black_box(call_now(&mut closed, black_box(1))));
    });

    #[allow(clippy::expect_used)]
    let open_layer = CircuitBreakerLayer::builder()
        .wait_duration_in_open(Duration::from_secs(3600))
        .build()
        .expect("breaker config is valid");
    let mut open = open_layer.layer_fn(service_fn(echo));
    {
        let mut forcing = std::pin::pin!(open.force_open());
        let forced = forcing
            .as_mut()
            .poll(&mut Context::from_waker(Waker::noop()));
        assert!(
            forced.is_ready(),
            "an uncontended force_open is ready at once"
        );
    }
    assert!(
        matches!(call_now(&mut open, 1), Some(Err(_))),
        "the open breaker rejects"
    );
    group.bench_function("open_rejection/tower_resilience", |b| {
        b.iter(|| black_box(call_now(&mut open, black_box(1))));
    });
    group.finish();
}

/// tower's budget: `deposit` for the request, `withdraw` for a retry, against our
/// `on_request` + `try_withdraw` + `on_attempt` (`core::budget`). It reads the clock
/// itself; ours takes `now`.
pub(crate) fn budget(c: &mut Criterion) {
    let mut group = c.benchmark_group("peers/budget/withdraw_deposit");
    // tower's defaults: 10 s window, 10 retries/s floor, 20% of requests.
    let budget = TpsBudget::new(Duration::from_secs(10), 10, 0.2);
    group.bench_function("tower_tps_budget", |b| {
        b.iter(|| {
            budget.deposit();
            black_box(budget.withdraw())
        });
    });
    group.finish();
}
