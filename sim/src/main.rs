//! breakwater-sim CLI (placeholder until the event engine lands): describes a scenario.
//!
//! `breakwater-sim` describes the embedded "Sunday 2am 529 storm";
//! `breakwater-sim FILE.toml` checks and describes that scenario file.

use std::process::ExitCode;

use breakwater_sim::report::describe;
use breakwater_sim::scenario::{DEFAULT_SCENARIO, Scenario};

fn main() -> ExitCode {
    let (label, src) = match std::env::args().nth(1) {
        Some(path) => match std::fs::read_to_string(&path) {
            Ok(src) => (path, src),
            Err(e) => {
                eprintln!("{path}: {e}");
                return ExitCode::from(2);
            }
        },
        None => (
            "<embedded sunday-2am.toml>".to_owned(),
            DEFAULT_SCENARIO.to_owned(),
        ),
    };
    match Scenario::from_toml(&src) {
        Ok(scenario) => {
            print!("{}", describe(&scenario));
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("{label}:{e}");
            ExitCode::from(2)
        }
    }
}
