//! A scripted HTTP/1.1 server on loopback, written on a raw `TcpListener` so that it
//! can misbehave anywhere: mid-body, before the headers, forever.
#![allow(dead_code)] // each test binary uses its own subset

use std::sync::Arc;
use std::time::Duration;

use parking_lot::Mutex;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinSet;

/// What the server does with one request (one per connection, in order).
#[derive(Clone, Debug)]
pub(crate) enum Reply {
    /// Writes these bytes, then closes the connection.
    Raw(Vec<u8>),
    /// Writes these bytes, then holds the connection open without a word more.
    RawThenHang(Vec<u8>),
    /// Reads the request and never answers.
    Hang,
    /// Writes these bytes, then resets the connection (RST, not FIN).
    RawThenReset(Vec<u8>),
    /// Writes each piece in its own TCP write, a few milliseconds apart, then closes.
    Pieces(Vec<Vec<u8>>),
    /// Writes these bytes, then one byte of body every 50 ms, forever.
    RawThenTrickle(Vec<u8>),
    /// Writes these bytes, then `len` bytes of filler as fast as the peer reads them.
    RawThenFill(Vec<u8>, usize),
    /// Closes the connection at once, before reading anything.
    CloseAtOnce,
}

/// Makes the reply to a request, given the server's own URL.
pub(crate) type Handler = Arc<dyn Fn(&Received, &str) -> Reply + Send + Sync>;

/// A request as the server received it.
#[derive(Clone, Debug)]
pub(crate) struct Received {
    /// `POST /v1/messages`, as sent.
    pub(crate) method: String,
    /// The path and query.
    pub(crate) path: String,
    /// Header names in lower case.
    pub(crate) headers: Vec<(String, String)>,
    /// The body.
    pub(crate) body: Vec<u8>,
}

impl Received {
    /// The first value of header `name`.
    pub(crate) fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    /// The body as JSON.
    pub(crate) fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).expect("request body is JSON")
    }
}

/// A running fake server; stop it with [`FakeServer::shutdown`] (dropping it also stops it).
pub(crate) struct FakeServer {
    addr: std::net::SocketAddr,
    received: Arc<Mutex<Vec<Received>>>,
    tasks: JoinSet<()>,
}

impl FakeServer {
    /// Serves `script`, one reply per connection in order; past its end, a 500.
    pub(crate) async fn start(script: Vec<Reply>) -> FakeServer {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind loopback");
        let addr = listener.local_addr().expect("local addr");
        let received = Arc::new(Mutex::new(Vec::new()));
        let mut tasks = JoinSet::new();
        let log = Arc::clone(&received);
        tasks.spawn(async move {
            let mut script = script.into_iter();
            let mut connections = JoinSet::new();
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    return;
                };
                let reply = script
                    .next()
                    .unwrap_or_else(|| Reply::Raw(response(500, &[], b"script over")));
                let log = Arc::clone(&log);
                connections.spawn(serve(stream, reply, log));
            }
        });
        FakeServer {
            addr,
            received,
            tasks,
        }
    }

    /// Answers each request with what `handler` makes of it (given the server's own
    /// URL), for servers that keep state between requests.
    pub(crate) async fn start_with(handler: Handler) -> FakeServer {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind loopback");
        let addr = listener.local_addr().expect("local addr");
        let url = format!("http://{addr}");
        let received = Arc::new(Mutex::new(Vec::new()));
        let mut tasks = JoinSet::new();
        let log = Arc::clone(&received);
        tasks.spawn(async move {
            let mut connections = JoinSet::new();
            loop {
                let Ok((mut stream, _)) = listener.accept().await else {
                    return;
                };
                let (log, handler, url) = (Arc::clone(&log), Arc::clone(&handler), url.clone());
                connections.spawn(async move {
                    let Some(request) = read_request(&mut stream).await else {
                        return;
                    };
                    let reply = handler(&request, &url);
                    log.lock().push(request);
                    answer(stream, reply).await;
                });
            }
        });
        FakeServer {
            addr,
            received,
            tasks,
        }
    }

    /// `http://127.0.0.1:port`.
    pub(crate) fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The requests received so far.
    pub(crate) fn received(&self) -> Vec<Received> {
        self.received.lock().clone()
    }

    /// Stops accepting and drops every connection.
    pub(crate) async fn shutdown(mut self) {
        self.tasks.shutdown().await;
    }
}

async fn serve(mut stream: TcpStream, reply: Reply, log: Arc<Mutex<Vec<Received>>>) {
    if matches!(reply, Reply::CloseAtOnce) {
        return;
    }
    let Some(request) = read_request(&mut stream).await else {
        return;
    };
    log.lock().push(request);
    answer(stream, reply).await;
}

/// Writes `reply` on `stream`, whose request was read.
async fn answer(mut stream: TcpStream, reply: Reply) {
    match reply {
        Reply::Raw(bytes) => {
            let _ = stream.write_all(&bytes).await;
            let _ = stream.shutdown().await;
        }
        Reply::RawThenHang(bytes) => {
            let _ = stream.write_all(&bytes).await;
            let _ = stream.flush().await;
            tokio::time::sleep(Duration::from_secs(3600)).await;
        }
        Reply::Hang => tokio::time::sleep(Duration::from_secs(3600)).await,
        Reply::RawThenReset(bytes) => {
            let _ = stream.write_all(&bytes).await;
            let _ = stream.flush().await;
            // A zero linger turns the close into a reset.
            let _ = stream.set_zero_linger();
        }
        Reply::Pieces(pieces) => {
            for piece in pieces {
                if stream.write_all(&piece).await.is_err() || stream.flush().await.is_err() {
                    return;
                }
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
            let _ = stream.shutdown().await;
        }
        Reply::RawThenTrickle(bytes) => {
            let _ = stream.write_all(&bytes).await;
            loop {
                if stream.write_all(b" ").await.is_err() || stream.flush().await.is_err() {
                    return;
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
        Reply::RawThenFill(bytes, len) => {
            let _ = stream.write_all(&bytes).await;
            let filler = vec![b'x'; 64 * 1024];
            let mut left = len;
            while left > 0 {
                let n = left.min(filler.len());
                if stream.write_all(&filler[..n]).await.is_err() {
                    return;
                }
                left -= n;
            }
            let _ = stream.shutdown().await;
        }
        Reply::CloseAtOnce => {}
    }
}

async fn read_request(stream: &mut TcpStream) -> Option<Received> {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    let head_end = loop {
        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break i + 4;
        }
        let n = stream.read(&mut chunk).await.ok()?;
        if n == 0 {
            return None;
        }
        buf.extend_from_slice(&chunk[..n]);
    };
    let head = String::from_utf8_lossy(&buf[..head_end]).into_owned();
    let mut lines = head.split("\r\n");
    let mut first = lines.next()?.split(' ');
    let method = first.next()?.to_owned();
    let path = first.next()?.to_owned();
    let headers: Vec<(String, String)> = lines
        .filter_map(|line| {
            let (name, value) = line.split_once(':')?;
            Some((name.trim().to_ascii_lowercase(), value.trim().to_owned()))
        })
        .collect();
    let length: usize = headers
        .iter()
        .find(|(n, _)| n == "content-length")
        .and_then(|(_, v)| v.parse().ok())
        .unwrap_or(0);
    let mut body = buf[head_end..].to_vec();
    while body.len() < length {
        let n = stream.read(&mut chunk).await.ok()?;
        if n == 0 {
            return None;
        }
        body.extend_from_slice(&chunk[..n]);
    }
    Some(Received {
        method,
        path,
        headers,
        body,
    })
}

/// A complete HTTP/1.1 response with a content length, closing the connection.
pub(crate) fn response(status: u16, headers: &[(&str, &str)], body: &[u8]) -> Vec<u8> {
    let mut out = head(status, headers, Some(body.len()));
    out.extend_from_slice(body);
    out
}

/// A status line and headers (with `content-length` if given), up to the blank line.
pub(crate) fn head(status: u16, headers: &[(&str, &str)], length: Option<usize>) -> Vec<u8> {
    let mut out = format!("HTTP/1.1 {status} Status\r\nconnection: close\r\n");
    for (name, value) in headers {
        out.push_str(&format!("{name}: {value}\r\n"));
    }
    if let Some(length) = length {
        out.push_str(&format!("content-length: {length}\r\n"));
    }
    out.push_str("\r\n");
    out.into_bytes()
}

/// A JSON response.
pub(crate) fn json(status: u16, headers: &[(&str, &str)], body: &str) -> Reply {
    let mut all = vec![("content-type", "application/json")];
    all.extend_from_slice(headers);
    Reply::Raw(response(status, &all, body.as_bytes()))
}

/// Anthropic's success body.
pub(crate) const ANTHROPIC_OK: &str = r#"{"id":"msg_1","type":"message","role":"assistant","model":"claude-sonnet-4-5","content":[{"type":"text","text":"Hello from Claude"}],"stop_reason":"end_turn","usage":{"input_tokens":12,"output_tokens":5}}"#;

/// OpenAI's success body.
pub(crate) const OPENAI_OK: &str = r#"{"id":"chatcmpl-1","object":"chat.completion","model":"gpt-4o-mini","choices":[{"index":0,"message":{"role":"assistant","content":"Hello from GPT"},"finish_reason":"stop"}],"usage":{"prompt_tokens":11,"completion_tokens":4,"total_tokens":15}}"#;

/// Gemini's success body.
pub(crate) const GEMINI_OK: &str = r#"{"candidates":[{"content":{"role":"model","parts":[{"text":"Hello from Gemini"}]},"finishReason":"STOP"}],"usageMetadata":{"promptTokenCount":10,"candidatesTokenCount":3,"totalTokenCount":13}}"#;
