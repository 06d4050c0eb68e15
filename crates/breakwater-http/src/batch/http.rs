//! Sending the batch APIs' requests: the provider's base URL and key, the
//! `anthropic-version` header, a timeout and a size limit; every failure an
//! [`Outcome`] for the core's taxonomy.

use std::time::Duration;

use breakwater_core::{Outcome, TimeoutPhase};
use reqwest::Method;

use crate::client::ProviderEntry;
use crate::clock;
use crate::outcome::{self, from_transport, read_limited};
use crate::wire::{Provider, anthropic};

/// What a batch API answered: a 2xx body, or why there is none.
pub(crate) type Answer = Result<Vec<u8>, Outcome>;

/// A request to one of a provider's batch endpoints.
pub(crate) struct Call<'a> {
    pub(crate) method: Method,
    /// The path and query, relative to the provider's base URL.
    pub(crate) path: &'a str,
    /// The body and its content type, if any.
    pub(crate) body: Option<(String, Vec<u8>)>,
}

/// Sends `call` to `provider` with `http`, within `timeout`, reading at most `limit`
/// bytes of a 2xx body (a larger one is [`Outcome::MalformedBody`]).
pub(crate) async fn send(
    http: &reqwest::Client,
    provider: &ProviderEntry,
    call: Call<'_>,
    timeout: Duration,
    limit: usize,
) -> Answer {
    let url = format!("{}{}", provider.base_url, call.path);
    let mut builder = http
        .request(call.method, url)
        .header(provider.auth.0.clone(), provider.auth.1.clone());
    if provider.kind == Provider::Anthropic {
        builder = builder.header("anthropic-version", anthropic::API_VERSION);
    }
    if let Some((content_type, body)) = call.body {
        builder = builder.header("content-type", content_type).body(body);
    }
    let mut phase = TimeoutPhase::BeforeHeaders;
    let result = tokio::time::timeout(timeout, async {
        let response = builder.send().await?;
        phase = TimeoutPhase::AfterHeaders;
        let status = response.status().as_u16();
        let headers = response.headers().clone();
        let body = read_limited(response, limit).await?;
        Ok::<_, reqwest::Error>((status, headers, body))
    })
    .await;
    match result {
        Err(_elapsed) => Err(outcome::timed_out(phase)),
        Ok(Err(error)) => Err(from_transport(&error, phase)),
        Ok(Ok((status, _, body))) if (200..300).contains(&status) => {
            if body.truncated {
                Err(Outcome::MalformedBody)
            } else {
                Ok(body.bytes)
            }
        }
        Ok(Ok((status, headers, body))) => {
            let exchange =
                outcome::from_response(provider.kind, status, &headers, &body, clock::read().wall);
            Err(exchange.outcome)
        }
    }
}
