//! The fact sheet: what the store really holds about an artist, a release, tracks and a
//! playlist, each fact with an id, a value, a unit, its source and its as-of date.
//!
//! Read from the items other functions write (keys in `backbone::ports::store`):
//! - `artist#<id>` / `snapshot#<date>` (artist-monitoring): name, followers, popularity,
//!   genres, releases; and the snapshot 28 days earlier, for declared growth derivations;
//! - `track#<key>` / `analysis#v1` (track-analysis): tempo, key, loudness, duration;
//! - `playlist#<id>` / `meta` (data-sync): name and number of tracks;
//! - `streams-artist#<id>` (streaming-metrics): the rolling 28 days of streams per source;
//! - `series#<id>` (social-media-sync): the newest audience figure per platform.
//!
//! A value the store does not hold is not a fact: a missing follower count is absent from the
//! sheet, never zero.

use backbone::error::PortError;
use backbone::ports::{ItemKey, Query, Store};
use backbone::validate::ArtistId;
use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::lang::{Language, Unit};

/// Most releases put on a sheet (the newest).
pub const MAX_RELEASES: usize = 5;
/// Days back the earlier snapshot of a growth derivation is taken from.
pub const GROWTH_DAYS: i64 = 28;

/// A date as precise as the source knows it (Spotify gives `2026`, `2026-11` or `2026-11-20`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "precision", rename_all = "snake_case")]
pub enum PartialDate {
    /// A year.
    Year {
        /// The year.
        year: i32,
    },
    /// A month.
    Month {
        /// The year.
        year: i32,
        /// 1 to 12.
        month: u32,
    },
    /// A day.
    Day {
        /// The day.
        date: NaiveDate,
    },
}

impl PartialDate {
    /// Parses Spotify's `release_date`; `None` for anything else.
    pub fn parse(s: &str) -> Option<Self> {
        let parts: Vec<&str> = s.split('-').collect();
        match parts.as_slice() {
            [y] => Some(Self::Year {
                year: y.parse().ok()?,
            }),
            [y, m] => {
                let month: u32 = m.parse().ok()?;
                (1..=12).contains(&month).then_some(Self::Month {
                    year: y.parse().ok()?,
                    month,
                })
            }
            [_, _, _] => NaiveDate::parse_from_str(s, "%Y-%m-%d")
                .ok()
                .map(|date| Self::Day { date }),
            _ => None,
        }
    }
}

/// A fact's value.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum FactValue {
    /// A count (followers, tracks).
    Count {
        /// The count.
        value: u64,
    },
    /// A measured number with a fixed number of decimals (tempo, loudness).
    Decimal {
        /// The number.
        value: f64,
        /// Decimals written.
        decimals: u8,
    },
    /// A percentage (derived growth).
    Percent {
        /// The percentage (12.5 for 12.5 %).
        value: f64,
    },
    /// A score out of 100 (Spotify popularity).
    Score {
        /// 0 to 100.
        value: u8,
    },
    /// A date.
    Date {
        /// The date.
        date: PartialDate,
    },
    /// A duration.
    Duration {
        /// Seconds.
        seconds: u64,
    },
    /// Text (names, genres, key). Written verbatim.
    Text {
        /// The text.
        text: String,
    },
}

/// One fact.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Fact {
    /// The id the model uses to refer to it (`artist.followers`).
    pub id: String,
    /// What it is, for the prompt (`Spotify followers`).
    pub label: String,
    /// The value.
    pub value: FactValue,
    /// Its unit.
    pub unit: Unit,
    /// Where it comes from (`artist-monitoring snapshot`).
    pub source: String,
    /// When it was true.
    pub as_of: NaiveDate,
    /// Lower is kept longer when the sheet is cut to fit a context (0 is never cut).
    pub priority: u8,
}

impl Fact {
    /// The fact's written forms in `lang`, most precise first: what a draft may contain. A
    /// date has its full form and its coarser forms (month and year, year), which state the
    /// same value at a lower precision.
    pub fn forms(&self, lang: Language) -> Vec<String> {
        let with_unit = |n: String, singular: bool| match self.unit.noun(lang, singular) {
            Some(noun) if noun.starts_with('/') => format!("{n}{noun}"),
            Some(noun) => format!("{n}\u{a0}{noun}"),
            None => n,
        };
        match &self.value {
            FactValue::Count { value } => vec![with_unit(lang.count(*value), *value == 1)],
            FactValue::Decimal { value, decimals } => {
                vec![with_unit(lang.decimal(*value, *decimals), false)]
            }
            FactValue::Percent { value } => vec![lang.percent(*value, true)],
            FactValue::Score { value } => vec![with_unit(value.to_string(), false)],
            FactValue::Duration { seconds } => vec![lang.duration(*seconds)],
            FactValue::Text { text } => vec![text.clone()],
            FactValue::Date { date } => match *date {
                PartialDate::Year { year } => vec![year.to_string()],
                PartialDate::Month { year, month } => {
                    vec![lang.month_year(year, month), year.to_string()]
                }
                PartialDate::Day { date } => {
                    use chrono::Datelike;
                    vec![
                        lang.date(date),
                        lang.month_year(date.year(), date.month()),
                        date.year().to_string(),
                    ]
                }
            },
        }
    }

    /// The form a placeholder renders to.
    pub fn render(&self, lang: Language) -> String {
        // `forms` always returns at least one form.
        self.forms(lang).swap_remove(0)
    }

    /// The value as a number, for derivations (counts, decimals, scores).
    pub fn number(&self) -> Option<f64> {
        match self.value {
            FactValue::Count { value } => Some(value as f64),
            FactValue::Decimal { value, .. } | FactValue::Percent { value } => Some(value),
            FactValue::Score { value } => Some(f64::from(value)),
            _ => None,
        }
    }
}

/// The facts of one request.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct FactSheet {
    /// The facts, in the order read.
    pub facts: Vec<Fact>,
}

impl FactSheet {
    /// The fact with this id.
    pub fn get(&self, id: &str) -> Option<&Fact> {
        self.facts.iter().find(|f| f.id == id)
    }

    /// Facts other than the artist's name: what a draft can say something with.
    pub fn substantive(&self) -> usize {
        self.facts.iter().filter(|f| f.id != "artist.name").count()
    }
}

/// What to put on the sheet.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SheetScope<'a> {
    /// The artist.
    pub artist: Option<&'a ArtistId>,
    /// A release (album id) to feature; its facts get a higher priority.
    pub release: Option<&'a str>,
    /// Tracks analysed by track-analysis (their store keys).
    pub tracks: &'a [String],
    /// A playlist synced by data-sync.
    pub playlist: Option<&'a str>,
}

fn decode_err(op: &'static str, e: serde_json::Error) -> PortError {
    PortError::permanent(op, e)
}

/// Reads the fact sheet of `scope` from the store, as of `today`.
pub async fn load(
    store: &dyn Store,
    scope: &SheetScope<'_>,
    today: NaiveDate,
) -> Result<FactSheet, PortError> {
    let mut facts = Vec::new();
    if let Some(artist) = scope.artist {
        artist_facts(store, artist, scope.release, today, &mut facts).await?;
        // Audience figures beside the Spotify snapshot, only for an artist the store knows.
        if facts.iter().any(|f| f.id == "artist.name") {
            streaming_facts(store, artist, today, &mut facts).await?;
            social_facts(store, artist, today, &mut facts).await?;
        }
    }
    for (i, track) in scope.tracks.iter().enumerate() {
        track_facts(store, i, track, &mut facts).await?;
    }
    if let Some(playlist) = scope.playlist {
        playlist_facts(store, playlist, &mut facts).await?;
    }
    Ok(FactSheet { facts })
}

async fn latest_snapshot(
    store: &dyn Store,
    artist: &ArtistId,
    upto: NaiveDate,
) -> Result<Option<(NaiveDate, Value)>, PortError> {
    let query = Query::partition(format!("artist#{artist}"))
        .between("snapshot#", format!("snapshot#{upto}"))
        .descending()
        .limit(1);
    let page = store.query(&query).await?;
    Ok(page.items.into_iter().next().and_then(|item| {
        let date = item.key.sk.strip_prefix("snapshot#")?;
        let date = NaiveDate::parse_from_str(date, "%Y-%m-%d").ok()?;
        Some((date, item.data))
    }))
}

async fn artist_facts(
    store: &dyn Store,
    artist: &ArtistId,
    release: Option<&str>,
    today: NaiveDate,
    facts: &mut Vec<Fact>,
) -> Result<(), PortError> {
    let Some((as_of, snap)) = latest_snapshot(store, artist, today).await? else {
        return Ok(());
    };
    if snap.get("gone").and_then(Value::as_bool) == Some(true) {
        return Ok(());
    }
    let source = "artist-monitoring snapshot".to_owned();
    let fact = |id: &str, label: &str, value: FactValue, unit: Unit, priority: u8| Fact {
        id: id.into(),
        label: label.into(),
        value,
        unit,
        source: source.clone(),
        as_of,
        priority,
    };
    if let Some(name) = snap.get("name").and_then(Value::as_str) {
        facts.push(fact(
            "artist.name",
            "the artist's name",
            FactValue::Text { text: name.into() },
            Unit::None,
            0,
        ));
    }
    if let Some(n) = snap.get("followers").and_then(Value::as_u64) {
        facts.push(fact(
            "artist.followers",
            "Spotify followers",
            FactValue::Count { value: n },
            Unit::Followers,
            2,
        ));
    }
    if let Some(p) = snap
        .get("popularity")
        .and_then(Value::as_u64)
        .and_then(|p| u8::try_from(p).ok())
        .filter(|p| *p <= 100)
    {
        facts.push(fact(
            "artist.popularity",
            "Spotify popularity score",
            FactValue::Score { value: p },
            Unit::Popularity,
            4,
        ));
    }
    if let Some(genres) = snap.get("genres").and_then(Value::as_array) {
        let genres: Vec<&str> = genres.iter().filter_map(Value::as_str).collect();
        if !genres.is_empty() {
            facts.push(fact(
                "artist.genres",
                "genres",
                FactValue::Text {
                    text: genres.join(", "),
                },
                Unit::None,
                1,
            ));
        }
    }
    let mut releases: Vec<(PartialDate, &Value)> = snap
        .get("releases")
        .and_then(Value::as_array)
        .map(|r| {
            r.iter()
                .filter_map(|rel| {
                    let date = rel.get("release_date").and_then(Value::as_str)?;
                    Some((PartialDate::parse(date)?, rel))
                })
                .collect()
        })
        .unwrap_or_default();
    let sort_key = |d: &PartialDate| match *d {
        PartialDate::Year { year } => (year, 0, 0),
        PartialDate::Month { year, month } => (year, month, 0),
        PartialDate::Day { date } => {
            use chrono::Datelike;
            (date.year(), date.month(), date.day())
        }
    };
    releases.sort_by_key(|(d, _)| std::cmp::Reverse(sort_key(d)));
    // The featured release first, then the newest others.
    if let Some(id) = release
        && let Some(pos) = releases
            .iter()
            .position(|(_, r)| r.get("id").and_then(Value::as_str) == Some(id))
    {
        let featured = releases.remove(pos);
        releases.insert(0, featured);
    }
    for (i, (date, rel)) in releases.into_iter().take(MAX_RELEASES).enumerate() {
        let featured = i == 0 && release.is_some();
        let priority = if featured { 1 } else { 3 + i as u8 };
        if let Some(name) = rel.get("name").and_then(Value::as_str) {
            facts.push(fact(
                &format!("release.{i}.name"),
                "release title",
                FactValue::Text { text: name.into() },
                Unit::None,
                priority,
            ));
            facts.push(fact(
                &format!("release.{i}.date"),
                "release date",
                FactValue::Date { date },
                Unit::None,
                priority,
            ));
            if let Some(group) = rel.get("group").and_then(Value::as_str) {
                facts.push(fact(
                    &format!("release.{i}.type"),
                    "release type",
                    FactValue::Text { text: group.into() },
                    Unit::None,
                    priority + 1,
                ));
            }
        }
    }
    // The follower count GROWTH_DAYS earlier, for a declared growth derivation.
    if facts.iter().any(|f| f.id == "artist.followers")
        && let Some((then, earlier)) =
            latest_snapshot(store, artist, as_of - chrono::Duration::days(GROWTH_DAYS)).await?
        && let Some(n) = earlier.get("followers").and_then(Value::as_u64)
    {
        facts.push(Fact {
            id: "artist.followers_earlier".into(),
            label: format!("Spotify followers {GROWTH_DAYS} days before"),
            value: FactValue::Count { value: n },
            unit: Unit::Followers,
            source: "artist-monitoring snapshot".into(),
            as_of: then,
            priority: 6,
        });
    }
    Ok(())
}

/// Streaming sources put on a sheet (the largest figures).
pub const MAX_STREAM_SOURCES: usize = 2;
/// The window of the streaming figures, days (streaming-metrics' rolling window).
pub const STREAM_WINDOW_DAYS: u64 = 28;

/// The artist's streams over the rolling window, per source (streaming-metrics' rollups).
async fn streaming_facts(
    store: &dyn Store,
    artist: &ArtistId,
    today: NaiveDate,
    facts: &mut Vec<Fact>,
) -> Result<(), PortError> {
    let Ok(id) = backbone::validate::SpotifyId::new(artist.as_str()) else {
        return Ok(());
    };
    let mut recent = streaming_metrics::rollups::artist_recent(
        store,
        &id,
        streaming_metrics::model::Metric::Streams,
        today,
    )
    .await?;
    // A negative total (a restatement below zero) is a data error, not a figure to publish.
    recent.retain(|r| r.rolling_28 > 0);
    recent.sort_by_key(|r| std::cmp::Reverse(r.rolling_28));
    let Some(newest) = recent.iter().map(|r| r.last_day).max() else {
        return Ok(());
    };
    facts.push(Fact {
        id: "streams.window_days".into(),
        label: "days in each streaming window".into(),
        value: FactValue::Count {
            value: STREAM_WINDOW_DAYS,
        },
        unit: Unit::None,
        source: "streaming-metrics rollups".into(),
        as_of: newest,
        priority: 3,
    });
    for (i, r) in recent.into_iter().take(MAX_STREAM_SOURCES).enumerate() {
        facts.push(Fact {
            id: format!("streams.{i}.window"),
            label: format!(
                "streams over the window ending on the newest report, from {}",
                r.source
            ),
            value: FactValue::Count {
                // Positive, checked above.
                value: r.rolling_28.unsigned_abs(),
            },
            unit: Unit::Streams,
            source: format!("streaming-metrics rollups ({})", r.source),
            as_of: r.last_day,
            priority: 3 + i as u8,
        });
    }
    Ok(())
}

/// The audience metrics of other platforms a sheet may state: sizes, not cumulative counters
/// (views, plays and likes read ambiguously without their period).
const SOCIAL_AUDIENCES: [(&str, &str, Unit, &str); 5] = [
    (
        "youtube",
        "subscribers",
        Unit::YoutubeSubscribers,
        "YouTube subscribers",
    ),
    (
        "lastfm",
        "listeners",
        Unit::LastfmListeners,
        "Last.fm listeners",
    ),
    ("deezer", "fans", Unit::DeezerFans, "Deezer fans"),
    (
        "instagram",
        "followers",
        Unit::InstagramFollowers,
        "Instagram followers",
    ),
    (
        "tiktok",
        "followers",
        Unit::TiktokFollowers,
        "TikTok followers",
    ),
];

/// Days back a social figure may date from and still be stated.
pub const SOCIAL_MAX_AGE_DAYS: i64 = 28;

/// The newest audience figure per platform that social-media-sync stored (the series store).
async fn social_facts(
    store: &dyn Store,
    artist: &ArtistId,
    today: NaiveDate,
    facts: &mut Vec<Fact>,
) -> Result<(), PortError> {
    let from = today - chrono::Duration::days(SOCIAL_MAX_AGE_DAYS);
    let series = backbone::series::load(store, artist, from, today).await?;
    for (platform, metric, unit, label) in SOCIAL_AUDIENCES {
        let Some(point) = series
            .get(&(platform.to_owned(), metric.to_owned()))
            .and_then(|points| points.last())
        else {
            continue;
        };
        let label = match point.precision {
            backbone::series::Precision::Exact => label.to_owned(),
            backbone::series::Precision::SignificantFigures { .. } => {
                format!("{label} (as rounded by the platform)")
            }
        };
        facts.push(Fact {
            id: format!("social.{platform}.{metric}"),
            label,
            value: FactValue::Count { value: point.value },
            unit,
            source: format!("social-media-sync ({})", point.source),
            as_of: point.as_of,
            priority: 5,
        });
    }
    Ok(())
}

async fn track_facts(
    store: &dyn Store,
    i: usize,
    track: &str,
    facts: &mut Vec<Fact>,
) -> Result<(), PortError> {
    let Some(item) = store
        .get(&ItemKey::new(format!("track#{track}"), "analysis#v1"))
        .await?
    else {
        return Ok(());
    };
    let doc = item.data;
    let as_of = doc
        .get("analyzedAt")
        .cloned()
        .map(serde_json::from_value::<DateTime<Utc>>)
        .transpose()
        .map_err(|e| decode_err("analysis.decode", e))?
        .map(|t| t.date_naive());
    // Without its as-of date a figure cannot be stated: the analysis adds nothing.
    let Some(as_of) = as_of else {
        return Ok(());
    };
    let source = "track-analysis".to_owned();
    let features = doc.get("features").cloned().unwrap_or(Value::Null);
    let fact = |id: &str, label: &str, value: FactValue, unit: Unit| Fact {
        id: format!("track.{i}.{id}"),
        label: label.into(),
        value,
        unit,
        source: source.clone(),
        as_of,
        priority: 5,
    };
    if let Some(title) = doc.pointer("/track/title").and_then(Value::as_str) {
        facts.push(fact(
            "title",
            "track title",
            FactValue::Text { text: title.into() },
            Unit::None,
        ));
    }
    if let Some(bpm) = features.pointer("/tempo/bpm").and_then(Value::as_f64) {
        facts.push(fact(
            "tempo",
            "tempo",
            FactValue::Decimal {
                value: bpm.round(),
                decimals: 0,
            },
            Unit::Bpm,
        ));
    }
    if let (Some(tonic), Some(mode)) = (
        features.pointer("/key/tonic").and_then(Value::as_str),
        features.pointer("/key/mode").and_then(Value::as_str),
    ) {
        facts.push(fact(
            "key",
            "musical key",
            FactValue::Text {
                text: format!("{tonic} {mode}"),
            },
            Unit::None,
        ));
    }
    if let Some(lufs) = features
        .pointer("/loudness/integratedLufs")
        .and_then(Value::as_f64)
    {
        facts.push(fact(
            "loudness",
            "integrated loudness",
            FactValue::Decimal {
                value: (lufs * 10.0).round() / 10.0,
                decimals: 1,
            },
            Unit::Lufs,
        ));
    }
    if let Some(secs) = features.get("durationSeconds").and_then(Value::as_f64)
        && secs.is_finite()
        && secs >= 0.0
    {
        facts.push(fact(
            "duration",
            "duration",
            FactValue::Duration {
                seconds: secs.round() as u64,
            },
            Unit::None,
        ));
    }
    Ok(())
}

async fn playlist_facts(
    store: &dyn Store,
    playlist: &str,
    facts: &mut Vec<Fact>,
) -> Result<(), PortError> {
    let Some(item) = store
        .get(&ItemKey::new(format!("playlist#{playlist}"), "meta"))
        .await?
    else {
        return Ok(());
    };
    let doc = item.data;
    let as_of = doc
        .get("synced_at")
        .cloned()
        .map(serde_json::from_value::<DateTime<Utc>>)
        .transpose()
        .map_err(|e| decode_err("playlist.decode", e))?
        .map(|t| t.date_naive());
    let Some(as_of) = as_of else {
        return Ok(());
    };
    let source = "data-sync playlist".to_owned();
    if let Some(name) = doc.get("name").and_then(Value::as_str) {
        facts.push(Fact {
            id: "playlist.name".into(),
            label: "playlist title".into(),
            value: FactValue::Text { text: name.into() },
            unit: Unit::None,
            source: source.clone(),
            as_of,
            priority: 0,
        });
    }
    if let Some(n) = doc.get("items").and_then(Value::as_u64) {
        facts.push(Fact {
            id: "playlist.tracks".into(),
            label: "tracks on the playlist".into(),
            value: FactValue::Count { value: n },
            unit: Unit::Tracks,
            source,
            as_of,
            priority: 1,
        });
    }
    Ok(())
}
