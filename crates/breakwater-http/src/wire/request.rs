//! The provider-neutral request, prompt variants, and a rendered HTTP request.

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Serialize};

/// Who said a message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// The caller (the user turn).
    User,
    /// The model (an earlier answer, for multi-turn conversations).
    Assistant,
}

/// One turn of the conversation.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Message {
    /// Who said it.
    pub role: Role,
    /// What was said.
    pub content: String,
}

/// A provider-neutral text request, rendered for a provider by [`Provider::render`].
///
/// It serializes (serde) as plain JSON, field names as here; the durable queue stores
/// it that way. Missing fields take their defaults.
///
/// [`Provider::render`]: super::Provider::render
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct Request {
    /// The default system prompt, used when a route step names no prompt variant.
    pub system: Option<String>,
    /// The conversation, oldest first; normally it ends with a user turn.
    pub messages: Vec<Message>,
    /// The most tokens the model may generate.
    pub max_tokens: u32,
    /// Sampling temperature; `None` leaves the provider's default. A non-finite value is
    /// not sent.
    pub temperature: Option<f32>,
    /// Sequences that stop generation.
    pub stop: Vec<String>,
    /// Caller metadata. Only Anthropic takes any: its `user_id` key becomes
    /// `metadata.user_id`. Other keys, and other providers, send nothing.
    pub metadata: BTreeMap<String, String>,
}

impl Request {
    /// An empty request that may generate up to `max_tokens` tokens.
    #[must_use]
    pub fn new(max_tokens: u32) -> Self {
        Self {
            max_tokens,
            ..Self::default()
        }
    }

    /// Sets the default system prompt.
    #[must_use]
    pub fn system(mut self, system: impl Into<String>) -> Self {
        self.system = Some(system.into());
        self
    }

    /// Appends a user turn.
    #[must_use]
    pub fn user(mut self, content: impl Into<String>) -> Self {
        self.messages.push(Message {
            role: Role::User,
            content: content.into(),
        });
        self
    }

    /// Appends an assistant turn.
    #[must_use]
    pub fn assistant(mut self, content: impl Into<String>) -> Self {
        self.messages.push(Message {
            role: Role::Assistant,
            content: content.into(),
        });
        self
    }
}

/// A prompt tuned for one model family.
///
/// Rendering a step that names a variant uses the variant's system prompt *instead of*
/// the request's default: a prompt tuned for one family is replaced, never reused. A
/// variant whose `system` is `None` sends no system prompt at all. The prefix and suffix
/// wrap the content of the last user turn only (the current question); earlier turns are
/// sent as they are.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct PromptVariant {
    /// The system prompt for this variant.
    pub system: Option<String>,
    /// Text put before the last user turn's content.
    pub user_prefix: Option<String>,
    /// Text put after the last user turn's content.
    pub user_suffix: Option<String>,
}

impl PromptVariant {
    /// A variant that only replaces the system prompt.
    #[must_use]
    pub fn with_system(system: impl Into<String>) -> Self {
        Self {
            system: Some(system.into()),
            ..Self::default()
        }
    }
}

/// Prompt variants by id; a route step names the id of the one it renders with.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct PromptVariants {
    variants: BTreeMap<String, PromptVariant>,
}

impl PromptVariants {
    /// No variants.
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds or replaces the variant `id`, returning the one it replaced.
    pub fn insert(
        &mut self,
        id: impl Into<String>,
        variant: PromptVariant,
    ) -> Option<PromptVariant> {
        self.variants.insert(id.into(), variant)
    }

    /// The variant `id`, if there is one.
    #[must_use]
    pub fn get(&self, id: &str) -> Option<&PromptVariant> {
        self.variants.get(id)
    }

    /// The ids, in order.
    pub fn ids(&self) -> impl Iterator<Item = &str> {
        self.variants.keys().map(String::as_str)
    }
}

impl<K: Into<String>> FromIterator<(K, PromptVariant)> for PromptVariants {
    fn from_iter<I: IntoIterator<Item = (K, PromptVariant)>>(iter: I) -> Self {
        Self {
            variants: iter.into_iter().map(|(k, v)| (k.into(), v)).collect(),
        }
    }
}

/// An HTTP request ready to send: always a `POST` of a JSON body.
///
/// It never holds the API key: the client adds [`AuthHeader`] itself, marked sensitive.
#[derive(Clone, PartialEq, Eq)]
pub struct RenderedRequest {
    /// The path and query to append to the provider's base URL; it starts with `/`.
    pub path: String,
    /// Headers other than authentication, names in lower case.
    pub headers: Vec<(&'static str, String)>,
    /// The JSON body.
    pub body: Vec<u8>,
}

impl fmt::Debug for RenderedRequest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RenderedRequest")
            .field("path", &self.path)
            .field("headers", &self.headers)
            .field("body", &String::from_utf8_lossy(&self.body))
            .finish()
    }
}

/// The header that carries an API key. Its `Debug` output never shows the key.
#[derive(Clone, PartialEq, Eq)]
pub struct AuthHeader {
    name: &'static str,
    value: String,
}

impl AuthHeader {
    pub(crate) fn new(name: &'static str, value: String) -> Self {
        Self { name, value }
    }

    /// The header name, in lower case.
    #[must_use]
    pub fn name(&self) -> &'static str {
        self.name
    }

    /// The header value, key included: mark it sensitive when building the HTTP header.
    #[must_use]
    pub fn value(&self) -> &str {
        &self.value
    }
}

impl fmt::Debug for AuthHeader {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AuthHeader")
            .field("name", &self.name)
            .field("value", &"<redacted>")
            .finish()
    }
}

/// The prompt as one provider should see it, after a variant is applied.
pub(crate) struct Prompt<'a> {
    /// The system prompt; `None` when absent or empty.
    pub(crate) system: Option<&'a str>,
    pub(crate) turns: Vec<(Role, Cow<'a, str>)>,
}

impl<'a> Prompt<'a> {
    pub(crate) fn new(request: &'a Request, variant: Option<&'a PromptVariant>) -> Self {
        let system = match variant {
            Some(variant) => variant.system.as_deref(),
            None => request.system.as_deref(),
        }
        .filter(|s| !s.is_empty());
        let last_user = request.messages.iter().rposition(|m| m.role == Role::User);
        let turns = request
            .messages
            .iter()
            .enumerate()
            .map(|(i, m)| {
                let content = match variant {
                    Some(v) if Some(i) == last_user => wrap(&m.content, v),
                    _ => Cow::Borrowed(m.content.as_str()),
                };
                (m.role, content)
            })
            .collect();
        Self { system, turns }
    }
}

fn wrap<'a>(content: &'a str, variant: &PromptVariant) -> Cow<'a, str> {
    match (&variant.user_prefix, &variant.user_suffix) {
        (None, None) => Cow::Borrowed(content),
        (prefix, suffix) => {
            let prefix = prefix.as_deref().unwrap_or("");
            let suffix = suffix.as_deref().unwrap_or("");
            Cow::Owned(format!("{prefix}{content}{suffix}"))
        }
    }
}
