//! Secrets semantics above the [`Secrets`] port: an in-memory TTL cache, and the typed Spotify
//! credentials with refresh-token rotation.
//!
//! A Lambda execution environment lives for many invocations; fetching the secret on each would
//! add latency and Secrets Manager cost. [`CachedSecrets`] keeps each value for a TTL, and
//! [`CachedSecrets::invalidate`] drops one at once when the downstream refuses it (the secret
//! was rotated under us), so the next `get` fetches the current value. Values stay
//! [`SecretString`]s throughout and are never logged.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;

use crate::clock::Clock;
use crate::error::PortError;
use crate::ports::Secrets;

/// How long a cached value is used before it is fetched again, unless configured otherwise.
pub const DEFAULT_SECRETS_TTL: Duration = Duration::from_secs(300);

/// A TTL cache in front of any [`Secrets`] backend.
pub struct CachedSecrets<S: Secrets> {
    inner: S,
    clock: Arc<dyn Clock>,
    ttl: chrono::Duration,
    entries: Mutex<HashMap<String, (DateTime<Utc>, SecretString)>>,
}

impl<S: Secrets> std::fmt::Debug for CachedSecrets<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Names only: the values are secret.
        let names: Vec<String> = self
            .entries
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .keys()
            .cloned()
            .collect();
        f.debug_struct("CachedSecrets")
            .field("ttl", &self.ttl)
            .field("cached", &names)
            .finish_non_exhaustive()
    }
}

impl<S: Secrets> CachedSecrets<S> {
    /// Caches values of `inner` for `ttl`, timed by `clock`.
    pub fn new(inner: S, clock: Arc<dyn Clock>, ttl: Duration) -> Self {
        Self {
            inner,
            clock,
            ttl: chrono::Duration::from_std(ttl).unwrap_or(chrono::Duration::MAX),
            entries: Mutex::new(HashMap::new()),
        }
    }

    /// Forgets the cached value of `name`: call it when the downstream refuses the credentials,
    /// so the next `get` fetches the current version.
    pub fn invalidate(&self, name: &str) {
        self.lock().remove(name);
    }

    /// The backend behind the cache.
    pub fn inner(&self) -> &S {
        &self.inner
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, (DateTime<Utc>, SecretString)>> {
        self.entries.lock().unwrap_or_else(|p| p.into_inner())
    }
}

#[async_trait]
impl<S: Secrets> Secrets for CachedSecrets<S> {
    async fn get(&self, name: &str) -> Result<SecretString, PortError> {
        let now = self.clock.now();
        if let Some((fetched, value)) = self.lock().get(name)
            && now < *fetched + self.ttl
        {
            return Ok(value.clone());
        }
        // Not held across the fetch: concurrent misses may both fetch, which is harmless.
        let value = self.inner.get(name).await?;
        self.lock()
            .insert(name.to_owned(), (self.clock.now(), value.clone()));
        Ok(value)
    }

    async fn put(&self, name: &str, value: &SecretString) -> Result<(), PortError> {
        match self.inner.put(name, value).await {
            Ok(()) => {
                self.lock()
                    .insert(name.to_owned(), (self.clock.now(), value.clone()));
                Ok(())
            }
            Err(err) => {
                // The stored value is unknown now: fetch it next time.
                self.invalidate(name);
                Err(err)
            }
        }
    }
}

/// The Spotify app's credentials, stored as one JSON secret:
/// `{"client_id": "...", "client_secret": "...", "refresh_token": "..."}` (`refresh_token`
/// optional: client-credentials apps have none). Other fields are kept on write-back.
#[derive(Clone, Deserialize)]
pub struct SpotifyCredentials {
    /// The app's client id (not secret: it appears in authorize URLs).
    pub client_id: String,
    /// The app's client secret.
    pub client_secret: SecretString,
    /// The user's refresh token, for user-scoped endpoints.
    #[serde(default)]
    pub refresh_token: Option<SecretString>,
}

impl std::fmt::Debug for SpotifyCredentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SpotifyCredentials")
            .field("client_id", &self.client_id)
            .field("client_secret", &"[redacted]")
            .field(
                "refresh_token",
                &self.refresh_token.as_ref().map(|_| "[redacted]"),
            )
            .finish()
    }
}

/// Why the credentials secret could not be used.
#[derive(Debug, thiserror::Error)]
pub enum CredentialsError {
    /// The secret store failed.
    #[error(transparent)]
    Port(#[from] PortError),
    /// The secret is not the expected JSON. The message names the position, never content.
    #[error("secret {name} is not Spotify credentials JSON ({reason})")]
    Malformed {
        /// The secret's name.
        name: String,
        /// What is wrong, without the value.
        reason: String,
    },
}

impl crate::error::Classify for CredentialsError {
    fn class(&self) -> crate::error::ErrorClass {
        match self {
            CredentialsError::Port(err) => err.class(),
            CredentialsError::Malformed { .. } => crate::error::ErrorClass::Permanent,
        }
    }
}

/// serde_json's messages may quote the offending value ("invalid type: string \"...\""): keep
/// only the category and position.
fn malformed(name: &str, err: &serde_json::Error) -> CredentialsError {
    let what = match err.classify() {
        serde_json::error::Category::Io => "unreadable",
        serde_json::error::Category::Syntax | serde_json::error::Category::Eof => "not JSON",
        serde_json::error::Category::Data => "missing or mistyped field",
    };
    CredentialsError::Malformed {
        name: name.to_owned(),
        reason: format!("{what} at line {}, column {}", err.line(), err.column()),
    }
}

impl SpotifyCredentials {
    /// Reads and parses the secret `name`.
    pub async fn load(secrets: &dyn Secrets, name: &str) -> Result<Self, CredentialsError> {
        let raw = secrets.get(name).await?;
        Self::parse(name, &raw)
    }

    /// Parses the secret's JSON text.
    pub fn parse(name: &str, raw: &SecretString) -> Result<Self, CredentialsError> {
        serde_json::from_str(raw.expose_secret()).map_err(|err| malformed(name, &err))
    }

    /// Writes back a rotated refresh token (Spotify may return a new one on refresh): the
    /// secret's other fields are kept as they are, and `self` is updated.
    pub async fn store_refresh_token(
        &mut self,
        secrets: &dyn Secrets,
        name: &str,
        refresh_token: SecretString,
    ) -> Result<(), CredentialsError> {
        let raw = secrets.get(name).await?;
        let mut object: serde_json::Map<String, serde_json::Value> =
            serde_json::from_str(raw.expose_secret()).map_err(|err| malformed(name, &err))?;
        object.insert(
            "refresh_token".into(),
            serde_json::Value::String(refresh_token.expose_secret().to_owned()),
        );
        let text = serde_json::Value::Object(object).to_string();
        secrets.put(name, &SecretString::from(text)).await?;
        self.refresh_token = Some(refresh_token);
        Ok(())
    }
}

/// One JSON secret seen as several named secrets: `get("spotify/client_id")` reads the field
/// `client_id` (the part after the last `/`) of the secret `secret_id`, and `put` rewrites that
/// field alone, keeping the others. This lets the Spotify adapter, which asks for its client
/// id, client secret and refresh token by name, run on the single credentials secret of a
/// deployment (`SPOTIFY_SECRET_ID`, the shape of [`SpotifyCredentials`]).
pub struct JsonSecretFields {
    inner: Arc<dyn Secrets>,
    secret_id: String,
}

impl JsonSecretFields {
    /// The fields of the JSON secret `secret_id` in `inner`.
    pub fn new(inner: Arc<dyn Secrets>, secret_id: impl Into<String>) -> Self {
        Self {
            inner,
            secret_id: secret_id.into(),
        }
    }

    async fn object(&self) -> Result<serde_json::Map<String, serde_json::Value>, PortError> {
        let raw = self.inner.get(&self.secret_id).await?;
        serde_json::from_str(raw.expose_secret())
            .map_err(|err| PortError::permanent("secret.fields", malformed(&self.secret_id, &err)))
    }
}

fn field(name: &str) -> &str {
    name.rsplit('/').next().unwrap_or(name)
}

#[async_trait]
impl Secrets for JsonSecretFields {
    async fn get(&self, name: &str) -> Result<SecretString, PortError> {
        let field = field(name);
        match self.object().await?.get(field) {
            Some(serde_json::Value::String(value)) if !value.is_empty() => {
                Ok(SecretString::from(value.clone()))
            }
            _ => Err(PortError::permanent(
                "secret.fields",
                std::io::Error::other(format!(
                    "secret {} has no field {field:?} (expected JSON with client_id, \
                     client_secret and, for user-scoped calls, refresh_token)",
                    self.secret_id
                )),
            )),
        }
    }

    async fn put(&self, name: &str, value: &SecretString) -> Result<(), PortError> {
        let mut object = self.object().await?;
        object.insert(
            field(name).to_owned(),
            serde_json::Value::String(value.expose_secret().to_owned()),
        );
        let text = serde_json::Value::Object(object).to_string();
        self.inner
            .put(&self.secret_id, &SecretString::from(text))
            .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::ManualClock;
    use std::sync::atomic::{AtomicUsize, Ordering};

    /// A backend that counts fetches.
    #[derive(Default)]
    struct Counting {
        values: Mutex<HashMap<String, String>>,
        gets: AtomicUsize,
    }

    #[async_trait]
    impl Secrets for Counting {
        async fn get(&self, name: &str) -> Result<SecretString, PortError> {
            self.gets.fetch_add(1, Ordering::SeqCst);
            self.values
                .lock()
                .unwrap()
                .get(name)
                .map(|v| SecretString::from(v.clone()))
                .ok_or_else(|| PortError::permanent("get", std::io::Error::other("missing")))
        }

        async fn put(&self, name: &str, value: &SecretString) -> Result<(), PortError> {
            self.values
                .lock()
                .unwrap()
                .insert(name.into(), value.expose_secret().into());
            Ok(())
        }
    }

    #[tokio::test]
    async fn values_are_cached_for_the_ttl_and_invalidate_refetches() {
        let clock = Arc::new(ManualClock::new(Utc::now()));
        let backend = Counting::default();
        backend
            .values
            .lock()
            .unwrap()
            .insert("s".into(), "v1".into());
        let cache = CachedSecrets::new(backend, clock.clone(), Duration::from_secs(60));
        assert_eq!(cache.get("s").await.unwrap().expose_secret(), "v1");
        assert_eq!(cache.get("s").await.unwrap().expose_secret(), "v1");
        assert_eq!(cache.inner().gets.load(Ordering::SeqCst), 1);

        cache
            .inner()
            .values
            .lock()
            .unwrap()
            .insert("s".into(), "v2".into());
        assert_eq!(cache.get("s").await.unwrap().expose_secret(), "v1");
        cache.invalidate("s");
        assert_eq!(cache.get("s").await.unwrap().expose_secret(), "v2");
        assert_eq!(cache.inner().gets.load(Ordering::SeqCst), 2);

        clock.advance(chrono::Duration::seconds(61));
        cache.get("s").await.unwrap();
        assert_eq!(cache.inner().gets.load(Ordering::SeqCst), 3);
        assert!(!format!("{cache:?}").contains("v2"));
    }

    #[tokio::test]
    async fn credentials_parse_print_nothing_and_rotate() {
        let backend = Counting::default();
        backend.values.lock().unwrap().insert(
            "spotify".into(),
            r#"{"client_id":"cid","client_secret":"hunter2","refresh_token":"r1","extra":1}"#
                .into(),
        );
        let mut creds = SpotifyCredentials::load(&backend, "spotify").await.unwrap();
        let shown = format!("{creds:?}");
        assert!(shown.contains("cid") && !shown.contains("hunter2") && !shown.contains("r1"));

        creds
            .store_refresh_token(&backend, "spotify", SecretString::from("r2"))
            .await
            .unwrap();
        let stored: serde_json::Value =
            serde_json::from_str(&backend.values.lock().unwrap()["spotify"]).unwrap();
        assert_eq!(stored["refresh_token"], "r2");
        assert_eq!(stored["extra"], 1);
        assert_eq!(stored["client_secret"], "hunter2");
        assert_eq!(creds.refresh_token.unwrap().expose_secret(), "r2");
    }

    #[test]
    fn malformed_credentials_never_echo_the_value() {
        let raw = SecretString::from(r#"{"client_id":"cid","client_secret":42}"#.to_owned());
        let err = SpotifyCredentials::parse("spotify", &raw).unwrap_err();
        assert!(!err.to_string().contains("42"), "{err}");
        let raw = SecretString::from("hunter2 not json".to_owned());
        let err = SpotifyCredentials::parse("spotify", &raw).unwrap_err();
        assert!(!err.to_string().contains("hunter2"), "{err}");
    }

    #[tokio::test]
    async fn json_fields_read_and_rewrite_one_field() {
        let backend = Arc::new(Counting::default());
        backend.values.lock().unwrap().insert(
            "app/spotify".into(),
            r#"{"client_id":"id-1","client_secret":"s3cr3t","note":"kept"}"#.into(),
        );
        let fields = JsonSecretFields::new(backend.clone(), "app/spotify");
        assert_eq!(
            fields
                .get("spotify/client_id")
                .await
                .unwrap()
                .expose_secret(),
            "id-1"
        );
        let missing = fields.get("spotify/refresh_token").await.unwrap_err();
        let text = crate::error::chain(&missing);
        assert!(
            text.contains("refresh_token") && !text.contains("s3cr3t"),
            "{text}"
        );
        fields
            .put(
                "spotify/refresh_token",
                &SecretString::from("rt-2".to_owned()),
            )
            .await
            .unwrap();
        let stored: serde_json::Value =
            serde_json::from_str(&backend.values.lock().unwrap()["app/spotify"]).unwrap();
        assert_eq!(stored["refresh_token"], "rt-2");
        assert_eq!(stored["client_secret"], "s3cr3t");
        assert_eq!(stored["note"], "kept");
    }
}
