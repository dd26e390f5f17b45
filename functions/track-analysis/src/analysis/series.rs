//! Time series of bounded length for the report and the plot.
//!
//! A [`Decimated`] series holds at most `capacity` points whatever the input's length: when it
//! fills, neighbouring points are merged pairwise and each point then covers twice the time.
//! A 3-minute track and a 3-hour one both end with at most `capacity` points.

/// A value that two neighbouring points can be merged into.
pub trait Merge: Clone {
    /// Merges `other` (the later point) into `self`.
    fn merge(&mut self, other: &Self);
}

/// A series of at most `capacity` points, each covering `span` input items.
#[derive(Debug, Clone)]
pub struct Decimated<T> {
    capacity: usize,
    span: usize,
    points: Vec<T>,
    pending: Option<(T, usize)>,
}

impl<T: Merge> Decimated<T> {
    /// An empty series that will never hold more than `capacity` (at least 2) points.
    pub fn new(capacity: usize) -> Self {
        let capacity = capacity.max(2) & !1;
        Self {
            capacity,
            span: 1,
            points: Vec::with_capacity(capacity),
            pending: None,
        }
    }

    /// Adds one input item.
    pub fn push(&mut self, value: T) {
        let (acc, n) = match self.pending.take() {
            None => (value, 1),
            Some((mut acc, n)) => {
                acc.merge(&value);
                (acc, n + 1)
            }
        };
        if n < self.span {
            self.pending = Some((acc, n));
            return;
        }
        self.points.push(acc);
        if self.points.len() == self.capacity {
            let merged: Vec<T> = self
                .points
                .chunks(2)
                .map(|pair| {
                    let mut first = pair[0].clone();
                    if let Some(second) = pair.get(1) {
                        first.merge(second);
                    }
                    first
                })
                .collect();
            self.points = merged;
            self.span *= 2;
        }
    }

    /// How many input items each full point covers.
    pub fn span(&self) -> usize {
        self.span
    }

    /// The points, the last (possibly partial) one included.
    pub fn points(&self) -> Vec<T> {
        let mut out = self.points.clone();
        if let Some((acc, _)) = &self.pending {
            out.push(acc.clone());
        }
        out
    }
}

/// Minimum and maximum of the samples a point covers (the waveform envelope).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct MinMax {
    /// Smallest sample.
    pub min: f32,
    /// Largest sample.
    pub max: f32,
}

impl Merge for MinMax {
    fn merge(&mut self, other: &Self) {
        self.min = self.min.min(other.min);
        self.max = self.max.max(other.max);
    }
}

/// A mean of finite values (a loudness point over silence has no value).
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct MeanOf {
    /// Sum of the finite values.
    pub sum: f64,
    /// How many finite values.
    pub count: u32,
}

impl MeanOf {
    /// One value (ignored if not finite).
    pub fn of(value: f64) -> Self {
        if value.is_finite() {
            Self {
                sum: value,
                count: 1,
            }
        } else {
            Self::default()
        }
    }

    /// The mean, if any value was finite.
    pub fn mean(&self) -> Option<f64> {
        (self.count > 0).then(|| self.sum / f64::from(self.count))
    }
}

impl Merge for MeanOf {
    fn merge(&mut self, other: &Self) {
        self.sum += other.sum;
        self.count += other.count;
    }
}

/// A summed chroma vector (12 pitch classes, C first).
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct ChromaSum(pub [f32; 12]);

impl Merge for ChromaSum {
    fn merge(&mut self, other: &Self) {
        for (a, b) in self.0.iter_mut().zip(other.0.iter()) {
            *a += b;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_long_input_stays_within_capacity_and_keeps_extremes() {
        let mut series = Decimated::new(64);
        for i in 0..100_000 {
            let v = if i == 77_777 {
                5.0
            } else {
                (i % 7) as f32 * 0.1
            };
            series.push(MinMax { min: -v, max: v });
        }
        let points = series.points();
        assert!(points.len() <= 65, "{} points", points.len());
        assert!(points.len() >= 32);
        let peak = points.iter().map(|p| p.max).fold(f32::MIN, f32::max);
        assert_eq!(peak, 5.0);
        assert!(series.span() * (points.len() - 1) <= 100_000);
    }

    #[test]
    fn a_short_input_keeps_every_point() {
        let mut series = Decimated::new(16);
        for i in 0..10 {
            series.push(MeanOf::of(f64::from(i)));
        }
        let means: Vec<f64> = series.points().iter().filter_map(MeanOf::mean).collect();
        assert_eq!(means, (0..10).map(f64::from).collect::<Vec<_>>());
    }
}
