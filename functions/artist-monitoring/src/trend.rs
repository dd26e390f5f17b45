//! Trends: absolute and relative change of a daily series over 1, 7 and 28 days.
//!
//! Snapshots miss days (a failed run, a quota day), so a change is measured against the
//! latest observation at or before the window's start, provided it is not too stale; the
//! actual span is reported with the change, so a "7-day" change over 8 days says so.

use std::collections::BTreeMap;

use chrono::NaiveDate;
use serde::{Deserialize, Serialize};

/// The windows reported, in days.
pub const WINDOWS: [u32; 3] = [1, 7, 28];

/// A change of one series over one window.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Change {
    /// The nominal window, in days.
    pub window_days: u32,
    /// The date of the base observation.
    pub from: NaiveDate,
    /// The date of the latest observation.
    pub to: NaiveDate,
    /// Days actually between the two observations.
    pub span_days: i64,
    /// The base value.
    pub base: f64,
    /// The latest value.
    pub value: f64,
    /// `value - base`.
    pub absolute: f64,
    /// `absolute / base`, when the base is not zero.
    pub relative: Option<f64>,
}

/// How much older than the window's start a base may be: a quarter of the window, at least one
/// day. A 1-day change may span 2 days, a 7-day change 8, a 28-day change 35.
fn tolerance(window_days: u32) -> i64 {
    i64::from((window_days / 4).max(1))
}

/// The change of `series` over `window_days` ending on `today`; `None` when today has no
/// observation or no base is recent enough.
pub fn change(
    series: &BTreeMap<NaiveDate, f64>,
    today: NaiveDate,
    window_days: u32,
) -> Option<Change> {
    let value = *series.get(&today)?;
    let start = today - chrono::Duration::days(i64::from(window_days));
    let (from, base) = series.range(..=start).next_back()?;
    let span_days = (today - *from).num_days();
    if span_days > i64::from(window_days) + tolerance(window_days) {
        return None;
    }
    let absolute = value - base;
    Some(Change {
        window_days,
        from: *from,
        to: today,
        span_days,
        base: *base,
        value,
        absolute,
        relative: (*base != 0.0).then(|| absolute / base),
    })
}

/// Every window's change that can be computed.
pub fn changes(series: &BTreeMap<NaiveDate, f64>, today: NaiveDate) -> Vec<Change> {
    WINDOWS
        .iter()
        .filter_map(|w| change(series, today, *w))
        .collect()
}

/// Day-over-day increments per day, for the history of "usual" growth: a gap of `n` days
/// contributes its change divided evenly over the `n` days.
pub fn daily_increments(series: &BTreeMap<NaiveDate, f64>) -> Vec<f64> {
    series
        .iter()
        .zip(series.iter().skip(1))
        .filter_map(|((d0, v0), (d1, v1))| {
            let days = (*d1 - *d0).num_days();
            (days > 0).then(|| (v1 - v0) / days as f64)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn day(n: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(2026, 10, 1).unwrap() + chrono::Duration::days(i64::from(n))
    }

    #[test]
    fn changes_over_complete_series() {
        let series: BTreeMap<_, _> = (0..=28)
            .map(|n| (day(n), 1000.0 + f64::from(n) * 10.0))
            .collect();
        let all = changes(&series, day(28));
        assert_eq!(all.len(), 3);
        assert_eq!(all[0].absolute, 10.0);
        assert_eq!(all[1].absolute, 70.0);
        assert_eq!(all[2].absolute, 280.0);
        assert!((all[2].relative.unwrap() - 0.28).abs() < 1e-12);
        assert_eq!(all[1].span_days, 7);
    }

    #[test]
    fn missing_days_use_the_latest_earlier_base_within_tolerance() {
        let mut series = BTreeMap::new();
        series.insert(day(0), 100.0);
        series.insert(day(19), 150.0);
        series.insert(day(20), 160.0);
        // day(13), the 7-day base, is missing and day(0) is too old: no 7-day change.
        assert!(change(&series, day(20), 7).is_none());
        // The 1-day base exists.
        assert_eq!(change(&series, day(20), 1).unwrap().absolute, 10.0);
        // 28 days back from day(28) is day(0): exactly on the base.
        series.insert(day(28), 200.0);
        let c = change(&series, day(28), 28).unwrap();
        assert_eq!((c.from, c.absolute, c.span_days), (day(0), 100.0, 28));
        // A 1-day change across a one-day gap spans 2 days.
        series.insert(day(30), 210.0);
        let c = change(&series, day(30), 1).unwrap();
        assert_eq!((c.span_days, c.absolute), (2, 10.0));
        // No observation today: nothing.
        assert!(change(&series, day(31), 1).is_none());
    }

    #[test]
    fn zero_base_has_no_relative_change_and_gaps_spread_increments() {
        let series: BTreeMap<_, _> = [(day(0), 0.0), (day(1), 5.0), (day(4), 11.0)].into();
        assert_eq!(change(&series, day(1), 1).unwrap().relative, None);
        assert_eq!(daily_increments(&series), vec![5.0, 2.0]);
    }
}
