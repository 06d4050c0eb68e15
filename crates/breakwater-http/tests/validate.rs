//! Output validation through the client: an answer in the wrong shape is billed,
//! recorded, retried once at its step and then handed to the fallback.

mod fake;

use std::time::Duration;

use breakwater_core::{Class, ClassKind, Key, Price, PriceTable, RouteConfig, TaskKind};
use breakwater_http::validate::Validator;
use breakwater_http::wire::{Provider, Request};
use breakwater_http::{BuildError, Client};
use fake::{FakeServer, json};

const ROUTE: &str = r#"
    name = "extract"
    validator = "ticket"
    [[step]]
    provider = "a"
    model = "m-a"
    attempts = 3
    timeout_ms = 5000
    [[step]]
    provider = "b"
    model = "m-b"
    attempts = 1
    timeout_ms = 5000
"#;

/// An OpenAI answer whose text is `content` (a JSON string literal, escaped).
fn openai_says(content: &str) -> String {
    format!(
        r#"{{"id":"c","object":"chat.completion","model":"m-b","choices":[{{"index":0,"message":{{"role":"assistant","content":{content}}},"finish_reason":"stop"}}],"usage":{{"prompt_tokens":10,"completion_tokens":6}}}}"#
    )
}

fn client(a: &str, b: &str, route: &str) -> Result<Client, BuildError> {
    let schema = serde_json::json!({
        "type": "object",
        "required": ["title", "priority"],
        "properties": { "priority": { "enum": ["low", "high"] } }
    });
    Client::builder()
        .provider("a", Provider::Anthropic, a, "sk-a")
        .provider("b", Provider::OpenAi, b, "sk-b")
        .route(RouteConfig::from_toml(route).expect("route"))
        .validator("ticket", Validator::json_schema(&schema).expect("schema"))
        .prices(
            PriceTable::new()
                .with("m-a", Price::per_million(3.0, 15.0))
                .with("m-b", Price::per_million(0.15, 0.6)),
        )
        .seed(5)
        .http_client(
            reqwest::Client::builder()
                .no_proxy()
                .build()
                .expect("reqwest"),
        )
        .build()
}

#[tokio::test]
async fn an_answer_that_fails_validation_goes_to_the_fallback_which_passes() {
    // The primary chats instead of answering in JSON, twice; the fallback complies.
    let a = FakeServer::start(vec![
        json(200, &[], fake::ANTHROPIC_OK),
        json(200, &[], fake::ANTHROPIC_OK),
    ])
    .await;
    let ticket = r#""{\"title\":\"Disk full\",\"priority\":\"high\"}""#;
    let b = FakeServer::start(vec![json(200, &[], &openai_says(ticket))]).await;
    let client = client(&a.url(), &b.url(), ROUTE).expect("client");
    let done = client
        .complete(
            "extract",
            &Request::new(64).user("File a ticket: the disk is full."),
            TaskKind::Interactive,
            Duration::from_secs(10),
        )
        .await
        .expect("the fallback answers");
    assert_eq!(done.text, r#"{"title":"Disk full","priority":"high"}"#);
    assert_eq!(done.key, Some(Key::new("b", "m-b")));
    assert!(done.fallback);
    // One retry at the primary (of its three attempts), then the fallback.
    assert_eq!(a.received().len(), 2);
    let classes: Vec<(usize, ClassKind)> = done
        .history
        .attempts()
        .map(|(step, _, c)| (step, c.kind()))
        .collect();
    assert_eq!(
        classes,
        [
            (0, ClassKind::InvalidOutput),
            (0, ClassKind::InvalidOutput),
            (1, ClassKind::Success)
        ]
    );
    // The invalid answers were billed: 12 in, 5 out at $3/$15 per million, twice.
    let primary = Price::per_million(3.0, 15.0).cost(breakwater_core::Usage::new(12, 5));
    assert!(
        done.cost.nanodollars() > 2 * primary.nanodollars(),
        "{}",
        done.cost
    );
    // Not a breaker fault.
    let breaker = client
        .registry()
        .breaker(&Key::new("a", "m-a"))
        .expect("breaker");
    assert_eq!(breaker.check(breakwater_core::Time::ZERO), Ok(()));
    let snapshot = client.metrics();
    assert_eq!(snapshot.successes, 1);
    a.shutdown().await;
    b.shutdown().await;
}

#[tokio::test]
async fn the_builtin_json_validator_and_a_step_override() {
    // The route asks for JSON; the fallback step asks for nothing and takes prose.
    let route = ROUTE
        .replace("validator = \"ticket\"", "validator = \"json\"")
        .replace(
            "    provider = \"b\"\n",
            "    provider = \"b\"\n    validator = \"prose\"\n",
        );
    let a = FakeServer::start(vec![
        json(200, &[], fake::ANTHROPIC_OK),
        json(200, &[], fake::ANTHROPIC_OK),
    ])
    .await;
    let b = FakeServer::start(vec![json(200, &[], fake::OPENAI_OK)]).await;
    let client = Client::builder()
        .provider("a", Provider::Anthropic, a.url(), "sk-a")
        .provider("b", Provider::OpenAi, b.url(), "sk-b")
        .route(RouteConfig::from_toml(&route).expect("route"))
        .validator(
            "prose",
            Validator::custom(|text| {
                if text.starts_with('{') {
                    Err("JSON where prose was asked".into())
                } else {
                    Ok(())
                }
            }),
        )
        .http_client(
            reqwest::Client::builder()
                .no_proxy()
                .build()
                .expect("reqwest"),
        )
        .build()
        .expect("client");
    let done = client
        .complete(
            "extract",
            &Request::new(64).user("Hi"),
            TaskKind::Interactive,
            Duration::from_secs(10),
        )
        .await
        .expect("answer");
    assert_eq!(done.text, "Hello from GPT");
    let first = done.history.attempts().next().map(|(_, _, c)| c);
    assert_eq!(first, Some(Class::InvalidOutput));
    a.shutdown().await;
    b.shutdown().await;
}

#[test]
fn a_route_naming_an_unknown_validator_is_refused_at_build() {
    let route = ROUTE.replace("validator = \"ticket\"", "validator = \"nope\"");
    let err = client("http://127.0.0.1:1", "http://127.0.0.1:1", &route).unwrap_err();
    assert_eq!(
        err.to_string(),
        "route \"extract\" step 0: no validator named \"nope\""
    );
}
