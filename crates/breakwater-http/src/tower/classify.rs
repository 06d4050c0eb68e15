//! From the inner service's result to the core's [`Outcome`], and the per-request
//! deadline.

use std::time::Duration;

use breakwater_core::{Hints, Outcome};

use crate::clock;
use crate::outcome::hints;

/// What the layer needs to know about the wrapped service's requests and results.
///
/// [`classify`](Self::classify) states what a result *is* (a status and its hints, a
/// failure to connect, …); the route's taxonomy, inside the plan, decides what it
/// *means* (retry, wait, give up). Any `Fn(&Result<Res, E>) -> Outcome` is a
/// classifier with no per-request deadline.
pub trait Classify<Req, Res, E> {
    /// The outcome of one attempt's result.
    fn classify(&self, result: &Result<Res, E>) -> Outcome;

    /// The deadline `request` asks for, instead of the configured one. The default
    /// asks for none.
    fn deadline(&self, request: &Req) -> Option<Duration> {
        let _ = request;
        None
    }
}

impl<F, Req, Res, E> Classify<Req, Res, E> for F
where
    F: Fn(&Result<Res, E>) -> Outcome,
{
    fn classify(&self, result: &Result<Res, E>) -> Outcome {
        self(result)
    }
}

/// A call's deadline, as a request extension: put it in an `http::Request`'s
/// extensions (for the layer with [`HttpClassify`]) or in a `reqwest-middleware`
/// request's (`RequestBuilder::with_extension`) to override the configured deadline
/// for that call.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CallDeadline(pub Duration);

/// The classifier for `http` services (hyper's client, a reqwest `service_fn`, …):
///
/// | result | [`Outcome`] |
/// |---|---|
/// | a 2xx response | `Success` |
/// | any other response | `Status { status, error: None, hints }`, `hints` from `retry-after-ms`, `retry-after` (seconds or an HTTP-date) and `x-should-retry`, as [`crate::outcome::hints`] reads them |
/// | an error | `Reset`: the request may or may not have left, retriable by default |
///
/// A request's [`CallDeadline`] extension, if it has one, is its deadline. The body
/// is never read: the response goes back to the caller as it came.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct HttpClassify;

impl HttpClassify {
    /// The outcome of a response with `status` and `headers`.
    #[must_use]
    pub fn response(status: http::StatusCode, headers: &http::HeaderMap) -> Outcome {
        if status.is_success() {
            return Outcome::Success;
        }
        let hints: Hints = hints(headers, clock::read().wall);
        Outcome::Status {
            status: status.as_u16(),
            error: None,
            hints,
        }
    }
}

impl<A, B, E> Classify<http::Request<A>, http::Response<B>, E> for HttpClassify {
    fn classify(&self, result: &Result<http::Response<B>, E>) -> Outcome {
        match result {
            Ok(response) => HttpClassify::response(response.status(), response.headers()),
            Err(_) => Outcome::Reset,
        }
    }

    fn deadline(&self, request: &http::Request<A>) -> Option<Duration> {
        request.extensions().get::<CallDeadline>().map(|d| d.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn response(status: u16, headers: &[(&str, &str)]) -> http::Response<()> {
        let mut builder = http::Response::builder().status(status);
        for (name, value) in headers {
            builder = builder.header(*name, *value);
        }
        builder.body(()).expect("valid response")
    }

    #[test]
    fn statuses_and_hints() {
        let ok: Result<_, ()> = Ok(response(204, &[]));
        assert_eq!(
            Classify::<http::Request<()>, _, _>::classify(&HttpClassify, &ok),
            Outcome::Success
        );
        let limited: Result<_, ()> = Ok(response(
            429,
            &[("retry-after", "7"), ("x-should-retry", "true")],
        ));
        assert_eq!(
            Classify::<http::Request<()>, _, _>::classify(&HttpClassify, &limited),
            Outcome::Status {
                status: 429,
                error: None,
                hints: Hints {
                    retry_after: Some(Duration::from_secs(7)),
                    should_retry: Some(true),
                },
            }
        );
        let failed: Result<http::Response<()>, &str> = Err("broken pipe");
        assert_eq!(
            Classify::<http::Request<()>, _, _>::classify(&HttpClassify, &failed),
            Outcome::Reset
        );
    }

    #[test]
    fn deadline_from_the_extension() {
        let mut request = http::Request::new(());
        let c = &HttpClassify;
        let deadline =
            |r: &http::Request<()>| Classify::<_, http::Response<()>, ()>::deadline(c, r);
        assert_eq!(deadline(&request), None);
        request
            .extensions_mut()
            .insert(CallDeadline(Duration::from_millis(1500)));
        assert_eq!(deadline(&request), Some(Duration::from_millis(1500)));
    }
}
