//! What a provider said about a batch and about each of its requests, in the
//! provider-neutral shape the submitter acts on.

use std::time::SystemTime;

use reqwest::header::HeaderMap;

use crate::outcome::{Exchange, LimitedBody, from_response};
use crate::wire::Provider;

/// Where a batch is, as its status says.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Progress {
    /// Still running (or being cancelled): ask again later.
    Running,
    /// Over: its results are at these paths (each relative to the provider's base
    /// URL); requests without a result did not run, for `unfinished`.
    Ended {
        /// Result files, in order.
        results: Vec<String>,
        /// Why requests without a result did not run ("batch expired", …).
        unfinished: &'static str,
    },
    /// The provider refused the whole batch (OpenAI's `failed`, a validation error).
    Failed(String),
}

/// One request's result, read from a results file.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct ItemResult {
    /// The id the request was sent under.
    pub(crate) custom_id: String,
    /// What became of it.
    pub(crate) outcome: ItemOutcome,
}

/// What became of one request of a batch.
#[derive(Clone, Debug, PartialEq)]
pub(crate) enum ItemOutcome {
    /// It ran: what it returned, as the synchronous endpoint would have (an answer,
    /// or an error with its status and code).
    Ran(Exchange),
    /// It never ran: the batch was cancelled or expired first.
    NotRun(&'static str),
}

/// `body` as `provider`'s synchronous endpoint would have answered it with `status`
/// and no headers: the same mapping to an outcome as a synchronous attempt.
pub(crate) fn ran(provider: Provider, status: u16, body: Vec<u8>) -> ItemOutcome {
    let body = LimitedBody {
        bytes: body,
        truncated: false,
    };
    // No Retry-After comes with a batch result, so the wall clock is never read.
    ItemOutcome::Ran(from_response(
        provider,
        status,
        &HeaderMap::new(),
        &body,
        SystemTime::UNIX_EPOCH,
    ))
}

/// The non-empty lines of a JSONL file.
pub(crate) fn lines(body: &[u8]) -> impl Iterator<Item = &[u8]> {
    body.split(|&b| b == b'\n')
        .map(<[u8]>::trim_ascii)
        .filter(|line| !line.is_empty())
}

/// `path` relative to `base_url` when `url` is on it (or is a path already); `None`
/// for a URL elsewhere, where the API key must not be sent.
pub(crate) fn relative_to(base_url: &str, url: &str) -> Option<String> {
    if url.starts_with('/') {
        return Some(url.to_owned());
    }
    let base = reqwest::Url::parse(base_url).ok()?;
    let target = reqwest::Url::parse(url).ok()?;
    if base.origin() != target.origin() {
        return None;
    }
    let base_path = base.path().trim_end_matches('/');
    let path = target.path().strip_prefix(base_path)?;
    let mut out = if path.starts_with('/') {
        path.to_owned()
    } else {
        format!("/{path}")
    };
    if let Some(query) = target.query() {
        out.push('?');
        out.push_str(query);
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn results_urls_stay_on_the_base_url() {
        let base = "https://api.anthropic.com";
        assert_eq!(
            relative_to(
                base,
                "https://api.anthropic.com/v1/messages/batches/b1/results"
            ),
            Some("/v1/messages/batches/b1/results".into())
        );
        assert_eq!(relative_to(base, "/v1/x?y=1"), Some("/v1/x?y=1".into()));
        assert_eq!(
            relative_to(
                "http://127.0.0.1:8080/proxy",
                "http://127.0.0.1:8080/proxy/v1/r?a=b"
            ),
            Some("/v1/r?a=b".into())
        );
        // Another host, scheme or port gets no key.
        assert_eq!(relative_to(base, "https://evil.example/v1/results"), None);
        assert_eq!(
            relative_to(base, "http://api.anthropic.com/v1/results"),
            None
        );
        assert_eq!(
            relative_to("http://127.0.0.1:1", "http://127.0.0.1:2/r"),
            None
        );
        assert_eq!(relative_to("http://h/proxy", "http://h/other/r"), None);
        assert_eq!(relative_to(base, "not a url"), None);
    }

    #[test]
    fn jsonl_lines_skip_blanks() {
        let body = b"{\"a\":1}\n\n  {\"b\":2}\r\n";
        let got: Vec<&[u8]> = lines(body).collect();
        assert_eq!(got, [&b"{\"a\":1}"[..], &b"{\"b\":2}"[..]]);
    }
}
