//! The OpenAI Chat Completions API (`POST /v1/chat/completions`).
//!
//! - Request: header `Authorization: Bearer <key>`; body `model`, `messages: [{role:
//!   system|user|assistant, content}]`, the token limit, `temperature`, `stop`, and when
//!   streaming `stream: true` with `stream_options: {include_usage: true}`.
//! - The token limit: OpenAI's reference marks `max_tokens` deprecated in favour of
//!   `max_completion_tokens`, which counts reasoning tokens too, and `max_tokens` is
//!   refused by the o-series models. [`render`] therefore sends `max_completion_tokens`;
//!   [`render_with`] and [`MaxTokensField::MaxTokens`] serve OpenAI-compatible servers
//!   that only know the old name.
//! - Response: `choices[0].message.content` (null, as with a refusal, reads as empty),
//!   `choices[0].finish_reason`, `usage.prompt_tokens` / `usage.completion_tokens`.
//! - Errors: `{"error": {"message", "type", "param", "code"}}`. `code` may be null
//!   (OpenAI has sent `insufficient_quota` only as `type`), so [`ProviderError::code`] is
//!   `code`, or `type` when `code` is null; [`ProviderError::detail`] is always `type`.
//! - Stream: `data: {chunk}` events with `choices[0].delta.content` and
//!   `choices[0].finish_reason`; with `include_usage`, a last chunk whose `choices` is
//!   empty and whose `usage` is set; then `data: [DONE]`. A chunk that is an error
//!   object becomes [`StreamItem::Error`].

use serde_json::Value;

use super::request::{AuthHeader, Prompt, PromptVariant, RenderedRequest, Request};
use super::response::{
    Completion, ProviderError, StreamItem, TokenUsage, WireError, event_json, json, opt_array,
    opt_str, opt_u64, or_ignored, str_at, usage_item,
};
use crate::sse::SseEvent;

/// The request path.
pub const PATH: &str = "/v1/chat/completions";

/// Which body field carries [`Request::max_tokens`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum MaxTokensField {
    /// `max_completion_tokens`, the current field (the default).
    #[default]
    MaxCompletionTokens,
    /// `max_tokens`, deprecated by OpenAI; for compatible servers that predate the change.
    MaxTokens,
}

/// Renders `request` for `model`, with `variant`'s prompt if one is given, sending the
/// limit as `max_completion_tokens`.
#[must_use]
pub fn render(
    request: &Request,
    model: &str,
    variant: Option<&PromptVariant>,
    stream: bool,
) -> RenderedRequest {
    render_with(request, model, variant, stream, MaxTokensField::default())
}

/// Like [`render`], with the token limit in the given field.
#[must_use]
pub fn render_with(
    request: &Request,
    model: &str,
    variant: Option<&PromptVariant>,
    stream: bool,
    limit_field: MaxTokensField,
) -> RenderedRequest {
    let prompt = Prompt::new(request, variant);
    let body = super::body::openai(request, &prompt, model, stream, limit_field);
    RenderedRequest {
        path: PATH.to_owned(),
        headers: vec![("content-type", "application/json".to_owned())],
        body,
    }
}

/// The `authorization: Bearer <key>` header for `api_key`.
#[must_use]
pub fn auth_header(api_key: &str) -> AuthHeader {
    AuthHeader::new("authorization", format!("Bearer {api_key}"))
}

/// Parses a successful (2xx) chat completion.
///
/// # Errors
///
/// [`WireError::Malformed`] for a body that is not a chat completion (truncated JSON, no
/// `choices`, content of the wrong type); [`WireError::ErrorBody`] for an error object
/// sent with a success status.
pub fn parse_response(body: &[u8]) -> Result<Completion, WireError> {
    match super::typed::openai_success(body) {
        Some(completion) => Ok(completion),
        None => parse_value(body),
    }
}

/// [`parse_response`] the slow way, through a `serde_json::Value`: every body the
/// typed fast path steps aside for, error bodies and malformed ones included.
pub(super) fn parse_value(body: &[u8]) -> Result<Completion, WireError> {
    let value = json(body)?;
    if let Some(error) = error_from(200, &value) {
        return Err(WireError::ErrorBody(error));
    }
    let first = opt_array(&value, "/choices")?
        .first()
        .ok_or_else(|| WireError::Malformed("no choices".into()))?;
    Ok(Completion {
        text: opt_str(first, "/message/content")?.unwrap_or("").to_owned(),
        stop_reason: opt_str(first, "/finish_reason")?.map(str::to_owned),
        usage: TokenUsage {
            input: opt_u64(&value, "/usage/prompt_tokens")?.unwrap_or(0),
            output: opt_u64(&value, "/usage/completion_tokens")?.unwrap_or(0),
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

/// The error in `{"error": {"message", "type", "param", "code"}}`, if that is what
/// `value` is.
fn error_from(status: u16, value: &Value) -> Option<ProviderError> {
    let error = value.get("error")?.as_object()?;
    let kind = error.get("type").and_then(Value::as_str);
    // Compatible servers sometimes send a numeric code; keep it as its digits.
    let code = match error.get("code") {
        Some(Value::String(code)) => Some(code.clone()),
        Some(Value::Number(code)) => Some(code.to_string()),
        _ => kind.map(str::to_owned),
    };
    let mut parsed = ProviderError::known(status, None, str_at(value, "/error/message"));
    parsed.code = code;
    parsed.detail = kind.map(str::to_owned);
    Some(parsed.bounded())
}

/// Decodes a chat completion stream, one SSE event at a time.
#[derive(Debug, Clone, Default)]
pub struct StreamDecoder {
    /// `[DONE]` or an error chunk was seen.
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
    /// [`WireError::Malformed`] for data that is neither `[DONE]` nor a JSON chunk, or a
    /// chunk with a field of the wrong type; [`WireError::InvalidUtf8`] for an event that
    /// needed UTF-8 replacement.
    pub fn decode(&mut self, event: &SseEvent) -> Result<Vec<StreamItem>, WireError> {
        if self.ended {
            return Ok(vec![StreamItem::Ignored]);
        }
        if !event.lossy && event.data.trim() == "[DONE]" {
            self.ended = true;
            return Ok(vec![StreamItem::Done]);
        }
        let value = event_json(event)?;
        if let Some(error) = error_from(200, &value) {
            self.ended = true;
            return Ok(vec![StreamItem::Error {
                code: error.code,
                message: error.message,
            }]);
        }
        let mut items = Vec::new();
        if let Some(choice) = opt_array(&value, "/choices")?.first() {
            if let Some(text) = opt_str(choice, "/delta/content")?.filter(|t| !t.is_empty()) {
                items.push(StreamItem::Text(text.to_owned()));
            }
            if let Some(reason) = opt_str(choice, "/finish_reason")? {
                items.push(StreamItem::Stop {
                    reason: reason.to_owned(),
                });
            }
        }
        items.extend(usage_item(
            opt_u64(&value, "/usage/prompt_tokens")?,
            opt_u64(&value, "/usage/completion_tokens")?,
        ));
        Ok(or_ignored(items))
    }

    /// Ends the stream.
    ///
    /// # Errors
    ///
    /// [`WireError::Incomplete`] when neither `[DONE]` nor an error chunk came.
    pub fn finish(&mut self) -> Result<Option<StreamItem>, WireError> {
        if self.ended {
            Ok(None)
        } else {
            Err(WireError::Incomplete)
        }
    }
}
