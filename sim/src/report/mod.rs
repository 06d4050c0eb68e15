//! Outputs from a set of [`PolicyReport`]s: a fixed-width table for people, JSON for
//! machines, CSV timelines and SVG plots.
//!
//! Output is deterministic: the same reports give byte-identical text. Floats are
//! printed with fixed precision in the table and CSV; the JSON keeps serde's field
//! order and serde_json's shortest round-trip float form.

mod describe;
mod svg;

use std::fmt::Write as _;

use serde::Serialize;

pub use describe::describe;
pub use svg::{Plot, svg_plots};

use crate::measure::{PolicyReport, Recovery};
use crate::scenario::Scenario;

/// What the reports are about.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Meta {
    /// The scenario's name.
    pub scenario: String,
    /// Its seed.
    pub seed: u64,
    /// How long clients sent, in seconds.
    pub duration_s: f64,
    /// The storm window in seconds, if any.
    pub storm_s: Option<(f64, f64)>,
}

impl Meta {
    /// The metadata of `scenario`.
    #[must_use]
    pub fn of(scenario: &Scenario) -> Meta {
        Meta {
            scenario: scenario.name.clone(),
            seed: scenario.seed,
            duration_s: scenario.duration.as_secs_f64(),
            storm_s: scenario
                .storm_window()
                .map(|(a, b)| (a.as_nanos() as f64 / 1e9, b.as_nanos() as f64 / 1e9)),
        }
    }

    fn headline(&self) -> String {
        let storm = match self.storm_s {
            Some((a, b)) => format!(", storm {a:.0}–{b:.0} s"),
            None => String::new(),
        };
        format!(
            "{} — seed {}, {:.0} s{storm}",
            self.scenario, self.seed, self.duration_s
        )
    }
}

const LABEL_WIDTH: usize = 20;

/// The table for people: one column per policy.
#[must_use]
pub fn table(meta: &Meta, reports: &[PolicyReport]) -> String {
    let widths: Vec<usize> = reports
        .iter()
        .map(|r| r.policy.chars().count().max(11) + 2)
        .collect();
    let mut out = String::new();
    let _ = writeln!(out, "{}", meta.headline());
    let mut row = |label: &str, cell: &dyn Fn(&PolicyReport) -> String| {
        let _ = write!(out, "{label:<LABEL_WIDTH$}");
        for (r, w) in reports.iter().zip(&widths) {
            let _ = write!(out, "{:>w$}", cell(r));
        }
        out.push('\n');
    };
    row("", &|r| r.policy.clone());
    row("requests", &|r| r.requests.to_string());
    row("success %", &|r| format!("{:.2}", r.shares.success * 100.0));
    row("degraded %", &|r| {
        format!("{:.2}", r.shares.degraded * 100.0)
    });
    row("queued %", &|r| format!("{:.2}", r.shares.queued * 100.0));
    row("failed %", &|r| format!("{:.2}", r.shares.failed * 100.0));
    row("attempts/request", &|r| {
        format!("{:.3}", r.attempts_per_request)
    });
    row("herd index", &|r| format!("{:.2}", r.herd_index));
    row("peak attempts/20ms", &|r| r.peak_attempts_20ms.to_string());
    row("latency p50 ms", &|r| format!("{:.1}", r.latency_ms.p50));
    row("latency p95 ms", &|r| format!("{:.1}", r.latency_ms.p95));
    row("latency p99 ms", &|r| format!("{:.1}", r.latency_ms.p99));
    row("latency max ms", &|r| format!("{:.1}", r.latency_ms.max));
    row("$ per 1k requests", &|r| format!("{:.4}", r.dollars_per_1k));
    row("retry $ share %", &|r| {
        format!("{:.2}", r.retry_cost_share * 100.0)
    });
    if malformed_seen(reports) {
        row("invalid outputs", &|r| {
            r.malformed_output.invalid_attempts.to_string()
        });
        row("invalid output $/1k", &|r| {
            format!("{:.4}", r.malformed_output.invalid_dollars_per_1k)
        });
        row("malformed deliv. %", &|r| {
            format!("{:.2}", r.malformed_output.delivered_share * 100.0)
        });
        row("malformed $/1k", &|r| {
            format!("{:.4}", r.malformed_output.delivered_dollars_per_1k)
        });
    }
    row("recovery", &|r| recovery_cell(r.recovery));
    out
}

/// Whether any policy saw malformed output: the table and CSV show its rows and
/// columns only then, so scenarios without it print as they always did.
fn malformed_seen(reports: &[PolicyReport]) -> bool {
    reports.iter().any(|r| r.malformed_output.any())
}

fn recovery_cell(r: Recovery) -> String {
    match r {
        Recovery::Recovered { after_s } => format!("{after_s:.1} s"),
        Recovery::NotRecovered => "no".to_owned(),
        Recovery::NoStorm | Recovery::NoBaseline => "n/a".to_owned(),
    }
}

#[derive(Serialize)]
struct Document<'a> {
    meta: &'a Meta,
    policies: &'a [PolicyReport],
}

/// The reports as pretty JSON: `{ "meta": …, "policies": [ … ] }`, keys in a fixed order.
#[must_use]
pub fn json(meta: &Meta, reports: &[PolicyReport]) -> String {
    // Plain structs, vectors and floats: serialization cannot fail (NaN becomes null).
    serde_json::to_string_pretty(&Document {
        meta,
        policies: reports,
    })
    .unwrap_or_default()
}

/// The timelines as CSV: one row per bucket per policy. Columns: `policy`,
/// `bucket_start_s`, `offered_per_s`, `capacity_per_s`, `success_rate`,
/// `retries_per_s`, then `offered_per_s.<provider>` and `capacity_per_s.<provider>`
/// for each provider. An unbounded capacity or a bucket without requests is empty.
/// When any policy saw malformed output, two more columns follow:
/// `invalid_outputs_per_s` and `malformed_delivered_per_s`.
#[must_use]
pub fn csv(reports: &[PolicyReport]) -> String {
    let malformed = malformed_seen(reports);
    let mut out = String::from(
        "policy,bucket_start_s,offered_per_s,capacity_per_s,success_rate,retries_per_s",
    );
    let providers: Vec<&str> = reports
        .first()
        .map(|r| {
            r.timeline
                .providers
                .iter()
                .map(|p| p.name.as_str())
                .collect()
        })
        .unwrap_or_default();
    for p in &providers {
        let _ = write!(
            out,
            ",{},{}",
            csv_field(&format!("offered_per_s.{p}")),
            csv_field(&format!("capacity_per_s.{p}"))
        );
    }
    if malformed {
        out.push_str(",invalid_outputs_per_s,malformed_delivered_per_s");
    }
    out.push('\n');
    for r in reports {
        let t = &r.timeline;
        let policy = csv_field(&r.policy);
        for i in 0..t.offered_per_s.len() {
            let _ = write!(
                out,
                "{policy},{:.3},{:.3},{},{},{:.3}",
                i as f64 * t.bucket_s,
                t.offered_per_s[i],
                opt(t.capacity_per_s.get(i).copied().flatten(), 3),
                opt(t.success_rate.get(i).copied().flatten(), 6),
                t.retries_per_s.get(i).copied().unwrap_or(0.0),
            );
            for j in 0..providers.len() {
                let p = t.providers.get(j);
                let offered = p.and_then(|p| p.offered_per_s.get(i).copied());
                let cap = p.and_then(|p| p.capacity_per_s.get(i).copied().flatten());
                let _ = write!(out, ",{},{}", opt(offered, 3), opt(cap, 3));
            }
            if malformed {
                let _ = write!(
                    out,
                    ",{:.3},{:.3}",
                    t.invalid_outputs_per_s.get(i).copied().unwrap_or(0.0),
                    t.malformed_delivered_per_s.get(i).copied().unwrap_or(0.0),
                );
            }
            out.push('\n');
        }
    }
    out
}

fn opt(v: Option<f64>, precision: usize) -> String {
    match v {
        Some(v) if v.is_finite() => format!("{v:.precision$}"),
        _ => String::new(),
    }
}

fn csv_field(s: &str) -> String {
    if s.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_owned()
    }
}

#[cfg(test)]
mod tests;
