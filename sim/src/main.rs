//! breakwater-sim CLI (placeholder): prints the embedded default scenario's summary.

use breakwater_sim::scenario::{DEFAULT_SCENARIO, Scenario};

fn main() {
    match Scenario::from_toml(DEFAULT_SCENARIO) {
        Ok(s) => println!("{}", s.name),
        Err(e) => {
            eprintln!("default scenario: {e}");
            std::process::exit(2);
        }
    }
}
