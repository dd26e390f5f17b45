//! Cold start of a deployed function: configuration, telemetry and the AWS adapters, once.
//!
//! Every function's `main.rs` calls [`ColdStart::from_env`], builds its task from the
//! adapters, and hands it to [`crate::harness::serve`]. A missing or malformed variable stops
//! the cold start with an error that names it.

use std::sync::Arc;

use crate::config::{ConfigError, HarnessConfig, ProcessEnv};
use crate::harness::{Harness, HarnessPorts, Task, metrics_for};
use crate::secrets_cache::CachedSecrets;
use crate::telemetry::{self, Metrics, Otel, Stdout};

use super::{AwsAdapters, AwsConfig, SecretsManagerSecrets, load_sdk_config};

/// How long a secret value is cached in memory before Secrets Manager is asked again.
const SECRET_TTL: std::time::Duration = std::time::Duration::from_secs(300);

/// What a function has once its cold start is done.
pub struct ColdStart {
    /// The harness settings.
    pub config: HarnessConfig,
    /// The resource names.
    pub aws: AwsConfig,
    /// The adapters.
    pub adapters: AwsAdapters,
    /// The function's metrics (EMF on stdout); give a clone to adapters that count calls.
    pub metrics: Metrics,
    /// Secrets Manager behind an in-memory TTL cache.
    pub secrets: Arc<CachedSecrets<SecretsManagerSecrets>>,
    /// The SDK configuration, for the clients a single function needs (Bedrock).
    pub sdk: aws_config::SdkConfig,
    /// OpenTelemetry (OTLP metrics and spans), when the `OTEL_*` variables switch it on.
    pub otel: Option<Arc<Otel>>,
}

impl ColdStart {
    /// Reads the environment for the function `task` at `crate_version`, installs the JSON
    /// logger and builds every client.
    pub async fn from_env(task: &str, crate_version: &str) -> Result<Self, ConfigError> {
        let config = HarnessConfig::from_env(&ProcessEnv, task, crate_version)?;
        let otel = Otel::from_env(&ProcessEnv, task, &config.version)?;
        telemetry::init_with_otel(&ProcessEnv, Arc::new(Stdout), otel.as_deref())?;
        let aws = AwsConfig::from_env(&ProcessEnv)?;
        let sdk = load_sdk_config().await;
        let sink = match &otel {
            Some(otel) => otel.metrics_sink(Arc::new(Stdout)),
            None => Arc::new(Stdout),
        };
        let metrics = metrics_for(&config, task, sink);
        // Every SDK call and retry is counted into the invocation's EMF metrics.
        let adapters = AwsAdapters::with_metrics(&sdk, &aws, metrics.clone());
        let secrets = Arc::new(CachedSecrets::new(
            adapters.secrets.clone(),
            Arc::new(crate::clock::SystemClock),
            SECRET_TTL,
        ));
        Ok(Self {
            config,
            aws,
            adapters,
            metrics,
            secrets,
            sdk,
            otel,
        })
    }

    /// The Spotify client, configured from `SPOTIFY_*` and reading its credentials from the
    /// JSON secret `SPOTIFY_SECRET_ID` (cached), where it also stores rotated refresh tokens.
    /// Without `SPOTIFY_SECRET_ID` the cold start stops with an error naming it.
    #[cfg(feature = "spotify")]
    pub fn spotify(&self) -> Result<crate::spotify::SpotifyClient, ConfigError> {
        let config = crate::spotify::SpotifyConfig::from_env(&ProcessEnv)?;
        let secret_id = self
            .aws
            .spotify_secret_id
            .clone()
            .ok_or(ConfigError::Missing {
                name: "SPOTIFY_SECRET_ID",
            })?;
        let secrets = Arc::new(crate::secrets_cache::JsonSecretFields::new(
            self.secrets.clone(),
            secret_id,
        ));
        Ok(crate::spotify::SpotifyClient::new(
            config,
            secrets,
            self.metrics.clone(),
        ))
    }

    /// The object source of a deployed function: `s3://` with the function's role and, when
    /// built with feature `http`, `https://` URLs. File paths are never served: a message
    /// cannot make a function read its own file system.
    pub fn objects(&self) -> Result<crate::objects::ObjectRouter, crate::error::PortError> {
        let router =
            crate::objects::ObjectRouter::new().with_s3(Arc::new(self.adapters.objects.clone()));
        #[cfg(feature = "http")]
        let router = router.with_https(Arc::new(crate::objects::HttpObjects::new(
            std::time::Duration::from_secs(10),
            std::time::Duration::from_secs(300),
        )?));
        Ok(router)
    }

    /// Puts `task` under the harness on the AWS adapters.
    pub fn harness<T: Task>(&self, task: T) -> Harness<T> {
        let ports = HarnessPorts {
            idempotency: Arc::new(self.adapters.idempotency.clone()),
            audit: Arc::new(self.adapters.audit.clone()),
            queues: Arc::new(self.adapters.queues.clone()),
            clock: Arc::new(crate::clock::SystemClock),
            metrics: self.metrics.clone(),
        };
        Harness::new(task, ports, self.config.clone()).with_otel(self.otel.clone())
    }
}
