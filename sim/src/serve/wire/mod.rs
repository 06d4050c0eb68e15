//! The three wire formats, server side: read a request, write an answer or an error.
//!
//! Each provider module follows that provider's published API reference (and what
//! `breakwater-http`'s client-side parsers read), as pure functions of bytes and values:
//! no I/O and no model here. [`Wire`] picks one at run time.

mod anthropic;
mod gemini;
mod openai;

use std::time::Duration;

use hyper::HeaderMap;
use serde_json::Value;

use crate::scenario::Limits;

/// A provider API's wire format.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Wire {
    /// Anthropic Messages.
    Anthropic,
    /// OpenAI Chat Completions.
    OpenAi,
    /// Gemini `generateContent`.
    Gemini,
}

/// What a request asks for, read from its body (and, for Gemini, its path).
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Ask {
    /// The model named in the body; `None` for Gemini, whose path names it.
    pub(crate) model: Option<String>,
    /// The most output tokens the caller accepts, if it said.
    pub(crate) max_tokens: Option<u32>,
    /// Bytes of prompt text (system and messages): the input-token estimate is a
    /// quarter of it.
    pub(crate) text_bytes: usize,
    /// A streamed answer was asked for.
    pub(crate) stream: bool,
    /// OpenAI: `stream_options.include_usage`.
    pub(crate) include_usage: bool,
}

/// Why a request gets an error answer.
#[derive(Clone, Debug, PartialEq)]
pub(crate) enum Problem {
    /// No API key, or an empty one (401).
    Unauthenticated,
    /// The request is malformed (400).
    BadRequest(String),
    /// No such model or provider (404).
    NotFound(String),
    /// The path exists, not for this method (405).
    MethodNotAllowed,
    /// The body is larger than the limit (413).
    TooLarge {
        /// The limit, in bytes.
        limit: usize,
    },
    /// The model's rate limit (429), with the wait in real time.
    RateLimited {
        /// The wait the bucket implies, divided by the speed.
        retry_after: Duration,
        /// The key's per-minute limits, for the rate-limit headers.
        limits: Limits,
    },
    /// A quota storm: permanent until someone pays.
    QuotaExhausted,
    /// Overloaded: 529 (Anthropic) or 503.
    Overloaded,
    /// A failure status (a flaky provider's).
    ServerError {
        /// The HTTP status.
        status: u16,
    },
}

/// An error answer.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct Reply {
    /// The HTTP status.
    pub(crate) status: u16,
    /// Extra headers (`retry-after`, rate-limit headers).
    pub(crate) headers: Vec<(&'static str, String)>,
    /// The JSON body.
    pub(crate) body: Value,
}

/// Why generation stopped.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Stop {
    /// The model finished (`end_turn`, `stop`, `STOP`).
    Finished,
    /// It reached the caller's limit (`max_tokens`, `length`, `MAX_TOKENS`).
    MaxTokens,
}

/// A successful answer, less its text.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Answer {
    /// The response id (`msg_…`, `chatcmpl-…`, `responseId`).
    pub(crate) id: String,
    /// The model, as the request named it.
    pub(crate) model: String,
    /// Input tokens billed.
    pub(crate) input_tokens: u32,
    /// Output tokens billed.
    pub(crate) output_tokens: u32,
    /// Why it stopped.
    pub(crate) stop: Stop,
    /// OpenAI streams: send the usage chunk.
    pub(crate) include_usage: bool,
    /// Unix seconds, for OpenAI's `created`.
    pub(crate) created: u64,
}

impl Wire {
    /// Checks the headers every request needs (the key; Anthropic's version), before
    /// the body is read.
    pub(crate) fn check_headers(
        self,
        headers: &HeaderMap,
        query: Option<&str>,
    ) -> Result<(), Problem> {
        let key = |name: &str| {
            headers
                .get(name)
                .and_then(|v| v.to_str().ok())
                .map(str::trim)
                .filter(|v| !v.is_empty())
        };
        let bearer = || {
            key("authorization")
                .and_then(|v| v.strip_prefix("Bearer "))
                .filter(|token| !token.trim().is_empty())
        };
        match self {
            Wire::Anthropic => {
                // Newer Anthropic SDKs send the key as a bearer token.
                key("x-api-key")
                    .or_else(bearer)
                    .ok_or(Problem::Unauthenticated)?;
                if key("anthropic-version").is_none() {
                    return Err(Problem::BadRequest(
                        "anthropic-version: header is required".into(),
                    ));
                }
                Ok(())
            }
            Wire::OpenAi => bearer().map(|_| ()).ok_or(Problem::Unauthenticated),
            Wire::Gemini => {
                let in_query = super::route::query_param(query, "key").filter(|k| !k.is_empty());
                if key("x-goog-api-key").is_some() || in_query.is_some() {
                    Ok(())
                } else {
                    Err(Problem::Unauthenticated)
                }
            }
        }
    }

    /// Reads a request body.
    pub(crate) fn parse(self, body: &[u8]) -> Result<Ask, Problem> {
        let value: Value = serde_json::from_slice(body)
            .map_err(|e| Problem::BadRequest(format!("the body is not JSON: {e}")))?;
        if !value.is_object() {
            return Err(Problem::BadRequest("the body is not a JSON object".into()));
        }
        match self {
            Wire::Anthropic => anthropic::parse(&value),
            Wire::OpenAi => openai::parse(&value),
            Wire::Gemini => gemini::parse(&value),
        }
    }

    /// The error answer for `problem`.
    pub(crate) fn error(self, problem: &Problem) -> Reply {
        match self {
            Wire::Anthropic => anthropic::error(problem),
            Wire::OpenAi => openai::error(problem),
            Wire::Gemini => gemini::error(problem),
        }
    }

    /// The non-streaming success body.
    pub(crate) fn body(self, answer: &Answer, text: &str) -> Value {
        match self {
            Wire::Anthropic => anthropic::body(answer, text),
            Wire::OpenAi => openai::body(answer, text),
            Wire::Gemini => gemini::body(answer, text),
        }
    }

    /// The SSE events that open a stream, before any text.
    pub(crate) fn stream_head(self, answer: &Answer) -> String {
        match self {
            Wire::Anthropic => anthropic::stream_head(answer),
            Wire::OpenAi => openai::stream_head(answer),
            Wire::Gemini => String::new(),
        }
    }

    /// The SSE event carrying the next piece of text.
    pub(crate) fn stream_text(self, answer: &Answer, text: &str) -> String {
        match self {
            Wire::Anthropic => anthropic::stream_text(text),
            Wire::OpenAi => openai::stream_text(answer, text),
            Wire::Gemini => gemini::stream_text(answer, text),
        }
    }

    /// The SSE events that close a stream.
    pub(crate) fn stream_tail(self, answer: &Answer) -> String {
        match self {
            Wire::Anthropic => anthropic::stream_tail(answer),
            Wire::OpenAi => openai::stream_tail(answer),
            Wire::Gemini => gemini::stream_tail(answer),
        }
    }
}

/// One SSE event: an optional `event:` line and one `data:` line.
pub(crate) fn sse(event: Option<&str>, data: &Value) -> String {
    match event {
        Some(event) => format!("event: {event}\ndata: {data}\n\n"),
        None => format!("data: {data}\n\n"),
    }
}

/// The text of a message's `content`: a string, or an array of blocks whose `text`
/// fields count (images and tool blocks carry none).
pub(crate) fn content_bytes(content: Option<&Value>, what: &str) -> Result<usize, Problem> {
    match content {
        None | Some(Value::Null) => Ok(0),
        Some(Value::String(s)) => Ok(s.len()),
        Some(Value::Array(blocks)) => Ok(blocks
            .iter()
            .map(|b| b.get("text").and_then(Value::as_str).map_or(0, str::len))
            .sum()),
        Some(_) => Err(Problem::BadRequest(format!(
            "{what} must be a string or an array of content blocks"
        ))),
    }
}

/// A required non-empty string field.
pub(crate) fn required_str(value: &Value, field: &str) -> Result<String, Problem> {
    match value.get(field) {
        Some(Value::String(s)) if !s.is_empty() => Ok(s.clone()),
        Some(Value::String(_)) => Err(Problem::BadRequest(format!("{field}: must not be empty"))),
        Some(_) => Err(Problem::BadRequest(format!("{field}: must be a string"))),
        None => Err(Problem::BadRequest(format!("{field}: field required"))),
    }
}

/// An optional token limit: a positive integer that fits 32 bits.
pub(crate) fn token_limit(value: Option<&Value>, field: &str) -> Result<Option<u32>, Problem> {
    match value {
        None | Some(Value::Null) => Ok(None),
        Some(v) => match v.as_u64().and_then(|n| u32::try_from(n).ok()) {
            Some(n) if n > 0 => Ok(Some(n)),
            _ => Err(Problem::BadRequest(format!(
                "{field}: must be a positive integer"
            ))),
        },
    }
}

/// An optional boolean.
pub(crate) fn flag(value: Option<&Value>, field: &str) -> Result<bool, Problem> {
    match value {
        None | Some(Value::Null) => Ok(false),
        Some(Value::Bool(b)) => Ok(*b),
        Some(_) => Err(Problem::BadRequest(format!("{field}: must be a boolean"))),
    }
}

/// A real wait in whole seconds, rounded up, at least 1: the `retry-after` value.
pub(crate) fn whole_secs(wait: Duration) -> u64 {
    (wait.as_secs() + u64::from(wait.subsec_nanos() > 0)).max(1)
}

/// A real wait in milliseconds, rounded up, at least 1: the `retry-after-ms` value.
pub(crate) fn millis(wait: Duration) -> u64 {
    let ms = wait.as_nanos().div_ceil(1_000_000).max(1);
    u64::try_from(ms).unwrap_or(u64::MAX)
}

#[cfg(test)]
mod tests;
