//! social-media-sync: finds an artist's accounts on other platforms through open data, pulls
//! their public figures every day, and stores them in the one series store beside the Spotify
//! data, where artist-monitoring trends and alerts on them.
//!
//! Two steps behind one input type. The schedule sends `{"step": "plan", "watchlist": ...}`:
//! the plan loads the watchlist and fans it out as `sync` messages of at most 50 artists (one
//! YouTube `channels.list` call). Each `sync` message, per artist: re-resolves the identity
//! graph when it is older than the configured age or its manual links changed (MusicBrainz
//! and Wikidata, see [`discover`] and [`identity`]), then pulls the linked accounts' figures
//! ([`pull`]) and stores them as [`backbone::series::SeriesPoint`]s. One artist's failure is
//! reported in its outcome; the rest of the batch is stored.

pub mod client;
pub mod counts;
pub mod credentials;
pub mod discover;
pub mod figures;
pub mod identity;
pub mod musicbrainz;
pub mod pacing;
pub mod platform;
pub mod pull;
pub mod records;
#[cfg(test)]
mod testdata;
pub mod wikidata;
pub mod wire;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use backbone::ExposeSecret;
use backbone::clock::Clock;
use backbone::config::{ConfigError, EnvSource};
use backbone::error::{Classify, ErrorClass, PortError};
use backbone::harness::{Cx, Task};
use backbone::ports::{BusEvent, EventPublisher, Secrets, Store, WebApi};
use backbone::validate::{ArtistId, BoundedVec, IsoDate, Validate};
use backbone::watchlist::{self, WatchlistError, WatchlistName};
use chrono::NaiveDate;
use serde::{Deserialize, Serialize};
use tracing::{info, warn};

use crate::client::Caller;
use crate::credentials::Credentials;
use crate::identity::{Graph, Link, Quarantine};
use crate::pacing::{DailyQuota, SharedPacer, Sleeper, pacific_date};
use crate::platform::Platform;
use crate::pull::{Outcome, Pull, Subject};

/// The event bus `source` of this function's events.
pub const EVENT_SOURCE: &str = "music.social-media-sync";
/// The `detail-type` of the event published when a re-resolved graph quarantines a link.
pub const QUARANTINE_DETAIL_TYPE: &str = "SocialLinkQuarantined";

/// Artists per `sync` message: one YouTube `channels.list` call takes 50 channel ids.
pub const BATCH: usize = 50;

/// The input of both steps.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "step", rename_all = "snake_case", deny_unknown_fields)]
pub enum SyncInput {
    /// Load a watchlist and fan it out (the schedule's input).
    Plan {
        /// The watchlist.
        watchlist: WatchlistName,
        /// The day the figures describe (default: today by the clock).
        #[serde(default)]
        date: Option<IsoDate>,
        /// Set by EventBridge Scheduler (`<aws.scheduler.scheduled-time>`); informational.
        #[serde(default, rename = "scheduledTime")]
        scheduled_time: Option<String>,
    },
    /// Sync these artists for this day.
    Sync {
        /// The watchlist they come from.
        watchlist: WatchlistName,
        /// The day.
        date: IsoDate,
        /// The artists (1 to 50).
        artists: BoundedVec<ArtistId, 1, 50>,
    },
}

impl Validate for SyncInput {}

/// What a step did.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "step", rename_all = "snake_case")]
pub enum SyncOutput {
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
    /// The sync of one batch.
    Sync {
        /// The day.
        date: NaiveDate,
        /// One report per artist.
        artists: Vec<ArtistReport>,
        /// Requests sent per upstream (retries included).
        requests: BTreeMap<String, u64>,
        /// YouTube quota units used today (Pacific day), this deployment, after the batch.
        youtube_units_today: i64,
    },
}

/// The day's report for one artist.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ArtistReport {
    /// The artist.
    pub artist: ArtistId,
    /// Whether the identity graph was resolved again in this run.
    pub resolved: bool,
    /// The links used.
    pub links: Vec<Link>,
    /// The platforms quarantined: reported, never merged on a guess.
    pub quarantined: Vec<Quarantine>,
    /// The graph's notes.
    pub notes: Vec<String>,
    /// Why the open-data sources could not be read (the previous graph is used, if any).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub identity_error: Option<String>,
    /// What happened on each linked platform.
    pub platforms: BTreeMap<Platform, Outcome>,
    /// Points stored.
    pub points: usize,
}

/// Why a step failed as a whole.
#[derive(Debug, thiserror::Error)]
pub enum SyncError {
    /// The watchlist is unknown or unusable.
    #[error(transparent)]
    Watchlist(#[from] WatchlistError),
    /// The store, the secret store or the bus failed.
    #[error(transparent)]
    Port(#[from] PortError),
    /// The credentials secret is not usable.
    #[error("{0}")]
    Credentials(String),
    /// A fan-out message could not be built.
    #[error("fan-out message cannot be encoded: {0}")]
    Encode(#[source] serde_json::Error),
}

impl Classify for SyncError {
    fn class(&self) -> ErrorClass {
        match self {
            SyncError::Watchlist(err) => err.class(),
            SyncError::Port(err) => err.class(),
            // A person must fix the secret: retrying the same message cannot help.
            SyncError::Credentials(_) => ErrorClass::Permanent,
            SyncError::Encode(_) => ErrorClass::Permanent,
        }
    }
}

/// Settings of the task, from the environment.
#[derive(Debug, Clone, PartialEq)]
pub struct Settings {
    /// The secret holding the platforms' credentials (`SOCIAL_SECRET_ID`); `None`: every
    /// platform needing credentials is skipped and reported.
    pub credentials_secret: Option<String>,
    /// YouTube Data API units a (Pacific) day (`YOUTUBE_DAILY_QUOTA`, default 10,000, the
    /// default project quota).
    pub youtube_daily_quota: i64,
    /// Days an identity graph is used before the open-data sources are read again
    /// (`SOCIAL_IDENTITY_MAX_AGE_DAYS`, default 7).
    pub identity_max_age_days: i64,
    /// Spacing of MusicBrainz requests, deployment-wide (1.1 s: its published limit of one a
    /// second, with a tenth to spare for the jitter between taking a slot and the request
    /// arriving).
    pub musicbrainz_interval: Duration,
    /// Spacing of Deezer requests, deployment-wide (120 ms: about 42 per 5 seconds against the
    /// published 50, the same margin: spaced at exactly 100 ms, a request delayed in transit
    /// lets the next arrive inside the same window).
    pub deezer_interval: Duration,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            credentials_secret: None,
            youtube_daily_quota: 10_000,
            identity_max_age_days: 7,
            musicbrainz_interval: Duration::from_millis(1100),
            deezer_interval: Duration::from_millis(120),
        }
    }
}

impl Settings {
    /// Reads `SOCIAL_SECRET_ID`, `YOUTUBE_DAILY_QUOTA`, `SOCIAL_IDENTITY_MAX_AGE_DAYS`.
    pub fn from_env(env: &dyn EnvSource) -> Result<Self, ConfigError> {
        let quota: i64 = backbone::config::parse_or(env, "YOUTUBE_DAILY_QUOTA", 10_000)?;
        if !(1..=100_000_000).contains(&quota) {
            return Err(ConfigError::Malformed {
                name: "YOUTUBE_DAILY_QUOTA",
                reason: "expected 1 to 100000000 units".into(),
            });
        }
        let age: i64 = backbone::config::parse_or(env, "SOCIAL_IDENTITY_MAX_AGE_DAYS", 7)?;
        if !(0..=365).contains(&age) {
            return Err(ConfigError::Malformed {
                name: "SOCIAL_IDENTITY_MAX_AGE_DAYS",
                reason: "expected 0 to 365 days".into(),
            });
        }
        Ok(Self {
            credentials_secret: backbone::config::optional(env, "SOCIAL_SECRET_ID"),
            youtube_daily_quota: quota,
            identity_max_age_days: age,
            ..Self::default()
        })
    }
}

/// The social-media-sync task, over its ports.
pub struct SocialMediaSync {
    /// The upstream APIs.
    pub web: Arc<dyn WebApi>,
    /// Graphs, manual links, series, pacing slots, quota counters, watchlists.
    pub store: Arc<dyn Store>,
    /// The credentials secret.
    pub secrets: Arc<dyn Secrets>,
    /// Where quarantined links are reported (`SocialLinkQuarantined`), for a person to decide.
    pub events: Arc<dyn EventPublisher>,
    /// The clock the pacers and quota day read.
    pub clock: Arc<dyn Clock>,
    /// How pacers wait.
    pub sleeper: Arc<dyn Sleeper>,
    /// Settings.
    pub settings: Settings,
}

#[async_trait]
impl Task for SocialMediaSync {
    const NAME: &'static str = "social-media-sync";
    type Input = SyncInput;
    type Output = SyncOutput;
    type Error = SyncError;

    fn idempotency_key(&self, input: &SyncInput) -> Option<String> {
        match input {
            SyncInput::Plan {
                watchlist,
                date: Some(date),
                ..
            } => Some(format!("plan#{watchlist}#{date}")),
            _ => None,
        }
    }

    fn subject(&self, input: &SyncInput) -> String {
        match input {
            SyncInput::Plan { watchlist, .. } => format!("watchlist#{watchlist}"),
            SyncInput::Sync {
                watchlist, artists, ..
            } => backbone::watchlist::batch_subject(watchlist, artists.as_slice()),
        }
    }

    async fn run(&self, input: SyncInput, cx: &Cx) -> Result<SyncOutput, SyncError> {
        match input {
            SyncInput::Plan {
                watchlist, date, ..
            } => {
                let date = date.map_or_else(|| cx.now().date_naive(), |d| d.date());
                let list = watchlist::load(self.store.as_ref(), &watchlist).await?;
                let mut messages = 0;
                for artists in list.artists.chunks(BATCH) {
                    // `chunks` yields 1 to BATCH (50) items: within the bounds by construction.
                    let artists =
                        BoundedVec::new(artists.to_vec()).expect("a chunk holds 1 to 50 artists");
                    cx.enqueue(&SyncInput::Sync {
                        watchlist: watchlist.clone(),
                        date: date.into(),
                        artists,
                    })
                    .map_err(SyncError::Encode)?;
                    messages += 1;
                }
                info!(watchlist = %watchlist, artists = list.artists.len(), messages, "planned the day's social sync");
                Ok(SyncOutput::Plan {
                    watchlist: watchlist.to_string(),
                    date,
                    artists: list.artists.len(),
                    messages,
                })
            }
            SyncInput::Sync { date, artists, .. } => {
                self.sync(date.date(), artists.as_slice(), cx).await
            }
        }
    }
}

impl SocialMediaSync {
    async fn credentials(&self) -> Result<Credentials, SyncError> {
        let Some(name) = &self.settings.credentials_secret else {
            return Ok(Credentials::default());
        };
        let secret = self.secrets.get(name).await?;
        Credentials::parse(secret.expose_secret()).map_err(SyncError::Credentials)
    }

    fn caller(&self) -> Caller {
        let pacer = |upstream: &'static str, interval| {
            (
                upstream,
                SharedPacer::new(
                    self.store.clone(),
                    self.clock.clone(),
                    self.sleeper.clone(),
                    upstream,
                    interval,
                ),
            )
        };
        Caller::new(
            self.web.clone(),
            self.sleeper.clone(),
            [
                pacer("musicbrainz", self.settings.musicbrainz_interval),
                pacer("deezer", self.settings.deezer_interval),
            ]
            .into_iter()
            .collect(),
        )
    }

    async fn sync(
        &self,
        date: NaiveDate,
        artists: &[ArtistId],
        cx: &Cx,
    ) -> Result<SyncOutput, SyncError> {
        let store = self.store.as_ref();
        let credentials = self.credentials().await?;
        let caller = self.caller();
        let now = cx.now();
        let mut graphs: Vec<(Graph, bool, Option<String>)> = Vec::with_capacity(artists.len());
        for artist in artists {
            let manual = records::manual_links(store, artist).await?;
            let stored = records::graph(store, artist).await?;
            let fresh = stored
                .as_ref()
                .and_then(|g| g.resolved_at)
                .is_some_and(|at| (now - at).num_days() < self.settings.identity_max_age_days);
            if let (true, Some(graph)) = (fresh, stored.clone()) {
                graphs.push((graph, false, None));
                continue;
            }
            match discover::discover(&caller, artist, &manual, now, cx.remaining()).await {
                Ok(found) => {
                    let mut graph = identity::resolve(
                        &manual,
                        found.candidates,
                        found.wikidata_mbids.as_deref(),
                        now,
                    );
                    graph.notes.extend(found.notes);
                    // Stable ids resolved earlier stay with an unchanged link.
                    if let Some(old) = &stored {
                        for link in &mut graph.links {
                            if let Some(prev) = old.link(link.platform)
                                && prev.account == link.account
                            {
                                link.stable_id = prev.stable_id.clone();
                            }
                        }
                    }
                    for q in &graph.quarantined {
                        warn!(artist = %artist, platform = %q.platform, reason = %q.reason, "link quarantined");
                        cx.metrics().count("LinksQuarantined", 1);
                    }
                    graphs.push((graph, true, None));
                }
                Err(err) => {
                    let error = backbone::error::chain(&err);
                    warn!(artist = %artist, error = %error, "identity sources unavailable; using the stored graph");
                    graphs.push((stored.unwrap_or_default(), false, Some(error)));
                }
            }
        }
        let quota = DailyQuota::new(
            self.store.clone(),
            "youtube",
            self.settings.youtube_daily_quota,
        );
        let pull = Pull {
            caller: &caller,
            credentials: &credentials,
            quota: &quota,
            date,
            now,
            time_left: cx.remaining(),
        };
        let mut subjects: Vec<Subject<'_>> = artists
            .iter()
            .zip(graphs.iter_mut())
            .map(|(artist, (graph, _, _))| Subject {
                artist,
                graph,
                outcomes: BTreeMap::new(),
                points: Vec::new(),
            })
            .collect();
        pull.youtube(&mut subjects).await;
        for s in subjects.iter_mut() {
            pull.per_account(s).await;
        }
        let mut stored_points = Vec::with_capacity(subjects.len());
        let mut outcomes = Vec::with_capacity(subjects.len());
        for s in subjects {
            for point in &s.points {
                backbone::series::save(store, point).await?;
            }
            cx.metrics().count("PointsStored", s.points.len() as u64);
            stored_points.push(s.points.len());
            outcomes.push(s.outcomes);
        }
        let mut reports = Vec::with_capacity(artists.len());
        for (((artist, (graph, resolved, error)), platforms), points) in
            artists.iter().zip(graphs).zip(outcomes).zip(stored_points)
        {
            records::save_graph(store, artist, &graph).await?;
            if resolved && !graph.quarantined.is_empty() {
                let detail = serde_json::json!({
                    "schemaVersion": "1",
                    "artist": artist,
                    "date": date,
                    "quarantined": graph.quarantined,
                    "hint": "link the right account with `tasks social link <artist> <platform> <account>`",
                });
                self.events
                    .publish(&[BusEvent {
                        source: EVENT_SOURCE.into(),
                        detail_type: QUARANTINE_DETAIL_TYPE.into(),
                        detail,
                        time: now,
                        trace_header: Some(cx.trace_header()),
                    }])
                    .await?;
            }
            if resolved {
                cx.record(
                    artist.to_string(),
                    "social.graph.resolved",
                    serde_json::json!({
                        "links": graph.links.iter().map(|l| format!("{}:{}", l.platform, l.account)).collect::<Vec<_>>(),
                        "quarantined": graph.quarantined.iter().map(|q| q.platform.as_str()).collect::<Vec<_>>(),
                    }),
                );
            }
            if points > 0 {
                cx.record(
                    artist.to_string(),
                    "social.series.stored",
                    serde_json::json!({ "date": date, "points": points }),
                );
            }
            reports.push(ArtistReport {
                artist: artist.clone(),
                resolved,
                links: graph.links,
                quarantined: graph.quarantined,
                notes: graph.notes,
                identity_error: error,
                platforms,
                points,
            });
        }
        let requests = caller.counts();
        for (upstream, n) in &requests {
            cx.metrics().count(&format!("Requests.{upstream}"), *n);
        }
        let youtube_units_today = quota.used(pacific_date(now)).await?;
        info!(
            artists = artists.len(),
            ?requests,
            youtube_units_today,
            "social sync done"
        );
        Ok(SyncOutput::Sync {
            date,
            artists: reports,
            requests,
            youtube_units_today,
        })
    }
}

/// The upstreams, their default base URLs and the variables that override them (the sandbox
/// and tests point them at loopback).
pub const UPSTREAMS: [(&str, &str, &str); 8] = [
    (
        "musicbrainz",
        "MUSICBRAINZ_BASE_URL",
        "https://musicbrainz.org",
    ),
    ("wikidata", "WIKIDATA_BASE_URL", "https://www.wikidata.org"),
    (
        "wikidata-query",
        "WIKIDATA_QUERY_BASE_URL",
        "https://query.wikidata.org",
    ),
    ("youtube", "YOUTUBE_BASE_URL", "https://www.googleapis.com"),
    ("lastfm", "LASTFM_BASE_URL", "https://ws.audioscrobbler.com"),
    ("deezer", "DEEZER_BASE_URL", "https://api.deezer.com"),
    (
        "instagram",
        "INSTAGRAM_BASE_URL",
        "https://graph.facebook.com",
    ),
    ("tiktok", "TIKTOK_BASE_URL", "https://open.tiktokapis.com"),
];

/// The base URL of every upstream: its variable when set (an `http(s)://` URL), else the
/// platform's own host.
pub fn upstreams_from_env(env: &dyn EnvSource) -> Result<BTreeMap<String, String>, ConfigError> {
    let mut out = BTreeMap::new();
    for (name, var, default) in UPSTREAMS {
        let url = backbone::config::optional(env, var).unwrap_or_else(|| default.to_owned());
        if !(url.starts_with("https://") || url.starts_with("http://")) {
            return Err(ConfigError::Malformed {
                name: var,
                reason: "expected an http(s):// URL".into(),
            });
        }
        out.insert(name.to_owned(), url);
    }
    Ok(out)
}

/// The User-Agent MusicBrainz asks for: the application, its version and a contact
/// (`SOCIAL_CONTACT`, an e-mail address or URL; required, as MusicBrainz blocks anonymous
/// clients).
pub fn user_agent(env: &dyn EnvSource) -> Result<String, ConfigError> {
    let contact = backbone::config::required(env, "SOCIAL_CONTACT")?;
    if contact.len() > 200 || contact.chars().any(|c| c.is_control()) {
        return Err(ConfigError::Malformed {
            name: "SOCIAL_CONTACT",
            reason: "expected an e-mail address or URL".into(),
        });
    }
    Ok(format!(
        "music-tasks-social-media-sync/{} ( {contact} )",
        env!("CARGO_PKG_VERSION")
    ))
}
