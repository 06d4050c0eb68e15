//! Provider batch APIs for deferrable work: Anthropic Message Batches and the OpenAI
//! Batch API, which answer within a day at half the price.
//!
//! # Which tasks go to a batch
//!
//! A task opts in when it is queued: [`Task::via_batch`] for work queued directly
//! ([`Queue::enqueue`]: it never tries the synchronous endpoint), or
//! [`CallOptions::via_batch`] for a deferrable call that the plan queues after the
//! chain could not serve it now. Only [`TaskKind::Deferrable`] tasks can. The flag is
//! stored with the task, so it survives restarts and configuration changes; the
//! synchronous drain leaves such tasks alone unless [`DrainConfig::batch_tasks`] is set.
//!
//! # A round
//!
//! A [`BatchSubmitter`] ([`Queue::submit_batches`]) runs rounds until stopped, one
//! every [`BatchConfig::poll`]; [`Queue::batch_round`] runs one. A round:
//!
//! 1. **reconciles**: a batch still `submitting` was recorded, but the process stopped
//!    before the provider confirmed it; it is marked `abandoned` and its tasks are free
//!    again. (If the provider did receive it, those tasks run twice: at least once,
//!    and the first result delivered wins; see below.)
//! 2. **polls** every `submitted` batch; once one has ended, fetches its results and
//!    applies them, with the batch's closing, in one commit;
//! 3. **submits** the pending batch tasks that no open batch holds, grouped by the
//!    provider and model of their route's first step whose breaker admits
//!    ([`Route::admitting_step`]); each group is recorded (`submitting`, with every
//!    task's `custom_id`) before it is sent, and `submitted` with the provider's id
//!    once created.
//!
//! # What becomes of each task
//!
//! Each result maps back to its task by `custom_id` and is read exactly as the same
//! answer from the synchronous endpoint ([`crate::outcome`]); every decision about a
//! failure is the route's [`Taxonomy`](breakwater_core::Taxonomy):
//!
//! | result | the task |
//! |---|---|
//! | an answer (that passes the step's validator) | done, billed at the batch price ([`Billed`]) |
//! | an error the taxonomy calls retriable (429, 529, 5xx, invalid output, …) | pending, one more attempt (dead at [`BatchConfig::max_attempts`]): it goes in the next batch, or to a drain that takes batch tasks |
//! | a non-retriable error (400, 401, 404, …) | dead, with the reason |
//! | none: cancelled, expired, missing | pending, no attempt counted |
//! | the whole batch refused (OpenAI `failed`), or its creation failed | each task as for an error of that class |
//!
//! Tasks are identified by their idempotency key: a task already done (or dead) when
//! a second result for it arrives is not touched, so a task is delivered, and billed
//! in the metrics, once. Batch results do not feed the breakers, which watch the
//! synchronous endpoints.
//!
//! [`Task::via_batch`]: crate::queue::Task::via_batch
//! [`CallOptions::via_batch`]: crate::CallOptions::via_batch
//! [`TaskKind::Deferrable`]: breakwater_core::TaskKind::Deferrable
//! [`DrainConfig::batch_tasks`]: crate::queue::DrainConfig::batch_tasks
//! [`Route::admitting_step`]: breakwater_core::Route::admitting_step
//! [`Billed`]: crate::queue::Billed

mod anthropic;
mod http;
mod item;
mod openai;
mod round;
mod store;

use std::time::Duration;

use breakwater_core::BatchCost;

use crate::client::Client;
use crate::queue::{Queue, QueueError, Worker};

/// How a batch submitter runs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BatchConfig {
    /// The pause between rounds: how often open batches are polled and new ones
    /// submitted (default 60 s).
    pub poll: Duration,
    /// The most tasks in one batch (default 10,000; Anthropic takes up to 100,000,
    /// OpenAI 50,000).
    pub max_items: usize,
    /// Attempts after which a task that keeps failing retriably is given up (default
    /// 10, as the drain's).
    pub max_attempts: u32,
    /// The timeout of each request to a batch endpoint (default 120 s).
    pub request_timeout: Duration,
    /// The most bytes of a results file read (default 256 MiB); a larger one is left
    /// unread and fetched again next round.
    pub results_limit: usize,
}

impl Default for BatchConfig {
    fn default() -> BatchConfig {
        BatchConfig {
            poll: Duration::from_secs(60),
            max_items: 10_000,
            max_attempts: 10,
            request_timeout: Duration::from_secs(120),
            results_limit: 256 << 20,
        }
    }
}

/// What batch rounds did, summed.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct BatchStats {
    /// Rounds run.
    pub rounds: u64,
    /// Batches the providers accepted.
    pub batches_submitted: u64,
    /// Tasks in them.
    pub tasks_submitted: u64,
    /// Batches whose results were applied.
    pub batches_ended: u64,
    /// Batches given up: never confirmed, not created, or unknown to the provider.
    pub batches_abandoned: u64,
    /// Polls of a batch still running (or not answerable now).
    pub running: u64,
    /// Tasks delivered (now done).
    pub delivered: u64,
    /// Tasks pending again with one more attempt.
    pub requeued: u64,
    /// Tasks pending again without an attempt counted (they never ran).
    pub released: u64,
    /// Tasks given up (now dead).
    pub dead: u64,
    /// Pending batch tasks left for later: their route could not send now, or its
    /// step's provider has no batch API here.
    pub held: u64,
    /// What the delivered results cost, beside their synchronous price.
    pub cost: BatchCost,
}

impl BatchStats {
    fn add(&mut self, other: BatchStats) {
        self.rounds += other.rounds;
        self.batches_submitted += other.batches_submitted;
        self.tasks_submitted += other.tasks_submitted;
        self.batches_ended += other.batches_ended;
        self.batches_abandoned += other.batches_abandoned;
        self.running += other.running;
        self.delivered += other.delivered;
        self.requeued += other.requeued;
        self.released += other.released;
        self.dead += other.dead;
        self.held += other.held;
        self.cost += other.cost;
    }
}

/// How many batches the queue's file holds in each state.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct BatchCounts {
    /// Recorded, not yet confirmed by the provider.
    pub submitting: u64,
    /// Held by the provider, results not applied yet.
    pub submitted: u64,
    /// Results applied.
    pub ended: u64,
    /// Given up (their tasks went out again).
    pub abandoned: u64,
}

/// A batch submitter running on a tokio task; see [`Queue::submit_batches`].
#[derive(Debug)]
pub struct BatchSubmitter(Worker<BatchStats>);

impl BatchSubmitter {
    /// What it has done so far.
    #[must_use]
    pub fn stats(&self) -> BatchStats {
        self.0.stats()
    }

    /// Whether it has stopped (asked to, or on an error of the queue's file).
    #[must_use]
    pub fn is_finished(&self) -> bool {
        self.0.is_finished()
    }

    /// Stops it. A round in progress is abandoned where it is: a batch being created
    /// stays `submitting` and is reconciled by the next round; a write in progress
    /// completes first. Returns what it did.
    ///
    /// # Errors
    ///
    /// The queue error that stopped it earlier, if one did.
    pub async fn stop(self) -> Result<BatchStats, QueueError> {
        self.0.stop().await
    }
}

impl Queue {
    /// Starts a batch submitter for this queue, sending through `client`'s providers
    /// and routes, on the current tokio runtime. Run one per queue file.
    ///
    /// # Panics
    ///
    /// Outside a tokio runtime (as `tokio::spawn`).
    #[must_use = "dropping the BatchSubmitter leaves it running without a way to stop it"]
    pub fn submit_batches(&self, client: Client, config: BatchConfig) -> BatchSubmitter {
        let queue = self.clone();
        BatchSubmitter(Worker::<BatchStats>::spawn(
            |shared, mut stopped| async move {
                loop {
                    tokio::select! {
                        round = queue.round(&client, &config) => shared.lock().add(round?),
                        _ = stopped.wait_for(|stop| *stop) => return Ok(()),
                    }
                    tokio::select! {
                        () = tokio::time::sleep(config.poll) => {}
                        _ = stopped.wait_for(|stop| *stop) => return Ok(()),
                    }
                }
            },
        ))
    }

    /// One round of the batch submitter (see the [module docs](self)): reconcile,
    /// poll and apply, submit. Run rounds one at a time, one submitter per queue file.
    ///
    /// # Errors
    ///
    /// A [`QueueError`] when the file cannot be read or written; the round stops
    /// there. Failures of the providers are not errors: they are recorded on the
    /// batches and tasks concerned.
    pub async fn batch_round(
        &self,
        client: &Client,
        config: &BatchConfig,
    ) -> Result<BatchStats, QueueError> {
        self.round(client, config).await
    }

    /// How many batches are in each state.
    ///
    /// # Errors
    ///
    /// [`QueueError::Sqlite`] when the read fails.
    pub fn batch_counts(&self) -> Result<BatchCounts, QueueError> {
        let [submitting, submitted, ended, abandoned] = self.with_conn(|c| store::counts(c))?;
        Ok(BatchCounts {
            submitting,
            submitted,
            ended,
            abandoned,
        })
    }
}
