//! What one attempt returned, as the driver saw it: an [`Outcome`].
//!
//! The driver builds an outcome from the HTTP exchange (status, the hints parsed from
//! the headers by [`retry_after::parse_hints`](crate::retry_after::parse_hints), the
//! provider's error code mapped by [`ErrorCode::from_provider`]) and hands it to the
//! plan; the [`Taxonomy`](crate::Taxonomy) turns it into a [`Class`](crate::Class).
//! Outcomes are `Copy` and never allocate.
//!
//! # Provider error codes
//!
//! [`ErrorCode::from_provider`] reads the code string each provider puts in its error
//! body: Anthropic's `error.type`, OpenAI's `error.code` (or `error.type` when `code` is
//! null), Gemini's `error.status`. Matching is exact up to ASCII case and surrounding
//! whitespace; anything not in the table is [`ErrorCode::Other`].
//!
//! | code string | provider | [`ErrorCode`] |
//! |---|---|---|
//! | `rate_limit_error` | Anthropic (429) | `RateLimited` |
//! | `rate_limit_exceeded` | OpenAI (429) | `RateLimited` |
//! | `RESOURCE_EXHAUSTED` | Gemini (429) | `RateLimited` |
//! | `insufficient_quota` | OpenAI (429) | `InsufficientQuota` |
//! | `billing_error` | Anthropic (402) | `SpendLimitReached` |
//! | `billing_hard_limit_reached`, `enforced_spend_limit_reached` | OpenAI | `SpendLimitReached` |
//! | `overloaded_error` | Anthropic (529, or an event in a 200 stream) | `Overloaded` |
//! | `context_length_exceeded` | OpenAI (400) | `ContextWindowExceeded` |
//! | `content_filter`, `content_policy_violation` | OpenAI / Azure OpenAI | `ContentPolicy` |
//! | `invalid_request_error` | Anthropic (400, other 4xx), OpenAI type | `InvalidRequest` |
//! | `request_too_large` | Anthropic (413) | `InvalidRequest` |
//! | `INVALID_ARGUMENT`, `FAILED_PRECONDITION` | Gemini (400) | `InvalidRequest` |
//! | `authentication_error` | Anthropic (401), OpenAI type | `Authentication` |
//! | `invalid_api_key` | OpenAI (401) | `Authentication` |
//! | `UNAUTHENTICATED` | Gemini (401) | `Authentication` |
//! | `permission_error` | Anthropic (403) | `PermissionDenied` |
//! | `unsupported_country_region_territory` | OpenAI (403) | `PermissionDenied` |
//! | `PERMISSION_DENIED` | Gemini (403) | `PermissionDenied` |
//! | `not_found_error` | Anthropic (404) | `NotFound` |
//! | `model_not_found` | OpenAI (404) | `NotFound` |
//! | `NOT_FOUND` | Gemini (404) | `NotFound` |
//! | `api_error`, `timeout_error` | Anthropic (500, 504) | `ServerError` |
//! | `server_error` | OpenAI (500) | `ServerError` |
//! | `INTERNAL`, `DEADLINE_EXCEEDED` | Gemini (500, 504) | `ServerError` |
//! | `UNAVAILABLE` | Gemini (503) | `Unavailable` |
//!
//! Gemini's `FAILED_PRECONDITION` (the free tier is not offered in the caller's region
//! and billing is off) is a configuration problem no retry fixes, hence `InvalidRequest`.
//! Anthropic's `request_too_large` maps to `InvalidRequest`; its 413 status keeps the
//! more specific [`Fatal::TooLarge`](crate::Fatal::TooLarge) in the taxonomy.

use std::fmt;
use std::time::Duration;

/// What one attempt returned, as the driver saw it. Copy, no allocation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// A 2xx with a well-formed body (for a stream: it ended normally).
    Success,
    /// A non-2xx status with the hints parsed from its headers and the provider's error code.
    Status {
        /// The HTTP status code.
        status: u16,
        /// The provider's error code from the body, if it had one.
        error: Option<ErrorCode>,
        /// `Retry-After` and `x-should-retry`, parsed from the headers.
        hints: Hints,
    },
    /// No connection could be made (DNS, TCP, TLS): the request never reached the server.
    ConnectFailed,
    /// The attempt's timeout fired.
    TimedOut {
        /// Whether response headers had arrived when it fired.
        phase: TimeoutPhase,
    },
    /// The connection was reset or closed before a complete response.
    Reset,
    /// A 2xx whose body could not be parsed.
    MalformedBody,
    /// A 2xx that parsed, whose output the route's validator rejected (e.g. text that
    /// should be JSON and is not). Billed like a success.
    InvalidOutput,
    /// A stream that ended abnormally; `error` is the in-stream error event's code if any
    /// (e.g. Anthropic's `overloaded_error` event inside a 200 stream);
    /// `tokens_delivered` counts output tokens that already reached the caller (0 = before the first token).
    StreamBroken {
        /// The code of the in-stream error event, if the stream carried one.
        error: Option<ErrorCode>,
        /// Output tokens already passed on to the caller.
        tokens_delivered: u32,
    },
}

impl Outcome {
    /// Output tokens that already reached the caller: 0 unless [`Outcome::StreamBroken`].
    #[must_use]
    pub const fn tokens_delivered(&self) -> u32 {
        match self {
            Outcome::StreamBroken {
                tokens_delivered, ..
            } => *tokens_delivered,
            _ => 0,
        }
    }

    /// The header hints: [`Hints::default()`] unless [`Outcome::Status`].
    #[must_use]
    pub const fn hints(&self) -> Hints {
        match self {
            Outcome::Status { hints, .. } => *hints,
            _ => Hints::EMPTY,
        }
    }

    /// The HTTP status, for [`Outcome::Status`] only.
    #[must_use]
    pub const fn status(&self) -> Option<u16> {
        match self {
            Outcome::Status { status, .. } => Some(*status),
            _ => None,
        }
    }

    /// The provider's error code, for [`Outcome::Status`] and [`Outcome::StreamBroken`].
    #[must_use]
    pub const fn error(&self) -> Option<ErrorCode> {
        match self {
            Outcome::Status { error, .. } | Outcome::StreamBroken { error, .. } => *error,
            _ => None,
        }
    }
}

/// Server hints read from a response's headers.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Hints {
    /// The `retry-after-ms` / `Retry-After` delay, already validated and clamped.
    pub retry_after: Option<Duration>,
    /// The `x-should-retry` header: the server's own verdict on retrying.
    pub should_retry: Option<bool>,
}

impl Hints {
    /// No hints (the same as [`Hints::default()`], usable in `const` context).
    pub const EMPTY: Hints = Hints {
        retry_after: None,
        should_retry: None,
    };
}

/// When an attempt's timeout fired.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TimeoutPhase {
    /// Before the response headers arrived.
    BeforeHeaders,
    /// After the headers, while reading the body or stream.
    AfterHeaders,
}

/// Provider error codes that change an outcome's meaning: see the
/// [module docs](self) for which strings map to which code.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ErrorCode {
    /// A rate limit: wait and retry.
    RateLimited,
    /// The account's quota or credit is used up (OpenAI `insufficient_quota`).
    InsufficientQuota,
    /// A billing or spend limit was reached.
    SpendLimitReached,
    /// The provider is overloaded.
    Overloaded,
    /// The prompt does not fit the model's context window.
    ContextWindowExceeded,
    /// The provider refused the content.
    ContentPolicy,
    /// The request is malformed or invalid.
    InvalidRequest,
    /// The credentials are missing or wrong.
    Authentication,
    /// The credentials lack permission for the resource.
    PermissionDenied,
    /// The model or resource does not exist.
    NotFound,
    /// An internal error on the provider's side.
    ServerError,
    /// The service is temporarily unavailable.
    Unavailable,
    /// A code not in the table.
    Other,
}

/// The code strings [`ErrorCode::from_provider`] knows, compared ignoring ASCII case.
const PROVIDER_CODES: &[(&str, ErrorCode)] = &[
    ("rate_limit_error", ErrorCode::RateLimited),
    ("rate_limit_exceeded", ErrorCode::RateLimited),
    ("RESOURCE_EXHAUSTED", ErrorCode::RateLimited),
    ("insufficient_quota", ErrorCode::InsufficientQuota),
    ("billing_error", ErrorCode::SpendLimitReached),
    ("billing_hard_limit_reached", ErrorCode::SpendLimitReached),
    ("enforced_spend_limit_reached", ErrorCode::SpendLimitReached),
    ("overloaded_error", ErrorCode::Overloaded),
    ("context_length_exceeded", ErrorCode::ContextWindowExceeded),
    ("content_filter", ErrorCode::ContentPolicy),
    ("content_policy_violation", ErrorCode::ContentPolicy),
    ("invalid_request_error", ErrorCode::InvalidRequest),
    ("request_too_large", ErrorCode::InvalidRequest),
    ("INVALID_ARGUMENT", ErrorCode::InvalidRequest),
    ("FAILED_PRECONDITION", ErrorCode::InvalidRequest),
    ("authentication_error", ErrorCode::Authentication),
    ("invalid_api_key", ErrorCode::Authentication),
    ("UNAUTHENTICATED", ErrorCode::Authentication),
    ("permission_error", ErrorCode::PermissionDenied),
    (
        "unsupported_country_region_territory",
        ErrorCode::PermissionDenied,
    ),
    ("PERMISSION_DENIED", ErrorCode::PermissionDenied),
    ("not_found_error", ErrorCode::NotFound),
    ("model_not_found", ErrorCode::NotFound),
    ("NOT_FOUND", ErrorCode::NotFound),
    ("api_error", ErrorCode::ServerError),
    ("timeout_error", ErrorCode::ServerError),
    ("server_error", ErrorCode::ServerError),
    ("INTERNAL", ErrorCode::ServerError),
    ("DEADLINE_EXCEEDED", ErrorCode::ServerError),
    ("UNAVAILABLE", ErrorCode::Unavailable),
];

impl ErrorCode {
    /// Maps a provider's code string (Anthropic `error.type`, OpenAI `error.code`/`error.type`,
    /// Gemini `error.status`) to a code, ignoring ASCII case and surrounding whitespace.
    /// Unknown strings give [`ErrorCode::Other`]. The full table is in the
    /// [module docs](self).
    #[must_use]
    pub fn from_provider(code: &str) -> ErrorCode {
        let code = code.trim();
        PROVIDER_CODES
            .iter()
            .find(|(known, _)| known.eq_ignore_ascii_case(code))
            .map_or(ErrorCode::Other, |&(_, mapped)| mapped)
    }

    /// A stable snake_case name, for logs and metrics.
    #[must_use]
    pub const fn name(self) -> &'static str {
        match self {
            ErrorCode::RateLimited => "rate_limited",
            ErrorCode::InsufficientQuota => "insufficient_quota",
            ErrorCode::SpendLimitReached => "spend_limit_reached",
            ErrorCode::Overloaded => "overloaded",
            ErrorCode::ContextWindowExceeded => "context_window_exceeded",
            ErrorCode::ContentPolicy => "content_policy",
            ErrorCode::InvalidRequest => "invalid_request",
            ErrorCode::Authentication => "authentication",
            ErrorCode::PermissionDenied => "permission_denied",
            ErrorCode::NotFound => "not_found",
            ErrorCode::ServerError => "server_error",
            ErrorCode::Unavailable => "unavailable",
            ErrorCode::Other => "other",
        }
    }
}

impl fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn anthropic_error_types() {
        let cases = [
            ("invalid_request_error", ErrorCode::InvalidRequest),
            ("authentication_error", ErrorCode::Authentication),
            ("permission_error", ErrorCode::PermissionDenied),
            ("not_found_error", ErrorCode::NotFound),
            ("request_too_large", ErrorCode::InvalidRequest),
            ("rate_limit_error", ErrorCode::RateLimited),
            ("api_error", ErrorCode::ServerError),
            ("overloaded_error", ErrorCode::Overloaded),
            ("billing_error", ErrorCode::SpendLimitReached),
            ("timeout_error", ErrorCode::ServerError),
        ];
        for (code, expected) in cases {
            assert_eq!(ErrorCode::from_provider(code), expected, "{code}");
        }
    }

    #[test]
    fn openai_error_codes() {
        let cases = [
            ("insufficient_quota", ErrorCode::InsufficientQuota),
            ("rate_limit_exceeded", ErrorCode::RateLimited),
            ("context_length_exceeded", ErrorCode::ContextWindowExceeded),
            ("content_filter", ErrorCode::ContentPolicy),
            ("content_policy_violation", ErrorCode::ContentPolicy),
            ("invalid_api_key", ErrorCode::Authentication),
            ("model_not_found", ErrorCode::NotFound),
            ("server_error", ErrorCode::ServerError),
            ("billing_hard_limit_reached", ErrorCode::SpendLimitReached),
            ("enforced_spend_limit_reached", ErrorCode::SpendLimitReached),
        ];
        for (code, expected) in cases {
            assert_eq!(ErrorCode::from_provider(code), expected, "{code}");
        }
    }

    #[test]
    fn gemini_statuses_in_either_case() {
        let cases = [
            ("INVALID_ARGUMENT", ErrorCode::InvalidRequest),
            ("FAILED_PRECONDITION", ErrorCode::InvalidRequest),
            ("PERMISSION_DENIED", ErrorCode::PermissionDenied),
            ("NOT_FOUND", ErrorCode::NotFound),
            ("RESOURCE_EXHAUSTED", ErrorCode::RateLimited),
            ("INTERNAL", ErrorCode::ServerError),
            ("UNAVAILABLE", ErrorCode::Unavailable),
            ("DEADLINE_EXCEEDED", ErrorCode::ServerError),
            ("UNAUTHENTICATED", ErrorCode::Authentication),
        ];
        for (code, expected) in cases {
            assert_eq!(ErrorCode::from_provider(code), expected, "{code}");
            let lower = code.to_ascii_lowercase();
            assert_eq!(ErrorCode::from_provider(&lower), expected, "{lower}");
        }
    }

    #[test]
    fn unknown_and_odd_strings_are_other() {
        for code in [
            "",
            " ",
            "rate_limit",
            "overloaded",
            "error",
            "429",
            "ünavailable",
        ] {
            assert_eq!(ErrorCode::from_provider(code), ErrorCode::Other, "{code:?}");
        }
        assert_eq!(
            ErrorCode::from_provider("  overloaded_error\n"),
            ErrorCode::Overloaded
        );
    }

    #[test]
    fn table_has_no_duplicate_strings() {
        for (i, (a, _)) in PROVIDER_CODES.iter().enumerate() {
            for (b, _) in &PROVIDER_CODES[i + 1..] {
                assert!(!a.eq_ignore_ascii_case(b), "{a} listed twice");
            }
        }
    }

    #[test]
    fn accessors() {
        let hints = Hints {
            retry_after: Some(Duration::from_secs(2)),
            should_retry: Some(true),
        };
        let status = Outcome::Status {
            status: 429,
            error: Some(ErrorCode::RateLimited),
            hints,
        };
        assert_eq!(status.hints(), hints);
        assert_eq!(status.tokens_delivered(), 0);
        assert_eq!(status.status(), Some(429));
        assert_eq!(status.error(), Some(ErrorCode::RateLimited));
        let broken = Outcome::StreamBroken {
            error: Some(ErrorCode::Overloaded),
            tokens_delivered: 17,
        };
        assert_eq!(broken.tokens_delivered(), 17);
        assert_eq!(broken.hints(), Hints::default());
        assert_eq!(broken.error(), Some(ErrorCode::Overloaded));
        assert_eq!(broken.status(), None);
        for outcome in [
            Outcome::Success,
            Outcome::ConnectFailed,
            Outcome::Reset,
            Outcome::MalformedBody,
            Outcome::InvalidOutput,
            Outcome::TimedOut {
                phase: TimeoutPhase::AfterHeaders,
            },
        ] {
            assert_eq!(outcome.hints(), Hints::EMPTY);
            assert_eq!(outcome.tokens_delivered(), 0);
            assert_eq!(outcome.error(), None);
        }
        assert_eq!(
            ErrorCode::ContextWindowExceeded.to_string(),
            "context_window_exceeded"
        );
    }
}
