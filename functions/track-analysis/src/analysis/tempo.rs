//! Tempo, beats and onsets from the onset-strength envelope.
//!
//! - Tempo: the autocorrelation tempogram (8-second Hann windows of the envelope, each column
//!   normalised to its lag-0 value), averaged over time and weighted by a log-normal prior
//!   centred on 120 BPM with a one-octave deviation, as `librosa.feature.tempo` does.
//! - Beats: dynamic programming over the envelope (Ellis 2007, "Beat tracking by dynamic
//!   programming"): each beat scores its onset strength plus the best predecessor's score less
//!   a penalty `tightness * ln(gap / period)^2` for straying from the period.
//! - Onsets: peak picking on the normalised envelope with librosa's `onset_detect` windows.

use std::sync::Arc;

use realfft::{RealFftPlanner, RealToComplex};

/// The result of tempo estimation.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct TempoEstimate {
    /// Beats per minute.
    pub bpm: f64,
    /// Mean normalised autocorrelation of the envelope at the beat period (0 to 1).
    pub confidence: f64,
}

/// Parameters shared by the tempo functions: the envelope's frame rate.
#[derive(Debug, Clone, Copy)]
pub struct FrameRate {
    /// Envelope frames per second (`sample_rate / hop`).
    pub fps: f64,
}

const START_BPM: f64 = 120.0;
const STD_BPM: f64 = 1.0;
const MAX_BPM: f64 = 320.0;
const AC_SECONDS: f64 = 8.0;
const TIGHTNESS: f64 = 100.0;

/// Estimates the tempo of `envelope`; `None` when the envelope is too short or flat.
pub fn estimate(envelope: &[f32], rate: FrameRate) -> Option<TempoEstimate> {
    let win = (AC_SECONDS * rate.fps).round() as usize;
    if envelope.len() < 8 || win < 4 {
        return None;
    }
    let n_fft = (2 * win).next_power_of_two();
    let mut planner = RealFftPlanner::<f32>::new();
    let forward: Arc<dyn RealToComplex<f32>> = planner.plan_fft_forward(n_fft);
    let inverse = planner.plan_fft_inverse(n_fft);
    let hann: Vec<f32> = (0..win)
        .map(|i| {
            let x = std::f32::consts::PI * 2.0 * i as f32 / win as f32;
            0.5 - 0.5 * x.cos()
        })
        .collect();
    let mut frame = forward.make_input_vec();
    let mut spectrum = forward.make_output_vec();
    let mut ac = inverse.make_output_vec();
    let mut scratch = forward.make_scratch_vec();
    let mut scratch_inv = inverse.make_scratch_vec();
    let mut aggregate = vec![0.0f64; win];
    let mut columns = 0usize;
    let half = win / 2;
    for t in 0..envelope.len() {
        frame.iter_mut().for_each(|x| *x = 0.0);
        for (i, w) in hann.iter().enumerate() {
            let idx = t as isize + i as isize - half as isize;
            if idx >= 0 && (idx as usize) < envelope.len() {
                frame[i] = envelope[idx as usize] * w;
            }
        }
        if forward
            .process_with_scratch(&mut frame, &mut spectrum, &mut scratch)
            .is_err()
        {
            return None;
        }
        for c in spectrum.iter_mut() {
            *c = realfft::num_complex::Complex::new(c.norm_sqr(), 0.0);
        }
        if inverse
            .process_with_scratch(&mut spectrum, &mut ac, &mut scratch_inv)
            .is_err()
        {
            return None;
        }
        let peak = ac[..win].iter().fold(0.0f32, |m, v| m.max(v.abs()));
        columns += 1;
        if peak > f32::MIN_POSITIVE {
            for (a, v) in aggregate.iter_mut().zip(&ac[..win]) {
                *a += f64::from(*v / peak);
            }
        }
    }
    if columns == 0 {
        return None;
    }
    let mut best: Option<(usize, f64)> = None;
    for (lag, sum) in aggregate.iter().enumerate().skip(1) {
        let bpm = 60.0 * rate.fps / lag as f64;
        if bpm > MAX_BPM {
            continue;
        }
        let tg = (sum / columns as f64).max(0.0);
        let prior = -0.5 * ((bpm.log2() - START_BPM.log2()) / STD_BPM).powi(2);
        let score = (1e6 * tg).ln_1p() + prior;
        if best.is_none_or(|(_, s)| score > s) {
            best = Some((lag, score));
        }
    }
    let (lag, _) = best?;
    let confidence = (aggregate[lag] / columns as f64).clamp(0.0, 1.0);
    if aggregate[lag] <= 0.0 {
        return None;
    }
    Some(TempoEstimate {
        bpm: 60.0 * rate.fps / lag as f64,
        confidence,
    })
}

/// Tracks beats through `envelope` at `bpm`; returns beat frame indices in order.
pub fn track_beats(envelope: &[f32], rate: FrameRate, bpm: f64) -> Vec<usize> {
    let n = envelope.len();
    if n < 4 || bpm <= 0.0 {
        return Vec::new();
    }
    let period = (60.0 * rate.fps / bpm).round().max(1.0) as isize;
    // Local score: the envelope in units of its standard deviation, smoothed by a Gaussian
    // one period wide on each side.
    let mean = envelope.iter().map(|v| f64::from(*v)).sum::<f64>() / n as f64;
    let var = envelope
        .iter()
        .map(|v| (f64::from(*v) - mean).powi(2))
        .sum::<f64>()
        / (n as f64 - 1.0);
    let std = var.sqrt();
    if std <= f64::MIN_POSITIVE {
        return Vec::new();
    }
    let kernel: Vec<f64> = (-period..=period)
        .map(|i| (-0.5 * (i as f64 * 32.0 / period as f64).powi(2)).exp())
        .collect();
    let mut local = vec![0.0f64; n];
    for (t, out) in local.iter_mut().enumerate() {
        let mut acc = 0.0;
        for (j, k) in kernel.iter().enumerate() {
            let idx = t as isize + j as isize - period;
            if idx >= 0 && (idx as usize) < n {
                acc += k * f64::from(envelope[idx as usize]) / std;
            }
        }
        *out = acc;
    }
    // Dynamic programming: the best predecessor lies between two periods and half a period back.
    let window: Vec<isize> = (-2 * period..=-(period as f64 / 2.0).round() as isize).collect();
    let txwt: Vec<f64> = window
        .iter()
        .map(|w| -TIGHTNESS * ((-*w as f64) / period as f64).ln().powi(2))
        .collect();
    let local_max = local.iter().cloned().fold(f64::MIN, f64::max);
    let mut cumscore = vec![0.0f64; n];
    let mut backlink = vec![-1isize; n];
    let mut first_beat = true;
    for i in 0..n {
        let mut best = f64::MIN;
        let mut best_at = 0isize;
        for (w, tx) in window.iter().zip(&txwt) {
            let j = i as isize + w;
            let prior = if j >= 0 { cumscore[j as usize] } else { 0.0 };
            let candidate = tx + prior;
            if candidate > best {
                best = candidate;
                best_at = j;
            }
        }
        cumscore[i] = local[i] + best;
        if first_beat && local[i] < 0.01 * local_max {
            backlink[i] = -1;
        } else {
            backlink[i] = best_at;
            first_beat = false;
        }
    }
    // The last beat: the last local maximum of the cumulative score above half the median of
    // the local maxima.
    let maxima: Vec<usize> = (0..n)
        .filter(|&i| {
            let left = i == 0 || cumscore[i] > cumscore[i - 1];
            let right = i + 1 == n || cumscore[i] >= cumscore[i + 1];
            left && right
        })
        .collect();
    if maxima.is_empty() {
        return Vec::new();
    }
    let mut scores: Vec<f64> = maxima.iter().map(|&i| cumscore[i]).collect();
    scores.sort_by(f64::total_cmp);
    let median = scores[scores.len() / 2];
    let Some(&tail) = maxima.iter().rev().find(|&&i| cumscore[i] * 2.0 > median) else {
        return Vec::new();
    };
    let mut beats = vec![tail];
    let mut at = tail as isize;
    while backlink[at as usize] >= 0 {
        at = backlink[at as usize];
        beats.push(at as usize);
        if beats.len() > n {
            break;
        }
    }
    beats.reverse();
    trim_weak_beats(&local, beats)
}

/// Drops the weak beats at both ends (fade-in, fade-out) as librosa's `trim=True` does.
fn trim_weak_beats(local: &[f64], beats: Vec<usize>) -> Vec<usize> {
    if beats.len() < 3 {
        return beats;
    }
    let hann5 = [0.0, 0.5, 1.0, 0.5, 0.0];
    let values: Vec<f64> = beats.iter().map(|&b| local[b]).collect();
    let smooth: Vec<f64> = (0..values.len())
        .map(|i| {
            (0..5)
                .filter_map(|j| {
                    let idx = i as isize + j as isize - 2;
                    (idx >= 0 && (idx as usize) < values.len())
                        .then(|| values[idx as usize] * hann5[j])
                })
                .sum()
        })
        .collect();
    let rms = (smooth.iter().map(|v| v * v).sum::<f64>() / smooth.len() as f64).sqrt();
    let threshold = 0.5 * rms;
    let first = smooth.iter().position(|v| *v > threshold);
    let last = smooth.iter().rposition(|v| *v > threshold);
    match (first, last) {
        (Some(first), Some(last)) if last > first => beats[first..last].to_vec(),
        _ => beats,
    }
}

/// Onset frames: peaks of the envelope (scaled to 0..1) that stand `0.07` above their local
/// mean (100 ms each side) and are the maximum of the 30 ms before them, at least 30 ms apart.
pub fn detect_onsets(envelope: &[f32], rate: FrameRate) -> Vec<usize> {
    let n = envelope.len();
    if n == 0 {
        return Vec::new();
    }
    let min = envelope.iter().cloned().fold(f32::MAX, f32::min);
    let max = envelope.iter().cloned().fold(f32::MIN, f32::max);
    let range = max - min;
    if range <= f32::MIN_POSITIVE {
        return Vec::new();
    }
    let x: Vec<f32> = envelope.iter().map(|v| (v - min) / range).collect();
    let frames = |s: f64| (s * rate.fps).round() as usize;
    let pre_max = frames(0.03).max(1);
    let post_max = 1;
    let pre_avg = frames(0.10).max(1);
    let post_avg = frames(0.10) + 1;
    let wait = frames(0.03);
    let delta = 0.07f32;
    let mut onsets = Vec::new();
    let mut last: Option<usize> = None;
    for i in 0..n {
        let lo = i.saturating_sub(pre_max);
        let hi = (i + post_max).min(n);
        let local_max = x[lo..hi].iter().cloned().fold(f32::MIN, f32::max);
        if x[i] < local_max {
            continue;
        }
        let lo = i.saturating_sub(pre_avg);
        let hi = (i + post_avg).min(n);
        let mean = x[lo..hi].iter().sum::<f32>() / (hi - lo) as f32;
        if x[i] < mean + delta {
            continue;
        }
        if last.is_some_and(|l| i - l <= wait) {
            continue;
        }
        onsets.push(i);
        last = Some(i);
    }
    onsets
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pulse_train(bpm: f64, fps: f64, seconds: f64) -> Vec<f32> {
        let n = (seconds * fps) as usize;
        let period = 60.0 * fps / bpm;
        let mut env = vec![0.05f32; n];
        let mut t = 0.0;
        while (t as usize) < n {
            env[t as usize] = 1.0;
            t += period;
        }
        env
    }

    #[test]
    fn a_pulse_train_gives_its_tempo_and_regular_beats() {
        let rate = FrameRate {
            fps: 22050.0 / 512.0,
        };
        let env = pulse_train(128.0, rate.fps, 30.0);
        let tempo = estimate(&env, rate).unwrap();
        assert!((tempo.bpm - 128.0).abs() / 128.0 < 0.04, "{tempo:?}");
        assert!(tempo.confidence > 0.1);
        let beats = track_beats(&env, rate, tempo.bpm);
        assert!(beats.len() > 50, "{} beats", beats.len());
        let gaps: Vec<f64> = beats.windows(2).map(|w| (w[1] - w[0]) as f64).collect();
        let mean_gap = gaps.iter().sum::<f64>() / gaps.len() as f64;
        let want = 60.0 * rate.fps / 128.0;
        assert!((mean_gap - want).abs() < 1.0, "{mean_gap} vs {want}");
        let onsets = detect_onsets(&env, rate);
        assert!((onsets.len() as i64 - 64).abs() <= 2, "{}", onsets.len());
    }

    #[test]
    fn a_flat_envelope_has_no_tempo_beats_or_onsets() {
        let rate = FrameRate { fps: 43.0 };
        let env = vec![0.0f32; 1000];
        assert!(estimate(&env, rate).is_none());
        assert!(track_beats(&env, rate, 120.0).is_empty());
        assert!(detect_onsets(&env, rate).is_empty());
        assert!(estimate(&[], rate).is_none());
    }
}
