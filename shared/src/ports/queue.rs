//! `Queues`: what the harness does with SQS besides receiving: fan-out, dead-lettering and
//! visibility delays.

use std::collections::BTreeMap;
use std::time::Duration;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

use crate::error::PortError;

/// A message for the function's own work queue (the plan step's fan-out).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OutgoingMessage {
    /// The JSON body: a task input.
    pub body: String,
    /// String message attributes (`idempotency-key`, `AWSTraceHeader` is a system attribute).
    pub attributes: BTreeMap<String, String>,
    /// FIFO queues: the message group.
    pub group_id: Option<String>,
    /// FIFO queues: the deduplication id.
    pub dedup_id: Option<String>,
    /// The X-Ray trace header to carry into the work step.
    pub trace_header: Option<String>,
}

/// A message that will not be retried, with the reason.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeadLetter {
    /// The task that refused it.
    pub task: String,
    /// The original message id (or event id).
    pub message_id: String,
    /// The original body, unchanged (nothing is lost).
    pub body: String,
    /// The class of the failure (`invalid`, `permanent`).
    pub class: String,
    /// Why, for a person: the field and the reason, or the error chain.
    pub reason: String,
    /// The trace id, to find the logs.
    pub trace_id: Option<String>,
    /// The original string message attributes.
    pub attributes: BTreeMap<String, String>,
}

/// Queue operations of the harness.
#[async_trait]
pub trait Queues: Send + Sync {
    /// Sends `messages` to the function's work queue (adapters batch by 10 and retry the
    /// failed entries; an `Ok` means all were accepted).
    async fn send(&self, messages: &[OutgoingMessage]) -> Result<(), PortError>;

    /// Sends `letter` to the dead-letter queue, the reason in its attributes.
    async fn dead_letter(&self, letter: &DeadLetter) -> Result<(), PortError>;

    /// Hides the received message `receipt_handle` for `delay` before SQS redelivers it.
    async fn delay(&self, receipt_handle: &str, delay: Duration) -> Result<(), PortError>;
}
