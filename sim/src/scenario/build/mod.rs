//! Raw scenario → validated [`Scenario`]: the semantic checks, with precise errors.

mod storm;

use std::collections::BTreeSet;
use std::time::Duration;

use breakwater_core::Time;

use super::raw::*;
use super::*;
use crate::dist::{LogNormal, ms_to_nanos, secs_to_nanos};

type Result<T> = std::result::Result<T, ScenarioError>;

struct Check<'a> {
    src: &'a str,
}

impl Check<'_> {
    fn err<T>(&self, path: &str, message: impl Into<String>) -> Result<T> {
        Err(ScenarioError::at_path(self.src, path, message))
    }

    fn finite(&self, path: &str, v: f64) -> Result<f64> {
        if v.is_finite() {
            Ok(v)
        } else {
            self.err(path, format!("must be a finite number, found {}", shown(v)))
        }
    }

    fn at_least(&self, path: &str, v: f64, min: f64) -> Result<f64> {
        let v = self.finite(path, v)?;
        if v < min {
            return self.err(path, format!("must be at least {min}, found {}", shown(v)));
        }
        Ok(v)
    }

    fn positive(&self, path: &str, v: f64) -> Result<f64> {
        let v = self.finite(path, v)?;
        if v <= 0.0 {
            return self.err(path, format!("must be greater than 0, found {}", shown(v)));
        }
        Ok(v)
    }

    fn probability(&self, path: &str, v: f64) -> Result<f64> {
        let v = self.finite(path, v)?;
        if !(0.0..=1.0).contains(&v) {
            return self.err(
                path,
                format!("must be a probability in [0, 1], found {}", shown(v)),
            );
        }
        Ok(v)
    }

    fn name(&self, path: &str, name: &str, seen: &mut BTreeSet<String>) -> Result<()> {
        if name.trim().is_empty() {
            return self.err(path, "must not be empty");
        }
        if !seen.insert(name.to_owned()) {
            return self.err(path, format!("duplicate name `{name}`"));
        }
        Ok(())
    }

    /// A field that the entry's kind does not use.
    fn absent<T>(&self, path: &str, field: &str, value: &Option<T>, what: &str) -> Result<()> {
        match value {
            Some(_) => self.err(
                &format!("{path}.{field}"),
                format!("`{field}` does not apply to {what}"),
            ),
            None => Ok(()),
        }
    }

    fn lognormal(&self, path: &str, d: RawLogNormalMs) -> Result<LogNormal> {
        Ok(LogNormal {
            median: self.at_least(&format!("{path}.median_ms"), d.median_ms, 0.0)?,
            sigma: self.at_least(&format!("{path}.sigma"), d.sigma, 0.0)?,
        })
    }

    fn limit(&self, path: &str, v: Option<f64>) -> Result<Option<f64>> {
        v.map(|v| self.at_least(path, v, 0.0)).transpose()
    }
}

pub(super) fn build(src: &str, raw: RawScenario) -> Result<Scenario> {
    let c = Check { src };
    if raw.name.trim().is_empty() {
        return c.err("name", "must not be empty");
    }
    let duration_s = c.positive("duration_s", raw.duration_s)?;
    if duration_s > limits::DURATION_S {
        return c.err(
            "duration_s",
            format!(
                "must be at most {} (seven days), found {}",
                limits::DURATION_S,
                shown(duration_s)
            ),
        );
    }
    if raw.bucket_ms == 0 {
        return c.err("bucket_ms", "must be at least 1");
    }
    if raw.bucket_ms as f64 > duration_s * 1e3 {
        return c.err("bucket_ms", "must not be longer than the run (duration_s)");
    }
    let buckets = (duration_s * 1e3 / raw.bucket_ms as f64).ceil();
    if buckets > limits::TIMELINE_BUCKETS as f64 {
        return c.err(
            "bucket_ms",
            format!(
                "a {duration_s} s run in {} ms buckets has {buckets} timeline buckets; \
                 at most {}: raise bucket_ms",
                raw.bucket_ms,
                limits::TIMELINE_BUCKETS
            ),
        );
    }
    if raw.provider.is_empty() {
        return c.err("", "a scenario needs at least one [[provider]]");
    }
    if raw.clients.is_empty() {
        return c.err("", "a scenario needs at least one [[clients]]");
    }
    let mut seen = BTreeSet::new();
    let providers = raw
        .provider
        .iter()
        .enumerate()
        .map(|(i, p)| provider(&c, &format!("provider[{i}]"), p, &mut seen))
        .collect::<Result<Vec<_>>>()?;
    let mut seen = BTreeSet::new();
    let clients = raw
        .clients
        .iter()
        .enumerate()
        .map(|(i, cl)| client(&c, &format!("clients[{i}]"), cl, &mut seen))
        .collect::<Result<Vec<_>>>()?;
    population_limits(&c, &clients)?;
    let storms = raw
        .storm
        .iter()
        .enumerate()
        .map(|(i, s)| storm::storm(&c, &format!("storm[{i}]"), s, &providers, &clients))
        .collect::<Result<Vec<_>>>()?;
    let policies = storm::policies(&c, &raw)?;
    for (i, cl) in clients.iter().enumerate() {
        let Some(route) = &cl.route else { continue };
        for p in &policies {
            let Some(table) = &p.route else { continue };
            if !matches!(table.value.get(route), Some(toml::Value::Table(_))) {
                return c.err(
                    &format!("clients[{i}].route"),
                    format!(
                        "policy `{}` has no route table `{}.{route}`",
                        p.name, table.path
                    ),
                );
            }
        }
    }
    let scenario = Scenario {
        name: raw.name,
        seed: raw.seed,
        duration: Duration::from_nanos(secs_to_nanos(duration_s)),
        bucket: Duration::from_millis(raw.bucket_ms),
        providers,
        storms,
        clients,
        policies,
        source: src.to_owned(),
    };
    arrival_limits(&c, &scenario)?;
    Ok(scenario)
}

/// Replicas and closed-loop workers, all populations together, within
/// [`limits::REPLICAS`] and [`limits::WORKERS`]; the error names the population that
/// crosses the limit.
fn population_limits(c: &Check<'_>, clients: &[Client]) -> Result<()> {
    // The running total of `what` after population `i`, against its limit.
    let within = |i: usize, field: &str, total: u64, limit: u64, what: &str| {
        if total > limit {
            return c.err(
                &format!("clients[{i}].{field}"),
                format!("the clients have {total} {what} so far; at most {limit} in all"),
            );
        }
        Ok(())
    };
    let (mut replicas, mut workers) = (0u64, 0u64);
    for (i, cl) in clients.iter().enumerate() {
        replicas += u64::from(cl.replicas);
        within(i, "replicas", replicas, limits::REPLICAS, "replicas")?;
        if let Arrivals::Closed { workers: w, .. } = cl.arrivals {
            workers += u64::from(w);
            within(
                i,
                "workers",
                workers,
                limits::WORKERS,
                "closed-loop workers",
            )?;
        }
    }
    Ok(())
}

/// Open-loop rates, load spikes included, within [`limits::RATE_PER_S`], and the
/// expected arrivals of the run within [`limits::EXPECTED_REQUESTS`].
fn arrival_limits(c: &Check<'_>, scenario: &Scenario) -> Result<()> {
    let mut expected = 0.0;
    for i in 0..scenario.clients.len() {
        let Some(arrivals) = crate::workload::OpenArrivals::new(scenario, i) else {
            continue;
        };
        let peak = arrivals.peak_rate();
        if peak > limits::RATE_PER_S {
            return c.err(
                &format!("clients[{i}]"),
                format!(
                    "the arrival rate reaches {} per second (load spikes included); \
                     at most {}",
                    shown(peak),
                    limits::RATE_PER_S
                ),
            );
        }
        let count = arrivals.expected_count();
        expected += match scenario.clients[i].requests {
            Some(cap) => count.min(cap as f64),
            None => count,
        };
    }
    if expected > limits::EXPECTED_REQUESTS {
        return c.err(
            "duration_s",
            format!(
                "the open-loop clients would send about {expected:.3e} requests over the run; \
                 at most {:e}: shorten the run or lower the rates",
                limits::EXPECTED_REQUESTS
            ),
        );
    }
    Ok(())
}

fn provider(
    c: &Check<'_>,
    path: &str,
    p: &RawProvider,
    seen: &mut BTreeSet<String>,
) -> Result<Provider> {
    c.name(&format!("{path}.name"), &p.name, seen)?;
    let what = format!("a `{}` provider", p.kind.as_str());
    let f = |field: &str| format!("{path}.{field}");
    let defaults = Limits {
        rpm: c.limit(&f("rpm"), p.rpm)?,
        input_tpm: c.limit(&f("input_tpm"), p.input_tpm)?,
        output_tpm: c.limit(&f("output_tpm"), p.output_tpm)?,
    };
    let llm_only = |c: &Check<'_>| -> Result<()> {
        c.absent(path, "rpm", &p.rpm, &what)?;
        c.absent(path, "input_tpm", &p.input_tpm, &what)?;
        c.absent(path, "output_tpm", &p.output_tpm, &what)?;
        c.absent(path, "burst_s", &p.burst_s, &what)?;
        c.absent(path, "concurrency", &p.concurrency, &what)?;
        c.absent(path, "queue_limit", &p.queue_limit, &what)?;
        c.absent(path, "overload_start", &p.overload_start, &what)?;
        c.absent(path, "overload_full", &p.overload_full, &what)?;
        c.absent(path, "ttft", &p.ttft, &what)?;
        c.absent(path, "per_token", &p.per_token, &what)
    };
    let flaky_only = |c: &Check<'_>| -> Result<()> {
        c.absent(path, "failure_p", &p.failure_p, &what)?;
        c.absent(path, "status", &p.status, &what)?;
        c.absent(path, "latency", &p.latency, &what)
    };
    let reject = |c: &Check<'_>| -> Result<Duration> {
        let ms = c.at_least(&f("reject_ms"), p.reject_ms.unwrap_or(20.0), 0.0)?;
        Ok(Duration::from_nanos(ms_to_nanos(ms)))
    };
    let kind = match p.kind {
        RawProviderKind::Llm => {
            flaky_only(c)?;
            c.absent(path, "network", &p.network, &what)?;
            let concurrency = p.concurrency.unwrap_or(1000);
            if concurrency == 0 {
                return c.err(&f("concurrency"), "must be at least 1");
            }
            let overload_start = p.overload_start.unwrap_or(u32::MAX - 1);
            let overload_full = p.overload_full.unwrap_or(u32::MAX);
            if overload_start >= overload_full {
                return c.err(
                    &f("overload_full"),
                    format!("must be greater than overload_start ({overload_start}), found {overload_full}"),
                );
            }
            let default_ttft = RawLogNormalMs {
                median_ms: 500.0,
                sigma: 0.4,
            };
            let default_token = RawLogNormalMs {
                median_ms: 10.0,
                sigma: 0.2,
            };
            ProviderKind::Llm(LlmSpec {
                burst_s: c.positive(&f("burst_s"), p.burst_s.unwrap_or(60.0))?,
                concurrency,
                queue_limit: p.queue_limit.unwrap_or(u32::MAX),
                overload_start,
                overload_full,
                ttft_ms: c.lognormal(&f("ttft"), p.ttft.unwrap_or(default_ttft))?,
                per_token_ms: c.lognormal(&f("per_token"), p.per_token.unwrap_or(default_token))?,
                reject: reject(c)?,
            })
        }
        RawProviderKind::Flaky => {
            llm_only(c)?;
            c.absent(path, "network", &p.network, &what)?;
            let status = p.status.unwrap_or(503);
            if !(100..=599).contains(&status) {
                return c.err(
                    &f("status"),
                    format!("must be an HTTP status (100–599), found {status}"),
                );
            }
            let latency = p.latency.unwrap_or(RawLogNormalMs {
                median_ms: 50.0,
                sigma: 0.0,
            });
            ProviderKind::Flaky(FlakySpec {
                failure_p: c.probability(&f("failure_p"), p.failure_p.unwrap_or(0.0))?,
                status,
                latency_ms: c.lognormal(&f("latency"), latency)?,
                reject: reject(c)?,
            })
        }
        RawProviderKind::Row => {
            llm_only(c)?;
            flaky_only(c)?;
            c.absent(path, "reject_ms", &p.reject_ms, &what)?;
            let net = p.network.unwrap_or(RawNetwork {
                mean_ms: default_hop_mean(),
                sd_ms: default_hop_sd(),
            });
            ProviderKind::Row(RowSpec {
                hop_mean_ms: c.at_least(&f("network.mean_ms"), net.mean_ms, 0.0)?,
                hop_sd_ms: c.at_least(&f("network.sd_ms"), net.sd_ms, 0.0)?,
            })
        }
    };
    let mut names = BTreeSet::new();
    let mut models = Vec::with_capacity(p.model.len().max(1));
    for (j, m) in p.model.iter().enumerate() {
        let mp = format!("{path}.model[{j}]");
        let g = |field: &str| format!("{mp}.{field}");
        c.name(&g("name"), &m.name, &mut names)?;
        if p.kind != RawProviderKind::Llm {
            c.absent(&mp, "rpm", &m.rpm, &what)?;
            c.absent(&mp, "input_tpm", &m.input_tpm, &what)?;
            c.absent(&mp, "output_tpm", &m.output_tpm, &what)?;
        }
        if p.kind == RawProviderKind::Row {
            c.absent(&mp, "malformed_output", &m.malformed_output, &what)?;
        }
        models.push(Model {
            name: m.name.clone(),
            input_price: c.at_least(&g("input_price"), m.input_price, 0.0)?,
            output_price: c.at_least(&g("output_price"), m.output_price, 0.0)?,
            latency_factor: c.positive(&g("latency_factor"), m.latency_factor.unwrap_or(1.0))?,
            limits: Limits {
                rpm: c.limit(&g("rpm"), m.rpm)?.or(defaults.rpm),
                input_tpm: c
                    .limit(&g("input_tpm"), m.input_tpm)?
                    .or(defaults.input_tpm),
                output_tpm: c
                    .limit(&g("output_tpm"), m.output_tpm)?
                    .or(defaults.output_tpm),
            },
            malformed_output: c
                .probability(&g("malformed_output"), m.malformed_output.unwrap_or(0.0))?,
        });
    }
    if models.is_empty() {
        models.push(Model {
            name: "default".to_owned(),
            input_price: 0.0,
            output_price: 0.0,
            latency_factor: 1.0,
            limits: defaults,
            malformed_output: 0.0,
        });
    }
    Ok(Provider {
        name: p.name.clone(),
        kind,
        models,
    })
}

fn tokens(c: &Check<'_>, path: &str, t: Option<RawTokens>, default_max: u32) -> Result<Tokens> {
    let t = t.unwrap_or(RawTokens {
        median: 500.0,
        sigma: 0.0,
        max: None,
    });
    let max = t.max.unwrap_or(default_max);
    if max == 0 {
        return c.err(&format!("{path}.max"), "must be at least 1");
    }
    Ok(Tokens {
        dist: LogNormal {
            median: c.at_least(&format!("{path}.median"), t.median, 1.0)?,
            sigma: c.at_least(&format!("{path}.sigma"), t.sigma, 0.0)?,
        },
        max,
    })
}

fn client(
    c: &Check<'_>,
    path: &str,
    cl: &RawClient,
    seen: &mut BTreeSet<String>,
) -> Result<Client> {
    c.name(&format!("{path}.name"), &cl.name, seen)?;
    let f = |field: &str| format!("{path}.{field}");
    let arrivals = match cl.kind {
        RawClientKind::Open => {
            let what = "an `open` client";
            c.absent(path, "workers", &cl.workers, what)?;
            c.absent(path, "think_ms", &cl.think_ms, what)?;
            if cl.rate_per_s.is_none() && cl.rate.is_none() {
                return c.err(path, "an `open` client needs `rate_per_s` or `rate` steps");
            }
            let base = c.at_least(&f("rate_per_s"), cl.rate_per_s.unwrap_or(0.0), 0.0)?;
            let mut steps = vec![RateStep {
                at: Time::ZERO,
                rate_per_s: base,
            }];
            let mut last = -1.0;
            for (j, s) in cl.rate.iter().flatten().enumerate() {
                let at = c.at_least(&format!("{path}.rate[{j}].at_s"), s.at_s, 0.0)?;
                if at <= last {
                    return c.err(
                        &format!("{path}.rate[{j}].at_s"),
                        "steps must be in increasing time order",
                    );
                }
                last = at;
                let rate =
                    c.at_least(&format!("{path}.rate[{j}].rate_per_s"), s.rate_per_s, 0.0)?;
                let step = RateStep {
                    at: Time::from_nanos(secs_to_nanos(at)),
                    rate_per_s: rate,
                };
                if step.at == Time::ZERO {
                    steps[0] = step;
                } else {
                    steps.push(step);
                }
            }
            Arrivals::Open { steps }
        }
        RawClientKind::Closed => {
            let what = "a `closed` client";
            c.absent(path, "rate_per_s", &cl.rate_per_s, what)?;
            c.absent(path, "rate", &cl.rate, what)?;
            let Some(workers) = cl.workers else {
                return c.err(path, "a `closed` client needs `workers`");
            };
            if workers == 0 {
                return c.err(&f("workers"), "must be at least 1");
            }
            Arrivals::Closed {
                workers,
                think_ms: c.at_least(&f("think_ms"), cl.think_ms.unwrap_or(0.0), 0.0)?,
            }
        }
    };
    if cl.replicas == 0 {
        return c.err(&f("replicas"), "must be at least 1");
    }
    let default_share = match cl.task {
        Some(RawTask::Deferrable) => 1.0,
        _ => 0.0,
    };
    if cl.requests == Some(0) {
        return c.err(&f("requests"), "must be at least 1");
    }
    if cl.route.as_deref().is_some_and(|r| r.trim().is_empty()) {
        return c.err(&f("route"), "must not be empty");
    }
    let deadline_ms = c.positive(&f("deadline_ms"), cl.deadline_ms.unwrap_or(60_000.0))?;
    Ok(Client {
        name: cl.name.clone(),
        arrivals,
        replicas: cl.replicas,
        deferrable_share: c.probability(
            &f("deferrable_share"),
            cl.deferrable_share.unwrap_or(default_share),
        )?,
        input_tokens: tokens(c, &f("input_tokens"), cl.input_tokens, 200_000)?,
        output_tokens: tokens(c, &f("output_tokens"), cl.output_tokens, 8_192)?,
        deadline: Duration::from_nanos(ms_to_nanos(deadline_ms)),
        requests: cl.requests,
        route: cl.route.clone(),
    })
}
