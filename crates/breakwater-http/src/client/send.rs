//! One attempt: render, send, read, map to an outcome (the caller holds the timeout).

use std::future::Future;
use std::sync::atomic::{AtomicBool, Ordering};

use breakwater_core::plan::{EntryEvent, History};
use breakwater_core::{Attempt, Outcome, TimeoutPhase};
use tracing::Instrument;
use tracing::field::{Empty, display};

use super::{Client, Target, attempt_entry};
use crate::clock;
use crate::outcome::{Exchange, from_response, from_transport, read_limited};
use crate::validate::Validator;
use crate::wire::Request;

impl Client {
    /// One attempt's exchange, as a future that never fails (every failure is an
    /// outcome for the plan), and the attempt's span, for [`record_attempt`] once the
    /// plan has classified the outcome.
    ///
    /// The future carries no timeout of its own: the caller races it against the one
    /// timer of its call, set to the attempt's end, and reads `headers` (set once the
    /// response headers are in) to say in which phase a timeout fired.
    pub(super) fn send<'a>(
        &'a self,
        target: &'a Target,
        attempt: &Attempt<'_>,
        request: &Request,
        headers: &'a AtomicBool,
    ) -> (impl Future<Output = Exchange> + Send + 'a, tracing::Span) {
        let inner = &*self.inner;
        let provider = &*target.provider;
        let span = tracing::info_span!(
            "breakwater.attempt",
            provider = attempt.key.provider(),
            model = attempt.key.model(),
            step = attempt.step,
            attempt = attempt.attempt,
            fallback = attempt.fallback,
            timeout_ms = attempt.timeout.as_millis() as u64,
            status = Empty,
            class = Empty,
            input_tokens = Empty,
            output_tokens = Empty,
            cost = Empty,
        );
        let rendered =
            provider
                .kind
                .render(request, attempt.key.model(), target.variant.as_ref(), false);
        let mut builder = match target.url.get(&provider.base_url, &rendered.path) {
            Ok(url) => inner.http.post(url),
            Err(text) => inner.http.post(text),
        }
        .header(provider.auth.0.clone(), provider.auth.1.clone());
        for (name, value) in &rendered.headers {
            builder = builder.header(*name, value.as_str());
        }
        // Made here, not inside the future: the pending request is a box, the builder
        // it consumes hundreds of bytes that the future would otherwise hold.
        let pending = builder.body(rendered.body).send();
        let (response_limit, error_limit) = (inner.response_limit, inner.error_body_limit);
        let exchange = async move {
            let result = async {
                let mut response = pending.await?;
                headers.store(true, Ordering::Relaxed);
                let status = response.status().as_u16();
                // Moved out, not copied: reading the body does not need them.
                let headers = std::mem::take(response.headers_mut());
                let limit = if response.status().is_success() {
                    response_limit
                } else {
                    error_limit
                };
                let body = read_limited(response, limit).await?;
                Ok::<_, reqwest::Error>((status, headers, body))
            }
            .await;
            match result {
                Err(error) => Exchange::bare(from_transport(&error, phase(headers))),
                Ok((status, headers, body)) => {
                    tracing::Span::current().record("status", status);
                    let exchange =
                        from_response(provider.kind, status, &headers, &body, clock::read().wall);
                    validated(exchange, target.validator.as_ref())
                }
            }
        }
        .instrument(span.clone());
        (exchange, span)
    }
}

/// The phase an attempt is in: after the headers once `headers` is set.
pub(super) fn phase(headers: &AtomicBool) -> TimeoutPhase {
    if headers.load(Ordering::Relaxed) {
        TimeoutPhase::AfterHeaders
    } else {
        TimeoutPhase::BeforeHeaders
    }
}

/// `exchange`, with a successful answer that fails `validator` turned into
/// [`Outcome::InvalidOutput`]: still billed, but not an answer.
fn validated(mut exchange: Exchange, validator: Option<&Validator>) -> Exchange {
    if let (Some(validator), Some(completion)) = (validator, &exchange.completion) {
        if let Err(invalid) = validator.check(&completion.text) {
            tracing::info!(validator = invalid.validator, reason = %invalid.reason, "invalid output");
            exchange.outcome = Outcome::InvalidOutput;
            exchange.completion = None;
        }
    }
    exchange
}

/// Records the plan's verdict on attempt `number` (class, tokens, cost) on its span.
pub(super) fn record_attempt(span: &tracing::Span, history: &History, number: u32) {
    if let Some(entry) = attempt_entry(history, number)
        && let EntryEvent::Attempt {
            class, usage, cost, ..
        } = entry.event
    {
        span.record("class", display(class));
        span.record("input_tokens", usage.input_tokens);
        span.record("output_tokens", usage.output_tokens);
        span.record("cost", display(cost));
    }
}
