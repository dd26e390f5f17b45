//! Daily artist snapshots and alert cooldowns in the task data store.
//!
//! Keys (single-table, see `backbone::ports::store`):
//! - `pk = artist#<id>`, `sk = snapshot#<YYYY-MM-DD>`: the day's [`Snapshot`]; a rerun of the
//!   same day writes the same item again, so reruns add nothing;
//! - `pk = artist#<id>`, `sk = cooldown#<dedupe key>`: when an alert last fired, to keep it
//!   quiet for the watchlist's cooldown;
//! - `pk = alerts#<YYYY-MM-DD>`, `sk = <dedupe key>`: the alerts raised that day, for reports.

use std::collections::BTreeMap;

use backbone::error::PortError;
use backbone::ports::store::query_all;
use backbone::ports::{ItemKey, PutCondition, Query, Store};
use backbone::validate::ArtistId;
use chrono::NaiveDate;
use serde::{Deserialize, Serialize};

use crate::alerts::{Alert, Release};

/// Most snapshots read back for one artist (two years of days).
const MAX_HISTORY: usize = 800;

/// A metric the API did not return, and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Unavailable {
    /// `followers`, `popularity`, `genres`, ...
    pub metric: String,
    /// Why, for the report.
    pub reason: String,
}

/// What was known of one artist on one day. Absent values are absent, never zero.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Snapshot {
    /// The artist.
    pub artist: ArtistId,
    /// The day.
    pub date: NaiveDate,
    /// The artist's name.
    pub name: Option<String>,
    /// Followers, where the tier returns them.
    pub followers: Option<u64>,
    /// Popularity (0 to 100), where the tier returns it.
    pub popularity: Option<u8>,
    /// Genres, where the tier returns them.
    pub genres: Option<Vec<String>>,
    /// Every release known that day.
    pub releases: Vec<Release>,
    /// The metrics that were missing and why.
    pub unavailable: Vec<Unavailable>,
    /// The artist answered 404.
    #[serde(default)]
    pub gone: bool,
}

fn artist_pk(artist: &ArtistId) -> String {
    format!("artist#{artist}")
}

/// Stores the day's snapshot (replacing a rerun's identical one).
pub async fn save(store: &dyn Store, snapshot: &Snapshot) -> Result<(), PortError> {
    let key = ItemKey::new(
        artist_pk(&snapshot.artist),
        format!("snapshot#{}", snapshot.date),
    );
    let data =
        serde_json::to_value(snapshot).map_err(|e| PortError::permanent("snapshot.encode", e))?;
    store.put(&key, &data, PutCondition::Always, None).await?;
    Ok(())
}

/// The snapshots of `artist` from `from` to `to`, both included, oldest first.
pub async fn history(
    store: &dyn Store,
    artist: &ArtistId,
    from: NaiveDate,
    to: NaiveDate,
) -> Result<Vec<Snapshot>, PortError> {
    let query = Query::partition(artist_pk(artist))
        .between(format!("snapshot#{from}"), format!("snapshot#{to}"));
    query_all(store, query, MAX_HISTORY)
        .await?
        .into_iter()
        .map(|item| {
            serde_json::from_value(item.data)
                .map_err(|e| PortError::permanent("snapshot.decode", e))
        })
        .collect()
}

/// The series of one numeric field of `snapshots`, by day, leaving out days it was absent.
pub fn series(
    snapshots: &[Snapshot],
    field: impl Fn(&Snapshot) -> Option<f64>,
) -> BTreeMap<NaiveDate, f64> {
    snapshots
        .iter()
        .filter_map(|s| field(s).map(|v| (s.date, v)))
        .collect()
}

#[derive(Debug, Serialize, Deserialize)]
struct Cooldown {
    fired_on: NaiveDate,
}

/// Whether `alert` may fire: `None` if the same alert fired less than `cooldown_days` before
/// (a rerun of the day that fired it included); otherwise the write condition for
/// [`mark_fired`], so two concurrent runs cannot both mark it.
pub async fn due(
    store: &dyn Store,
    alert: &Alert,
    cooldown_days: i64,
) -> Result<Option<PutCondition>, PortError> {
    match store.get(&cooldown_key(alert)).await? {
        None => Ok(Some(PutCondition::NotExists)),
        Some(item) => {
            let last: Cooldown = serde_json::from_value(item.data)
                .map_err(|e| PortError::permanent("cooldown.decode", e))?;
            let since = (alert.date - last.fired_on).num_days();
            Ok((since >= cooldown_days.max(1)).then_some(PutCondition::Version(item.version)))
        }
    }
}

/// Records that `alert` fired, under the condition [`due`] returned.
pub async fn mark_fired(
    store: &dyn Store,
    alert: &Alert,
    condition: PutCondition,
) -> Result<(), PortError> {
    let data = serde_json::to_value(Cooldown {
        fired_on: alert.date,
    })
    .map_err(|e| PortError::permanent("cooldown.encode", e))?;
    store
        .put(&cooldown_key(alert), &data, condition, None)
        .await?;
    Ok(())
}

fn cooldown_key(alert: &Alert) -> ItemKey {
    ItemKey::new(
        artist_pk(&alert.artist),
        format!("cooldown#{}", alert.dedupe_key),
    )
}

/// Records a fired alert under its day, for reports.
pub async fn record_alert(store: &dyn Store, alert: &Alert) -> Result<(), PortError> {
    let key = ItemKey::new(format!("alerts#{}", alert.date), alert.dedupe_key.clone());
    let data = serde_json::to_value(alert).map_err(|e| PortError::permanent("alert.encode", e))?;
    store.put(&key, &data, PutCondition::Always, None).await?;
    Ok(())
}

/// The alerts fired on `date`.
pub async fn alerts_on(store: &dyn Store, date: NaiveDate) -> Result<Vec<Alert>, PortError> {
    query_all(store, Query::partition(format!("alerts#{date}")), 10_000)
        .await?
        .into_iter()
        .map(|item| {
            serde_json::from_value(item.data).map_err(|e| PortError::permanent("alert.decode", e))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::alerts::AlertKind;
    use backbone::local::LocalDb;

    fn alert(date: NaiveDate) -> Alert {
        Alert {
            kind: AlertKind::FollowerMilestone,
            artist: "4Z8W4fKeB5YxbusRsdQVPb".parse().unwrap(),
            artist_name: None,
            date,
            dedupe_key: "follower_milestone#4Z8W4fKeB5YxbusRsdQVPb#10000".into(),
            summary: String::new(),
            evidence: serde_json::json!({}),
        }
    }

    #[tokio::test]
    async fn cooldown_fires_once_per_window_and_never_twice_on_a_rerun() {
        let db = LocalDb::in_memory().unwrap();
        let d = |n| NaiveDate::from_ymd_opt(2026, 11, 1).unwrap() + chrono::Duration::days(n);
        let first = due(&db, &alert(d(0)), 7)
            .await
            .unwrap()
            .expect("never fired");
        mark_fired(&db, &alert(d(0)), first).await.unwrap();
        assert!(
            due(&db, &alert(d(0)), 7).await.unwrap().is_none(),
            "a rerun of the same day"
        );
        assert!(
            due(&db, &alert(d(6)), 7).await.unwrap().is_none(),
            "inside the cooldown"
        );
        let later = due(&db, &alert(d(7)), 7)
            .await
            .unwrap()
            .expect("after the cooldown");
        // A concurrent run that read the same state loses the race.
        mark_fired(&db, &alert(d(7)), later).await.unwrap();
        assert!(matches!(
            mark_fired(&db, &alert(d(7)), later).await,
            Err(PortError::Conflict { .. })
        ));
    }

    #[tokio::test]
    async fn snapshots_round_trip_with_absent_values_absent() {
        let db = LocalDb::in_memory().unwrap();
        let artist: ArtistId = "4Z8W4fKeB5YxbusRsdQVPb".parse().unwrap();
        for (n, followers) in [(0, Some(10)), (1, None), (2, Some(30))] {
            let snapshot = Snapshot {
                artist: artist.clone(),
                date: NaiveDate::from_ymd_opt(2026, 11, 1).unwrap() + chrono::Duration::days(n),
                name: Some("Band".into()),
                followers,
                popularity: None,
                genres: None,
                releases: vec![],
                unavailable: vec![],
                gone: false,
            };
            save(&db, &snapshot).await.unwrap();
        }
        let from = NaiveDate::from_ymd_opt(2026, 11, 1).unwrap();
        let all = history(&db, &artist, from, from + chrono::Duration::days(30))
            .await
            .unwrap();
        assert_eq!(all.len(), 3);
        let followers = series(&all, |s| s.followers.map(|f| f as f64));
        assert_eq!(followers.len(), 2, "the missing day stays missing");
        assert_eq!(all[1].followers, None);
    }
}
