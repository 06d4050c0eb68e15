//! Tests for the header parsers: every edge case by name, and proptests that no input
//! panics and every hint lies in `(0, max]`.

use std::time::UNIX_EPOCH;

use proptest::prelude::*;

use super::*;

/// Sun, 06 Nov 1994 08:49:37 GMT.
const DATE_SECS: u64 = 784_111_777;
const MAX: Duration = DEFAULT_RETRY_AFTER_CLAMP;

fn secs(s: u64) -> Duration {
    Duration::from_secs(s)
}

/// The wall clock `before` seconds before [`DATE_SECS`].
fn before_date(before: u64) -> SystemTime {
    UNIX_EPOCH + secs(DATE_SECS - before)
}

fn parse(headers: &[(&str, &str)]) -> Option<Duration> {
    parse_retry_after(headers.iter().copied(), before_date(30), MAX)
}

fn after(value: &str) -> Option<Duration> {
    parse(&[("retry-after", value)])
}

fn after_ms(value: &str) -> Option<Duration> {
    parse(&[("retry-after-ms", value)])
}

#[test]
fn delay_seconds() {
    assert_eq!(after("5"), Some(secs(5)));
    assert_eq!(after("  5\t"), Some(secs(5)));
    assert_eq!(after("1.5"), Some(Duration::from_millis(1500)));
    assert_eq!(after("0.001"), Some(Duration::from_millis(1)));
    assert_eq!(after("1e1"), Some(secs(10)));
    assert_eq!(parse(&[("Retry-After", "7")]), Some(secs(7)));
    assert_eq!(parse(&[("RETRY-AFTER", "7")]), Some(secs(7)));
}

#[test]
fn millis() {
    assert_eq!(after_ms("250"), Some(Duration::from_millis(250)));
    assert_eq!(after_ms(" 0.5 "), Some(Duration::from_micros(500)));
    assert_eq!(
        parse(&[("Retry-After-Ms", "1234.5")]),
        Some(Duration::from_micros(1_234_500))
    );
}

#[test]
fn nothing_from_invalid_values() {
    for value in [
        "",
        " ",
        "NaN",
        "nan",
        "inf",
        "-inf",
        "infinity",
        "-1",
        "-0",
        "0",
        "0.0",
        "1e-30",
        "soon",
        "5 s",
        "0x10",
        "1,000",
        "Sun, 06 Nov 1994 08:49:37",
    ] {
        assert_eq!(after(value), None, "retry-after {value:?}");
        assert_eq!(after_ms(value), None, "retry-after-ms {value:?}");
    }
    assert_eq!(parse(&[]), None);
    assert_eq!(
        parse(&[("x-retry-after", "5"), ("retry-after-s", "5")]),
        None
    );
}

#[test]
fn huge_values_clamp() {
    for value in [
        "1e30",
        "99999999999999999999999",
        "1.7976931348623157e308",
        "61",
    ] {
        assert_eq!(after(value), Some(MAX), "{value}");
        if value != "61" {
            assert_eq!(after_ms(value), Some(MAX), "{value}");
        }
    }
    assert_eq!(after("18446744073709551616"), Some(MAX));
    let huge = parse_retry_after([("retry-after", "1e30")], before_date(30), Duration::MAX);
    assert_eq!(huge, Some(Duration::MAX));
}

#[test]
fn zero_max_gives_no_hint() {
    assert_eq!(
        parse_retry_after([("retry-after", "5")], before_date(0), Duration::ZERO),
        None
    );
}

#[test]
fn http_date_forms() {
    for value in [
        "Sun, 06 Nov 1994 08:49:37 GMT",
        "Sunday, 06-Nov-94 08:49:37 GMT",
        "Sun Nov  6 08:49:37 1994",
        "  Sun, 06 Nov 1994 08:49:37 GMT  ",
    ] {
        assert_eq!(after(value), Some(secs(30)), "{value:?}");
    }
}

#[test]
fn past_and_far_future_dates() {
    let at = |now: SystemTime, value| parse_retry_after([("retry-after", value)], now, MAX);
    let date = "Sun, 06 Nov 1994 08:49:37 GMT";
    assert_eq!(at(UNIX_EPOCH + secs(DATE_SECS), date), None, "now");
    assert_eq!(at(UNIX_EPOCH + secs(DATE_SECS + 1), date), None, "past");
    assert_eq!(
        at(
            UNIX_EPOCH + secs(DATE_SECS) - Duration::from_millis(1),
            date
        ),
        Some(Duration::from_millis(1))
    );
    assert_eq!(
        at(before_date(30), "Fri, 31 Dec 9999 23:59:59 GMT"),
        Some(MAX)
    );
    assert_eq!(at(UNIX_EPOCH, "Thu, 01 Jan 1970 00:00:00 GMT"), None);
    // Not a valid date: day 32, hour 25, a month that does not exist.
    for bad in [
        "Sun, 32 Nov 1994 08:49:37 GMT",
        "Sun, 06 Nov 1994 25:49:37 GMT",
        "Sun, 06 Foo 1994 08:49:37 GMT",
        "Sun, 06 Nov 1994 08:49:37 UTC",
    ] {
        assert_eq!(at(before_date(30), bad), None, "{bad}");
    }
}

#[test]
fn millis_take_precedence() {
    assert_eq!(
        parse(&[("retry-after", "30"), ("retry-after-ms", "100")]),
        Some(Duration::from_millis(100))
    );
    assert_eq!(
        parse(&[
            ("retry-after-ms", "100"),
            ("retry-after", "Sun, 06 Nov 1994 08:49:37 GMT")
        ]),
        Some(Duration::from_millis(100))
    );
    // An invalid retry-after-ms falls back to retry-after.
    assert_eq!(
        parse(&[("retry-after-ms", "NaN"), ("retry-after", "3")]),
        Some(secs(3))
    );
    assert_eq!(
        parse(&[("retry-after-ms", "-5"), ("retry-after", "garbage")]),
        None
    );
}

#[test]
fn duplicates_take_the_longest_valid_value() {
    assert_eq!(
        parse(&[
            ("retry-after", "3"),
            ("retry-after", "9"),
            ("retry-after", "4")
        ]),
        Some(secs(9))
    );
    assert_eq!(
        parse(&[("retry-after", "3"), ("retry-after", "inf")]),
        Some(secs(3))
    );
    assert_eq!(
        parse(&[
            ("retry-after", "3"),
            ("retry-after", "Sun, 06 Nov 1994 08:49:37 GMT")
        ]),
        Some(secs(30))
    );
    assert_eq!(
        parse(&[
            ("retry-after-ms", "10"),
            ("retry-after-ms", "2000"),
            ("retry-after-ms", "x")
        ]),
        Some(secs(2))
    );
    assert_eq!(
        parse(&[("retry-after", "30"), ("retry-after", "3000")]),
        Some(MAX)
    );
}

#[test]
fn should_retry() {
    let p = |headers: &[(&str, &str)]| parse_should_retry(headers.iter().copied());
    assert_eq!(p(&[("x-should-retry", "true")]), Some(true));
    assert_eq!(p(&[("X-Should-Retry", " FALSE ")]), Some(false));
    assert_eq!(
        p(&[("x-should-retry", "True"), ("x-should-retry", "true")]),
        Some(true)
    );
    assert_eq!(
        p(&[("x-should-retry", "true"), ("x-should-retry", "false")]),
        None
    );
    assert_eq!(p(&[("x-should-retry", "yes")]), None);
    assert_eq!(
        p(&[("x-should-retry", "maybe"), ("x-should-retry", "false")]),
        Some(false)
    );
    assert_eq!(p(&[("should-retry", "true")]), None);
    assert_eq!(p(&[]), None);
}

#[test]
fn hints_from_one_header_list() {
    let headers = [
        ("retry-after", "2"),
        ("x-should-retry", "true"),
        ("content-type", "json"),
    ];
    let hints = parse_hints(headers.iter().copied(), before_date(0), MAX);
    assert_eq!(
        hints,
        Hints {
            retry_after: Some(secs(2)),
            should_retry: Some(true)
        }
    );
    assert_eq!(parse_hints([("a", "b")], before_date(0), MAX), Hints::EMPTY);
}

fn name() -> impl Strategy<Value = String> {
    prop_oneof![
        proptest::sample::select(vec![
            "retry-after",
            "Retry-After",
            "RETRY-AFTER",
            " retry-after ",
            "retry-after-ms",
            "Retry-After-Ms",
            "x-should-retry",
            "X-Should-Retry",
        ])
        .prop_map(String::from),
        ".*",
    ]
}

/// Strings built from the pieces numbers and their parsers trip over.
fn numberish() -> impl Strategy<Value = String> {
    let piece = prop_oneof![
        "[0-9]{1,25}",
        proptest::sample::select(vec![
            ".", "-", "+", "e", "E", "e-", "e+", " ", "\t", "NaN", "nan", "inf", "-inf",
            "infinity", "Infinity", "0", "00000", "1e308", "1e309", "5e-324", "true",
        ])
        .prop_map(String::from),
    ];
    proptest::collection::vec(piece, 0..6).prop_map(|pieces| pieces.concat())
}

/// HTTP-date look-alikes with any field out of range.
fn dateish() -> impl Strategy<Value = String> {
    (
        proptest::sample::select(vec!["Sun", "Mon", "Sunday", "Xyz", ""]),
        0u32..100,
        proptest::sample::select(vec!["Nov", "Feb", "Dec", "Foo"]),
        0u32..100_000,
        0u32..100,
        0u32..100,
        0u32..100,
        0usize..3,
    )
        .prop_map(|(day, dd, mon, year, h, m, s, form)| match form {
            0 => format!("{day}, {dd:02} {mon} {year} {h:02}:{m:02}:{s:02} GMT"),
            1 => format!(
                "{day}, {dd:02}-{mon}-{:02} {h:02}:{m:02}:{s:02} GMT",
                year % 100
            ),
            _ => format!("{day} {mon} {dd:>2} {h:02}:{m:02}:{s:02} {year}"),
        })
}

fn value() -> impl Strategy<Value = String> {
    prop_oneof![".*", numberish(), dateish()]
}

fn wall_now() -> impl Strategy<Value = SystemTime> {
    prop_oneof![
        (0u64..=253_402_300_799, 0u32..1_000_000_000)
            .prop_map(|(s, n)| UNIX_EPOCH + Duration::new(s, n)),
        (1u64..10_000_000_000).prop_map(|s| UNIX_EPOCH - secs(s)),
    ]
}

fn max() -> impl Strategy<Value = Duration> {
    prop_oneof![
        Just(Duration::ZERO),
        Just(Duration::MAX),
        Just(MAX),
        any::<u64>().prop_map(Duration::from_nanos),
        any::<u64>().prop_map(Duration::from_millis),
    ]
}

proptest! {
    #[test]
    fn any_single_value_is_safe(v in value(), now in wall_now(), max in max()) {
        for name in ["retry-after", "retry-after-ms", "x-should-retry"] {
            let hint = parse_retry_after([(name, v.as_str())], now, max);
            prop_assert!(hint.is_none_or(|d| d > Duration::ZERO && d <= max), "{hint:?}");
            let _ = parse_should_retry([(name, v.as_str())]);
        }
    }

    #[test]
    fn any_header_list_is_safe(
        headers in proptest::collection::vec((name(), value()), 0..8),
        now in wall_now(),
        max in max(),
    ) {
        let pairs: Vec<(&str, &str)> = headers.iter().map(|(n, v)| (n.as_str(), v.as_str())).collect();
        let hints = parse_hints(pairs.iter().copied(), now, max);
        prop_assert!(
            hints.retry_after.is_none_or(|d| d > Duration::ZERO && d <= max),
            "{hints:?}"
        );
    }

    #[test]
    fn integer_seconds_give_the_longest(values in proptest::collection::vec(0u64..100_000, 1..6), max_s in 1u64..200_000) {
        let texts: Vec<String> = values.iter().map(u64::to_string).collect();
        let headers = texts.iter().map(|t| ("retry-after", t.as_str()));
        let longest = values.iter().copied().max().unwrap_or(0);
        let expected = (longest > 0).then(|| secs(longest.min(max_s)));
        prop_assert_eq!(parse_retry_after(headers, before_date(0), secs(max_s)), expected);
    }
}
