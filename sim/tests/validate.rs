//! The simulator agrees with published results (see `breakwater_sim::validate`).

use breakwater_sim::validate::{amplification, brooker, table};

#[test]
fn brooker_backoff_experiment_matches_the_published_calls() {
    let checks = brooker(20).expect("the built-in scenario runs");
    println!("{}", table(&checks));
    for c in &checks {
        assert!(c.pass, "{}", table(&checks));
    }
}

#[test]
fn retry_amplification_matches_the_closed_form() {
    let checks = amplification(100_000).expect("the built-in scenario runs");
    println!("{}", table(&checks));
    for c in &checks {
        assert!(c.pass, "{}", table(&checks));
    }
}
