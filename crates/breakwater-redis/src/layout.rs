//! Where things live in Redis: every name under `breakwater:v1:{namespace}:`.
//!
//! | what | name | type |
//! |---|---|---|
//! | a key's breaker record | `breakwater:v1:{ns}:breaker:{provider}/{model}` | hash: `v`, `epoch`, `state`, `until`, `cooldown`, `trips`, `probes`, `successes`, `lease` |
//! | a shared budget | `breakwater:v1:{ns}:budget:{scope}` (`*/*`, `{provider}/*` or `{provider}/{model}`) | hash: `v`, `cur`, `t:{window}`, `c:{replica}` |
//! | pushed changes | `breakwater:v1:{ns}:events` | pub/sub channel, one line per change |
//!
//! The `v1` in the names is the layout's version; the `v` field in each hash and the
//! first field of each message is the record format's
//! ([`FORMAT_VERSION`](breakwater_core::fleet::FORMAT_VERSION)).

use breakwater_core::Key;

/// The names of one namespace.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Layout {
    prefix: String,
}

impl Layout {
    /// The names under `namespace` (which may not be empty or hold `:`; the config
    /// checks it).
    #[must_use]
    pub fn new(namespace: &str) -> Layout {
        Layout {
            prefix: format!("breakwater:v1:{namespace}:"),
        }
    }

    /// The hash holding `key`'s breaker record.
    #[must_use]
    pub fn breaker(&self, key: &Key) -> String {
        format!("{}breaker:{key}", self.prefix)
    }

    /// The hash holding the budget shared under `scope` (as the registry names it).
    #[must_use]
    pub fn budget(&self, scope: &Key) -> String {
        format!("{}budget:{scope}", self.prefix)
    }

    /// The channel changes are pushed on.
    #[must_use]
    pub fn channel(&self) -> String {
        format!("{}events", self.prefix)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_namespaced() {
        let layout = Layout::new("prod");
        let key = Key::new("anthropic", "claude-sonnet-4-5");
        assert_eq!(
            layout.breaker(&key),
            "breakwater:v1:prod:breaker:anthropic/claude-sonnet-4-5"
        );
        assert_eq!(
            layout.budget(&Key::new("anthropic", "*")),
            "breakwater:v1:prod:budget:anthropic/*"
        );
        assert_eq!(layout.channel(), "breakwater:v1:prod:events");
    }
}
