//! [`Cx`]: what a task may know and do about the invocation it runs in.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::Serialize;

use crate::clock::Clock;
use crate::ports::OutgoingMessage;
use crate::telemetry::{Metrics, TraceContext};

/// A side effect the task wants in the audit log.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct EffectRecord {
    pub subject: String,
    pub action: String,
    pub detail: serde_json::Value,
}

/// The context of one message: time, deadline, trace, metrics, fan-out and audit.
pub struct Cx {
    pub(crate) request_id: String,
    pub(crate) message_id: String,
    pub(crate) idempotency_key: String,
    pub(crate) trace: TraceContext,
    pub(crate) deadline: DateTime<Utc>,
    pub(crate) clock: Arc<dyn Clock>,
    pub(crate) metrics: Metrics,
    pub(crate) outbox: Mutex<Vec<OutgoingMessage>>,
    pub(crate) effects: Mutex<Vec<EffectRecord>>,
}

impl Cx {
    /// The current time, from the injected clock.
    pub fn now(&self) -> DateTime<Utc> {
        self.clock.now()
    }

    /// Time left before the invocation is killed (zero if already past).
    pub fn remaining(&self) -> Duration {
        (self.deadline - self.clock.now())
            .to_std()
            .unwrap_or(Duration::ZERO)
    }

    /// When the invocation will be killed.
    pub fn deadline(&self) -> DateTime<Utc> {
        self.deadline
    }

    /// The X-Ray trace id.
    pub fn trace_id(&self) -> &str {
        &self.trace.root
    }

    /// The X-Ray header to carry the trace into events and messages.
    pub fn trace_header(&self) -> String {
        self.trace.header()
    }

    /// The Lambda request id.
    pub fn request_id(&self) -> &str {
        &self.request_id
    }

    /// The id of the message being processed.
    pub fn message_id(&self) -> &str {
        &self.message_id
    }

    /// The business key the harness locks this message under (`<task>#<key>`): the task's
    /// own key, or the hash of the canonical input. Unlike the message id it is the same for
    /// every delivery and every spelling of one business input, so an id derived from it
    /// names the same effect on every retry, whichever message carries it.
    pub fn idempotency_key(&self) -> &str {
        &self.idempotency_key
    }

    /// The function's metrics.
    pub fn metrics(&self) -> &Metrics {
        &self.metrics
    }

    /// Queues `input` as a message to this function's own work queue, sent by the harness
    /// once the task has succeeded (the plan step's fan-out).
    pub fn enqueue<I: Serialize>(&self, input: &I) -> Result<(), serde_json::Error> {
        let body = serde_json::to_string(input)?;
        self.outbox
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(OutgoingMessage {
                body,
                attributes: Default::default(),
                group_id: None,
                dedup_id: None,
                trace_header: Some(self.trace_header()),
            });
        Ok(())
    }

    /// Records a side effect for the audit log (written once the task has succeeded, at most
    /// once per message and action).
    pub fn record(
        &self,
        subject: impl Into<String>,
        action: impl Into<String>,
        detail: serde_json::Value,
    ) {
        self.effects
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(EffectRecord {
                subject: subject.into(),
                action: action.into(),
                detail,
            });
    }

    pub(crate) fn take_outbox(&self) -> Vec<OutgoingMessage> {
        std::mem::take(&mut *self.outbox.lock().unwrap_or_else(|p| p.into_inner()))
    }

    pub(crate) fn take_effects(&self) -> Vec<EffectRecord> {
        std::mem::take(&mut *self.effects.lock().unwrap_or_else(|p| p.into_inner()))
    }
}
