use super::*;

fn config() -> MeasureConfig {
    MeasureConfig {
        bucket: Duration::from_secs(1),
        end: Time::from_secs(10),
        storm: Some((Time::from_secs(2), Time::from_secs(4))),
        herd_bucket: Duration::from_millis(100),
        peak_window: Duration::from_millis(20),
        recovery_window: Duration::from_secs(2),
        recovery_tolerance: 0.01,
        providers: vec!["a".into(), "b".into()],
    }
}

fn record(start_ms: u64, end_ms: u64, resolution: Resolution, attempts: u32) -> RequestRecord {
    RequestRecord {
        start: Time::from_millis(start_ms),
        end: Time::from_millis(end_ms),
        resolution,
        attempts,
        cost_nanodollars: 1_000 * u64::from(attempts),
        retry_cost_nanodollars: 1_000 * u64::from(attempts - 1),
        malformed: false,
    }
}

#[test]
fn herd_index_and_peak_over_known_attempts() {
    let mut c = Collector::new(config());
    // Even load: one attempt every 10 ms for the whole run, plus a burst of 30 attempts
    // at 3.000–3.009 s inside the storm window.
    let mut times: Vec<u64> = (0..1_000).map(|i| i * 10).collect();
    times.extend((0..30).map(|i| 3_000 + i % 10));
    times.sort_unstable();
    for t in times {
        c.on_attempt(Time::from_millis(t), 0, false);
    }
    let r = c.finish("p", |_, _| None);
    // Storm window 2–4 s: 20 herd buckets of 10 attempts, one of them 40: mean 11.5.
    assert!(
        (r.herd_index - 40.0 / 11.5).abs() < 1e-12,
        "{}",
        r.herd_index
    );
    // 20 ms around the burst: the 30 burst attempts plus 3.000, 3.010 (or 2.990).
    assert_eq!(r.peak_attempts_20ms, 32);
    assert_eq!(r.attempts, 1_030);
}

#[test]
fn shares_costs_and_latency() {
    let mut c = Collector::new(config());
    c.on_request(&record(0, 100, Resolution::Success, 1));
    c.on_request(&record(0, 200, Resolution::Success, 2));
    c.on_request(&record(0, 300, Resolution::Degraded, 3));
    c.on_request(&record(0, 4_000, Resolution::Failed, 4));
    let r = c.finish("p", |_, _| None);
    assert_eq!(r.requests, 4);
    assert_eq!(r.shares.success, 0.5);
    assert_eq!(r.shares.degraded, 0.25);
    assert_eq!(r.shares.queued, 0.0);
    assert_eq!(r.shares.failed, 0.25);
    assert_eq!(r.cost_nanodollars, 10_000);
    assert_eq!(r.retry_cost_nanodollars, 6_000);
    assert!((r.dollars_per_1k - 2.5e-3).abs() < 1e-15);
    assert_eq!(r.retry_cost_share, 0.6);
    assert!((r.latency_ms.p50 - 200.0).abs() < 0.2, "{:?}", r.latency_ms);
    assert!(
        (r.latency_ms.max - 4_000.0).abs() < 4.0,
        "{:?}",
        r.latency_ms
    );
}

#[test]
fn timelines_per_bucket() {
    let mut c = Collector::new(config());
    c.on_attempt(Time::from_millis(100), 0, false);
    c.on_attempt(Time::from_millis(200), 1, true);
    c.on_attempt(Time::from_millis(1_500), 0, true);
    c.on_request(&record(100, 900, Resolution::Success, 2));
    c.on_request(&record(150, 900, Resolution::Failed, 1));
    // An event after the planned end extends the timeline.
    c.on_attempt(Time::from_millis(11_500), 0, false);
    let r = c.finish("p", |p, t| {
        (p == 0).then(|| if t < Time::from_secs(2) { 100.0 } else { 50.0 })
    });
    let tl = &r.timeline;
    assert_eq!(tl.offered_per_s.len(), 12);
    assert_eq!(&tl.offered_per_s[..3], &[2.0, 1.0, 0.0]);
    assert_eq!(&tl.retries_per_s[..3], &[1.0, 1.0, 0.0]);
    assert_eq!(&tl.success_rate[..2], &[Some(0.5), None]);
    assert_eq!(tl.providers[0].offered_per_s[0], 1.0);
    assert_eq!(tl.providers[1].offered_per_s[0], 1.0);
    assert_eq!(tl.providers[0].capacity_per_s[1], Some(100.0));
    assert_eq!(tl.providers[0].capacity_per_s[2], Some(50.0));
    // Provider b is unbounded, so the sum is too.
    assert_eq!(tl.capacity_per_s[0], None);
    // A pre-storm baseline, but no request after the storm: no evidence of recovery.
    assert_eq!(r.recovery, Recovery::NotRecovered);
}

#[test]
fn recovery_through_the_collector() {
    let mut c = Collector::new(config());
    for s in 0..10u64 {
        for k in 0..10u64 {
            let ok = !(2..4).contains(&s) || k == 0;
            let ok = ok && !(s == 4 && k < 5);
            let res = if ok {
                Resolution::Success
            } else {
                Resolution::Failed
            };
            c.on_request(&record(s * 1_000 + k, s * 1_000 + 500, res, 1));
        }
    }
    let r = c.finish("p", |_, _| None);
    // Second 4 is at 50%, second 5 back at 100%; windows are clipped at the storm end.
    // Window ending at 5 s: [4, 5) = 50% ✗; at 6 s: [4, 6) = 75% ✗; at 7 s: [5, 7) ✓.
    assert_eq!(r.recovery, Recovery::Recovered { after_s: 3.0 });
}

#[test]
fn empty_collector_reports_zeros() {
    let r = Collector::new(config()).finish("none", |_, _| Some(1.0));
    assert_eq!(r.requests, 0);
    assert_eq!(r.attempts_per_request, 0.0);
    assert_eq!(r.herd_index, 0.0);
    assert_eq!(r.latency_ms, Latency::default());
    assert_eq!(r.timeline.capacity_per_s[0], Some(2.0));
}

#[test]
fn malformed_output_counted_and_priced() {
    let mut c = Collector::new(config());
    // Two requests: one whose first attempt's output failed its validator (500 n$)
    // and whose retry passed; one delivered malformed output unchecked.
    c.on_invalid_output(Time::from_millis(1_500), 500);
    c.on_request(&record(1_000, 2_100, Resolution::Success, 2));
    c.on_request(&RequestRecord {
        malformed: true,
        ..record(3_000, 3_400, Resolution::Success, 1)
    });
    c.on_request(&record(3_000, 3_400, Resolution::Failed, 1));
    c.on_request(&record(3_000, 3_400, Resolution::Success, 1));
    let r = c.finish("p", |_, _| None);
    let m = r.malformed_output;
    assert_eq!(m.invalid_attempts, 1);
    assert_eq!(m.invalid_nanodollars, 500);
    assert!((m.invalid_dollars_per_1k - 500.0 / 4.0 * 1000.0 / 1e9).abs() < 1e-15);
    assert_eq!(m.delivered, 1);
    assert_eq!(m.delivered_share, 0.25);
    assert_eq!(m.delivered_nanodollars, 1_000);
    assert!((m.delivered_dollars_per_1k - 1_000.0 / 4.0 * 1000.0 / 1e9).abs() < 1e-15);
    assert!(m.any());
    assert_eq!(r.timeline.invalid_outputs_per_s[1], 1.0);
    assert_eq!(r.timeline.invalid_outputs_per_s.iter().sum::<f64>(), 1.0);
    assert_eq!(r.timeline.malformed_delivered_per_s[3], 1.0);
    assert_eq!(
        r.timeline.malformed_delivered_per_s.iter().sum::<f64>(),
        1.0
    );
}

#[test]
fn no_malformed_output_reads_as_none() {
    let mut c = Collector::new(config());
    c.on_request(&record(1_000, 2_000, Resolution::Success, 1));
    let r = c.finish("p", |_, _| None);
    assert_eq!(r.malformed_output, MalformedOutput::default());
    assert!(!r.malformed_output.any());
}
