//! The shortest path a user takes: add a key, start, send a request, see it served.

use keyway_tests::{FakeUpstream, Provider, Setup};

#[tokio::test]
async fn a_request_is_served_with_the_accounts_key() {
    let fake = FakeUpstream::start().await;
    fake.register_key(Provider::Anthropic, "sk-ant-work");
    let setup = Setup::new(&fake.base_url(), "");
    let id = setup
        .add_account("anthropic", "Work", "sk-ant-work\n")
        .await;
    assert!(id.starts_with("anthropic-"), "{id}");
    let keyway = setup.start().await;

    let r = keyway.anthropic("claude-sonnet-4-5").await;
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["x-keyway-account"], id.as_str());
    assert_eq!(fake.keys_used(), ["sk-ant-work"]);
    let sent = &fake.requests()[0];
    assert_eq!(sent.header("anthropic-version"), Some("2023-06-01"));
    assert_eq!(sent.header("host"), Some(fake.addr().to_string().as_str()));
    assert_eq!(
        sent.header("authorization"),
        None,
        "the client's own key never leaves Keyway"
    );
    assert_eq!(keyway.stop().await, Some(0));
}
