//! [`TextGenerator`] on Amazon Bedrock's Converse API, with a forced tool call.
//!
//! The model answers through one tool, `write_draft`, whose input schema is `{"text": string}`:
//! Converse has no free-form structured output for every model, but a forced tool call gives a
//! JSON answer on every model that supports tools. A model that answers in plain text anyway
//! (`end_turn` with text blocks) is read as that text. An optional guardrail is applied and its
//! trace returned for storage with the draft. Every `stopReason` is mapped to [`StopReason`];
//! what each means for a draft is the caller's decision.

use std::time::Duration;

use async_trait::async_trait;
use aws_sdk_bedrockruntime::Client;
use aws_sdk_bedrockruntime::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_bedrockruntime::operation::converse::{ConverseError, ConverseOutput};
use aws_sdk_bedrockruntime::types::{
    ContentBlock, ConversationRole, ConverseOutput as Output, GuardrailConfiguration,
    GuardrailTrace, InferenceConfiguration, Message, SpecificToolChoice, StopReason as Stop,
    SystemContentBlock, Tool, ToolChoice, ToolConfiguration, ToolInputSchema, ToolSpecification,
};
use aws_smithy_types::{Document, Number};

use crate::config::{ConfigError, EnvSource, optional, parse_or};
use crate::ports::text::{Generation, StopReason, TextError, TextGenerator, TextRequest};

/// The name of the forced tool.
pub const DRAFT_TOOL: &str = "write_draft";
const PROVIDER: &str = "bedrock";

/// The adapter's settings, from the environment.
#[derive(Debug, Clone, PartialEq)]
pub struct BedrockConfig {
    /// `BEDROCK_MODEL_ID`: the model or inference profile id (or ARN).
    pub model_id: String,
    /// `BEDROCK_CONTEXT_TOKENS`: the model's context window (default 200,000).
    pub context_tokens: usize,
    /// `BEDROCK_TIMEOUT_SECONDS`: longest wait for one answer (default 60).
    pub timeout: Duration,
    /// `BEDROCK_GUARDRAIL_ID` and `BEDROCK_GUARDRAIL_VERSION`: the optional guardrail (both or
    /// neither).
    pub guardrail: Option<(String, String)>,
}

impl BedrockConfig {
    /// Reads the settings; a missing model id or half a guardrail is an error naming the
    /// variable.
    pub fn from_env(env: &dyn EnvSource) -> Result<Self, ConfigError> {
        // Required of the functions that write with Bedrock only (not `required`, which the
        // template checks demand of every function that links `shared`).
        let model_id = optional(env, "BEDROCK_MODEL_ID").ok_or(ConfigError::Missing {
            name: "BEDROCK_MODEL_ID",
        })?;
        let context_tokens = parse_or(env, "BEDROCK_CONTEXT_TOKENS", 200_000usize)?;
        let timeout = Duration::from_secs(parse_or(env, "BEDROCK_TIMEOUT_SECONDS", 60u64)?);
        let guardrail = match (
            optional(env, "BEDROCK_GUARDRAIL_ID"),
            optional(env, "BEDROCK_GUARDRAIL_VERSION"),
        ) {
            (Some(id), Some(version)) => Some((id, version)),
            (None, None) => None,
            (Some(_), None) => {
                return Err(ConfigError::Missing {
                    name: "BEDROCK_GUARDRAIL_VERSION",
                });
            }
            (None, Some(_)) => {
                return Err(ConfigError::Missing {
                    name: "BEDROCK_GUARDRAIL_ID",
                });
            }
        };
        Ok(Self {
            model_id,
            context_tokens,
            timeout,
            guardrail,
        })
    }
}

/// The Bedrock Converse adapter.
#[derive(Debug, Clone)]
pub struct BedrockGenerator {
    client: Client,
    config: BedrockConfig,
}

impl BedrockGenerator {
    /// The adapter over a client built from the cold start's SDK configuration.
    pub fn new(sdk: &aws_config::SdkConfig, config: BedrockConfig) -> Self {
        Self {
            client: Client::new(sdk),
            config,
        }
    }

    /// The adapter over a client built elsewhere (tests point one at a loopback fake).
    pub fn with_client(client: Client, config: BedrockConfig) -> Self {
        Self { client, config }
    }

    fn tool_config() -> Result<ToolConfiguration, TextError> {
        let schema = Document::Object(
            [
                ("type".to_owned(), Document::String("object".into())),
                (
                    "properties".to_owned(),
                    Document::Object(
                        [(
                            "text".to_owned(),
                            Document::Object(
                                [
                                    ("type".to_owned(), Document::String("string".into())),
                                    (
                                        "description".to_owned(),
                                        Document::String(
                                            "The draft, with facts as {{fact-id}} placeholders"
                                                .into(),
                                        ),
                                    ),
                                ]
                                .into(),
                            ),
                        )]
                        .into(),
                    ),
                ),
                (
                    "required".to_owned(),
                    Document::Array(vec![Document::String("text".into())]),
                ),
            ]
            .into(),
        );
        let spec = ToolSpecification::builder()
            .name(DRAFT_TOOL)
            .description("Returns the finished draft")
            .input_schema(ToolInputSchema::Json(schema))
            .build()
            .map_err(|e| build_error("tool specification", e))?;
        ToolConfiguration::builder()
            .tools(Tool::ToolSpec(spec))
            .tool_choice(ToolChoice::Tool(
                SpecificToolChoice::builder()
                    .name(DRAFT_TOOL)
                    .build()
                    .map_err(|e| build_error("tool choice", e))?,
            ))
            .build()
            .map_err(|e| build_error("tool configuration", e))
    }
}

fn build_error(what: &str, source: impl std::error::Error + Send + Sync + 'static) -> TextError {
    TextError::Unavailable {
        provider: PROVIDER.into(),
        operation: format!("build {what}"),
        source: Box::new(source),
    }
}

#[async_trait]
impl TextGenerator for BedrockGenerator {
    fn model(&self) -> String {
        format!("{PROVIDER}:{}", self.config.model_id)
    }

    fn context_tokens(&self) -> usize {
        self.config.context_tokens
    }

    async fn generate(&self, request: &TextRequest) -> Result<Generation, TextError> {
        let message = Message::builder()
            .role(ConversationRole::User)
            .content(ContentBlock::Text(request.user.clone()))
            .build()
            .map_err(|e| build_error("message", e))?;
        // Bedrock caps maxTokens at the model's limit; a budget beyond i32 is never meaningful.
        let max_tokens = i32::try_from(request.max_tokens).unwrap_or(i32::MAX);
        let mut call = self
            .client
            .converse()
            .model_id(&self.config.model_id)
            .system(SystemContentBlock::Text(request.system.clone()))
            .messages(message)
            .inference_config(
                InferenceConfiguration::builder()
                    .max_tokens(max_tokens)
                    .temperature(request.temperature)
                    .build(),
            )
            .tool_config(Self::tool_config()?);
        if let Some((id, version)) = &self.config.guardrail {
            call = call.guardrail_config(
                GuardrailConfiguration::builder()
                    .guardrail_identifier(id)
                    .guardrail_version(version)
                    .trace(GuardrailTrace::Enabled)
                    .build(),
            );
        }
        let answer = match tokio::time::timeout(self.config.timeout, call.send()).await {
            Err(_) => {
                return Err(TextError::Timeout {
                    provider: PROVIDER.into(),
                    after: self.config.timeout,
                });
            }
            Ok(result) => result.map_err(|e| self.error(e))?,
        };
        Ok(self.read(&answer))
    }
}

impl BedrockGenerator {
    fn read(&self, answer: &ConverseOutput) -> Generation {
        let mut text = String::new();
        if let Some(Output::Message(message)) = answer.output() {
            for block in message.content() {
                match block {
                    ContentBlock::ToolUse(tool) if tool.name() == DRAFT_TOOL => {
                        if let Document::Object(fields) = tool.input()
                            && let Some(Document::String(t)) = fields.get("text")
                        {
                            text.push_str(t);
                        }
                    }
                    ContentBlock::Text(t) => {
                        if !text.is_empty() {
                            text.push('\n');
                        }
                        text.push_str(t);
                    }
                    _ => {}
                }
            }
        }
        let stop = match answer.stop_reason() {
            Stop::EndTurn => StopReason::EndTurn,
            Stop::ToolUse => StopReason::ToolUse,
            Stop::StopSequence => StopReason::StopSequence,
            Stop::MaxTokens => StopReason::MaxTokens,
            Stop::GuardrailIntervened => StopReason::GuardrailIntervened,
            Stop::ContentFiltered => StopReason::ContentFiltered,
            Stop::ModelContextWindowExceeded => StopReason::ModelContextWindowExceeded,
            other => StopReason::Other(other.as_str().to_owned()),
        };
        let usage = answer.usage();
        Generation {
            text,
            stop,
            model: self.model(),
            input_tokens: usage.and_then(|u| u64::try_from(u.input_tokens()).ok()),
            output_tokens: usage.and_then(|u| u64::try_from(u.output_tokens()).ok()),
            // The SDK's trace types are not serialisable: the trace is kept as its debug
            // rendering, which names every assessment, filter and action.
            guardrail_trace: answer
                .trace()
                .and_then(|t| t.guardrail())
                .map(|g| serde_json::json!({ "guardrail": format!("{g:?}") })),
        }
    }

    fn error(&self, err: SdkError<ConverseError>) -> TextError {
        let provider = PROVIDER.to_owned();
        match &err {
            SdkError::TimeoutError(_) => {
                return TextError::Timeout {
                    provider,
                    after: self.config.timeout,
                };
            }
            SdkError::ServiceError(service) => {
                let e = service.err();
                match e {
                    ConverseError::ThrottlingException(_) => {
                        let retry_after = service
                            .raw()
                            .headers()
                            .get("retry-after")
                            .and_then(|v| v.trim().parse::<u64>().ok())
                            .map(Duration::from_secs);
                        return TextError::Throttled {
                            provider,
                            retry_after,
                        };
                    }
                    ConverseError::ModelTimeoutException(_) => {
                        return TextError::Timeout {
                            provider,
                            after: self.config.timeout,
                        };
                    }
                    ConverseError::ValidationException(v)
                        if v.message().is_some_and(is_context_message) =>
                    {
                        return TextError::ContextWindowExceeded { provider };
                    }
                    ConverseError::ValidationException(_)
                    | ConverseError::AccessDeniedException(_)
                    | ConverseError::ResourceNotFoundException(_) => {
                        return TextError::Refused {
                            provider,
                            reason: format!(
                                "{}: {}",
                                e.code().unwrap_or("error"),
                                e.message().unwrap_or("no message")
                            ),
                        };
                    }
                    _ => {}
                }
            }
            _ => {}
        }
        TextError::Unavailable {
            provider,
            operation: "Converse".into(),
            source: Box::new(err),
        }
    }
}

/// Whether a ValidationException's message says the input is too long for the model.
fn is_context_message(message: &str) -> bool {
    let m = message.to_ascii_lowercase();
    m.contains("too long") || m.contains("context window") || m.contains("too many input tokens")
}

/// Converts JSON to a smithy document (for tests and callers that build tool inputs).
pub fn to_document(value: &serde_json::Value) -> Document {
    match value {
        serde_json::Value::Null => Document::Null,
        serde_json::Value::Bool(b) => Document::Bool(*b),
        serde_json::Value::Number(n) => match (n.as_u64(), n.as_i64(), n.as_f64()) {
            (Some(u), _, _) => Document::Number(Number::PosInt(u)),
            (_, Some(i), _) => Document::Number(Number::NegInt(i)),
            (_, _, Some(f)) => Document::Number(Number::Float(f)),
            _ => Document::Null,
        },
        serde_json::Value::String(s) => Document::String(s.clone()),
        serde_json::Value::Array(a) => Document::Array(a.iter().map(to_document).collect()),
        serde_json::Value::Object(o) => {
            Document::Object(o.iter().map(|(k, v)| (k.clone(), to_document(v))).collect())
        }
    }
}
