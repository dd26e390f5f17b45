//! A stand-in for the open-data and social platforms social-media-sync talks to: MusicBrainz,
//! Wikidata (entity data and the query service), YouTube Data API, Last.fm, Deezer, Instagram
//! business discovery and TikTok user info.
//!
//! Bodies are built from the recorded responses in `shared/social/fixtures` (read from there
//! at start, never copied), with each platform's documented quirks: counts as strings, errors
//! with HTTP 200, a redirected Wikidata item, rounded and hidden subscriber counts. Figures
//! move day by day on a simulated clock. Faults are injected by configuration (each
//! platform's own rate-limit answer, 5xx, slow responses) and the published rate limits are
//! checked: requests that break them are counted as violations. Every request is counted
//! per upstream.
//!
//! Not part of any Lambda binary: only the CLI and tests use it.

mod server;
pub mod world;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

pub use world::{Fixtures, Persona, find_fixtures};

/// The upstreams served, each under `/<name>` of the sandbox.
pub const UPSTREAMS: [&str; 8] = [
    "musicbrainz",
    "wikidata",
    "wikidata-query",
    "youtube",
    "lastfm",
    "deezer",
    "instagram",
    "tiktok",
];

/// Faults injected, drawn from a seeded RNG.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Faults {
    /// Share of requests answered with the platform's rate-limit error.
    pub rate_limit_rate: f64,
    /// The `Retry-After` (seconds) sent with them.
    pub retry_after_secs: u64,
    /// Share of requests answered 503.
    pub server_error_rate: f64,
    /// Share of requests delayed by `slow_ms`.
    pub slow_rate: f64,
    /// Delay of slow requests, in milliseconds.
    pub slow_ms: u64,
}

impl Default for Faults {
    fn default() -> Self {
        Self {
            rate_limit_rate: 0.0,
            retry_after_secs: 1,
            server_error_rate: 0.0,
            slow_rate: 0.0,
            slow_ms: 0,
        }
    }
}

/// How the sandbox behaves.
#[derive(Debug, Clone, PartialEq)]
pub struct SocialSandboxConfig {
    /// The Spotify artist ids of the roster (their order picks their profiles).
    pub artists: Vec<String>,
    /// Where the recordings are.
    pub fixtures: PathBuf,
    /// Seed of fault injection.
    pub seed: u64,
    /// Faults injected.
    pub faults: Faults,
    /// The YouTube API key accepted.
    pub youtube_key: String,
    /// The Last.fm API key accepted.
    pub lastfm_key: String,
    /// The Instagram token accepted, and the IG user id it belongs to.
    pub instagram: (String, String),
    /// The TikTok token accepted per artist (the profile-0 artists have connected accounts).
    pub tiktok_token_prefix: String,
    /// The MusicBrainz spacing enforced (1 s in the published rules).
    pub musicbrainz_interval: Duration,
    /// Deezer's window: at most `.0` requests per `.1`.
    pub deezer_window: (usize, Duration),
}

impl SocialSandboxConfig {
    /// The defaults for `artists`, reading the recordings from `fixtures`.
    pub fn new(artists: Vec<String>, fixtures: PathBuf) -> Self {
        Self {
            artists,
            fixtures,
            seed: 42,
            faults: Faults::default(),
            youtube_key: "sandbox-youtube-key".into(),
            lastfm_key: "sandbox-lastfm-key".into(),
            instagram: ("sandbox-instagram-token".into(), "17841400000000001".into()),
            tiktok_token_prefix: "sandbox-tiktok-".into(),
            musicbrainz_interval: Duration::from_secs(1),
            deezer_window: (50, Duration::from_secs(5)),
        }
    }

    /// The credentials secret the task needs to reach every platform of this sandbox (JSON).
    pub fn credentials_json(&self) -> String {
        let tiktok: BTreeMap<String, String> = self
            .artists
            .iter()
            .enumerate()
            .filter(|(i, _)| i % 9 == 0)
            .map(|(_, a)| (a.clone(), format!("{}{a}", self.tiktok_token_prefix)))
            .collect();
        serde_json::json!({
            "youtube_api_key": self.youtube_key,
            "lastfm_api_key": self.lastfm_key,
            "instagram_access_token": self.instagram.0,
            "instagram_user_id": self.instagram.1,
            "tiktok_tokens": tiktok,
        })
        .to_string()
    }
}

/// Errors starting the sandbox.
#[derive(Debug, thiserror::Error)]
pub enum SandboxError {
    /// The recordings could not be read.
    #[error("social sandbox fixtures")]
    Fixtures(#[from] world::FixtureError),
    /// The address could not be bound or served.
    #[error("social sandbox server on {addr}")]
    Io {
        /// The address.
        addr: SocketAddr,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
}

/// A running sandbox.
pub struct SocialSandbox {
    addr: SocketAddr,
    state: Arc<server::State>,
    shutdown: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<()>>,
}

impl SocialSandbox {
    /// Starts the sandbox on 127.0.0.1 with an OS-chosen port.
    pub async fn spawn(config: SocialSandboxConfig) -> Result<Self, SandboxError> {
        let fixtures = Fixtures::load(&config.fixtures)?;
        let addr = SocketAddr::from(([127, 0, 0, 1], 0));
        let listener = TcpListener::bind(addr)
            .await
            .map_err(|source| SandboxError::Io { addr, source })?;
        let addr = listener
            .local_addr()
            .map_err(|source| SandboxError::Io { addr, source })?;
        let state = Arc::new(server::State::new(config, fixtures));
        let app = server::router(state.clone());
        let (tx, rx) = oneshot::channel::<()>();
        let task = tokio::spawn(async move {
            let served = axum::serve(listener, app)
                .with_graceful_shutdown(async {
                    let _ = rx.await;
                })
                .await;
            if let Err(err) = served {
                tracing::error!(error = %err, "social sandbox stopped");
            }
        });
        Ok(Self {
            addr,
            state,
            shutdown: Some(tx),
            task: Some(task),
        })
    }

    /// The base URL of every upstream (`http://127.0.0.1:PORT/<upstream>`).
    pub fn base_urls(&self) -> BTreeMap<String, String> {
        UPSTREAMS
            .iter()
            .map(|u| ((*u).to_owned(), format!("http://{}/{u}", self.addr)))
            .collect()
    }

    /// The address served.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Requests per upstream, faulted ones included.
    pub fn calls(&self) -> BTreeMap<String, u64> {
        self.state.calls()
    }

    /// Requests that broke the upstream's published rate limit, per upstream.
    pub fn violations(&self) -> BTreeMap<String, u64> {
        self.state.violations()
    }

    /// Forgets the counts.
    pub fn reset_calls(&self) {
        self.state.reset();
    }

    /// Sets the simulated day.
    pub fn set_day(&self, day: u32) {
        self.state.set_day(day);
    }

    /// Replaces the injected faults.
    pub fn set_faults(&self, faults: Faults) {
        self.state.set_faults(faults);
    }

    /// Answers the next `n` requests to `upstream` with its rate-limit error.
    pub fn rate_limit_next(&self, upstream: &str, n: u32) {
        self.state.force(upstream, n, server::Forced::RateLimit);
    }

    /// Answers the next `n` requests to `upstream` with 503.
    pub fn fail_next(&self, upstream: &str, n: u32) {
        self.state.force(upstream, n, server::Forced::Unavailable);
    }

    /// The persona of each roster artist.
    pub fn personas(&self) -> &[Persona] {
        &self.state.personas
    }

    /// The credentials secret reaching every platform (JSON).
    pub fn credentials_json(&self) -> String {
        self.state.config.credentials_json()
    }

    /// Stops the server and waits for it.
    pub async fn stop(mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(task) = self.task.take() {
            let _ = task.await;
        }
    }
}

impl Drop for SocialSandbox {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
    }
}
