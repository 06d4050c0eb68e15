//! Streaming: [`Client::stream`], the same plan driven over SSE responses.
//!
//! The rules (the plan enforces them; this module only reports the facts):
//!
//! - Before the first text delta reaches the caller, a stream that fails (an error
//!   event such as `overloaded_error`, a reset, a body that ends early or does not
//!   parse, the attempt's timeout) is an ordinary failed attempt: retry or fallback
//!   may follow, and the caller sees nothing of it.
//! - After it, the outcome carries the number of deltas delivered, and the plan ends
//!   the request with "stream broken after N tokens" ([`Error::StreamBroken`], with the
//!   partial text), unless the caller allowed restarts
//!   ([`RequestOptions::allow_restart_after_tokens`]): then the next attempt starts
//!   with a [`StreamEvent::Restarted`], and the text before it is void.
//! - [`StreamEvent::Source`] comes before the first delta of every attempt that
//!   produces text, so the caller always knows which provider and model wrote it.
//!
//! "Tokens delivered" counts text deltas passed to the caller: the providers report
//! token usage only at the end of a stream.
//!
//! [`RequestOptions::allow_restart_after_tokens`]:
//!     breakwater_core::plan::RequestOptions::allow_restart_after_tokens

use std::time::Duration;

use breakwater_core::plan::{DegradedFrom, FailReason, Resolution};
use breakwater_core::{
    Action, Attempt, Cost, Deadline, ErrorCode, Key, Notice, Outcome, Plan, TaskKind, TimeoutPhase,
};
use futures_util::Stream;
use tokio::sync::mpsc;

use super::call::Call;
use super::{CallOptions, Client, Deferred, Error, Target};
use crate::cache::CacheHit;
use crate::clock;
use crate::outcome::{self, from_response, from_transport, read_limited};
use crate::sse::SseParser;
use crate::wire::{Request, StreamItem, TokenUsage};

/// One item of a [`Client::stream`].
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub enum StreamEvent {
    /// The provider and model whose text follows (before each attempt's first delta).
    Source(Key),
    /// Generated text, in order.
    Delta(String),
    /// The plan's notice ("taking longer than usual").
    Notice(Notice),
    /// The caller allowed restarts and the stream is starting over: discard the text
    /// received so far.
    Restarted,
    /// The stream ended normally; nothing follows.
    Done {
        /// Who wrote the text.
        key: Key,
        /// The provider's stop reason.
        stop_reason: Option<String>,
        /// The final attempt's token counts.
        usage: TokenUsage,
        /// Attempts sent.
        attempts: u32,
        /// Whether a step after the route's first answered.
        fallback: bool,
        /// What every attempt cost.
        cost: Cost,
    },
    /// No provider answered and the plan chose the structured empty result; nothing
    /// follows.
    Degraded {
        /// Why the chain could not answer.
        reason: FailReason,
    },
    /// No provider answered and the plan served an earlier answer from the response
    /// cache, whole, in place of deltas; nothing follows.
    Cached {
        /// The cached text.
        text: String,
        /// Its age and author.
        hit: CacheHit,
        /// Why the chain could not answer.
        reason: FailReason,
    },
}

/// The items of a [`Client::stream`], as a [`Stream`]. Owns everything it needs
/// (`'static`): keep it, move it to another task, or drop it to stop the call.
#[derive(Debug)]
pub struct EventStream {
    rx: mpsc::Receiver<Result<StreamEvent, Error>>,
}

impl Stream for EventStream {
    type Item = Result<StreamEvent, Error>;

    fn poll_next(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Self::Item>> {
        self.rx.poll_recv(cx)
    }
}

/// What one streaming attempt produced.
struct Streamed {
    outcome: Outcome,
    usage: TokenUsage,
    stop_reason: Option<String>,
}

impl Client {
    /// Streams `request` through `route`. Must be called inside a tokio runtime: the
    /// plan runs on a task of its own, feeding the returned stream; dropping the stream
    /// stops it (the request is then not recorded in the metrics).
    ///
    /// Items are [`StreamEvent`]s; an `Err` is the last item ([`Error::StreamBroken`]
    /// after tokens were delivered, or as for [`Client::complete`]). The options are
    /// those of [`Client::complete_with`]: a completed stream's text is stored in the
    /// response cache, a cache hit comes as [`StreamEvent::Cached`], and a queued
    /// request goes to the durable queue (whose drain replays it as a `complete`).
    pub fn stream(
        &self,
        route: &str,
        request: &Request,
        kind: TaskKind,
        deadline: Duration,
        options: impl Into<CallOptions>,
    ) -> EventStream {
        let (tx, rx) = mpsc::channel(32);
        let client = self.clone();
        let route = route.to_owned();
        let request = request.clone();
        let options = options.into();
        tokio::spawn(async move {
            let call = Call {
                route: &route,
                request: &request,
                kind,
                deadline,
                options,
                defer: true,
            };
            client.drive_stream(call, &tx).await;
        });
        EventStream { rx }
    }

    async fn drive_stream(&self, call: Call<'_>, tx: &mpsc::Sender<Result<StreamEvent, Error>>) {
        let inner = &*self.inner;
        let request = call.request;
        let Some(bound) = inner.routes.get(call.route) else {
            let _ = tx
                .send(Err(Error::UnknownRoute(call.route.to_owned())))
                .await;
            return;
        };
        let mut options = call.options.request;
        if options.max_output_tokens == 0 {
            options.max_output_tokens = request.max_tokens;
        }
        let mut rng = self.request_rng();
        let start = clock::read().now;
        let mut plan = Plan::new(
            &bound.route,
            call.kind,
            Deadline::after(start, call.deadline),
            options,
        );
        let mut observer =
            crate::telemetry::Observer::with_keys(&bound.route, call.kind, &bound.keys);
        let mut partial = String::new();
        let mut last: Option<(Key, Streamed)> = None;
        let mut cached = None;
        let finished = loop {
            let now = clock::read().now;
            match plan.poll(now, &mut rng) {
                Action::Attempt(attempt) => {
                    if !partial.is_empty() {
                        if tx.send(Ok(StreamEvent::Restarted)).await.is_err() {
                            return;
                        }
                        partial.clear();
                    }
                    let target = &bound.steps[attempt.step];
                    // Race the attempt against the slow notice, as `complete` does.
                    let send = self.send_stream(target, &attempt, request, tx, &mut partial);
                    tokio::pin!(send);
                    let streamed = loop {
                        let Some(at) = plan.poll_timeout() else {
                            break send.await;
                        };
                        tokio::select! {
                            streamed = &mut send => break streamed,
                            () = tokio::time::sleep_until(clock::instant(at)) => {
                                if let Action::Notice(notice) = plan.poll(clock::read().now, &mut rng)
                                    && tx.send(Ok(StreamEvent::Notice(notice))).await.is_err()
                                {
                                    return;
                                }
                            }
                        }
                    };
                    let Some(streamed) = streamed else {
                        return; // the caller dropped the stream
                    };
                    let usage = outcome::usage(streamed.usage);
                    plan.on_outcome(clock::read().now, attempt.id, streamed.outcome, usage);
                    observer.update(plan.history());
                    last = Some((attempt.key.clone(), streamed));
                }
                Action::Wait { until } => tokio::time::sleep_until(clock::instant(until)).await,
                Action::Notice(notice) => {
                    if tx.send(Ok(StreamEvent::Notice(notice))).await.is_err() {
                        return;
                    }
                }
                Action::LookupCache => {
                    cached = self.lookup(&call, now);
                    plan.on_cache(now, cached.is_some());
                }
                Action::Finish(finished) => break finished,
            }
        };
        inner.metrics.lock().record(&bound.route, &finished);
        self.watch(&bound.route, &finished);
        observer.finish(&finished);
        let item = match finished.resolution {
            Resolution::Success { fallback_used, .. } => {
                let (key, streamed) = last.unwrap_or_else(|| {
                    let none = Streamed {
                        outcome: Outcome::Success,
                        usage: TokenUsage::default(),
                        stop_reason: None,
                    };
                    (Key::new("", ""), none)
                });
                let whole = crate::wire::Completion {
                    text: partial,
                    stop_reason: streamed.stop_reason.clone(),
                    usage: streamed.usage,
                };
                self.remember(&call, &whole, &key);
                Ok(StreamEvent::Done {
                    key,
                    stop_reason: streamed.stop_reason,
                    usage: streamed.usage,
                    attempts: finished.attempts,
                    fallback: fallback_used,
                    cost: finished.cost,
                })
            }
            // The plan says `Cache` only after a lookup that hit.
            Resolution::Degraded { from, reason } => match (from, cached) {
                (DegradedFrom::Cache, Some((answer, age))) => Ok(StreamEvent::Cached {
                    text: answer.text.clone(),
                    hit: CacheHit {
                        age,
                        key: answer.key.clone(),
                    },
                    reason,
                }),
                _ => Ok(StreamEvent::Degraded { reason }),
            },
            Resolution::Queued { reason } => {
                let deferred = if call.defer {
                    self.defer(&call).await
                } else {
                    Deferred::NotQueued
                };
                Err(Error::Queued {
                    reason,
                    attempts: finished.attempts,
                    history: finished.history,
                    deferred,
                })
            }
            Resolution::Failed {
                reason: FailReason::StreamBroken { tokens_delivered },
            } => {
                let (key, usage) = last.map_or((None, TokenUsage::default()), |(key, s)| {
                    (Some(key), s.usage)
                });
                Err(Error::StreamBroken {
                    tokens_delivered,
                    partial,
                    key,
                    usage,
                    history: finished.history,
                })
            }
            Resolution::Failed { reason } => Err(Error::Failed {
                reason,
                attempts: finished.attempts,
                history: finished.history,
            }),
        };
        let _ = tx.send(item).await;
    }

    /// One streaming attempt; `None` when the caller dropped the stream.
    async fn send_stream(
        &self,
        target: &Target,
        attempt: &Attempt<'_>,
        request: &Request,
        tx: &mpsc::Sender<Result<StreamEvent, Error>>,
        partial: &mut String,
    ) -> Option<Streamed> {
        let inner = &*self.inner;
        let provider = &*target.provider;
        let key = attempt.key;
        let rendered = provider
            .kind
            .render(request, key.model(), target.variant.as_ref(), true);
        let mut builder = match target.stream_url.get(&provider.base_url, &rendered.path) {
            Ok(url) => inner.http.post(url),
            Err(text) => inner.http.post(text),
        }
        .header(provider.auth.0.clone(), provider.auth.1.clone());
        for (name, value) in &rendered.headers {
            builder = builder.header(*name, value.as_str());
        }
        let builder = builder.body(rendered.body);
        let error_limit = inner.error_body_limit;
        let mut phase = TimeoutPhase::BeforeHeaders;
        let mut tokens: u32 = 0;
        let mut usage = TokenUsage::default();
        let mut stop_reason = None;
        let mut closed = false;
        let result = tokio::time::timeout(attempt.timeout, async {
            let mut response = match builder.send().await {
                Ok(response) => response,
                Err(error) => return from_transport(&error, phase),
            };
            phase = TimeoutPhase::AfterHeaders;
            if !response.status().is_success() {
                let status = response.status().as_u16();
                let headers = response.headers().clone();
                return match read_limited(response, error_limit).await {
                    Ok(body) => {
                        from_response(provider.kind, status, &headers, &body, clock::read().wall)
                            .outcome
                    }
                    Err(error) => from_transport(&error, phase),
                };
            }
            let mut parser = SseParser::new();
            let mut decoder = provider.kind.stream_decoder();
            let mut events = Vec::new();
            loop {
                let chunk = match response.chunk().await {
                    Ok(Some(chunk)) => chunk,
                    Ok(None) => break,
                    Err(_) => return cut(tokens),
                };
                if parser.push(&chunk, &mut events).is_err() {
                    return garbled(tokens);
                }
                for event in events.drain(..) {
                    let Ok(items) = decoder.decode(&event) else {
                        return garbled(tokens);
                    };
                    for item in items {
                        match item {
                            StreamItem::Text(text) => {
                                if tokens == 0
                                    && tx.send(Ok(StreamEvent::Source(key.clone()))).await.is_err()
                                {
                                    closed = true;
                                    return Outcome::Reset;
                                }
                                partial.push_str(&text);
                                tokens = tokens.saturating_add(1);
                                if tx.send(Ok(StreamEvent::Delta(text))).await.is_err() {
                                    closed = true;
                                    return Outcome::Reset;
                                }
                            }
                            StreamItem::Usage { input, output } => {
                                usage.input = input.unwrap_or(usage.input);
                                usage.output = output.unwrap_or(usage.output);
                            }
                            StreamItem::Stop { reason } => stop_reason = Some(reason),
                            StreamItem::Error { code, .. } => {
                                return Outcome::StreamBroken {
                                    error: code.as_deref().map(ErrorCode::from_provider),
                                    tokens_delivered: tokens,
                                };
                            }
                            StreamItem::Done => return Outcome::Success,
                            StreamItem::Ignored => {}
                        }
                    }
                }
            }
            let _ = parser.finish();
            match decoder.finish() {
                Ok(_) => Outcome::Success,
                Err(_) => cut(tokens),
            }
        })
        .await;
        if closed {
            return None;
        }
        let outcome = match result {
            Ok(outcome) => outcome,
            Err(_elapsed) if tokens > 0 => cut(tokens),
            Err(_elapsed) => outcome::timed_out(phase),
        };
        Some(Streamed {
            outcome,
            usage,
            stop_reason,
        })
    }
}

/// A stream cut short (reset, ended early, timed out mid-body).
fn cut(tokens: u32) -> Outcome {
    if tokens == 0 {
        Outcome::Reset
    } else {
        broken(tokens)
    }
}

/// A stream whose bytes did not parse.
fn garbled(tokens: u32) -> Outcome {
    if tokens == 0 {
        Outcome::MalformedBody
    } else {
        broken(tokens)
    }
}

fn broken(tokens: u32) -> Outcome {
    Outcome::StreamBroken {
        error: None,
        tokens_delivered: tokens,
    }
}
