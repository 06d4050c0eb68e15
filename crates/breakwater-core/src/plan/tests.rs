//! Scripted scenarios and properties of the plan, driven by a fake clock.

use std::time::Duration;

use proptest::prelude::*;

use super::*;
use crate::budget::{BudgetConfig, QuotaConfig};
use crate::cost::{Price, PriceTable};
use crate::outcome::{ErrorCode, Hints};
use crate::registry::{Registry, RegistryConfig};
use crate::rng::seeded;
use crate::route::RouteConfig;

fn secs(n: u64) -> Duration {
    Duration::from_secs(n)
}

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

const TWO_STEPS: &str = r#"
    name = "chat"
    [backoff]
    base_ms = 100
    cap_ms = 2000
    [[step]]
    provider = "anthropic"
    model = "claude-sonnet-4-5"
    attempts = 5
    timeout_ms = 20000
    prompt_variant = "claude"
    [[step]]
    provider = "openai"
    model = "gpt-4o-mini"
    attempts = 2
    timeout_ms = 20000
    prompt_variant = "gpt"
"#;

fn setup(route: &str, registry: RegistryConfig) -> (Registry, Route) {
    let config: RouteConfig = toml::from_str(route).unwrap();
    let registry = Registry::new(registry).unwrap();
    let prices = PriceTable::new()
        .with("claude-sonnet-4-5", Price::per_million(3.0, 15.0))
        .with("gpt-4o-mini", Price::per_million(0.15, 0.6));
    let route = Route::bind(&config, &registry, &prices).unwrap();
    (registry, route)
}

fn status(code: u16) -> Outcome {
    Outcome::Status {
        status: code,
        error: None,
        hints: Hints::default(),
    }
}

/// What the driver saw, in order.
#[derive(Clone, Debug, PartialEq)]
enum Seen {
    Attempt {
        at: Time,
        step: usize,
        timeout: Duration,
    },
    Wait {
        at: Time,
        until: Time,
    },
    Notice {
        at: Time,
    },
    Cache {
        at: Time,
    },
}

/// Drives `plan` like a real driver until it finishes: an attempt takes the latency
/// the script says, or times out at its timeout; waits sleep; the cache answers
/// `cache_hit`.
fn drive(
    plan: &mut Plan<'_>,
    start: Time,
    seed: u64,
    cache_hit: bool,
    script: impl FnMut(usize, &Attempt<'_>) -> (Duration, Outcome, Usage),
) -> (Finished, Vec<Seen>) {
    let driven = drive_for(plan, start, seed, cache_hit, 10_000, script);
    match driven.finished {
        Some(finished) => (finished, driven.seen),
        None => panic!("plan did not finish within 10,000 polls: {:?}", driven.seen),
    }
}

/// Where [`drive_for`] stopped.
struct Driven {
    /// The finish, if the plan got there.
    finished: Option<Finished>,
    seen: Vec<Seen>,
    now: Time,
}

/// Drives `plan` as [`drive`] does, for at most `polls` polls: an attempt asked for by
/// the last one is left in flight.
fn drive_for(
    plan: &mut Plan<'_>,
    start: Time,
    seed: u64,
    cache_hit: bool,
    polls: usize,
    mut script: impl FnMut(usize, &Attempt<'_>) -> (Duration, Outcome, Usage),
) -> Driven {
    let mut rng = seeded(seed);
    let mut now = start;
    let mut seen = Vec::new();
    let mut n = 0;
    for poll in 1..=polls {
        assert_eq!(plan.finish().is_some(), plan.is_finished());
        match plan.poll(now, &mut rng) {
            Action::Attempt(attempt) => {
                seen.push(Seen::Attempt {
                    at: now,
                    step: attempt.step,
                    timeout: attempt.timeout,
                });
                if poll == polls {
                    break;
                }
                let (latency, outcome, usage) = script(n, &attempt);
                n += 1;
                let (took, outcome) = if latency > attempt.timeout {
                    (
                        attempt.timeout,
                        Outcome::TimedOut {
                            phase: crate::outcome::TimeoutPhase::BeforeHeaders,
                        },
                    )
                } else {
                    (latency, outcome)
                };
                now = now + took;
                plan.on_outcome(now, attempt.id, outcome, usage);
            }
            Action::Wait { until } => {
                seen.push(Seen::Wait { at: now, until });
                assert!(until > now, "a wait must move time forward");
                now = until;
            }
            Action::Notice(Notice::Slow) => seen.push(Seen::Notice { at: now }),
            Action::LookupCache => {
                seen.push(Seen::Cache { at: now });
                plan.on_cache(now, cache_hit);
            }
            Action::Finish(finished) => {
                // The borrowed finish is the one the poll handed out.
                let borrowed = plan.finish().expect("a plan that finished has a finish");
                assert_eq!(borrowed.to_finished(), finished);
                assert_eq!(borrowed.is_success(), finished.is_success());
                return Driven {
                    finished: Some(finished),
                    seen,
                    now,
                };
            }
        }
    }
    Driven {
        finished: None,
        seen,
        now,
    }
}

/// A plan on `route` for a request of `kind` that starts at zero with a minute to
/// live and the default options.
fn within_a_minute(route: &Route, kind: TaskKind) -> Plan<'_> {
    Plan::new(
        route,
        kind,
        Deadline::after(Time::ZERO, secs(60)),
        RequestOptions::default(),
    )
}

fn attempts(seen: &[Seen]) -> Vec<usize> {
    seen.iter()
        .filter_map(|s| match s {
            Seen::Attempt { step, .. } => Some(*step),
            _ => None,
        })
        .collect()
}

#[test]
fn five_529s_then_the_fallback_succeeds() {
    let (_registry, route) = setup(TWO_STEPS, RegistryConfig::default());
    let start = Time::from_secs(100);
    let mut plan = Plan::new(
        &route,
        TaskKind::Interactive,
        Deadline::after(start, secs(60)),
        RequestOptions::default(),
    );
    let (finished, seen) = drive(&mut plan, start, 1, false, |n, _| {
        if n < 5 {
            (ms(300), status(529), Usage::new(2000, 0))
        } else {
            (ms(900), Outcome::Success, Usage::new(2000, 500))
        }
    });
    assert_eq!(attempts(&seen), [0, 0, 0, 0, 0, 1]);
    assert_eq!(finished.attempts, 6);
    assert_eq!(
        finished.resolution,
        Resolution::Success {
            step: 1,
            fallback_used: true
        }
    );
    let sonnet_input = Price::per_million(3.0, 15.0).cost(Usage::new(2000, 0));
    let mini = Price::per_million(0.15, 0.6).cost(Usage::new(2000, 500));
    assert_eq!(
        finished.cost,
        Cost::from_nanodollars(5 * sonnet_input.nanodollars() + mini.nanodollars())
    );
    assert_eq!(
        finished.retry_cost,
        Cost::from_nanodollars(4 * sonnet_input.nanodollars() + mini.nanodollars())
    );
    assert_eq!(finished.history.attempts().count(), 6);
    // Six attempts and the four backoffs between Sonnet's five (the fallback starts at
    // once).
    assert_eq!(finished.history.len(), 10);
    assert_eq!(finished.history.entries().len(), 10);
    assert!(!finished.history.is_empty());
}

/// Without jitter the waits are the backoff's schedule itself: the first retry waits
/// the base, each next one twice the last, up to the cap.
#[test]
fn unjittered_waits_follow_the_backoff_from_its_base() {
    let route_text = TWO_STEPS.replace("cap_ms = 2000", "cap_ms = 350\n    jitter = \"none\"");
    let (_registry, route) = setup(&route_text, RegistryConfig::default());
    let mut plan = within_a_minute(&route, TaskKind::Interactive);
    let (_, seen) = drive(&mut plan, Time::ZERO, 1, false, |_, _| {
        (ms(10), status(503), Usage::default())
    });
    let waits: Vec<Duration> = seen
        .iter()
        .filter_map(|s| match s {
            Seen::Wait { at, until } => Some(until.saturating_duration_since(*at)),
            _ => None,
        })
        .collect();
    // Sonnet's five attempts, then the fallback's two (its backoff starts over).
    assert_eq!(waits, [ms(100), ms(200), ms(350), ms(350), ms(100)]);
}

#[test]
fn a_400_fails_at_once() {
    let (_registry, route) = setup(TWO_STEPS, RegistryConfig::default());
    let mut plan = within_a_minute(&route, TaskKind::Interactive);
    let (finished, seen) = drive(&mut plan, Time::ZERO, 1, true, |_, _| {
        (ms(100), status(400), Usage::default())
    });
    assert_eq!(attempts(&seen), [0]);
    assert!(!finished.is_success());
    assert_eq!(
        finished.resolution,
        Resolution::Failed {
            reason: FailReason::NonRetriable(crate::Fatal::InvalidRequest)
        }
    );
    assert!(
        !seen.iter().any(|s| matches!(s, Seen::Cache { .. })),
        "no degradation for a caller error"
    );
}

#[test]
fn retry_after_beyond_the_deadline_moves_on_at_once() {
    let (_registry, route) = setup(TWO_STEPS, RegistryConfig::default());
    let start = Time::ZERO;
    let mut plan = Plan::new(
        &route,
        TaskKind::Interactive,
        Deadline::after(start, secs(6)),
        RequestOptions::default(),
    );
    let (finished, seen) = drive(&mut plan, start, 1, false, |n, _| {
        if n == 0 {
            let hints = Hints {
                retry_after: Some(secs(30)),
                should_retry: None,
            };
            (
                secs(1),
                Outcome::Status {
                    status: 429,
                    error: None,
                    hints,
                },
                Usage::default(),
            )
        } else {
            (ms(500), Outcome::Success, Usage::new(10, 10))
        }
    });
    // 5 s left after the 429: the next step is tried at once, with no wait.
    assert_eq!(
        seen[..2],
        [
            Seen::Attempt {
                at: start,
                step: 0,
                timeout: secs(6)
            },
            Seen::Attempt {
                at: Time::from_secs(1),
                step: 1,
                timeout: secs(5)
            },
        ]
    );
    assert!(finished.is_success());
    // The 429's Retry-After cools the key down: no attempt to it before then.
    let sonnet = route.breaker(0).unwrap();
    assert!(matches!(
        sonnet.admit(Time::from_secs(20)),
        crate::breaker::Admit::Rejected(_)
    ));
}

#[test]
fn every_breaker_open_degrades_or_queues_with_zero_attempts() {
    for (kind, cache_hit, expect) in [
        (TaskKind::Interactive, true, Some(DegradedFrom::Cache)),
        (TaskKind::Interactive, false, Some(DegradedFrom::Empty)),
        (TaskKind::Deferrable, false, None),
    ] {
        let (_registry, route) = setup(TWO_STEPS, RegistryConfig::default());
        route.breaker(0).unwrap().force_open(Time::ZERO);
        route.breaker(1).unwrap().force_open(Time::ZERO);
        let mut plan = Plan::new(
            &route,
            kind,
            Deadline::after(Time::ZERO, secs(30)),
            RequestOptions::default(),
        );
        let (finished, seen) = drive(&mut plan, Time::ZERO, 1, cache_hit, |_, _| {
            unreachable!("no attempt expected")
        });
        assert_eq!(finished.attempts, 0);
        assert!(attempts(&seen).is_empty());
        let reason = FailReason::Exhausted { last: None };
        match expect {
            Some(from) => assert_eq!(finished.resolution, Resolution::Degraded { from, reason }),
            None => assert_eq!(finished.resolution, Resolution::Queued { reason }),
        }
        assert_eq!(finished.elapsed, Duration::ZERO, "skipped, not waited on");
    }
}

#[test]
fn critical_tasks_fail_loudly() {
    let (_registry, route) = setup(TWO_STEPS, RegistryConfig::default());
    let mut plan = Plan::new(
        &route,
        TaskKind::Critical,
        Deadline::after(Time::ZERO, secs(30)),
        RequestOptions::default(),
    );
    assert_eq!(plan.kind(), TaskKind::Critical);
    let (finished, _) = drive(&mut plan, Time::ZERO, 1, true, |_, _| {
        (ms(50), status(503), Usage::default())
    });
    assert_eq!(finished.attempts, 7);
    assert!(matches!(
        finished.resolution,
        Resolution::Failed {
            reason: FailReason::Exhausted {
                last: Some(ClassKind::Retriable)
            }
        }
    ));
}

#[test]
fn a_ten_second_deadline_holds() {
    let (_registry, route) = setup(TWO_STEPS, RegistryConfig::default());
    let start = Time::from_secs(5);
    let end = Time::from_secs(15);
    let mut plan = Plan::new(
        &route,
        TaskKind::Interactive,
        Deadline::after(start, secs(10)),
        RequestOptions::default(),
    );
    let (finished, seen) = drive(&mut plan, start, 3, false, |_, _| {
        (secs(3), status(500), Usage::default())
    });
    for s in &seen {
        match *s {
            Seen::Attempt { at, timeout, .. } => assert!(at + timeout <= end && at < end, "{s:?}"),
            Seen::Wait { until, .. } => assert!(until < end, "{s:?}"),
            _ => {}
        }
    }
    assert!(finished.elapsed <= secs(10));
    assert!(matches!(
        finished.resolution,
        Resolution::Degraded {
            reason: FailReason::DeadlineExceeded { .. },
            ..
        }
    ));
}

/// A retry or fallback is sent only while a useful attempt (`min_attempt_ms`, 1 s by
/// default) still fits: half a second left after a failure ends the request at once,
/// a second and a half left gets the retry.
#[test]
fn a_retry_needs_time_left_for_a_useful_attempt() {
    let (_registry, route) = setup(TWO_STEPS, RegistryConfig::default());
    let after_a_first_failure_taking = |first: Duration| {
        let mut plan = Plan::new(
            &route,
            TaskKind::Interactive,
            Deadline::after(Time::ZERO, secs(10)),
            RequestOptions::default(),
        );
        drive(&mut plan, Time::ZERO, 1, false, |n, _| {
            if n == 0 {
                (first, status(529), Usage::default())
            } else {
                (ms(100), Outcome::Success, Usage::default())
            }
        })
    };
    let (finished, seen) = after_a_first_failure_taking(ms(9_500));
    assert_eq!(attempts(&seen), [0]);
    assert_eq!(
        finished.resolution,
        Resolution::Degraded {
            from: DegradedFrom::Empty,
            reason: FailReason::DeadlineExceeded {
                last: Some(ClassKind::Overloaded)
            }
        }
    );
    // The backoff did not fit at the first step, and the fallback had no time either.
    let skips: Vec<(usize, Skip)> = finished
        .history
        .entries()
        .filter_map(|e| match e.event {
            EntryEvent::Skipped(skip) => Some((e.step, skip)),
            _ => None,
        })
        .collect();
    assert!(
        matches!(
            skips[..],
            [(0, Skip::WaitBeyondDeadline { .. }), (1, Skip::NoTimeLeft)]
        ),
        "{skips:?}"
    );

    let (finished, seen) = after_a_first_failure_taking(ms(8_500));
    assert_eq!(attempts(&seen), [0, 0]);
    assert!(finished.is_success());
}

#[test]
fn a_deadline_already_past_sends_nothing() {
    let (_registry, route) = setup(TWO_STEPS, RegistryConfig::default());
    let now = Time::from_secs(10);
    let mut plan = Plan::new(
        &route,
        TaskKind::Critical,
        Deadline::at(now, Time::from_secs(9)),
        RequestOptions::default(),
    );
    let (finished, seen) = drive(&mut plan, now, 1, false, |_, _| unreachable!());
    assert!(seen.is_empty());
    assert!(finished.history.is_empty());
    assert_eq!(
        finished.resolution,
        Resolution::Failed {
            reason: FailReason::DeadlineExceeded { last: None }
        }
    );
}

#[test]
fn the_slow_notice_fires_once() {
    let (_registry, route) = setup(TWO_STEPS, RegistryConfig::default());
    let mut plan = within_a_minute(&route, TaskKind::Interactive);
    assert_eq!(plan.poll_timeout(), Some(Time::ZERO));
    let mut rng = seeded(1);
    let Action::Attempt(attempt) = plan.poll(Time::ZERO, &mut rng) else {
        panic!()
    };
    assert_eq!(plan.poll_timeout(), Some(Time::from_secs(10)));
    assert_eq!(
        plan.poll(Time::from_secs(3), &mut rng),
        Action::Wait {
            until: Time::from_secs(10)
        }
    );
    assert_eq!(
        plan.poll(Time::from_secs(10), &mut rng),
        Action::Notice(Notice::Slow)
    );
    assert_eq!(
        plan.poll(Time::from_secs(11), &mut rng),
        Action::Wait { until: Time::MAX }
    );
    assert_eq!(plan.poll_timeout(), None);
    plan.on_outcome(
        Time::from_secs(12),
        attempt.id,
        Outcome::Success,
        Usage::default(),
    );
    assert!(matches!(
        plan.poll(Time::from_secs(12), &mut rng),
        Action::Finish(_)
    ));
    assert!(
        matches!(plan.poll(Time::from_secs(13), &mut rng), Action::Finish(_)),
        "finish repeats"
    );
}

#[test]
fn stale_outcomes_are_ignored() {
    let (_registry, route) = setup(TWO_STEPS, RegistryConfig::default());
    let mut plan = within_a_minute(&route, TaskKind::Interactive);
    let mut rng = seeded(1);
    let Action::Attempt(first) = plan.poll(Time::ZERO, &mut rng) else {
        panic!()
    };
    plan.on_outcome(Time::from_secs(1), first.id, status(503), Usage::default());
    let mut now = Time::from_secs(1);
    let second = loop {
        match plan.poll(now, &mut rng) {
            Action::Attempt(a) => break a,
            Action::Wait { until } => now = until,
            other => panic!("{other:?}"),
        }
    };
    plan.on_outcome(now, first.id, Outcome::Success, Usage::default());
    assert!(
        !plan.is_finished(),
        "a late outcome of attempt 1 is not attempt 2's"
    );
    plan.on_outcome(now, second.id, Outcome::Success, Usage::default());
    assert!(matches!(plan.poll(now, &mut rng), Action::Finish(f) if f.attempts == 2));
    assert!(plan.is_finished());
}

/// [`TWO_STEPS`] and a third step, Gemini, taken only `when` (a condition's name).
fn with_conditional_step(when: &str) -> (Registry, Route) {
    let route_text = format!(
        "{TWO_STEPS}\n[[step]]\nprovider = \"gemini\"\nmodel = \"gemini-2.5-pro\"\nwhen = \"{when}\"\nattempts = 1\n"
    );
    setup(&route_text, RegistryConfig::default())
}

/// A 400 with `error`, a non-retriable provider code.
fn refused(error: ErrorCode) -> Outcome {
    Outcome::Status {
        status: 400,
        error: Some(error),
        hints: Hints::default(),
    }
}

#[test]
fn context_window_and_content_policy_errors_take_their_conditional_step() {
    for (when, error) in [
        ("context_window_exceeded", ErrorCode::ContextWindowExceeded),
        ("content_policy", ErrorCode::ContentPolicy),
    ] {
        let (_registry, route) = with_conditional_step(when);
        let mut plan = within_a_minute(&route, TaskKind::Interactive);
        let (finished, seen) = drive(&mut plan, Time::ZERO, 1, false, |n, _| {
            if n == 0 {
                (ms(100), refused(error), Usage::default())
            } else {
                (ms(100), Outcome::Success, Usage::default())
            }
        });
        assert_eq!(attempts(&seen), [0, 2], "{when}");
        assert_eq!(
            finished.resolution,
            Resolution::Success {
                step: 2,
                fallback_used: true
            },
            "{when}"
        );
    }
}

#[test]
fn a_stream_broken_after_tokens_is_not_restarted_unless_allowed() {
    let broken = Outcome::StreamBroken {
        error: None,
        tokens_delivered: 42,
    };
    for (allow, expect_attempts) in [(false, 1), (true, 2)] {
        let (_registry, route) = setup(TWO_STEPS, RegistryConfig::default());
        let options = RequestOptions {
            allow_restart_after_tokens: allow,
            ..RequestOptions::default()
        };
        let mut plan = Plan::new(
            &route,
            TaskKind::Interactive,
            Deadline::after(Time::ZERO, secs(60)),
            options,
        );
        let (finished, _) = drive(&mut plan, Time::ZERO, 1, false, |n, _| {
            if n == 0 {
                (ms(100), broken, Usage::new(10, 42))
            } else {
                (ms(100), Outcome::Success, Usage::default())
            }
        });
        assert_eq!(finished.attempts, expect_attempts);
        if !allow {
            assert_eq!(
                finished.resolution,
                Resolution::Failed {
                    reason: FailReason::StreamBroken {
                        tokens_delivered: 42
                    }
                }
            );
        }
    }
}

#[test]
fn invalid_output_is_retried_once_at_once_then_falls_back() {
    let route = TWO_STEPS.replace(
        "    name = \"chat\"\n",
        "    name = \"chat\"\n    validator = \"json\"\n",
    );
    let (registry, route) = setup(&route, RegistryConfig::default());
    let mut plan = within_a_minute(&route, TaskKind::Interactive);
    let mut validators = Vec::new();
    let (finished, seen) = drive(&mut plan, Time::ZERO, 1, false, |n, attempt| {
        validators.push(attempt.validator.map(str::to_owned));
        if n < 2 {
            (ms(500), Outcome::InvalidOutput, Usage::new(1000, 200))
        } else {
            (ms(500), Outcome::Success, Usage::new(1000, 200))
        }
    });
    // Two invalid outputs at the first step (the second at once, no wait), then the
    // fallback, which answers.
    assert_eq!(attempts(&seen), [0, 0, 1]);
    assert!(
        !seen.iter().any(|s| matches!(s, Seen::Wait { .. })),
        "{seen:?}"
    );
    assert_eq!(validators, vec![Some("json".to_owned()); 3]);
    assert_eq!(
        finished.resolution,
        Resolution::Success {
            step: 1,
            fallback_used: true
        }
    );
    let classes: Vec<Class> = finished.history.attempts().map(|(_, _, c)| c).collect();
    assert_eq!(
        classes,
        [Class::InvalidOutput, Class::InvalidOutput, Class::Success]
    );
    // Billed like any answer.
    let sonnet = Price::per_million(3.0, 15.0).cost(Usage::new(1000, 200));
    let mini = Price::per_million(0.15, 0.6).cost(Usage::new(1000, 200));
    assert_eq!(
        finished.cost,
        Cost::from_nanodollars(2 * sonnet.nanodollars() + mini.nanodollars())
    );
    // Not a fault: the first step's breaker is as closed as before.
    let key = Key::new("anthropic", "claude-sonnet-4-5");
    let breaker = registry.breaker(&key).unwrap();
    assert_eq!(
        breaker.state(Time::from_secs(2)),
        crate::breaker::State::Closed
    );
}

#[test]
fn invalid_output_retries_are_per_step_and_count_towards_its_attempts() {
    let route = r#"
        name = "chat"
        validator = "json"
        [plan]
        invalid_output_retries = 3
        [[step]]
        provider = "anthropic"
        model = "claude-sonnet-4-5"
        attempts = 2
        validator = "ticket"
        [[step]]
        provider = "openai"
        model = "gpt-4o-mini"
        attempts = 3
    "#;
    let (_registry, route) = setup(route, RegistryConfig::default());
    let mut plan = within_a_minute(&route, TaskKind::Critical);
    let mut validators = Vec::new();
    let (finished, seen) = drive(&mut plan, Time::ZERO, 1, false, |_, attempt| {
        validators.push((attempt.step, attempt.validator.map(str::to_owned)));
        (ms(200), Outcome::InvalidOutput, Usage::new(100, 10))
    });
    // The first step's two attempts cap its three allowed retries; the second step
    // gets all three of its attempts, its validator the route's.
    assert_eq!(attempts(&seen), [0, 0, 1, 1, 1]);
    assert_eq!(validators[0], (0, Some("ticket".to_owned())));
    assert_eq!(validators[2], (1, Some("json".to_owned())));
    assert_eq!(
        finished.resolution,
        Resolution::Failed {
            reason: FailReason::Exhausted {
                last: Some(ClassKind::InvalidOutput)
            }
        }
    );
}

#[test]
fn ambiguous_outcomes_get_one_retry() {
    let (_registry, route) = setup(TWO_STEPS, RegistryConfig::default());
    let mut plan = within_a_minute(&route, TaskKind::Critical);
    let (finished, _) = drive(&mut plan, Time::ZERO, 1, false, |_, _| {
        (ms(100), status(408), Usage::default())
    });
    assert_eq!(finished.attempts, 2);
}

/// Sonnet's worst case at 2,000 input and 1,000 output tokens: 2000·3 + 1000·15 =
/// 21,000 µ$.
const SONNET_WORST: Usage = Usage::new(2000, 1000);

/// The options of a request of [`SONNET_WORST`]'s size under `ceiling`.
fn under_ceiling(ceiling: Cost) -> RequestOptions {
    RequestOptions {
        input_tokens: SONNET_WORST.input_tokens,
        max_output_tokens: SONNET_WORST.output_tokens,
        cost_ceiling: Some(ceiling),
        allow_restart_after_tokens: false,
    }
}

/// The finish and the steps of the attempts of a request under `ceiling` whose
/// every attempt gets a 503, Sonnet's billed at the worst case, the fallback's at
/// its input alone.
fn failing_under_ceiling(route: &Route, ceiling: Cost) -> (Finished, Vec<usize>) {
    let mut plan = Plan::new(
        route,
        TaskKind::Interactive,
        Deadline::after(Time::ZERO, secs(60)),
        under_ceiling(ceiling),
    );
    let (finished, seen) = drive(&mut plan, Time::ZERO, 1, false, |_, a| {
        let usage = if a.step == 0 {
            SONNET_WORST
        } else {
            Usage::new(2000, 0)
        };
        (ms(100), status(503), usage)
    });
    (finished, attempts(&seen))
}

#[test]
fn the_cost_ceiling_stops_expensive_retries() {
    let (_registry, route) = setup(TWO_STEPS, RegistryConfig::default());
    // The ceiling allows the first Sonnet attempt and one retry, and then only the
    // cheap fallback fits.
    let ceiling = Cost::from_dollars(0.05);
    let (finished, steps) = failing_under_ceiling(&route, ceiling);
    assert_eq!(steps, [0, 0, 1, 1]);
    assert!(finished.cost <= ceiling);
    // A retry that would take the cost to the ceiling exactly is sent; after it not
    // even the fallback fits.
    let worst = Price::per_million(3.0, 15.0).cost(SONNET_WORST);
    let (finished, steps) = failing_under_ceiling(&route, worst + worst);
    assert_eq!(steps, [0, 0]);
    assert_eq!(finished.cost, worst + worst);
    // A ceiling under one Sonnet attempt's worst cost still lets the first one go.
    let mut plan = Plan::new(
        &route,
        TaskKind::Interactive,
        Deadline::after(Time::ZERO, secs(60)),
        under_ceiling(Cost::from_dollars(0.01)),
    );
    let first = plan.poll(Time::ZERO, &mut seeded(1));
    assert!(
        matches!(first, Action::Attempt(ref a) if a.step == 0),
        "{first:?}"
    );
}

/// The steps of the attempts of a critical request over [`TWO_STEPS`] whose every
/// attempt gets a 503, with `budget` per provider and no breaker.
fn steps_of_a_failing_request(budget: BudgetConfig) -> Vec<usize> {
    let registry = RegistryConfig {
        budget: Some(budget),
        breaker: None,
        ..RegistryConfig::default()
    };
    let (_registry, route) = setup(TWO_STEPS, registry);
    let mut plan = Plan::new(
        &route,
        TaskKind::Critical,
        Deadline::after(Time::ZERO, secs(120)),
        RequestOptions::default(),
    );
    let (_, seen) = drive(&mut plan, Time::ZERO, 1, false, |_, _| {
        (ms(100), status(503), Usage::default())
    });
    attempts(&seen)
}

#[test]
fn a_refused_retry_moves_to_the_next_step() {
    let steps = steps_of_a_failing_request(BudgetConfig::Quota(QuotaConfig {
        capacity: 10,
        retry_cost: 5,
        timeout_cost: 10,
        success_refund: 1,
    }));
    // Two retries of 5 tokens each on anthropic's budget, then on to openai (its own
    // budget, per provider): first attempt plus one retry allowed.
    assert_eq!(steps, [0, 0, 0, 1, 1]);
}

/// A ratio budget earns its credit from each request's first attempt at a step, so
/// one request with nothing else in the budget gets exactly the retries it earned.
#[test]
fn a_requests_first_attempt_earns_its_retry() {
    let steps = steps_of_a_failing_request(BudgetConfig::Ratio(crate::budget::RatioConfig {
        ratio: 1.0,
        min_per_sec: 0,
        ttl: secs(10),
    }));
    // One retry per step, each on its provider's budget, from that step's first attempt.
    assert_eq!(steps, [0, 0, 1, 1]);
}

/// The conditional step's own context-window error ends the request: the step is not
/// entered again.
#[test]
fn the_conditional_step_failing_the_same_way_ends_the_request() {
    let (_registry, route) = with_conditional_step("context_window_exceeded");
    let mut plan = within_a_minute(&route, TaskKind::Critical);
    let too_long = refused(ErrorCode::ContextWindowExceeded);
    let (finished, seen) = drive(&mut plan, Time::ZERO, 1, false, |_, _| {
        (ms(100), too_long, Usage::default())
    });
    assert_eq!(attempts(&seen), [0, 2]);
    assert!(matches!(finished.resolution, Resolution::Failed { .. }));
}

// ---- properties -------------------------------------------------------------------

#[derive(Clone, Debug)]
struct Scripted {
    latency_ms: u64,
    outcome: Outcome,
}

fn outcome() -> impl Strategy<Value = Outcome> {
    let hint = prop_oneof![
        Just(None),
        (1u64..40_000).prop_map(|ms| Some(Duration::from_millis(ms)))
    ];
    prop_oneof![
        3 => Just(Outcome::Success),
        2 => prop_oneof![Just(500u16), Just(502), Just(503), Just(529), Just(400), Just(401), Just(404), Just(408), Just(413)]
            .prop_map(status),
        2 => hint.prop_map(|retry_after| Outcome::Status { status: 429, error: None, hints: Hints { retry_after, should_retry: None } }),
        1 => Just(Outcome::ConnectFailed),
        1 => Just(Outcome::Reset),
        1 => (0u32..3).prop_map(|tokens_delivered| Outcome::StreamBroken { error: None, tokens_delivered }),
    ]
}

fn script() -> impl Strategy<Value = Vec<Scripted>> {
    prop::collection::vec(
        (0u64..25_000, outcome()).prop_map(|(latency_ms, outcome)| Scripted {
            latency_ms,
            outcome,
        }),
        1..40,
    )
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn plans_keep_every_promise(
        script in script(),
        deadline_s in 1u64..90,
        seed: u64,
        kind in prop_oneof![Just(TaskKind::Interactive), Just(TaskKind::Deferrable), Just(TaskKind::Critical)],
    ) {
        let registry = RegistryConfig {
            budget: Some(BudgetConfig::Quota(QuotaConfig { capacity: 20, retry_cost: 5, timeout_cost: 10, success_refund: 1 })),
            budget_scope: crate::registry::BudgetScope::Global,
            ..RegistryConfig::default()
        };
        let (_registry, route) = setup(TWO_STEPS, registry);
        let start = Time::from_secs(1);
        let end = start + secs(deadline_s);
        let mut plan = Plan::new(&route, kind, Deadline::after(start, secs(deadline_s)), RequestOptions::default());
        let pick = |n: usize| script[n % script.len()].clone();
        let (finished, seen) = drive(&mut plan, start, seed, false, |n, _| {
            let s = pick(n);
            (Duration::from_millis(s.latency_ms), s.outcome, Usage::default())
        });
        // Nothing reaches past the deadline.
        for s in &seen {
            match *s {
                Seen::Attempt { at, timeout, .. } => prop_assert!(at < end && at + timeout <= end, "{s:?}"),
                Seen::Wait { until, .. } => prop_assert!(until < end, "{s:?}"),
                _ => {}
            }
        }
        prop_assert!(finished.elapsed <= secs(deadline_s));
        // Attempts per step within the allowance; a non-retriable outcome is final.
        let steps = attempts(&seen);
        prop_assert!(steps.iter().filter(|&&s| s == 0).count() <= 5);
        prop_assert!(steps.iter().filter(|&&s| s == 1).count() <= 2);
        let classes: Vec<_> = finished.history.attempts().map(|(_, _, c)| c).collect();
        for (i, class) in classes.iter().enumerate() {
            if matches!(class, Class::NonRetriable(_) | Class::Success) {
                prop_assert_eq!(i + 1, classes.len(), "nothing after a final outcome: {:?}", classes);
            }
        }
        // Retries: the global quota of 20 pays for at most 4 (no success refunds one
        // before the request ends); first attempts at each step are not retries.
        let retries = steps.windows(2).filter(|w| w[0] == w[1]).count();
        prop_assert!(retries <= 4, "{retries} retries: {steps:?}");
        prop_assert_eq!(finished.attempts as usize, steps.len());
    }

    #[test]
    fn the_same_seed_gives_the_same_actions(script in script(), seed: u64) {
        let run = || {
            let (_registry, route) = setup(TWO_STEPS, RegistryConfig::default());
            let mut plan = Plan::new(&route, TaskKind::Interactive, Deadline::after(Time::ZERO, secs(60)), RequestOptions::default());
            drive(&mut plan, Time::ZERO, seed, false, |n, _| {
                let s = &script[n % script.len()];
                (Duration::from_millis(s.latency_ms), s.outcome, Usage::default())
            })
        };
        prop_assert_eq!(run(), run());
    }

    #[test]
    fn a_reset_plan_is_a_new_plan(
        first in script(),
        polls in 1usize..40,
        second in script(),
        seeds: (u64, u64),
        short_routes: (bool, bool),
        kind in prop_oneof![Just(TaskKind::Interactive), Just(TaskKind::Deferrable), Just(TaskKind::Critical)],
    ) {
        // Two identical worlds: in each, a first request runs for `polls` polls (to
        // its end or not), then a second one runs; each over the two-step route or
        // the same with a history of two entries and a slow notice. One world resets
        // the first plan for the second request, the other drops it and makes a new
        // one.
        let short = format!("{TWO_STEPS}\n[plan]\nmax_history = 2\nslow_notice_ms = 3000\n");
        let world = || {
            let registry = Registry::new(RegistryConfig::default()).unwrap();
            let prices = PriceTable::new().with("claude-sonnet-4-5", Price::per_million(3.0, 15.0));
            let bind = |text: &str| Route::bind(&toml::from_str(text).unwrap(), &registry, &prices).unwrap();
            let routes = (bind(TWO_STEPS), bind(&short));
            (registry, routes)
        };
        let (_kept, (a, short_a)) = world();
        let (_made, (b, short_b)) = world();
        let start = Time::from_secs(1);
        let deadline = Deadline::after(start, secs(60));
        let scripted = |script: &[Scripted]| {
            let script = script.to_vec();
            move |n: usize, _: &Attempt<'_>| {
                let s = &script[n % script.len()];
                (Duration::from_millis(s.latency_ms), s.outcome, Usage::new(100, 20))
            }
        };
        let pick = |short: bool| if short { (&short_a, &short_b) } else { (&a, &b) };
        let (first_a, first_b) = pick(short_routes.0);
        let mut kept = Plan::new(first_a, TaskKind::Interactive, deadline, RequestOptions::default());
        let mut dropped = Plan::new(first_b, TaskKind::Interactive, deadline, RequestOptions::default());
        let first_kept = drive_for(&mut kept, start, seeds.0, false, polls, scripted(&first));
        let first_dropped = drive_for(&mut dropped, start, seeds.0, false, polls, scripted(&first));
        prop_assert_eq!(&first_kept.seen, &first_dropped.seen);
        let stopped = first_kept.now;
        drop(dropped);
        let (route_a, route_b) = pick(short_routes.1);
        let later = Deadline::after(stopped, secs(45));
        let options = RequestOptions { input_tokens: 1_000, ..RequestOptions::default() };
        kept.reset(route_a, kind, later, options);
        let mut made = Plan::new(route_b, kind, later, options);
        prop_assert_eq!(format!("{kept:?}"), format!("{made:?}"));
        let reset_run = drive(&mut kept, stopped, seeds.1, false, scripted(&second));
        let new_run = drive(&mut made, stopped, seeds.1, false, scripted(&second));
        prop_assert_eq!(reset_run, new_run);
    }

    #[test]
    fn history_stays_within_its_cap(
        script in script(),
        cap in 2u32..12,
        seed: u64,
    ) {
        // Many attempts and no budget or breaker, so long histories are common.
        let many = TWO_STEPS.replace("attempts = 5", "attempts = 30").replace("attempts = 2", "attempts = 30");
        let run = |max_history: u32| {
            let route_text = format!("{many}\n[plan]\nmax_history = {max_history}\n");
            let (_registry, route) = setup(&route_text, RegistryConfig { budget: None, breaker: None, ..RegistryConfig::default() });
            let mut plan = Plan::new(&route, TaskKind::Critical, Deadline::after(Time::ZERO, secs(600)), RequestOptions::default());
            drive(&mut plan, Time::ZERO, seed, false, |n, _| {
                let s = &script[n % script.len()];
                (Duration::from_millis(s.latency_ms), s.outcome, Usage::default())
            }).0.history
        };
        let (full, capped) = (run(65_536), run(cap));
        prop_assert_eq!(full.elided(), 0);
        prop_assert!(capped.len() <= cap as usize);
        // The capped history is the full one with the middle cut out, and says so.
        prop_assert_eq!(capped.len() as u64 + capped.elided(), full.len() as u64);
        let head = capped.elided_at().unwrap_or(capped.len());
        let (capped, full): (Vec<_>, Vec<_>) = (capped.entries().collect(), full.entries().collect());
        prop_assert_eq!(&capped[..head], &full[..head]);
        let tail = capped.len() - head;
        prop_assert_eq!(&capped[head..], &full[full.len() - tail..]);
    }
}

#[test]
fn fail_reasons_read_as_what_happened() {
    let reasons = [
        (
            FailReason::NonRetriable(crate::Fatal::NotFound),
            "non-retriable error: not_found",
        ),
        (
            FailReason::Exhausted {
                last: Some(ClassKind::Overloaded),
            },
            "every step exhausted (last: overloaded)",
        ),
        (FailReason::Exhausted { last: None }, "no step available"),
        (
            FailReason::DeadlineExceeded { last: None },
            "deadline exceeded",
        ),
        (
            FailReason::StreamBroken {
                tokens_delivered: 12,
            },
            "stream broke after 12 tokens",
        ),
    ];
    for (reason, text) in reasons {
        assert_eq!(reason.to_string(), text);
    }
}
