//! Breakwater's I/O adapter: tokio and reqwest driving the core's request plan.
//!
//! This crate turns a provider-neutral [`Request`](wire::Request) into each provider's
//! HTTP request, sends it, turns what comes back into the core's outcomes, and carries
//! out the plan's actions (send, wait, notify, finish). It holds no policy: every
//! retry, wait, fallback and degradation is decided by [`breakwater_core::Plan`].
//!
//! - [`client`]: the [`Client`], built once per process, whose `complete` drives a plan;
//!   [`CallOptions`] name the tenant and, for queued work, the idempotency key.
//! - [`cache`]: the TTL [`ResponseCache`] of successful answers
//!   (moka), served flagged degraded, with their age, when no provider answers.
//! - [`queue`]: the durable [`Queue`] of deferrable requests (SQLite,
//!   committed before the caller hears of it) and its drain, which replays them once
//!   their routes admit again.
//! - [`batch`]: the providers' batch APIs (Anthropic Message Batches, OpenAI Batch)
//!   for queued deferrable work, at half the price.
//! - [`outcome`]: HTTP responses and transport errors into core [`Outcome`](breakwater_core::Outcome)s.
//! - [`clock`]: the adapter's single clock read.
//! - [`sse`]: an incremental Server-Sent Events parser that follows the WHATWG rules.
//! - [`wire`]: the Anthropic, OpenAI and Gemini wire formats, as pure functions.
//! - [`limits`]: the default body and event size limits.
//! - [`tower`]: a tower `Layer` that runs the core's plan around any `Service`.
//! - [`middleware`]: the same for `reqwest-middleware` clients (feature `middleware`, on by default).
//! - [`telemetry`]: metrics through the `metrics` facade, and their names.
//! - [`validate`]: output validators (JSON, JSON Schema, your own) that route steps name.
//!
//! Real providers speak HTTPS: the default `rustls-tls` feature gives reqwest rustls
//! with webpki roots. Without default features there is no TLS, which is all the
//! loopback tests need.
//!
//! A streaming attempt, from rendered request to decoded items:
//!
//! ```
//! use breakwater_http::sse::SseParser;
//! use breakwater_http::wire::{Provider, Request, StreamItem};
//!
//! let request = Request::new(256).system("Be brief.").user("Say hello.");
//! let provider = Provider::Anthropic;
//! let rendered = provider.render(&request, "claude-sonnet-4-5", None, true);
//! assert_eq!(rendered.path, "/v1/messages");
//! // The client sends `rendered` to the provider's base URL, with `provider.auth_header(key)`.
//!
//! // ... and feeds the response body, chunk by chunk, through the SSE parser and decoder:
//! let body = b"event: content_block_delta\n\
//!              data: {\"type\":\"content_block_delta\",\"index\":0,\
//!              \"delta\":{\"type\":\"text_delta\",\"text\":\"Hello\"}}\n\n\
//!              event: message_stop\ndata: {\"type\":\"message_stop\"}\n\n";
//! let mut parser = SseParser::new();
//! let mut decoder = provider.stream_decoder();
//! let mut events = Vec::new();
//! parser.push(body, &mut events)?;
//! let mut items = Vec::new();
//! for event in &events {
//!     items.extend(decoder.decode(event)?);
//! }
//! assert_eq!(items, [StreamItem::Text("Hello".into()), StreamItem::Done]);
//! assert_eq!(decoder.finish()?, None); // the stream ended as the provider meant it to
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

pub mod batch;
pub mod cache;
pub mod client;
pub mod clock;
pub mod limits;
mod metric_keys;
#[cfg(feature = "middleware")]
pub mod middleware;
pub mod outcome;
pub mod queue;
mod quote;
pub mod sse;
pub mod telemetry;
pub mod tower;
pub mod validate;
pub mod wire;

pub use cache::{CacheHit, ResponseCache};
pub use client::{
    ApiKey, BuildError, CacheUse, CallOptions, Client, ClientBuilder, Completion, Deferred, Error,
    EventStream, StreamEvent,
};
pub use queue::Queue;
