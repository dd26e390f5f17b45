//! Spotify for local runs: the sandbox started in-process (the default: no account, no
//! network), or the API named by `SPOTIFY_API_BASE_URL` with credentials from `SECRET_*`
//! variables.

use std::sync::Arc;

use backbone::SecretString;
use backbone::config::{ConfigError, EnvSource};
use backbone::local::EnvSecrets;
use backbone::ports::Secrets;
use backbone::spotify::{SpotifyClient, SpotifyConfig, Tier};
use backbone::telemetry::Metrics;
use spotify_sandbox::{SandboxConfig, SandboxHandle, Scenario};

/// The secret names the Spotify adapter reads by default.
const CLIENT_ID: &str = "spotify/client_id";
const CLIENT_SECRET: &str = "spotify/client_secret";
const REFRESH_TOKEN: &str = "spotify/refresh_token";

/// Why local Spotify access could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum SpotifySetupError {
    /// A `SPOTIFY_*` variable is malformed.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// The sandbox could not start.
    #[error(transparent)]
    Sandbox(#[from] spotify_sandbox::SandboxError),
    /// The in-memory secrets refused a write (never happens; kept typed).
    #[error(transparent)]
    Secrets(#[from] backbone::error::PortError),
}

/// The Spotify the local functions talk to.
pub struct LocalSpotify {
    /// The adapter, shared by every function.
    pub client: SpotifyClient,
    /// The in-process sandbox, when no `SPOTIFY_API_BASE_URL` was given.
    pub sandbox: Option<SandboxHandle>,
}

impl LocalSpotify {
    /// A sandbox in `tier` with the demo scenario (a release, a follower surge, a removal),
    /// served on a loopback port, and a client pointed at it.
    pub async fn sandbox(tier: Tier, metrics: Metrics) -> Result<Self, SpotifySetupError> {
        Self::sandbox_with(sandbox_config(tier), metrics).await
    }

    /// A sandbox configured by `config`, and a client pointed at it.
    pub async fn sandbox_with(
        config: SandboxConfig,
        metrics: Metrics,
    ) -> Result<Self, SpotifySetupError> {
        let tier = match config.tier {
            spotify_sandbox::Tier::Development => Tier::Development,
            spotify_sandbox::Tier::Extended => Tier::Extended,
        };
        let secrets = EnvSecrets::new();
        for (name, value) in [
            (CLIENT_ID, &config.client_id),
            (CLIENT_SECRET, &config.client_secret),
            (REFRESH_TOKEN, &config.refresh_token),
        ] {
            secrets
                .put(name, &SecretString::from(value.clone()))
                .await?;
        }
        let (addr, handle) = spotify_sandbox::spawn(config).await?;
        let client_config = SpotifyConfig::for_urls(
            &format!("http://{addr}/v1"),
            &format!("http://{addr}"),
            tier,
        );
        Ok(Self {
            client: SpotifyClient::new(client_config, Arc::new(secrets), metrics),
            sandbox: Some(handle),
        })
    }

    /// The sandbox in-process unless `SPOTIFY_API_BASE_URL` is set; then the configured API,
    /// with credentials from `SECRET_SPOTIFY_CLIENT_ID`, `SECRET_SPOTIFY_CLIENT_SECRET` and
    /// `SECRET_SPOTIFY_REFRESH_TOKEN`.
    ///
    /// The in-process sandbox keeps its playlists in `playlists_file` when one is given, so
    /// what one CLI command wrote is there for the next.
    pub async fn from_env(
        env: &dyn EnvSource,
        metrics: Metrics,
        playlists_file: Option<std::path::PathBuf>,
    ) -> Result<Self, SpotifySetupError> {
        let config = SpotifyConfig::from_env(env)?;
        if env.var("SPOTIFY_API_BASE_URL").is_some() {
            return Ok(Self {
                client: SpotifyClient::new(config, Arc::new(EnvSecrets::new()), metrics),
                sandbox: None,
            });
        }
        let sandbox = SandboxConfig {
            playlists_file,
            ..sandbox_config(config.tier)
        };
        Self::sandbox_with(sandbox, metrics).await
    }
}

/// The sandbox of local runs and end-to-end tests: seed 42, 1,200 artists, the demo scenario.
pub fn sandbox_config(tier: Tier) -> SandboxConfig {
    SandboxConfig {
        tier: match tier {
            Tier::Development => spotify_sandbox::Tier::Development,
            Tier::Extended => spotify_sandbox::Tier::Extended,
        },
        scenarios: Scenario::demo(),
        ..SandboxConfig::default()
    }
}
