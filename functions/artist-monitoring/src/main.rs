//! The Lambda entry point of artist-monitoring: wiring only.

use std::sync::Arc;

use artist_monitoring::ArtistMonitoring;
use backbone::aws::ColdStart;
use backbone::harness::{Task, serve};

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    let cold = ColdStart::from_env(
        ArtistMonitoring::<backbone::spotify::SpotifyClient>::NAME,
        env!("CARGO_PKG_VERSION"),
    )
    .await?;
    let task = ArtistMonitoring {
        spotify: cold.spotify()?,
        store: Arc::new(cold.adapters.store.clone()),
        events: Arc::new(cold.adapters.events.clone()),
    };
    serve(cold.harness(task)).await
}
