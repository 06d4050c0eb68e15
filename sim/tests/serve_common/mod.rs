//! Helpers shared by the `serve` tests: start a server, send a rendered request, read
//! what comes back with `breakwater-http`'s own parsers.
#![allow(dead_code)] // each test binary uses its own subset

use std::time::Duration;

use breakwater_http::sse::SseParser;
use breakwater_http::wire::{Provider, Request, StreamItem};
use breakwater_sim::scenario::Scenario;
use breakwater_sim::serve::{Running, ServeConfig, Server};

/// The storm scenario of the examples.
pub(crate) const SERVE_529: &str = include_str!("../../scenarios/serve-529.toml");

/// A server for the scenario `toml`, configured by `config`, on a free loopback port.
pub(crate) async fn start(toml: &str, config: impl FnOnce(ServeConfig) -> ServeConfig) -> Running {
    let scenario = Scenario::from_toml(toml).expect("scenario parses");
    let addr = "127.0.0.1:0".parse().expect("loopback address");
    Server::bind(addr, config(ServeConfig::new(scenario)))
        .await
        .expect("serve binds loopback")
}

/// A reqwest client that never goes through a proxy.
pub(crate) fn http() -> reqwest::Client {
    reqwest::Client::builder()
        .no_proxy()
        .build()
        .expect("reqwest")
}

/// A short request.
pub(crate) fn hello() -> Request {
    Request::new(64)
        .system("Be brief.")
        .user("Say hello, please.")
}

/// Sends `request` to `base` as `provider` renders it, with a key.
pub(crate) async fn send(
    base: &str,
    provider: Provider,
    model: &str,
    request: &Request,
    stream: bool,
) -> reqwest::Response {
    let rendered = provider.render(request, model, None, stream);
    let auth = provider.auth_header("test-key");
    let mut builder = http()
        .post(format!("{base}{}", rendered.path))
        .header(auth.name(), auth.value())
        .body(rendered.body);
    for (name, value) in &rendered.headers {
        builder = builder.header(*name, value.as_str());
    }
    builder.send().await.expect("request sent")
}

/// A whole SSE body through the SSE parser and `provider`'s decoder.
pub(crate) fn decode(provider: Provider, body: &[u8]) -> Vec<StreamItem> {
    let mut parser = SseParser::new();
    let mut decoder = provider.stream_decoder();
    let mut events = Vec::new();
    parser.push(body, &mut events).expect("SSE parses");
    let mut items = Vec::new();
    for e in &events {
        items.extend(decoder.decode(e).expect("event decodes"));
    }
    items.extend(
        decoder
            .finish()
            .expect("the stream ended with its end marker"),
    );
    items.retain(|i| *i != StreamItem::Ignored);
    items
}

/// The text of decoded items.
pub(crate) fn text(items: &[StreamItem]) -> String {
    items
        .iter()
        .filter_map(|i| match i {
            StreamItem::Text(t) => Some(t.as_str()),
            _ => None,
        })
        .collect()
}

/// Status and the provider's error code, as `breakwater-http` reads them.
pub(crate) async fn refusal(
    response: reqwest::Response,
    provider: Provider,
) -> (u16, Option<String>) {
    let status = response.status().as_u16();
    let body = response.bytes().await.expect("body");
    let error = provider.parse_error(status, &body);
    assert!(
        error.recognized,
        "{provider:?} {status}: {}",
        String::from_utf8_lossy(&body)
    );
    (status, error.code)
}

/// Polls `done` every 20 ms for at most `limit`.
pub(crate) async fn eventually(limit: Duration, mut done: impl FnMut() -> bool) -> bool {
    let mut waited = Duration::ZERO;
    while !done() && waited < limit {
        tokio::time::sleep(Duration::from_millis(20)).await;
        waited += Duration::from_millis(20);
    }
    done()
}
