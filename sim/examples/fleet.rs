//! Plays `scenarios/fleet-outage.toml` (or the scenario named on the command line) at
//! 1, 10 and 100 client replicas and prints the start of the outage per policy.

use breakwater_sim::fleet::{compare, table};
use breakwater_sim::scenario::Scenario;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let path = std::env::args().nth(1).unwrap_or_else(|| {
        concat!(env!("CARGO_MANIFEST_DIR"), "/scenarios/fleet-outage.toml").to_owned()
    });
    let text = std::fs::read_to_string(&path)?;
    let scenario = Scenario::from_toml(&text).map_err(|e| format!("{path}:{e}"))?;
    let counts: Vec<u32> = match std::env::var("FLEET_REPLICAS") {
        Ok(list) => list
            .split(',')
            .filter_map(|n| n.trim().parse().ok())
            .collect(),
        Err(_) => vec![1, 10, 100],
    };
    let rows = compare(&scenario, &counts)?;
    print!("{}", table(&rows));
    Ok(())
}
