//! The Anthropic Messages API (`POST /v1/messages`, version `2023-06-01`).
//!
//! - Request: headers `x-api-key`, `anthropic-version`, `content-type`; body `model`,
//!   `max_tokens`, `system`, `messages: [{role, content}]`, `temperature`,
//!   `stop_sequences`, `metadata: {user_id}`, `stream`.
//! - Response: the text of the `content[]` blocks of type `text`, concatenated;
//!   `stop_reason`; `usage.input_tokens` / `usage.output_tokens`.
//! - Errors: `{"type": "error", "error": {"type": "overloaded_error", "message": ...}}`;
//!   `error.details.error_code` (such as `enforced_spend_limit_reached` on a 429) becomes
//!   [`ProviderError::detail`].
//! - Stream: `message_start` (`message.usage`), `content_block_start`,
//!   `content_block_delta` (`text_delta`), `content_block_stop`, `message_delta`
//!   (`delta.stop_reason`, cumulative `usage.output_tokens`), `message_stop`, `ping`, and
//!   `error` events, which may arrive in the middle of a 200 stream. Event types we do
//!   not know are ignored, as Anthropic's versioning policy asks.

use serde_json::Value;

use super::request::{AuthHeader, Prompt, PromptVariant, RenderedRequest, Request};
use super::response::{
    Completion, ProviderError, StreamItem, TokenUsage, WireError, event_json, json, opt_str,
    opt_u64, or_ignored, str_at, usage_item,
};
use crate::sse::SseEvent;

/// A bounded excerpt of a string the provider sent (see [`crate::quote`]).
fn excerpt(text: &str) -> String {
    crate::quote::excerpt(text).into_owned()
}

/// The request path.
pub const PATH: &str = "/v1/messages";

/// The `anthropic-version` header value this module speaks.
pub const API_VERSION: &str = "2023-06-01";

/// Renders `request` for `model`, with `variant`'s prompt if one is given.
#[must_use]
pub fn render(
    request: &Request,
    model: &str,
    variant: Option<&PromptVariant>,
    stream: bool,
) -> RenderedRequest {
    let prompt = Prompt::new(request, variant);
    let body = super::body::anthropic(request, &prompt, model, stream);
    RenderedRequest {
        path: PATH.to_owned(),
        headers: vec![
            ("anthropic-version", API_VERSION.to_owned()),
            ("content-type", "application/json".to_owned()),
        ],
        body,
    }
}

/// The `x-api-key` header for `api_key`.
#[must_use]
pub fn auth_header(api_key: &str) -> AuthHeader {
    AuthHeader::new("x-api-key", api_key.to_owned())
}

/// Parses a successful (2xx) Messages response.
///
/// # Errors
///
/// [`WireError::Malformed`] for a body that is not a message (truncated JSON, no
/// `content` array, a text block without text); [`WireError::ErrorBody`] for an error
/// object sent with a success status.
pub fn parse_response(body: &[u8]) -> Result<Completion, WireError> {
    match super::typed::anthropic_success(body) {
        Some(completion) => Ok(completion),
        None => parse_value(body),
    }
}

/// [`parse_response`] the slow way, through a `serde_json::Value`: every body the
/// typed fast path steps aside for, error bodies and malformed ones included.
pub(super) fn parse_value(body: &[u8]) -> Result<Completion, WireError> {
    let value = json(body)?;
    if str_at(&value, "/type") == Some("error") {
        return Err(WireError::ErrorBody(
            error_from(200, &value).unwrap_or_else(|| ProviderError::unrecognized(200, body)),
        ));
    }
    let Some(Value::Array(blocks)) = value.get("content") else {
        return Err(WireError::Malformed("content is not an array".into()));
    };
    let mut text = String::new();
    for block in blocks {
        if str_at(block, "/type") == Some("text") {
            let part = opt_str(block, "/text")?
                .ok_or_else(|| WireError::Malformed("text block without text".into()))?;
            text.push_str(part);
        }
    }
    Ok(Completion {
        text,
        stop_reason: opt_str(&value, "/stop_reason")?.map(str::to_owned),
        usage: TokenUsage {
            input: opt_u64(&value, "/usage/input_tokens")?.unwrap_or(0),
            output: opt_u64(&value, "/usage/output_tokens")?.unwrap_or(0),
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

/// The error in `{"type": "error", "error": {"type", "message", "details"}}`, if that is
/// what `value` is.
fn error_from(status: u16, value: &Value) -> Option<ProviderError> {
    let code = str_at(value, "/error/type")?;
    let mut error = ProviderError::known(status, Some(code), str_at(value, "/error/message"));
    error.detail = str_at(value, "/error/details/error_code").map(str::to_owned);
    Some(error.bounded())
}

/// Decodes a Messages stream, one SSE event at a time.
#[derive(Debug, Clone, Default)]
pub struct StreamDecoder {
    /// `message_stop` or an `error` event was seen.
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
    /// [`WireError::Malformed`] for data that is not a JSON event with a `type`, or a
    /// known event with a field of the wrong type; [`WireError::InvalidUtf8`] for an
    /// event that needed UTF-8 replacement.
    pub fn decode(&mut self, event: &SseEvent) -> Result<Vec<StreamItem>, WireError> {
        if self.ended {
            return Ok(vec![StreamItem::Ignored]);
        }
        let value = event_json(event)?;
        let kind = str_at(&value, "/type")
            .ok_or_else(|| WireError::Malformed("event without a type".into()))?;
        let mut items = Vec::new();
        match kind {
            "message_start" => items.extend(usage_item(
                opt_u64(&value, "/message/usage/input_tokens")?,
                opt_u64(&value, "/message/usage/output_tokens")?,
            )),
            "content_block_start" if str_at(&value, "/content_block/type") == Some("text") => {
                text_item(&mut items, opt_str(&value, "/content_block/text")?);
            }
            "content_block_delta" if str_at(&value, "/delta/type") == Some("text_delta") => {
                let text = opt_str(&value, "/delta/text")?
                    .ok_or_else(|| WireError::Malformed("text_delta without text".into()))?;
                text_item(&mut items, Some(text));
            }
            "message_delta" => {
                if let Some(reason) = opt_str(&value, "/delta/stop_reason")? {
                    items.push(StreamItem::Stop {
                        reason: reason.to_owned(),
                    });
                }
                items.extend(usage_item(
                    opt_u64(&value, "/usage/input_tokens")?,
                    opt_u64(&value, "/usage/output_tokens")?,
                ));
            }
            "message_stop" => {
                self.ended = true;
                items.push(StreamItem::Done);
            }
            "error" => {
                self.ended = true;
                items.push(StreamItem::Error {
                    code: str_at(&value, "/error/type").map(excerpt),
                    message: str_at(&value, "/error/message").map(excerpt),
                });
            }
            // ping, content_block_stop, tool and thinking blocks and deltas, and event
            // types added after this was written.
            _ => {}
        }
        Ok(or_ignored(items))
    }

    /// Ends the stream.
    ///
    /// # Errors
    ///
    /// [`WireError::Incomplete`] when neither `message_stop` nor an `error` event came.
    pub fn finish(&mut self) -> Result<Option<StreamItem>, WireError> {
        if self.ended {
            Ok(None)
        } else {
            Err(WireError::Incomplete)
        }
    }
}

fn text_item(items: &mut Vec<StreamItem>, text: Option<&str>) {
    if let Some(text) = text.filter(|t| !t.is_empty()) {
        items.push(StreamItem::Text(text.to_owned()));
    }
}
