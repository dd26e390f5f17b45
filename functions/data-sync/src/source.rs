//! What data-sync reads from Spotify, in the task's terms: every page of an artist's albums,
//! an album's tracks, a playlist's items, and listening history after a cursor. Written over the
//! Spotify ports, so tiers, paging limits, rate limits, retries and tokens stay the adapter's.

use backbone::spotify::model::{Cursor, Page, PageRequest, Playable};
use backbone::spotify::{SpotifyCatalog, SpotifyError, SpotifyLibrary, SpotifyPlaylists};
use backbone::validate::{AlbumId, ArtistId, PlaylistId, TrackId, UserId};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// An album as listed under an artist.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AlbumSummary {
    /// The album.
    pub id: AlbumId,
    /// Its name.
    pub name: String,
    /// `album`, `single`, `compilation` or `appears_on`.
    pub group: String,
    /// As Spotify gives it (`2026`, `2026-11`, `2026-11-20`).
    pub release_date: String,
    /// Number of tracks.
    pub total_tracks: u32,
}

/// A track of an album.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TrackSummary {
    /// The track.
    pub id: TrackId,
    /// Its name.
    pub name: String,
    /// Disc number.
    pub disc_number: u32,
    /// Position on the disc.
    pub track_number: u32,
    /// Length in milliseconds.
    pub duration_ms: u64,
    /// Marked explicit.
    pub explicit: bool,
    /// The ISRC, when the API returns it.
    pub isrc: Option<String>,
}

/// A playlist's header.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PlaylistMeta {
    /// Its name.
    pub name: String,
    /// Changes whenever the items change.
    pub snapshot_id: String,
    /// The owner's user id.
    pub owner: String,
}

/// One item of a playlist.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PlaylistEntry {
    /// The track (episodes and local files are skipped by the source).
    pub track: TrackId,
    /// When it was added.
    pub added_at: Option<DateTime<Utc>>,
}

/// One play of the user's history.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Play {
    /// The track.
    pub track: TrackId,
    /// When it was played.
    pub played_at: DateTime<Utc>,
}

/// A page of recently played tracks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlayPage {
    /// Plays after the cursor, oldest first.
    pub plays: Vec<Play>,
    /// The cursor for the next call (milliseconds), if more may follow.
    pub next_after: Option<i64>,
}

/// Album tracks read per page (the endpoint's maximum).
const TRACKS_PAGE: u32 = 50;
/// Albums read per page of an artist's list: the most Development Mode accepts.
const ALBUMS_PAGE: u32 = 10;
/// Playlist items read per page (the endpoint's maximum).
const ITEMS_PAGE: u32 = 50;
/// Pages read of one list at most, so one object cannot use the whole call budget.
const MAX_PAGES: u32 = 200;
/// Plays read per history call (the endpoint's maximum).
pub const PLAYS_PAGE: u32 = 50;

/// Reads every page of an offset-paged list, from `first`, up to [`MAX_PAGES`].
async fn all_pages<T, F, Fut>(what: &str, mut read: F) -> Result<Vec<T>, SpotifyError>
where
    F: FnMut(PageRequest) -> Fut,
    Fut: std::future::Future<Output = Result<Page<T>, SpotifyError>>,
{
    let mut out = Vec::new();
    let mut next = Some(PageRequest::first(0));
    let mut pages = 0;
    while let Some(request) = next {
        if pages >= MAX_PAGES {
            tracing::warn!(what, pages, "list truncated at the page cap");
            break;
        }
        let page = read(request).await?;
        next = page.next_request();
        out.extend(page.items);
        pages += 1;
    }
    Ok(out)
}

/// Every album of `artist`, in every group.
pub async fn artist_albums<A: SpotifyCatalog + ?Sized>(
    api: &A,
    artist: &ArtistId,
) -> Result<Vec<AlbumSummary>, SpotifyError> {
    let albums = all_pages("artist albums", |page| {
        api.artist_albums(
            artist,
            PageRequest {
                limit: ALBUMS_PAGE,
                ..page
            },
        )
    })
    .await?;
    Ok(albums
        .into_iter()
        .map(|album| AlbumSummary {
            group: album
                .album_group
                .or(album.album_type)
                .unwrap_or_else(|| "album".into()),
            release_date: album.release_date.unwrap_or_default(),
            total_tracks: album.total_tracks.unwrap_or_default(),
            id: album.id,
            name: album.name,
        })
        .collect())
}

/// Every track of `album`.
pub async fn album_tracks<A: SpotifyCatalog + ?Sized>(
    api: &A,
    album: &AlbumId,
) -> Result<Vec<TrackSummary>, SpotifyError> {
    let tracks = all_pages("album tracks", |page| {
        api.album_tracks(
            album,
            PageRequest {
                limit: TRACKS_PAGE,
                ..page
            },
        )
    })
    .await?;
    Ok(tracks
        .into_iter()
        .map(|track| TrackSummary {
            disc_number: track.disc_number.unwrap_or(1),
            track_number: track.track_number.unwrap_or_default(),
            duration_ms: track.duration_ms,
            explicit: track.explicit,
            isrc: track.isrc,
            id: track.id,
            name: track.name,
        })
        .collect())
}

/// The playlist's header; `None` if it does not exist or this app may not read it.
pub async fn playlist<A: SpotifyPlaylists + ?Sized>(
    api: &A,
    playlist: &PlaylistId,
) -> Result<Option<PlaylistMeta>, SpotifyError> {
    match api.playlist(playlist).await {
        Ok(p) => Ok(Some(PlaylistMeta {
            name: p.name,
            snapshot_id: p.snapshot_id.0,
            owner: p.owner.id.to_string(),
        })),
        Err(SpotifyError::NotFound { .. } | SpotifyError::Forbidden { .. }) => Ok(None),
        Err(err) => Err(err),
    }
}

/// Every catalog track of the playlist, in order (episodes and local files skipped).
pub async fn playlist_items<A: SpotifyPlaylists + ?Sized>(
    api: &A,
    playlist: &PlaylistId,
) -> Result<Vec<PlaylistEntry>, SpotifyError> {
    let items = all_pages("playlist items", |page| {
        api.playlist_items(
            playlist,
            PageRequest {
                limit: ITEMS_PAGE,
                ..page
            },
        )
    })
    .await?;
    Ok(items
        .into_iter()
        .filter_map(|entry| match entry.item {
            Some(Playable::Track(track)) => Some(PlaylistEntry {
                track: track.id,
                added_at: entry.added_at,
            }),
            _ => None,
        })
        .collect())
}

/// The user the stored authorisation belongs to.
pub async fn authorised_user<A: SpotifyLibrary + ?Sized>(api: &A) -> Result<UserId, SpotifyError> {
    Ok(api.current_user().await?.id)
}

/// Plays after `after` (milliseconds since the epoch), oldest first, at most [`PLAYS_PAGE`].
pub async fn recently_played<A: SpotifyLibrary + ?Sized>(
    api: &A,
    after: Option<i64>,
) -> Result<PlayPage, SpotifyError> {
    let page = api
        .recently_played(PLAYS_PAGE, after.map(Cursor::After))
        .await?;
    let full = page.items.len() as u32 >= PLAYS_PAGE;
    let mut plays: Vec<Play> = page
        .items
        .into_iter()
        .map(|p| Play {
            track: p.track.id,
            played_at: p.played_at,
        })
        .collect();
    plays.sort_by_key(|p| p.played_at);
    let next_after = if full {
        plays.last().map(|p| p.played_at.timestamp_millis())
    } else {
        None
    };
    Ok(PlayPage { plays, next_after })
}
