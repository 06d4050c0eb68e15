//! Anthropic's Message Batches API, as pure functions.
//!
//! - Create: `POST /v1/messages/batches` with `{"requests": [{"custom_id", "params"}]}`,
//!   each `params` a Messages request body (as [`wire::anthropic::render`] writes it,
//!   without `stream`). The answer is a `message_batch` object.
//! - Poll: `GET /v1/messages/batches/{id}`: `processing_status` is `in_progress`,
//!   `canceling` or `ended`; `request_counts` counts `processing`, `succeeded`,
//!   `errored`, `canceled`, `expired`; once ended, `results_url` names the results.
//! - Results: a JSONL file, one `{"custom_id", "result"}` a line, in no particular
//!   order. `result.type` is `succeeded` (with `message`, a Messages response),
//!   `errored` (with `error`, an error response `{"type": "error", "error": {"type",
//!   "message"}}`), `canceled` or `expired` (the request never ran).
//!
//! An errored request carries no HTTP status: it gets the one Anthropic's error
//! reference gives its `error.type` (`rate_limit_error` 429, `overloaded_error` 529,
//! `invalid_request_error` 400, …), so that it is classified exactly as the same error
//! from the synchronous endpoint; a type not in that table is read as an error object
//! in place of a message.
//!
//! [`wire::anthropic::render`]: crate::wire::anthropic::render

use serde_json::Value;

use super::item::{ItemOutcome, ItemResult, Progress, ran};
use crate::wire::{Provider, WireError};

/// The path batches are created at.
pub(crate) const PATH: &str = "/v1/messages/batches";

/// The body creating a batch of `requests`: each a `custom_id` and a rendered
/// Messages request body, which is copied in unparsed.
pub(crate) fn create_body<'a>(requests: impl IntoIterator<Item = (&'a str, &'a [u8])>) -> Vec<u8> {
    let mut body = br#"{"requests":["#.to_vec();
    for (i, (custom_id, params)) in requests.into_iter().enumerate() {
        if i > 0 {
            body.push(b',');
        }
        body.extend_from_slice(br#"{"custom_id":"#);
        body.extend_from_slice(Value::from(custom_id).to_string().as_bytes());
        body.extend_from_slice(br#","params":"#);
        body.extend_from_slice(params);
        body.push(b'}');
    }
    body.extend_from_slice(b"]}");
    body
}

/// A `message_batch` object's id.
pub(crate) fn batch_id(body: &[u8]) -> Result<String, WireError> {
    let value = json(body)?;
    value
        .get("id")
        .and_then(Value::as_str)
        .filter(|id| !id.is_empty())
        .map(str::to_owned)
        .ok_or_else(|| WireError::Malformed("message_batch without an id".into()))
}

/// Where a `message_batch` object says the batch is.
pub(crate) fn progress(body: &[u8]) -> Result<Progress, WireError> {
    let value = json(body)?;
    let status = value
        .get("processing_status")
        .and_then(Value::as_str)
        .ok_or_else(|| WireError::Malformed("message_batch without processing_status".into()))?;
    Ok(match status {
        "ended" => Progress::Ended {
            results: value
                .get("results_url")
                .and_then(Value::as_str)
                .map(str::to_owned)
                .into_iter()
                .collect(),
            unfinished: "no result in the ended batch",
        },
        // `in_progress`, `canceling`, and statuses added later: not over yet.
        _ => Progress::Running,
    })
}

/// One line of a results file.
pub(crate) fn result_line(line: &[u8]) -> Result<ItemResult, WireError> {
    let value = json(line)?;
    let custom_id = value
        .get("custom_id")
        .and_then(Value::as_str)
        .ok_or_else(|| WireError::Malformed("result without a custom_id".into()))?
        .to_owned();
    let result = value
        .get("result")
        .ok_or_else(|| WireError::Malformed("result without a result".into()))?;
    let outcome = match result.get("type").and_then(Value::as_str) {
        Some("succeeded") => {
            let message = result
                .get("message")
                .ok_or_else(|| WireError::Malformed("succeeded without a message".into()))?;
            ran(Provider::Anthropic, 200, message.to_string().into_bytes())
        }
        Some("errored") => {
            let error = result
                .get("error")
                .ok_or_else(|| WireError::Malformed("errored without an error".into()))?;
            let status = error
                .pointer("/error/type")
                .and_then(Value::as_str)
                .and_then(status_of)
                .unwrap_or(200);
            ran(Provider::Anthropic, status, error.to_string().into_bytes())
        }
        Some("canceled") => ItemOutcome::NotRun("batch canceled before it ran"),
        Some("expired") => ItemOutcome::NotRun("batch expired before it ran"),
        other => {
            return Err(WireError::Malformed(format!(
                "unknown result type {:?}",
                other.unwrap_or("(none)")
            )));
        }
    };
    Ok(ItemResult { custom_id, outcome })
}

/// The HTTP status Anthropic's error reference gives an error type.
fn status_of(error_type: &str) -> Option<u16> {
    Some(match error_type {
        "invalid_request_error" => 400,
        "authentication_error" => 401,
        "billing_error" => 402,
        "permission_error" => 403,
        "not_found_error" => 404,
        "request_too_large" => 413,
        "rate_limit_error" => 429,
        "api_error" => 500,
        "timeout_error" => 504,
        "overloaded_error" => 529,
        _ => return None,
    })
}

fn json(bytes: &[u8]) -> Result<Value, WireError> {
    serde_json::from_slice(bytes).map_err(|e| WireError::Malformed(e.to_string()))
}

#[cfg(test)]
mod tests {
    use breakwater_core::{ErrorCode, Outcome, Usage};

    use super::*;
    use crate::wire::Request;

    #[test]
    fn create_body_holds_each_request_under_its_id() {
        let request = Request::new(64).system("Be brief.").user("Say \"hi\".");
        let rendered = Provider::Anthropic.render(&request, "claude-haiku-4-5", None, false);
        let body = create_body([("bw-1", &rendered.body[..]), ("bw-2", &rendered.body[..])]);
        let value: Value = serde_json::from_slice(&body).expect("JSON");
        let requests = value["requests"].as_array().expect("array");
        assert_eq!(requests.len(), 2);
        assert_eq!(requests[1]["custom_id"], "bw-2");
        assert_eq!(requests[0]["params"]["model"], "claude-haiku-4-5");
        assert_eq!(requests[0]["params"]["system"], "Be brief.");
        assert_eq!(
            requests[0]["params"]["messages"][0]["content"],
            "Say \"hi\"."
        );
        assert!(requests[0]["params"].get("stream").is_none());
        assert_eq!(create_body([]), br#"{"requests":[]}"#);
    }

    #[test]
    fn statuses_read_as_progress() {
        let running = br#"{"id":"msgbatch_1","type":"message_batch","processing_status":"in_progress","request_counts":{"processing":2,"succeeded":0,"errored":0,"canceled":0,"expired":0},"results_url":null}"#;
        assert_eq!(batch_id(running).expect("id"), "msgbatch_1");
        assert_eq!(progress(running).expect("progress"), Progress::Running);
        let canceling = br#"{"id":"b","processing_status":"canceling"}"#;
        assert_eq!(progress(canceling).expect("progress"), Progress::Running);
        let ended = br#"{"id":"b","processing_status":"ended","results_url":"https://api.anthropic.com/v1/messages/batches/b/results"}"#;
        assert!(matches!(
            progress(ended).expect("progress"),
            Progress::Ended { results, .. } if results == ["https://api.anthropic.com/v1/messages/batches/b/results"]
        ));
        let no_url = br#"{"id":"b","processing_status":"ended","results_url":null}"#;
        assert!(
            matches!(progress(no_url).expect("progress"), Progress::Ended { results, .. } if results.is_empty())
        );
        assert!(progress(b"{}").is_err() && batch_id(b"[").is_err());
        assert!(batch_id(br#"{"id":""}"#).is_err());
        assert!(progress(br#"{"processing_status":7}"#).is_err());
    }

    #[test]
    fn results_become_outcomes_as_the_synchronous_endpoint_would_give() {
        let ok = br#"{"custom_id":"bw-7","result":{"type":"succeeded","message":{"id":"msg_1","type":"message","role":"assistant","content":[{"type":"text","text":"Hello"}],"stop_reason":"end_turn","usage":{"input_tokens":11,"output_tokens":36}}}}"#;
        let item = result_line(ok).expect("line");
        assert_eq!(item.custom_id, "bw-7");
        let ItemOutcome::Ran(exchange) = item.outcome else {
            panic!("it ran")
        };
        assert_eq!(exchange.outcome, Outcome::Success);
        assert_eq!(exchange.usage, Usage::new(11, 36));
        assert_eq!(exchange.completion.expect("answer").text, "Hello");

        let errored = |kind: &str| {
            let line = format!(
                r#"{{"custom_id":"x","result":{{"type":"errored","error":{{"type":"error","error":{{"type":"{kind}","message":"m"}}}}}}}}"#
            );
            match result_line(line.as_bytes()).expect("line").outcome {
                ItemOutcome::Ran(exchange) => exchange.outcome,
                other => panic!("{other:?}"),
            }
        };
        assert!(matches!(
            errored("overloaded_error"),
            Outcome::Status {
                status: 529,
                error: Some(ErrorCode::Overloaded),
                ..
            }
        ));
        assert!(matches!(
            errored("rate_limit_error"),
            Outcome::Status { status: 429, .. }
        ));
        assert!(matches!(
            errored("invalid_request_error"),
            Outcome::Status {
                status: 400,
                error: Some(ErrorCode::InvalidRequest),
                ..
            }
        ));
        // A type the reference does not list: an error object where a message belongs.
        assert!(matches!(
            errored("brand_new_error"),
            Outcome::StreamBroken {
                tokens_delivered: 0,
                ..
            }
        ));

        for (kind, why) in [("canceled", "canceled"), ("expired", "expired")] {
            let line = format!(r#"{{"custom_id":"x","result":{{"type":"{kind}"}}}}"#);
            assert!(matches!(
                result_line(line.as_bytes()).expect("line").outcome,
                ItemOutcome::NotRun(reason) if reason.contains(why)
            ));
        }
        for bad in [
            &b"not json"[..],
            br#"{"result":{"type":"succeeded"}}"#,
            br#"{"custom_id":"x"}"#,
            br#"{"custom_id":"x","result":{"type":"succeeded"}}"#,
            br#"{"custom_id":"x","result":{"type":"errored"}}"#,
            br#"{"custom_id":"x","result":{"type":"exploded"}}"#,
        ] {
            assert!(
                result_line(bad).is_err(),
                "{}",
                String::from_utf8_lossy(bad)
            );
        }
    }
}
