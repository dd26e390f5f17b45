//! ai-content-generation: drafts bios, release announcements, playlist descriptions and social
//! posts from stored facts, and proves that every number in them comes from those facts.
//!
//! One input type with an `action`: `draft` builds the fact sheet from the store
//! ([`facts`]), screens and fits it into a prompt ([`prompt`]), asks the text generator for an
//! answer that names facts by placeholder, renders the values per language ([`render`],
//! [`lang`]), and verifies the final text ([`verify`]): a figure that is not a fact fails the
//! attempt. Attempts are bounded; a draft that never verifies, or that a guardrail or filter
//! stopped, is stored for human review and can only be rejected. `approve`, `publish` and
//! `reject` change a draft's state ([`drafts`]), each audited. A stored draft raises a
//! `ContentDrafted` event; a published one `ContentPublished`.

pub mod drafts;
pub mod facts;
pub mod lang;
#[cfg(feature = "local-model")]
pub mod local_model;
pub mod prompt;
pub mod render;
pub mod request;
pub mod verify;
pub mod writer;

use std::sync::Arc;

use async_trait::async_trait;
use backbone::error::{Classify, ErrorClass, PortError};
use backbone::harness::{Cx, Task};
use backbone::ports::{BusEvent, EventPublisher, StopReason, Store, TextError, TextGenerator};
use backbone::validate::{ArtistId, Validate, ValidationError};
use serde::{Deserialize, Serialize};
use serde_json::json;
use sha2::{Digest, Sha256};
use tracing::{info, warn};

use crate::drafts::{Draft, Status, Transition, TransitionError, Verification};
use crate::facts::{FactSheet, SheetScope};
use crate::prompt::{Brief, Excluded};
use crate::render::{Rendered, Sentence};
use crate::request::{DraftRequest, Kind};
use crate::verify::{Allowed, Violation};

/// The event bus `source` of this function's events.
pub const EVENT_SOURCE: &str = "music.ai-content-generation";
/// The `detail-type` of a stored draft.
pub const DRAFTED_DETAIL_TYPE: &str = "ContentDrafted";
/// The `detail-type` of a published draft.
pub const PUBLISHED_DETAIL_TYPE: &str = "ContentPublished";
/// The version of the events' schema (`schemas/content-drafted.schema.json`).
pub const SCHEMA_VERSION: &str = "1";
/// Generation attempts per request before the draft goes to human review.
pub const DEFAULT_ATTEMPTS: u32 = 3;
/// Fewest words a shortened answer is asked for.
const MIN_WORDS: u16 = 10;

/// What a message asks for.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "action", rename_all = "snake_case")]
pub enum ContentInput {
    /// Write a draft.
    Draft(DraftRequest),
    /// Approve a verified draft.
    Approve {
        /// The draft id.
        draft: String,
        /// Who approves.
        by: String,
    },
    /// Publish an approved draft.
    Publish {
        /// The draft id.
        draft: String,
        /// Who publishes.
        by: String,
    },
    /// Reject a draft.
    Reject {
        /// The draft id.
        draft: String,
        /// Who rejects.
        by: String,
        /// Why.
        reason: String,
    },
}

fn check_actor(by: &str) -> Result<(), ValidationError> {
    if by.trim().is_empty() || by.len() > 128 || by.chars().any(char::is_control) {
        return Err(ValidationError::new("by", "1 to 128 printable characters"));
    }
    Ok(())
}

fn check_draft_id(id: &str) -> Result<(), ValidationError> {
    if id.is_empty() || id.len() > 64 || !id.chars().all(|c| c.is_ascii_alphanumeric()) {
        return Err(ValidationError::new(
            "draft",
            "a draft id (1 to 64 letters and digits)",
        ));
    }
    Ok(())
}

impl Validate for ContentInput {
    fn validate(&self) -> Result<(), ValidationError> {
        match self {
            ContentInput::Draft(r) => r.validate(),
            ContentInput::Approve { draft, by } | ContentInput::Publish { draft, by } => {
                check_draft_id(draft)?;
                check_actor(by)
            }
            ContentInput::Reject { draft, by, reason } => {
                check_draft_id(draft)?;
                check_actor(by)?;
                if reason.trim().is_empty() || reason.len() > 1000 {
                    return Err(ValidationError::new("reason", "1 to 1000 characters"));
                }
                Ok(())
            }
        }
    }
}

/// What a message did.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "outcome", rename_all = "snake_case")]
pub enum ContentOutput {
    /// A draft was stored.
    Drafted {
        /// Its id.
        draft: String,
        /// Its text passed the grounding check.
        verified: bool,
        /// Why it needs human review, if it does.
        review: Option<String>,
        /// Attempts made.
        attempts: u32,
        /// The final text.
        text: String,
    },
    /// No draft can be written from what the store holds.
    Refused {
        /// Why.
        reason: String,
    },
    /// A draft changed state.
    Changed {
        /// The draft.
        draft: String,
        /// From.
        from: Status,
        /// To.
        to: Status,
    },
}

/// Why a message failed.
#[derive(Debug, thiserror::Error)]
pub enum ContentError {
    /// The store or the bus failed.
    #[error(transparent)]
    Port(#[from] PortError),
    /// The text generator failed in a way retrying may fix.
    #[error("text generation")]
    Text(#[source] TextError),
    /// A state change was refused.
    #[error(transparent)]
    Transition(#[from] TransitionError),
}

impl Classify for ContentError {
    fn class(&self) -> ErrorClass {
        match self {
            ContentError::Port(e) => e.class(),
            ContentError::Text(e) => e.class(),
            ContentError::Transition(TransitionError::Port(e)) => e.class(),
            ContentError::Transition(_) => ErrorClass::Invalid,
        }
    }
}

/// The ai-content-generation task, over its ports.
pub struct ContentGeneration {
    /// Facts in, drafts out.
    pub store: Arc<dyn Store>,
    /// Where `ContentDrafted` and `ContentPublished` go.
    pub events: Arc<dyn EventPublisher>,
    /// The language model.
    pub generator: Arc<dyn TextGenerator>,
    /// Generation attempts per request (at least 1).
    pub attempts: u32,
}

#[async_trait]
impl Task for ContentGeneration {
    const NAME: &'static str = "ai-content-generation";
    type Input = ContentInput;
    type Output = ContentOutput;
    type Error = ContentError;

    fn idempotency_key(&self, input: &ContentInput) -> Option<String> {
        match input {
            ContentInput::Draft(_) => None,
            ContentInput::Approve { draft, .. } => Some(format!("approve#{draft}")),
            ContentInput::Publish { draft, .. } => Some(format!("publish#{draft}")),
            ContentInput::Reject { draft, .. } => Some(format!("reject#{draft}")),
        }
    }

    fn subject(&self, input: &ContentInput) -> String {
        match input {
            ContentInput::Draft(r) => format!("artist#{}", r.artist),
            ContentInput::Approve { draft, .. }
            | ContentInput::Publish { draft, .. }
            | ContentInput::Reject { draft, .. } => format!("draft#{draft}"),
        }
    }

    async fn run(&self, input: ContentInput, cx: &Cx) -> Result<ContentOutput, ContentError> {
        match input {
            ContentInput::Draft(request) => self.draft(request, cx).await,
            ContentInput::Approve { draft, by } => {
                self.change(&draft, Transition::Approve, &by, None, cx)
                    .await
            }
            ContentInput::Publish { draft, by } => {
                self.change(&draft, Transition::Publish, &by, None, cx)
                    .await
            }
            ContentInput::Reject { draft, by, reason } => {
                self.change(&draft, Transition::Reject, &by, Some(reason), cx)
                    .await
            }
        }
    }
}

/// The allowed written forms of `sheet` in `lang`.
pub fn allowed_forms(sheet: &FactSheet, lang: lang::Language) -> Vec<Allowed> {
    sheet
        .facts
        .iter()
        .flat_map(|f| {
            f.forms(lang).into_iter().map(|form| Allowed {
                form,
                fact: f.id.clone(),
            })
        })
        .collect()
}

/// The result of the bounded generation loop.
#[derive(Debug, Clone, PartialEq)]
pub struct Outcome {
    /// The rendered text of the last usable attempt (verified when `review` is `None`).
    pub rendered: Option<Rendered>,
    /// The model's last answer.
    pub answer: String,
    /// The sheet the last attempt used.
    pub sheet: FactSheet,
    /// Facts left out along the way.
    pub excluded: Vec<Excluded>,
    /// Attempts made.
    pub attempts: u32,
    /// Why earlier attempts were discarded.
    pub discarded: Vec<String>,
    /// Why a person must review it.
    pub review: Option<String>,
    /// The model.
    pub model: String,
    /// The guardrail trace of the last answer.
    pub guardrail_trace: Option<serde_json::Value>,
    /// The words finally asked for.
    pub words: u16,
}

/// Generates, renders and verifies, at most `attempts` times: `max_tokens` (or a text over
/// the kind's character limit) is retried shorter, a context window exceeded with half the
/// cuttable facts, an ungrounded or unrenderable answer again; a guardrail, a content filter
/// or an unknown stop reason ends in review, as does running out of attempts. Provider
/// failures other than timeouts are returned (the harness retries them).
pub async fn generate(
    generator: &dyn TextGenerator,
    brief: Brief,
    sheet: FactSheet,
    attempts: u32,
) -> Result<Result<Outcome, String>, TextError> {
    let Some((mut request, mut used, mut excluded)) =
        prompt::fit(&brief, &sheet, generator.context_tokens())
    else {
        return Ok(Err(
            "the facts that are never left out do not fit the model's context".into(),
        ));
    };
    let mut brief = brief;
    let mut outcome = Outcome {
        rendered: None,
        answer: String::new(),
        sheet: used.clone(),
        excluded: Vec::new(),
        attempts: 0,
        discarded: Vec::new(),
        review: None,
        model: generator.model(),
        guardrail_trace: None,
        words: brief.words,
    };
    let mut timeouts = 0;
    let refit = |brief: &Brief, sheet: &FactSheet, excluded: &mut Vec<Excluded>| {
        prompt::fit(brief, sheet, generator.context_tokens()).map(|(r, s, cut)| {
            excluded.extend(cut);
            (r, s)
        })
    };
    let shrink = |excluded: &mut Vec<Excluded>, used: &FactSheet| {
        prompt::halve(used).map(|(s, cut)| {
            excluded.extend(cut);
            s
        })
    };
    while outcome.attempts < attempts.max(1) {
        outcome.attempts += 1;
        let answer = match generator.generate(&request).await {
            Ok(a) => a,
            Err(TextError::Timeout { provider, after }) => {
                timeouts += 1;
                outcome
                    .discarded
                    .push(format!("{provider} gave no answer within {after:?}"));
                continue;
            }
            Err(TextError::ContextWindowExceeded { .. }) => {
                outcome.discarded.push("context window exceeded".into());
                match shrink(&mut excluded, &used).and_then(|s| refit(&brief, &s, &mut excluded)) {
                    Some((r, s)) => (request, used) = (r, s),
                    None => {
                        outcome.review = Some(
                            "the model's context is exceeded even by the smallest fact sheet"
                                .into(),
                        );
                        break;
                    }
                }
                continue;
            }
            Err(e) => return Err(e),
        };
        outcome.model = answer.model.clone();
        outcome.guardrail_trace = answer.guardrail_trace.clone();
        outcome.answer = answer.text.clone();
        outcome.sheet = used.clone();
        match &answer.stop {
            StopReason::EndTurn | StopReason::ToolUse | StopReason::StopSequence => {}
            StopReason::MaxTokens => {
                brief.words = (brief.words * 2 / 3).max(MIN_WORDS);
                outcome
                    .discarded
                    .push(format!("max_tokens: asked again for {} words", brief.words));
                if let Some((r, s)) = refit(&brief, &used, &mut excluded) {
                    (request, used) = (r, s);
                }
                continue;
            }
            StopReason::GuardrailIntervened => {
                outcome.review = Some("the guardrail intervened".into());
                outcome.rendered = None;
                break;
            }
            StopReason::ContentFiltered => {
                outcome.review = Some("the provider's content filter removed the answer".into());
                outcome.rendered = None;
                break;
            }
            StopReason::ModelContextWindowExceeded => {
                outcome
                    .discarded
                    .push("model_context_window_exceeded".into());
                match shrink(&mut excluded, &used).and_then(|s| refit(&brief, &s, &mut excluded)) {
                    Some((r, s)) => (request, used) = (r, s),
                    None => {
                        outcome.review = Some(
                            "the model's context is exceeded even by the smallest fact sheet"
                                .into(),
                        );
                        break;
                    }
                }
                continue;
            }
            StopReason::Other(reason) => {
                outcome.review = Some(format!("the provider stopped with {reason:?}"));
                break;
            }
        }
        let allowed = allowed_forms(&used, brief.language);
        match render::render(&answer.text, &allowed, brief.language) {
            Err(e) => outcome.discarded.push(format!("not renderable: {e}")),
            Ok(r) if !r.violations.is_empty() => {
                outcome.discarded.push(format!(
                    "ungrounded: {}",
                    r.violations
                        .iter()
                        .map(|v| v.found.as_str())
                        .collect::<Vec<_>>()
                        .join(", ")
                ));
                outcome.rendered = Some(r);
            }
            Ok(r) => match brief.kind.max_chars() {
                Some(max) if r.text.chars().count() > max => {
                    brief.words = (brief.words * 2 / 3).max(MIN_WORDS);
                    outcome.discarded.push(format!(
                        "{} characters, over the limit of {max}: asked again for {} words",
                        r.text.chars().count(),
                        brief.words
                    ));
                    if let Some((req, s)) = refit(&brief, &used, &mut excluded) {
                        (request, used) = (req, s);
                    }
                }
                _ => {
                    outcome.rendered = Some(r);
                    outcome.excluded = excluded;
                    outcome.words = brief.words;
                    return Ok(Ok(outcome));
                }
            },
        }
    }
    outcome.excluded = excluded;
    outcome.words = brief.words;
    if outcome.review.is_none() {
        outcome.review = Some(if timeouts == outcome.attempts {
            format!("the provider timed out {timeouts} times")
        } else {
            format!(
                "no grounded answer in {} attempts: a person must review it",
                outcome.attempts
            )
        });
    }
    Ok(Ok(outcome))
}

/// The draft's id: from the harness's business key (the same for every delivery and every
/// spelling of one request, unlike the message id) and the day. A run that stored the draft
/// and then failed is retried under the same id, whichever duplicate message carries the
/// retry, so a request never leaves two drafts; the same request on another day is a new
/// draft (the facts may have moved). A retry across midnight can still draft twice.
fn draft_id(business_key: &str, day: chrono::NaiveDate, request: &DraftRequest) -> String {
    let mut h = Sha256::new();
    h.update(business_key.as_bytes());
    h.update([0]);
    h.update(day.to_string().as_bytes());
    h.update([0]);
    // A request always serialises (plain data).
    h.update(serde_json::to_vec(request).unwrap_or_default());
    hex::encode(&h.finalize()[..10])
}

impl ContentGeneration {
    async fn draft(&self, request: DraftRequest, cx: &Cx) -> Result<ContentOutput, ContentError> {
        let id = draft_id(cx.idempotency_key(), cx.now().date_naive(), &request);
        if let Some((existing, _)) = drafts::load(self.store.as_ref(), &id).await? {
            // A redelivery after the draft was stored: its index row and the event again (at
            // least once; the run that stored it may have failed before either).
            drafts::index(self.store.as_ref(), &existing).await?;
            self.publish_drafted(&existing, cx).await?;
            return Ok(drafted_output(&existing));
        }
        let today = cx.now().date_naive();
        let scope = SheetScope {
            artist: Some(&request.artist),
            release: request.release.as_deref(),
            tracks: &request.tracks,
            playlist: request.playlist.as_deref(),
        };
        let mut sheet = facts::load(self.store.as_ref(), &scope, today).await?;
        let mut excluded = Vec::new();
        for d in &request.derivations {
            match d.derive(&sheet) {
                Some(fact) => sheet.facts.push(fact),
                None => {
                    let request::Derivation::PercentChange { id, from, to } = d;
                    excluded.push(Excluded {
                        fact: id.clone(),
                        reason: format!("cannot be derived: {from} or {to} is not a stored number"),
                    });
                }
            }
        }
        let (sheet, screened) = prompt::screen_sheet(sheet);
        excluded.extend(screened);
        if let Some(reason) = refusal(&request, &sheet) {
            info!(artist = %request.artist, %reason, "draft refused");
            cx.record(
                format!("artist#{}", request.artist),
                "content.refused",
                json!({ "kind": request.kind, "reason": reason }),
            );
            cx.metrics().count("DraftsRefused", 1);
            return Ok(ContentOutput::Refused { reason });
        }
        // Few facts make a shorter text: about 15 words per fact beyond the name.
        let words = request
            .words()
            .min(20 + 15 * u16::try_from(sheet.substantive()).unwrap_or(u16::MAX / 16));
        let brief = Brief {
            kind: request.kind,
            language: request.language,
            tone: request.tone,
            words,
        };
        let outcome = match generate(self.generator.as_ref(), brief, sheet, self.attempts)
            .await
            .map_err(ContentError::Text)?
        {
            Ok(o) => o,
            Err(reason) => {
                cx.record(
                    format!("artist#{}", request.artist),
                    "content.refused",
                    json!({ "kind": request.kind, "reason": reason }),
                );
                return Ok(ContentOutput::Refused { reason });
            }
        };
        excluded.extend(outcome.excluded.clone());
        let verified = outcome.review.is_none();
        let (text, sentences, violations): (String, Vec<Sentence>, Vec<Violation>) =
            match &outcome.rendered {
                // An unverified text is kept for the reviewer, with what failed.
                Some(r) => (r.text.clone(), r.sentences.clone(), r.violations.clone()),
                None => (String::new(), Vec::new(), Vec::new()),
            };
        let draft = Draft {
            id: id.clone(),
            artist: request.artist.clone(),
            kind: request.kind,
            language: request.language,
            tone: request.tone,
            words: outcome.words,
            status: Status::Draft,
            text,
            answer: outcome.answer.clone(),
            sentences,
            facts: outcome.sheet.facts.clone(),
            excluded,
            verification: Verification {
                passed: verified,
                attempts: outcome.attempts,
                violations,
                discarded: outcome.discarded.clone(),
            },
            review: outcome.review.clone(),
            model: outcome.model.clone(),
            guardrail_trace: outcome.guardrail_trace.clone(),
            created_at: cx.now(),
            history: Vec::new(),
        };
        drafts::create(self.store.as_ref(), &draft).await?;
        self.publish_drafted(&draft, cx).await?;
        cx.record(
            format!("draft#{id}"),
            "content.drafted",
            json!({
                "artist": draft.artist, "kind": draft.kind, "language": draft.language,
                "verified": verified, "review": draft.review, "attempts": outcome.attempts,
                "model": draft.model,
            }),
        );
        cx.metrics().count("DraftsWritten", 1);
        cx.metrics()
            .count("GenerationAttempts", u64::from(outcome.attempts));
        if !verified {
            warn!(draft = %id, review = ?draft.review, "draft needs human review");
            cx.metrics().count("DraftsForReview", 1);
        }
        Ok(drafted_output(&draft))
    }

    async fn publish_drafted(&self, draft: &Draft, cx: &Cx) -> Result<(), PortError> {
        let facts: Vec<&str> = draft
            .sentences
            .iter()
            .flat_map(|s| s.facts.iter().map(String::as_str))
            .collect();
        let detail = json!({
            "schemaVersion": SCHEMA_VERSION,
            "draftId": draft.id,
            "artist": draft.artist,
            "kind": draft.kind,
            "language": draft.language,
            "status": draft.status,
            "verified": draft.verification.passed && draft.review.is_none(),
            "review": draft.review,
            "model": draft.model,
            "factsUsed": facts,
        });
        self.events
            .publish(&[BusEvent {
                source: EVENT_SOURCE.into(),
                detail_type: DRAFTED_DETAIL_TYPE.into(),
                detail,
                time: cx.now(),
                trace_header: Some(cx.trace_header()),
            }])
            .await
    }

    async fn change(
        &self,
        id: &str,
        t: Transition,
        by: &str,
        reason: Option<String>,
        cx: &Cx,
    ) -> Result<ContentOutput, ContentError> {
        let change =
            drafts::apply(self.store.as_ref(), id, t, by, reason.clone(), cx.now()).await?;
        cx.record(
            format!("draft#{id}"),
            format!("content.{}", change.to.as_str()),
            json!({ "from": change.from, "to": change.to, "by": by, "reason": reason }),
        );
        if change.to == Status::Published {
            self.events
                .publish(&[BusEvent {
                    source: EVENT_SOURCE.into(),
                    detail_type: PUBLISHED_DETAIL_TYPE.into(),
                    detail: json!({ "schemaVersion": SCHEMA_VERSION, "draftId": id, "by": by }),
                    time: cx.now(),
                    trace_header: Some(cx.trace_header()),
                }])
                .await?;
        }
        Ok(ContentOutput::Changed {
            draft: id.to_owned(),
            from: change.from,
            to: change.to,
        })
    }
}

fn drafted_output(d: &Draft) -> ContentOutput {
    ContentOutput::Drafted {
        draft: d.id.clone(),
        verified: d.verification.passed && d.review.is_none(),
        review: d.review.clone(),
        attempts: d.verification.attempts,
        text: d.text.clone(),
    }
}

/// Why nothing can be written for `request` from `sheet`, if nothing can.
fn refusal(request: &DraftRequest, sheet: &FactSheet) -> Option<String> {
    let artist: &ArtistId = &request.artist;
    match request.kind {
        Kind::PlaylistDescription if sheet.get("playlist.name").is_none() => Some(format!(
            "no synced playlist {} with a usable title in the store",
            request.playlist.as_deref().unwrap_or_default()
        )),
        Kind::PlaylistDescription => None,
        _ if sheet.get("artist.name").is_none() => Some(format!(
            "no stored facts about artist {artist} (no artist-monitoring snapshot)"
        )),
        Kind::ReleaseAnnouncement
            if !sheet
                .facts
                .iter()
                .any(|f| f.id == "release.0.name" && f.priority == 1) =>
        {
            Some(format!(
                "release {} of artist {artist} is not in the stored snapshot",
                request.release.as_deref().unwrap_or_default()
            ))
        }
        _ if sheet.substantive() == 0 => Some(format!(
            "only the name of artist {artist} is stored: nothing to write about"
        )),
        _ => None,
    }
}
