//! A queue's background task, as a [`Drainer`](super::Drainer) and a
//! [`BatchSubmitter`](crate::batch::BatchSubmitter) each hold one: spawned on the
//! current tokio runtime, asked to stop through a watch channel, adding what it does to
//! stats the handle can read at any time.

use std::future::Future;
use std::sync::Arc;

use parking_lot::Mutex;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use super::QueueError;

/// A running background task of a queue and what it has done so far (`S`, summed).
#[derive(Debug)]
pub(crate) struct Worker<S> {
    stop: watch::Sender<bool>,
    stats: Arc<Mutex<S>>,
    task: JoinHandle<Result<(), QueueError>>,
}

impl<S: Copy + Default + Send + 'static> Worker<S> {
    /// Spawns `run(stats, stopped)`: it adds what it does to `stats`, and `stopped`
    /// turns `true` when it is asked to stop, which it should then do soon.
    ///
    /// # Panics
    ///
    /// Outside a tokio runtime (as `tokio::spawn`).
    pub(crate) fn spawn<F, Fut>(run: F) -> Worker<S>
    where
        F: FnOnce(Arc<Mutex<S>>, watch::Receiver<bool>) -> Fut,
        Fut: Future<Output = Result<(), QueueError>> + Send + 'static,
    {
        let (stop, stopped) = watch::channel(false);
        let stats = Arc::new(Mutex::new(S::default()));
        let task = tokio::spawn(run(Arc::clone(&stats), stopped));
        Worker { stop, stats, task }
    }

    /// What it has done so far.
    pub(crate) fn stats(&self) -> S {
        *self.stats.lock()
    }

    /// Whether it has stopped (asked to, or on an error).
    pub(crate) fn is_finished(&self) -> bool {
        self.task.is_finished()
    }

    /// Asks it to stop and waits until it has; returns what it did, or the error that
    /// stopped it earlier ([`QueueError::Interrupted`] if it panicked).
    pub(crate) async fn stop(self) -> Result<S, QueueError> {
        let _ = self.stop.send(true);
        let ended = self
            .task
            .await
            .map_err(|e| QueueError::Interrupted(e.to_string()))?;
        ended.map(|()| *self.stats.lock())
    }
}
