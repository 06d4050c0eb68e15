//! For tests of the configuration errors' `path`: whether a path names a value that
//! a configuration, written out, holds.

use serde::Serialize;

/// Whether `path` (keys joined by `.`, `step[1]` for an array element) names a value
/// in `config` as written in TOML.
pub(crate) fn written(config: &impl Serialize, path: &str) -> bool {
    let root = toml::Value::try_from(config).expect("a configuration serializes");
    path.split('.')
        .try_fold(&root, |value, segment| match segment.split_once('[') {
            Some((key, index)) => {
                let index: usize = index.trim_end_matches(']').parse().ok()?;
                value.get(key)?.get(index)
            }
            None => value.get(segment),
        })
        .is_some()
}
