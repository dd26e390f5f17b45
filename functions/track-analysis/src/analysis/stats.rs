//! Running summaries of per-frame features: mean, standard deviation, minimum and maximum in
//! constant memory (Welford's algorithm), so a long file never stores its frames.

use serde::{Deserialize, Serialize};

/// A running summary of one scalar series.
#[derive(Debug, Clone, Copy, Default)]
pub struct Running {
    count: u64,
    mean: f64,
    m2: f64,
    min: f64,
    max: f64,
}

impl Running {
    /// Adds one value; non-finite values are skipped (they carry no measurement).
    pub fn push(&mut self, value: f64) {
        if !value.is_finite() {
            return;
        }
        if self.count == 0 {
            self.min = value;
            self.max = value;
        } else {
            self.min = self.min.min(value);
            self.max = self.max.max(value);
        }
        self.count += 1;
        let delta = value - self.mean;
        self.mean += delta / self.count as f64;
        self.m2 += delta * (value - self.mean);
    }

    /// How many values were added.
    pub fn count(&self) -> u64 {
        self.count
    }

    /// The summary, or `None` when no value was added.
    pub fn summary(&self) -> Option<Summary> {
        (self.count > 0).then(|| Summary {
            mean: self.mean,
            std: if self.count > 1 {
                (self.m2 / self.count as f64).sqrt()
            } else {
                0.0
            },
            min: self.min,
            max: self.max,
        })
    }
}

/// Mean, population standard deviation, minimum and maximum of a per-frame feature.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Summary {
    /// Mean over frames.
    pub mean: f64,
    /// Population standard deviation over frames.
    pub std: f64,
    /// Smallest frame value.
    pub min: f64,
    /// Largest frame value.
    pub max: f64,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn running_summary_matches_the_direct_computation() {
        let values = [1.0, 2.0, 4.0, 8.0, f64::NAN, 16.0];
        let mut running = Running::default();
        for v in values {
            running.push(v);
        }
        let s = running.summary().unwrap();
        let finite = [1.0, 2.0, 4.0, 8.0, 16.0];
        let mean = finite.iter().sum::<f64>() / 5.0;
        let var = finite.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / 5.0;
        assert!((s.mean - mean).abs() < 1e-12);
        assert!((s.std - var.sqrt()).abs() < 1e-12);
        assert_eq!((s.min, s.max), (1.0, 16.0));
        assert!(Running::default().summary().is_none());
    }
}
