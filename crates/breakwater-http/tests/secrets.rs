//! API keys never show up in `Debug` output.

use breakwater_http::wire::{Provider, Request};

const KEY: &str = "sk-test-KNOWN-SECRET-0123456789";

#[test]
fn keys_are_not_in_the_debug_of_any_rendered_type() {
    let mut request = Request::new(32).system("sys").user("hello");
    request.metadata.insert("user_id".into(), "u-1".into());
    for provider in [Provider::Anthropic, Provider::OpenAi, Provider::Gemini] {
        let auth = provider.auth_header(KEY);
        assert!(
            auth.value().contains(KEY),
            "{provider:?}: the header does carry the key"
        );
        for shown in [format!("{auth:?}"), format!("{auth:#?}")] {
            assert!(!shown.contains(KEY), "{provider:?}: {shown}");
            assert!(!shown.contains("KNOWN-SECRET"), "{provider:?}: {shown}");
            assert!(shown.contains(auth.name()) && shown.contains("redacted"));
        }
        for stream in [false, true] {
            let rendered = provider.render(&request, "some-model", None, stream);
            let shown = format!("{rendered:?} {rendered:#?} {:?}", rendered.headers);
            assert!(!shown.contains(KEY), "{provider:?}: {shown}");
            assert!(!String::from_utf8_lossy(&rendered.body).contains(KEY));
        }
    }
}
