//! [`TextGenerator`] on an OpenAI-compatible chat completions endpoint (`POST
//! {base}/chat/completions`): OpenAI itself, and the servers that speak its API (vLLM,
//! llama.cpp's server, Ollama, LiteLLM, LocalAI).
//!
//! As with Bedrock, the model answers through one forced function tool, `write_draft`, whose
//! arguments are `{"text": string}`; a server without tool support is used with
//! `OPENAI_TOOLS=false`, and then the message content is the answer. Every `finish_reason` is
//! mapped to [`StopReason`] (`length` is `max_tokens`, `content_filter` and a `refusal` are
//! content filtered), and the error bodies of the API are read for throttling (429 with
//! `Retry-After`) and the context window (`context_length_exceeded`). The API key is a
//! [`SecretString`]: it is sent in the `Authorization` header only, and never appears in an
//! error, a log line or `Debug` output; neither does the URL.

use std::time::Duration;

use async_trait::async_trait;
use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::config::{ConfigError, EnvSource, optional, parse_or};
use crate::ports::text::{Generation, StopReason, TextError, TextGenerator, TextRequest};

/// The name of the forced tool (the same as Bedrock's).
pub const DRAFT_TOOL: &str = "write_draft";
const PROVIDER: &str = "openai";
/// Most bytes read of one answer: a draft is a few kilobytes; a larger body is not an answer.
pub const MAX_ANSWER_BYTES: usize = 1024 * 1024;
/// Most characters of a provider's error message kept in an error.
const MAX_REASON_CHARS: usize = 300;

/// The adapter's settings, from the environment.
#[derive(Clone)]
pub struct OpenAiConfig {
    /// `OPENAI_BASE_URL`: the API base, up to and including `/v1` (`http://127.0.0.1:8000/v1`).
    pub base_url: String,
    /// `OPENAI_MODEL`: the model name the server knows.
    pub model: String,
    /// `OPENAI_API_KEY`: the bearer key, if the server wants one.
    pub api_key: Option<SecretString>,
    /// `OPENAI_CONTEXT_TOKENS`: the model's context window (default 8,192).
    pub context_tokens: usize,
    /// `OPENAI_TIMEOUT_SECONDS`: longest wait for one answer (default 60).
    pub timeout: Duration,
    /// `OPENAI_TOOLS`: answer through the forced `write_draft` tool (default `true`).
    pub tools: bool,
}

impl std::fmt::Debug for OpenAiConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OpenAiConfig")
            .field("model", &self.model)
            .field("api_key", &self.api_key.as_ref().map(|_| "[redacted]"))
            .field("context_tokens", &self.context_tokens)
            .field("timeout", &self.timeout)
            .field("tools", &self.tools)
            .finish_non_exhaustive()
    }
}

impl OpenAiConfig {
    /// Reads the settings; a missing base URL or model is an error naming the variable.
    pub fn from_env(env: &dyn EnvSource) -> Result<Self, ConfigError> {
        let base_url = optional(env, "OPENAI_BASE_URL").ok_or(ConfigError::Missing {
            name: "OPENAI_BASE_URL",
        })?;
        if !(base_url.starts_with("http://") || base_url.starts_with("https://")) {
            return Err(ConfigError::Malformed {
                name: "OPENAI_BASE_URL",
                reason: "must be an http:// or https:// URL".into(),
            });
        }
        let model = optional(env, "OPENAI_MODEL").ok_or(ConfigError::Missing {
            name: "OPENAI_MODEL",
        })?;
        let tools = match optional(env, "OPENAI_TOOLS").as_deref() {
            None | Some("true") => true,
            Some("false") => false,
            Some(_) => {
                return Err(ConfigError::Malformed {
                    name: "OPENAI_TOOLS",
                    reason: "must be `true` or `false`".into(),
                });
            }
        };
        Ok(Self {
            base_url: base_url.trim_end_matches('/').to_owned(),
            model,
            api_key: optional(env, "OPENAI_API_KEY").map(SecretString::from),
            context_tokens: parse_or(env, "OPENAI_CONTEXT_TOKENS", 8192usize)?,
            timeout: Duration::from_secs(parse_or(env, "OPENAI_TIMEOUT_SECONDS", 60u64)?),
            tools,
        })
    }
}

/// The OpenAI-compatible adapter.
#[derive(Debug, Clone)]
pub struct OpenAiGenerator {
    client: reqwest::Client,
    config: OpenAiConfig,
}

impl OpenAiGenerator {
    /// A client for `config` (rustls; no redirects: a redirect would carry the key elsewhere).
    pub fn new(config: OpenAiConfig) -> Result<Self, TextError> {
        let client = reqwest::Client::builder()
            .connect_timeout(config.timeout.min(Duration::from_secs(10)))
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(|e| unavailable("build the HTTP client", e))?;
        Ok(Self { client, config })
    }

    fn body(&self, request: &TextRequest) -> Value {
        let mut body = json!({
            "model": self.config.model,
            "messages": [
                {"role": "system", "content": request.system},
                {"role": "user", "content": request.user},
            ],
            "max_tokens": request.max_tokens,
            "temperature": request.temperature,
            "n": 1,
        });
        if self.config.tools {
            body["tools"] = json!([{
                "type": "function",
                "function": {
                    "name": DRAFT_TOOL,
                    "description": "Returns the finished draft",
                    "parameters": {
                        "type": "object",
                        "properties": {"text": {
                            "type": "string",
                            "description": "The draft, with facts as {{fact-id}} placeholders",
                        }},
                        "required": ["text"],
                        "additionalProperties": false,
                    },
                },
            }]);
            body["tool_choice"] = json!({"type": "function", "function": {"name": DRAFT_TOOL}});
        }
        body
    }

    async fn call(&self, request: &TextRequest) -> Result<Generation, TextError> {
        let mut call = self
            .client
            .post(format!("{}/chat/completions", self.config.base_url))
            .json(&self.body(request));
        if let Some(key) = &self.config.api_key {
            call = call.bearer_auth(key.expose_secret());
        }
        let response = call.send().await.map_err(|e| {
            if e.is_timeout() {
                timeout(self.config.timeout)
            } else {
                unavailable("send the request", e.without_url())
            }
        })?;
        let status = response.status();
        let retry_after = response
            .headers()
            .get(reqwest::header::RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse::<u64>().ok())
            .map(Duration::from_secs);
        let body = read_capped(response).await?;
        if !status.is_success() {
            return Err(error_of(status.as_u16(), &body, retry_after));
        }
        let answer: ChatCompletion =
            serde_json::from_slice(&body).map_err(|e| unavailable("decode the answer", e))?;
        self.read(answer)
    }

    fn read(&self, answer: ChatCompletion) -> Result<Generation, TextError> {
        let Some(choice) = answer.choices.into_iter().next() else {
            return Err(TextError::Unavailable {
                provider: PROVIDER.into(),
                operation: "read the answer".into(),
                source: "the answer has no choices".into(),
            });
        };
        let message = choice.message.unwrap_or_default();
        let mut text = String::new();
        for call in message.tool_calls.unwrap_or_default() {
            if call.function.name != DRAFT_TOOL {
                continue;
            }
            // The arguments are a JSON text; a cut answer (`length`) may leave it unfinished,
            // and then there is no text, which the caller treats as a cut answer anyway.
            if let Ok(Arguments { text: t }) = serde_json::from_str(&call.function.arguments) {
                text.push_str(&t);
            }
        }
        if text.is_empty()
            && let Some(content) = message.content
        {
            text = content;
        }
        let stop = if message.refusal.is_some_and(|r| !r.trim().is_empty()) {
            StopReason::ContentFiltered
        } else {
            match choice.finish_reason.as_deref() {
                Some("stop") => StopReason::EndTurn,
                Some("tool_calls" | "function_call") => StopReason::ToolUse,
                Some("length") => StopReason::MaxTokens,
                Some("content_filter") => StopReason::ContentFiltered,
                Some(other) => StopReason::Other(truncate(other)),
                None => StopReason::Other("none".into()),
            }
        };
        Ok(Generation {
            text,
            stop,
            model: self.model(),
            input_tokens: answer.usage.as_ref().and_then(|u| u.prompt_tokens),
            output_tokens: answer.usage.as_ref().and_then(|u| u.completion_tokens),
            guardrail_trace: None,
        })
    }
}

#[async_trait]
impl TextGenerator for OpenAiGenerator {
    fn model(&self) -> String {
        format!("{PROVIDER}:{}", self.config.model)
    }

    fn context_tokens(&self) -> usize {
        self.config.context_tokens
    }

    async fn generate(&self, request: &TextRequest) -> Result<Generation, TextError> {
        match tokio::time::timeout(self.config.timeout, self.call(request)).await {
            Ok(result) => result,
            Err(_) => Err(timeout(self.config.timeout)),
        }
    }
}

/// Reads at most [`MAX_ANSWER_BYTES`] of the body; more is an error, not a cut answer.
async fn read_capped(mut response: reqwest::Response) -> Result<Vec<u8>, TextError> {
    let mut body = Vec::new();
    while let Some(chunk) = response
        .chunk()
        .await
        .map_err(|e| unavailable("read the answer", e.without_url()))?
    {
        if body.len() + chunk.len() > MAX_ANSWER_BYTES {
            return Err(TextError::Unavailable {
                provider: PROVIDER.into(),
                operation: "read the answer".into(),
                source: format!("the answer is over {MAX_ANSWER_BYTES} bytes").into(),
            });
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

/// The error of a non-2xx answer, from its status and the API's `{"error": {...}}` body.
fn error_of(status: u16, body: &[u8], retry_after: Option<Duration>) -> TextError {
    let error = serde_json::from_slice::<ErrorBody>(body)
        .ok()
        .map(|b| b.error)
        .unwrap_or_default();
    let code = error.code.as_ref().map(code_text).unwrap_or_default();
    let message = error.message.unwrap_or_default();
    let provider = PROVIDER.to_owned();
    if status == 429 {
        // OpenAI answers 429 both for rate limits and for an exhausted quota; a quota is not
        // retried away.
        if code == "insufficient_quota" {
            return TextError::Refused {
                provider,
                reason: format!("429 insufficient_quota: {}", truncate(&message)),
            };
        }
        return TextError::Throttled {
            provider,
            retry_after,
        };
    }
    if code == "context_length_exceeded" || is_context_message(&message) {
        return TextError::ContextWindowExceeded { provider };
    }
    if (400..500).contains(&status) {
        return TextError::Refused {
            provider,
            reason: format!(
                "{status} {}: {}",
                if code.is_empty() { "error" } else { &code },
                truncate(&message)
            ),
        };
    }
    TextError::Unavailable {
        provider,
        operation: "chat completion".into(),
        source: format!("HTTP {status}: {}", truncate(&message)).into(),
    }
}

/// Whether an error message says the prompt is too long (servers without OpenAI's code).
fn is_context_message(message: &str) -> bool {
    let m = message.to_ascii_lowercase();
    m.contains("context length")
        || m.contains("context window")
        || m.contains("maximum context")
        || m.contains("too many tokens")
}

fn code_text(code: &Value) -> String {
    match code {
        Value::String(s) => truncate(s),
        other => truncate(&other.to_string()),
    }
}

fn truncate(s: &str) -> String {
    s.chars().take(MAX_REASON_CHARS).collect()
}

fn timeout(after: Duration) -> TextError {
    TextError::Timeout {
        provider: PROVIDER.into(),
        after,
    }
}

fn unavailable(
    operation: &str,
    source: impl std::error::Error + Send + Sync + 'static,
) -> TextError {
    TextError::Unavailable {
        provider: PROVIDER.into(),
        operation: operation.into(),
        source: Box::new(source),
    }
}

/// The part of a chat completion this adapter reads.
#[derive(Debug, Deserialize)]
struct ChatCompletion {
    #[serde(default)]
    choices: Vec<Choice>,
    usage: Option<Usage>,
}

#[derive(Debug, Deserialize)]
struct Choice {
    message: Option<AnswerMessage>,
    finish_reason: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
struct AnswerMessage {
    content: Option<String>,
    refusal: Option<String>,
    tool_calls: Option<Vec<ToolCall>>,
}

#[derive(Debug, Deserialize)]
struct ToolCall {
    function: FunctionCall,
}

#[derive(Debug, Deserialize)]
struct FunctionCall {
    name: String,
    #[serde(default)]
    arguments: String,
}

#[derive(Debug, Deserialize, Serialize)]
struct Arguments {
    text: String,
}

#[derive(Debug, Deserialize)]
struct Usage {
    prompt_tokens: Option<u64>,
    completion_tokens: Option<u64>,
}

#[derive(Debug, Deserialize)]
struct ErrorBody {
    #[serde(default)]
    error: ApiError,
}

#[derive(Debug, Default, Deserialize)]
struct ApiError {
    message: Option<String>,
    code: Option<Value>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    #[test]
    fn config_names_what_is_missing_and_hides_the_key() {
        let err = OpenAiConfig::from_env(&HashMap::<&str, &str>::new()).unwrap_err();
        assert!(err.to_string().contains("OPENAI_BASE_URL"), "{err}");
        let err = OpenAiConfig::from_env(&HashMap::from([(
            "OPENAI_BASE_URL",
            "http://127.0.0.1:1/v1",
        )]))
        .unwrap_err();
        assert!(err.to_string().contains("OPENAI_MODEL"), "{err}");
        let err = OpenAiConfig::from_env(&HashMap::from([
            ("OPENAI_BASE_URL", "ftp://x"),
            ("OPENAI_MODEL", "m"),
        ]))
        .unwrap_err();
        assert!(err.to_string().contains("OPENAI_BASE_URL"), "{err}");
        let config = OpenAiConfig::from_env(&HashMap::from([
            ("OPENAI_BASE_URL", "http://127.0.0.1:1/v1/"),
            ("OPENAI_MODEL", "m"),
            ("OPENAI_API_KEY", "sk-fixture-secret-key"),
            ("OPENAI_TOOLS", "false"),
        ]))
        .expect("config");
        assert_eq!(config.base_url, "http://127.0.0.1:1/v1");
        assert!(!config.tools);
        assert!(!format!("{config:?}").contains("sk-fixture"));
    }

    #[test]
    fn error_bodies_map_to_the_port_errors() {
        let ctx = br#"{"error":{"message":"This model's maximum context length is 8192 tokens","type":"invalid_request_error","param":"messages","code":"context_length_exceeded"}}"#;
        assert!(matches!(
            error_of(400, ctx, None),
            TextError::ContextWindowExceeded { .. }
        ));
        assert!(matches!(
            error_of(429, b"{}", Some(Duration::from_secs(3))),
            TextError::Throttled {
                retry_after: Some(d),
                ..
            } if d == Duration::from_secs(3)
        ));
        let quota = br#"{"error":{"message":"You exceeded your current quota","code":"insufficient_quota"}}"#;
        assert!(matches!(
            error_of(429, quota, None),
            TextError::Refused { .. }
        ));
        let denied =
            br#"{"error":{"message":"Incorrect API key provided","code":"invalid_api_key"}}"#;
        let err = error_of(401, denied, None);
        assert!(matches!(err, TextError::Refused { .. }));
        assert!(err.to_string().contains("invalid_api_key"), "{err}");
        assert!(matches!(
            error_of(503, b"not json", None),
            TextError::Unavailable { .. }
        ));
    }
}
