//! A plain-text description of a scenario: what will be simulated.

use std::fmt::Write as _;

use breakwater_core::Time;

use crate::provider::Server;
use crate::scenario::{Arrivals, Fault, OutageMode, ProviderKind, Scenario, StormTarget};
use crate::workload::OpenArrivals;

fn secs(t: Time) -> f64 {
    t.as_nanos() as f64 / 1e9
}

fn limit(v: Option<f64>) -> String {
    v.map_or_else(|| "∞".to_owned(), |v| format!("{v:.0}"))
}

fn capacity(v: Option<f64>) -> String {
    v.map_or_else(|| "unbounded".to_owned(), |v| format!("{v:.1} req/s"))
}

/// What `scenario` will simulate: providers with their capacity (calm and at each
/// storm's start), storms, clients with their expected request counts, policies.
#[must_use]
pub fn describe(scenario: &Scenario) -> String {
    let s = scenario;
    let mut out = String::new();
    let _ = writeln!(
        out,
        "{} — seed {}, {:.0} s, buckets of {} ms",
        s.name,
        s.seed,
        s.duration.as_secs_f64(),
        s.bucket.as_millis()
    );
    let mix = s.token_mix();
    let _ = writeln!(
        out,
        "providers (capacity for {:.0} in / {:.0} out tokens per request)",
        mix.input, mix.output
    );
    for (i, p) in s.providers.iter().enumerate() {
        let kind = match &p.kind {
            ProviderKind::Llm(l) => format!(
                "llm: {} slots, queue {}, 529 from depth {} to {}",
                l.concurrency, l.queue_limit, l.overload_start, l.overload_full
            ),
            ProviderKind::Flaky(f) => {
                format!("flaky: fails {:.0}% with {}", f.failure_p * 100.0, f.status)
            }
            ProviderKind::Row(r) => {
                format!("row: hops |N({} ms, {} ms)|", r.hop_mean_ms, r.hop_sd_ms)
            }
        };
        let _ = writeln!(out, "  {} ({kind})", p.name);
        for m in &p.models {
            let _ = write!(
                out,
                "    {:<20} ${:.2}/${:.2} per Mtok  rpm {}  itpm {}  otpm {}",
                m.name,
                m.input_price,
                m.output_price,
                limit(m.limits.rpm),
                limit(m.limits.input_tpm),
                limit(m.limits.output_tpm)
            );
            if m.malformed_output > 0.0 {
                let _ = write!(out, "  malformed {}%", m.malformed_output * 100.0);
            }
            out.push('\n');
        }
        let server = Server::new(s, i);
        let _ = write!(
            out,
            "    capacity {} calm",
            capacity(server.capacity_per_s(Time::ZERO, mix))
        );
        let mut starts: Vec<Time> = s
            .storms
            .iter()
            .filter(|st| st.target == StormTarget::Provider(i))
            .flat_map(|st| [st.from, st.to])
            .collect();
        starts.sort_unstable();
        starts.dedup();
        for t in starts {
            let _ = write!(
                out,
                ", {} at {:.0} s",
                capacity(server.capacity_per_s(t, mix)),
                secs(t)
            );
        }
        out.push('\n');
    }
    let _ = writeln!(out, "storms");
    for st in &s.storms {
        let target = match st.target {
            StormTarget::Provider(i) => s.providers.get(i).map_or("?", |p| p.name.as_str()),
            StormTarget::Clients(i) => s.clients.get(i).map_or("?", |c| c.name.as_str()),
        };
        let what = match st.fault {
            Fault::Squeeze { factor } => format!("squeeze capacity ×{factor:.2}"),
            Fault::Overload {
                p,
                concurrency_factor,
            } => {
                format!(
                    "overload +{:.0}% 529s, concurrency ×{concurrency_factor:.2}",
                    p * 100.0
                )
            }
            Fault::Outage(OutageMode::Connect) => "outage: connections refused".to_owned(),
            Fault::Outage(OutageMode::Timeout) => "outage: connections hang".to_owned(),
            Fault::Latency { factor } => format!("latency ×{factor:.2}"),
            Fault::Quota => "quota exhausted".to_owned(),
            Fault::LoadSpike { factor } => format!("load ×{factor:.2}"),
        };
        let name = st.name.as_deref().unwrap_or("(unnamed)");
        let _ = writeln!(
            out,
            "  {name}: {what} on {target}, {:.0}–{:.0} s",
            secs(st.from),
            secs(st.to)
        );
    }
    let _ = writeln!(out, "clients");
    let mut total = 0.0;
    for (i, c) in s.clients.iter().enumerate() {
        let (how, expected) = match &c.arrivals {
            Arrivals::Open { steps } => {
                let n = OpenArrivals::new(s, i).map_or(0.0, |a| a.expected_count());
                let n = c.requests.map_or(n, |cap| n.min(cap as f64));
                (
                    format!(
                        "open, {:.0}/s at start, rate steps: {}",
                        steps[0].rate_per_s,
                        steps.len()
                    ),
                    Some(n),
                )
            }
            Arrivals::Closed { workers, think_ms } => (
                format!("closed, {workers} workers thinking {think_ms} ms"),
                c.requests.map(|n| n as f64),
            ),
        };
        total += expected.unwrap_or(0.0);
        let expected = expected.map_or_else(
            || "as many as finish".to_owned(),
            |n| format!("≈{n:.0} requests"),
        );
        let _ = writeln!(
            out,
            "  {}: {how}, {} replicas, {:.0}% deferrable, deadline {} ms, {expected}",
            c.name,
            c.replicas,
            c.deferrable_share * 100.0,
            c.deadline.as_millis()
        );
    }
    let _ = writeln!(out, "expected requests per policy: ≈{total:.0}");
    let names: Vec<String> = s
        .policies
        .iter()
        .map(|p| format!("{} ({})", p.name, p.preset.as_str()))
        .collect();
    let _ = writeln!(out, "policies: {}", names.join(", "));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn describes_the_default_scenario() {
        let s = Scenario::default_storm();
        let d = describe(&s);
        assert!(
            d.starts_with("Sunday 2am 529 storm — seed 20250302, 600 s"),
            "{d}"
        );
        assert!(
            d.contains("sunday-529: overload +50% 529s, concurrency ×0.60 on anthropic, 120–300 s"),
            "{d}"
        );
        assert!(d.contains("policies: naive (naive), sdk-default (sdk-default), article (article), breakwater (breakwater)"));
        let total: f64 = d
            .lines()
            .find_map(|l| l.strip_prefix("expected requests per policy: ≈"))
            .and_then(|n| n.parse().ok())
            .unwrap();
        assert!(total >= 1_000_000.0, "{total}");
        assert_eq!(describe(&s), d);
        assert!(!d.contains("malformed"));
    }

    #[test]
    fn describes_malformed_output_rates() {
        let s = Scenario::from_toml(include_str!("../../scenarios/malformed-output.toml")).unwrap();
        let d = describe(&s);
        let line = d.lines().find(|l| l.contains("gpt-4o-mini")).unwrap();
        assert!(line.ends_with("  malformed 8%"), "{d}");
        let line = d.lines().find(|l| l.contains("claude-sonnet-4-5")).unwrap();
        assert!(line.ends_with("  malformed 0.5%"), "{d}");
    }
}
