//! `tasks content ...`: draft, approve, publish and reject through the ai-content-generation
//! function (so every change is validated and audited as a message would be), and read drafts.
//!
//! The generator is chosen by `TEXT_GENERATOR`: `local` (default: the embedded SmolLM2 model,
//! fetched by `scripts/fetch-model.sh`), `template` (deterministic sentences, no model) or
//! `openai` (an OpenAI-compatible chat completions endpoint: `OPENAI_BASE_URL`, `OPENAI_MODEL`,
//! `OPENAI_API_KEY`, see `backbone::openai`).

use std::sync::Arc;
use std::time::Duration;

use ai_content_generation::drafts;
use ai_content_generation::local_model::{LazyModel, LocalModel};
use ai_content_generation::writer::TemplateWriter;
use anyhow::{Context, Result, bail};
use backbone::config::{ConfigError, EnvSource, optional, parse_or};
use backbone::harness::Outcome;
use backbone::local::{Invoke, LocalDb};
use backbone::openai::{OpenAiConfig, OpenAiGenerator};
use backbone::ports::TextGenerator;
use backbone::validate::ArtistId;
use clap::Subcommand;
use serde_json::{Value, json};

/// The content commands.
#[derive(Debug, Subcommand)]
pub enum ContentCommand {
    /// Write a draft from the facts stored about an artist.
    Draft {
        /// The artist (Spotify id).
        #[arg(long)]
        artist: String,
        /// bio_short, bio_long, release_announcement, playlist_description, social_post.
        #[arg(long)]
        kind: String,
        /// en, fr or de.
        #[arg(long, default_value = "en")]
        language: String,
        /// neutral, warm, energetic, formal.
        #[arg(long, default_value = "neutral")]
        tone: String,
        /// Target words (within the kind's bounds).
        #[arg(long)]
        words: Option<u16>,
        /// The release to announce (album id).
        #[arg(long)]
        release: Option<String>,
        /// The playlist to describe.
        #[arg(long)]
        playlist: Option<String>,
        /// Tracks whose analysis may be used (repeatable).
        #[arg(long = "track")]
        tracks: Vec<String>,
        /// Declare the follower growth over 28 days (`growth`) as a usable derivation.
        #[arg(long)]
        growth: bool,
    },
    /// Approve a verified draft.
    Approve {
        /// The draft id.
        draft: String,
        /// Who approves.
        #[arg(long)]
        by: String,
    },
    /// Publish an approved draft.
    Publish {
        /// The draft id.
        draft: String,
        /// Who publishes.
        #[arg(long)]
        by: String,
    },
    /// Reject a draft.
    Reject {
        /// The draft id.
        draft: String,
        /// Who rejects.
        #[arg(long)]
        by: String,
        /// Why.
        #[arg(long)]
        reason: String,
    },
    /// Print a stored draft (text, provenance, verification, history) as JSON.
    Show {
        /// The draft id.
        draft: String,
    },
    /// List an artist's drafts.
    List {
        /// The artist.
        #[arg(long)]
        artist: String,
    },
}

/// The text generator of the local CLI, from `TEXT_GENERATOR`, `LOCAL_MODEL_PATH`,
/// `LOCAL_MODEL_CONTEXT_TOKENS` (default 2048) and `LOCAL_MODEL_TIMEOUT_SECONDS` (default 300).
pub fn generator(env: &dyn EnvSource) -> Result<Arc<dyn TextGenerator>, ConfigError> {
    match optional(env, "TEXT_GENERATOR").as_deref() {
        None | Some("local") => {
            let path = optional(env, "LOCAL_MODEL_PATH")
                .map(Into::into)
                .or_else(LocalModel::default_path)
                .ok_or(ConfigError::Missing {
                    name: "LOCAL_MODEL_PATH",
                })?;
            let context = parse_or(env, "LOCAL_MODEL_CONTEXT_TOKENS", 2048usize)?;
            let timeout = parse_or(env, "LOCAL_MODEL_TIMEOUT_SECONDS", 300u64)?;
            Ok(Arc::new(LazyModel::new(
                path,
                context,
                Duration::from_secs(timeout),
            )))
        }
        Some("template") => Ok(Arc::new(TemplateWriter)),
        Some("openai") => {
            let config = OpenAiConfig::from_env(env)?;
            let generator = OpenAiGenerator::new(config).map_err(|e| ConfigError::Malformed {
                name: "OPENAI_BASE_URL",
                reason: e.to_string(),
            })?;
            Ok(Arc::new(generator))
        }
        Some(_) => Err(ConfigError::Malformed {
            name: "TEXT_GENERATOR",
            reason: "must be `local`, `template` or `openai`".into(),
        }),
    }
}

fn out(value: &Value) -> Result<()> {
    let text = serde_json::to_string_pretty(value)?;
    std::io::Write::write_all(&mut std::io::stdout(), format!("{text}\n").as_bytes())?;
    Ok(())
}

/// Runs `command`; `Ok(false)` when the function refused it.
pub async fn run(
    command: ContentCommand,
    db: &LocalDb,
    functions: &[Box<dyn Invoke>],
) -> Result<bool> {
    let payload = match command {
        ContentCommand::Show { draft } => {
            let Some((d, _)) = drafts::load(db, &draft).await? else {
                bail!("no draft {draft}");
            };
            out(&serde_json::to_value(d)?)?;
            return Ok(true);
        }
        ContentCommand::List { artist } => {
            let artist = ArtistId::parse("artist", &artist).map_err(|e| anyhow::anyhow!("{e}"))?;
            out(&json!(drafts::of_artist(db, &artist).await?))?;
            return Ok(true);
        }
        ContentCommand::Draft {
            artist,
            kind,
            language,
            tone,
            words,
            release,
            playlist,
            tracks,
            growth,
        } => {
            let mut p = json!({"action": "draft", "artist": artist, "kind": kind,
                "language": language, "tone": tone, "tracks": tracks});
            if let Some(w) = words {
                p["max_words"] = json!(w);
            }
            if let Some(r) = release {
                p["release"] = json!(r);
            }
            if let Some(pl) = playlist {
                p["playlist"] = json!(pl);
            }
            if growth {
                p["derivations"] = json!([{"kind": "percent_change", "id": "growth",
                    "from": "artist.followers_earlier", "to": "artist.followers"}]);
            }
            p
        }
        ContentCommand::Approve { draft, by } => {
            json!({"action": "approve", "draft": draft, "by": by})
        }
        ContentCommand::Publish { draft, by } => {
            json!({"action": "publish", "draft": draft, "by": by})
        }
        ContentCommand::Reject { draft, by, reason } => {
            json!({"action": "reject", "draft": draft, "by": by, "reason": reason})
        }
    };
    let function = functions
        .iter()
        .find(|f| f.name() == "ai-content-generation")
        .context("the ai-content-generation function is not registered")?;
    let report = function
        .invoke(payload)
        .await
        .map_err(|e| anyhow::anyhow!("ai-content-generation failed: {e}"))?;
    let (_, outcome) = report
        .messages
        .into_iter()
        .next()
        .context("the function reported no message")?;
    match outcome {
        Outcome::Completed { output, .. } => {
            out(&output)?;
            Ok(output.get("outcome").and_then(Value::as_str) != Some("refused"))
        }
        other => {
            out(&json!({"failed": format!("{other:?}")}))?;
            Ok(false)
        }
    }
}

/// The generator the functions get when `TEXT_GENERATOR` and friends are malformed: every
/// draft is refused with the configuration error (the CLI reports it before this is reached).
pub struct Misconfigured(pub String);

#[async_trait::async_trait]
impl TextGenerator for Misconfigured {
    fn model(&self) -> String {
        "misconfigured".into()
    }

    fn context_tokens(&self) -> usize {
        // Any prompt "fits": the refusal comes from `generate`, with the configuration error.
        usize::MAX
    }

    async fn generate(
        &self,
        _request: &backbone::ports::TextRequest,
    ) -> Result<backbone::ports::Generation, backbone::ports::TextError> {
        Err(backbone::ports::TextError::Refused {
            provider: "configuration".into(),
            reason: self.0.clone(),
        })
    }
}
