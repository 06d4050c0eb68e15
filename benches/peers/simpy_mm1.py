#!/usr/bin/env python3
"""The model of benches/peers/mm1.toml, written as plain SimPy.

Poisson arrivals into one server with a fixed number of slots and a bounded FIFO queue;
an arrival gets a 529 (answered after `reject_s`) with a probability that rises linearly
with the queue's depth, and always when the queue is full; otherwise it is served
(log-normal service time). A 529 is retried after a full-jitter wait, uniform in
[0, min(cap, base * 2**retry)], up to `attempts` attempts in all.

This is the same model as breakwater-sim's `llm` provider with those settings and the
scenario's policy (see sim/src/provider/llm.rs, on_arrival): the 529 draw comes first,
from the queue depth at arrival; then a free slot with an empty queue starts service; a
full queue rejects; anything else waits its turn.

Prints one JSON object: the model's outputs (success share, attempts per request), the
wall time of `env.run()` alone, SimPy's own event count (every event its environment
scheduled and processed: timeouts, resource requests and releases, process starts and
ends) and the count of the model's events as breakwater-sim counts them (see
simpy-compare).
"""

import argparse
import json
import math
import random
import sys
import time

import simpy


def overload_p(depth, start, full):
    return min(1.0, max(0.0, (depth - start) / (full - start)))


def run(args):
    rng = random.Random(args.seed)
    env = simpy.Environment()
    server = simpy.Resource(env, capacity=args.concurrency)
    mu = math.log(args.median_s)
    stats = {"requests": 0, "attempts": 0, "successes": 0, "rejected": 0, "waits": 0,
             "unqueued": 0}

    def request():
        for retry in range(args.attempts):
            stats["attempts"] += 1
            depth = len(server.queue)
            p = overload_p(depth, args.overload_start, args.overload_full)
            # A free slot with an empty queue always starts; short of that a full
            # queue rejects (with queue_limit > 0 a full queue is never empty).
            rejected = (p > 0.0 and rng.random() < p) or depth >= args.queue_limit
            if not rejected:
                at_once = not server.queue and server.count < server.capacity
                with server.request() as slot:
                    yield slot
                    service = rng.lognormvariate(mu, args.sigma)
                    # breakwater-sim schedules no timeout for an attempt that starts at
                    # once and ends before its timeout: its answer surely comes first.
                    stats["unqueued"] += at_once and service < args.timeout_s
                    yield env.timeout(service)
                stats["successes"] += 1
                return
            stats["rejected"] += 1
            yield env.timeout(args.reject_s)
            if retry + 1 < args.attempts:
                wait = rng.uniform(0.0, min(args.cap_s, args.base_s * 2.0**retry))
                if wait > 0.0:
                    stats["waits"] += 1
                    yield env.timeout(wait)

    def arrivals():
        for _ in range(args.requests):
            yield env.timeout(rng.expovariate(args.rate))
            stats["requests"] += 1
            env.process(request())

    env.process(arrivals())
    started = time.perf_counter()
    env.run()
    wall = time.perf_counter() - started

    # Every event is scheduled once and the run ends with the queue empty, so the
    # environment's event id counter is the number of events it processed.
    eid = getattr(env, "_eid", None)
    simpy_events = next(eid) if eid is not None else None
    r, a, s = stats["requests"], stats["attempts"], stats["successes"]
    # breakwater-sim's engine pops: one arrival per request; per served attempt, the
    # service's end, the reply and, unless it started at once and ended in time, the
    # attempt's (by then stale) timeout check; per rejected attempt, its reply; per
    # retry, the wake-up after the wait.
    model_events = r + 3 * s - stats["unqueued"] + stats["rejected"] + stats["waits"]
    return {
        "requests": r,
        "attempts": a,
        "successes": s,
        "success_share": s / r,
        "attempts_per_request": a / r,
        "simulated_s": env.now,
        "wall_s": wall,
        "simpy_events": simpy_events,
        "model_events": model_events,
        "simpy_version": simpy.__version__,
        "python": sys.version.split()[0],
    }


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--requests", type=int, default=200_000)
    p.add_argument("--rate", type=float, default=480.0, help="arrivals per second")
    p.add_argument("--concurrency", type=int, default=50)
    p.add_argument("--queue-limit", type=int, default=50)
    p.add_argument("--overload-start", type=float, default=10)
    p.add_argument("--overload-full", type=float, default=60)
    p.add_argument("--reject-s", type=float, default=0.020)
    p.add_argument("--median-s", type=float, default=0.100)
    p.add_argument("--sigma", type=float, default=0.5)
    p.add_argument("--attempts", type=int, default=4)
    p.add_argument("--base-s", type=float, default=0.050)
    p.add_argument("--cap-s", type=float, default=1.0)
    p.add_argument("--timeout-s", type=float, default=60.0, help="per-attempt timeout")
    args = p.parse_args()
    if args.overload_full <= args.overload_start:
        p.error("--overload-full must be greater than --overload-start")
    if min(args.requests, args.concurrency, args.attempts) < 1 or args.rate <= 0:
        p.error("--requests, --concurrency, --attempts and --rate must be positive")
    print(json.dumps(run(args)))


if __name__ == "__main__":
    main()
