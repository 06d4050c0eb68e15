//! Anthropic's Message Batches API, server side.
//!
//! - Create: `POST /v1/messages/batches` with `{"requests": [{"custom_id", "params"}]}`
//!   (at least one; `custom_id` 1–64 of `[A-Za-z0-9_-]`, unique in the batch; `params`
//!   an object). A malformed list is a 400 `invalid_request_error`; each `params` is
//!   validated as the batch runs, as Anthropic does, and a bad one is an `errored`
//!   result. Too many requests: 400; every held batch still processing: 429
//!   `rate_limit_error`.
//! - The `message_batch` object: `id`, `type`, `processing_status` (`in_progress`,
//!   `canceling`, `ended`), `request_counts` (`processing`, `succeeded`, `errored`,
//!   `canceled`, `expired`), `ended_at`, `created_at`, `expires_at`, `archived_at`,
//!   `cancel_initiated_at` (RFC 3339), `results_url` (once ended).
//! - `GET /v1/messages/batches/{id}`; `POST …/{id}/cancel` answers `canceling` while
//!   requests are unfinished; an unknown id is a 404 `not_found_error`.
//! - Results: `GET …/{id}/results`, JSONL in the order the requests finished, one
//!   `{"custom_id", "result": {"type": "succeeded", "message"} | {"type": "errored",
//!   "error": {"type": "error", "error": {"type", "message"}}} | {"type": "canceled"} |
//!   {"type": "expired"}}` a line; before the batch ends, a 400.

use std::collections::BTreeSet;

use breakwater_core::Time;
use serde_json::{Value, json};

use super::store::{Batch, ItemState, Refusal, Submission};
use super::{Answer, Call, new_item, serial, success_body};
use crate::serve::clock::{VirtualClock, rfc3339};
use crate::serve::route::BatchOp;
use crate::serve::wire::{Problem, Wire};

const PREFIX: &str = "msgbatch_serve_";

pub(super) fn respond(call: &Call<'_>, op: &BatchOp, body: &[u8]) -> Answer {
    let shared = call.shared;
    let now = shared.clock.now();
    let found = |id: &str| serial(id, PREFIX);
    match op {
        BatchOp::Create => {
            let requests = match parse_create(body) {
                Ok(requests) => requests,
                Err(problem) => return Answer::Problem(problem),
            };
            let items = requests
                .into_iter()
                .map(|(id, params)| new_item(call, Wire::Anthropic, id, &params))
                .collect();
            let submission = Submission {
                wire: Wire::Anthropic,
                input_file: None,
                items,
                errors: Vec::new(),
            };
            let mut store = shared.batches.lock();
            match store.create(submission, &shared.catalog, &shared.clock, now) {
                Ok(n) => match store.batch(Wire::Anthropic, n) {
                    Some(batch) => Answer::Json(object(n, batch, now, &shared.clock, call, None)),
                    None => not_found(&format!("{PREFIX}{n}")),
                },
                Err(Refusal::TooManyItems(max)) => Answer::Problem(Problem::BadRequest(format!(
                    "requests: a batch holds at most {max} requests here"
                ))),
                Err(Refusal::Full(max)) => Answer::Error {
                    status: 429,
                    body: json!({"type": "error", "error": {"type": "rate_limit_error", "message":
                        format!("{max} message batches are already processing: retry once one has ended")}}),
                },
            }
        }
        BatchOp::Get(id) | BatchOp::Results(id) | BatchOp::Cancel(id) => {
            let Some(n) = found(id) else {
                return not_found(id);
            };
            let mut store = shared.batches.lock();
            let mut status = None;
            if let BatchOp::Cancel(_) = op {
                match store.cancel(Wire::Anthropic, n, now) {
                    Ok(true) => status = Some("canceling"),
                    Ok(false) => {}
                    Err(()) => return not_found(id),
                }
            }
            let Some(batch) = store.batch(Wire::Anthropic, n) else {
                return not_found(id);
            };
            if let BatchOp::Results(_) = op {
                if !batch.ended(now) {
                    return Answer::Problem(Problem::BadRequest(format!(
                        "message batch {id} is still in progress: its results are available once it has ended"
                    )));
                }
                return Answer::Jsonl(results(n, batch, now, &shared.clock));
            }
            Answer::Json(object(n, batch, now, &shared.clock, call, status))
        }
        BatchOp::Upload | BatchOp::FileContent(_) => {
            Answer::Problem(Problem::NotFound("no such endpoint".into()))
        }
    }
}

fn not_found(id: &str) -> Answer {
    Answer::Problem(Problem::NotFound(format!("message batch {id} not found")))
}

/// The requests of a create body: `(custom_id, params)` each.
pub(super) fn parse_create(body: &[u8]) -> Result<Vec<(String, Value)>, Problem> {
    let value: Value = serde_json::from_slice(body)
        .map_err(|e| Problem::BadRequest(format!("the body is not JSON: {e}")))?;
    let Some(Value::Array(requests)) = value.get("requests") else {
        return Err(Problem::BadRequest(
            "requests: field required (an array of {custom_id, params})".into(),
        ));
    };
    if requests.is_empty() {
        return Err(Problem::BadRequest(
            "requests: at least one request is required".into(),
        ));
    }
    let mut seen = BTreeSet::new();
    let mut out = Vec::with_capacity(requests.len());
    for (i, r) in requests.iter().enumerate() {
        let id = match r.get("custom_id").and_then(Value::as_str) {
            Some(id) if valid_id(id) => id,
            Some(_) => {
                return Err(Problem::BadRequest(format!(
                    "requests.{i}.custom_id: must be 1 to 64 letters, digits, '_' or '-'"
                )));
            }
            None => {
                return Err(Problem::BadRequest(format!(
                    "requests.{i}.custom_id: field required"
                )));
            }
        };
        if !seen.insert(id) {
            return Err(Problem::BadRequest(format!(
                "requests.{i}.custom_id: `{id}` is used by another request of the batch"
            )));
        }
        let Some(params) = r.get("params").filter(|p| p.is_object()) else {
            return Err(Problem::BadRequest(format!(
                "requests.{i}.params: field required (a Messages request)"
            )));
        };
        out.push((id.to_owned(), params.clone()));
    }
    Ok(out)
}

fn valid_id(id: &str) -> bool {
    (1..=64).contains(&id.len())
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

/// The `message_batch` object of batch `n` at `now`; `status` overrides the
/// processing status (a cancel's answer).
fn object(
    n: u64,
    batch: &Batch,
    now: Time,
    clock: &VirtualClock,
    call: &Call<'_>,
    status: Option<&str>,
) -> Value {
    let ended = batch.ended(now);
    let counts = batch.counts(now);
    let at = |t: Time| rfc3339(clock.unix_at(t));
    let processing_status = status.unwrap_or(match (ended, batch.canceled) {
        (true, _) => "ended",
        (false, Some(_)) => "canceling",
        (false, None) => "in_progress",
    });
    json!({
        "id": format!("{PREFIX}{n}"),
        "type": "message_batch",
        "processing_status": processing_status,
        "request_counts": {
            "processing": counts.processing,
            "succeeded": counts.succeeded,
            "errored": counts.errored,
            "canceled": counts.canceled,
            "expired": counts.expired,
        },
        "ended_at": ended.then(|| at(batch.end())),
        "created_at": at(batch.created),
        "expires_at": at(batch.expires),
        "archived_at": null,
        "cancel_initiated_at": batch.canceled.map(at),
        "results_url": ended.then(|| format!("{}/v1/messages/batches/{PREFIX}{n}/results", call.base_url())),
    })
}

/// The results file of an ended batch: one line a request, in the order they
/// finished (cancelled and expired ones last, in request order).
pub(super) fn results(n: u64, batch: &Batch, now: Time, clock: &VirtualClock) -> String {
    let mut order: Vec<usize> = (0..batch.items.len()).collect();
    order.sort_by_key(|&k| {
        let item = &batch.items[k];
        let at = match batch.state(item, now) {
            ItemState::Succeeded | ItemState::Errored(_) => item.result.as_ref().map(|(t, _)| *t),
            _ => None,
        };
        (at.unwrap_or(Time::MAX), k)
    });
    let mut out = String::new();
    for k in order {
        let item = &batch.items[k];
        let result = match batch.state(item, now) {
            ItemState::Succeeded => {
                let at = item.result.as_ref().map_or(now, |(t, _)| *t);
                json!({"type": "succeeded", "message": success_body(Wire::Anthropic, n, k, item, clock.unix_at(at))})
            }
            ItemState::Errored(problem) => {
                json!({"type": "errored", "error": Wire::Anthropic.error(problem).body})
            }
            ItemState::Canceled => json!({"type": "canceled"}),
            ItemState::Expired | ItemState::Processing => json!({"type": "expired"}),
        };
        out.push_str(&json!({"custom_id": item.custom_id, "result": result}).to_string());
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn create_bodies_are_checked() {
        let ok = br#"{"requests":[{"custom_id":"bw-1","params":{"model":"m"}},{"custom_id":"a_B-9","params":{}}]}"#;
        let requests = parse_create(ok).expect("valid");
        assert_eq!(requests.len(), 2);
        assert_eq!(requests[0].0, "bw-1");
        assert_eq!(requests[0].1["model"], "m");
        let long = format!(
            r#"{{"requests":[{{"custom_id":"{}","params":{{}}}}]}}"#,
            "x".repeat(65)
        );
        for (bad, why) in [
            (&b"nope"[..], "not JSON"),
            (br#"{}"#, "requests: field required"),
            (br#"{"requests":[]}"#, "at least one"),
            (
                br#"{"requests":[{"params":{}}]}"#,
                "requests.0.custom_id: field required",
            ),
            (
                br#"{"requests":[{"custom_id":"a b","params":{}}]}"#,
                "1 to 64",
            ),
            (long.as_bytes(), "1 to 64"),
            (
                br#"{"requests":[{"custom_id":"a","params":{}},{"custom_id":"a","params":{}}]}"#,
                "requests.1.custom_id",
            ),
            (br#"{"requests":[{"custom_id":"a"}]}"#, "requests.0.params"),
            (
                br#"{"requests":[{"custom_id":"a","params":[]}]}"#,
                "requests.0.params",
            ),
        ] {
            match parse_create(bad) {
                Err(Problem::BadRequest(m)) => assert!(m.contains(why), "{m}"),
                other => panic!("{other:?}"),
            }
        }
    }
}
