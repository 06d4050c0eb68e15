//! The hot paths allocate nothing: a counting global allocator (stats_alloc) watches
//! the closed-state breaker path and the request plan's whole success path.

use std::alloc::System;
use std::time::Duration;

use breakwater_core::{
    Action, Admit, Class, Deadline, Outcome, Plan, RequestOptions, TaskKind, Time, Usage, rng,
};
use stats_alloc::{INSTRUMENTED_SYSTEM, Region, StatsAlloc};

#[global_allocator]
static GLOBAL: &StatsAlloc<System> = &INSTRUMENTED_SYSTEM;

#[test]
fn hot_paths_do_not_allocate() {
    let (_registry, route) = breakwater_benches::route();
    let breaker = route.breaker(0).expect("breakers are on").clone();
    let mut rng = rng::seeded(1);
    // Warm up once, outside the measured region.
    let _ = breaker.admit(Time::ZERO);

    let region = Region::new(GLOBAL);
    for i in 0..1_000u64 {
        let now = Time::from_millis(1_000 + i);
        if let Admit::Admitted(permit) = breaker.admit(now) {
            breaker.record(now, permit, &Class::Success, Duration::from_millis(5));
        }
        let mut plan = Plan::new(
            &route,
            TaskKind::Interactive,
            Deadline::after(now, Duration::from_secs(30)),
            RequestOptions::default(),
        );
        let Action::Attempt(attempt) = plan.poll(now, &mut rng) else {
            panic!("expected an attempt");
        };
        let done = now + Duration::from_millis(700);
        plan.on_outcome(done, attempt.id, Outcome::Success, Usage::new(1_000, 200));
        let Action::Finish(finished) = plan.poll(done, &mut rng) else {
            panic!("expected a finish");
        };
        assert!(finished.is_success());
    }
    let stats = region.change();
    assert_eq!(stats.allocations, 0, "{stats:?}");
    assert_eq!(stats.reallocations, 0, "{stats:?}");
}
