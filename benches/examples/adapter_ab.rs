//! What the adapter adds to a call, measured in pairs: `adapter_ab [pairs] [--aa]`
//! (default 20,000 pairs) sends the adapter bench's request through
//! `breakwater_http::Client` and with bare reqwest alternately, times each call, and
//! prints both medians and the median of the per-pair differences with its 95%
//! confidence interval. `--aa` pits bare reqwest against a second bare reqwest client
//! instead: the method's own bias, which should come out near zero.
//!
//! ```text
//! cargo run --profile bench -p breakwater-benches --example adapter_ab
//! ```
//!
//! Why pairs: on a shared machine, two criterion runs of the same code differ by more
//! than the few percent in question, because the load drifts between the minutes in
//! which each side is measured. Here the two calls of a pair run microseconds apart,
//! under the same load, so the drift cancels in their difference. The order within a
//! pair follows ABBA (ours first, then bare first, …), so neither side always runs
//! with the other's state in the cache. Each side also pays for the other evicting its
//! code and data, as it would in a service doing other work between calls; criterion's
//! back-to-back loop keeps one side's state warm instead. Both figures are honest;
//! they answer slightly different questions.

use std::process::ExitCode;
use std::time::{Duration, Instant};

use breakwater_benches::adapter::{
    ANSWER_TEXT, bare_call, breakwater_call, breakwater_client, http_client, request,
    runtime_with_server,
};
use breakwater_benches::pairs::{Pair, report};

/// Pairs run before the measured ones (connections, caches, allocator).
const WARM_UP: usize = 1_000;

fn main() -> ExitCode {
    let mut args: Vec<String> = std::env::args().skip(1).collect();
    let aa = args.iter().any(|a| a == "--aa");
    args.retain(|a| a != "--aa");
    let pairs = match args.first().map(|a| a.parse::<usize>()) {
        None => 20_000,
        Some(Ok(n)) if n >= 100 && args.len() == 1 => n,
        Some(_) => {
            eprintln!("usage: adapter_ab [pairs, at least 100] [--aa]");
            return ExitCode::FAILURE;
        }
    };
    let labels = if aa {
        ["bare reqwest (a)", "bare reqwest (b)"]
    } else {
        ["breakwater_http", "bare reqwest"]
    };
    match measure(pairs, aa) {
        Ok(samples) => {
            print!("{}", report(&samples, labels));
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("{e}");
            ExitCode::FAILURE
        }
    }
}

/// Runs `WARM_UP + pairs` pairs on one current-thread runtime that also runs the
/// loopback server (as the criterion bench does) and returns the measured ones. With
/// `aa`, the measured side is a second bare reqwest client (its own connection pool,
/// as the Breakwater client has).
fn measure(pairs: usize, aa: bool) -> Result<Vec<Pair>, String> {
    let (rt, server) = runtime_with_server().map_err(|e| e.to_string())?;
    let url = server.url();
    let client = breakwater_client(&url, http_client());
    let bare = http_client();
    let second = http_client();
    let request = request();
    let ours_once = || {
        timed(|| {
            if aa {
                Ok(rt.block_on(bare_call(&second, &url))?.text)
            } else {
                rt.block_on(breakwater_call(&client, &request))
            }
        })
    };
    let bare_once = || timed(|| Ok(rt.block_on(bare_call(&bare, &url))?.text));
    let mut samples = Vec::with_capacity(pairs);
    for i in 0..WARM_UP + pairs {
        let pair = if i % 2 == 0 {
            let ours = ours_once()?;
            Pair {
                bare: bare_once()?,
                ours,
            }
        } else {
            let bare = bare_once()?;
            Pair {
                ours: ours_once()?,
                bare,
            }
        };
        if i >= WARM_UP {
            samples.push(pair);
        }
    }
    rt.block_on(server.shutdown());
    Ok(samples)
}

// The one clock of this measurement (the workspace allows clock reads only where
// they are named).
#[allow(clippy::disallowed_methods)]
fn clock() -> Instant {
    Instant::now()
}

/// How long `call` took; an error unless it answered the expected text.
fn timed(call: impl FnOnce() -> Result<String, String>) -> Result<Duration, String> {
    let start = clock();
    let text = call()?;
    let took = clock() - start;
    if text == ANSWER_TEXT {
        Ok(took)
    } else {
        Err(format!("unexpected answer {text:?}"))
    }
}
