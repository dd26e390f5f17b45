//! The Lambda entry point of data-sync: wiring only.

use std::sync::Arc;

use backbone::aws::ColdStart;
use backbone::harness::{Task, serve};
use data_sync::DataSync;

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    let cold = ColdStart::from_env(
        DataSync::<backbone::spotify::SpotifyClient>::NAME,
        env!("CARGO_PKG_VERSION"),
    )
    .await?;
    let task = DataSync {
        spotify: cold.spotify()?,
        store: Arc::new(cold.adapters.store.clone()),
        events: Arc::new(cold.adapters.events.clone()),
    };
    serve(cold.harness(task)).await
}
