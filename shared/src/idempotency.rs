//! Idempotency with the semantics of Powertools for AWS Lambda, written once above
//! [`IdempotencyStore`].
//!
//! A message takes a lock (an `INPROGRESS` record written by conditional put) that expires at
//! the invocation's deadline (now plus its remaining time), so a crashed or killed invocation
//! does not hold it forever. With no remaining time known the lock is refused (fail closed):
//! a lock without a lease could block the key for the whole record TTL, or be taken over while
//! its owner still runs. Each lock carries a fencing token (the lease); completing and
//! releasing are conditional on it, so a late invocation whose lock was taken over can
//! neither overwrite nor delete the new owner's record. The completed result is stored and
//! replayed to duplicates until the record expires. A key reused with a different payload is
//! refused rather than answered with the wrong result.

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};

use crate::clock::Clock;
use crate::error::{Classify, ErrorClass, PortError};
use crate::ports::{IdempotencyRecord, IdempotencyStatus, IdempotencyStore, PutInProgressError};

/// Why a message could not start.
#[derive(Debug, thiserror::Error)]
pub enum IdempotencyError {
    /// Another invocation holds the lock and its deadline has not passed.
    #[error("idempotency key {key} is already in progress in another invocation")]
    InProgress {
        /// The key.
        key: String,
    },
    /// The key was used before with a different payload.
    #[error("idempotency key {key} was already used with a different payload")]
    PayloadMismatch {
        /// The key.
        key: String,
    },
    /// The invocation has no remaining time (or none known): no lock is written without a lease.
    #[error("idempotency key {key}: the invocation has no remaining time, so no lock is taken")]
    NoLease {
        /// The key.
        key: String,
    },
    /// The stored record cannot be read back.
    #[error("idempotency record {key} is corrupt: {reason}")]
    Corrupt {
        /// The key.
        key: String,
        /// What is wrong.
        reason: String,
    },
    /// The store failed.
    #[error(transparent)]
    Port(#[from] PortError),
}

impl Classify for IdempotencyError {
    fn class(&self) -> ErrorClass {
        match self {
            // The first delivery is still running: let SQS bring this one back later.
            IdempotencyError::InProgress { .. } => ErrorClass::Transient,
            // Not a verdict on the message: a delivery with time left will run it.
            IdempotencyError::NoLease { .. } => ErrorClass::Transient,
            IdempotencyError::PayloadMismatch { .. } => ErrorClass::Invalid,
            IdempotencyError::Corrupt { .. } => ErrorClass::Permanent,
            IdempotencyError::Port(err) => err.class(),
        }
    }
}

/// What to do with a message.
#[derive(Debug)]
pub enum Begin {
    /// Run it; finish with [`Idempotency::complete`] or [`Idempotency::abandon`].
    Run(Lock),
    /// It already ran: here is its completed record (the stored result in `result`).
    Replay(Box<IdempotencyRecord>),
}

/// A held in-progress lock.
#[derive(Debug)]
#[must_use = "a lock must be completed or abandoned"]
pub struct Lock {
    record: IdempotencyRecord,
}

impl Lock {
    /// The record key.
    pub fn key(&self) -> &str {
        &self.record.key
    }

    /// The fencing token this lock was taken with.
    pub fn lease(&self) -> &str {
        &self.record.lease
    }

    /// When the lock may be taken over (the invocation's deadline).
    pub fn expires_at(&self) -> Option<DateTime<Utc>> {
        self.record.in_progress_expires_at
    }
}

/// The idempotency state machine.
#[derive(Clone)]
pub struct Idempotency {
    store: Arc<dyn IdempotencyStore>,
    clock: Arc<dyn Clock>,
    ttl: Duration,
}

impl Idempotency {
    /// Records in `store`, completed results kept for `ttl`.
    pub fn new(store: Arc<dyn IdempotencyStore>, clock: Arc<dyn Clock>, ttl: Duration) -> Self {
        Self { store, clock, ttl }
    }

    /// Takes the lock for `key`, or says the message already ran.
    ///
    /// `deadline` is when the invocation will be killed: past it, another delivery may take
    /// the lock over. A deadline not after now (no remaining time, or none known) is refused
    /// with [`IdempotencyError::NoLease`] before anything is written.
    pub async fn begin(
        &self,
        key: &str,
        payload_hash: &str,
        deadline: DateTime<Utc>,
    ) -> Result<Begin, IdempotencyError> {
        let now = self.clock.now();
        if deadline <= now {
            return Err(IdempotencyError::NoLease {
                key: key.to_owned(),
            });
        }
        let ttl = chrono::Duration::from_std(self.ttl).unwrap_or(chrono::Duration::hours(1));
        let record = IdempotencyRecord {
            lease: uuid::Uuid::new_v4().simple().to_string(),
            key: key.to_owned(),
            status: IdempotencyStatus::InProgress,
            expires_at: now + ttl,
            in_progress_expires_at: Some(deadline),
            payload_hash: payload_hash.to_owned(),
            result: None,
        };
        match self.store.put_in_progress(&record, now).await {
            Ok(()) => Ok(Begin::Run(Lock { record })),
            Err(PutInProgressError::Port(err)) => Err(err.into()),
            Err(PutInProgressError::Exists(existing)) => {
                if existing.payload_hash != payload_hash {
                    return Err(IdempotencyError::PayloadMismatch {
                        key: key.to_owned(),
                    });
                }
                match existing.status {
                    IdempotencyStatus::InProgress => Err(IdempotencyError::InProgress {
                        key: key.to_owned(),
                    }),
                    IdempotencyStatus::Completed if existing.result.is_some() => {
                        Ok(Begin::Replay(existing))
                    }
                    IdempotencyStatus::Completed => Err(IdempotencyError::Corrupt {
                        key: key.to_owned(),
                        reason: "completed without a result".into(),
                    }),
                }
            }
        }
    }

    /// Marks the message done with its serialised `result`; returns the completed record.
    pub async fn complete(
        &self,
        lock: Lock,
        result: String,
    ) -> Result<IdempotencyRecord, PortError> {
        let mut record = lock.record;
        record.status = IdempotencyStatus::Completed;
        record.in_progress_expires_at = None;
        record.result = Some(result);
        self.store.update(&record).await?;
        Ok(record)
    }

    /// Replaces the result of a completed record (once the work it left pending is done);
    /// conditional on the record's lease, like every write after the lock.
    pub async fn finalize(
        &self,
        mut record: IdempotencyRecord,
        result: String,
    ) -> Result<(), PortError> {
        record.result = Some(result);
        self.store.update(&record).await
    }

    /// Releases the lock after a failure, so a redelivery can run; a lock taken over by another
    /// invocation meanwhile is left alone ([`PortError::Conflict`]).
    pub async fn abandon(&self, lock: Lock) -> Result<(), PortError> {
        self.store
            .delete(&lock.record.key, &lock.record.lease)
            .await
    }
}
