//! The binary's answer to scenarios it cannot run: exit code 2 and one line on stderr
//! that names the file, the line and column, and the field, whether the fault is in
//! the scenario itself, in a policy's free-form tables, or only shows during the run.

use std::path::PathBuf;
use std::process::Output;

const AMPLIFICATION: &str = include_str!("../scenarios/amplification.toml");

/// Writes `text` to a file of this test's own in the temporary directory.
fn scenario_file(name: &str, text: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("breakwater-cli-errors-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("a temporary directory");
    let path = dir.join(name);
    std::fs::write(&path, text).expect("the scenario is written");
    path
}

fn sim(args: &[&str]) -> Output {
    std::process::Command::new(env!("CARGO_BIN_EXE_breakwater-sim"))
        .args(args)
        .output()
        .expect("the binary runs")
}

/// Runs `text` as a scenario file and returns stderr, checking the exit code and
/// that nothing reached stdout.
fn refused(name: &str, text: &str, extra: &[&str]) -> String {
    let file = scenario_file(name, text);
    let mut args = vec!["run", file.to_str().expect("a UTF-8 path")];
    args.extend_from_slice(extra);
    let out = sim(&args);
    std::fs::remove_file(&file).expect("the scenario is removed");
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    assert_eq!(out.status.code(), Some(2), "{name}: {err}");
    assert!(out.stdout.is_empty(), "{name}");
    assert!(err.starts_with("breakwater-sim: "), "{name}: {err}");
    assert_eq!(err.trim_end().lines().count(), 1, "{name}: {err}");
    err
}

/// A run of 10³⁰⁰ seconds used to abort on an 885 GB allocation.
#[test]
fn an_absurd_duration_is_an_error_not_an_abort() {
    let text = AMPLIFICATION.replacen("duration_s = 120", "duration_s = 1e300", 1);
    let err = refused("long.toml", &text, &[]);
    assert!(
        err.contains(
            "long.toml:7:14: duration_s: must be at most 604800 (seven days), found 1e300"
        ),
        "{err}"
    );
}

/// An error in a policy's `route` table names the file, the field inside the table
/// and its own line, as errors in the rest of the scenario do.
#[test]
fn a_policy_table_error_names_the_file_and_the_field() {
    let text = format!(
        "{AMPLIFICATION}\n[[policy]]\nname = \"tuned\"\npreset = \"breakwater\"\n[policy.route]\nbackoff = {{ base_ms = 1.5, cap_ms = 100 }}\n"
    );
    let line = text
        .lines()
        .position(|l| l.starts_with("backoff = "))
        .expect("the backoff line")
        + 1;
    let err = refused("tuned.toml", &text, &[]);
    assert!(
        err.contains(&format!(
            "tuned.toml:{line}:23: policy[4].route.backoff.base_ms: invalid type: floating point `1.5`, expected u64"
        )),
        "{err}"
    );
}

/// A closed loop that never lets the clock move: the run stops with an error naming
/// the policy, instead of never ending.
#[test]
fn a_run_whose_clock_stops_exits_with_2() {
    let text = include_str!("scenarios/zero-time-loop.toml");
    let err = refused("spin.toml", text, &["--threads", "1"]);
    assert!(
        err.contains("policy naive: more than 10000000 events at t = "),
        "{err}"
    );
    assert!(err.contains("think_ms = 0"), "{err}");
}
