//! `breakwater-http`'s batch submitter against `serve`'s batch APIs, for each provider:
//! 100 deferrable tasks through a storm that first holds every request until its
//! batch expires (an outage), then fails half of them (a 529 storm). Expired requests
//! go out again without an attempt, per-item 529s go back to the queue with one, the
//! rest are delivered by `custom_id`; in the end every task is done exactly once, at
//! the batch price.

mod serve_common;

use std::path::{Path, PathBuf};
use std::time::Duration;

use breakwater_core::{Cost, Price, PriceTable, RouteConfig, TaskKind};
use breakwater_http::Client;
use breakwater_http::batch::{BatchConfig, BatchStats};
use breakwater_http::queue::{Queue, Task, TaskState};
use breakwater_http::wire::{Provider, Request};
use breakwater_sim::serve::{BatchSettings, Running};
use serve_common::{http, start};

/// Both providers: an outage (requests hang) from 0 to 10 s, a 529 storm on half the
/// requests from 10 s to 22 s, calm after.
const STORM: &str = r#"
    name = "batches through a storm"
    seed = 10
    duration_s = 60
    policies = ["naive"]
    [[provider]]
    name = "anthropic"
    kind = "llm"
    concurrency = 100
    ttft = { median_ms = 200, sigma = 0.2 }
    per_token = { median_ms = 2, sigma = 0.2 }
    [[provider.model]]
    name = "claude-sonnet-4-5"
    [[provider]]
    name = "openai"
    kind = "llm"
    concurrency = 100
    ttft = { median_ms = 200, sigma = 0.2 }
    per_token = { median_ms = 2, sigma = 0.2 }
    [[provider.model]]
    name = "gpt-4o-mini"
    [[storm]]
    kind = "outage"
    provider = "anthropic"
    mode = "timeout"
    from_s = 0
    to_s = 10
    [[storm]]
    kind = "outage"
    provider = "openai"
    mode = "timeout"
    from_s = 0
    to_s = 10
    [[storm]]
    kind = "overload"
    provider = "anthropic"
    from_s = 10
    to_s = 22
    p = 0.5
    [[storm]]
    kind = "overload"
    provider = "openai"
    from_s = 10
    to_s = 22
    p = 0.5
    [[clients]]
    name = "jobs"
    kind = "open"
    rate_per_s = 1
    output_tokens = { median = 40, sigma = 0.3, max = 200 }
"#;

/// A queue file in a directory of its own, removed on drop.
struct TempDir(PathBuf);

impl TempDir {
    fn new(name: &str) -> TempDir {
        let dir = Path::new(env!("CARGO_TARGET_TMPDIR"))
            .join(format!("serve-batch-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("temp dir");
        TempDir(dir)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A client with route `nightly`, one step on `provider`'s `model`, priced $3/$15.
fn client(kind: Provider, provider: &str, model: &str, server: &Running, queue: &Queue) -> Client {
    let route = RouteConfig::from_toml(&format!(
        r#"
        name = "nightly"
        [[step]]
        provider = "{provider}"
        model = "{model}"
        attempts = 2
        timeout_ms = 5000
        "#
    ))
    .expect("route");
    Client::builder()
        .provider(provider, kind, server.provider_url(provider), "sk-test")
        .route(route)
        .prices(PriceTable::new().with(model, Price::per_million(3.0, 15.0)))
        .queue(queue.clone())
        .seed(3)
        .http_client(http())
        .build()
        .expect("client")
}

async fn hundred_tasks_through_the_storm(kind: Provider, provider: &str, model: &str) {
    let dir = TempDir::new(provider);
    let queue = Queue::open(dir.0.join("queue.db")).expect("queue");
    let keys: Vec<String> = (0..100)
        .map(|i| {
            let key = format!("report-{i}");
            let request = Request::new(120).user(format!("Summarise report {i}."));
            let task = Task::new(
                &key,
                "nightly",
                TaskKind::Deferrable,
                request,
                Duration::from_secs(3600),
            )
            .via_batch();
            assert!(queue.enqueue(&task).expect("enqueue").created);
            key
        })
        .collect();

    // Speed 10: the 22 s of storms take 2.2 s; a batch's requests arrive over 0.4 s
    // and it expires 0.6 s after creation. The server starts once the tasks are
    // queued, so that the first batch goes out in the outage.
    let batch = BatchSettings {
        turnaround: Duration::from_secs(4),
        expiry: Duration::from_secs(6),
        ..BatchSettings::default()
    };
    let server = start(STORM, |c| c.speed(10.0).batch(batch)).await;
    let client = client(kind, provider, model, &server, &queue);
    let config = BatchConfig {
        poll: Duration::from_millis(50),
        request_timeout: Duration::from_secs(5),
        ..BatchConfig::default()
    };
    let mut total = BatchStats::default();
    for _ in 0..400 {
        let round = queue.batch_round(&client, &config).await.expect("round");
        total.batches_submitted += round.batches_submitted;
        total.tasks_submitted += round.tasks_submitted;
        total.delivered += round.delivered;
        total.requeued += round.requeued;
        total.released += round.released;
        total.dead += round.dead;
        total.rounds += round.rounds;
        total.cost += round.cost;
        if queue.counts().expect("counts").done == 100 {
            break;
        }
        tokio::time::sleep(config.poll).await;
    }

    // Nothing lost, nothing delivered twice.
    let counts = queue.counts().expect("counts");
    assert_eq!(
        (counts.done, counts.pending, counts.dead),
        (100, 0, 0),
        "{total:?}"
    );
    assert_eq!(total.delivered, 100, "{total:?}");
    // The outage held the first batch until it expired: its requests went out again
    // without an attempt. The 529 storm failed some: back to the queue with one.
    assert!(total.released >= 50, "{total:?}");
    assert!(total.requeued >= 5, "{total:?}");
    assert!(total.batches_submitted >= 3, "{total:?}");
    assert_eq!(
        total.tasks_submitted,
        100 + total.released + total.requeued,
        "{total:?}"
    );
    let served = server.batch_stats();
    println!("{provider}: adapter {total:?}; serve {served:?}");
    assert_eq!(served.succeeded, 100, "{served:?}");
    assert_eq!(served.errored, total.requeued, "{served:?}");
    assert_eq!(served.expired, total.released, "{served:?}");
    assert_eq!(served.batches, total.batches_submitted);
    // Each result went to its own task.
    let by = format!("{provider}/{model}");
    let mut attempts = 0;
    for key in &keys {
        let task = queue.get(key).expect("read").expect("stored");
        assert_eq!(task.state, TaskState::Done);
        assert_eq!(task.answered_by.as_deref(), Some(by.as_str()));
        assert!(task.result.as_deref().is_some_and(|t| !t.is_empty()));
        let billed = task.billed.expect("billed");
        assert!(billed.usage.output_tokens > 0 && billed.usage.output_tokens <= 120);
        assert_eq!(billed.cost + billed.cost, billed.synchronous_cost);
        attempts += task.task.attempts;
    }
    assert_eq!(u64::from(attempts), total.requeued);
    // The metrics show the batch price and what it saved: half the synchronous price.
    let m = client.metrics();
    assert_eq!(m.batch_results, 100);
    assert!(m.batch_cost_dollars > 0.0);
    assert_eq!(
        Cost::from_dollars(m.batch_saving_dollars),
        Cost::from_dollars(m.batch_cost_dollars)
    );
    assert_eq!(m.requests, 0);
    assert_eq!(Cost::from_dollars(m.batch_cost_dollars), total.cost.batch);
    assert_eq!(total.cost.synchronous, total.cost.batch + total.cost.batch);
    server.shutdown().await;
}

#[tokio::test]
async fn anthropic_batches_ride_out_an_outage_and_a_529_storm() {
    hundred_tasks_through_the_storm(Provider::Anthropic, "anthropic", "claude-sonnet-4-5").await;
}

#[tokio::test]
async fn openai_batches_ride_out_an_outage_and_a_529_storm() {
    hundred_tasks_through_the_storm(Provider::OpenAi, "openai", "gpt-4o-mini").await;
}
