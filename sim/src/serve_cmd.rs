//! The `serve` command: options, the banner, the run until Ctrl-C or `--duration`.

use std::io::Write;
use std::net::SocketAddr;
use std::time::Duration;

use breakwater_sim::scenario::StormTarget;
use breakwater_sim::serve::{BatchSettings, ServeConfig, Server};

use crate::{Args, load, threads};

/// The options only `serve` takes.
#[derive(Default)]
pub(crate) struct ServeArgs {
    pub(crate) addr: Option<String>,
    pub(crate) speed: Option<f64>,
    pub(crate) from: Option<Duration>,
    pub(crate) duration: Option<Duration>,
    pub(crate) batch_turnaround: Option<Duration>,
    pub(crate) batch_expiry: Option<Duration>,
}

impl ServeArgs {
    pub(crate) fn any(&self) -> bool {
        self.addr.is_some()
            || self.speed.is_some()
            || self.from.is_some()
            || self.duration.is_some()
            || self.batch_turnaround.is_some()
            || self.batch_expiry.is_some()
    }
}

/// `serve`: runs the server until Ctrl-C or `--duration`, then prints what each
/// provider saw.
pub(crate) fn serve_command(args: &Args) -> Result<(), String> {
    let other = [
        (args.json, "--json"),
        (args.csv.is_some(), "--csv"),
        (args.svg.is_some(), "--svg"),
        (args.stats, "--stats"),
        (!args.policies.is_empty(), "--policy"),
        (!args.params.is_empty(), "--param"),
    ];
    if let Some((_, flag)) = other.iter().find(|(given, _)| *given) {
        return Err(format!("{flag} is not an option of `serve` (see --help)"));
    }
    let scenario = load(args)?;
    let text = args.serve.addr.as_deref().unwrap_or("127.0.0.1:0");
    let addr: SocketAddr = text
        .parse()
        .map_err(|_| format!("--addr {text:?} is not an address such as 127.0.0.1:8080"))?;
    let mut config = ServeConfig::new(scenario)
        .speed(args.serve.speed.unwrap_or(1.0))
        .start(args.serve.from.unwrap_or_default());
    if let Some(duration) = args.serve.duration {
        config = config.duration(duration);
    }
    let defaults = BatchSettings::default();
    config = config.batch(BatchSettings {
        turnaround: args.serve.batch_turnaround.unwrap_or(defaults.turnaround),
        expiry: args.serve.batch_expiry.unwrap_or(defaults.expiry),
        ..defaults
    });
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(threads(args).clamp(1, 4))
        .enable_all()
        .build()
        .map_err(|e| format!("cannot start the runtime: {e}"))?;
    runtime.block_on(serve_until_stopped(addr, config))
}

async fn serve_until_stopped(addr: SocketAddr, config: ServeConfig) -> Result<(), String> {
    let lines = serve_banner(&config);
    let running = Server::bind(addr, config)
        .await
        .map_err(|e| e.to_string())?;
    let url = running.url();
    let mut out = std::io::stdout().lock();
    let mut say = |line: String| {
        // A closed stdout must not stop the server.
        let _ = writeln!(out, "{line}");
        let _ = out.flush();
    };
    say(format!("listening on {url}"));
    for m in running.models() {
        say(format!(
            "  {}/{} ({}): model \"{}\" at {url} or {}",
            m.provider,
            m.model,
            m.kind,
            m.model,
            running.provider_url(&m.provider)
        ));
    }
    for name in running.skipped() {
        say(format!("  {name}: not served (a row model, not an API)"));
    }
    for line in lines {
        say(line);
    }
    drop(out);
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        () = running.stopped() => {}
    }
    let at = running.virtual_now();
    let stats = running.stats();
    let batches = running.batch_stats();
    running.shutdown().await;
    let mut summary = format!("stopped at {:.1} s virtual\n", at.as_nanos() as f64 / 1e9);
    for (name, s) in stats {
        summary += &format!(
            "  {name}: {} requests, {} served, {} rate-limited, {} overloaded, {} failed, {} connect errors, {} hung, {} wasted",
            s.arrivals,
            s.served,
            s.rate_limited,
            s.overloaded,
            s.failed,
            s.connect_failed,
            s.hung,
            s.wasted
        );
        summary.push('\n');
    }
    if batches.batches > 0 {
        summary += &format!(
            "  batches: {} created; requests {} succeeded, {} errored, {} expired, {} canceled, {} processing",
            batches.batches,
            batches.succeeded,
            batches.errored,
            batches.expired,
            batches.canceled,
            batches.processing
        );
        summary.push('\n');
    }
    super::emit(&summary)
}

/// The lines after the models: endpoints, speed, and the storms ahead.
fn serve_banner(config: &ServeConfig) -> Vec<String> {
    let speed = config.speed;
    let start = config.start.as_secs_f64();
    let mut lines = vec![
        "  endpoints: POST /v1/messages (Anthropic), POST /v1/chat/completions (OpenAI), POST /v1beta/models/{model}:generateContent | :streamGenerateContent?alt=sse (Gemini, also under /v1/models/); any non-empty key".to_owned(),
        format!(
            "  batch APIs: /v1/messages/batches (Anthropic), /v1/files + /v1/batches (OpenAI); batches processed over {:.1} s virtual, expiring after {:.1} s virtual",
            config.batch.turnaround.as_secs_f64(),
            config.batch.expiry.as_secs_f64()
        ),
        format!(
            "  {:?} at {speed}x from {start} s virtual{}",
            config.scenario.name,
            config
                .duration
                .map_or(", until Ctrl-C".to_owned(), |d| format!(", for {:.1} s", d.as_secs_f64()))
        ),
    ];
    for storm in &config.scenario.storms {
        let (from, to) = (
            storm.from.as_nanos() as f64 / 1e9,
            storm.to.as_nanos() as f64 / 1e9,
        );
        let target = match storm.target {
            StormTarget::Provider(i) => config
                .scenario
                .providers
                .get(i)
                .map_or("?", |p| p.name.as_str()),
            StormTarget::Clients(_) => continue,
        };
        let real = |t: f64| ((t - start) / speed).max(0.0);
        lines.push(format!(
            "  storm {} on {target}: {from}-{to} s virtual ({:.1}-{:.1} s from now)",
            storm.name.as_deref().unwrap_or("(unnamed)"),
            real(from),
            real(to),
        ));
    }
    lines
}
