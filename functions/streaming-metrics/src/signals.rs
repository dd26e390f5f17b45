//! Music-specific signals beside the generic detector, each a documented rule over one
//! subject's day, and the known causes that explain a jump.
//!
//! | kind | rule |
//! |---|---|
//! | `artificial_streaming` | streams ÷ listeners of the day (the source's GLOBAL or summed figures) is above [`SignalConfig::max_streams_per_listener`] with at least [`SignalConfig::min_streams`] streams. People who like a track play it one to three times a day; a day's audience averaging more is a loop, the pattern of bought streams. |
//! | `territory_shift` | the total variation distance between the day's territory shares and the mean shares of the previous [`SignalConfig::baseline_days`] days (at least 7 of them with data) is at least [`SignalConfig::max_territory_shift`], with at least `min_streams` streams. A track's audience geography moves slowly; half of it moving in a day is a farm switched on somewhere, or a mis-attributed report. |
//! | `save_rate_collapse` | the generic detector flags a rise of streams and the day's saves ÷ streams is below [`SignalConfig::save_rate_ratio`] × the median rate of the baseline days. Real discovery brings saves with plays; plays without saves are bots or a mistaken placement. |
//! | `unexplained_spike` | the generic detector flags a rise of streams and no known cause lies within [`SignalConfig::explain_days`] days before it: no release of the subject or its artist, no playlist add the store knows about (a `playlist_add` event, or `playlist_adds` counted by the source that day). A rise with such a cause is not an alert; the audit log records what explained it. |
//! | `drop` | the generic detector flags a fall of streams below its band. |

use chrono::NaiveDate;
use serde::{Deserialize, Serialize};

/// Thresholds of the music-specific rules (one set for every series).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SignalConfig {
    /// Streams per listener per day above which a day looks artificial.
    pub max_streams_per_listener: f64,
    /// Streams a day needs before a ratio or share means anything.
    pub min_streams: i64,
    /// Total variation distance of territory shares that counts as a shift.
    pub max_territory_shift: f64,
    /// Days of history the share and save-rate baselines are taken over.
    pub baseline_days: i64,
    /// Share of the usual save rate below which a stream jump without saves is flagged.
    pub save_rate_ratio: f64,
    /// Days before a jump in which a release or playlist add explains it.
    pub explain_days: i64,
    /// Days an alert of one kind on one series silences the next.
    pub cooldown_days: i64,
}

impl Default for SignalConfig {
    fn default() -> Self {
        Self {
            max_streams_per_listener: 6.0,
            min_streams: 200,
            max_territory_shift: 0.5,
            baseline_days: 28,
            save_rate_ratio: 0.4,
            explain_days: 3,
            cooldown_days: 7,
        }
    }
}

/// A known cause of a jump.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CauseKind {
    /// A release of the track or its artist.
    Release,
    /// A playlist add the store knows about.
    PlaylistAdd,
}

/// One known cause.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Cause {
    /// What it is.
    pub kind: CauseKind,
    /// When.
    pub date: NaiveDate,
    /// Which (a release or playlist id, or the source's count), when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
}

/// The cause explaining a rise on `date`, if one lies in the `explain_days` before it (the
/// day itself included).
pub fn explaining<'a>(
    causes: &'a [Cause],
    date: NaiveDate,
    config: &SignalConfig,
) -> Option<&'a Cause> {
    causes
        .iter()
        .filter(|c| c.date <= date && (date - c.date).num_days() < config.explain_days)
        .max_by_key(|c| c.date)
}

/// Streams per listener, when the day has enough streams and any listener.
pub fn streams_per_listener(streams: i64, listeners: i64, config: &SignalConfig) -> Option<f64> {
    (streams >= config.min_streams && listeners > 0).then(|| streams as f64 / listeners as f64)
}

/// The total variation distance between two share vectors given as (territory, count)
/// pairs: half the sum of the absolute differences of the shares, in [0, 1].
pub fn territory_shift(today: &[(String, i64)], baseline: &[(String, f64)]) -> f64 {
    let total_today: i64 = today.iter().map(|(_, v)| *v).sum();
    let total_base: f64 = baseline.iter().map(|(_, v)| *v).sum();
    if total_today <= 0 || total_base <= 0.0 {
        return 0.0;
    }
    let mut keys: Vec<&String> = today
        .iter()
        .map(|(k, _)| k)
        .chain(baseline.iter().map(|(k, _)| k))
        .collect();
    keys.sort();
    keys.dedup();
    let share_today = |k: &str| {
        today
            .iter()
            .find(|(t, _)| t == k)
            .map_or(0.0, |(_, v)| *v as f64)
            / total_today as f64
    };
    let share_base = |k: &str| {
        baseline
            .iter()
            .find(|(t, _)| t == k)
            .map_or(0.0, |(_, v)| *v)
            / total_base
    };
    keys.iter()
        .map(|k| (share_today(k) - share_base(k)).abs())
        .sum::<f64>()
        / 2.0
}

/// The median of a slice (`None` when empty).
pub fn median(values: &[f64]) -> Option<f64> {
    if values.is_empty() {
        return None;
    }
    let mut v = values.to_vec();
    v.sort_by(f64::total_cmp);
    let mid = v.len() / 2;
    Some(if v.len() % 2 == 1 {
        v[mid]
    } else {
        (v[mid - 1] + v[mid]) / 2.0
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(day: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(2026, 11, day).expect("valid date")
    }

    #[test]
    fn a_release_explains_a_jump_within_the_window_only() {
        let config = SignalConfig::default();
        let causes = vec![Cause {
            kind: CauseKind::Release,
            date: d(10),
            detail: None,
        }];
        assert!(explaining(&causes, d(10), &config).is_some());
        assert!(explaining(&causes, d(12), &config).is_some());
        assert!(explaining(&causes, d(13), &config).is_none());
        assert!(explaining(&causes, d(9), &config).is_none());
    }

    #[test]
    fn territory_shift_is_half_the_l1_distance_of_shares() {
        // Today all SE; baseline half SE half NO: |1-0.5| + |0-0.5| = 1, halved: 0.5.
        let today = vec![("SE".to_owned(), 100)];
        let base = vec![("SE".to_owned(), 50.0), ("NO".to_owned(), 50.0)];
        assert!((territory_shift(&today, &base) - 0.5).abs() < 1e-12);
        assert_eq!(territory_shift(&today, &[("SE".to_owned(), 3.0)]), 0.0);
    }

    #[test]
    fn streams_per_listener_needs_volume() {
        let config = SignalConfig::default();
        assert_eq!(streams_per_listener(100, 10, &config), None);
        assert_eq!(streams_per_listener(1000, 100, &config), Some(10.0));
        assert_eq!(median(&[3.0, 1.0, 2.0, 10.0]), Some(2.5));
    }
}
