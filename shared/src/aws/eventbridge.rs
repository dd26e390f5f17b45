//! [`EventPublisher`] on EventBridge `PutEvents`, to the custom bus.
//!
//! `PutEvents` takes at most 10 entries and 256 KiB a call, and answers 200 even when some
//! entries failed: `FailedEntryCount > 0` is a partial failure, whose failed entries (by
//! position in the response) are resubmitted with backoff, a bounded number of times. Entries
//! refused for what they are (malformed detail, too large) are reported, never retried. An `Ok`
//! means EventBridge accepted every event.

use async_trait::async_trait;
use aws_sdk_eventbridge::Client;
use aws_sdk_eventbridge::primitives::DateTime as AwsDateTime;
use aws_sdk_eventbridge::types::PutEventsRequestEntry;

use super::{MAX_BATCH_ATTEMPTS, adapter_error, backoff, sdk_error};
use crate::error::PortError;
use crate::ports::{BusEvent, EventPublisher};

/// Entries per `PutEvents` call.
const MAX_BATCH_ENTRIES: usize = 10;
/// Total size of one `PutEvents` call, computed as EventBridge does.
const MAX_BATCH_BYTES: usize = 256 * 1024;
/// Entry error codes that a resubmission may cure.
const RETRYABLE_ENTRY_CODES: &[&str] = &[
    "InternalFailure",
    "ThrottlingException",
    "InternalException",
];

/// Publishes to one EventBridge bus.
#[derive(Clone, Debug)]
pub struct EventBridgePublisher {
    client: Client,
    bus: String,
}

impl EventBridgePublisher {
    /// A publisher to the bus `bus` (name or ARN).
    pub fn new(client: Client, bus: impl Into<String>) -> Self {
        Self {
            client,
            bus: bus.into(),
        }
    }

    fn entry(&self, event: &BusEvent) -> PutEventsRequestEntry {
        PutEventsRequestEntry::builder()
            .event_bus_name(&self.bus)
            .source(&event.source)
            .detail_type(&event.detail_type)
            .detail(event.detail.to_string())
            .time(AwsDateTime::from_millis(event.time.timestamp_millis()))
            .set_trace_header(event.trace_header.clone())
            .build()
    }

    async fn publish_chunk(&self, events: &[BusEvent]) -> Result<(), PortError> {
        let mut pending: Vec<&BusEvent> = events.iter().collect();
        for attempt in 1..=MAX_BATCH_ATTEMPTS {
            let output = self
                .client
                .put_events()
                .set_entries(Some(pending.iter().map(|e| self.entry(e)).collect()))
                .send()
                .await
                .map_err(|err| sdk_error("eventbridge.put_events", err))?;
            if output.failed_entry_count() == 0 {
                return Ok(());
            }
            // Result entries are in request order; a failed one has an error code.
            let results = output.entries();
            let mut retry = Vec::new();
            for (i, event) in pending.iter().enumerate() {
                let code = results.get(i).and_then(|r| r.error_code());
                match code {
                    None if results.len() == pending.len() => {}
                    // A response that does not line up with the request: resubmit everything
                    // not known to have passed.
                    None => retry.push(*event),
                    Some(code) if RETRYABLE_ENTRY_CODES.contains(&code) => retry.push(*event),
                    Some(code) => {
                        let message = results
                            .get(i)
                            .and_then(|r| r.error_message())
                            .unwrap_or("no message");
                        return Err(adapter_error(
                            "eventbridge.put_events",
                            format!(
                                "event {} / {} refused: {code}: {message}",
                                event.source, event.detail_type
                            ),
                        )
                        .permanent());
                    }
                }
            }
            tracing::warn!(
                operation = "eventbridge.put_events",
                failed = retry.len(),
                attempt,
                "PutEvents entries failed; resubmitting"
            );
            pending = retry;
            if pending.is_empty() {
                return Ok(());
            }
            if attempt < MAX_BATCH_ATTEMPTS {
                tokio::time::sleep(backoff(attempt)).await;
            }
        }
        Err(adapter_error(
            "eventbridge.put_events",
            format!(
                "{} events still failing after {MAX_BATCH_ATTEMPTS} attempts",
                pending.len()
            ),
        )
        .transient())
    }
}

/// The size EventBridge counts for an entry: time (14 bytes), source, detail type, detail;
/// the trace header is added to stay on the safe side.
fn entry_size(event: &BusEvent) -> usize {
    14 + event.source.len()
        + event.detail_type.len()
        + event.detail.to_string().len()
        + event.trace_header.as_deref().map_or(0, str::len)
}

/// Index ranges of `events` within the entry and size limits of one call.
fn chunks(events: &[BusEvent]) -> Result<Vec<std::ops::Range<usize>>, PortError> {
    let mut out = Vec::new();
    let mut start = 0;
    let mut bytes = 0;
    for (i, event) in events.iter().enumerate() {
        let size = entry_size(event);
        if size > MAX_BATCH_BYTES {
            return Err(adapter_error(
                "eventbridge.put_events",
                format!(
                    "event {} / {} is {size} bytes, over the 256 KiB entry limit",
                    event.source, event.detail_type
                ),
            )
            .permanent());
        }
        if i > start && (i - start == MAX_BATCH_ENTRIES || bytes + size > MAX_BATCH_BYTES) {
            out.push(start..i);
            start = i;
            bytes = 0;
        }
        bytes += size;
    }
    if start < events.len() {
        out.push(start..events.len());
    }
    Ok(out)
}

#[async_trait]
impl EventPublisher for EventBridgePublisher {
    async fn publish(&self, events: &[BusEvent]) -> Result<(), PortError> {
        for chunk in chunks(events)? {
            self.publish_chunk(&events[chunk]).await?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(detail_len: usize) -> BusEvent {
        BusEvent {
            source: "music.test".into(),
            detail_type: "Test".into(),
            detail: serde_json::json!({ "x": "y".repeat(detail_len) }),
            time: chrono::Utc::now(),
            trace_header: None,
        }
    }

    #[test]
    fn chunks_respect_count_and_size() {
        let small: Vec<_> = (0..21).map(|_| event(10)).collect();
        assert_eq!(chunks(&small).unwrap(), vec![0..10, 10..20, 20..21]);
        let big: Vec<_> = (0..3).map(|_| event(100 * 1024)).collect();
        assert_eq!(chunks(&big).unwrap(), vec![0..2, 2..3]);
        assert!(matches!(
            chunks(&[event(300 * 1024)]),
            Err(PortError::Permanent { .. })
        ));
    }
}
