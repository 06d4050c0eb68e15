//! From an HTTP exchange to the core's [`Outcome`]: bytes in, facts out, no policy.
//!
//! Everything here states what happened (a status, its hints and the provider's error
//! code; a connection that failed; a body that did not parse) and nothing about what
//! it means: the route's taxonomy, inside the plan, classifies it.
//!
//! | what happened | [`Outcome`] |
//! |---|---|
//! | 2xx, body parses | `Success`, with the body's usage |
//! | 2xx, body does not parse, or exceeds the response limit | `MalformedBody` |
//! | 2xx whose body is the provider's error object | `StreamBroken { error, tokens_delivered: 0 }`: an error event in a 200, as in a stream |
//! | any other status | `Status { status, error, hints }`: `error` from the body through [`ErrorCode::from_provider`], `hints` from the headers |
//! | no connection (refused, DNS, TLS) | `ConnectFailed` |
//! | a transport error before the headers | `Reset` |
//! | a transport error while reading the body | `Reset` |
//! | the attempt's timeout | `TimedOut` with the phase it fired in (the client sets it) |
//!
//! Header hints come from [`breakwater_core::retry_after::parse_hints`]; header values
//! that are not valid UTF-8 are skipped. When the headers carry no Retry-After, a
//! delay the body asks for (Gemini's `RetryInfo.retryDelay`) stands in for it, clamped
//! the same way.

use std::time::SystemTime;

use breakwater_core::retry_after::{DEFAULT_RETRY_AFTER_CLAMP, parse_hints};
use breakwater_core::{ErrorCode, Hints, Outcome, TimeoutPhase, Usage};
use reqwest::header::HeaderMap;

use crate::wire::{Completion, Provider, ProviderError, TokenUsage, WireError};

/// What one non-streaming attempt produced.
#[derive(Clone, Debug, PartialEq)]
pub struct Exchange {
    /// What the plan is told.
    pub outcome: Outcome,
    /// Tokens billed (zero unless the provider said).
    pub usage: Usage,
    /// The parsed answer, for a success.
    pub completion: Option<Completion>,
    /// The provider's error, for a non-2xx status or an error body in a 2xx.
    pub error: Option<ProviderError>,
}

impl Exchange {
    /// An exchange that produced no response to read: only an outcome.
    #[must_use]
    pub fn bare(outcome: Outcome) -> Exchange {
        Exchange {
            outcome,
            usage: Usage::default(),
            completion: None,
            error: None,
        }
    }
}

/// A body read with a size limit.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct LimitedBody {
    /// At most the limit's worth of bytes.
    pub bytes: Vec<u8>,
    /// Whether the body had more than the limit (the rest was not read).
    pub truncated: bool,
}

/// Reads `response`'s body, stopping at `limit` bytes: the rest is never read, and
/// the connection is dropped with the response.
///
/// # Errors
///
/// The transport error that ended the body early (reset, decode).
pub async fn read_limited(
    mut response: reqwest::Response,
    limit: usize,
) -> Result<LimitedBody, reqwest::Error> {
    let mut body = LimitedBody::default();
    while let Some(chunk) = response.chunk().await? {
        let room = limit - body.bytes.len();
        if chunk.len() > room {
            body.bytes.extend_from_slice(&chunk[..room]);
            body.truncated = true;
            break;
        }
        body.bytes.extend_from_slice(&chunk);
    }
    Ok(body)
}

/// The hints in `headers`: `retry-after-ms`, `retry-after` (seconds or an HTTP-date
/// relative to `wall_now`), `x-should-retry`. Values that are not UTF-8 are skipped.
#[must_use]
pub fn hints(headers: &HeaderMap, wall_now: SystemTime) -> Hints {
    // Only the hint headers, so the copy is a few pairs at most.
    let pairs: Vec<(&str, &str)> = ["retry-after-ms", "retry-after", "x-should-retry"]
        .into_iter()
        .flat_map(|name| {
            headers
                .get_all(name)
                .iter()
                .filter_map(move |value| Some((name, value.to_str().ok()?)))
        })
        .collect();
    parse_hints(pairs.iter().copied(), wall_now, DEFAULT_RETRY_AFTER_CLAMP)
}

/// Maps a complete response (status, headers and the body read up to its limit) from
/// `provider` to an exchange.
#[must_use]
pub fn from_response(
    provider: Provider,
    status: u16,
    headers: &HeaderMap,
    body: &LimitedBody,
    wall_now: SystemTime,
) -> Exchange {
    if (200..300).contains(&status) {
        if body.truncated {
            return Exchange::bare(Outcome::MalformedBody);
        }
        return match provider.parse_response(&body.bytes) {
            Ok(completion) => Exchange {
                outcome: Outcome::Success,
                usage: usage(completion.usage),
                completion: Some(completion),
                error: None,
            },
            // The provider said "error" inside a 200: the same fact as an error event
            // in a 200 stream before any token.
            Err(WireError::ErrorBody(error)) => Exchange {
                outcome: Outcome::StreamBroken {
                    error: error.code.as_deref().map(ErrorCode::from_provider),
                    tokens_delivered: 0,
                },
                usage: Usage::default(),
                completion: None,
                error: Some(error),
            },
            Err(_) => Exchange::bare(Outcome::MalformedBody),
        };
    }
    let error = provider.parse_error(status, &body.bytes);
    let mut hints = hints(headers, wall_now);
    if hints.retry_after.is_none() {
        hints.retry_after = error
            .retry_delay
            .map(|delay| delay.min(DEFAULT_RETRY_AFTER_CLAMP))
            .filter(|delay| !delay.is_zero());
    }
    Exchange {
        outcome: Outcome::Status {
            status,
            error: error.code.as_deref().map(ErrorCode::from_provider),
            hints,
        },
        usage: Usage::default(),
        completion: None,
        error: Some(error),
    }
}

/// Maps a transport error. `phase` says whether the response headers had arrived.
#[must_use]
pub fn from_transport(error: &reqwest::Error, phase: TimeoutPhase) -> Outcome {
    if error.is_connect() {
        Outcome::ConnectFailed
    } else if error.is_timeout() {
        // Only if the caller gave reqwest a timeout of its own; the client uses the
        // attempt's timeout instead.
        Outcome::TimedOut { phase }
    } else {
        // The request failed after the connection was made (closed before the
        // headers, reset mid-body, a body that would not decode).
        Outcome::Reset
    }
}

/// The outcome of an attempt whose timeout fired in `phase`.
#[must_use]
pub const fn timed_out(phase: TimeoutPhase) -> Outcome {
    Outcome::TimedOut { phase }
}

/// Token counts as the core counts them (saturating at `u32::MAX`).
#[must_use]
pub fn usage(tokens: TokenUsage) -> Usage {
    Usage::new(saturate(tokens.input), saturate(tokens.output))
}

fn saturate(n: u64) -> u32 {
    u32::try_from(n).unwrap_or(u32::MAX)
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use reqwest::header::HeaderValue;

    fn body(text: &str) -> LimitedBody {
        LimitedBody {
            bytes: text.as_bytes().to_vec(),
            truncated: false,
        }
    }

    #[test]
    fn rate_limit_with_seconds_and_code() {
        let mut headers = HeaderMap::new();
        headers.insert("retry-after", HeaderValue::from_static("2"));
        headers.insert("x-should-retry", HeaderValue::from_static("true"));
        let exchange = from_response(
            Provider::OpenAi,
            429,
            &headers,
            &body(r#"{"error":{"type":"requests","code":"rate_limit_exceeded","message":"slow"}}"#),
            SystemTime::UNIX_EPOCH,
        );
        assert_eq!(
            exchange.outcome,
            Outcome::Status {
                status: 429,
                error: Some(ErrorCode::RateLimited),
                hints: Hints {
                    retry_after: Some(Duration::from_secs(2)),
                    should_retry: Some(true),
                },
            }
        );
    }

    #[test]
    fn non_utf8_header_values_are_skipped() {
        let mut headers = HeaderMap::new();
        headers.append("retry-after", HeaderValue::from_bytes(b"\xff\xfe").unwrap());
        headers.append("retry-after", HeaderValue::from_static("3"));
        let hints = hints(&headers, SystemTime::UNIX_EPOCH);
        assert_eq!(hints.retry_after, Some(Duration::from_secs(3)));
    }

    #[test]
    fn http_date_is_relative_to_the_wall_clock() {
        let mut headers = HeaderMap::new();
        headers.insert(
            "retry-after",
            HeaderValue::from_static("Thu, 01 Jan 1970 00:00:10 GMT"),
        );
        let hints = hints(&headers, SystemTime::UNIX_EPOCH + Duration::from_secs(4));
        assert_eq!(hints.retry_after, Some(Duration::from_secs(6)));
    }

    #[test]
    fn html_529_is_a_status_without_code() {
        let exchange = from_response(
            Provider::Anthropic,
            529,
            &HeaderMap::new(),
            &body("<html><body>overloaded</body></html>"),
            SystemTime::UNIX_EPOCH,
        );
        assert_eq!(
            exchange.outcome,
            Outcome::Status {
                status: 529,
                error: None,
                hints: Hints::EMPTY,
            }
        );
        assert!(exchange.error.is_some_and(|e| e.html));
    }

    #[test]
    fn two_hundreds_that_do_not_parse_are_malformed() {
        for b in [
            body(r#"{"id":"msg_1","content":[{"type":"te"#),
            LimitedBody {
                bytes: b"{}".to_vec(),
                truncated: true,
            },
        ] {
            let exchange = from_response(
                Provider::Anthropic,
                200,
                &HeaderMap::new(),
                &b,
                SystemTime::UNIX_EPOCH,
            );
            assert_eq!(exchange.outcome, Outcome::MalformedBody);
        }
    }

    #[test]
    fn error_object_in_a_200_is_an_in_band_error() {
        let exchange = from_response(
            Provider::Anthropic,
            200,
            &HeaderMap::new(),
            &body(r#"{"type":"error","error":{"type":"overloaded_error","message":"busy"}}"#),
            SystemTime::UNIX_EPOCH,
        );
        assert_eq!(
            exchange.outcome,
            Outcome::StreamBroken {
                error: Some(ErrorCode::Overloaded),
                tokens_delivered: 0
            }
        );
    }

    #[test]
    fn success_carries_usage() {
        let exchange = from_response(
            Provider::Anthropic,
            200,
            &HeaderMap::new(),
            &body(
                r#"{"content":[{"type":"text","text":"hi"}],"stop_reason":"end_turn","usage":{"input_tokens":12,"output_tokens":3}}"#,
            ),
            SystemTime::UNIX_EPOCH,
        );
        assert_eq!(exchange.outcome, Outcome::Success);
        assert_eq!(exchange.usage, Usage::new(12, 3));
        assert_eq!(exchange.completion.map(|c| c.text).as_deref(), Some("hi"));
    }

    #[test]
    fn gemini_body_delay_stands_in_for_a_missing_header() {
        let exchange = from_response(
            Provider::Gemini,
            429,
            &HeaderMap::new(),
            &body(
                r#"{"error":{"code":429,"status":"RESOURCE_EXHAUSTED","message":"quota","details":[{"@type":"type.googleapis.com/google.rpc.RetryInfo","retryDelay":"7s"}]}}"#,
            ),
            SystemTime::UNIX_EPOCH,
        );
        assert_eq!(
            exchange.outcome.hints().retry_after,
            Some(Duration::from_secs(7))
        );
        assert_eq!(exchange.outcome.error(), Some(ErrorCode::RateLimited));
    }
}
