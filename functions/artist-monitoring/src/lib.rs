//! artist-monitoring: snapshots the artists of a watchlist every day, computes their trends
//! and raises alerts with evidence.
//!
//! Two steps behind one input type. The schedule sends `{"step": "plan", "watchlist": ...}`:
//! the plan loads the watchlist and fans it out as `snapshot` messages of at most the tier's
//! batch limit. Each `snapshot` message looks the artists up, stores the day's snapshot,
//! computes 1/7/28-day trends from stored snapshots, evaluates the watchlist's alert rules and
//! publishes `ArtistAlert` events, de-duplicated by a cooldown.

pub mod alerts;
pub mod snapshots;
pub mod social;
pub mod source;
pub mod trend;

use std::sync::Arc;

use async_trait::async_trait;
use backbone::error::{Classify, ErrorClass, PortError};
use backbone::harness::{Cx, Task};
use backbone::ports::{BusEvent, EventPublisher, Store};
use backbone::spotify::{SpotifyConnect, SpotifyError};
use backbone::validate::{ArtistId, BoundedVec, IsoDate, Validate};
use backbone::watchlist::{self, WatchlistError, WatchlistName};
use chrono::NaiveDate;
use serde::{Deserialize, Serialize};
use serde_json::json;
use tracing::info;

use crate::alerts::{Alert, AlertRules, Observation, Release};
use crate::snapshots::{Snapshot, Unavailable};
use crate::source::Lookup;
use crate::trend::Change;

/// The event bus `source` of this function's events.
pub const EVENT_SOURCE: &str = "music.artist-monitoring";
/// The `detail-type` of alerts.
pub const ALERT_DETAIL_TYPE: &str = "ArtistAlert";
/// The version of the `ArtistAlert` schema (`schemas/artist-alert.schema.json`).
pub const ALERT_SCHEMA_VERSION: &str = "1";
/// Days of history read to compute trends and usual growth.
const HISTORY_DAYS: i64 = 70;

/// The input of both steps.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "step", rename_all = "snake_case", deny_unknown_fields)]
pub enum MonitorInput {
    /// Load a watchlist and fan it out (the schedule's input).
    Plan {
        /// The watchlist.
        watchlist: WatchlistName,
        /// The day to snapshot (default: today by the clock).
        #[serde(default)]
        date: Option<IsoDate>,
        /// Set by EventBridge Scheduler (`<aws.scheduler.scheduled-time>`); informational.
        #[serde(default, rename = "scheduledTime")]
        scheduled_time: Option<String>,
    },
    /// Snapshot these artists for this day.
    Snapshot {
        /// The watchlist they come from (its alert rules apply).
        watchlist: WatchlistName,
        /// The day.
        date: IsoDate,
        /// The artists (1 to 50, the largest batch any tier allows).
        artists: BoundedVec<ArtistId, 1, 50>,
    },
}

impl Validate for MonitorInput {}

/// What a step did.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "step", rename_all = "snake_case")]
pub enum MonitorOutput {
    /// The plan's fan-out.
    Plan {
        /// The watchlist.
        watchlist: String,
        /// The day.
        date: NaiveDate,
        /// Artists on the watchlist.
        artists: usize,
        /// Work messages sent.
        messages: usize,
    },
    /// The snapshots taken.
    Snapshot {
        /// The day.
        date: NaiveDate,
        /// One report per artist.
        artists: Vec<ArtistReport>,
    },
}

/// The day's report for one artist.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ArtistReport {
    /// The artist.
    pub artist: ArtistId,
    /// Its name, when known.
    pub name: Option<String>,
    /// Followers, when returned.
    pub followers: Option<u64>,
    /// Popularity, when returned.
    pub popularity: Option<u8>,
    /// Follower trends over 1, 7 and 28 days (those that can be computed).
    pub follower_trends: Vec<Change>,
    /// Popularity trends.
    pub popularity_trends: Vec<Change>,
    /// Releases new since the last snapshot.
    pub new_releases: Vec<Release>,
    /// Alerts published (after the cooldown).
    pub alerts: Vec<Alert>,
    /// Metrics the API did not return, and why.
    pub unavailable: Vec<Unavailable>,
    /// The artist answered 404.
    pub gone: bool,
    /// Trends of the other platforms' series (social-media-sync), platform and metric named.
    #[serde(default)]
    pub social_trends: Vec<social::SocialTrend>,
}

/// Why a step failed.
#[derive(Debug, thiserror::Error)]
pub enum MonitorError {
    /// The watchlist is unknown or unusable.
    #[error(transparent)]
    Watchlist(#[from] WatchlistError),
    /// The watchlist's alert rules do not parse.
    #[error("watchlist {watchlist}: alert rules are invalid: {source}")]
    Rules {
        /// The watchlist.
        watchlist: String,
        /// Why.
        #[source]
        source: serde_json::Error,
    },
    /// Spotify failed.
    #[error("spotify")]
    Source(#[source] SpotifyError),
    /// The store or the bus failed.
    #[error(transparent)]
    Port(#[from] PortError),
    /// A fan-out message could not be built.
    #[error("fan-out message cannot be encoded: {0}")]
    Encode(#[source] serde_json::Error),
}

impl Classify for MonitorError {
    fn class(&self) -> ErrorClass {
        match self {
            MonitorError::Watchlist(err) => err.class(),
            MonitorError::Rules { .. } => ErrorClass::Invalid,
            MonitorError::Source(err) => err.class(),
            MonitorError::Port(err) => err.class(),
            MonitorError::Encode(_) => ErrorClass::Permanent,
        }
    }
}

/// The artist-monitoring task, over its ports.
pub struct ArtistMonitoring<C> {
    /// Spotify: one session per message.
    pub spotify: C,
    /// Snapshots, watchlists, cooldowns.
    pub store: Arc<dyn Store>,
    /// Where alerts go.
    pub events: Arc<dyn EventPublisher>,
}

/// The settings key of this function in a watchlist.
pub const SETTINGS_KEY: &str = "artist-monitoring";

/// The alert rules of `list` (its `artist-monitoring.alerts` setting, else the defaults).
pub fn rules_of(list: &watchlist::Watchlist) -> Result<AlertRules, serde_json::Error> {
    match list
        .settings
        .get(SETTINGS_KEY)
        .and_then(|s| s.get("alerts"))
    {
        Some(rules) => serde_json::from_value(rules.clone()),
        None => Ok(AlertRules::default()),
    }
}

#[async_trait]
impl<C: SpotifyConnect + 'static> Task for ArtistMonitoring<C> {
    const NAME: &'static str = "artist-monitoring";
    type Input = MonitorInput;
    type Output = MonitorOutput;
    type Error = MonitorError;

    fn idempotency_key(&self, input: &MonitorInput) -> Option<String> {
        match input {
            // One plan per watchlist and day, whatever the schedule's payload carries.
            MonitorInput::Plan {
                watchlist,
                date: Some(date),
                ..
            } => Some(format!("plan#{watchlist}#{date}")),
            _ => None,
        }
    }

    fn subject(&self, input: &MonitorInput) -> String {
        match input {
            MonitorInput::Plan { watchlist, .. } => format!("watchlist#{watchlist}"),
            MonitorInput::Snapshot {
                watchlist, artists, ..
            } => backbone::watchlist::batch_subject(watchlist, artists.as_slice()),
        }
    }

    async fn run(&self, input: MonitorInput, cx: &Cx) -> Result<MonitorOutput, Self::Error> {
        match input {
            MonitorInput::Plan {
                watchlist, date, ..
            } => {
                let date = date.map_or_else(|| cx.now().date_naive(), |d| d.date());
                self.plan(&watchlist, date, cx).await
            }
            MonitorInput::Snapshot {
                watchlist,
                date,
                artists,
            } => {
                self.snapshot(&watchlist, date.date(), artists.as_slice(), cx)
                    .await
            }
        }
    }
}

impl<C: SpotifyConnect> ArtistMonitoring<C> {
    async fn plan(
        &self,
        name: &WatchlistName,
        date: NaiveDate,
        cx: &Cx,
    ) -> Result<MonitorOutput, MonitorError> {
        let list = watchlist::load(self.store.as_ref(), name).await?;
        rules_of(&list).map_err(|source| MonitorError::Rules {
            watchlist: name.to_string(),
            source,
        })?;
        let chunk = source::batch_limit(self.spotify.tier()).clamp(1, 50);
        let mut messages = 0;
        for artists in list.artists.chunks(chunk) {
            // `chunks` yields 1 to `chunk` (at most 50) items: within the bounds by construction.
            let artists = BoundedVec::new(artists.to_vec()).expect("a chunk holds 1 to 50 artists");
            let work = MonitorInput::Snapshot {
                watchlist: name.clone(),
                date: date.into(),
                artists,
            };
            cx.enqueue(&work).map_err(MonitorError::Encode)?;
            messages += 1;
        }
        info!(watchlist = %name, artists = list.artists.len(), messages, "planned the day's snapshots");
        Ok(MonitorOutput::Plan {
            watchlist: name.to_string(),
            date,
            artists: list.artists.len(),
            messages,
        })
    }

    async fn snapshot(
        &self,
        name: &WatchlistName,
        date: NaiveDate,
        artists: &[ArtistId],
        cx: &Cx,
    ) -> Result<MonitorOutput, MonitorError> {
        let list = watchlist::load(self.store.as_ref(), name).await?;
        let rules = rules_of(&list).map_err(|source| MonitorError::Rules {
            watchlist: name.to_string(),
            source,
        })?;
        let api = self.spotify.open(cx.remaining());
        let lookups = source::artists(&api, artists)
            .await
            .map_err(MonitorError::Source)?;
        let mut reports = Vec::with_capacity(artists.len());
        for (artist, lookup) in artists.iter().zip(lookups) {
            reports.push(
                self.snapshot_one(&api, artist, lookup, date, &rules, cx)
                    .await?,
            );
        }
        Ok(MonitorOutput::Snapshot {
            date,
            artists: reports,
        })
    }

    async fn snapshot_one(
        &self,
        api: &C::Session,
        artist: &ArtistId,
        lookup: Lookup,
        date: NaiveDate,
        rules: &AlertRules,
        cx: &Cx,
    ) -> Result<ArtistReport, MonitorError> {
        let store = self.store.as_ref();
        let since = date - chrono::Duration::days(HISTORY_DAYS);
        let mut history =
            snapshots::history(store, artist, since, date - chrono::Duration::days(1)).await?;
        let previous = history.last().cloned();

        let (facts, gone) = match lookup {
            Lookup::Found(facts) => (Some(facts), false),
            Lookup::NotFound => (None, true),
        };
        let releases = match &facts {
            Some(_) => source::releases(
                api,
                artist,
                previous
                    .as_ref()
                    .filter(|p| !p.gone)
                    .map(|p| p.releases.as_slice()),
            )
            .await
            .map_err(MonitorError::Source)?,
            None => Vec::new(),
        };
        // New releases are those absent from the last snapshot; the first snapshot only
        // establishes what exists.
        let new_releases: Vec<Release> = match &previous {
            Some(prev) => releases
                .iter()
                .filter(|r| !prev.releases.iter().any(|p| p.id == r.id))
                .cloned()
                .collect(),
            None => Vec::new(),
        };
        let mut unavailable = Vec::new();
        if let Some(facts) = &facts {
            let reason = source::missing_reason(self.spotify.tier());
            for (metric, missing) in [
                ("followers", facts.followers.is_none()),
                ("popularity", facts.popularity.is_none()),
                ("genres", facts.genres.is_none()),
            ] {
                if missing {
                    unavailable.push(Unavailable {
                        metric: metric.into(),
                        reason: reason.into(),
                    });
                }
            }
        }
        let snapshot = Snapshot {
            artist: artist.clone(),
            date,
            name: facts
                .as_ref()
                .map(|f| f.name.clone())
                .or_else(|| previous.as_ref().and_then(|p| p.name.clone())),
            followers: facts.as_ref().and_then(|f| f.followers),
            popularity: facts.as_ref().and_then(|f| f.popularity),
            genres: facts.as_ref().and_then(|f| f.genres.clone()),
            releases,
            unavailable: unavailable.clone(),
            gone,
        };
        snapshots::save(store, &snapshot).await?;
        history.push(snapshot.clone());

        let followers = snapshots::series(&history, |s| s.followers.map(|v| v as f64));
        let popularity = snapshots::series(&history, |s| s.popularity.map(f64::from));
        let observation = Observation {
            artist,
            name: snapshot.name.as_deref(),
            date,
            followers: &followers,
            popularity: &popularity,
            new_releases: &new_releases,
            gone,
            was_gone: previous.as_ref().is_some_and(|p| p.gone),
        };
        // The other platforms' series, stored by social-media-sync beside the snapshots.
        let social_series = backbone::series::load(store, artist, since, date).await?;
        let social_trends = social::trends(&social_series, date);
        let mut candidates = alerts::evaluate(rules, &observation);
        candidates.extend(social::alerts(
            rules,
            artist,
            snapshot.name.as_deref(),
            date,
            &social_series,
        ));
        let mut published = Vec::new();
        for alert in candidates {
            let Some(condition) = snapshots::due(store, &alert, rules.cooldown_days).await? else {
                continue;
            };
            let detail = json!({ "schemaVersion": ALERT_SCHEMA_VERSION, "alert": alert });
            self.events
                .publish(&[BusEvent {
                    source: EVENT_SOURCE.into(),
                    detail_type: ALERT_DETAIL_TYPE.into(),
                    detail,
                    time: cx.now(),
                    trace_header: Some(cx.trace_header()),
                }])
                .await?;
            // Marked after publishing: a crash in between re-publishes on retry (events are
            // at least once, identified by their dedupe key and date) but never loses one.
            snapshots::mark_fired(store, &alert, condition).await?;
            snapshots::record_alert(store, &alert).await?;
            cx.record(
                artist.to_string(),
                "artist.alert.published",
                json!({ "kind": alert.kind, "dedupeKey": alert.dedupe_key }),
            );
            cx.metrics().count("AlertsPublished", 1);
            published.push(alert);
        }
        cx.metrics().count("SnapshotsTaken", 1);
        Ok(ArtistReport {
            artist: artist.clone(),
            name: snapshot.name,
            followers: snapshot.followers,
            popularity: snapshot.popularity,
            follower_trends: trend::changes(&followers, date),
            popularity_trends: trend::changes(&popularity, date),
            new_releases,
            alerts: published,
            unavailable,
            gone,
            social_trends,
        })
    }
}
