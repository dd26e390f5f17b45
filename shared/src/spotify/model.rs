//! Domain types of the Spotify catalog and library, as the tasks see them.
//!
//! They are shaped by what the tasks use, not by the wire: the adapter converts Spotify's JSON
//! into them. A field Spotify may leave out (artist `followers`, `genres`, `popularity` and track
//! `popularity` for Development Mode apps since February 2026) is an `Option`: `None` means
//! "Spotify did not say", never zero, so trends are not polluted by fake drops to 0.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::validate::{AlbumId, ArtistId, PlaylistId, TrackId, UserId};

/// A cover or portrait image; Spotify omits the size of user-uploaded images.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Image {
    /// Where the image is served.
    pub url: String,
    /// Width in pixels, when known.
    pub width: Option<u32>,
    /// Height in pixels, when known.
    pub height: Option<u32>,
}

/// An artist as named on an album or track: id and name only.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ArtistRef {
    /// The artist's id.
    pub id: ArtistId,
    /// The artist's name.
    pub name: String,
}

/// A full artist object.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Artist {
    /// The artist's id.
    pub id: ArtistId,
    /// The artist's name.
    pub name: String,
    /// Genres; `None` when the tier does not receive them (not the same as an empty list).
    pub genres: Option<Vec<String>>,
    /// Popularity 0 to 100; `None` when the tier does not receive it.
    pub popularity: Option<u8>,
    /// Follower count; `None` when the tier does not receive it.
    pub followers: Option<u64>,
    /// Portraits, largest first.
    pub images: Vec<Image>,
}

/// An album or single, in full or as embedded in a track or page.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Album {
    /// The album's id.
    pub id: AlbumId,
    /// The album's name.
    pub name: String,
    /// `album`, `single` or `compilation`.
    pub album_type: Option<String>,
    /// In an artist's album list: how the artist relates to it (`album`, `appears_on`...).
    pub album_group: Option<String>,
    /// Release date as Spotify writes it (`1983`, `1983-05`, `1983-05-17`).
    pub release_date: Option<String>,
    /// Precision of `release_date`: `year`, `month` or `day`.
    pub release_date_precision: Option<String>,
    /// Number of tracks, when given.
    pub total_tracks: Option<u32>,
    /// Credited artists.
    pub artists: Vec<ArtistRef>,
    /// Cover images, largest first.
    pub images: Vec<Image>,
    /// Popularity 0 to 100, when given.
    pub popularity: Option<u8>,
    /// Record label, when given.
    pub label: Option<String>,
    /// UPC barcode, when given.
    pub upc: Option<String>,
    /// The first page of tracks, when the full album object carries it.
    pub tracks: Option<Page<Track>>,
}

/// A track, in full or simplified (as listed in an album, without `album`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Track {
    /// The track's id.
    pub id: TrackId,
    /// The track's title.
    pub name: String,
    /// Credited artists.
    pub artists: Vec<ArtistRef>,
    /// The album it belongs to; absent in an album's own track list.
    pub album: Option<Box<Album>>,
    /// Duration in milliseconds.
    pub duration_ms: u64,
    /// Whether it has explicit lyrics.
    pub explicit: bool,
    /// Popularity 0 to 100; `None` when the tier does not receive it.
    pub popularity: Option<u8>,
    /// ISRC, when given.
    pub isrc: Option<String>,
    /// Position on its disc.
    pub track_number: Option<u32>,
    /// Disc number.
    pub disc_number: Option<u32>,
    /// The markets (ISO 3166-1 alpha-2 codes) it can be played in, when Spotify lists them:
    /// `available_markets`, deprecated in the description yet still sent when no `market` is
    /// asked for. `None` when absent, which is not the same as an empty list (nowhere).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub available_markets: Option<Vec<String>>,
    /// Whether it can be played in the market a request named (`is_playable`, sent with track
    /// relinking); `None` when the request named no market.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub playable: Option<bool>,
    /// Why it cannot be played, when Spotify says (`restrictions.reason`: `market`, `product`,
    /// `explicit`, or a reason added later).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub restriction: Option<String>,
}

/// A Spotify user as owner or author of a playlist change.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UserRef {
    /// The user's id.
    pub id: UserId,
    /// Display name, when given.
    pub display_name: Option<String>,
}

/// The current user's profile (only what tasks use; no email or birthdate).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct User {
    /// The user's id.
    pub id: UserId,
    /// Display name, when given.
    pub display_name: Option<String>,
    /// Country code, with the `user-read-private` scope.
    pub country: Option<String>,
    /// Subscription level (`premium`, `free`), with the `user-read-private` scope.
    pub product: Option<String>,
    /// Follower count, when given.
    pub followers: Option<u64>,
}

/// An opaque playlist version, passed back on edits so Spotify applies them to that version.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct SnapshotId(pub String);

/// A playlist's details; its items are read page by page with `playlist_items`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Playlist {
    /// The playlist's id.
    pub id: PlaylistId,
    /// The playlist's name.
    pub name: String,
    /// Description, when set.
    pub description: Option<String>,
    /// Who owns it.
    pub owner: UserRef,
    /// Public, private, or unknown.
    pub public: Option<bool>,
    /// Whether others may edit it.
    pub collaborative: bool,
    /// The version the details describe.
    pub snapshot_id: SnapshotId,
    /// Follower count, when given.
    pub followers: Option<u64>,
    /// Number of items, when given.
    pub total_items: Option<u32>,
    /// The first page of items, when embedded (from `items` or the older `tracks`).
    pub items: Option<Page<PlaylistItem>>,
}

/// What a playlist entry holds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Playable {
    /// A catalog track.
    Track(Track),
    /// A podcast episode: id and name only (tasks skip episodes).
    Episode {
        /// The episode's id.
        id: String,
        /// The episode's name.
        name: String,
    },
    /// A local file of the owner's: not in the catalog, no id.
    Local {
        /// Its name.
        name: String,
        /// Its `spotify:local:` URI.
        uri: Option<String>,
    },
}

/// One entry of a playlist.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PlaylistItem {
    /// When it was added (absent on very old playlists).
    pub added_at: Option<DateTime<Utc>>,
    /// Who added it, when known.
    pub added_by: Option<UserId>,
    /// What it is; `None` when Spotify no longer serves the object.
    pub item: Option<Playable>,
}

/// One page of an offset-paged list.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Page<T> {
    /// The items of this page.
    pub items: Vec<T>,
    /// The offset of the first item.
    pub offset: u32,
    /// The page size asked for.
    pub limit: u32,
    /// The number of items in the whole list, when given.
    pub total: Option<u32>,
    /// Whether a further page exists.
    pub has_next: bool,
}

impl<T> Page<T> {
    /// The request for the page after this one, if any.
    pub fn next_request(&self) -> Option<PageRequest> {
        self.has_next.then(|| PageRequest {
            offset: self.offset + self.items.len() as u32,
            limit: self.limit,
        })
    }
}

/// Which page of an offset-paged list to read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct PageRequest {
    /// Offset of the first item.
    pub offset: u32,
    /// Page size; the adapter caps it to the endpoint's and tier's limit.
    pub limit: u32,
}

impl PageRequest {
    /// The first page of `limit` items.
    pub fn first(limit: u32) -> Self {
        Self { offset: 0, limit }
    }
}

/// A cursor position in a time-ordered list (recently played), in Unix milliseconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Cursor {
    /// Items played after this instant.
    After(i64),
    /// Items played before this instant.
    Before(i64),
}

/// One page of a cursor-paged list.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CursorPage<T> {
    /// The items, newest first.
    pub items: Vec<T>,
    /// The cursor of the next (older) page, if any.
    pub next: Option<Cursor>,
    /// The cursor that returns only items newer than these, if given: store it to resume.
    pub after: Option<i64>,
}

/// A track the user played.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PlayHistory {
    /// The track.
    pub track: Track,
    /// When it was played.
    pub played_at: DateTime<Utc>,
}

/// A playlist as listed in the user's playlists or a search result.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PlaylistSummary {
    /// The playlist's id.
    pub id: PlaylistId,
    /// The playlist's name.
    pub name: String,
    /// Who owns it.
    pub owner: UserRef,
    /// Whether others may edit it.
    pub collaborative: bool,
    /// Its current version.
    pub snapshot_id: SnapshotId,
    /// Number of items, when given.
    pub total_items: Option<u32>,
}

/// The object types a search can ask for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SearchKind {
    /// Artists.
    Artist,
    /// Albums.
    Album,
    /// Tracks.
    Track,
}

impl SearchKind {
    /// The word the search endpoint takes in `type`.
    pub fn as_str(&self) -> &'static str {
        match self {
            SearchKind::Artist => "artist",
            SearchKind::Album => "album",
            SearchKind::Track => "track",
        }
    }
}

/// The result of a search: one page per kind asked for.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SearchResults {
    /// Matching artists, if asked for.
    pub artists: Option<Page<Artist>>,
    /// Matching albums, if asked for.
    pub albums: Option<Page<Album>>,
    /// Matching tracks, if asked for.
    pub tracks: Option<Page<Track>>,
}

/// The app's Spotify quota tier, which decides the endpoints and fields available.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Tier {
    /// Development Mode: no several-ids endpoints, no popularity/followers/genres, limit <= 10.
    Development,
    /// Extended quota: batched endpoints and full objects.
    Extended,
}

impl Tier {
    /// `development` or `extended`, as configured in `SPOTIFY_API_TIER`.
    pub fn as_str(&self) -> &'static str {
        match self {
            Tier::Development => "development",
            Tier::Extended => "extended",
        }
    }
}

impl std::str::FromStr for Tier {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.to_ascii_lowercase().as_str() {
            "development" => Ok(Tier::Development),
            "extended" => Ok(Tier::Extended),
            other => Err(format!("expected development or extended, got {other:?}")),
        }
    }
}
