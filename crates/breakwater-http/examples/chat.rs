//! One chat call to the real providers, through a fallback route.
//!
//! Reads `ANTHROPIC_API_KEY`, `OPENAI_API_KEY` and `GEMINI_API_KEY` from the
//! environment; every provider with a key becomes a step of the route, in that order,
//! so a 529 at Anthropic falls back to OpenAI, then Gemini. With no key at all it says
//! how to use it and exits. Keys are never printed.
//!
//! ```sh
//! ANTHROPIC_API_KEY=... cargo run -p breakwater-http --example chat -- "Say hello"
//! OPENAI_API_KEY=... cargo run -p breakwater-http --example chat -- --stream "Write a haiku"
//! ```
//!
//! `ANTHROPIC_MODEL`, `OPENAI_MODEL` and `GEMINI_MODEL` pick the models;
//! `ANTHROPIC_BASE_URL`, `OPENAI_BASE_URL` and `GEMINI_BASE_URL` point a provider
//! elsewhere — at `breakwater-sim serve`, say (any non-empty key will do there):
//!
//! ```sh
//! breakwater-sim serve --speed 10 &     # prints "listening on http://127.0.0.1:PORT"
//! ANTHROPIC_API_KEY=x ANTHROPIC_BASE_URL=http://127.0.0.1:PORT \
//!   ANTHROPIC_MODEL=claude-sonnet-4-5 cargo run -p breakwater-http --example chat -- hi
//! ```

use std::error::Error;
use std::io::Write;
use std::time::Duration;

use breakwater_core::{RequestOptions, RouteConfig, TaskKind};
use breakwater_http::wire::{Provider, Request};
use breakwater_http::{Client, StreamEvent};
use futures_util::StreamExt;

const USAGE: &str = "\
chat: one call to real LLM providers through a Breakwater fallback route

usage: cargo run -p breakwater-http --example chat -- [--stream] [PROMPT]

Set at least one of ANTHROPIC_API_KEY, OPENAI_API_KEY, GEMINI_API_KEY. Each provider
with a key becomes a step of the route (Anthropic, then OpenAI, then Gemini).
Optional: ANTHROPIC_MODEL, OPENAI_MODEL, GEMINI_MODEL (the models), and
ANTHROPIC_BASE_URL, OPENAI_BASE_URL, GEMINI_BASE_URL (another endpoint, such as
`breakwater-sim serve`).";

/// A provider the environment configures.
struct Configured {
    name: &'static str,
    kind: Provider,
    key: String,
    model: String,
    base_url: String,
}

fn configured() -> Vec<Configured> {
    let providers = [
        (
            "anthropic",
            Provider::Anthropic,
            "ANTHROPIC",
            "claude-haiku-4-5",
            "https://api.anthropic.com",
        ),
        (
            "openai",
            Provider::OpenAi,
            "OPENAI",
            "gpt-4o-mini",
            "https://api.openai.com",
        ),
        (
            "gemini",
            Provider::Gemini,
            "GEMINI",
            "gemini-2.5-flash",
            "https://generativelanguage.googleapis.com",
        ),
    ];
    let var = |name: String| std::env::var(name).ok().filter(|v| !v.trim().is_empty());
    providers
        .into_iter()
        .filter_map(|(name, kind, prefix, model, url)| {
            let key = var(format!("{prefix}_API_KEY"))?;
            let base_url = var(format!("{prefix}_BASE_URL")).unwrap_or_else(|| url.to_owned());
            // The SDKs' base URLs may carry the API version; ours are the host alone.
            let base_url = base_url
                .trim_end_matches('/')
                .trim_end_matches("/v1beta")
                .trim_end_matches("/v1")
                .to_owned();
            Some(Configured {
                name,
                kind,
                key,
                model: var(format!("{prefix}_MODEL")).unwrap_or_else(|| model.to_owned()),
                base_url,
            })
        })
        .collect()
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn Error>> {
    let mut stream = false;
    let mut words = Vec::new();
    for arg in std::env::args().skip(1) {
        match arg.as_str() {
            "--stream" => stream = true,
            "-h" | "--help" => {
                println!("{USAGE}");
                return Ok(());
            }
            _ => words.push(arg),
        }
    }
    let providers = configured();
    if providers.is_empty() {
        println!("{USAGE}");
        return Ok(());
    }
    let prompt = if words.is_empty() {
        "Say hello in five words.".to_owned()
    } else {
        words.join(" ")
    };

    let mut route = String::from("name = \"chat\"\n");
    let mut builder = Client::builder();
    for p in &providers {
        route.push_str(&format!(
            "[[step]]\nprovider = \"{}\"\nmodel = \"{}\"\nattempts = 2\ntimeout_ms = 30000\n",
            p.name, p.model
        ));
        builder = builder.provider(p.name, p.kind, p.base_url.as_str(), p.key.as_str());
    }
    let client = builder.route(RouteConfig::from_toml(&route)?).build()?;
    let request = Request::new(512).user(prompt);
    let deadline = Duration::from_secs(60);
    let steps: Vec<String> = providers
        .iter()
        .map(|p| format!("{}/{}", p.name, p.model))
        .collect();
    eprintln!("route: {}", steps.join(" -> "));

    if stream {
        let events = client.stream(
            "chat",
            &request,
            TaskKind::Interactive,
            deadline,
            RequestOptions::default(),
        );
        let mut events = Box::pin(events);
        let mut out = std::io::stdout();
        while let Some(event) = events.next().await {
            match event? {
                StreamEvent::Source(key) => eprintln!("[{}/{}]", key.provider(), key.model()),
                StreamEvent::Delta(text) => {
                    print!("{text}");
                    out.flush()?;
                }
                StreamEvent::Notice(notice) => eprintln!("[{notice:?}]"),
                StreamEvent::Restarted => eprintln!("\n[restarted]"),
                StreamEvent::Done {
                    usage,
                    attempts,
                    fallback,
                    cost,
                    ..
                } => {
                    println!();
                    eprintln!(
                        "[{} in / {} out tokens, {attempts} attempts, fallback: {fallback}, cost {cost}]",
                        usage.input, usage.output
                    );
                }
                StreamEvent::Degraded { reason } => eprintln!("[degraded: {reason:?}]"),
                _ => {}
            }
        }
        return Ok(());
    }
    let done = client
        .complete("chat", &request, TaskKind::Interactive, deadline)
        .await?;
    println!("{}", done.text);
    let by = done
        .key
        .as_ref()
        .map_or("nobody (degraded)".to_owned(), |k| {
            format!("{}/{}", k.provider(), k.model())
        });
    eprintln!(
        "[{by}: {} in / {} out tokens, {} attempts, fallback: {}, {:.0} ms, cost {}]",
        done.usage.input,
        done.usage.output,
        done.attempts,
        done.fallback,
        done.elapsed.as_secs_f64() * 1e3,
        done.cost
    );
    Ok(())
}
