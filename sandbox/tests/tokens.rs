//! One refresher: concurrent invocations with an expired access token make exactly one
//! refresh call, the rotated refresh token is stored before the new access token is used, the
//! secret is written once per refresh, and no token or client secret reaches a log line.

mod common;

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use backbone::SecretString;
use backbone::error::PortError;
use backbone::ports::Secrets;
use backbone::spotify::{SpotifyClient, SpotifyConfig, SpotifyLibrary, Tier};
use backbone::telemetry::{Capture, Metrics};
use common::{MemSecrets, sandbox_config, sandbox_secrets, world};
use spotify_sandbox::{SandboxConfig, Tier as SandboxTier};

/// Access tokens the client believes expired one second after issue (its renewal margin is
/// a minute), while the sandbox still accepts them.
fn short_lived() -> SandboxConfig {
    SandboxConfig {
        token_ttl_secs: 61,
        ..sandbox_config(SandboxTier::Development)
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn parallel_invocations_with_an_expired_token_refresh_once() {
    let logs = Capture::new();
    let _guard = backbone::telemetry::install_for_test(Arc::new(logs.clone()), "debug");
    let config = short_lived();
    let w = world(config.clone(), Tier::Development).await;
    w.session().current_user().await.unwrap();
    assert_eq!(w.sandbox.calls_to("POST /api/token"), 1);
    // Past the client's renewal point: every session now needs a new access token.
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let n = 16;
    let sessions: Vec<_> = (0..n).map(|_| w.session()).collect();
    let results =
        futures::future::join_all(sessions.iter().map(|session| session.current_user())).await;
    assert!(results.iter().all(Result::is_ok), "{results:?}");
    assert_eq!(
        w.sandbox.calls_to("POST /api/token"),
        2,
        "{n} concurrent invocations made one refresh"
    );
    assert_eq!(w.sandbox.calls_to("GET /v1/me"), 1 + n as u64);
    // One secret write per refresh, each the rotated token, which is the one now valid.
    assert_eq!(
        *w.secrets.writes.lock().unwrap(),
        vec!["spotify/refresh_token", "spotify/refresh_token"]
    );
    assert_eq!(
        w.secrets.value("spotify/refresh_token"),
        w.sandbox.current_refresh_token()
    );

    let text = logs.text();
    let mut secrets = vec![
        config.client_secret.clone(),
        config.refresh_token.clone(),
        w.sandbox.current_refresh_token().unwrap(),
    ];
    secrets.retain(|s| !s.is_empty());
    for secret in &secrets {
        assert_eq!(
            text.matches(secret.as_str()).count(),
            0,
            "a secret reached the logs"
        );
    }
    assert!(!text.contains("sbx"), "no access token reached the logs");
}

/// Secrets whose writes fail: the rotated refresh token cannot be stored.
struct ReadOnly(Arc<MemSecrets>);

#[async_trait]
impl Secrets for ReadOnly {
    async fn get(&self, name: &str) -> Result<SecretString, PortError> {
        self.0.get(name).await
    }

    async fn put(&self, _name: &str, _value: &SecretString) -> Result<(), PortError> {
        Err(PortError::transient(
            "secrets.put",
            std::io::Error::other("throttled"),
        ))
    }
}

#[tokio::test]
async fn the_rotated_refresh_token_is_stored_before_the_new_access_token_is_used() {
    let config = sandbox_config(SandboxTier::Development);
    let secrets = Arc::new(ReadOnly(sandbox_secrets(&config)));
    let (addr, sandbox) = spotify_sandbox::spawn(config).await.unwrap();
    let client = SpotifyClient::new(
        SpotifyConfig::for_urls(
            &format!("http://{addr}/v1"),
            &format!("http://{addr}"),
            Tier::Development,
        ),
        secrets,
        Metrics::new("Test", vec![], Arc::new(Capture::new())),
    );
    let err = client
        .session_for(Duration::from_secs(30))
        .current_user()
        .await
        .unwrap_err();
    assert_eq!(
        sandbox.calls_to("POST /api/token"),
        1,
        "the refresh happened"
    );
    assert_eq!(
        sandbox.calls_to("GET /v1/me"),
        0,
        "but its access token was never used: the rotated refresh token could not be stored"
    );
    assert!(
        backbone::error::Classify::class(&err) != backbone::error::ErrorClass::Permanent,
        "a failed secret write is retried: {err}"
    );
}
