//! `breakwater_http::sse::SseParser`: arbitrary bytes, split at arbitrary points.
//!
//! Layout of the input: byte 0 picks the size limit (small limits exercise the typed
//! size errors), byte 1 the number of split points (0 to 15), then two bytes per split
//! point, then the stream. Checks, beyond "no panic": pushing the stream in pieces gives
//! the same events, the same error, the same end and the same parser state as pushing
//! it at once; no event's buffered type and data exceed the limit; a failed parser stays failed.

#![no_main]

use breakwater_http::limits::DEFAULT_SSE_MAX_BYTES;
use breakwater_http::sse::{SseError, SseEvent, SseParser, StreamEnd};
use libfuzzer_sys::fuzz_target;

/// What one run of the parser over a stream produced.
#[derive(Debug, PartialEq, Eq)]
struct Run {
    events: Vec<SseEvent>,
    error: Option<SseError>,
    /// `finish`'s verdict, when the stream did not fail (after a failure the pending
    /// bytes depend on where the chunk that failed ended).
    end: Option<StreamEnd>,
    last_event_id: String,
    retry: Option<std::time::Duration>,
    saw_invalid_utf8: bool,
}

fn run(max_bytes: usize, chunks: &[&[u8]]) -> Run {
    let mut parser = SseParser::with_max_bytes(max_bytes);
    let mut events = Vec::new();
    let mut error = None;
    for chunk in chunks {
        if let Err(e) = parser.push(chunk, &mut events) {
            error = Some(e);
            // Failed parsers stay failed until `finish`, and add nothing.
            let before = events.len();
            assert_eq!(parser.push(b"data: x\n\n", &mut events), Err(e));
            assert_eq!(events.len(), before);
            break;
        }
    }
    let end = parser.finish();
    Run {
        events,
        error,
        end: error.is_none().then_some(end),
        last_event_id: parser.last_event_id().to_owned(),
        retry: parser.retry(),
        saw_invalid_utf8: parser.saw_invalid_utf8(),
    }
}

fuzz_target!(|data: &[u8]| {
    let Some((&limit, rest)) = data.split_first() else {
        return;
    };
    let Some((&splits, rest)) = rest.split_first() else {
        return;
    };
    let max_bytes = if limit < 64 {
        usize::from(limit)
    } else {
        DEFAULT_SSE_MAX_BYTES
    };
    let splits = usize::from(splits % 16);
    if rest.len() < 2 * splits {
        return;
    }
    let (cuts, stream) = rest.split_at(2 * splits);
    let mut points: Vec<usize> = cuts
        .chunks_exact(2)
        .map(|c| usize::from(u16::from_le_bytes([c[0], c[1]])) % (stream.len() + 1))
        .collect();
    points.sort_unstable();
    let mut chunks = Vec::with_capacity(points.len() + 1);
    let mut start = 0;
    for point in points {
        // Repeated points give empty chunks, which must be harmless too.
        chunks.push(&stream[start..point]);
        start = point;
    }
    chunks.push(&stream[start..]);

    let whole = run(max_bytes, &[stream]);
    let pieces = run(max_bytes, &chunks);
    assert_eq!(whole, pieces, "split at {chunks:?}");

    for event in &whole.events {
        // The limit is on what the parser buffers: the default type is not buffered.
        let buffered_type = if event.event == "message" {
            0
        } else {
            event.event.len()
        };
        assert!(
            buffered_type + event.data.len() <= max_bytes,
            "event over the limit: {event:?}"
        );
        assert!(!event.event.is_empty(), "event without a type: {event:?}");
    }

    // One byte at a time, the hardest split of all, for short streams.
    if stream.len() <= 256 {
        let bytes: Vec<&[u8]> = stream.chunks(1).collect();
        assert_eq!(whole, run(max_bytes, &bytes), "byte by byte");
    }
});
