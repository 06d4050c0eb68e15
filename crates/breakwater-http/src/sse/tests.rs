use super::*;

fn parse_chunks(chunks: &[&[u8]]) -> (Vec<SseEvent>, StreamEnd) {
    let mut parser = SseParser::new();
    let mut out = Vec::new();
    for chunk in chunks {
        parser.push(chunk, &mut out).unwrap();
    }
    let end = parser.finish();
    (out, end)
}

fn parse(bytes: &[u8]) -> Vec<SseEvent> {
    parse_chunks(&[bytes]).0
}

fn data(events: &[SseEvent]) -> Vec<&str> {
    events.iter().map(|e| e.data.as_str()).collect()
}

#[test]
fn each_line_ending_ends_a_line() {
    for stream in [
        &b"data: a\n\ndata: b\n\n"[..],
        b"data: a\r\n\r\ndata: b\r\n\r\n",
        b"data: a\r\rdata: b\r\r",
        b"data: a\r\n\rdata: b\n\r\n",
    ] {
        assert_eq!(data(&parse(stream)), ["a", "b"], "{stream:?}");
    }
}

#[test]
fn cr_ending_one_chunk_and_lf_starting_the_next_are_one_line_end() {
    let (events, end) = parse_chunks(&[b"data: a\r", b"\ndata: b\r\n\r\n"]);
    assert_eq!(data(&events), ["a\nb"]);
    assert_eq!(end, StreamEnd::Clean);
    // Even with an empty chunk in between.
    let (events, _) = parse_chunks(&[b"data: a\r", b"", b"\ndata: b\r\n\r\n"]);
    assert_eq!(data(&events), ["a\nb"]);
    // A CR followed by anything else is a line end on its own.
    let (events, _) = parse_chunks(&[b"data: a\r", b"\r"]);
    assert_eq!(data(&events), ["a"]);
}

#[test]
fn a_leading_bom_is_skipped_once() {
    assert_eq!(data(&parse(b"\xEF\xBB\xBFdata: a\n\n")), ["a"]);
    // Split across chunks.
    let (events, _) = parse_chunks(&[b"\xEF", b"\xBB", b"\xBFdata: a\n\n"]);
    assert_eq!(data(&events), ["a"]);
    // A second BOM is part of the field name, which is then unknown.
    assert!(parse(b"\xEF\xBB\xBF\xEF\xBB\xBFdata: a\n\n").is_empty());
    // A BOM later in the stream is not skipped either.
    assert!(parse(b"data: a\n\n\xEF\xBB\xBFdata: b\n\n").len() == 1);
}

#[test]
fn bytes_that_only_start_like_a_bom_are_kept() {
    let mut parser = SseParser::new();
    let mut out = Vec::new();
    parser.push(b"\xEF", &mut out).unwrap();
    parser.push(b"data: x\n\n", &mut out).unwrap();
    // "\xEF" + "data" is not a valid field name: the line is ignored, but flagged lossy.
    assert!(out.is_empty());
    assert!(parser.saw_invalid_utf8());
    // A stream that ends inside what could still be a BOM is truncated.
    assert_eq!(parser.finish(), StreamEnd::Clean);
    parser.push(b"\xEF\xBB", &mut out).unwrap();
    assert_eq!(parser.finish(), StreamEnd::Truncated);
    // After `finish`, a new stream may start with its own BOM.
    parser.push(b"\xEF\xBB\xBFdata: y\n\n", &mut out).unwrap();
    assert_eq!(data(&out), ["y"]);
}

#[test]
fn comments_are_ignored() {
    let events = parse(b": keep-alive\ndata: a\n:another\n\n:\n\n");
    assert_eq!(data(&events), ["a"]);
}

#[test]
fn one_space_after_the_colon_is_removed() {
    assert_eq!(data(&parse(b"data:a\n\n")), ["a"]);
    assert_eq!(data(&parse(b"data: a\n\n")), ["a"]);
    assert_eq!(data(&parse(b"data:  a\n\n")), [" a"]);
    assert_eq!(data(&parse(b"data: a: b\n\n")), ["a: b"]);
    assert_eq!(data(&parse(b"data:\n\n")), [""]);
}

#[test]
fn a_line_without_a_colon_is_a_field_with_an_empty_value() {
    // The standard's own example: "data" alone, then two "data" lines.
    let events = parse(b"data\n\ndata\ndata\n\ndata:");
    assert_eq!(data(&events), ["", "\n"]);
}

#[test]
fn event_sets_the_type_which_defaults_to_message() {
    let events = parse(b"event: ping\ndata: 1\n\ndata: 2\n\nevent: a\nevent: b\ndata: 3\n\n");
    let types: Vec<_> = events.iter().map(|e| e.event.as_str()).collect();
    assert_eq!(types, ["ping", "message", "b"]);
    // An empty `event` value also means "message".
    assert_eq!(parse(b"event:\ndata: x\n\n")[0].event, "message");
}

#[test]
fn data_lines_are_joined_with_newlines_and_the_last_newline_removed() {
    assert_eq!(data(&parse(b"data: a\ndata: b\ndata\n\n")), ["a\nb\n"]);
    assert_eq!(
        data(&parse(b"data: YHOO\ndata: +2\ndata: 10\n\n")),
        ["YHOO\n+2\n10"]
    );
}

#[test]
fn id_persists_and_is_ignored_when_it_contains_nul() {
    let events = parse(b"id: 1\ndata: a\n\ndata: b\n\nid: 2\0x\ndata: c\n\nid\ndata: d\n\n");
    let ids: Vec<_> = events.iter().map(|e| e.id.as_str()).collect();
    assert_eq!(ids, ["1", "1", "1", ""]);
    // An id without data still updates the buffer.
    let mut parser = SseParser::new();
    let mut out = Vec::new();
    parser.push(b"id: 7\n\n", &mut out).unwrap();
    assert!(out.is_empty());
    assert_eq!(parser.last_event_id(), "7");
    // ... and survives a reconnection.
    assert_eq!(parser.finish(), StreamEnd::Clean);
    parser.push(b"data: x\n\n", &mut out).unwrap();
    assert_eq!(out[0].id, "7");
}

#[test]
fn retry_takes_only_ascii_digits() {
    let mut parser = SseParser::new();
    let mut out = Vec::new();
    assert_eq!(parser.retry(), None);
    parser.push(b"retry: 1500\n", &mut out).unwrap();
    assert_eq!(parser.retry(), Some(Duration::from_millis(1500)));
    for ignored in [
        &b"retry: 1.5\n"[..],
        b"retry: -1\n",
        b"retry: 10s\n",
        b"retry:\n",
        b"retry\n",
        b"retry:  100\n",
        b"retry: 99999999999999999999999\n",
    ] {
        parser.push(ignored, &mut out).unwrap();
        assert_eq!(
            parser.retry(),
            Some(Duration::from_millis(1500)),
            "{ignored:?}"
        );
    }
    assert!(out.is_empty());
}

#[test]
fn a_blank_line_without_data_dispatches_nothing_and_resets_the_type() {
    let events = parse(b"event: a\n\ndata: x\n\n\n\n");
    assert_eq!(events.len(), 1);
    assert_eq!(events[0].event, "message");
}

#[test]
fn unknown_fields_are_ignored_and_names_are_case_sensitive() {
    assert!(parse(b"Data: x\nfoo: bar\n\n").is_empty());
}

#[test]
fn an_incomplete_final_event_is_discarded() {
    let (events, end) = parse_chunks(&[b"data: a\n\ndata: b\n"]);
    assert_eq!(data(&events), ["a"]);
    assert_eq!(end, StreamEnd::Truncated);
    let (events, end) = parse_chunks(&[b"data: a\n\ndata: b"]);
    assert_eq!(data(&events), ["a"]);
    assert_eq!(end, StreamEnd::Truncated);
    let (_, end) = parse_chunks(&[b"data: a\n\n"]);
    assert_eq!(end, StreamEnd::Clean);
}

#[test]
fn events_arrive_as_they_complete() {
    let mut parser = SseParser::new();
    let mut out = Vec::new();
    parser.push(b"data: one\n", &mut out).unwrap();
    assert!(out.is_empty());
    parser.push(b"\ndata: tw", &mut out).unwrap();
    assert_eq!(data(&out), ["one"]);
    parser.push(b"o\n\n", &mut out).unwrap();
    assert_eq!(data(&out), ["one", "two"]);
}

#[test]
fn a_chunk_may_split_a_multibyte_character() {
    let stream = "data: h\u{e9}llo \u{1F600}\n\n".as_bytes();
    for cut in 0..stream.len() {
        let (events, _) = parse_chunks(&[&stream[..cut], &stream[cut..]]);
        assert_eq!(data(&events), ["h\u{e9}llo \u{1F600}"], "cut at {cut}");
        assert!(!events[0].lossy);
    }
}

#[test]
fn invalid_utf8_is_replaced_and_flagged() {
    let mut parser = SseParser::new();
    let mut out = Vec::new();
    parser
        .push(
            b":\xFF comment\ndata: ok\n\ndata: a\xFFb\n\ndata: fine\n\n",
            &mut out,
        )
        .unwrap();
    assert_eq!(data(&out), ["ok", "a\u{FFFD}b", "fine"]);
    let lossy: Vec<_> = out.iter().map(|e| e.lossy).collect();
    assert_eq!(lossy, [false, true, false]);
    assert!(parser.saw_invalid_utf8());
}

#[test]
fn a_line_longer_than_the_limit_fails_without_buffering_it() {
    let mut parser = SseParser::with_max_bytes(16);
    let mut out = Vec::new();
    parser.push(b"data: 0123456789", &mut out).unwrap();
    assert_eq!(
        parser.push(b"x", &mut out),
        Err(SseError::LineTooLong { limit: 16 })
    );
    // It stays failed until the stream is finished.
    assert!(parser.push(b"\n\n", &mut out).is_err());
    assert_eq!(parser.finish(), StreamEnd::Truncated);
    parser.push(b"data: ok\n\n", &mut out).unwrap();
    assert_eq!(data(&out), ["ok"]);
}

#[test]
fn an_event_larger_than_the_limit_fails() {
    let mut parser = SseParser::with_max_bytes(16);
    let mut out = Vec::new();
    let result = parser.push(b"data: a\n\ndata: 01234567\ndata: 01234567\n", &mut out);
    assert_eq!(result, Err(SseError::EventTooLarge { limit: 16 }));
    // The event completed before the failure was delivered.
    assert_eq!(data(&out), ["a"]);
}

#[test]
fn a_line_exactly_at_the_limit_is_accepted() {
    let mut parser = SseParser::with_max_bytes(8);
    let mut out = Vec::new();
    parser.push(b"data:abc\r\n\r\n", &mut out).unwrap();
    assert_eq!(data(&out), ["abc"]);
}
