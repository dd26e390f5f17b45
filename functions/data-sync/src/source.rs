//! `CatalogSource`: what data-sync reads from Spotify, kept narrow. The Spotify client
//! implements it (tiers, paging limits, rate limits, retries, tokens).

use async_trait::async_trait;
use backbone::error::Classify;
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

/// Catalog reads.
#[async_trait]
pub trait CatalogSource: Send + Sync {
    /// The source's error; its class decides retry, delay or dead-letter.
    type Error: std::error::Error + Classify + Send + Sync + 'static;

    /// Every album of `artist`, in every group.
    async fn artist_albums(&self, artist: &ArtistId) -> Result<Vec<AlbumSummary>, Self::Error>;

    /// Every track of `album`.
    async fn album_tracks(&self, album: &AlbumId) -> Result<Vec<TrackSummary>, Self::Error>;

    /// The playlist's header; `None` if it does not exist or cannot be read.
    async fn playlist(&self, playlist: &PlaylistId) -> Result<Option<PlaylistMeta>, Self::Error>;

    /// Every item of the playlist, in order.
    async fn playlist_items(
        &self,
        playlist: &PlaylistId,
    ) -> Result<Vec<PlaylistEntry>, Self::Error>;

    /// Plays of `user` after `after` (milliseconds since the epoch), at most 50.
    async fn recently_played(
        &self,
        user: &UserId,
        after: Option<i64>,
    ) -> Result<PlayPage, Self::Error>;
}
