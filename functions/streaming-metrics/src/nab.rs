//! The Numenta Anomaly Benchmark's scoring, implemented from its published rules.
//!
//! NAB (github.com/numenta/NAB, `nab/sweeper.py`) scores a detector on labelled series: each
//! row carries an anomaly score in [0, 1] and rows at or above one threshold are detections.
//! Every labelled window rewards only its earliest detection, by a scaled sigmoid of the
//! detection's relative position in the window (+1 at the window's left edge, about 0 at its
//! right edge); a detection outside every window is a false positive, weighted by the same
//! sigmoid of its distance past the preceding window (near 0 just after a window, -1 far
//! from one, -1 before the first window) times the profile's `fpWeight`; a window without a
//! detection costs `fnWeight`. Rows of the probationary period (the first 15 % of a file, at
//! most 750 rows) are not scored. The corpus score is normalised against the null detector
//! (never fires: 0) and the perfect one (fires at each window's start: 100).
//!
//! [`run_corpus`] runs [`crate::detector`] over a NAB data folder with one fixed
//! configuration and scores it; the CLI's `streaming-metrics nab-benchmark` prints the result.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use chrono::NaiveDateTime;
use serde::{Deserialize, Serialize};

use crate::detector::{DetectorConfig, SeriesState};

/// Share of a file's rows in the probationary period.
pub const PROBATIONARY_PERCENT: f64 = 0.15;

/// A cost profile (NAB's `profiles.json`).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Profile {
    /// Weight of a window's best detection.
    #[serde(rename = "tpWeight")]
    pub tp_weight: f64,
    /// Weight of a false positive.
    #[serde(rename = "fpWeight")]
    pub fp_weight: f64,
    /// Cost of a missed window.
    #[serde(rename = "fnWeight")]
    pub fn_weight: f64,
}

impl Profile {
    /// NAB's standard profile.
    pub const STANDARD: Profile = Profile {
        tp_weight: 1.0,
        fp_weight: 0.11,
        fn_weight: 1.0,
    };
}

/// Reads the profile `name` (`standard`, `reward_low_FP_rate`, `reward_low_FN_rate`) from a
/// NAB folder's `profiles.json`.
pub fn read_profile(nab_dir: &Path, name: &str) -> Result<Profile, NabError> {
    #[derive(Deserialize)]
    struct Entry {
        #[serde(rename = "CostMatrix")]
        cost_matrix: Profile,
    }
    let path = nab_dir.join("profiles.json");
    let text = std::fs::read_to_string(&path).map_err(|source| NabError::Io {
        path: path.clone(),
        source,
    })?;
    let mut profiles: BTreeMap<String, Entry> =
        serde_json::from_str(&text).map_err(|source| NabError::Labels {
            path: path.clone(),
            source,
        })?;
    let known = profiles.keys().cloned().collect::<Vec<_>>().join(", ");
    profiles
        .remove(name)
        .map(|e| e.cost_matrix)
        .ok_or_else(|| NabError::Profile {
            name: name.to_owned(),
            known,
        })
}

/// NAB's scaled sigmoid: `2 * sigmoid(-5 x) - 1`, and -1 from `x = 3` on (`sweeper.py`'s
/// `scaledSigmoid` tests `>= 3.0`).
pub fn scaled_sigmoid(relative_position: f64) -> f64 {
    if relative_position >= 3.0 {
        -1.0
    } else {
        2.0 / (1.0 + (5.0 * relative_position).exp()) - 1.0
    }
}

/// The number of rows NAB leaves unscored at the start of a file of `rows` rows.
pub fn probationary_length(rows: usize) -> usize {
    let by_share = (PROBATIONARY_PERCENT * rows as f64).floor();
    by_share.min(PROBATIONARY_PERCENT * 5000.0) as usize
}

/// One file's score parts under one profile.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
pub struct FileScore {
    /// The raw (unnormalised) score.
    pub score: f64,
    /// Windows with a detection.
    pub tp: usize,
    /// Windows without one.
    pub fn_: usize,
    /// Detections outside every window (after the probationary period).
    pub fp: usize,
}

/// Scores one file: `detections[i]` says whether row `i` is a detection; `windows` are
/// inclusive row-index ranges, sorted and disjoint.
pub fn score_file(detections: &[bool], windows: &[(usize, usize)], profile: Profile) -> FileScore {
    let rows = detections.len();
    let probation = probationary_length(rows);
    let max_tp = scaled_sigmoid(-1.0);
    let mut out = FileScore::default();
    let mut best: Vec<Option<f64>> = vec![None; windows.len()];
    let mut next_window = 0;
    let mut current: Option<usize> = None;
    // (right index, width) of the last window passed.
    let mut previous: Option<(usize, f64)> = None;
    for (i, &detected) in detections.iter().enumerate() {
        if current.is_none() && next_window < windows.len() && windows[next_window].0 == i {
            current = Some(next_window);
            next_window += 1;
        }
        let weighted = match current {
            Some(w) => {
                let (_, right) = windows[w];
                let width = (right - windows[w].0 + 1) as f64;
                let position = -((right - i + 1) as f64) / width;
                scaled_sigmoid(position) * profile.tp_weight / max_tp
            }
            None => {
                let unweighted = match previous {
                    None => -1.0,
                    Some((right, width)) => {
                        // NAB divides by (width - 1); a one-row window would divide by zero.
                        let denominator = (width - 1.0).max(1.0);
                        scaled_sigmoid(i.abs_diff(right) as f64 / denominator)
                    }
                };
                unweighted * profile.fp_weight
            }
        };
        if detected && i >= probation {
            match current {
                // The earliest detection has the highest weight; keep the best anyway.
                Some(w) => best[w] = Some(best[w].map_or(weighted, |b: f64| b.max(weighted))),
                None => {
                    out.fp += 1;
                    out.score += weighted;
                }
            }
        }
        if let Some(w) = current
            && windows[w].1 == i
        {
            previous = Some((i, (i - windows[w].0 + 1) as f64));
            current = None;
        }
    }
    for (w, b) in best.iter().enumerate() {
        // A window wholly inside the probationary period is not scored (NAB names its rows
        // "probationary"); one that reaches past it is.
        if windows[w].1 < probation {
            continue;
        }
        match b {
            Some(b) => {
                out.tp += 1;
                out.score += b;
            }
            None => {
                out.fn_ += 1;
                out.score -= profile.fn_weight;
            }
        }
    }
    out
}

/// The normalisation anchors of a file: the perfect score (every window found at its
/// start: `tpWeight` per labelled window, as NAB's `runner.normalize` counts it) and the raw
/// score of the null detector (no detection; NAB runs its `null` detector for it).
pub fn anchors(rows: usize, windows: &[(usize, usize)], profile: Profile) -> (f64, f64) {
    let null = vec![false; rows];
    (
        windows.len() as f64 * profile.tp_weight,
        score_file(&null, windows, profile).score,
    )
}

/// Normalises a corpus's raw score: 0 for the null detector, 100 for the perfect one.
pub fn normalise(raw: f64, perfect: f64, null: f64) -> f64 {
    if (perfect - null).abs() < f64::EPSILON {
        return 0.0;
    }
    100.0 * (raw - null) / (perfect - null)
}

/// Why a NAB run could not complete.
#[derive(Debug, thiserror::Error)]
pub enum NabError {
    /// A file could not be read.
    #[error("cannot read {path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// The labels file is not the expected JSON.
    #[error("{path}: {source}")]
    Labels {
        /// The file.
        path: PathBuf,
        /// The cause.
        #[source]
        source: serde_json::Error,
    },
    /// A data file is not a `timestamp,value` CSV.
    #[error("{path} line {line}: {reason}")]
    Data {
        /// The file.
        path: PathBuf,
        /// The 1-based line.
        line: u64,
        /// What is wrong.
        reason: String,
    },
    /// `profiles.json` has no profile of that name.
    #[error("no profile {name:?} in profiles.json (it has: {known})")]
    Profile {
        /// The name asked for.
        name: String,
        /// The names it has.
        known: String,
    },
    /// A window's edge is not one of the file's timestamps.
    #[error("{file}: window edge {edge} is not a timestamp of the file")]
    Window {
        /// The file.
        file: String,
        /// The edge.
        edge: String,
    },
}

/// One row of a `timestamp,value` series.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Row {
    /// When, as seconds since the epoch (UTC).
    pub ts: i64,
    /// The value.
    pub value: f64,
}

/// Parses NAB's timestamp forms (`2014-04-10 07:15:00` with optional fraction).
pub fn parse_timestamp(s: &str) -> Option<i64> {
    let s = s.trim();
    NaiveDateTime::parse_from_str(s, "%Y-%m-%d %H:%M:%S%.f")
        .or_else(|_| NaiveDateTime::parse_from_str(s, "%Y-%m-%dT%H:%M:%S%.f"))
        .ok()
        .map(|t| t.and_utc().timestamp())
}

/// Reads a `timestamp,value` CSV (with a header line).
pub fn read_series(path: &Path) -> Result<Vec<Row>, NabError> {
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(true)
        .from_path(path)
        .map_err(|err| NabError::Io {
            path: path.to_owned(),
            source: std::io::Error::other(err),
        })?;
    let mut rows = Vec::new();
    for record in reader.records() {
        let record = record.map_err(|err| NabError::Data {
            path: path.to_owned(),
            line: err.position().map_or(0, |p| p.line()),
            reason: err.to_string(),
        })?;
        let line = record.position().map_or(0, |p| p.line());
        let bad = |reason: String| NabError::Data {
            path: path.to_owned(),
            line,
            reason,
        };
        let ts = record
            .get(0)
            .and_then(parse_timestamp)
            .ok_or_else(|| bad(format!("bad timestamp {:?}", record.get(0))))?;
        let value = record
            .get(1)
            .and_then(|v| v.trim().parse::<f64>().ok())
            .filter(|v| v.is_finite())
            .ok_or_else(|| bad(format!("bad value {:?}", record.get(1))))?;
        rows.push(Row { ts, value });
    }
    Ok(rows)
}

/// Runs the detector over `rows` from a fresh state, one score per row, causally.
pub fn score_series(rows: &[Row], config: &DetectorConfig) -> Vec<f64> {
    let mut state = SeriesState::default();
    rows.iter()
        .map(|row| state.observe(config, row.ts, row.value).score)
        .collect()
}

/// Reads a `timestamp,value` CSV and writes `timestamp,value,anomaly_score` for every row,
/// scored causally by the detector with `config` (the CLI's `streaming-metrics nab-score`).
pub fn score_csv(
    input: &Path,
    output: &mut dyn std::io::Write,
    config: &DetectorConfig,
) -> Result<usize, NabError> {
    let rows = read_series(input)?;
    let scores = score_series(&rows, config);
    let io = |source: std::io::Error| NabError::Io {
        path: input.to_owned(),
        source,
    };
    writeln!(output, "timestamp,value,anomaly_score").map_err(io)?;
    for (row, score) in rows.iter().zip(&scores) {
        let ts = chrono::DateTime::<chrono::Utc>::from_timestamp(row.ts, 0)
            .map(|t| t.format("%Y-%m-%d %H:%M:%S").to_string())
            .unwrap_or_default();
        writeln!(output, "{ts},{},{score:.6}", row.value).map_err(io)?;
    }
    Ok(rows.len())
}

/// One file's result in a corpus run.
#[derive(Debug, Clone, Serialize)]
pub struct FileResult {
    /// `<category>/<file>.csv`.
    pub file: String,
    /// Rows.
    pub rows: usize,
    /// Labelled windows.
    pub windows: usize,
    /// The score parts.
    pub score: FileScore,
}

/// The result over one category (NAB's data folders: `realAWSCloudwatch`, ...).
#[derive(Debug, Clone, Default, Serialize)]
pub struct CategoryResult {
    /// The folder's name.
    pub category: String,
    /// Files in it.
    pub files: usize,
    /// Its normalised score (null 0, perfect 100; 0 when it has no window).
    pub normalised: f64,
    /// Its summed raw score.
    pub raw: f64,
    /// The perfect detector's raw score on it.
    pub perfect: f64,
    /// The null detector's raw score on it.
    pub null: f64,
    /// Windows with a detection.
    pub tp: usize,
    /// Windows without one.
    pub fn_: usize,
    /// False positives.
    pub fp: usize,
}

/// A corpus run's result.
#[derive(Debug, Clone, Serialize)]
pub struct CorpusResult {
    /// The normalised score (null 0, perfect 100).
    pub normalised: f64,
    /// The summed raw score, and the anchors.
    pub raw: f64,
    /// The perfect detector's raw score.
    pub perfect: f64,
    /// The null detector's raw score.
    pub null: f64,
    /// The detection threshold used.
    pub threshold: f64,
    /// Per category, in name order.
    pub categories: Vec<CategoryResult>,
    /// Per file.
    pub files: Vec<FileResult>,
}

/// Runs the detector over every labelled file of a NAB folder (`combined_windows.json` and
/// `data/`), scores it under `profile` and normalises.
pub fn run_corpus(
    nab_dir: &Path,
    config: &DetectorConfig,
    profile: Profile,
) -> Result<CorpusResult, NabError> {
    let labels_path = nab_dir.join("combined_windows.json");
    let text = std::fs::read_to_string(&labels_path).map_err(|source| NabError::Io {
        path: labels_path.clone(),
        source,
    })?;
    let labels: BTreeMap<String, Vec<(String, String)>> =
        serde_json::from_str(&text).map_err(|source| NabError::Labels {
            path: labels_path.clone(),
            source,
        })?;
    let mut files = Vec::new();
    let mut categories: BTreeMap<String, CategoryResult> = BTreeMap::new();
    let (mut raw, mut perfect, mut null) = (0.0, 0.0, 0.0);
    for (file, windows) in &labels {
        let rows = read_series(&nab_dir.join("data").join(file))?;
        let index = |edge: &str| -> Result<usize, NabError> {
            let ts = parse_timestamp(edge).ok_or_else(|| NabError::Window {
                file: file.clone(),
                edge: edge.to_owned(),
            })?;
            rows.iter()
                .position(|r| r.ts == ts)
                .ok_or_else(|| NabError::Window {
                    file: file.clone(),
                    edge: edge.to_owned(),
                })
        };
        let mut spans = Vec::new();
        for (left, right) in windows {
            spans.push((index(left)?, index(right)?));
        }
        let scores = score_series(&rows, config);
        let detections: Vec<bool> = scores.iter().map(|&s| s >= config.threshold).collect();
        let score = score_file(&detections, &spans, profile);
        let (p, n) = anchors(rows.len(), &spans, profile);
        raw += score.score;
        perfect += p;
        null += n;
        let name = file.split('/').next().unwrap_or(file).to_owned();
        let c = categories
            .entry(name.clone())
            .or_insert_with(|| CategoryResult {
                category: name,
                ..CategoryResult::default()
            });
        c.files += 1;
        c.raw += score.score;
        c.perfect += p;
        c.null += n;
        c.tp += score.tp;
        c.fn_ += score.fn_;
        c.fp += score.fp;
        files.push(FileResult {
            file: file.clone(),
            rows: rows.len(),
            windows: spans.len(),
            score,
        });
    }
    Ok(CorpusResult {
        normalised: normalise(raw, perfect, null),
        raw,
        perfect,
        null,
        threshold: config.threshold,
        categories: categories
            .into_values()
            .map(|c| CategoryResult {
                normalised: normalise(c.raw, c.perfect, c.null),
                ..c
            })
            .collect(),
        files,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const STD: Profile = Profile::STANDARD;

    #[test]
    fn sigmoid_matches_nab_anchor_values() {
        // 2 / (1 + e^-5) - 1 = 0.986614...
        assert!((scaled_sigmoid(-1.0) - 0.986_614_3).abs() < 1e-6);
        assert!(scaled_sigmoid(0.0).abs() < 1e-12);
        assert_eq!(scaled_sigmoid(3.5), -1.0);
        // NAB's `>= 3.0`: exactly 3 past a window is already the full -1.
        assert_eq!(scaled_sigmoid(3.0), -1.0);
        assert!(scaled_sigmoid(2.999) > -1.0);
    }

    #[test]
    fn profiles_are_read_by_name_and_an_unknown_one_is_named() {
        let dir = tempfile::tempdir().expect("temp dir");
        std::fs::write(
            dir.path().join("profiles.json"),
            r#"{"standard": {"CostMatrix": {"tpWeight": 1.0, "fnWeight": 1.0,
                "fpWeight": 0.11, "tnWeight": 1.0}},
               "reward_low_FN_rate": {"CostMatrix": {"tpWeight": 1.0, "fnWeight": 2.0,
                "fpWeight": 0.11, "tnWeight": 1.0}}}"#,
        )
        .expect("write");
        assert_eq!(read_profile(dir.path(), "standard").expect("standard"), STD);
        assert_eq!(
            read_profile(dir.path(), "reward_low_FN_rate")
                .expect("low FN")
                .fn_weight,
            2.0
        );
        let err = read_profile(dir.path(), "strict")
            .expect_err("unknown")
            .to_string();
        assert!(
            err.contains("\"strict\"") && err.contains("reward_low_FN_rate"),
            "{err}"
        );
    }

    #[test]
    fn probation_is_fifteen_percent_capped_at_750() {
        assert_eq!(probationary_length(1000), 150);
        assert_eq!(probationary_length(4032), 604);
        assert_eq!(probationary_length(10_000), 750);
    }

    #[test]
    fn detection_at_window_start_scores_one() {
        // 100 rows, probation 15; window rows 50..=59 (width 10). Detection at row 50:
        // position -(59-50+1)/10 = -1, sigmoid(-1)/maxTP = 1 exactly.
        let mut d = vec![false; 100];
        d[50] = true;
        let s = score_file(&d, &[(50, 59)], STD);
        assert!((s.score - 1.0).abs() < 1e-12);
        assert_eq!((s.tp, s.fn_, s.fp), (1, 0, 0));
    }

    #[test]
    fn only_the_earliest_detection_counts_and_a_late_one_scores_less() {
        // Detection at row 55 and 58: position of 55 = -(59-55+1)/10 = -0.5;
        // 2/(1+e^-2.5)-1 = 0.848284; / 0.986614 = 0.859793. Row 58 adds nothing.
        let mut d = vec![false; 100];
        d[55] = true;
        d[58] = true;
        let s = score_file(&d, &[(50, 59)], STD);
        assert!((s.score - 0.859_793).abs() < 1e-5, "{}", s.score);
        assert_eq!(s.tp, 1);
    }

    #[test]
    fn missed_window_costs_fn_weight_and_early_fp_costs_fp_weight() {
        // A detection at row 20 (after probation, before any window) is -1 * 0.11; the
        // window 50..=59 is missed: -1. Total -1.11.
        let mut d = vec![false; 100];
        d[20] = true;
        let s = score_file(&d, &[(50, 59)], STD);
        assert!((s.score + 1.11).abs() < 1e-12, "{}", s.score);
        assert_eq!((s.tp, s.fn_, s.fp), (0, 1, 1));
    }

    #[test]
    fn fp_just_after_a_window_is_nearly_free() {
        // Window 50..=59 (width 10) hit at 50 (+1). FP at row 61: distance |59-61| = 2,
        // over width-1 = 9: 0.2222; 2/(1+e^1.1111)-1 = -0.504672; * 0.11 = -0.055514.
        // FP at row 95: 36/9 = 4 > 3 -> -1 * 0.11. Total 1 - 0.055514 - 0.11 = 0.834486.
        let mut d = vec![false; 100];
        d[50] = true;
        d[61] = true;
        d[95] = true;
        let s = score_file(&d, &[(50, 59)], STD);
        assert!((s.score - 0.834_486).abs() < 1e-5, "{}", s.score);
        assert_eq!(s.fp, 2);
    }

    #[test]
    fn probationary_detections_are_ignored() {
        // Row 10 is inside the 15-row probation: not a false positive.
        let mut d = vec![false; 100];
        d[10] = true;
        let s = score_file(&d, &[], STD);
        assert_eq!(s.score, 0.0);
        assert_eq!(s.fp, 0);
    }

    #[test]
    fn score_csv_writes_one_bounded_score_per_row() {
        let dir = tempfile::tempdir().expect("temp dir");
        let input = dir.path().join("in.csv");
        let mut text = String::from("timestamp,value\n");
        for i in 0..300 {
            let v = if i == 250 {
                500.0
            } else {
                10.0 + (i % 7) as f64
            };
            text.push_str(&format!("2014-04-01 {:02}:{:02}:00,{v}\n", i / 60, i % 60));
        }
        std::fs::write(&input, text).expect("write");
        let mut out = Vec::new();
        let n = score_csv(&input, &mut out, &DetectorConfig::default()).expect("scores");
        assert_eq!(n, 300);
        let out = String::from_utf8(out).expect("utf8");
        let scores: Vec<f64> = out
            .lines()
            .skip(1)
            .map(|l| {
                l.rsplit(',')
                    .next()
                    .and_then(|s| s.parse().ok())
                    .expect("score")
            })
            .collect();
        assert_eq!(scores.len(), 300);
        assert!(scores.iter().all(|s| (0.0..=1.0).contains(s)));
        assert!(scores[250] >= DetectorConfig::default().threshold);
        assert!(out.starts_with("timestamp,value,anomaly_score\n2014-04-01 00:00:00,10,"));
    }

    #[test]
    fn scores_are_causal_a_prefix_scores_the_same_alone() {
        // A noisy daily-seasonal 5-minute series with a level shift and gaps.
        let mut rows = Vec::new();
        let mut seed: u64 = 11;
        for i in 0..3000i64 {
            seed = seed
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1_442_695_040_888_963_407);
            let noise = (seed >> 11) as f64 / (1u64 << 53) as f64;
            if i % 97 == 13 {
                continue;
            }
            let day = (i % 288) as f64 / 288.0 * std::f64::consts::TAU;
            let shift = if i > 2200 { 30.0 } else { 0.0 };
            rows.push(Row {
                ts: i * 300,
                value: 50.0 + 10.0 * day.sin() + 3.0 * noise + shift,
            });
        }
        let config = DetectorConfig::default();
        let whole = score_series(&rows, &config);
        for cut in [500, 1700, 2300] {
            assert_eq!(
                score_series(&rows[..cut], &config),
                whole[..cut],
                "cut at {cut}"
            );
        }
        assert!(whole[2150..2400].iter().any(|s| *s >= config.threshold));
    }

    #[test]
    fn a_window_inside_the_probation_counts_for_perfect_but_not_for_null() {
        // NAB: the perfect score is tpWeight per labelled window; a window wholly inside the
        // probationary rows is not scored, so the null detector is not charged for it.
        let windows = [(2, 5), (50, 59)];
        let (perfect, null) = anchors(100, &windows, STD);
        assert!((perfect - 2.0).abs() < 1e-12);
        assert!((null + 1.0).abs() < 1e-12);
    }

    #[test]
    fn normalisation_puts_null_at_zero_and_perfect_at_hundred() {
        let (perfect, null) = anchors(100, &[(50, 59), (70, 79)], STD);
        assert!((perfect - 2.0).abs() < 1e-12);
        assert!((null + 2.0).abs() < 1e-12);
        assert_eq!(normalise(null, perfect, null), 0.0);
        assert!((normalise(perfect, perfect, null) - 100.0).abs() < 1e-9);
        // One window hit at its start, the other missed: raw 0 -> 50.
        assert!((normalise(0.0, perfect, null) - 50.0).abs() < 1e-9);
    }
}
