//! `breakwater_core::retry_after`: arbitrary header lists, wall clocks and clamps.
//!
//! The input is text, so that seeds are real headers: the first line holds up to four
//! numbers, `wall_secs wall_nanos max_ms date_secs` (the wall clock in seconds from the
//! Unix epoch, negative before it; the clamp; an instant for the HTTP-date round trip;
//! a missing or unreadable number is 0), and every further line is one header,
//! `name: value` (a line without a colon is a name with an empty value). Invalid UTF-8
//! is replaced.
//!
//! Checks, beyond "no panic": every hint lies in `(0, max]`; the list's hint is the one
//! the module docs define from each header's own hint (`retry-after-ms` wins whenever
//! one of its values is valid, the longest value wins within a name); `parse_hints`
//! agrees with the two parsers; and an HTTP-date formatted from an arbitrary instant
//! gives exactly its distance from the wall clock, clamped.

#![no_main]

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use breakwater_core::retry_after::{parse_hints, parse_retry_after, parse_should_retry};
use libfuzzer_sys::fuzz_target;

fn wall_clock(secs: i64, nanos: u32) -> SystemTime {
    let offset = Duration::new(secs.unsigned_abs(), nanos % 1_000_000_000);
    let at = if secs >= 0 {
        UNIX_EPOCH.checked_add(offset)
    } else {
        UNIX_EPOCH.checked_sub(offset)
    };
    at.unwrap_or(UNIX_EPOCH)
}

fn http_date(secs: u32) -> String {
    httpdate::fmt_http_date(UNIX_EPOCH + Duration::from_secs(u64::from(secs)))
}

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let mut lines = text.split('\n');
    let mut numbers = lines.next().unwrap_or("").split_ascii_whitespace();
    let wall_secs: i64 = numbers.next().and_then(|n| n.parse().ok()).unwrap_or(0);
    let wall_nanos: u32 = numbers.next().and_then(|n| n.parse().ok()).unwrap_or(0);
    let max_ms: u64 = numbers.next().and_then(|n| n.parse().ok()).unwrap_or(0);
    let date_secs: u32 = numbers.next().and_then(|n| n.parse().ok()).unwrap_or(0);
    let wall_now = wall_clock(wall_secs, wall_nanos);
    let max = Duration::from_millis(max_ms);
    let pairs: Vec<(&str, &str)> = lines
        .map(|line| line.split_once(':').unwrap_or((line, "")))
        .collect();

    let hint = parse_retry_after(pairs.iter().copied(), wall_now, max);
    if let Some(hint) = hint {
        assert!(
            !hint.is_zero() && hint <= max,
            "hint {hint:?} outside (0, {max:?}]"
        );
    }

    // The list's hint from each header's own: the longest valid `retry-after-ms`, else
    // the longest valid `retry-after`.
    let own = |name: &str, value: &str| parse_retry_after([(name, value)], wall_now, max);
    let mut millis: Option<Duration> = None;
    let mut seconds: Option<Duration> = None;
    for &(name, value) in &pairs {
        let trimmed = name.trim();
        if trimmed.eq_ignore_ascii_case("retry-after-ms") {
            millis = millis.max(own(name, value));
        } else if trimmed.eq_ignore_ascii_case("retry-after") {
            seconds = seconds.max(own(name, value));
        }
    }
    assert_eq!(hint, millis.or(seconds), "headers {pairs:?}");

    let should_retry = parse_should_retry(pairs.iter().copied());
    let hints = parse_hints(pairs.iter().copied(), wall_now, max);
    assert_eq!(hints.retry_after, hint);
    assert_eq!(hints.should_retry, should_retry);

    // An HTTP-date is whole seconds from the wall clock, clamped to `max`.
    let date = UNIX_EPOCH + Duration::from_secs(u64::from(date_secs));
    let expected = date
        .duration_since(wall_now)
        .ok()
        .map(|delay| delay.min(max))
        .filter(|delay| !delay.is_zero());
    let text = http_date(date_secs);
    assert_eq!(
        own("retry-after", &text),
        expected,
        "date {text} at {wall_now:?}"
    );
});
