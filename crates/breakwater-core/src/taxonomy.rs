//! From an [`Outcome`] to its [`Class`]: the [`Taxonomy`].
//!
//! # The default table
//!
//! | outcome | class |
//! |---|---|
//! | [`Outcome::Success`] | [`Class::Success`] |
//! | 500, 502, 503, 504 and every other status ≥ 500 (except 529) | [`Class::Retriable`] |
//! | 429 | [`Class::RateLimited`] (with the `Retry-After` hint) |
//! | 529 | [`Class::Overloaded`] (with the `Retry-After` hint) |
//! | 408 | [`Class::Ambiguous`] |
//! | 400, 422 | [`Class::NonRetriable`]`(`[`Fatal::InvalidRequest`]`)` |
//! | 401, 403 | `NonRetriable(`[`Fatal::Unauthorized`]`)` |
//! | 404 | `NonRetriable(`[`Fatal::NotFound`]`)` |
//! | 413 | `NonRetriable(`[`Fatal::TooLarge`]`)` |
//! | every other status below 500 (other 4xx, and 1xx–3xx or 0–99, which no [`Outcome::Status`] should carry) | `NonRetriable(`[`Fatal::Other`]`)` |
//! | [`Outcome::ConnectFailed`], [`Outcome::Reset`], [`Outcome::TimedOut`] (either phase) | [`Class::Retriable`] |
//! | [`Outcome::MalformedBody`] | [`Class::Retriable`] |
//! | [`Outcome::InvalidOutput`] | [`Class::InvalidOutput`] |
//! | [`Outcome::StreamBroken`] without an error code | [`Class::Ambiguous`] |
//!
//! Statuses outside 100..=599 follow the same rule as the rows above: Retriable if
//! ≥ 500, else NonRetriable. A 2xx whose body does not parse is Retriable: it is most
//! often a truncated or proxy-mangled response, and a fresh attempt usually parses.
//! Timeouts after the headers are Retriable here too; whether tokens already reached
//! the caller (and so whether a restart is allowed) is the plan's rule, not the
//! taxonomy's.
//!
//! Each status's row can be replaced with [`Taxonomy::with_status`] or in
//! configuration. A status configured as `non_retriable` keeps the reason its row
//! gives (`Fatal::Other` for statuses without one).
//!
//! # Precedence for [`Outcome::Status`]
//!
//! 1. `x-should-retry: false` ([`Hints::should_retry`] `== Some(false)`) makes anything
//!    non-retriable: the class the steps below would give if that is already
//!    non-retriable (its reason is more specific), else `NonRetriable(Fatal::Other)`.
//! 2. Provider codes that change the meaning win over the table, whatever the status
//!    and its override: [`ErrorCode::InsufficientQuota`] and
//!    [`ErrorCode::SpendLimitReached`] → `NonRetriable(`[`Fatal::QuotaExhausted`]`)`
//!    (a 429 that no wait fixes); [`ErrorCode::Overloaded`] → `Overloaded`;
//!    [`ErrorCode::ContextWindowExceeded`] → `NonRetriable(`[`Fatal::ContextWindowExceeded`]`)`;
//!    [`ErrorCode::ContentPolicy`] → `NonRetriable(`[`Fatal::ContentPolicy`]`)`.
//!    `x-should-retry: true` does not override these: no wait makes the prompt fit.
//! 3. Otherwise the table (with overrides) decides. The remaining codes only restate
//!    the status: they never change the class, but when the table says non-retriable
//!    without a specific reason (`Fatal::Other`, e.g. a 409) they supply one
//!    (`InvalidRequest` → `Fatal::InvalidRequest`, `Authentication`/`PermissionDenied`
//!    → `Fatal::Unauthorized`, `NotFound` → `Fatal::NotFound`).
//! 4. `x-should-retry: true` turns a non-retriable class from step 3 into `Retriable`.
//!
//! `RateLimited` and `Overloaded` carry [`Hints::retry_after`]; other classes have no
//! place for it and drop it.
//!
//! # Broken streams
//!
//! [`Outcome::StreamBroken`] is `Ambiguous` unless the in-stream error event says more:
//! `Overloaded` → `Overloaded { retry_after: None }` (a 200 stream carrying Anthropic's
//! `overloaded_error`); `RateLimited` → `RateLimited { retry_after: None }`; quota,
//! spend-limit, context-window and content-policy codes → their `NonRetriable` reason;
//! `InvalidRequest`, `Authentication`/`PermissionDenied`, `NotFound` → their reason too
//! (the provider says a retry cannot help). `ServerError`, `Unavailable` and `Other`
//! stay `Ambiguous`.
//!
//! # Configuration
//!
//! In TOML, overrides are a map from the status (a string of three digits, 100–999) to
//! a [`StatusClass`]; unknown fields are rejected:
//!
//! ```toml
//! [taxonomy]
//! overrides = { "409" = "retriable", "503" = "overloaded" }
//! ```
//!
//! [`Taxonomy::classify`] never allocates: the overrides are a sorted slice searched
//! by binary search, and every type involved is `Copy`.

use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::outcome::{ErrorCode, Hints, Outcome};
use crate::{Class, Fatal};

/// What a status means by default; configurable per status.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StatusClass {
    /// A transient fault: retry with backoff.
    Retriable,
    /// A rate limit: the key cools down for the `Retry-After` hint.
    RateLimited,
    /// The provider is overloaded.
    Overloaded,
    /// Unknown whether the request took effect.
    Ambiguous,
    /// Retrying cannot help.
    NonRetriable,
}

impl StatusClass {
    /// The default table's row for `status`: 408 ambiguous, 429 rate-limited, 529
    /// overloaded, any other status ≥ 500 retriable, anything else non-retriable.
    #[must_use]
    pub const fn default_for(status: u16) -> StatusClass {
        match status {
            408 => StatusClass::Ambiguous,
            429 => StatusClass::RateLimited,
            529 => StatusClass::Overloaded,
            500.. => StatusClass::Retriable,
            _ => StatusClass::NonRetriable,
        }
    }

    /// A stable snake_case name (the configuration spelling).
    #[must_use]
    pub const fn name(self) -> &'static str {
        match self {
            StatusClass::Retriable => "retriable",
            StatusClass::RateLimited => "rate_limited",
            StatusClass::Overloaded => "overloaded",
            StatusClass::Ambiguous => "ambiguous",
            StatusClass::NonRetriable => "non_retriable",
        }
    }
}

impl fmt::Display for StatusClass {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Maps outcomes to classes: the default table of the [module docs](self), with
/// per-status overrides.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Taxonomy {
    /// Per-status overrides, sorted by status, one entry per status.
    #[serde(default, with = "overrides_serde")]
    overrides: Vec<(u16, StatusClass)>,
}

impl Taxonomy {
    /// Classifies one attempt's outcome; see the [module docs](self) for the table and
    /// the precedence. Never allocates.
    #[must_use]
    pub fn classify(&self, outcome: &Outcome) -> Class {
        match *outcome {
            Outcome::Success => Class::Success,
            Outcome::Status {
                status,
                error,
                hints,
            } => self.classify_status(status, error, hints),
            Outcome::ConnectFailed
            | Outcome::TimedOut { .. }
            | Outcome::Reset
            | Outcome::MalformedBody => Class::Retriable,
            Outcome::InvalidOutput => Class::InvalidOutput,
            Outcome::StreamBroken { error, .. } => classify_stream(error),
        }
    }

    /// This taxonomy with `status` classed as `class`, replacing any earlier override.
    #[must_use]
    pub fn with_status(mut self, status: u16, class: StatusClass) -> Taxonomy {
        match self.overrides.binary_search_by_key(&status, |&(s, _)| s) {
            Ok(i) => self.overrides[i].1 = class,
            Err(i) => self.overrides.insert(i, (status, class)),
        }
        self
    }

    /// The class of `status` alone: its override if one is set, else its default row.
    #[must_use]
    pub fn status_class(&self, status: u16) -> StatusClass {
        self.overrides
            .binary_search_by_key(&status, |&(s, _)| s)
            .map_or_else(
                |_| StatusClass::default_for(status),
                |i| self.overrides[i].1,
            )
    }

    /// The overrides, sorted by status.
    #[must_use]
    pub fn overrides(&self) -> &[(u16, StatusClass)] {
        &self.overrides
    }

    fn classify_status(&self, status: u16, error: Option<ErrorCode>, hints: Hints) -> Class {
        let by_code = error.and_then(|code| class_for_code(code, hints.retry_after));
        let class = by_code.unwrap_or_else(|| {
            let reason = error.and_then(fatal_for_code);
            match self.status_class(status) {
                StatusClass::Retriable => Class::Retriable,
                StatusClass::RateLimited => Class::RateLimited {
                    retry_after: hints.retry_after,
                },
                StatusClass::Overloaded => Class::Overloaded {
                    retry_after: hints.retry_after,
                },
                StatusClass::Ambiguous => Class::Ambiguous,
                StatusClass::NonRetriable => match fatal_for_status(status) {
                    Fatal::Other => Class::NonRetriable(reason.unwrap_or(Fatal::Other)),
                    fatal => Class::NonRetriable(fatal),
                },
            }
        });
        match (hints.should_retry, class) {
            (Some(false), Class::NonRetriable(_)) => class,
            (Some(false), _) => Class::NonRetriable(Fatal::Other),
            (Some(true), Class::NonRetriable(_)) if by_code.is_none() => Class::Retriable,
            _ => class,
        }
    }
}

/// The reason the default table gives a non-retriable status.
const fn fatal_for_status(status: u16) -> Fatal {
    match status {
        400 | 422 => Fatal::InvalidRequest,
        401 | 403 => Fatal::Unauthorized,
        404 => Fatal::NotFound,
        413 => Fatal::TooLarge,
        _ => Fatal::Other,
    }
}

/// The class of a code that wins over the status table, if `code` is one.
const fn class_for_code(
    code: ErrorCode,
    retry_after: Option<std::time::Duration>,
) -> Option<Class> {
    match code {
        ErrorCode::InsufficientQuota | ErrorCode::SpendLimitReached => {
            Some(Class::NonRetriable(Fatal::QuotaExhausted))
        }
        ErrorCode::Overloaded => Some(Class::Overloaded { retry_after }),
        ErrorCode::ContextWindowExceeded => Some(Class::NonRetriable(Fatal::ContextWindowExceeded)),
        ErrorCode::ContentPolicy => Some(Class::NonRetriable(Fatal::ContentPolicy)),
        _ => None,
    }
}

/// The non-retriable reason a code that only restates its status names, if any.
const fn fatal_for_code(code: ErrorCode) -> Option<Fatal> {
    match code {
        ErrorCode::InvalidRequest => Some(Fatal::InvalidRequest),
        ErrorCode::Authentication | ErrorCode::PermissionDenied => Some(Fatal::Unauthorized),
        ErrorCode::NotFound => Some(Fatal::NotFound),
        _ => None,
    }
}

fn classify_stream(error: Option<ErrorCode>) -> Class {
    let Some(code) = error else {
        return Class::Ambiguous;
    };
    if let Some(class) = class_for_code(code, None) {
        return class;
    }
    match code {
        ErrorCode::RateLimited => Class::RateLimited { retry_after: None },
        _ => fatal_for_code(code).map_or(Class::Ambiguous, Class::NonRetriable),
    }
}

/// Overrides as a map from a three-digit status string to a class.
mod overrides_serde {
    use super::*;

    pub(super) fn serialize<S: Serializer>(
        overrides: &[(u16, StatusClass)],
        s: S,
    ) -> Result<S::Ok, S::Error> {
        s.collect_map(
            overrides
                .iter()
                .map(|(status, class)| (status.to_string(), class)),
        )
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(
        d: D,
    ) -> Result<Vec<(u16, StatusClass)>, D::Error> {
        let map = BTreeMap::<String, StatusClass>::deserialize(d)?;
        let mut taxonomy = Taxonomy::default();
        for (key, class) in map {
            let status = parse_status(&key).ok_or_else(|| {
                serde::de::Error::custom(format_args!(
                    "taxonomy override key {key:?} is not an HTTP status (three digits, 100-999)"
                ))
            })?;
            taxonomy = taxonomy.with_status(status, class);
        }
        Ok(taxonomy.overrides)
    }

    fn parse_status(key: &str) -> Option<u16> {
        if key.len() != 3 || !key.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        key.parse()
            .ok()
            .filter(|status| (100..=999).contains(status))
    }
}

#[cfg(test)]
mod tests;
