//! The scenario file exactly as written: flat serde structs, strict about unknown keys.
//!
//! Kind-specific fields are `Option`s here (an internally tagged enum would buffer the
//! table and lose field paths and spans); `build` checks which ones a kind allows.

use serde::Deserialize;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawScenario {
    pub(crate) name: String,
    pub(crate) seed: u64,
    pub(crate) duration_s: f64,
    #[serde(default = "default_bucket_ms")]
    pub(crate) bucket_ms: u64,
    #[serde(default)]
    pub(crate) policies: Option<Vec<String>>,
    #[serde(default)]
    pub(crate) provider: Vec<RawProvider>,
    #[serde(default)]
    pub(crate) storm: Vec<RawStorm>,
    #[serde(default)]
    pub(crate) clients: Vec<RawClient>,
    #[serde(default)]
    pub(crate) policy: Vec<RawPolicy>,
}

fn default_bucket_ms() -> u64 {
    1000
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub(crate) enum RawProviderKind {
    Llm,
    Flaky,
    Row,
}

impl RawProviderKind {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            RawProviderKind::Llm => "llm",
            RawProviderKind::Flaky => "flaky",
            RawProviderKind::Row => "row",
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawProvider {
    pub(crate) name: String,
    pub(crate) kind: RawProviderKind,
    // llm
    pub(crate) rpm: Option<f64>,
    pub(crate) input_tpm: Option<f64>,
    pub(crate) output_tpm: Option<f64>,
    pub(crate) burst_s: Option<f64>,
    pub(crate) concurrency: Option<u32>,
    pub(crate) queue_limit: Option<u32>,
    pub(crate) overload_start: Option<u32>,
    pub(crate) overload_full: Option<u32>,
    pub(crate) ttft: Option<RawLogNormalMs>,
    pub(crate) per_token: Option<RawLogNormalMs>,
    // llm and flaky
    pub(crate) reject_ms: Option<f64>,
    // flaky
    pub(crate) failure_p: Option<f64>,
    pub(crate) status: Option<u16>,
    pub(crate) latency: Option<RawLogNormalMs>,
    // row
    pub(crate) network: Option<RawNetwork>,
    #[serde(default)]
    pub(crate) model: Vec<RawModel>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawModel {
    pub(crate) name: String,
    #[serde(default)]
    pub(crate) input_price: f64,
    #[serde(default)]
    pub(crate) output_price: f64,
    pub(crate) latency_factor: Option<f64>,
    pub(crate) rpm: Option<f64>,
    pub(crate) input_tpm: Option<f64>,
    pub(crate) output_tpm: Option<f64>,
    pub(crate) malformed_output: Option<f64>,
}

#[derive(Clone, Copy, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawLogNormalMs {
    pub(crate) median_ms: f64,
    #[serde(default)]
    pub(crate) sigma: f64,
}

#[derive(Clone, Copy, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawNetwork {
    #[serde(default = "default_hop_mean")]
    pub(crate) mean_ms: f64,
    #[serde(default = "default_hop_sd")]
    pub(crate) sd_ms: f64,
}

pub(crate) fn default_hop_mean() -> f64 {
    10.0
}

pub(crate) fn default_hop_sd() -> f64 {
    2.0
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub(crate) enum RawStormKind {
    Squeeze,
    Overload,
    Outage,
    Latency,
    Quota,
    LoadSpike,
}

impl RawStormKind {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            RawStormKind::Squeeze => "squeeze",
            RawStormKind::Overload => "overload",
            RawStormKind::Outage => "outage",
            RawStormKind::Latency => "latency",
            RawStormKind::Quota => "quota",
            RawStormKind::LoadSpike => "load_spike",
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub(crate) enum RawOutageMode {
    Connect,
    Timeout,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawStorm {
    pub(crate) name: Option<String>,
    pub(crate) kind: RawStormKind,
    pub(crate) provider: Option<String>,
    pub(crate) clients: Option<String>,
    pub(crate) from_s: f64,
    pub(crate) to_s: f64,
    pub(crate) factor: Option<f64>,
    pub(crate) p: Option<f64>,
    pub(crate) concurrency_factor: Option<f64>,
    pub(crate) mode: Option<RawOutageMode>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub(crate) enum RawClientKind {
    Open,
    Closed,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub(crate) enum RawTask {
    Interactive,
    Deferrable,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawClient {
    pub(crate) name: String,
    pub(crate) kind: RawClientKind,
    pub(crate) rate_per_s: Option<f64>,
    pub(crate) rate: Option<Vec<RawRateStep>>,
    pub(crate) workers: Option<u32>,
    pub(crate) think_ms: Option<f64>,
    #[serde(default = "one")]
    pub(crate) replicas: u32,
    pub(crate) task: Option<RawTask>,
    pub(crate) deferrable_share: Option<f64>,
    pub(crate) input_tokens: Option<RawTokens>,
    pub(crate) output_tokens: Option<RawTokens>,
    pub(crate) deadline_ms: Option<f64>,
    pub(crate) requests: Option<u64>,
    pub(crate) route: Option<String>,
}

fn one() -> u32 {
    1
}

#[derive(Clone, Copy, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawRateStep {
    pub(crate) at_s: f64,
    pub(crate) rate_per_s: f64,
}

#[derive(Clone, Copy, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawTokens {
    pub(crate) median: f64,
    #[serde(default)]
    pub(crate) sigma: f64,
    pub(crate) max: Option<u32>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub(crate) enum RawPreset {
    Naive,
    SdkDefault,
    Article,
    Breakwater,
    Custom,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawPolicy {
    pub(crate) name: String,
    pub(crate) preset: RawPreset,
    pub(crate) route: Option<toml::Table>,
    pub(crate) registry: Option<toml::Table>,
    pub(crate) plan: Option<toml::Table>,
    pub(crate) fleet: Option<toml::Table>,
}
