//! Parameter sweeps: one policy, a grid of values for any numeric setting, every
//! point run on the same traffic across all cores, and the Pareto front of success
//! against p95 latency against dollars.

use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};

use serde::Serialize;

use crate::engine::{EngineError, run_policy};
use crate::measure::PolicyReport;
use crate::policy::PolicySetup;
use crate::scenario::Scenario;

/// One swept setting: a dotted path into the policy (`route.backoff.base_ms`,
/// `registry.budget.ratio`, `route.step.0.attempts`) and the values to try.
#[derive(Clone, Debug, PartialEq)]
pub struct Param {
    /// Where the value goes.
    pub path: String,
    /// The values.
    pub values: Vec<f64>,
}

impl Param {
    /// Parses `path=v1,v2,…`.
    pub fn parse(text: &str) -> Result<Param, String> {
        let (path, values) = text
            .split_once('=')
            .ok_or_else(|| format!("expected path=v1,v2,…, found {text:?}"))?;
        let values = values
            .split(',')
            .map(|v| {
                v.trim()
                    .parse::<f64>()
                    .map_err(|_| format!("{path}: {v:?} is not a number"))
            })
            .collect::<Result<Vec<_>, _>>()?;
        if values.is_empty() || !(path.starts_with("route.") || path.starts_with("registry.")) {
            return Err(format!(
                "{path}: the path must start with route. or registry. and have values"
            ));
        }
        Ok(Param {
            path: path.to_owned(),
            values,
        })
    }
}

/// One grid point's result.
#[derive(Clone, Debug, Serialize)]
pub struct Point {
    /// The values, in `Param` order.
    pub values: Settings,
    /// The measures.
    pub report: PolicyReport,
    /// Whether no other point is at least as good on success, p95 and dollars, and
    /// better on one.
    pub pareto: bool,
}

/// Why a sweep could not run.
#[derive(Debug, thiserror::Error)]
pub enum SweepError {
    /// A value does not fit its setting.
    #[error("{0}")]
    Param(String),
    /// A run failed.
    #[error(transparent)]
    Engine(#[from] EngineError),
}

/// The settings of one grid point, as `(path, value)` pairs.
pub type Settings = Vec<(String, f64)>;

/// The grid's settings, one per point (the cartesian product, first parameter slowest).
pub fn grid(
    base: &PolicySetup,
    params: &[Param],
) -> Result<Vec<(Settings, PolicySetup)>, SweepError> {
    let mut points = vec![(Vec::new(), base.clone())];
    for param in params {
        let mut next = Vec::with_capacity(points.len() * param.values.len());
        for (values, setup) in &points {
            for &v in &param.values {
                let mut values = values.clone();
                values.push((param.path.clone(), v));
                let mut setup = apply(setup, &param.path, v).map_err(SweepError::Param)?;
                setup.name = values
                    .iter()
                    .map(|(p, v)| format!("{p}={v}"))
                    .collect::<Vec<_>>()
                    .join(" ");
                next.push((values, setup));
            }
        }
        points = next;
    }
    Ok(points)
}

/// Runs every grid point on `threads` threads, calling `progress(done, total)` as points
/// finish; results come back in grid order, so the output does not depend on timing.
pub fn sweep(
    scenario: &Scenario,
    base: &PolicySetup,
    params: &[Param],
    threads: usize,
    progress: &(dyn Fn(usize, usize) + Sync),
) -> Result<Vec<Point>, SweepError> {
    let points = grid(base, params)?;
    let total = points.len();
    let next = AtomicUsize::new(0);
    let done = AtomicUsize::new(0);
    let results: Mutex<Vec<Option<Result<PolicyReport, EngineError>>>> =
        Mutex::new((0..total).map(|_| None).collect());
    std::thread::scope(|s| {
        for _ in 0..threads.max(1) {
            s.spawn(|| {
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    let Some((_, setup)) = points.get(i) else {
                        break;
                    };
                    let report = run_policy(scenario, setup).map(|run| run.report);
                    if let Ok(mut results) = results.lock() {
                        results[i] = Some(report);
                    }
                    progress(done.fetch_add(1, Ordering::Relaxed) + 1, total);
                }
            });
        }
    });
    let results = results
        .into_inner()
        .map_err(|_| SweepError::Param("a sweep thread panicked".to_owned()))?;
    let mut out = Vec::with_capacity(total);
    for ((values, _), report) in points.into_iter().zip(results) {
        let report =
            report.ok_or_else(|| SweepError::Param("a grid point did not run".to_owned()))??;
        out.push(Point {
            values,
            report,
            pareto: false,
        });
    }
    mark_pareto(&mut out);
    Ok(out)
}

/// Marks the points no other point dominates (success higher is better; p95 and
/// dollars per 1,000 lower are better).
pub fn mark_pareto(points: &mut [Point]) {
    let keys: Vec<(f64, f64, f64)> = points
        .iter()
        .map(|p| {
            (
                p.report.shares.success,
                p.report.latency_ms.p95,
                p.report.dollars_per_1k,
            )
        })
        .collect();
    for (i, point) in points.iter_mut().enumerate() {
        let a = keys[i];
        point.pareto = !keys.iter().enumerate().any(|(j, b)| {
            j != i
                && b.0 >= a.0
                && b.1 <= a.1
                && b.2 <= a.2
                && (b.0 > a.0 || b.1 < a.1 || b.2 < a.2)
        });
    }
}

/// `setup` with the number at `path` set to `value`.
fn apply(setup: &PolicySetup, path: &str, value: f64) -> Result<PolicySetup, String> {
    let (root, rest) = path
        .split_once('.')
        .ok_or_else(|| format!("{path}: no field"))?;
    let mut out = setup.clone();
    match root {
        "route" => {
            out.route = set(&setup.route, rest, value).map_err(|e| format!("{path}: {e}"))?
        }
        "registry" => {
            out.registry = set(&setup.registry, rest, value).map_err(|e| format!("{path}: {e}"))?
        }
        _ => {
            return Err(format!(
                "{path}: the path must start with route. or registry."
            ));
        }
    }
    Ok(out)
}

fn set<T: Serialize + serde::de::DeserializeOwned>(
    config: &T,
    path: &str,
    value: f64,
) -> Result<T, String> {
    let mut root = toml::Value::try_from(config).map_err(|e| e.to_string())?;
    let mut at = &mut root;
    for key in path.split('.') {
        at = match at {
            toml::Value::Table(t) => t
                .get_mut(key)
                .ok_or_else(|| format!("no setting {key:?}"))?,
            toml::Value::Array(a) => key
                .parse::<usize>()
                .ok()
                .and_then(|i| a.get_mut(i))
                .ok_or_else(|| format!("no element {key:?}"))?,
            _ => return Err(format!("{key:?} is inside a number")),
        };
    }
    *at = match at {
        toml::Value::Integer(_) if value.fract() == 0.0 && value >= 0.0 => {
            toml::Value::Integer(value as i64)
        }
        toml::Value::Integer(_) => return Err(format!("{value} is not a whole number")),
        toml::Value::Float(_) => toml::Value::Float(value),
        _ => return Err("not a number".to_owned()),
    };
    T::deserialize(root).map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scenario::{Preset, Scenario};

    #[test]
    fn grid_sets_nested_numbers() {
        let scenario = Scenario::default_storm();
        let base = PolicySetup::preset(&scenario, Preset::Breakwater, "breakwater");
        let params = [
            Param::parse("route.backoff.base_ms=100,400").unwrap(),
            Param::parse("registry.budget.ratio=0.05,0.2").unwrap(),
        ];
        let grid = grid(&base, &params).unwrap();
        assert_eq!(grid.len(), 4);
        assert_eq!(
            grid[1].1.route.backoff.base,
            std::time::Duration::from_millis(100)
        );
        assert!(matches!(
            grid[1].1.registry.budget,
            Some(breakwater_core::BudgetConfig::Ratio(r)) if r.ratio == 0.2
        ));
        assert_eq!(
            grid[3].0,
            vec![
                ("route.backoff.base_ms".to_owned(), 400.0),
                ("registry.budget.ratio".to_owned(), 0.2)
            ]
        );
        assert!(Param::parse("route.backoff.base_ms=fast").is_err());
        assert!(grid_err(&base, "route.nothing=1").contains("no setting"));
        assert!(grid_err(&base, "route.backoff.base_ms=1.5").contains("whole number"));
    }

    fn grid_err(base: &PolicySetup, param: &str) -> String {
        grid(base, &[Param::parse(param).unwrap()])
            .unwrap_err()
            .to_string()
    }
}
