//! The audience series store: one point per (artist, platform, metric, day), whatever the
//! platform, beside the Spotify snapshots in the task data [`Store`].
//!
//! social-media-sync writes the points; artist-monitoring reads them to trend and alert. Keys
//! (single-table, see [`crate::ports::store`]): `pk = series#<artist>`,
//! `sk = <YYYY-MM-DD>#<platform>#<metric>`: day first, so a window of days is one range query
//! whatever the platforms. A rerun of the same day writes the same item again.
//!
//! A point's [`Precision`] says how exact its value is: YouTube rounds subscriber counts to
//! three significant figures, so a change smaller than the rounding step is noise, not a trend.
//! A value the platform hides is absent (no point), never zero.

use std::collections::BTreeMap;

use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Serialize};

use crate::error::PortError;
use crate::ports::store::query_all;
use crate::ports::{ItemKey, PutCondition, Query, Store};
use crate::validate::ArtistId;

/// Most points read back for one artist and window (13 metrics over two years of days).
pub const MAX_POINTS: usize = 20_000;

/// How exact a value is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Precision {
    /// The exact count.
    Exact,
    /// Rounded by the platform to this many significant figures (YouTube subscribers: 3).
    SignificantFigures {
        /// The figures kept.
        figures: u8,
    },
}

impl Precision {
    /// Half the rounding step of `value`: the most the true count can differ from it.
    /// `0` for exact values. For 1,230,000 at three figures the step is 10,000, so 5,000.
    pub fn half_step(&self, value: u64) -> f64 {
        match self {
            Precision::Exact => 0.0,
            Precision::SignificantFigures { figures } => {
                if value == 0 {
                    return 0.0;
                }
                let digits = value.ilog10() + 1;
                let figures = u32::from(*figures);
                if digits <= figures {
                    0.0
                } else {
                    10f64.powi((digits - figures) as i32) / 2.0
                }
            }
        }
    }
}

/// One observation of one metric of one artist on one platform.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SeriesPoint {
    /// The Spotify artist it belongs to.
    pub artist: ArtistId,
    /// The platform (`youtube`, `lastfm`, `deezer`, `instagram`, `tiktok`; lower-case ASCII).
    pub platform: String,
    /// The metric (`subscribers`, `views`, `listeners`, `fans`, ...; lower-case ASCII).
    pub metric: String,
    /// The value.
    pub value: u64,
    /// The day it describes.
    pub as_of: NaiveDate,
    /// Where it came from: the API and the account (`youtube.channels.list UC...`).
    pub source: String,
    /// How exact it is.
    pub precision: Precision,
    /// When it was fetched.
    pub fetched_at: DateTime<Utc>,
}

fn pk(artist: &ArtistId) -> String {
    format!("series#{artist}")
}

/// Stores `point` (replacing the same day's point of a rerun).
pub async fn save(store: &dyn Store, point: &SeriesPoint) -> Result<(), PortError> {
    let key = ItemKey::new(
        pk(&point.artist),
        format!("{}#{}#{}", point.as_of, point.platform, point.metric),
    );
    let data = serde_json::to_value(point).map_err(|e| PortError::permanent("series.encode", e))?;
    store.put(&key, &data, PutCondition::Always, None).await?;
    Ok(())
}

/// Every point of `artist` from `from` to `to` (both included), grouped by
/// (platform, metric) and ordered by day.
pub async fn load(
    store: &dyn Store,
    artist: &ArtistId,
    from: NaiveDate,
    to: NaiveDate,
) -> Result<BTreeMap<(String, String), Vec<SeriesPoint>>, PortError> {
    // `~` sorts after every character of a platform or metric name: the whole last day.
    let query = Query::partition(pk(artist)).between(from.to_string(), format!("{to}#~"));
    let items = query_all(store, query, MAX_POINTS).await?;
    let mut out: BTreeMap<(String, String), Vec<SeriesPoint>> = BTreeMap::new();
    for item in items {
        let point: SeriesPoint = serde_json::from_value(item.data)
            .map_err(|e| PortError::permanent("series.decode", e))?;
        if point.as_of >= from && point.as_of <= to {
            out.entry((point.platform.clone(), point.metric.clone()))
                .or_default()
                .push(point);
        }
    }
    for points in out.values_mut() {
        points.sort_by_key(|p| p.as_of);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn half_step_of_three_significant_figures() {
        let p = Precision::SignificantFigures { figures: 3 };
        assert_eq!(p.half_step(1_230_000), 5_000.0);
        assert_eq!(p.half_step(999), 0.0);
        assert_eq!(p.half_step(1_000), 5.0);
        assert_eq!(p.half_step(0), 0.0);
        assert_eq!(Precision::Exact.half_step(1_234_567), 0.0);
    }
}
