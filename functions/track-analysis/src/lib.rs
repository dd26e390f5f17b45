//! track-analysis: decodes a track's audio and extracts its features (tempo and beat grid,
//! key, EBU R128 loudness, RMS, spectral shape, zero-crossing rate, onsets, MFCC and chroma
//! summaries, derived energy and danceability), because Spotify no longer serves audio
//! features to new apps.
//!
//! Two inputs: an explicit request (`{"track": {...}, "audio": "s3://bucket/key"}`) and an
//! S3 upload notification delivered through SQS, whose object key names the track (an ISRC or
//! a Spotify track id as file stem or folder). The audio is fetched through the object port,
//! analysed by the pure [`analysis`] core, stored at `track#<ref>` / `analysis#v<schema>`,
//! announced as a `TrackAnalyzed` event and audited. The task is idempotent by its business
//! key, track + content SHA-256 + schema version: the same content analysed again under the
//! same schema is reported `unchanged`, with no new event.

pub mod analysis;
pub mod decode;
pub mod features;
#[cfg(feature = "plot")]
pub mod plot;
pub mod track;

use std::sync::Arc;

use async_trait::async_trait;
use backbone::config::{self, ConfigError, EnvSource};
use backbone::error::{Classify, ErrorClass, PortError};
use backbone::harness::{Cx, Task};
use backbone::ports::{
    BusEvent, EventPublisher, ItemKey, ObjectLocation, ObjectSource, PutCondition, Store,
};
use backbone::validate::{S3Notification, Validate, ValidationError};
use serde::{Deserialize, Deserializer, Serialize};
use serde_json::json;
use tracing::info;

use crate::decode::{DecodeError, Limits};
use crate::features::{Features, SCHEMA_VERSION};
use crate::track::TrackRef;

/// The event bus `source` of this function's events.
pub const EVENT_SOURCE: &str = "music.track-analysis";
/// The `detail-type` of completed analyses.
pub const ANALYZED_DETAIL_TYPE: &str = "TrackAnalyzed";
/// The version of the `TrackAnalyzed` event schema (`schemas/track-analyzed.schema.json`).
pub const EVENT_SCHEMA_VERSION: &str = "1";
/// Objects one S3 notification may carry (S3 sends one; a hand-made batch is bounded).
const MAX_OBJECTS_PER_MESSAGE: usize = 10;

/// An explicit analysis request.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct AnalyzeRequest {
    /// The track.
    pub track: TrackRef,
    /// Where its audio is: `s3://bucket/key`, an https URL, or (locally) a path.
    pub audio: ObjectLocation,
    /// Analyse again even if the same content was analysed under this schema.
    #[serde(default)]
    pub force: bool,
}

/// The input: an explicit request or an S3 upload notification.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(untagged)]
pub enum AnalysisInput {
    /// `{"track": ..., "audio": ...}`.
    Analyze(AnalyzeRequest),
    /// An S3 event notification (`{"Records": [{"eventSource": "aws:s3", ...}]}`).
    Upload(S3Notification),
}

impl<'de> Deserialize<'de> for AnalysisInput {
    fn deserialize<D: Deserializer<'de>>(de: D) -> Result<Self, D::Error> {
        let value = serde_json::Value::deserialize(de)?;
        if S3Notification::looks_like(&value) {
            S3Notification::from_value(value)
                .map(AnalysisInput::Upload)
                .map_err(serde::de::Error::custom)
        } else {
            serde_json::from_value(value)
                .map(AnalysisInput::Analyze)
                .map_err(serde::de::Error::custom)
        }
    }
}

impl Validate for AnalysisInput {
    fn validate(&self) -> Result<(), ValidationError> {
        match self {
            AnalysisInput::Analyze(request) => request.track.check("track"),
            AnalysisInput::Upload(notification) => {
                notification.validate()?;
                if notification.objects.len() > MAX_OBJECTS_PER_MESSAGE {
                    return Err(ValidationError::new(
                        "Records",
                        format!("at most {MAX_OBJECTS_PER_MESSAGE} objects per message"),
                    ));
                }
                Ok(())
            }
        }
    }
}

/// What happened to one track.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TrackOutcome {
    /// The track's store reference (`isrc:...`, `spotify:...`, or `sha256:...` for an upload
    /// whose key names no track).
    pub track: String,
    /// Where the audio was read.
    pub audio: String,
    /// SHA-256 of the audio, hex.
    pub sha256: String,
    /// `analyzed`, or `unchanged` when this content was already analysed under this schema.
    pub status: String,
    /// The stored result's key.
    pub stored: ItemKey,
    /// Tempo, BPM.
    pub bpm: Option<f64>,
    /// Camelot key code.
    pub camelot: Option<String>,
    /// Integrated loudness, LUFS.
    pub integrated_lufs: Option<f64>,
}

/// What one message did.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AnalysisOutput {
    /// One outcome per track.
    pub tracks: Vec<TrackOutcome>,
    /// The message was S3's `s3:TestEvent` (sent when a notification is configured): no-op.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub test_event: bool,
}

/// Why an analysis failed.
#[derive(Debug, thiserror::Error)]
pub enum AnalysisTaskError {
    /// The audio could not be fetched.
    #[error("fetching {location}")]
    Fetch {
        /// Where.
        location: String,
        /// The object port's error.
        #[source]
        source: PortError,
    },
    /// The audio could not be decoded or is over a limit.
    #[error("{location}")]
    Decode {
        /// Where the audio came from.
        location: String,
        /// What is wrong with it.
        #[source]
        source: DecodeError,
    },
    /// The store or the bus failed.
    #[error(transparent)]
    Port(#[from] PortError),
    /// The analysis thread died.
    #[error("the analysis thread failed: {0}")]
    Join(String),
    /// A result could not be encoded.
    #[error("result cannot be encoded: {0}")]
    Encode(#[source] serde_json::Error),
}

impl Classify for AnalysisTaskError {
    fn class(&self) -> ErrorClass {
        match self {
            AnalysisTaskError::Fetch { source, .. } => source.class(),
            // A local read failure of the fetched copy may pass; bad audio never does.
            AnalysisTaskError::Decode {
                source: DecodeError::Io(_),
                ..
            } => ErrorClass::Transient,
            AnalysisTaskError::Decode { .. } => ErrorClass::Permanent,
            AnalysisTaskError::Port(err) => err.class(),
            AnalysisTaskError::Join(_) => ErrorClass::Transient,
            AnalysisTaskError::Encode(_) => ErrorClass::Permanent,
        }
    }
}

/// The decoder's limits from `TRACK_ANALYSIS_MAX_BYTES` (default 1 GiB) and
/// `TRACK_ANALYSIS_MAX_SECONDS` (default 14400, four hours); a malformed value stops the cold
/// start with an error naming the variable.
pub fn limits_from_env(env: &dyn EnvSource) -> Result<Limits, ConfigError> {
    let defaults = Limits::default();
    let max_bytes = config::parse_or(env, "TRACK_ANALYSIS_MAX_BYTES", defaults.max_bytes)?;
    let max_seconds: f64 =
        config::parse_or(env, "TRACK_ANALYSIS_MAX_SECONDS", defaults.max_seconds)?;
    if max_bytes == 0 {
        return Err(ConfigError::Malformed {
            name: "TRACK_ANALYSIS_MAX_BYTES",
            reason: "must be at least 1".into(),
        });
    }
    if !(max_seconds.is_finite() && max_seconds > 0.0) {
        return Err(ConfigError::Malformed {
            name: "TRACK_ANALYSIS_MAX_SECONDS",
            reason: "must be a positive number of seconds".into(),
        });
    }
    Ok(Limits {
        max_bytes,
        max_seconds,
        ..defaults
    })
}

/// The store key of a track's analysis under the current schema.
pub fn analysis_key(track: &str) -> ItemKey {
    ItemKey::new(
        format!("track#{track}"),
        format!("analysis#v{SCHEMA_VERSION}"),
    )
}

/// The stored document of one analysis.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct StoredAnalysis {
    /// Whose features these are: always `track-analysis` here (Spotify's, where a legacy app
    /// still gets them, are stored beside ours under their own source label).
    pub source: String,
    /// The track.
    pub track: Option<TrackRef>,
    /// Where the audio was read.
    pub audio: String,
    /// SHA-256 of the audio, hex.
    pub sha256: String,
    /// Its size, bytes.
    pub bytes: u64,
    /// When it was analysed.
    pub analyzed_at: chrono::DateTime<chrono::Utc>,
    /// The features.
    pub features: Features,
}

/// The track-analysis task, over its ports.
pub struct TrackAnalysis {
    /// Where the audio is read from (S3, https; paths locally).
    pub objects: Arc<dyn ObjectSource>,
    /// Where results are stored.
    pub store: Arc<dyn Store>,
    /// Where `TrackAnalyzed` goes.
    pub events: Arc<dyn EventPublisher>,
    /// What the decoder accepts.
    pub limits: Limits,
}

#[async_trait]
impl Task for TrackAnalysis {
    const NAME: &'static str = "track-analysis";
    type Input = AnalysisInput;
    type Output = AnalysisOutput;
    type Error = AnalysisTaskError;

    fn subject(&self, input: &AnalysisInput) -> String {
        match input {
            AnalysisInput::Analyze(request) => format!("track#{}", request.track.key()),
            AnalysisInput::Upload(notification) => notification
                .objects
                .first()
                .map_or_else(|| "s3:test-event".to_owned(), |o| o.location.to_string()),
        }
    }

    async fn run(&self, input: AnalysisInput, cx: &Cx) -> Result<AnalysisOutput, Self::Error> {
        let mut output = AnalysisOutput::default();
        match input {
            AnalysisInput::Analyze(request) => {
                let outcome = self
                    .analyze(Some(request.track), &request.audio, request.force, cx)
                    .await?;
                output.tracks.push(outcome);
            }
            AnalysisInput::Upload(notification) => {
                if notification.is_test_event() {
                    info!("S3 test event: nothing to analyse");
                    output.test_event = true;
                    return Ok(output);
                }
                for object in &notification.objects {
                    let track = match &object.location {
                        ObjectLocation::S3 { key, .. } => TrackRef::from_object_key(key),
                        _ => None,
                    };
                    let outcome = self.analyze(track, &object.location, false, cx).await?;
                    output.tracks.push(outcome);
                }
            }
        }
        Ok(output)
    }
}

impl TrackAnalysis {
    async fn analyze(
        &self,
        track: Option<TrackRef>,
        location: &ObjectLocation,
        force: bool,
        cx: &Cx,
    ) -> Result<TrackOutcome, AnalysisTaskError> {
        let audio = location.to_string();
        let fetched = self
            .objects
            .fetch(location, self.limits.max_bytes)
            .await
            .map_err(|source| AnalysisTaskError::Fetch {
                location: audio.clone(),
                source,
            })?;
        let sha256 = fetched.sha256().to_owned();
        let bytes = fetched.size();
        let track_key = track
            .as_ref()
            .map_or_else(|| format!("sha256:{sha256}"), TrackRef::key);
        let key = analysis_key(&track_key);
        if !force
            && let Some(item) = self.store.get(&key).await?
            && let Ok(stored) = serde_json::from_value::<StoredAnalysis>(item.data)
            && stored.sha256 == sha256
        {
            info!(track = %track_key, "this content is already analysed under this schema");
            return Ok(outcome(
                &track_key,
                audio,
                sha256,
                "unchanged",
                key,
                &stored.features,
            ));
        }
        let limits = self.limits;
        let started = std::time::Instant::now();
        // Decoding and DSP are CPU-bound: off the async workers. The fetched copy moves in and
        // back out so its temporary file lives until the analysis is done.
        let (fetched, result) = tokio::task::spawn_blocking(move || {
            let result = decode::analyze_path(fetched.path(), &limits);
            (fetched, result)
        })
        .await
        .map_err(|e| AnalysisTaskError::Join(e.to_string()))?;
        drop(fetched);
        let (features, _) = result.map_err(|source| AnalysisTaskError::Decode {
            location: audio.clone(),
            source,
        })?;
        let elapsed = started.elapsed().as_secs_f64();
        cx.metrics().count("TracksAnalyzed", 1);
        info!(
            track = %track_key,
            seconds = features.duration_seconds,
            realtime = features.duration_seconds / elapsed.max(1e-9),
            "analysed"
        );
        let stored = StoredAnalysis {
            source: Self::NAME.to_owned(),
            track: track.clone(),
            audio: audio.clone(),
            sha256: sha256.clone(),
            bytes,
            analyzed_at: cx.now(),
            features,
        };
        let summary = json!({
            "durationSeconds": stored.features.duration_seconds,
            "bpm": stored.features.tempo.as_ref().map(|t| t.bpm),
            "key": stored.features.key.as_ref().map(|k| format!("{} {}", k.tonic, match k.mode { analysis::key::Mode::Major => "major", analysis::key::Mode::Minor => "minor" })),
            "camelot": stored.features.key.as_ref().map(|k| k.camelot.clone()),
            "integratedLufs": stored.features.loudness.integrated_lufs,
            "energy": stored.features.derived.energy,
            "danceability": stored.features.derived.danceability,
        });
        // Publish before storing: a crash in between publishes again on retry (at least once)
        // instead of leaving a stored result whose event was never sent.
        self.events
            .publish(&[BusEvent {
                source: EVENT_SOURCE.into(),
                detail_type: ANALYZED_DETAIL_TYPE.into(),
                detail: json!({
                    "schemaVersion": EVENT_SCHEMA_VERSION,
                    "featureSchemaVersion": SCHEMA_VERSION,
                    "track": track_key,
                    "trackRef": track,
                    "audio": audio,
                    "sha256": sha256,
                    "stored": {"pk": key.pk, "sk": key.sk},
                    "summary": summary,
                }),
                time: cx.now(),
                trace_header: Some(cx.trace_header()),
            }])
            .await?;
        let doc = serde_json::to_value(&stored).map_err(AnalysisTaskError::Encode)?;
        self.store
            .put(&key, &doc, PutCondition::Always, None)
            .await?;
        cx.record(
            format!("track#{track_key}"),
            "track.analyzed",
            json!({"audio": audio, "sha256": sha256, "bytes": bytes, "stored": {"pk": key.pk, "sk": key.sk}, "summary": summary}),
        );
        Ok(outcome(
            &track_key,
            audio,
            sha256,
            "analyzed",
            key,
            &stored.features,
        ))
    }
}

/// A few lines for a person: the main figures of `features`.
pub fn summary(features: &Features) -> String {
    use std::fmt::Write;
    let mut out = String::new();
    let f = features;
    let _ = writeln!(
        out,
        "duration     {:.2} s ({} {} Hz, {} channels)",
        f.duration_seconds, f.source.codec, f.source.sample_rate, f.source.channels
    );
    match &f.tempo {
        Some(t) => {
            let _ = writeln!(
                out,
                "tempo        {:.1} BPM (confidence {:.2}), {} beats, regularity {}",
                t.bpm,
                t.confidence,
                t.beats.count,
                t.beats.regularity.map_or("-".into(), |r| format!("{r:.2}"))
            );
        }
        None => {
            let _ = writeln!(out, "tempo        none found");
        }
    }
    match &f.key {
        Some(k) => {
            let mode = match k.mode {
                analysis::key::Mode::Major => "major",
                analysis::key::Mode::Minor => "minor",
            };
            let _ = writeln!(
                out,
                "key          {} {mode} ({}), correlation {:.2}, margin {:.2}",
                k.tonic, k.camelot, k.correlation, k.confidence
            );
        }
        None => {
            let _ = writeln!(out, "key          none found");
        }
    }
    let opt = |v: Option<f64>, unit: &str| v.map_or("-".to_owned(), |v| format!("{v:.1} {unit}"));
    let _ = writeln!(
        out,
        "loudness     {} integrated, range {}, true peak {}",
        opt(f.loudness.integrated_lufs, "LUFS"),
        opt(f.loudness.range_lu, "LU"),
        opt(f.loudness.true_peak_dbtp, "dBTP")
    );
    let _ = writeln!(
        out,
        "spectrum     centroid {}, rolloff {}, flatness {}",
        opt(f.spectral.centroid_hz.map(|s| s.mean), "Hz"),
        opt(f.spectral.rolloff_hz.map(|s| s.mean), "Hz"),
        f.spectral
            .flatness
            .map_or("-".into(), |s| format!("{:.3}", s.mean))
    );
    let _ = writeln!(
        out,
        "onsets       {:.2} per second; energy {:.2}, danceability {:.2}",
        f.onsets.rate_per_second, f.derived.energy, f.derived.danceability
    );
    for warning in &f.warnings {
        let _ = writeln!(out, "warning      {warning}");
    }
    out
}

fn outcome(
    track: &str,
    audio: String,
    sha256: String,
    status: &str,
    stored: ItemKey,
    features: &Features,
) -> TrackOutcome {
    TrackOutcome {
        track: track.to_owned(),
        audio,
        sha256,
        status: status.to_owned(),
        stored,
        bpm: features.tempo.as_ref().map(|t| t.bpm),
        camelot: features.key.as_ref().map(|k| k.camelot.clone()),
        integrated_lufs: features.loudness.integrated_lufs,
    }
}
