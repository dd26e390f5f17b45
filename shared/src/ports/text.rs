//! `TextGenerator`: a language model that writes a draft from a prompt.
//!
//! Adapters: Amazon Bedrock's Converse API (`aws::bedrock`, feature `bedrock`), the embedded
//! local model and a deterministic template writer (both in `ai-content-generation`). The port
//! carries what every provider has in common: a system prompt, one user turn, a token budget,
//! and why generation stopped; the caller decides what each stop reason means for a draft.

use std::time::Duration;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

use crate::error::{Classify, ErrorClass};

/// One generation request.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TextRequest {
    /// Instructions: what to write and the rules (placeholders, no figures).
    pub system: String,
    /// The user turn: the fact sheet and the brief.
    pub user: String,
    /// Most tokens the answer may have.
    pub max_tokens: u32,
    /// Sampling temperature (0 is greedy where the provider allows it).
    pub temperature: f32,
}

/// Why the provider stopped writing; mirrors Bedrock's `StopReason`, which is the superset.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StopReason {
    /// The model finished its answer.
    EndTurn,
    /// The model answered through the forced tool (the normal end of a structured answer).
    ToolUse,
    /// A stop sequence ended the answer.
    StopSequence,
    /// The token budget ran out: the answer is cut.
    MaxTokens,
    /// A guardrail blocked or changed the answer.
    GuardrailIntervened,
    /// The provider's content filter removed the answer.
    ContentFiltered,
    /// The prompt does not fit the model's context window.
    ModelContextWindowExceeded,
    /// A reason this version does not know; treated as not usable.
    Other(String),
}

/// What the provider answered.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Generation {
    /// The answer text (placeholders and prose).
    pub text: String,
    /// Why it stopped.
    pub stop: StopReason,
    /// The model that wrote it (provider id).
    pub model: String,
    /// Prompt tokens, when the provider reports them.
    pub input_tokens: Option<u64>,
    /// Answer tokens, when the provider reports them.
    pub output_tokens: Option<u64>,
    /// The guardrail trace, when a guardrail is configured (stored with the draft).
    pub guardrail_trace: Option<serde_json::Value>,
}

/// Why a provider gave no answer.
#[derive(Debug, thiserror::Error)]
pub enum TextError {
    /// No answer within the time allowed.
    #[error("{provider}: no answer within {after:?}")]
    Timeout {
        /// The provider.
        provider: String,
        /// The time allowed.
        after: Duration,
    },
    /// The provider throttled the call.
    #[error("{provider}: throttled")]
    Throttled {
        /// The provider.
        provider: String,
        /// How long it asked to wait, when it said.
        retry_after: Option<Duration>,
    },
    /// The prompt does not fit the model's context (as an error rather than a stop reason).
    #[error("{provider}: the prompt exceeds the model's context window")]
    ContextWindowExceeded {
        /// The provider.
        provider: String,
    },
    /// The provider refused the request as malformed or not allowed (4xx other than throttling).
    #[error("{provider}: request refused: {reason}")]
    Refused {
        /// The provider.
        provider: String,
        /// What it said (never a credential).
        reason: String,
    },
    /// The provider failed (5xx, connection, model load).
    #[error("{provider}: {operation} failed")]
    Unavailable {
        /// The provider.
        provider: String,
        /// What was being done.
        operation: String,
        /// Why.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
}

impl Classify for TextError {
    fn class(&self) -> ErrorClass {
        match self {
            TextError::Timeout { .. } | TextError::Unavailable { .. } => ErrorClass::Transient,
            TextError::Throttled {
                retry_after: Some(after),
                ..
            } => ErrorClass::RateLimited(*after),
            TextError::Throttled { .. } => ErrorClass::Transient,
            TextError::ContextWindowExceeded { .. } | TextError::Refused { .. } => {
                ErrorClass::Permanent
            }
        }
    }
}

/// A language model.
#[async_trait]
pub trait TextGenerator: Send + Sync {
    /// The provider and model, for provenance (`bedrock:<model id>`, `local:smollm2-135m`).
    fn model(&self) -> String;

    /// The model's context window, tokens (the caller fits the prompt below it).
    fn context_tokens(&self) -> usize;

    /// Writes an answer to `request`.
    async fn generate(&self, request: &TextRequest) -> Result<Generation, TextError>;
}
