//! Gemini `generateContent`, server side (`v1beta`).
//!
//! - Request: `POST /v1beta/models/{model}:generateContent`, or
//!   `:streamGenerateContent?alt=sse`; the key in `x-goog-api-key` (or `?key=`); body
//!   `contents: [{role, parts: [{text}]}]` (required, non-empty), `systemInstruction`,
//!   `generationConfig.maxOutputTokens`.
//! - Answer: `{"candidates": [{"content": {"parts": [{"text"}], "role": "model"},
//!   "finishReason": "STOP" | "MAX_TOKENS", "index": 0}], "usageMetadata":
//!   {"promptTokenCount", "candidatesTokenCount", "totalTokenCount"}, "modelVersion",
//!   "responseId"}`.
//! - Stream (`alt=sse`): `data:` events, each a whole response carrying the next piece of
//!   text; the last has the `finishReason` and the full `usageMetadata`. No end marker.
//! - Errors: `{"error": {"code", "message", "status", "details"}}`: 400
//!   `INVALID_ARGUMENT`, 401 `UNAUTHENTICATED`, 404 `NOT_FOUND`, 429 `RESOURCE_EXHAUSTED`
//!   with a `QuotaFailure` and, for a rate limit, a `RetryInfo` whose `retryDelay` is
//!   the wait (no `retry-after` header, as Gemini sends none), 500 `INTERNAL`, 503
//!   `UNAVAILABLE` (overloaded).

use std::time::Duration;

use serde_json::{Value, json};

use super::{Answer, Ask, Problem, Reply, Stop, content_bytes, sse, token_limit};

pub(super) fn parse(value: &Value) -> Result<Ask, Problem> {
    let Some(Value::Array(contents)) = value.get("contents") else {
        return Err(Problem::BadRequest(
            "* GenerateContentRequest.contents: contents is not specified".into(),
        ));
    };
    if contents.is_empty() {
        return Err(Problem::BadRequest(
            "* GenerateContentRequest.contents: contents is not specified".into(),
        ));
    }
    let mut text_bytes = content_bytes(
        value.pointer("/systemInstruction/parts"),
        "systemInstruction.parts",
    )?;
    for (i, c) in contents.iter().enumerate() {
        let Some(parts @ Value::Array(_)) = c.get("parts") else {
            return Err(Problem::BadRequest(format!(
                "* GenerateContentRequest.contents[{i}].parts: contents.parts must not be empty"
            )));
        };
        text_bytes += content_bytes(Some(parts), &format!("contents[{i}].parts"))?;
    }
    Ok(Ask {
        model: None,
        max_tokens: token_limit(
            value.pointer("/generationConfig/maxOutputTokens"),
            "generationConfig.maxOutputTokens",
        )?,
        text_bytes,
        stream: false,
        include_usage: false,
    })
}

pub(super) fn error(problem: &Problem) -> Reply {
    let mut details = Vec::new();
    let (code, status, message) = match problem {
        Problem::Unauthenticated => (
            401,
            "UNAUTHENTICATED",
            "Method doesn't allow unregistered callers (callers without established identity). Please use API Key or other form of API consumer identity to call this API.".to_owned(),
        ),
        Problem::BadRequest(m) => (400, "INVALID_ARGUMENT", m.clone()),
        Problem::NotFound(m) => (404, "NOT_FOUND", m.clone()),
        Problem::MethodNotAllowed => (405, "UNIMPLEMENTED", "Method not allowed.".to_owned()),
        Problem::TooLarge { limit } => (
            413,
            "INVALID_ARGUMENT",
            format!("Request payload size exceeds the limit: {limit} bytes."),
        ),
        Problem::RateLimited { retry_after, .. } => {
            details.push(quota_failure("GenerateRequestsPerMinutePerProjectPerModel"));
            details.push(json!({
                "@type": "type.googleapis.com/google.rpc.RetryInfo",
                "retryDelay": proto_duration(*retry_after),
            }));
            (429, "RESOURCE_EXHAUSTED", format!(
                "You exceeded your current quota, please check your plan and billing details. Please retry in {}.",
                proto_duration(*retry_after)
            ))
        }
        Problem::QuotaExhausted => {
            details.push(quota_failure("GenerateRequestsPerDayPerProjectPerModel"));
            (429, "RESOURCE_EXHAUSTED", "You exceeded your current quota, please check your plan and billing details.".to_owned())
        }
        Problem::Overloaded => (503, "UNAVAILABLE", "The model is overloaded. Please try again later.".to_owned()),
        Problem::ServerError { status } => (*status, status_for(*status), "An internal error has occurred.".to_owned()),
    };
    let mut error = json!({"code": code, "message": message, "status": status});
    if !details.is_empty() {
        error["details"] = Value::Array(details);
    }
    Reply {
        status: code,
        headers: Vec::new(),
        body: json!({ "error": error }),
    }
}

fn quota_failure(quota_id: &str) -> Value {
    json!({
        "@type": "type.googleapis.com/google.rpc.QuotaFailure",
        "violations": [{
            "quotaMetric": "generativelanguage.googleapis.com/generate_content_requests",
            "quotaId": quota_id,
        }],
    })
}

/// A protobuf JSON duration: `"3s"`, `"0.250s"`.
fn proto_duration(d: Duration) -> String {
    if d.subsec_nanos() == 0 {
        format!("{}s", d.as_secs())
    } else {
        let s = format!("{:.3}", d.as_secs_f64());
        let s = s.trim_end_matches('0').trim_end_matches('.');
        // A wait under half a millisecond rounds to "0": say the smallest non-zero one.
        if s == "0" {
            "0.001s".to_owned()
        } else {
            format!("{s}s")
        }
    }
}

/// Google's canonical status name for an HTTP status.
fn status_for(status: u16) -> &'static str {
    match status {
        400 => "INVALID_ARGUMENT",
        401 => "UNAUTHENTICATED",
        403 => "PERMISSION_DENIED",
        404 => "NOT_FOUND",
        409 => "ABORTED",
        429 => "RESOURCE_EXHAUSTED",
        501 => "UNIMPLEMENTED",
        503 => "UNAVAILABLE",
        504 => "DEADLINE_EXCEEDED",
        s if s >= 500 => "INTERNAL",
        _ => "FAILED_PRECONDITION",
    }
}

fn finish_reason(answer: &Answer) -> &'static str {
    match answer.stop {
        Stop::Finished => "STOP",
        Stop::MaxTokens => "MAX_TOKENS",
    }
}

fn response(answer: &Answer, text: &str, last: bool) -> Value {
    let mut candidate = json!({
        "content": {"parts": [{"text": text}], "role": "model"},
        "index": 0,
    });
    let mut usage = json!({
        "promptTokenCount": answer.input_tokens,
        "totalTokenCount": answer.input_tokens,
    });
    if last {
        candidate["finishReason"] = finish_reason(answer).into();
        usage["candidatesTokenCount"] = answer.output_tokens.into();
        usage["totalTokenCount"] =
            (u64::from(answer.input_tokens) + u64::from(answer.output_tokens)).into();
    }
    json!({
        "candidates": [candidate],
        "usageMetadata": usage,
        "modelVersion": answer.model,
        "responseId": answer.id,
    })
}

pub(super) fn body(answer: &Answer, text: &str) -> Value {
    response(answer, text, true)
}

pub(super) fn stream_text(answer: &Answer, text: &str) -> String {
    sse(None, &response(answer, text, false))
}

pub(super) fn stream_tail(answer: &Answer) -> String {
    sse(None, &response(answer, "", true))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_delays_are_protobuf_durations() {
        assert_eq!(proto_duration(Duration::from_secs(3)), "3s");
        assert_eq!(proto_duration(Duration::from_millis(250)), "0.25s");
        assert_eq!(proto_duration(Duration::from_millis(1500)), "1.5s");
        assert_eq!(proto_duration(Duration::from_micros(100)), "0.001s");
    }
}
