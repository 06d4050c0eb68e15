//! How the Redis store is reached and how often it is asked.

use std::time::Duration;

use breakwater_core::fleet::{FleetConfig, FleetConfigError};
use breakwater_core::time::serde_ms;
use serde::{Deserialize, Serialize};

/// Settings of a [`FleetSync`](crate::FleetSync).
///
/// ```toml
/// url = "redis://127.0.0.1:6379/"
/// namespace = "default"
/// op_timeout_ms = 20
/// scan_ms = 10
/// reconnect_min_ms = 50
/// reconnect_max_ms = 2000
/// record_ttl_ms = 86400000
/// [fleet]
/// staleness_ms = 100
/// ```
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RedisFleetConfig {
    /// The Redis server (`redis://host:port/db`, with a password if needed). RESP3 is
    /// used whatever the URL says (pub/sub shares the connection).
    pub url: String,
    /// Keeps fleets apart on one Redis: part of every name (see [`Layout`](crate::Layout)).
    /// Not empty, no `:`.
    pub namespace: String,
    /// This replica's id, unique in the fleet; `None` derives one from the process id
    /// and the wall clock at start.
    pub replica_id: Option<u64>,
    /// What is shared and how stale it may get.
    pub fleet: FleetConfig,
    /// The bound on every Redis operation; past it the operation counts as failed and
    /// the replica carries on with local state. Default 20 ms.
    #[serde(rename = "op_timeout_ms", with = "serde_ms")]
    pub op_timeout: Duration,
    /// How often local breakers are looked at for transitions to publish. Default 10 ms.
    #[serde(rename = "scan_ms", with = "serde_ms")]
    pub scan: Duration,
    /// The first wait before trying a lost store again (doubling). Default 50 ms.
    #[serde(rename = "reconnect_min_ms", with = "serde_ms")]
    pub reconnect_min: Duration,
    /// The longest wait between tries. Default 2 s.
    #[serde(rename = "reconnect_max_ms", with = "serde_ms")]
    pub reconnect_max: Duration,
    /// How long a breaker record outlives its last write. Default 24 h.
    #[serde(rename = "record_ttl_ms", with = "serde_ms")]
    pub record_ttl: Duration,
}

impl Default for RedisFleetConfig {
    /// Redis on localhost, namespace `default`, the fleet defaults, 20 ms per
    /// operation, a 10 ms scan, reconnecting after 50 ms doubling up to 2 s.
    fn default() -> RedisFleetConfig {
        RedisFleetConfig {
            url: "redis://127.0.0.1:6379/".to_owned(),
            namespace: "default".to_owned(),
            replica_id: None,
            fleet: FleetConfig::default(),
            op_timeout: Duration::from_millis(20),
            scan: Duration::from_millis(10),
            reconnect_min: Duration::from_millis(50),
            reconnect_max: Duration::from_secs(2),
            record_ttl: Duration::from_secs(24 * 60 * 60),
        }
    }
}

/// A setting that cannot work.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// The namespace is empty or holds `:`.
    #[error("namespace must be non-empty and hold no ':', got {0:?}")]
    Namespace(String),
    /// A duration that must be positive is zero (the field is named).
    #[error("{0} must be at least 1 ms")]
    Zero(&'static str),
    /// `reconnect_max_ms` is below `reconnect_min_ms`.
    #[error("reconnect_max_ms must be at least reconnect_min_ms")]
    Reconnect,
    /// The fleet settings.
    #[error("fleet: {0}")]
    Fleet(FleetConfigError),
}

impl RedisFleetConfig {
    /// Checks the settings (the URL is checked when the client is made).
    pub fn validate(&self) -> Result<(), ConfigError> {
        if self.namespace.is_empty() || self.namespace.contains(':') {
            return Err(ConfigError::Namespace(self.namespace.clone()));
        }
        for (name, span) in [
            ("op_timeout_ms", self.op_timeout),
            ("scan_ms", self.scan),
            ("reconnect_min_ms", self.reconnect_min),
            ("record_ttl_ms", self.record_ttl),
        ] {
            if span < Duration::from_millis(1) {
                return Err(ConfigError::Zero(name));
            }
        }
        if self.reconnect_max < self.reconnect_min {
            return Err(ConfigError::Reconnect);
        }
        self.fleet.validate().map_err(ConfigError::Fleet)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_validate_and_bad_settings_are_named() {
        assert_eq!(RedisFleetConfig::default().validate(), Ok(()));
        let bad = |f: fn(&mut RedisFleetConfig)| {
            let mut c = RedisFleetConfig::default();
            f(&mut c);
            c.validate().unwrap_err().to_string()
        };
        assert!(bad(|c| c.namespace = "a:b".into()).contains("namespace"));
        assert!(bad(|c| c.namespace = String::new()).contains("namespace"));
        assert!(bad(|c| c.op_timeout = Duration::ZERO).contains("op_timeout_ms"));
        assert!(bad(|c| c.reconnect_max = Duration::from_millis(1)).contains("reconnect_max_ms"));
        assert!(bad(|c| c.fleet.staleness = Duration::ZERO).contains("staleness_ms"));
    }

    #[test]
    fn reads_toml_and_refuses_unknown_fields() {
        let config: RedisFleetConfig = toml::from_str(
            "namespace = \"prod\"\nop_timeout_ms = 15\n[fleet]\nstaleness_ms = 50\n",
        )
        .unwrap();
        assert_eq!(config.namespace, "prod");
        assert_eq!(config.op_timeout, Duration::from_millis(15));
        assert_eq!(config.fleet.staleness, Duration::from_millis(50));
        assert!(toml::from_str::<RedisFleetConfig>("op_timeout = 15").is_err());
    }
}
