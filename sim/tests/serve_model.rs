//! `serve`'s model in real time: rate limits and their Retry-After, the speed factor,
//! the queue, outages, and clients that leave.

mod serve_common;

use std::time::Duration;

use breakwater_core::Time;
use breakwater_http::wire::{Provider, StreamItem};
use serve_common::{decode, eventually, hello, http, refusal, send, start};

const LIMITED: &str = r#"
name = "limited"
seed = 3
duration_s = 60
policies = ["naive"]
[[provider]]
name = "openai"
kind = "llm"
rpm = 60
burst_s = 1
ttft = { median_ms = 10 }
per_token = { median_ms = 1 }
[[provider.model]]
name = "for-openai"
[[provider.model]]
name = "for-anthropic"
[[provider.model]]
name = "for-gemini"
[[clients]]
name = "c"
kind = "open"
rate_per_s = 1
"#;

#[tokio::test]
async fn a_429_carries_the_bucket_wait_divided_by_the_speed() {
    let server = start(LIMITED, |c| c.speed(2.0)).await;
    let url = server.url();
    // One request a second, one deep, per model: the next is refused for 1 s virtual,
    // half a second of real time.
    for (provider, model) in [
        (Provider::OpenAi, "for-openai"),
        (Provider::Anthropic, "for-anthropic"),
    ] {
        let first = send(&url, provider, model, &hello(), false).await;
        assert_eq!(first.status(), 200, "{provider:?}");
        let r = send(&url, provider, model, &hello(), false).await;
        assert_eq!(r.status(), 429, "{provider:?}");
        let header = |name: &str| {
            r.headers()
                .get(name)
                .map(|v| v.to_str().unwrap().to_owned())
        };
        assert_eq!(
            header("retry-after-ms").as_deref(),
            Some("500"),
            "{provider:?}"
        );
        assert_eq!(header("retry-after").as_deref(), Some("1"));
        let code = refusal(r, provider).await.1;
        assert!(matches!(
            code.as_deref(),
            Some("rate_limit_exceeded" | "rate_limit_error")
        ));
    }
    let g = send(&url, Provider::Gemini, "for-gemini", &hello(), false).await;
    assert_eq!(g.status(), 200);
    let g = send(&url, Provider::Gemini, "for-gemini", &hello(), false).await;
    assert_eq!(g.status(), 429);
    assert!(
        g.headers().get("retry-after").is_none(),
        "Gemini sends no header"
    );
    let error = Provider::Gemini.parse_error(429, &g.bytes().await.unwrap());
    assert_eq!(error.code.as_deref(), Some("RESOURCE_EXHAUSTED"));
    assert_eq!(error.retry_delay, Some(Duration::from_millis(500)));
    // Once the wait has passed, admitted again.
    tokio::time::sleep(Duration::from_millis(550)).await;
    let again = send(&url, Provider::OpenAi, "for-openai", &hello(), false).await;
    assert_eq!(again.status(), 200);
    assert_eq!(server.stats()[0].1.rate_limited, 3);
    server.shutdown().await;
}

const SLOW: &str = r#"
name = "slow"
seed = 4
duration_s = 60
policies = ["naive"]
[[provider]]
name = "slow"
kind = "llm"
concurrency = 1
queue_limit = 10
overload_start = 10
overload_full = 11
ttft = { median_ms = 3000 }
per_token = { median_ms = 1 }
[[provider.model]]
name = "m"
[[provider]]
name = "down"
kind = "llm"
[[provider.model]]
name = "refused"
[[provider]]
name = "hung"
kind = "llm"
[[provider.model]]
name = "silent"
[[storm]]
kind = "outage"
provider = "down"
from_s = 0
to_s = 1000
mode = "connect"
[[storm]]
kind = "outage"
provider = "hung"
from_s = 0
to_s = 1000
mode = "timeout"
[[clients]]
name = "c"
kind = "open"
rate_per_s = 1
output_tokens = { median = 5, max = 5 }
"#;

#[tokio::test]
async fn speed_compresses_time() {
    let server = start(SLOW, |c| c.speed(100.0)).await;
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert!(
        server.virtual_now() >= Time::from_secs(10),
        "{}",
        server.virtual_now()
    );
    // A 3 s service at 100× takes 30 ms of real time: far inside a 1.5 s timeout that
    // it would miss in real time, and never less than 3 s ÷ 100.
    let client = reqwest::Client::builder()
        .no_proxy()
        .timeout(Duration::from_millis(1_500))
        .build()
        .unwrap();
    let began = tokio::time::Instant::now();
    let rendered = Provider::OpenAi.render(&hello(), "m", None, false);
    let r = client
        .post(format!("{}{}", server.url(), rendered.path))
        .header("authorization", "Bearer k")
        .body(rendered.body)
        .send()
        .await
        .expect("answered within the timeout");
    assert_eq!(r.status(), 200);
    assert!(began.elapsed() >= Duration::from_millis(30));
    server.shutdown().await;
}

#[tokio::test]
async fn queues_outages_and_clients_that_leave() {
    let server = start(SLOW, |c| c.speed(10.0)).await;
    let url = server.url();
    // Concurrency 1: the second waits in the queue for the first (300 ms real each).
    let request = hello();
    let (a, b) = tokio::join!(
        send(&url, Provider::OpenAi, "m", &request, false),
        send(&url, Provider::Anthropic, "m", &request, true),
    );
    assert_eq!((a.status().as_u16(), b.status().as_u16()), (200, 200));
    let items = decode(Provider::Anthropic, &b.bytes().await.unwrap());
    assert_eq!(items.last(), Some(&StreamItem::Done));
    assert_eq!(server.stats()[0].1.max_queue, 1);

    // A client that gives up while served: the model hears of it, the work is wasted.
    let impatient = reqwest::Client::builder()
        .no_proxy()
        .timeout(Duration::from_millis(50))
        .build()
        .unwrap();
    let rendered = Provider::OpenAi.render(&hello(), "m", None, false);
    let gave_up = impatient
        .post(format!("{url}{}", rendered.path))
        .header("authorization", "Bearer k")
        .body(rendered.body)
        .send()
        .await;
    assert!(gave_up.unwrap_err().is_timeout());
    assert!(eventually(Duration::from_secs(10), || server.stats()[0].1.wasted == 1).await);
    assert_eq!(server.stats()[0].1.wasted, 1);

    // Connect outage: the connection closes without a response.
    let refused = http()
        .post(format!("{url}/v1/chat/completions"))
        .header("authorization", "Bearer k")
        .body(r#"{"model":"refused","messages":[{"role":"user","content":"hi"}]}"#)
        .send()
        .await;
    let e = refused.expect_err("no response");
    assert!(!e.is_timeout() && !e.is_status(), "{e:?}");
    // Timeout outage: nothing comes until the client leaves.
    let silent = impatient
        .post(format!("{url}/v1/chat/completions"))
        .header("authorization", "Bearer k")
        .body(r#"{"model":"silent","messages":[{"role":"user","content":"hi"}]}"#)
        .send()
        .await;
    assert!(silent.expect_err("no response").is_timeout());
    let stats = server.stats();
    assert_eq!((stats[1].1.connect_failed, stats[2].1.hung), (1, 1));
    server.shutdown().await;
}

#[tokio::test]
async fn bad_configs_are_refused() {
    use breakwater_sim::scenario::Scenario;
    use breakwater_sim::serve::{ServeConfig, ServeError, Server};
    let addr = "127.0.0.1:0".parse().expect("loopback");
    let scenario = Scenario::from_toml(SLOW).expect("parses");
    for speed in [0.0, -1.0, f64::NAN, f64::INFINITY] {
        let config = ServeConfig::new(scenario.clone()).speed(speed);
        assert!(matches!(
            Server::bind(addr, config).await,
            Err(ServeError::Speed(_))
        ));
    }
    let far = ServeConfig::new(scenario.clone()).start(Duration::from_secs(u64::MAX));
    assert!(matches!(
        Server::bind(addr, far).await,
        Err(ServeError::Start)
    ));
    let rows = Scenario::from_toml(include_str!("../scenarios/brooker-occ.toml")).expect("parses");
    let config = ServeConfig::new(rows);
    assert!(matches!(
        Server::bind(addr, config).await,
        Err(ServeError::NothingToServe)
    ));
    // A taken port is a bind error naming the address.
    let taken = start(SLOW, |c| c).await;
    match Server::bind(taken.local_addr(), ServeConfig::new(scenario)).await {
        Err(e @ ServeError::Bind { .. }) => {
            assert!(e.to_string().contains(&taken.local_addr().to_string()))
        }
        other => panic!("{other:?}"),
    }
    taken.shutdown().await;
}
