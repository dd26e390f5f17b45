//! A stand-in for the Spotify Web API and accounts service, for local runs and tests.
//!
//! It serves a deterministic, seeded catalog whose statistics evolve day by day on a simulated
//! clock, behaves like a Development Mode or an Extended quota app (removed endpoints, missing
//! fields, page limits), issues and rotates OAuth tokens, and injects faults by configuration
//! (429 with `Retry-After`, 5xx, slow responses, expired tokens). Every request is counted per
//! route, so tests and benchmarks can assert how many calls a piece of code made.
//!
//! Not part of any Lambda binary: only the CLI (`tasks sandbox serve`) and tests use it.

pub mod catalog;
mod server;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Arc;

use chrono::NaiveDate;
use serde::{Deserialize, Serialize};
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

pub use catalog::{Catalog, Scenario, USER_ID};
use server::State;

/// The app tier the sandbox imitates.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Tier {
    /// Development Mode (February 2026 rules).
    Development,
    /// Extended quota.
    Extended,
}

/// Faults injected into Web API responses (not the token endpoint), drawn from a seeded RNG.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Faults {
    /// Share of calls answered 429.
    pub rate_limit_rate: f64,
    /// The `Retry-After` (seconds) of those 429s.
    pub retry_after_secs: u64,
    /// Share of calls answered 503.
    pub server_error_rate: f64,
    /// Share of calls delayed by `slow_ms`.
    pub slow_rate: f64,
    /// Delay of slow calls, in milliseconds.
    pub slow_ms: u64,
    /// Share of calls answered 401 "The access token expired" (the token is revoked).
    pub expired_token_rate: f64,
}

impl Default for Faults {
    fn default() -> Self {
        Self {
            rate_limit_rate: 0.0,
            retry_after_secs: 1,
            server_error_rate: 0.0,
            slow_rate: 0.0,
            slow_ms: 0,
            expired_token_rate: 0.0,
        }
    }
}

/// How a sandbox behaves.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct SandboxConfig {
    /// The tier imitated.
    pub tier: Tier,
    /// Seed of the catalog and of fault injection.
    pub seed: u64,
    /// Number of artists generated.
    pub artists: usize,
    /// The date of simulated day 0.
    pub start_date: NaiveDate,
    /// The client id the token endpoint accepts.
    pub client_id: String,
    /// The client secret the token endpoint accepts.
    pub client_secret: String,
    /// The refresh token valid at start.
    pub refresh_token: String,
    /// Whether a refresh hands out a new refresh token (and invalidates the old one).
    pub rotate_refresh_tokens: bool,
    /// Lifetime of access tokens, in seconds.
    pub token_ttl_secs: u64,
    /// Faults injected.
    pub faults: Faults,
    /// What happens to which artist on which simulated day (none by default).
    pub scenarios: Vec<Scenario>,
    /// Where the playlists are kept between runs (none: they live as long as the sandbox).
    /// The local CLI starts a sandbox per command; without this, the playlist one command
    /// wrote would be back to its generated content in the next.
    pub playlists_file: Option<std::path::PathBuf>,
}

impl Default for SandboxConfig {
    fn default() -> Self {
        Self {
            tier: Tier::Development,
            seed: 42,
            artists: 1200,
            start_date: NaiveDate::from_ymd_opt(2026, 1, 1).unwrap_or_default(),
            client_id: "sandbox-client-id".into(),
            client_secret: "sandbox-client-secret".into(),
            refresh_token: "sandbox-refresh-token-0".into(),
            rotate_refresh_tokens: true,
            token_ttl_secs: 3600,
            faults: Faults::default(),
            scenarios: Vec::new(),
            playlists_file: None,
        }
    }
}

/// Errors starting the sandbox.
#[derive(Debug, thiserror::Error)]
pub enum SandboxError {
    /// The playlists file exists but cannot be read or is not one.
    #[error("sandbox playlists file {}: delete it to start from the generated playlists", path.display())]
    Playlists {
        /// The file.
        path: std::path::PathBuf,
        /// The cause.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// The address could not be bound or served.
    #[error("sandbox server on {addr}")]
    Io {
        /// The address.
        addr: SocketAddr,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
}

/// A running sandbox: its state (for assertions and control) and its shutdown.
pub struct SandboxHandle {
    state: Arc<State>,
    shutdown: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<()>>,
}

impl SandboxHandle {
    /// Requests counted per route (`GET /v1/artists/{id}`), faulted ones included.
    pub fn calls(&self) -> BTreeMap<String, u64> {
        self.state.calls()
    }

    /// Requests counted on `route` (`GET /v1/artists`).
    pub fn calls_to(&self, route: &str) -> u64 {
        self.calls().get(route).copied().unwrap_or(0)
    }

    /// All Web API requests (token requests excluded).
    pub fn api_calls(&self) -> u64 {
        self.calls()
            .iter()
            .filter(|(k, _)| k.contains(" /v1/"))
            .map(|(_, v)| v)
            .sum()
    }

    /// The 429s and 5xx answered by fault injection ([`Faults`]) so far (forced 429s of
    /// `rate_limit_next` excluded): what a reliability run reports as Spotify faults.
    pub fn faults_injected(&self) -> u64 {
        self.state.faults_injected()
    }

    /// Forgets the counts.
    pub fn reset_calls(&self) {
        self.state.reset_calls();
    }

    /// Moves the simulated clock forward by `days`.
    pub fn advance_days(&self, days: u32) {
        self.state.advance_days(days);
    }

    /// Sets the simulated clock to `day` (back in time too, to replay a day).
    pub fn set_day(&self, day: u32) {
        self.state.set_day(day);
    }

    /// The current simulated day.
    pub fn day(&self) -> u32 {
        self.state.day()
    }

    /// Replaces the injected faults.
    pub fn set_faults(&self, faults: Faults) {
        self.state.set_faults(faults);
    }

    /// Answers the next `n` Web API calls 429 with `Retry-After: retry_after_secs`.
    pub fn rate_limit_next(&self, n: u32, retry_after_secs: u64) {
        self.state.rate_limit_next(n, retry_after_secs);
    }

    /// The refresh token currently valid (after rotations).
    pub fn current_refresh_token(&self) -> Option<String> {
        self.state.current_refresh_token()
    }

    /// Revokes every refresh token: the next refresh gets `invalid_grant`.
    pub fn revoke_refresh_tokens(&self) {
        self.state.revoke_refresh_tokens();
    }

    /// The catalog served.
    pub fn catalog(&self) -> &Catalog {
        &self.state.catalog
    }

    /// The track ids of playlist `id` as the sandbox holds it now, in order (the truth a test
    /// compares with, read without the API); `None` for an unknown playlist.
    pub fn playlist_tracks(&self, id: &str) -> Option<Vec<String>> {
        self.state.playlist_tracks(id)
    }

    /// Ids of the playlists: (id, owned by the sandbox user).
    pub fn playlists(&self) -> Vec<(String, bool)> {
        self.state.playlist_ids()
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

impl Drop for SandboxHandle {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
    }
}

/// Starts a sandbox on 127.0.0.1 with an OS-chosen port; for tests.
pub async fn spawn(config: SandboxConfig) -> Result<(SocketAddr, SandboxHandle), SandboxError> {
    let addr = SocketAddr::from(([127, 0, 0, 1], 0));
    let listener = TcpListener::bind(addr)
        .await
        .map_err(|source| SandboxError::Io { addr, source })?;
    let local = listener
        .local_addr()
        .map_err(|source| SandboxError::Io { addr, source })?;
    let state = Arc::new(State::new(config)?);
    let app = server::router(state.clone());
    let (tx, rx) = oneshot::channel::<()>();
    let task = tokio::spawn(async move {
        let served = axum::serve(listener, app)
            .with_graceful_shutdown(async {
                let _ = rx.await;
            })
            .await;
        if let Err(err) = served {
            tracing::error!(error = %err, "sandbox server stopped");
        }
    });
    Ok((
        local,
        SandboxHandle {
            state,
            shutdown: Some(tx),
            task: Some(task),
        },
    ))
}

/// Serves a sandbox on `addr` until the process is stopped; for `tasks sandbox serve`.
/// Point `SPOTIFY_API_BASE_URL` at `http://{addr}/v1` and `SPOTIFY_AUTH_BASE_URL` at
/// `http://{addr}`.
pub async fn serve(addr: SocketAddr, config: SandboxConfig) -> Result<(), SandboxError> {
    let listener = TcpListener::bind(addr)
        .await
        .map_err(|source| SandboxError::Io { addr, source })?;
    let state = Arc::new(State::new(config)?);
    tracing::info!(%addr, "Spotify sandbox listening");
    axum::serve(listener, server::router(state))
        .await
        .map_err(|source| SandboxError::Io { addr, source })
}
