//! The adapter bench's set-up does what it claims: the loopback server answers over
//! kept-alive connections and refuses what it cannot read, and the Breakwater client
//! and the bare-reqwest path read the same answer from it.

use breakwater_benches::adapter::{
    ANSWER_TEXT, bare_call, breakwater_call, breakwater_client, http_client, request,
};
use breakwater_benches::loopback::Loopback;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

#[tokio::test]
async fn both_clients_read_the_same_answer() {
    let server = Loopback::start(breakwater_benches::adapter::ANSWER)
        .await
        .unwrap();
    let url = server.url();
    let client = breakwater_client(&url, http_client());
    let bare = http_client();
    for _ in 0..3 {
        assert_eq!(
            breakwater_call(&client, &request()).await.as_deref(),
            Ok(ANSWER_TEXT)
        );
        let answer = bare_call(&bare, &url).await.unwrap();
        assert_eq!(answer.text, ANSWER_TEXT);
        assert_eq!((answer.input_tokens, answer.output_tokens), (25, 38));
    }
    assert_eq!(client.metrics().requests, 3);
    server.shutdown().await;
}

#[tokio::test]
async fn bare_call_reports_a_body_that_is_not_a_message() {
    let server = Loopback::start(r#"{"type":"message"}"#).await.unwrap();
    let err = bare_call(&http_client(), &server.url()).await.unwrap_err();
    assert_eq!(err, "content is not an array");
    server.shutdown().await;
}

/// Sends `bytes` on a fresh connection and reads until the server closes it or
/// `responses` answers have arrived.
async fn exchange(url: &str, bytes: &[u8], responses: usize) -> String {
    let addr = url.trim_start_matches("http://");
    let mut stream = TcpStream::connect(addr).await.expect("connect");
    stream.write_all(bytes).await.expect("write");
    let mut got = Vec::new();
    let mut chunk = [0u8; 4096];
    while String::from_utf8_lossy(&got).matches("HTTP/1.1").count() < responses
        || !got.ends_with(b"}")
    {
        let n = stream.read(&mut chunk).await.expect("read");
        if n == 0 {
            break;
        }
        got.extend_from_slice(&chunk[..n]);
    }
    String::from_utf8(got).expect("the answers are text")
}

#[tokio::test]
async fn keeps_the_connection_alive_across_requests() {
    let server = Loopback::start("{}").await.unwrap();
    let one = "POST /v1/messages HTTP/1.1\r\nhost: x\r\ncontent-length: 2\r\n\r\n{}";
    // Two requests in one write: the second is read from what the first left over.
    let got = exchange(&server.url(), format!("{one}{one}").as_bytes(), 2).await;
    assert_eq!(got.matches("HTTP/1.1 200 OK").count(), 2, "{got}");
    server.shutdown().await;
}

#[tokio::test]
async fn refuses_a_chunked_body() {
    let server = Loopback::start("{}").await.unwrap();
    let chunked = b"POST / HTTP/1.1\r\ntransfer-encoding: chunked\r\n\r\n2\r\n{}\r\n0\r\n\r\n";
    let got = exchange(&server.url(), chunked, 1).await;
    assert!(got.starts_with("HTTP/1.1 400 Bad Request"), "{got}");
    server.shutdown().await;
}
