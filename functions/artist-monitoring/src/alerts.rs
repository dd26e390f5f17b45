//! Alert rules: what in a day's snapshot deserves a person's attention, with the evidence.
//!
//! Each rule looks only at values the API really returned: a missing follower count or
//! popularity (the development tier) never raises, and never counts as zero. Cooldowns are
//! applied by the task, which knows when each alert last fired.

use std::collections::BTreeMap;

use backbone::validate::ArtistId;
use chrono::NaiveDate;
use serde::{Deserialize, Serialize};
use serde_json::json;

use crate::trend::daily_increments;

/// The kinds of alert.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AlertKind {
    /// An album or single appeared since the last snapshot.
    NewRelease,
    /// The follower count crossed a milestone.
    FollowerMilestone,
    /// Follower growth far outside the artist's own history.
    UnusualGrowth,
    /// Popularity moved by more than the threshold in a day.
    PopularityJump,
    /// The artist no longer exists on Spotify (404).
    ArtistGone,
}

impl AlertKind {
    /// Every kind.
    pub const ALL: [AlertKind; 5] = [
        AlertKind::NewRelease,
        AlertKind::FollowerMilestone,
        AlertKind::UnusualGrowth,
        AlertKind::PopularityJump,
        AlertKind::ArtistGone,
    ];

    /// The stable name, as in events.
    pub fn as_str(&self) -> &'static str {
        match self {
            AlertKind::NewRelease => "new_release",
            AlertKind::FollowerMilestone => "follower_milestone",
            AlertKind::UnusualGrowth => "unusual_growth",
            AlertKind::PopularityJump => "popularity_jump",
            AlertKind::ArtistGone => "artist_gone",
        }
    }
}

/// Alert rules of a watchlist; every field has a documented default.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AlertRules {
    /// The kinds that may fire (default: all).
    pub enabled: Vec<AlertKind>,
    /// Follower milestones (default: 1k, 10k, 50k, 100k, 250k, 500k, 1M, 2.5M, 5M, 10M, 25M, 50M, 100M).
    pub milestones: Vec<u64>,
    /// Robust z-score of a day's follower increment, against the artist's own past increments,
    /// above which growth is unusual (default 4.0).
    pub growth_z: f64,
    /// Past daily increments needed before growth is judged (default 14).
    pub growth_min_history: usize,
    /// Days of history the growth rule looks back (default 56).
    pub growth_history_days: i64,
    /// The least unusual growth worth a person's attention, as a share of the follower count:
    /// the day's increment must exceed the usual one by this much (default 0.01, 1 % of the
    /// followers in a day). Keeps rounding noise of small artists from reading as a surge.
    pub growth_min_share: f64,
    /// Popularity points (0 to 100) moved in one day that make a jump (default 8).
    pub popularity_jump: u8,
    /// Days during which the same alert does not fire again (default 7).
    pub cooldown_days: i64,
}

impl Default for AlertRules {
    fn default() -> Self {
        Self {
            enabled: AlertKind::ALL.to_vec(),
            milestones: vec![
                1_000,
                10_000,
                50_000,
                100_000,
                250_000,
                500_000,
                1_000_000,
                2_500_000,
                5_000_000,
                10_000_000,
                25_000_000,
                50_000_000,
                100_000_000,
            ],
            growth_z: 4.0,
            growth_min_history: 14,
            growth_history_days: 56,
            growth_min_share: 0.01,
            popularity_jump: 8,
            cooldown_days: 7,
        }
    }
}

/// One alert, with what a person needs to judge it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Alert {
    /// Its kind.
    pub kind: AlertKind,
    /// The artist.
    pub artist: ArtistId,
    /// The artist's name, when known.
    pub artist_name: Option<String>,
    /// The day it is about.
    pub date: NaiveDate,
    /// What makes two alerts the same, for the cooldown (kind, artist and a discriminator).
    pub dedupe_key: String,
    /// One sentence for a person.
    pub summary: String,
    /// The values, window and threshold that made it fire.
    pub evidence: serde_json::Value,
}

/// A release seen in the day's snapshot.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Release {
    /// The album id.
    pub id: String,
    /// Its name.
    pub name: String,
    /// `album`, `single`, `compilation` or `appears_on`.
    pub group: String,
    /// The release date as Spotify gives it (`2026`, `2026-11`, `2026-11-20`).
    pub release_date: String,
}

/// What the rules look at for one artist and day.
#[derive(Debug, Clone)]
pub struct Observation<'a> {
    /// The artist.
    pub artist: &'a ArtistId,
    /// Its name, when known.
    pub name: Option<&'a str>,
    /// The day.
    pub date: NaiveDate,
    /// Follower counts by day, today included when known.
    pub followers: &'a BTreeMap<NaiveDate, f64>,
    /// Popularity by day, today included when known.
    pub popularity: &'a BTreeMap<NaiveDate, f64>,
    /// Releases not seen in any earlier snapshot (empty on the first snapshot).
    pub new_releases: &'a [Release],
    /// The API answered 404 for the artist.
    pub gone: bool,
    /// The previous snapshot found it gone already.
    pub was_gone: bool,
}

/// The median of `values` (which must not be empty).
fn median(values: &mut [f64]) -> f64 {
    values.sort_by(f64::total_cmp);
    let mid = values.len() / 2;
    if values.len().is_multiple_of(2) {
        (values[mid - 1] + values[mid]) / 2.0
    } else {
        values[mid]
    }
}

/// Robust z-score of `x` against `history`: `(x - median) / (1.4826 * MAD)`, the MAD scaled to
/// a standard deviation for normal data. The scale has a floor of one follower a day or 1 % of
/// the median, so a perfectly steady history does not turn a one-follower wobble into a storm.
pub fn robust_z(x: f64, history: &[f64]) -> Option<(f64, f64, f64)> {
    if history.is_empty() {
        return None;
    }
    let mut values = history.to_vec();
    let med = median(&mut values);
    let mut deviations: Vec<f64> = history.iter().map(|v| (v - med).abs()).collect();
    let mad = median(&mut deviations);
    let scale = (1.4826 * mad).max(1.0).max(0.01 * med.abs());
    Some(((x - med) / scale, med, scale))
}

/// Evaluates every enabled rule.
pub fn evaluate(rules: &AlertRules, obs: &Observation<'_>) -> Vec<Alert> {
    let mut alerts = Vec::new();
    let on = |kind| rules.enabled.contains(&kind);
    let name = obs.name.unwrap_or(obs.artist.as_str());
    let alert = |kind: AlertKind,
                 discriminator: String,
                 summary: String,
                 evidence: serde_json::Value| Alert {
        kind,
        artist: obs.artist.clone(),
        artist_name: obs.name.map(str::to_owned),
        date: obs.date,
        dedupe_key: format!("{}#{}#{discriminator}", kind.as_str(), obs.artist),
        summary,
        evidence,
    };

    if obs.gone {
        // Once per disappearance: a cooldown would repeat it every week while the artist stays gone.
        if on(AlertKind::ArtistGone) && !obs.was_gone {
            alerts.push(alert(
                AlertKind::ArtistGone,
                "gone".into(),
                format!("{name} is no longer on Spotify (404)"),
                json!({ "status": 404, "date": obs.date }),
            ));
        }
        return alerts;
    }

    if on(AlertKind::NewRelease) {
        for release in obs.new_releases {
            alerts.push(alert(
                AlertKind::NewRelease,
                release.id.clone(),
                format!("{name} released the {} \"{}\" ({})", release.group, release.name, release.release_date),
                json!({ "album_id": release.id, "name": release.name, "group": release.group, "release_date": release.release_date }),
            ));
        }
    }

    let today_followers = obs.followers.get(&obs.date).copied();
    let previous_followers = obs
        .followers
        .range(..obs.date)
        .next_back()
        .map(|(d, v)| (*d, *v));

    if on(AlertKind::FollowerMilestone)
        && let (Some(now), Some((since, before))) = (today_followers, previous_followers)
    {
        for milestone in rules
            .milestones
            .iter()
            .copied()
            .filter(|m| before < *m as f64 && now >= *m as f64)
        {
            alerts.push(alert(
                AlertKind::FollowerMilestone,
                milestone.to_string(),
                format!("{name} passed {milestone} followers"),
                json!({ "milestone": milestone, "previous": before, "previous_date": since, "current": now }),
            ));
        }
    }

    if on(AlertKind::UnusualGrowth)
        && let (Some(now), Some((since, before))) = (today_followers, previous_followers)
    {
        let days = (obs.date - since).num_days().max(1) as f64;
        let increment = (now - before) / days;
        let window_start = obs.date - chrono::Duration::days(rules.growth_history_days);
        let history_series: BTreeMap<NaiveDate, f64> = obs
            .followers
            .range(window_start..obs.date)
            .map(|(d, v)| (*d, *v))
            .collect();
        let history = daily_increments(&history_series);
        if history.len() >= rules.growth_min_history
            && let Some((z, median, scale)) = robust_z(increment, &history)
            && z.abs() >= rules.growth_z
            && (increment - median).abs() >= rules.growth_min_share * before.max(1.0)
        {
            let direction = if z > 0.0 { "surge" } else { "drop" };
            alerts.push(alert(
                AlertKind::UnusualGrowth,
                obs.date.to_string(),
                format!("{name}: follower {direction} of {increment:+.0} a day against a usual {median:+.0}"),
                json!({
                    "metric": "followers", "direction": direction, "increment_per_day": increment,
                    "usual_median": median, "scale": scale, "robust_z": z, "threshold": rules.growth_z,
                    "min_share": rules.growth_min_share,
                    "history_days": history.len(), "window": { "from": since, "to": obs.date },
                }),
            ));
        }
    }

    if on(AlertKind::PopularityJump)
        && let (Some(now), Some((since, before))) = (
            obs.popularity.get(&obs.date).copied(),
            obs.popularity
                .range(..obs.date)
                .next_back()
                .map(|(d, v)| (*d, *v)),
        )
        && (now - before).abs() >= f64::from(rules.popularity_jump)
        && (obs.date - since).num_days() <= 2
    {
        alerts.push(alert(
            AlertKind::PopularityJump,
            obs.date.to_string(),
            format!("{name}: popularity {before:.0} → {now:.0}"),
            json!({ "previous": before, "previous_date": since, "current": now, "threshold": rules.popularity_jump }),
        ));
    }
    alerts
}

#[cfg(test)]
mod tests {
    use super::*;

    fn day(n: i64) -> NaiveDate {
        NaiveDate::from_ymd_opt(2026, 10, 1).unwrap() + chrono::Duration::days(n)
    }

    fn artist() -> ArtistId {
        "4Z8W4fKeB5YxbusRsdQVPb".parse().unwrap()
    }

    fn observe<'a>(
        artist: &'a ArtistId,
        date: NaiveDate,
        followers: &'a BTreeMap<NaiveDate, f64>,
        popularity: &'a BTreeMap<NaiveDate, f64>,
    ) -> Observation<'a> {
        Observation {
            artist,
            name: Some("Band"),
            date,
            followers,
            popularity,
            new_releases: &[],
            gone: false,
            was_gone: false,
        }
    }

    #[test]
    fn steady_growth_raises_nothing_and_a_surge_raises_unusual_growth() {
        let a = artist();
        let mut followers: BTreeMap<_, _> = (0..30)
            .map(|n| (day(n), 5000.0 + 40.0 * n as f64 + (n % 3) as f64 * 5.0))
            .collect();
        let none = BTreeMap::new();
        assert!(
            evaluate(
                &AlertRules::default(),
                &observe(&a, day(29), &followers, &none)
            )
            .is_empty()
        );

        followers.insert(day(30), followers[&day(29)] + 900.0);
        let alerts = evaluate(
            &AlertRules::default(),
            &observe(&a, day(30), &followers, &none),
        );
        assert_eq!(alerts.len(), 1, "{alerts:?}");
        assert_eq!(alerts[0].kind, AlertKind::UnusualGrowth);
        assert_eq!(alerts[0].evidence["direction"], "surge");
        assert!(alerts[0].evidence["robust_z"].as_f64().unwrap() > 4.0);
    }

    #[test]
    fn rounding_noise_of_a_small_artist_is_not_a_surge() {
        // About 22 a day on 1,100 followers, with +-2 of noise: +29 is far out in z (the scale
        // has its one-follower floor) but only 7 extra followers, 0.6 % of the count.
        let a = artist();
        let mut followers: BTreeMap<_, _> = (0..20)
            .map(|n| (day(n), 1100.0 + 22.0 * n as f64 + (n % 2) as f64))
            .collect();
        followers.insert(day(20), followers[&day(19)] + 29.0);
        let none = BTreeMap::new();
        let alerts = evaluate(
            &AlertRules::default(),
            &observe(&a, day(20), &followers, &none),
        );
        assert!(alerts.is_empty(), "{alerts:?}");
        let strict = AlertRules {
            growth_min_share: 0.0,
            ..AlertRules::default()
        };
        let alerts = evaluate(&strict, &observe(&a, day(20), &followers, &none));
        assert_eq!(alerts.len(), 1, "without the floor the z-score alone fires");
    }

    #[test]
    fn milestones_fire_once_when_crossed() {
        let a = artist();
        let followers: BTreeMap<_, _> = [(day(0), 9_990.0), (day(1), 10_020.0)].into();
        let none = BTreeMap::new();
        let alerts = evaluate(
            &AlertRules::default(),
            &observe(&a, day(1), &followers, &none),
        );
        assert_eq!(alerts.len(), 1);
        assert_eq!(alerts[0].kind, AlertKind::FollowerMilestone);
        assert_eq!(
            alerts[0].dedupe_key,
            format!("follower_milestone#{a}#10000")
        );
    }

    #[test]
    fn missing_values_never_alert() {
        let a = artist();
        let none = BTreeMap::new();
        let only_today: BTreeMap<_, _> = [(day(1), 1_000_000.0)].into();
        assert!(
            evaluate(
                &AlertRules::default(),
                &observe(&a, day(1), &only_today, &none)
            )
            .is_empty()
        );
        // Popularity absent yesterday: no jump from "0".
        let pop: BTreeMap<_, _> = [(day(1), 60.0)].into();
        assert!(evaluate(&AlertRules::default(), &observe(&a, day(1), &none, &pop)).is_empty());
    }

    #[test]
    fn popularity_jump_and_gone_and_disabled_rules() {
        let a = artist();
        let none = BTreeMap::new();
        let pop: BTreeMap<_, _> = [(day(0), 40.0), (day(1), 49.0)].into();
        let alerts = evaluate(&AlertRules::default(), &observe(&a, day(1), &none, &pop));
        assert_eq!(alerts[0].kind, AlertKind::PopularityJump);
        let rules = AlertRules {
            enabled: vec![AlertKind::ArtistGone],
            ..AlertRules::default()
        };
        assert!(evaluate(&rules, &observe(&a, day(1), &none, &pop)).is_empty());
        let mut gone = observe(&a, day(1), &none, &pop);
        gone.gone = true;
        let alerts = evaluate(&AlertRules::default(), &gone);
        assert_eq!(
            alerts.iter().map(|a| a.kind).collect::<Vec<_>>(),
            vec![AlertKind::ArtistGone]
        );
        // Still gone the next time: said once per disappearance.
        gone.was_gone = true;
        assert!(evaluate(&AlertRules::default(), &gone).is_empty());
    }

    #[test]
    fn robust_z_floors_its_scale() {
        let (z, med, scale) = robust_z(12.0, &[10.0; 20]).unwrap();
        assert_eq!((med, scale), (10.0, 1.0));
        assert_eq!(z, 2.0);
        assert!(robust_z(1.0, &[]).is_none());
    }
}
