//! Spotify's JSON shapes and their conversion into the domain types.
//!
//! Lenient on purpose: unknown fields are ignored, fields Spotify stopped sending are optional,
//! and both the February 2026 playlist shape (`items` / `item`) and the older one (`tracks` /
//! `track`) are read, preferring the new one when a response carries both.

use chrono::{DateTime, Utc};
use serde::Deserialize;

use super::model::{
    Album, Artist, ArtistRef, Cursor, CursorPage, Image, Page, PlayHistory, Playable, Playlist,
    PlaylistItem, PlaylistSummary, SearchResults, SnapshotId, Track, User, UserRef,
};
use crate::validate::UserId;

/// A response that parsed as JSON but cannot become a domain object.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub(crate) struct WireError(pub String);

type R<T> = Result<T, WireError>;

fn id<T: std::str::FromStr<Err = String>>(what: &str, raw: Option<String>) -> R<T> {
    let raw = raw.ok_or_else(|| WireError(format!("{what} without id")))?;
    raw.parse()
        .map_err(|reason| WireError(format!("{what} id: {reason}")))
}

fn user_id(raw: String) -> R<UserId> {
    UserId::new(&raw).map_err(|reason| WireError(format!("user id: {reason}")))
}

#[derive(Debug, Deserialize)]
pub(crate) struct WImage {
    url: String,
    width: Option<u32>,
    height: Option<u32>,
}

impl From<WImage> for Image {
    fn from(w: WImage) -> Self {
        Image {
            url: w.url,
            width: w.width,
            height: w.height,
        }
    }
}

#[derive(Debug, Deserialize)]
pub(crate) struct WFollowers {
    total: Option<u64>,
}

#[derive(Debug, Deserialize)]
pub(crate) struct WArtist {
    id: Option<String>,
    name: String,
    genres: Option<Vec<String>>,
    popularity: Option<u8>,
    followers: Option<WFollowers>,
    #[serde(default)]
    images: Option<Vec<WImage>>,
}

impl WArtist {
    fn into_ref(self) -> Option<ArtistRef> {
        // Local files credit artists without ids; they are not catalog artists.
        let id = self.id?.parse().ok()?;
        Some(ArtistRef {
            id,
            name: self.name,
        })
    }
}

impl TryFrom<WArtist> for Artist {
    type Error = WireError;
    fn try_from(w: WArtist) -> R<Self> {
        Ok(Artist {
            id: id("artist", w.id)?,
            name: w.name,
            genres: w.genres,
            popularity: w.popularity,
            followers: w.followers.and_then(|f| f.total),
            images: images(w.images),
        })
    }
}

fn images(w: Option<Vec<WImage>>) -> Vec<Image> {
    w.unwrap_or_default().into_iter().map(Image::from).collect()
}

fn artist_refs(w: Option<Vec<WArtist>>) -> Vec<ArtistRef> {
    w.unwrap_or_default()
        .into_iter()
        .filter_map(WArtist::into_ref)
        .collect()
}

#[derive(Debug, Default, Deserialize)]
pub(crate) struct WExternalIds {
    isrc: Option<String>,
    upc: Option<String>,
}

#[derive(Debug, Deserialize)]
pub(crate) struct WAlbum {
    id: Option<String>,
    name: String,
    album_type: Option<String>,
    album_group: Option<String>,
    release_date: Option<String>,
    release_date_precision: Option<String>,
    total_tracks: Option<u32>,
    artists: Option<Vec<WArtist>>,
    images: Option<Vec<WImage>>,
    popularity: Option<u8>,
    label: Option<String>,
    external_ids: Option<WExternalIds>,
    tracks: Option<WPage<WTrack>>,
}

impl TryFrom<WAlbum> for Album {
    type Error = WireError;
    fn try_from(w: WAlbum) -> R<Self> {
        Ok(Album {
            id: id("album", w.id)?,
            name: w.name,
            album_type: w.album_type,
            album_group: w.album_group,
            release_date: w.release_date,
            release_date_precision: w.release_date_precision,
            total_tracks: w.total_tracks,
            artists: artist_refs(w.artists),
            images: images(w.images),
            popularity: w.popularity,
            label: w.label,
            upc: w.external_ids.and_then(|e| e.upc),
            tracks: w.tracks.map(|p| p.convert(Track::try_from)).transpose()?,
        })
    }
}

#[derive(Debug, Deserialize)]
pub(crate) struct WTrack {
    id: Option<String>,
    name: String,
    #[serde(rename = "type")]
    kind: Option<String>,
    artists: Option<Vec<WArtist>>,
    album: Option<WAlbum>,
    #[serde(default)]
    duration_ms: u64,
    #[serde(default)]
    explicit: bool,
    popularity: Option<u8>,
    external_ids: Option<WExternalIds>,
    track_number: Option<u32>,
    disc_number: Option<u32>,
    #[serde(default)]
    is_local: bool,
    uri: Option<String>,
    available_markets: Option<Vec<String>>,
    is_playable: Option<bool>,
    restrictions: Option<WRestrictions>,
}

/// `restrictions` of a track (TrackRestrictionObject).
#[derive(Debug, Deserialize)]
struct WRestrictions {
    reason: Option<String>,
}

impl TryFrom<WTrack> for Track {
    type Error = WireError;
    fn try_from(w: WTrack) -> R<Self> {
        Ok(Track {
            id: id("track", w.id)?,
            name: w.name,
            artists: artist_refs(w.artists),
            album: w.album.map(Album::try_from).transpose()?.map(Box::new),
            duration_ms: w.duration_ms,
            explicit: w.explicit,
            popularity: w.popularity,
            isrc: w.external_ids.and_then(|e| e.isrc),
            track_number: w.track_number,
            disc_number: w.disc_number,
            available_markets: w.available_markets,
            playable: w.is_playable,
            restriction: w.restrictions.and_then(|r| r.reason),
        })
    }
}

impl WTrack {
    fn into_playable(self) -> R<Playable> {
        if self.is_local || self.id.is_none() {
            return Ok(Playable::Local {
                name: self.name,
                uri: self.uri,
            });
        }
        if self.kind.as_deref() == Some("episode") {
            return Ok(Playable::Episode {
                id: self.id.unwrap_or_default(),
                name: self.name,
            });
        }
        Track::try_from(self).map(Playable::Track)
    }
}

#[derive(Debug, Deserialize)]
pub(crate) struct WPage<T> {
    items: Vec<Option<T>>,
    #[serde(default)]
    offset: u32,
    #[serde(default)]
    limit: u32,
    total: Option<u32>,
    next: Option<String>,
}

impl<T> WPage<T> {
    pub(crate) fn convert<U>(self, f: impl Fn(T) -> R<U>) -> R<Page<U>> {
        Ok(Page {
            items: self
                .items
                .into_iter()
                .flatten()
                .map(f)
                .collect::<R<Vec<U>>>()?,
            offset: self.offset,
            limit: self.limit,
            total: self.total,
            has_next: self.next.is_some(),
        })
    }
}

#[derive(Debug, Deserialize)]
pub(crate) struct WUserRef {
    id: String,
    display_name: Option<String>,
}

impl TryFrom<WUserRef> for UserRef {
    type Error = WireError;
    fn try_from(w: WUserRef) -> R<Self> {
        Ok(UserRef {
            id: user_id(w.id)?,
            display_name: w.display_name,
        })
    }
}

#[derive(Debug, Deserialize)]
pub(crate) struct WPlaylistItem {
    added_at: Option<DateTime<Utc>>,
    added_by: Option<WUserRef>,
    /// The February 2026 name.
    item: Option<WTrack>,
    /// The name before February 2026.
    track: Option<WTrack>,
}

impl TryFrom<WPlaylistItem> for PlaylistItem {
    type Error = WireError;
    fn try_from(w: WPlaylistItem) -> R<Self> {
        Ok(PlaylistItem {
            added_at: w.added_at,
            added_by: w.added_by.and_then(|u| UserId::new(&u.id).ok()),
            item: w.item.or(w.track).map(WTrack::into_playable).transpose()?,
        })
    }
}

/// The `items` / `tracks` member of a playlist: a page, or only `{href, total}` in listings.
#[derive(Debug, Deserialize)]
#[serde(untagged)]
pub(crate) enum WPlaylistContent {
    Page(WPage<WPlaylistItem>),
    Ref { total: Option<u32> },
}

impl WPlaylistContent {
    fn total(&self) -> Option<u32> {
        match self {
            WPlaylistContent::Page(p) => p.total,
            WPlaylistContent::Ref { total } => *total,
        }
    }
}

#[derive(Debug, Deserialize)]
pub(crate) struct WPlaylist {
    id: Option<String>,
    name: String,
    description: Option<String>,
    owner: WUserRef,
    public: Option<bool>,
    #[serde(default)]
    collaborative: bool,
    snapshot_id: String,
    followers: Option<WFollowers>,
    items: Option<WPlaylistContent>,
    tracks: Option<WPlaylistContent>,
}

impl TryFrom<WPlaylist> for Playlist {
    type Error = WireError;
    fn try_from(w: WPlaylist) -> R<Self> {
        let content = w.items.or(w.tracks);
        let total_items = content.as_ref().and_then(WPlaylistContent::total);
        let items = match content {
            Some(WPlaylistContent::Page(page)) => Some(page.convert(PlaylistItem::try_from)?),
            _ => None,
        };
        Ok(Playlist {
            id: id("playlist", w.id)?,
            name: w.name,
            description: w.description.filter(|d| !d.is_empty()),
            owner: w.owner.try_into()?,
            public: w.public,
            collaborative: w.collaborative,
            snapshot_id: SnapshotId(w.snapshot_id),
            followers: w.followers.and_then(|f| f.total),
            total_items,
            items,
        })
    }
}

impl TryFrom<WPlaylist> for PlaylistSummary {
    type Error = WireError;
    fn try_from(w: WPlaylist) -> R<Self> {
        let total_items = w
            .items
            .or(w.tracks)
            .as_ref()
            .and_then(WPlaylistContent::total);
        Ok(PlaylistSummary {
            id: id("playlist", w.id)?,
            name: w.name,
            owner: w.owner.try_into()?,
            collaborative: w.collaborative,
            snapshot_id: SnapshotId(w.snapshot_id),
            total_items,
        })
    }
}

#[derive(Debug, Deserialize)]
pub(crate) struct WUser {
    id: String,
    display_name: Option<String>,
    country: Option<String>,
    product: Option<String>,
    followers: Option<WFollowers>,
}

impl TryFrom<WUser> for User {
    type Error = WireError;
    fn try_from(w: WUser) -> R<Self> {
        Ok(User {
            id: user_id(w.id)?,
            display_name: w.display_name,
            country: w.country,
            product: w.product,
            followers: w.followers.and_then(|f| f.total),
        })
    }
}

#[derive(Debug, Deserialize)]
pub(crate) struct WSnapshot {
    pub(crate) snapshot_id: String,
}

#[derive(Debug, Deserialize)]
pub(crate) struct WSearch {
    artists: Option<WPage<WArtist>>,
    albums: Option<WPage<WAlbum>>,
    tracks: Option<WPage<WTrack>>,
}

impl TryFrom<WSearch> for SearchResults {
    type Error = WireError;
    fn try_from(w: WSearch) -> R<Self> {
        Ok(SearchResults {
            artists: w.artists.map(|p| p.convert(Artist::try_from)).transpose()?,
            albums: w.albums.map(|p| p.convert(Album::try_from)).transpose()?,
            tracks: w.tracks.map(|p| p.convert(Track::try_from)).transpose()?,
        })
    }
}

#[derive(Debug, Deserialize)]
pub(crate) struct WCursors {
    after: Option<String>,
    before: Option<String>,
}

#[derive(Debug, Deserialize)]
pub(crate) struct WPlayHistory {
    track: WTrack,
    played_at: DateTime<Utc>,
}

#[derive(Debug, Deserialize)]
pub(crate) struct WRecentlyPlayed {
    items: Vec<WPlayHistory>,
    next: Option<String>,
    cursors: Option<WCursors>,
}

impl TryFrom<WRecentlyPlayed> for CursorPage<PlayHistory> {
    type Error = WireError;
    fn try_from(w: WRecentlyPlayed) -> R<Self> {
        let (after, before) = match w.cursors {
            Some(c) => (
                c.after.and_then(|a| a.parse().ok()),
                c.before.and_then(|b| b.parse().ok()),
            ),
            None => (None, None),
        };
        Ok(CursorPage {
            items: w
                .items
                .into_iter()
                .map(|h| {
                    Ok(PlayHistory {
                        track: h.track.try_into()?,
                        played_at: h.played_at,
                    })
                })
                .collect::<R<Vec<_>>>()?,
            next: w.next.and(before).map(Cursor::Before),
            after,
        })
    }
}
