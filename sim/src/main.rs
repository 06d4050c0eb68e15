//! `breakwater-sim`: replays 429/529 storms against retry policies, deterministically.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use breakwater_sim::engine::{PolicyRun, run_all};
use breakwater_sim::policy::PolicySetup;
use breakwater_sim::report::{Meta, csv, describe, json, svg_plots, table};
use breakwater_sim::scenario::{DEFAULT_SCENARIO, Preset, Scenario};
use breakwater_sim::serve;

mod serve_cmd;

use breakwater_sim::sweep::{Param, sweep};
use breakwater_sim::validate;
use serve_cmd::{ServeArgs, serve_command};

const HELP: &str = "\
breakwater-sim: replay 429/529 storms against retry policies, deterministically

USAGE:
    breakwater-sim [COMMAND] [SCENARIO.toml] [OPTIONS]

COMMANDS:
    run        play a scenario and compare its policies (the default command;
               with no file, the embedded \"Sunday 2am 529 storm\")
    compare    the same, naming the policies to compare: --policy NAME (repeatable;
               a [[policy]] of the file or a preset: naive, sdk-default, article,
               breakwater)
    sweep      run one policy (--policy NAME) over a grid of settings
               (--param route.backoff.base_ms=100,250,500 --param registry.budget.ratio=0.05,0.1)
               on all cores and print the Pareto front of success, p95 and $/1k
    validate   reproduce published results: Brooker's backoff-and-jitter experiment
               and the closed-form retry amplification; prints ours beside theirs
    describe   print what a scenario contains
    serve      answer HTTP requests with the scenario's provider models and storms in
               real time, in the Anthropic, OpenAI and Gemini wire formats; prints
               its address first (\"listening on http://127.0.0.1:PORT\"), stops on
               Ctrl-C or after --duration

OPTIONS:
    --json          print JSON instead of the table
    --csv FILE      write the per-bucket timelines as CSV
    --svg DIR       write SVG plots (offered load vs capacity, success rate, retries/s)
    --seed N        override the scenario's seed
    --stats         print simulator throughput (events/s, requests/s) to stderr
    --threads N     worker threads (default: all cores)
    --runs N        validate: seeds per Brooker strategy (default 100)
    --addr ADDR     serve: the address to listen on (default 127.0.0.1:0, any free port)
    --speed X       serve: virtual seconds per real second (default 1; 10 plays a
                    60 s storm in 6 s, dividing latencies and Retry-After by 10)
    --from SPAN     serve: start the timeline at this virtual time (e.g. 115s)
    --duration SPAN serve: stop after this much real time (500ms, 60s, 2m, 1h)
    --batch-turnaround SPAN
                    serve: virtual time over which a batch's requests are processed
                    (default 10s; scaled by --speed like every other time)
    --batch-expiry SPAN
                    serve: virtual time after which a batch expires (default 24h)
    -h, --help      this text

The same scenario and seed give byte-identical output on every run.";

#[derive(Default)]
struct Args {
    command: String,
    file: Option<PathBuf>,
    json: bool,
    csv: Option<PathBuf>,
    svg: Option<PathBuf>,
    seed: Option<u64>,
    stats: bool,
    threads: Option<usize>,
    runs: u32,
    policies: Vec<String>,
    params: Vec<String>,
    serve: ServeArgs,
}

fn parse_args() -> Result<Args, String> {
    let mut args = Args {
        command: "run".to_owned(),
        runs: 100,
        ..Args::default()
    };
    let mut it = std::env::args().skip(1).peekable();
    if let Some(first) = it.peek()
        && ["run", "compare", "sweep", "validate", "describe", "serve"].contains(&first.as_str())
    {
        args.command = it.next().unwrap_or_default();
    }
    while let Some(arg) = it.next() {
        let mut value = |name: &str| it.next().ok_or_else(|| format!("{name} needs a value"));
        match arg.as_str() {
            "-h" | "--help" => {
                // The rest of the line is not read: help whatever follows.
                args.command = "help".to_owned();
                return Ok(args);
            }
            "--json" => args.json = true,
            "--stats" => args.stats = true,
            "--csv" => args.csv = Some(value("--csv")?.into()),
            "--svg" => args.svg = Some(value("--svg")?.into()),
            "--seed" => {
                args.seed = Some(
                    value("--seed")?
                        .parse()
                        .map_err(|_| "--seed needs a number")?,
                )
            }
            "--threads" => {
                args.threads = Some(
                    value("--threads")?
                        .parse()
                        .map_err(|_| "--threads needs a number")?,
                )
            }
            "--runs" => {
                args.runs = value("--runs")?
                    .parse()
                    .map_err(|_| "--runs needs a number")?
            }
            "--policy" => args.policies.push(value("--policy")?),
            "--addr" => args.serve.addr = Some(value("--addr")?),
            "--speed" => {
                let text = value("--speed")?;
                args.serve.speed = Some(
                    text.parse::<f64>()
                        .ok()
                        .filter(|x| x.is_finite() && *x > 0.0)
                        .ok_or_else(|| {
                            format!("--speed needs a number above zero, found {text:?}")
                        })?,
                )
            }
            "--from" => {
                args.serve.from = Some(
                    serve::parse_duration(&value("--from")?).map_err(|e| format!("--from: {e}"))?,
                )
            }
            "--duration" => {
                args.serve.duration = Some(
                    serve::parse_duration(&value("--duration")?)
                        .map_err(|e| format!("--duration: {e}"))?,
                )
            }
            "--batch-turnaround" => {
                args.serve.batch_turnaround = Some(
                    serve::parse_duration(&value("--batch-turnaround")?)
                        .map_err(|e| format!("--batch-turnaround: {e}"))?,
                )
            }
            "--batch-expiry" => {
                args.serve.batch_expiry = Some(
                    serve::parse_duration(&value("--batch-expiry")?)
                        .map_err(|e| format!("--batch-expiry: {e}"))?,
                )
            }
            "--param" => args.params.push(value("--param")?),
            flag if flag.starts_with('-') => {
                return Err(format!("unknown option {flag} (see --help)"));
            }
            file if args.file.is_none() => args.file = Some(file.into()),
            extra => return Err(format!("unexpected argument {extra:?} (see --help)")),
        }
    }
    Ok(args)
}

fn main() -> ExitCode {
    match parse_args().and_then(|args| run(&args)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("breakwater-sim: {e}");
            ExitCode::from(2)
        }
    }
}

/// Where the scenario comes from, as errors name it (`file.toml:12:3: …`).
fn origin(args: &Args) -> String {
    args.file.as_ref().map_or_else(
        || "default scenario".to_owned(),
        |path| path.display().to_string(),
    )
}

fn load(args: &Args) -> Result<Scenario, String> {
    let name = origin(args);
    let text = match &args.file {
        Some(path) => {
            std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?
        }
        None => DEFAULT_SCENARIO.to_owned(),
    };
    let mut scenario = Scenario::from_toml(&text).map_err(|e| format!("{name}:{e}"))?;
    if let Some(seed) = args.seed {
        scenario.seed = seed;
    }
    Ok(scenario)
}

/// The setups of the policies `names` (all the scenario's when empty); an error in a
/// policy's tables names `origin`, the file, as [`load`]'s errors do.
fn setups(scenario: &Scenario, names: &[String], origin: &str) -> Result<Vec<PolicySetup>, String> {
    let setup = |p| PolicySetup::from_policy(scenario, p).map_err(|e| format!("{origin}:{e}"));
    if names.is_empty() {
        return scenario.policies.iter().map(setup).collect();
    }
    names
        .iter()
        .map(
            |name| match scenario.policies.iter().find(|p| &p.name == name) {
                Some(p) => setup(p),
                None => Preset::from_name(name)
                    .map(|preset| PolicySetup::preset(scenario, preset, name))
                    .ok_or_else(|| format!("no policy or preset named {name:?}")),
            },
        )
        .collect()
}

fn threads(args: &Args) -> usize {
    args.threads
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()))
}

fn run(args: &Args) -> Result<(), String> {
    if args.command == "help" {
        return emit(&format!("{HELP}\n"));
    }
    if args.command != "serve" && args.serve.any() {
        return Err(
            "--addr, --speed, --from, --duration and --batch-* are options of `serve`".to_owned(),
        );
    }
    match args.command.as_str() {
        "serve" => serve_command(args),
        "describe" => emit(&describe(&load(args)?)),
        "validate" => {
            let mut checks = validate::brooker(args.runs.max(1)).map_err(|e| e.to_string())?;
            checks.extend(validate::amplification(100_000).map_err(|e| e.to_string())?);
            if args.json {
                emit(&(serde_json::to_string_pretty(&checks).map_err(|e| e.to_string())? + "\n"))?;
            } else {
                emit(&validate::table(&checks))?;
            }
            if checks.iter().all(|c| c.pass) {
                Ok(())
            } else {
                Err("some checks failed".to_owned())
            }
        }
        "sweep" => {
            let scenario = load(args)?;
            let [name] = args.policies.as_slice() else {
                return Err("sweep needs exactly one --policy".to_owned());
            };
            let base = setups(&scenario, std::slice::from_ref(name), &origin(args))?.remove(0);
            let params: Vec<Param> = args
                .params
                .iter()
                .map(|p| Param::parse(p))
                .collect::<Result<_, _>>()?;
            if params.is_empty() {
                return Err("sweep needs at least one --param path=v1,v2,…".to_owned());
            }
            let progress = |done: usize, total: usize| {
                let width = 30;
                let filled = done * width / total.max(1);
                eprint!(
                    "\r[{}{}] {done}/{total}",
                    "#".repeat(filled),
                    ".".repeat(width - filled)
                );
                if done == total {
                    eprintln!();
                }
            };
            let points = sweep(&scenario, &base, &params, threads(args), &progress)
                .map_err(|e| e.to_string())?;
            if args.json {
                return emit(
                    &(serde_json::to_string_pretty(&points).map_err(|e| e.to_string())? + "\n"),
                );
            }
            let mut text = format!(
                "{:>9} {:>10} {:>10} {:>9}  pareto  settings\n",
                "success", "p95 ms", "$/1k", "att/req"
            );
            for p in &points {
                let r = &p.report;
                text += &format!(
                    "{:>8.2}% {:>10.0} {:>10.4} {:>9.3}  {:6}  {}\n",
                    r.shares.success * 100.0,
                    r.latency_ms.p95,
                    r.dollars_per_1k,
                    r.attempts_per_request,
                    if p.pareto { "*" } else { "" },
                    r.policy
                );
            }
            emit(&text)
        }
        _ => {
            let scenario = load(args)?;
            let setups = setups(&scenario, &args.policies, &origin(args))?;
            let started = wall_clock();
            let runs = run_all(&scenario, &setups, threads(args))
                .map_err(|e| format!("{e} (scenario seed {})", scenario.seed))?;
            let elapsed = wall_clock().duration_since(started);
            report(args, &scenario, &runs, elapsed)
        }
    }
}

fn report(
    args: &Args,
    scenario: &Scenario,
    runs: &[PolicyRun],
    elapsed: Duration,
) -> Result<(), String> {
    let meta = Meta::of(scenario);
    let reports: Vec<_> = runs.iter().map(|r| r.report.clone()).collect();
    if args.json {
        emit(&(json(&meta, &reports) + "\n"))?;
    } else {
        emit(&table(&meta, &reports))?;
    }
    if let Some(path) = &args.csv {
        std::fs::write(path, csv(&reports)).map_err(|e| format!("{}: {e}", path.display()))?;
    }
    if let Some(dir) = &args.svg {
        std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
        for plot in svg_plots(&meta, &reports) {
            let path = dir.join(plot.name);
            std::fs::write(&path, plot.svg).map_err(|e| format!("{}: {e}", path.display()))?;
        }
    }
    if args.stats {
        let events: u64 = runs.iter().map(|r| r.events).sum();
        let requests: u64 = reports.iter().map(|r| r.requests).sum();
        let secs = elapsed.as_secs_f64().max(1e-9);
        let threads = threads(args).min(runs.len()).max(1);
        eprintln!(
            "simulated {requests} requests, {events} events in {secs:.3} s on {threads} threads: \
             {:.2} M events/s, {:.2} M requests/s ({:.2} M events/s, {:.2} M requests/s per thread)",
            events as f64 / secs / 1e6,
            requests as f64 / secs / 1e6,
            events as f64 / secs / 1e6 / threads as f64,
            requests as f64 / secs / 1e6 / threads as f64,
        );
    }
    Ok(())
}

/// Writes `text` to stdout. A reader that went away (`breakwater-sim | head`) is not an
/// error: the rest of the output is dropped quietly, as other command-line tools do.
fn emit(text: &str) -> Result<(), String> {
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    match out.write_all(text.as_bytes()).and_then(|()| out.flush()) {
        Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => {
            Err(format!("writing the output: {e}"))
        }
        _ => Ok(()),
    }
}

/// The simulator's one clock read: wall time for its own throughput report
/// (`--stats`), never for simulated time.
#[allow(clippy::disallowed_methods)]
fn wall_clock() -> std::time::Instant {
    std::time::Instant::now()
}
