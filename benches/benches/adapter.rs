//! One whole request through `breakwater_http::Client` against a loopback server, and
//! the same request with bare reqwest, in the same run: the difference is what the
//! adapter (plan, registry, rendering, parsing, per-attempt timeout, tracing spans)
//! adds to a call. Both run on one current-thread tokio runtime that also runs the
//! server, over kept-alive connections, with `reqwest::Client`s of the same settings.

use std::hint::black_box;

use breakwater_benches::adapter::{
    ANSWER_TEXT, bare_call, breakwater_call, breakwater_client, http_client, request,
    runtime_with_server,
};
use criterion::Criterion;

// Set-up failures are bugs in the bench: say which and stop.
#[allow(clippy::expect_used)]
pub(crate) fn adapter(c: &mut Criterion) {
    let (rt, server) = runtime_with_server().expect("the runtime and the loopback server start");
    let url = server.url();
    let client = breakwater_client(&url, http_client());
    let bare = http_client();
    let request = request();
    // Both read the same answer (and open their pooled connection) before timing.
    let ours = rt.block_on(breakwater_call(&client, &request));
    let theirs = rt.block_on(bare_call(&bare, &url));
    assert_eq!(ours.as_deref(), Ok(ANSWER_TEXT));
    assert_eq!(
        theirs.map(|a| a.text).as_deref(),
        Ok(ANSWER_TEXT),
        "bare reqwest reads the same answer"
    );

    let mut group = c.benchmark_group("adapter/one_request");
    group.bench_function("breakwater_http", |b| {
        b.iter(|| black_box(rt.block_on(breakwater_call(&client, &request))));
    });
    group.bench_function("bare_reqwest", |b| {
        b.iter(|| black_box(rt.block_on(bare_call(&bare, &url))));
    });
    group.finish();
    rt.block_on(server.shutdown());
}
