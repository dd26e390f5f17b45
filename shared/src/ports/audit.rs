//! Storage primitives of the audit log. Chaining and verification are in [`crate::audit`].

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::error::PortError;

/// One append-only audit record.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditRecord {
    /// The chain this record belongs to (one per task).
    pub stream: String,
    /// Position in the stream, from 1, without gaps.
    pub seq: u64,
    /// When it was written.
    pub at: DateTime<Utc>,
    /// The task that wrote it.
    pub task: String,
    /// The task's version.
    pub version: String,
    /// The X-Ray trace id of the invocation.
    pub trace_id: Option<String>,
    /// The idempotency key of the message: at most one record per key and action.
    pub idempotency_key: Option<String>,
    /// What it is about (an artist, a playlist, a message).
    pub subject: String,
    /// What was done (`completed`, `rejected`, `playlist.items.replaced`, ...).
    pub action: String,
    /// SHA-256 of the canonical input.
    pub input_hash: String,
    /// How it ended (`ok`, `invalid`, `permanent`, ...).
    pub outcome: String,
    /// Structured details (reasons, counts, ids); never a secret.
    pub detail: serde_json::Value,
    /// `hash` of the previous record of the stream; 64 zeros for the first.
    pub prev_hash: String,
    /// SHA-256 over every other field, chaining this record to its predecessor.
    pub hash: String,
}

/// The head of a stream as kept outside the chain: the position and hash of its last record.
/// Updated in the same atomic write as each append, so a truncated tail (the last records
/// deleted, which leaves a chain that is intact as far as it goes) is found by comparing it
/// with the last record read.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChainHead {
    /// The `seq` of the last record appended.
    pub seq: u64,
    /// Its `hash`.
    pub hash: String,
}

/// What an append did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AppendOutcome {
    /// The record was written.
    Appended,
    /// A record with the same idempotency key and action exists: nothing was written.
    Duplicate,
}

/// Storage of audit records.
#[async_trait]
pub trait AuditStore: Send + Sync {
    /// The last record of `stream`, if any.
    async fn last(&self, stream: &str) -> Result<Option<AuditRecord>, PortError>;

    /// Writes `record` if no record holds `(stream, seq)` ([`PortError::Conflict`] otherwise)
    /// and no record holds its `(idempotency_key, action)` ([`AppendOutcome::Duplicate`]).
    /// In the same atomic write the stream's [`ChainHead`] moves from `seq - 1` to `record`;
    /// a head elsewhere is a [`PortError::Conflict`] too, and nothing is written.
    async fn append(&self, record: &AuditRecord) -> Result<AppendOutcome, PortError>;

    /// The head of `stream` kept outside the chain, if any.
    async fn head(&self, stream: &str) -> Result<Option<ChainHead>, PortError>;

    /// Up to `limit` records of `stream` with `seq > after`, in order.
    async fn read(
        &self,
        stream: &str,
        after: u64,
        limit: usize,
    ) -> Result<Vec<AuditRecord>, PortError>;

    /// The names of every stream.
    async fn streams(&self) -> Result<Vec<String>, PortError>;
}
