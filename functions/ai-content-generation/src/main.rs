//! The Lambda entry point of ai-content-generation: wiring only. Production writes with
//! Amazon Bedrock (Converse); the local model is not part of this binary.

use std::sync::Arc;

use ai_content_generation::{ContentGeneration, DEFAULT_ATTEMPTS};
use backbone::aws::ColdStart;
use backbone::aws::bedrock::{BedrockConfig, BedrockGenerator};
use backbone::config::{ProcessEnv, parse_or};
use backbone::harness::{Task, serve};

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    let cold = ColdStart::from_env(ContentGeneration::NAME, env!("CARGO_PKG_VERSION")).await?;
    let bedrock = BedrockConfig::from_env(&ProcessEnv)?;
    let attempts = parse_or(&ProcessEnv, "CONTENT_ATTEMPTS", DEFAULT_ATTEMPTS)?;
    let task = ContentGeneration {
        store: Arc::new(cold.adapters.store.clone()),
        events: Arc::new(cold.adapters.events.clone()),
        generator: Arc::new(BedrockGenerator::new(&cold.sdk, bedrock)),
        attempts,
    };
    serve(cold.harness(task)).await
}
