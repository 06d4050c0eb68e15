use super::*;
use crate::measure::{Latency, MalformedOutput, ProviderTimeline, Shares, Timeline};

fn report(policy: &str, scale: f64) -> PolicyReport {
    PolicyReport {
        policy: policy.to_owned(),
        requests: 1_000,
        attempts: (1_000.0 * scale) as u64,
        shares: Shares {
            success: 0.9123456,
            degraded: 0.05,
            queued: 0.01,
            failed: 0.0276544,
        },
        attempts_per_request: scale,
        herd_index: 1.0 + scale,
        peak_attempts_20ms: 42,
        latency_ms: Latency {
            p50: 812.25,
            p95: 2_400.5,
            p99: 5_000.0,
            max: 29_999.9,
        },
        cost_nanodollars: 12_345_678,
        retry_cost_nanodollars: 1_234_567,
        dollars_per_1k: 0.012345678,
        retry_cost_share: 0.1,
        recovery: if scale > 2.0 {
            Recovery::NotRecovered
        } else {
            Recovery::Recovered { after_s: 12.0 }
        },
        malformed_output: MalformedOutput::default(),
        timeline: Timeline {
            bucket_s: 1.0,
            offered_per_s: vec![100.0, 250.5 * scale, 100.0],
            capacity_per_s: vec![Some(200.0), Some(50.0), None],
            success_rate: vec![Some(1.0), Some(0.25), None],
            retries_per_s: vec![0.0, 150.0 * scale, 1.0 / 3.0],
            invalid_outputs_per_s: vec![0.0; 3],
            malformed_delivered_per_s: vec![0.0; 3],
            providers: vec![ProviderTimeline {
                name: "anthropic".to_owned(),
                offered_per_s: vec![100.0, 250.5 * scale, 100.0],
                capacity_per_s: vec![Some(200.0), Some(50.0), None],
            }],
        },
    }
}

fn meta() -> Meta {
    Meta {
        scenario: "test storm".to_owned(),
        seed: 7,
        duration_s: 3.0,
        storm_s: Some((1.0, 2.0)),
    }
}

#[test]
fn table_is_fixed_width_and_stable() {
    let reports = [report("naive", 3.0), report("breakwater", 1.2)];
    let t = table(&meta(), &reports);
    let expected = "\
test storm — seed 7, 3 s, storm 1–2 s
                            naive   breakwater
requests                     1000         1000
success %                   91.23        91.23
degraded %                   5.00         5.00
queued %                     1.00         1.00
failed %                     2.77         2.77
attempts/request            3.000        1.200
herd index                   4.00         2.20
peak attempts/20ms             42           42
latency p50 ms              812.2        812.2
latency p95 ms             2400.5       2400.5
latency p99 ms             5000.0       5000.0
latency max ms            29999.9      29999.9
$ per 1k requests          0.0123       0.0123
retry $ share %             10.00        10.00
recovery                       no       12.0 s
";
    assert_eq!(t, expected);
    assert_eq!(table(&meta(), &reports), t);
}

#[test]
fn json_has_a_stable_key_order() {
    let reports = [report("naive", 3.0)];
    let j = json(&meta(), &reports);
    assert_eq!(j, json(&meta(), &reports));
    let keys = [
        "\"meta\"",
        "\"scenario\"",
        "\"policies\"",
        "\"policy\"",
        "\"shares\"",
        "\"herd_index\"",
        "\"latency_ms\"",
        "\"recovery\"",
        "\"timeline\"",
    ];
    let positions: Vec<usize> = keys
        .iter()
        .map(|k| j.find(k).unwrap_or_else(|| panic!("{k}")))
        .collect();
    assert!(positions.windows(2).all(|w| w[0] < w[1]), "{positions:?}");
    assert!(j.contains("\"status\": \"not_recovered\""));
    let v: serde_json::Value = serde_json::from_str(&j).unwrap();
    assert_eq!(
        v["policies"][0]["timeline"]["capacity_per_s"][2],
        serde_json::Value::Null
    );
    assert_eq!(v["policies"][0]["peak_attempts_20ms"], 42);
}

#[test]
fn csv_rows_per_bucket_per_policy() {
    let reports = [report("naive", 2.0), report("a,b", 1.0)];
    let c = csv(&reports);
    let expected = "\
policy,bucket_start_s,offered_per_s,capacity_per_s,success_rate,retries_per_s,offered_per_s.anthropic,capacity_per_s.anthropic
naive,0.000,100.000,200.000,1.000000,0.000,100.000,200.000
naive,1.000,501.000,50.000,0.250000,300.000,501.000,50.000
naive,2.000,100.000,,,0.333,100.000,
\"a,b\",0.000,100.000,200.000,1.000000,0.000,100.000,200.000
\"a,b\",1.000,250.500,50.000,0.250000,150.000,250.500,50.000
\"a,b\",2.000,100.000,,,0.333,100.000,
";
    assert_eq!(c, expected);
}

/// A report that saw malformed output: 12 invalid outputs, 3 % delivered.
fn malformed(policy: &str, validated: bool) -> PolicyReport {
    let mut r = report(policy, 1.0);
    r.malformed_output = if validated {
        MalformedOutput {
            invalid_attempts: 12,
            invalid_nanodollars: 600_000,
            invalid_dollars_per_1k: 0.0006,
            ..MalformedOutput::default()
        }
    } else {
        MalformedOutput {
            delivered: 30,
            delivered_share: 0.03,
            delivered_nanodollars: 3_000_000,
            delivered_dollars_per_1k: 0.003,
            ..MalformedOutput::default()
        }
    };
    r.timeline.invalid_outputs_per_s = vec![0.0, 12.0 * f64::from(u8::from(validated)), 0.0];
    r.timeline.malformed_delivered_per_s = vec![0.0, 30.0 * f64::from(u8::from(!validated)), 0.0];
    r
}

#[test]
fn malformed_output_rows_and_columns_appear_when_seen() {
    let reports = [malformed("checked", true), malformed("unchecked", false)];
    let t = table(&meta(), &reports);
    let rows: Vec<&str> = t
        .lines()
        .filter(|l| l.starts_with("invalid") || l.starts_with("malformed"))
        .collect();
    assert_eq!(
        rows,
        [
            "invalid outputs                12            0",
            "invalid output $/1k        0.0006       0.0000",
            "malformed deliv. %           0.00         3.00",
            "malformed $/1k             0.0000       0.0030",
        ]
    );
    // Without any, the table is as it always was.
    let plain = table(&meta(), &[report("checked", 1.0)]);
    assert!(!plain.contains("invalid") && !plain.contains("malformed"));

    let c = csv(&reports);
    let mut lines = c.lines();
    assert!(
        lines
            .next()
            .unwrap()
            .ends_with(",capacity_per_s.anthropic,invalid_outputs_per_s,malformed_delivered_per_s")
    );
    assert!(lines.next().unwrap().ends_with(",0.000,0.000"));
    assert!(lines.next().unwrap().ends_with(",12.000,0.000"));
    assert!(c.lines().nth(5).unwrap().ends_with(",0.000,30.000"));

    let v: serde_json::Value = serde_json::from_str(&json(&meta(), &reports)).unwrap();
    assert_eq!(v["policies"][0]["malformed_output"]["invalid_attempts"], 12);
    assert_eq!(v["policies"][1]["malformed_output"]["delivered"], 30);
}

#[test]
fn svg_plots_render_without_fonts() {
    let reports = [report("naive", 3.0), report("breakwater", 1.2)];
    let plots = svg_plots(&meta(), &reports);
    let names: Vec<_> = plots.iter().map(|p| p.name).collect();
    assert_eq!(
        names,
        ["offered-load.svg", "success-rate.svg", "retries.svg"]
    );
    for p in &plots {
        assert!(p.svg.starts_with("<svg"), "{}", p.name);
        assert!(p.svg.trim_end().ends_with("</svg>"), "{}", p.name);
        assert!(p.svg.contains("<polyline"), "{}", p.name);
        assert!(p.svg.contains("breakwater"), "{}", p.name);
    }
    assert!(plots[0].svg.contains("capacity"));
    assert_eq!(svg_plots(&meta(), &reports), plots);
    // No reports: still valid, empty plots.
    assert!(
        svg_plots(&meta(), &[])
            .iter()
            .all(|p| p.svg.contains("</svg>"))
    );
}

#[test]
#[ignore = "writes /tmp/plot-*.svg for a look"]
fn write_plots_for_a_look() {
    let reports = [report("naive", 3.0), report("breakwater", 1.2)];
    for p in svg_plots(&meta(), &reports) {
        std::fs::write(format!("/tmp/plot-{}", p.name), p.svg).unwrap();
    }
}
