//! `Secrets` (raw, cached, and the typed Spotify credentials): a local JSON file and Secrets
//! Manager.

use std::sync::Arc;
use std::time::Duration;

use backbone::aws::SecretsManagerSecrets;
use backbone::clock::ManualClock;
use backbone::error::{Classify, ErrorClass};
use backbone::local::FileSecrets;
use backbone::ports::Secrets;
use backbone::secrets_cache::{CachedSecrets, SpotifyCredentials};
use backbone::{ExposeSecret, SecretString};

use crate::helpers::unique;

macro_rules! secrets_contract {
    ($($scenario:ident),* $(,)?) => { $(
        mod $scenario {
            #[tokio::test]
            async fn file() {
                let dir = tempfile::tempdir().unwrap();
                let secrets = backbone::local::FileSecrets::new(dir.path().join("secrets.json"));
                super::$scenario(std::sync::Arc::new(secrets)).await;
            }

            #[tokio::test]
            async fn secrets_manager() {
                let sdk = crate::require_moto!();
                let secrets = super::SecretsManagerSecrets::new(aws_sdk_secretsmanager::Client::new(&sdk));
                super::$scenario(std::sync::Arc::new(secrets)).await;
            }
        }
    )* };
}

secrets_contract!(
    values_are_written_and_read_back,
    cache_serves_until_invalidated,
    spotify_credentials_rotate_their_refresh_token,
);

// Keep the imports honest: both adapter types are named by the macro.
#[allow(dead_code)]
fn _adapters(_: FileSecrets, _: SecretsManagerSecrets) {}

async fn values_are_written_and_read_back(secrets: Arc<dyn Secrets>) {
    let name = unique("music/test");
    let missing = secrets.get(&name).await.unwrap_err();
    assert_eq!(missing.class(), ErrorClass::Permanent, "{missing}");

    secrets.put(&name, &SecretString::from("v1")).await.unwrap();
    assert_eq!(secrets.get(&name).await.unwrap().expose_secret(), "v1");
    secrets.put(&name, &SecretString::from("v2")).await.unwrap();
    assert_eq!(secrets.get(&name).await.unwrap().expose_secret(), "v2");
}

/// A `Secrets` that forwards to a shared backend: lets the test change the value "behind the
/// cache's back", as a rotation in another process would.
struct Shared(Arc<dyn Secrets>);

#[async_trait::async_trait]
impl Secrets for Shared {
    async fn get(&self, name: &str) -> Result<SecretString, backbone::error::PortError> {
        self.0.get(name).await
    }
    async fn put(
        &self,
        name: &str,
        value: &SecretString,
    ) -> Result<(), backbone::error::PortError> {
        self.0.put(name, value).await
    }
}

async fn cache_serves_until_invalidated(secrets: Arc<dyn Secrets>) {
    let name = unique("music/cached");
    secrets
        .put(&name, &SecretString::from("old"))
        .await
        .unwrap();
    let clock = Arc::new(ManualClock::new(chrono::Utc::now()));
    let cached = CachedSecrets::new(
        Shared(secrets.clone()),
        clock.clone(),
        Duration::from_secs(300),
    );
    assert_eq!(cached.get(&name).await.unwrap().expose_secret(), "old");

    // Rotated elsewhere: the cache still answers the old value within its TTL...
    secrets
        .put(&name, &SecretString::from("new"))
        .await
        .unwrap();
    assert_eq!(cached.get(&name).await.unwrap().expose_secret(), "old");
    // ...until the caller saw it refused and invalidated it,
    cached.invalidate(&name);
    assert_eq!(cached.get(&name).await.unwrap().expose_secret(), "new");
    // or the TTL passed.
    secrets
        .put(&name, &SecretString::from("newer"))
        .await
        .unwrap();
    clock.advance(chrono::Duration::seconds(301));
    assert_eq!(cached.get(&name).await.unwrap().expose_secret(), "newer");
    // Writes through the cache are seen at once.
    cached
        .put(&name, &SecretString::from("mine"))
        .await
        .unwrap();
    assert_eq!(cached.get(&name).await.unwrap().expose_secret(), "mine");
    assert_eq!(secrets.get(&name).await.unwrap().expose_secret(), "mine");
}

async fn spotify_credentials_rotate_their_refresh_token(secrets: Arc<dyn Secrets>) {
    let name = unique("music/spotify");
    let json = r#"{"client_id":"cid-123","client_secret":"s3cr3t-value","refresh_token":"rt-1"}"#;
    secrets.put(&name, &SecretString::from(json)).await.unwrap();
    let cached = CachedSecrets::new(
        Shared(secrets.clone()),
        Arc::new(ManualClock::new(chrono::Utc::now())),
        Duration::from_secs(300),
    );
    let mut credentials = SpotifyCredentials::load(&cached, &name).await.unwrap();
    assert_eq!(credentials.client_id, "cid-123");
    assert_eq!(credentials.client_secret.expose_secret(), "s3cr3t-value");
    let shown = format!("{credentials:?}");
    assert!(
        !shown.contains("s3cr3t") && !shown.contains("rt-1"),
        "{shown}"
    );

    credentials
        .store_refresh_token(&cached, &name, SecretString::from("rt-2"))
        .await
        .unwrap();
    // The store has the new token, the other fields unchanged, and a fresh load agrees.
    let stored: serde_json::Value =
        serde_json::from_str(secrets.get(&name).await.unwrap().expose_secret()).unwrap();
    assert_eq!(stored["refresh_token"], "rt-2");
    assert_eq!(stored["client_secret"], "s3cr3t-value");
    let reloaded = SpotifyCredentials::load(secrets.as_ref(), &name)
        .await
        .unwrap();
    assert_eq!(reloaded.refresh_token.unwrap().expose_secret(), "rt-2");
}
