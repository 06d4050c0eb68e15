//! The providers' batch APIs: Anthropic Message Batches and OpenAI Files + Batch.
//!
//! A batch is processed on the serve clock: its requests reach the provider's model
//! spread evenly over [`BatchSettings::turnaround`] (virtual time, so `--speed`
//! shortens it like everything else), each answered as the storm in force at that
//! moment decides ([`lane`]): a 529 storm gives `errored` results with
//! `overloaded_error`, an outage in `timeout` mode leaves requests unfinished until
//! the batch expires ([`BatchSettings::expiry`]), after which they are `expired`.
//! Wire shapes follow the providers' API references (see [`anthropic`] and
//! [`openai`]) and what `breakwater-http`'s batch submitter sends and reads.

mod anthropic;
mod lane;
mod multipart;
mod openai;
mod store;

use std::ops::AddAssign;
use std::time::Duration;

use hyper::HeaderMap;
use hyper::header::HOST;
use serde::Serialize;
use serde_json::Value;

use super::catalog::Unroutable;
use super::exchange::{error, json_response};
use super::filler;
use super::http::Body;
use super::route::{BatchOp, Endpoint};
use super::state::Shared;
use super::wire::{Answer as WireAnswer, Problem, Stop, Wire};

pub(crate) use store::Store;

/// How `serve` runs batches.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BatchSettings {
    /// Virtual time over which a batch's requests reach the model (default 10 s): a
    /// batch ends shortly after it, unless an outage holds requests until expiry.
    pub turnaround: Duration,
    /// Virtual time after creation at which a batch expires (default 24 h, as both
    /// providers'); requests without an answer by then are `expired`.
    pub expiry: Duration,
    /// The most requests in one batch (default 10,000); more get a 400.
    pub max_items: usize,
    /// The most batches held, and the most uploaded files (default 64): the oldest
    /// ended batch makes room for a new one; when all are processing, a create gets a
    /// 429.
    pub max_batches: usize,
}

impl Default for BatchSettings {
    fn default() -> BatchSettings {
        BatchSettings {
            turnaround: Duration::from_secs(10),
            expiry: Duration::from_secs(24 * 3600),
            max_items: 10_000,
            max_batches: 64,
        }
    }
}

/// Batches and their requests, counted over a server's life.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct BatchStats {
    /// Batches created.
    pub batches: u64,
    /// Requests still processing.
    pub processing: u64,
    /// Requests answered.
    pub succeeded: u64,
    /// Requests with an error result.
    pub errored: u64,
    /// Requests cancelled before they ran.
    pub canceled: u64,
    /// Requests expired before they ran.
    pub expired: u64,
}

impl AddAssign for BatchStats {
    fn add_assign(&mut self, other: BatchStats) {
        self.batches += other.batches;
        self.processing += other.processing;
        self.succeeded += other.succeeded;
        self.errored += other.errored;
        self.canceled += other.canceled;
        self.expired += other.expired;
    }
}

/// Answers one batch API call (headers already checked, body read).
pub(crate) fn respond(
    shared: &Shared,
    endpoint: &Endpoint,
    op: &BatchOp,
    headers: &HeaderMap,
    body: &[u8],
) -> hyper::Response<Body> {
    let call = Call {
        shared,
        prefix: endpoint.prefix.as_deref(),
        headers,
    };
    let answer = match endpoint.wire {
        Wire::Anthropic => anthropic::respond(&call, op, body),
        _ => openai::respond(&call, op, body),
    };
    match answer {
        Answer::Json(value) => json_response(200, &[], &value),
        Answer::Jsonl(text) => {
            let mut response = hyper::Response::new(Body::full(text));
            response.headers_mut().insert(
                hyper::header::CONTENT_TYPE,
                hyper::header::HeaderValue::from_static("application/x-jsonl"),
            );
            response
        }
        Answer::Problem(problem) => error(endpoint.wire, &problem),
        Answer::Error { status, body } => json_response(status, &[], &body),
    }
}

/// A batch call in progress: the server and where the request came from.
pub(crate) struct Call<'a> {
    shared: &'a Shared,
    prefix: Option<&'a str>,
    headers: &'a HeaderMap,
}

impl Call<'_> {
    /// The base URL the request came through (`http://host[/prefix]`), for results
    /// URLs; just the prefix path when the request named no host.
    fn base_url(&self) -> String {
        let prefix = self.prefix.map(|p| format!("/{p}")).unwrap_or_default();
        match self.headers.get(HOST).and_then(|h| h.to_str().ok()) {
            Some(host) => format!("http://{host}{prefix}"),
            None => prefix,
        }
    }
}

/// What a batch call answers.
pub(crate) enum Answer {
    /// 200 with a JSON object.
    Json(Value),
    /// 200 with a JSONL file.
    Jsonl(String),
    /// The wire's error for a problem.
    Problem(Problem),
    /// An error the wire's problems do not cover (OpenAI's codes for files and
    /// batches).
    Error {
        /// The HTTP status.
        status: u16,
        /// The error body.
        body: Value,
    },
}

/// A request of a create call: `params` (a Messages or Chat Completions body) read as
/// the synchronous endpoint reads it, and its model found in the catalog. A request
/// that does not pass is kept, with its problem as its result (Anthropic validates
/// `params` asynchronously; OpenAI reports a bad body in the error file).
fn new_item(call: &Call<'_>, wire: Wire, custom_id: String, params: &Value) -> store::NewItem {
    let model = params
        .get("model")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_owned();
    let ask = wire.parse(params.to_string().as_bytes()).and_then(|ask| {
        if ask.stream {
            return Err(Problem::BadRequest(
                "stream: a batch request cannot be streamed".into(),
            ));
        }
        match call.shared.catalog.resolve(call.prefix, &model) {
            Ok(target) => Ok((target, ask)),
            Err(Unroutable::NotFound(m)) => Err(Problem::NotFound(m)),
            Err(Unroutable::Ambiguous(m)) => Err(Problem::BadRequest(m)),
        }
    });
    store::NewItem {
        custom_id,
        model,
        ask,
    }
}

/// The success body of request `k` of batch `serial`, ready at `at`.
fn success_body(wire: Wire, serial: u64, k: usize, item: &store::Item, at: u64) -> Value {
    let answer = WireAnswer {
        id: match wire {
            Wire::Anthropic => format!("msg_serve_b{serial}_{k}"),
            _ => format!("chatcmpl-serve-b{serial}-{k}"),
        },
        model: item.model.clone(),
        input_tokens: item.input_tokens,
        output_tokens: item.output_tokens,
        stop: if item.hit_limit {
            Stop::MaxTokens
        } else {
            Stop::Finished
        },
        include_usage: false,
        created: at,
    };
    let text = filler::tokens(item.text_seed, item.output_tokens).concat();
    wire.body(&answer, &text)
}

/// The serial in an id `prefix{serial}` (`msgbatch_serve_7`).
fn serial(id: &str, prefix: &str) -> Option<u64> {
    id.strip_prefix(prefix)?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_carry_their_serial() {
        assert_eq!(serial("msgbatch_serve_7", "msgbatch_serve_"), Some(7));
        assert_eq!(serial("msgbatch_serve_x", "msgbatch_serve_"), None);
        assert_eq!(serial("batch_serve_7", "msgbatch_serve_"), None);
        let mut a = BatchStats {
            batches: 1,
            succeeded: 2,
            ..BatchStats::default()
        };
        a += a;
        assert_eq!((a.batches, a.succeeded, a.errored), (2, 4, 0));
        assert_eq!(BatchSettings::default().turnaround, Duration::from_secs(10));
    }
}
