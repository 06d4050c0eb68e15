//! The request bodies as typed serde structs borrowing from the request: no
//! `serde_json::Value` tree is built for a body.
//!
//! The bytes are those the `Value` rendering gave (serde_json without `preserve_order`
//! writes an object's keys sorted), so each struct lists its fields in byte order of
//! their JSON names; the tests below hold every body to that rendering.

use std::borrow::Cow;

use serde::Serialize;
use serde::ser::{SerializeSeq, Serializer};

use super::openai::MaxTokensField;
use super::request::{Prompt, Request, Role};

/// The temperature as sent: its shortest decimal form as an `f64` (0.7, not
/// 0.699999988079071), `None` when absent or not finite.
fn temperature(temperature: Option<f32>) -> Option<f64> {
    let t = temperature.filter(|t| t.is_finite())?;
    // A finite f32 prints as a decimal that parses back as f64; the fallback is unreachable.
    Some(t.to_string().parse::<f64>().unwrap_or(f64::from(t)))
}

fn none_if_empty(stop: &[String]) -> Option<&[String]> {
    (!stop.is_empty()).then_some(stop)
}

/// A message `{content, role}` (Anthropic, OpenAI).
#[derive(Serialize)]
struct Message<'a> {
    content: &'a str,
    role: &'static str,
}

/// The prompt's turns as messages, with `system` first when given (OpenAI's form).
struct Messages<'a> {
    system: Option<&'a str>,
    turns: &'a [(Role, Cow<'a, str>)],
}

impl Serialize for Messages<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let len = self.turns.len() + usize::from(self.system.is_some());
        let mut seq = serializer.serialize_seq(Some(len))?;
        if let Some(system) = self.system {
            seq.serialize_element(&Message {
                content: system,
                role: "system",
            })?;
        }
        for (role, content) in self.turns {
            let role = match role {
                Role::User => "user",
                Role::Assistant => "assistant",
            };
            seq.serialize_element(&Message { content, role })?;
        }
        seq.end()
    }
}

/// `metadata: {user_id}` (Anthropic).
#[derive(Serialize)]
struct Metadata<'a> {
    user_id: &'a str,
}

/// The Anthropic Messages body.
#[derive(Serialize)]
struct Anthropic<'a> {
    max_tokens: u32,
    messages: Messages<'a>,
    #[serde(skip_serializing_if = "Option::is_none")]
    metadata: Option<Metadata<'a>>,
    model: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    stop_sequences: Option<&'a [String]>,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    stream: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    system: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    temperature: Option<f64>,
}

/// The Anthropic Messages body of `request` for `model`, with `prompt`.
pub(super) fn anthropic(
    request: &Request,
    prompt: &Prompt<'_>,
    model: &str,
    stream: bool,
) -> Vec<u8> {
    to_vec(&Anthropic {
        max_tokens: request.max_tokens,
        messages: Messages {
            system: None,
            turns: &prompt.turns,
        },
        metadata: request
            .metadata
            .get("user_id")
            .map(|user_id| Metadata { user_id }),
        model,
        stop_sequences: none_if_empty(&request.stop),
        stream,
        system: prompt.system,
        temperature: temperature(request.temperature),
    })
}

/// `stream_options: {include_usage: true}` (OpenAI).
#[derive(Serialize)]
struct StreamOptions {
    include_usage: bool,
}

/// The OpenAI Chat Completions body: the limit in one of its two fields.
#[derive(Serialize)]
struct OpenAi<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    max_completion_tokens: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    max_tokens: Option<u32>,
    messages: Messages<'a>,
    model: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    stop: Option<&'a [String]>,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    stream: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    stream_options: Option<StreamOptions>,
    #[serde(skip_serializing_if = "Option::is_none")]
    temperature: Option<f64>,
}

/// The OpenAI Chat Completions body of `request` for `model`, with `prompt`.
pub(super) fn openai(
    request: &Request,
    prompt: &Prompt<'_>,
    model: &str,
    stream: bool,
    limit_field: MaxTokensField,
) -> Vec<u8> {
    let limit = request.max_tokens;
    to_vec(&OpenAi {
        max_completion_tokens: (limit_field == MaxTokensField::MaxCompletionTokens)
            .then_some(limit),
        max_tokens: (limit_field == MaxTokensField::MaxTokens).then_some(limit),
        messages: Messages {
            system: prompt.system,
            turns: &prompt.turns,
        },
        model,
        stop: none_if_empty(&request.stop),
        stream,
        stream_options: stream.then_some(StreamOptions {
            include_usage: true,
        }),
        temperature: temperature(request.temperature),
    })
}

/// `{text}` (Gemini).
#[derive(Serialize)]
struct Part<'a> {
    text: &'a str,
}

/// `{parts: [{text}], role}` (Gemini); no role for the system instruction.
#[derive(Serialize)]
struct Content<'a> {
    parts: [Part<'a>; 1],
    #[serde(skip_serializing_if = "Option::is_none")]
    role: Option<&'static str>,
}

/// The prompt's turns as Gemini contents.
struct Contents<'a>(&'a [(Role, Cow<'a, str>)]);

impl Serialize for Contents<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_seq(self.0.iter().map(|(role, content)| Content {
            parts: [Part { text: content }],
            role: Some(match role {
                Role::User => "user",
                Role::Assistant => "model",
            }),
        }))
    }
}

/// Gemini's `generationConfig`.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct GenerationConfig<'a> {
    max_output_tokens: u32,
    #[serde(skip_serializing_if = "Option::is_none")]
    stop_sequences: Option<&'a [String]>,
    #[serde(skip_serializing_if = "Option::is_none")]
    temperature: Option<f64>,
}

/// The Gemini `generateContent` body.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Gemini<'a> {
    contents: Contents<'a>,
    generation_config: GenerationConfig<'a>,
    #[serde(skip_serializing_if = "Option::is_none")]
    system_instruction: Option<Content<'a>>,
}

/// The Gemini `generateContent` body of `request`, with `prompt`.
pub(super) fn gemini(request: &Request, prompt: &Prompt<'_>) -> Vec<u8> {
    to_vec(&Gemini {
        contents: Contents(&prompt.turns),
        generation_config: GenerationConfig {
            max_output_tokens: request.max_tokens,
            stop_sequences: none_if_empty(&request.stop),
            temperature: temperature(request.temperature),
        },
        system_instruction: prompt.system.map(|text| Content {
            parts: [Part { text }],
            role: None,
        }),
    })
}

/// `body` as JSON. Serializing these structs cannot fail: every map key is a string
/// and every number finite; an empty body would be refused by the provider, never sent
/// silently wrong.
fn to_vec<T: Serialize>(body: &T) -> Vec<u8> {
    serde_json::to_vec(body).unwrap_or_default()
}

#[cfg(test)]
#[path = "body_tests.rs"]
mod tests;
