//! The README's "property-testing your own routes" example, as a user would write it.
#![cfg(feature = "proptest")]

use std::time::Duration;

use breakwater_core::testing::Check;
use breakwater_core::{Cost, RegistryConfig, RequestOptions};

const CHAT_ROUTE: &str = r#"
    name = "chat"
    [backoff]
    base_ms = 250
    cap_ms = 4000
    [[step]]
    provider = "anthropic"
    model = "claude-sonnet-4-5"
    attempts = 3
    timeout_ms = 15000
    [[step]]
    provider = "openai"
    model = "gpt-4o-mini"
    attempts = 2
    timeout_ms = 10000
    [[step]]
    provider = "gemini"
    model = "gemini-2.5-pro"
    when = "context_window_exceeded"
    attempts = 1
    timeout_ms = 20000
"#;

#[test]
fn our_chat_route_keeps_its_promises() {
    let prices = breakwater_core::PriceTable::new()
        .with(
            "claude-sonnet-4-5",
            breakwater_core::Price::per_million(3.0, 15.0),
        )
        .with(
            "gpt-4o-mini",
            breakwater_core::Price::per_million(0.15, 0.6),
        );
    let check = Check {
        cases: 512,
        deadline: Duration::from_secs(20),
        options: RequestOptions {
            input_tokens: 4_000,
            max_output_tokens: 1_000,
            cost_ceiling: Some(Cost::from_dollars(0.10)),
            allow_restart_after_tokens: false,
        },
        registry: RegistryConfig::default(),
        prices,
        ..Check::default()
    };
    if let Err(violation) = check.run_toml(CHAT_ROUTE) {
        panic!("{violation}");
    }
}
