//! The route table: a request's method and path to an endpoint.
//!
//! | path (after an optional `/<provider>` prefix) | wire | operation |
//! |---|---|---|
//! | `POST /v1/messages` | Anthropic | Messages (stream if the body says `"stream": true`) |
//! | `POST /v1/chat/completions` | OpenAI | Chat Completions (likewise) |
//! | `POST /v1beta/models/{model}:generateContent` | Gemini | generateContent |
//! | `POST /v1beta/models/{model}:streamGenerateContent?alt=sse` | Gemini | the same, streamed |
//! | `POST /v1/models/{model}:…` | Gemini | the same (the stable API version, which newer SDKs use) |
//! | `POST /v1/messages/batches`, `GET …/{id}`, `GET …/{id}/results`, `POST …/{id}/cancel` | Anthropic | Message Batches |
//! | `POST /v1/files`, `GET /v1/files/{id}/content` | OpenAI | Files (batch input and output) |
//! | `POST /v1/batches`, `GET /v1/batches/{id}`, `POST /v1/batches/{id}/cancel` | OpenAI | Batch |
//!
//! A new endpoint is a new [`Operation`] and a new arm in [`parse`]; the exchange
//! matches on the operation.

use super::wire::Wire;

/// What a path asks for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Operation {
    /// A generation: Anthropic Messages, OpenAI Chat Completions (model and stream flag
    /// in the body).
    Generate,
    /// Gemini's `generateContent` / `streamGenerateContent` (model and stream flag in
    /// the path).
    GenerateContent {
        /// The model named in the path, percent-decoded, without `models/`.
        model: String,
        /// `:streamGenerateContent`.
        stream: bool,
    },
    /// One of the batch APIs' calls.
    Batch(BatchOp),
}

/// A call of a batch API (Anthropic Message Batches, OpenAI Files and Batch).
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum BatchOp {
    /// Create a batch: `POST /v1/messages/batches`, `POST /v1/batches`.
    Create,
    /// A batch's status: `GET …/batches/{id}`.
    Get(String),
    /// An Anthropic batch's results: `GET /v1/messages/batches/{id}/results`.
    Results(String),
    /// Cancel a batch: `POST …/batches/{id}/cancel`.
    Cancel(String),
    /// Upload a file: `POST /v1/files`.
    Upload,
    /// A file's content: `GET /v1/files/{id}/content`.
    FileContent(String),
}

/// A routed request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Endpoint {
    /// The provider prefix (`/anthropic/v1/messages`), if the path had one.
    pub(crate) prefix: Option<String>,
    /// The wire format the endpoint speaks.
    pub(crate) wire: Wire,
    /// What it does.
    pub(crate) operation: Operation,
}

/// Why a request matches no endpoint.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Miss {
    /// No endpoint has this path.
    NotFound,
    /// The path is an endpoint of `wire`, but not for this method.
    MethodNotAllowed(Wire),
    /// A Gemini path whose last segment is not `{model}:{method}` with a known method.
    BadGeminiMethod(String),
}

/// Routes `method path`.
pub(crate) fn parse(method: &str, path: &str) -> Result<Endpoint, Miss> {
    let rest = path.strip_prefix('/').ok_or(Miss::NotFound)?;
    let (prefix, rest) = match rest.split_once('/') {
        Some((first, tail)) if first != "v1" && first != "v1beta" && !first.is_empty() => {
            (Some(percent_decode(first)), tail)
        }
        _ => (None, rest),
    };
    let batch = |wire, method, op| (wire, method, Operation::Batch(op));
    let id = |id: &str| percent_decode(id);
    let (wire, expected, operation) = match rest.split('/').collect::<Vec<_>>().as_slice() {
        ["v1", "messages"] => (Wire::Anthropic, "POST", Operation::Generate),
        ["v1", "chat", "completions"] => (Wire::OpenAi, "POST", Operation::Generate),
        ["v1", "messages", "batches"] => batch(Wire::Anthropic, "POST", BatchOp::Create),
        ["v1", "messages", "batches", b] => batch(Wire::Anthropic, "GET", BatchOp::Get(id(b))),
        ["v1", "messages", "batches", b, "results"] => {
            batch(Wire::Anthropic, "GET", BatchOp::Results(id(b)))
        }
        ["v1", "messages", "batches", b, "cancel"] => {
            batch(Wire::Anthropic, "POST", BatchOp::Cancel(id(b)))
        }
        ["v1", "files"] => batch(Wire::OpenAi, "POST", BatchOp::Upload),
        ["v1", "files", f, "content"] => batch(Wire::OpenAi, "GET", BatchOp::FileContent(id(f))),
        ["v1", "batches"] => batch(Wire::OpenAi, "POST", BatchOp::Create),
        ["v1", "batches", b] => batch(Wire::OpenAi, "GET", BatchOp::Get(id(b))),
        ["v1", "batches", b, "cancel"] => batch(Wire::OpenAi, "POST", BatchOp::Cancel(id(b))),
        ["v1beta" | "v1", "models", call] => {
            let call = percent_decode(call);
            let Some((model, method)) = call.rsplit_once(':') else {
                return Err(Miss::BadGeminiMethod(call));
            };
            let stream = match method {
                "generateContent" => false,
                "streamGenerateContent" => true,
                _ => return Err(Miss::BadGeminiMethod(call)),
            };
            let model = model.strip_prefix("models/").unwrap_or(model).to_owned();
            (
                Wire::Gemini,
                "POST",
                Operation::GenerateContent { model, stream },
            )
        }
        _ => return Err(Miss::NotFound),
    };
    if method != expected {
        return Err(Miss::MethodNotAllowed(wire));
    }
    Ok(Endpoint {
        prefix,
        wire,
        operation,
    })
}

/// The value of `name` in a URL query (`alt=sse&key=...`), percent-decoded.
pub(crate) fn query_param(query: Option<&str>, name: &str) -> Option<String> {
    query?
        .split('&')
        .filter_map(|pair| pair.split_once('=').or(Some((pair, ""))))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| percent_decode(&v.replace('+', " ")))
}

/// Percent-decoding; a malformed escape is kept as it is. Invalid UTF-8 is replaced.
fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = |b: u8| char::from(b).to_digit(16);
        match (bytes[i], bytes.get(i + 1), bytes.get(i + 2)) {
            (b'%', Some(&h), Some(&l)) if hex(h).is_some() && hex(l).is_some() => {
                // Two hex digits make a value below 256.
                out.push((hex(h).unwrap_or(0) * 16 + hex(l).unwrap_or(0)) as u8);
                i += 3;
            }
            (b, _, _) => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_three_wires_route() {
        let ep = parse("POST", "/v1/messages").unwrap();
        assert_eq!((ep.prefix, ep.wire), (None, Wire::Anthropic));
        let ep = parse("POST", "/openai/v1/chat/completions").unwrap();
        assert_eq!(
            (ep.prefix.as_deref(), ep.wire),
            (Some("openai"), Wire::OpenAi)
        );
        let ep = parse(
            "POST",
            "/v1beta/models/gemini-2.5-flash:streamGenerateContent",
        )
        .unwrap();
        assert_eq!(
            ep.operation,
            Operation::GenerateContent {
                model: "gemini-2.5-flash".into(),
                stream: true
            }
        );
        let ep = parse("POST", "/g/v1/models/gemini-2.5-flash:generateContent").unwrap();
        assert_eq!((ep.prefix.as_deref(), ep.wire), (Some("g"), Wire::Gemini));
        let ep = parse("POST", "/g/v1beta/models/my%20model%3AgenerateContent").unwrap();
        assert_eq!(ep.prefix.as_deref(), Some("g"));
        assert_eq!(
            ep.operation,
            Operation::GenerateContent {
                model: "my model".into(),
                stream: false
            }
        );
    }

    #[test]
    fn the_batch_apis_route() {
        let op = |method: &str, path: &str| parse(method, path).map(|ep| (ep.wire, ep.operation));
        let batch = |wire, op| Ok((wire, Operation::Batch(op)));
        assert_eq!(
            op("POST", "/v1/messages/batches"),
            batch(Wire::Anthropic, BatchOp::Create)
        );
        assert_eq!(
            op("GET", "/anthropic/v1/messages/batches/msgbatch_1"),
            batch(Wire::Anthropic, BatchOp::Get("msgbatch_1".into()))
        );
        assert_eq!(
            op("GET", "/v1/messages/batches/b%201/results"),
            batch(Wire::Anthropic, BatchOp::Results("b 1".into()))
        );
        assert_eq!(
            op("POST", "/v1/messages/batches/b/cancel"),
            batch(Wire::Anthropic, BatchOp::Cancel("b".into()))
        );
        assert_eq!(
            op("POST", "/v1/files"),
            batch(Wire::OpenAi, BatchOp::Upload)
        );
        assert_eq!(
            op("GET", "/openai/v1/files/file-1/content"),
            batch(Wire::OpenAi, BatchOp::FileContent("file-1".into()))
        );
        assert_eq!(
            op("POST", "/v1/batches"),
            batch(Wire::OpenAi, BatchOp::Create)
        );
        assert_eq!(
            op("GET", "/v1/batches/batch_1"),
            batch(Wire::OpenAi, BatchOp::Get("batch_1".into()))
        );
        assert_eq!(
            op("POST", "/v1/batches/batch_1/cancel"),
            batch(Wire::OpenAi, BatchOp::Cancel("batch_1".into()))
        );
        assert_eq!(
            op("POST", "/v1/batches/batch_1"),
            Err(Miss::MethodNotAllowed(Wire::OpenAi))
        );
        assert_eq!(
            op("GET", "/v1/messages/batches"),
            Err(Miss::MethodNotAllowed(Wire::Anthropic))
        );
        assert_eq!(op("GET", "/v1/files/f"), Err(Miss::NotFound));
    }

    #[test]
    fn misses_say_why() {
        assert_eq!(parse("POST", "/v1/nothing"), Err(Miss::NotFound));
        assert_eq!(parse("POST", "/"), Err(Miss::NotFound));
        assert_eq!(parse("POST", ""), Err(Miss::NotFound));
        assert_eq!(parse("POST", "/a/b/v1/messages"), Err(Miss::NotFound));
        assert_eq!(
            parse("GET", "/v1/messages"),
            Err(Miss::MethodNotAllowed(Wire::Anthropic))
        );
        assert_eq!(
            parse("POST", "/v1beta/models/m:countTokens"),
            Err(Miss::BadGeminiMethod("m:countTokens".into()))
        );
        assert_eq!(
            parse("POST", "/v1beta/models/m"),
            Err(Miss::BadGeminiMethod("m".into()))
        );
    }

    #[test]
    fn query_params_decode() {
        let q = Some("alt=sse&key=a%2Bb&flag");
        assert_eq!(query_param(q, "alt").as_deref(), Some("sse"));
        assert_eq!(query_param(q, "key").as_deref(), Some("a+b"));
        assert_eq!(query_param(q, "flag").as_deref(), Some(""));
        assert_eq!(query_param(q, "nope"), None);
        assert_eq!(query_param(None, "alt"), None);
        assert_eq!(percent_decode("%zz%4"), "%zz%4");
    }
}
