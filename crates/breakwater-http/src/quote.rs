//! Bounded excerpts of what a provider said, for errors and logs.
//!
//! Response bodies are read up to a limit ([`crate::limits`]), but a body of that size
//! quoted whole in an error's `Display`, a `tracing` event, a validator's reason, a
//! batch item's error or a queued task's reason would put megabytes into every log
//! line that mentions it. Every place that quotes provider text passes it through
//! [`excerpt`] (or [`bound`]): at most [`QUOTE_LIMIT`] bytes, cut on a character
//! boundary, followed by a marker that says it was cut and how long it was.

use std::borrow::Cow;

/// The most bytes of provider text kept in a quote (the marker comes on top).
pub(crate) const QUOTE_LIMIT: usize = 512;

/// `text` as it is if it is at most [`QUOTE_LIMIT`] bytes; otherwise its first bytes
/// up to that limit (cut on a character boundary) and `… [cut: N bytes]`, N the
/// whole text's length.
pub(crate) fn excerpt(text: &str) -> Cow<'_, str> {
    if text.len() <= QUOTE_LIMIT {
        return Cow::Borrowed(text);
    }
    Cow::Owned(format!("{}… [cut: {} bytes]", head(text), text.len()))
}

/// [`excerpt`] of an owned string, reusing it when it is short enough.
pub(crate) fn bound(text: String) -> String {
    if text.len() <= QUOTE_LIMIT {
        return text;
    }
    excerpt(&text).into_owned()
}

/// [`bound`] of an optional string.
pub(crate) fn bound_opt(text: Option<String>) -> Option<String> {
    text.map(bound)
}

/// The longest prefix of `text` of at most [`QUOTE_LIMIT`] bytes that ends on a
/// character boundary.
fn head(text: &str) -> &str {
    let mut end = QUOTE_LIMIT.min(text.len());
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    &text[..end]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_text_is_kept_as_it_is() {
        let text = "x".repeat(QUOTE_LIMIT);
        assert!(matches!(excerpt(&text), Cow::Borrowed(t) if t == text));
        assert_eq!(bound(text.clone()), text);
        assert_eq!(excerpt(""), "");
        assert_eq!(bound_opt(None), None);
    }

    #[test]
    fn long_text_is_cut_with_a_marker() {
        let text = "y".repeat(QUOTE_LIMIT + 1);
        let cut = excerpt(&text).into_owned();
        assert_eq!(
            cut,
            format!(
                "{}… [cut: {} bytes]",
                "y".repeat(QUOTE_LIMIT),
                QUOTE_LIMIT + 1
            )
        );
        assert_eq!(bound(text.clone()), cut);
        assert_eq!(bound_opt(Some(text)), Some(cut));
    }

    #[test]
    fn cuts_fall_on_character_boundaries() {
        // Three-byte characters: 512 is not a boundary, 510 is.
        let text = "€".repeat(1000);
        let cut = excerpt(&text);
        let kept = cut.split('…').next().unwrap_or_default();
        assert_eq!(kept.len(), 510);
        assert!(kept.chars().all(|c| c == '€'));
        assert!(cut.ends_with("[cut: 3000 bytes]"), "{cut}");
        // Every length around the limit, with characters of every width.
        for len in QUOTE_LIMIT - 4..QUOTE_LIMIT + 8 {
            for filler in ["a", "é", "€", "😀"] {
                let text: String = filler.repeat(len / filler.len() + 1);
                let cut = excerpt(&text);
                assert!(cut.len() <= QUOTE_LIMIT + 32, "{}", cut.len());
            }
        }
    }
}
