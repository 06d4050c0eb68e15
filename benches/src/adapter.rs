//! The adapter bench's two clients: one request through `breakwater_http::Client`,
//! and the same request with bare reqwest — the same `reqwest::Client` settings, the
//! same headers and body, the same JSON parsed — so the difference between the two is
//! what Breakwater adds to a call.

use std::time::Duration;

use breakwater_core::{RouteConfig, TaskKind};
use breakwater_http::Client;
use breakwater_http::wire::{Provider, Request};
use serde_json::Value;

use crate::loopback::Loopback;

/// An Anthropic Messages answer of a typical short completion.
pub const ANSWER: &str = r#"{"id":"msg_01XFDUDYJgAACzvnptvVoYEL","type":"message","role":"assistant","model":"claude-sonnet-4-5","content":[{"type":"text","text":"The capital of France is Paris. It has been the country's capital since the tenth century and is its largest city, home to about two million people."}],"stop_reason":"end_turn","stop_sequence":null,"usage":{"input_tokens":25,"output_tokens":38}}"#;

/// The text of [`ANSWER`].
pub const ANSWER_TEXT: &str = "The capital of France is Paris. It has been the country's capital since the tenth century and is its largest city, home to about two million people.";

/// The model both clients ask for.
pub const MODEL: &str = "claude-sonnet-4-5";

const SYSTEM: &str = "You are a concise assistant.";
const USER: &str = "What is the capital of France?";
const MAX_TOKENS: u32 = 256;
const API_KEY: &str = "sk-bench-not-a-real-key";

/// The `reqwest::Client` both paths use: no proxy (loopback), otherwise defaults.
///
/// # Panics
///
/// If reqwest cannot build a client (no TLS backend is involved, so it does not).
#[must_use]
pub fn http_client() -> reqwest::Client {
    reqwest::Client::builder()
        .no_proxy()
        .build()
        .expect("a plain reqwest client builds")
}

/// A Breakwater client with one provider, `anthropic` at `base_url`, and one route,
/// `chat`: one step, three attempts, default breakers and budgets.
///
/// # Panics
///
/// If the fixed route or client configuration is rejected (it is valid).
#[must_use]
pub fn breakwater_client(base_url: &str, http: reqwest::Client) -> Client {
    let route = RouteConfig::from_toml(&format!(
        r#"
        name = "chat"
        [[step]]
        provider = "anthropic"
        model = "{MODEL}"
        attempts = 3
        timeout_ms = 30000
        "#
    ))
    .expect("the bench route parses");
    Client::builder()
        .provider("anthropic", Provider::Anthropic, base_url, API_KEY)
        .route(route)
        .seed(1)
        .http_client(http)
        .build()
        .expect("the bench client builds")
}

/// A current-thread tokio runtime with the loopback server answering [`ANSWER`]
/// started on it: what every adapter measurement runs on (the server and the client
/// share the one thread, so a call's time is the work on both ends, not a hop between
/// threads).
///
/// # Errors
///
/// If the runtime cannot be built or the server cannot bind a loopback port.
pub fn runtime_with_server() -> std::io::Result<(tokio::runtime::Runtime, Loopback)> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let server = rt.block_on(Loopback::start(ANSWER))?;
    Ok((rt, server))
}

/// The request both clients send.
#[must_use]
pub fn request() -> Request {
    Request::new(MAX_TOKENS).system(SYSTEM).user(USER)
}

/// One call through the Breakwater client; returns the answer's text.
///
/// # Errors
///
/// What the client returns, or an error for a degraded answer.
pub async fn breakwater_call(client: &Client, request: &Request) -> Result<String, String> {
    let done = client
        .complete(
            "chat",
            request,
            TaskKind::Interactive,
            Duration::from_secs(30),
        )
        .await
        .map_err(|e| e.to_string())?;
    if done.is_degraded() {
        return Err("degraded".to_owned());
    }
    Ok(done.text)
}

/// What [`bare_call`] reads from the answer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BareAnswer {
    /// The text blocks, concatenated.
    pub text: String,
    /// `usage.input_tokens`.
    pub input_tokens: u64,
    /// `usage.output_tokens`.
    pub output_tokens: u64,
}

/// The same call with bare reqwest, as hand-written client code would make it: build
/// the JSON body, POST it with the same headers, read the body, parse it and take the
/// text and usage.
///
/// # Errors
///
/// A transport error, a non-2xx status, or a body that is not a message.
pub async fn bare_call(http: &reqwest::Client, base_url: &str) -> Result<BareAnswer, String> {
    let body = serde_json::json!({
        "model": MODEL,
        "max_tokens": MAX_TOKENS,
        "system": SYSTEM,
        "messages": [{ "role": "user", "content": USER }],
    });
    let response = http
        .post(format!("{base_url}/v1/messages"))
        .header("x-api-key", API_KEY)
        .header("anthropic-version", "2023-06-01")
        .header("content-type", "application/json")
        .body(body.to_string())
        .send()
        .await
        .map_err(|e| e.to_string())?;
    if !response.status().is_success() {
        return Err(format!("status {}", response.status()));
    }
    let bytes = response.bytes().await.map_err(|e| e.to_string())?;
    let value: Value = serde_json::from_slice(&bytes).map_err(|e| e.to_string())?;
    let Some(Value::Array(blocks)) = value.get("content") else {
        return Err("content is not an array".to_owned());
    };
    let mut text = String::new();
    for block in blocks {
        if block.get("type").and_then(Value::as_str) == Some("text") {
            text.push_str(
                block
                    .get("text")
                    .and_then(Value::as_str)
                    .ok_or("text block without text")?,
            );
        }
    }
    Ok(BareAnswer {
        text,
        input_tokens: value["usage"]["input_tokens"].as_u64().unwrap_or(0),
        output_tokens: value["usage"]["output_tokens"].as_u64().unwrap_or(0),
    })
}
