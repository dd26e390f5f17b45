//! `EventPublisher`: domain events (alerts, anomalies, completed analyses) to the event bus.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::error::PortError;

/// One event for the bus, in EventBridge's terms.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BusEvent {
    /// The producer, such as `music.artist-monitoring`.
    pub source: String,
    /// The event type, such as `ArtistAlert`.
    pub detail_type: String,
    /// The payload (a JSON object).
    pub detail: serde_json::Value,
    /// When it happened.
    pub time: DateTime<Utc>,
    /// The X-Ray trace header of the invocation that raised it.
    pub trace_header: Option<String>,
}

/// Publishes events. Adapters split into the backend's batch limits and resubmit partial
/// failures; an `Ok` means every event was accepted.
#[async_trait]
pub trait EventPublisher: Send + Sync {
    /// Publishes all of `events`.
    async fn publish(&self, events: &[BusEvent]) -> Result<(), PortError>;
}
