//! Storing observations and keeping the rollups: track × territory × day up to track × day,
//! artist × day, ISO week and rolling 28 days, correct under restatements, retries and any
//! order of arrival.
//!
//! Store layout (one table, [`backbone::ports::Store`]):
//!
//! | pk | sk | document |
//! |---|---|---|
//! | `stream#<subject>` | `day#<source>#<metric>#<YYYY-MM-DD>` | [`TrackDay`]: per territory the current value, its `as_of`, version and last versions; `total` |
//! | `stream#<subject>` | `month#<source>#<metric>#<YYYY-MM-01>` | the same for monthly statement lines |
//! | `stream#<subject>` | `week#<source>#<metric>#<YYYY-Www>` | [`Bucket`]: the week's day totals and their sum |
//! | `stream#<subject>` | `meta` | the artist the subject belongs to |
//! | `streams-artist#<artist>` | `day#…`, `month#…`, `week#…` | [`Bucket`]: per track (or day) its total, and the sum |
//! | `streams-artist#<artist>` | `track#<subject>` | membership: the artist's subjects |
//!
//! Every rollup is a recomputed document, not an atomic counter: each level stores the parts
//! it sums (the territories of a track's day, the tracks of an artist's day, the days of a
//! week) and recomputes its total from them under an optimistic version check. Setting a part
//! is idempotent, so a retried or re-delivered batch, a restatement (the part is replaced,
//! the total moves by the difference) and out-of-order arrival all land on the same totals;
//! counters (`Store::add`) would count a retried delta twice.
//!
//! Restatements: Spotify counts offline plays up to 30 days late, so a newer report for the
//! same key restates the figure. The value with the latest `as_of` wins (a tie goes to the
//! later arrival); the replaced ones stay in the territory's `versions` (the last
//! [`VERSIONS_KEPT`]). A statement line split by store qualifier (`Spotify (Premium)`,
//! `Spotify (Free)`) is summed within its file, each part keyed by its line, so a re-read
//! file adds nothing.
//!
//! The track × day total is the `GLOBAL` figure when the source reports one (listeners are
//! not additive over territories), else the sum of the territories.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use chrono::{DateTime, Datelike, Duration, NaiveDate, Utc};
use serde::{Deserialize, Serialize};

use backbone::error::PortError;
use backbone::ports::{ItemKey, PutCondition, Query, Store};
use backbone::validate::SpotifyId;

use crate::model::{GLOBAL, Metric, Observation, Period, Source, Subject};

/// Replaced versions kept per territory and day.
pub const VERSIONS_KEPT: usize = 10;
/// Tries of one optimistic read-modify-write before giving up (transient).
const MAX_TRIES: usize = 8;

/// The partition of a subject.
pub fn subject_pk(subject: &Subject) -> String {
    format!("stream#{subject}")
}

/// The partition of an artist's rollups.
pub fn artist_pk(artist: &SpotifyId) -> String {
    format!("streams-artist#{artist}")
}

fn bucket_sk(period: Period, source: &Source, metric: Metric, date: NaiveDate) -> String {
    let kind = match period {
        Period::Day => "day",
        Period::Month => "month",
    };
    format!("{kind}#{source}#{metric}#{date}")
}

/// The ISO week of a date, as `YYYY-Www`.
pub fn iso_week(date: NaiveDate) -> String {
    let w = date.iso_week();
    format!("{}-W{:02}", w.year(), w.week())
}

fn week_sk(source: &Source, metric: Metric, date: NaiveDate) -> String {
    format!("week#{source}#{metric}#{}", iso_week(date))
}

/// One replaced figure.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Version {
    /// The value.
    pub value: i64,
    /// Its `as_of`.
    pub as_of: DateTime<Utc>,
    /// The file it came from (content hash), if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub file: Option<String>,
}

/// The current figure of one territory on one day.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Figure {
    /// The current value.
    pub value: i64,
    /// When the source produced it.
    pub as_of: DateTime<Utc>,
    /// 1 for the first figure, +1 per restatement.
    pub version: u32,
    /// The file it came from (content hash), if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub file: Option<String>,
    /// For statements: the file's lines summed into the value, by line number.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub parts: BTreeMap<u64, i64>,
    /// The figures it replaced, oldest first.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub versions: Vec<Version>,
}

/// The document of a track × day (or month) item.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct TrackDay {
    /// Per territory code (`GLOBAL` included).
    pub territories: BTreeMap<String, Figure>,
    /// The `GLOBAL` figure if any, else the sum of the territories.
    pub total: i64,
}

impl TrackDay {
    fn recompute(&mut self) {
        self.total = match self.territories.get(GLOBAL) {
            Some(g) => g.value,
            None => self.territories.values().map(|f| f.value).sum(),
        };
    }
}

/// A rollup made of parts: an artist's day (parts: its subjects), a week (parts: its days).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Bucket {
    /// The parts and their values.
    pub parts: BTreeMap<String, i64>,
    /// Their sum.
    pub total: i64,
}

/// One row waiting to be applied.
#[derive(Debug, Clone, PartialEq)]
pub struct Pending {
    /// The observation.
    pub observation: Observation,
    /// The file (content hash) it came from.
    pub file: Option<String>,
    /// Its line in the file.
    pub line: Option<u64>,
    /// Whether rows with the same key in this file add up.
    pub summing: bool,
}

/// What applying a batch did.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Applied {
    /// Figures stored for the first time.
    pub new: usize,
    /// Figures replaced by a newer report.
    pub restated: usize,
    /// Rows that changed nothing (a repeat, or an older report than the stored one).
    pub unchanged: usize,
    /// Track × day items of the batch: (subject, source, metric, date), those whose total did
    /// not change marked `revisited`.
    #[serde(skip)]
    pub changed: BTreeSet<SeriesDay>,
}

/// A daily series point a batch touched.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct SeriesDay {
    /// The subject.
    pub subject: Subject,
    /// The source.
    pub source: Source,
    /// The metric.
    pub metric: Metric,
    /// The day.
    pub date: NaiveDate,
    /// The artist, when known.
    pub artist: Option<SpotifyId>,
    /// The row changed nothing (a repeat, or a retry after a partial write): the day is
    /// scored only if the detector has not seen it yet.
    pub revisited: bool,
}

/// Why a document could not be used.
fn corrupt(operation: &'static str, err: serde_json::Error) -> PortError {
    PortError::permanent(operation, err)
}

/// Reads, changes and writes one document under an optimistic version check.
async fn update<T, F>(store: &dyn Store, key: &ItemKey, mut change: F) -> Result<T, PortError>
where
    T: Serialize + for<'de> Deserialize<'de> + Default,
    F: FnMut(&mut T) -> bool,
{
    for _ in 0..MAX_TRIES {
        let current = store.get(key).await?;
        let (version, mut doc) = match current {
            Some(item) => (
                item.version,
                serde_json::from_value::<T>(item.data).map_err(|e| corrupt("rollup.read", e))?,
            ),
            None => (0, T::default()),
        };
        if !change(&mut doc) {
            return Ok(doc);
        }
        let data = serde_json::to_value(&doc).map_err(|e| corrupt("rollup.encode", e))?;
        let condition = if version == 0 {
            PutCondition::NotExists
        } else {
            PutCondition::Version(version)
        };
        match store.put(key, &data, condition, None).await {
            Ok(_) => return Ok(doc),
            Err(PortError::Conflict { .. }) => continue,
            Err(err) => return Err(err),
        }
    }
    Err(PortError::Conflict {
        operation: "rollup.update",
    })
}

/// The outcome of one row against the stored figure.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum RowEffect {
    New,
    Restated,
    Unchanged,
}

fn apply_row(day: &mut TrackDay, p: &Pending, now: DateTime<Utc>) -> RowEffect {
    let o = &p.observation;
    let as_of = o.as_of.unwrap_or(now);
    let code = o.territory.as_str().to_owned();
    let line = p.line.unwrap_or(0);
    match day.territories.get_mut(&code) {
        None => {
            let mut parts = BTreeMap::new();
            if p.summing {
                parts.insert(line, o.value);
            }
            day.territories.insert(
                code,
                Figure {
                    value: o.value,
                    as_of,
                    version: 1,
                    file: p.file.clone(),
                    parts,
                    versions: Vec::new(),
                },
            );
            RowEffect::New
        }
        Some(fig) => {
            if p.summing && p.file.is_some() && fig.file == p.file {
                // Another qualifier line of the same statement line: add it once.
                if fig.parts.contains_key(&line) {
                    return RowEffect::Unchanged;
                }
                fig.parts.insert(line, o.value);
                fig.value = fig.parts.values().sum();
                return RowEffect::New;
            }
            if as_of < fig.as_of || (fig.value == o.value && fig.file == p.file) {
                return RowEffect::Unchanged;
            }
            if fig.value == o.value {
                // Confirmed by a newer report: nothing to restate.
                fig.as_of = fig.as_of.max(as_of);
                return RowEffect::Unchanged;
            }
            fig.versions.push(Version {
                value: fig.value,
                as_of: fig.as_of,
                file: fig.file.clone(),
            });
            if fig.versions.len() > VERSIONS_KEPT {
                fig.versions.remove(0);
            }
            fig.value = o.value;
            fig.as_of = as_of;
            fig.version += 1;
            fig.file = p.file.clone();
            fig.parts.clear();
            if p.summing {
                fig.parts.insert(line, o.value);
            }
            RowEffect::Restated
        }
    }
}

/// Applies a batch of rows: the track items first (one write per track × day), then the
/// artist and week rollups of the totals that changed.
pub async fn apply(
    store: &dyn Store,
    rows: &[Pending],
    now: DateTime<Utc>,
) -> Result<Applied, PortError> {
    let mut out = Applied::default();
    let mut groups: BTreeMap<(Subject, String), Vec<&Pending>> = BTreeMap::new();
    for p in rows {
        let o = &p.observation;
        let sk = bucket_sk(o.period, &o.source, o.metric, o.date);
        groups.entry((o.subject.clone(), sk)).or_default().push(p);
    }
    // (artist pk, bucket sk) -> (subject, total); (pk, week sk) -> (date, total).
    let mut artist_parts: BTreeMap<(String, String), BTreeMap<String, i64>> = BTreeMap::new();
    let mut week_parts: BTreeMap<(String, String), BTreeMap<String, i64>> = BTreeMap::new();
    let mut memberships: BTreeSet<(SpotifyId, Subject)> = BTreeSet::new();
    for ((subject, sk), group) in groups {
        let key = ItemKey::new(subject_pk(&subject), sk.clone());
        let mut effects = Vec::new();
        let mut before = None;
        let doc: TrackDay = update(store, &key, |day: &mut TrackDay| {
            effects.clear();
            before = Some(day.total);
            let mut changed = false;
            for p in &group {
                let e = apply_row(day, p, now);
                changed |= e != RowEffect::Unchanged;
                effects.push(e);
            }
            day.recompute();
            changed
        })
        .await?;
        for e in &effects {
            match e {
                RowEffect::New => out.new += 1,
                RowEffect::Restated => out.restated += 1,
                RowEffect::Unchanged => out.unchanged += 1,
            }
        }
        let first = &group[0].observation;
        let artist = group
            .iter()
            .find_map(|p| p.observation.artist.clone())
            .or_else(|| subject.artist().cloned());
        let changed_total =
            before != Some(doc.total) || effects.iter().any(|e| *e != RowEffect::Unchanged);
        // An unchanged track item still carries its total into the rollups above it: a run
        // that failed after writing the track item and before its artist or week (a retry
        // after a store error, a killed invocation) completes them now. Setting a part to the
        // value it has writes nothing.
        let subject_key = subject.to_string();
        if let Some(artist) = &artist
            && subject.artist().is_none()
        {
            artist_parts
                .entry((artist_pk(artist), sk.clone()))
                .or_default()
                .insert(subject_key.clone(), doc.total);
            memberships.insert((artist.clone(), subject.clone()));
        }
        if first.period == Period::Day {
            let wsk = week_sk(&first.source, first.metric, first.date);
            week_parts
                .entry((subject_pk(&subject), wsk.clone()))
                .or_default()
                .insert(first.date.to_string(), doc.total);
            out.changed.insert(SeriesDay {
                subject: subject.clone(),
                source: first.source.clone(),
                metric: first.metric,
                date: first.date,
                artist: artist.clone(),
                revisited: !changed_total,
            });
        }
    }
    for (artist, subject) in &memberships {
        let key = ItemKey::new(artist_pk(artist), format!("track#{subject}"));
        if store.get(&key).await?.is_none() {
            store
                .put(
                    &key,
                    &serde_json::json!({ "subject": subject }),
                    PutCondition::Always,
                    None,
                )
                .await?;
        }
        let meta = ItemKey::new(subject_pk(subject), "meta");
        if store.get(&meta).await?.is_none() {
            store
                .put(
                    &meta,
                    &serde_json::json!({ "artist": artist }),
                    PutCondition::Always,
                    None,
                )
                .await?;
        }
    }
    for ((pk, sk), parts) in artist_parts {
        let doc = set_parts(store, &ItemKey::new(pk.clone(), sk.clone()), &parts).await?;
        // The artist's week follows its days.
        if let Some(date) = sk
            .rsplit('#')
            .next()
            .and_then(|d| d.parse::<NaiveDate>().ok())
            && sk.starts_with("day#")
        {
            let mut fields = sk.splitn(4, '#');
            let (_, source, metric) = (fields.next(), fields.next(), fields.next());
            if let (Some(source), Some(metric)) = (source, metric) {
                let wsk = format!("week#{source}#{metric}#{}", iso_week(date));
                week_parts
                    .entry((pk, wsk))
                    .or_default()
                    .insert(date.to_string(), doc.total);
            }
        }
    }
    for ((pk, sk), parts) in week_parts {
        set_parts(store, &ItemKey::new(pk, sk), &parts).await?;
    }
    Ok(out)
}

async fn set_parts(
    store: &dyn Store,
    key: &ItemKey,
    parts: &BTreeMap<String, i64>,
) -> Result<Bucket, PortError> {
    update(store, key, |b: &mut Bucket| {
        let mut changed = false;
        for (k, v) in parts {
            if b.parts.get(k) != Some(v) {
                b.parts.insert(k.clone(), *v);
                changed = true;
            }
        }
        b.total = b.parts.values().sum();
        changed
    })
    .await
}

/// One day's total of a series.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DayTotal {
    /// The day.
    pub date: NaiveDate,
    /// The total.
    pub value: i64,
}

async fn totals(
    store: &dyn Store,
    pk: String,
    prefix: &str,
    from: NaiveDate,
    to: NaiveDate,
) -> Result<Vec<DayTotal>, PortError> {
    let query = Query::partition(pk).between(format!("{prefix}{from}"), format!("{prefix}{to}"));
    let items = backbone::ports::store::query_all(store, query.limit(1000), 10_000).await?;
    let mut out = Vec::with_capacity(items.len());
    for item in items {
        let Some(date) = item.key.sk.rsplit('#').next().and_then(|d| d.parse().ok()) else {
            continue;
        };
        let value = item.data.get("total").and_then(|v| v.as_i64()).unwrap_or(0);
        out.push(DayTotal { date, value });
    }
    Ok(out)
}

/// A track's (or any subject's) daily totals from `from` to `to`, both included.
pub async fn track_days(
    store: &dyn Store,
    subject: &Subject,
    source: &Source,
    metric: Metric,
    from: NaiveDate,
    to: NaiveDate,
) -> Result<Vec<DayTotal>, PortError> {
    totals(
        store,
        subject_pk(subject),
        &format!("day#{source}#{metric}#"),
        from,
        to,
    )
    .await
}

/// An artist's daily totals (the sum over its tracks) from `from` to `to`: the query the
/// other functions use (artist-monitoring shows it in its report).
pub async fn artist_days(
    store: &dyn Store,
    artist: &SpotifyId,
    source: &Source,
    metric: Metric,
    from: NaiveDate,
    to: NaiveDate,
) -> Result<Vec<DayTotal>, PortError> {
    totals(
        store,
        artist_pk(artist),
        &format!("day#{source}#{metric}#"),
        from,
        to,
    )
    .await
}

/// A subject's or artist's ISO-week total (`pk` from [`subject_pk`] or [`artist_pk`]).
pub async fn week_total(
    store: &dyn Store,
    pk: String,
    source: &Source,
    metric: Metric,
    date: NaiveDate,
) -> Result<i64, PortError> {
    let key = ItemKey::new(pk, week_sk(source, metric, date));
    Ok(store
        .get(&key)
        .await?
        .and_then(|i| i.data.get("total").and_then(|v| v.as_i64()))
        .unwrap_or(0))
}

/// The rolling 28 days ending on `date` (included) of a subject or artist partition.
pub async fn rolling_28(
    store: &dyn Store,
    pk: String,
    source: &Source,
    metric: Metric,
    date: NaiveDate,
) -> Result<i64, PortError> {
    let from = date - Duration::days(27);
    Ok(
        totals(store, pk, &format!("day#{source}#{metric}#"), from, date)
            .await?
            .iter()
            .map(|d| d.value)
            .sum(),
    )
}

/// The stored day document of a subject (territories, versions), for the CLI and signals.
pub async fn track_day(
    store: &dyn Store,
    subject: &Subject,
    source: &Source,
    metric: Metric,
    date: NaiveDate,
) -> Result<Option<TrackDay>, PortError> {
    let key = ItemKey::new(
        subject_pk(subject),
        bucket_sk(Period::Day, source, metric, date),
    );
    match store.get(&key).await? {
        Some(item) => Ok(Some(
            serde_json::from_value(item.data).map_err(|e| corrupt("rollup.read", e))?,
        )),
        None => Ok(None),
    }
}

/// A subject's stored day documents from `from` to `to` (one query), for the rules that
/// compare a day with its history.
pub async fn track_day_docs(
    store: &dyn Store,
    subject: &Subject,
    source: &Source,
    metric: Metric,
    from: NaiveDate,
    to: NaiveDate,
) -> Result<Vec<(NaiveDate, TrackDay)>, PortError> {
    let prefix = format!("day#{source}#{metric}#");
    let query = Query::partition(subject_pk(subject))
        .between(format!("{prefix}{from}"), format!("{prefix}{to}"));
    let items = backbone::ports::store::query_all(store, query.limit(1000), 10_000).await?;
    let mut out = Vec::with_capacity(items.len());
    for item in items {
        let Some(date) = item.key.sk.rsplit('#').next().and_then(|d| d.parse().ok()) else {
            continue;
        };
        out.push((
            date,
            serde_json::from_value(item.data).map_err(|e| corrupt("rollup.read", e))?,
        ));
    }
    Ok(out)
}

/// Most week items read to find an artist's sources (seven metrics, a few sources, years of
/// weeks).
const MAX_WEEK_ITEMS: usize = 10_000;

/// An artist's latest 28 days of one metric from one source, for other functions' fact sheets.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RecentTotal {
    /// The source the figure comes from (figures of two sources are never summed).
    pub source: Source,
    /// The newest day with a figure, on or before the day asked for.
    pub last_day: NaiveDate,
    /// The 28 days ending on `last_day`, that day included.
    pub rolling_28: i64,
}

/// Per source, the artist's rolling 28 days of `metric` ending on the newest day with a figure
/// no later than `upto`; sources with no figure in the 28 days before `upto` are left out, so
/// an absent figure is absent, never zero.
pub async fn artist_recent(
    store: &dyn Store,
    artist: &SpotifyId,
    metric: Metric,
    upto: NaiveDate,
) -> Result<Vec<RecentTotal>, PortError> {
    // The week rollups name every source the artist has figures from, in far fewer items
    // than the days.
    let weeks = backbone::ports::store::query_all(
        store,
        Query::partition(artist_pk(artist))
            .prefix("week#")
            .limit(1000),
        MAX_WEEK_ITEMS,
    )
    .await?;
    let metric_name = metric.to_string();
    let sources: BTreeSet<Source> = weeks
        .iter()
        .filter_map(|item| {
            let rest = item.key.sk.strip_prefix("week#")?;
            let mut parts = rest.rsplitn(3, '#');
            let (_week, m, source) = (parts.next()?, parts.next()?, parts.next()?);
            (m == metric_name)
                .then(|| Source::parse(source).ok())
                .flatten()
        })
        .collect();
    let mut out = Vec::new();
    for source in sources {
        let days = artist_days(
            store,
            artist,
            &source,
            metric,
            upto - Duration::days(27),
            upto,
        )
        .await?;
        let Some(last_day) = days.iter().map(|d| d.date).max() else {
            continue;
        };
        out.push(RecentTotal {
            rolling_28: rolling_28(store, artist_pk(artist), &source, metric, last_day).await?,
            source,
            last_day,
        });
    }
    Ok(out)
}

/// A summary of an artist for a day, for other functions' reports.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ArtistSummary {
    /// The day.
    pub date: NaiveDate,
    /// The day's total.
    pub day: i64,
    /// The ISO week's total so far.
    pub week: i64,
    /// The rolling 28 days.
    pub rolling_28: i64,
}

/// The artist's day, week and rolling 28 days of `metric` from `source`.
pub async fn artist_summary(
    store: Arc<dyn Store>,
    artist: &SpotifyId,
    source: &Source,
    metric: Metric,
    date: NaiveDate,
) -> Result<ArtistSummary, PortError> {
    let day = artist_days(store.as_ref(), artist, source, metric, date, date)
        .await?
        .first()
        .map_or(0, |d| d.value);
    Ok(ArtistSummary {
        date,
        day,
        week: week_total(store.as_ref(), artist_pk(artist), source, metric, date).await?,
        rolling_28: rolling_28(store.as_ref(), artist_pk(artist), source, metric, date).await?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Territory;
    use backbone::local::LocalDb;
    use proptest::prelude::*;

    const ARTIST: &str = "0TnOYISbd1XYRBk9myaseg";

    fn day(d: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(2026, 11, d).expect("valid date")
    }

    fn at(hour: i64) -> DateTime<Utc> {
        DateTime::<Utc>::from_timestamp(1_790_000_000 + hour * 3600, 0).expect("valid time")
    }

    fn obs(isrc: &str, territory: &str, date: NaiveDate, value: i64, as_of: i64) -> Pending {
        Pending {
            observation: Observation {
                subject: Subject::parse(isrc).expect("isrc"),
                territory: Territory::parse(territory).expect("territory"),
                date,
                metric: Metric::Streams,
                value,
                source: Source::parse("spotify_for_artists").expect("source"),
                as_of: Some(at(as_of)),
                artist: Some(SpotifyId::new(ARTIST).expect("artist")),
                period: Period::Day,
            },
            file: Some(format!("file{as_of}")),
            line: Some(2),
            summing: false,
        }
    }

    async fn artist_total(store: &dyn Store, date: NaiveDate) -> i64 {
        let a = SpotifyId::new(ARTIST).expect("artist");
        let src = Source::parse("spotify_for_artists").expect("source");
        artist_days(store, &a, &src, Metric::Streams, date, date)
            .await
            .expect("query")
            .first()
            .map_or(0, |d| d.value)
    }

    #[tokio::test]
    async fn a_restatement_replaces_the_figure_and_moves_every_rollup_by_the_difference() {
        let db = LocalDb::in_memory().expect("db");
        let now = at(100);
        let first = apply(
            &db,
            &[
                obs("USRC17607839", "SE", day(2), 100, 1),
                obs("USRC17607840", "SE", day(2), 50, 1),
            ],
            now,
        )
        .await
        .expect("apply");
        assert_eq!(first.new, 2);
        assert_eq!(artist_total(&db, day(2)).await, 150);
        // Offline plays counted late: a newer report says 130.
        let second = apply(&db, &[obs("USRC17607839", "SE", day(2), 130, 5)], now)
            .await
            .expect("apply");
        assert_eq!(second.restated, 1);
        assert_eq!(artist_total(&db, day(2)).await, 180);
        // The same report delivered again counts nothing.
        let again = apply(&db, &[obs("USRC17607839", "SE", day(2), 130, 5)], now)
            .await
            .expect("apply");
        assert_eq!(again.unchanged, 1);
        // An older report arriving late does not undo the newer one.
        let stale = apply(&db, &[obs("USRC17607839", "SE", day(2), 90, 3)], now)
            .await
            .expect("apply");
        assert_eq!(stale.unchanged, 1);
        assert_eq!(artist_total(&db, day(2)).await, 180);
        let subject = Subject::parse("USRC17607839").expect("isrc");
        let src = Source::parse("spotify_for_artists").expect("source");
        let doc = track_day(&db, &subject, &src, Metric::Streams, day(2))
            .await
            .expect("get")
            .expect("stored");
        let se = &doc.territories["SE"];
        assert_eq!((se.value, se.version, se.versions.len()), (130, 2, 1));
        assert_eq!(se.versions[0].value, 100);
        let a = SpotifyId::new(ARTIST).expect("artist");
        assert_eq!(
            week_total(&db, artist_pk(&a), &src, Metric::Streams, day(2))
                .await
                .expect("week"),
            180
        );
    }

    #[tokio::test]
    async fn artist_recent_sums_the_28_days_to_the_newest_figure_per_source() {
        let db = LocalDb::in_memory().expect("db");
        let a = SpotifyId::new(ARTIST).expect("artist");
        assert!(
            artist_recent(&db, &a, Metric::Streams, day(30))
                .await
                .expect("recent")
                .is_empty(),
            "no figure is no fact, not zero"
        );
        let mut other = obs("USRC17607839", "SE", day(3), 1000, 1);
        other.observation.source = Source::parse("distrokid/spotify").expect("source");
        // Day 1 falls outside the 28 days ending on day 29 (days 2..=29).
        let mut batch = vec![obs("USRC17607839", "SE", day(1), 7, 1), other];
        batch.extend((2..=29).map(|d| obs("USRC17607840", "SE", day(d), 10, 1)));
        apply(&db, &batch, at(100)).await.expect("apply");
        let recent = artist_recent(&db, &a, Metric::Streams, day(30))
            .await
            .expect("recent");
        let by_source: Vec<(String, NaiveDate, i64)> = recent
            .iter()
            .map(|r| (r.source.to_string(), r.last_day, r.rolling_28))
            .collect();
        assert_eq!(
            by_source,
            vec![
                ("distrokid/spotify".to_owned(), day(3), 1000),
                ("spotify_for_artists".to_owned(), day(29), 280),
            ]
        );
        // Other metrics have no figure: nothing.
        assert!(
            artist_recent(&db, &a, Metric::Listeners, day(30))
                .await
                .expect("recent")
                .is_empty()
        );
        // As of day 10, the newest day is 10 and day 1 is inside the window.
        let early = artist_recent(&db, &a, Metric::Streams, day(10))
            .await
            .expect("recent");
        let sfa = early
            .iter()
            .find(|r| r.source.to_string() == "spotify_for_artists")
            .expect("source");
        assert_eq!((sfa.last_day, sfa.rolling_28), (day(10), 7 + 9 * 10));
    }

    #[tokio::test]
    async fn global_figure_wins_over_the_sum_of_territories_and_weeks_and_28_days_add_up() {
        let db = LocalDb::in_memory().expect("db");
        let now = at(100);
        apply(
            &db,
            &[
                obs("USRC17607839", "SE", day(2), 10, 1),
                obs("USRC17607839", "NO", day(2), 5, 1),
            ],
            now,
        )
        .await
        .expect("apply");
        let subject = Subject::parse("USRC17607839").expect("isrc");
        let src = Source::parse("spotify_for_artists").expect("source");
        let totals = track_days(&db, &subject, &src, Metric::Streams, day(1), day(30))
            .await
            .expect("q");
        assert_eq!(
            totals,
            vec![DayTotal {
                date: day(2),
                value: 15
            }]
        );
        apply(&db, &[obs("USRC17607839", "GLOBAL", day(2), 40, 1)], now)
            .await
            .expect("apply");
        let totals = track_days(&db, &subject, &src, Metric::Streams, day(1), day(30))
            .await
            .expect("q");
        assert_eq!(totals[0].value, 40);
        // 2026-11-02 is a Monday: days 2..=8 are one ISO week.
        for d in 3..=9 {
            apply(&db, &[obs("USRC17607839", "SE", day(d), 1, 1)], now)
                .await
                .expect("apply");
        }
        assert_eq!(
            week_total(&db, subject_pk(&subject), &src, Metric::Streams, day(5))
                .await
                .expect("w"),
            46
        );
        assert_eq!(
            rolling_28(&db, subject_pk(&subject), &src, Metric::Streams, day(9))
                .await
                .expect("r"),
            47
        );
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 24, ..ProptestConfig::default() })]

        /// Whatever the order of arrival (and with duplicates), the rollups equal those of
        /// the newest figure of every key.
        #[test]
        fn rollups_do_not_depend_on_arrival_order(
            versions in proptest::collection::vec((0usize..3, 0usize..2, 1u32..4, 0i64..1000), 1..25),
            seed in any::<u64>(),
        ) {
            let isrcs = ["USRC17607839", "USRC17607840", "GBUM71029604"];
            let territories = ["SE", "NO"];
            // as_of = the index, so every version of a key is ordered.
            let rows: Vec<Pending> = versions
                .iter()
                .enumerate()
                .map(|(i, (s, t, d, v))| obs(isrcs[*s], territories[*t], day(*d), *v, i as i64))
                .collect();
            let mut expected: BTreeMap<(usize, usize, u32), i64> = BTreeMap::new();
            for (s, t, d, v) in &versions {
                expected.insert((*s, *t, *d), *v);
            }
            let mut shuffled = rows.clone();
            shuffled.extend(rows.iter().take(3).cloned());
            let mut x = seed | 1;
            for i in (1..shuffled.len()).rev() {
                x ^= x << 13; x ^= x >> 7; x ^= x << 17;
                shuffled.swap(i, (x % (i as u64 + 1)) as usize);
            }
            let rt = tokio::runtime::Builder::new_current_thread().build().expect("runtime");
            rt.block_on(async {
                let db = LocalDb::in_memory().expect("db");
                // Arrive in batches of 4, as SQS would deliver them.
                for chunk in shuffled.chunks(4) {
                    apply(&db, chunk, at(1000)).await.expect("apply");
                }
                for d in 1..4u32 {
                    let want: i64 = expected.iter().filter(|((_, _, dd), _)| *dd == d).map(|(_, v)| v).sum();
                    prop_assert_eq!(artist_total(&db, day(d)).await, want);
                }
                Ok(())
            })?;
        }
    }
}
