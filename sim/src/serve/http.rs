//! HTTP/1.1 on hyper: the accept loop, connections, response bodies, and severing a
//! connection without an answer.
//!
//! hyper directly rather than a framework: the routes are a plain `match`
//! ([`route`](super::route)), and a provider outage must close the connection without
//! writing a byte, which a hyper service does by returning an error ([`Severed`]).

use std::fmt;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use hyper::body::{Frame, SizeHint};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio::task::JoinSet;

use super::exchange;
use super::state::Shared;

/// How long connections get to finish once a stop is asked for.
const GRACE: Duration = Duration::from_secs(2);

/// The connection is dropped without (the rest of) an answer: an outage, a stop, a
/// client that went away. As a service error, hyper closes the connection at once.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Severed;

impl fmt::Display for Severed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("connection severed by the provider model")
    }
}

impl std::error::Error for Severed {}

/// A response body: all at once, or a stream of chunks fed by a pacing task (an `Err`
/// cuts the connection mid-stream).
#[derive(Debug)]
pub(crate) enum Body {
    /// The whole body (`None` once sent).
    Full(Option<Bytes>),
    /// Chunks as they come.
    Stream(mpsc::Receiver<Result<Bytes, Severed>>),
}

impl Body {
    /// A body of `bytes`.
    pub(crate) fn full(bytes: impl Into<Bytes>) -> Body {
        Body::Full(Some(bytes.into()))
    }
}

impl hyper::body::Body for Body {
    type Data = Bytes;
    type Error = Severed;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Severed>>> {
        match self.get_mut() {
            Body::Full(bytes) => Poll::Ready(bytes.take().map(|b| Ok(Frame::data(b)))),
            Body::Stream(rx) => rx
                .poll_recv(cx)
                .map(|chunk| chunk.map(|r| r.map(Frame::data))),
        }
    }

    fn is_end_stream(&self) -> bool {
        matches!(self, Body::Full(None))
    }

    fn size_hint(&self) -> SizeHint {
        match self {
            Body::Full(bytes) => SizeHint::with_exact(bytes.as_ref().map_or(0, |b| b.len() as u64)),
            Body::Stream(_) => SizeHint::default(),
        }
    }
}

/// Accepts connections until a stop is asked for, then lets them finish (handlers see
/// the stop and end their answers) for at most [`GRACE`].
pub(crate) async fn accept(listener: TcpListener, shared: Arc<Shared>) {
    let mut connections = JoinSet::new();
    loop {
        tokio::select! {
            () = shared.stopped() => break,
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => {
                    connections.spawn(connection(stream, Arc::clone(&shared)));
                }
                // Out of file descriptors and the like: breathe, then go on.
                Err(_) => tokio::time::sleep(Duration::from_millis(10)).await,
            },
            Some(_) = connections.join_next(), if !connections.is_empty() => {}
        }
    }
    drop(listener);
    let drained = tokio::time::timeout(GRACE, async {
        while connections.join_next().await.is_some() {}
    })
    .await;
    if drained.is_err() {
        connections.shutdown().await;
    }
}

async fn connection(stream: TcpStream, shared: Arc<Shared>) {
    // Streamed tokens should leave when written.
    let _ = stream.set_nodelay(true);
    let service = {
        let shared = Arc::clone(&shared);
        service_fn(move |request| exchange::handle(Arc::clone(&shared), request))
    };
    let conn = http1::Builder::new()
        .timer(TokioTimer::new())
        .serve_connection(TokioIo::new(stream), service);
    tokio::pin!(conn);
    tokio::select! {
        // A severed or broken connection ends here: nothing to report.
        _ = conn.as_mut() => return,
        () = shared.stopped() => {}
    }
    conn.as_mut().graceful_shutdown();
    let _ = conn.await;
}
