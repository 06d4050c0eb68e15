//! A minimal keep-alive HTTP/1.1 server on loopback that answers every request with
//! one fixed JSON body: the far end of the adapter bench, cheap enough that the bench
//! measures the clients rather than the server.
//!
//! It reads each request's head and its `content-length` body, answers `200` with the
//! body it was given, and keeps the connection open for the next request (clients
//! reuse pooled connections, as they do against a real provider). A request it cannot
//! read — chunked bodies, no `content-length` on a body, a head over 64 KiB — gets a
//! `400` and the connection is closed.

use std::net::SocketAddr;
use std::sync::Arc;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinSet;

/// Request heads longer than this are refused.
const MAX_HEAD: usize = 64 * 1024;

/// A running loopback server. [`Loopback::shutdown`] stops it; dropping it does too.
#[derive(Debug)]
pub struct Loopback {
    addr: SocketAddr,
    tasks: JoinSet<()>,
}

impl Loopback {
    /// Binds `127.0.0.1:0` and serves `body` (sent as `application/json`) to every
    /// request. Must be called inside a tokio runtime, which then runs the server.
    ///
    /// # Errors
    ///
    /// If the port cannot be bound.
    pub async fn start(body: &str) -> std::io::Result<Loopback> {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let response: Arc<[u8]> = ok_response(body).into();
        let mut tasks = JoinSet::new();
        tasks.spawn(async move {
            let mut connections = JoinSet::new();
            while let Ok((stream, _)) = listener.accept().await {
                // Small requests and answers: send them at once.
                let _ = stream.set_nodelay(true);
                connections.spawn(serve(stream, Arc::clone(&response)));
            }
        });
        Ok(Loopback { addr, tasks })
    }

    /// `http://127.0.0.1:port`.
    #[must_use]
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Stops accepting and closes every connection.
    pub async fn shutdown(mut self) {
        self.tasks.shutdown().await;
    }
}

fn ok_response(body: &str) -> Vec<u8> {
    let mut out = format!(
        "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n",
        body.len()
    )
    .into_bytes();
    out.extend_from_slice(body.as_bytes());
    out
}

const BAD_REQUEST: &[u8] =
    b"HTTP/1.1 400 Bad Request\r\ncontent-length: 0\r\nconnection: close\r\n\r\n";

/// Answers requests on one connection until the client closes it or sends one the
/// server cannot read.
async fn serve(mut stream: TcpStream, response: Arc<[u8]>) {
    let mut buf = Vec::with_capacity(8 * 1024);
    loop {
        match read_request(&mut stream, &mut buf).await {
            Read::Request => {
                if stream.write_all(&response).await.is_err() {
                    return;
                }
            }
            Read::Bad => {
                let _ = stream.write_all(BAD_REQUEST).await;
                let _ = stream.shutdown().await;
                return;
            }
            Read::Closed => return,
        }
    }
}

enum Read {
    Request,
    Bad,
    Closed,
}

/// Reads one whole request (head and body) from `stream`, leaving any bytes of the
/// next one in `buf`.
async fn read_request(stream: &mut TcpStream, buf: &mut Vec<u8>) -> Read {
    let mut chunk = [0u8; 8 * 1024];
    let head_end = loop {
        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break i + 4;
        }
        if buf.len() > MAX_HEAD {
            return Read::Bad;
        }
        match stream.read(&mut chunk).await {
            Ok(0) | Err(_) => return Read::Closed,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
        }
    };
    let Some(length) = body_length(&buf[..head_end]) else {
        return Read::Bad;
    };
    while buf.len() < head_end + length {
        match stream.read(&mut chunk).await {
            Ok(0) | Err(_) => return Read::Closed,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
        }
    }
    buf.drain(..head_end + length);
    Read::Request
}

/// The body length a request head announces: its `content-length`, or 0 for a head
/// with neither that nor a `transfer-encoding`; `None` for what this server cannot read
/// (chunked bodies, a malformed length, a head that is not text).
#[must_use]
pub fn body_length(head: &[u8]) -> Option<usize> {
    let head = std::str::from_utf8(head).ok()?;
    let mut length = 0;
    for line in head.split("\r\n").skip(1) {
        let Some((name, value)) = line.split_once(':') else {
            continue;
        };
        let name = name.trim();
        if name.eq_ignore_ascii_case("transfer-encoding") {
            return None;
        }
        if name.eq_ignore_ascii_case("content-length") {
            length = value.trim().parse().ok()?;
        }
    }
    Some(length)
}

#[cfg(test)]
mod tests {
    use super::body_length;

    #[test]
    fn reads_the_announced_length() {
        let head = b"POST /v1/messages HTTP/1.1\r\nContent-Length: 42\r\n\r\n";
        assert_eq!(body_length(head), Some(42));
        assert_eq!(body_length(b"GET / HTTP/1.1\r\nhost: x\r\n\r\n"), Some(0));
    }

    #[test]
    fn refuses_what_it_cannot_read() {
        let chunked = b"POST / HTTP/1.1\r\ntransfer-encoding: chunked\r\n\r\n";
        assert_eq!(body_length(chunked), None);
        assert_eq!(
            body_length(b"POST / HTTP/1.1\r\ncontent-length: x\r\n\r\n"),
            None
        );
        assert_eq!(body_length(b"POST / HTTP/1.1\r\n\xff: 1\r\n\r\n"), None);
    }
}
