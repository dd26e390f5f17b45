//! Key and mode from a mean chroma vector: the Krumhansl-Kessler key profiles rotated to each
//! of the 24 keys, the best Pearson correlation winning (the Krumhansl-Schmuckler algorithm).

use serde::{Deserialize, Serialize};

const MAJOR: [f64; 12] = [
    6.35, 2.23, 3.48, 2.33, 4.38, 4.09, 2.52, 5.19, 2.39, 3.66, 2.29, 2.88,
];
const MINOR: [f64; 12] = [
    6.33, 2.68, 3.52, 5.38, 2.60, 3.53, 2.54, 4.75, 3.98, 2.69, 3.34, 3.17,
];
/// Pitch-class names, C first (flats where the circle of fifths usually writes them).
pub const PITCH_CLASSES: [&str; 12] = [
    "C", "C#", "D", "Eb", "E", "F", "F#", "G", "Ab", "A", "Bb", "B",
];
const CAMELOT_MAJOR: [u8; 12] = [8, 3, 10, 5, 12, 7, 2, 9, 4, 11, 6, 1];
const CAMELOT_MINOR: [u8; 12] = [5, 12, 7, 2, 9, 4, 11, 6, 1, 8, 3, 10];

/// Major or minor.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    /// Major.
    Major,
    /// Minor.
    Minor,
}

/// The estimated key.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct KeyEstimate {
    /// Tonic pitch class, 0 = C to 11 = B.
    pub pitch_class: u8,
    /// Tonic name (`C`, `F#`, `Bb`).
    pub tonic: String,
    /// Major or minor.
    pub mode: Mode,
    /// Camelot wheel code (`8B` = C major, `8A` = A minor).
    pub camelot: String,
    /// Pearson correlation of the mean chroma with the best key's profile (-1 to 1).
    pub correlation: f64,
    /// How far the best key stands above the second best: the difference of their
    /// correlations (0 to 2; under about 0.05 the key is ambiguous).
    pub confidence: f64,
}

fn pearson(a: &[f64; 12], b: &[f64; 12]) -> f64 {
    let ma = a.iter().sum::<f64>() / 12.0;
    let mb = b.iter().sum::<f64>() / 12.0;
    let (mut num, mut da, mut db) = (0.0, 0.0, 0.0);
    for i in 0..12 {
        num += (a[i] - ma) * (b[i] - mb);
        da += (a[i] - ma).powi(2);
        db += (b[i] - mb).powi(2);
    }
    if da <= 0.0 || db <= 0.0 {
        0.0
    } else {
        num / (da.sqrt() * db.sqrt())
    }
}

/// The key of a mean chroma vector; `None` when the chroma is flat (silence, noise).
pub fn estimate(chroma: &[f64; 12]) -> Option<KeyEstimate> {
    let mean = chroma.iter().sum::<f64>() / 12.0;
    let spread = chroma.iter().map(|c| (c - mean).abs()).fold(0.0, f64::max);
    if !mean.is_finite() || spread <= 1e-9 * mean.abs().max(1e-30) {
        return None;
    }
    let mut scores: Vec<(f64, u8, Mode)> = Vec::with_capacity(24);
    for tonic in 0..12u8 {
        for (mode, profile) in [(Mode::Major, &MAJOR), (Mode::Minor, &MINOR)] {
            let mut rotated = [0.0; 12];
            for (i, r) in rotated.iter_mut().enumerate() {
                *r = profile[(i + 12 - tonic as usize) % 12];
            }
            scores.push((pearson(chroma, &rotated), tonic, mode));
        }
    }
    scores.sort_by(|a, b| b.0.total_cmp(&a.0));
    let (correlation, tonic, mode) = scores[0];
    let camelot = match mode {
        Mode::Major => format!("{}B", CAMELOT_MAJOR[tonic as usize]),
        Mode::Minor => format!("{}A", CAMELOT_MINOR[tonic as usize]),
    };
    Some(KeyEstimate {
        pitch_class: tonic,
        tonic: PITCH_CLASSES[tonic as usize].to_owned(),
        mode,
        camelot,
        correlation,
        confidence: correlation - scores[1].0,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn triad_chroma(notes: &[usize]) -> [f64; 12] {
        let mut c = [0.05; 12];
        for n in notes {
            c[n % 12] += 1.0;
        }
        c
    }

    #[test]
    fn the_profiles_find_major_and_minor_keys_with_camelot_codes() {
        // I-IV-V in G major: G B D, C E G, D F# A.
        let g_major = triad_chroma(&[7, 11, 2, 0, 4, 7, 2, 6, 9, 7, 11, 2]);
        let key = estimate(&g_major).unwrap();
        assert_eq!((key.tonic.as_str(), key.mode), ("G", Mode::Major));
        assert_eq!(key.camelot, "9B");
        // i-iv-v-i in A minor: A C E, D F A, E G B (natural), A C E.
        let a_minor = triad_chroma(&[9, 0, 4, 2, 5, 9, 4, 8, 11, 9, 0, 4, 9]);
        let key = estimate(&a_minor).unwrap();
        assert_eq!((key.tonic.as_str(), key.mode), ("A", Mode::Minor));
        assert_eq!(key.camelot, "8A");
        assert!(key.confidence > 0.0);
    }

    #[test]
    fn flat_chroma_has_no_key() {
        assert!(estimate(&[0.0; 12]).is_none());
        assert!(estimate(&[0.3; 12]).is_none());
    }
}
