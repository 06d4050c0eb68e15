//! The built binary: `serve`'s address first and its stop after `--duration`, exit
//! code 2 for bad flags, and a quiet exit when its reader goes away.

mod serve_common;

use std::time::Duration;

use breakwater_http::wire::Provider;
use serve_common::{hello, send};

#[test]
fn the_cli_prints_its_address_and_stops_after_its_duration() {
    use std::io::{BufRead, BufReader};
    use std::process::{Command, Stdio};
    let scenario = concat!(env!("CARGO_MANIFEST_DIR"), "/scenarios/serve-529.toml");
    let mut child = Command::new(env!("CARGO_BIN_EXE_breakwater-sim"))
        .args([
            "serve",
            scenario,
            "--addr",
            "127.0.0.1:0",
            "--speed",
            "10",
            "--duration",
            "1500ms",
            "--batch-turnaround",
            "2s",
        ])
        .stdout(Stdio::piped())
        .spawn()
        .expect("the binary starts");
    let mut out = BufReader::new(child.stdout.take().expect("stdout"));
    let mut first = String::new();
    out.read_line(&mut first).expect("a first line");
    let url = first
        .trim()
        .strip_prefix("listening on ")
        .expect("the address first")
        .to_owned();
    assert!(url.starts_with("http://127.0.0.1:"), "{url}");
    let rest = std::thread::spawn(move || {
        out.lines()
            .map_while(Result::ok)
            .collect::<Vec<_>>()
            .join("\n")
    });
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let status = runtime.block_on(async {
        send(&url, Provider::OpenAi, "gpt-4o-mini", &hello(), false)
            .await
            .status()
    });
    assert_eq!(status, 200);
    // It stops by itself; a generous bound keeps a broken build from hanging the suite.
    let mut polls = 0;
    let exit = loop {
        if let Some(exit) = child.try_wait().expect("wait") {
            break exit;
        }
        polls += 1;
        if polls > 3_000 {
            let _ = child.kill();
            panic!("serve did not stop after --duration");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let rest = rest.join().expect("stdout reader");
    assert!(exit.success(), "{exit:?}\n{rest}");
    assert!(
        rest.contains("anthropic/claude-sonnet-4-5")
            && rest.contains("stopped at")
            && rest.contains("batches processed over 2.0 s virtual"),
        "{rest}"
    );
}

#[test]
fn bad_cli_flags_exit_with_2() {
    for args in [
        &["serve", "--speed", "0"][..],
        &["serve", "--speed", "fast"],
        &["serve", "--duration", "soon"],
        &["serve", "--batch-turnaround", "soon"],
        &["serve", "--batch-expiry", "-1s"],
        &["run", "--batch-expiry", "1s"],
        &["serve", "--addr", "not-an-address"],
        &["serve", "--json"],
        &["run", "--addr", "127.0.0.1:0"],
        &["serve", "/no/such/scenario.toml"],
        &[
            "serve",
            concat!(env!("CARGO_MANIFEST_DIR"), "/scenarios/brooker-occ.toml"),
        ],
    ] {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_breakwater-sim"))
            .args(args)
            .output()
            .expect("the binary runs");
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.starts_with("breakwater-sim: "), "{args:?}: {err}");
        assert!(out.stdout.is_empty(), "{args:?}");
    }
}

/// `breakwater-sim | head` stops reading early: the simulator ends quietly and
/// successfully, without a panic's backtrace.
#[test]
fn a_closed_stdout_ends_the_run_quietly() {
    for args in [
        &[
            "run",
            concat!(env!("CARGO_MANIFEST_DIR"), "/scenarios/amplification.toml"),
        ][..],
        &[
            "run",
            "--json",
            concat!(env!("CARGO_MANIFEST_DIR"), "/scenarios/amplification.toml"),
        ],
        &["--help"],
    ] {
        let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_breakwater-sim"))
            .args(args)
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .expect("the binary runs");
        // Close the reading end before the binary writes (the run takes far longer
        // than this; `--help` may win the race, which only makes its case vacuous).
        drop(child.stdout.take());
        let out = child.wait_with_output().expect("the binary ends");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "{args:?}: {:?} {err}", out.status);
        assert!(err.is_empty(), "{args:?}: {err}");
    }
}
