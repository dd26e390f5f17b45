//! Filterbanks over the magnitude spectrum: the mel bank (Slaney scale and area normalisation,
//! as librosa's defaults), the chroma bank, and the orthonormal DCT-II for MFCCs.
//!
//! Each filter is stored sparsely (first bin and weights): a mel filter spans a few bins, so a
//! frame costs a few thousand multiplications instead of `bins x filters`.

/// One filter: weights for the bins `start..start + weights.len()`.
#[derive(Debug, Clone)]
pub struct Sparse {
    start: usize,
    weights: Vec<f32>,
}

impl Sparse {
    /// The weighted sum of `spectrum` under this filter.
    pub fn apply(&self, spectrum: &[f32]) -> f32 {
        spectrum[self.start..self.start + self.weights.len()]
            .iter()
            .zip(&self.weights)
            .map(|(s, w)| s * w)
            .sum()
    }

    fn from_dense(dense: &[f32]) -> Self {
        let first = dense.iter().position(|w| *w > 0.0);
        let last = dense.iter().rposition(|w| *w > 0.0);
        match (first, last) {
            (Some(first), Some(last)) => Sparse {
                start: first,
                weights: dense[first..=last].to_vec(),
            },
            _ => Sparse {
                start: 0,
                weights: Vec::new(),
            },
        }
    }
}

/// Hz to mel on the Slaney scale (linear below 1 kHz, logarithmic above).
fn hz_to_mel(hz: f64) -> f64 {
    let f_sp = 200.0 / 3.0;
    let min_log_hz = 1000.0;
    let min_log_mel = min_log_hz / f_sp;
    let logstep = (6.4f64).ln() / 27.0;
    if hz >= min_log_hz {
        min_log_mel + (hz / min_log_hz).ln() / logstep
    } else {
        hz / f_sp
    }
}

fn mel_to_hz(mel: f64) -> f64 {
    let f_sp = 200.0 / 3.0;
    let min_log_hz = 1000.0;
    let min_log_mel = min_log_hz / f_sp;
    let logstep = (6.4f64).ln() / 27.0;
    if mel >= min_log_mel {
        min_log_hz * (logstep * (mel - min_log_mel)).exp()
    } else {
        f_sp * mel
    }
}

/// The mel filterbank of `n_mels` triangular filters from 0 Hz to `sr / 2` over an
/// `n_fft`-point spectrum, each normalised to unit area (librosa's `norm="slaney"`).
pub fn mel_bank(sr: u32, n_fft: usize, n_mels: usize) -> Vec<Sparse> {
    let bins = n_fft / 2 + 1;
    let fft_freqs: Vec<f64> = (0..bins)
        .map(|k| k as f64 * f64::from(sr) / n_fft as f64)
        .collect();
    let (lo, hi) = (hz_to_mel(0.0), hz_to_mel(f64::from(sr) / 2.0));
    let mel_f: Vec<f64> = (0..n_mels + 2)
        .map(|i| mel_to_hz(lo + (hi - lo) * i as f64 / (n_mels + 1) as f64))
        .collect();
    (0..n_mels)
        .map(|m| {
            let (left, centre, right) = (mel_f[m], mel_f[m + 1], mel_f[m + 2]);
            let enorm = 2.0 / (right - left);
            let dense: Vec<f32> = fft_freqs
                .iter()
                .map(|&f| {
                    let lower = (f - left) / (centre - left);
                    let upper = (right - f) / (right - centre);
                    (lower.min(upper).max(0.0) * enorm) as f32
                })
                .collect();
            Sparse::from_dense(&dense)
        })
        .collect()
}

/// The chroma filterbank: 12 filters (C first) that fold the spectrum onto pitch classes.
///
/// Each bin between 55 Hz and 5 kHz gives its energy to the two pitch classes nearest its
/// frequency (A4 = 440 Hz), shared linearly by distance in semitones, weighted by a Gaussian
/// over octaves centred on A5 (880 Hz, two octaves wide) as librosa's chroma filters are.
pub fn chroma_bank(sr: u32, n_fft: usize) -> Vec<Sparse> {
    let bins = n_fft / 2 + 1;
    let mut dense = vec![vec![0.0f32; bins]; 12];
    for (k, _) in (0..bins).enumerate().skip(1) {
        let f = k as f64 * f64::from(sr) / n_fft as f64;
        if !(55.0..=5000.0).contains(&f) {
            continue;
        }
        let midi = 69.0 + 12.0 * (f / 440.0).log2();
        let octave = (f / 27.5).log2();
        let weight = (-0.5 * ((octave - 5.0) / 2.0).powi(2)).exp();
        let low = midi.floor();
        let frac = midi - low;
        let pc_low = (low as i64).rem_euclid(12) as usize;
        let pc_high = (pc_low + 1) % 12;
        dense[pc_low][k] += ((1.0 - frac) * weight) as f32;
        dense[pc_high][k] += (frac * weight) as f32;
    }
    dense.iter().map(|d| Sparse::from_dense(d)).collect()
}

/// The orthonormal DCT-II matrix, `n_out` rows of `n_in` coefficients (for MFCCs).
pub fn dct_matrix(n_out: usize, n_in: usize) -> Vec<Vec<f32>> {
    (0..n_out)
        .map(|k| {
            let scale = if k == 0 {
                (1.0 / n_in as f64).sqrt()
            } else {
                (2.0 / n_in as f64).sqrt()
            };
            (0..n_in)
                .map(|n| {
                    (scale
                        * (std::f64::consts::PI * k as f64 * (2.0 * n as f64 + 1.0)
                            / (2.0 * n_in as f64))
                            .cos()) as f32
                })
                .collect()
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mel_scale_round_trips_and_bank_covers_the_spectrum() {
        for hz in [0.0, 440.0, 1000.0, 4000.0, 11025.0] {
            assert!((mel_to_hz(hz_to_mel(hz)) - hz).abs() < 1e-6);
        }
        let bank = mel_bank(22050, 2048, 128);
        assert_eq!(bank.len(), 128);
        assert!(bank.iter().all(|f| !f.weights.is_empty()));
        let flat = vec![1.0f32; 1025];
        // Area-normalised filters give low filters (narrow) and high ones (wide) similar
        // responses per Hz: the response to a flat spectrum is bin width over two, roughly.
        let responses: Vec<f32> = bank.iter().map(|f| f.apply(&flat)).collect();
        assert!(responses.iter().all(|r| *r > 0.0));
    }

    #[test]
    fn a_tone_lands_on_its_pitch_class() {
        let bank = chroma_bank(22050, 2048);
        // A 440 Hz tone: bin 440 * 2048 / 22050 = 40.87 -> bins 40 and 41.
        let mut spectrum = vec![0.0f32; 1025];
        spectrum[41] = 1.0;
        let chroma: Vec<f32> = bank.iter().map(|f| f.apply(&spectrum)).collect();
        let best = chroma
            .iter()
            .enumerate()
            .max_by(|a, b| a.1.total_cmp(b.1))
            .map(|(i, _)| i);
        assert_eq!(best, Some(9), "A is pitch class 9: {chroma:?}");
    }

    #[test]
    fn dct_is_orthonormal() {
        let m = dct_matrix(8, 8);
        for i in 0..8 {
            for j in 0..8 {
                let dot: f32 = (0..8).map(|n| m[i][n] * m[j][n]).sum();
                let want = if i == j { 1.0 } else { 0.0 };
                assert!((dot - want).abs() < 1e-5, "{i},{j}: {dot}");
            }
        }
    }
}
