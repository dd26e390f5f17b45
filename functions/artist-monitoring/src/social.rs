//! Trends and alerts on the other platforms' series (YouTube, Last.fm, Deezer, Instagram,
//! TikTok), which social-media-sync stores in `backbone::series`.
//!
//! The same windows and rules as the Spotify followers, with two differences: the platform
//! and metric are named in every trend and in the alert's evidence, and a value's precision
//! counts. YouTube rounds subscriber counts to three significant figures, so a change no
//! larger than the rounding of its two ends is not a trend, and growth within rounding never
//! reads as unusual.

use std::collections::BTreeMap;

use backbone::series::SeriesPoint;
use backbone::validate::ArtistId;
use chrono::NaiveDate;
use serde::{Deserialize, Serialize};
use serde_json::json;

use crate::alerts::{Alert, AlertKind, AlertRules, robust_z};
use crate::trend::{self, Change, daily_increments};

/// The metrics that count an audience (milestones apply to them).
pub const AUDIENCE_METRICS: [&str; 4] = ["subscribers", "followers", "fans", "listeners"];

/// The trends of one platform's metric.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SocialTrend {
    /// The platform.
    pub platform: String,
    /// The metric.
    pub metric: String,
    /// The latest value.
    pub value: u64,
    /// The changes larger than the values' rounding.
    pub changes: Vec<Change>,
    /// The windows (days) whose change is within rounding: no trend.
    pub within_rounding: Vec<u32>,
}

/// The trends of every series with a point on `date`.
pub fn trends(
    series: &BTreeMap<(String, String), Vec<SeriesPoint>>,
    date: NaiveDate,
) -> Vec<SocialTrend> {
    let mut out = Vec::new();
    for ((platform, metric), points) in series {
        let Some(today) = points.iter().find(|p| p.as_of == date) else {
            continue;
        };
        let values: BTreeMap<NaiveDate, f64> =
            points.iter().map(|p| (p.as_of, p.value as f64)).collect();
        let slack: BTreeMap<NaiveDate, f64> = points
            .iter()
            .map(|p| (p.as_of, p.precision.half_step(p.value)))
            .collect();
        let mut changes = Vec::new();
        let mut within = Vec::new();
        for c in trend::changes(&values, date) {
            let rounding = slack.get(&c.from).copied().unwrap_or(0.0)
                + slack.get(&c.to).copied().unwrap_or(0.0);
            if c.absolute.abs() <= rounding {
                within.push(c.window_days);
            } else {
                changes.push(c);
            }
        }
        out.push(SocialTrend {
            platform: platform.clone(),
            metric: metric.clone(),
            value: today.value,
            changes,
            within_rounding: within,
        });
    }
    out
}

/// Milestones and unusual growth on the audience series, with the platform in the evidence.
pub fn alerts(
    rules: &AlertRules,
    artist: &ArtistId,
    name: Option<&str>,
    date: NaiveDate,
    series: &BTreeMap<(String, String), Vec<SeriesPoint>>,
) -> Vec<Alert> {
    let mut out = Vec::new();
    let who = name.unwrap_or(artist.as_str());
    for ((platform, metric), points) in series {
        if !AUDIENCE_METRICS.contains(&metric.as_str()) {
            continue;
        }
        let Some(today) = points.iter().find(|p| p.as_of == date) else {
            continue;
        };
        let Some(before) = points
            .iter()
            .filter(|p| p.as_of < date)
            .max_by_key(|p| p.as_of)
        else {
            continue;
        };
        let now = today.value as f64;
        let prev = before.value as f64;
        let rounding =
            today.precision.half_step(today.value) + before.precision.half_step(before.value);
        let alert = |kind: AlertKind,
                     discriminator: String,
                     summary: String,
                     evidence: serde_json::Value| Alert {
            kind,
            artist: artist.clone(),
            artist_name: name.map(str::to_owned),
            date,
            dedupe_key: format!(
                "{}#{artist}#{platform}.{metric}#{discriminator}",
                kind.as_str()
            ),
            summary,
            evidence,
        };
        if rules.enabled.contains(&AlertKind::FollowerMilestone) {
            // A milestone crossed only within rounding is not crossed yet.
            let (half_now, half_prev) = (
                today.precision.half_step(today.value),
                before.precision.half_step(before.value),
            );
            for m in rules
                .milestones
                .iter()
                .copied()
                .filter(|m| prev + half_prev < *m as f64 && now - half_now >= *m as f64)
            {
                out.push(alert(
                    AlertKind::FollowerMilestone,
                    m.to_string(),
                    format!("{who} passed {m} {metric} on {platform}"),
                    json!({"platform": platform, "metric": metric, "milestone": m, "previous": prev, "previous_date": before.as_of,
                           "current": now, "precision": today.precision, "source": today.source}),
                ));
            }
        }
        if rules.enabled.contains(&AlertKind::UnusualGrowth) {
            let days = (date - before.as_of).num_days().max(1) as f64;
            let increment = (now - prev) / days;
            let window_start = date - chrono::Duration::days(rules.growth_history_days);
            let history: BTreeMap<NaiveDate, f64> = points
                .iter()
                .filter(|p| p.as_of >= window_start && p.as_of < date)
                .map(|p| (p.as_of, p.value as f64))
                .collect();
            let increments = daily_increments(&history);
            if increments.len() >= rules.growth_min_history
                && let Some((z, median, scale)) = robust_z(increment, &increments)
                && z.abs() >= rules.growth_z
                && (increment - median).abs() >= rules.growth_min_share * prev.max(1.0)
                && (increment - median).abs() * days > rounding
            {
                let direction = if z > 0.0 { "surge" } else { "drop" };
                out.push(alert(
                    AlertKind::UnusualGrowth,
                    date.to_string(),
                    format!("{who}: {platform} {metric} {direction} of {increment:+.0} a day against a usual {median:+.0}"),
                    json!({"platform": platform, "metric": metric, "direction": direction, "increment_per_day": increment,
                           "usual_median": median, "scale": scale, "robust_z": z, "threshold": rules.growth_z,
                           "min_share": rules.growth_min_share, "rounding": rounding, "history_days": increments.len(),
                           "window": {"from": before.as_of, "to": date}, "source": today.source}),
                ));
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use backbone::series::Precision;

    fn day(n: i64) -> NaiveDate {
        NaiveDate::from_ymd_opt(2026, 10, 1).unwrap() + chrono::Duration::days(n)
    }

    fn artist() -> ArtistId {
        "4Z8W4fKeB5YxbusRsdQVPb".parse().unwrap()
    }

    fn series(
        platform: &str,
        metric: &str,
        values: &[(i64, u64)],
        precision: Precision,
    ) -> BTreeMap<(String, String), Vec<SeriesPoint>> {
        let points = values
            .iter()
            .map(|(d, v)| SeriesPoint {
                artist: artist(),
                platform: platform.into(),
                metric: metric.into(),
                value: *v,
                as_of: day(*d),
                source: format!("{platform} test"),
                precision,
                fetched_at: chrono::Utc::now(),
            })
            .collect();
        [((platform.to_owned(), metric.to_owned()), points)].into()
    }

    #[test]
    fn a_change_within_youtube_rounding_is_not_a_trend() {
        let three = Precision::SignificantFigures { figures: 3 };
        // 1.23M → 1.24M: a step of one rounding unit (10,000) is within the 5,000 + 5,000 slack.
        let s = series(
            "youtube",
            "subscribers",
            &[(0, 1_230_000), (1, 1_240_000), (7, 1_240_000)],
            three,
        );
        let t = trends(&s, day(1));
        assert_eq!(t[0].within_rounding, vec![1]);
        assert!(t[0].changes.is_empty());
        // Two steps is more than rounding can explain.
        let s = series(
            "youtube",
            "subscribers",
            &[(0, 1_230_000), (1, 1_250_000)],
            three,
        );
        let t = trends(&s, day(1));
        assert_eq!(t[0].changes[0].absolute, 20_000.0);
        // Exact counts: any change is a change.
        let s = series(
            "deezer",
            "fans",
            &[(0, 1_230_000), (1, 1_230_001)],
            Precision::Exact,
        );
        assert_eq!(trends(&s, day(1))[0].changes.len(), 1);
    }

    #[test]
    fn alerts_name_the_platform_and_rounding_never_crosses_a_milestone() {
        let rules = AlertRules::default();
        let s = series(
            "deezer",
            "fans",
            &[(0, 99_990), (1, 100_020)],
            Precision::Exact,
        );
        let a = alerts(&rules, &artist(), Some("Band"), day(1), &s);
        assert_eq!(a.len(), 1);
        assert_eq!(a[0].evidence["platform"], "deezer");
        assert_eq!(
            a[0].dedupe_key,
            format!("follower_milestone#{}#deezer.fans#100000", artist())
        );
        assert!(a[0].summary.contains("on deezer"));
        // 999,000 → 1,000,000 at three figures: the true count may still be below a million.
        let s = series(
            "youtube",
            "subscribers",
            &[(0, 999_000), (1, 1_000_000)],
            Precision::SignificantFigures { figures: 3 },
        );
        assert!(alerts(&rules, &artist(), None, day(1), &s).is_empty());
        // Non-audience metrics never raise milestones.
        let s = series(
            "youtube",
            "views",
            &[(0, 99_990), (1, 100_020)],
            Precision::Exact,
        );
        assert!(alerts(&rules, &artist(), None, day(1), &s).is_empty());
    }

    #[test]
    fn a_surge_on_a_platform_is_unusual_growth_with_evidence() {
        let mut values: Vec<(i64, u64)> = (0..30)
            .map(|n| (n, 50_000 + 100 * n as u64 + (n as u64 % 3) * 7))
            .collect();
        values.push((30, values[29].1 + 5_000));
        let s = series("instagram", "followers", &values, Precision::Exact);
        let a = alerts(&AlertRules::default(), &artist(), None, day(30), &s);
        assert_eq!(a.len(), 1, "{a:?}");
        assert_eq!(
            (a[0].kind, a[0].evidence["platform"].as_str()),
            (AlertKind::UnusualGrowth, Some("instagram"))
        );
    }
}
