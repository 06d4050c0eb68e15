use super::*;
use proptest::prelude::*;

const SMALL: &str = r#"
name = "small"
seed = 1
duration_s = 10

[[provider]]
name = "p"
kind = "llm"
rpm = 600

[[provider.model]]
name = "m"
input_price = 3.0
output_price = 15.0

[[storm]]
kind = "overload"
provider = "p"
from_s = 2
to_s = 4
p = 0.5

[[clients]]
name = "c"
kind = "open"
rate_per_s = 10

[[policy]]
name = "naive"
preset = "naive"
"#;

fn err(src: &str) -> ScenarioError {
    match Scenario::from_toml(src) {
        Ok(_) => panic!("expected an error"),
        Err(e) => e,
    }
}

/// The 1-based line of the first line containing `needle`.
fn line_of(src: &str, needle: &str) -> usize {
    src.lines()
        .position(|l| l.contains(needle))
        .expect("needle")
        + 1
}

#[test]
fn the_shipped_scenarios_parse() {
    let s = Scenario::default_storm();
    assert_eq!(s.providers.len(), 2);
    assert_eq!(s.policies.len(), 4);
    assert_eq!(s.policies[1].preset, Preset::SdkDefault);
    assert_eq!(s.providers[0].models[1].limits.rpm, Some(200_000.0));
    assert_eq!(s.providers[0].models[0].limits.rpm, Some(150_000.0));
    assert_eq!(
        s.storm_window(),
        Some((Time::from_secs(120), Time::from_secs(300)))
    );
    let requests: f64 = s
        .clients
        .iter()
        .map(|c| match &c.arrivals {
            Arrivals::Open { steps } => steps[0].rate_per_s * s.duration.as_secs_f64(),
            Arrivals::Closed { .. } => 0.0,
        })
        .sum();
    assert!(requests >= 1e6, "{requests}");
    for src in [
        include_str!("../../scenarios/brooker-occ.toml"),
        include_str!("../../scenarios/amplification.toml"),
    ] {
        let s = Scenario::from_toml(src).unwrap();
        assert_eq!(s.policies.len(), 4);
    }
}

#[test]
fn small_scenario_fields() {
    let s = Scenario::from_toml(SMALL).unwrap();
    assert_eq!(s.bucket, Duration::from_secs(1));
    assert_eq!(s.storms[0].target, StormTarget::Provider(0));
    assert_eq!(
        s.storms[0].fault,
        Fault::Overload {
            p: 0.5,
            concurrency_factor: 1.0
        }
    );
    assert_eq!(s.storms[0].from, Time::from_secs(2));
    assert_eq!(s.policies[0].name, "naive");
    assert_eq!(s.clients[0].replicas, 1);
}

#[test]
fn unknown_key_names_path_and_line() {
    let src = SMALL.replace("rpm = 600", "rpm = 600\nrpmm = 5");
    let e = err(&src);
    assert_eq!(e.path, "provider[0].rpmm");
    assert_eq!(e.at.line, line_of(&src, "rpmm"));
    assert_eq!(e.at.column, 1);
    assert!(e.message.contains("unknown field"), "{e}");
}

#[test]
fn bad_type_names_path_and_line() {
    let src = SMALL.replace("rate_per_s = 10", "rate_per_s = \"fast\"");
    let e = err(&src);
    assert_eq!(e.path, "clients[0].rate_per_s");
    assert_eq!(e.at.line, line_of(&src, "\"fast\""));
    assert_eq!(e.at.column, 14);
    let src = SMALL.replace("seed = 1", "seed = -1");
    let e = err(&src);
    assert_eq!(
        (e.path.as_str(), e.at.line),
        ("seed", line_of(&src, "seed = -1"))
    );
    // serde writes a float in full: 1e300 would be 301 digits in the message.
    let src = SMALL.replace("seed = 1", "seed = 1e300");
    let e = err(&src);
    assert_eq!(e.path, "seed");
    assert!(
        e.message.contains("floating point `1e300`") && e.message.len() < 80,
        "{e}"
    );
}

#[test]
fn negative_rate_names_path_and_line() {
    let src = SMALL.replace("rate_per_s = 10", "rate_per_s = -10");
    let e = err(&src);
    assert_eq!(e.path, "clients[0].rate_per_s");
    assert_eq!((e.at.line, e.at.column), (line_of(&src, "-10"), 14));
    assert_eq!(e.message, "must be at least 0, found -10");
    assert_eq!(
        e.to_string(),
        format!(
            "{}:14: clients[0].rate_per_s: must be at least 0, found -10",
            e.at.line
        )
    );
}

#[test]
fn storm_naming_a_missing_provider() {
    let src = SMALL.replace("provider = \"p\"", "provider = \"nope\"");
    let e = err(&src);
    assert_eq!(e.path, "storm[0].provider");
    assert_eq!(e.at.line, line_of(&src, "\"nope\""));
    assert!(e.message.contains("no [[provider]] named `nope`"), "{e}");
}

#[test]
fn semantic_checks() {
    let cases: &[(&str, &str, &str)] = &[
        ("to_s = 4", "to_s = 2", "storm[0].to_s"),
        ("p = 0.5", "p = 1.5", "storm[0].p"),
        ("p = 0.5", "p = 0.5\nfactor = 2", "storm[0].factor"),
        ("duration_s = 10", "duration_s = 0", "duration_s"),
        ("duration_s = 10", "duration_s = nan", "duration_s"),
        ("rpm = 600", "rpm = -1", "provider[0].rpm"),
        (
            "rpm = 600",
            "rpm = 600\nfailure_p = 0.1",
            "provider[0].failure_p",
        ),
        (
            "rpm = 600",
            "rpm = 600\noverload_start = 9\noverload_full = 3",
            "provider[0].overload_full",
        ),
        (
            "rpm = 600",
            "rpm = 600\nconcurrency = 0",
            "provider[0].concurrency",
        ),
        (
            "input_price = 3.0",
            "input_price = -3.0",
            "provider[0].model[0].input_price",
        ),
        (
            "name = \"m\"",
            "name = \"m\"\n[[provider.model]]\nname = \"m\"",
            "provider[0].model[1].name",
        ),
        (
            "name = \"c\"",
            "name = \"c\"\nworkers = 3",
            "clients[0].workers",
        ),
        (
            "rate_per_s = 10",
            "rate_per_s = 10\nreplicas = 0",
            "clients[0].replicas",
        ),
        (
            "rate_per_s = 10",
            "rate_per_s = 10\ndeadline_ms = 0",
            "clients[0].deadline_ms",
        ),
        (
            "rate_per_s = 10",
            "rate_per_s = 10\ndeferrable_share = 2",
            "clients[0].deferrable_share",
        ),
        (
            "rate_per_s = 10",
            "rate_per_s = 10\nrate = [{ at_s = 5, rate_per_s = 1 }, { at_s = 5, rate_per_s = 2 }]",
            "clients[0].rate[1].at_s",
        ),
        (
            "rate_per_s = 10",
            "rate_per_s = 10\ninput_tokens = { median = 0 }",
            "clients[0].input_tokens.median",
        ),
        ("preset = \"naive\"", "preset = \"custom\"", "policy[0]"),
        (
            "preset = \"naive\"",
            "preset = \"naive\"\n[[policy]]\nname = \"naive\"\npreset = \"article\"",
            "policy[1].name",
        ),
        (
            "seed = 1",
            "seed = 1\npolicies = [\"naive\", \"nope\"]",
            "policies[1]",
        ),
        (
            "seed = 1",
            "seed = 1\npolicies = [\"naive\", \"naive\"]",
            "policies[1]",
        ),
        ("seed = 1", "seed = 1\nbucket_ms = 0", "bucket_ms"),
    ];
    for (from, to, path) in cases {
        assert!(SMALL.contains(from), "{from}");
        let src = SMALL.replacen(from, to, 1);
        let e = err(&src);
        assert_eq!(&e.path, path, "{from} → {to}: {e}");
        assert!(e.at.line > 1, "{e}");
    }
}

/// Scenarios past the simulator's limits are refused before anything is allocated
/// for them, each naming the field, and the message says what the limit is.
#[test]
fn scenarios_past_the_limits() {
    let closed = SMALL.replacen(
        "kind = \"open\"\nrate_per_s = 10",
        "kind = \"closed\"\nworkers = 10",
        1,
    );
    let long = SMALL.replacen("duration_s = 10", "duration_s = 200", 1);
    let cases: &[(&str, &str, &str, &str, &str)] = &[
        // Seven days and one second.
        (
            SMALL,
            "duration_s = 10",
            "duration_s = 604801",
            "duration_s",
            "at most 604800",
        ),
        // An absurd length is shown in exponent form, not as 300 digits.
        (
            SMALL,
            "duration_s = 10",
            "duration_s = 1e300",
            "duration_s",
            "found 1e300",
        ),
        // A day in 10 ms buckets: 8.64 million.
        (
            SMALL,
            "duration_s = 10",
            "duration_s = 86400\nbucket_ms = 10",
            "bucket_ms",
            "8640000 timeline buckets",
        ),
        (
            SMALL,
            "rate_per_s = 10",
            "rate_per_s = 10\nreplicas = 10001",
            "clients[0].replicas",
            "at most 10000",
        ),
        (
            &closed,
            "workers = 10",
            "workers = 1000001",
            "clients[0].workers",
            "at most 1000000",
        ),
        (
            SMALL,
            "rate_per_s = 10",
            "rate_per_s = 2e7",
            "clients[0]",
            "at most 10000000",
        ),
        // Within the rate limit, but 1.8 billion arrivals over the run…
        (
            &long,
            "rate_per_s = 10",
            "rate_per_s = 9e6\nrequests = 2_000_000_000",
            "duration_s",
            "about 1.800e9 requests",
        ),
    ];
    for (base, from, to, path, says) in cases {
        assert!(base.contains(from), "{from}");
        let src = base.replacen(from, to, 1);
        let e = err(&src);
        assert_eq!(&e.path, path, "{from} → {to}: {e}");
        assert!(e.at.line > 1, "{e}");
        assert!(e.message.contains(says), "{from} → {to}: {e}");
    }
    // Replicas and workers count over all populations; the error names the one that
    // crosses the limit.
    let two = format!(
        "{SMALL}\n[[clients]]\nname = \"d\"\nkind = \"closed\"\nworkers = 600000\nreplicas = 6000\n"
    )
    .replacen("rate_per_s = 10", "rate_per_s = 10\nreplicas = 5000", 1);
    let e = err(&two);
    assert_eq!(e.path, "clients[1].replicas", "{e}");
    let e = err(&two
        .replacen("replicas = 6000", "", 1)
        .replacen("kind = \"open\"", "kind = \"closed\"\nworkers = 500000", 1)
        .replacen("rate_per_s = 10\n", "", 1));
    assert_eq!(e.path, "clients[1].workers", "{e}");
    // A load spike can take a rate within the limit past it.
    let spiked = format!(
        "{}\n[[storm]]\nkind = \"load_spike\"\nclients = \"c\"\nfrom_s = 1\nto_s = 2\nfactor = 100\n",
        SMALL.replacen("rate_per_s = 10", "rate_per_s = 200000", 1)
    );
    let e = err(&spiked);
    assert_eq!(e.path, "clients[0]", "{e}");
    assert!(e.message.contains("load spikes included"), "{e}");
    // … and a `requests` cap under the limit makes it valid.
    Scenario::from_toml(&long.replacen(
        "rate_per_s = 10",
        "rate_per_s = 9e6\nrequests = 1_000_000_000",
        1,
    ))
    .expect("a capped client counts its cap");
    // At the limits exactly, the scenario is valid.
    let at = SMALL
        .replacen("duration_s = 10", "duration_s = 604800", 1)
        .replacen("rate_per_s = 10", "rate_per_s = 1000\nreplicas = 10000", 1);
    Scenario::from_toml(&at).expect("a scenario at the limits is valid");
}

#[test]
fn kind_specific_storms_and_load_spikes() {
    let spike = SMALL.replace(
        "kind = \"overload\"\nprovider = \"p\"",
        "kind = \"load_spike\"\nclients = \"c\"\nfactor = 3",
    );
    let spike = spike.replace("p = 0.5\n", "");
    let s = Scenario::from_toml(&spike).unwrap();
    assert_eq!(s.storms[0].target, StormTarget::Clients(0));
    assert_eq!(s.storms[0].fault, Fault::LoadSpike { factor: 3.0 });
    let e = err(&spike.replace("clients = \"c\"", "clients = \"x\""));
    assert_eq!(e.path, "storm[0].clients");
    let outage = SMALL
        .replace("kind = \"overload\"", "kind = \"outage\"")
        .replace("p = 0.5", "mode = \"timeout\"");
    let s = Scenario::from_toml(&outage).unwrap();
    assert_eq!(s.storms[0].fault, Fault::Outage(OutageMode::Timeout));
    let e = err(&outage.replace("mode = \"timeout\"", "mode = \"sideways\""));
    assert_eq!(e.path, "storm[0].mode");
}

#[test]
fn top_level_policies_pick_presets_and_tables() {
    let src = SMALL.replace(
        "seed = 1",
        "seed = 1\npolicies = [\"breakwater\", \"naive\"]",
    );
    let s = Scenario::from_toml(&src).unwrap();
    let names: Vec<_> = s
        .policies
        .iter()
        .map(|p| (p.name.as_str(), p.preset))
        .collect();
    assert_eq!(
        names,
        [("breakwater", Preset::Breakwater), ("naive", Preset::Naive)]
    );
    let none = SMALL.replace("[[policy]]\nname = \"naive\"\npreset = \"naive\"\n", "");
    assert!(err(&none).message.contains("at least one policy"));
}

#[test]
fn free_form_tables_keep_their_location() {
    let src = SMALL.replace(
        "preset = \"naive\"",
        "preset = \"custom\"\n[policy.route.chat]\nsteps = [{ provider = \"p\", timeout_ms = \"x\" }]",
    );
    let src = src.replace("rate_per_s = 10", "rate_per_s = 10\nroute = \"chat\"");
    let s = Scenario::from_toml(&src).unwrap();
    let route = s.policies[0].route.as_ref().unwrap();
    assert_eq!(route.path, "policy[0].route");
    #[derive(Debug, serde::Deserialize)]
    #[allow(dead_code)]
    struct Step {
        provider: String,
        timeout_ms: u64,
    }
    #[derive(Debug, serde::Deserialize)]
    #[allow(dead_code)]
    struct Route {
        steps: Vec<Step>,
    }
    let chat = route.value.get("chat").and_then(|v| v.as_table()).unwrap();
    let e = deserialize_table::<Route>(&s.source, "policy[0].route.chat", chat).unwrap_err();
    assert_eq!(e.path, "policy[0].route.chat.steps[0].timeout_ms");
    assert_eq!(e.at.line, line_of(&src, "timeout_ms"));
    let missing = src.replace("route = \"chat\"", "route = \"batch\"");
    assert_eq!(err(&missing).path, "clients[0].route");
}

#[test]
fn syntax_errors_have_a_location() {
    let e = err("name = \"x\"\nseed = = 3\n");
    assert_eq!(e.path, "");
    assert_eq!(e.at.line, 2);
}

#[test]
fn tokens_clamp() {
    let t = Tokens {
        dist: LogNormal {
            median: 1e9,
            sigma: 2.0,
        },
        max: 100,
    };
    let mut rng = breakwater_core::rng::seeded(1);
    for _ in 0..100 {
        assert!((1..=100).contains(&t.sample(&mut rng)));
    }
}

/// Mutations of the valid scenario: cut it, duplicate a line, swap a value.
fn mutated() -> impl Strategy<Value = String> {
    let lines: Vec<String> = DEFAULT_SCENARIO.lines().map(str::to_owned).collect();
    let n = lines.len();
    (0..n, 0..n, 0usize..4, "[ -~]{0,12}").prop_map(move |(a, b, op, text)| {
        let mut l = lines.clone();
        match op {
            0 => l.truncate(a),
            1 => l.insert(b, l[a].clone()),
            2 => {
                if let Some((k, _)) = l[a].clone().split_once('=') {
                    l[a] = format!("{k}= {text}");
                }
            }
            _ => l[a] = text,
        }
        l.join("\n")
    })
}

proptest! {
    #[test]
    fn arbitrary_text_never_panics(src in "\\PC{0,200}") {
        let _ = Scenario::from_toml(&src);
    }

    #[test]
    fn mutated_scenarios_never_panic(src in mutated()) {
        if let Err(e) = Scenario::from_toml(&src) {
            prop_assert!(e.at.line >= 1 && e.at.column >= 1);
            prop_assert!(e.at.line <= src.lines().count() + 1);
        }
    }

    #[test]
    fn numbers_never_panic(v in prop_oneof![any::<f64>().prop_map(|v| format!("{v:?}")), any::<i64>().prop_map(|v| v.to_string())], field in 0usize..6) {
        let keys = ["duration_s = 10", "rpm = 600", "p = 0.5", "rate_per_s = 10", "from_s = 2", "input_price = 3.0"];
        let key = keys[field];
        let name = key.split(' ').next().unwrap_or("");
        let src = SMALL.replace(key, &format!("{name} = {v}"));
        let _ = Scenario::from_toml(&src);
    }
}

#[test]
fn malformed_output_is_a_per_model_probability() {
    let s = Scenario::from_toml(SMALL).expect("valid");
    assert_eq!(s.providers[0].models[0].malformed_output, 0.0);
    let src = SMALL.replace(
        "output_price = 15.0",
        "output_price = 15.0\nmalformed_output = 0.08",
    );
    let s = Scenario::from_toml(&src).expect("valid");
    assert_eq!(s.providers[0].models[0].malformed_output, 0.08);

    let src = SMALL.replace(
        "output_price = 15.0",
        "output_price = 15.0\nmalformed_output = 1.5",
    );
    let e = err(&src);
    assert_eq!(e.path, "provider[0].model[0].malformed_output");
    assert_eq!(e.at.line, line_of(&src, "malformed_output"));
    assert_eq!(e.message, "must be a probability in [0, 1], found 1.5");

    let src = SMALL.replace(
        "output_price = 15.0",
        "output_price = 15.0\nmalformed_output = \"x\"",
    );
    let e = err(&src);
    assert_eq!(e.path, "provider[0].model[0].malformed_output");
    assert_eq!(e.at.line, line_of(&src, "malformed_output"));
}

#[test]
fn malformed_output_does_not_apply_to_a_row() {
    let src = SMALL
        .replace("kind = \"llm\"\nrpm = 600", "kind = \"row\"")
        .replace("output_price = 15.0", "malformed_output = 0.1")
        .replace(
            "[[storm]]\nkind = \"overload\"\nprovider = \"p\"\nfrom_s = 2\nto_s = 4\np = 0.5\n",
            "",
        );
    let e = err(&src);
    assert_eq!(e.path, "provider[0].model[0].malformed_output");
    assert!(
        e.message.contains("does not apply to a `row` provider"),
        "{e}"
    );
}
