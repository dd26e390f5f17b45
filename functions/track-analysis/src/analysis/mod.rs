//! The analysis core: a pure, streaming library over decoded samples.
//!
//! [`Analyzer`] takes planar `f32` chunks at the file's own rate and channel count. It feeds
//! the original channels to the EBU R128 meter, downmixes to mono, resamples to
//! [`ANALYSIS_RATE`] with rubato, and computes the frame features (STFT, mel, chroma, MFCC,
//! onset strength) as the samples arrive. Only the onset envelope (4 bytes a frame, about
//! 170 bytes a second) and bounded summaries are kept, so memory grows by about 0.6 MB an
//! hour of audio on top of a constant working set; the decoder's duration cap bounds it.
//! The CLI, the task and the benchmark share it.

pub mod filters;
pub mod key;
pub mod series;
pub mod stats;
pub mod tempo;

use std::sync::Arc;

use ebur128::{EbuR128, Mode as R128Mode};
use realfft::{RealFftPlanner, RealToComplex};
use rubato::audioadapter_buffers::direct::InterleavedSlice;
use rubato::{Fft, FixedSync, Indexing, Resampler};

use crate::features::{
    AnalysisParams, BeatGrid, Chroma, Derived, Features, Loudness, Mfcc, Onsets, Rms,
    SCHEMA_VERSION, SourceInfo, Spectral, Tempo, Timeline,
};
use series::{ChromaSum, Decimated, MeanOf, MinMax};
use stats::Running;
use tempo::FrameRate;

/// Sample rate of the analysis signal, Hz (librosa's default).
pub const ANALYSIS_RATE: u32 = 22_050;
/// FFT size of the analysis frames, samples.
pub const N_FFT: usize = 2048;
/// Hop between analysis frames, samples.
pub const HOP: usize = 512;
/// Mel bands.
pub const N_MELS: usize = 128;
/// MFCC coefficients kept.
pub const N_MFCC: usize = 13;
/// Beat times kept in the result (about 17 minutes at 120 BPM); the grid summary covers all.
pub const MAX_BEATS_STORED: usize = 2048;
/// Points of each timeline series at most.
pub const TIMELINE_POINTS: usize = 2048;
/// Input frames per resampler call.
const RESAMPLE_CHUNK: usize = 4096;

/// Why samples could not be analysed.
#[derive(Debug, thiserror::Error)]
pub enum AnalysisError {
    /// The loudness meter refused the stream's shape.
    #[error("loudness meter cannot take {channels} channels at {rate} Hz: {reason}")]
    Meter {
        /// Channels.
        channels: usize,
        /// Sample rate.
        rate: u32,
        /// The meter's reason.
        reason: String,
    },
    /// The resampler refused the rates.
    #[error("cannot resample {rate} Hz to {ANALYSIS_RATE} Hz: {reason}")]
    Resampler {
        /// Sample rate.
        rate: u32,
        /// The resampler's reason.
        reason: String,
    },
    /// A chunk did not have the channel count the stream started with.
    #[error("a chunk has {got} channels, the stream {want}")]
    Channels {
        /// Channels of the stream.
        want: usize,
        /// Channels of the chunk.
        got: usize,
    },
}

/// Per-frame spectral processing and its running summaries.
struct FrameProc {
    fft: Arc<dyn RealToComplex<f32>>,
    window: Vec<f32>,
    input: Vec<f32>,
    spectrum: Vec<realfft::num_complex::Complex<f32>>,
    scratch: Vec<realfft::num_complex::Complex<f32>>,
    magnitude: Vec<f32>,
    power: Vec<f32>,
    prev_norm: Vec<f32>,
    norm: Vec<f32>,
    mel_bank: Vec<filters::Sparse>,
    chroma_bank: Vec<filters::Sparse>,
    dct: Vec<Vec<f32>>,
    mel_db: Vec<f32>,
    prev_mel_db: Option<Vec<f32>>,
    freqs: Vec<f32>,
    frames: u64,
    envelope: Vec<f32>,
    rms: Running,
    zcr: Running,
    centroid: Running,
    rolloff: Running,
    flatness: Running,
    flux: Running,
    mfcc: Vec<Running>,
    chroma_total: [f64; 12],
    chroma_frames: u64,
    chroma_series: Decimated<ChromaSum>,
    waveform: Decimated<MinMax>,
}

impl FrameProc {
    fn new() -> Self {
        let mut planner = RealFftPlanner::<f32>::new();
        let fft = planner.plan_fft_forward(N_FFT);
        let bins = N_FFT / 2 + 1;
        Self {
            window: (0..N_FFT)
                .map(|i| 0.5 - 0.5 * (2.0 * std::f32::consts::PI * i as f32 / N_FFT as f32).cos())
                .collect(),
            input: fft.make_input_vec(),
            spectrum: fft.make_output_vec(),
            scratch: fft.make_scratch_vec(),
            fft,
            magnitude: vec![0.0; bins],
            power: vec![0.0; bins],
            prev_norm: vec![0.0; bins],
            norm: vec![0.0; bins],
            mel_bank: filters::mel_bank(ANALYSIS_RATE, N_FFT, N_MELS),
            chroma_bank: filters::chroma_bank(ANALYSIS_RATE, N_FFT),
            dct: filters::dct_matrix(N_MFCC, N_MELS),
            mel_db: vec![0.0; N_MELS],
            prev_mel_db: None,
            freqs: (0..bins)
                .map(|k| k as f32 * ANALYSIS_RATE as f32 / N_FFT as f32)
                .collect(),
            frames: 0,
            envelope: Vec::new(),
            rms: Running::default(),
            zcr: Running::default(),
            centroid: Running::default(),
            rolloff: Running::default(),
            flatness: Running::default(),
            flux: Running::default(),
            mfcc: vec![Running::default(); N_MFCC],
            chroma_total: [0.0; 12],
            chroma_frames: 0,
            chroma_series: Decimated::new(TIMELINE_POINTS),
            waveform: Decimated::new(TIMELINE_POINTS),
        }
    }

    /// Processes one frame of `N_FFT` samples centred on frame `self.frames`.
    fn frame(&mut self, samples: &[f32]) {
        self.frames += 1;
        // Time domain: RMS, zero crossings, the waveform envelope of the hop around the centre.
        let energy: f32 = samples.iter().map(|x| x * x).sum();
        self.rms.push(f64::from((energy / N_FFT as f32).sqrt()));
        let crossings = samples
            .windows(2)
            .filter(|w| (w[0] >= 0.0) != (w[1] >= 0.0))
            .count();
        self.zcr.push(crossings as f64 / N_FFT as f64);
        let centre = &samples[N_FFT / 2 - HOP / 2..N_FFT / 2 + HOP / 2];
        let (lo, hi) = centre
            .iter()
            .fold((f32::MAX, f32::MIN), |(lo, hi), x| (lo.min(*x), hi.max(*x)));
        self.waveform.push(MinMax { min: lo, max: hi });

        for ((dst, x), w) in self.input.iter_mut().zip(samples).zip(&self.window) {
            *dst = x * w;
        }
        if self
            .fft
            .process_with_scratch(&mut self.input, &mut self.spectrum, &mut self.scratch)
            .is_err()
        {
            // Only a length mismatch fails, and the buffers come from the plan itself.
            return;
        }
        let mut mag_sum = 0.0f32;
        let mut weighted = 0.0f32;
        for (k, c) in self.spectrum.iter().enumerate() {
            let p = c.norm_sqr();
            let m = p.sqrt();
            self.power[k] = p;
            self.magnitude[k] = m;
            mag_sum += m;
            weighted += m * self.freqs[k];
        }
        if mag_sum > 1e-9 {
            self.centroid.push(f64::from(weighted / mag_sum));
            let target = 0.85 * mag_sum;
            let mut cumulative = 0.0f32;
            let mut rolloff = self.freqs[self.freqs.len() - 1];
            for (k, m) in self.magnitude.iter().enumerate() {
                cumulative += m;
                if cumulative >= target {
                    rolloff = self.freqs[k];
                    break;
                }
            }
            self.rolloff.push(f64::from(rolloff));
            for (n, m) in self.norm.iter_mut().zip(&self.magnitude) {
                *n = m / mag_sum;
            }
            if self.frames > 1 {
                let flux: f32 = self
                    .norm
                    .iter()
                    .zip(&self.prev_norm)
                    .map(|(a, b)| (a - b).max(0.0).powi(2))
                    .sum();
                self.flux.push(f64::from(flux.sqrt()));
            }
            std::mem::swap(&mut self.norm, &mut self.prev_norm);
        } else {
            self.prev_norm.iter_mut().for_each(|v| *v = 0.0);
        }
        let (log_sum, lin_sum) = self.power.iter().fold((0.0f64, 0.0f64), |(l, s), p| {
            let p = f64::from(p.max(1e-10));
            (l + p.ln(), s + p)
        });
        let n = self.power.len() as f64;
        self.flatness.push((log_sum / n).exp() / (lin_sum / n));

        // Mel power in dB: onset strength (mean positive change) and MFCCs.
        for (db, filter) in self.mel_db.iter_mut().zip(&self.mel_bank) {
            *db = 10.0 * filter.apply(&self.power).max(1e-10).log10();
        }
        let onset = match &self.prev_mel_db {
            Some(prev) => {
                self.mel_db
                    .iter()
                    .zip(prev)
                    .map(|(a, b)| (a - b).max(0.0))
                    .sum::<f32>()
                    / N_MELS as f32
            }
            None => 0.0,
        };
        self.envelope.push(onset);
        match &mut self.prev_mel_db {
            Some(prev) => prev.copy_from_slice(&self.mel_db),
            None => self.prev_mel_db = Some(self.mel_db.clone()),
        }
        for (running, row) in self.mfcc.iter_mut().zip(&self.dct) {
            let c: f32 = row.iter().zip(&self.mel_db).map(|(a, b)| a * b).sum();
            running.push(f64::from(c));
        }

        // Chroma, each frame scaled to a maximum of 1.
        let mut chroma = [0.0f32; 12];
        for (c, filter) in chroma.iter_mut().zip(&self.chroma_bank) {
            *c = filter.apply(&self.power);
        }
        let peak = chroma.iter().cloned().fold(0.0f32, f32::max);
        if peak > 1e-9 {
            chroma.iter_mut().for_each(|c| *c /= peak);
            for (t, c) in self.chroma_total.iter_mut().zip(&chroma) {
                *t += f64::from(*c);
            }
            self.chroma_frames += 1;
        }
        self.chroma_series.push(ChromaSum(chroma));
    }
}

/// A streaming analysis of one track.
pub struct Analyzer {
    rate: u32,
    channels: usize,
    meter: EbuR128,
    meter_step: usize,
    meter_pending: usize,
    loudness_series: Decimated<MeanOf>,
    resampler: Option<Fft<f32>>,
    resample_in: Vec<f32>,
    resample_out: Vec<f32>,
    resampled_total: u64,
    skip_delay: usize,
    flush_limit: Option<u64>,
    mono_in_total: u64,
    buffer: Vec<f32>,
    buffer_start: usize,
    sum_squares: f64,
    analysis_samples: u64,
    frames_in: u64,
    warnings: Vec<String>,
    proc: FrameProc,
}

impl Analyzer {
    /// An analysis of a stream of `channels` channels at `rate` Hz.
    pub fn new(rate: u32, channels: usize) -> Result<Self, AnalysisError> {
        let meter_error = |reason: String| AnalysisError::Meter {
            channels,
            rate,
            reason,
        };
        let meter = EbuR128::new(
            u32::try_from(channels).map_err(|e| meter_error(e.to_string()))?,
            rate,
            R128Mode::I
                | R128Mode::LRA
                | R128Mode::TRUE_PEAK
                | R128Mode::SAMPLE_PEAK
                | R128Mode::HISTOGRAM,
        )
        .map_err(|e| meter_error(format!("{e:?}")))?;
        let resampler = if rate == ANALYSIS_RATE {
            None
        } else {
            Some(
                Fft::<f32>::new(
                    rate as usize,
                    ANALYSIS_RATE as usize,
                    RESAMPLE_CHUNK,
                    1,
                    FixedSync::Input,
                )
                .map_err(|e| AnalysisError::Resampler {
                    rate,
                    reason: e.to_string(),
                })?,
            )
        };
        let (resample_out, skip_delay) = match &resampler {
            Some(r) => (vec![0.0; r.output_frames_max()], r.output_delay()),
            None => (Vec::new(), 0),
        };
        Ok(Self {
            rate,
            channels,
            meter,
            meter_step: rate as usize,
            meter_pending: 0,
            loudness_series: Decimated::new(TIMELINE_POINTS),
            resampler,
            resample_in: Vec::with_capacity(RESAMPLE_CHUNK),
            resample_out,
            resampled_total: 0,
            skip_delay,
            flush_limit: None,
            mono_in_total: 0,
            // Frames are centred (librosa's `center=True`): half a frame of zeros first.
            buffer: vec![0.0; N_FFT / 2],
            buffer_start: 0,
            sum_squares: 0.0,
            analysis_samples: 0,
            frames_in: 0,
            warnings: Vec::new(),
            proc: FrameProc::new(),
        })
    }

    /// Frames (samples per channel) received so far.
    pub fn frames_in(&self) -> u64 {
        self.frames_in
    }

    /// Records a problem that did not stop the analysis, for the result's `warnings`.
    pub fn warn(&mut self, warning: impl Into<String>) {
        if self.warnings.len() < 16 {
            self.warnings.push(warning.into());
        }
    }

    /// Adds a chunk: one slice per channel, all the same length.
    pub fn push(&mut self, planar: &[&[f32]]) -> Result<(), AnalysisError> {
        if planar.len() != self.channels {
            return Err(AnalysisError::Channels {
                want: self.channels,
                got: planar.len(),
            });
        }
        let frames = planar.iter().map(|c| c.len()).min().unwrap_or(0);
        if frames == 0 {
            return Ok(());
        }
        self.frames_in += frames as u64;
        // Loudness on the original channels, a short-term reading every second.
        let mut offset = 0;
        while offset < frames {
            let take = (self.meter_step - self.meter_pending).min(frames - offset);
            let piece: Vec<&[f32]> = planar.iter().map(|c| &c[offset..offset + take]).collect();
            // Only a channel-count mismatch fails, and `piece` has the meter's channel count.
            let _ = self.meter.add_frames_planar_f32(&piece);
            self.meter_pending += take;
            offset += take;
            if self.meter_pending == self.meter_step {
                self.meter_pending = 0;
                let st = self.meter.loudness_shortterm().unwrap_or(f64::NEG_INFINITY);
                self.loudness_series.push(MeanOf::of(st));
            }
        }
        // Mono downmix (mean of the channels), then resampling.
        let scale = 1.0 / self.channels as f32;
        for i in 0..frames {
            let mut sum = 0.0f32;
            for channel in planar {
                sum += channel[i];
            }
            let mono = sum * scale;
            if self.resampler.is_some() {
                self.resample_in.push(mono);
                if self.resample_in.len() == RESAMPLE_CHUNK {
                    self.run_resampler(None)?;
                }
            } else {
                self.take_analysis(&[mono]);
            }
        }
        self.mono_in_total += frames as u64;
        Ok(())
    }

    fn run_resampler(&mut self, partial: Option<usize>) -> Result<(), AnalysisError> {
        let Some(resampler) = self.resampler.as_mut() else {
            return Ok(());
        };
        let need = resampler.input_frames_next();
        self.resample_in.resize(need, 0.0);
        let rate = self.rate;
        let err = |e: String| AnalysisError::Resampler { rate, reason: e };
        let input = InterleavedSlice::new(&self.resample_in[..], 1, need)
            .map_err(|e| err(e.to_string()))?;
        let out_len = self.resample_out.len();
        let mut output = InterleavedSlice::new_mut(&mut self.resample_out[..], 1, out_len)
            .map_err(|e| err(e.to_string()))?;
        let indexing = partial.map(|n| Indexing::new().partial_len(n));
        let (_, produced) = resampler
            .process_into_buffer(&input, &mut output, indexing.as_ref())
            .map_err(|e| err(e.to_string()))?;
        self.resample_in.clear();
        let skip = self.skip_delay.min(produced);
        self.skip_delay -= skip;
        let mut end = produced;
        if let Some(limit) = self.flush_limit {
            let room = limit.saturating_sub(self.resampled_total) as usize;
            end = end.min(skip + room);
        }
        let out = std::mem::take(&mut self.resample_out);
        self.take_analysis(&out[skip..end]);
        self.resample_out = out;
        Ok(())
    }

    /// Appends analysis-rate samples and processes every complete frame.
    fn take_analysis(&mut self, samples: &[f32]) {
        for s in samples {
            self.sum_squares += f64::from(*s) * f64::from(*s);
        }
        self.analysis_samples += samples.len() as u64;
        self.resampled_total += samples.len() as u64;
        self.buffer.extend_from_slice(samples);
        self.drain_frames();
    }

    fn drain_frames(&mut self) {
        while self.buffer.len() - self.buffer_start >= N_FFT {
            let start = self.buffer_start;
            let frame = &self.buffer[start..start + N_FFT];
            self.proc.frame(frame);
            self.buffer_start += HOP;
        }
        if self.buffer_start > 64 * N_FFT {
            self.buffer.drain(..self.buffer_start);
            self.buffer_start = 0;
        }
    }

    /// Finishes the stream and computes every feature; `source` describes what was decoded.
    pub fn finish(
        mut self,
        container: &str,
        codec: &str,
    ) -> Result<(Features, Timeline), AnalysisError> {
        // Flush the resampler: the expected output length is the input length times the ratio.
        if self.resampler.is_some() {
            let expected = (self.mono_in_total as f64 * f64::from(ANALYSIS_RATE)
                / f64::from(self.rate))
            .round() as u64;
            self.flush_limit = Some(expected);
            // Each call yields at least one chunk's worth; a few calls cover the delay.
            let mut guard = 0;
            while self.resampled_total < expected && guard < 64 {
                let pending = self.resample_in.len();
                self.run_resampler(Some(pending))?;
                guard += 1;
            }
        }
        // Centred frames: half a frame of zeros after the end, then frames while they fit;
        // librosa's frame count is 1 + samples / hop.
        let want_frames = 1 + self.analysis_samples / HOP as u64;
        self.buffer.extend(std::iter::repeat_n(0.0, N_FFT / 2));
        self.drain_frames();
        while self.proc.frames < want_frames {
            self.buffer.extend(std::iter::repeat_n(0.0, HOP));
            self.drain_frames();
        }
        if self.meter_pending > 0 {
            let st = self.meter.loudness_shortterm().unwrap_or(f64::NEG_INFINITY);
            self.loudness_series.push(MeanOf::of(st));
        }

        let duration = self.frames_in as f64 / f64::from(self.rate);
        let rate = FrameRate {
            fps: f64::from(ANALYSIS_RATE) / HOP as f64,
        };
        let envelope = std::mem::take(&mut self.proc.envelope);
        let tempo = tempo::estimate(&envelope, rate).map(|estimate| {
            let beats = tempo::track_beats(&envelope, rate, estimate.bpm);
            Tempo {
                bpm: estimate.bpm,
                confidence: estimate.confidence,
                beats: beat_grid(&beats, rate),
            }
        });
        let onsets = tempo::detect_onsets(&envelope, rate);
        drop(envelope);
        let chroma_mean: [f64; 12] = if self.proc.chroma_frames > 0 {
            let mut m = self.proc.chroma_total;
            let n = self.proc.chroma_frames as f64;
            m.iter_mut().for_each(|v| *v /= n);
            let peak = m.iter().cloned().fold(0.0, f64::max);
            if peak > 0.0 {
                m.iter_mut().for_each(|v| *v /= peak);
            }
            m
        } else {
            [0.0; 12]
        };
        let key = key::estimate(&chroma_mean);
        let loudness = self.loudness();
        let overall_rms = if self.analysis_samples > 0 {
            (self.sum_squares / self.analysis_samples as f64).sqrt()
        } else {
            0.0
        };
        let onset_rate = if duration > 0.0 {
            onsets.len() as f64 / duration
        } else {
            0.0
        };
        let centroid = self.proc.centroid.summary();
        let derived = derive(
            loudness.integrated_lufs,
            onset_rate,
            centroid.map(|c| c.mean),
            tempo.as_ref(),
        );
        let features = Features {
            schema_version: SCHEMA_VERSION,
            duration_seconds: duration,
            source: SourceInfo {
                container: container.to_owned(),
                codec: codec.to_owned(),
                sample_rate: self.rate,
                channels: self.channels,
                frames: self.frames_in,
            },
            analysis: AnalysisParams {
                sample_rate: ANALYSIS_RATE,
                n_fft: N_FFT,
                hop: HOP,
                frames: self.proc.frames,
            },
            tempo,
            key,
            loudness,
            rms: Rms {
                overall_dbfs: finite(20.0 * overall_rms.log10()),
                frame: self.proc.rms.summary(),
            },
            spectral: Spectral {
                centroid_hz: centroid,
                rolloff_hz: self.proc.rolloff.summary(),
                flatness: self.proc.flatness.summary(),
                flux: self.proc.flux.summary(),
            },
            zero_crossing_rate: self.proc.zcr.summary(),
            onsets: Onsets {
                count: onsets.len(),
                rate_per_second: onset_rate,
            },
            mfcc: Mfcc {
                mean: self
                    .proc
                    .mfcc
                    .iter()
                    .filter_map(|r| r.summary().map(|s| s.mean))
                    .collect(),
                std: self
                    .proc
                    .mfcc
                    .iter()
                    .filter_map(|r| r.summary().map(|s| s.std))
                    .collect(),
            },
            chroma: Chroma {
                pitch_classes: key::PITCH_CLASSES.iter().map(|s| (*s).to_owned()).collect(),
                mean: chroma_mean.to_vec(),
            },
            derived,
            warnings: std::mem::take(&mut self.warnings),
        };
        let hop_seconds = HOP as f64 / f64::from(ANALYSIS_RATE);
        let timeline = Timeline {
            waveform_step_seconds: hop_seconds * self.proc.waveform.span() as f64,
            waveform: self
                .proc
                .waveform
                .points()
                .iter()
                .map(|p| (p.min, p.max))
                .collect(),
            loudness_step_seconds: self.loudness_series.span() as f64,
            loudness_lufs: self
                .loudness_series
                .points()
                .iter()
                .map(MeanOf::mean)
                .collect(),
            chroma_step_seconds: hop_seconds * self.proc.chroma_series.span() as f64,
            chroma: self
                .proc
                .chroma_series
                .points()
                .iter()
                .map(|c| {
                    let mut v = c.0;
                    let peak = v.iter().cloned().fold(0.0f32, f32::max);
                    if peak > 0.0 {
                        v.iter_mut().for_each(|x| *x /= peak);
                    }
                    v
                })
                .collect(),
        };
        Ok((features, timeline))
    }

    fn loudness(&self) -> Loudness {
        let channels = self.channels as u32;
        let peak = |f: &dyn Fn(u32) -> Result<f64, ebur128::Error>| {
            (0..channels)
                .filter_map(|c| f(c).ok())
                .fold(0.0f64, f64::max)
        };
        let true_peak = peak(&|c| self.meter.true_peak(c));
        let sample_peak = peak(&|c| self.meter.sample_peak(c));
        let integrated = self.meter.loudness_global().ok().and_then(finite);
        Loudness {
            integrated_lufs: integrated,
            // The range of a stream without gated blocks is 0 by the meter: absent instead.
            range_lu: integrated.and(self.meter.loudness_range().ok().and_then(finite)),
            true_peak_dbtp: finite(20.0 * true_peak.log10()),
            sample_peak_dbfs: finite(20.0 * sample_peak.log10()),
        }
    }
}

/// `Some(v)` for a finite value: -inf loudness (silence) and NaN become absent.
fn finite(v: f64) -> Option<f64> {
    v.is_finite().then_some(v)
}

fn beat_grid(beats: &[usize], rate: FrameRate) -> BeatGrid {
    let times: Vec<f64> = beats.iter().map(|&b| b as f64 / rate.fps).collect();
    let intervals: Vec<f64> = times.windows(2).map(|w| w[1] - w[0]).collect();
    let mut running = Running::default();
    for i in &intervals {
        running.push(*i);
    }
    let summary = running.summary();
    BeatGrid {
        count: times.len(),
        first_seconds: times.first().copied(),
        last_seconds: times.last().copied(),
        mean_interval_seconds: summary.map(|s| s.mean),
        interval_std_seconds: summary.map(|s| s.std),
        regularity: summary
            .filter(|s| s.mean > 0.0)
            .map(|s| (1.0 - s.std / s.mean).max(0.0)),
        times_truncated: times.len() > MAX_BEATS_STORED,
        times: times.into_iter().take(MAX_BEATS_STORED).collect(),
    }
}

fn scale01(value: f64, lo: f64, hi: f64) -> f64 {
    ((value - lo) / (hi - lo)).clamp(0.0, 1.0)
}

/// The derived descriptors; the formulas are documented on [`Derived`].
fn derive(
    lufs: Option<f64>,
    onset_rate: f64,
    centroid: Option<f64>,
    tempo: Option<&Tempo>,
) -> Derived {
    let l = lufs.map_or(0.0, |v| scale01(v, -40.0, -5.0));
    let o = scale01(onset_rate, 0.0, 6.0);
    let c = centroid.map_or(0.0, |v| scale01(v, 300.0, 3500.0));
    let energy = (0.5 * l + 0.3 * o + 0.2 * c).clamp(0.0, 1.0);
    let danceability = tempo.map_or(0.0, |t| {
        let fit = (-0.5 * ((t.bpm / 118.0).log2() / 0.5).powi(2)).exp();
        let regularity = t.beats.regularity.unwrap_or(0.0);
        (0.4 * t.confidence.clamp(0.0, 1.0) + 0.35 * regularity + 0.25 * fit).clamp(0.0, 1.0)
    });
    Derived {
        energy,
        danceability,
    }
}
