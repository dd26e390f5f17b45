//! The online anomaly detector: state in, point in, score out.
//!
//! One pure module shared by the task (state persisted per series in the store), the NAB
//! command and the benchmarks. The score of a point uses only the points before it and the
//! point itself, so it runs as the data arrives.
//!
//! How a point is scored:
//!
//! 1. **Season, found from the data.** From the sampling step, the candidate periods are a
//!    week and (for sub-daily data) a day, in points. Every `season_check_every` points the
//!    autocorrelation of the trailing history at each candidate lag is measured; the
//!    strongest above `min_season_acf` is the season, otherwise there is none.
//! 2. **Expected value.** With a season of `P` points: for each of the last `seasons_kept`
//!    seasons, the value one season back shifted by the change of level since then (the
//!    median of the last `P` points against the median of the `P` points before that one),
//!    and the median of those. This follows trend and season together. Without one: the
//!    median of the last `level_window` points. Missing points (a gap in the timestamps) are
//!    kept as holes so the season stays aligned, and every median skips them.
//! 3. **Deviation.** The residual against the expected value, robustly standardised by the
//!    median and MAD of the trailing `error_window` residuals (`z`).
//! 4. **Score in [0, 1].** Two channels, the higher wins. The point channel judges `z`
//!    against the largest deviation the series has shown over the trailing `novelty_window`
//!    points and an absolute floor `min_z`: `z / (z + max(reference, min_z))`, so a point
//!    scores 0.5 when it is exactly as unusual as the most unusual recent point. The sustained
//!    channel averages the last `short_window` deviations (each capped at `deviation_cap`, so
//!    one spike cannot pass for a shift) and standardises that average against its own history
//!    (`s`): `s / (s + sustained_z)`, so a level shift, a change of noise or a stuck series
//!    scores 0.5 at `sustained_z` standard deviations. The band reported with a point is
//!    `expected ± max(reference, min_z) · scale`.
//!    A third channel, when `likelihood_window` is above 0, is an anomaly likelihood in the
//!    manner of Numenta's HTM detector: each deviation is squashed into a raw error
//!    `z / (z + likelihood_scale)` in [0, 1); the mean of the last `likelihood_short` raw
//!    errors is compared with the mean and variance of those short means over the trailing
//!    `likelihood_window` points (a Gaussian tail, the variance floored at
//!    `likelihood_var_floor`), and the tail probability `q` becomes
//!    `log(q + 1e-10) / log(1e-10)`: 0.5 for a one-in-100,000 run of errors, 1 for one in
//!    10^10. It wakes only after `likelihood_min` short means, its own probationary period.
//!    The point channel catches a single point larger than anything recent; the likelihood
//!    catches a run of moderate errors unusual for *this* series, whatever its noise (an
//!    online normalisation per series); the sustained channel a change of level or noise.
//! 5. **Cooldown.** After a detection (score ≥ `threshold`), the next `cooldown` points
//!    report at most `threshold · 0.99`: one event starts one alert (NAB, like a person on
//!    call, rewards the earliest detection of an event and counts every further alert
//!    outside its window as a false positive). The unsuppressed value is kept as
//!    `raw_score`.
//!
//! Sampling step and gaps: the step is the median of the last `step_gaps` positive gaps
//! between points, so irregular feeds (traffic sensors reporting every 5 minutes with
//! jitter and skipped readings) keep a step of 5 minutes rather than the smallest jitter;
//! a gap of `g` steps (rounded) leaves `g - 1` holes.
//!
//! Restatements: the task replays a series from its stored points when a point arrives for
//! a time at or before the state's last one, so a state always reflects the current
//! versions in time order.

use std::collections::VecDeque;

use serde::{Deserialize, Serialize};

/// The detector's name, carried by every anomaly it raises.
pub const DETECTOR_NAME: &str = "robust-seasonal";
/// The detector's version: bumped whenever its scores change for the same input.
pub const DETECTOR_VERSION: &str = "2";

const DAY: i64 = 86_400;
const WEEK: i64 = 7 * DAY;

/// The detector's configuration: one for every series (never tuned per file).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DetectorConfig {
    /// Scores at or above this are detections.
    pub threshold: f64,
    /// Points kept in the state (the longest season needs `seasons_kept + 1` of them).
    pub max_history: usize,
    /// Seasons averaged for the expected value.
    pub seasons_kept: usize,
    /// Points of the level median when there is no season.
    pub level_window: usize,
    /// Residuals kept for the robust scale.
    pub error_window: usize,
    /// Points over which the largest past deviation is the reference.
    pub novelty_window: usize,
    /// The smallest reference deviation, in robust standard deviations.
    pub min_z: f64,
    /// Points seen before any score above 0 (the scale needs residuals first).
    pub warmup: usize,
    /// Points between two season checks.
    pub season_check_every: usize,
    /// Autocorrelation a lag needs to count as a season.
    pub min_season_acf: f64,
    /// Points after a detection during which no new detection is reported.
    pub cooldown: usize,
    /// Points averaged by the sustained-change channel.
    pub short_window: usize,
    /// Deviations are capped at this before averaging (one spike cannot fake a shift).
    pub deviation_cap: f64,
    /// Standard deviations of the short average above its own history that score 0.5.
    pub sustained_z: f64,
    /// Longest gap, in steps, filled with holes; a longer one restarts the history.
    pub max_gap_steps: usize,
    /// Recent gaps whose median is the sampling step.
    #[serde(default = "default_step_gaps")]
    pub step_gaps: usize,
    /// Short means of raw errors the likelihood channel compares with; 0 turns it off.
    #[serde(default)]
    pub likelihood_window: usize,
    /// Raw errors averaged into one short mean.
    #[serde(default = "default_likelihood_short")]
    pub likelihood_short: usize,
    /// The deviation whose raw error is 0.5 (`z / (z + scale)`).
    #[serde(default = "default_likelihood_scale")]
    pub likelihood_scale: f64,
    /// Short means needed before the likelihood channel scores.
    #[serde(default = "default_likelihood_min")]
    pub likelihood_min: usize,
    /// The smallest variance of the short means (a near-constant error history would make
    /// any wobble look infinitely unlikely).
    #[serde(default = "default_likelihood_var_floor")]
    pub likelihood_var_floor: f64,
}

fn default_step_gaps() -> usize {
    15
}
fn default_likelihood_short() -> usize {
    5
}
fn default_likelihood_scale() -> f64 {
    20.0
}
fn default_likelihood_min() -> usize {
    100
}
fn default_likelihood_var_floor() -> f64 {
    1e-4
}

impl Default for DetectorConfig {
    fn default() -> Self {
        Self {
            threshold: 0.5,
            max_history: 4 * 288 + 8,
            seasons_kept: 3,
            level_window: 10,
            error_window: 300,
            novelty_window: 600,
            min_z: 8.0,
            warmup: 30,
            season_check_every: 50,
            min_season_acf: 0.3,
            cooldown: 100,
            short_window: 10,
            deviation_cap: 5.0,
            sustained_z: 4.0,
            max_gap_steps: 400,
            step_gaps: default_step_gaps(),
            likelihood_window: 1000,
            likelihood_short: default_likelihood_short(),
            likelihood_scale: default_likelihood_scale(),
            likelihood_min: default_likelihood_min(),
            likelihood_var_floor: default_likelihood_var_floor(),
        }
    }
}

impl DetectorConfig {
    /// The configuration for daily music series (weekly season, a week of cooldown).
    pub fn daily() -> Self {
        Self {
            max_history: 7 * 5,
            error_window: 56,
            novelty_window: 90,
            warmup: 21,
            season_check_every: 7,
            cooldown: 7,
            max_gap_steps: 60,
            likelihood_window: 0,
            ..Self::default()
        }
    }
}

/// What the detector says about one point.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct PointScore {
    /// The anomaly score in [0, 1], after the cooldown.
    pub score: f64,
    /// The score before the cooldown.
    pub raw_score: f64,
    /// The expected value (`None` while warming up).
    pub expected: Option<f64>,
    /// The band of usual values (low, high).
    pub band: Option<(f64, f64)>,
    /// The robust standardised deviation.
    pub z: f64,
    /// The season in use, in points.
    pub period: Option<usize>,
}

/// The state of one series: everything the next score needs, serialisable for the store.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct SeriesState {
    /// Points seen (holes included).
    pub seen: u64,
    /// The last point's time (seconds since the epoch).
    pub last_ts: Option<i64>,
    /// The sampling step in seconds (the smallest positive gap seen).
    pub step: Option<i64>,
    /// Trailing values, holes as `NaN` (serialised as null).
    #[serde(with = "nan_as_null")]
    pub values: VecDeque<f64>,
    /// Trailing residuals.
    pub residuals: VecDeque<f64>,
    /// Trailing deviations (`z`).
    pub deviations: VecDeque<f64>,
    /// Trailing short averages of the capped deviations.
    pub averages: VecDeque<f64>,
    /// The season in use, in points.
    pub period: Option<usize>,
    /// Points left in the cooldown.
    pub cooldown_left: usize,
    /// The last positive gaps between points, in seconds (their median is the step).
    #[serde(default)]
    pub gaps: VecDeque<i64>,
    /// The last raw errors of the likelihood channel.
    #[serde(default)]
    pub errors: VecDeque<f64>,
    /// The trailing short means of the raw errors.
    #[serde(default)]
    pub error_means: VecDeque<f64>,
}

impl SeriesState {
    /// Scores the point (`ts`, `value`) and adds it to the state.
    ///
    /// Points must come in time order; one at or before the last time is scored against the
    /// state as it is (the caller replays on restatements).
    pub fn observe(&mut self, config: &DetectorConfig, ts: i64, value: f64) -> PointScore {
        self.fill_gap(config, ts);
        if let Some(last) = self.last_ts {
            let gap = ts - last;
            if gap > 0 {
                push_capped(&mut self.gaps, gap, config.step_gaps);
                self.step = median_step(&self.gaps);
            }
        }
        self.last_ts = Some(self.last_ts.map_or(ts, |l| l.max(ts)));
        if self
            .seen
            .is_multiple_of(config.season_check_every.max(1) as u64)
        {
            self.period = self.detect_period(config);
        }

        let mut out = PointScore {
            score: 0.0,
            raw_score: 0.0,
            expected: None,
            band: None,
            z: 0.0,
            period: self.period,
        };
        if let Some(expected) = self.expected(config) {
            let residual = value - expected;
            let (centre, scale) = robust_centre_scale(&self.residuals, value, expected);
            let z = (residual - centre).abs() / scale;
            let reference = self
                .deviations
                .iter()
                .rev()
                .take(config.novelty_window)
                .copied()
                .fold(config.min_z, f64::max);
            out.expected = Some(expected);
            out.band = Some((
                expected + centre - reference * scale,
                expected + centre + reference * scale,
            ));
            out.z = z;
            push_capped(&mut self.residuals, residual, config.error_window);
            push_capped(&mut self.deviations, z, config.novelty_window);
            let short = config.short_window.max(1).min(self.deviations.len());
            let average = self
                .deviations
                .iter()
                .rev()
                .take(short)
                .map(|d| d.min(config.deviation_cap))
                .sum::<f64>()
                / short as f64;
            let sustained = standard_score(&self.averages, average);
            push_capped(&mut self.averages, average, config.novelty_window);
            if self.residuals.len() > config.warmup {
                let point = z / (z + reference);
                let shift = sustained.max(0.0);
                let shift = shift / (shift + config.sustained_z);
                let likelihood = self.likelihood(config, z);
                out.raw_score = point.max(shift).max(likelihood);
            }
        }
        out.score = out.raw_score;
        if self.cooldown_left > 0 {
            self.cooldown_left -= 1;
            out.score = out.score.min(config.threshold * 0.99);
        } else if out.score >= config.threshold {
            self.cooldown_left = config.cooldown;
        }
        push_capped(&mut self.values, value, config.max_history);
        self.seen += 1;
        out
    }

    /// The likelihood channel's score for deviation `z`, in [0, 1], and its state moved on.
    fn likelihood(&mut self, config: &DetectorConfig, z: f64) -> f64 {
        if config.likelihood_window == 0 {
            return 0.0;
        }
        let raw = if z.is_finite() {
            z / (z + config.likelihood_scale.max(f64::MIN_POSITIVE))
        } else {
            1.0
        };
        push_capped(&mut self.errors, raw, config.likelihood_short);
        let short = self.errors.iter().sum::<f64>() / self.errors.len() as f64;
        let history = &self.error_means;
        let score = if history.len() >= config.likelihood_min.max(2) {
            let n = history.len() as f64;
            let mean = history.iter().sum::<f64>() / n;
            let var = history.iter().map(|h| (h - mean).powi(2)).sum::<f64>() / n;
            let sd = var.max(config.likelihood_var_floor).sqrt();
            let tail = gaussian_tail((short - mean) / sd);
            ((tail + 1e-10).ln() / 1e-10_f64.ln()).clamp(0.0, 1.0)
        } else {
            0.0
        };
        push_capped(&mut self.error_means, short, config.likelihood_window);
        score
    }

    /// Adds holes for the steps missing between the last point and `ts`.
    fn fill_gap(&mut self, config: &DetectorConfig, ts: i64) {
        let (Some(last), Some(step)) = (self.last_ts, self.step) else {
            return;
        };
        if step <= 0 || ts <= last {
            return;
        }
        // Rounded: a reading 5 min 40 s after the last at a 5-minute step is the next one.
        let steps = ((ts - last) as f64 / step as f64).round();
        let missing = (steps - 1.0).max(0.0) as usize;
        if missing > config.max_gap_steps {
            // Too long a silence: what came before no longer predicts what comes next.
            *self = SeriesState::default();
            return;
        }
        for _ in 0..missing {
            push_capped(&mut self.values, f64::NAN, config.max_history);
            self.seen += 1;
        }
    }

    /// The candidate seasons in points, from the step.
    fn candidates(&self) -> Vec<usize> {
        let Some(step) = self.step.filter(|s| *s > 0) else {
            return Vec::new();
        };
        let mut out = Vec::new();
        if step < DAY {
            out.push((DAY / step) as usize);
        }
        if step <= DAY {
            out.push((WEEK / step) as usize);
        }
        out
    }

    fn detect_period(&self, config: &DetectorConfig) -> Option<usize> {
        let mut best: Option<(usize, f64)> = None;
        for lag in self.candidates() {
            if lag < 2 || self.values.len() < 2 * lag + 2 {
                continue;
            }
            let acf = autocorrelation(&self.values, lag);
            if acf >= config.min_season_acf && best.is_none_or(|(_, b)| acf > b) {
                best = Some((lag, acf));
            }
        }
        best.map(|(lag, _)| lag)
    }

    fn expected(&self, config: &DetectorConfig) -> Option<f64> {
        let n = self.values.len();
        if let Some(p) = self.period
            && n >= 2 * p
        {
            let level_now = median_of(self.values.range(n - p..));
            let mut candidates = Vec::with_capacity(config.seasons_kept);
            for k in 1..=config.seasons_kept {
                if n < (k + 1) * p {
                    break;
                }
                let back = self.values[n - k * p];
                if back.is_nan() {
                    continue;
                }
                let level_then = median_of(self.values.range(n - (k + 1) * p..n - k * p));
                let shift = match (level_now, level_then) {
                    (Some(a), Some(b)) => a - b,
                    _ => 0.0,
                };
                candidates.push(back + shift);
            }
            if let Some(m) = median(&mut candidates) {
                return Some(m);
            }
        }
        let w = config.level_window.min(n);
        median_of(self.values.range(n - w..))
    }
}

/// The median of the recent gaps, the sampling step (`None` before any gap).
fn median_step(gaps: &VecDeque<i64>) -> Option<i64> {
    if gaps.is_empty() {
        return None;
    }
    let mut v: Vec<i64> = gaps.iter().copied().collect();
    let mid = v.len() / 2;
    let (_, m, _) = v.select_nth_unstable(mid);
    let m = *m;
    if v.len() % 2 == 1 {
        Some(m)
    } else {
        let lower = v[..mid].iter().copied().max().unwrap_or(m);
        Some((lower + m) / 2)
    }
}

/// The upper tail probability of a standard normal beyond `z` (1 for `z ≤ 0`: only errors
/// above their usual level are unlikely).
fn gaussian_tail(z: f64) -> f64 {
    if z.is_nan() || z <= 0.0 {
        return 1.0;
    }
    0.5 * erfc(z / std::f64::consts::SQRT_2)
}

/// The complementary error function (Numerical Recipes' `erfcc`, relative error below
/// 1.2e-7 everywhere), enough for a tail probability read on a log scale.
fn erfc(x: f64) -> f64 {
    let t = 1.0 / (1.0 + 0.5 * x.abs());
    let poly = -1.265_512_23
        + t * (1.000_023_68
            + t * (0.374_091_96
                + t * (0.096_784_18
                    + t * (-0.186_288_06
                        + t * (0.278_868_07
                            + t * (-1.135_203_98
                                + t * (1.488_515_87 + t * (-0.822_152_23 + t * 0.170_872_77))))))));
    let ans = t * (-x * x + poly).exp();
    if x >= 0.0 { ans } else { 2.0 - ans }
}

/// How many standard deviations `x` lies above the mean of `history` (0 when it has none).
fn standard_score(history: &VecDeque<f64>, x: f64) -> f64 {
    if history.len() < 2 {
        return 0.0;
    }
    let n = history.len() as f64;
    let mean = history.iter().sum::<f64>() / n;
    let var = history.iter().map(|h| (h - mean).powi(2)).sum::<f64>() / (n - 1.0);
    let sd = var.sqrt().max(1e-9);
    (x - mean) / sd
}

fn push_capped<T>(buf: &mut VecDeque<T>, value: T, cap: usize) {
    buf.push_back(value);
    while buf.len() > cap.max(1) {
        buf.pop_front();
    }
}

/// The median of the non-NaN values.
fn median_of<'a>(values: impl Iterator<Item = &'a f64>) -> Option<f64> {
    let mut v: Vec<f64> = values.copied().filter(|x| !x.is_nan()).collect();
    median(&mut v)
}

fn median(v: &mut [f64]) -> Option<f64> {
    if v.is_empty() {
        return None;
    }
    let mid = v.len() / 2;
    let (_, m, _) = v.select_nth_unstable_by(mid, f64::total_cmp);
    let m = *m;
    if v.len() % 2 == 1 {
        Some(m)
    } else {
        let lower = v[..mid].iter().copied().fold(f64::NEG_INFINITY, f64::max);
        Some((lower + m) / 2.0)
    }
}

/// The median of the residuals and their robust scale (1.4826 MAD), never zero: a flat
/// history falls back to the mean absolute deviation, then to a small share of the level.
fn robust_centre_scale(residuals: &VecDeque<f64>, value: f64, expected: f64) -> (f64, f64) {
    let mut v: Vec<f64> = residuals.iter().copied().collect();
    let centre = median(&mut v).unwrap_or(0.0);
    let mut dev: Vec<f64> = v.iter().map(|r| (r - centre).abs()).collect();
    let mad = median(&mut dev).unwrap_or(0.0) * 1.4826;
    let mean_abs = if dev.is_empty() {
        0.0
    } else {
        dev.iter().sum::<f64>() / dev.len() as f64 * 1.2533
    };
    let floor = 1e-3 * expected.abs().max(value.abs()).max(1e-9);
    let scale = if mad > 0.0 { mad } else { mean_abs };
    (centre, scale.max(floor))
}

/// The autocorrelation of the non-hole pairs at `lag`.
fn autocorrelation(values: &VecDeque<f64>, lag: usize) -> f64 {
    let present: Vec<f64> = values.iter().copied().filter(|x| !x.is_nan()).collect();
    if present.len() < 2 {
        return 0.0;
    }
    let mean = present.iter().sum::<f64>() / present.len() as f64;
    let var = present.iter().map(|x| (x - mean).powi(2)).sum::<f64>();
    if var <= 0.0 {
        return 0.0;
    }
    let mut cov = 0.0;
    let mut pairs = 0usize;
    for i in lag..values.len() {
        let (a, b) = (values[i], values[i - lag]);
        if a.is_nan() || b.is_nan() {
            continue;
        }
        cov += (a - mean) * (b - mean);
        pairs += 1;
    }
    if pairs == 0 {
        return 0.0;
    }
    // Normalise per pair so a long lag is not penalised for having fewer pairs.
    (cov / pairs as f64) / (var / present.len() as f64)
}

/// `NaN` holes travel as JSON `null` (JSON has no NaN).
mod nan_as_null {
    use std::collections::VecDeque;

    use serde::{Deserialize, Deserializer, Serialize, Serializer};

    pub fn serialize<S: Serializer>(v: &VecDeque<f64>, s: S) -> Result<S::Ok, S::Error> {
        let out: Vec<Option<f64>> = v.iter().map(|x| (!x.is_nan()).then_some(*x)).collect();
        out.serialize(s)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<VecDeque<f64>, D::Error> {
        let v: Vec<Option<f64>> = Vec::deserialize(d)?;
        Ok(v.into_iter().map(|x| x.unwrap_or(f64::NAN)).collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn weekly(day: usize) -> f64 {
        let shape = [1.0, 0.9, 0.9, 1.0, 1.2, 1.5, 1.4];
        1000.0 * shape[day % 7] + (day as f64) * 2.0
    }

    #[test]
    fn a_seasonal_series_with_trend_scores_low_and_a_spike_scores_high() {
        let config = DetectorConfig::daily();
        let mut state = SeriesState::default();
        let mut max_normal: f64 = 0.0;
        for day in 0..120 {
            let s = state.observe(&config, day as i64 * DAY, weekly(day));
            if day > 40 {
                max_normal = max_normal.max(s.score);
            }
        }
        assert_eq!(state.period, Some(7));
        assert!(max_normal < config.threshold, "normal max {max_normal}");
        let spike = state.observe(&config, 120 * DAY, weekly(120) * 3.0);
        assert!(spike.score >= config.threshold, "{spike:?}");
        let (low, high) = spike.band.expect("band after warm-up");
        assert!(low < weekly(120) && weekly(120) < high);
    }

    #[test]
    fn the_cooldown_suppresses_the_next_points_but_keeps_the_raw_score() {
        let config = DetectorConfig::daily();
        let mut state = SeriesState::default();
        for day in 0..60 {
            state.observe(&config, day as i64 * DAY, weekly(day));
        }
        let first = state.observe(&config, 60 * DAY, 10_000.0);
        let second = state.observe(&config, 61 * DAY, 200_000.0);
        assert!(first.score >= config.threshold);
        assert!(second.score < config.threshold);
        assert!(second.raw_score >= config.threshold);
    }

    #[test]
    fn gaps_keep_the_season_aligned_and_state_round_trips_through_json() {
        let config = DetectorConfig::daily();
        let mut state = SeriesState::default();
        for day in (0..80).filter(|d| d % 11 != 5) {
            state.observe(&config, day as i64 * DAY, weekly(day));
        }
        assert_eq!(state.period, Some(7));
        let json = serde_json::to_string(&state).expect("serialises");
        let mut back: SeriesState = serde_json::from_str(&json).expect("deserialises");
        let a = state.observe(&config, 80 * DAY, weekly(80));
        let b = back.observe(&config, 80 * DAY, weekly(80));
        assert_eq!(a.score, b.score);
        assert!(a.score < config.threshold);
    }

    /// A deterministic noise in [-1, 1) (a linear congruential generator).
    fn noise(seed: &mut u64) -> f64 {
        *seed = seed
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        ((*seed >> 11) as f64 / (1u64 << 53) as f64) * 2.0 - 1.0
    }

    #[test]
    fn a_jittered_feed_keeps_its_step_and_fills_only_real_gaps() {
        let config = DetectorConfig::default();
        let mut state = SeriesState::default();
        let mut ts = 0;
        let mut seed = 7;
        for i in 0..200 {
            // 5 minutes, +-40 s of jitter, and one reading skipped every 25.
            let jitter = (noise(&mut seed) * 40.0) as i64;
            ts += if i % 25 == 24 { 600 } else { 300 } + jitter;
            state.observe(&config, ts, 10.0 + noise(&mut seed));
        }
        assert_eq!(state.step.map(|s| (s - 300).abs() <= 40), Some(true));
        // 200 readings and 8 skipped ones: holes only for the skips, not for the jitter.
        let holes = state.values.iter().filter(|v| v.is_nan()).count();
        assert!((7..=9).contains(&holes), "{holes} holes");
    }

    #[test]
    fn the_likelihood_channel_flags_a_run_of_moderate_errors_the_point_channel_misses() {
        let config = DetectorConfig::default();
        let without = DetectorConfig {
            likelihood_window: 0,
            ..DetectorConfig::default()
        };
        let (mut with_state, mut without_state) = (SeriesState::default(), SeriesState::default());
        let mut seed = 3;
        let (mut with_max, mut without_max, mut quiet_max) = (0.0_f64, 0.0_f64, 0.0_f64);
        for i in 0..1600 {
            let base = 100.0 + 5.0 * noise(&mut seed);
            // From row 1500, a sustained bias of 4x the noise's amplitude, never a spike.
            let value = if i >= 1500 { base + 20.0 } else { base };
            let a = with_state.observe(&config, i * 300, value);
            let b = without_state.observe(&without, i * 300, value);
            if i < 1500 && i > 400 {
                quiet_max = quiet_max.max(a.score);
            } else if (1500..1510).contains(&i) {
                with_max = with_max.max(a.score);
                without_max = without_max.max(b.score);
            }
        }
        assert!(
            quiet_max < config.threshold,
            "noise alone scored {quiet_max}"
        );
        assert!(with_max >= config.threshold, "with likelihood {with_max}");
        assert!(with_max > without_max, "{with_max} vs {without_max}");
    }

    #[test]
    fn the_tail_probability_matches_known_values() {
        assert!((erfc(0.0) - 1.0).abs() < 1e-7);
        assert!((erfc(1.0) - 0.157_299_207).abs() < 1e-7);
        assert!((erfc(3.0) / 2.209_049_7e-5 - 1.0).abs() < 1e-6);
        assert!((erfc(-1.0) - 1.842_700_793).abs() < 1e-7);
        assert_eq!(gaussian_tail(-2.0), 1.0);
        assert_eq!(gaussian_tail(f64::NAN), 1.0);
        // 4.26 standard deviations: one in 100,000, which the channel maps to 0.5.
        let q = gaussian_tail(4.265);
        assert!((q / 1e-5 - 1.0).abs() < 0.01, "{q}");
    }

    #[test]
    fn a_state_stored_before_version_2_still_loads() {
        let json = r#"{"seen":3,"last_ts":172800,"step":86400,"values":[1.0,null,3.0],
            "residuals":[],"deviations":[],"averages":[],"period":null,"cooldown_left":0}"#;
        let mut state: SeriesState = serde_json::from_str(json).expect("old state loads");
        assert!(state.gaps.is_empty() && state.error_means.is_empty());
        let s = state.observe(&DetectorConfig::daily(), 3 * DAY, 4.0);
        assert!(s.score.is_finite());
        assert_eq!(state.step, Some(DAY));
    }

    #[test]
    fn a_flat_series_does_not_divide_by_zero() {
        let config = DetectorConfig::daily();
        let mut state = SeriesState::default();
        for day in 0..50 {
            let s = state.observe(&config, day * DAY, 5.0);
            assert!(s.score.is_finite() && (0.0..=1.0).contains(&s.score));
        }
        let jump = state.observe(&config, 50 * DAY, 50.0);
        assert!(jump.score >= config.threshold);
    }
}
