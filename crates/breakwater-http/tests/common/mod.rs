//! Helpers shared by the integration tests.
#![allow(dead_code)] // each test binary uses its own subset

use std::path::Path;

use breakwater_http::sse::{SseParser, StreamEnd};
use breakwater_http::wire::{Provider, RenderedRequest, StreamItem, WireError};
use serde_json::Value;

/// The bytes of `tests/fixtures/<path>`.
pub(crate) fn fixture(path: &str) -> Vec<u8> {
    let full = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(path);
    std::fs::read(&full).unwrap_or_else(|e| panic!("{}: {e}", full.display()))
}

/// The rendered body as JSON.
pub(crate) fn body_json(rendered: &RenderedRequest) -> Value {
    serde_json::from_slice(&rendered.body).expect("rendered body is JSON")
}

/// The value of header `name`, if it was rendered.
pub(crate) fn header<'a>(rendered: &'a RenderedRequest, name: &str) -> Option<&'a str> {
    rendered
        .headers
        .iter()
        .find(|(n, _)| *n == name)
        .map(|(_, v)| v.as_str())
}

/// What a whole streamed body decoded to.
#[derive(Debug)]
pub(crate) struct Decoded {
    pub(crate) items: Vec<StreamItem>,
    pub(crate) end: Result<Option<StreamItem>, WireError>,
    pub(crate) sse_end: StreamEnd,
}

impl Decoded {
    /// The generated text, concatenated.
    pub(crate) fn text(&self) -> String {
        self.items
            .iter()
            .filter_map(|item| match item {
                StreamItem::Text(text) => Some(text.as_str()),
                _ => None,
            })
            .collect()
    }

    /// The items other than `Ignored`.
    pub(crate) fn meaningful(&self) -> Vec<StreamItem> {
        self.items
            .iter()
            .filter(|item| **item != StreamItem::Ignored)
            .cloned()
            .collect()
    }
}

/// Runs `body` through the SSE parser and `provider`'s decoder in chunks of `chunk` bytes.
pub(crate) fn decode(provider: Provider, body: &[u8], chunk: usize) -> Result<Decoded, WireError> {
    let mut parser = SseParser::new();
    let mut decoder = provider.stream_decoder();
    let mut events = Vec::new();
    let mut items = Vec::new();
    for piece in body.chunks(chunk.max(1)) {
        events.clear();
        parser.push(piece, &mut events)?;
        for event in &events {
            items.extend(decoder.decode(event)?);
        }
    }
    let sse_end = parser.finish();
    let end = decoder.finish();
    Ok(Decoded {
        items,
        end,
        sse_end,
    })
}

/// `decode` at several chunk sizes, checking they all agree, returning the whole-body one.
pub(crate) fn decode_all_ways(provider: Provider, body: &[u8]) -> Result<Decoded, WireError> {
    let whole = decode(provider, body, body.len())?;
    for chunk in [1, 2, 3, 7, 64] {
        let split = decode(provider, body, chunk)?;
        assert_eq!(split.items, whole.items, "chunk size {chunk}");
        assert_eq!(split.end, whole.end, "chunk size {chunk}");
    }
    Ok(whole)
}

/// Replaces the first occurrence of `needle` in `haystack` with `with`.
pub(crate) fn replace_once(haystack: &[u8], needle: &[u8], with: &[u8]) -> Vec<u8> {
    let at = haystack
        .windows(needle.len())
        .position(|w| w == needle)
        .expect("needle present");
    [&haystack[..at], with, &haystack[at + needle.len()..]].concat()
}
