//! The Anthropic Messages wire format, against fixtures shaped like the published API.

mod common;

use breakwater_http::sse::StreamEnd;
use breakwater_http::wire::{Provider, Request, StreamItem, WireError, anthropic};
use common::{body_json, decode, decode_all_ways, fixture, header, replace_once};
use serde_json::json;

const P: Provider = Provider::Anthropic;

fn full_request() -> Request {
    let mut request = Request::new(512)
        .system("You are terse.")
        .user("Hi")
        .assistant("Hello.")
        .user("Name a colour.");
    request.temperature = Some(0.7);
    request.stop = vec!["\n\nHuman:".into(), "END".into()];
    request.metadata.insert("user_id".into(), "user-42".into());
    request.metadata.insert("tenant".into(), "acme".into());
    request
}

#[test]
fn renders_a_messages_request() {
    let rendered = anthropic::render(&full_request(), "claude-sonnet-4-5", None, false);
    assert_eq!(rendered.path, "/v1/messages");
    assert_eq!(header(&rendered, "anthropic-version"), Some("2023-06-01"));
    assert_eq!(header(&rendered, "content-type"), Some("application/json"));
    assert_eq!(rendered.headers.len(), 2, "no key among the headers");
    assert_eq!(
        body_json(&rendered),
        json!({
            "model": "claude-sonnet-4-5",
            "max_tokens": 512,
            "system": "You are terse.",
            "messages": [
                {"role": "user", "content": "Hi"},
                {"role": "assistant", "content": "Hello."},
                {"role": "user", "content": "Name a colour."}
            ],
            "temperature": 0.7,
            "stop_sequences": ["\n\nHuman:", "END"],
            "metadata": {"user_id": "user-42"}
        })
    );
}

#[test]
fn renders_a_minimal_streaming_request() {
    let rendered = P.render(&Request::new(16).user("Hi"), "claude-haiku-4-5", None, true);
    assert_eq!(
        body_json(&rendered),
        json!({
            "model": "claude-haiku-4-5",
            "max_tokens": 16,
            "messages": [{"role": "user", "content": "Hi"}],
            "stream": true
        })
    );
}

#[test]
fn a_non_finite_temperature_is_not_sent() {
    let mut request = Request::new(16).user("Hi");
    request.temperature = Some(f32::NAN);
    let body = body_json(&P.render(&request, "m", None, false));
    assert!(body.get("temperature").is_none());
}

#[test]
fn the_key_goes_in_x_api_key() {
    let auth = P.auth_header("sk-ant-test");
    assert_eq!((auth.name(), auth.value()), ("x-api-key", "sk-ant-test"));
}

#[test]
fn parses_a_message() {
    let completion = P
        .parse_response(&fixture("anthropic/message.json"))
        .unwrap();
    assert_eq!(completion.text, "Hello, world!");
    assert_eq!(completion.stop_reason.as_deref(), Some("end_turn"));
    assert_eq!((completion.usage.input, completion.usage.output), (12, 6));
}

#[test]
fn truncated_json_on_a_200_is_malformed() {
    let body = fixture("anthropic/message.json");
    for cut in [0, 1, body.len() / 2, body.len() - 2] {
        let result = P.parse_response(&body[..cut]);
        assert!(
            matches!(result, Err(WireError::Malformed(_))),
            "cut {cut}: {result:?}"
        );
    }
    let no_content = P.parse_response(br#"{"type":"message","stop_reason":"end_turn"}"#);
    assert!(matches!(no_content, Err(WireError::Malformed(_))));
    let bad_text = P.parse_response(br#"{"content":[{"type":"text","text":7}]}"#);
    assert!(matches!(bad_text, Err(WireError::Malformed(_))));
}

#[test]
fn an_error_object_on_a_200_is_an_error_body() {
    let result = P.parse_response(&fixture("anthropic/error_overloaded.json"));
    let Err(WireError::ErrorBody(error)) = result else {
        panic!("{result:?}");
    };
    assert_eq!(error.code.as_deref(), Some("overloaded_error"));
    assert_eq!(error.status, 200);
}

#[test]
fn reads_an_overloaded_error() {
    let error = P.parse_error(529, &fixture("anthropic/error_overloaded.json"));
    assert_eq!(error.status, 529);
    assert_eq!(error.code.as_deref(), Some("overloaded_error"));
    assert_eq!(error.message.as_deref(), Some("Overloaded"));
    assert_eq!(error.detail, None);
    assert!(error.recognized && !error.html);
}

#[test]
fn reads_the_spend_limit_detail_of_a_429() {
    let error = P.parse_error(429, &fixture("anthropic/error_spend_limit.json"));
    assert_eq!(error.code.as_deref(), Some("rate_limit_error"));
    assert_eq!(
        error.detail.as_deref(),
        Some("enforced_spend_limit_reached")
    );
}

#[test]
fn an_html_529_has_no_code_and_is_flagged() {
    let error = P.parse_error(529, &fixture("anthropic/gateway_529.html"));
    assert_eq!(error.status, 529);
    assert_eq!((&error.code, &error.message), (&None, &None));
    assert!(error.html && !error.recognized);
    assert_eq!(error.to_string(), "status 529 (HTML body)");
}

#[test]
fn empty_and_garbage_error_bodies_have_no_code() {
    for body in [
        &b""[..],
        b"   ",
        b"upstream connect error",
        b"{\"type\":\"error\"",
        b"\xFF\xFE",
        b"[]",
    ] {
        let error = P.parse_error(503, body);
        assert_eq!(error.code, None, "{body:?}");
        assert!(!error.recognized && !error.html, "{body:?}");
    }
}

#[test]
fn decodes_a_stream() {
    let decoded = decode_all_ways(P, &fixture("anthropic/stream_ok.sse")).unwrap();
    assert_eq!(
        decoded.items,
        [
            StreamItem::Usage {
                input: Some(25),
                output: Some(1)
            },
            StreamItem::Ignored, // content_block_start with empty text
            StreamItem::Ignored, // ping
            StreamItem::Text("Hello".into()),
            StreamItem::Text(", wörld! 👋".into()),
            StreamItem::Ignored, // content_block_stop
            StreamItem::Stop {
                reason: "end_turn".into()
            },
            StreamItem::Usage {
                input: None,
                output: Some(15)
            },
            StreamItem::Done,
        ]
    );
    assert_eq!(decoded.end, Ok(None));
    assert_eq!(decoded.sse_end, StreamEnd::Clean);
}

#[test]
fn an_error_event_after_some_tokens_ends_the_stream() {
    let decoded = decode_all_ways(P, &fixture("anthropic/stream_overloaded.sse")).unwrap();
    assert_eq!(decoded.text(), "Once upon a time");
    assert_eq!(
        decoded.items.last(),
        Some(&StreamItem::Error {
            code: Some("overloaded_error".into()),
            message: Some("Overloaded".into()),
        })
    );
    assert_eq!(decoded.end, Ok(None), "the error was already reported");
}

#[test]
fn a_stream_cut_before_message_stop_is_incomplete() {
    let body = fixture("anthropic/stream_ok.sse");
    let cut = body.len() - "event: message_stop\ndata: {\"type\":\"message_stop\"}\n\n".len();
    let decoded = decode(P, &body[..cut], 5).unwrap();
    assert_eq!(decoded.text(), "Hello, wörld! 👋");
    assert_eq!(decoded.end, Err(WireError::Incomplete));
    // Cut in the middle of an event: the SSE layer reports the truncation too.
    let decoded = decode(P, &body[..cut - 10], 5).unwrap();
    assert_eq!(decoded.sse_end, StreamEnd::Truncated);
    assert_eq!(decoded.end, Err(WireError::Incomplete));
}

#[test]
fn invalid_utf8_in_a_stream_is_an_error() {
    let body = replace_once(&fixture("anthropic/stream_ok.sse"), b"Hello", b"Hel\xFFo");
    let result = decode(P, &body, 16);
    assert_eq!(result.unwrap_err(), WireError::InvalidUtf8);
}

#[test]
fn malformed_event_json_is_an_error() {
    let body = b"event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"delta\":{\"type\":\"text_del\n\n";
    assert!(matches!(decode(P, body, 8), Err(WireError::Malformed(_))));
    let no_type = b"data: {\"delta\":{}}\n\n";
    assert!(matches!(
        decode(P, no_type, 8),
        Err(WireError::Malformed(_))
    ));
}

#[test]
fn unknown_events_and_deltas_are_ignored() {
    let body = concat!(
        "event: brand_new_event\ndata: {\"type\":\"brand_new_event\",\"x\":1}\n\n",
        "event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":1,",
        "\"delta\":{\"type\":\"input_json_delta\",\"partial_json\":\"{\\\"a\\\"\"}}\n\n",
        "event: message_stop\ndata: {\"type\":\"message_stop\"}\n\n",
        "event: ping\ndata: {\"type\":\"ping\"}\n\n",
    );
    let decoded = decode(P, body.as_bytes(), 9).unwrap();
    assert_eq!(
        decoded.items,
        [
            StreamItem::Ignored,
            StreamItem::Ignored,
            StreamItem::Done,
            StreamItem::Ignored
        ]
    );
}
