//! [`Queues`] on SQS: the function's work queue and its dead-letter queue.
//!
//! - `send` uses `SendMessageBatch` in chunks of at most 10 entries and 256 KiB (the API's
//!   limits), resubmits the entries SQS reports as failed with backoff (bounded), and returns
//!   an error naming what was refused rather than dropping anything. The trace header travels
//!   as the `AWSTraceHeader` system attribute, which Lambda surfaces in the SQS event.
//! - `dead_letter` sends the original body unchanged, the reason in message attributes
//!   (`reason`, `class`, `task`, `original-message-id`, `trace-id`), then the original
//!   attributes while SQS's limit of 10 attributes allows.
//! - `delay` is `ChangeMessageVisibility` on the work queue (at most 12 hours).

use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

use async_trait::async_trait;
use aws_sdk_sqs::Client;
use aws_sdk_sqs::types::{
    MessageAttributeValue, MessageSystemAttributeNameForSends, MessageSystemAttributeValue,
    SendMessageBatchRequestEntry,
};

use super::{MAX_BATCH_ATTEMPTS, adapter_error, backoff, sdk_error};
use crate::error::PortError;
use crate::ports::{DeadLetter, OutgoingMessage, Queues};

/// Entries per `SendMessageBatch` call.
const MAX_BATCH_ENTRIES: usize = 10;
/// Total payload of one `SendMessageBatch` call (bodies and attributes).
const MAX_BATCH_BYTES: usize = 256 * 1024;
/// Message attributes per message.
const MAX_MESSAGE_ATTRIBUTES: usize = 10;
/// Longest `reason` attribute kept; the rest of the chain is in the logs under the trace id.
const MAX_REASON_BYTES: usize = 4096;
/// Longest value of any other attribute.
const MAX_ATTRIBUTE_BYTES: usize = 1024;
/// `ChangeMessageVisibility` accepts at most 12 hours.
const MAX_VISIBILITY: Duration = Duration::from_secs(12 * 60 * 60);

/// The work queue and dead-letter queue of one function.
#[derive(Clone, Debug)]
pub struct SqsQueues {
    client: Client,
    work_queue_url: String,
    dead_letter_queue_url: String,
}

impl SqsQueues {
    /// Queues at these URLs.
    pub fn new(
        client: Client,
        work_queue_url: impl Into<String>,
        dead_letter_queue_url: impl Into<String>,
    ) -> Self {
        Self {
            client,
            work_queue_url: work_queue_url.into(),
            dead_letter_queue_url: dead_letter_queue_url.into(),
        }
    }
}

/// `value` cut to at most `max` bytes on a character boundary, marked with `…` when cut.
fn truncate(value: &str, max: usize) -> String {
    if value.len() <= max {
        return value.to_owned();
    }
    let mut end = max.saturating_sub('…'.len_utf8());
    while !value.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &value[..end])
}

/// SQS accepts attribute names of letters, digits, `_`, `-`, `.`, up to 256 characters, not
/// starting with `AWS.`/`Amazon.` or a dot.
fn valid_attribute_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 256
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'))
        && !name.starts_with('.')
        && !name.ends_with('.')
        && !name.contains("..")
        && !name.to_ascii_lowercase().starts_with("aws.")
        && !name.to_ascii_lowercase().starts_with("amazon.")
}

/// String message attributes in SQS's wire form. Empty values are skipped: SQS refuses them.
pub(crate) struct SqsAttributes(pub(crate) HashMap<String, MessageAttributeValue>);

impl TryFrom<&BTreeMap<String, String>> for SqsAttributes {
    type Error = PortError;

    fn try_from(attributes: &BTreeMap<String, String>) -> Result<Self, Self::Error> {
        let mut out = HashMap::new();
        for (name, value) in attributes.iter().filter(|(_, v)| !v.is_empty()) {
            out.insert(name.clone(), string_attribute(value)?);
        }
        Ok(Self(out))
    }
}

fn string_attribute(value: &str) -> Result<MessageAttributeValue, PortError> {
    MessageAttributeValue::builder()
        .data_type("String")
        .string_value(value)
        .build()
        .map_err(|err| PortError::permanent("sqs.attributes", err))
}

/// Approximate wire size of a message against the batch limit.
fn message_size(message: &OutgoingMessage) -> usize {
    message.body.len()
        + message
            .attributes
            .iter()
            .map(|(k, v)| k.len() + v.len() + "String".len())
            .sum::<usize>()
}

fn entry(id: usize, message: &OutgoingMessage) -> Result<SendMessageBatchRequestEntry, PortError> {
    let mut builder = SendMessageBatchRequestEntry::builder()
        .id(id.to_string())
        .message_body(&message.body)
        .set_message_attributes(Some(SqsAttributes::try_from(&message.attributes)?.0))
        .set_message_group_id(message.group_id.clone())
        .set_message_deduplication_id(message.dedup_id.clone());
    if let Some(header) = message.trace_header.as_deref().filter(|h| !h.is_empty()) {
        let value = MessageSystemAttributeValue::builder()
            .data_type("String")
            .string_value(header)
            .build()
            .map_err(|err| PortError::permanent("sqs.send", err))?;
        builder = builder
            .message_system_attributes(MessageSystemAttributeNameForSends::AwsTraceHeader, value);
    }
    builder
        .build()
        .map_err(|err| PortError::permanent("sqs.send", err))
}

/// Splits `messages` into index ranges within the entry and size limits of one batch call.
fn chunks(messages: &[OutgoingMessage]) -> Vec<std::ops::Range<usize>> {
    let mut out = Vec::new();
    let mut start = 0;
    let mut bytes = 0;
    for (i, message) in messages.iter().enumerate() {
        let size = message_size(message);
        if i > start && (i - start == MAX_BATCH_ENTRIES || bytes + size > MAX_BATCH_BYTES) {
            out.push(start..i);
            start = i;
            bytes = 0;
        }
        bytes += size;
    }
    if start < messages.len() {
        out.push(start..messages.len());
    }
    out
}

impl SqsQueues {
    /// Sends one chunk, resubmitting failed entries; the indices are into `messages`.
    async fn send_chunk(
        &self,
        messages: &[OutgoingMessage],
        chunk: std::ops::Range<usize>,
    ) -> Result<(), PortError> {
        let mut pending: Vec<usize> = chunk.collect();
        for attempt in 1..=MAX_BATCH_ATTEMPTS {
            let entries = pending
                .iter()
                .map(|&i| entry(i, &messages[i]))
                .collect::<Result<Vec<_>, _>>()?;
            let output = self
                .client
                .send_message_batch()
                .queue_url(&self.work_queue_url)
                .set_entries(Some(entries))
                .send()
                .await
                .map_err(|err| sdk_error("sqs.send", err))?;
            let failed = output.failed();
            if failed.is_empty() {
                return Ok(());
            }
            // An entry refused for what it is (too big, bad attribute) never passes: say so.
            if let Some(refused) = failed.iter().find(|f| f.sender_fault()) {
                return Err(adapter_error(
                    "sqs.send",
                    format!(
                        "message {} refused: {}: {}",
                        refused.id(),
                        refused.code(),
                        refused.message().unwrap_or("no message")
                    ),
                )
                .permanent());
            }
            pending = failed
                .iter()
                .filter_map(|f| f.id().parse::<usize>().ok())
                .collect();
            tracing::warn!(
                operation = "sqs.send",
                failed = pending.len(),
                attempt,
                "SendMessageBatch entries failed; resubmitting"
            );
            if attempt < MAX_BATCH_ATTEMPTS {
                tokio::time::sleep(backoff(attempt)).await;
            }
        }
        Err(adapter_error(
            "sqs.send",
            format!(
                "{} messages still failing after {MAX_BATCH_ATTEMPTS} attempts",
                pending.len()
            ),
        )
        .transient())
    }
}

#[async_trait]
impl Queues for SqsQueues {
    async fn send(&self, messages: &[OutgoingMessage]) -> Result<(), PortError> {
        for chunk in chunks(messages) {
            self.send_chunk(messages, chunk).await?;
        }
        Ok(())
    }

    async fn dead_letter(&self, letter: &DeadLetter) -> Result<(), PortError> {
        let mut attributes = HashMap::new();
        let ours = [
            ("reason", Some(truncate(&letter.reason, MAX_REASON_BYTES))),
            ("class", Some(truncate(&letter.class, MAX_ATTRIBUTE_BYTES))),
            ("task", Some(truncate(&letter.task, MAX_ATTRIBUTE_BYTES))),
            (
                "original-message-id",
                Some(truncate(&letter.message_id, MAX_ATTRIBUTE_BYTES)),
            ),
            (
                "trace-id",
                letter
                    .trace_id
                    .as_deref()
                    .map(|t| truncate(t, MAX_ATTRIBUTE_BYTES)),
            ),
        ];
        for (name, value) in ours {
            if let Some(value) = value.filter(|v| !v.is_empty()) {
                attributes.insert(name.to_owned(), string_attribute(&value)?);
            }
        }
        // The original attributes too, as far as SQS's 10 per message allows.
        for (name, value) in &letter.attributes {
            if attributes.len() >= MAX_MESSAGE_ATTRIBUTES {
                tracing::warn!(
                    operation = "sqs.dead_letter",
                    dropped = name.as_str(),
                    "dead letter has too many attributes; dropping the rest"
                );
                break;
            }
            if !value.is_empty() && valid_attribute_name(name) && !attributes.contains_key(name) {
                attributes.insert(
                    name.clone(),
                    string_attribute(&truncate(value, MAX_ATTRIBUTE_BYTES))?,
                );
            }
        }
        let mut request = self
            .client
            .send_message()
            .queue_url(&self.dead_letter_queue_url)
            .message_body(&letter.body)
            .set_message_attributes(Some(attributes));
        if self.dead_letter_queue_url.ends_with(".fifo") {
            // A FIFO dead-letter queue needs a group; one per task keeps their order apart.
            request = request
                .message_group_id(&letter.task)
                .message_deduplication_id(crate::hash::sha256_hex(format!(
                    "{}\n{}",
                    letter.task, letter.message_id
                )));
        }
        request
            .send()
            .await
            .map_err(|err| sdk_error("sqs.dead_letter", err))?;
        Ok(())
    }

    async fn delay(&self, receipt_handle: &str, delay: Duration) -> Result<(), PortError> {
        let seconds = delay.min(MAX_VISIBILITY).as_secs();
        self.client
            .change_message_visibility()
            .queue_url(&self.work_queue_url)
            .receipt_handle(receipt_handle)
            .visibility_timeout(i32::try_from(seconds).unwrap_or(i32::MAX))
            .send()
            .await
            .map_err(|err| sdk_error("sqs.delay", err))?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn message(body_len: usize) -> OutgoingMessage {
        OutgoingMessage {
            body: "x".repeat(body_len),
            attributes: BTreeMap::new(),
            group_id: None,
            dedup_id: None,
            trace_header: None,
        }
    }

    #[test]
    fn chunks_respect_count_and_size() {
        let small: Vec<_> = (0..25).map(|_| message(10)).collect();
        assert_eq!(chunks(&small), vec![0..10, 10..20, 20..25]);
        let big: Vec<_> = (0..5).map(|_| message(100 * 1024)).collect();
        assert_eq!(chunks(&big), vec![0..2, 2..4, 4..5]);
        assert!(chunks(&[]).is_empty());
    }

    #[test]
    fn truncation_keeps_char_boundaries() {
        let long = "é".repeat(3000);
        let cut = truncate(&long, 1024);
        assert!(cut.len() <= 1024);
        assert!(cut.ends_with('…'));
        assert_eq!(truncate("short", 1024), "short");
    }

    #[test]
    fn attribute_names_follow_sqs_rules() {
        assert!(valid_attribute_name("idempotency-key"));
        assert!(!valid_attribute_name("AWS.thing"));
        assert!(!valid_attribute_name("has space"));
        assert!(!valid_attribute_name(""));
    }
}
