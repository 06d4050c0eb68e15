//! Output validators: a fallback that answers in the wrong shape is worse than a
//! visible failure, so a route (or one of its steps) can name a validator that every
//! answer must pass.
//!
//! An answer that fails is reported to the plan as
//! [`Outcome::InvalidOutput`](breakwater_core::Outcome::InvalidOutput): it was billed,
//! it is recorded in the history and counts towards the step's attempts, and by default
//! the plan asks the same step once more and then moves to the next step (whose prompt
//! variant may format better). Breakers do not count it as a fault.
//!
//! | validator | passes when |
//! |---|---|
//! | `json` (built in) | the text parses as JSON |
//! | [`Validator::json_schema`] | the text parses as JSON that matches the schema |
//! | [`Validator::custom`] | your function says so |
//!
//! Routes name validators (`validator = "ticket"` on the route or on a step); the
//! client's builder registers them under those names
//! ([`ClientBuilder::validator`](crate::ClientBuilder::validator)). Streams are not
//! validated: their text reaches the caller as it comes.
//!
//! ```
//! use breakwater_http::validate::Validator;
//!
//! let ticket = Validator::json_schema(&serde_json::json!({
//!     "type": "object",
//!     "required": ["title", "priority"],
//!     "properties": { "priority": { "enum": ["low", "high"] } }
//! }))?;
//! assert!(ticket.check(r#"{"title": "Disk full", "priority": "high"}"#).is_ok());
//! assert!(ticket.check(r#"{"title": "Disk full", "priority": "urgent"}"#).is_err());
//! assert!(ticket.check("Sure! Here is your ticket: ...").is_err());
//! # Ok::<(), breakwater_http::validate::SchemaError>(())
//! ```

use std::fmt;
use std::sync::Arc;

/// A check of an answer's text: `Err` says what is wrong.
type Check = dyn Fn(&str) -> Result<(), String> + Send + Sync;

/// A check an answer's text must pass. Cheap to clone.
#[derive(Clone)]
pub struct Validator {
    kind: &'static str,
    check: Arc<Check>,
}

/// Why an answer failed its validator.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("output failed the {validator} validator: {reason}")]
pub struct Invalid {
    /// The validator's kind (`json`, `json_schema`, `custom`).
    pub validator: &'static str,
    /// What was wrong, cut to a couple of hundred characters.
    pub reason: String,
}

/// A JSON Schema that could not be compiled.
#[derive(Debug, thiserror::Error)]
#[error("invalid JSON Schema: {0}")]
pub struct SchemaError(String);

impl Validator {
    /// Passes text that parses as JSON (any value; surrounding whitespace allowed).
    #[must_use]
    pub fn json() -> Validator {
        Validator {
            kind: "json",
            check: Arc::new(|text| {
                serde_json::from_str::<serde::de::IgnoredAny>(text)
                    .map(|_| ())
                    .map_err(|e| e.to_string())
            }),
        }
    }

    /// Passes text that parses as JSON and matches `schema` (drafts 4 to 2020-12, as
    /// the schema's `$schema` says; remote `$ref`s are not fetched).
    ///
    /// # Errors
    ///
    /// [`SchemaError`] if `schema` is not a valid schema.
    pub fn json_schema(schema: &serde_json::Value) -> Result<Validator, SchemaError> {
        let compiled = jsonschema::validator_for(schema).map_err(|e| SchemaError(e.to_string()))?;
        Ok(Validator {
            kind: "json_schema",
            check: Arc::new(move |text| {
                let value: serde_json::Value =
                    serde_json::from_str(text).map_err(|e| format!("not JSON: {e}"))?;
                match compiled.iter_errors(&value).next() {
                    None => Ok(()),
                    Some(error) => Err(format!("at {}: {error}", error.instance_path())),
                }
            }),
        })
    }

    /// Passes text that `check` accepts; its `Err` says why not.
    pub fn custom(check: impl Fn(&str) -> Result<(), String> + Send + Sync + 'static) -> Validator {
        Validator {
            kind: "custom",
            check: Arc::new(check),
        }
    }

    /// Checks `text`.
    ///
    /// # Errors
    ///
    /// [`Invalid`] with the reason, cut to a bounded excerpt.
    pub fn check(&self, text: &str) -> Result<(), Invalid> {
        (self.check)(text).map_err(|reason| Invalid {
            validator: self.kind,
            reason: crate::quote::bound(reason),
        })
    }

    /// The validator's kind: `json`, `json_schema` or `custom`.
    #[must_use]
    pub fn kind(&self) -> &'static str {
        self.kind
    }
}

impl fmt::Debug for Validator {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("Validator").field(&self.kind).finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_accepts_any_json_value_and_nothing_else() {
        let json = Validator::json();
        for ok in [
            "{}",
            " [1, 2] ",
            "\"text\"",
            "3.5",
            "null",
            "{\"a\": {\"b\": []}}\n",
        ] {
            assert!(json.check(ok).is_ok(), "{ok:?}");
        }
        for bad in [
            "",
            "Sure! {\"a\": 1}",
            "{\"a\": 1",
            "```json\n{}\n```",
            "{} {}",
        ] {
            let err = json.check(bad).unwrap_err();
            assert_eq!(err.validator, "json", "{bad:?}");
        }
    }

    #[test]
    fn a_schema_checks_shape_and_names_the_place() {
        let schema = serde_json::json!({
            "type": "object",
            "required": ["items"],
            "properties": { "items": { "type": "array", "items": { "type": "integer" } } }
        });
        let v = Validator::json_schema(&schema).unwrap();
        assert!(v.check(r#"{"items": [1, 2, 3]}"#).is_ok());
        let err = v.check(r#"{"items": [1, "two"]}"#).unwrap_err();
        assert_eq!(err.validator, "json_schema");
        assert!(err.reason.contains("/items/1"), "{}", err.reason);
        assert!(v.check(r#"{"item": []}"#).is_err());
        assert!(
            v.check("not json")
                .unwrap_err()
                .reason
                .starts_with("not JSON")
        );
    }

    #[test]
    fn an_invalid_schema_is_refused_at_build() {
        let schema = serde_json::json!({ "type": "no-such-type" });
        assert!(Validator::json_schema(&schema).is_err());
    }

    #[test]
    fn custom_reasons_are_cut_short_on_a_char_boundary() {
        let v = Validator::custom(|text| Err(format!("bad: {text}")));
        let err = v.check(&"é".repeat(5000)).unwrap_err();
        // Reasons may quote the output: cut to a bounded excerpt, marked.
        assert!(
            err.reason.len() <= crate::quote::QUOTE_LIMIT + 32,
            "{}",
            err.reason
        );
        assert!(err.reason.ends_with("[cut: 10005 bytes]"), "{}", err.reason);
        assert_eq!(format!("{v:?}"), "Validator(\"custom\")");
    }
}
