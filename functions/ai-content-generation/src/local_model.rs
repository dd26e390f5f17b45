//! The embedded local model: SmolLM2-135M-Instruct (Q4_1 GGUF) run on the CPU with candle,
//! so drafts can be written with no account and no network (feature `local-model`; never in
//! the Lambda binary).
//!
//! The file is fetched and verified by `scripts/fetch-model.sh` into a cache outside the
//! repository; [`LocalModel::default_path`] is where that script puts it. The tokenizer is
//! built from the GGUF's metadata, with one correction: for this model's pre-tokenizer type
//! candle falls back to a byte-level pre-tokenizer that adds a prefix space and mangles the
//! ChatML tags, so it is replaced by individual digits then byte level without prefix space.
//! Decoding is greedy (temperature is ignored) with a mild repetition penalty: the same prompt
//! gives the same text on one build.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use backbone::ports::{Generation, StopReason, TextError, TextGenerator, TextRequest};
use candle_core::quantized::gguf_file;
use candle_core::quantized::tokenizer::TokenizerFromGguf;
use candle_core::{Device, Tensor};
use candle_transformers::generation::{LogitsProcessor, Sampling};
use candle_transformers::models::quantized_llama::ModelWeights;
use tokenizers::Tokenizer;
use tokenizers::pre_tokenizers::byte_level::ByteLevel;
use tokenizers::pre_tokenizers::digits::Digits;
use tokenizers::pre_tokenizers::sequence::Sequence;

/// The file name `scripts/fetch-model.sh` caches.
pub const MODEL_FILE: &str = "SmolLM2-135M-Instruct.Q4_1.gguf";
/// The model's trained context, tokens.
pub const TRAINED_CONTEXT: usize = 8192;
/// `<|im_end|>`: the end of a ChatML turn.
const IM_END: u32 = 2;
/// `<|endoftext|>`.
const END_OF_TEXT: u32 = 0;
/// Repetition penalty over the last tokens (a 135M model loops without one).
const REPEAT_PENALTY: f32 = 1.15;
const REPEAT_LAST_N: usize = 64;
const PROVIDER: &str = "local";

/// Why the model could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    /// The file is missing or unreadable.
    #[error("local model {path}: {source} (run scripts/fetch-model.sh)")]
    Io {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The file is not a usable GGUF of this model.
    #[error("local model {path}: {reason}")]
    Format {
        /// The file.
        path: PathBuf,
        /// Why.
        reason: String,
    },
}

struct Loaded {
    weights: ModelWeights,
    tokenizer: Tokenizer,
}

/// The local model, loaded once and shared (one generation at a time).
#[derive(Clone)]
pub struct LocalModel {
    inner: Arc<Mutex<Loaded>>,
    context_tokens: usize,
    timeout: Duration,
}

impl std::fmt::Debug for LocalModel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LocalModel")
            .field("context_tokens", &self.context_tokens)
            .field("timeout", &self.timeout)
            .finish_non_exhaustive()
    }
}

impl LocalModel {
    /// Where `scripts/fetch-model.sh` caches the file: `$LOCAL_MODEL_PATH`, else
    /// `$MUSIC_TASKS_MODEL_DIR/<file>`, else `${XDG_CACHE_HOME:-~/.cache}/music-tasks/models/<file>`.
    pub fn default_path() -> Option<PathBuf> {
        if let Some(p) = std::env::var_os("LOCAL_MODEL_PATH") {
            return Some(PathBuf::from(p));
        }
        if let Some(d) = std::env::var_os("MUSIC_TASKS_MODEL_DIR") {
            return Some(PathBuf::from(d).join(MODEL_FILE));
        }
        let cache = std::env::var_os("XDG_CACHE_HOME")
            .map(PathBuf::from)
            .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache")))?;
        Some(cache.join("music-tasks").join("models").join(MODEL_FILE))
    }

    /// Loads the GGUF at `path`. `context_tokens` is the prompt-plus-answer size the caller
    /// fits into (at most the trained 8,192; smaller keeps CPU prompts short); `timeout` bounds
    /// one generation.
    pub fn load(path: &Path, context_tokens: usize, timeout: Duration) -> Result<Self, LoadError> {
        let io = |source| LoadError::Io {
            path: path.to_owned(),
            source,
        };
        let format = |reason: String| LoadError::Format {
            path: path.to_owned(),
            reason,
        };
        let mut file = std::fs::File::open(path).map_err(io)?;
        let content = gguf_file::Content::read(&mut file).map_err(|e| format(e.to_string()))?;
        let mut tokenizer =
            Tokenizer::from_gguf(&content).map_err(|e| format(format!("tokenizer: {e}")))?;
        tokenizer.with_pre_tokenizer(Some(Sequence::new(vec![
            Digits::new(true).into(),
            ByteLevel::new(false, true, false).into(),
        ])));
        let weights = ModelWeights::from_gguf(content, &mut file, &Device::Cpu)
            .map_err(|e| format(format!("weights: {e}")))?;
        Ok(Self {
            inner: Arc::new(Mutex::new(Loaded { weights, tokenizer })),
            context_tokens: context_tokens.min(TRAINED_CONTEXT),
            timeout,
        })
    }

    /// The ChatML prompt of `request`.
    pub fn chatml(request: &TextRequest) -> String {
        format!(
            "<|im_start|>system\n{}<|im_end|>\n<|im_start|>user\n{}<|im_end|>\n<|im_start|>assistant\n",
            request.system, request.user
        )
    }

    /// The token ids of `text` (ChatML tags as their special tokens).
    pub fn tokenize(&self, text: &str) -> Result<Vec<u32>, TextError> {
        let loaded = self.inner.lock().map_err(|_| poisoned())?;
        encode(&loaded.tokenizer, text)
    }
}

fn poisoned() -> TextError {
    TextError::Unavailable {
        provider: PROVIDER.into(),
        operation: "lock".into(),
        source: "a previous generation panicked".into(),
    }
}

fn encode(tokenizer: &Tokenizer, text: &str) -> Result<Vec<u32>, TextError> {
    tokenizer
        .encode(text, false)
        .map(|e| e.get_ids().to_vec())
        .map_err(|e| TextError::Unavailable {
            provider: PROVIDER.into(),
            operation: "tokenize".into(),
            source: e,
        })
}

fn candle_err(operation: &str) -> impl Fn(candle_core::Error) -> TextError + '_ {
    move |e| TextError::Unavailable {
        provider: PROVIDER.into(),
        operation: operation.into(),
        source: Box::new(e),
    }
}

/// Timing of one generation, for the benchmark.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Timing {
    /// Prompt tokens.
    pub prompt_tokens: usize,
    /// Tokens generated.
    pub generated_tokens: usize,
    /// Time to process the prompt.
    pub prompt: Duration,
    /// Time to generate.
    pub decode: Duration,
}

impl LocalModel {
    /// Generates synchronously (the async port runs this on a blocking thread).
    pub fn generate_blocking(
        &self,
        request: &TextRequest,
    ) -> Result<(Generation, Timing), TextError> {
        let started = Instant::now();
        let deadline = started + self.timeout;
        let mut loaded = self.inner.lock().map_err(|_| poisoned())?;
        let Loaded { weights, tokenizer } = &mut *loaded;
        let prompt = encode(tokenizer, &Self::chatml(request))?;
        let budget = request.max_tokens as usize;
        if prompt.len() + budget > self.context_tokens {
            return Err(TextError::ContextWindowExceeded {
                provider: PROVIDER.into(),
            });
        }
        weights.clear_kv_cache();
        let mut sampler = LogitsProcessor::from_sampling(0, Sampling::ArgMax);
        let input = Tensor::new(prompt.as_slice(), &Device::Cpu)
            .and_then(|t| t.unsqueeze(0))
            .map_err(candle_err("prompt tensor"))?;
        let mut logits = weights
            .forward(&input, 0)
            .and_then(|l| l.squeeze(0))
            .map_err(candle_err("prompt"))?;
        let prompt_time = started.elapsed();
        let mut generated: Vec<u32> = Vec::with_capacity(budget);
        let mut stop = StopReason::MaxTokens;
        while generated.len() < budget {
            if Instant::now() > deadline {
                return Err(TextError::Timeout {
                    provider: PROVIDER.into(),
                    after: self.timeout,
                });
            }
            let recent = &generated[generated.len().saturating_sub(REPEAT_LAST_N)..];
            let penalised =
                candle_transformers::utils::apply_repeat_penalty(&logits, REPEAT_PENALTY, recent)
                    .map_err(candle_err("penalty"))?;
            let next = sampler.sample(&penalised).map_err(candle_err("sample"))?;
            if next == IM_END || next == END_OF_TEXT {
                stop = StopReason::EndTurn;
                break;
            }
            generated.push(next);
            let input = Tensor::new(&[next], &Device::Cpu)
                .and_then(|t| t.unsqueeze(0))
                .map_err(candle_err("token tensor"))?;
            logits = weights
                .forward(&input, prompt.len() + generated.len() - 1)
                .and_then(|l| l.squeeze(0))
                .map_err(candle_err("decode"))?;
        }
        let text = tokenizer
            .decode(&generated, true)
            .map_err(|e| TextError::Unavailable {
                provider: PROVIDER.into(),
                operation: "detokenize".into(),
                source: e,
            })?;
        let timing = Timing {
            prompt_tokens: prompt.len(),
            generated_tokens: generated.len(),
            prompt: prompt_time,
            decode: started.elapsed() - prompt_time,
        };
        Ok((
            Generation {
                text,
                stop,
                model: self.model(),
                input_tokens: Some(prompt.len() as u64),
                output_tokens: Some(generated.len() as u64),
                guardrail_trace: None,
            },
            timing,
        ))
    }
}

#[async_trait]
impl TextGenerator for LocalModel {
    fn model(&self) -> String {
        format!("{PROVIDER}:smollm2-135m-instruct-q4_1")
    }

    fn context_tokens(&self) -> usize {
        self.context_tokens
    }

    async fn generate(&self, request: &TextRequest) -> Result<Generation, TextError> {
        let model = self.clone();
        let request = request.clone();
        tokio::task::spawn_blocking(move || model.generate_blocking(&request).map(|(g, _)| g))
            .await
            .map_err(|e| TextError::Unavailable {
                provider: PROVIDER.into(),
                operation: "generation thread".into(),
                source: Box::new(e),
            })?
    }
}

/// The local model loaded on its first request: a CLI that never drafts never reads the file,
/// and a missing file is a refusal naming it (and the script that fetches it), not a crash.
pub struct LazyModel {
    path: PathBuf,
    context_tokens: usize,
    timeout: Duration,
    cell: tokio::sync::OnceCell<LocalModel>,
}

impl LazyModel {
    /// The model at `path`, loaded when first asked (see [`LocalModel::load`]).
    pub fn new(path: PathBuf, context_tokens: usize, timeout: Duration) -> Self {
        Self {
            path,
            context_tokens: context_tokens.min(TRAINED_CONTEXT),
            timeout,
            cell: tokio::sync::OnceCell::new(),
        }
    }
}

#[async_trait]
impl TextGenerator for LazyModel {
    fn model(&self) -> String {
        format!("{PROVIDER}:smollm2-135m-instruct-q4_1")
    }

    fn context_tokens(&self) -> usize {
        self.context_tokens
    }

    async fn generate(&self, request: &TextRequest) -> Result<Generation, TextError> {
        let model = self
            .cell
            .get_or_try_init(|| {
                let (path, context, timeout) =
                    (self.path.clone(), self.context_tokens, self.timeout);
                async move {
                    tokio::task::spawn_blocking(move || LocalModel::load(&path, context, timeout))
                        .await
                        .map_err(|e| TextError::Unavailable {
                            provider: PROVIDER.into(),
                            operation: "load thread".into(),
                            source: Box::new(e),
                        })?
                        .map_err(|e| TextError::Refused {
                            provider: PROVIDER.into(),
                            reason: e.to_string(),
                        })
                }
            })
            .await?;
        model.generate(request).await
    }
}
