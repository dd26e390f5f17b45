//! Shared helpers: a sandbox plus a client pointed at it, with in-memory secrets and metrics.
#![allow(dead_code)]

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use backbone::error::PortError;
use backbone::ports::Secrets;
use backbone::spotify::{SpotifyClient, SpotifyConfig, SpotifySession, Tier};
use backbone::telemetry::{Capture, Metrics};
use backbone::{ExposeSecret, SecretString};
use spotify_sandbox::{SandboxConfig, SandboxHandle};

/// Secrets in memory, remembering every write.
#[derive(Default)]
pub struct MemSecrets {
    values: Mutex<HashMap<String, SecretString>>,
    pub writes: Mutex<Vec<String>>,
}

impl MemSecrets {
    pub fn with(pairs: &[(&str, &str)]) -> Arc<Self> {
        let s = Self::default();
        for (k, v) in pairs {
            s.values
                .lock()
                .unwrap()
                .insert((*k).to_owned(), SecretString::from((*v).to_owned()));
        }
        Arc::new(s)
    }

    pub fn value(&self, name: &str) -> Option<String> {
        self.values
            .lock()
            .unwrap()
            .get(name)
            .map(|s| s.expose_secret().to_owned())
    }
}

#[async_trait]
impl Secrets for MemSecrets {
    async fn get(&self, name: &str) -> Result<SecretString, PortError> {
        self.values
            .lock()
            .unwrap()
            .get(name)
            .cloned()
            .ok_or_else(|| {
                PortError::permanent(
                    "secrets.get",
                    std::io::Error::other(format!("no secret {name}")),
                )
            })
    }

    async fn put(&self, name: &str, value: &SecretString) -> Result<(), PortError> {
        self.writes.lock().unwrap().push(name.to_owned());
        self.values
            .lock()
            .unwrap()
            .insert(name.to_owned(), value.clone());
        Ok(())
    }
}

pub fn sandbox_secrets(config: &SandboxConfig) -> Arc<MemSecrets> {
    MemSecrets::with(&[
        ("spotify/client_id", &config.client_id),
        ("spotify/client_secret", &config.client_secret),
        ("spotify/refresh_token", &config.refresh_token),
    ])
}

pub struct World {
    pub sandbox: SandboxHandle,
    pub client: SpotifyClient,
    pub secrets: Arc<MemSecrets>,
    pub capture: Capture,
    pub metrics: Metrics,
}

impl World {
    pub fn session(&self) -> SpotifySession {
        self.client.session_for(Duration::from_secs(120))
    }

    /// The value of counter `name` in the metrics flushed so far (flushes first).
    pub fn metric(&self, name: &str) -> f64 {
        self.metrics.flush(chrono::Utc::now());
        self.capture
            .json()
            .iter()
            .filter_map(|line| line.get(name).and_then(serde_json::Value::as_f64))
            .sum()
    }
}

/// A sandbox of `sandbox_tier` and a client configured for `client_tier`.
pub async fn world(sandbox: SandboxConfig, client_tier: Tier) -> World {
    let secrets = sandbox_secrets(&sandbox);
    let (addr, handle) = spotify_sandbox::spawn(sandbox).await.unwrap();
    let config = SpotifyConfig::for_urls(
        &format!("http://{addr}/v1"),
        &format!("http://{addr}"),
        client_tier,
    );
    let capture = Capture::new();
    let metrics = Metrics::new("Test", vec![], Arc::new(capture.clone()));
    let client = SpotifyClient::new(config, secrets.clone(), metrics.clone());
    World {
        sandbox: handle,
        client,
        secrets,
        capture,
        metrics,
    }
}

pub fn sandbox_config(tier: spotify_sandbox::Tier) -> SandboxConfig {
    SandboxConfig {
        tier,
        artists: 300,
        ..SandboxConfig::default()
    }
}
