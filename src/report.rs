//! The readable report of a local run: snapshots and trends per watched artist, alerts with
//! their evidence, catalog changes, dead letters, Spotify calls and the audit log's state.
//!
//! Everything is read back from the local database after the run (and from the sandbox's own
//! request counts), so the report shows what the functions stored, not what they claimed.

use std::collections::BTreeMap;
use std::fmt::{self, Write as _};

use artist_monitoring::alerts::Alert;
use artist_monitoring::snapshots::{self, Snapshot};
use artist_monitoring::trend::{self, Change};
use backbone::audit::VerifyReport;
use backbone::ports::DeadLetter;
use backbone::watchlist::{self, WatchlistName};
use chrono::NaiveDate;
use serde::Serialize;

use crate::{Local, RunError};

/// The state of one watched artist at the end of the run.
#[derive(Debug, Clone, Serialize)]
pub struct ArtistLine {
    /// The artist's id.
    pub artist: String,
    /// Its name, when known.
    pub name: Option<String>,
    /// Snapshots stored over the period.
    pub snapshots: usize,
    /// The latest snapshot's followers (absent in the development tier).
    pub followers: Option<u64>,
    /// The latest snapshot's popularity.
    pub popularity: Option<u8>,
    /// Follower changes over 1, 7 and 28 days, as far as the history allows.
    pub follower_trends: Vec<Change>,
    /// Popularity changes.
    pub popularity_trends: Vec<Change>,
    /// Releases known at the end.
    pub releases: usize,
    /// Metrics the API did not return, with the reason.
    pub unavailable: Vec<String>,
    /// The artist answered 404 on the last day.
    pub gone: bool,
}

/// One artist's accounts and figures (social-media-sync), at the end of the run.
#[derive(Debug, Clone, Serialize)]
pub struct SocialLine {
    /// The artist's id.
    pub artist: String,
    /// The links: `platform account (status, confidence, sources)`.
    pub links: Vec<String>,
    /// The quarantined platforms, with the reason.
    pub quarantined: Vec<String>,
    /// The graph's notes (redirects, skipped statements, manual links winning).
    pub notes: Vec<String>,
    /// Per `platform.metric`: the first and last value of the period, the days stored and the
    /// precision.
    pub series: BTreeMap<String, SeriesLine>,
}

/// One series over the period.
#[derive(Debug, Clone, Serialize)]
pub struct SeriesLine {
    /// Days with a point.
    pub days: usize,
    /// The first value.
    pub first: u64,
    /// The last value.
    pub last: u64,
    /// Its precision.
    pub precision: backbone::series::Precision,
}

/// Catalog changes published by data-sync.
#[derive(Debug, Clone, Default, Serialize)]
pub struct CatalogLine {
    /// `CatalogChanged` events.
    pub events: usize,
    /// New albums announced.
    pub new_albums: usize,
    /// New tracks announced.
    pub new_tracks: usize,
    /// Playlist items added.
    pub items_added: usize,
    /// Playlist items removed.
    pub items_removed: usize,
}

/// The whole report.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    /// First day reported.
    pub from: NaiveDate,
    /// Last day reported.
    pub to: NaiveDate,
    /// The Spotify tier in use.
    pub tier: String,
    /// The watchlist reported on.
    pub watchlist: String,
    /// One line per watched artist.
    pub artists: Vec<ArtistLine>,
    /// The identity graph and the series of each watched artist (social-media-sync).
    pub social: Vec<SocialLine>,
    /// Requests the social sandbox received per upstream, and those breaking a published limit.
    pub social_calls: BTreeMap<String, u64>,
    /// Requests that broke a platform's published rate limit (the sandbox checks them).
    pub social_violations: BTreeMap<String, u64>,
    /// Alerts fired over the period, oldest first.
    pub alerts: Vec<Alert>,
    /// Catalog changes.
    pub catalog: CatalogLine,
    /// Dead letters per function.
    pub dead_letters: BTreeMap<String, Vec<DeadLetter>>,
    /// Spotify requests by route (the sandbox's counts), when the sandbox is in-process.
    pub spotify_calls: BTreeMap<String, u64>,
    /// The audit log's verification.
    pub audit: Vec<VerifyReport>,
}

/// Builds the report of the days `from..=to` for `list`.
pub async fn build(
    local: &Local,
    list: &WatchlistName,
    from: NaiveDate,
    to: NaiveDate,
    functions: &[&str],
) -> Result<Report, RunError> {
    let store = &local.runtime.db;
    let watched = watchlist::load(store, list)
        .await
        .map_err(RunError::Watchlist)?;
    let mut artists = Vec::new();
    for artist in &watched.artists {
        let history =
            snapshots::history(store, artist, from - chrono::Duration::days(35), to).await?;
        artists.push(artist_line(artist.to_string(), &history, from, to));
    }
    let mut social = Vec::new();
    for artist in &watched.artists {
        social.push(social_line(store, artist, from, to).await?);
    }
    let alerts = alerts_between(store, from, to).await?;
    let mut catalog = CatalogLine::default();
    for stored in local.runtime.bus().events().await? {
        let event = stored.event;
        if event.source != data_sync::EVENT_SOURCE {
            continue;
        }
        catalog.events += 1;
        let count = |field: &str| event.detail[field].as_array().map_or(0, Vec::len);
        catalog.new_albums += count("newAlbums");
        catalog.new_tracks += count("newTracks");
        catalog.items_added += count("added");
        catalog.items_removed += count("removed");
    }
    let mut dead_letters = BTreeMap::new();
    for function in functions {
        let letters = local.runtime.queues(function).dead_letters().await?;
        dead_letters.insert((*function).to_owned(), letters);
    }
    let spotify_calls = local
        .spotify
        .sandbox
        .as_ref()
        .map(|s| s.calls())
        .unwrap_or_default();
    let audit = crate::verify_audit(&local.runtime, None).await?;
    Ok(Report {
        from,
        to,
        tier: backbone::spotify::SpotifyConnect::tier(&local.spotify.client)
            .as_str()
            .to_owned(),
        watchlist: list.to_string(),
        artists,
        social,
        social_calls: social_sandbox(local).map(|s| s.calls()).unwrap_or_default(),
        social_violations: social_sandbox(local)
            .map(|s| s.violations())
            .unwrap_or_default(),
        alerts,
        catalog,
        dead_letters,
        spotify_calls,
        audit,
    })
}

/// The alerts artist-monitoring recorded on the days `from..=to`, oldest first: what the local
/// report and the dashboard's alert pages both show.
pub async fn alerts_between(
    store: &backbone::local::LocalDb,
    from: NaiveDate,
    to: NaiveDate,
) -> Result<Vec<Alert>, backbone::error::PortError> {
    let mut alerts = Vec::new();
    let mut day = from;
    while day <= to {
        alerts.extend(snapshots::alerts_on(store, day).await?);
        day += chrono::Duration::days(1);
    }
    alerts.sort_by(|a, b| (a.date, &a.dedupe_key).cmp(&(b.date, &b.dedupe_key)));
    Ok(alerts)
}

fn social_sandbox(local: &Local) -> Option<&social_sandbox::SocialSandbox> {
    local.social.as_ref().and_then(|s| s.sandbox.as_ref())
}

async fn social_line(
    store: &backbone::local::LocalDb,
    artist: &backbone::validate::ArtistId,
    from: NaiveDate,
    to: NaiveDate,
) -> Result<SocialLine, RunError> {
    let graph = social_media_sync::records::graph(store, artist)
        .await?
        .unwrap_or_default();
    let links = graph
        .links
        .iter()
        .map(|l| {
            let sources: Vec<String> = l
                .provenance
                .iter()
                .map(|p| format!("{:?}", p.source).to_lowercase())
                .collect();
            let stable = l
                .stable_id
                .as_ref()
                .map(|id| format!(" = {id}"))
                .unwrap_or_default();
            format!(
                "{} {}{stable} ({:?}, {:.2}, {})",
                l.platform,
                l.account,
                l.status,
                l.confidence,
                sources.join("+")
            )
        })
        .collect();
    let quarantined = graph
        .quarantined
        .iter()
        .map(|q| format!("{}: {}", q.platform, q.reason))
        .collect();
    let series = backbone::series::load(store, artist, from, to)
        .await?
        .into_iter()
        .filter_map(|((p, m), points)| {
            let (first, last) = (points.first()?, points.last()?);
            Some((
                format!("{p}.{m}"),
                SeriesLine {
                    days: points.len(),
                    first: first.value,
                    last: last.value,
                    precision: last.precision,
                },
            ))
        })
        .collect();
    Ok(SocialLine {
        artist: artist.to_string(),
        links,
        quarantined,
        notes: graph.notes,
        series,
    })
}

fn artist_line(artist: String, history: &[Snapshot], from: NaiveDate, to: NaiveDate) -> ArtistLine {
    let last = history.iter().rev().find(|s| s.date <= to);
    let followers = snapshots::series(history, |s| s.followers.map(|v| v as f64));
    let popularity = snapshots::series(history, |s| s.popularity.map(f64::from));
    ArtistLine {
        artist,
        name: last.and_then(|s| s.name.clone()),
        snapshots: history.iter().filter(|s| s.date >= from).count(),
        followers: last.and_then(|s| s.followers),
        popularity: last.and_then(|s| s.popularity),
        follower_trends: trend::changes(&followers, to),
        popularity_trends: trend::changes(&popularity, to),
        releases: last.map_or(0, |s| s.releases.len()),
        unavailable: last
            .map(|s| {
                s.unavailable
                    .iter()
                    .map(|u| format!("{}: {}", u.metric, u.reason))
                    .collect()
            })
            .unwrap_or_default(),
        gone: last.is_some_and(|s| s.gone),
    }
}

fn relative(changes: &[Change], window: u32) -> String {
    match changes.iter().find(|c| c.window_days == window) {
        Some(Change {
            relative: Some(r), ..
        }) => format!("{:+.1}%", r * 100.0),
        Some(c) => format!("{:+.0}", c.absolute),
        None => "-".into(),
    }
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "Local run {} to {} ({} days), Spotify tier {}, watchlist {} ({} artists)",
            self.from,
            self.to,
            (self.to - self.from).num_days() + 1,
            self.tier,
            self.watchlist,
            self.artists.len()
        )?;
        writeln!(f)?;
        writeln!(
            f,
            "{:<28} {:>5} {:>11} {:>8} {:>8} {:>8} {:>5} {:>8}",
            "artist", "snaps", "followers", "1d", "7d", "28d", "pop", "releases"
        )?;
        let mut reasons = BTreeMap::new();
        for a in &self.artists {
            let mut name = a.name.clone().unwrap_or_else(|| a.artist.clone());
            if a.gone {
                name.push_str(" (gone)");
            }
            let name: String = name.chars().take(28).collect();
            writeln!(
                f,
                "{:<28} {:>5} {:>11} {:>8} {:>8} {:>8} {:>5} {:>8}",
                name,
                a.snapshots,
                a.followers.map_or("n/a".into(), |v| v.to_string()),
                relative(&a.follower_trends, 1),
                relative(&a.follower_trends, 7),
                relative(&a.follower_trends, 28),
                a.popularity.map_or("n/a".into(), |v| v.to_string()),
                a.releases
            )?;
            for reason in &a.unavailable {
                reasons.insert(reason.clone(), ());
            }
        }
        if !reasons.is_empty() {
            writeln!(f, "unavailable metrics:")?;
            for reason in reasons.keys() {
                writeln!(f, "  {reason}")?;
            }
        }
        writeln!(f)?;
        writeln!(f, "identity graph and series (social-media-sync):")?;
        for a in &self.social {
            writeln!(f, "  {}", a.artist)?;
            if a.links.is_empty() && a.quarantined.is_empty() {
                writeln!(f, "    no links anywhere")?;
            }
            for link in &a.links {
                writeln!(f, "    link        {link}")?;
            }
            for q in &a.quarantined {
                writeln!(f, "    quarantined {q}")?;
            }
            for note in &a.notes {
                writeln!(f, "    note        {note}")?;
            }
            for (name, s) in &a.series {
                let precision = match s.precision {
                    backbone::series::Precision::Exact => String::new(),
                    backbone::series::Precision::SignificantFigures { figures } => {
                        format!(" ({figures} significant figures)")
                    }
                };
                writeln!(
                    f,
                    "    series      {name:<22} {:>3} days {:>10} -> {:>10}{precision}",
                    s.days, s.first, s.last
                )?;
            }
        }
        let calls: Vec<String> = self
            .social_calls
            .iter()
            .map(|(u, n)| format!("{u} {n}"))
            .collect();
        writeln!(f, "social platform requests: {}", calls.join(", "))?;
        if !self.social_violations.is_empty() {
            writeln!(
                f,
                "social rate-limit violations: {:?}",
                self.social_violations
            )?;
        }
        writeln!(f)?;
        writeln!(f, "alerts ({}):", self.alerts.len())?;
        for alert in &self.alerts {
            writeln!(
                f,
                "  {} {:<18} {}",
                alert.date,
                alert.kind.as_str(),
                alert.summary
            )?;
            writeln!(f, "      evidence: {}", alert.evidence)?;
        }
        writeln!(f)?;
        let c = &self.catalog;
        writeln!(
            f,
            "catalog changes: {} CatalogChanged events; {} new albums, {} new tracks, playlist items +{} -{}",
            c.events, c.new_albums, c.new_tracks, c.items_added, c.items_removed
        )?;
        for (function, letters) in &self.dead_letters {
            if !letters.is_empty() {
                writeln!(f, "dead letters of {function}: {}", letters.len())?;
                for letter in letters {
                    writeln!(f, "  {}", letter.reason)?;
                }
            }
        }
        let total: u64 = self
            .spotify_calls
            .iter()
            .filter(|(route, _)| route.contains(" /v1/"))
            .map(|(_, n)| n)
            .sum();
        let mut routes = String::new();
        for (route, n) in &self.spotify_calls {
            let _ = write!(routes, "\n  {n:>6} {route}");
        }
        writeln!(f, "Spotify API calls: {total}{routes}")?;
        let records: u64 = self.audit.iter().map(|r| r.records).sum();
        let broken: Vec<&str> = self
            .audit
            .iter()
            .filter(|r| !r.is_intact())
            .map(|r| r.stream.as_str())
            .collect();
        if broken.is_empty() {
            writeln!(
                f,
                "audit: {} streams, {records} records, every chain intact",
                self.audit.len()
            )
        } else {
            writeln!(f, "audit: BROKEN chains in {}", broken.join(", "))
        }
    }
}
