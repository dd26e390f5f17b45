//! The versioned feature schema: what an analysis produces, each value with its unit.
//!
//! Bump [`SCHEMA_VERSION`] whenever a field changes meaning or an algorithm changes its
//! results: stored analyses are keyed by it, so old and new versions live side by side.
//! The JSON shape is described by `schemas/track-analyzed.schema.json`.

use serde::{Deserialize, Serialize};

use crate::analysis::key::KeyEstimate;
use crate::analysis::stats::Summary;

/// The version of the feature schema and algorithms.
pub const SCHEMA_VERSION: u32 = 1;

/// Every feature of one track.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Features {
    /// [`SCHEMA_VERSION`] of this document.
    pub schema_version: u32,
    /// Duration of the decoded audio, seconds.
    pub duration_seconds: f64,
    /// What was decoded.
    pub source: SourceInfo,
    /// How the analysis signal was made.
    pub analysis: AnalysisParams,
    /// Tempo and beat grid; absent when no periodicity was found (silence, a drone).
    pub tempo: Option<Tempo>,
    /// Key and mode; absent when the chroma is flat (silence, noise).
    pub key: Option<KeyEstimate>,
    /// EBU R128 / ITU-R BS.1770-4 loudness of the original channels at the original rate.
    pub loudness: Loudness,
    /// RMS energy of the analysis signal.
    pub rms: Rms,
    /// Spectral shape of the analysis signal, per-frame summaries.
    pub spectral: Spectral,
    /// Zero-crossing rate: the fraction of consecutive sample pairs of a frame that change
    /// sign (0 to 1), per-frame summary.
    pub zero_crossing_rate: Option<Summary>,
    /// Onsets (note and drum attacks) detected.
    pub onsets: Onsets,
    /// Mel-frequency cepstral coefficients, per-coefficient summaries.
    pub mfcc: Mfcc,
    /// Pitch-class profile.
    pub chroma: Chroma,
    /// Descriptors derived from the features above, each 0 to 1.
    pub derived: Derived,
    /// What went wrong without stopping the analysis (a truncated stream, skipped packets).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub warnings: Vec<String>,
}

/// What was decoded.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SourceInfo {
    /// Container (`wave`, `flac`, `ogg`, `isomp4`, `mp3`).
    pub container: String,
    /// Codec (`pcm_s16le`, `flac`, `vorbis`, `aac`, `mp3`).
    pub codec: String,
    /// Sample rate of the file, Hz.
    pub sample_rate: u32,
    /// Channels of the file.
    pub channels: usize,
    /// Frames (samples per channel) decoded.
    pub frames: u64,
}

/// Parameters of the analysis signal (the mono downmix at a reduced rate).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AnalysisParams {
    /// Sample rate of the analysis signal, Hz.
    pub sample_rate: u32,
    /// FFT size, samples (Hann window, frames centred as librosa's `center=True`).
    pub n_fft: usize,
    /// Hop between frames, samples.
    pub hop: usize,
    /// Frames analysed.
    pub frames: u64,
}

/// Tempo and beat grid.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Tempo {
    /// Global tempo, beats per minute.
    pub bpm: f64,
    /// Mean normalised autocorrelation of the onset envelope at the beat period (0 to 1).
    pub confidence: f64,
    /// The beat grid the tracker laid over the track.
    pub beats: BeatGrid,
}

/// Summary of the tracked beats.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct BeatGrid {
    /// Beats tracked.
    pub count: usize,
    /// Time of the first beat, seconds.
    pub first_seconds: Option<f64>,
    /// Time of the last beat, seconds.
    pub last_seconds: Option<f64>,
    /// Mean inter-beat interval, seconds.
    pub mean_interval_seconds: Option<f64>,
    /// Standard deviation of the inter-beat intervals, seconds.
    pub interval_std_seconds: Option<f64>,
    /// `1 - std / mean` of the inter-beat intervals, floored at 0: 1 is a perfectly even grid.
    pub regularity: Option<f64>,
    /// Beat times, seconds: the first [`crate::analysis::MAX_BEATS_STORED`] only.
    pub times: Vec<f64>,
    /// Whether `times` was cut at its cap.
    pub times_truncated: bool,
}

/// Loudness after EBU R128. Absent values are measurements that do not exist (the integrated
/// loudness of digital silence is minus infinity): they are left out, never written as NaN.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Loudness {
    /// Integrated (gated) loudness, LUFS.
    pub integrated_lufs: Option<f64>,
    /// Loudness range (EBU Tech 3342), LU.
    pub range_lu: Option<f64>,
    /// True peak (4x oversampled), dBTP, highest channel.
    pub true_peak_dbtp: Option<f64>,
    /// Sample peak, dBFS, highest channel.
    pub sample_peak_dbfs: Option<f64>,
}

/// RMS energy.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Rms {
    /// RMS of the whole analysis signal, dBFS (absent for digital silence).
    pub overall_dbfs: Option<f64>,
    /// Per-frame RMS (linear, full scale = 1), 2048-sample frames.
    pub frame: Option<Summary>,
}

/// Spectral shape, per-frame summaries of the magnitude spectrum.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Spectral {
    /// Centroid: the magnitude-weighted mean frequency, Hz.
    pub centroid_hz: Option<Summary>,
    /// Roll-off: the frequency below which 85 % of the magnitude lies, Hz.
    pub rolloff_hz: Option<Summary>,
    /// Flatness: geometric over arithmetic mean of the power spectrum (0 tonal to 1 noise).
    pub flatness: Option<Summary>,
    /// Flux: L2 norm of the positive change between consecutive magnitude spectra, each
    /// scaled to unit sum (dimensionless, independent of level).
    pub flux: Option<Summary>,
}

/// Onsets.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Onsets {
    /// Onsets detected.
    pub count: usize,
    /// Onsets per second of audio.
    pub rate_per_second: f64,
}

/// MFCC summaries: coefficient `i` of each frame (DCT-II, orthonormal, of the 128-band
/// Slaney mel power spectrum in dB).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Mfcc {
    /// Mean of each coefficient over frames.
    pub mean: Vec<f64>,
    /// Standard deviation of each coefficient over frames.
    pub std: Vec<f64>,
}

/// The pitch-class profile: mean of the per-frame chroma (each frame scaled to a maximum of
/// 1), then scaled to a maximum of 1; C first.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Chroma {
    /// Pitch-class names, C first.
    pub pitch_classes: Vec<String>,
    /// Mean chroma, 0 to 1.
    pub mean: Vec<f64>,
}

/// Descriptors derived from the measured features, each 0 to 1, with fixed formulas (see the
/// README): they are ours, not Spotify's, and only comparable between our analyses.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Derived {
    /// `0.5 L + 0.3 O + 0.2 C`: L integrated loudness scaled from -40 LUFS (0) to -5 (1),
    /// O onset rate scaled from 0 to 6 per second, C mean spectral centroid scaled from 300
    /// to 3500 Hz, each clamped to 0..1.
    pub energy: f64,
    /// `0.4 T + 0.35 R + 0.25 P`: T tempo confidence, R beat regularity, P closeness of the
    /// tempo to 118 BPM (`exp(-0.5 (log2(bpm / 118) / 0.5)^2)`); 0 without a tempo.
    pub danceability: f64,
}

/// Time series for the plot and the report, each at most a fixed number of points.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Timeline {
    /// Seconds covered by each waveform point.
    pub waveform_step_seconds: f64,
    /// Waveform envelope: (min, max) of the analysis signal per point.
    pub waveform: Vec<(f32, f32)>,
    /// Seconds covered by each loudness point.
    pub loudness_step_seconds: f64,
    /// Short-term (3 s) loudness, LUFS, sampled each second and averaged per point;
    /// `None` over silence.
    pub loudness_lufs: Vec<Option<f64>>,
    /// Seconds covered by each chroma point.
    pub chroma_step_seconds: f64,
    /// Chroma per point, each scaled to a maximum of 1.
    pub chroma: Vec<[f32; 12]>,
}
