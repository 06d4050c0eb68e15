//! The OpenAI Batch API, as pure functions.
//!
//! - Upload: `POST /v1/files`, `multipart/form-data` with `purpose=batch` and a JSONL
//!   `file`, one `{"custom_id", "method": "POST", "url": "/v1/chat/completions",
//!   "body"}` a line, each `body` a chat completion request (as
//!   [`wire::openai::render`] writes it). The answer is a file object with its `id`.
//! - Create: `POST /v1/batches` with `{"input_file_id", "endpoint":
//!   "/v1/chat/completions", "completion_window": "24h"}`.
//! - Poll: `GET /v1/batches/{id}`: `status` is `validating`, `in_progress`,
//!   `finalizing`, `completed`, `failed`, `expired`, `cancelling` or `cancelled`, with
//!   `output_file_id` and `error_file_id` once there are results.
//! - Results: `GET /v1/files/{id}/content`, JSONL, one `{"id", "custom_id",
//!   "response": {"status_code", "body"}, "error"}` a line, in no particular order. A
//!   request that never ran (the batch expired or was cancelled first) has a null
//!   `response` and an `error` whose code is `batch_expired` or `batch_cancelled`.
//!
//! [`wire::openai::render`]: crate::wire::openai::render

use serde_json::{Value, json};

use super::item::{ItemOutcome, ItemResult, Progress, ran};
use crate::wire::{Provider, WireError, openai};

/// The path files are uploaded to.
pub(crate) const FILES_PATH: &str = "/v1/files";

/// The path batches are created at.
pub(crate) const BATCHES_PATH: &str = "/v1/batches";

/// One line of the input file: `body` (a rendered chat completion request) under
/// `custom_id`, copied in unparsed.
pub(crate) fn input_line(out: &mut Vec<u8>, custom_id: &str, body: &[u8]) {
    out.extend_from_slice(br#"{"custom_id":"#);
    out.extend_from_slice(Value::from(custom_id).to_string().as_bytes());
    out.extend_from_slice(br#","method":"POST","url":"#);
    out.extend_from_slice(Value::from(openai::PATH).to_string().as_bytes());
    out.extend_from_slice(br#","body":"#);
    out.extend_from_slice(body);
    out.extend_from_slice(b"}\n");
}

/// The `multipart/form-data` upload of `jsonl` for a batch: its content type (with
/// the boundary) and its body. The boundary is one that the file does not contain.
pub(crate) fn upload(jsonl: &[u8]) -> (String, Vec<u8>) {
    let mut boundary = String::from("breakwater-batch-upload");
    let mut n = 0u32;
    while contains(jsonl, boundary.as_bytes()) {
        n += 1;
        boundary = format!("breakwater-batch-upload-{n}");
    }
    let mut body = Vec::with_capacity(jsonl.len() + 320);
    body.extend_from_slice(
        format!(
            "--{boundary}\r\ncontent-disposition: form-data; name=\"purpose\"\r\n\r\nbatch\r\n\
             --{boundary}\r\ncontent-disposition: form-data; name=\"file\"; \
             filename=\"batch.jsonl\"\r\ncontent-type: application/jsonl\r\n\r\n"
        )
        .as_bytes(),
    );
    body.extend_from_slice(jsonl);
    body.extend_from_slice(format!("\r\n--{boundary}--\r\n").as_bytes());
    (format!("multipart/form-data; boundary={boundary}"), body)
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

/// The body creating a batch of the uploaded file `input_file_id`.
pub(crate) fn create_body(input_file_id: &str) -> Vec<u8> {
    json!({
        "input_file_id": input_file_id,
        "endpoint": openai::PATH,
        "completion_window": "24h",
    })
    .to_string()
    .into_bytes()
}

/// A file or batch object's id.
pub(crate) fn object_id(body: &[u8]) -> Result<String, WireError> {
    let value = parse(body)?;
    value
        .get("id")
        .and_then(Value::as_str)
        .filter(|id| !id.is_empty())
        .map(str::to_owned)
        .ok_or_else(|| WireError::Malformed("object without an id".into()))
}

/// Where a batch object says the batch is.
pub(crate) fn progress(body: &[u8]) -> Result<Progress, WireError> {
    let value = parse(body)?;
    let status = value
        .get("status")
        .and_then(Value::as_str)
        .ok_or_else(|| WireError::Malformed("batch without a status".into()))?;
    let unfinished = match status {
        "completed" => "no result in the completed batch",
        "expired" => "batch expired before it ran",
        "cancelled" => "batch cancelled before it ran",
        "failed" => {
            let why = value
                .pointer("/errors/data/0/message")
                .or_else(|| value.pointer("/errors/data/0/code"))
                .and_then(Value::as_str)
                .unwrap_or("no reason given");
            return Ok(Progress::Failed(crate::quote::excerpt(why).into_owned()));
        }
        // `validating`, `in_progress`, `finalizing`, `cancelling`, and statuses added
        // later: not over yet.
        _ => return Ok(Progress::Running),
    };
    let results = ["output_file_id", "error_file_id"]
        .into_iter()
        .filter_map(|field| value.get(field).and_then(Value::as_str))
        .filter(|id| !id.is_empty())
        .map(|id| format!("{FILES_PATH}/{id}/content"))
        .collect();
    Ok(Progress::Ended {
        results,
        unfinished,
    })
}

/// One line of an output or error file.
pub(crate) fn result_line(line: &[u8]) -> Result<ItemResult, WireError> {
    let value = parse(line)?;
    let custom_id = value
        .get("custom_id")
        .and_then(Value::as_str)
        .ok_or_else(|| WireError::Malformed("result without a custom_id".into()))?
        .to_owned();
    let outcome = match value.get("response").filter(|r| !r.is_null()) {
        Some(response) => {
            let status = response
                .get("status_code")
                .and_then(Value::as_u64)
                .and_then(|s| u16::try_from(s).ok())
                .ok_or_else(|| WireError::Malformed("response without a status_code".into()))?;
            let body = response.get("body").unwrap_or(&Value::Null);
            ran(Provider::OpenAi, status, body.to_string().into_bytes())
        }
        None => {
            let error = value
                .get("error")
                .filter(|e| !e.is_null())
                .ok_or_else(|| WireError::Malformed("neither a response nor an error".into()))?;
            match error.get("code").and_then(Value::as_str) {
                Some("batch_expired") => ItemOutcome::NotRun("batch expired before it ran"),
                Some("batch_cancelled") => ItemOutcome::NotRun("batch cancelled before it ran"),
                // Another error without a response: the error object where an answer
                // belongs, as a 2xx carrying an error body reads.
                _ => ran(
                    Provider::OpenAi,
                    200,
                    json!({ "error": error }).to_string().into_bytes(),
                ),
            }
        }
    };
    Ok(ItemResult { custom_id, outcome })
}

fn parse(bytes: &[u8]) -> Result<Value, WireError> {
    serde_json::from_slice(bytes).map_err(|e| WireError::Malformed(e.to_string()))
}

#[cfg(test)]
mod tests {
    use breakwater_core::{ErrorCode, Outcome, Usage};

    use super::*;
    use crate::wire::Request;

    #[test]
    fn the_input_file_holds_one_request_a_line() {
        let request = Request::new(32).user("Say hi.");
        let rendered = Provider::OpenAi.render(&request, "gpt-4o-mini", None, false);
        let mut file = Vec::new();
        input_line(&mut file, "bw-1", &rendered.body);
        input_line(&mut file, "bw-\"2\"", &rendered.body);
        let lines: Vec<Value> = file
            .split(|&b| b == b'\n')
            .filter(|l| !l.is_empty())
            .map(|l| serde_json::from_slice(l).expect("JSON line"))
            .collect();
        assert_eq!(lines.len(), 2);
        assert_eq!(lines[1]["custom_id"], "bw-\"2\"");
        assert_eq!(lines[0]["method"], "POST");
        assert_eq!(lines[0]["url"], "/v1/chat/completions");
        assert_eq!(lines[0]["body"]["model"], "gpt-4o-mini");
        assert_eq!(lines[0]["body"]["max_completion_tokens"], 32);
        let create: Value = serde_json::from_slice(&create_body("file-1")).expect("JSON");
        assert_eq!(create["input_file_id"], "file-1");
        assert_eq!(create["endpoint"], "/v1/chat/completions");
        assert_eq!(create["completion_window"], "24h");
    }

    #[test]
    fn the_upload_boundary_is_not_in_the_file() {
        let (kind, body) = upload(b"{\"a\":1}\n");
        assert_eq!(
            kind,
            "multipart/form-data; boundary=breakwater-batch-upload"
        );
        let text = String::from_utf8(body).expect("UTF-8");
        assert!(text.contains("name=\"purpose\"\r\n\r\nbatch\r\n"));
        assert!(text.contains("filename=\"batch.jsonl\""));
        assert!(text.ends_with("{\"a\":1}\n\r\n--breakwater-batch-upload--\r\n"));
        let (kind, _) = upload(b"breakwater-batch-upload breakwater-batch-upload-1");
        assert_eq!(
            kind,
            "multipart/form-data; boundary=breakwater-batch-upload-2"
        );
    }

    #[test]
    fn statuses_read_as_progress() {
        for running in [
            "validating",
            "in_progress",
            "finalizing",
            "cancelling",
            "new",
        ] {
            let body = format!(r#"{{"id":"batch_1","object":"batch","status":"{running}"}}"#);
            assert_eq!(
                progress(body.as_bytes()).expect("progress"),
                Progress::Running
            );
        }
        let done = br#"{"id":"batch_1","status":"completed","output_file_id":"file-o","error_file_id":"file-e"}"#;
        assert_eq!(object_id(done).expect("id"), "batch_1");
        assert!(matches!(
            progress(done).expect("progress"),
            Progress::Ended { results, .. } if results == ["/v1/files/file-o/content", "/v1/files/file-e/content"]
        ));
        let expired =
            br#"{"id":"b","status":"expired","output_file_id":null,"error_file_id":"file-e"}"#;
        assert!(matches!(
            progress(expired).expect("progress"),
            Progress::Ended { results, unfinished } if results.len() == 1 && unfinished.contains("expired")
        ));
        let failed = br#"{"id":"b","status":"failed","errors":{"object":"list","data":[{"code":"invalid_json_line","line":1,"message":"line 1 is not JSON"}]}}"#;
        assert_eq!(
            progress(failed).expect("progress"),
            Progress::Failed("line 1 is not JSON".into())
        );
        assert!(progress(b"{}").is_err());
        assert!(object_id(br#"{"id":7}"#).is_err());
    }

    #[test]
    fn result_lines_become_outcomes() {
        let ok = br#"{"id":"batch_req_1","custom_id":"bw-3","response":{"status_code":200,"request_id":"r","body":{"id":"chatcmpl-1","object":"chat.completion","choices":[{"index":0,"message":{"role":"assistant","content":"Hi"},"finish_reason":"stop"}],"usage":{"prompt_tokens":9,"completion_tokens":2}}},"error":null}"#;
        let item = result_line(ok).expect("line");
        assert_eq!(item.custom_id, "bw-3");
        let ItemOutcome::Ran(exchange) = item.outcome else {
            panic!("it ran")
        };
        assert_eq!(exchange.outcome, Outcome::Success);
        assert_eq!(exchange.usage, Usage::new(9, 2));

        let status = |line: &[u8]| match result_line(line).expect("line").outcome {
            ItemOutcome::Ran(exchange) => exchange.outcome,
            other => panic!("{other:?}"),
        };
        let limited = br#"{"custom_id":"x","response":{"status_code":429,"body":{"error":{"message":"slow down","type":"requests","code":"rate_limit_exceeded"}}},"error":null}"#;
        assert!(matches!(
            status(limited),
            Outcome::Status {
                status: 429,
                error: Some(ErrorCode::RateLimited),
                ..
            }
        ));
        let bad = br#"{"custom_id":"x","response":{"status_code":400,"body":{"error":{"message":"too long","type":"invalid_request_error","code":"context_length_exceeded"}}},"error":null}"#;
        assert!(matches!(
            status(bad),
            Outcome::Status {
                status: 400,
                error: Some(ErrorCode::ContextWindowExceeded),
                ..
            }
        ));
        let other =
            br#"{"custom_id":"x","response":null,"error":{"code":"server_error","message":"m"}}"#;
        assert!(matches!(
            status(other),
            Outcome::StreamBroken {
                tokens_delivered: 0,
                ..
            }
        ));

        for (code, why) in [
            ("batch_expired", "expired"),
            ("batch_cancelled", "cancelled"),
        ] {
            let line = format!(
                r#"{{"custom_id":"x","response":null,"error":{{"code":"{code}","message":"m"}}}}"#
            );
            assert!(matches!(
                result_line(line.as_bytes()).expect("line").outcome,
                ItemOutcome::NotRun(reason) if reason.contains(why)
            ));
        }
        for bad in [
            &b"{"[..],
            br#"{"response":null}"#,
            br#"{"custom_id":"x","response":null,"error":null}"#,
            br#"{"custom_id":"x","response":{"body":{}}}"#,
            br#"{"custom_id":"x","response":{"status_code":70000,"body":{}}}"#,
        ] {
            assert!(
                result_line(bad).is_err(),
                "{}",
                String::from_utf8_lossy(bad)
            );
        }
    }
}
