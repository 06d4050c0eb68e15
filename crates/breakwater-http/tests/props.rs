//! Property tests: SSE parsing does not depend on how the stream is chunked, agrees with a
//! model of the standard, and no parser in this crate panics on arbitrary bytes.

use breakwater_http::sse::{SseEvent, SseParser};
use breakwater_http::wire::Provider;
use proptest::prelude::*;

/// One event as written by a server.
#[derive(Debug, Clone)]
struct Written {
    event: Option<String>,
    id: Option<String>,
    data: Vec<String>,
    comment: bool,
}

/// Text without CR or LF (so each string is one line), often non-ASCII.
fn line_text() -> impl Strategy<Value = String> {
    "[a-z :é😀\u{FEFF}\0{}\"]{0,12}"
}

fn written() -> impl Strategy<Value = Written> {
    (
        proptest::option::of("[a-z_]{1,8}"),
        proptest::option::of("[a-z0-9]{0,5}"),
        proptest::collection::vec(line_text(), 0..4),
        any::<bool>(),
    )
        .prop_map(|(event, id, data, comment)| Written {
            event,
            id,
            data,
            comment,
        })
}

/// Serializes the events, one line at a time, each with a line end picked by `endings`.
fn serialize(events: &[Written], bom: bool, endings: &[u8]) -> Vec<u8> {
    let mut lines: Vec<String> = Vec::new();
    for w in events {
        if w.comment {
            lines.push(": keep-alive".into());
        }
        if let Some(event) = &w.event {
            lines.push(format!("event: {event}"));
        }
        if let Some(id) = &w.id {
            lines.push(format!("id:{id}"));
        }
        for data in &w.data {
            lines.push(format!("data: {data}"));
        }
        lines.push(String::new());
    }
    let mut out = if bom {
        b"\xEF\xBB\xBF".to_vec()
    } else {
        Vec::new()
    };
    let mut previous: &[u8] = b"\n";
    for (i, line) in lines.iter().enumerate() {
        out.extend_from_slice(line.as_bytes());
        let mut ending: &[u8] =
            match endings.get(i % endings.len().max(1)).copied().unwrap_or(0) % 3 {
                0 => b"\n",
                1 => b"\r\n",
                _ => b"\r",
            };
        // A bare CR then an empty line ended by LF would read as one CRLF: avoid writing that.
        if line.is_empty() && previous == b"\r" && ending == b"\n" {
            ending = b"\r\n";
        }
        out.extend_from_slice(ending);
        previous = ending;
    }
    out
}

/// What the standard says these events dispatch as.
fn expected(events: &[Written]) -> Vec<SseEvent> {
    let mut last_id = String::new();
    let mut out = Vec::new();
    for w in events {
        if let Some(id) = &w.id {
            last_id = id.clone();
        }
        if w.data.is_empty() {
            continue;
        }
        out.push(SseEvent {
            event: w.event.clone().unwrap_or_else(|| "message".into()),
            data: w.data.join("\n"),
            id: last_id.clone(),
            lossy: false,
        });
    }
    out
}

fn parse_in_chunks(bytes: &[u8], cuts: &[usize]) -> Vec<SseEvent> {
    let mut parser = SseParser::new();
    let mut out = Vec::new();
    let mut cuts: Vec<usize> = cuts.iter().map(|c| c % (bytes.len() + 1)).collect();
    cuts.sort_unstable();
    let mut start = 0;
    for cut in cuts.into_iter().chain([bytes.len()]) {
        parser
            .push(&bytes[start..cut], &mut out)
            .expect("well under the default size limit");
        start = cut;
    }
    let _ = parser.finish();
    out
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn any_split_parses_like_the_whole(
        events in proptest::collection::vec(written(), 0..6),
        bom in any::<bool>(),
        endings in proptest::collection::vec(any::<u8>(), 1..8),
        cuts in proptest::collection::vec(any::<usize>(), 0..12),
    ) {
        let bytes = serialize(&events, bom, &endings);
        let whole = parse_in_chunks(&bytes, &[]);
        prop_assert_eq!(&whole, &expected(&events));
        prop_assert_eq!(parse_in_chunks(&bytes, &cuts), whole);
    }

    #[test]
    fn arbitrary_bytes_never_panic(
        bytes in proptest::collection::vec(any::<u8>(), 0..512),
        cuts in proptest::collection::vec(any::<usize>(), 0..8),
        max in 1usize..64,
    ) {
        let mut parser = SseParser::with_max_bytes(max);
        let mut out = Vec::new();
        let mut start = 0;
        let mut cuts: Vec<usize> = cuts.iter().map(|c| c % (bytes.len() + 1)).collect();
        cuts.sort_unstable();
        for cut in cuts.into_iter().chain([bytes.len()]) {
            let _ = parser.push(&bytes[start..cut], &mut out);
            start = cut;
        }
        let _ = parser.finish();
        for provider in [Provider::Anthropic, Provider::OpenAi, Provider::Gemini] {
            let _ = provider.parse_response(&bytes);
            let error = provider.parse_error(500, &bytes);
            prop_assert!(error.recognized || error.code.is_none());
            let mut decoder = provider.stream_decoder();
            for event in &out {
                let _ = decoder.decode(event);
            }
            let _ = decoder.finish();
        }
    }

    #[test]
    fn json_looking_bytes_never_panic_the_decoders(data in r#"\{("[a-z_]{1,12}":("[a-z_]{0,8}"|[0-9]{1,3}|null|\[\]|\{\}|true),?){0,6}\}"#) {
        for provider in [Provider::Anthropic, Provider::OpenAi, Provider::Gemini] {
            let event = SseEvent { event: "message".into(), data: data.clone(), id: String::new(), lossy: false };
            let _ = provider.stream_decoder().decode(&event);
            let _ = provider.parse_response(data.as_bytes());
            let _ = provider.parse_error(429, data.as_bytes());
        }
    }
}
