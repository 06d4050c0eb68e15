use super::*;
use crate::dist::LogNormal;
use crate::provider::RowOp;
use crate::scenario::{Fault, Limits, OutageMode, Storm, StormTarget};
use breakwater_core::rng::seeded;

fn spec(concurrency: u32) -> LlmSpec {
    LlmSpec {
        burst_s: 2.0,
        concurrency,
        queue_limit: 8,
        overload_start: 2,
        overload_full: 6,
        ttft_ms: LogNormal::constant(100.0),
        per_token_ms: LogNormal::constant(10.0),
        reject: Duration::from_millis(20),
    }
}

fn model(limits: Limits) -> Model {
    Model {
        name: "m".into(),
        input_price: 0.0,
        output_price: 0.0,
        latency_factor: 1.0,
        malformed_output: 0.0,
        limits,
    }
}

fn storm(from: u64, to: u64, fault: Fault) -> Storm {
    Storm {
        name: None,
        from: Time::from_secs(from),
        to: Time::from_secs(to),
        target: StormTarget::Provider(0),
        fault,
    }
}

fn server(concurrency: u32, limits: Limits, storms: &[Storm]) -> LlmServer {
    LlmServer::new(
        spec(concurrency),
        &[model(limits)],
        Storms::for_target(storms, StormTarget::Provider(0)),
    )
}

const ATTEMPT: AttemptSpec = AttemptSpec {
    model: 0,
    input_tokens: 100,
    output_tokens: 10,
    row: RowOp::Read,
    tag: 0,
};

fn started(a: Arrival) -> Started {
    match a {
        Arrival::Started(s) => s,
        other => panic!("expected a start, got {other:?}"),
    }
}

fn answered(a: Arrival) -> (Time, Response) {
    match a {
        Arrival::Answered { at, response } => (at, response),
        other => panic!("expected an answer, got {other:?}"),
    }
}

#[test]
fn rate_limit_429_carries_the_refill_time_in_whole_seconds() {
    // 60 rpm = 1/s, 2 s deep: two requests pass, the third waits 1 s.
    let limits = Limits {
        rpm: Some(60.0),
        ..Limits::default()
    };
    let mut s = server(100, limits, &[]);
    let mut rng = seeded(1);
    started(s.on_arrival(Time::ZERO, ATTEMPT, &mut rng));
    started(s.on_arrival(Time::ZERO, ATTEMPT, &mut rng));
    let (at, r) = answered(s.on_arrival(Time::ZERO, ATTEMPT, &mut rng));
    assert_eq!(at, Time::from_millis(20));
    assert_eq!(
        r,
        Response::RateLimited {
            retry_after: Duration::from_secs(1)
        }
    );
    // Half a token later, still 1 s (0.5 s rounded up).
    let (_, r) = answered(s.on_arrival(Time::from_millis(500), ATTEMPT, &mut rng));
    assert_eq!(
        r,
        Response::RateLimited {
            retry_after: Duration::from_secs(1)
        }
    );
    // A rejection does not charge the bucket: at 1 s a token is there.
    started(s.on_arrival(Time::from_secs(1), ATTEMPT, &mut rng));
    assert_eq!(s.stats().rate_limited, 2);
}

#[test]
fn token_limits_imply_longer_waits() {
    // 600 input tokens per minute = 10/s, 20 deep; a 100-token request needs 100 → a
    // full bucket (clamped to its depth of 20) → after one request, wait 2 s.
    let limits = Limits {
        input_tpm: Some(600.0),
        ..Limits::default()
    };
    let mut s = server(100, limits, &[]);
    let mut rng = seeded(1);
    started(s.on_arrival(Time::ZERO, ATTEMPT, &mut rng));
    let (_, r) = answered(s.on_arrival(Time::ZERO, ATTEMPT, &mut rng));
    assert_eq!(
        r,
        Response::RateLimited {
            retry_after: Duration::from_secs(2)
        }
    );
}

#[test]
fn a_squeeze_to_zero_says_come_back_when_it_ends() {
    let limits = Limits {
        rpm: Some(60.0),
        ..Limits::default()
    };
    let mut s = server(
        100,
        limits,
        &[storm(10, 40, Fault::Squeeze { factor: 0.0 })],
    );
    let (_, r) = answered(s.on_arrival(Time::from_millis(12_500), ATTEMPT, &mut seeded(1)));
    assert_eq!(
        r,
        Response::RateLimited {
            retry_after: Duration::from_secs(28)
        }
    );
}

#[test]
fn queue_depth_drives_529_probability() {
    let s = server(1, Limits::default(), &[]);
    let p: Vec<f64> = (0..8).map(|d| s.queue_overload_p(d)).collect();
    assert_eq!(p, [0.0, 0.0, 0.0, 0.25, 0.5, 0.75, 1.0, 1.0]);

    // Fill: one in service, four queued (529s may come from depth 3 on).
    let mut s = server(1, Limits::default(), &[]);
    let mut rng = seeded(5);
    started(s.on_arrival(Time::ZERO, ATTEMPT, &mut rng));
    while s.queued() < 4 {
        let _ = s.on_arrival(Time::ZERO, ATTEMPT, &mut rng);
    }
    let mut overloaded = 0;
    for i in 0..4_000 {
        let mut probe = s.clone();
        match probe.on_arrival(Time::ZERO, ATTEMPT, &mut seeded(i)) {
            Arrival::Answered {
                response: Response::Overloaded,
                ..
            } => overloaded += 1,
            Arrival::Queued { .. } => {}
            other => panic!("{other:?}"),
        }
    }
    assert!(
        (1_850..2_150).contains(&overloaded),
        "p(529) at depth 4 ≈ 0.5: {overloaded}"
    );
}

#[test]
fn a_full_queue_answers_529() {
    let mut s = server(1, Limits::default(), &[]);
    s.spec.overload_start = 100;
    s.spec.overload_full = 200;
    let mut rng = seeded(1);
    started(s.on_arrival(Time::ZERO, ATTEMPT, &mut rng));
    for _ in 0..8 {
        assert!(matches!(
            s.on_arrival(Time::ZERO, ATTEMPT, &mut rng),
            Arrival::Queued { .. }
        ));
    }
    assert_eq!(
        answered(s.on_arrival(Time::ZERO, ATTEMPT, &mut rng)).1,
        Response::Overloaded
    );
    assert_eq!(s.stats().max_queue, 8);
}

#[test]
fn service_time_is_ttft_plus_tokens() {
    let mut s = server(
        1,
        Limits::default(),
        &[storm(5, 6, Fault::Latency { factor: 3.0 })],
    );
    let mut rng = seeded(1);
    let a = started(s.on_arrival(Time::ZERO, ATTEMPT, &mut rng));
    assert_eq!(a.done_at, Time::from_millis(200)); // 100 + 10 × 10
    assert_eq!(a.first_token_at, Time::from_millis(100)); // the ttft
    let d = s.on_service_done(a.done_at, a.id, &mut rng).unwrap();
    assert_eq!(
        d.response,
        Response::Ok {
            input_tokens: 100,
            output_tokens: 10
        }
    );
    let b = started(s.on_arrival(Time::from_secs(5), ATTEMPT, &mut rng));
    assert_eq!(b.done_at, Time::from_millis(5_600));
    assert_eq!(b.first_token_at, Time::from_millis(5_300)); // the storm slows both
}

#[test]
fn abandoned_work_keeps_its_slot_until_it_ends() {
    let mut s = server(1, Limits::default(), &[]);
    let mut rng = seeded(1);
    let a = started(s.on_arrival(Time::ZERO, ATTEMPT, &mut rng));
    s.abandon(a.id); // the client timed out
    let Arrival::Queued { id: b } = s.on_arrival(Time::from_millis(50), ATTEMPT, &mut rng) else {
        panic!("the slot must still be busy");
    };
    assert_eq!(s.busy(), 1);
    // A queued job is not done before it ran.
    assert_eq!(s.on_service_done(Time::from_millis(60), b, &mut rng), None);
    let d = s.on_service_done(a.done_at, a.id, &mut rng).unwrap();
    assert!(d.abandoned);
    let next = d.next.expect("the queued job starts when the slot frees");
    assert_eq!(next.id, b);
    assert_eq!(next.done_at, a.done_at + Duration::from_millis(200));
    assert_eq!(s.stats().wasted, 1);
}

#[test]
fn abandoning_a_finished_job_does_nothing() {
    // The engine keeps a finished job's id until the reply arrives, and a timeout in
    // between abandons it: that must not touch the job now in its slot.
    let mut s = server(1, Limits::default(), &[]);
    let mut rng = seeded(1);
    let a = started(s.on_arrival(Time::ZERO, ATTEMPT, &mut rng));
    assert!(
        !s.on_service_done(a.done_at, a.id, &mut rng)
            .unwrap()
            .abandoned
    );
    s.abandon(a.id);
    let b = started(s.on_arrival(a.done_at, ATTEMPT, &mut rng));
    assert_eq!(b.id.index(), a.id.index(), "the slot is reused");
    s.abandon(a.id);
    let d = s.on_service_done(b.done_at, b.id, &mut rng).unwrap();
    assert!(!d.abandoned);
    assert_eq!(s.stats().wasted, 0);
}

#[test]
fn the_queue_is_fifo() {
    let mut s = server(1, Limits::default(), &[]);
    let mut rng = seeded(1);
    let tagged = |tag| AttemptSpec { tag, ..ATTEMPT };
    let first = started(s.on_arrival(Time::ZERO, tagged(10), &mut rng));
    let ids: Vec<ServiceId> = (11..13)
        .map(
            |tag| match s.on_arrival(Time::ZERO, tagged(tag), &mut rng) {
                Arrival::Queued { id } => id,
                other => panic!("{other:?}"),
            },
        )
        .collect();
    let d = s
        .on_service_done(first.done_at, first.id, &mut rng)
        .unwrap();
    // Each answer carries its own attempt's tag, queued or not.
    assert_eq!(d.tag, 10);
    let second = d.next.unwrap();
    assert_eq!(second.id, ids[0]);
    let d = s
        .on_service_done(second.done_at, second.id, &mut rng)
        .unwrap();
    assert_eq!(d.tag, 11);
    assert_eq!(d.next.unwrap().id, ids[1]);
}

#[test]
fn a_concurrency_cut_holds_the_queue_until_the_storm_ends() {
    let cut = Fault::Overload {
        p: 0.0,
        concurrency_factor: 0.5,
    };
    let mut s = server(2, Limits::default(), &[storm(1, 3, cut)]);
    let mut rng = seeded(1);
    let at = Time::from_millis(900);
    let a = started(s.on_arrival(at, ATTEMPT, &mut rng));
    let b = started(s.on_arrival(at, ATTEMPT, &mut rng));
    assert_eq!(s.poll_timeout(), Some(Time::from_secs(1)));
    // In the storm: one slot. A finishes, but B still holds the only slot.
    let Arrival::Queued { id: c } = s.on_arrival(Time::from_millis(1_050), ATTEMPT, &mut rng)
    else {
        panic!("queued");
    };
    let d = s.on_service_done(a.done_at, a.id, &mut rng).unwrap();
    assert_eq!(d.next, None);
    let mut out = Vec::new();
    s.handle_timeout(Time::from_secs(1), &mut rng, &mut out);
    assert!(out.is_empty());
    assert_eq!(s.poll_timeout(), Some(Time::from_secs(3)));
    // Spurious calls are harmless.
    s.handle_timeout(Time::from_millis(2_000), &mut rng, &mut out);
    assert!(out.is_empty());
    // B's completion frees the one slot the storm leaves: C starts.
    let d = s.on_service_done(b.done_at, b.id, &mut rng).unwrap();
    assert_eq!(d.next.map(|n| n.id), Some(c));
    assert_eq!(s.poll_timeout(), Some(Time::from_secs(3)));
}

#[test]
fn storm_end_starts_waiting_jobs() {
    let cut = Fault::Squeeze { factor: 0.0 };
    let mut s = server(2, Limits::default(), &[storm(0, 5, cut)]);
    let mut rng = seeded(1);
    for _ in 0..3 {
        assert!(matches!(
            s.on_arrival(Time::from_secs(1), ATTEMPT, &mut rng),
            Arrival::Queued { .. }
        ));
    }
    assert_eq!(s.poll_timeout(), Some(Time::from_secs(5)));
    let mut out = Vec::new();
    s.handle_timeout(Time::from_secs(5), &mut rng, &mut out);
    assert_eq!(out.len(), 2);
    assert_eq!(s.queued(), 1);
    assert_eq!(s.poll_timeout(), None);
}

#[test]
fn outages_and_quota() {
    let storms = [
        storm(1, 2, Fault::Outage(OutageMode::Connect)),
        storm(2, 3, Fault::Outage(OutageMode::Timeout)),
        storm(3, 4, Fault::Quota),
    ];
    let mut s = server(1, Limits::default(), &storms);
    let mut rng = seeded(1);
    let (at, r) = answered(s.on_arrival(Time::from_secs(1), ATTEMPT, &mut rng));
    assert_eq!((at, r), (Time::from_millis(1_020), Response::ConnectFailed));
    assert_eq!(
        s.on_arrival(Time::from_secs(2), ATTEMPT, &mut rng),
        Arrival::Hung
    );
    assert_eq!(
        answered(s.on_arrival(Time::from_secs(3), ATTEMPT, &mut rng)).1,
        Response::QuotaExhausted
    );
    started(s.on_arrival(Time::from_secs(4), ATTEMPT, &mut rng));
    assert_eq!(
        s.capacity_per_s(
            Time::from_secs(2),
            TokenMix {
                input: 1.0,
                output: 1.0
            }
        ),
        0.0
    );
}

#[test]
fn capacity_is_the_tighter_of_slots_and_limits() {
    let mix = TokenMix {
        input: 100.0,
        output: 10.0,
    };
    // Slots: 10 / 0.2 s = 50/s. Limits: 6,000 rpm = 100/s.
    let limits = Limits {
        rpm: Some(6_000.0),
        ..Limits::default()
    };
    let s = server(
        10,
        limits,
        &[storm(10, 20, Fault::Squeeze { factor: 0.25 })],
    );
    assert!((s.capacity_per_s(Time::ZERO, mix) - 50.0).abs() < 1e-9);
    // Squeezed: slots 2 / 0.2 = 10/s, limits 25/s.
    assert!((s.capacity_per_s(Time::from_secs(10), mix) - 10.0).abs() < 1e-9);
    let unknown = AttemptSpec {
        model: 7,
        ..ATTEMPT
    };
    let mut s = s;
    assert_eq!(
        answered(s.on_arrival(Time::ZERO, unknown, &mut seeded(1))).1,
        Response::ServerError { status: 404 }
    );
}
