//! What an attempt's outcome means for the policy: its [`Class`].
//!
//! The [`taxonomy`](crate::taxonomy) maps an [`Outcome`](crate::Outcome) to a class;
//! breakers, budgets and the plan act on the class alone.

use std::fmt;
use std::time::Duration;

use serde::{Deserialize, Serialize};

/// The meaning of one attempt's outcome.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Class {
    /// A complete, well-formed answer.
    Success,
    /// A transient fault (500, 502, 503, 504, a timeout, a reset): retry with backoff.
    Retriable,
    /// The key is rate-limited (429). `retry_after` is the provider's hint, already
    /// parsed and clamped; no attempt goes to the key before it passes.
    RateLimited {
        /// How long the provider asked us to wait, if it said.
        retry_after: Option<Duration>,
    },
    /// The provider is overloaded (529, `overloaded_error`): retry elsewhere or later.
    Overloaded {
        /// How long the provider asked us to wait, if it said.
        retry_after: Option<Duration>,
    },
    /// It is unknown whether the request took effect (408, a stream that broke):
    /// at most one retry, and none once tokens reached the caller unless allowed.
    Ambiguous,
    /// Retrying cannot help; surface at once (or take a designated fallback).
    NonRetriable(Fatal),
    /// A well-formed answer whose output failed the route's validator (not JSON, not
    /// matching the schema, …). It was billed; by default the plan tries the same step
    /// once more and then moves on, and breakers do not count it as a fault.
    InvalidOutput,
}

impl Class {
    /// The class without its payload.
    #[must_use]
    pub const fn kind(&self) -> ClassKind {
        match self {
            Class::Success => ClassKind::Success,
            Class::Retriable => ClassKind::Retriable,
            Class::RateLimited { .. } => ClassKind::RateLimited,
            Class::Overloaded { .. } => ClassKind::Overloaded,
            Class::Ambiguous => ClassKind::Ambiguous,
            Class::NonRetriable(_) => ClassKind::NonRetriable,
            Class::InvalidOutput => ClassKind::InvalidOutput,
        }
    }

    /// Whether another attempt may help.
    #[must_use]
    pub const fn is_retriable(&self) -> bool {
        matches!(
            self,
            Class::Retriable
                | Class::RateLimited { .. }
                | Class::Overloaded { .. }
                | Class::Ambiguous
                | Class::InvalidOutput
        )
    }

    /// The provider's Retry-After hint carried by this class, if any.
    #[must_use]
    pub const fn retry_after(&self) -> Option<Duration> {
        match self {
            Class::RateLimited { retry_after } | Class::Overloaded { retry_after } => *retry_after,
            _ => None,
        }
    }
}

impl fmt::Display for Class {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Class::NonRetriable(fatal) => write!(f, "non_retriable({fatal})"),
            other => f.write_str(other.kind().name()),
        }
    }
}

/// Why a non-retriable outcome cannot be retried.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum Fatal {
    /// The request is malformed or invalid (400, 422).
    InvalidRequest,
    /// The credentials are missing, wrong or lack permission (401, 403).
    Unauthorized,
    /// The model or endpoint does not exist (404).
    NotFound,
    /// The request body is too large for the endpoint (413).
    TooLarge,
    /// The account's quota or spend limit is used up: a 429 that no wait will fix
    /// (`insufficient_quota`, a spend limit reached).
    QuotaExhausted,
    /// The prompt does not fit the model's context window: a larger-context step may
    /// take it.
    ContextWindowExceeded,
    /// The provider refused the content: a designated step may take it.
    ContentPolicy,
    /// The server said not to retry (`x-should-retry: false`), or the status is one the
    /// table marks non-retriable without a more specific reason.
    Other,
}

impl Fatal {
    /// A stable snake_case name.
    #[must_use]
    pub const fn name(self) -> &'static str {
        match self {
            Fatal::InvalidRequest => "invalid_request",
            Fatal::Unauthorized => "unauthorized",
            Fatal::NotFound => "not_found",
            Fatal::TooLarge => "too_large",
            Fatal::QuotaExhausted => "quota_exhausted",
            Fatal::ContextWindowExceeded => "context_window_exceeded",
            Fatal::ContentPolicy => "content_policy",
            Fatal::Other => "other",
        }
    }
}

impl fmt::Display for Fatal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A [`Class`] without its payload: what configuration tables and metrics speak of.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ClassKind {
    /// See [`Class::Success`].
    Success,
    /// See [`Class::Retriable`].
    Retriable,
    /// See [`Class::RateLimited`].
    RateLimited,
    /// See [`Class::Overloaded`].
    Overloaded,
    /// See [`Class::Ambiguous`].
    Ambiguous,
    /// See [`Class::NonRetriable`].
    NonRetriable,
    /// See [`Class::InvalidOutput`].
    InvalidOutput,
}

impl ClassKind {
    /// Every kind, in declaration order.
    pub const ALL: [ClassKind; 7] = [
        ClassKind::Success,
        ClassKind::Retriable,
        ClassKind::RateLimited,
        ClassKind::Overloaded,
        ClassKind::Ambiguous,
        ClassKind::NonRetriable,
        ClassKind::InvalidOutput,
    ];

    /// A stable snake_case name.
    #[must_use]
    pub const fn name(self) -> &'static str {
        match self {
            ClassKind::Success => "success",
            ClassKind::Retriable => "retriable",
            ClassKind::RateLimited => "rate_limited",
            ClassKind::Overloaded => "overloaded",
            ClassKind::Ambiguous => "ambiguous",
            ClassKind::NonRetriable => "non_retriable",
            ClassKind::InvalidOutput => "invalid_output",
        }
    }

    const fn bit(self) -> u8 {
        1 << self as u8
    }
}

impl fmt::Display for ClassKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A set of [`ClassKind`]s, e.g. the classes a circuit breaker counts as failures.
///
/// Serialises as a list of kind names.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct ClassSet(u8);

impl ClassSet {
    /// The empty set.
    pub const EMPTY: ClassSet = ClassSet(0);

    /// The default set of breaker failures: transient faults, overload and ambiguous
    /// outcomes. Rate limits put the key in a cooldown instead, and non-retriable
    /// errors are the caller's fault, not the provider's.
    pub const DEFAULT_FAILURES: ClassSet = ClassSet::EMPTY
        .with(ClassKind::Retriable)
        .with(ClassKind::Overloaded)
        .with(ClassKind::Ambiguous);

    /// This set with `kind` added.
    #[must_use]
    pub const fn with(self, kind: ClassKind) -> ClassSet {
        ClassSet(self.0 | kind.bit())
    }

    /// Whether `kind` is in the set.
    #[must_use]
    pub const fn contains(self, kind: ClassKind) -> bool {
        self.0 & kind.bit() != 0
    }

    /// The kinds in the set, in declaration order.
    pub fn iter(self) -> impl Iterator<Item = ClassKind> {
        ClassKind::ALL
            .into_iter()
            .filter(move |k| self.contains(*k))
    }
}

impl fmt::Debug for ClassSet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_set().entries(self.iter()).finish()
    }
}

impl FromIterator<ClassKind> for ClassSet {
    fn from_iter<I: IntoIterator<Item = ClassKind>>(iter: I) -> ClassSet {
        iter.into_iter().fold(ClassSet::EMPTY, ClassSet::with)
    }
}

impl Serialize for ClassSet {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_seq(self.iter())
    }
}

impl<'de> Deserialize<'de> for ClassSet {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<ClassSet, D::Error> {
        Vec::<ClassKind>::deserialize(d).map(|kinds| kinds.into_iter().collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_failures_exclude_rate_limits_and_caller_errors() {
        let set = ClassSet::DEFAULT_FAILURES;
        assert!(set.contains(ClassKind::Retriable));
        assert!(set.contains(ClassKind::Overloaded));
        assert!(set.contains(ClassKind::Ambiguous));
        assert!(!set.contains(ClassKind::RateLimited));
        assert!(!set.contains(ClassKind::NonRetriable));
        assert!(!set.contains(ClassKind::Success));
        assert_eq!(format!("{set:?}"), "{Retriable, Overloaded, Ambiguous}");
        assert_eq!(format!("{:?}", ClassSet::EMPTY), "{}");
        // Adding a kind twice keeps it.
        assert_eq!(set.with(ClassKind::Retriable), set);
    }

    #[test]
    fn class_set_round_trips_through_toml() {
        #[derive(Serialize, Deserialize, PartialEq, Debug)]
        struct Doc {
            failures: ClassSet,
        }
        let doc: Doc = toml::from_str(r#"failures = ["retriable", "rate_limited"]"#).unwrap();
        assert_eq!(
            doc.failures,
            ClassSet::EMPTY
                .with(ClassKind::Retriable)
                .with(ClassKind::RateLimited)
        );
        let text = toml::to_string(&doc).unwrap();
        assert_eq!(toml::from_str::<Doc>(&text).unwrap(), doc);
        assert!(toml::from_str::<Doc>(r#"failures = ["sometimes"]"#).is_err());
    }

    #[test]
    fn retriability_and_hints() {
        let hint = Some(Duration::from_secs(3));
        assert!(Class::RateLimited { retry_after: hint }.is_retriable());
        assert_eq!(Class::Overloaded { retry_after: hint }.retry_after(), hint);
        assert!(!Class::NonRetriable(Fatal::QuotaExhausted).is_retriable());
        assert!(!Class::Success.is_retriable());
        assert_eq!(
            Class::NonRetriable(Fatal::NotFound).to_string(),
            "non_retriable(not_found)"
        );
    }

    #[test]
    fn kinds_have_stable_names() {
        let names = ClassKind::ALL.map(ClassKind::name);
        assert_eq!(
            names,
            [
                "success",
                "retriable",
                "rate_limited",
                "overloaded",
                "ambiguous",
                "non_retriable",
                "invalid_output",
            ]
        );
        assert_eq!(ClassKind::Overloaded.to_string(), "overloaded");
        let rate_limited = Class::RateLimited {
            retry_after: Some(Duration::from_secs(1)),
        };
        assert_eq!(rate_limited.to_string(), "rate_limited");
    }
}
