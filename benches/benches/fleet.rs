//! Fleet-wide state on Redis: the closed-state admit + record with a `FleetSync`
//! attached against local only (the hot path never touches the network, so they
//! should match), and the round trip of a shared-budget sync to a loopback Redis.
//!
//! Needs `redis-server` on the PATH (Debian's package); without it the Redis half is
//! skipped with a note on stderr.

use std::hint::black_box;
use std::net::{TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

use tokio::time::Instant;

use breakwater_core::fleet::{BudgetPush, WINDOWS};
use breakwater_core::{Admit, Class, Key, Registry, RegistryConfig, Time};
use breakwater_redis::{FleetSync, RedisFleetConfig, scripts};
use criterion::Criterion;

struct Server {
    child: Child,
    port: u16,
}

impl Server {
    fn start() -> Option<Server> {
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .ok()?
            .port();
        let child = Command::new("redis-server")
            .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
            .args(["--save", "", "--appendonly", "no", "--loglevel", "warning"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .ok()?;
        let mut server = Server { child, port };
        for _ in 0..500 {
            if TcpStream::connect(("127.0.0.1", port)).is_ok() {
                return Some(server);
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        let _ = server.child.kill();
        None
    }

    fn url(&self) -> String {
        format!("redis://127.0.0.1:{}/", self.port)
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn key() -> Key {
    Key::new("anthropic", "claude-sonnet-4-5")
}

pub(crate) fn fleet(c: &mut Criterion) {
    let Some(server) = Server::start() else {
        eprintln!("fleet benches: redis-server not found or not starting; skipped");
        return;
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .expect("a tokio runtime");
    let mut group = c.benchmark_group("fleet/closed_admit_record");
    let local = Registry::new(RegistryConfig::default()).expect("default registry");
    let attached = Arc::new(Registry::new(RegistryConfig::default()).expect("default registry"));
    let sync = runtime.block_on(async {
        let sync = FleetSync::start(
            Arc::clone(&attached),
            RedisFleetConfig {
                url: server.url(),
                namespace: "bench".to_owned(),
                ..RedisFleetConfig::default()
            },
        )
        .expect("fleet sync");
        for _ in 0..500 {
            if sync.status().connected {
                break;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        sync
    });
    for (name, registry) in [("local", &local), ("redis_attached", &*attached)] {
        let breaker = registry.breaker(&key()).expect("breakers on");
        let now = Time::from_secs(1);
        group.bench_function(name, |b| {
            b.iter(|| {
                if let Admit::Admitted(permit) = breaker.admit(black_box(now)) {
                    breaker.record(now, permit, &Class::Success, Duration::from_millis(1));
                }
            });
        });
    }
    group.finish();
    assert!(
        sync.status().connected,
        "the sync stayed connected during the bench"
    );
    runtime.block_on(sync.stop());

    budget_sync(c, &runtime, &server);
}

/// One shared-budget sync as the `FleetSync` sends it: the budget script with ten
/// windows of contributions, answered with the fleet's totals.
fn budget_sync(c: &mut Criterion, runtime: &tokio::runtime::Runtime, server: &Server) {
    let mut connection = runtime.block_on(async {
        redis::Client::open(server.url())
            .expect("url")
            .get_multiplexed_async_connection()
            .await
            .expect("connect")
    });
    let script = redis::Script::new(scripts::BUDGET);
    let window = 1_700_000_000u64;
    let push = BudgetPush {
        replica: 1,
        window,
        window_nanos: 1_000_000_000,
        contributions: (window - (WINDOWS - 1)..=window)
            .map(|w| (w, 200_000))
            .collect(),
    };
    let args = scripts::budget_args(&push, WINDOWS, 20_000);
    let mut sync_once = || {
        runtime.block_on(async {
            let answer: redis::Value = script
                .key("breakwater:v1:bench:budget:anthropic/*")
                .arg(&args)
                .invoke_async(&mut connection)
                .await
                .expect("budget script");
            black_box(answer);
        });
    };
    // Percentiles, which criterion does not report: 5,000 syncs, one at a time.
    let mut took: Vec<Duration> = (0..5_000)
        .map(|_| {
            let start = Instant::now();
            sync_once();
            start.elapsed()
        })
        .collect();
    took.sort();
    eprintln!(
        "fleet/budget_sync (loopback redis, 5000 round trips): median {:?}, p99 {:?}, max {:?}",
        took[took.len() / 2],
        took[took.len() * 99 / 100],
        took[took.len() - 1]
    );
    let mut group = c.benchmark_group("fleet/budget_sync");
    group.bench_function("loopback_redis", |b| b.iter(&mut sync_once));
    group.finish();
}
