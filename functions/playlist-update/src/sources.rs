//! Gathering candidates: every source of the rules, read from Spotify (through the port) or
//! from the store (the catalog data-sync keeps, the features track-analysis measured).
//!
//! A source that cannot be read (a deleted or unreadable playlist, an artist Spotify no longer
//! knows) is a reported skip, not a failure of the run; a source that yields nothing is
//! reported as empty. Lists are read page by page up to the source's limit.

use std::collections::HashMap;

use backbone::error::PortError;
use backbone::ports::store::query_all;
use backbone::ports::{ItemKey, Query, Store};
use backbone::spotify::model::{PageRequest, Playable, SearchKind, Track};
use backbone::spotify::{SpotifyCatalog, SpotifyError, SpotifyPlaylists};
use backbone::validate::{AlbumId, ArtistId, PlaylistId, TrackId};
use backbone::watchlist::{self, WatchlistError};
use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Serialize};
use tracing::info;

use crate::model::{Availability, Camelot, Candidate, TrackFeatures, release_date};
use crate::rules::{SourceKind, SourceSpec};

/// Tracks a source yields by default.
pub const DEFAULT_SOURCE_LIMIT: u32 = 500;
/// Tracks a search yields by default.
pub const DEFAULT_SEARCH_LIMIT: u32 = 50;
/// Albums read per artist.
const MAX_ALBUMS_PER_ARTIST: u32 = 50;
/// Candidates whose features are looked up in the store, at most.
pub const MAX_FEATURE_READS: usize = 5_000;
/// Playlist items read, at most (Spotify's playlist limit).
pub const MAX_PLAYLIST_ITEMS: u32 = 10_000;

/// Why gathering failed as a whole (a single source's failure is a [`Skip`]).
#[derive(Debug, thiserror::Error)]
pub enum SourceError {
    /// Spotify failed in a way that is not about one source (rate limit, outage, tokens).
    #[error("reading {what}")]
    Spotify {
        /// What was being read.
        what: String,
        /// The error.
        #[source]
        source: SpotifyError,
    },
    /// A watchlist could not be read.
    #[error(transparent)]
    Watchlist(#[from] WatchlistError),
    /// The store failed.
    #[error(transparent)]
    Port(#[from] PortError),
}

/// A source, or one object of it, that was skipped, and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Skip {
    /// The source's label.
    pub source: String,
    /// What was skipped and why.
    pub reason: String,
}

/// How many tracks each source gave.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SourceCount {
    /// The source's label.
    pub source: String,
    /// Tracks it offered.
    pub tracks: usize,
}

/// What gathering found.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Gathered {
    /// Every track offered, once (the sources that offered it listed on it).
    pub candidates: Vec<Candidate>,
    /// What was skipped.
    pub skips: Vec<Skip>,
    /// Tracks per source.
    pub per_source: Vec<SourceCount>,
}

/// Whether a Spotify error is about the one object (skip it) rather than the whole run.
fn is_object_error(err: &SpotifyError) -> bool {
    matches!(
        err,
        SpotifyError::NotFound { .. } | SpotifyError::Forbidden { .. }
    )
}

fn spotify(what: impl Into<String>) -> impl FnOnce(SpotifyError) -> SourceError {
    let what = what.into();
    move |source| SourceError::Spotify { what, source }
}

/// A candidate from a Spotify track, with the album's date where the track lacks one.
pub fn candidate(track: &Track, album_date: Option<NaiveDate>, label: &str) -> Candidate {
    Candidate {
        id: track.id.as_str().to_owned(),
        name: track.name.clone(),
        artists: track
            .artists
            .iter()
            .map(|a| a.id.as_str().to_owned())
            .collect(),
        artist_names: track.artists.iter().map(|a| a.name.clone()).collect(),
        isrc: track.isrc.clone(),
        duration_ms: track.duration_ms,
        explicit: track.explicit,
        release_date: track
            .album
            .as_ref()
            .and_then(|a| a.release_date.as_deref())
            .and_then(release_date)
            .or(album_date),
        added_at: None,
        sources: vec![label.to_owned()],
        features: TrackFeatures::default(),
        availability: Availability::of(track),
    }
}

/// Collects candidates, merging a track offered by several sources.
#[derive(Default)]
struct Collector {
    out: Vec<Candidate>,
    index: HashMap<String, usize>,
}

impl Collector {
    fn push(&mut self, c: Candidate) {
        match self.index.get(&c.id) {
            Some(&i) => {
                let existing = &mut self.out[i];
                for s in c.sources {
                    if !existing.sources.contains(&s) {
                        existing.sources.push(s);
                    }
                }
                existing.added_at = existing.added_at.or(c.added_at);
                existing.release_date = existing.release_date.or(c.release_date);
                existing.isrc = existing.isrc.clone().or(c.isrc);
            }
            None => {
                self.index.insert(c.id.clone(), self.out.len());
                self.out.push(c);
            }
        }
    }
}

/// Reads every source of the rules.
pub async fn gather<A: SpotifyCatalog + SpotifyPlaylists + ?Sized>(
    api: &A,
    store: &dyn Store,
    sources: &[SourceSpec],
) -> Result<Gathered, SourceError> {
    let mut collector = Collector::default();
    let mut skips = Vec::new();
    let mut per_source = Vec::new();
    for spec in sources {
        let label = spec.label();
        let Some(kind) = spec.kind() else {
            continue;
        };
        let before = collector.out.len();
        let mut offered = 0usize;
        let limit = spec.limit.unwrap_or(match kind {
            SourceKind::Search(_) => DEFAULT_SEARCH_LIMIT,
            _ => DEFAULT_SOURCE_LIMIT,
        }) as usize;
        let mut found: Vec<Candidate> = Vec::new();
        match &kind {
            SourceKind::WatchlistReleases(name) => {
                let list = watchlist::load(store, name).await?;
                for artist in &list.artists {
                    if found.len() >= limit {
                        break;
                    }
                    match artist_tracks(api, artist, &label, limit - found.len()).await {
                        Ok(tracks) => found.extend(tracks),
                        Err(SourceError::Spotify { source, .. }) if is_object_error(&source) => {
                            skips.push(Skip {
                                source: label.clone(),
                                reason: format!("artist {artist}: {source}; skipped"),
                            });
                        }
                        Err(err) => return Err(err),
                    }
                }
            }
            SourceKind::Catalog(name) => {
                let list = watchlist::load(store, name).await?;
                for artist in &list.artists {
                    if found.len() >= limit {
                        break;
                    }
                    found.extend(catalog_tracks(store, artist, &label, limit - found.len()).await?);
                }
            }
            SourceKind::ArtistAlbums(artist) => {
                match artist_tracks(api, artist, &label, limit).await {
                    Ok(tracks) => found.extend(tracks),
                    Err(SourceError::Spotify { source, .. }) if is_object_error(&source) => {
                        skips.push(Skip {
                            source: label.clone(),
                            reason: format!("artist {artist}: {source}; skipped"),
                        });
                    }
                    Err(err) => return Err(err),
                }
            }
            SourceKind::Playlist(id) => match playlist_tracks(api, id, &label, limit).await {
                Ok((tracks, others)) => {
                    found.extend(tracks);
                    if others > 0 {
                        skips.push(Skip {
                            source: label.clone(),
                            reason: format!(
                                "{others} item(s) are episodes, local files or no longer \
                                 available: skipped"
                            ),
                        });
                    }
                }
                Err(SourceError::Spotify { source, .. }) if is_object_error(&source) => {
                    skips.push(Skip {
                        source: label.clone(),
                        reason: format!("playlist {id}: {source}; skipped"),
                    });
                }
                Err(err) => return Err(err),
            },
            SourceKind::Search(query) => {
                let mut next = Some(PageRequest::first(10));
                while let Some(page) = next {
                    if found.len() >= limit {
                        break;
                    }
                    let results = api
                        .search(query, &[SearchKind::Track], page)
                        .await
                        .map_err(spotify(format!("search {query:?}")))?;
                    let Some(tracks) = results.tracks else {
                        break;
                    };
                    next = tracks.next_request();
                    if tracks.items.is_empty() {
                        break;
                    }
                    found.extend(tracks.items.iter().map(|t| candidate(t, None, &label)));
                }
            }
            SourceKind::Tracks(ids) => {
                let (tracks, missing) = tracks_by_id(api, ids, &label).await?;
                found.extend(tracks);
                for id in missing {
                    skips.push(Skip {
                        source: label.clone(),
                        reason: format!("track {id} is not available: skipped"),
                    });
                }
            }
        }
        found.truncate(limit);
        for c in found {
            offered += 1;
            collector.push(c);
        }
        if offered == 0 {
            skips.push(Skip {
                source: label.clone(),
                reason: "the source is empty".into(),
            });
        }
        info!(source = %label, offered, new = collector.out.len() - before, "source read");
        per_source.push(SourceCount {
            source: label,
            tracks: offered,
        });
    }
    Ok(Gathered {
        candidates: collector.out,
        skips,
        per_source,
    })
}

/// Tracks of the given ids, and the ids Spotify does not serve.
pub async fn tracks_by_id<A: SpotifyCatalog + ?Sized>(
    api: &A,
    ids: &[TrackId],
    label: &str,
) -> Result<(Vec<Candidate>, Vec<TrackId>), SourceError> {
    let mut found = Vec::new();
    let mut missing = Vec::new();
    for chunk in ids.chunks(50) {
        let tracks = api.tracks(chunk).await.map_err(spotify("tracks by id"))?;
        for (id, track) in chunk.iter().zip(tracks) {
            match track {
                Some(t) => found.push(candidate(&t, None, label)),
                None => missing.push(id.clone()),
            }
        }
    }
    Ok((found, missing))
}

/// Every track of an artist's albums (newest first), up to `limit`.
async fn artist_tracks<A: SpotifyCatalog + ?Sized>(
    api: &A,
    artist: &ArtistId,
    label: &str,
    limit: usize,
) -> Result<Vec<Candidate>, SourceError> {
    let mut albums = Vec::new();
    let mut next = Some(PageRequest::first(10));
    while let Some(page) = next {
        if albums.len() as u32 >= MAX_ALBUMS_PER_ARTIST {
            break;
        }
        let got = api
            .artist_albums(artist, page)
            .await
            .map_err(spotify(format!("albums of artist {artist}")))?;
        next = got.next_request();
        if got.items.is_empty() {
            break;
        }
        albums.extend(got.items);
    }
    let mut out = Vec::new();
    for album in albums {
        if out.len() >= limit {
            break;
        }
        let date = album.release_date.as_deref().and_then(release_date);
        let mut next = Some(PageRequest::first(50));
        while let Some(page) = next {
            let got = api
                .album_tracks(&album.id, page)
                .await
                .map_err(spotify(format!("tracks of album {}", album.id)))?;
            next = got.next_request();
            if got.items.is_empty() {
                break;
            }
            out.extend(got.items.iter().map(|t| candidate(t, date, label)));
        }
    }
    out.truncate(limit);
    Ok(out)
}

/// A playlist's tracks in order, and how many items were not tracks.
pub async fn playlist_tracks<A: SpotifyPlaylists + ?Sized>(
    api: &A,
    id: &PlaylistId,
    label: &str,
    limit: usize,
) -> Result<(Vec<Candidate>, usize), SourceError> {
    let items = playlist_items(api, id, limit).await?;
    let mut out = Vec::new();
    let mut others = 0;
    for (added_at, item) in items {
        match item {
            Some(t) => {
                let mut c = candidate(&t, None, label);
                c.added_at = added_at;
                out.push(c);
            }
            None => others += 1,
        }
    }
    Ok((out, others))
}

/// Every item of a playlist, in order: the track, or `None` for an episode, a local file or
/// an item Spotify no longer serves.
pub async fn playlist_items<A: SpotifyPlaylists + ?Sized>(
    api: &A,
    id: &PlaylistId,
    limit: usize,
) -> Result<Vec<(Option<DateTime<Utc>>, Option<Track>)>, SourceError> {
    let mut out = Vec::new();
    let mut next = Some(PageRequest::first(50));
    while let Some(page) = next {
        if out.len() >= limit.min(MAX_PLAYLIST_ITEMS as usize) {
            break;
        }
        let got = api
            .playlist_items(id, page)
            .await
            .map_err(spotify(format!("items of playlist {id}")))?;
        next = got.next_request();
        if got.items.is_empty() {
            break;
        }
        for item in got.items {
            let track = match item.item {
                Some(Playable::Track(t)) => Some(t),
                _ => None,
            };
            out.push((item.added_at, track));
        }
    }
    Ok(out)
}

/// A stored album of data-sync (`artist#<id>` / `album#<id>`), as far as we read it.
#[derive(Debug, Deserialize)]
struct StoredAlbum {
    id: String,
    #[serde(default)]
    release_date: Option<String>,
}

/// A stored album track of data-sync (`album#<id>` / `tracks`).
#[derive(Debug, Deserialize)]
struct StoredTrack {
    id: String,
    name: String,
    duration_ms: u64,
    #[serde(default)]
    explicit: bool,
    #[serde(default)]
    isrc: Option<String>,
}

#[derive(Debug, Deserialize)]
struct StoredTracks {
    tracks: Vec<StoredTrack>,
}

/// An artist's tracks from the synced catalog in the store.
async fn catalog_tracks(
    store: &dyn Store,
    artist: &ArtistId,
    label: &str,
    limit: usize,
) -> Result<Vec<Candidate>, SourceError> {
    let albums = query_all(
        store,
        Query::partition(format!("artist#{artist}")).prefix("album#"),
        MAX_ALBUMS_PER_ARTIST as usize,
    )
    .await?;
    let mut out = Vec::new();
    for item in albums {
        let Ok(album) = serde_json::from_value::<StoredAlbum>(item.data) else {
            continue;
        };
        let Ok(album_id) = AlbumId::parse("album", &album.id) else {
            continue;
        };
        let Some(tracks) = store
            .get(&ItemKey::new(format!("album#{album_id}"), "tracks"))
            .await?
        else {
            continue;
        };
        let Ok(tracks) = serde_json::from_value::<StoredTracks>(tracks.data) else {
            continue;
        };
        let date = album.release_date.as_deref().and_then(release_date);
        for t in tracks.tracks {
            out.push(Candidate {
                id: t.id,
                name: t.name,
                artists: vec![artist.as_str().to_owned()],
                artist_names: vec![],
                isrc: t.isrc,
                duration_ms: t.duration_ms,
                explicit: t.explicit,
                release_date: date,
                added_at: None,
                sources: vec![label.to_owned()],
                features: TrackFeatures::default(),
                availability: Availability::default(),
            });
        }
        if out.len() >= limit {
            break;
        }
    }
    out.truncate(limit);
    Ok(out)
}

/// The store keys track-analysis writes a track's features under, by ISRC first.
fn feature_keys(c: &Candidate) -> Vec<ItemKey> {
    let mut keys = Vec::new();
    if let Some(isrc) = &c.isrc {
        keys.push(ItemKey::new(
            format!("track#isrc:{}", isrc.to_ascii_uppercase()),
            "analysis#v1",
        ));
    }
    keys.push(ItemKey::new(
        format!("track#spotify:{}", c.id),
        "analysis#v1",
    ));
    keys
}

/// Features from a stored track-analysis document.
pub fn features_of(doc: &serde_json::Value) -> TrackFeatures {
    let f = &doc["features"];
    TrackFeatures {
        bpm: f["tempo"]["bpm"]
            .as_f64()
            .filter(|b| *b > 0.0 && b.is_finite()),
        camelot: f["key"]["camelot"].as_str().and_then(Camelot::parse),
        energy: f["derived"]["energy"]
            .as_f64()
            .filter(|e| (0.0..=1.0).contains(e)),
    }
}

/// Fills in the features track-analysis stored, for up to [`MAX_FEATURE_READS`] candidates.
/// Returns how many had features.
pub async fn attach_features(
    store: &dyn Store,
    candidates: &mut [Candidate],
) -> Result<usize, PortError> {
    let mut with = 0;
    for c in candidates.iter_mut().take(MAX_FEATURE_READS) {
        for key in feature_keys(c) {
            if let Some(item) = store.get(&key).await? {
                c.features = features_of(&item.data);
                with += 1;
                break;
            }
        }
    }
    Ok(with)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn features_are_read_from_the_track_analysis_document() {
        let doc = serde_json::json!({"features": {
            "tempo": {"bpm": 124.2}, "key": {"camelot": "8A"}, "derived": {"energy": 0.7}}});
        let f = features_of(&doc);
        assert_eq!(f.bpm, Some(124.2));
        assert_eq!(f.camelot, Camelot::parse("8A"));
        assert_eq!(f.energy, Some(0.7));
        let partial = features_of(&serde_json::json!({"features": {"tempo": null}}));
        assert_eq!(partial, TrackFeatures::default());
    }
}
