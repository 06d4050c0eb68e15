//! Default size limits for what the adapter reads from a provider.
//!
//! Nothing here reads a body yet (the networking half of the adapter comes later); these
//! are the numbers it will use, in one place, so that the client, the SSE parser and the
//! tests agree.

/// How many bytes of an error response body (a non-2xx status) are read before the rest
/// is dropped: 64 KiB. Error bodies are small JSON objects, or an HTML page from a proxy
/// in front of the provider; more than this is never needed to classify one.
pub const DEFAULT_ERROR_BODY_LIMIT: usize = 64 * 1024;

/// How many bytes of a successful, non-streaming response body are read before the
/// response is treated as malformed: 8 MiB.
pub const DEFAULT_RESPONSE_LIMIT: usize = 8 * 1024 * 1024;

/// The largest single SSE line, and the largest event (its type plus its data), that
/// [`SseParser`](crate::sse::SseParser) buffers before it fails with a typed error: 1 MiB.
pub const DEFAULT_SSE_MAX_BYTES: usize = 1024 * 1024;
