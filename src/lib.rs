//! The local side of the music platform's task functions: the registry of functions the CLI
//! can run on the embedded adapters, and the runner behind `tasks local`.

pub mod auth;
pub mod content;
pub mod dashboard;
pub mod days;
pub mod pagerduty;
pub mod playlist;
pub mod report;
pub mod schedule;
pub mod serve;
pub mod social;
pub mod spotify;
pub mod streaming;
pub mod template;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use artist_monitoring::ArtistMonitoring;
use backbone::audit::{AuditLog, VerifyReport};
use backbone::config::HarnessConfig;
use backbone::local::{DrainSummary, Invoke, LocalRuntime};
use backbone::ports::{AuditStore, DeadLetter};
use data_sync::DataSync;
use serde::Serialize;
use track_analysis::TrackAnalysis;

use crate::spotify::LocalSpotify;

/// What the local functions run on: the embedded adapters and a Spotify (the sandbox by
/// default).
pub struct Local {
    /// Store, idempotency, audit, queues, bus, clock and telemetry sink.
    pub runtime: LocalRuntime,
    /// Spotify.
    pub spotify: LocalSpotify,
    /// The social platforms (the social sandbox by default); `None` leaves social-media-sync
    /// out of the registry.
    pub social: Option<crate::social::LocalSocial>,
}

/// Every function that exists, wired to the local runtime. Each function's issue adds its line.
pub fn functions(local: &Local) -> Vec<Box<dyn Invoke>> {
    let runtime = &local.runtime;
    let store = Arc::new(runtime.db.clone());
    let events = Arc::new(runtime.bus());
    let objects = Arc::new(local_objects());
    let mut functions: Vec<Box<dyn Invoke>> = vec![
        Box::new(runtime.harness(
            ArtistMonitoring {
                spotify: local.spotify.client.clone(),
                store: store.clone(),
                events: events.clone(),
            },
            HarnessConfig::for_task("artist-monitoring"),
        )),
        Box::new(runtime.harness(
            DataSync {
                spotify: local.spotify.client.clone(),
                store: store.clone(),
                events: events.clone(),
            },
            HarnessConfig::for_task("data-sync"),
        )),
        Box::new(runtime.harness(
            TrackAnalysis {
                objects: objects.clone(),
                store: store.clone(),
                events: events.clone(),
                limits: track_analysis::decode::Limits::default(),
            },
            HarnessConfig::for_task("track-analysis"),
        )),
        Box::new(runtime.harness(
            streaming_metrics::StreamingMetrics::new(store.clone(), events.clone(), objects),
            HarnessConfig::for_task("streaming-metrics"),
        )),
        Box::new(runtime.harness(
            playlist_update::PlaylistUpdate {
                spotify: local.spotify.client.clone(),
                store: store.clone(),
                events: events.clone(),
            },
            HarnessConfig::for_task("playlist-update"),
        )),
        Box::new(
            runtime.harness(
                ai_content_generation::ContentGeneration {
                    store: store.clone(),
                    events,
                    // The CLI validates the generator's settings before it builds the functions
                    // (`content::generator` in `main`); here a bad setting refuses every draft.
                    generator: content::generator(&backbone::config::ProcessEnv)
                        .unwrap_or_else(|e| Arc::new(content::Misconfigured(e.to_string()))),
                    attempts: ai_content_generation::DEFAULT_ATTEMPTS,
                },
                HarnessConfig::for_task("ai-content-generation"),
            ),
        ),
    ];
    // First: the day's social figures are stored before artist-monitoring trends them (the
    // template's schedules run in this order too, 04:00 and 06:00 UTC).
    if let Some(social) = &local.social {
        functions.insert(
            0,
            Box::new(runtime.harness(
                social_media_sync::SocialMediaSync {
                    web: social.web.clone(),
                    store,
                    secrets: social.secrets.clone(),
                    events: Arc::new(runtime.bus()),
                    // Pacing is in real time even when the runner simulates days: the sandbox
                    // checks the spacing of the requests it really receives.
                    clock: Arc::new(backbone::clock::SystemClock),
                    sleeper: Arc::new(social_media_sync::pacing::TokioSleeper),
                    settings: social.settings.clone(),
                },
                HarnessConfig::for_task("social-media-sync"),
            )),
        );
    }
    functions
}

/// The local object source: paths, and https when its client can be built (paths alone
/// otherwise, with a warning).
pub fn local_objects() -> backbone::objects::ObjectRouter {
    backbone::local::local_objects().unwrap_or_else(|err| {
        tracing::warn!(error = %err, "https fetching is unavailable: serving file paths only");
        backbone::objects::ObjectRouter::new().with_paths(Arc::new(backbone::local::FileObjects))
    })
}

/// Why a local run could not go on.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    /// An events folder or file could not be read.
    #[error("cannot read {path}: {source}")]
    Read {
        /// The path.
        path: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// A local adapter failed.
    #[error(transparent)]
    Port(#[from] backbone::error::PortError),
    /// A watchlist could not be read or written.
    #[error(transparent)]
    Watchlist(backbone::watchlist::WatchlistError),
}

/// One sample event and what its invocation returned.
#[derive(Debug, Clone, Serialize)]
pub struct EventRun {
    /// The event file.
    pub file: String,
    /// The response, or the error.
    pub result: Result<serde_json::Value, String>,
}

/// What `tasks local` did for one function.
#[derive(Debug, Clone, Serialize)]
pub struct FunctionRun {
    /// The function.
    pub function: String,
    /// Its sample events, in file-name order.
    pub events: Vec<EventRun>,
    /// The queue drain that followed.
    pub drain: DrainSummary,
    /// Its dead letters after the run.
    pub dead_letters: Vec<DeadLetter>,
}

/// The sample event files of `function`: `events/<function>/*.json`, in name order.
pub fn sample_events(events_dir: &Path, function: &str) -> Result<Vec<PathBuf>, RunError> {
    let dir = events_dir.join(function);
    let entries = std::fs::read_dir(&dir).map_err(|source| RunError::Read {
        path: dir.clone(),
        source,
    })?;
    let mut files = Vec::new();
    for entry in entries {
        let path = entry
            .map_err(|source| RunError::Read {
                path: dir.clone(),
                source,
            })?
            .path();
        if path.extension().is_some_and(|ext| ext == "json") {
            files.push(path);
        }
    }
    files.sort();
    Ok(files)
}

/// Runs `function` over its sample events, then drains its queue.
pub async fn run_function(
    function: &dyn Invoke,
    runtime: &LocalRuntime,
    events_dir: &Path,
    max_wait: Duration,
) -> Result<FunctionRun, RunError> {
    let mut events = Vec::new();
    for path in sample_events(events_dir, function.name())? {
        let bytes = std::fs::read(&path).map_err(|source| RunError::Read {
            path: path.clone(),
            source,
        })?;
        let result = function
            .invoke_bytes(&bytes)
            .await
            .map(|report| report.response)
            .map_err(|err| err.to_string());
        events.push(EventRun {
            file: path.display().to_string(),
            result,
        });
    }
    let drain = function.drain(max_wait).await?;
    let dead_letters = runtime.queues(function.name()).dead_letters().await?;
    Ok(FunctionRun {
        function: function.name().to_owned(),
        events,
        drain,
        dead_letters,
    })
}

/// Verifies every audit stream of the local database.
pub async fn verify_audit(
    runtime: &LocalRuntime,
    stream: Option<&str>,
) -> Result<Vec<VerifyReport>, RunError> {
    Ok(verify_audit_db(&runtime.db, runtime.clock.clone(), stream).await?)
}

/// [`verify_audit`] on a database handle: what `tasks audit verify`, the local report and the
/// dashboard's overview all read.
pub async fn verify_audit_db(
    db: &backbone::local::LocalDb,
    clock: std::sync::Arc<dyn backbone::clock::Clock>,
    stream: Option<&str>,
) -> Result<Vec<VerifyReport>, backbone::error::PortError> {
    let store: std::sync::Arc<dyn AuditStore> = std::sync::Arc::new(db.clone());
    let log = AuditLog::new(store, clock);
    Ok(match stream {
        Some(stream) => vec![log.verify(stream).await?],
        None => log.verify_all().await?,
    })
}
