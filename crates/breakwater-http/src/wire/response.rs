//! What comes back: completions, provider errors, stream items and parse errors.

use std::fmt;
use std::time::Duration;

use serde_json::Value;

use crate::quote;
use crate::sse::{SseError, SseEvent};

/// Tokens counted by the provider.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct TokenUsage {
    /// Prompt tokens; 0 when the provider did not say.
    pub input: u64,
    /// Generated tokens, as billed; 0 when the provider did not say.
    pub output: u64,
}

/// A successful, complete answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Completion {
    /// The generated text.
    pub text: String,
    /// Why generation stopped, in the provider's own words (`end_turn`, `stop`,
    /// `MAX_TOKENS`, ...), if it said.
    pub stop_reason: Option<String>,
    /// Token counts.
    pub usage: TokenUsage,
}

/// A provider's error response, read as far as it can be.
///
/// [`parse_error`](super::Provider::parse_error) never fails: a body that is not the
/// provider's error JSON (an HTML page from a proxy, nothing, garbage) gives `code: None`
/// with `recognized: false`, and `html` says whether it looked like HTML.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProviderError {
    /// The HTTP status (200 for an error event inside a stream or body).
    pub status: u16,
    /// The provider's error string, unchanged: Anthropic's `error.type`
    /// (`overloaded_error`), OpenAI's `error.code` or else `error.type`
    /// (`insufficient_quota`, `rate_limit_exceeded`), Gemini's `error.status`
    /// (`RESOURCE_EXHAUSTED`).
    pub code: Option<String>,
    /// A second, finer string where the provider gives one: Anthropic's
    /// `error.details.error_code`, OpenAI's `error.type`, or the `quotaId` of Gemini's
    /// first `QuotaFailure` violation (it tells a per-minute quota from a per-day one).
    pub detail: Option<String>,
    /// The human-readable message.
    pub message: Option<String>,
    /// A delay the body asked for (Gemini's `RetryInfo.retryDelay`). Retry headers are
    /// read elsewhere.
    pub retry_delay: Option<Duration>,
    /// The body looked like HTML (it starts with `<` after whitespace).
    pub html: bool,
    /// The body was the provider's documented error JSON.
    pub recognized: bool,
}

impl ProviderError {
    /// The error for a body that is not the provider's error JSON.
    pub(crate) fn unrecognized(status: u16, body: &[u8]) -> Self {
        Self {
            status,
            code: None,
            detail: None,
            message: None,
            retry_delay: None,
            html: body.trim_ascii_start().first() == Some(&b'<'),
            recognized: false,
        }
    }

    /// The same error with its code, detail and message cut to a bounded excerpt
    /// (see [`crate::quote`]): what a provider says is quoted in errors and logs.
    pub(crate) fn bounded(mut self) -> Self {
        self.code = quote::bound_opt(self.code);
        self.detail = quote::bound_opt(self.detail);
        self.message = quote::bound_opt(self.message);
        self
    }

    /// A recognized error with a code and a message.
    pub(crate) fn known(status: u16, code: Option<&str>, message: Option<&str>) -> Self {
        Self {
            status,
            code: code.map(str::to_owned),
            detail: None,
            message: message.map(str::to_owned),
            retry_delay: None,
            html: false,
            recognized: true,
        }
    }
}

impl fmt::Display for ProviderError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "status {}", self.status)?;
        if let Some(code) = &self.code {
            write!(f, " {code}")?;
        }
        if let Some(message) = &self.message {
            write!(f, ": {message}")?;
        }
        if self.html {
            f.write_str(" (HTML body)")?;
        } else if !self.recognized {
            f.write_str(" (unrecognized body)")?;
        }
        Ok(())
    }
}

/// One thing a stream said, decoded from one SSE event by a stream decoder.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StreamItem {
    /// Generated text, in order.
    Text(String),
    /// Token counts so far. Each `Some` replaces the earlier value of that field (the
    /// providers send totals, not increments).
    Usage {
        /// Prompt tokens, if this event said.
        input: Option<u64>,
        /// Generated tokens so far, if this event said.
        output: Option<u64>,
    },
    /// Generation stopped, for this reason (in the provider's words). The stream may
    /// still carry usage after it.
    Stop {
        /// The provider's stop or finish reason.
        reason: String,
    },
    /// The provider reported an error inside a stream that began with a 200: the
    /// stream is over, whatever text came before.
    Error {
        /// The provider's error string, as in [`ProviderError::code`].
        code: Option<String>,
        /// The message.
        message: Option<String>,
    },
    /// The provider's end-of-stream marker (Anthropic `message_stop`, OpenAI `[DONE]`;
    /// for Gemini, which has none, the decoder's `finish` after a finish reason).
    Done,
    /// An event that carries nothing for us (`ping`, a role-only chunk, a tool or
    /// thinking delta, an event type we do not know, anything after `Done`).
    Ignored,
}

/// Why a body or a stream event could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum WireError {
    /// Not the JSON the provider documents: truncated, not JSON, or a required field
    /// missing or of the wrong type.
    #[error("malformed body: {}", quote::excerpt(.0))]
    Malformed(String),
    /// A success status whose body is the provider's error object.
    #[error("error body with a success status: {0}")]
    ErrorBody(ProviderError),
    /// An SSE event held invalid UTF-8 (see [`SseEvent::lossy`]).
    #[error("stream event with invalid UTF-8")]
    InvalidUtf8,
    /// The stream ended before the provider's end-of-stream marker.
    #[error("stream ended before its end marker")]
    Incomplete,
    /// The SSE layer failed.
    #[error(transparent)]
    Sse(#[from] SseError),
}

/// Parses a body or an event's data as JSON.
pub(crate) fn json(bytes: &[u8]) -> Result<Value, WireError> {
    serde_json::from_slice(bytes).map_err(|e| WireError::Malformed(e.to_string()))
}

/// Parses an SSE event's data as JSON, refusing events that needed UTF-8 replacement.
pub(crate) fn event_json(event: &SseEvent) -> Result<Value, WireError> {
    if event.lossy {
        return Err(WireError::InvalidUtf8);
    }
    json(event.data.as_bytes())
}

/// What [`Value::pointer`] finds at `pointer` (RFC 6901), without its allocations:
/// serde_json unescapes every segment into a new `String`, which cost an answer's parse
/// sixteen allocations. Segments with escapes (`~0`, `~1`) take serde_json's path.
pub(crate) fn at<'a>(value: &'a Value, pointer: &str) -> Option<&'a Value> {
    if pointer.contains('~') {
        return value.pointer(pointer);
    }
    if pointer.is_empty() {
        return Some(value);
    }
    pointer
        .strip_prefix('/')?
        .split('/')
        .try_fold(value, |value, segment| match value {
            Value::Object(map) => map.get(segment),
            Value::Array(items) => index(segment).and_then(|i| items.get(i)),
            _ => None,
        })
}

/// An array index as RFC 6901 writes one: digits, no sign, no leading zero.
fn index(segment: &str) -> Option<usize> {
    let digits = !segment.is_empty() && segment.bytes().all(|b| b.is_ascii_digit());
    if !digits || (segment.len() > 1 && segment.starts_with('0')) {
        return None;
    }
    segment.parse().ok()
}

/// The string at `pointer`, if it is one.
pub(crate) fn str_at<'a>(value: &'a Value, pointer: &str) -> Option<&'a str> {
    at(value, pointer).and_then(Value::as_str)
}

/// The unsigned integer at `pointer`, if it is one.
pub(crate) fn u64_at(value: &Value, pointer: &str) -> Option<u64> {
    at(value, pointer).and_then(Value::as_u64)
}

/// The string at `pointer`; absent or null is `None`, another type is malformed.
pub(crate) fn opt_str<'a>(value: &'a Value, pointer: &str) -> Result<Option<&'a str>, WireError> {
    match at(value, pointer) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s)),
        Some(_) => Err(WireError::Malformed(format!("{pointer} is not a string"))),
    }
}

/// The count at `pointer`; absent or null is `None`, another type is malformed.
pub(crate) fn opt_u64(value: &Value, pointer: &str) -> Result<Option<u64>, WireError> {
    match at(value, pointer) {
        None | Some(Value::Null) => Ok(None),
        Some(v) => v
            .as_u64()
            .map(Some)
            .ok_or_else(|| WireError::Malformed(format!("{pointer} is not a count"))),
    }
}

/// The array at `pointer`; absent or null is empty, another type is malformed.
pub(crate) fn opt_array<'a>(value: &'a Value, pointer: &str) -> Result<&'a [Value], WireError> {
    match at(value, pointer) {
        None | Some(Value::Null) => Ok(&[]),
        Some(Value::Array(items)) => Ok(items),
        Some(_) => Err(WireError::Malformed(format!("{pointer} is not an array"))),
    }
}

/// A `Usage` item from two optional counts, or `None` when both are absent.
pub(crate) fn usage_item(input: Option<u64>, output: Option<u64>) -> Option<StreamItem> {
    (input.is_some() || output.is_some()).then_some(StreamItem::Usage { input, output })
}

/// The items of one event, or `[Ignored]` when there are none.
pub(crate) fn or_ignored(items: Vec<StreamItem>) -> Vec<StreamItem> {
    if items.is_empty() {
        vec![StreamItem::Ignored]
    } else {
        items
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;
    use serde_json::json;

    use super::*;

    fn document() -> Value {
        json!({
            "content": [{"type": "text", "text": "hi"}, {"type": "tool_use"}],
            "usage": {"input_tokens": 3, "": {"x": 1}},
            "a/b": 1, "m~n": 2, "0": "zero", "10": [0, 1, 2]
        })
    }

    #[test]
    fn finds_what_serde_json_finds() {
        let doc = document();
        for pointer in [
            "",
            "/",
            "/content",
            "/content/0/text",
            "/content/1/type",
            "/content/2",
            "/content/01",
            "/content/+1",
            "/content/-1",
            "/usage/input_tokens",
            "/usage//x",
            "/a~1b",
            "/m~0n",
            "/0",
            "/10/2",
            "/10/02",
            "content",
            "/nope/deeper",
        ] {
            assert_eq!(at(&doc, pointer), doc.pointer(pointer), "{pointer:?}");
        }
    }

    proptest! {
        #[test]
        fn agrees_with_serde_json_on_any_pointer(pointer in "(/(content|usage|text|type|0|1|01|10|2|~0|~1|a~1b|m~0n|input_tokens|)){0,4}") {
            let doc = document();
            prop_assert_eq!(at(&doc, &pointer), doc.pointer(&pointer));
        }
    }
}
