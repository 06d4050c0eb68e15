//! Server hints from response headers: the `Retry-After` family and `x-should-retry`.
//!
//! Both functions take the headers as `(name, value)` pairs, so any HTTP library's
//! header map fits (`headers.iter().filter_map(|(n, v)| Some((n.as_str(), v.to_str().ok()?)))`
//! for the `http` crate). Names compare ignoring ASCII case; values may carry surrounding
//! whitespace; a header may repeat, one pair per field line (values the library has
//! already joined into one comma-separated line are not split, and read as garbage).
//! Nothing here panics, whatever the input.
//!
//! # Retry-After
//!
//! [`parse_retry_after`] reads, in order of precedence:
//!
//! 1. `retry-after-ms`: milliseconds, integer or fractional (OpenAI and Anthropic send it
//!    alongside `retry-after` with sub-second precision);
//! 2. `retry-after` as delay-seconds, fractional allowed (RFC 9110 says integer; being
//!    lenient costs nothing);
//! 3. `retry-after` as an HTTP-date (IMF-fixdate, RFC 850 or asctime), relative to the
//!    caller's wall clock `wall_now`.
//!
//! A value that is NaN, infinite, negative, zero (or rounds to zero nanoseconds), a
//! date not after `wall_now`, or not a number or date at all gives no hint, and the
//! next value or header is tried. Numbers are read as Rust reads an `f64`, so exponent
//! forms such as `1e3` are accepted; a finite value too large for a [`Duration`] counts
//! as "very long". When a header repeats, its longest valid value wins: waiting at least
//! as long as every hint is never too early. `retry-after-ms` wins over `retry-after`
//! whenever it has any valid value, as the SDKs of both providers do. The result is
//! clamped to `max` ([`DEFAULT_RETRY_AFTER_CLAMP`] is a sensible one), so one bad header
//! cannot park a key for a day; every hint returned is in `(0, max]`, and a zero `max`
//! gives none.
//!
//! # x-should-retry
//!
//! [`parse_should_retry`] reads `x-should-retry: true | false` (case-insensitive,
//! trimmed), the server's own verdict used by the OpenAI and Anthropic SDKs. Values
//! other than `true`/`false` are ignored; duplicates that disagree give `None`.

use std::time::{Duration, SystemTime};

use crate::outcome::Hints;

/// A sensible `max` for [`parse_retry_after`]: one minute.
pub const DEFAULT_RETRY_AFTER_CLAMP: Duration = Duration::from_secs(60);

/// Parses the Retry-After family from (name, value) header pairs: `retry-after-ms`
/// first, then `retry-after` as seconds or as an HTTP-date relative to `wall_now`.
/// The longest valid value of the highest-precedence header that has one, clamped to
/// `max`; see the [module docs](self) for what counts as valid. Never panics.
#[must_use]
pub fn parse_retry_after<'a, I>(headers: I, wall_now: SystemTime, max: Duration) -> Option<Duration>
where
    I: IntoIterator<Item = (&'a str, &'a str)>,
{
    let mut millis: Option<Duration> = None;
    let mut seconds_or_date: Option<Duration> = None;
    for (name, value) in headers {
        let name = name.trim();
        if name.eq_ignore_ascii_case("retry-after-ms") {
            millis = millis.max(parse_millis(value));
        } else if name.eq_ignore_ascii_case("retry-after") {
            let hint = parse_seconds(value).or_else(|| parse_date(value, wall_now));
            seconds_or_date = seconds_or_date.max(hint);
        }
    }
    millis
        .or(seconds_or_date)
        .map(|hint| hint.min(max))
        .filter(|hint| !hint.is_zero())
}

/// `x-should-retry: true|false` (case-insensitive, trimmed); conflicting duplicates → None.
/// Other values are ignored. Never panics.
#[must_use]
pub fn parse_should_retry<'a, I>(headers: I) -> Option<bool>
where
    I: IntoIterator<Item = (&'a str, &'a str)>,
{
    let (mut yes, mut no) = (false, false);
    for (name, value) in headers {
        if !name.trim().eq_ignore_ascii_case("x-should-retry") {
            continue;
        }
        let value = value.trim();
        if value.eq_ignore_ascii_case("true") {
            yes = true;
        } else if value.eq_ignore_ascii_case("false") {
            no = true;
        }
    }
    match (yes, no) {
        (true, false) => Some(true),
        (false, true) => Some(false),
        _ => None,
    }
}

/// Both [`parse_retry_after`] and [`parse_should_retry`], into [`Hints`] (the headers
/// are iterated twice, hence `Clone`).
#[must_use]
pub fn parse_hints<'a, I>(headers: I, wall_now: SystemTime, max: Duration) -> Hints
where
    I: IntoIterator<Item = (&'a str, &'a str)> + Clone,
{
    Hints {
        retry_after: parse_retry_after(headers.clone(), wall_now, max),
        should_retry: parse_should_retry(headers),
    }
}

/// A `retry-after-ms` value.
fn parse_millis(value: &str) -> Option<Duration> {
    positive_seconds(parse_number(value)? / 1000.0)
}

/// A `retry-after` value as (possibly fractional) seconds.
fn parse_seconds(value: &str) -> Option<Duration> {
    positive_seconds(parse_number(value)?)
}

/// A `retry-after` value as an HTTP-date, as a delay from `wall_now`.
fn parse_date(value: &str, wall_now: SystemTime) -> Option<Duration> {
    let at = httpdate::parse_http_date(value.trim()).ok()?;
    at.duration_since(wall_now)
        .ok()
        .filter(|delay| !delay.is_zero())
}

fn parse_number(value: &str) -> Option<f64> {
    value.trim().parse::<f64>().ok()
}

/// `secs` as a positive duration: None for NaN, ±∞, ≤ 0 or less than a nanosecond;
/// [`Duration::MAX`] for a finite value too large to represent (it is clamped later).
fn positive_seconds(secs: f64) -> Option<Duration> {
    if secs.is_nan() || secs.is_infinite() || secs <= 0.0 {
        return None;
    }
    match Duration::try_from_secs_f64(secs) {
        Ok(delay) if delay.is_zero() => None,
        Ok(delay) => Some(delay),
        // Finite and positive, so the only failure left is overflow.
        Err(_) => Some(Duration::MAX),
    }
}

#[cfg(test)]
mod tests;
