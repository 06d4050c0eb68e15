//! `serve` on loopback, started in-process: each wire format's answers and refusals,
//! read by `breakwater-http`'s own parsers, and the storm window's 529s.

mod serve_common;

use std::time::Duration;

use breakwater_http::wire::{Completion, Provider, Request, StreamItem};
use serve_common::{SERVE_529, decode, hello, http, refusal, send, start, text};

/// Three healthy providers with short, fixed latencies.
const CALM: &str = r#"
name = "calm"
seed = 1
duration_s = 60
policies = ["naive"]

[[provider]]
name = "anthropic"
kind = "llm"
ttft = { median_ms = 40 }
per_token = { median_ms = 2 }
[[provider.model]]
name = "claude-sonnet-4-5"

[[provider]]
name = "openai"
kind = "llm"
ttft = { median_ms = 40 }
per_token = { median_ms = 2 }
[[provider.model]]
name = "gpt-4o-mini"

[[provider]]
name = "gemini"
kind = "llm"
ttft = { median_ms = 40 }
per_token = { median_ms = 2 }
[[provider.model]]
name = "gemini-2.5-flash"
[[provider.model]]
name = "gpt-4o-mini"

[[clients]]
name = "c"
kind = "open"
rate_per_s = 1
output_tokens = { median = 30, sigma = 0.3, max = 100 }
"#;

/// Non-streaming and streaming success in one wire format.
async fn success(provider: Provider, model: &str, prefix: &str) {
    let server = start(CALM, |c| c.speed(4.0)).await;
    let base = format!("{}{prefix}", server.url());
    let response = send(&base, provider, model, &hello(), false).await;
    assert_eq!(response.status(), 200, "{provider:?}");
    let body = response.bytes().await.expect("body");
    let done: Completion = provider.parse_response(&body).expect("a completion");
    let words = done.text.split(' ').count() as u64;
    assert!((1..=64).contains(&words), "{}", done.text);
    assert_eq!(done.usage.output, words, "one word per output token");
    assert_eq!(
        done.usage.input,
        "Be brief.Say hello, please.".len() as u64 / 4
    );
    assert!(done.stop_reason.is_some());

    let response = send(&base, provider, model, &hello(), true).await;
    assert_eq!(response.status(), 200);
    let content_type = response.headers()["content-type"]
        .to_str()
        .expect("ASCII")
        .to_owned();
    assert_eq!(content_type, "text/event-stream");
    let items = decode(provider, &response.bytes().await.expect("body"));
    let streamed = text(&items);
    assert!(!streamed.is_empty());
    let output = items.iter().rev().find_map(|i| match i {
        StreamItem::Usage { output, .. } => *output,
        _ => None,
    });
    assert_eq!(output, Some(streamed.split(' ').count() as u64));
    assert!(items.iter().any(|i| matches!(i, StreamItem::Stop { .. })));
    assert_eq!(items.last(), Some(&StreamItem::Done));
    let stats = server.stats();
    let arrivals: u64 = stats.iter().map(|(_, s)| s.arrivals).sum();
    assert_eq!(arrivals, 2);
    server.shutdown().await;
}

#[tokio::test]
async fn anthropic_answers_plain_and_streamed() {
    success(Provider::Anthropic, "claude-sonnet-4-5", "").await;
}

#[tokio::test]
async fn openai_answers_plain_and_streamed() {
    success(Provider::OpenAi, "gpt-4o-mini", "/openai").await;
}

#[tokio::test]
async fn gemini_answers_plain_and_streamed() {
    success(Provider::Gemini, "gemini-2.5-flash", "").await;
    success(Provider::Gemini, "gpt-4o-mini", "/gemini").await;
}

#[tokio::test]
async fn max_tokens_cuts_the_answer() {
    let server = start(CALM, |c| c.speed(4.0)).await;
    let response = send(
        &server.provider_url("openai"),
        Provider::OpenAi,
        "gpt-4o-mini",
        &Request::new(2).user("hi"),
        false,
    )
    .await;
    assert_eq!(response.status(), 200);
    let done = Provider::OpenAi
        .parse_response(&response.bytes().await.unwrap())
        .unwrap();
    assert_eq!(done.usage.output, 2);
    assert_eq!(done.stop_reason.as_deref(), Some("length"));
    server.shutdown().await;
}

#[tokio::test]
async fn refusals_come_in_each_wire_format() {
    let server = start(CALM, |c| {
        let mut c = c.speed(4.0);
        c.body_limit = 2_000;
        c
    })
    .await;
    let url = server.url();
    let cases = [
        (
            Provider::Anthropic,
            "claude-sonnet-4-5",
            [
                "authentication_error",
                "not_found_error",
                "invalid_request_error",
                "request_too_large",
            ],
        ),
        (
            Provider::OpenAi,
            "gpt-4o-mini",
            [
                "invalid_request_error",
                "model_not_found",
                "invalid_request_error",
                "request_too_large",
            ],
        ),
        (
            Provider::Gemini,
            "gemini-2.5-flash",
            [
                "UNAUTHENTICATED",
                "NOT_FOUND",
                "INVALID_ARGUMENT",
                "INVALID_ARGUMENT",
            ],
        ),
    ];
    for (provider, model, codes) in cases {
        let rendered = provider.render(&hello(), model, None, false);
        let auth = provider.auth_header("test-key");
        let post = |path: String, key: bool, body: Vec<u8>| {
            let mut b = http().post(format!("{url}{path}")).body(body);
            if key {
                b = b.header(auth.name(), auth.value());
            }
            for (name, value) in &rendered.headers {
                b = b.header(*name, value.as_str());
            }
            b.send()
        };
        // 401: no key.
        let r = post(rendered.path.clone(), false, rendered.body.clone())
            .await
            .unwrap();
        assert_eq!(refusal(r, provider).await, (401, Some(codes[0].to_owned())));
        // 404: a model of no provider, and a provider that does not exist.
        let unknown = provider.render(&hello(), "no-such-model", None, false);
        let r = post(unknown.path.clone(), true, unknown.body.clone())
            .await
            .unwrap();
        assert_eq!(refusal(r, provider).await, (404, Some(codes[1].to_owned())));
        let r = post(
            format!("/nowhere{}", rendered.path),
            true,
            rendered.body.clone(),
        )
        .await
        .unwrap();
        assert_eq!(refusal(r, provider).await.0, 404);
        // 400: a body that is not the wire's JSON.
        let r = post(rendered.path.clone(), true, b"{\"model\": 7".to_vec())
            .await
            .unwrap();
        assert_eq!(refusal(r, provider).await, (400, Some(codes[2].to_owned())));
        // 413: over the limit.
        let big = provider.render(&Request::new(8).user("x".repeat(5_000)), model, None, false);
        let r = post(big.path.clone(), true, big.body.clone())
            .await
            .unwrap();
        assert_eq!(refusal(r, provider).await, (413, Some(codes[3].to_owned())));
    }
    // A model two providers have needs the provider's prefix.
    let r = send(&url, Provider::OpenAi, "gpt-4o-mini", &hello(), false).await;
    let (status, _) = refusal(r, Provider::OpenAi).await;
    assert_eq!(status, 400);
    // Anthropic wants its version header.
    let r = http()
        .post(format!("{url}/v1/messages"))
        .header("x-api-key", "k")
        .body(r#"{"model":"claude-sonnet-4-5","max_tokens":5,"messages":[{"role":"user","content":"hi"}]}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(
        refusal(r, Provider::Anthropic).await,
        (400, Some("invalid_request_error".into()))
    );
    // Unknown paths and methods.
    assert_eq!(
        http()
            .post(format!("{url}/v2/nothing"))
            .send()
            .await
            .unwrap()
            .status(),
        404
    );
    assert_eq!(
        http()
            .get(format!("{url}/v1/messages"))
            .send()
            .await
            .unwrap()
            .status(),
        405
    );
    let no_sse = http()
        .post(format!(
            "{url}/v1beta/models/gemini-2.5-flash:streamGenerateContent"
        ))
        .header("x-goog-api-key", "k")
        .body(r#"{"contents":[{"parts":[{"text":"hi"}]}]}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(refusal(no_sse, Provider::Gemini).await.0, 400);
    let stats = server.stats();
    assert_eq!(
        stats.iter().map(|(_, s)| s.arrivals).sum::<u64>(),
        0,
        "refusals never reach the model"
    );
    server.shutdown().await;
}

#[tokio::test]
async fn the_storm_window_answers_529() {
    // Start inside the 10–30 s window, in real time: 18 s of storm ahead.
    let server = start(SERVE_529, |c| c.start(Duration::from_secs(12))).await;
    let url = server.url();
    let r = send(
        &url,
        Provider::Anthropic,
        "claude-sonnet-4-5",
        &hello(),
        false,
    )
    .await;
    assert_eq!(r.status(), 529);
    let error = Provider::Anthropic.parse_error(529, &r.bytes().await.unwrap());
    assert_eq!(error.code.as_deref(), Some("overloaded_error"));
    assert_eq!(error.message.as_deref(), Some("Overloaded"));
    // The same model through the other wires: their overload status, 503.
    let r = send(&url, Provider::OpenAi, "claude-sonnet-4-5", &hello(), true).await;
    assert_eq!(r.status(), 503);
    let r = send(&url, Provider::Gemini, "claude-sonnet-4-5", &hello(), false).await;
    assert_eq!(
        refusal(r, Provider::Gemini).await,
        (503, Some("UNAVAILABLE".into()))
    );
    // The other provider is healthy.
    let r = send(&url, Provider::OpenAi, "gpt-4o-mini", &hello(), false).await;
    assert_eq!(r.status(), 200);
    let stats = server.stats();
    assert_eq!(stats[0].0, "anthropic");
    assert_eq!((stats[0].1.overloaded, stats[0].1.served), (3, 0));
    assert_eq!(stats[1].1.served, 1);
    server.shutdown().await;
}
