//! One round of the batch submitter: reconcile, poll what the providers hold, apply
//! what ended, submit what is pending.

use std::collections::{BTreeMap, HashMap};

use breakwater_core::plan::FailReason;
use breakwater_core::{Class, Key, Outcome, Taxonomy};
use reqwest::Method;

use super::http::{self, Call};
use super::item::{self, ItemOutcome, Progress};
use super::store::{self, Item, OpenBatch, Verdict};
use super::{BatchConfig, BatchStats, anthropic, openai};
use crate::client::{BoundRoute, Client, ProviderEntry};
use crate::clock;
use crate::limits::DEFAULT_RESPONSE_LIMIT;
use crate::queue::{Billed, Pending, Queue, QueueError, StoredTask, wall_ms};
use crate::wire::Provider;

impl Queue {
    /// One round; see [`Queue::batch_round`].
    pub(super) async fn round(
        &self,
        client: &Client,
        config: &BatchConfig,
    ) -> Result<BatchStats, QueueError> {
        let mut stats = BatchStats {
            rounds: 1,
            ..BatchStats::default()
        };
        stats.batches_abandoned += self
            .blocking(|q| q.with_conn(|c| store::abandon_unconfirmed(c, wall_ms())))
            .await?;
        let open = self.blocking(|q| q.with_conn(|c| store::open(c))).await?;
        for batch in open {
            self.poll(client, config, batch, &mut stats).await?;
        }
        self.submit(client, config, &mut stats).await?;
        Ok(stats)
    }

    /// Asks the provider about `batch`; applies its results once it has ended.
    async fn poll(
        &self,
        client: &Client,
        config: &BatchConfig,
        batch: OpenBatch,
        stats: &mut BatchStats,
    ) -> Result<(), QueueError> {
        let Some(provider) = client.provider_named(&batch.provider) else {
            tracing::warn!(batch = batch.id, provider = %batch.provider, "no route uses the batch's provider any more: left open");
            stats.running += 1;
            return Ok(());
        };
        let path = match provider.kind {
            Provider::Anthropic => format!("{}/{}", anthropic::PATH, batch.remote_id),
            _ => format!("{}/{}", openai::BATCHES_PATH, batch.remote_id),
        };
        let call = Call {
            method: Method::GET,
            path: &path,
            body: None,
        };
        let status = send(client, config, &provider, call).await;
        let progress = match status {
            Err(outcome) => {
                let class = Taxonomy::default().classify(&outcome);
                if class.is_retriable() {
                    tracing::info!(batch = batch.id, %class, "batch status unavailable: asking again later");
                    stats.running += 1;
                    return Ok(());
                }
                // The provider does not know the batch (404), or will not say: its
                // tasks never get results from it, so they go out again.
                let detail = format!("status request failed: {class}");
                let verdicts = released(&batch, &detail);
                return self
                    .close(client, &batch, "abandoned", detail, verdicts, config, stats)
                    .await;
            }
            Ok(body) => match provider.kind {
                Provider::Anthropic => anthropic::progress(&body),
                _ => openai::progress(&body),
            },
        };
        match progress {
            Err(error) => {
                tracing::warn!(batch = batch.id, %error, "batch status unreadable: asking again later");
                stats.running += 1;
                Ok(())
            }
            Ok(Progress::Running) => {
                stats.running += 1;
                Ok(())
            }
            Ok(Progress::Failed(why)) => {
                let detail = format!("batch {} failed: {why}", batch.remote_id);
                let verdicts = batch
                    .items
                    .iter()
                    .map(|item| (item.task_id, Verdict::Again(detail.clone())))
                    .collect();
                self.close(client, &batch, "ended", detail, verdicts, config, stats)
                    .await
            }
            Ok(Progress::Ended {
                results,
                unfinished,
            }) => {
                let mut outcomes = HashMap::new();
                for url in results {
                    let Some(path) = item::relative_to(&provider.base_url, &url) else {
                        tracing::warn!(
                            batch = batch.id,
                            "results URL is not on the provider's base URL: not fetched"
                        );
                        continue;
                    };
                    let call = Call {
                        method: Method::GET,
                        path: &path,
                        body: None,
                    };
                    let file = http::send(
                        client.http(),
                        &provider,
                        call,
                        config.request_timeout,
                        config.results_limit,
                    )
                    .await;
                    let Ok(file) = file else {
                        tracing::info!(
                            batch = batch.id,
                            "batch results unavailable: fetching again later"
                        );
                        stats.running += 1;
                        return Ok(());
                    };
                    read_results(provider.kind, &file, &mut outcomes);
                }
                let detail = format!("ended; {} results", outcomes.len());
                let verdicts = batch
                    .items
                    .iter()
                    .map(|item| {
                        let verdict = judge(
                            client,
                            &batch,
                            item,
                            outcomes.remove(&item.custom_id),
                            unfinished,
                        );
                        (item.task_id, verdict)
                    })
                    .collect();
                self.close(client, &batch, "ended", detail, verdicts, config, stats)
                    .await
            }
        }
    }

    /// Applies `verdicts` and closes `batch`; counts what moved and records the cost
    /// of what was delivered.
    #[allow(clippy::too_many_arguments)]
    async fn close(
        &self,
        client: &Client,
        batch: &OpenBatch,
        state: &'static str,
        detail: String,
        verdicts: Vec<(i64, Verdict)>,
        config: &BatchConfig,
        stats: &mut BatchStats,
    ) -> Result<(), QueueError> {
        let (id, max) = (batch.id, config.max_attempts);
        let (verdicts, (applied, moved)) = self
            .blocking(move |q| {
                let result = q.with_conn(|c| {
                    store::close(c, id, state, &detail, &verdicts, max, wall_ms())
                })?;
                Ok((verdicts, result))
            })
            .await?;
        let key = Key::new(&batch.provider, &batch.model);
        for ((_, verdict), moved) in verdicts.iter().zip(moved) {
            if let (Verdict::Done { billed, .. }, true) = (verdict, moved) {
                let cost = breakwater_core::BatchCost {
                    batch: billed.cost,
                    synchronous: billed.synchronous_cost,
                };
                client.record_batch_result(&key, billed.usage, cost);
                stats.cost += cost;
            }
        }
        stats.delivered += applied.delivered;
        stats.requeued += applied.requeued;
        stats.released += applied.released;
        stats.dead += applied.dead;
        if state == "ended" {
            stats.batches_ended += 1;
        } else {
            stats.batches_abandoned += 1;
        }
        tracing::info!(batch = id, remote = %batch.remote_id, state, delivered = applied.delivered, requeued = applied.requeued, released = applied.released, dead = applied.dead, "batch closed");
        Ok(())
    }

    /// Groups the pending batch tasks by the provider and model of their route's
    /// first admitting step, and submits each group.
    async fn submit(
        &self,
        client: &Client,
        config: &BatchConfig,
        stats: &mut BatchStats,
    ) -> Result<(), QueueError> {
        let page = config.max_items.max(1);
        let mut groups: BTreeMap<(String, String), Vec<Pick>> = BTreeMap::new();
        let mut after = 0;
        let now = clock::read().now;
        loop {
            let rows = self
                .blocking(move |q| q.pending(Pending::Batch, after, page))
                .await?;
            let Some(&(last, _)) = rows.last() else { break };
            after = last;
            for (id, row) in rows {
                let stored = match row {
                    Ok(stored) => stored,
                    Err(error) => {
                        let reason = error.to_string();
                        self.blocking(move |q| q.mark_dead(id, &reason, wall_ms()))
                            .await?;
                        stats.dead += 1;
                        continue;
                    }
                };
                let Some(bound) = client.bound_route(&stored.task.route) else {
                    let reason = format!("no route named {:?}", stored.task.route);
                    self.blocking(move |q| q.mark_dead(id, &reason, wall_ms()))
                        .await?;
                    stats.dead += 1;
                    continue;
                };
                let Ok(step) = bound.route.admitting_step(now) else {
                    stats.held += 1;
                    continue;
                };
                let target = &bound.steps[step];
                if target.provider.kind == Provider::Gemini {
                    // No batch API here: left for a drain that takes batch tasks.
                    stats.held += 1;
                    continue;
                }
                let model = bound
                    .route
                    .key(step)
                    .map(|k| k.model().to_owned())
                    .unwrap_or_default();
                let group = groups
                    .entry((target.provider.name.clone(), model))
                    .or_default();
                if group.len() < page {
                    group.push(Pick { stored, step });
                }
            }
        }
        for ((provider, model), picks) in groups {
            self.submit_group(client, config, &provider, &model, picks, stats)
                .await?;
        }
        Ok(())
    }

    /// Records, then sends, one batch.
    async fn submit_group(
        &self,
        client: &Client,
        config: &BatchConfig,
        provider_name: &str,
        model: &str,
        picks: Vec<Pick>,
        stats: &mut BatchStats,
    ) -> Result<(), QueueError> {
        let Some(provider) = client.provider_named(provider_name) else {
            return Ok(());
        };
        let mut items = Vec::with_capacity(picks.len());
        let mut bodies = Vec::with_capacity(picks.len());
        for pick in &picks {
            let task = &pick.stored.task;
            let variant = client
                .bound_route(&task.route)
                .and_then(|bound| bound.steps.get(pick.step))
                .and_then(|target| target.variant.as_ref());
            bodies.push(
                provider
                    .kind
                    .render(&task.request, model, variant, false)
                    .body,
            );
            items.push(Item {
                task_id: pick.stored.id,
                custom_id: format!("bw-{}", pick.stored.id),
                route: task.route.clone(),
                step: pick.step,
            });
        }
        let (name, model_owned, recorded) =
            (provider_name.to_owned(), model.to_owned(), items.clone());
        let id = self
            .blocking(move |q| {
                q.with_conn(|c| store::begin(c, &name, &model_owned, &recorded, wall_ms()))
            })
            .await?;
        let sent = match provider.kind {
            Provider::Anthropic => {
                create_anthropic(client, config, &provider, &items, &bodies).await
            }
            _ => create_openai(client, config, &provider, &items, &bodies).await,
        };
        let batch = OpenBatch {
            id,
            provider: provider_name.to_owned(),
            model: model.to_owned(),
            remote_id: String::new(),
            items,
        };
        match sent {
            Ok((remote, file)) => {
                self.blocking(move |q| {
                    q.with_conn(|c| store::confirm(c, id, &remote, file.as_deref(), wall_ms()))
                })
                .await?;
                stats.batches_submitted += 1;
                stats.tasks_submitted += batch.items.len() as u64;
                tracing::info!(
                    batch = id,
                    provider = provider_name,
                    model,
                    tasks = batch.items.len(),
                    "batch submitted"
                );
                Ok(())
            }
            Err(outcome) => {
                let verdicts = batch
                    .items
                    .iter()
                    .map(|item| {
                        let class = taxonomy_of(client, &item.route).classify(&outcome);
                        (item.task_id, failed(class, "batch not created"))
                    })
                    .collect();
                let detail = format!("create failed: {outcome:?}");
                self.close(client, &batch, "abandoned", detail, verdicts, config, stats)
                    .await
            }
        }
    }
}

/// A pending task and the route step it goes to.
struct Pick {
    stored: StoredTask,
    step: usize,
}

/// Sends `call` to `provider` within the batch settings' request timeout, reading at
/// most [`DEFAULT_RESPONSE_LIMIT`] bytes of the answer (a results file has its own
/// limit, [`BatchConfig::results_limit`]).
async fn send(
    client: &Client,
    config: &BatchConfig,
    provider: &ProviderEntry,
    call: Call<'_>,
) -> http::Answer {
    http::send(
        client.http(),
        provider,
        call,
        config.request_timeout,
        DEFAULT_RESPONSE_LIMIT,
    )
    .await
}

async fn create_anthropic(
    client: &Client,
    config: &BatchConfig,
    provider: &ProviderEntry,
    items: &[Item],
    bodies: &[Vec<u8>],
) -> Result<(String, Option<String>), Outcome> {
    let body = anthropic::create_body(
        items
            .iter()
            .zip(bodies)
            .map(|(item, body)| (item.custom_id.as_str(), body.as_slice())),
    );
    let call = Call {
        method: Method::POST,
        path: anthropic::PATH,
        body: Some(("application/json".to_owned(), body)),
    };
    let answer = send(client, config, provider, call).await?;
    let remote = anthropic::batch_id(&answer).map_err(|_| Outcome::MalformedBody)?;
    Ok((remote, None))
}

async fn create_openai(
    client: &Client,
    config: &BatchConfig,
    provider: &ProviderEntry,
    items: &[Item],
    bodies: &[Vec<u8>],
) -> Result<(String, Option<String>), Outcome> {
    let mut file = Vec::new();
    for (item, body) in items.iter().zip(bodies) {
        openai::input_line(&mut file, &item.custom_id, body);
    }
    let call = Call {
        method: Method::POST,
        path: openai::FILES_PATH,
        body: Some(openai::upload(&file)),
    };
    let answer = send(client, config, provider, call).await?;
    let file_id = openai::object_id(&answer).map_err(|_| Outcome::MalformedBody)?;
    let call = Call {
        method: Method::POST,
        path: openai::BATCHES_PATH,
        body: Some(("application/json".to_owned(), openai::create_body(&file_id))),
    };
    let answer = send(client, config, provider, call).await?;
    let remote = openai::object_id(&answer).map_err(|_| Outcome::MalformedBody)?;
    Ok((remote, Some(file_id)))
}

/// Every line of a results file, by custom id; unreadable lines are skipped (their
/// tasks have no result and go out again).
fn read_results(kind: Provider, file: &[u8], out: &mut HashMap<String, ItemOutcome>) {
    for line in item::lines(file) {
        let parsed = match kind {
            Provider::Anthropic => anthropic::result_line(line),
            _ => openai::result_line(line),
        };
        match parsed {
            Ok(result) => {
                out.insert(result.custom_id, result.outcome);
            }
            Err(error) => tracing::warn!(%error, "unreadable batch result line skipped"),
        }
    }
}

/// What one request's result means for its task: the route's taxonomy classifies
/// every failure, exactly as for a synchronous attempt.
fn judge(
    client: &Client,
    batch: &OpenBatch,
    item: &Item,
    outcome: Option<ItemOutcome>,
    unfinished: &str,
) -> Verdict {
    let exchange = match outcome {
        None => return Verdict::Released(format!("{unfinished} ({})", batch.remote_id)),
        Some(ItemOutcome::NotRun(why)) => {
            return Verdict::Released(format!("{why} ({})", batch.remote_id));
        }
        Some(ItemOutcome::Ran(exchange)) => exchange,
    };
    let Some(bound) = client.bound_route(&item.route) else {
        return Verdict::Dead(format!("no route named {:?}", item.route));
    };
    let validator = bound
        .steps
        .get(item.step)
        .and_then(|t| t.validator.as_ref());
    let mut outcome = exchange.outcome;
    if let (Some(validator), Some(completion)) = (validator, &exchange.completion) {
        if let Err(invalid) = validator.check(&completion.text) {
            tracing::info!(validator = invalid.validator, reason = %invalid.reason, "invalid batch output");
            outcome = Outcome::InvalidOutput;
        }
    }
    match (outcome, exchange.completion) {
        (Outcome::Success, Some(completion)) => {
            let price = bound.route.price(item.step).unwrap_or_default();
            let bill = price.batch_cost(exchange.usage);
            Verdict::Done {
                text: completion.text,
                by: format!("{}/{}", batch.provider, batch.model),
                billed: Billed {
                    usage: exchange.usage,
                    cost: bill.batch,
                    synchronous_cost: bill.synchronous,
                },
            }
        }
        (outcome, _) => failed(
            bound.route.taxonomy().classify(&outcome),
            &format!("batch {}", batch.remote_id),
        ),
    }
}

/// A failure of class `class` in `context`: pending again with one more attempt when
/// the core says another may help, dead otherwise.
fn failed(class: Class, context: &str) -> Verdict {
    match class {
        Class::NonRetriable(fatal) => Verdict::Dead(FailReason::NonRetriable(fatal).to_string()),
        class => Verdict::Again(format!("{context}: {class}")),
    }
}

/// Every item of `batch` pending again, not attempted.
fn released(batch: &OpenBatch, detail: &str) -> Vec<(i64, Verdict)> {
    batch
        .items
        .iter()
        .map(|item| (item.task_id, Verdict::Released(detail.to_owned())))
        .collect()
}

/// The taxonomy of `route`, or the default one for a route no longer configured.
fn taxonomy_of(client: &Client, route: &str) -> Taxonomy {
    client
        .bound_route(route)
        .map(|bound: &BoundRoute| bound.route.taxonomy().clone())
        .unwrap_or_default()
}
