//! The append-only, hash-chained audit log, written once above [`AuditStore`].
//!
//! Each record carries the hash of its predecessor in the same stream, and its own hash over
//! every field; [`AuditLog::verify`] walks a stream and reports any gap, edit or broken link,
//! so a deleted or altered record is detected. Concurrent writers race on the next sequence
//! number with a conditional write and retry on conflict: none is lost.

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, SubsecRound, Utc};
use serde::Serialize;

use crate::clock::Clock;
use crate::error::PortError;
use crate::hash::{canonical_json, sha256_hex};
use crate::ports::{AppendOutcome, AuditRecord, AuditStore};

/// The `prev_hash` of the first record of a stream.
pub const GENESIS_HASH: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// How many times an append re-reads the stream's head after losing a race.
const MAX_APPEND_ATTEMPTS: u32 = 64;

/// What a caller wants recorded; the log adds the position and hashes.
#[derive(Debug, Clone, PartialEq, Serialize, serde::Deserialize)]
pub struct AuditEntry {
    /// The stream (one per task).
    pub stream: String,
    /// The task.
    pub task: String,
    /// Its version.
    pub version: String,
    /// The trace id.
    pub trace_id: Option<String>,
    /// The message's idempotency key: the log keeps one record per key and action.
    pub idempotency_key: Option<String>,
    /// What it is about.
    pub subject: String,
    /// What was done.
    pub action: String,
    /// SHA-256 of the canonical input.
    pub input_hash: String,
    /// How it ended.
    pub outcome: String,
    /// Details; never a secret.
    pub detail: serde_json::Value,
}

/// An audit write that failed.
#[derive(Debug, thiserror::Error)]
pub enum AuditError {
    /// The store failed.
    #[error(transparent)]
    Port(#[from] PortError),
    /// Too many concurrent writers kept winning the race.
    #[error("audit stream {stream}: gave up after {attempts} conflicting appends")]
    Contended {
        /// The stream.
        stream: String,
        /// Attempts made.
        attempts: u32,
    },
}

impl crate::error::Classify for AuditError {
    fn class(&self) -> crate::error::ErrorClass {
        match self {
            AuditError::Port(err) => err.class(),
            AuditError::Contended { .. } => crate::error::ErrorClass::Transient,
        }
    }
}

/// A problem found by [`AuditLog::verify`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "problem", rename_all = "snake_case")]
pub enum ChainProblem {
    /// A sequence number is missing (a record was deleted).
    Gap {
        /// The number expected.
        expected: u64,
        /// The number found.
        found: u64,
    },
    /// A record's content does not match its hash (it was edited).
    Altered {
        /// The record.
        seq: u64,
    },
    /// A record does not point at its predecessor's hash.
    BrokenLink {
        /// The record.
        seq: u64,
    },
}

/// The result of walking one stream.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct VerifyReport {
    /// The stream.
    pub stream: String,
    /// Records read.
    pub records: u64,
    /// Every problem found; empty means the chain is intact.
    pub problems: Vec<ChainProblem>,
}

impl VerifyReport {
    /// Whether the chain is intact.
    pub fn is_intact(&self) -> bool {
        self.problems.is_empty()
    }
}

/// The hash of `record` over every field but `hash`.
pub fn record_hash(record: &AuditRecord) -> Result<String, serde_json::Error> {
    let mut value = serde_json::to_value(record)?;
    if let Some(object) = value.as_object_mut() {
        object.remove("hash");
    }
    Ok(sha256_hex(canonical_json(&value)?))
}

/// The audit log.
#[derive(Clone)]
pub struct AuditLog {
    store: Arc<dyn AuditStore>,
    clock: Arc<dyn Clock>,
}

impl AuditLog {
    /// A log kept in `store`.
    pub fn new(store: Arc<dyn AuditStore>, clock: Arc<dyn Clock>) -> Self {
        Self { store, clock }
    }

    /// Appends `entry` at the head of its stream; returns the record, or `None` when a record
    /// with the same idempotency key and action exists already.
    pub async fn append(&self, entry: AuditEntry) -> Result<Option<AuditRecord>, AuditError> {
        for attempt in 0..MAX_APPEND_ATTEMPTS {
            let head = self.store.last(&entry.stream).await?;
            let record = chain_record(&entry, head.as_ref(), self.now())?;
            match self.store.append(&record).await {
                Ok(AppendOutcome::Appended) => return Ok(Some(record)),
                Ok(AppendOutcome::Duplicate) => return Ok(None),
                Err(PortError::Conflict { .. }) => {
                    // Another writer took this sequence number: wait a little, re-read the head.
                    let jitter = rand::random_range(0..=(5 * (u64::from(attempt) + 1)).min(100));
                    tokio::time::sleep(Duration::from_millis(jitter)).await;
                }
                Err(err) => return Err(err.into()),
            }
        }
        Err(AuditError::Contended {
            stream: entry.stream,
            attempts: MAX_APPEND_ATTEMPTS,
        })
    }

    /// Walks `stream` from its first record and reports every gap, edit and broken link.
    pub async fn verify(&self, stream: &str) -> Result<VerifyReport, PortError> {
        let mut report = VerifyReport {
            stream: stream.to_owned(),
            records: 0,
            problems: Vec::new(),
        };
        let mut expected_seq = 1;
        let mut prev_hash = GENESIS_HASH.to_owned();
        let mut after = 0;
        loop {
            let page = self.store.read(stream, after, 500).await?;
            let Some(last) = page.last() else { break };
            after = last.seq;
            for record in page {
                report.records += 1;
                if record.seq != expected_seq {
                    report.problems.push(ChainProblem::Gap {
                        expected: expected_seq,
                        found: record.seq,
                    });
                }
                let hash_ok = record_hash(&record).is_ok_and(|h| h == record.hash);
                if !hash_ok {
                    report
                        .problems
                        .push(ChainProblem::Altered { seq: record.seq });
                }
                if record.prev_hash != prev_hash {
                    report
                        .problems
                        .push(ChainProblem::BrokenLink { seq: record.seq });
                }
                expected_seq = record.seq + 1;
                prev_hash = record.hash;
            }
        }
        Ok(report)
    }

    /// Verifies every stream.
    pub async fn verify_all(&self) -> Result<Vec<VerifyReport>, PortError> {
        let mut reports = Vec::new();
        for stream in self.store.streams().await? {
            reports.push(self.verify(&stream).await?);
        }
        Ok(reports)
    }

    fn now(&self) -> DateTime<Utc> {
        // Millisecond precision survives every backend's timestamp round trip unchanged, so
        // the hash computed now matches the one recomputed on verify.
        self.clock.now().trunc_subsecs(3)
    }
}

fn chain_record(
    entry: &AuditEntry,
    head: Option<&AuditRecord>,
    at: DateTime<Utc>,
) -> Result<AuditRecord, PortError> {
    let mut record = AuditRecord {
        stream: entry.stream.clone(),
        seq: head.map_or(1, |h| h.seq + 1),
        at,
        task: entry.task.clone(),
        version: entry.version.clone(),
        trace_id: entry.trace_id.clone(),
        idempotency_key: entry.idempotency_key.clone(),
        subject: entry.subject.clone(),
        action: entry.action.clone(),
        input_hash: entry.input_hash.clone(),
        outcome: entry.outcome.clone(),
        detail: entry.detail.clone(),
        prev_hash: head.map_or_else(|| GENESIS_HASH.to_owned(), |h| h.hash.clone()),
        hash: String::new(),
    };
    record.hash = record_hash(&record).map_err(|err| PortError::permanent("audit.hash", err))?;
    Ok(record)
}
