//! `serve`'s batch endpoints on the wire: the shapes of batch objects and results,
//! cancels, and every kind of bad input answered with the provider's error shape and
//! status.

mod serve_common;

use std::time::Duration;

use breakwater_sim::serve::{BatchSettings, Running};
use serde_json::{Value, json};
use serve_common::{SERVE_529, http, start};

async fn server(batch: BatchSettings) -> Running {
    start(SERVE_529, |c| c.speed(20.0).batch(batch)).await
}

/// Batches of at most 3 requests, at most 2 held, processed over 2 s virtual (0.1 s
/// real).
fn quick() -> BatchSettings {
    BatchSettings {
        turnaround: Duration::from_secs(2),
        max_items: 3,
        max_batches: 2,
        ..BatchSettings::default()
    }
}

/// The same, processed over 10 minutes: they stay in progress for the test.
fn slow() -> BatchSettings {
    BatchSettings {
        turnaround: Duration::from_secs(600),
        ..quick()
    }
}

/// Sends `method path` to Anthropic's batch API with a key (unless `key` is false).
async fn anthropic(
    running: &Running,
    method: reqwest::Method,
    path: &str,
    body: Option<Value>,
) -> (u16, String) {
    let mut request = http()
        .request(
            method,
            format!("{}{path}", running.provider_url("anthropic")),
        )
        .header("x-api-key", "k")
        .header("anthropic-version", "2023-06-01");
    if let Some(body) = body {
        request = request.json(&body);
    }
    let response = request.send().await.expect("sent");
    let status = response.status().as_u16();
    (status, response.text().await.expect("body"))
}

async fn openai(
    running: &Running,
    method: reqwest::Method,
    path: &str,
    body: Option<(String, Vec<u8>)>,
) -> (u16, String) {
    let mut request = http()
        .request(method, format!("{}{path}", running.provider_url("openai")))
        .header("authorization", "Bearer k");
    if let Some((kind, body)) = body {
        request = request.header("content-type", kind).body(body);
    }
    let response = request.send().await.expect("sent");
    let status = response.status().as_u16();
    (status, response.text().await.expect("body"))
}

/// An OpenAI file's content.
async fn content(running: &Running, id: &str) -> (u16, String) {
    let path = format!("/v1/files/{id}/content");
    openai(running, reqwest::Method::GET, &path, None).await
}

fn json_of(text: &str) -> Value {
    serde_json::from_str(text).expect("JSON")
}

fn message(content: &str) -> Value {
    json!({"model": "claude-sonnet-4-5", "max_tokens": 32, "messages": [{"role": "user", "content": content}]})
}

#[tokio::test]
async fn anthropic_batches_run_end_and_refuse_bad_input() {
    use reqwest::Method;
    let s = server(quick()).await;
    let body = json!({"requests": [
        {"custom_id": "a", "params": message("hi")},
        {"custom_id": "b", "params": {"model": "no-such-model", "max_tokens": 5, "messages": [{"role": "user", "content": "x"}]}},
        {"custom_id": "c", "params": {"model": "claude-sonnet-4-5", "messages": []}},
    ]});
    let (status, text) = anthropic(&s, Method::POST, "/v1/messages/batches", Some(body)).await;
    assert_eq!(status, 200, "{text}");
    let batch = json_of(&text);
    assert_eq!(batch["type"], "message_batch");
    assert_eq!(batch["processing_status"], "in_progress");
    assert_eq!(batch["request_counts"]["processing"], 3);
    assert!(batch["results_url"].is_null() && batch["ended_at"].is_null());
    assert!(
        batch["created_at"]
            .as_str()
            .is_some_and(|t| t.ends_with('Z'))
    );
    let id = batch["id"].as_str().expect("id").to_owned();
    let path = format!("/v1/messages/batches/{id}");
    // Results before the end: a 400.
    let (status, text) = anthropic(&s, Method::GET, &format!("{path}/results"), None).await;
    assert_eq!(
        (status, json_of(&text)["error"]["type"].clone()),
        (400, json!("invalid_request_error"))
    );
    // Ended within the turnaround (2 s virtual, 0.1 s real).
    let mut ended = Value::Null;
    for _ in 0..250 {
        ended = json_of(&anthropic(&s, Method::GET, &path, None).await.1);
        if ended["processing_status"] == "ended" {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(ended["processing_status"], "ended", "{ended}");
    assert_eq!(
        ended["request_counts"],
        json!({"processing": 0, "succeeded": 1, "errored": 2, "canceled": 0, "expired": 0})
    );
    let url = ended["results_url"].as_str().expect("results url");
    assert!(url.starts_with(&s.provider_url("anthropic")), "{url}");
    let response = http()
        .get(url)
        .header("x-api-key", "k")
        .header("anthropic-version", "2023-06-01")
        .send()
        .await
        .expect("results");
    let lines: Vec<Value> = response
        .text()
        .await
        .expect("body")
        .lines()
        .map(json_of)
        .collect();
    let result =
        |id: &str| lines.iter().find(|l| l["custom_id"] == id).expect("line")["result"].clone();
    assert_eq!(result("a")["type"], "succeeded");
    assert_eq!(result("a")["message"]["type"], "message");
    assert!(
        result("a")["message"]["usage"]["output_tokens"]
            .as_u64()
            .is_some_and(|n| n <= 32)
    );
    assert_eq!(result("b")["error"]["error"]["type"], "not_found_error");
    assert_eq!(result("c")["error"]["type"], "error");
    assert_eq!(
        result("c")["error"]["error"]["type"],
        "invalid_request_error"
    );

    // Bad input.
    let error_type = |(status, text): (u16, String)| {
        (
            status,
            json_of(&text)["error"]["type"]
                .as_str()
                .unwrap_or("")
                .to_owned(),
        )
    };
    let create = |body: Value| anthropic(&s, Method::POST, "/v1/messages/batches", Some(body));
    assert_eq!(
        error_type(create(json!({})).await),
        (400, "invalid_request_error".into())
    );
    assert_eq!(
        error_type(create(json!({"requests": [{"custom_id": "a"}]})).await),
        (400, "invalid_request_error".into())
    );
    let dupes = json!({"requests": [{"custom_id": "a", "params": message("x")}, {"custom_id": "a", "params": message("y")}]});
    assert_eq!(
        error_type(create(dupes).await),
        (400, "invalid_request_error".into())
    );
    let four = json!({"requests": (0..4).map(|i| json!({"custom_id": format!("r{i}"), "params": message("x")})).collect::<Vec<_>>()});
    assert_eq!(
        error_type(create(four).await),
        (400, "invalid_request_error".into())
    );
    for path in [
        "/v1/messages/batches/msgbatch_serve_999",
        "/v1/messages/batches/nope/results",
    ] {
        assert_eq!(
            error_type(anthropic(&s, Method::GET, path, None).await),
            (404, "not_found_error".into())
        );
    }
    let no_key = http()
        .get(format!("{}{path}", s.url()))
        .header("anthropic-version", "2023-06-01")
        .send()
        .await
        .expect("sent");
    assert_eq!(no_key.status().as_u16(), 401);
    s.shutdown().await;
    // Two batches held, both processing: a third gets a 429. A cancel ends one at
    // once, and it makes room.
    let s = server(slow()).await;
    let create = |body: Value| anthropic(&s, Method::POST, "/v1/messages/batches", Some(body));
    let one = json!({"requests": [{"custom_id": "x", "params": message("x")}]});
    let second = json_of(&create(one.clone()).await.1);
    let (status, text) = create(one.clone()).await;
    assert_eq!(status, 200, "{text}");
    assert_eq!(
        error_type(create(one.clone()).await),
        (429, "rate_limit_error".into())
    );
    let cancel = format!(
        "/v1/messages/batches/{}/cancel",
        second["id"].as_str().expect("id")
    );
    let canceling = json_of(&anthropic(&s, Method::POST, &cancel, None).await.1);
    assert_eq!(canceling["processing_status"], "canceling");
    assert!(canceling["cancel_initiated_at"].is_string());
    let after = json_of(
        &anthropic(&s, Method::GET, &cancel.replace("/cancel", ""), None)
            .await
            .1,
    );
    assert_eq!(after["processing_status"], "ended");
    assert_eq!(after["request_counts"]["canceled"], 1);
    assert_eq!(create(one).await.0, 200);
    s.shutdown().await;
}

fn upload(purpose: &str, file: &str) -> (String, Vec<u8>) {
    let body = format!(
        "--b0\r\ncontent-disposition: form-data; name=\"purpose\"\r\n\r\n{purpose}\r\n--b0\r\ncontent-disposition: form-data; name=\"file\"; filename=\"in.jsonl\"\r\n\r\n{file}\r\n--b0--\r\n"
    );
    ("multipart/form-data; boundary=b0".into(), body.into_bytes())
}

fn line(id: &str, model: &str) -> String {
    json!({"custom_id": id, "method": "POST", "url": "/v1/chat/completions",
        "body": {"model": model, "max_completion_tokens": 16, "messages": [{"role": "user", "content": "hi"}]}})
    .to_string()
}

#[tokio::test]
async fn openai_files_and_batches_run_end_and_refuse_bad_input() {
    use reqwest::Method;
    let s = server(BatchSettings {
        max_batches: 8,
        ..quick()
    })
    .await;
    let file = format!("{}\n{}\n", line("a", "gpt-4o-mini"), line("b", "nope"));
    let (status, text) = openai(&s, Method::POST, "/v1/files", Some(upload("batch", &file))).await;
    assert_eq!(status, 200, "{text}");
    let uploaded = json_of(&text);
    assert_eq!(
        (uploaded["object"].clone(), uploaded["purpose"].clone()),
        (json!("file"), json!("batch"))
    );
    let file_id = uploaded["id"].as_str().expect("id").to_owned();
    let create = |file_id: &str, endpoint: &str| {
        let body =
            json!({"input_file_id": file_id, "endpoint": endpoint, "completion_window": "24h"})
                .to_string();
        openai(
            &s,
            Method::POST,
            "/v1/batches",
            Some(("application/json".into(), body.into_bytes())),
        )
    };
    let (status, text) = create(&file_id, "/v1/chat/completions").await;
    assert_eq!(status, 200, "{text}");
    let batch = json_of(&text);
    assert_eq!(
        (batch["object"].clone(), batch["status"].clone()),
        (json!("batch"), json!("validating"))
    );
    let path = format!("/v1/batches/{}", batch["id"].as_str().expect("id"));
    let mut done = Value::Null;
    for _ in 0..250 {
        done = json_of(&openai(&s, Method::GET, &path, None).await.1);
        if done["status"] == "completed" {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(done["status"], "completed", "{done}");
    assert_eq!(
        done["request_counts"],
        json!({"total": 2, "completed": 1, "failed": 1})
    );
    let (status, output) = content(&s, done["output_file_id"].as_str().expect("output")).await;
    assert_eq!(status, 200);
    let out = json_of(output.trim());
    assert_eq!(
        (
            out["custom_id"].clone(),
            out["response"]["status_code"].clone()
        ),
        (json!("a"), json!(200))
    );
    assert_eq!(out["response"]["body"]["object"], "chat.completion");
    let (_, errors) = content(&s, done["error_file_id"].as_str().expect("errors")).await;
    let err = json_of(errors.trim());
    assert_eq!(
        (
            err["custom_id"].clone(),
            err["response"]["status_code"].clone()
        ),
        (json!("b"), json!(404))
    );
    // The input file reads back as uploaded.
    assert_eq!(content(&s, &file_id).await.1, file);

    // Bad input.
    let error = |(status, text): (u16, String)| {
        (
            status,
            json_of(&text)["error"]["type"]
                .as_str()
                .unwrap_or("")
                .to_owned(),
        )
    };
    let invalid = (400, "invalid_request_error".to_owned());
    assert_eq!(
        error(
            openai(
                &s,
                Method::POST,
                "/v1/files",
                Some(upload("fine-tune", &file))
            )
            .await
        ),
        invalid
    );
    assert_eq!(
        error(
            openai(
                &s,
                Method::POST,
                "/v1/files",
                Some(("application/json".into(), b"{}".to_vec()))
            )
            .await
        ),
        invalid
    );
    assert_eq!(error(create(&file_id, "/v1/embeddings").await), invalid);
    assert_eq!(
        error(create("file-serve-999", "/v1/chat/completions").await).0,
        404
    );
    assert_eq!(
        error(openai(&s, Method::GET, "/v1/batches/batch_serve_999", None).await).0,
        404
    );
    assert_eq!(error(content(&s, "file-serve-999").await).0, 404);
    let no_key = http()
        .get(format!("{}{path}", s.url()))
        .send()
        .await
        .expect("sent");
    assert_eq!(no_key.status().as_u16(), 401);
    // A malformed line fails the whole batch, with OpenAI's error list.
    let bad = json_of(
        &openai(
            &s,
            Method::POST,
            "/v1/files",
            Some(upload("batch", "{not json\n")),
        )
        .await
        .1,
    );
    let failed = json_of(
        &create(bad["id"].as_str().expect("id"), "/v1/chat/completions")
            .await
            .1,
    );
    let failed = json_of(
        &openai(
            &s,
            Method::GET,
            &format!("/v1/batches/{}", failed["id"].as_str().expect("id")),
            None,
        )
        .await
        .1,
    );
    assert_eq!(failed["status"], "failed");
    assert_eq!(failed["errors"]["data"][0]["code"], "invalid_json_line");
    assert_eq!(failed["errors"]["data"][0]["line"], 1);
    // Too many lines: a 400.
    let four: String = (0..4)
        .map(|i| line(&format!("r{i}"), "gpt-4o-mini") + "\n")
        .collect();
    let big = json_of(
        &openai(&s, Method::POST, "/v1/files", Some(upload("batch", &four)))
            .await
            .1,
    );
    assert_eq!(
        error(create(big["id"].as_str().expect("id"), "/v1/chat/completions").await),
        invalid
    );
    s.shutdown().await;
    // A cancel: `cancelling`, then `cancelled` with the requests that never ran in the
    // error file.
    let s = server(slow()).await;
    let create = |file_id: &str, endpoint: &str| {
        let body =
            json!({"input_file_id": file_id, "endpoint": endpoint, "completion_window": "24h"})
                .to_string();
        openai(
            &s,
            Method::POST,
            "/v1/batches",
            Some(("application/json".into(), body.into_bytes())),
        )
    };
    let three: String = (0..3)
        .map(|i| line(&format!("r{i}"), "gpt-4o-mini") + "\n")
        .collect();
    let f = json_of(
        &openai(&s, Method::POST, "/v1/files", Some(upload("batch", &three)))
            .await
            .1,
    );
    let b = json_of(
        &create(f["id"].as_str().expect("id"), "/v1/chat/completions")
            .await
            .1,
    );
    let cancel = format!("/v1/batches/{}/cancel", b["id"].as_str().expect("id"));
    let cancelling = json_of(&openai(&s, Method::POST, &cancel, None).await.1);
    assert_eq!(cancelling["status"], "cancelling");
    let cancelled = json_of(
        &openai(&s, Method::GET, &cancel.replace("/cancel", ""), None)
            .await
            .1,
    );
    assert_eq!(cancelled["status"], "cancelled");
    let (_, errors) = content(&s, cancelled["error_file_id"].as_str().expect("errors")).await;
    assert!(
        errors
            .lines()
            .map(json_of)
            .all(|l| l["error"]["code"] == "batch_cancelled" && l["response"].is_null())
    );
    assert_eq!(errors.lines().count(), 3);
    s.shutdown().await;
}
