//! Fast paths for success bodies (Anthropic Messages, OpenAI Chat Completions): one
//! typed pass of serde over the bytes, borrowing the strings that need no unescaping,
//! instead of a `serde_json::Value` tree read through JSON pointers.
//!
//! Each answers only the plain case — for Anthropic an object whose `content` is an
//! array of objects, whose `type` is not `"error"`, whose text blocks carry a string
//! `text`, whose `stop_reason` is a string or null and whose `usage` counts are whole
//! numbers or null; for OpenAI an object without an `error`, whose `choices` is a
//! non-empty array of objects with an object `message`, a string-or-null `content` and
//! `finish_reason` — and says `None` for anything else (an error body, a malformed
//! field, a duplicate key), which the provider's `parse_response` then reads the slow
//! way. So every answer they give is the one the slow path gives, and every error still
//! comes from the slow path; the tests hold the two to that.

use std::borrow::Cow;

use serde::Deserialize;
use serde::de::{Deserializer, Error, IgnoredAny, Visitor};

use super::response::{Completion, TokenUsage};

/// The parts of a Messages answer a completion is made of.
#[derive(Deserialize)]
struct Message<'a> {
    #[serde(rename = "type", borrow, default)]
    kind: Option<Text<'a>>,
    #[serde(borrow)]
    content: Vec<Block<'a>>,
    #[serde(default)]
    stop_reason: Option<String>,
    #[serde(default)]
    usage: Option<Usage>,
}

/// One content block: only text blocks matter.
#[derive(Deserialize)]
struct Block<'a> {
    #[serde(rename = "type", borrow, default)]
    kind: Option<Text<'a>>,
    #[serde(borrow, default)]
    text: Option<Text<'a>>,
}

#[derive(Deserialize)]
struct Usage {
    #[serde(default)]
    input_tokens: Option<u64>,
    #[serde(default)]
    output_tokens: Option<u64>,
}

/// The parts of a Chat Completions answer a completion is made of.
#[derive(Deserialize)]
struct ChatCompletion<'a> {
    /// Present (and not null) only in an error body: the slow path reads it.
    #[serde(default)]
    error: Option<IgnoredAny>,
    #[serde(borrow)]
    choices: Vec<Choice<'a>>,
    #[serde(default)]
    usage: Option<ChatUsage>,
}

#[derive(Deserialize)]
struct Choice<'a> {
    #[serde(borrow, default)]
    message: Option<ChatMessage<'a>>,
    #[serde(borrow, default)]
    finish_reason: Option<Text<'a>>,
}

#[derive(Deserialize)]
struct ChatMessage<'a> {
    #[serde(borrow, default)]
    content: Option<Text<'a>>,
}

#[derive(Deserialize)]
struct ChatUsage {
    #[serde(default)]
    prompt_tokens: Option<u64>,
    #[serde(default)]
    completion_tokens: Option<u64>,
}

/// A JSON string, borrowed from the body when it holds no escapes (serde's own
/// `Cow` impl always copies).
struct Text<'a>(Cow<'a, str>);

impl<'de: 'a, 'a> Deserialize<'de> for Text<'a> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct TextVisitor<'a>(std::marker::PhantomData<&'a ()>);
        impl<'de: 'a, 'a> Visitor<'de> for TextVisitor<'a> {
            type Value = Text<'a>;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a string")
            }
            fn visit_borrowed_str<E: Error>(self, v: &'de str) -> Result<Text<'a>, E> {
                Ok(Text(Cow::Borrowed(v)))
            }
            fn visit_str<E: Error>(self, v: &str) -> Result<Text<'a>, E> {
                Ok(Text(Cow::Owned(v.to_owned())))
            }
            fn visit_string<E: Error>(self, v: String) -> Result<Text<'a>, E> {
                Ok(Text(Cow::Owned(v)))
            }
        }
        deserializer.deserialize_str(TextVisitor(std::marker::PhantomData))
    }
}

/// The completion in an Anthropic `body` if it is a plain success answer; `None` for
/// anything the slow path must judge.
pub(super) fn anthropic_success(body: &[u8]) -> Option<Completion> {
    let message: Message<'_> = serde_json::from_slice(body).ok()?;
    if message.kind.as_ref().map(|k| &*k.0) == Some("error") {
        return None;
    }
    let mut text = String::new();
    for block in message.content {
        if block.kind.as_ref().map(|k| &*k.0) == Some("text") {
            // A text block without text is malformed: the slow path says so.
            let part = block.text?.0;
            if text.is_empty() {
                text = part.into_owned();
            } else {
                text.push_str(&part);
            }
        }
    }
    let usage = message.usage.unwrap_or(Usage {
        input_tokens: None,
        output_tokens: None,
    });
    Some(Completion {
        text,
        stop_reason: message.stop_reason,
        usage: TokenUsage {
            input: usage.input_tokens.unwrap_or(0),
            output: usage.output_tokens.unwrap_or(0),
        },
    })
}

/// The completion in an OpenAI `body` if it is a plain success answer; `None` for
/// anything the slow path must judge.
pub(super) fn openai_success(body: &[u8]) -> Option<Completion> {
    let answer: ChatCompletion<'_> = serde_json::from_slice(body).ok()?;
    if answer.error.is_some() {
        return None;
    }
    let first = answer.choices.into_iter().next()?;
    let usage = answer.usage.unwrap_or(ChatUsage {
        prompt_tokens: None,
        completion_tokens: None,
    });
    Some(Completion {
        text: first
            .message
            .and_then(|m| m.content)
            .map(|t| t.0.into_owned())
            .unwrap_or_default(),
        stop_reason: first.finish_reason.map(|t| t.0.into_owned()),
        usage: TokenUsage {
            input: usage.prompt_tokens.unwrap_or(0),
            output: usage.completion_tokens.unwrap_or(0),
        },
    })
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::{anthropic_success as parse_success, openai_success};
    use crate::wire::anthropic::{parse_response, parse_value};
    use crate::wire::openai;

    /// Bodies at the edges: each must read the same both ways, and the fast path must
    /// step aside for every one the slow path refuses.
    const BODIES: &[&str] = &[
        r#"{"type":"message","content":[{"type":"text","text":"Hi"}],"stop_reason":"end_turn","usage":{"input_tokens":3,"output_tokens":1}}"#,
        r#"{"content":[{"type":"text","text":"a\"b\u00e9"},{"type":"tool_use","id":"x"},{"type":"text","text":"c"}]}"#,
        r#"{"content":[],"stop_reason":null,"usage":null}"#,
        r#"{"content":[{"text":"untyped"}],"usage":{"input_tokens":null}}"#,
        r#"{"content":["a string", 7, null]}"#,
        r#"{"content":[{"type":"text"}]}"#,
        r#"{"content":[{"type":"text","text":null}]}"#,
        r#"{"content":[{"type":"text","text":7}]}"#,
        r#"{"content":{"type":"text"}}"#,
        r#"{"stop_reason":"end_turn"}"#,
        r#"{"content":[],"stop_reason":5}"#,
        r#"{"content":[],"usage":{"input_tokens":2.5}}"#,
        r#"{"content":[],"usage":{"input_tokens":-1}}"#,
        r#"{"content":[],"usage":"none"}"#,
        r#"{"content":[],"usage":{"output_tokens":18446744073709551615}}"#,
        r#"{"content":[],"type":7}"#,
        r#"{"content":[{"type":"text","text":"a"}],"content":[{"type":"text","text":"b"}]}"#,
        r#"{"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}}"#,
        r#"{"type":"error","content":[]}"#,
        r#"[1,2]"#,
        r#"{"content":[]} trailing"#,
        r#"{"content":[{"type":"text","text":"\ud800"}]}"#,
        "",
    ];

    #[test]
    fn reads_what_the_slow_path_reads_and_steps_aside_otherwise() {
        for body in BODIES {
            let slow = parse_value(body.as_bytes());
            let fast = parse_success(body.as_bytes());
            if let Some(fast) = fast {
                assert_eq!(Ok(fast), slow, "{body}");
            } else if let Ok(done) = &slow {
                // Stepping aside is allowed (duplicate keys), but then both paths of
                // `parse_response` still agree.
                assert_eq!(Ok(done.clone()), parse_response(body.as_bytes()), "{body}");
            }
            assert_eq!(parse_response(body.as_bytes()), slow, "{body}");
        }
    }

    #[test]
    fn takes_the_fast_path_for_a_plain_answer() {
        let body = br#"{"id":"msg_1","type":"message","role":"assistant","model":"m","content":[{"type":"text","text":"Paris."}],"stop_reason":"end_turn","stop_sequence":null,"usage":{"input_tokens":25,"output_tokens":38}}"#;
        let done = parse_success(body).expect("a plain answer takes the fast path");
        assert_eq!(done.text, "Paris.");
        assert_eq!(done.stop_reason.as_deref(), Some("end_turn"));
        assert_eq!((done.usage.input, done.usage.output), (25, 38));
    }

    fn block() -> impl Strategy<Value = String> {
        prop_oneof![
            "[a-z\"\\\\é ]{0,8}"
                .prop_map(|t| serde_json::json!({"type": "text", "text": t}).to_string()),
            Just(r#"{"type":"text"}"#.to_owned()),
            Just(r#"{"type":"text","text":1}"#.to_owned()),
            Just(r#"{"type":"tool_use","input":{}}"#.to_owned()),
            Just("3".to_owned()),
        ]
    }

    fn field() -> impl Strategy<Value = String> {
        prop_oneof![
            Just("null".to_owned()),
            Just("\"end_turn\"".to_owned()),
            Just("7".to_owned()),
            Just("-2".to_owned()),
            Just("1.5".to_owned()),
            Just("{}".to_owned()),
        ]
    }

    proptest! {
        #[test]
        fn fast_and_slow_agree(
            kind in prop_oneof![Just("\"message\""), Just("\"error\""), Just("null"), Just("1")],
            blocks in proptest::collection::vec(block(), 0..4),
            stop in field(),
            input in field(),
            output in field(),
            content_is_array in any::<bool>(),
        ) {
            let content = if content_is_array { format!("[{}]", blocks.join(",")) } else { "{}".to_owned() };
            let body = format!(
                r#"{{"type":{kind},"content":{content},"stop_reason":{stop},"usage":{{"input_tokens":{input},"output_tokens":{output}}}}}"#
            );
            let slow = parse_value(body.as_bytes());
            if let Some(fast) = parse_success(body.as_bytes()) {
                prop_assert_eq!(Ok(fast), slow.clone());
            }
            prop_assert_eq!(parse_response(body.as_bytes()), slow);
        }
    }

    /// OpenAI bodies at the edges, as [`BODIES`] for Anthropic.
    const OPENAI_BODIES: &[&str] = &[
        r#"{"id":"c","object":"chat.completion","choices":[{"index":0,"message":{"role":"assistant","content":"Hi \"there\""},"finish_reason":"stop"}],"usage":{"prompt_tokens":9,"completion_tokens":2,"total_tokens":11}}"#,
        r#"{"choices":[{"message":{"content":null},"finish_reason":null}],"usage":null}"#,
        r#"{"choices":[{"message":{"content":"a"}},7,"x"]}"#,
        r#"{"choices":[{"message":"text"}]}"#,
        r#"{"choices":[7]}"#,
        r#"{"choices":[]}"#,
        r#"{"choices":null}"#,
        r#"{"choices":{}}"#,
        r#"{}"#,
        r#"{"choices":[{"message":{"content":5}}]}"#,
        r#"{"choices":[{"message":{"content":"a"},"finish_reason":3}]}"#,
        r#"{"choices":[{"message":{"content":"a"}}],"usage":{"prompt_tokens":1.5}}"#,
        r#"{"choices":[{"message":{"content":"a"}}],"error":null}"#,
        r#"{"choices":[{"message":{"content":"a"}}],"error":"x"}"#,
        r#"{"error":{"type":"server_error","code":500,"message":"boom"}}"#,
        r#"{"choices":[{"message":{"content":"a"}}],"choices":[]}"#,
        r#"[]"#,
        "",
    ];

    #[test]
    fn openai_reads_what_the_slow_path_reads_and_steps_aside_otherwise() {
        for body in OPENAI_BODIES {
            let slow = openai::parse_value(body.as_bytes());
            if let Some(fast) = openai_success(body.as_bytes()) {
                assert_eq!(Ok(fast), slow, "{body}");
            }
            assert_eq!(openai::parse_response(body.as_bytes()), slow, "{body}");
        }
        let plain = openai_success(OPENAI_BODIES[0].as_bytes()).expect("the fast path");
        assert_eq!(plain.text, "Hi \"there\"");
        assert_eq!(plain.stop_reason.as_deref(), Some("stop"));
        assert_eq!((plain.usage.input, plain.usage.output), (9, 2));
    }

    proptest! {
        #[test]
        fn openai_fast_and_slow_agree(
            error in prop_oneof![Just(""), Just(r#""error":null,"#), Just(r#""error":{"message":"m"},"#)],
            content in prop_oneof![Just("null".to_owned()), Just("7".to_owned()), "[a-z\"\\\\ ]{0,6}".prop_map(|t| serde_json::Value::from(t).to_string())],
            finish in field(),
            input in field(),
            extra in prop_oneof![Just(""), Just(",3"), Just(r#",{"message":null}"#)],
            choices in prop_oneof![Just(true), Just(false)],
        ) {
            let choices = if choices {
                format!(r#"[{{"message":{{"content":{content}}},"finish_reason":{finish}}}{extra}]"#)
            } else {
                "[]".to_owned()
            };
            let body = format!(r#"{{{error}"choices":{choices},"usage":{{"prompt_tokens":{input}}}}}"#);
            let slow = openai::parse_value(body.as_bytes());
            if let Some(fast) = openai_success(body.as_bytes()) {
                prop_assert_eq!(Ok(fast), slow.clone());
            }
            prop_assert_eq!(openai::parse_response(body.as_bytes()), slow);
        }
    }
}
