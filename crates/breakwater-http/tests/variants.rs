//! A route step's prompt variant replaces the request's system prompt, for every provider.

mod common;

use breakwater_http::wire::{PromptVariant, PromptVariants, Provider, Request};
use common::body_json;
use serde_json::{Value, json};

const PROVIDERS: [Provider; 3] = [Provider::Anthropic, Provider::OpenAi, Provider::Gemini];

fn request() -> Request {
    Request::new(64)
        .system("DEFAULT PROMPT")
        .user("first question")
        .assistant("first answer")
        .user("second question")
}

fn variants() -> PromptVariants {
    [
        (
            "claude-xml",
            PromptVariant {
                system: Some("TUNED FOR CLAUDE".into()),
                user_prefix: Some("<q>".into()),
                user_suffix: Some("</q>".into()),
            },
        ),
        ("bare", PromptVariant::default()),
        ("gpt", PromptVariant::with_system("TUNED FOR GPT")),
    ]
    .into_iter()
    .collect()
}

/// The system prompt and the user turns, read back from any provider's body.
fn read_back(provider: Provider, body: &Value) -> (Option<String>, Vec<String>) {
    let text = |v: &Value| v.as_str().map(str::to_owned);
    match provider {
        Provider::Anthropic => (
            body.get("system").and_then(text),
            body["messages"]
                .as_array()
                .expect("messages")
                .iter()
                .filter(|m| m["role"] == "user")
                .filter_map(|m| text(&m["content"]))
                .collect(),
        ),
        Provider::OpenAi => {
            let messages = body["messages"].as_array().expect("messages");
            let system = messages
                .iter()
                .find(|m| m["role"] == "system")
                .and_then(|m| text(&m["content"]));
            let users = messages
                .iter()
                .filter(|m| m["role"] == "user")
                .filter_map(|m| text(&m["content"]))
                .collect();
            (system, users)
        }
        Provider::Gemini => (
            body.pointer("/systemInstruction/parts/0/text")
                .and_then(text),
            body["contents"]
                .as_array()
                .expect("contents")
                .iter()
                .filter(|c| c["role"] == "user")
                .filter_map(|c| text(&c["parts"][0]["text"]))
                .collect(),
        ),
    }
}

#[test]
fn without_a_variant_the_default_prompt_is_used() {
    for provider in PROVIDERS {
        let body = body_json(&provider.render(&request(), "m", None, false));
        let (system, users) = read_back(provider, &body);
        assert_eq!(system.as_deref(), Some("DEFAULT PROMPT"), "{provider:?}");
        assert_eq!(users, ["first question", "second question"], "{provider:?}");
    }
}

#[test]
fn a_variant_replaces_the_system_prompt_and_wraps_the_last_user_turn() {
    let variants = variants();
    for provider in PROVIDERS {
        let rendered = provider.render(&request(), "m", variants.get("claude-xml"), true);
        let body = body_json(&rendered);
        let (system, users) = read_back(provider, &body);
        assert_eq!(system.as_deref(), Some("TUNED FOR CLAUDE"), "{provider:?}");
        assert_eq!(
            users,
            ["first question", "<q>second question</q>"],
            "{provider:?}"
        );
        let raw = String::from_utf8(rendered.body).unwrap();
        assert!(
            !raw.contains("DEFAULT PROMPT"),
            "{provider:?}: the default leaked"
        );
    }
}

#[test]
fn a_variant_without_a_system_prompt_sends_none() {
    let variants = variants();
    for provider in PROVIDERS {
        let rendered = provider.render(&request(), "m", variants.get("bare"), false);
        let (system, users) = read_back(provider, &body_json(&rendered));
        assert_eq!(system, None, "{provider:?}");
        assert_eq!(users, ["first question", "second question"], "{provider:?}");
        assert!(
            !String::from_utf8(rendered.body)
                .unwrap()
                .contains("DEFAULT PROMPT")
        );
    }
}

#[test]
fn variants_are_looked_up_by_id() {
    let variants = variants();
    assert_eq!(
        variants.ids().collect::<Vec<_>>(),
        ["bare", "claude-xml", "gpt"]
    );
    assert_eq!(
        variants.get("gpt").unwrap().system.as_deref(),
        Some("TUNED FOR GPT")
    );
    assert!(variants.get("missing").is_none());
    let mut more = PromptVariants::new();
    assert!(more.insert("x", PromptVariant::with_system("a")).is_none());
    assert_eq!(
        more.insert("x", PromptVariant::default()),
        Some(PromptVariant::with_system("a"))
    );
    // An empty default system prompt is not sent either.
    let empty = Request::new(8).system("").user("q");
    let body = body_json(&Provider::Anthropic.render(&empty, "m", None, false));
    assert_eq!(body.get("system"), None);
    assert_eq!(body["messages"], json!([{"role": "user", "content": "q"}]));
}
