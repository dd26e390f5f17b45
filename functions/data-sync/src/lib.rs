//! data-sync: keeps the store's copy of the catalog behind the watchlists, the configured
//! playlists and users' listening history up to date, incrementally and resumably.
//!
//! The schedule sends a `plan`; it fans out one `artists` message per batch of watchlist
//! artists, one `playlist` message per configured playlist and one `recently_played` message
//! per authorised user. Each step reads only what changed: albums already stored are not
//! re-read, playlist items are re-read only when `snapshot_id` changed, and listening history
//! resumes from its stored cursor. A step that nears its deadline stops between two artists
//! and sends itself a continuation with the artists left, so a resumed run neither skips nor
//! repeats one. Changes are published as `CatalogChanged` events and audited with counts.

pub mod entities;
pub mod source;

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use backbone::error::{Classify, ErrorClass, PortError};
use backbone::harness::{Cx, Task};
use backbone::ports::{BusEvent, EventPublisher, Store};
use backbone::spotify::{SpotifyConnect, SpotifyError};
use backbone::validate::{ArtistId, BoundedVec, IsoDate, PlaylistId, TrackId, UserId, Validate};
use backbone::watchlist::{self, WatchlistError, WatchlistName};
use serde::{Deserialize, Serialize};
use serde_json::json;
use tracing::info;

use crate::entities::{AlbumEntity, PlaylistEntity, TracksEntity};

/// The event bus `source` of this function's events.
pub const EVENT_SOURCE: &str = "music.data-sync";
/// The `detail-type` of change events.
pub const CHANGED_DETAIL_TYPE: &str = "CatalogChanged";
/// Time kept in hand at the deadline: a step stops and continues in a new message when less
/// than this is left (one artist's albums and tracks take a few seconds at worst).
pub const CHECKPOINT_MARGIN: Duration = Duration::from_secs(30);
/// Artists per work message.
pub const ARTISTS_PER_MESSAGE: usize = 20;
/// Pages of history read per run for one user (50 plays a page).
const MAX_PLAY_PAGES: usize = 20;

/// The input of every step.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "step", rename_all = "snake_case", deny_unknown_fields)]
pub enum SyncInput {
    /// Fan the day's sync out (the schedule's input).
    Plan {
        /// Whose artists' catalogs to sync.
        #[serde(default)]
        watchlist: Option<WatchlistName>,
        /// Playlists to sync (at most 200).
        #[serde(default)]
        playlists: Option<BoundedVec<PlaylistId, 0, 200>>,
        /// Users whose listening history to sync (at most 50).
        #[serde(default)]
        users: Option<BoundedVec<UserId, 0, 50>>,
        /// The day, which keys the plan (default: today by the clock).
        #[serde(default)]
        date: Option<IsoDate>,
        /// Set by EventBridge Scheduler; informational.
        #[serde(default, rename = "scheduledTime")]
        scheduled_time: Option<String>,
    },
    /// Sync the catalog of these artists.
    Artists {
        /// The artists still to sync (1 to 50).
        artists: BoundedVec<ArtistId, 1, 50>,
        /// How many continuations led here (0 for the plan's message).
        #[serde(default)]
        continuation: u32,
    },
    /// Sync one playlist.
    Playlist {
        /// The playlist.
        playlist: PlaylistId,
    },
    /// Sync one user's recently played tracks.
    RecentlyPlayed {
        /// The user (whose refresh token the Spotify secret holds).
        user: UserId,
        /// The day, so each day's run is its own message.
        date: IsoDate,
    },
}

impl Validate for SyncInput {}

/// What a step did: counts and cursors, also written to the audit log.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct SyncOutput {
    /// Work messages sent (plan and continuations).
    pub messages: usize,
    /// Artists synced.
    pub artists: usize,
    /// Albums new to the store.
    pub new_albums: usize,
    /// Tracks new to the store.
    pub new_tracks: usize,
    /// Playlists whose items were re-read.
    pub playlists_changed: usize,
    /// Playlists unchanged since the last sync.
    pub playlists_unchanged: usize,
    /// Playlist items added and removed.
    pub items_added: usize,
    /// Playlist items removed.
    pub items_removed: usize,
    /// Plays stored.
    pub plays: usize,
    /// The history cursor after the run.
    pub cursor: Option<i64>,
    /// Artists left to a continuation message.
    pub continued: usize,
    /// Artists Spotify no longer knows (404), skipped.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub artists_gone: Vec<ArtistId>,
}

/// Why a step failed.
#[derive(Debug, thiserror::Error)]
pub enum SyncError {
    /// The watchlist is unknown or unusable.
    #[error(transparent)]
    Watchlist(#[from] WatchlistError),
    /// Spotify failed.
    #[error("spotify")]
    Source(#[source] SpotifyError),
    /// The stored Spotify authorisation belongs to another user than the message names.
    #[error(
        "the Spotify authorisation in the secret belongs to user {authorised}, not {asked}: \
         authorise {asked} or remove them from the schedule"
    )]
    WrongUser {
        /// The user the message names.
        asked: String,
        /// The user the refresh token belongs to.
        authorised: String,
    },
    /// The store or the bus failed.
    #[error(transparent)]
    Port(#[from] PortError),
    /// A message could not be encoded.
    #[error("message cannot be encoded: {0}")]
    Encode(#[source] serde_json::Error),
}

impl Classify for SyncError {
    fn class(&self) -> ErrorClass {
        match self {
            SyncError::Watchlist(err) => err.class(),
            SyncError::Source(err) => err.class(),
            SyncError::Port(err) => err.class(),
            SyncError::Encode(_) => ErrorClass::Permanent,
            SyncError::WrongUser { .. } => ErrorClass::Invalid,
        }
    }
}

/// The data-sync task, over its ports.
pub struct DataSync<C> {
    /// Spotify: one session per message.
    pub spotify: C,
    /// The synced entities, cursors and watchlists.
    pub store: Arc<dyn Store>,
    /// Where `CatalogChanged` goes.
    pub events: Arc<dyn EventPublisher>,
}

#[async_trait]
impl<C: SpotifyConnect + 'static> Task for DataSync<C> {
    const NAME: &'static str = "data-sync";
    type Input = SyncInput;
    type Output = SyncOutput;
    type Error = SyncError;

    fn idempotency_key(&self, input: &SyncInput) -> Option<String> {
        match input {
            SyncInput::Plan {
                watchlist,
                date: Some(date),
                ..
            } => Some(format!(
                "plan#{}#{date}",
                watchlist.as_ref().map_or("-", |w| w.as_str())
            )),
            _ => None,
        }
    }

    fn subject(&self, input: &SyncInput) -> String {
        match input {
            SyncInput::Plan { watchlist, .. } => {
                format!(
                    "watchlist#{}",
                    watchlist.as_ref().map_or("-", |w| w.as_str())
                )
            }
            SyncInput::Artists { artists, .. } => format!("artists#{}", artists.as_slice()[0]),
            SyncInput::Playlist { playlist } => format!("playlist#{playlist}"),
            SyncInput::RecentlyPlayed { user, .. } => format!("user#{}", user.as_str()),
        }
    }

    async fn run(&self, input: SyncInput, cx: &Cx) -> Result<SyncOutput, Self::Error> {
        let output = match input {
            SyncInput::Plan {
                watchlist,
                playlists,
                users,
                date,
                ..
            } => {
                let date = date.unwrap_or_else(|| cx.now().date_naive().into());
                self.plan(watchlist, playlists, users, date, cx).await?
            }
            SyncInput::Artists {
                artists,
                continuation,
            } => self.artists(artists.as_slice(), continuation, cx).await?,
            SyncInput::Playlist { playlist } => self.playlist(&playlist, cx).await?,
            SyncInput::RecentlyPlayed { user, .. } => self.recently_played(&user, cx).await?,
        };
        cx.record(
            "sync",
            "sync.run",
            serde_json::to_value(&output).map_err(SyncError::Encode)?,
        );
        Ok(output)
    }
}

impl<C: SpotifyConnect> DataSync<C> {
    async fn plan(
        &self,
        watchlist: Option<WatchlistName>,
        playlists: Option<BoundedVec<PlaylistId, 0, 200>>,
        users: Option<BoundedVec<UserId, 0, 50>>,
        date: IsoDate,
        cx: &Cx,
    ) -> Result<SyncOutput, SyncError> {
        let mut output = SyncOutput::default();
        let mut send = |input: &SyncInput| -> Result<(), SyncError> {
            cx.enqueue(input).map_err(SyncError::Encode)?;
            output.messages += 1;
            Ok(())
        };
        if let Some(name) = &watchlist {
            let list = watchlist::load(self.store.as_ref(), name).await?;
            for chunk in list.artists.chunks(ARTISTS_PER_MESSAGE) {
                // `chunks` yields 1 to ARTISTS_PER_MESSAGE (20) items: within 1..=50.
                let artists =
                    BoundedVec::new(chunk.to_vec()).expect("a chunk holds 1 to 20 artists");
                send(&SyncInput::Artists {
                    artists,
                    continuation: 0,
                })?;
            }
        }
        for playlist in playlists.map(BoundedVec::into_inner).unwrap_or_default() {
            send(&SyncInput::Playlist { playlist })?;
        }
        for user in users.map(BoundedVec::into_inner).unwrap_or_default() {
            send(&SyncInput::RecentlyPlayed { user, date })?;
        }
        info!(messages = output.messages, "planned the sync");
        Ok(output)
    }

    async fn artists(
        &self,
        artists: &[ArtistId],
        continuation: u32,
        cx: &Cx,
    ) -> Result<SyncOutput, SyncError> {
        let store = self.store.as_ref();
        let api = self.spotify.open(cx.remaining());
        let mut output = SyncOutput::default();
        for (done, artist) in artists.iter().enumerate() {
            if cx.remaining() < CHECKPOINT_MARGIN {
                // Checkpoint: the artists not yet started go to a new message. The ones done are
                // stored, so the continuation neither skips nor repeats any.
                let rest = &artists[done..];
                // `rest` is a non-empty tail of a list of at most 50 artists.
                let rest = BoundedVec::new(rest.to_vec()).expect("1 to 50 artists remain");
                cx.enqueue(&SyncInput::Artists {
                    artists: rest,
                    continuation: continuation + 1,
                })
                .map_err(SyncError::Encode)?;
                output.messages += 1;
                output.continued = artists.len() - done;
                info!(
                    left = output.continued,
                    "near the deadline: continuing in a new message"
                );
                break;
            }
            let known = entities::known_albums(store, artist).await?;
            let albums = match source::artist_albums(&api, artist).await {
                Ok(albums) => albums,
                Err(SpotifyError::NotFound { .. }) => {
                    // Gone from Spotify (artist-monitoring alerts on it): nothing to sync, and
                    // no reason to fail the other artists of the message.
                    info!(%artist, "artist not found on Spotify: skipped");
                    output.artists_gone.push(artist.clone());
                    continue;
                }
                Err(err) => return Err(SyncError::Source(err)),
            };
            let mut new_albums = Vec::new();
            let mut new_tracks: Vec<TrackId> = Vec::new();
            for album in albums {
                if known.contains(album.id.as_str()) {
                    continue;
                }
                let tracks = match entities::album_tracks(store, &album.id).await? {
                    // Another artist of the same album (a collaboration) stored it already.
                    Some(stored) => stored.tracks,
                    None => {
                        let tracks = source::album_tracks(&api, &album.id)
                            .await
                            .map_err(SyncError::Source)?;
                        new_tracks.extend(tracks.iter().map(|t| t.id.clone()));
                        tracks
                    }
                };
                new_albums.push((album, tracks));
            }
            if !new_albums.is_empty() {
                // Publish before storing: a crash in between re-publishes (at least once) on
                // retry instead of losing the change.
                self.publish(
                    cx,
                    json!({
                        "scope": "artist", "id": artist,
                        "newAlbums": new_albums.iter().map(|(a, _)| json!({"id": a.id, "name": a.name, "group": a.group, "releaseDate": a.release_date})).collect::<Vec<_>>(),
                        "newTracks": new_tracks,
                    }),
                )
                .await?;
            }
            for (album, tracks) in &new_albums {
                let synced_at = cx.now();
                entities::save_tracks(
                    store,
                    &album.id,
                    &TracksEntity {
                        tracks: tracks.clone(),
                        synced_at,
                    },
                )
                .await?;
                entities::save_album(
                    store,
                    artist,
                    &AlbumEntity {
                        album: album.clone(),
                        synced_at,
                    },
                )
                .await?;
            }
            output.artists += 1;
            output.new_albums += new_albums.len();
            output.new_tracks += new_tracks.len();
        }
        Ok(output)
    }

    async fn playlist(&self, id: &PlaylistId, cx: &Cx) -> Result<SyncOutput, SyncError> {
        let store = self.store.as_ref();
        let mut output = SyncOutput::default();
        let api = self.spotify.open(cx.remaining());
        let Some(meta) = source::playlist(&api, id)
            .await
            .map_err(SyncError::Source)?
        else {
            info!(playlist = %id, "playlist not found or not readable: nothing to sync");
            return Ok(output);
        };
        let stored = entities::playlist(store, id).await?;
        if stored
            .as_ref()
            .is_some_and(|s| s.meta.snapshot_id == meta.snapshot_id)
        {
            output.playlists_unchanged = 1;
            return Ok(output);
        }
        let items = source::playlist_items(&api, id)
            .await
            .map_err(SyncError::Source)?;
        let old = match &stored {
            Some(_) => entities::playlist_items(store, id).await?,
            None => Vec::new(),
        };
        let (added, removed) = entities::diff_items(&old, &items);
        if !added.is_empty() || !removed.is_empty() {
            self.publish(
                cx,
                json!({ "scope": "playlist", "id": id, "snapshotId": meta.snapshot_id, "added": added, "removed": removed }),
            )
            .await?;
        }
        let entity = PlaylistEntity {
            meta,
            items: items.len(),
            synced_at: cx.now(),
        };
        entities::save_playlist(store, id, &entity, &items).await?;
        output.playlists_changed = 1;
        output.items_added = added.len();
        output.items_removed = removed.len();
        Ok(output)
    }

    async fn recently_played(&self, user: &UserId, cx: &Cx) -> Result<SyncOutput, SyncError> {
        let store = self.store.as_ref();
        let mut output = SyncOutput::default();
        let api = self.spotify.open(cx.remaining());
        let authorised = source::authorised_user(&api)
            .await
            .map_err(SyncError::Source)?;
        if &authorised != user {
            return Err(SyncError::WrongUser {
                asked: user.to_string(),
                authorised: authorised.to_string(),
            });
        }
        let mut cursor = entities::play_cursor(store, user).await?;
        for _ in 0..MAX_PLAY_PAGES {
            let page = source::recently_played(&api, cursor)
                .await
                .map_err(SyncError::Source)?;
            let Some(last) = page
                .plays
                .iter()
                .map(|p| p.played_at.timestamp_millis())
                .max()
            else {
                break;
            };
            entities::save_plays(store, user, &page.plays, last).await?;
            output.plays += page.plays.len();
            cursor = Some(last);
            if page.next_after.is_none() || cx.remaining() < CHECKPOINT_MARGIN {
                break;
            }
        }
        output.cursor = cursor;
        Ok(output)
    }

    async fn publish(&self, cx: &Cx, detail: serde_json::Value) -> Result<(), SyncError> {
        self.events
            .publish(&[BusEvent {
                source: EVENT_SOURCE.into(),
                detail_type: CHANGED_DETAIL_TYPE.into(),
                detail,
                time: cx.now(),
                trace_header: Some(cx.trace_header()),
            }])
            .await?;
        cx.metrics().count("CatalogChangedEvents", 1);
        Ok(())
    }
}
