//! Alarms over scripted streams of finished requests.

use std::collections::BTreeMap;
use std::time::Duration;

use super::*;
use crate::cost::{Cost, PriceTable, Usage};
use crate::plan::{DegradedFrom, Entry, FailReason, History};
use crate::registry::{Registry, RegistryConfig};
use crate::route::RouteConfig;

const ROUTE: &str = r#"
    name = "chat"
    [[step]]
    provider = "anthropic"
    model = "claude"
    [[step]]
    provider = "openai"
    model = "gpt"
"#;

fn route() -> Route {
    let config: RouteConfig = toml::from_str(ROUTE).unwrap();
    let registry = Registry::new(RegistryConfig::default()).unwrap();
    Route::bind(&config, &registry, &PriceTable::new()).unwrap()
}

fn config() -> AlertConfig {
    AlertConfig {
        window: Duration::from_secs(60),
        min_attempts: 50,
        ..AlertConfig::default()
    }
}

/// A finished request whose attempts had these (step, class)es, ending as `resolution`.
fn finished(attempts: &[(usize, Class)], resolution: Resolution) -> Finished {
    let mut history = History::default();
    for (n, (step, class)) in attempts.iter().enumerate() {
        history.push(Entry {
            step: *step,
            at: Time::ZERO,
            event: EntryEvent::Attempt {
                attempt: u32::try_from(n + 1).unwrap(),
                class: *class,
                latency: Duration::from_millis(100),
                usage: Usage::default(),
                cost: Cost::ZERO,
            },
        });
    }
    Finished {
        resolution,
        attempts: u32::try_from(attempts.len()).unwrap(),
        elapsed: Duration::from_millis(100),
        cost: Cost::ZERO,
        retry_cost: Cost::ZERO,
        history,
    }
}

fn ok_first() -> Finished {
    finished(
        &[(0, Class::Success)],
        Resolution::Success {
            step: 0,
            fallback_used: false,
        },
    )
}

fn retried(failure: Class) -> Finished {
    finished(
        &[(0, failure), (0, Class::Success)],
        Resolution::Success {
            step: 0,
            fallback_used: false,
        },
    )
}

fn drain(alarms: &mut Alarms) -> Vec<Alert> {
    std::iter::from_fn(|| alarms.poll_alert()).collect()
}

fn at_ms(ms: u64) -> Time {
    Time::from_nanos(ms * 1_000_000)
}

#[test]
fn a_retry_storm_raises_once_with_its_cause_and_clears_once() {
    let route = route();
    let mut alarms = Alarms::new(config());
    assert_eq!(alarms.config(), &config());
    let claude = Scope::Key(Key::new("anthropic", "claude"));
    // A calm minute: nothing.
    for i in 0..100 {
        alarms.observe(at_ms(i * 600), &route, &ok_first());
    }
    assert_eq!(drain(&mut alarms), []);
    // One request in ten now needs a 429 and a retry: about 9% of attempts are retries.
    let mut alerts = Vec::new();
    for i in 100..200 {
        let done = if i % 10 == 0 {
            retried(Class::RateLimited { retry_after: None })
        } else {
            ok_first()
        };
        alarms.observe(at_ms(i * 600), &route, &done);
        alerts.extend(drain(&mut alarms));
    }
    assert_eq!(alerts.len(), 1, "{alerts:?}");
    let raised = &alerts[0];
    assert_eq!(raised.scope, claude);
    assert_eq!(raised.signal, Signal::RetryRate);
    assert_eq!(
        raised.state,
        AlertState::Raised {
            cause: Some(LikelyCause::QuotaOrTier)
        }
    );
    assert!(raised.rate > 0.02 && raised.samples >= 50, "{raised:?}");
    assert_eq!(alarms.raised(), [(claude.clone(), Signal::RetryRate)]);
    // Calm again: the retries age out of the window and the alert clears, once.
    let mut alerts = Vec::new();
    for i in 200..400 {
        alarms.observe(at_ms(i * 600), &route, &ok_first());
        alerts.extend(drain(&mut alarms));
    }
    assert_eq!(alerts.len(), 1, "{alerts:?}");
    assert_eq!(alerts[0].state, AlertState::Cleared);
    assert_eq!(alerts[0].scope, claude);
    assert!(alarms.raised().is_empty());
}

#[test]
fn the_cause_follows_the_mix_of_failures() {
    let route = route();
    for (failure, cause) in [
        (
            Class::NonRetriable(Fatal::Unauthorized),
            Some(LikelyCause::Keys),
        ),
        (
            Class::Overloaded { retry_after: None },
            Some(LikelyCause::ProviderTrouble),
        ),
        (Class::Retriable, Some(LikelyCause::ProviderTrouble)),
        (Class::Ambiguous, None),
    ] {
        let mut alarms = Alarms::new(config());
        for i in 0..100 {
            let done = if i % 5 == 0 {
                retried(failure)
            } else {
                ok_first()
            };
            alarms.observe(at_ms(i * 100), &route, &done);
        }
        let alerts = drain(&mut alarms);
        assert_eq!(alerts.len(), 1, "{failure:?}: {alerts:?}");
        assert_eq!(alerts[0].state, AlertState::Raised { cause }, "{failure:?}");
    }
}

/// More than half of the failed attempts, counted over all three causes.
#[test]
fn a_likely_cause_needs_more_than_half_of_all_failures() {
    let counts = |rate_limited, unauthorized, trouble| Counts {
        rate_limited,
        unauthorized,
        trouble,
        ..Counts::default()
    };
    assert_eq!(
        likely_cause(&counts(3, 1, 1)),
        Some(LikelyCause::QuotaOrTier)
    );
    assert_eq!(likely_cause(&counts(1, 3, 1)), Some(LikelyCause::Keys));
    assert_eq!(
        likely_cause(&counts(1, 1, 3)),
        Some(LikelyCause::ProviderTrouble)
    );
    // Half is not more than half.
    assert_eq!(likely_cause(&counts(2, 1, 1)), None);
    assert_eq!(likely_cause(&counts(0, 0, 0)), None);
}

#[test]
fn too_few_samples_raise_nothing() {
    let route = route();
    let mut alarms = Alarms::new(config());
    // Half the attempts are retries, but the window holds fewer than 50 attempts.
    for i in 0..20 {
        alarms.observe(at_ms(i), &route, &retried(Class::Retriable));
    }
    assert_eq!(drain(&mut alarms), []);
}

#[test]
fn a_fallback_is_not_a_retry_but_raises_the_fallback_rate() {
    let route = route();
    let mut alarms = Alarms::new(config());
    let fell_back = finished(
        &[
            (0, Class::Overloaded { retry_after: None }),
            (1, Class::Success),
        ],
        Resolution::Success {
            step: 1,
            fallback_used: true,
        },
    );
    for i in 0..100 {
        let done = if i % 4 == 0 {
            fell_back.clone()
        } else {
            ok_first()
        };
        alarms.observe(at_ms(i * 10), &route, &done);
    }
    let alerts = drain(&mut alarms);
    assert_eq!(alerts.len(), 1, "{alerts:?}");
    assert_eq!(alerts[0].scope, Scope::Route("chat".into()));
    assert_eq!(alerts[0].signal, Signal::FallbackRate);
}

/// A request the quota ran out for, answered with a structured empty result.
fn degraded() -> Finished {
    finished(
        &[(0, Class::NonRetriable(Fatal::QuotaExhausted))],
        Resolution::Degraded {
            from: DegradedFrom::Empty,
            reason: FailReason::NonRetriable(Fatal::QuotaExhausted),
        },
    )
}

#[test]
fn degraded_requests_raise_the_degraded_rate() {
    let route = route();
    let mut alarms = Alarms::new(config());
    let mut alerts = Vec::new();
    for i in 0..100 {
        let done = if i % 20 == 0 { degraded() } else { ok_first() };
        alarms.observe(at_ms(i * 10), &route, &done);
        alerts.extend(drain(&mut alarms));
    }
    assert_eq!(alerts.len(), 1, "{alerts:?}");
    assert_eq!(alerts[0].signal, Signal::DegradedRate);
    assert!(alerts[0].to_string().contains("route chat: degraded_rate"));
}

/// Raised above the threshold, not at it: every fourth request degraded reaches 25%
/// exactly (and never more) against a 25% threshold, and raises nothing.
#[test]
fn a_rate_at_the_threshold_raises_nothing() {
    let route = route();
    let mut alarms = Alarms::new(AlertConfig {
        degraded_rate: 0.25,
        ..config()
    });
    for i in 0..100 {
        let done = if i % 4 == 3 { degraded() } else { ok_first() };
        alarms.observe(at_ms(i * 10), &route, &done);
    }
    assert_eq!(drain(&mut alarms), []);
}

#[test]
fn a_rate_hovering_at_the_threshold_does_not_flap() {
    let route = route();
    let mut alarms = Alarms::new(AlertConfig {
        window: Duration::from_secs(1),
        min_attempts: 10,
        retry_rate: 0.1,
        ..AlertConfig::default()
    });
    let mut alerts = Vec::new();
    // Alternating one-second bursts just above (12.5%) and just below (8.3%) 10%
    // retries never fall to the clearing level (5%): the alert is raised once and stays.
    for i in 0..2000u64 {
        let every = if (i / 100) % 2 == 0 { 7 } else { 11 };
        let done = if i % every == 0 {
            retried(Class::Retriable)
        } else {
            ok_first()
        };
        alarms.observe(at_ms(i * 10), &route, &done);
        alerts.extend(drain(&mut alarms));
    }
    assert_eq!(alerts.len(), 1, "{alerts:?}");
}

#[test]
fn the_config_reads_from_toml() {
    let config: AlertConfig = toml::from_str("retry_rate = 0.01\nwindow_ms = 60000").unwrap();
    assert_eq!(config.retry_rate, 0.01);
    assert_eq!(config.window, Duration::from_secs(60));
    assert!(toml::from_str::<AlertConfig>("retry_rat = 0.01").is_err());
}

#[test]
fn an_alert_reads_as_its_rate_and_threshold_in_percent() {
    let raised = Alert {
        at: Time::ZERO,
        scope: Scope::Key(Key::new("anthropic", "claude")),
        signal: Signal::RetryRate,
        state: AlertState::Raised {
            cause: Some(LikelyCause::QuotaOrTier),
        },
        rate: 0.125,
        threshold: 0.02,
        samples: 80,
    };
    assert_eq!(
        raised.to_string(),
        "anthropic/claude: retry_rate 12.5% above 2.0% over 80 samples \
         (mostly 429s: quota or rate-limit tier)"
    );
    let cleared = Alert {
        scope: Scope::Route("chat".to_owned()),
        signal: Signal::FallbackRate,
        state: AlertState::Cleared,
        rate: 0.004,
        ..raised
    };
    assert_eq!(
        cleared.to_string(),
        "route chat: fallback_rate back to 0.4%"
    );
}

#[test]
fn a_window_keeps_one_entry_per_bucket() {
    let mut window = Window::default();
    let one = Counts {
        total: 1,
        ..Counts::default()
    };
    for bucket in [3, 3, 3, 4, 4] {
        window.record(bucket, &one);
    }
    let buckets: Vec<(u64, u64)> = window.buckets.iter().map(|(b, c)| (*b, c.total)).collect();
    assert_eq!(buckets, [(3, 3), (4, 2)]);
    assert_eq!(window.totals(4).total, 5);
}

proptest::proptest! {
    /// The running sum a window keeps is the sum of the buckets it keeps, whatever is
    /// recorded and whenever it is judged; and it keeps no bucket past the window.
    #[test]
    fn a_windows_sum_is_its_buckets(
        ops in proptest::collection::vec((0u64..4, 0u64..6, proptest::bool::ANY), 1..300),
    ) {
        let mut window = Window::default();
        let mut bucket = 0;
        for (step, n, judge) in ops {
            bucket += step;
            let counts = Counts {
                total: n + 1,
                retries: n,
                degraded: n % 2,
                rate_limited: n % 3,
                unauthorized: n / 2,
                trouble: n / 3,
            };
            window.record(bucket, &counts);
            if judge {
                let totals = window.totals(bucket);
                let mut sum = Counts::default();
                for (b, c) in &window.buckets {
                    proptest::prop_assert!(b + BUCKETS > bucket);
                    sum.add(c);
                }
                proptest::prop_assert_eq!(totals, sum);
            }
        }
    }

    /// Whatever the stream, each scope's signal alternates raised, cleared, raised …,
    /// starting with raised, and `raised()` agrees with the last alert of each.
    #[test]
    fn alerts_alternate(stream in proptest::collection::vec((0u8..6, 0u64..500), 1..400)) {
        let route = route();
        let mut alarms = Alarms::new(AlertConfig {
            window: Duration::from_secs(2),
            min_attempts: 5,
            ..AlertConfig::default()
        });
        let mut now = 0;
        let mut last: BTreeMap<(Scope, Signal), bool> = BTreeMap::new();
        for (what, gap_ms) in stream {
            now += gap_ms;
            let done = match what {
                0 => retried(Class::RateLimited { retry_after: None }),
                1 => finished(
                    &[(0, Class::Retriable), (1, Class::Success)],
                    Resolution::Success { step: 1, fallback_used: true },
                ),
                2 => finished(
                    &[(0, Class::Retriable)],
                    Resolution::Degraded {
                        from: DegradedFrom::Cache,
                        reason: FailReason::Exhausted { last: Some(crate::ClassKind::Retriable) },
                    },
                ),
                _ => ok_first(),
            };
            alarms.observe(at_ms(now), &route, &done);
            while let Some(alert) = alarms.poll_alert() {
                let raised = matches!(alert.state, AlertState::Raised { .. });
                let was = last.insert((alert.scope.clone(), alert.signal), raised).unwrap_or(false);
                proptest::prop_assert_ne!(was, raised, "{:?}", alert);
            }
        }
        let expected: Vec<(Scope, Signal)> =
            last.into_iter().filter(|(_, raised)| *raised).map(|(k, _)| k).collect();
        let mut actual = alarms.raised();
        // Keys first, then routes, each in their order.
        proptest::prop_assert!(actual.windows(2).all(|w| w[0].0 <= w[1].0), "{:?}", actual);
        actual.sort();
        proptest::prop_assert_eq!(actual, expected);
    }
}
