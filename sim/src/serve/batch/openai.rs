//! OpenAI's Files and Batch APIs, server side.
//!
//! - Upload: `POST /v1/files`, `multipart/form-data` with `purpose=batch` and a `file`
//!   part (400 `invalid_request_error` otherwise); the answer is a file object (`id`,
//!   `object: "file"`, `bytes`, `created_at`, `filename`, `purpose`).
//! - Create: `POST /v1/batches` with `{"input_file_id", "endpoint":
//!   "/v1/chat/completions", "completion_window": "24h"}` (400 for another endpoint or
//!   window, 404 for an unknown file). The input file is validated then: a line that
//!   is not JSON, lacks `custom_id`, `method: "POST"`, `url` equal to the endpoint or a
//!   `body`, or repeats a `custom_id`, fails the whole batch (`status: "failed"`,
//!   `errors.data: [{code, message, line}]`), as OpenAI does. A body the endpoint
//!   refuses (no `messages`, an unknown model) is that request's error.
//! - The batch object: `status` `validating` (the create's answer), `in_progress`,
//!   `completed`, `failed`, `expired`, `cancelling` (a cancel's answer), `cancelled`;
//!   `request_counts` (`total`, `completed`, `failed`); `output_file_id` and
//!   `error_file_id` once ended, if it has such lines; Unix-second timestamps.
//! - Results: `GET /v1/files/{id}/content`: output lines `{"id", "custom_id",
//!   "response": {"status_code": 200, "request_id", "body"}, "error": null}`; error
//!   lines carry the error status and body, or `response: null` and `error.code`
//!   `batch_expired` / `batch_cancelled` for requests that never ran.

use std::collections::BTreeSet;

use breakwater_core::Time;
use serde_json::{Value, json};

use super::multipart;
use super::store::{Batch, ItemState, LineError, NewItem, Refusal, Submission};
use super::{Answer, Call, new_item, serial, success_body};
use crate::serve::clock::VirtualClock;
use crate::serve::route::BatchOp;
use crate::serve::wire::{Problem, Wire};

const BATCH: &str = "batch_serve_";
const FILE: &str = "file-serve-";
const ENDPOINT: &str = "/v1/chat/completions";

pub(super) fn respond(call: &Call<'_>, op: &BatchOp, body: &[u8]) -> Answer {
    let shared = call.shared;
    let now = shared.clock.now();
    match op {
        BatchOp::Upload => {
            let (filename, bytes) = match multipart::file(call.headers, body) {
                Ok(file) => file,
                Err(message) => return invalid(&message, None),
            };
            let len = bytes.len();
            match shared.batches.lock().upload(bytes) {
                Some(n) => Answer::Json(json!({
                    "id": format!("{FILE}{n}"), "object": "file", "bytes": len,
                    "created_at": shared.clock.unix_at(now), "filename": filename, "purpose": "batch",
                    "status": "processed", "status_details": null,
                })),
                None => limited("every file held here is waiting for its batch"),
            }
        }
        BatchOp::Create => create(call, body, now),
        BatchOp::Get(id) | BatchOp::Cancel(id) => {
            let Some(n) = serial(id, BATCH) else {
                return not_found("batch", id);
            };
            let mut store = shared.batches.lock();
            let mut status = None;
            if let BatchOp::Cancel(_) = op {
                match store.cancel(Wire::OpenAi, n, now) {
                    Ok(true) => status = Some("cancelling"),
                    Ok(false) => {}
                    Err(()) => return not_found("batch", id),
                }
            }
            match store.batch(Wire::OpenAi, n) {
                Some(batch) => Answer::Json(object(n, batch, now, &shared.clock, status)),
                None => not_found("batch", id),
            }
        }
        BatchOp::FileContent(id) => {
            let store = shared.batches.lock();
            let Some(rest) = id.strip_prefix(FILE) else {
                return not_found("file", id);
            };
            let (number, part) = rest.split_once('-').unwrap_or((rest, ""));
            let Ok(n) = number.parse::<u64>() else {
                return not_found("file", id);
            };
            if part.is_empty() {
                return match store.file(n) {
                    Some(file) => Answer::Jsonl(String::from_utf8_lossy(&file.bytes).into_owned()),
                    None => not_found("file", id),
                };
            }
            let lines = store
                .batch(Wire::OpenAi, n)
                .filter(|b| b.ended(now))
                .and_then(|b| match part {
                    "output" => Some(file_lines(n, b, now, &shared.clock, true)),
                    "errors" => Some(file_lines(n, b, now, &shared.clock, false)),
                    _ => None,
                });
            match lines {
                Some(text) if !text.is_empty() => Answer::Jsonl(text),
                _ => not_found("file", id),
            }
        }
        BatchOp::Results(_) => Answer::Problem(Problem::NotFound("no such endpoint".into())),
    }
}

fn create(call: &Call<'_>, body: &[u8], now: Time) -> Answer {
    let shared = call.shared;
    let Ok(value) = serde_json::from_slice::<Value>(body) else {
        return invalid("We could not parse the JSON body of your request.", None);
    };
    let field = |name: &str| value.get(name).and_then(Value::as_str);
    let Some(file_id) = field("input_file_id") else {
        return invalid(
            "Missing required parameter: 'input_file_id'.",
            Some("input_file_id"),
        );
    };
    if field("endpoint") != Some(ENDPOINT) {
        return invalid(
            "serve's batches run '/v1/chat/completions' only: set 'endpoint' to it.",
            Some("endpoint"),
        );
    }
    if field("completion_window") != Some("24h") {
        return invalid(
            "Invalid 'completion_window': only '24h' is supported.",
            Some("completion_window"),
        );
    }
    let file = serial(file_id, FILE).and_then(|n| {
        let store = shared.batches.lock();
        store.file(n).map(|f| (n, f.bytes.clone()))
    });
    let Some((file_n, bytes)) = file else {
        return not_found("file", file_id);
    };
    let (items, errors) = match lines(&bytes) {
        Ok(lines) => {
            let items: Vec<NewItem> = lines
                .into_iter()
                .map(|(id, body)| new_item(call, Wire::OpenAi, id, &body))
                .collect();
            (items, Vec::new())
        }
        Err(errors) => (Vec::new(), errors),
    };
    let submission = Submission {
        wire: Wire::OpenAi,
        input_file: Some(file_id.to_owned()),
        items,
        errors,
    };
    let mut store = shared.batches.lock();
    match store.create(submission, &shared.catalog, &shared.clock, now) {
        Ok(n) => {
            store.use_file(file_n);
            match store.batch(Wire::OpenAi, n) {
                Some(batch) => {
                    Answer::Json(object(n, batch, now, &shared.clock, Some("validating")))
                }
                None => not_found("batch", &format!("{BATCH}{n}")),
            }
        }
        Err(Refusal::TooManyItems(max)) => invalid(
            &format!("The input file holds more than {max} requests, the most a batch holds here."),
            Some("input_file_id"),
        ),
        Err(Refusal::Full(max)) => limited(&format!(
            "{max} batches are already in progress: retry once one has ended."
        )),
    }
}

fn invalid(message: &str, param: Option<&str>) -> Answer {
    Answer::Error {
        status: 400,
        body: json!({"error": {"message": message, "type": "invalid_request_error", "param": param, "code": null}}),
    }
}

fn not_found(what: &str, id: &str) -> Answer {
    Answer::Error {
        status: 404,
        body: json!({"error": {"message": format!("No {what} found with id '{id}'."), "type": "invalid_request_error", "param": null, "code": null}}),
    }
}

fn limited(message: &str) -> Answer {
    Answer::Error {
        status: 429,
        body: json!({"error": {"message": message, "type": "requests", "param": null, "code": "rate_limit_exceeded"}}),
    }
}

/// The requests of an input file, `(custom_id, body)` each, or why it does not
/// validate.
pub(super) fn lines(file: &[u8]) -> Result<Vec<(String, Value)>, Vec<LineError>> {
    let mut out = Vec::new();
    let mut errors = Vec::new();
    let mut seen = BTreeSet::new();
    let mut error = |code, message: String, line| {
        errors.push(LineError {
            code,
            message,
            line: Some(line),
        });
    };
    for (i, raw) in file.split(|&b| b == b'\n').enumerate() {
        let (raw, line) = (raw.trim_ascii(), i + 1);
        if raw.is_empty() {
            continue;
        }
        let Ok(value) = serde_json::from_slice::<Value>(raw) else {
            error(
                "invalid_json_line",
                format!("Line {line} is not valid JSON."),
                line,
            );
            continue;
        };
        let Some(id) = value.get("custom_id").and_then(Value::as_str) else {
            error(
                "missing_required_parameter",
                format!("Line {line}: 'custom_id' is required."),
                line,
            );
            continue;
        };
        if value.get("method").and_then(Value::as_str) != Some("POST") {
            error(
                "invalid_request",
                format!("Line {line}: 'method' must be 'POST'."),
                line,
            );
        } else if value.get("url").and_then(Value::as_str) != Some(ENDPOINT) {
            error(
                "invalid_url",
                format!("Line {line}: 'url' must be '{ENDPOINT}', the batch's endpoint."),
                line,
            );
        } else if !value.get("body").is_some_and(Value::is_object) {
            error(
                "missing_required_parameter",
                format!("Line {line}: 'body' is required."),
                line,
            );
        } else if !seen.insert(id.to_owned()) {
            error(
                "duplicate_custom_id",
                format!("Line {line}: the custom_id '{id}' is used by another request."),
                line,
            );
        } else {
            out.push((id.to_owned(), value["body"].clone()));
        }
    }
    if out.is_empty() && errors.is_empty() {
        errors.push(LineError {
            code: "empty_file",
            message: "The input file holds no requests.".into(),
            line: None,
        });
    }
    if errors.is_empty() {
        Ok(out)
    } else {
        Err(errors)
    }
}

/// The batch object of batch `n` at `now`; `status` overrides its status (the
/// create's and a cancel's answers).
fn object(n: u64, batch: &Batch, now: Time, clock: &VirtualClock, status: Option<&str>) -> Value {
    let ended = batch.ended(now);
    let counts = batch.counts(now);
    let at = |t: Time| clock.unix_at(t);
    let end = batch.end();
    let cancelled = batch
        .canceled
        .is_some_and(|c| c <= end && counts.canceled > 0);
    let final_status = if !batch.errors.is_empty() {
        "failed"
    } else if !ended {
        "in_progress"
    } else if cancelled {
        "cancelled"
    } else if counts.expired > 0 {
        "expired"
    } else {
        "completed"
    };
    let when = |s: &str| (final_status == s).then(|| at(end));
    let file = |any: bool, part: &str| (ended && any).then(|| format!("{FILE}{n}-{part}"));
    let errors = (!batch.errors.is_empty()).then(|| {
        let data: Vec<Value> = batch
            .errors
            .iter()
            .map(|e| json!({"code": e.code, "message": e.message, "param": null, "line": e.line}))
            .collect();
        json!({"object": "list", "data": data})
    });
    json!({
        "id": format!("{BATCH}{n}"),
        "object": "batch",
        "endpoint": ENDPOINT,
        "errors": errors,
        "input_file_id": batch.input_file,
        "completion_window": "24h",
        "status": status.unwrap_or(final_status),
        "output_file_id": file(counts.succeeded > 0, "output"),
        "error_file_id": file(counts.errored + counts.expired + counts.canceled > 0, "errors"),
        "created_at": at(batch.created),
        "in_progress_at": batch.errors.is_empty().then(|| at(batch.created)),
        "expires_at": at(batch.expires),
        "finalizing_at": ended.then(|| at(end)),
        "completed_at": when("completed"),
        "failed_at": when("failed"),
        "expired_at": when("expired"),
        "cancelling_at": batch.canceled.map(at),
        "cancelled_at": when("cancelled"),
        "request_counts": {
            "total": batch.items.len(),
            "completed": counts.succeeded,
            "failed": counts.errored,
        },
        "metadata": null,
    })
}

/// The output (`successes`) or error file of an ended batch, in request order.
pub(super) fn file_lines(
    n: u64,
    batch: &Batch,
    now: Time,
    clock: &VirtualClock,
    successes: bool,
) -> String {
    let mut out = String::new();
    for (k, item) in batch.items.iter().enumerate() {
        let state = batch.state(item, now);
        if successes != matches!(state, ItemState::Succeeded) {
            continue;
        }
        let id = format!("batch_req_serve_{n}_{k}");
        let request_id = format!("req_serve_b{n}_{k}");
        let line = match state {
            ItemState::Succeeded => {
                let at = item.result.as_ref().map_or(now, |(t, _)| *t);
                let body = success_body(Wire::OpenAi, n, k, item, clock.unix_at(at));
                json!({"id": id, "custom_id": item.custom_id, "response": {"status_code": 200, "request_id": request_id, "body": body}, "error": null})
            }
            ItemState::Errored(problem) => {
                let reply = Wire::OpenAi.error(problem);
                json!({"id": id, "custom_id": item.custom_id, "response": {"status_code": reply.status, "request_id": request_id, "body": reply.body}, "error": null})
            }
            ItemState::Canceled => {
                json!({"id": id, "custom_id": item.custom_id, "response": null, "error": {"code": "batch_cancelled", "message": "This request was not executed because the batch was cancelled."}})
            }
            ItemState::Expired | ItemState::Processing => {
                json!({"id": id, "custom_id": item.custom_id, "response": null, "error": {"code": "batch_expired", "message": "This request could not be executed before the completion window expired."}})
            }
        };
        out.push_str(&line.to_string());
        out.push('\n');
    }
    out
}

#[cfg(test)]
#[path = "openai_tests.rs"]
mod tests;
