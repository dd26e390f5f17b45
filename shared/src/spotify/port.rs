//! The `SpotifyApi` port: what tasks may ask of Spotify, in domain types.
//!
//! Three narrow traits (catalog reads, playlist edits, the user's library) so a task names only
//! what it uses; [`SpotifyApi`] is all three, implemented by anything that implements them.
//! Batching, tiers, tokens, retries and rate limits are the adapter's business, not the task's.

use std::time::Duration;

use async_trait::async_trait;

use crate::config::ConfigError;
use crate::error::{BoxError, Classify, ErrorClass, PortError};
use crate::validate::{AlbumId, ArtistId, PlaylistId, TrackId};

use super::model::{
    Album, Artist, Cursor, CursorPage, Page, PageRequest, PlayHistory, Playlist, PlaylistItem,
    PlaylistSummary, SearchKind, SearchResults, SnapshotId, Tier, Track, User,
};

/// Why a Spotify call failed, shaped by what the caller must do.
#[derive(Debug, thiserror::Error)]
pub enum SpotifyError {
    /// Spotify asked us to wait longer than the invocation has left: hand the work back.
    #[error("{operation}: Spotify rate limit; retry after {retry_after:?}")]
    RateLimited {
        /// The endpoint called.
        operation: &'static str,
        /// The `Retry-After` Spotify sent.
        retry_after: Duration,
    },
    /// A 5xx, timeout or connection failure that outlived the bounded retries.
    #[error("{operation} failed (transient)")]
    Transient {
        /// The endpoint called.
        operation: &'static str,
        /// The last failure.
        #[source]
        source: BoxError,
    },
    /// The refresh token was refused (`invalid_grant`): refresh tokens expire six months after
    /// consent, or the user revoked access. Retrying cannot help.
    #[error(
        "{operation}: Spotify refused the refresh token (invalid_grant); an operator must \
         re-authorise the app (refresh tokens expire six months after consent)"
    )]
    ReauthorisationRequired {
        /// The call that needed the user token.
        operation: &'static str,
    },
    /// The app credentials were refused (`invalid_client`) or the token was rejected again
    /// right after renewal.
    #[error("{operation}: Spotify refused the app credentials ({reason})")]
    Unauthorized {
        /// The call that failed.
        operation: &'static str,
        /// Spotify's error code, never a credential.
        reason: String,
    },
    /// Spotify refused the call for this app or user (tier, scope, not the playlist's owner).
    #[error("{operation}: forbidden by Spotify ({message})")]
    Forbidden {
        /// The endpoint called.
        operation: &'static str,
        /// Spotify's message.
        message: String,
    },
    /// The object does not exist (deleted, or never did).
    #[error("{operation}: not found")]
    NotFound {
        /// The endpoint called.
        operation: &'static str,
    },
    /// Spotify rejected the request as malformed (bad limit, too many ids, bad snapshot).
    #[error("{operation}: bad request ({message})")]
    BadRequest {
        /// The endpoint called.
        operation: &'static str,
        /// Spotify's message.
        message: String,
    },
    /// The response did not have the shape we rely on.
    #[error("{operation}: unexpected response")]
    Decode {
        /// The endpoint called.
        operation: &'static str,
        /// The parse failure.
        #[source]
        source: BoxError,
    },
    /// This invocation has used its whole budget of Spotify calls.
    #[error("Spotify call budget of {budget} calls for this invocation is used up")]
    BudgetExhausted {
        /// The budget.
        budget: u32,
    },
    /// The invocation's deadline leaves no time for another call.
    #[error("{operation}: no time left before the invocation deadline")]
    DeadlineExceeded {
        /// The endpoint that was about to be called.
        operation: &'static str,
    },
    /// Reading or writing credentials failed.
    #[error("Spotify credentials")]
    Secrets(#[from] PortError),
    /// The adapter's configuration is unusable.
    #[error(transparent)]
    Config(#[from] ConfigError),
}

impl Classify for SpotifyError {
    fn class(&self) -> ErrorClass {
        match self {
            SpotifyError::RateLimited { retry_after, .. } => ErrorClass::RateLimited(*retry_after),
            SpotifyError::Transient { .. }
            | SpotifyError::BudgetExhausted { .. }
            | SpotifyError::DeadlineExceeded { .. } => ErrorClass::Transient,
            SpotifyError::BadRequest { .. } => ErrorClass::Invalid,
            SpotifyError::ReauthorisationRequired { .. }
            | SpotifyError::Unauthorized { .. }
            | SpotifyError::Forbidden { .. }
            | SpotifyError::NotFound { .. }
            | SpotifyError::Decode { .. }
            | SpotifyError::Config(_) => ErrorClass::Permanent,
            SpotifyError::Secrets(err) => err.class(),
        }
    }
}

/// Catalog reads: artists, albums, tracks, search. Batch methods return one entry per id asked
/// for, in order, `None` where Spotify knows no such object.
#[async_trait]
pub trait SpotifyCatalog: Send + Sync {
    /// One artist.
    async fn artist(&self, id: &ArtistId) -> Result<Artist, SpotifyError>;
    /// Many artists, batched as the tier allows.
    async fn artists(&self, ids: &[ArtistId]) -> Result<Vec<Option<Artist>>, SpotifyError>;
    /// A page of an artist's albums (at most 10 per page in Development Mode).
    async fn artist_albums(
        &self,
        id: &ArtistId,
        page: PageRequest,
    ) -> Result<Page<Album>, SpotifyError>;
    /// One album, with its first page of tracks.
    async fn album(&self, id: &AlbumId) -> Result<Album, SpotifyError>;
    /// Many albums, batched as the tier allows.
    async fn albums(&self, ids: &[AlbumId]) -> Result<Vec<Option<Album>>, SpotifyError>;
    /// A page of an album's tracks.
    async fn album_tracks(
        &self,
        id: &AlbumId,
        page: PageRequest,
    ) -> Result<Page<Track>, SpotifyError>;
    /// One track.
    async fn track(&self, id: &TrackId) -> Result<Track, SpotifyError>;
    /// Many tracks, batched as the tier allows.
    async fn tracks(&self, ids: &[TrackId]) -> Result<Vec<Option<Track>>, SpotifyError>;
    /// Searches the catalog for `query` among `kinds`.
    async fn search(
        &self,
        query: &str,
        kinds: &[SearchKind],
        page: PageRequest,
    ) -> Result<SearchResults, SpotifyError>;
}

/// Playlist reads and edits. Edits return the new snapshot, to thread into the next edit.
#[async_trait]
pub trait SpotifyPlaylists: Send + Sync {
    /// A playlist's details.
    async fn playlist(&self, id: &PlaylistId) -> Result<Playlist, SpotifyError>;
    /// A page of a playlist's items (only playlists the user owns or collaborates on).
    async fn playlist_items(
        &self,
        id: &PlaylistId,
        page: PageRequest,
    ) -> Result<Page<PlaylistItem>, SpotifyError>;
    /// Adds tracks at `position` (the end when `None`), 100 per request.
    async fn add_items(
        &self,
        id: &PlaylistId,
        tracks: &[TrackId],
        position: Option<u32>,
    ) -> Result<SnapshotId, SpotifyError>;
    /// Removes every occurrence of the tracks, 100 per request, against `snapshot` if given.
    async fn remove_items(
        &self,
        id: &PlaylistId,
        tracks: &[TrackId],
        snapshot: Option<&SnapshotId>,
    ) -> Result<SnapshotId, SpotifyError>;
    /// Moves `range_length` items from `range_start` to before `insert_before`.
    async fn reorder_items(
        &self,
        id: &PlaylistId,
        range_start: u32,
        insert_before: u32,
        range_length: u32,
        snapshot: Option<&SnapshotId>,
    ) -> Result<SnapshotId, SpotifyError>;
    /// Replaces the whole content with `tracks` (the first 100 replace, the rest are added).
    async fn replace_items(
        &self,
        id: &PlaylistId,
        tracks: &[TrackId],
    ) -> Result<SnapshotId, SpotifyError>;
}

/// The authorised user's profile, playlists and listening history.
#[async_trait]
pub trait SpotifyLibrary: Send + Sync {
    /// The current user.
    async fn current_user(&self) -> Result<User, SpotifyError>;
    /// A page of the current user's playlists.
    async fn current_user_playlists(
        &self,
        page: PageRequest,
    ) -> Result<Page<PlaylistSummary>, SpotifyError>;
    /// Recently played tracks (at most 50), from `cursor` if given.
    async fn recently_played(
        &self,
        limit: u32,
        cursor: Option<Cursor>,
    ) -> Result<CursorPage<PlayHistory>, SpotifyError>;
}

/// Everything the tasks may ask of Spotify.
pub trait SpotifyApi: SpotifyCatalog + SpotifyPlaylists + SpotifyLibrary {}

impl<T: SpotifyCatalog + SpotifyPlaylists + SpotifyLibrary> SpotifyApi for T {}

/// Opens one invocation's view of Spotify. A task holds the connector from its cold start and
/// opens a session per message, so the deadline, call budget, request cache and tier fallback
/// belong to that message alone.
pub trait SpotifyConnect: Send + Sync {
    /// One invocation's session.
    type Session: SpotifyApi + 'static;

    /// The tier the app is configured for (the session may still fall back on a 403).
    fn tier(&self) -> Tier;

    /// A session that must finish its calls within `remaining`.
    fn open(&self, remaining: Duration) -> Self::Session;
}
