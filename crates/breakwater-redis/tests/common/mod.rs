//! A real `redis-server` per test: started on a free loopback port in a temp directory,
//! with persistence off, and stopped (with its directory removed) when dropped.
#![allow(dead_code, unreachable_pub, clippy::unwrap_used)]

use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

use breakwater_core::backoff::{Backoff, Jitter};
use breakwater_core::budget::{BudgetConfig, RatioConfig};
use breakwater_core::{Breaker, BreakerConfig, Key, Registry, RegistryConfig, Time};
use breakwater_redis::{FleetSync, RedisFleetConfig};

const INSTALL: &str = "redis-server is not installed: the breakwater-redis tests run a real Redis. \
     Install it with `apt-get install -y redis-server` (Debian/Ubuntu; `.ci/run` does this when it is \
     missing) or `brew install redis` (macOS), then run the tests again.";

/// A running `redis-server`.
pub struct RedisServer {
    child: Option<Child>,
    port: u16,
    dir: PathBuf,
}

impl RedisServer {
    /// Starts one on a free port. Panics, saying how to install it, if the binary is
    /// missing: these tests never skip silently.
    pub fn start() -> RedisServer {
        let port = free_port();
        let dir = std::env::temp_dir().join(format!("bw-redis-{}-{port}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("temp dir");
        let mut server = RedisServer {
            child: None,
            port,
            dir,
        };
        server.spawn();
        server
    }

    fn spawn(&mut self) {
        let child = Command::new("redis-server")
            .args(["--port", &self.port.to_string()])
            .args(["--bind", "127.0.0.1"])
            .args(["--save", ""])
            .args(["--appendonly", "no"])
            .args(["--daemonize", "no"])
            .args(["--loglevel", "warning"])
            .arg("--dir")
            .arg(&self.dir)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn();
        let child = match child {
            Ok(child) => child,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => panic!("{INSTALL}"),
            Err(e) => panic!("cannot start redis-server: {e}"),
        };
        self.child = Some(child);
        self.wait_ready();
    }

    fn wait_ready(&self) {
        for _ in 0..500 {
            if TcpStream::connect(("127.0.0.1", self.port)).is_ok() {
                return;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        panic!(
            "redis-server did not listen on port {} within 5 s",
            self.port
        );
    }

    /// `redis://127.0.0.1:{port}/`.
    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}/", self.port)
    }

    /// SIGKILL, and wait for it to die (its data is gone: persistence is off).
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts it again on the same port, empty.
    pub fn restart(&mut self) {
        self.kill();
        self.spawn();
    }

    /// SIGSTOP: it hangs, connections stay open.
    pub fn pause(&self) {
        self.signal("-STOP");
    }

    /// SIGCONT.
    pub fn resume(&self) {
        self.signal("-CONT");
    }

    fn signal(&self, signal: &str) {
        let pid = self.child.as_ref().expect("running").id().to_string();
        let status = Command::new("kill")
            .args([signal, &pid])
            .status()
            .expect("kill");
        assert!(status.success(), "kill {signal} {pid}");
    }

    /// A plain client for looking at what the fleet wrote.
    pub async fn client(&self) -> redis::aio::MultiplexedConnection {
        redis::Client::open(self.url())
            .unwrap()
            .get_multiplexed_async_connection()
            .await
            .unwrap()
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        if let Some(child) = &self.child {
            // A paused server would not die of SIGKILL until continued on some systems.
            let _ = Command::new("kill")
                .args(["-CONT", &child.id().to_string()])
                .status();
        }
        self.kill();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn free_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
    listener.local_addr().expect("addr").port()
}

/// The key the tests trip.
pub fn key() -> Key {
    Key::new("anthropic", "claude-sonnet-4-5")
}

/// Three failures trip a breaker; it opens for `open_ms` (no jitter, doubling); two
/// probes, two successes close it. A ratio budget with `reserve` retries (10 s ttl) and
/// a ratio of 0.1.
pub fn registry_with(open_ms: u64, reserve: u32) -> Arc<Registry> {
    Arc::new(
        Registry::new(RegistryConfig {
            breaker: Some(BreakerConfig {
                consecutive_failures: Some(3),
                window: None,
                failure_rate: None,
                min_calls: 0,
                open: Backoff::exponential(Duration::from_millis(open_ms), Duration::from_secs(60))
                    .with_jitter(Jitter::None),
                half_open_probes: 2,
                close_after: 2,
                ..BreakerConfig::default()
            }),
            budget: Some(BudgetConfig::Ratio(RatioConfig {
                ratio: 0.1,
                min_per_sec: reserve / 10,
                ttl: Duration::from_secs(10),
            })),
            ..RegistryConfig::default()
        })
        .unwrap(),
    )
}

/// [`registry_with`] a 60 s open period and a reserve of 10 retries.
pub fn registry() -> Arc<Registry> {
    registry_with(60_000, 10)
}

/// A fleet config for `server` under `namespace`, with a generous operation timeout:
/// on a loaded test machine a 20 ms bound is sometimes missed, which (correctly) sends
/// the replica back to local state; the tests of sharing want it connected throughout.
/// The fault tests use [`RedisFleetConfig::default`]'s 20 ms.
pub fn config(server: &RedisServer, namespace: &str) -> RedisFleetConfig {
    RedisFleetConfig {
        url: server.url(),
        namespace: namespace.to_owned(),
        op_timeout: Duration::from_secs(1),
        ..RedisFleetConfig::default()
    }
}

/// Starts a sync for `registry` and waits until it is connected.
pub async fn attach(registry: &Arc<Registry>, config: RedisFleetConfig) -> FleetSync {
    let sync = FleetSync::start(Arc::clone(registry), config).unwrap();
    wait_for("the fleet sync to connect", || sync.status().connected).await;
    sync
}

/// Polls `condition` every 5 ms for up to 5 s; panics with `what` if it never holds.
pub async fn wait_for(what: &str, mut condition: impl FnMut() -> bool) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    while !condition() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

/// This process's time, as the fleet sync reads it.
pub fn now() -> Time {
    breakwater_http::clock::read().now
}

/// Three failures in a row: trips the breaker.
pub fn trip(breaker: &Breaker) {
    for _ in 0..3 {
        let now = now();
        if let breakwater_core::Admit::Admitted(p) = breaker.admit(now) {
            breaker.record(
                now,
                p,
                &breakwater_core::Class::Retriable,
                Duration::from_millis(5),
            );
        }
    }
}

/// Whether the breaker is open (or cooling down: rejected with a known end).
pub fn is_open(breaker: &Breaker) -> bool {
    matches!(breaker.state(now()), breakwater_core::State::Open { .. })
}
