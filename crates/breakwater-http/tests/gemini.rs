//! The Gemini generateContent wire format, against fixtures shaped like the published API.

mod common;

use std::time::Duration;

use breakwater_http::sse::StreamEnd;
use breakwater_http::wire::{Provider, Request, StreamItem, WireError, gemini};
use common::{body_json, decode, decode_all_ways, fixture, header, replace_once};
use serde_json::json;

const P: Provider = Provider::Gemini;

#[test]
fn renders_a_generate_content_request() {
    let mut request = Request::new(1024)
        .system("You are terse.")
        .user("Hi")
        .assistant("Hello.")
        .user("Name a colour.");
    request.temperature = Some(1.5);
    request.stop = vec!["END".into(), "STOP".into()];
    request.metadata.insert("user_id".into(), "user-42".into());
    let rendered = gemini::render(&request, "gemini-2.5-flash", None, false);
    assert_eq!(
        rendered.path,
        "/v1beta/models/gemini-2.5-flash:generateContent"
    );
    assert_eq!(header(&rendered, "content-type"), Some("application/json"));
    assert_eq!(rendered.headers.len(), 1, "no key among the headers");
    assert_eq!(
        body_json(&rendered),
        json!({
            "contents": [
                {"role": "user", "parts": [{"text": "Hi"}]},
                {"role": "model", "parts": [{"text": "Hello."}]},
                {"role": "user", "parts": [{"text": "Name a colour."}]}
            ],
            "systemInstruction": {"parts": [{"text": "You are terse."}]},
            "generationConfig": {
                "maxOutputTokens": 1024,
                "temperature": 1.5,
                "stopSequences": ["END", "STOP"]
            }
        })
    );
}

#[test]
fn streaming_uses_stream_generate_content_with_sse() {
    let rendered = P.render(
        &Request::new(8).user("Hi"),
        "models/gemini-2.5-pro",
        None,
        true,
    );
    assert_eq!(
        rendered.path,
        "/v1beta/models/gemini-2.5-pro:streamGenerateContent?alt=sse"
    );
    assert_eq!(
        body_json(&rendered),
        json!({
            "contents": [{"role": "user", "parts": [{"text": "Hi"}]}],
            "generationConfig": {"maxOutputTokens": 8}
        })
    );
}

#[test]
fn the_model_is_one_encoded_path_segment() {
    assert_eq!(
        gemini::path("evil/../x?alt=json#", false),
        "/v1beta/models/evil%2F..%2Fx%3Falt%3Djson%23:generateContent"
    );
}

#[test]
fn the_key_goes_in_x_goog_api_key() {
    let auth = P.auth_header("AIza-test");
    assert_eq!((auth.name(), auth.value()), ("x-goog-api-key", "AIza-test"));
}

#[test]
fn parses_a_response_skipping_thoughts() {
    let completion = P.parse_response(&fixture("gemini/response.json")).unwrap();
    assert_eq!(completion.text, "Hello from Gemini.");
    assert_eq!(completion.stop_reason.as_deref(), Some("STOP"));
    assert_eq!(completion.usage.input, 8);
    assert_eq!(completion.usage.output, 25, "candidates plus thoughts");
}

#[test]
fn a_blocked_prompt_stops_with_its_block_reason() {
    let completion = P.parse_response(&fixture("gemini/blocked.json")).unwrap();
    assert_eq!(completion.text, "");
    assert_eq!(
        completion.stop_reason.as_deref(),
        Some("PROHIBITED_CONTENT")
    );
    assert_eq!((completion.usage.input, completion.usage.output), (14, 0));
}

#[test]
fn truncated_or_empty_responses_are_malformed() {
    let body = fixture("gemini/response.json");
    for cut in [0, 1, body.len() / 2, body.len() - 2] {
        let result = P.parse_response(&body[..cut]);
        assert!(
            matches!(result, Err(WireError::Malformed(_))),
            "cut {cut}: {result:?}"
        );
    }
    for body in [
        &b"{}"[..],
        br#"{"candidates":[]}"#,
        br#"[{"candidates":[]}]"#,
    ] {
        assert!(
            matches!(P.parse_response(body), Err(WireError::Malformed(_))),
            "{body:?}"
        );
    }
}

#[test]
fn an_error_object_on_a_200_is_an_error_body() {
    let result = P.parse_response(&fixture("gemini/error_503.json"));
    assert!(
        matches!(result, Err(WireError::ErrorBody(e)) if e.code.as_deref() == Some("UNAVAILABLE"))
    );
}

#[test]
fn reads_resource_exhausted_with_its_retry_delay_and_quota() {
    let error = P.parse_error(429, &fixture("gemini/error_429.json"));
    assert_eq!(error.code.as_deref(), Some("RESOURCE_EXHAUSTED"));
    assert_eq!(error.retry_delay, Some(Duration::from_millis(22_500)));
    assert_eq!(
        error.detail.as_deref(),
        Some("GenerateRequestsPerDayPerProjectPerModel-FreeTier")
    );
    assert!(
        error
            .message
            .unwrap()
            .starts_with("You exceeded your current quota")
    );
}

#[test]
fn reads_unavailable_and_array_wrapped_errors() {
    let error = P.parse_error(503, &fixture("gemini/error_503.json"));
    assert_eq!(error.code.as_deref(), Some("UNAVAILABLE"));
    assert_eq!(error.retry_delay, None);
    let wrapped = [b"[".as_slice(), &fixture("gemini/error_503.json"), b"]"].concat();
    assert_eq!(
        P.parse_error(503, &wrapped).code.as_deref(),
        Some("UNAVAILABLE")
    );
}

#[test]
fn odd_retry_delays_are_ignored() {
    for delay in ["", "s", "1.2.3s", "-1s", "1e3s", "inf s", "10", "nans"] {
        let body = json!({"error": {"code": 429, "status": "RESOURCE_EXHAUSTED", "details": [
            {"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": delay}
        ]}});
        let error = P.parse_error(429, body.to_string().as_bytes());
        assert_eq!(error.retry_delay, None, "{delay:?}");
        assert!(error.recognized);
    }
}

#[test]
fn html_and_garbage_error_bodies_have_no_code() {
    let error = P.parse_error(529, &fixture("anthropic/gateway_529.html"));
    assert!(error.html && !error.recognized && error.code.is_none());
    for body in [&b""[..], b"Service Unavailable", b"{\"error\":{}}", b"[]"] {
        let error = P.parse_error(503, body);
        assert!(
            error.code.is_none() && !error.recognized && !error.html,
            "{body:?}"
        );
    }
}

#[test]
fn decodes_a_crlf_stream_and_reports_done_at_the_end() {
    let decoded = decode_all_ways(P, &fixture("gemini/stream_ok.sse")).unwrap();
    assert_eq!(
        decoded.items,
        [
            StreamItem::Text("Hello".into()),
            StreamItem::Usage {
                input: Some(8),
                output: None
            },
            StreamItem::Text(" from the stream, ünïcode ✓".into()),
            StreamItem::Usage {
                input: Some(8),
                output: None
            },
            StreamItem::Text(".".into()),
            StreamItem::Stop {
                reason: "STOP".into()
            },
            StreamItem::Usage {
                input: Some(8),
                output: Some(9)
            },
        ]
    );
    assert_eq!(decoded.end, Ok(Some(StreamItem::Done)));
    assert_eq!(decoded.sse_end, StreamEnd::Clean);
}

#[test]
fn an_error_event_after_some_tokens_ends_the_stream() {
    let decoded = decode_all_ways(P, &fixture("gemini/stream_error.sse")).unwrap();
    assert_eq!(decoded.text(), "Partial");
    assert_eq!(
        decoded.items.last(),
        Some(&StreamItem::Error {
            code: Some("UNAVAILABLE".into()),
            message: Some("The model is overloaded. Please try again later.".into()),
        })
    );
    assert_eq!(decoded.end, Ok(None));
}

#[test]
fn a_stream_without_a_finish_reason_is_incomplete() {
    let body = fixture("gemini/stream_ok.sse");
    let last = body.windows(7).rposition(|w| w == b"data: {").unwrap();
    let decoded = decode(P, &body[..last], 13).unwrap();
    assert_eq!(decoded.text(), "Hello from the stream, ünïcode ✓");
    assert_eq!(decoded.end, Err(WireError::Incomplete));
}

#[test]
fn invalid_utf8_in_a_stream_is_an_error() {
    let body = replace_once(&fixture("gemini/stream_ok.sse"), "ü".as_bytes(), b"\xC3(");
    assert_eq!(decode(P, &body, 6).unwrap_err(), WireError::InvalidUtf8);
}

#[test]
fn malformed_chunks_are_errors() {
    for body in [
        &b"data: {\"candidates\": [{\"content\": {\"parts\": [{\"text\": \"Hel\r\n\r\n"[..],
        b"data: {\"candidates\": {}}\r\n\r\n",
        b"data: {\"candidates\": [{\"finishReason\": 2}]}\r\n\r\n",
    ] {
        assert!(
            matches!(decode(P, body, 4), Err(WireError::Malformed(_))),
            "{body:?}"
        );
    }
}
