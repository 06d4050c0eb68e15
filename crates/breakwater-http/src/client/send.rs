//! One attempt: render, send under the attempt's timeout, read, map to an outcome.

use breakwater_core::plan::{EntryEvent, History};
use breakwater_core::{Attempt, Outcome, TimeoutPhase};
use tracing::Instrument;
use tracing::field::{Empty, display};

use super::{Client, Target, attempt_entry};
use crate::clock;
use crate::outcome::{self, Exchange, from_response, from_transport, read_limited};
use crate::validate::Validator;
use crate::wire::Request;

impl Client {
    /// Sends one attempt and maps whatever happened to an [`Exchange`]. Never fails:
    /// every failure is an outcome for the plan. Returns the attempt's span too, for
    /// [`record_attempt`] once the plan has classified the outcome.
    pub(super) async fn send(
        &self,
        target: &Target,
        attempt: &Attempt<'_>,
        request: &Request,
    ) -> (Exchange, tracing::Span) {
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
        let builder = builder.body(rendered.body);
        let (response_limit, error_limit) = (inner.response_limit, inner.error_body_limit);
        let mut phase = TimeoutPhase::BeforeHeaders;
        let exchange = async {
            let result = tokio::time::timeout(attempt.timeout, async {
                let mut response = builder.send().await?;
                phase = TimeoutPhase::AfterHeaders;
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
            })
            .await;
            match result {
                Err(_elapsed) => Exchange::bare(outcome::timed_out(phase)),
                Ok(Err(error)) => Exchange::bare(from_transport(&error, phase)),
                Ok(Ok((status, headers, body))) => {
                    tracing::Span::current().record("status", status);
                    let exchange =
                        from_response(provider.kind, status, &headers, &body, clock::read().wall);
                    validated(exchange, target.validator.as_ref())
                }
            }
        }
        .instrument(span.clone())
        .await;
        (exchange, span)
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
