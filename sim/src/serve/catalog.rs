//! Which scenario providers and models `serve` answers for, and how a request names one.
//!
//! Every `llm` and `flaky` provider of the scenario is served; `row` providers (a
//! database row, not a model API) are not. A request reaches a model either through
//! the root (`POST /v1/messages` with `"model": "claude-sonnet-4-5"`: the model name
//! must then belong to exactly one provider) or through the provider's prefix
//! (`POST /anthropic/v1/messages`: the model is looked up in that provider only).

use crate::scenario::{Limits, ProviderKind, Scenario};

/// A model that `serve` answers for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ServedModel {
    /// The scenario provider's name: also the path prefix of its base URL.
    pub provider: String,
    /// The model's name, as requests must send it.
    pub model: String,
    /// The provider's server model: `llm` or `flaky`.
    pub kind: &'static str,
}

/// Where a request goes: a served provider (its index among the served ones) and the
/// model's index in that provider's `models` (the model's key).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Target {
    pub(crate) slot: usize,
    pub(crate) model: u32,
}

/// Why a request names no served model; the message goes into the wire's error body.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Unroutable {
    /// No such provider prefix, or no such model (404).
    NotFound(String),
    /// The model name belongs to several providers and the path names none (400).
    Ambiguous(String),
}

#[derive(Clone, Debug)]
struct Entry {
    name: String,
    /// The provider's index in the scenario.
    index: usize,
    kind: &'static str,
    models: Vec<(String, Limits)>,
}

/// The served providers, in scenario order.
#[derive(Clone, Debug)]
pub(crate) struct Catalog {
    entries: Vec<Entry>,
    skipped: Vec<String>,
}

impl Catalog {
    /// The catalog of `scenario`.
    pub(crate) fn of(scenario: &Scenario) -> Catalog {
        let mut entries = Vec::new();
        let mut skipped = Vec::new();
        for (index, p) in scenario.providers.iter().enumerate() {
            let kind = match p.kind {
                ProviderKind::Llm(_) => "llm",
                ProviderKind::Flaky(_) => "flaky",
                ProviderKind::Row(_) => {
                    skipped.push(p.name.clone());
                    continue;
                }
            };
            entries.push(Entry {
                name: p.name.clone(),
                index,
                kind,
                models: p
                    .models
                    .iter()
                    .map(|m| (m.name.clone(), m.limits))
                    .collect(),
            });
        }
        Catalog { entries, skipped }
    }

    /// The scenario index of each served provider, by slot.
    pub(crate) fn scenario_indices(&self) -> impl Iterator<Item = usize> + '_ {
        self.entries.iter().map(|e| e.index)
    }

    /// The served provider names, by slot.
    pub(crate) fn names(&self) -> impl Iterator<Item = &str> {
        self.entries.iter().map(|e| e.name.as_str())
    }

    /// Providers of the scenario that are not served (`row` providers).
    pub(crate) fn skipped(&self) -> &[String] {
        &self.skipped
    }

    /// Every served model, in scenario order.
    pub(crate) fn models(&self) -> Vec<ServedModel> {
        self.entries
            .iter()
            .flat_map(|e| {
                e.models.iter().map(|(model, _)| ServedModel {
                    provider: e.name.clone(),
                    model: model.clone(),
                    kind: e.kind,
                })
            })
            .collect()
    }

    /// The per-minute limits of `target`'s key (for rate-limit headers).
    pub(crate) fn limits(&self, target: Target) -> Limits {
        self.entries
            .get(target.slot)
            .and_then(|e| e.models.get(target.model as usize))
            .map_or_else(Limits::default, |(_, limits)| *limits)
    }

    /// The model `model`, of the provider named `prefix` if the path gave one.
    pub(crate) fn resolve(&self, prefix: Option<&str>, model: &str) -> Result<Target, Unroutable> {
        let find = |slot: usize, e: &Entry| {
            e.models
                .iter()
                .position(|(name, _)| name == model)
                .map(|m| Target {
                    slot,
                    // A provider has far fewer than 2^32 models.
                    model: u32::try_from(m).unwrap_or(u32::MAX),
                })
        };
        if let Some(prefix) = prefix {
            let Some((slot, entry)) = self
                .entries
                .iter()
                .enumerate()
                .find(|(_, e)| e.name == prefix)
            else {
                return Err(Unroutable::NotFound(format!(
                    "no provider named `{prefix}` is served here (served: {})",
                    self.names().collect::<Vec<_>>().join(", ")
                )));
            };
            return find(slot, entry).ok_or_else(|| {
                Unroutable::NotFound(format!(
                    "model `{model}` is not a model of provider `{prefix}` (its models: {})",
                    entry
                        .models
                        .iter()
                        .map(|(m, _)| m.as_str())
                        .collect::<Vec<_>>()
                        .join(", ")
                ))
            });
        }
        let hits: Vec<Target> = self
            .entries
            .iter()
            .enumerate()
            .filter_map(|(slot, e)| find(slot, e))
            .collect();
        match hits.as_slice() {
            [one] => Ok(*one),
            [] => Err(Unroutable::NotFound(format!(
                "model `{model}` is not served here (served: {})",
                self.models()
                    .iter()
                    .map(|m| format!("{}/{}", m.provider, m.model))
                    .collect::<Vec<_>>()
                    .join(", ")
            ))),
            many => Err(Unroutable::Ambiguous(format!(
                "model `{model}` belongs to several providers ({}): send it to the provider's base URL, /<provider>/...",
                many.iter()
                    .filter_map(|t| self.entries.get(t.slot).map(|e| e.name.as_str()))
                    .collect::<Vec<_>>()
                    .join(", ")
            ))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SCENARIO: &str = r#"
        name = "catalog"
        seed = 1
        duration_s = 10
        policies = ["naive"]
        [[provider]]
        name = "anthropic"
        kind = "llm"
        rpm = 60
        [[provider.model]]
        name = "claude"
        [[provider.model]]
        name = "shared"
        [[provider]]
        name = "openai"
        kind = "llm"
        [[provider.model]]
        name = "gpt"
        [[provider.model]]
        name = "shared"
        [[provider]]
        name = "db"
        kind = "row"
        [[clients]]
        name = "c"
        kind = "open"
        rate_per_s = 1
    "#;

    #[test]
    fn models_resolve_by_name_or_by_prefix() {
        let scenario = Scenario::from_toml(SCENARIO).unwrap();
        let c = Catalog::of(&scenario);
        assert_eq!(c.skipped(), ["db"]);
        assert_eq!(c.models().len(), 4);
        assert_eq!(c.resolve(None, "claude"), Ok(Target { slot: 0, model: 0 }));
        assert_eq!(c.resolve(None, "gpt"), Ok(Target { slot: 1, model: 0 }));
        assert_eq!(
            c.resolve(Some("openai"), "shared"),
            Ok(Target { slot: 1, model: 1 })
        );
        assert_eq!(c.limits(Target { slot: 0, model: 0 }).rpm, Some(60.0));
        assert!(
            matches!(c.resolve(None, "shared"), Err(Unroutable::Ambiguous(m)) if m.contains("anthropic, openai"))
        );
        assert!(matches!(
            c.resolve(None, "nope"),
            Err(Unroutable::NotFound(_))
        ));
        assert!(
            matches!(c.resolve(Some("openai"), "claude"), Err(Unroutable::NotFound(m)) if m.contains("gpt, shared"))
        );
        assert!(matches!(
            c.resolve(Some("db"), "default"),
            Err(Unroutable::NotFound(_))
        ));
    }
}
