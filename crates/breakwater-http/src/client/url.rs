//! A step's request URL, parsed once.
//!
//! reqwest parses a URL given as a `String` on every send, and for a short request
//! on a kept-alive loopback connection that parse is a sixth of the client's work
//! (`benches/adapter.rs`); a parsed [`Url`] it only clones. Each step sends to one
//! path per kind of request (its model is fixed), so the first URL parsed is the one
//! every later attempt needs.

use std::sync::OnceLock;

use reqwest::Url;

/// The parsed URL of the first path a step sent to.
#[derive(Debug, Default)]
pub(crate) struct ParsedUrl(OnceLock<Option<(String, Url)>>);

impl ParsedUrl {
    /// `base` followed by `path`: parsed, from the cache or now, or as text when it is
    /// not the cached path or does not parse (reqwest then parses it, or reports it,
    /// as it always did).
    pub(crate) fn get(&self, base: &str, path: &str) -> Result<Url, String> {
        let text = || format!("{base}{path}");
        let cached = self.0.get_or_init(|| {
            let url = Url::parse(&text()).ok()?;
            Some((path.to_owned(), url))
        });
        match cached {
            Some((cached_path, url)) if cached_path == path => Ok(url.clone()),
            _ => Err(text()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_once_and_falls_back_to_text() {
        let url = ParsedUrl::default();
        let first = url.get("http://127.0.0.1:9", "/v1/messages");
        assert_eq!(
            first.map(String::from),
            Ok("http://127.0.0.1:9/v1/messages".to_owned())
        );
        // The same path again comes from the cache.
        assert!(url.get("http://127.0.0.1:9", "/v1/messages").is_ok());
        // Another path is passed on as text, as before the cache.
        assert_eq!(
            url.get("http://127.0.0.1:9", "/v1/other"),
            Err("http://127.0.0.1:9/v1/other".to_owned())
        );
    }

    #[test]
    fn a_url_that_does_not_parse_stays_text() {
        let url = ParsedUrl::default();
        assert_eq!(
            url.get("http://[::1", "/v1/messages"),
            Err("http://[::1/v1/messages".to_owned())
        );
        assert_eq!(
            url.get("http://[::1", "/v1/messages"),
            Err("http://[::1/v1/messages".to_owned())
        );
    }
}
