//! The drain: replays pending tasks through a client once their routes admit again.
//!
//! A sweep ([`Queue::drain_once`]) reads the pending tasks in enqueue order, a batch at
//! a time, and for each one:
//!
//! 1. asks the route whether it could send now ([`Route::check`], which reads the
//!    breakers without taking a half-open probe slot); if not, leaves the task for a
//!    later sweep;
//! 2. replays it with [`Client`]'s plan, under the task's tenant, kind and deadline;
//! 3. records what came of it, each in one committed write:
//!
//! | the replay | the task |
//! |---|---|
//! | a provider answered | done, with the answer's text and author |
//! | queued again, degraded, or failed retriably (exhausted, deadline) | pending, one more attempt; dead once it reaches [`DrainConfig::max_attempts`] |
//! | a non-retriable error, or its route does not exist | dead, with the reason |
//!
//! A task is marked done only after its call succeeded: a crash between the two
//! replays it (at least once). A [`Drainer`] runs sweeps on a tokio task until
//! stopped, pausing between sweeps that delivered nothing (until the soonest closed
//! route may admit again, at most [`DrainConfig::idle`]). Tasks run one at a time.
//!
//! [`Route::check`]: breakwater_core::Route::check

use std::time::Duration;

use breakwater_core::plan::FailReason;
use breakwater_core::{Rejection, Time};
use parking_lot::Mutex;
use tokio::sync::watch;

use super::{Answer, Billed, Pending, Queue, QueueError, StoredTask, TaskState, Worker, wall_ms};
use crate::client::{Client, Error};
use crate::clock;

/// How a drain runs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DrainConfig {
    /// The longest pause between sweeps that delivered nothing (default 1 s).
    pub idle: Duration,
    /// Tasks read from the file at a time (default 32).
    pub batch: usize,
    /// Attempts after which a task that keeps coming back is given up (default 10;
    /// the client's own call counts as the first).
    pub max_attempts: u32,
    /// Whether tasks meant for a batch API ([`Task::batch`](super::Task::batch)) are
    /// replayed too, synchronously and at the standard price, when no batch holds
    /// them: for a queue that no batch submitter serves, or to finish batch work
    /// quickly (default `false`: they are left to the batch submitter).
    pub batch_tasks: bool,
}

impl Default for DrainConfig {
    fn default() -> DrainConfig {
        DrainConfig {
            idle: Duration::from_secs(1),
            batch: 32,
            max_attempts: 10,
            batch_tasks: false,
        }
    }
}

/// What drains did, summed.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct DrainStats {
    /// Sweeps run.
    pub sweeps: u64,
    /// Tasks delivered (now done).
    pub delivered: u64,
    /// Tasks run that came back and stay pending.
    pub requeued: u64,
    /// Tasks given up (now dead).
    pub dead: u64,
    /// Tasks left for later because their route could not send.
    pub held: u64,
}

impl DrainStats {
    fn add(&mut self, other: DrainStats) {
        self.sweeps += other.sweeps;
        self.delivered += other.delivered;
        self.requeued += other.requeued;
        self.dead += other.dead;
        self.held += other.held;
    }
}

/// A drain running on a tokio task; see [`Queue::drain`].
#[derive(Debug)]
pub struct Drainer(Worker<DrainStats>);

impl Drainer {
    /// What it has done so far.
    #[must_use]
    pub fn stats(&self) -> DrainStats {
        self.0.stats()
    }

    /// Whether it has stopped (asked to, or on an error of the queue's file).
    #[must_use]
    pub fn is_finished(&self) -> bool {
        self.0.is_finished()
    }

    /// Stops it: a replay in flight is abandoned (its task stays pending, to be
    /// replayed later); a write to the file in progress completes first. Returns what
    /// it did.
    ///
    /// # Errors
    ///
    /// The queue error that stopped it earlier, if one did.
    pub async fn stop(self) -> Result<DrainStats, QueueError> {
        self.0.stop().await
    }
}

/// One sweep's result, with the soonest instant a held route may admit.
struct Sweep {
    stats: DrainStats,
    reopens: Option<Time>,
}

/// What a replay means for its task.
enum Verdict {
    Done {
        text: String,
        by: String,
        billed: Billed,
    },
    Again(String),
    Dead(String),
}

impl Queue {
    /// Starts a drain of this queue through `client` on the current tokio runtime.
    ///
    /// # Panics
    ///
    /// Outside a tokio runtime (as `tokio::spawn`).
    #[must_use = "dropping the Drainer leaves it running without a way to stop it"]
    pub fn drain(&self, client: Client, config: DrainConfig) -> Drainer {
        let queue = self.clone();
        Drainer(Worker::<DrainStats>::spawn(
            |shared, mut stopped| async move {
                loop {
                    let sweep = queue.sweep(&client, &config, &shared, &stopped).await?;
                    if *stopped.borrow() {
                        return Ok(());
                    }
                    if sweep.stats.delivered > 0 {
                        continue;
                    }
                    let now = clock::read().now;
                    let pause = sweep
                        .reopens
                        .map_or(config.idle, |at| at.saturating_duration_since(now))
                        .min(config.idle);
                    tokio::select! {
                        () = tokio::time::sleep(pause) => {}
                        _ = stopped.wait_for(|stop| *stop) => return Ok(()),
                    }
                }
            },
        ))
    }

    /// One sweep over the pending tasks (see the [module docs](self)); returns what
    /// it did.
    ///
    /// # Errors
    ///
    /// A [`QueueError`] when the file cannot be read or written; the sweep stops
    /// there, and the task in hand stays pending.
    pub async fn drain_once(
        &self,
        client: &Client,
        config: &DrainConfig,
    ) -> Result<DrainStats, QueueError> {
        let total = Mutex::new(DrainStats::default());
        // Never told to stop (the sender lives until the sweep is over).
        let (_never, running) = watch::channel(false);
        self.sweep(client, config, &total, &running).await?;
        let stats = *total.lock();
        Ok(stats)
    }

    async fn sweep(
        &self,
        client: &Client,
        config: &DrainConfig,
        total: &Mutex<DrainStats>,
        stopped: &watch::Receiver<bool>,
    ) -> Result<Sweep, QueueError> {
        let mut sweep = Sweep {
            stats: DrainStats {
                sweeps: 1,
                ..DrainStats::default()
            },
            reopens: None,
        };
        total.lock().add(sweep.stats);
        let batch = config.batch.max(1);
        let which = Pending::Drain {
            batch: config.batch_tasks,
        };
        let mut after = 0;
        loop {
            let rows = self
                .blocking(move |q| q.pending(which, after, batch))
                .await?;
            let Some(&(last, _)) = rows.last() else {
                return Ok(sweep);
            };
            after = last;
            for (id, row) in rows {
                if *stopped.borrow() {
                    return Ok(sweep);
                }
                let mut step = DrainStats::default();
                match row {
                    Err(error) => {
                        let reason = error.to_string();
                        self.blocking(move |q| q.mark_dead(id, &reason, wall_ms()))
                            .await?;
                        step.dead = 1;
                    }
                    Ok(stored) => match client.route_check(&stored.task.route) {
                        Some(Err(rejection)) => {
                            step.held = 1;
                            sweep.reopens = sooner(sweep.reopens, rejection);
                        }
                        route => {
                            let verdict = match route {
                                None => {
                                    Verdict::Dead(format!("no route named {:?}", stored.task.route))
                                }
                                Some(_) => {
                                    // A stop abandons the call in flight (the task
                                    // stays pending); a write is never cut short.
                                    let mut stop = stopped.clone();
                                    tokio::select! {
                                        result = client.replay(&stored.task) => judge(result),
                                        _ = stop.wait_for(|stop| *stop) => return Ok(sweep),
                                    }
                                }
                            };
                            step = self.record(&stored, verdict, config).await?;
                        }
                    },
                }
                sweep.stats.add(step);
                total.lock().add(step);
            }
        }
    }

    /// Writes what a replay means for its task.
    async fn record(
        &self,
        stored: &StoredTask,
        verdict: Verdict,
        config: &DrainConfig,
    ) -> Result<DrainStats, QueueError> {
        let id = stored.id;
        let key = stored.task.key.clone();
        let mut step = DrainStats::default();
        match verdict {
            Verdict::Done { text, by, billed } => {
                self.blocking(move |q| {
                    let answer = Answer {
                        text: &text,
                        by: &by,
                        billed,
                    };
                    q.mark_done(id, answer, wall_ms())
                })
                .await?;
                tracing::info!(task = id, key = %key, "queued task delivered");
                step.delivered = 1;
            }
            Verdict::Again(reason) => {
                let max = config.max_attempts;
                let state = self
                    .blocking(move |q| q.requeue(id, &reason, max, wall_ms()))
                    .await?;
                if state == TaskState::Dead {
                    tracing::warn!(task = id, key = %key, "queued task given up");
                    step.dead = 1;
                } else {
                    step.requeued = 1;
                }
            }
            Verdict::Dead(reason) => {
                tracing::warn!(task = id, key = %key, %reason, "queued task failed");
                self.blocking(move |q| q.mark_dead(id, &reason, wall_ms()))
                    .await?;
                step.dead = 1;
            }
        }
        Ok(step)
    }

    /// Runs a queue operation on a blocking thread (commits wait for the disk).
    pub(crate) async fn blocking<T, F>(&self, op: F) -> Result<T, QueueError>
    where
        T: Send + 'static,
        F: FnOnce(&Queue) -> Result<T, QueueError> + Send + 'static,
    {
        let queue = self.clone();
        tokio::task::spawn_blocking(move || op(&queue))
            .await
            .map_err(|e| QueueError::Interrupted(e.to_string()))?
    }
}

/// What a replay's result means for its task.
fn judge(result: Result<crate::client::Completion, Error>) -> Verdict {
    match result {
        Ok(done) => match (&done.degraded, &done.key) {
            (None, Some(key)) => Verdict::Done {
                by: format!("{}/{}", key.provider(), key.model()),
                billed: Billed {
                    usage: crate::outcome::usage(done.usage),
                    cost: done.cost,
                    synchronous_cost: done.cost,
                },
                text: done.text,
            },
            (Some(reason), _) => Verdict::Again(format!("degraded: {reason}")),
            (None, None) => Verdict::Again("answered by no provider".to_owned()),
        },
        Err(Error::Failed {
            reason: reason @ FailReason::NonRetriable(_),
            ..
        }) => Verdict::Dead(reason.to_string()),
        Err(Error::UnknownRoute(route)) => Verdict::Dead(format!("no route named {route:?}")),
        Err(Error::Queued { reason, .. }) => Verdict::Again(format!("queued again: {reason}")),
        Err(error) => Verdict::Again(error.to_string()),
    }
}

/// The sooner of `held` and the instant `rejection` ends (`None`: unknown).
fn sooner(held: Option<Time>, rejection: Rejection) -> Option<Time> {
    match (held, rejection.until) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}
