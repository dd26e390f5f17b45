//! `Queues`: the local queue and SQS. A probe per backend reads back what was sent, the way
//! Lambda's event source mapping would receive it.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use aws_sdk_sqs::types::{MessageSystemAttributeName, QueueAttributeName};
use backbone::aws::SqsQueues;
use backbone::clock::SystemClock;
use backbone::local::LocalQueues;
use backbone::ports::{DeadLetter, OutgoingMessage, Queues};

/// The task whose queues these are (the local dead letters are filed under it).
const TASK: &str = "contract-task";
const TRACE: &str = "Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8;Sampled=1";

/// A received message, backend-neutral.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
struct Received {
    body: String,
    attributes: BTreeMap<String, String>,
    trace_header: Option<String>,
    receipt_handle: String,
}

/// Reads what a backend's queues hold.
#[async_trait]
trait Probe: Send + Sync {
    /// Receives up to `max` visible messages of the work queue, hiding them for 30 s.
    async fn receive(&self, max: usize) -> Vec<Received>;
    /// The dead letters sent so far.
    async fn dead_letters(&self, expected: usize) -> Vec<DeadLetter>;
}

struct LocalProbe(LocalQueues);

#[async_trait]
impl Probe for LocalProbe {
    async fn receive(&self, max: usize) -> Vec<Received> {
        self.0
            .receive(max, Duration::from_secs(30))
            .await
            .unwrap()
            .into_iter()
            .map(|m| Received {
                body: m.body,
                attributes: m.attributes,
                trace_header: m.trace_header,
                receipt_handle: m.receipt_handle,
            })
            .collect()
    }

    async fn dead_letters(&self, _expected: usize) -> Vec<DeadLetter> {
        self.0.dead_letters().await.unwrap()
    }
}

struct SqsProbe {
    client: aws_sdk_sqs::Client,
    work: String,
    dlq: String,
}

impl SqsProbe {
    async fn receive_from(&self, url: &str, max: usize) -> Vec<aws_sdk_sqs::types::Message> {
        let mut messages = Vec::new();
        let mut empty_polls = 0;
        while messages.len() < max && empty_polls < 2 {
            let output = self
                .client
                .receive_message()
                .queue_url(url)
                .max_number_of_messages((max - messages.len()).min(10) as i32)
                .visibility_timeout(30)
                .wait_time_seconds(1)
                .message_system_attribute_names(MessageSystemAttributeName::AwsTraceHeader)
                .message_attribute_names("All")
                .send()
                .await
                .unwrap();
            let batch = output.messages.unwrap_or_default();
            if batch.is_empty() {
                empty_polls += 1;
            }
            messages.extend(batch);
        }
        messages
    }
}

fn string_attributes(message: &aws_sdk_sqs::types::Message) -> BTreeMap<String, String> {
    message
        .message_attributes()
        .map(|attributes| {
            attributes
                .iter()
                .filter_map(|(k, v)| v.string_value().map(|s| (k.clone(), s.to_owned())))
                .collect()
        })
        .unwrap_or_default()
}

#[async_trait]
impl Probe for SqsProbe {
    async fn receive(&self, max: usize) -> Vec<Received> {
        self.receive_from(&self.work, max)
            .await
            .into_iter()
            .map(|m| Received {
                attributes: string_attributes(&m),
                trace_header: m
                    .attributes()
                    .and_then(|a| a.get(&MessageSystemAttributeName::AwsTraceHeader))
                    .cloned(),
                body: m.body.unwrap_or_default(),
                receipt_handle: m.receipt_handle.unwrap_or_default(),
            })
            .collect()
    }

    async fn dead_letters(&self, expected: usize) -> Vec<DeadLetter> {
        self.receive_from(&self.dlq, expected)
            .await
            .into_iter()
            .map(|m| {
                let mut attributes = string_attributes(&m);
                let mut take = |name: &str| attributes.remove(name);
                DeadLetter {
                    task: take("task").unwrap_or_default(),
                    message_id: take("original-message-id").unwrap_or_default(),
                    class: take("class").unwrap_or_default(),
                    reason: take("reason").unwrap_or_default(),
                    trace_id: take("trace-id"),
                    body: m.body.unwrap_or_default(),
                    attributes,
                }
            })
            .collect()
    }
}

fn local() -> (Arc<dyn Queues>, Box<dyn Probe>) {
    let queues = LocalQueues::new(crate::helpers::local_db(), TASK, Arc::new(SystemClock), 5);
    (Arc::new(queues.clone()), Box::new(LocalProbe(queues)))
}

async fn sqs(sdk: &aws_config::SdkConfig) -> (Arc<dyn Queues>, Box<dyn Probe>) {
    let client = aws_sdk_sqs::Client::new(sdk);
    let work = crate::helpers::queue(sdk, "work").await;
    let dlq = crate::helpers::queue(sdk, "dlq").await;
    // Lambda's event source mapping reads the visibility timeout from the queue.
    client
        .set_queue_attributes()
        .queue_url(&work)
        .attributes(QueueAttributeName::VisibilityTimeout, "30")
        .send()
        .await
        .unwrap();
    (
        Arc::new(SqsQueues::new(client.clone(), work.clone(), dlq.clone())),
        Box::new(SqsProbe { client, work, dlq }),
    )
}

macro_rules! queues_contract {
    ($($scenario:ident),* $(,)?) => { $(
        mod $scenario {
            #[tokio::test]
            async fn local() {
                let (queues, probe) = super::local();
                super::$scenario(queues.as_ref(), probe.as_ref()).await;
            }

            #[tokio::test]
            async fn sqs() {
                let sdk = crate::require_moto!();
                let (queues, probe) = super::sqs(&sdk).await;
                super::$scenario(queues.as_ref(), probe.as_ref()).await;
            }
        }
    )* };
}

queues_contract!(
    sent_messages_all_arrive_with_attributes_and_trace,
    dead_letters_keep_the_body_and_the_reason,
    delayed_message_comes_back_when_told,
);

async fn sent_messages_all_arrive_with_attributes_and_trace(
    queues: &dyn Queues,
    probe: &dyn Probe,
) {
    // 23 messages: three SendMessageBatch calls on SQS.
    let messages: Vec<OutgoingMessage> = (0..23)
        .map(|i| OutgoingMessage {
            body: serde_json::json!({"artist": format!("a{i}"), "n": i}).to_string(),
            attributes: [("idempotency-key".to_owned(), format!("k{i}"))].into(),
            group_id: None,
            dedup_id: None,
            trace_header: (i % 2 == 0).then(|| TRACE.to_owned()),
        })
        .collect();
    queues.send(&messages).await.unwrap();
    queues.send(&[]).await.unwrap();

    let mut received = probe.receive(30).await;
    assert_eq!(received.len(), 23);
    received.sort_by_key(|m| m.attributes["idempotency-key"][1..].parse::<u32>().unwrap());
    for (i, (sent, got)) in messages.iter().zip(&received).enumerate() {
        assert_eq!(got.body, sent.body, "message {i}");
        assert_eq!(got.attributes, sent.attributes, "message {i}");
        assert_eq!(got.trace_header, sent.trace_header, "message {i}");
    }
    assert!(
        probe.receive(10).await.is_empty(),
        "received messages stay hidden"
    );
}

async fn dead_letters_keep_the_body_and_the_reason(queues: &dyn Queues, probe: &dyn Probe) {
    let reason = format!("field artist: not a Spotify id; {}", "cause: ".repeat(2000));
    let letter = DeadLetter {
        task: TASK.into(),
        message_id: "059f36b4-87a3-44ab-83d2-661975830a7d".into(),
        body: r#"{"artist": "not an id", "emoji": "🎵"}"#.into(),
        class: "invalid".into(),
        reason: reason.clone(),
        trace_id: Some("1-5759e988-bd862e3fe1be46a994272793".into()),
        attributes: [("idempotency-key".to_owned(), "k-1".to_owned())].into(),
    };
    queues.dead_letter(&letter).await.unwrap();
    let letters = probe.dead_letters(1).await;
    assert_eq!(letters.len(), 1);
    let got = &letters[0];
    assert_eq!(got.body, letter.body, "the original body, unchanged");
    assert_eq!((got.task.as_str(), got.class.as_str()), (TASK, "invalid"));
    assert_eq!(got.message_id, letter.message_id);
    assert_eq!(got.trace_id, letter.trace_id);
    assert_eq!(got.attributes, letter.attributes);
    // SQS keeps the start of a long reason (its limits); the local queue keeps it whole.
    assert!(
        got.reason
            .starts_with("field artist: not a Spotify id; cause: "),
        "{}",
        &got.reason[..80]
    );
    assert!(got.reason.len() >= 1000);
}

async fn delayed_message_comes_back_when_told(queues: &dyn Queues, probe: &dyn Probe) {
    let message = OutgoingMessage {
        body: "{}".into(),
        attributes: BTreeMap::new(),
        group_id: None,
        dedup_id: None,
        trace_header: None,
    };
    queues.send(std::slice::from_ref(&message)).await.unwrap();
    let first = probe.receive(1).await;
    assert_eq!(first.len(), 1);
    // Hidden for the visibility timeout...
    assert!(probe.receive(1).await.is_empty());
    // ...until a delay of zero makes it visible at once (a long delay would keep it hidden).
    queues
        .delay(&first[0].receipt_handle, Duration::ZERO)
        .await
        .unwrap();
    let again = probe.receive(1).await;
    assert_eq!(again.len(), 1);
    assert_eq!(again[0].body, "{}");
    queues
        .delay(&again[0].receipt_handle, Duration::from_secs(3600))
        .await
        .unwrap();
    assert!(probe.receive(1).await.is_empty());
}
