//! Processing a batch: its requests reach the provider's model in virtual time, paced
//! over the turnaround, and the storm in force when each one is processed decides
//! what it gets.
//!
//! Each batch runs on a lane of its own: a fresh copy of each provider's server model
//! (the same [`Server`], spec and storm timeline as live traffic) without the
//! per-minute limits, since providers meter batches apart from the synchronous
//! endpoints. Concurrency, queueing, overload, outages, quota and latency storms act
//! as they do on live traffic. The lane is a small discrete-event loop, as the
//! simulator's engine is: arrivals, service ends and storm boundaries in time order,
//! one seeded stream for every draw, so a batch created at the same virtual time with
//! the same requests and seed is processed identically.

use std::cmp::Reverse;
use std::collections::{BTreeMap, BinaryHeap};

use breakwater_core::{Rng, Time};

use crate::provider::{
    Arrival, AttemptSpec, FlakyServer, LlmServer, Response, Server, ServiceId, Started, Storms,
};
use crate::scenario::{Limits, Model, ProviderKind, Scenario, StormTarget};

/// One request of a batch as the lane sees it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct LaneRequest {
    /// When it reaches the model.
    pub(crate) at: Time,
    /// The served provider (catalog slot) it goes to.
    pub(crate) slot: usize,
    /// What it asks for.
    pub(crate) spec: AttemptSpec,
}

/// The lane's server model for scenario provider `index`: the provider's own, less
/// its per-minute limits. `None` for a `row` provider.
pub(crate) fn lane_server(scenario: &Scenario, index: usize) -> Option<Server> {
    let p = scenario.providers.get(index)?;
    let storms = Storms::for_target(&scenario.storms, StormTarget::Provider(index));
    let models: Vec<Model> = p
        .models
        .iter()
        .map(|m| Model {
            limits: Limits::default(),
            ..m.clone()
        })
        .collect();
    match &p.kind {
        ProviderKind::Llm(spec) => Some(Server::Llm(LlmServer::new(*spec, &models, storms))),
        ProviderKind::Flaky(spec) => Some(Server::Flaky(FlakyServer::new(*spec, &models, storms))),
        ProviderKind::Row(_) => None,
    }
}

/// Runs `requests` (sorted by arrival time) through `servers` (by slot) until virtual
/// time `until`. Each request's answer and the time it was ready, or `None` if it had
/// none by `until` (it hung in an outage, or was still queued or in service).
pub(crate) fn process<R: Rng + ?Sized>(
    servers: &mut BTreeMap<usize, Server>,
    requests: &[LaneRequest],
    until: Time,
    rng: &mut R,
) -> Vec<Option<(Time, Response)>> {
    let mut out = vec![None; requests.len()];
    // Started jobs by end time, then start order.
    let mut services: BinaryHeap<Reverse<(Time, u64, usize, ServiceId)>> = BinaryHeap::new();
    let mut sequence = 0u64;
    let mut next = 0usize;
    let mut start = |services: &mut BinaryHeap<_>, slot: usize, st: Started| {
        sequence += 1;
        services.push(Reverse((st.done_at, sequence, slot, st.id)));
    };
    loop {
        let arrival = requests.get(next).map(|r| r.at);
        let service = services.peek().map(|Reverse((t, ..))| *t);
        let timer = servers.values().filter_map(Server::poll_timeout).min();
        let Some(t) = [service, arrival, timer].into_iter().flatten().min() else {
            break;
        };
        if t > until {
            break;
        }
        if service == Some(t) {
            let Some(Reverse((_, _, slot, id))) = services.pop() else {
                break;
            };
            let Some(server) = servers.get_mut(&slot) else {
                continue;
            };
            if let Some(done) = server.on_service_done(t, id, rng) {
                // The job's tag is its request's index (set at arrival).
                if done.at <= until
                    && let Ok(i) = usize::try_from(done.tag)
                    && let Some(slot_out) = out.get_mut(i)
                {
                    *slot_out = Some((done.at, done.response));
                }
                if let Some(st) = done.next {
                    start(&mut services, slot, st);
                }
            }
        } else if arrival == Some(t) {
            let i = next;
            next += 1;
            let Some(request) = requests.get(i) else {
                break;
            };
            let Some(server) = servers.get_mut(&request.slot) else {
                continue;
            };
            let spec = AttemptSpec {
                tag: i as u64,
                ..request.spec
            };
            match server.on_arrival(t, spec, rng) {
                Arrival::Answered { at, response } => {
                    if at <= until
                        && let Some(slot_out) = out.get_mut(i)
                    {
                        *slot_out = Some((at, response));
                    }
                }
                Arrival::Started(st) => start(&mut services, request.slot, st),
                Arrival::Queued { .. } | Arrival::Hung => {}
            }
        } else {
            for (&slot, server) in servers.iter_mut() {
                if server.poll_timeout() == Some(t) {
                    let mut started = Vec::new();
                    server.handle_timeout(t, rng, &mut started);
                    for st in started {
                        start(&mut services, slot, st);
                    }
                }
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use breakwater_core::rng::seeded;

    use super::*;
    use crate::provider::RowOp;

    const SCENARIO: &str = r#"
        name = "lane"
        seed = 3
        duration_s = 60
        policies = ["naive"]
        [[provider]]
        name = "p"
        kind = "llm"
        rpm = 1
        concurrency = 4
        queue_limit = 100
        overload_start = 50
        overload_full = 100
        ttft = { median_ms = 100, sigma = 0.1 }
        per_token = { median_ms = 1, sigma = 0.1 }
        [[provider.model]]
        name = "m"
        [[storm]]
        kind = "overload"
        provider = "p"
        from_s = 10
        to_s = 20
        p = 1.0
        [[storm]]
        kind = "outage"
        provider = "p"
        mode = "timeout"
        from_s = 30
        to_s = 40
        [[clients]]
        name = "c"
        kind = "open"
        rate_per_s = 1
    "#;

    fn requests(from_s: u64, n: u64) -> Vec<LaneRequest> {
        (0..n)
            .map(|i| LaneRequest {
                at: Time::from_secs(from_s) + Duration::from_millis(i * 100),
                slot: 0,
                spec: AttemptSpec {
                    model: 0,
                    input_tokens: 100,
                    output_tokens: 20,
                    row: RowOp::Read,
                    tag: 0,
                },
            })
            .collect()
    }

    fn run(from_s: u64, n: u64, until_s: u64, seed: u64) -> Vec<Option<(Time, Response)>> {
        let scenario = Scenario::from_toml(SCENARIO).expect("scenario");
        let mut servers = BTreeMap::from([(0, lane_server(&scenario, 0).expect("llm"))]);
        let mut rng = seeded(seed);
        process(
            &mut servers,
            &requests(from_s, n),
            Time::from_secs(until_s),
            &mut rng,
        )
    }

    #[test]
    fn calm_requests_are_served_past_the_per_minute_limit() {
        let out = run(0, 30, 100, 1);
        // rpm = 1 would refuse all but one of them live; the lane has no such limit.
        assert!(
            out.iter()
                .all(|o| matches!(o, Some((_, Response::Ok { .. }))))
        );
        // Four slots: each answer comes after its arrival, in service time.
        for (o, r) in out.iter().zip(requests(0, 30)) {
            let (at, _) = o.expect("answered");
            assert!(at > r.at && at < r.at + Duration::from_secs(2));
        }
    }

    #[test]
    fn the_storm_at_processing_time_decides() {
        let overloaded = run(10, 20, 100, 1);
        assert!(
            overloaded
                .iter()
                .all(|o| matches!(o, Some((_, Response::Overloaded))))
        );
        // An outage in timeout mode: no answer at all (the batch will expire them).
        let hung = run(30, 20, 100, 1);
        assert!(hung.iter().all(Option::is_none));
        // Nothing past `until` counts.
        let cut = run(0, 20, 1, 1);
        assert!(cut.iter().any(Option::is_some) && cut.iter().any(Option::is_none));
    }

    #[test]
    fn the_same_seed_processes_alike() {
        assert_eq!(run(0, 50, 100, 7), run(0, 50, 100, 7));
        assert_ne!(run(0, 50, 100, 7), run(0, 50, 100, 8));
    }
}
