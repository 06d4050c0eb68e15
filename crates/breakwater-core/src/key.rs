//! Keys that name what shared state belongs to.

use std::fmt;
use std::sync::Arc;

use serde::{Deserialize, Serialize};

/// A provider and model pair: the unit that has its own circuit breaker and
/// Retry-After cooldown (providers rate-limit per model).
///
/// Cloning is cheap (two reference-count increments); compare and hash by value.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Key {
    provider: Arc<str>,
    model: Arc<str>,
}

impl Key {
    /// The key for `model` at `provider`, e.g. `Key::new("anthropic", "claude-sonnet-4-5")`.
    #[must_use]
    pub fn new(provider: &str, model: &str) -> Key {
        Key {
            provider: Arc::from(provider),
            model: Arc::from(model),
        }
    }

    /// The provider's name, as configured (`"anthropic"`, `"openai"`, `"gemini"`, …).
    #[must_use]
    pub fn provider(&self) -> &str {
        &self.provider
    }

    /// The model's name at that provider.
    #[must_use]
    pub fn model(&self) -> &str {
        &self.model
    }
}

impl fmt::Display for Key {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.provider, self.model)
    }
}

impl fmt::Debug for Key {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Key({self})")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn displays_provider_slash_model() {
        let key = Key::new("anthropic", "claude-haiku-4-5");
        assert_eq!(key.to_string(), "anthropic/claude-haiku-4-5");
        assert_eq!(key.provider(), "anthropic");
        assert_eq!(key.model(), "claude-haiku-4-5");
        assert_eq!(key, key.clone());
    }
}
