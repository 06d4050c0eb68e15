//! An incremental Server-Sent Events parser.
//!
//! It follows the "event stream interpretation" of the WHATWG HTML standard
//! (§ 9.2.6): lines end in CRLF, LF or CR, and a CR that ends one chunk followed by an LF
//! that starts the next is one line end; a leading UTF-8 byte order mark is skipped once;
//! a line that starts with `:` is a comment; `field: value` loses one space after the
//! colon; a line without a colon is a field with an empty value; the fields are `event`,
//! `data` (several lines joined with `\n`), `id` (ignored if it contains NUL, and kept as
//! the last event ID across events) and `retry` (ASCII digits only: the reconnection time
//! in milliseconds); a blank line dispatches the event unless its data is empty; the last
//! `\n` of the data is removed; the type defaults to `message`; an event that is still
//! incomplete when the stream ends is discarded.
//!
//! Two choices the standard leaves to us:
//!
//! - **Invalid UTF-8.** The standard decodes the stream with replacement. So do we, one
//!   complete line at a time (chunks may split a character; bytes are buffered until the
//!   line ends), and we also flag it: [`SseEvent::lossy`] is set on an event that any of
//!   its lines needed replacement for, and [`SseParser::saw_invalid_utf8`] remembers it
//!   for the stream, so that a caller can treat such a stream as malformed. Comment lines
//!   are never decoded, so bad bytes in a comment are not flagged.
//! - **Memory.** No line, and no event (type plus data), may exceed the parser's maximum
//!   size ([`DEFAULT_SSE_MAX_BYTES`] unless set); past it the parser fails with a typed
//!   [`SseError`] instead of growing, and stays failed until [`SseParser::finish`].

use std::borrow::Cow;
use std::mem;
use std::time::Duration;

use crate::limits::DEFAULT_SSE_MAX_BYTES;

/// The UTF-8 byte order mark.
const BOM: [u8; 3] = [0xEF, 0xBB, 0xBF];

/// One dispatched event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SseEvent {
    /// The event type: the last `event` field, or `"message"` when there was none.
    pub event: String,
    /// The `data` lines, joined with `\n`.
    pub data: String,
    /// The last event ID when this event was dispatched (it persists across events).
    pub id: String,
    /// Whether a line of this event held invalid UTF-8, decoded with U+FFFD replacement.
    pub lossy: bool,
}

/// Why the parser stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SseError {
    /// A line (without its line end) was longer than the limit.
    #[error("SSE line longer than {limit} bytes")]
    LineTooLong {
        /// The parser's maximum size in bytes.
        limit: usize,
    },
    /// An event's type and data together grew larger than the limit.
    #[error("SSE event larger than {limit} bytes")]
    EventTooLarge {
        /// The parser's maximum size in bytes.
        limit: usize,
    },
}

/// How a stream ended, as reported by [`SseParser::finish`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StreamEnd {
    /// Nothing was pending: the stream ended after a complete event (or a blank line).
    Clean,
    /// Bytes after the last dispatched event were discarded: an unterminated line or an
    /// event without its closing blank line.
    Truncated,
}

/// Where the parser stands on the optional byte order mark at the start of a stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Bom {
    /// This many leading bytes of the stream matched the BOM so far (0 to 2).
    Pending(usize),
    /// Decided: skipped, or not there.
    Done,
}

/// An incremental Server-Sent Events parser.
///
/// Feed it the response body in chunks of any size with [`push`](Self::push), which
/// appends the events that completed to a caller's vector; call [`finish`](Self::finish)
/// at the end of the stream. The same parser may then be fed a new stream (a
/// reconnection); it keeps the last event ID and the reconnection time across streams.
#[derive(Debug, Clone)]
pub struct SseParser {
    max_bytes: usize,
    bom: Bom,
    /// The bytes of the current, unterminated line.
    line: Vec<u8>,
    /// The last byte seen was a CR, so an LF that comes next is part of the same line end.
    after_cr: bool,
    event_type: String,
    data: String,
    last_event_id: String,
    retry: Option<Duration>,
    lossy: bool,
    saw_invalid_utf8: bool,
    failed: Option<SseError>,
}

impl Default for SseParser {
    fn default() -> Self {
        Self::new()
    }
}

impl SseParser {
    /// A parser with the default maximum line and event size ([`DEFAULT_SSE_MAX_BYTES`]).
    #[must_use]
    pub fn new() -> Self {
        Self::with_max_bytes(DEFAULT_SSE_MAX_BYTES)
    }

    /// A parser that fails once a line, or an event's type plus data, exceeds `max_bytes`.
    #[must_use]
    pub fn with_max_bytes(max_bytes: usize) -> Self {
        Self {
            max_bytes,
            bom: Bom::Pending(0),
            line: Vec::new(),
            after_cr: false,
            event_type: String::new(),
            data: String::new(),
            last_event_id: String::new(),
            retry: None,
            lossy: false,
            saw_invalid_utf8: false,
            failed: None,
        }
    }

    /// The maximum size of a line, and of an event's type plus data, in bytes.
    #[must_use]
    pub fn max_bytes(&self) -> usize {
        self.max_bytes
    }

    /// The last event ID buffer: the value of the last valid `id` field, or empty.
    #[must_use]
    pub fn last_event_id(&self) -> &str {
        &self.last_event_id
    }

    /// The reconnection time the server asked for with a `retry` field, if it did.
    #[must_use]
    pub fn retry(&self) -> Option<Duration> {
        self.retry
    }

    /// Whether any line (other than a comment) held invalid UTF-8 since the parser was
    /// made. Such lines are decoded with replacement; see the module docs.
    #[must_use]
    pub fn saw_invalid_utf8(&self) -> bool {
        self.saw_invalid_utf8
    }

    /// Parses the next chunk of the stream and appends every event it completes to `out`.
    ///
    /// # Errors
    ///
    /// [`SseError`] when a line or an event exceeds the maximum size. Events completed
    /// earlier in the same chunk are already in `out`. The parser stays failed, returning
    /// the same error, until [`finish`](Self::finish).
    pub fn push(&mut self, chunk: &[u8], out: &mut Vec<SseEvent>) -> Result<(), SseError> {
        if let Some(error) = self.failed {
            return Err(error);
        }
        let result = self.push_inner(chunk, out);
        if let Err(error) = result {
            self.failed = Some(error);
        }
        result
    }

    /// Ends the stream: discards whatever incomplete line or event is pending, as the
    /// standard requires, and readies the parser for a new stream. The last event ID and
    /// the reconnection time are kept.
    #[must_use = "a Truncated end means the stream stopped in the middle of an event"]
    pub fn finish(&mut self) -> StreamEnd {
        let pending = matches!(self.bom, Bom::Pending(n) if n > 0)
            || !self.line.is_empty()
            || !self.data.is_empty()
            || !self.event_type.is_empty();
        self.bom = Bom::Pending(0);
        self.line.clear();
        self.after_cr = false;
        self.event_type.clear();
        self.data.clear();
        self.lossy = false;
        self.failed = None;
        if pending {
            StreamEnd::Truncated
        } else {
            StreamEnd::Clean
        }
    }

    fn push_inner(&mut self, mut chunk: &[u8], out: &mut Vec<SseEvent>) -> Result<(), SseError> {
        if let Bom::Pending(mut matched) = self.bom {
            while let Some((&byte, rest)) = chunk.split_first() {
                if matched == BOM.len() || byte != BOM[matched] {
                    break;
                }
                matched += 1;
                chunk = rest;
            }
            if matched == BOM.len() {
                self.bom = Bom::Done;
            } else if chunk.is_empty() {
                // Every byte so far matched the start of a BOM: wait for more.
                self.bom = Bom::Pending(matched);
                return Ok(());
            } else {
                // Not a BOM after all: the bytes held back are ordinary stream bytes.
                self.bom = Bom::Done;
                self.feed(&BOM[..matched], out)?;
            }
        }
        self.feed(chunk, out)
    }

    /// Splits `bytes` into lines, carrying an unterminated tail over to the next call.
    fn feed(&mut self, mut bytes: &[u8], out: &mut Vec<SseEvent>) -> Result<(), SseError> {
        if self.after_cr && !bytes.is_empty() {
            self.after_cr = false;
            if bytes[0] == b'\n' {
                bytes = &bytes[1..];
            }
        }
        while let Some(end) = bytes.iter().position(|&b| b == b'\r' || b == b'\n') {
            let part = &bytes[..end];
            if self.line.len() + part.len() > self.max_bytes {
                return Err(SseError::LineTooLong {
                    limit: self.max_bytes,
                });
            }
            if self.line.is_empty() {
                self.process_line(part, out)?;
            } else {
                let mut line = mem::take(&mut self.line);
                line.extend_from_slice(part);
                let result = self.process_line(&line, out);
                line.clear();
                self.line = line;
                result?;
            }
            let crlf = bytes[end] == b'\r' && bytes.get(end + 1) == Some(&b'\n');
            if bytes[end] == b'\r' && end + 1 == bytes.len() {
                self.after_cr = true;
            }
            bytes = &bytes[end + if crlf { 2 } else { 1 }..];
        }
        if self.line.len() + bytes.len() > self.max_bytes {
            return Err(SseError::LineTooLong {
                limit: self.max_bytes,
            });
        }
        self.line.extend_from_slice(bytes);
        Ok(())
    }

    /// Interprets one complete line (without its line end).
    fn process_line(&mut self, bytes: &[u8], out: &mut Vec<SseEvent>) -> Result<(), SseError> {
        match bytes.first() {
            None => {
                self.dispatch(out);
                return Ok(());
            }
            Some(b':') => return Ok(()),
            Some(_) => {}
        }
        let text = match std::str::from_utf8(bytes) {
            Ok(text) => Cow::Borrowed(text),
            Err(_) => {
                self.lossy = true;
                self.saw_invalid_utf8 = true;
                String::from_utf8_lossy(bytes)
            }
        };
        let (field, value) = match text.split_once(':') {
            Some((field, value)) => (field, value.strip_prefix(' ').unwrap_or(value)),
            None => (&*text, ""),
        };
        match field {
            "event" => {
                self.event_type.clear();
                self.event_type.push_str(value);
                self.check_event_size()?;
            }
            "data" => {
                self.data.push_str(value);
                self.data.push('\n');
                self.check_event_size()?;
            }
            "id" if !value.contains('\0') => {
                self.last_event_id.clear();
                self.last_event_id.push_str(value);
            }
            "retry" if !value.is_empty() && value.bytes().all(|b| b.is_ascii_digit()) => {
                // Only a value too large for u64 milliseconds fails to parse; it is ignored.
                if let Ok(ms) = value.parse::<u64>() {
                    self.retry = Some(Duration::from_millis(ms));
                }
            }
            _ => {}
        }
        Ok(())
    }

    fn check_event_size(&self) -> Result<(), SseError> {
        if self.event_type.len() + self.data.len() > self.max_bytes {
            return Err(SseError::EventTooLarge {
                limit: self.max_bytes,
            });
        }
        Ok(())
    }

    /// A blank line: dispatch the event being built, if it has data.
    fn dispatch(&mut self, out: &mut Vec<SseEvent>) {
        let lossy = mem::replace(&mut self.lossy, false);
        if self.data.is_empty() {
            self.event_type.clear();
            return;
        }
        if self.data.ends_with('\n') {
            self.data.pop();
        }
        let event = if self.event_type.is_empty() {
            "message".to_owned()
        } else {
            mem::take(&mut self.event_type)
        };
        out.push(SseEvent {
            event,
            data: mem::take(&mut self.data),
            id: self.last_event_id.clone(),
            lossy,
        });
    }
}

#[cfg(test)]
mod tests;
