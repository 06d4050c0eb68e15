//! Storms and policies: targets that must exist, fields that each kind allows.

use std::collections::BTreeSet;

use breakwater_core::Time;

use super::{Check, Result};
use crate::dist::secs_to_nanos;
use crate::scenario::error::locate;
use crate::scenario::raw::*;
use crate::scenario::*;

pub(super) fn storm(
    c: &Check<'_>,
    path: &str,
    s: &RawStorm,
    providers: &[Provider],
    clients: &[Client],
) -> Result<Storm> {
    let f = |field: &str| format!("{path}.{field}");
    let kind = s.kind.as_str();
    let what = format!("a `{kind}` storm");
    let from = c.at_least(&f("from_s"), s.from_s, 0.0)?;
    let to = c.finite(&f("to_s"), s.to_s)?;
    if from >= to {
        return c.err(
            &f("to_s"),
            format!("must be after from_s ({from}), found {to}"),
        );
    }
    let target = if s.kind == RawStormKind::LoadSpike {
        c.absent(path, "provider", &s.provider, &what)?;
        let Some(name) = &s.clients else {
            return c.err(path, "a `load_spike` storm needs `clients`");
        };
        match clients.iter().position(|cl| &cl.name == name) {
            Some(i) => StormTarget::Clients(i),
            None => return c.err(&f("clients"), format!("no [[clients]] named `{name}`")),
        }
    } else {
        c.absent(path, "clients", &s.clients, &what)?;
        let Some(name) = &s.provider else {
            return c.err(path, format!("{what} needs `provider`"));
        };
        match providers.iter().position(|p| &p.name == name) {
            Some(i) => StormTarget::Provider(i),
            None => return c.err(&f("provider"), format!("no [[provider]] named `{name}`")),
        }
    };
    let provider_kind = match target {
        StormTarget::Provider(i) => providers.get(i).map(|p| &p.kind),
        StormTarget::Clients(_) => None,
    };
    let applies = match (s.kind, provider_kind) {
        (RawStormKind::Squeeze, Some(k)) => matches!(k, ProviderKind::Llm(_)),
        (RawStormKind::Overload | RawStormKind::Quota, Some(k)) => {
            !matches!(k, ProviderKind::Row(_))
        }
        _ => true,
    };
    if !applies {
        return c.err(
            &f("kind"),
            format!(
                "{what} does not apply to provider `{}`'s kind",
                s.provider.as_deref().unwrap_or("")
            ),
        );
    }
    let need_factor = |c: &Check<'_>| -> Result<f64> {
        match s.factor {
            Some(v) => c.at_least(&f("factor"), v, 0.0),
            None => c.err(path, format!("{what} needs `factor`")),
        }
    };
    let none_but = |c: &Check<'_>, factor: bool, p: bool, cf: bool, mode: bool| -> Result<()> {
        if !factor {
            c.absent(path, "factor", &s.factor, &what)?;
        }
        if !p {
            c.absent(path, "p", &s.p, &what)?;
        }
        if !cf {
            c.absent(path, "concurrency_factor", &s.concurrency_factor, &what)?;
        }
        if !mode {
            c.absent(path, "mode", &s.mode, &what)?;
        }
        Ok(())
    };
    let fault = match s.kind {
        RawStormKind::Squeeze => {
            none_but(c, true, false, false, false)?;
            Fault::Squeeze {
                factor: need_factor(c)?,
            }
        }
        RawStormKind::Latency => {
            none_but(c, true, false, false, false)?;
            Fault::Latency {
                factor: c.positive(&f("factor"), need_factor(c)?)?,
            }
        }
        RawStormKind::LoadSpike => {
            none_but(c, true, false, false, false)?;
            Fault::LoadSpike {
                factor: need_factor(c)?,
            }
        }
        RawStormKind::Overload => {
            none_but(c, false, true, true, false)?;
            if s.p.is_none() && s.concurrency_factor.is_none() {
                return c.err(
                    path,
                    "an `overload` storm needs `p` or `concurrency_factor`",
                );
            }
            if s.concurrency_factor.is_some()
                && !matches!(provider_kind, Some(ProviderKind::Llm(_)))
            {
                return c.err(
                    &f("concurrency_factor"),
                    "applies only to an `llm` provider",
                );
            }
            Fault::Overload {
                p: c.probability(&f("p"), s.p.unwrap_or(0.0))?,
                concurrency_factor: c.at_least(
                    &f("concurrency_factor"),
                    s.concurrency_factor.unwrap_or(1.0),
                    0.0,
                )?,
            }
        }
        RawStormKind::Outage => {
            none_but(c, false, false, false, true)?;
            match s.mode {
                Some(RawOutageMode::Connect) => Fault::Outage(OutageMode::Connect),
                Some(RawOutageMode::Timeout) => Fault::Outage(OutageMode::Timeout),
                None => {
                    return c.err(
                        path,
                        "an `outage` storm needs `mode` (\"connect\" or \"timeout\")",
                    );
                }
            }
        }
        RawStormKind::Quota => {
            none_but(c, false, false, false, false)?;
            Fault::Quota
        }
    };
    Ok(Storm {
        name: s.name.clone(),
        from: Time::from_nanos(secs_to_nanos(from)),
        to: Time::from_nanos(secs_to_nanos(to)),
        target,
        fault,
    })
}

pub(super) fn policies(c: &Check<'_>, raw: &RawScenario) -> Result<Vec<Policy>> {
    let mut seen = BTreeSet::new();
    let mut defined = Vec::with_capacity(raw.policy.len());
    for (i, p) in raw.policy.iter().enumerate() {
        let path = format!("policy[{i}]");
        c.name(&format!("{path}.name"), &p.name, &mut seen)?;
        if p.preset == RawPreset::Custom && p.route.is_none() {
            return c.err(&path, "a `custom` policy needs a `route` table");
        }
        let located = |field: &str, t: &Option<toml::Table>| {
            t.as_ref().map(|t| {
                let path = format!("{path}.{field}");
                Located {
                    value: t.clone(),
                    at: locate(c.src, &path).unwrap_or_default(),
                    path,
                }
            })
        };
        defined.push(Policy {
            name: p.name.clone(),
            preset: preset(p.preset),
            route: located("route", &p.route),
            registry: located("registry", &p.registry),
            plan: located("plan", &p.plan),
            fleet: located("fleet", &p.fleet),
        });
    }
    let Some(names) = &raw.policies else {
        if defined.is_empty() {
            return c.err(
                "",
                "a scenario must name at least one policy ([[policy]] or `policies`)",
            );
        }
        return Ok(defined);
    };
    if names.is_empty() {
        return c.err("policies", "must name at least one policy");
    }
    let mut chosen = BTreeSet::new();
    let mut out = Vec::with_capacity(names.len());
    for (i, name) in names.iter().enumerate() {
        let path = format!("policies[{i}]");
        if !chosen.insert(name.as_str()) {
            return c.err(&path, format!("`{name}` is listed twice"));
        }
        if let Some(p) = defined.iter().find(|p| &p.name == name) {
            out.push(p.clone());
        } else if let Some(preset) = Preset::from_name(name).filter(|p| *p != Preset::Custom) {
            out.push(Policy {
                name: name.clone(),
                preset,
                route: None,
                registry: None,
                plan: None,
                fleet: None,
            });
        } else {
            return c.err(&path, format!("no [[policy]] or preset named `{name}`"));
        }
    }
    Ok(out)
}

fn preset(p: RawPreset) -> Preset {
    match p {
        RawPreset::Naive => Preset::Naive,
        RawPreset::SdkDefault => Preset::SdkDefault,
        RawPreset::Article => Preset::Article,
        RawPreset::Breakwater => Preset::Breakwater,
        RawPreset::Custom => Preset::Custom,
    }
}
