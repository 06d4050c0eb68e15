//! Fleet-wide breakers, Retry-After cooldowns and a retry budget on Redis: every
//! replica attached to the same Redis namespace shares what its
//! [`Registry`](breakwater_core::Registry) learns.
//!
//! ```no_run
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! use std::sync::Arc;
//! use breakwater_core::{Registry, RegistryConfig};
//! use breakwater_redis::{FleetSync, RedisFleetConfig};
//!
//! let registry = Arc::new(Registry::new(RegistryConfig::default())?);
//! let fleet = FleetSync::start(Arc::clone(&registry), RedisFleetConfig {
//!     url: "redis://10.0.0.5:6379/".into(),
//!     namespace: "chat-prod".into(),
//!     ..RedisFleetConfig::default()
//! })?;
//! // ... bind routes to `registry` (or pass a `breakwater_http::Client`'s
//! // `client.registry().clone()`) and serve requests ...
//! fleet.stop().await;
//! # Ok(()) }
//! ```
//!
//! # What is shared, and how
//!
//! The logic is [`breakwater_core::fleet`] (pure, and what the simulator measures);
//! this crate is its driver: a tokio task ([`FleetSync`]) with one
//! [`ConnectionManager`](redis::aio::ConnectionManager) (RESP3, so pub/sub shares the
//! connection), two Lua scripts ([`scripts`]) that make each store operation atomic,
//! and the [`Layout`] of names.
//!
//! - **Breakers.** A local trip, close or isolation is published as soon as the task
//!   sees it (it looks at the local breakers every `scan_ms`, 10 ms by default: a lock
//!   per breaker, never the closed-state hot path). The script gives the key a new
//!   epoch and publishes the record on the namespace's channel; every replica applies
//!   a record whose epoch is newer than the one it knows.
//! - **Cooldowns.** A Retry-After on one replica cools the key down on all of them,
//!   until the same instant (wall clock).
//! - **Half-open probes** are fleet-wide: `half_open_probes` in total, claimed from the
//!   store by the replicas that have a call to probe with.
//! - **The retry budget** (the ratio kind) is one budget for the fleet: each replica
//!   checks a local mirror synchronously and syncs its contribution every
//!   `staleness_ms`. The throttle and quota kinds stay per replica.
//!
//! # Push and poll
//!
//! Changes are **pushed** (Redis pub/sub) so that a trip reaches the other replicas in
//! about one round trip; and every record is **polled** every `staleness_ms` (100 ms by
//! default, one pipelined round trip per replica) because pub/sub delivers at most once:
//! a message sent while a replica was reconnecting is lost for it, and the poll is what
//! bounds its staleness then. Keyspace notifications were not used: they need a server
//! setting (`notify-keyspace-events`) that managed Redis often forbids, and carry no
//! value (a read would follow each anyway).
//!
//! # When Redis is slow or down
//!
//! Requests never wait on Redis: admits and records are local. The task bounds every
//! operation by `op_timeout_ms` (20 ms by default); on a failure it logs the loss once
//! (`warn`, target `breakwater::fleet`), puts every breaker back on local behaviour
//! (half-open probes no longer wait for grants), and tries again after 50 ms, doubling
//! up to 2 s. When Redis answers again it re-reads every record and publishes what the
//! fleet missed (a store that restarted empty gets the open keys again).
//!
//! # Names
//!
//! See [`Layout`]: `breakwater:v1:{namespace}:breaker:{provider}/{model}`,
//! `breakwater:v1:{namespace}:budget:{scope}`, channel `breakwater:v1:{namespace}:events`.
//! Records and messages carry a format version; one this replica cannot read is dropped
//! and counted ([`FleetStats::foreign`](breakwater_core::fleet::FleetStats::foreign)),
//! never applied.

mod config;
mod layout;
pub mod scripts;
mod sync;

pub use config::{ConfigError, RedisFleetConfig};
pub use layout::Layout;
pub use sync::{FleetStatus, FleetSync, StartError};
