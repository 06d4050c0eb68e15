//! The Gemini API (`generateContent` and `streamGenerateContent`, `v1beta`).
//!
//! - Request: `POST /v1beta/models/{model}:generateContent`, or
//!   `:streamGenerateContent?alt=sse` for a stream; header `x-goog-api-key`; body
//!   `contents: [{role: user|model, parts: [{text}]}]`, `systemInstruction: {parts:
//!   [{text}]}`, `generationConfig: {maxOutputTokens, temperature, stopSequences}`.
//!   A model given as `models/...` loses that prefix; the rest of the name is
//!   percent-encoded as one path segment.
//! - Response: the text of `candidates[0].content.parts[]`, concatenated (parts marked
//!   `thought: true` are skipped); `candidates[0].finishReason`;
//!   `usageMetadata.promptTokenCount`, and `candidatesTokenCount` plus
//!   `thoughtsTokenCount` as output (thinking tokens are billed as output). A prompt
//!   blocked before generation has no candidates: its `promptFeedback.blockReason`
//!   becomes the stop reason, with empty text.
//! - Errors: `{"error": {"code": 429, "message", "status": "RESOURCE_EXHAUSTED",
//!   "details": [...]}}` (also accepted wrapped in a one-element array).
//!   `google.rpc.RetryInfo.retryDelay` becomes [`ProviderError::retry_delay`], and the
//!   `quotaId` of the first `google.rpc.QuotaFailure` violation [`ProviderError::detail`].
//! - Stream: SSE `data:` events, each a whole `GenerateContentResponse` (or an error
//!   object, which becomes [`StreamItem::Error`]). Gemini sends no end marker: the
//!   decoder's [`finish`](StreamDecoder::finish) gives [`StreamItem::Done`] if a finish
//!   reason came, and [`WireError::Incomplete`] if none did.

use std::time::Duration;

use serde_json::Value;

use super::request::{AuthHeader, Prompt, PromptVariant, RenderedRequest, Request};
use super::response::{
    Completion, ProviderError, StreamItem, TokenUsage, WireError, event_json, json, opt_array,
    opt_str, opt_u64, or_ignored, str_at, u64_at, usage_item,
};
use crate::sse::SseEvent;

/// The path and query for `model`.
#[must_use]
pub fn path(model: &str, stream: bool) -> String {
    let model = model.strip_prefix("models/").unwrap_or(model);
    let method = if stream {
        "streamGenerateContent?alt=sse"
    } else {
        "generateContent"
    };
    format!("/v1beta/models/{}:{method}", encode_segment(model))
}

/// Renders `request` for `model`, with `variant`'s prompt if one is given.
#[must_use]
pub fn render(
    request: &Request,
    model: &str,
    variant: Option<&PromptVariant>,
    stream: bool,
) -> RenderedRequest {
    let prompt = Prompt::new(request, variant);
    let body = super::body::gemini(request, &prompt);
    RenderedRequest {
        path: path(model, stream),
        headers: vec![("content-type", "application/json".to_owned())],
        body,
    }
}

/// The `x-goog-api-key` header for `api_key`.
#[must_use]
pub fn auth_header(api_key: &str) -> AuthHeader {
    AuthHeader::new("x-goog-api-key", api_key.to_owned())
}

/// Parses a successful (2xx) `GenerateContentResponse`.
///
/// # Errors
///
/// [`WireError::Malformed`] for a body that is not one (truncated JSON, neither
/// candidates nor a block reason, fields of the wrong type); [`WireError::ErrorBody`] for
/// an error object sent with a success status.
pub fn parse_response(body: &[u8]) -> Result<Completion, WireError> {
    let value = json(body)?;
    if let Some(error) = error_from(200, &value) {
        return Err(WireError::ErrorBody(error));
    }
    let chunk = Chunk::read(&value)?;
    if chunk.stop_reason.is_none() && opt_array(&value, "/candidates")?.is_empty() {
        return Err(WireError::Malformed("no candidates".into()));
    }
    Ok(Completion {
        text: chunk.text,
        stop_reason: chunk.stop_reason.map(str::to_owned),
        usage: TokenUsage {
            input: chunk.input.unwrap_or(0),
            output: chunk.output.unwrap_or(0),
        },
    })
}

/// Reads an error response; never fails (see [`ProviderError`]).
#[must_use]
pub fn parse_error(status: u16, body: &[u8]) -> ProviderError {
    serde_json::from_slice::<Value>(body)
        .ok()
        .and_then(|value| error_from(status, &value))
        .unwrap_or_else(|| ProviderError::unrecognized(status, body))
}

/// The error in `{"error": {"code", "message", "status", "details"}}` (or a one-element
/// array of it), if that is what `value` is.
fn error_from(status: u16, value: &Value) -> Option<ProviderError> {
    let value = match value {
        Value::Array(items) => items.first()?,
        other => other,
    };
    let error = value.get("error")?;
    if str_at(error, "/status").is_none() && u64_at(error, "/code").is_none() {
        return None;
    }
    let mut parsed =
        ProviderError::known(status, str_at(error, "/status"), str_at(error, "/message"));
    for detail in error
        .get("details")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        let kind = str_at(detail, "/@type").unwrap_or("");
        if kind.ends_with("google.rpc.RetryInfo") {
            parsed.retry_delay = str_at(detail, "/retryDelay").and_then(parse_duration);
        } else if kind.ends_with("google.rpc.QuotaFailure") && parsed.detail.is_none() {
            parsed.detail = str_at(detail, "/violations/0/quotaId").map(str::to_owned);
        }
    }
    Some(parsed.bounded())
}

/// A protobuf JSON duration such as `"22s"` or `"10.689924287s"`.
fn parse_duration(text: &str) -> Option<Duration> {
    let seconds = text.strip_suffix('s')?;
    let well_formed = !seconds.is_empty()
        && seconds.bytes().all(|b| b.is_ascii_digit() || b == b'.')
        && seconds.bytes().filter(|&b| b == b'.').count() <= 1;
    if !well_formed {
        return None;
    }
    Duration::try_from_secs_f64(seconds.parse().ok()?).ok()
}

/// Percent-encodes everything but RFC 3986 unreserved characters.
fn encode_segment(segment: &str) -> String {
    let mut out = String::with_capacity(segment.len());
    for byte in segment.bytes() {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'.' | b'_' | b'~') {
            out.push(char::from(byte));
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

/// What one `GenerateContentResponse` says.
struct Chunk<'a> {
    text: String,
    /// `candidates[0].finishReason`, or else `promptFeedback.blockReason`.
    stop_reason: Option<&'a str>,
    input: Option<u64>,
    output: Option<u64>,
}

impl<'a> Chunk<'a> {
    fn read(value: &'a Value) -> Result<Self, WireError> {
        let mut text = String::new();
        let mut stop_reason = None;
        if let Some(candidate) = opt_array(value, "/candidates")?.first() {
            for part in opt_array(candidate, "/content/parts")? {
                if part.get("thought").and_then(Value::as_bool) != Some(true) {
                    text.push_str(opt_str(part, "/text")?.unwrap_or(""));
                }
            }
            stop_reason = opt_str(candidate, "/finishReason")?;
        }
        if stop_reason.is_none() {
            stop_reason = opt_str(value, "/promptFeedback/blockReason")?;
        }
        let candidates = opt_u64(value, "/usageMetadata/candidatesTokenCount")?;
        let thoughts = opt_u64(value, "/usageMetadata/thoughtsTokenCount")?;
        let output = match (candidates, thoughts) {
            (None, None) => None,
            // Saturating: the counts come off the wire, and two huge ones must not
            // overflow (they would panic in a debug build).
            (c, t) => Some(c.unwrap_or(0).saturating_add(t.unwrap_or(0))),
        };
        Ok(Self {
            text,
            stop_reason,
            input: opt_u64(value, "/usageMetadata/promptTokenCount")?,
            output,
        })
    }
}

/// Decodes a `streamGenerateContent?alt=sse` stream, one SSE event at a time.
#[derive(Debug, Clone, Default)]
pub struct StreamDecoder {
    /// A finish or block reason was seen.
    stopped: bool,
    /// An error object was seen, or `finish` has reported the end.
    ended: bool,
}

impl StreamDecoder {
    /// A decoder for a new stream.
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    /// Decodes one event into one or more items (`[Ignored]` when it carries nothing).
    ///
    /// # Errors
    ///
    /// [`WireError::Malformed`] for data that is not a JSON response, or a response with
    /// a field of the wrong type; [`WireError::InvalidUtf8`] for an event that needed
    /// UTF-8 replacement.
    pub fn decode(&mut self, event: &SseEvent) -> Result<Vec<StreamItem>, WireError> {
        if self.ended {
            return Ok(vec![StreamItem::Ignored]);
        }
        let value = event_json(event)?;
        if let Some(error) = error_from(200, &value) {
            self.ended = true;
            return Ok(vec![StreamItem::Error {
                code: error.code,
                message: error.message,
            }]);
        }
        let chunk = Chunk::read(&value)?;
        let mut items = Vec::new();
        if !chunk.text.is_empty() {
            items.push(StreamItem::Text(chunk.text));
        }
        if let Some(reason) = chunk.stop_reason {
            self.stopped = true;
            items.push(StreamItem::Stop {
                reason: reason.to_owned(),
            });
        }
        items.extend(usage_item(chunk.input, chunk.output));
        Ok(or_ignored(items))
    }

    /// Ends the stream: [`StreamItem::Done`] once if a finish reason came, `None` after
    /// an error object (already reported) or a second call.
    ///
    /// # Errors
    ///
    /// [`WireError::Incomplete`] when the stream ended with neither a finish reason nor
    /// an error.
    pub fn finish(&mut self) -> Result<Option<StreamItem>, WireError> {
        if self.ended {
            return Ok(None);
        }
        if !self.stopped {
            return Err(WireError::Incomplete);
        }
        self.ended = true;
        Ok(Some(StreamItem::Done))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const HUGE_COUNTS: &str = r#"{"candidates":[{"content":{"parts":[{"text":"Hi"}]},"finishReason":"STOP"}],
        "usageMetadata":{"promptTokenCount":4,"candidatesTokenCount":18446744073709551615,"thoughtsTokenCount":1}}"#;

    #[test]
    fn output_tokens_that_overflow_saturate() {
        let completion = parse_response(HUGE_COUNTS.as_bytes()).expect("a valid response");
        assert_eq!(completion.usage.output, u64::MAX);
        assert_eq!(completion.usage.input, 4);

        let event = SseEvent {
            event: "message".to_owned(),
            data: HUGE_COUNTS.to_owned(),
            id: String::new(),
            lossy: false,
        };
        let items = StreamDecoder::new().decode(&event).expect("a valid chunk");
        assert!(items.contains(&StreamItem::Usage {
            input: Some(4),
            output: Some(u64::MAX),
        }));
    }
}
