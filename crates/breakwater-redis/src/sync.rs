//! The task that keeps a registry in step with the fleet through Redis.

use std::sync::Arc;
use std::time::{Duration, UNIX_EPOCH};

use breakwater_core::breaker::FleetChange;
use breakwater_core::budget::BudgetConfig;
use breakwater_core::fleet::{
    BudgetPush, DecodeError, FleetClock, FleetStats, FleetTime, OpFailed, Replica, WINDOWS,
};
use breakwater_core::{Key, Registry, Time};
use breakwater_http::clock;
use parking_lot::Mutex;
use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use redis::{ProtocolVersion, PushInfo, PushKind, RedisResult, Script, Value};
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;
use tokio::time::{Instant, sleep_until, timeout};

use crate::config::{ConfigError, RedisFleetConfig};
use crate::layout::Layout;
use crate::scripts::{self, AnswerError};

/// Why a [`FleetSync`] could not start (Redis being down is not a reason: it starts
/// disconnected and keeps trying).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StartError {
    /// The settings cannot work.
    #[error("fleet config: {0}")]
    Config(#[from] ConfigError),
    /// The URL cannot be read.
    #[error("redis url: {0}")]
    Url(#[source] redis::RedisError),
}

/// What a [`FleetSync`] is doing, for health checks and tests.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct FleetStatus {
    /// This replica's id.
    pub replica: u64,
    /// Whether Redis answered the last operation.
    pub connected: bool,
    /// How many times Redis was lost (each logged once, as a `warn`).
    pub losses: u64,
    /// The fleet state machine's counters.
    pub stats: FleetStats,
}

/// Shares a [`Registry`]'s breakers, cooldowns and ratio budgets with every other
/// replica attached to the same Redis namespace: a tokio task, stopped by
/// [`stop`](Self::stop) (or when dropped).
///
/// Attach it to a `breakwater_http::Client` with `FleetSync::start(client.registry().clone(), config)`.
pub struct FleetSync {
    registry: Arc<Registry>,
    stop: watch::Sender<bool>,
    task: Option<JoinHandle<()>>,
    status: Arc<Mutex<FleetStatus>>,
}

impl FleetSync {
    /// Starts the task on the current tokio runtime (panics outside one, as
    /// `tokio::spawn` does). Returns at once: the connection is made in the task, and
    /// until it is, the registry works on local state as without a fleet.
    pub fn start(
        registry: Arc<Registry>,
        config: RedisFleetConfig,
    ) -> Result<FleetSync, StartError> {
        config.validate()?;
        let info = redis::IntoConnectionInfo::into_connection_info(config.url.as_str())
            .map_err(StartError::Url)?;
        let settings = info
            .redis_settings()
            .clone()
            .set_protocol(ProtocolVersion::RESP3);
        let client =
            redis::Client::open(info.set_redis_settings(settings)).map_err(StartError::Url)?;
        let (push_tx, push_rx) = mpsc::unbounded_channel();
        let manager_config = ConnectionManagerConfig::new()
            .set_push_sender(push_tx)
            .set_automatic_resubscription()
            .set_connection_timeout(Some(config.reconnect_max))
            .set_min_delay(config.reconnect_min)
            .set_max_delay(config.reconnect_max);
        let connection = ConnectionManager::new_lazy_with_config(client, manager_config)
            .map_err(StartError::Url)?;
        let reading = clock::read();
        let wall_ms = reading
            .wall
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX));
        let fleet_clock = FleetClock::new(reading.now, FleetTime::from_millis(wall_ms));
        let id = config
            .replica_id
            .unwrap_or_else(|| derive_id(std::process::id(), reading.wall));
        let status = Arc::new(Mutex::new(FleetStatus {
            replica: id,
            ..FleetStatus::default()
        }));
        let (stop, stopped) = watch::channel(false);
        let driver = Driver {
            replica: Replica::new(id, config.fleet, fleet_clock),
            clock: fleet_clock,
            layout: Layout::new(&config.namespace),
            breaker_script: Script::new(scripts::BREAKER),
            budget_script: Script::new(scripts::BUDGET),
            registry: Arc::clone(&registry),
            connection,
            pushes: push_rx,
            status: Arc::clone(&status),
            losses: 0,
            retry_delay: config.reconnect_min,
            next_try: Instant::now(),
            config,
        };
        let task = tokio::spawn(driver.run(stopped));
        Ok(FleetSync {
            registry,
            stop,
            task: Some(task),
            status,
        })
    }

    /// What the task is doing now.
    #[must_use]
    pub fn status(&self) -> FleetStatus {
        *self.status.lock()
    }

    /// Stops the task and waits for it: every breaker goes back to local behaviour.
    pub async fn stop(mut self) {
        let _ = self.stop.send(true);
        if let Some(task) = self.task.take() {
            let _ = task.await;
        }
    }
}

impl Drop for FleetSync {
    /// Tells the task to stop, and puts the breakers back on local behaviour at once
    /// (the task does it too as it ends; this covers a runtime that is already gone).
    fn drop(&mut self) {
        let _ = self.stop.send(true);
        let now = clock::read().now;
        for key in self.registry.keys() {
            if let Some(breaker) = self.registry.breaker(&key) {
                breaker.apply_fleet(now, FleetChange::Gated(false));
            }
        }
    }
}

impl std::fmt::Debug for FleetSync {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FleetSync")
            .field("status", &self.status())
            .finish()
    }
}

/// FNV-1a over the process id and the start time: an id that differs between processes
/// without a global RNG.
fn derive_id(pid: u32, wall: std::time::SystemTime) -> u64 {
    let nanos = wall.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_nanos());
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for byte in pid.to_le_bytes().into_iter().chain(nanos.to_le_bytes()) {
        hash ^= u64::from(byte);
        hash = hash.wrapping_mul(0x0100_0000_01b3);
    }
    hash
}

/// One entry of a pipeline, to route its answer.
enum Sent {
    Breaker(Key),
    Budget(Key, u64),
}

struct Driver {
    registry: Arc<Registry>,
    replica: Replica,
    clock: FleetClock,
    connection: ConnectionManager,
    pushes: mpsc::UnboundedReceiver<PushInfo>,
    layout: Layout,
    breaker_script: Script,
    budget_script: Script,
    status: Arc<Mutex<FleetStatus>>,
    losses: u64,
    retry_delay: Duration,
    next_try: Instant,
    config: RedisFleetConfig,
}

impl Driver {
    async fn run(mut self, mut stopped: watch::Receiver<bool>) {
        let mut tick = Instant::now();
        loop {
            tokio::select! {
                _ = stopped.changed() => break,
                push = self.pushes.recv() => match push {
                    Some(push) => self.on_push(push),
                    None => break,
                },
                () = sleep_until(tick) => {
                    tick = Instant::now() + self.config.scan;
                    if self.replica.connected() {
                        self.exchange().await;
                    } else if Instant::now() >= self.next_try {
                        self.connect().await;
                    }
                }
            }
            self.publish_status();
        }
        let now = clock::read().now;
        self.replica.set_connected(now, &self.registry, false);
        self.publish_status();
    }

    fn publish_status(&self) {
        *self.status.lock() = FleetStatus {
            replica: self.replica.id(),
            connected: self.replica.connected(),
            losses: self.losses,
            stats: self.replica.stats(),
        };
    }

    fn on_push(&mut self, push: PushInfo) {
        match push.kind {
            PushKind::Message => {
                if let Some(Value::BulkString(bytes)) = push.data.last() {
                    let now = clock::read().now;
                    match std::str::from_utf8(bytes) {
                        Ok(text) => self.replica.on_message(now, &self.registry, text),
                        Err(_) => self
                            .replica
                            .count_decode_error(DecodeError::Malformed("utf-8")),
                    }
                }
            }
            PushKind::Disconnection => self.lose("connection closed"),
            _ => {}
        }
    }

    /// Subscribes and loads the scripts, within the operation timeout; on success the
    /// replica resynchronises (reads every record, then publishes what it missed).
    async fn connect(&mut self) {
        let channel = self.layout.channel();
        let mut connection = self.connection.clone();
        let attempt = async move {
            connection.subscribe(&channel).await?;
            redis::pipe()
                .cmd("SCRIPT")
                .arg("LOAD")
                .arg(scripts::BREAKER)
                .ignore()
                .cmd("SCRIPT")
                .arg("LOAD")
                .arg(scripts::BUDGET)
                .ignore()
                .exec_async(&mut connection)
                .await?;
            RedisResult::Ok(())
        };
        match timeout(self.config.op_timeout, attempt).await {
            Ok(Ok(())) => {
                let now = clock::read().now;
                self.replica.set_connected(now, &self.registry, true);
                self.retry_delay = self.config.reconnect_min;
                if self.losses > 0 {
                    tracing::info!(
                        target: "breakwater::fleet",
                        replica = self.replica.id(),
                        "fleet store reachable again; resynchronising"
                    );
                }
            }
            Ok(Err(_)) | Err(_) => {
                self.next_try = Instant::now() + self.retry_delay;
                self.retry_delay = (self.retry_delay * 2).min(self.config.reconnect_max);
            }
        }
    }

    /// Marks the store lost: local state from now on, a warning the first time, and a
    /// try again after the backoff.
    fn lose(&mut self, why: &str) {
        if !self.replica.connected() {
            return;
        }
        self.losses += 1;
        tracing::warn!(
            target: "breakwater::fleet",
            replica = self.replica.id(),
            reason = why,
            "fleet store unreachable; carrying on with local state"
        );
        let now = clock::read().now;
        self.replica.set_connected(now, &self.registry, false);
        self.retry_delay = self.config.reconnect_min;
        self.next_try = Instant::now() + self.retry_delay;
    }

    /// Sends what the replica has to say in one pipeline, bounded by the operation
    /// timeout, and hands every answer back.
    async fn exchange(&mut self) {
        let now = clock::read().now;
        let ops = self.replica.poll_ops(now, &self.registry);
        let pushes = self.replica.budget_pushes(now, &self.registry);
        if ops.is_empty() && pushes.is_empty() {
            return;
        }
        let now_fleet = self.clock.to_fleet(now);
        let mut pipe = redis::pipe();
        pipe.ignore_errors();
        let mut sent = Vec::with_capacity(ops.len() + pushes.len());
        let channel = self.layout.channel();
        let expire = self.config.record_ttl.as_millis().to_string();
        for (key, op) in ops {
            let args = scripts::breaker_args(&op, now_fleet);
            pipe.cmd("EVALSHA")
                .arg(self.breaker_script.get_hash())
                .arg(1)
                .arg(self.layout.breaker(&key))
                .arg(&args[..])
                .arg(&channel)
                .arg(key.to_string())
                .arg(&expire);
            sent.push(Sent::Breaker(key));
        }
        let budget_expire = self.budget_expiry_ms();
        for (scope, push) in pushes {
            let BudgetPush { window, .. } = push;
            pipe.cmd("EVALSHA")
                .arg(self.budget_script.get_hash())
                .arg(1)
                .arg(self.layout.budget(&scope))
                .arg(scripts::budget_args(&push, WINDOWS, budget_expire));
            sent.push(Sent::Budget(scope, window));
        }
        let mut connection = self.connection.clone();
        let answers = timeout(
            self.config.op_timeout,
            pipe.query_async::<Vec<RedisResult<Value>>>(&mut connection),
        )
        .await;
        let now = clock::read().now;
        let answers = match answers {
            Ok(Ok(answers)) if answers.len() == sent.len() => answers,
            failed => {
                for entry in sent {
                    self.failed(now, entry);
                }
                let why = match failed {
                    Err(_) => "operation timed out",
                    Ok(Err(_)) => "connection error",
                    Ok(Ok(_)) => "pipeline answer of the wrong length",
                };
                self.lose(why);
                return;
            }
        };
        let mut scripts_lost = false;
        for (entry, answer) in sent.into_iter().zip(answers) {
            match answer {
                Ok(value) => self.answered(now, entry, &value),
                Err(error) => {
                    scripts_lost |= error.code() == Some("NOSCRIPT");
                    self.failed(now, entry);
                }
            }
        }
        if scripts_lost {
            // Redis restarted between two of our operations: start over.
            self.lose("scripts missing (store restarted)");
        }
    }

    fn answered(&mut self, now: Time, entry: Sent, value: &Value) {
        match entry {
            Sent::Breaker(key) => {
                let Some(breaker) = self.registry.breaker(&key) else {
                    return;
                };
                match scripts::breaker_reply(value) {
                    Ok(reply) => self.replica.on_reply(now, &key, &breaker, Ok(reply)),
                    Err(error) => {
                        self.count(error);
                        self.replica.on_reply(now, &key, &breaker, Err(OpFailed));
                    }
                }
            }
            Sent::Budget(scope, window) => match scripts::budget_reply(value, window, WINDOWS) {
                Ok(totals) => {
                    self.replica
                        .on_budget_reply(now, &self.registry, &scope, Ok(&totals));
                }
                Err(error) => {
                    self.count(error);
                    self.replica
                        .on_budget_reply(now, &self.registry, &scope, Err(OpFailed));
                }
            },
        }
    }

    fn failed(&mut self, now: Time, entry: Sent) {
        match entry {
            Sent::Breaker(key) => {
                if let Some(breaker) = self.registry.breaker(&key) {
                    self.replica.on_reply(now, &key, &breaker, Err(OpFailed));
                }
            }
            Sent::Budget(scope, _) => {
                self.replica
                    .on_budget_reply(now, &self.registry, &scope, Err(OpFailed));
            }
        }
    }

    fn count(&mut self, error: AnswerError) {
        match error {
            AnswerError::Decode(error) => self.replica.count_decode_error(error),
            AnswerError::Shape(field) => self
                .replica
                .count_decode_error(DecodeError::Malformed(field)),
        }
    }

    /// Budget hashes outlive their last push by two ttls (every entry has expired by
    /// then).
    fn budget_expiry_ms(&self) -> u64 {
        match self.registry.config().budget {
            Some(BudgetConfig::Ratio(ratio)) => {
                u64::try_from(ratio.ttl.as_millis().saturating_mul(2))
                    .unwrap_or(u64::MAX)
                    .max(1)
            }
            _ => 1000,
        }
    }
}
