//! Tests for the taxonomy: the default table, the precedence, overrides and their
//! configuration form.

use std::time::Duration;

use proptest::prelude::*;

use super::*;
use crate::ClassKind;
use crate::outcome::TimeoutPhase;

const HINT: Option<Duration> = Some(Duration::from_secs(7));

fn status(status: u16) -> Outcome {
    Outcome::Status {
        status,
        error: None,
        hints: Hints::EMPTY,
    }
}

fn coded(status: u16, code: ErrorCode) -> Outcome {
    Outcome::Status {
        status,
        error: Some(code),
        hints: Hints::EMPTY,
    }
}

fn hinted(status: u16, error: Option<ErrorCode>, should_retry: Option<bool>) -> Outcome {
    Outcome::Status {
        status,
        error,
        hints: Hints {
            retry_after: HINT,
            should_retry,
        },
    }
}

fn broken(error: Option<ErrorCode>) -> Outcome {
    Outcome::StreamBroken {
        error,
        tokens_delivered: 3,
    }
}

#[test]
fn default_table() {
    let t = Taxonomy::default();
    let nr = Class::NonRetriable;
    let cases = [
        (500, Class::Retriable),
        (502, Class::Retriable),
        (503, Class::Retriable),
        (504, Class::Retriable),
        (501, Class::Retriable),
        (599, Class::Retriable),
        (429, Class::RateLimited { retry_after: None }),
        (529, Class::Overloaded { retry_after: None }),
        (408, Class::Ambiguous),
        (400, nr(Fatal::InvalidRequest)),
        (422, nr(Fatal::InvalidRequest)),
        (401, nr(Fatal::Unauthorized)),
        (403, nr(Fatal::Unauthorized)),
        (404, nr(Fatal::NotFound)),
        (413, nr(Fatal::TooLarge)),
        (409, nr(Fatal::Other)),
        (402, nr(Fatal::Other)),
    ];
    for (code, class) in cases {
        assert_eq!(t.classify(&status(code)), class, "{code}");
    }
}

#[test]
fn statuses_outside_the_http_range() {
    let t = Taxonomy::default();
    for code in [600, 999, 1000, u16::MAX] {
        assert_eq!(t.classify(&status(code)), Class::Retriable, "{code}");
    }
    for code in [0, 99, 100, 200, 204, 302, 499] {
        assert_eq!(
            t.classify(&status(code)),
            Class::NonRetriable(Fatal::Other),
            "{code}"
        );
    }
}

#[test]
fn transport_outcomes() {
    let t = Taxonomy::default();
    assert_eq!(t.classify(&Outcome::Success), Class::Success);
    for outcome in [
        Outcome::ConnectFailed,
        Outcome::Reset,
        Outcome::MalformedBody,
        Outcome::TimedOut {
            phase: TimeoutPhase::BeforeHeaders,
        },
        Outcome::TimedOut {
            phase: TimeoutPhase::AfterHeaders,
        },
    ] {
        assert_eq!(t.classify(&outcome), Class::Retriable, "{outcome:?}");
    }
}

#[test]
fn rate_limits_and_overload_carry_the_hint() {
    let t = Taxonomy::default();
    assert_eq!(
        t.classify(&hinted(429, None, None)),
        Class::RateLimited { retry_after: HINT }
    );
    assert_eq!(
        t.classify(&hinted(529, None, None)),
        Class::Overloaded { retry_after: HINT }
    );
    assert_eq!(t.classify(&hinted(503, None, None)), Class::Retriable);
}

#[test]
fn provider_codes_win_over_the_table() {
    let t = Taxonomy::default();
    let quota = Class::NonRetriable(Fatal::QuotaExhausted);
    assert_eq!(t.classify(&coded(429, ErrorCode::InsufficientQuota)), quota);
    assert_eq!(t.classify(&coded(429, ErrorCode::SpendLimitReached)), quota);
    assert_eq!(t.classify(&coded(402, ErrorCode::SpendLimitReached)), quota);
    for code in [200, 429, 500, 503, 529] {
        assert_eq!(
            t.classify(&hinted(code, Some(ErrorCode::Overloaded), None)),
            Class::Overloaded { retry_after: HINT },
            "{code}"
        );
    }
    assert_eq!(
        t.classify(&coded(400, ErrorCode::ContextWindowExceeded)),
        Class::NonRetriable(Fatal::ContextWindowExceeded)
    );
    assert_eq!(
        t.classify(&coded(400, ErrorCode::ContentPolicy)),
        Class::NonRetriable(Fatal::ContentPolicy)
    );
    // Codes that restate the status do not change the class...
    assert_eq!(
        t.classify(&hinted(429, Some(ErrorCode::RateLimited), None)),
        Class::RateLimited { retry_after: HINT }
    );
    assert_eq!(
        t.classify(&coded(500, ErrorCode::InvalidRequest)),
        Class::Retriable
    );
    assert_eq!(
        t.classify(&coded(503, ErrorCode::Unavailable)),
        Class::Retriable
    );
    assert_eq!(
        t.classify(&coded(413, ErrorCode::InvalidRequest)),
        Class::NonRetriable(Fatal::TooLarge)
    );
    // ...but name the reason for a status that has none.
    assert_eq!(
        t.classify(&coded(409, ErrorCode::InvalidRequest)),
        Class::NonRetriable(Fatal::InvalidRequest)
    );
    assert_eq!(
        t.classify(&coded(418, ErrorCode::PermissionDenied)),
        Class::NonRetriable(Fatal::Unauthorized)
    );
    assert_eq!(
        t.classify(&coded(410, ErrorCode::NotFound)),
        Class::NonRetriable(Fatal::NotFound)
    );
    assert_eq!(
        t.classify(&coded(409, ErrorCode::Other)),
        Class::NonRetriable(Fatal::Other)
    );
}

#[test]
fn should_retry_false_makes_anything_non_retriable() {
    let t = Taxonomy::default();
    let other = Class::NonRetriable(Fatal::Other);
    for code in [408, 429, 500, 503, 529, 600] {
        assert_eq!(
            t.classify(&hinted(code, None, Some(false))),
            other,
            "{code}"
        );
    }
    assert_eq!(
        t.classify(&hinted(529, Some(ErrorCode::Overloaded), Some(false))),
        other
    );
    // An already non-retriable class keeps its more specific reason.
    assert_eq!(
        t.classify(&hinted(404, None, Some(false))),
        Class::NonRetriable(Fatal::NotFound)
    );
    assert_eq!(
        t.classify(&hinted(
            429,
            Some(ErrorCode::InsufficientQuota),
            Some(false)
        )),
        Class::NonRetriable(Fatal::QuotaExhausted)
    );
}

#[test]
fn should_retry_true_relaxes_the_table_only() {
    let t = Taxonomy::default();
    for code in [400, 401, 404, 409, 413] {
        assert_eq!(
            t.classify(&hinted(code, None, Some(true))),
            Class::Retriable,
            "{code}"
        );
    }
    assert_eq!(
        t.classify(&hinted(409, Some(ErrorCode::InvalidRequest), Some(true))),
        Class::Retriable
    );
    assert_eq!(t.classify(&hinted(408, None, Some(true))), Class::Ambiguous);
    assert_eq!(
        t.classify(&hinted(429, None, Some(true))),
        Class::RateLimited { retry_after: HINT }
    );
    // A code that says no wait can help is not overridden.
    assert_eq!(
        t.classify(&hinted(
            400,
            Some(ErrorCode::ContextWindowExceeded),
            Some(true)
        )),
        Class::NonRetriable(Fatal::ContextWindowExceeded)
    );
    assert_eq!(
        t.classify(&hinted(429, Some(ErrorCode::InsufficientQuota), Some(true))),
        Class::NonRetriable(Fatal::QuotaExhausted)
    );
}

#[test]
fn broken_streams() {
    let t = Taxonomy::default();
    let cases = [
        (None, Class::Ambiguous),
        (
            Some(ErrorCode::Overloaded),
            Class::Overloaded { retry_after: None },
        ),
        (
            Some(ErrorCode::RateLimited),
            Class::RateLimited { retry_after: None },
        ),
        (Some(ErrorCode::ServerError), Class::Ambiguous),
        (Some(ErrorCode::Unavailable), Class::Ambiguous),
        (Some(ErrorCode::Other), Class::Ambiguous),
        (
            Some(ErrorCode::InsufficientQuota),
            Class::NonRetriable(Fatal::QuotaExhausted),
        ),
        (
            Some(ErrorCode::ContextWindowExceeded),
            Class::NonRetriable(Fatal::ContextWindowExceeded),
        ),
        (
            Some(ErrorCode::ContentPolicy),
            Class::NonRetriable(Fatal::ContentPolicy),
        ),
        (
            Some(ErrorCode::InvalidRequest),
            Class::NonRetriable(Fatal::InvalidRequest),
        ),
        (
            Some(ErrorCode::Authentication),
            Class::NonRetriable(Fatal::Unauthorized),
        ),
    ];
    for (error, class) in cases {
        assert_eq!(t.classify(&broken(error)), class, "{error:?}");
    }
}

#[test]
fn overrides_replace_rows_and_stay_sorted() {
    let t = Taxonomy::default()
        .with_status(503, StatusClass::Overloaded)
        .with_status(409, StatusClass::Retriable)
        .with_status(500, StatusClass::NonRetriable)
        .with_status(409, StatusClass::Ambiguous)
        .with_status(404, StatusClass::RateLimited);
    assert_eq!(
        t.overrides(),
        [
            (404, StatusClass::RateLimited),
            (409, StatusClass::Ambiguous),
            (500, StatusClass::NonRetriable),
            (503, StatusClass::Overloaded),
        ]
    );
    assert_eq!(t.classify(&status(409)), Class::Ambiguous);
    assert_eq!(
        t.classify(&hinted(503, None, None)),
        Class::Overloaded { retry_after: HINT }
    );
    assert_eq!(
        t.classify(&hinted(404, None, None)),
        Class::RateLimited { retry_after: HINT }
    );
    assert_eq!(t.classify(&status(500)), Class::NonRetriable(Fatal::Other));
    assert_eq!(
        t.classify(&coded(500, ErrorCode::Authentication)),
        Class::NonRetriable(Fatal::Unauthorized)
    );
    assert_eq!(t.classify(&status(502)), Class::Retriable);
    // Overloaded still wins over an override.
    assert_eq!(
        t.classify(&coded(409, ErrorCode::Overloaded)),
        Class::Overloaded { retry_after: None }
    );
    assert_eq!(t.status_class(409), StatusClass::Ambiguous);
    assert_eq!(t.status_class(410), StatusClass::NonRetriable);
}

#[derive(Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Doc {
    #[serde(default)]
    taxonomy: Taxonomy,
}

#[test]
fn reads_overrides_from_toml() {
    let doc: Doc = toml::from_str(
        "[taxonomy]\noverrides = { \"409\" = \"retriable\", \"503\" = \"overloaded\" }",
    )
    .unwrap();
    assert_eq!(
        doc.taxonomy,
        Taxonomy::default()
            .with_status(409, StatusClass::Retriable)
            .with_status(503, StatusClass::Overloaded)
    );
    let table: Doc = toml::from_str(
        "[taxonomy.overrides]\n\"400\" = \"non_retriable\"\n\"408\" = \"retriable\"",
    )
    .unwrap();
    assert_eq!(table.taxonomy.status_class(408), StatusClass::Retriable);
    assert_eq!(
        toml::from_str::<Doc>("[taxonomy]").unwrap().taxonomy,
        Taxonomy::default()
    );
    assert_eq!(
        toml::from_str::<Doc>("").unwrap().taxonomy,
        Taxonomy::default()
    );
}

#[test]
fn toml_round_trip() {
    let doc = Doc {
        taxonomy: Taxonomy::default()
            .with_status(529, StatusClass::Retriable)
            .with_status(409, StatusClass::Ambiguous),
    };
    let text = toml::to_string(&doc).unwrap();
    assert_eq!(toml::from_str::<Doc>(&text).unwrap(), doc);
    let json = serde_json::to_string(&doc.taxonomy).unwrap();
    assert_eq!(
        json,
        r#"{"overrides":{"409":"ambiguous","529":"retriable"}}"#
    );
}

#[test]
fn rejects_bad_configuration() {
    for text in [
        "[taxonomy]\nstatuses = {}",
        "[taxonomy]\noverrides = { \"409\" = \"sometimes\" }",
        "[taxonomy]\noverrides = { \"abc\" = \"retriable\" }",
        "[taxonomy]\noverrides = { \"99\" = \"retriable\" }",
        "[taxonomy]\noverrides = { \"0409\" = \"retriable\" }",
        "[taxonomy]\noverrides = { \" 409\" = \"retriable\" }",
        "[taxonomy]\noverrides = { \"1000\" = \"retriable\" }",
        "[taxonomy]\noverrides = [\"409\"]",
    ] {
        assert!(toml::from_str::<Doc>(text).is_err(), "{text}");
    }
}

fn any_code() -> impl Strategy<Value = Option<ErrorCode>> {
    proptest::option::of(proptest::sample::select(vec![
        ErrorCode::RateLimited,
        ErrorCode::InsufficientQuota,
        ErrorCode::SpendLimitReached,
        ErrorCode::Overloaded,
        ErrorCode::ContextWindowExceeded,
        ErrorCode::ContentPolicy,
        ErrorCode::InvalidRequest,
        ErrorCode::Authentication,
        ErrorCode::PermissionDenied,
        ErrorCode::NotFound,
        ErrorCode::ServerError,
        ErrorCode::Unavailable,
        ErrorCode::Other,
    ]))
}

fn any_status_class() -> impl Strategy<Value = StatusClass> {
    proptest::sample::select(vec![
        StatusClass::Retriable,
        StatusClass::RateLimited,
        StatusClass::Overloaded,
        StatusClass::Ambiguous,
        StatusClass::NonRetriable,
    ])
}

proptest! {
    #[test]
    fn classify_respects_the_precedence(
        code in any::<u16>(),
        error in any_code(),
        retry_after in proptest::option::of(1u64..100_000),
        should_retry in proptest::option::of(any::<bool>()),
        overrides in proptest::collection::vec((any::<u16>(), any_status_class()), 0..8),
    ) {
        let t = overrides
            .iter()
            .fold(Taxonomy::default(), |t, &(s, c)| t.with_status(s, c));
        prop_assert!(t.overrides().windows(2).all(|w| w[0].0 < w[1].0));
        let retry_after = retry_after.map(Duration::from_millis);
        let outcome = Outcome::Status { status: code, error, hints: Hints { retry_after, should_retry } };
        let class = t.classify(&outcome);
        if should_retry == Some(false) {
            prop_assert!(!class.is_retriable());
        }
        if let Class::RateLimited { retry_after: r } | Class::Overloaded { retry_after: r } = class {
            prop_assert_eq!(r, retry_after);
        }
        if error == Some(ErrorCode::Overloaded) && should_retry != Some(false) {
            prop_assert_eq!(class, Class::Overloaded { retry_after });
        }
        if error.is_none() && should_retry.is_none() {
            let expected = match t.status_class(code) {
                StatusClass::Retriable => ClassKind::Retriable,
                StatusClass::RateLimited => ClassKind::RateLimited,
                StatusClass::Overloaded => ClassKind::Overloaded,
                StatusClass::Ambiguous => ClassKind::Ambiguous,
                StatusClass::NonRetriable => ClassKind::NonRetriable,
            };
            prop_assert_eq!(class.kind(), expected);
        }
        prop_assert_ne!(class, Class::Success);
    }
}

/// A status class reads as the name its TOML override uses.
#[test]
fn a_status_class_displays_its_name() {
    for class in [
        StatusClass::Retriable,
        StatusClass::RateLimited,
        StatusClass::Overloaded,
        StatusClass::Ambiguous,
        StatusClass::NonRetriable,
    ] {
        assert_eq!(class.to_string(), class.name());
    }
    assert_eq!(StatusClass::RateLimited.to_string(), "rate_limited");
}
