//! Stored drafts and their states.
//!
//! Keys: `draft#<id>` / `draft` holds the [`Draft`]; `artist#<id>` / `draft#<id>` indexes it
//! under its artist. A draft is `draft`, `approved`, `published` or `rejected`; it changes only
//! through a [`Transition`] (from the CLI or an event), each checked, written with the stored
//! version as the condition (two concurrent changes cannot both win) and appended to its
//! history; the harness audits each.

use backbone::error::PortError;
use backbone::ports::store::query_all;
use backbone::ports::{ItemKey, PutCondition, Query, Store};
use backbone::validate::ArtistId;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::facts::Fact;
use crate::lang::Language;
use crate::prompt::Excluded;
use crate::render::Sentence;
use crate::request::{Kind, Tone};
use crate::verify::Violation;

/// A draft's state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    /// Written, waiting for a person.
    Draft,
    /// Approved by a person; may be published.
    Approved,
    /// Published.
    Published,
    /// Rejected by a person.
    Rejected,
}

impl Status {
    /// The state's name.
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Draft => "draft",
            Status::Approved => "approved",
            Status::Published => "published",
            Status::Rejected => "rejected",
        }
    }
}

/// A change of state someone asked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Transition {
    /// draft -> approved (only a verified draft).
    Approve,
    /// approved -> published (only a verified draft).
    Publish,
    /// draft or approved -> rejected.
    Reject,
}

/// How the grounding check ended.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Verification {
    /// Every number of the text is a fact or a declared derivation.
    pub passed: bool,
    /// Generation attempts made.
    pub attempts: u32,
    /// What the last attempt failed on (empty when passed).
    pub violations: Vec<Violation>,
    /// Why earlier attempts were discarded, in order.
    pub discarded: Vec<String>,
}

/// One state change, as kept in the draft.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Change {
    /// From.
    pub from: Status,
    /// To.
    pub to: Status,
    /// Who asked.
    pub by: String,
    /// When.
    pub at: DateTime<Utc>,
    /// Why (for a rejection).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

/// A stored draft.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Draft {
    /// Its id.
    pub id: String,
    /// The artist.
    pub artist: ArtistId,
    /// The kind of text.
    pub kind: Kind,
    /// The language.
    pub language: Language,
    /// The tone.
    pub tone: Tone,
    /// Target words.
    pub words: u16,
    /// The state.
    pub status: Status,
    /// The final text (empty when no attempt produced one).
    pub text: String,
    /// The model's answer, with placeholders.
    pub answer: String,
    /// The sentences and the facts each uses.
    pub sentences: Vec<Sentence>,
    /// The facts the model was given (the provenance of every figure).
    pub facts: Vec<Fact>,
    /// Facts left out of the prompt, and why.
    pub excluded: Vec<Excluded>,
    /// The grounding check.
    pub verification: Verification,
    /// Why a person must review it before anything else (a failed check, a guardrail, a
    /// filter, a provider that never answered); `None` for a verified draft.
    pub review: Option<String>,
    /// The model that wrote it.
    pub model: String,
    /// The guardrail trace, when a guardrail is configured.
    pub guardrail_trace: Option<serde_json::Value>,
    /// When it was written.
    pub created_at: DateTime<Utc>,
    /// Every state change.
    pub history: Vec<Change>,
}

/// Why a transition was refused.
#[derive(Debug, thiserror::Error)]
pub enum TransitionError {
    /// No draft has this id.
    #[error("no draft {0}")]
    NotFound(String),
    /// The state does not allow it.
    #[error("draft {id} is {status}: it cannot be {wanted}")]
    NotAllowed {
        /// The draft.
        id: String,
        /// Its state.
        status: &'static str,
        /// What was asked (`approved`, `published`, `rejected`).
        wanted: &'static str,
    },
    /// The draft did not pass the grounding check: it can only be rejected.
    #[error(
        "draft {0} is not verified (grounding check failed or never ran): it can only be rejected"
    )]
    Unverified(String),
    /// The store failed (a concurrent change is a conflict here).
    #[error(transparent)]
    Port(#[from] PortError),
}

/// The key of draft `id`.
pub fn key(id: &str) -> ItemKey {
    ItemKey::new(format!("draft#{id}"), "draft")
}

fn index_key(artist: &ArtistId, id: &str) -> ItemKey {
    ItemKey::new(format!("artist#{artist}"), format!("draft#{id}"))
}

/// Stores a new draft; `Ok(false)` if one with its id exists (a redelivered request).
pub async fn create(store: &dyn Store, draft: &Draft) -> Result<bool, PortError> {
    let data = serde_json::to_value(draft).map_err(|e| PortError::permanent("draft.encode", e))?;
    match store
        .put(&key(&draft.id), &data, PutCondition::NotExists, None)
        .await
    {
        Ok(_) => {}
        Err(PortError::Conflict { .. }) => return Ok(false),
        Err(e) => return Err(e),
    }
    index(store, draft).await?;
    Ok(true)
}

/// Writes the artist's index row of `draft` (the same row each time). A run that stored the
/// draft and failed before its index row is retried through the stored draft, so the retry
/// writes the row again: without it the draft would exist but never be listed.
pub async fn index(store: &dyn Store, draft: &Draft) -> Result<(), PortError> {
    let index = serde_json::json!({
        "id": draft.id, "kind": draft.kind, "language": draft.language,
        "createdAt": draft.created_at,
    });
    store
        .put(
            &index_key(&draft.artist, &draft.id),
            &index,
            PutCondition::Always,
            None,
        )
        .await?;
    Ok(())
}

/// The draft `id` and its version.
pub async fn load(store: &dyn Store, id: &str) -> Result<Option<(Draft, u64)>, PortError> {
    match store.get(&key(id)).await? {
        None => Ok(None),
        Some(item) => {
            let draft = serde_json::from_value(item.data)
                .map_err(|e| PortError::permanent("draft.decode", e))?;
            Ok(Some((draft, item.version)))
        }
    }
}

/// The ids of an artist's drafts, oldest first.
pub async fn of_artist(store: &dyn Store, artist: &ArtistId) -> Result<Vec<String>, PortError> {
    let items = query_all(
        store,
        Query::partition(format!("artist#{artist}")).prefix("draft#"),
        10_000,
    )
    .await?;
    Ok(items
        .into_iter()
        .filter_map(|i| i.key.sk.strip_prefix("draft#").map(str::to_owned))
        .collect())
}

/// The state `t` leads to from `draft`'s, if allowed.
pub fn next(draft: &Draft, t: Transition) -> Result<Status, TransitionError> {
    let not_allowed = |wanted| TransitionError::NotAllowed {
        id: draft.id.clone(),
        status: draft.status.as_str(),
        wanted,
    };
    match (t, draft.status) {
        (Transition::Approve | Transition::Publish, _)
            if !draft.verification.passed || draft.review.is_some() =>
        {
            Err(TransitionError::Unverified(draft.id.clone()))
        }
        (Transition::Approve, Status::Draft) => Ok(Status::Approved),
        (Transition::Approve, _) => Err(not_allowed("approved")),
        (Transition::Publish, Status::Approved) => Ok(Status::Published),
        (Transition::Publish, _) => Err(not_allowed("published")),
        (Transition::Reject, Status::Draft | Status::Approved) => Ok(Status::Rejected),
        (Transition::Reject, _) => Err(not_allowed("rejected")),
    }
}

/// Applies `t` to draft `id`, conditionally on the version read.
pub async fn apply(
    store: &dyn Store,
    id: &str,
    t: Transition,
    by: &str,
    reason: Option<String>,
    at: DateTime<Utc>,
) -> Result<Change, TransitionError> {
    let (mut draft, version) = load(store, id)
        .await?
        .ok_or_else(|| TransitionError::NotFound(id.to_owned()))?;
    let to = next(&draft, t)?;
    let change = Change {
        from: draft.status,
        to,
        by: by.to_owned(),
        at,
        reason,
    };
    draft.status = to;
    draft.history.push(change.clone());
    let data = serde_json::to_value(&draft).map_err(|e| PortError::permanent("draft.encode", e))?;
    store
        .put(&key(id), &data, PutCondition::Version(version), None)
        .await?;
    Ok(change)
}
