//! What every task function of the music platform shares.
//!
//! - [`validate`]: validated input types (Spotify ids, URIs and URLs, user ids, dates, bounded lists);
//! - [`error`]: the error taxonomy the harness routes by (invalid, transient, rate-limited, permanent);
//! - [`config`]: fail-fast configuration from environment variables;
//! - [`objects`]: fetching files (audio, reports) from S3, https or a path, routed by scheme;
//! - [`ports`]: the capabilities tasks are written against, and [`local`] their embedded adapters;
//! - [`idempotency`] and [`audit`]: the semantics, written once above the storage ports;
//! - [`secrets_cache`]: the TTL cache over any secret store, and the typed Spotify credentials;
//! - `aws` (feature `aws`): the production adapters on the AWS SDK;
//! - [`series`]: the audience series (artist, platform, metric, day) every platform's figures go to;
//! - `web` (feature `http`): the HTTP adapter of the [`ports::WebApi`] port;
//! - [`telemetry`]: JSON logs, EMF metrics, X-Ray trace ids;
//! - [`spotify`]: the Spotify port, its domain types and (feature `spotify`) its rspotify adapter;
//! - [`harness`]: the SQS / EventBridge entry point every function's `main.rs` hands its task to.
#![warn(missing_docs)]

pub mod audit;
#[cfg(feature = "aws")]
pub mod aws;
pub mod clock;
pub mod config;
pub mod error;
#[cfg(any(test, feature = "fuzz"))]
pub mod fuzz;
pub mod harness;
pub mod hash;
pub mod idempotency;
#[cfg(feature = "local")]
pub mod local;
pub mod objects;
#[cfg(feature = "openai")]
pub mod openai;
pub mod ports;
pub mod secrets_cache;
pub mod series;
pub mod spotify;
pub mod telemetry;
pub mod validate;
pub mod watchlist;
#[cfg(feature = "http")]
pub mod web;

pub use secrecy::{ExposeSecret, SecretString};
