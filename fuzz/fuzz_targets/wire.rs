//! The provider wire formats of `breakwater_http::wire`, and `breakwater_http::outcome`.
//!
//! Byte 0 picks the provider (`% 3`: Anthropic, OpenAI, Gemini) and the mode
//! (`/ 3 % 5`); the rest is the body:
//!
//! 0. `parse_response` of a 2xx body;
//! 1. `parse_error` with the status in bytes 1–2;
//! 2. a streamed body: through the SSE parser (split in two at byte 1's share of it), each
//!    event through the provider's stream decoder, then `finish`;
//! 3. stream events made directly: the body split at `0x1E` bytes, one event each (no
//!    SSE framing in the way of the JSON);
//! 4. `outcome::from_response`: status (bytes 1–2), a truncated flag (byte 3), a wall
//!    clock (bytes 4–7, seconds), header lines up to the first blank line, then the body.
//!
//! Checks, beyond "no panic": errors keep their status; a recognized error came from
//! JSON; a decoder that ended ignores what follows and finishes once; the outcome keeps
//! the status and clamps hints to a minute.

#![no_main]

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use breakwater_core::Outcome;
use breakwater_core::retry_after::DEFAULT_RETRY_AFTER_CLAMP;
use breakwater_http::outcome::{LimitedBody, from_response};
use breakwater_http::sse::{SseEvent, SseParser};
use breakwater_http::wire::{Provider, StreamDecoder, StreamItem, WireError};
use libfuzzer_sys::fuzz_target;
use reqwest::header::{HeaderMap, HeaderName, HeaderValue};

const PROVIDERS: [Provider; 3] = [Provider::Anthropic, Provider::OpenAi, Provider::Gemini];

fn status(bytes: &[u8]) -> u16 {
    match bytes {
        [a, b, ..] => u16::from_le_bytes([*a, *b]),
        [a] => u16::from(*a),
        [] => 0,
    }
}

/// Feeds events to a decoder as the client does, but on past errors, and checks that
/// an ended stream stays ended.
fn decode_all(provider: Provider, events: &[SseEvent]) {
    let mut decoder = provider.stream_decoder();
    let mut ended = false;
    for event in events {
        match decoder.decode(event) {
            Ok(items) => {
                assert!(!items.is_empty(), "no items for {event:?}");
                if ended {
                    assert_eq!(items, [StreamItem::Ignored], "after the end: {event:?}");
                }
                let ends = items
                    .iter()
                    .any(|i| matches!(i, StreamItem::Done | StreamItem::Error { .. }));
                ended |= ends && !matches!(decoder, StreamDecoder::Gemini(_))
                    || items.iter().any(|i| matches!(i, StreamItem::Error { .. }));
            }
            Err(WireError::InvalidUtf8) => assert!(event.lossy && !ended),
            Err(WireError::Malformed(_)) => assert!(!ended),
            Err(other) => panic!("decode gave {other:?}"),
        }
    }
    let first = decoder.finish();
    if ended {
        assert_eq!(first, Ok(None));
    }
    match first {
        Ok(_) => assert_eq!(decoder.finish(), Ok(None), "finish twice"),
        Err(e) => assert_eq!(e, WireError::Incomplete),
    }
}

fn headers(text: &[u8]) -> HeaderMap {
    let mut map = HeaderMap::new();
    for line in text.split(|&b| b == b'\n') {
        let Some(colon) = line.iter().position(|&b| b == b':') else {
            continue;
        };
        let (name, value) = (&line[..colon], line[colon + 1..].trim_ascii());
        if let (Ok(name), Ok(value)) =
            (HeaderName::from_bytes(name), HeaderValue::from_bytes(value))
        {
            map.append(name, value);
        }
    }
    map
}

fn outcome(provider: Provider, data: &[u8]) {
    if data.len() < 7 {
        return;
    }
    let (head, rest) = data.split_at(7);
    let status = status(head);
    let truncated = head[2] & 1 == 1;
    let secs = u32::from_le_bytes([head[3], head[4], head[5], head[6]]);
    let wall_now: SystemTime = UNIX_EPOCH + Duration::from_secs(u64::from(secs));
    let (header_text, body) = match rest.windows(2).position(|w| w == b"\n\n") {
        Some(at) => (&rest[..at], &rest[at + 2..]),
        None => (&[][..], rest),
    };
    let body = LimitedBody {
        bytes: body.to_vec(),
        truncated,
    };
    let exchange = from_response(provider, status, &headers(header_text), &body, wall_now);
    let two_hundred = (200..300).contains(&status);
    match &exchange.outcome {
        Outcome::Success => assert!(two_hundred && !truncated && exchange.completion.is_some()),
        Outcome::MalformedBody => assert!(two_hundred),
        Outcome::StreamBroken {
            tokens_delivered, ..
        } => assert!(two_hundred && *tokens_delivered == 0 && exchange.error.is_some()),
        Outcome::Status {
            status: s, hints, ..
        } => {
            assert!(!two_hundred && *s == status);
            if let Some(delay) = hints.retry_after {
                assert!(!delay.is_zero() && delay <= DEFAULT_RETRY_AFTER_CLAMP);
            }
        }
        other => panic!("{other:?} from a response"),
    }
}

fuzz_target!(|data: &[u8]| {
    let Some((&selector, rest)) = data.split_first() else {
        return;
    };
    let provider = PROVIDERS[usize::from(selector % 3)];
    match selector / 3 % 5 {
        0 => {
            if let Err(WireError::ErrorBody(error)) = provider.parse_response(rest) {
                assert_eq!(error.status, 200);
            }
        }
        1 => {
            let status = status(rest);
            let body = rest.get(2..).unwrap_or_default();
            let error = provider.parse_error(status, body);
            assert_eq!(error.status, status);
            if error.recognized {
                assert!(!error.html);
            }
            // Display never panics either.
            let _ = error.to_string();
        }
        2 => {
            let Some((&share, body)) = rest.split_first() else {
                return;
            };
            let cut = body.len() * usize::from(share) / 255;
            let mut parser = SseParser::new();
            let mut events = Vec::new();
            let pushed = parser
                .push(&body[..cut], &mut events)
                .and_then(|()| parser.push(&body[cut..], &mut events));
            if pushed.is_ok() {
                let _ = parser.finish();
            }
            decode_all(provider, &events);
        }
        3 => {
            let events: Vec<SseEvent> = rest
                .split(|&b| b == 0x1E)
                .map(|data| {
                    let text = String::from_utf8_lossy(data);
                    SseEvent {
                        event: "message".to_owned(),
                        lossy: matches!(text, std::borrow::Cow::Owned(_)),
                        data: text.into_owned(),
                        id: String::new(),
                    }
                })
                .collect();
            decode_all(provider, &events);
        }
        _ => outcome(provider, rest),
    }
});
