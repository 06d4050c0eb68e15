//! breakwater-sim: the deterministic storm simulator's building blocks.
//!
//! The event engine (owned elsewhere) drives breakwater-core's request plan in virtual
//! time; this library gives it everything around that loop:
//!
//! - [`scenario`]: the strict TOML scenario format and its validation;
//! - [`provider`]: the server models (LLM API, flaky dependency, contended row) as
//!   event-driven state machines, with the storm timeline applied by time;
//! - [`measure`]: per-policy collectors that turn requests and attempts into a
//!   [`measure::PolicyReport`];
//! - [`report`]: the table, JSON, CSV and SVG outputs;
//! - [`dist`]: the random distributions, all drawing from an injected RNG;
//! - [`serve`]: the provider models as a live HTTP server on loopback, in real time.
//! - [`fleet`]: client replicas with local or shared (modelled store) state.
//!
//! Nothing here reads a clock or a global RNG, and no order depends on hash iteration —
//! except `serve`, which runs the same models in real time and reads the clock in one
//! place (`serve::clock`).

pub mod dist;
pub mod engine;
pub mod fleet;
pub mod measure;
pub mod policy;
pub mod provider;
pub mod report;
pub mod scenario;
pub mod serve;
pub mod sweep;
pub mod validate;
pub mod workload;
