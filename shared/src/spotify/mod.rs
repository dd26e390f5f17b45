//! Spotify access: the [`SpotifyApi`] port, its domain types and (feature `spotify`) its adapter.
//!
//! Tasks see only [`port`] and [`model`]. The adapter in `client` owns everything about the
//! wire: rspotify's HTTP client on rustls, tokens, tiers, batching, retries and rate limits.

pub mod model;
pub mod port;

#[cfg(feature = "spotify")]
pub mod client;
#[cfg(feature = "spotify")]
mod wire;

#[cfg(feature = "spotify")]
pub use client::{SessionStats, SpotifyClient, SpotifyConfig, SpotifySession};
pub use model::Tier;
pub use port::{
    SpotifyApi, SpotifyCatalog, SpotifyConnect, SpotifyError, SpotifyLibrary, SpotifyPlaylists,
};
