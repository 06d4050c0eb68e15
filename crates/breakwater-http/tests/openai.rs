//! The OpenAI Chat Completions wire format, against fixtures shaped like the published API.

mod common;

use breakwater_http::wire::openai::{self, MaxTokensField};
use breakwater_http::wire::{Provider, Request, StreamItem, WireError};
use common::{body_json, decode, decode_all_ways, fixture, header, replace_once};
use serde_json::json;

const P: Provider = Provider::OpenAi;

fn full_request() -> Request {
    let mut request = Request::new(300)
        .system("You are terse.")
        .user("Hi")
        .assistant("Hello.")
        .user("Name a colour.");
    request.temperature = Some(0.2);
    request.stop = vec!["END".into()];
    request.metadata.insert("user_id".into(), "user-42".into());
    request
}

#[test]
fn renders_a_chat_completion_request() {
    let rendered = openai::render(&full_request(), "gpt-4.1", None, false);
    assert_eq!(rendered.path, "/v1/chat/completions");
    assert_eq!(header(&rendered, "content-type"), Some("application/json"));
    assert_eq!(rendered.headers.len(), 1, "no key among the headers");
    assert_eq!(
        body_json(&rendered),
        json!({
            "model": "gpt-4.1",
            "messages": [
                {"role": "system", "content": "You are terse."},
                {"role": "user", "content": "Hi"},
                {"role": "assistant", "content": "Hello."},
                {"role": "user", "content": "Name a colour."}
            ],
            "max_completion_tokens": 300,
            "temperature": 0.2,
            "stop": ["END"]
        })
    );
}

#[test]
fn streaming_asks_for_usage() {
    let body = body_json(&P.render(&Request::new(8).user("Hi"), "gpt-4.1-mini", None, true));
    assert_eq!(
        body,
        json!({
            "model": "gpt-4.1-mini",
            "messages": [{"role": "user", "content": "Hi"}],
            "max_completion_tokens": 8,
            "stream": true,
            "stream_options": {"include_usage": true}
        })
    );
}

#[test]
fn the_legacy_max_tokens_field_is_available() {
    let request = Request::new(8).user("Hi");
    let body = body_json(&openai::render_with(
        &request,
        "m",
        None,
        false,
        MaxTokensField::MaxTokens,
    ));
    assert_eq!(body["max_tokens"], json!(8));
    assert!(body.get("max_completion_tokens").is_none());
}

#[test]
fn the_key_goes_in_a_bearer_authorization() {
    let auth = P.auth_header("sk-proj-test");
    assert_eq!(
        (auth.name(), auth.value()),
        ("authorization", "Bearer sk-proj-test")
    );
}

#[test]
fn parses_a_completion() {
    let completion = P
        .parse_response(&fixture("openai/completion.json"))
        .unwrap();
    assert_eq!(completion.text, "Hello! How can I help?");
    assert_eq!(completion.stop_reason.as_deref(), Some("stop"));
    assert_eq!((completion.usage.input, completion.usage.output), (19, 10));
}

#[test]
fn null_content_reads_as_empty() {
    let body = br#"{"choices":[{"index":0,"message":{"role":"assistant","content":null,"refusal":"No."},"finish_reason":"stop"}]}"#;
    let completion = P.parse_response(body).unwrap();
    assert_eq!(completion.text, "");
    assert_eq!(completion.usage.input, 0);
}

#[test]
fn truncated_or_empty_completions_are_malformed() {
    let body = fixture("openai/completion.json");
    for cut in [0, 10, body.len() / 2, body.len() - 2] {
        let result = P.parse_response(&body[..cut]);
        assert!(
            matches!(result, Err(WireError::Malformed(_))),
            "cut {cut}: {result:?}"
        );
    }
    for body in [
        &br#"{"choices":[]}"#[..],
        br#"{"id":"x"}"#,
        br#"{"choices":{}}"#,
    ] {
        assert!(
            matches!(P.parse_response(body), Err(WireError::Malformed(_))),
            "{body:?}"
        );
    }
}

#[test]
fn an_error_object_on_a_200_is_an_error_body() {
    let result = P.parse_response(&fixture("openai/error_rate_limit.json"));
    assert!(
        matches!(result, Err(WireError::ErrorBody(e)) if e.code.as_deref() == Some("rate_limit_exceeded"))
    );
}

#[test]
fn insufficient_quota_with_a_null_code_uses_the_type() {
    let error = P.parse_error(429, &fixture("openai/error_insufficient_quota.json"));
    assert_eq!(error.code.as_deref(), Some("insufficient_quota"));
    assert_eq!(error.detail.as_deref(), Some("insufficient_quota"));
    assert!(
        error
            .message
            .unwrap()
            .starts_with("You exceeded your current quota")
    );
    assert!(error.recognized);
}

#[test]
fn reads_rate_limit_and_context_length_errors() {
    let error = P.parse_error(429, &fixture("openai/error_rate_limit.json"));
    assert_eq!(error.code.as_deref(), Some("rate_limit_exceeded"));
    assert_eq!(error.detail.as_deref(), Some("tokens"));
    let error = P.parse_error(400, &fixture("openai/error_context_length.json"));
    assert_eq!(error.code.as_deref(), Some("context_length_exceeded"));
    assert_eq!(error.detail.as_deref(), Some("invalid_request_error"));
    assert_eq!(error.status, 400);
}

#[test]
fn a_numeric_code_from_a_compatible_server_is_kept_as_digits() {
    let error = P.parse_error(
        429,
        br#"{"error":{"message":"slow down","type":"rate_limited","code":1300}}"#,
    );
    assert_eq!(error.code.as_deref(), Some("1300"));
}

#[test]
fn html_and_garbage_error_bodies_have_no_code() {
    let html =
        b"<html>\r\n<head><title>502 Bad Gateway</title></head>\r\n<body>cloudflare</body></html>";
    let error = P.parse_error(502, html);
    assert!(error.html && !error.recognized && error.code.is_none());
    let error = P.parse_error(529, &fixture("anthropic/gateway_529.html"));
    assert!(error.html && error.code.is_none());
    for body in [
        &b""[..],
        b"null",
        b"{\"error\":\"quota\"}",
        b"{\"error\": {",
    ] {
        let error = P.parse_error(500, body);
        assert!(
            error.code.is_none() && !error.recognized && !error.html,
            "{body:?}"
        );
    }
}

#[test]
fn decodes_a_stream_with_a_final_usage_chunk() {
    let decoded = decode_all_ways(P, &fixture("openai/stream_ok.sse")).unwrap();
    assert_eq!(
        decoded.items,
        [
            StreamItem::Ignored, // the role-only first chunk
            StreamItem::Text("Hello".into()),
            StreamItem::Text(" there 🌍".into()),
            StreamItem::Stop {
                reason: "stop".into()
            },
            StreamItem::Usage {
                input: Some(19),
                output: Some(3)
            },
            StreamItem::Done,
        ]
    );
    assert_eq!(decoded.end, Ok(None));
}

#[test]
fn an_error_chunk_after_some_tokens_ends_the_stream() {
    let decoded = decode_all_ways(P, &fixture("openai/stream_error.sse")).unwrap();
    assert_eq!(decoded.text(), "Partial");
    assert_eq!(
        decoded.items.last(),
        Some(&StreamItem::Error {
            code: Some("server_error".into()),
            message: Some(
                "The server had an error while processing your request. Sorry about that!".into()
            ),
        })
    );
    assert_eq!(decoded.end, Ok(None));
}

#[test]
fn a_stream_without_done_is_incomplete() {
    let body = fixture("openai/stream_ok.sse");
    let cut = body.len() - "data: [DONE]\n\n".len();
    let decoded = decode(P, &body[..cut], 11).unwrap();
    assert_eq!(decoded.text(), "Hello there 🌍");
    assert_eq!(decoded.end, Err(WireError::Incomplete));
}

#[test]
fn invalid_utf8_in_a_stream_is_an_error() {
    let body = replace_once(
        &fixture("openai/stream_ok.sse"),
        "🌍".as_bytes(),
        b"\xF0\x9F\x8C",
    );
    assert_eq!(decode(P, &body, 5).unwrap_err(), WireError::InvalidUtf8);
}

#[test]
fn malformed_chunks_are_errors() {
    for body in [
        &b"data: {\"choices\":[{\"delta\":{\"content\":\"Hel\n\n"[..],
        b"data: DONE\n\n",
        b"data: {\"choices\":[{\"delta\":{\"content\":5}}]}\n\n",
    ] {
        assert!(
            matches!(decode(P, body, 4), Err(WireError::Malformed(_))),
            "{body:?}"
        );
    }
}

#[test]
fn events_after_done_are_ignored() {
    let decoded = decode(P, b"data: [DONE]\n\ndata: {\"choices\":[]}\n\n", 3).unwrap();
    assert_eq!(decoded.items, [StreamItem::Done, StreamItem::Ignored]);
}
