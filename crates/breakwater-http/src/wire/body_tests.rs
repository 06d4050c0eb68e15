//! Each typed body against the `serde_json::Value` rendering it replaced, byte for byte.

use std::collections::BTreeMap;

use proptest::prelude::*;
use serde_json::{Map, Value, json};

use super::super::openai::MaxTokensField;
use super::super::request::{Prompt, PromptVariant, Request, Role};
use super::super::{Message, Provider};

fn temperature_json(temperature: Option<f32>) -> Option<Value> {
    let t = temperature.filter(|t| t.is_finite())?;
    let wide = t.to_string().parse::<f64>().unwrap_or(f64::from(t));
    serde_json::Number::from_f64(wide).map(Value::Number)
}

fn role_name(role: Role, assistant: &'static str) -> &'static str {
    match role {
        Role::User => "user",
        Role::Assistant => assistant,
    }
}

/// The former Anthropic rendering.
fn anthropic_value(request: &Request, prompt: &Prompt<'_>, model: &str, stream: bool) -> Vec<u8> {
    let messages: Vec<Value> = prompt
        .turns
        .iter()
        .map(|(role, content)| json!({ "role": role_name(*role, "assistant"), "content": content }))
        .collect();
    let mut body = Map::new();
    body.insert("model".into(), model.into());
    body.insert("max_tokens".into(), request.max_tokens.into());
    if let Some(system) = prompt.system {
        body.insert("system".into(), system.into());
    }
    body.insert("messages".into(), messages.into());
    if let Some(temperature) = temperature_json(request.temperature) {
        body.insert("temperature".into(), temperature);
    }
    if !request.stop.is_empty() {
        body.insert("stop_sequences".into(), request.stop.clone().into());
    }
    if let Some(user_id) = request.metadata.get("user_id") {
        body.insert("metadata".into(), json!({ "user_id": user_id }));
    }
    if stream {
        body.insert("stream".into(), true.into());
    }
    Value::Object(body).to_string().into_bytes()
}

/// The former OpenAI rendering.
fn openai_value(
    request: &Request,
    prompt: &Prompt<'_>,
    model: &str,
    stream: bool,
    limit_field: MaxTokensField,
) -> Vec<u8> {
    let mut messages: Vec<Value> = Vec::new();
    if let Some(system) = prompt.system {
        messages.push(json!({ "role": "system", "content": system }));
    }
    for (role, content) in &prompt.turns {
        messages.push(json!({ "role": role_name(*role, "assistant"), "content": content }));
    }
    let limit_name = match limit_field {
        MaxTokensField::MaxCompletionTokens => "max_completion_tokens",
        MaxTokensField::MaxTokens => "max_tokens",
    };
    let mut body = Map::new();
    body.insert("model".into(), model.into());
    body.insert("messages".into(), messages.into());
    body.insert(limit_name.into(), request.max_tokens.into());
    if let Some(temperature) = temperature_json(request.temperature) {
        body.insert("temperature".into(), temperature);
    }
    if !request.stop.is_empty() {
        body.insert("stop".into(), request.stop.clone().into());
    }
    if stream {
        body.insert("stream".into(), true.into());
        body.insert("stream_options".into(), json!({ "include_usage": true }));
    }
    Value::Object(body).to_string().into_bytes()
}

/// The former Gemini rendering.
fn gemini_value(request: &Request, prompt: &Prompt<'_>) -> Vec<u8> {
    let contents: Vec<Value> = prompt
        .turns
        .iter()
        .map(|(role, content)| {
            json!({ "role": role_name(*role, "model"), "parts": [{ "text": content }] })
        })
        .collect();
    let mut config = Map::new();
    config.insert("maxOutputTokens".into(), request.max_tokens.into());
    if let Some(temperature) = temperature_json(request.temperature) {
        config.insert("temperature".into(), temperature);
    }
    if !request.stop.is_empty() {
        config.insert("stopSequences".into(), request.stop.clone().into());
    }
    let mut body = Map::new();
    body.insert("contents".into(), contents.into());
    if let Some(system) = prompt.system {
        body.insert(
            "systemInstruction".into(),
            json!({ "parts": [{ "text": system }] }),
        );
    }
    body.insert("generationConfig".into(), config.into());
    Value::Object(body).to_string().into_bytes()
}

/// Every body of `request`, typed and by `Value`, for both stream settings and both
/// OpenAI limit fields.
fn assert_same(request: &Request, variant: Option<&PromptVariant>) {
    let prompt = Prompt::new(request, variant);
    let model = "m-1 \"quoted\"";
    for stream in [false, true] {
        assert_eq!(
            String::from_utf8_lossy(&super::anthropic(request, &prompt, model, stream)),
            String::from_utf8_lossy(&anthropic_value(request, &prompt, model, stream)),
        );
        for field in [
            MaxTokensField::MaxCompletionTokens,
            MaxTokensField::MaxTokens,
        ] {
            assert_eq!(
                String::from_utf8_lossy(&super::openai(request, &prompt, model, stream, field)),
                String::from_utf8_lossy(&openai_value(request, &prompt, model, stream, field)),
            );
        }
    }
    assert_eq!(
        String::from_utf8_lossy(&super::gemini(request, &prompt)),
        String::from_utf8_lossy(&gemini_value(request, &prompt)),
    );
}

#[test]
fn a_bare_request_renders_as_before() {
    assert_same(&Request::new(16), None);
    assert_same(&Request::new(16).user("hi"), None);
}

#[test]
fn every_field_renders_as_before() {
    let mut request = Request::new(4096)
        .system("be brief \u{1F600}")
        .user("first \"q\"\n")
        .assistant("an answer")
        .user("second");
    request.temperature = Some(0.7);
    request.stop = vec!["END".into(), "\\stop".into()];
    request.metadata.insert("user_id".into(), "u-42".into());
    request.metadata.insert("other".into(), "ignored".into());
    assert_same(&request, None);
    let variant = PromptVariant {
        system: Some("variant system".into()),
        user_prefix: Some("<q>".into()),
        user_suffix: Some("</q>".into()),
    };
    assert_same(&request, Some(&variant));
    assert_same(&request, Some(&PromptVariant::default()));
}

#[test]
fn odd_temperatures_render_as_before() {
    for t in [
        0.0,
        -0.0,
        1e-30,
        3.4e38,
        f32::NAN,
        f32::INFINITY,
        f32::NEG_INFINITY,
    ] {
        let mut request = Request::new(1).user("x");
        request.temperature = Some(t);
        assert_same(&request, None);
    }
}

#[test]
fn the_public_render_sends_the_typed_body() {
    let request = Request::new(8).system("s").user("u");
    for provider in [Provider::Anthropic, Provider::OpenAi, Provider::Gemini] {
        let rendered = provider.render(&request, "m", None, false);
        let value: Value = serde_json::from_slice(&rendered.body).expect("JSON body");
        assert!(value.is_object(), "{provider:?}: {value}");
    }
}

fn arb_request() -> impl Strategy<Value = Request> {
    let message = (any::<bool>(), any::<String>()).prop_map(|(user, content)| Message {
        role: if user { Role::User } else { Role::Assistant },
        content,
    });
    (
        proptest::option::of(any::<String>()),
        proptest::collection::vec(message, 0..4),
        any::<u32>(),
        proptest::option::of(any::<f32>()),
        proptest::collection::vec(any::<String>(), 0..3),
        proptest::option::of(any::<String>()),
    )
        .prop_map(
            |(system, messages, max_tokens, temperature, stop, user_id)| {
                let mut metadata = BTreeMap::new();
                if let Some(user_id) = user_id {
                    metadata.insert("user_id".to_owned(), user_id);
                }
                Request {
                    system,
                    messages,
                    max_tokens,
                    temperature,
                    stop,
                    metadata,
                }
            },
        )
}

proptest! {
    #[test]
    fn any_request_renders_as_before(
        request in arb_request(),
        variant in proptest::option::of((
            proptest::option::of(any::<String>()),
            proptest::option::of(any::<String>()),
            proptest::option::of(any::<String>()),
        )),
    ) {
        let variant = variant.map(|(system, user_prefix, user_suffix)| PromptVariant {
            system,
            user_prefix,
            user_suffix,
        });
        assert_same(&request, variant.as_ref());
    }
}
