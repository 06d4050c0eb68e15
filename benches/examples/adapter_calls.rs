//! The adapter bench's two calls, `N` times one way, for a profiler: run it under
//! `valgrind --tool=callgrind` once with `breakwater` and once with `bare` (and once
//! with `0` calls, for the set-up) to compare instructions per request.
//!
//! ```text
//! cargo build --profile bench -p breakwater-benches --example adapter_calls
//! valgrind --tool=callgrind target/release/examples/adapter_calls breakwater 2000
//! ```
//!
//! Add `--cache-sim=yes` for L1 misses per call too: on a loaded machine the time gap
//! between the two follows the extra misses (the adapter's larger code and state) more
//! than the extra instructions.
//!
//! Same set-up as `benches/adapter.rs`: one current-thread runtime running both the
//! loopback server and the client, one warm-up call on a kept-alive connection.

use std::process::ExitCode;

use breakwater_benches::adapter::{
    ANSWER_TEXT, bare_call, breakwater_call, breakwater_client, http_client, request,
    runtime_with_server,
};

fn main() -> ExitCode {
    let mut args = std::env::args().skip(1);
    let (Some(which), Some(n)) = (args.next(), args.next()) else {
        eprintln!("usage: adapter_calls <breakwater|bare> <calls>");
        return ExitCode::FAILURE;
    };
    let Ok(n) = n.parse::<u32>() else {
        eprintln!("calls must be a whole number, not {n:?}");
        return ExitCode::FAILURE;
    };
    match run(&which, n) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("{e}");
            ExitCode::FAILURE
        }
    }
}

fn run(which: &str, n: u32) -> Result<(), String> {
    let (rt, server) = runtime_with_server().map_err(|e| e.to_string())?;
    let url = server.url();
    let result = rt.block_on(async {
        match which {
            "breakwater" => {
                let client = breakwater_client(&url, http_client());
                let request = request();
                for _ in 0..=n {
                    let text = breakwater_call(&client, &request).await?;
                    if text != ANSWER_TEXT {
                        return Err(format!("unexpected answer {text:?}"));
                    }
                }
                Ok(())
            }
            "bare" => {
                let http = http_client();
                for _ in 0..=n {
                    let answer = bare_call(&http, &url).await?;
                    if answer.text != ANSWER_TEXT {
                        return Err(format!("unexpected answer {:?}", answer.text));
                    }
                }
                Ok(())
            }
            other => Err(format!("unknown client {other:?}: breakwater or bare")),
        }
    });
    rt.block_on(server.shutdown());
    result
}
