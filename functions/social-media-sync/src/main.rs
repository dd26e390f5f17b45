//! The Lambda entry point of social-media-sync: wiring only.

use std::sync::Arc;
use std::time::Duration;

use backbone::aws::ColdStart;
use backbone::config::ProcessEnv;
use backbone::harness::{Task, serve};
use backbone::web::HttpWeb;
use social_media_sync::{SocialMediaSync, pacing::TokioSleeper};

/// Longest wait for one upstream request.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    let cold = ColdStart::from_env(SocialMediaSync::NAME, env!("CARGO_PKG_VERSION")).await?;
    let web = HttpWeb::new(
        &social_media_sync::user_agent(&ProcessEnv)?,
        REQUEST_TIMEOUT,
        social_media_sync::upstreams_from_env(&ProcessEnv)?,
    )?;
    let task = SocialMediaSync {
        web: Arc::new(web),
        store: Arc::new(cold.adapters.store.clone()),
        secrets: cold.secrets.clone(),
        events: Arc::new(cold.adapters.events.clone()),
        clock: Arc::new(backbone::clock::SystemClock),
        sleeper: Arc::new(TokioSleeper),
        settings: social_media_sync::Settings::from_env(&ProcessEnv)?,
    };
    serve(cold.harness(task)).await
}
