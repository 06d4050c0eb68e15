//! The server side against `breakwater-http`'s client side: what one renders, the other
//! reads, for every wire.

use std::time::Duration;

use breakwater_http::sse::SseParser;
use breakwater_http::wire::{Provider, Request, StreamItem};
use hyper::HeaderMap;
use hyper::header::HeaderValue;

use super::*;

const WIRES: [(Wire, Provider); 3] = [
    (Wire::Anthropic, Provider::Anthropic),
    (Wire::OpenAi, Provider::OpenAi),
    (Wire::Gemini, Provider::Gemini),
];

fn answer(stop: Stop) -> Answer {
    Answer {
        id: "id-1".into(),
        model: "m".into(),
        input_tokens: 12,
        output_tokens: 3,
        stop,
        include_usage: true,
        created: 1_700_000_000,
    }
}

#[test]
fn bodies_parse_as_completions() {
    for (wire, provider) in WIRES {
        for (stop, reason) in [(Stop::Finished, 0), (Stop::MaxTokens, 1)] {
            let body = wire.body(&answer(stop), "a b c").to_string();
            let done = provider.parse_response(body.as_bytes()).unwrap();
            assert_eq!(done.text, "a b c", "{wire:?}");
            assert_eq!((done.usage.input, done.usage.output), (12, 3), "{wire:?}");
            let expected = match wire {
                Wire::Anthropic => ["end_turn", "max_tokens"],
                Wire::OpenAi => ["stop", "length"],
                Wire::Gemini => ["STOP", "MAX_TOKENS"],
            }[reason];
            assert_eq!(done.stop_reason.as_deref(), Some(expected));
        }
    }
}

#[test]
fn streams_decode_to_text_stop_usage_and_end() {
    for (wire, provider) in WIRES {
        let a = answer(Stop::Finished);
        let sse = [
            wire.stream_head(&a),
            wire.stream_text(&a, "Hello"),
            wire.stream_text(&a, " there"),
            wire.stream_tail(&a),
        ]
        .concat();
        let mut parser = SseParser::new();
        let mut decoder = provider.stream_decoder();
        let mut events = Vec::new();
        parser.push(sse.as_bytes(), &mut events).unwrap();
        let mut items = Vec::new();
        for e in &events {
            items.extend(decoder.decode(e).unwrap());
        }
        items.extend(decoder.finish().unwrap());
        items.retain(|i| *i != StreamItem::Ignored);
        let text: String = items
            .iter()
            .filter_map(|i| match i {
                StreamItem::Text(t) => Some(t.as_str()),
                _ => None,
            })
            .collect();
        assert_eq!(text, "Hello there", "{wire:?}");
        assert!(
            items.iter().any(|i| matches!(i, StreamItem::Stop { .. })),
            "{wire:?}"
        );
        let last_usage = items.iter().rev().find_map(|i| match i {
            StreamItem::Usage { output, .. } => *output,
            _ => None,
        });
        assert_eq!(last_usage, Some(3), "{wire:?}");
        assert_eq!(items.last(), Some(&StreamItem::Done), "{wire:?}");
    }
}

#[test]
fn openai_streams_send_usage_only_when_asked() {
    let mut a = answer(Stop::Finished);
    a.include_usage = false;
    let tail = Wire::OpenAi.stream_tail(&a);
    assert!(!tail.contains("usage"), "{tail}");
    assert!(tail.ends_with("data: [DONE]\n\n"));
}

#[test]
fn errors_read_back_with_their_codes() {
    let limits = Limits {
        rpm: Some(60.0),
        input_tpm: Some(1000.0),
        output_tpm: None,
    };
    let rate = Problem::RateLimited {
        retry_after: Duration::from_millis(300),
        limits,
    };
    let cases: [(Problem, [(u16, &str); 3]); 8] = [
        (
            Problem::Unauthenticated,
            [
                (401, "authentication_error"),
                (401, "invalid_request_error"),
                (401, "UNAUTHENTICATED"),
            ],
        ),
        (
            Problem::BadRequest("bad".into()),
            [
                (400, "invalid_request_error"),
                (400, "invalid_request_error"),
                (400, "INVALID_ARGUMENT"),
            ],
        ),
        (
            Problem::NotFound("no".into()),
            [
                (404, "not_found_error"),
                (404, "model_not_found"),
                (404, "NOT_FOUND"),
            ],
        ),
        (
            Problem::TooLarge { limit: 10 },
            [
                (413, "request_too_large"),
                (413, "request_too_large"),
                (413, "INVALID_ARGUMENT"),
            ],
        ),
        (
            rate.clone(),
            [
                (429, "rate_limit_error"),
                (429, "rate_limit_exceeded"),
                (429, "RESOURCE_EXHAUSTED"),
            ],
        ),
        (
            Problem::QuotaExhausted,
            [
                (402, "billing_error"),
                (429, "insufficient_quota"),
                (429, "RESOURCE_EXHAUSTED"),
            ],
        ),
        (
            Problem::Overloaded,
            [
                (529, "overloaded_error"),
                (503, "server_error"),
                (503, "UNAVAILABLE"),
            ],
        ),
        (
            Problem::ServerError { status: 500 },
            [(500, "api_error"), (500, "server_error"), (500, "INTERNAL")],
        ),
    ];
    for (problem, expected) in cases {
        for ((wire, provider), (status, code)) in WIRES.into_iter().zip(expected) {
            let reply = wire.error(&problem);
            assert_eq!(reply.status, status, "{wire:?} {problem:?}");
            let parsed = provider.parse_error(reply.status, reply.body.to_string().as_bytes());
            assert!(parsed.recognized, "{wire:?} {problem:?}");
            assert_eq!(parsed.code.as_deref(), Some(code), "{wire:?} {problem:?}");
        }
    }
    let header = |reply: &Reply, name: &str| {
        reply
            .headers
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, v)| v.clone())
    };
    let a = Wire::Anthropic.error(&rate);
    assert_eq!(header(&a, "retry-after").as_deref(), Some("1"));
    assert_eq!(header(&a, "retry-after-ms").as_deref(), Some("300"));
    assert_eq!(
        header(&a, "anthropic-ratelimit-requests-limit").as_deref(),
        Some("60")
    );
    assert_eq!(header(&a, "anthropic-ratelimit-output-tokens-limit"), None);
    let o = Wire::OpenAi.error(&rate);
    assert_eq!(header(&o, "retry-after-ms").as_deref(), Some("300"));
    assert_eq!(
        header(&o, "x-ratelimit-limit-tokens").as_deref(),
        Some("1000")
    );
    let g = Wire::Gemini.error(&rate);
    assert!(g.headers.is_empty());
    let parsed = Provider::Gemini.parse_error(429, g.body.to_string().as_bytes());
    assert_eq!(parsed.retry_delay, Some(Duration::from_millis(300)));
    let quota = Provider::Gemini.parse_error(
        429,
        Wire::Gemini
            .error(&Problem::QuotaExhausted)
            .body
            .to_string()
            .as_bytes(),
    );
    assert_eq!(quota.retry_delay, None);
    assert_eq!(
        quota.detail.as_deref(),
        Some("GenerateRequestsPerDayPerProjectPerModel")
    );
}

#[test]
fn rendered_requests_parse() {
    let request = Request::new(77)
        .system("Be brief.")
        .user("Say hello.")
        .assistant("Hi")
        .user("Again");
    let prompt = "Be brief.Say hello.HiAgain".len();
    for (wire, provider) in WIRES {
        for stream in [false, true] {
            let rendered = provider.render(&request, "m", None, stream);
            let ask = wire.parse(&rendered.body).unwrap();
            assert_eq!(ask.max_tokens, Some(77), "{wire:?}");
            assert_eq!(ask.text_bytes, prompt, "{wire:?}");
            if wire == Wire::Gemini {
                assert_eq!(ask.model, None);
            } else {
                assert_eq!(ask.model.as_deref(), Some("m"));
                assert_eq!(ask.stream, stream);
                assert_eq!(ask.include_usage, stream && wire == Wire::OpenAi);
            }
        }
    }
}

#[test]
fn malformed_bodies_are_bad_requests() {
    let bad = |wire: Wire, body: &str| match wire.parse(body.as_bytes()) {
        Err(Problem::BadRequest(m)) => m,
        other => panic!("{wire:?} {body}: {other:?}"),
    };
    for wire in [Wire::Anthropic, Wire::OpenAi, Wire::Gemini] {
        bad(wire, "");
        bad(wire, "{");
        bad(wire, "[1]");
    }
    let msgs = r#""messages":[{"role":"user","content":"hi"}]"#;
    assert!(bad(Wire::Anthropic, &format!(r#"{{"model":"m",{msgs}}}"#)).contains("max_tokens"));
    assert!(bad(Wire::Anthropic, &format!(r#"{{"max_tokens":5,{msgs}}}"#)).contains("model"));
    assert!(
        bad(
            Wire::Anthropic,
            &format!(r#"{{"model":"","max_tokens":5,{msgs}}}"#)
        )
        .contains("model")
    );
    assert!(
        bad(
            Wire::Anthropic,
            &format!(r#"{{"model":"m","max_tokens":0,{msgs}}}"#)
        )
        .contains("max_tokens")
    );
    assert!(
        bad(
            Wire::Anthropic,
            r#"{"model":"m","max_tokens":5,"messages":[]}"#
        )
        .contains("messages")
    );
    assert!(
        bad(
            Wire::Anthropic,
            r#"{"model":"m","max_tokens":5,"messages":[{"role":"x","content":"a"}]}"#
        )
        .contains("role")
    );
    assert!(
        bad(
            Wire::Anthropic,
            &format!(r#"{{"model":"m","max_tokens":5,"stream":"yes",{msgs}}}"#)
        )
        .contains("stream")
    );
    assert!(bad(Wire::OpenAi, r#"{"model":"m"}"#).contains("messages"));
    assert!(
        bad(
            Wire::OpenAi,
            &format!(r#"{{"model":"m","max_tokens":-1,{msgs}}}"#)
        )
        .contains("max_tokens")
    );
    assert!(
        bad(
            Wire::OpenAi,
            r#"{"model":"m","messages":[{"role":"user","content":7}]}"#
        )
        .contains("content")
    );
    assert!(bad(Wire::Gemini, r#"{"contents":[]}"#).contains("contents"));
    assert!(bad(Wire::Gemini, r#"{"contents":[{"role":"user"}]}"#).contains("parts"));
    assert!(
        bad(
            Wire::Gemini,
            r#"{"contents":[{"parts":[{"text":"a"}]}],"generationConfig":{"maxOutputTokens":"x"}}"#
        )
        .contains("maxOutputTokens")
    );
}

#[test]
fn keys_are_required_and_must_not_be_empty() {
    let headers = |pairs: &[(&'static str, &'static str)]| {
        let mut map = HeaderMap::new();
        for (n, v) in pairs {
            map.insert(*n, HeaderValue::from_static(v));
        }
        map
    };
    let version = ("anthropic-version", "2023-06-01");
    assert_eq!(
        Wire::Anthropic.check_headers(&headers(&[("x-api-key", "k"), version]), None),
        Ok(())
    );
    assert_eq!(
        Wire::Anthropic.check_headers(&headers(&[("authorization", "Bearer k"), version]), None),
        Ok(())
    );
    assert_eq!(
        Wire::Anthropic.check_headers(&headers(&[version]), None),
        Err(Problem::Unauthenticated)
    );
    assert_eq!(
        Wire::Anthropic.check_headers(&headers(&[("authorization", "Bearer "), version]), None),
        Err(Problem::Unauthenticated)
    );
    assert_eq!(
        Wire::Anthropic.check_headers(&headers(&[("x-api-key", " "), version]), None),
        Err(Problem::Unauthenticated)
    );
    assert!(matches!(
        Wire::Anthropic.check_headers(&headers(&[("x-api-key", "k")]), None),
        Err(Problem::BadRequest(m)) if m.contains("anthropic-version")
    ));
    assert_eq!(
        Wire::OpenAi.check_headers(&headers(&[("authorization", "Bearer k")]), None),
        Ok(())
    );
    for bad in ["Bearer ", "Basic k", "k"] {
        assert_eq!(
            Wire::OpenAi.check_headers(&headers(&[("authorization", bad)]), None),
            Err(Problem::Unauthenticated),
            "{bad}"
        );
    }
    assert_eq!(
        Wire::Gemini.check_headers(&headers(&[("x-goog-api-key", "k")]), None),
        Ok(())
    );
    assert_eq!(
        Wire::Gemini.check_headers(&headers(&[]), Some("alt=sse&key=k")),
        Ok(())
    );
    assert_eq!(
        Wire::Gemini.check_headers(&headers(&[]), Some("key=")),
        Err(Problem::Unauthenticated)
    );
    assert_eq!(
        Wire::Gemini.check_headers(&headers(&[]), None),
        Err(Problem::Unauthenticated)
    );
}

#[test]
fn waits_round_up() {
    assert_eq!(whole_secs(Duration::from_millis(100)), 1);
    assert_eq!(whole_secs(Duration::from_millis(2001)), 3);
    assert_eq!(whole_secs(Duration::ZERO), 1);
    assert_eq!(millis(Duration::from_micros(1500)), 2);
    assert_eq!(millis(Duration::ZERO), 1);
}
