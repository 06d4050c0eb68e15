use std::time::Duration;

use super::*;

const SCENARIO: &str = r#"
    name = "batches"
    seed = 5
    duration_s = 100
    policies = ["naive"]
    [[provider]]
    name = "p"
    kind = "llm"
    concurrency = 50
    ttft = { median_ms = 200, sigma = 0.1 }
    per_token = { median_ms = 2, sigma = 0.1 }
    [[provider.model]]
    name = "m"
    [[storm]]
    kind = "overload"
    provider = "p"
    from_s = 100
    to_s = 200
    p = 1.0
    [[storm]]
    kind = "outage"
    provider = "p"
    mode = "timeout"
    from_s = 300
    to_s = 400
    [[clients]]
    name = "c"
    kind = "open"
    rate_per_s = 1
"#;

struct Fixture {
    store: Store,
    catalog: Catalog,
    clock: VirtualClock,
}

fn fixture(settings: BatchSettings) -> Fixture {
    let scenario = Scenario::from_toml(SCENARIO).expect("scenario");
    let output = scenario.clients[0].output_tokens;
    Fixture {
        catalog: Catalog::of(&scenario),
        store: Store::new(settings, scenario, 42, output),
        clock: VirtualClock::start(Time::ZERO, 1.0),
    }
}

fn settings() -> BatchSettings {
    BatchSettings {
        turnaround: Duration::from_secs(10),
        expiry: Duration::from_secs(60),
        max_items: 100,
        max_batches: 3,
    }
}

fn items(n: usize) -> Vec<NewItem> {
    (0..n)
        .map(|i| NewItem {
            custom_id: format!("r{i}"),
            model: "m".into(),
            ask: Ok((
                Target { slot: 0, model: 0 },
                Ask {
                    model: Some("m".into()),
                    max_tokens: Some(50),
                    text_bytes: 400,
                    stream: false,
                    include_usage: false,
                },
            )),
        })
        .collect()
}

fn submit(f: &mut Fixture, items: Vec<NewItem>, at_s: u64) -> Result<u64, Refusal> {
    let submission = Submission {
        wire: Wire::Anthropic,
        input_file: None,
        items,
        errors: Vec::new(),
    };
    f.store
        .create(submission, &f.catalog, &f.clock, Time::from_secs(at_s))
}

fn secs(s: f64) -> Time {
    Time::from_nanos((s * 1e9) as u64)
}

#[test]
fn a_calm_batch_answers_every_request_after_its_turnaround() {
    let mut f = fixture(settings());
    let n = submit(&mut f, items(20), 0).expect("created");
    let batch = f.store.batch(Wire::Anthropic, n).expect("held");
    assert!(f.store.batch(Wire::OpenAi, n).is_none());
    assert_eq!(batch.counts(Time::ZERO).processing, 20);
    let mid = batch.counts(secs(5.0));
    assert!(mid.succeeded > 0 && mid.processing > 0, "{mid:?}");
    assert!(!batch.ended(secs(9.0)));
    // The last request arrives at 10 s; its service takes under a second.
    assert!(batch.end() > secs(10.0) && batch.end() < secs(11.0));
    let done = batch.counts(secs(11.0));
    assert_eq!((done.succeeded, done.processing), (20, 0));
    let item = &batch.items[0];
    assert!(item.output_tokens <= 50 && item.input_tokens == 100);
}

#[test]
fn the_storm_at_processing_time_decides_each_result() {
    let mut f = fixture(settings());
    // Straddles the start of the 529 storm at 100 s: early requests answered, late
    // ones overloaded.
    let n = submit(&mut f, items(20), 95).expect("created");
    let batch = f.store.batch(Wire::Anthropic, n).expect("held");
    let counts = batch.counts(secs(200.0));
    assert_eq!(counts.succeeded + counts.errored, 20);
    assert!(counts.succeeded >= 8 && counts.errored >= 8, "{counts:?}");
    assert!(
        batch
            .items
            .iter()
            .any(|i| matches!(&i.result, Some((_, Outcome::Refused(Problem::Overloaded)))))
    );
}

#[test]
fn an_outage_leaves_requests_to_expire() {
    let mut f = fixture(settings());
    let n = submit(&mut f, items(10), 300).expect("created");
    let batch = f.store.batch(Wire::Anthropic, n).expect("held");
    assert_eq!(batch.end(), Time::from_secs(360));
    assert_eq!(batch.counts(Time::from_secs(359)).processing, 10);
    assert_eq!(batch.counts(Time::from_secs(360)).expired, 10);
}

#[test]
fn a_cancel_stops_what_has_not_run() {
    let mut f = fixture(settings());
    let n = submit(&mut f, items(20), 0).expect("created");
    assert_eq!(f.store.cancel(Wire::Anthropic, n, secs(5.0)), Ok(true));
    assert_eq!(f.store.cancel(Wire::Anthropic, n, secs(6.0)), Ok(false));
    assert_eq!(f.store.cancel(Wire::OpenAi, n, secs(6.0)), Err(()));
    let batch = f.store.batch(Wire::Anthropic, n).expect("held");
    assert!(batch.ended(secs(5.0)));
    let counts = batch.counts(secs(100.0));
    assert!(counts.succeeded > 0 && counts.canceled > 0);
    assert_eq!(counts.succeeded + counts.canceled, 20);
}

#[test]
fn invalid_requests_are_errored_and_the_rest_run() {
    let mut f = fixture(settings());
    let mut list = items(3);
    list[1].ask = Err(Problem::NotFound("no model".into()));
    let n = submit(&mut f, list, 0).expect("created");
    let batch = f.store.batch(Wire::Anthropic, n).expect("held");
    let counts = batch.counts(secs(20.0));
    assert_eq!((counts.succeeded, counts.errored), (2, 1));
    assert!(matches!(
        batch.state(&batch.items[1], secs(20.0)),
        ItemState::Errored(Problem::NotFound(_))
    ));
}

#[test]
fn memory_is_bounded() {
    let mut f = fixture(settings());
    assert_eq!(
        submit(&mut f, items(101), 0),
        Err(Refusal::TooManyItems(100))
    );
    for _ in 0..3 {
        submit(&mut f, items(5), 0).expect("created");
    }
    // Three processing: a fourth is refused, until one has ended.
    assert_eq!(submit(&mut f, items(5), 1), Err(Refusal::Full(3)));
    let fourth = submit(&mut f, items(5), 20).expect("the oldest ended batch made room");
    assert!(f.store.batch(Wire::Anthropic, 1).is_none());
    assert!(f.store.batch(Wire::Anthropic, fourth).is_some());
    let stats = f.store.stats(Time::from_secs(50));
    assert_eq!((stats.batches, stats.succeeded), (4, 20));
    // Files: three held; a used one makes room, unused ones are never dropped.
    for _ in 0..3 {
        f.store.upload(b"x".to_vec()).expect("stored");
    }
    assert_eq!(f.store.upload(b"y".to_vec()), None);
    f.store.use_file(6);
    let next = f.store.upload(b"z".to_vec()).expect("room made");
    assert!(f.store.file(6).is_none());
    assert_eq!(
        f.store.file(next).map(|file| file.bytes.as_slice()),
        Some(&b"z"[..])
    );
}

#[test]
fn the_same_batch_is_processed_alike() {
    let run = || {
        let mut f = fixture(settings());
        let n = submit(&mut f, items(30), 97).expect("created");
        f.store
            .batch(Wire::Anthropic, n)
            .expect("held")
            .items
            .clone()
    };
    assert_eq!(run(), run());
}

proptest::proptest! {
    #![proptest_config(proptest::prelude::ProptestConfig::with_cases(64))]

    /// Whatever the batch, the storm and the cancel: every request stands in exactly
    /// one state, a result once given never changes, and an ended batch has nothing
    /// processing.
    #[test]
    fn results_are_final_and_accounted_for(
        n in 1usize..40,
        created in 0u64..420,
        cancel_after_ms in proptest::option::of(0u64..20_000),
        probes in proptest::collection::vec(0u64..100_000, 1..8),
    ) {
        let mut f = fixture(settings());
        let serial = submit(&mut f, items(n), created).expect("created");
        let start = Time::from_secs(created);
        if let Some(ms) = cancel_after_ms {
            let _ = f.store.cancel(Wire::Anthropic, serial, start + Duration::from_millis(ms));
        }
        let batch = f.store.batch(Wire::Anthropic, serial).expect("held");
        let mut probes: Vec<Time> = probes.iter().map(|&ms| start + Duration::from_millis(ms)).collect();
        probes.sort_unstable();
        let mut before: Option<Vec<ItemState<'_>>> = None;
        for &now in &probes {
            let c = batch.counts(now);
            proptest::prop_assert_eq!(c.processing + c.succeeded + c.errored + c.canceled + c.expired, n as u64);
            if batch.ended(now) {
                proptest::prop_assert_eq!(c.processing, 0);
            }
            let states: Vec<ItemState<'_>> = batch.items.iter().map(|i| batch.state(i, now)).collect();
            if let Some(prev) = &before {
                for (a, b) in prev.iter().zip(&states) {
                    if *a != ItemState::Processing {
                        proptest::prop_assert_eq!(a, b);
                    }
                }
            }
            before = Some(states);
        }
    }
}
