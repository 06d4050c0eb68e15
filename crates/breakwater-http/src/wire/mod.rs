//! Provider wire formats, as pure functions: no networking and no policy.
//!
//! Each provider module follows that provider's published API reference and exposes the
//! same five things: `render` (a [`Request`] into a [`RenderedRequest`]), `auth_header`
//! (the API key, kept out of the rendered request and out of `Debug`), `parse_response`
//! (a 2xx body into a [`Completion`]), `parse_error` (any error body into a
//! [`ProviderError`], never failing) and a `StreamDecoder` (SSE events into
//! [`StreamItem`]s). [`Provider`] picks one at run time.
//!
//! Provider error strings are kept exactly as sent (`overloaded_error`,
//! `insufficient_quota`, `RESOURCE_EXHAUSTED`): what they mean is the core's business.

pub mod anthropic;
mod body;
pub mod gemini;
pub mod openai;
mod request;
mod response;
mod typed;

pub use request::{
    AuthHeader, Message, PromptVariant, PromptVariants, RenderedRequest, Request, Role,
};
pub use response::{Completion, ProviderError, StreamItem, TokenUsage, WireError};

use crate::sse::SseEvent;

/// The providers this crate speaks to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Provider {
    /// Anthropic's Messages API ([`anthropic`]).
    Anthropic,
    /// OpenAI's Chat Completions API ([`openai`]).
    OpenAi,
    /// Google's Gemini API ([`gemini`]).
    Gemini,
}

impl Provider {
    /// A short, stable, lower-case name: `anthropic`, `openai` or `gemini`.
    #[must_use]
    pub fn name(self) -> &'static str {
        match self {
            Self::Anthropic => "anthropic",
            Self::OpenAi => "openai",
            Self::Gemini => "gemini",
        }
    }

    /// Renders `request` for `model`, with `variant`'s prompt if the route step names one.
    #[must_use]
    pub fn render(
        self,
        request: &Request,
        model: &str,
        variant: Option<&PromptVariant>,
        stream: bool,
    ) -> RenderedRequest {
        match self {
            Self::Anthropic => anthropic::render(request, model, variant, stream),
            Self::OpenAi => openai::render(request, model, variant, stream),
            Self::Gemini => gemini::render(request, model, variant, stream),
        }
    }

    /// The authentication header carrying `api_key`.
    #[must_use]
    pub fn auth_header(self, api_key: &str) -> AuthHeader {
        match self {
            Self::Anthropic => anthropic::auth_header(api_key),
            Self::OpenAi => openai::auth_header(api_key),
            Self::Gemini => gemini::auth_header(api_key),
        }
    }

    /// Parses a successful (2xx) non-streaming response body.
    ///
    /// # Errors
    ///
    /// As the provider module's `parse_response`: [`WireError::Malformed`] or
    /// [`WireError::ErrorBody`].
    pub fn parse_response(self, body: &[u8]) -> Result<Completion, WireError> {
        match self {
            Self::Anthropic => anthropic::parse_response(body),
            Self::OpenAi => openai::parse_response(body),
            Self::Gemini => gemini::parse_response(body),
        }
    }

    /// Reads an error response body; never fails.
    #[must_use]
    pub fn parse_error(self, status: u16, body: &[u8]) -> ProviderError {
        match self {
            Self::Anthropic => anthropic::parse_error(status, body),
            Self::OpenAi => openai::parse_error(status, body),
            Self::Gemini => gemini::parse_error(status, body),
        }
    }

    /// A decoder for one streamed response.
    #[must_use]
    pub fn stream_decoder(self) -> StreamDecoder {
        match self {
            Self::Anthropic => StreamDecoder::Anthropic(anthropic::StreamDecoder::new()),
            Self::OpenAi => StreamDecoder::OpenAi(openai::StreamDecoder::new()),
            Self::Gemini => StreamDecoder::Gemini(gemini::StreamDecoder::new()),
        }
    }
}

/// Any provider's stream decoder.
///
/// Feed it every SSE event of one response with [`decode`](Self::decode), then call
/// [`finish`](Self::finish) when the body ends.
#[derive(Debug, Clone)]
pub enum StreamDecoder {
    /// Anthropic's.
    Anthropic(anthropic::StreamDecoder),
    /// OpenAI's.
    OpenAi(openai::StreamDecoder),
    /// Gemini's.
    Gemini(gemini::StreamDecoder),
}

impl StreamDecoder {
    /// Decodes one event into one or more items (`[Ignored]` when it carries nothing).
    ///
    /// # Errors
    ///
    /// [`WireError::Malformed`] for data that is not the provider's JSON;
    /// [`WireError::InvalidUtf8`] for an event flagged [`SseEvent::lossy`].
    pub fn decode(&mut self, event: &SseEvent) -> Result<Vec<StreamItem>, WireError> {
        match self {
            Self::Anthropic(d) => d.decode(event),
            Self::OpenAi(d) => d.decode(event),
            Self::Gemini(d) => d.decode(event),
        }
    }

    /// Ends the stream. `Ok(Some(Done))` only for Gemini, which has no end marker of its
    /// own; `Ok(None)` when the end marker or an error event was already decoded.
    ///
    /// # Errors
    ///
    /// [`WireError::Incomplete`] when the body ended before the provider said it was done.
    pub fn finish(&mut self) -> Result<Option<StreamItem>, WireError> {
        match self {
            Self::Anthropic(d) => d.finish(),
            Self::OpenAi(d) => d.finish(),
            Self::Gemini(d) => d.finish(),
        }
    }
}
