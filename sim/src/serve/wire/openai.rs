//! OpenAI Chat Completions, server side (`POST /v1/chat/completions`).
//!
//! - Request: `Authorization: Bearer <key>`; body `model`, `messages: [{role, content}]`
//!   (required, non-empty), `max_completion_tokens` or the older `max_tokens`, `stream`,
//!   `stream_options.include_usage`.
//! - Answer: `{"id", "object": "chat.completion", "created", "model", "choices":
//!   [{"index": 0, "message": {"role": "assistant", "content"}, "finish_reason": "stop" |
//!   "length"}], "usage": {"prompt_tokens", "completion_tokens", "total_tokens"}}`.
//! - Stream: `data:` chunks (`object: "chat.completion.chunk"`): a role chunk, one per
//!   piece of text (`choices[0].delta.content`), one with the `finish_reason`, the usage
//!   chunk (`choices: []`) when `include_usage` is true, then `data: [DONE]`.
//! - Errors: `{"error": {"message", "type", "param", "code"}}`: 401 (no key), 400/404/405/413
//!   `invalid_request_error` (404 with `code: "model_not_found"`), 429
//!   `rate_limit_exceeded` with `retry-after-ms`, `retry-after` and
//!   `x-ratelimit-limit-*`, 429 `insufficient_quota` (a quota storm), 503 overloaded and
//!   5xx `server_error`.

use serde_json::{Value, json};

use super::{
    Answer, Ask, Problem, Reply, Stop, content_bytes, flag, millis, required_str, sse, token_limit,
    whole_secs,
};

pub(super) fn parse(value: &Value) -> Result<Ask, Problem> {
    let model = required_str(value, "model")?;
    let Some(Value::Array(messages)) = value.get("messages") else {
        return Err(Problem::BadRequest(
            "Missing required parameter: 'messages'.".into(),
        ));
    };
    if messages.is_empty() {
        return Err(Problem::BadRequest(
            "Invalid 'messages': empty array. Expected an array with minimum length 1.".into(),
        ));
    }
    let mut text_bytes = 0;
    for (i, m) in messages.iter().enumerate() {
        if m.get("role").and_then(Value::as_str).is_none() {
            return Err(Problem::BadRequest(format!(
                "Missing required parameter: 'messages[{i}].role'."
            )));
        }
        text_bytes += content_bytes(m.get("content"), &format!("messages[{i}].content"))?;
    }
    let max_tokens = match token_limit(value.get("max_completion_tokens"), "max_completion_tokens")?
    {
        Some(n) => Some(n),
        None => token_limit(value.get("max_tokens"), "max_tokens")?,
    };
    let stream = flag(value.get("stream"), "stream")?;
    let include_usage = flag(
        value.pointer("/stream_options/include_usage"),
        "stream_options.include_usage",
    )?;
    Ok(Ask {
        model: Some(model),
        max_tokens,
        text_bytes,
        stream,
        include_usage: stream && include_usage,
    })
}

pub(super) fn error(problem: &Problem) -> Reply {
    let mut headers = Vec::new();
    let (status, kind, code, message): (u16, &str, Option<&str>, String) = match problem {
        Problem::Unauthenticated => (
            401,
            "invalid_request_error",
            None,
            "You didn't provide an API key. You need to provide your API key in an Authorization header using Bearer auth (i.e. Authorization: Bearer YOUR_KEY).".to_owned(),
        ),
        Problem::BadRequest(m) => (400, "invalid_request_error", None, m.clone()),
        Problem::NotFound(m) => (404, "invalid_request_error", Some("model_not_found"), m.clone()),
        Problem::MethodNotAllowed => (405, "invalid_request_error", None, "Method not allowed.".to_owned()),
        Problem::TooLarge { limit } => (
            413,
            "invalid_request_error",
            Some("request_too_large"),
            format!("The request body is larger than {limit} bytes."),
        ),
        Problem::RateLimited {
            retry_after,
            limits,
        } => {
            headers.push(("retry-after-ms", millis(*retry_after).to_string()));
            headers.push(("retry-after", whole_secs(*retry_after).to_string()));
            for (name, limit) in [
                ("x-ratelimit-limit-requests", limits.rpm),
                ("x-ratelimit-limit-tokens", limits.input_tpm),
            ] {
                if let Some(limit) = limit {
                    // Limits are validated as finite and non-negative.
                    headers.push((name, format!("{}", limit.round() as u64)));
                }
            }
            (
                429,
                "requests",
                Some("rate_limit_exceeded"),
                format!(
                    "Rate limit reached. Please try again in {:.3}s.",
                    retry_after.as_secs_f64()
                ),
            )
        }
        Problem::QuotaExhausted => (
            429,
            "insufficient_quota",
            Some("insufficient_quota"),
            "You exceeded your current quota, please check your plan and billing details.".to_owned(),
        ),
        Problem::Overloaded => (
            503,
            "server_error",
            None,
            "The server is overloaded or not ready yet.".to_owned(),
        ),
        Problem::ServerError { status } => (
            *status,
            if *status >= 500 { "server_error" } else { "invalid_request_error" },
            None,
            "The server had an error while processing your request.".to_owned(),
        ),
    };
    Reply {
        status,
        headers,
        body: json!({"error": {"message": message, "type": kind, "param": null, "code": code}}),
    }
}

fn finish_reason(answer: &Answer) -> &'static str {
    match answer.stop {
        Stop::Finished => "stop",
        Stop::MaxTokens => "length",
    }
}

fn usage(answer: &Answer) -> Value {
    json!({
        "prompt_tokens": answer.input_tokens,
        "completion_tokens": answer.output_tokens,
        "total_tokens": u64::from(answer.input_tokens) + u64::from(answer.output_tokens),
    })
}

pub(super) fn body(answer: &Answer, text: &str) -> Value {
    json!({
        "id": answer.id,
        "object": "chat.completion",
        "created": answer.created,
        "model": answer.model,
        "choices": [{
            "index": 0,
            "message": {"role": "assistant", "content": text, "refusal": null},
            "logprobs": null,
            "finish_reason": finish_reason(answer),
        }],
        "usage": usage(answer),
    })
}

/// A chunk with one choice (or none), `usage: null` when usage was asked for.
fn chunk(answer: &Answer, choices: Value, usage: Option<Value>) -> String {
    let mut c = json!({
        "id": answer.id,
        "object": "chat.completion.chunk",
        "created": answer.created,
        "model": answer.model,
        "choices": choices,
    });
    if answer.include_usage {
        c["usage"] = usage.unwrap_or(Value::Null);
    }
    sse(None, &c)
}

pub(super) fn stream_head(answer: &Answer) -> String {
    let choice = json!([{"index": 0, "delta": {"role": "assistant", "content": ""}, "logprobs": null, "finish_reason": null}]);
    chunk(answer, choice, None)
}

pub(super) fn stream_text(answer: &Answer, text: &str) -> String {
    let choice =
        json!([{"index": 0, "delta": {"content": text}, "logprobs": null, "finish_reason": null}]);
    chunk(answer, choice, None)
}

pub(super) fn stream_tail(answer: &Answer) -> String {
    let done = json!([{"index": 0, "delta": {}, "logprobs": null, "finish_reason": finish_reason(answer)}]);
    let mut tail = chunk(answer, done, None);
    if answer.include_usage {
        tail.push_str(&chunk(answer, json!([]), Some(usage(answer))));
    }
    tail.push_str("data: [DONE]\n\n");
    tail
}
