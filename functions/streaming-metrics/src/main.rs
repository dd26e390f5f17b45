//! The Lambda entry point of streaming-metrics: wiring only.

use std::sync::Arc;

use backbone::aws::ColdStart;
use backbone::config::{ProcessEnv, parse_or};
use backbone::harness::{Task, serve};
use streaming_metrics::{DEFAULT_MAX_REPORT_BYTES, StreamingMetrics};

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    let cold = ColdStart::from_env(StreamingMetrics::NAME, env!("CARGO_PKG_VERSION")).await?;
    let mut task = StreamingMetrics::new(
        Arc::new(cold.adapters.store.clone()),
        Arc::new(cold.adapters.events.clone()),
        Arc::new(cold.objects()?),
    );
    task.max_report_bytes = parse_or(&ProcessEnv, "MAX_REPORT_BYTES", DEFAULT_MAX_REPORT_BYTES)?;
    serve(cold.harness(task)).await
}
