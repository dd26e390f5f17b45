//! The Lambda entry point of playlist-update: wiring only.

use std::sync::Arc;

use backbone::aws::ColdStart;
use backbone::harness::{Task, serve};
use playlist_update::PlaylistUpdate;

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    let cold = ColdStart::from_env(
        PlaylistUpdate::<backbone::spotify::SpotifyClient>::NAME,
        env!("CARGO_PKG_VERSION"),
    )
    .await?;
    let task = PlaylistUpdate {
        spotify: cold.spotify()?,
        store: Arc::new(cold.adapters.store.clone()),
        events: Arc::new(cold.adapters.events.clone()),
    };
    serve(cold.harness(task)).await
}
