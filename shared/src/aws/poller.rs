//! Plays Lambda's SQS event source mapping against a real queue: receives a batch, hands it to
//! a handler as the exact `aws:sqs` event Lambda would deliver, and deletes the messages the
//! handler did not report in `batchItemFailures`. For the emulator in tests and soak runs.

use std::collections::{BTreeMap, HashSet};

use aws_sdk_sqs::types::{MessageSystemAttributeName, QueueAttributeName};
use serde_json::{Value, json};

use crate::error::PortError;

/// A poller on one queue.
#[derive(Clone, Debug)]
pub struct SqsPoller {
    client: aws_sdk_sqs::Client,
    queue_url: String,
}

fn failed(operation: &'static str, err: impl std::fmt::Display) -> PortError {
    PortError::transient(operation, std::io::Error::other(err.to_string()))
}

impl SqsPoller {
    /// A poller on `queue_url`.
    pub fn new(sdk: &aws_config::SdkConfig, queue_url: impl Into<String>) -> Self {
        Self {
            client: aws_sdk_sqs::Client::new(sdk),
            queue_url: queue_url.into(),
        }
    }

    /// Receives up to 10 messages (waiting at most `wait_seconds`) as a Lambda SQS event, with
    /// their receipt handles by message id; `None` when the queue gave nothing.
    pub async fn receive(
        &self,
        wait_seconds: i32,
    ) -> Result<Option<(Value, BTreeMap<String, String>)>, PortError> {
        let output = self
            .client
            .receive_message()
            .queue_url(&self.queue_url)
            .max_number_of_messages(10)
            .wait_time_seconds(wait_seconds)
            .message_system_attribute_names(MessageSystemAttributeName::All)
            .message_attribute_names("All")
            .send()
            .await
            .map_err(|e| failed("poller.receive", aws_sdk_sqs::error::DisplayErrorContext(e)))?;
        let messages = output.messages();
        if messages.is_empty() {
            return Ok(None);
        }
        let mut handles = BTreeMap::new();
        let records: Vec<Value> = messages
            .iter()
            .map(|m| {
                let id = m.message_id().unwrap_or_default().to_owned();
                handles.insert(id.clone(), m.receipt_handle().unwrap_or_default().to_owned());
                let attributes: serde_json::Map<String, Value> = m
                    .attributes()
                    .map(|a| a.iter().map(|(k, v)| (k.as_str().to_owned(), json!(v))).collect())
                    .unwrap_or_default();
                let message_attributes: serde_json::Map<String, Value> = m
                    .message_attributes()
                    .map(|a| {
                        a.iter()
                            .map(|(k, v)| (k.clone(), json!({ "stringValue": v.string_value(), "dataType": v.data_type() })))
                            .collect()
                    })
                    .unwrap_or_default();
                json!({
                    "messageId": id,
                    "receiptHandle": m.receipt_handle(),
                    "body": m.body(),
                    "attributes": attributes,
                    "messageAttributes": message_attributes,
                    "md5OfBody": m.md5_of_body(),
                    "eventSource": "aws:sqs",
                    "eventSourceARN": format!("arn:aws:sqs:us-east-1:000000000000:{}", self.queue_url.rsplit('/').next().unwrap_or_default()),
                    "awsRegion": "us-east-1",
                })
            })
            .collect();
        Ok(Some((json!({ "Records": records }), handles)))
    }

    /// Deletes every received message not listed in `response`'s `batchItemFailures`.
    pub async fn acknowledge(
        &self,
        handles: &BTreeMap<String, String>,
        response: &Value,
    ) -> Result<usize, PortError> {
        let failed_ids: HashSet<&str> = response["batchItemFailures"]
            .as_array()
            .map(|f| {
                f.iter()
                    .filter_map(|i| i["itemIdentifier"].as_str())
                    .collect()
            })
            .unwrap_or_default();
        let mut deleted = 0;
        for (id, handle) in handles
            .iter()
            .filter(|(id, _)| !failed_ids.contains(id.as_str()))
        {
            self.client
                .delete_message()
                .queue_url(&self.queue_url)
                .receipt_handle(handle)
                .send()
                .await
                .map_err(|e| {
                    failed(
                        "poller.delete",
                        format!("{id}: {}", aws_sdk_sqs::error::DisplayErrorContext(e)),
                    )
                })?;
            deleted += 1;
        }
        Ok(deleted)
    }

    /// Messages in the queue, visible and in flight (approximate, as SQS says).
    pub async fn depth(&self) -> Result<u64, PortError> {
        let output = self
            .client
            .get_queue_attributes()
            .queue_url(&self.queue_url)
            .attribute_names(QueueAttributeName::ApproximateNumberOfMessages)
            .attribute_names(QueueAttributeName::ApproximateNumberOfMessagesNotVisible)
            .send()
            .await
            .map_err(|e| failed("poller.depth", aws_sdk_sqs::error::DisplayErrorContext(e)))?;
        let attributes = output.attributes();
        let get = |name: QueueAttributeName| {
            attributes
                .and_then(|a| a.get(&name))
                .and_then(|v| v.parse::<u64>().ok())
                .unwrap_or(0)
        };
        Ok(get(QueueAttributeName::ApproximateNumberOfMessages)
            + get(QueueAttributeName::ApproximateNumberOfMessagesNotVisible))
    }

    /// Every message body in the queue (for reading a dead-letter queue), deleting none; reads
    /// until a receive comes back empty.
    pub async fn bodies(&self) -> Result<Vec<(String, BTreeMap<String, String>)>, PortError> {
        let mut seen = BTreeMap::new();
        loop {
            let output = self
                .client
                .receive_message()
                .queue_url(&self.queue_url)
                .max_number_of_messages(10)
                .visibility_timeout(30)
                .message_attribute_names("All")
                .send()
                .await
                .map_err(|e| failed("poller.bodies", aws_sdk_sqs::error::DisplayErrorContext(e)))?;
            if output.messages().is_empty() {
                break;
            }
            for m in output.messages() {
                let attributes: BTreeMap<String, String> = m
                    .message_attributes()
                    .map(|a| {
                        a.iter()
                            .filter_map(|(k, v)| {
                                v.string_value().map(|s| (k.clone(), s.to_owned()))
                            })
                            .collect()
                    })
                    .unwrap_or_default();
                seen.insert(
                    m.message_id().unwrap_or_default().to_owned(),
                    (m.body().unwrap_or_default().to_owned(), attributes),
                );
            }
        }
        Ok(seen.into_values().collect())
    }
}
