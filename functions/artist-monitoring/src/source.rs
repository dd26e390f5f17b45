//! `ArtistSource`: the one capability artist-monitoring needs from Spotify, kept narrow so the
//! task names only what it uses. The Spotify client implements it (batching per tier, rate
//! limits, retries); tests implement it from recorded shapes.

use async_trait::async_trait;
use backbone::error::Classify;
use backbone::validate::ArtistId;

use crate::alerts::Release;

/// What the API said of one artist.
#[derive(Debug, Clone, PartialEq)]
pub enum Lookup {
    /// The artist exists; absent fields were not returned (the development tier).
    Found(ArtistFacts),
    /// The API answered 404: the artist is gone.
    NotFound,
}

/// The artist fields the task uses.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct ArtistFacts {
    /// The name.
    pub name: String,
    /// Followers, if returned.
    pub followers: Option<u64>,
    /// Popularity, if returned.
    pub popularity: Option<u8>,
    /// Genres, if returned.
    pub genres: Option<Vec<String>>,
}

/// Artist lookups.
#[async_trait]
pub trait ArtistSource: Send + Sync {
    /// The source's error; its class decides retry, delay or dead-letter.
    type Error: std::error::Error + Classify + Send + Sync + 'static;

    /// How many artists one work message should hold: the tier's batch limit.
    fn batch_limit(&self) -> usize;

    /// Why a field is missing when the API does not return it (for the report), such as
    /// "not returned to development-mode apps since February 2026".
    fn missing_reason(&self) -> &'static str;

    /// Looks up `ids`, one answer per id in the same order.
    async fn artists(&self, ids: &[ArtistId]) -> Result<Vec<Lookup>, Self::Error>;

    /// Every release of `artist` (albums, singles, compilations), newest first.
    async fn releases(&self, artist: &ArtistId) -> Result<Vec<Release>, Self::Error>;
}
