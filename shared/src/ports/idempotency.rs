//! Storage primitives of idempotency records. The state machine is in [`crate::idempotency`].

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::error::PortError;

/// Where a record stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum IdempotencyStatus {
    /// A worker holds the lock and is running the task.
    InProgress,
    /// The task finished; `result` is replayed to duplicates.
    Completed,
}

impl IdempotencyStatus {
    /// The stored spelling (Powertools': `INPROGRESS`, `COMPLETED`).
    pub fn as_str(&self) -> &'static str {
        match self {
            IdempotencyStatus::InProgress => "INPROGRESS",
            IdempotencyStatus::Completed => "COMPLETED",
        }
    }

    /// Parses the stored spelling.
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "INPROGRESS" => Some(IdempotencyStatus::InProgress),
            "COMPLETED" => Some(IdempotencyStatus::Completed),
            _ => None,
        }
    }
}

/// One idempotency record, with the fields and meaning Powertools for AWS Lambda gives them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdempotencyRecord {
    /// `{task}#{key}`.
    pub key: String,
    /// Its state.
    pub status: IdempotencyStatus,
    /// When the record stops counting (the TTL attribute).
    pub expires_at: DateTime<Utc>,
    /// While in progress: when the lock may be taken over (the invocation's deadline).
    pub in_progress_expires_at: Option<DateTime<Utc>>,
    /// SHA-256 of the canonical payload, to refuse a reused key with other content.
    pub payload_hash: String,
    /// The serialised result, once completed.
    pub result: Option<String>,
    /// The fencing token of the invocation that took the lock: a random id, kept when the
    /// record completes. Completing, finalising and deleting are conditional on it, so a late
    /// or duplicate invocation can never overwrite or delete the owner's record. Empty on
    /// records written before leases existed (nothing can match it).
    pub lease: String,
}

/// Why a lock could not be taken.
#[derive(Debug, thiserror::Error)]
pub enum PutInProgressError {
    /// A live record holds the key; here it is.
    #[error("an idempotency record exists for {}", .0.key)]
    Exists(Box<IdempotencyRecord>),
    /// The backend failed.
    #[error(transparent)]
    Port(#[from] PortError),
}

/// Storage of idempotency records.
#[async_trait]
pub trait IdempotencyStore: Send + Sync {
    /// Writes `record` (in progress) unless a live record holds its key. A record is live
    /// unless it has expired (`expires_at <= now`) or it is in progress with its in-progress
    /// expiry passed: such records are taken over.
    async fn put_in_progress(
        &self,
        record: &IdempotencyRecord,
        now: DateTime<Utc>,
    ) -> Result<(), PutInProgressError>;

    /// Overwrites the record at `record.key` (to mark it completed) if the stored record still
    /// carries `record.lease`; [`PortError::Conflict`] otherwise (another invocation took the
    /// key over, or it is gone), and nothing is written.
    async fn update(&self, record: &IdempotencyRecord) -> Result<(), PortError>;

    /// The record at `key`, if any.
    async fn get(&self, key: &str) -> Result<Option<IdempotencyRecord>, PortError>;

    /// Removes the record at `key` (after a failure, so a retry may run) if it still carries
    /// `lease`; [`PortError::Conflict`] otherwise, and nothing is removed.
    async fn delete(&self, key: &str, lease: &str) -> Result<(), PortError>;
}
