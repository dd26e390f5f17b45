//! The synced catalog in the task data store, and the diffs between syncs.
//!
//! Keys (single-table):
//! - `artist#<id>` / `album#<album id>`: an [`AlbumEntity`] of the artist;
//! - `album#<id>` / `tracks`: the album's [`TrackEntity`] list;
//! - `playlist#<id>` / `meta`: name, owner, `snapshot_id`, `synced_at`;
//! - `playlist#<id>` / `items#<page>`: the items, 500 per item to stay far below DynamoDB's
//!   400 KB item limit;
//! - `user#<id>` / `cursor#recently-played`: the history cursor;
//! - `user#<id>` / `play#<played at, ms>`: one play (the key makes a replay idempotent).

use std::collections::BTreeSet;

use backbone::error::PortError;
use backbone::ports::store::query_all;
use backbone::ports::{ItemKey, PutCondition, Query, Store};
use backbone::validate::{AlbumId, ArtistId, PlaylistId, TrackId, UserId};
use chrono::{DateTime, Utc};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use crate::source::{AlbumSummary, Play, PlaylistEntry, PlaylistMeta, TrackSummary};

/// Playlist items stored per item.
const ITEMS_PER_PAGE: usize = 500;

/// A stored album.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AlbumEntity {
    /// What the API said.
    #[serde(flatten)]
    pub album: AlbumSummary,
    /// When it was last synced.
    pub synced_at: DateTime<Utc>,
}

/// A stored album's tracks.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TracksEntity {
    /// The tracks.
    pub tracks: Vec<TrackSummary>,
    /// When they were last synced.
    pub synced_at: DateTime<Utc>,
}

/// A stored playlist header.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PlaylistEntity {
    /// What the API said.
    #[serde(flatten)]
    pub meta: PlaylistMeta,
    /// Number of items.
    pub items: usize,
    /// When it was last synced.
    pub synced_at: DateTime<Utc>,
}

fn encode<T: Serialize>(value: &T) -> Result<serde_json::Value, PortError> {
    serde_json::to_value(value).map_err(|e| PortError::permanent("sync.encode", e))
}

fn decode<T: DeserializeOwned>(value: serde_json::Value) -> Result<T, PortError> {
    serde_json::from_value(value).map_err(|e| PortError::permanent("sync.decode", e))
}

async fn get<T: DeserializeOwned>(store: &dyn Store, key: ItemKey) -> Result<Option<T>, PortError> {
    store
        .get(&key)
        .await?
        .map(|item| decode(item.data))
        .transpose()
}

async fn put<T: Serialize>(store: &dyn Store, key: ItemKey, value: &T) -> Result<(), PortError> {
    store
        .put(&key, &encode(value)?, PutCondition::Always, None)
        .await
        .map(|_| ())
}

/// The album ids stored for `artist`.
pub async fn known_albums(
    store: &dyn Store,
    artist: &ArtistId,
) -> Result<BTreeSet<String>, PortError> {
    let items = query_all(
        store,
        Query::partition(format!("artist#{artist}")).prefix("album#"),
        100_000,
    )
    .await?;
    Ok(items
        .into_iter()
        .filter_map(|i| i.key.sk.strip_prefix("album#").map(str::to_owned))
        .collect())
}

/// Stores an album of `artist`.
pub async fn save_album(
    store: &dyn Store,
    artist: &ArtistId,
    album: &AlbumEntity,
) -> Result<(), PortError> {
    put(
        store,
        ItemKey::new(
            format!("artist#{artist}"),
            format!("album#{}", album.album.id),
        ),
        album,
    )
    .await
}

/// The stored tracks of `album`.
pub async fn album_tracks(
    store: &dyn Store,
    album: &AlbumId,
) -> Result<Option<TracksEntity>, PortError> {
    get(store, ItemKey::new(format!("album#{album}"), "tracks")).await
}

/// Stores the tracks of `album`.
pub async fn save_tracks(
    store: &dyn Store,
    album: &AlbumId,
    tracks: &TracksEntity,
) -> Result<(), PortError> {
    put(
        store,
        ItemKey::new(format!("album#{album}"), "tracks"),
        tracks,
    )
    .await
}

/// The stored header of `playlist`.
pub async fn playlist(
    store: &dyn Store,
    playlist: &PlaylistId,
) -> Result<Option<PlaylistEntity>, PortError> {
    get(store, ItemKey::new(format!("playlist#{playlist}"), "meta")).await
}

/// The stored items of `playlist`, in order.
pub async fn playlist_items(
    store: &dyn Store,
    playlist: &PlaylistId,
) -> Result<Vec<PlaylistEntry>, PortError> {
    let pages = query_all(
        store,
        Query::partition(format!("playlist#{playlist}")).prefix("items#"),
        10_000,
    )
    .await?;
    let mut items = Vec::new();
    for page in pages {
        let part: Vec<PlaylistEntry> = decode(page.data)?;
        items.extend(part);
    }
    Ok(items)
}

/// Stores the items, then the header (the header's `snapshot_id` is the commit point: a crash
/// before it makes the next run re-read the items).
pub async fn save_playlist(
    store: &dyn Store,
    id: &PlaylistId,
    entity: &PlaylistEntity,
    items: &[PlaylistEntry],
) -> Result<(), PortError> {
    let pk = format!("playlist#{id}");
    let old_pages = query_all(store, Query::partition(pk.clone()).prefix("items#"), 10_000).await?;
    let new_pages = items.chunks(ITEMS_PER_PAGE).count();
    for (n, chunk) in items.chunks(ITEMS_PER_PAGE).enumerate() {
        put(
            store,
            ItemKey::new(pk.clone(), format!("items#{n:05}")),
            &chunk,
        )
        .await?;
    }
    for stale in old_pages.iter().skip(new_pages) {
        store.delete(&stale.key).await?;
    }
    put(store, ItemKey::new(pk, "meta"), entity).await
}

/// The recently-played cursor of `user`.
pub async fn play_cursor(store: &dyn Store, user: &UserId) -> Result<Option<i64>, PortError> {
    get(
        store,
        ItemKey::new(format!("user#{user}"), "cursor#recently-played"),
    )
    .await
}

/// Stores `plays` (idempotently, keyed by time) and then the new cursor.
pub async fn save_plays(
    store: &dyn Store,
    user: &UserId,
    plays: &[Play],
    cursor: i64,
) -> Result<(), PortError> {
    let pk = format!("user#{user}");
    for play in plays {
        let sk = format!("play#{:015}", play.played_at.timestamp_millis());
        put(store, ItemKey::new(pk.clone(), sk), play).await?;
    }
    put(store, ItemKey::new(pk, "cursor#recently-played"), &cursor).await
}

/// Items in `new` but not `old`, and in `old` but not `new`, by track (multiset-aware: a track
/// added twice counts twice).
pub fn diff_items(old: &[PlaylistEntry], new: &[PlaylistEntry]) -> (Vec<TrackId>, Vec<TrackId>) {
    let mut remaining: Vec<&TrackId> = old.iter().map(|e| &e.track).collect();
    let mut added = Vec::new();
    for entry in new {
        match remaining.iter().position(|t| **t == entry.track) {
            Some(i) => {
                remaining.swap_remove(i);
            }
            None => added.push(entry.track.clone()),
        }
    }
    (added, remaining.into_iter().cloned().collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(id: &str) -> PlaylistEntry {
        PlaylistEntry {
            track: id.parse().unwrap(),
            added_at: None,
        }
    }

    #[test]
    fn diff_counts_duplicates() {
        let a = "4Z8W4fKeB5YxbusRsdQVPb";
        let b = "0OdUWJ0sBjDrqHygGUXeCF";
        let c = "7ouMYWpwJ422jRcDASZB7P";
        let (added, removed) = diff_items(
            &[entry(a), entry(b), entry(b)],
            &[entry(b), entry(c), entry(a), entry(c)],
        );
        assert_eq!(
            added.iter().map(|t| t.as_str()).collect::<Vec<_>>(),
            vec![c, c]
        );
        assert_eq!(
            removed.iter().map(|t| t.as_str()).collect::<Vec<_>>(),
            vec![b]
        );
    }

    #[tokio::test]
    async fn playlist_pages_shrink_without_leftovers() {
        let store = backbone::local::LocalDb::in_memory().unwrap();
        let id: PlaylistId = "37i9dQZF1DXcBWIGoYBM5M".parse().unwrap();
        let meta = PlaylistEntity {
            meta: PlaylistMeta {
                name: "p".into(),
                snapshot_id: "s1".into(),
                owner: "o".into(),
            },
            items: 0,
            synced_at: Utc::now(),
        };
        let many: Vec<PlaylistEntry> = (0..1200).map(|_| entry("4Z8W4fKeB5YxbusRsdQVPb")).collect();
        save_playlist(&store, &id, &meta, &many).await.unwrap();
        assert_eq!(playlist_items(&store, &id).await.unwrap().len(), 1200);
        save_playlist(&store, &id, &meta, &many[..3]).await.unwrap();
        assert_eq!(
            playlist_items(&store, &id).await.unwrap().len(),
            3,
            "stale pages removed"
        );
    }
}
