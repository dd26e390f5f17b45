//! The Lambda entry point of track-analysis: wiring only.

use std::sync::Arc;

use backbone::aws::ColdStart;
use backbone::config::ProcessEnv;
use backbone::harness::{Task, serve};
use track_analysis::{TrackAnalysis, limits_from_env};

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    let cold = ColdStart::from_env(TrackAnalysis::NAME, env!("CARGO_PKG_VERSION")).await?;
    let task = TrackAnalysis {
        objects: Arc::new(cold.objects()?),
        store: Arc::new(cold.adapters.store.clone()),
        events: Arc::new(cold.adapters.events.clone()),
        limits: limits_from_env(&ProcessEnv)?,
    };
    serve(cold.harness(task)).await
}
