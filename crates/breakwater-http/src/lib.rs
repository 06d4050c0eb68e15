//! Breakwater's I/O adapter: the protocol-level half.
//!
//! This crate turns a provider-neutral [`Request`](wire::Request) into each provider's
//! HTTP request, parses each provider's responses, error bodies and Server-Sent Events
//! streams, and nothing more: it holds no policy (the core decides what an outcome means)
//! and does no networking (the client that sends requests comes later).
//!
//! - [`sse`]: an incremental Server-Sent Events parser that follows the WHATWG rules.
//! - [`wire`]: the Anthropic, OpenAI and Gemini wire formats, as pure functions.
//! - [`limits`]: the default body and event size limits.
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

pub mod limits;
pub mod sse;
pub mod wire;
