//! Anthropic Messages, server side (`POST /v1/messages`, `anthropic-version: 2023-06-01`).
//!
//! - Request: `x-api-key` (or `Authorization: Bearer`, as newer SDKs send the key)
//!   and `anthropic-version` headers; body `model`, `max_tokens`
//!   (required, ≥ 1), `messages: [{role, content}]` (required, non-empty), `system`,
//!   `stream`.
//! - Answer: `{"id", "type": "message", "role": "assistant", "model", "content": [{"type":
//!   "text", "text"}], "stop_reason": "end_turn" | "max_tokens", "stop_sequence": null,
//!   "usage": {"input_tokens", "output_tokens"}}`.
//! - Stream: `message_start`, `content_block_start`, `ping`, `content_block_delta`
//!   (`text_delta`)…, `content_block_stop`, `message_delta` (`stop_reason`, cumulative
//!   `usage.output_tokens`), `message_stop`.
//! - Errors: `{"type": "error", "error": {"type", "message"}}`: 400
//!   `invalid_request_error`, 401 `authentication_error`, 402 `billing_error` (a quota
//!   storm), 404 `not_found_error`, 413 `request_too_large`, 429 `rate_limit_error`
//!   with `retry-after` (and `retry-after-ms`, `anthropic-ratelimit-*-limit`), 500
//!   `api_error`, 529 `overloaded_error`.

use serde_json::{Value, json};

use super::{
    Answer, Ask, Problem, Reply, Stop, content_bytes, flag, millis, required_str, sse, token_limit,
    whole_secs,
};

pub(super) fn parse(value: &Value) -> Result<Ask, Problem> {
    let model = required_str(value, "model")?;
    let max_tokens = token_limit(value.get("max_tokens"), "max_tokens")?
        .ok_or_else(|| Problem::BadRequest("max_tokens: field required".into()))?;
    let Some(Value::Array(messages)) = value.get("messages") else {
        return Err(Problem::BadRequest(
            "messages: field required (an array of messages)".into(),
        ));
    };
    if messages.is_empty() {
        return Err(Problem::BadRequest(
            "messages: at least one message is required".into(),
        ));
    }
    let mut text_bytes = content_bytes(value.get("system"), "system")?;
    for (i, m) in messages.iter().enumerate() {
        match m.get("role").and_then(Value::as_str) {
            Some("user" | "assistant") => {}
            _ => {
                return Err(Problem::BadRequest(format!(
                    "messages.{i}.role: must be \"user\" or \"assistant\""
                )));
            }
        }
        text_bytes += content_bytes(m.get("content"), &format!("messages.{i}.content"))?;
    }
    Ok(Ask {
        model: Some(model),
        max_tokens: Some(max_tokens),
        text_bytes,
        stream: flag(value.get("stream"), "stream")?,
        include_usage: false,
    })
}

pub(super) fn error(problem: &Problem) -> Reply {
    let mut headers = Vec::new();
    let (status, kind, message) = match problem {
        Problem::Unauthenticated => (
            401,
            "authentication_error",
            "x-api-key header is required".to_owned(),
        ),
        Problem::BadRequest(m) => (400, "invalid_request_error", m.clone()),
        Problem::NotFound(m) => (404, "not_found_error", m.clone()),
        Problem::MethodNotAllowed => (
            405,
            "invalid_request_error",
            "Method not allowed".to_owned(),
        ),
        Problem::TooLarge { limit } => (
            413,
            "request_too_large",
            format!("Request exceeds the maximum allowed number of bytes ({limit})"),
        ),
        Problem::RateLimited {
            retry_after,
            limits,
        } => {
            headers.push(("retry-after", whole_secs(*retry_after).to_string()));
            headers.push(("retry-after-ms", millis(*retry_after).to_string()));
            for (name, limit) in [
                ("anthropic-ratelimit-requests-limit", limits.rpm),
                ("anthropic-ratelimit-input-tokens-limit", limits.input_tpm),
                ("anthropic-ratelimit-output-tokens-limit", limits.output_tpm),
            ] {
                if let Some(limit) = limit {
                    // Limits are validated as finite and non-negative.
                    headers.push((name, format!("{}", limit.round() as u64)));
                }
            }
            (
                429,
                "rate_limit_error",
                "This request would exceed your organization's rate limit. Please try again later."
                    .to_owned(),
            )
        }
        Problem::QuotaExhausted => (
            402,
            "billing_error",
            "Your credit balance is too low to access the Anthropic API.".to_owned(),
        ),
        Problem::Overloaded => (529, "overloaded_error", "Overloaded".to_owned()),
        Problem::ServerError { status } => (
            *status,
            kind_for(*status),
            "Internal server error".to_owned(),
        ),
    };
    Reply {
        status,
        headers,
        body: json!({"type": "error", "error": {"type": kind, "message": message}}),
    }
}

/// Anthropic's error type for a status.
fn kind_for(status: u16) -> &'static str {
    match status {
        400 | 405 | 409 | 422 => "invalid_request_error",
        401 => "authentication_error",
        402 => "billing_error",
        403 => "permission_error",
        404 => "not_found_error",
        413 => "request_too_large",
        429 => "rate_limit_error",
        504 => "timeout_error",
        529 => "overloaded_error",
        _ => "api_error",
    }
}

fn stop_reason(answer: &Answer) -> &'static str {
    match answer.stop {
        Stop::Finished => "end_turn",
        Stop::MaxTokens => "max_tokens",
    }
}

pub(super) fn body(answer: &Answer, text: &str) -> Value {
    json!({
        "id": answer.id,
        "type": "message",
        "role": "assistant",
        "model": answer.model,
        "content": [{"type": "text", "text": text}],
        "stop_reason": stop_reason(answer),
        "stop_sequence": null,
        "usage": {"input_tokens": answer.input_tokens, "output_tokens": answer.output_tokens},
    })
}

pub(super) fn stream_head(answer: &Answer) -> String {
    let start = json!({
        "type": "message_start",
        "message": {
            "id": answer.id,
            "type": "message",
            "role": "assistant",
            "model": answer.model,
            "content": [],
            "stop_reason": null,
            "stop_sequence": null,
            "usage": {"input_tokens": answer.input_tokens, "output_tokens": 1},
        },
    });
    let block = json!({"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}});
    [
        sse(Some("message_start"), &start),
        sse(Some("content_block_start"), &block),
        sse(Some("ping"), &json!({"type": "ping"})),
    ]
    .concat()
}

pub(super) fn stream_text(text: &str) -> String {
    let delta = json!({"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": text}});
    sse(Some("content_block_delta"), &delta)
}

pub(super) fn stream_tail(answer: &Answer) -> String {
    let delta = json!({
        "type": "message_delta",
        "delta": {"stop_reason": stop_reason(answer), "stop_sequence": null},
        "usage": {"output_tokens": answer.output_tokens},
    });
    [
        sse(
            Some("content_block_stop"),
            &json!({"type": "content_block_stop", "index": 0}),
        ),
        sse(Some("message_delta"), &delta),
        sse(Some("message_stop"), &json!({"type": "message_stop"})),
    ]
    .concat()
}
