//! `EventPublisher`: the local bus and EventBridge. On EventBridge the probe is what production
//! does with the events: a rule on the custom bus with an SQS target, read back from the queue.

use async_trait::async_trait;
use aws_sdk_eventbridge::types::Target;
use backbone::aws::EventBridgePublisher;
use backbone::local::LocalBus;
use backbone::ports::{BusEvent, EventPublisher};
use chrono::Utc;

use crate::helpers::unique;

/// An event as delivered, backend-neutral.
#[derive(Debug, Clone, PartialEq)]
struct Delivered {
    source: String,
    detail_type: String,
    detail: serde_json::Value,
}

#[async_trait]
trait Probe: Send + Sync {
    /// Everything delivered so far (waits until `expected` arrived or a few seconds passed).
    async fn delivered(&self, expected: usize) -> Vec<Delivered>;
}

struct LocalProbe(LocalBus);

#[async_trait]
impl Probe for LocalProbe {
    async fn delivered(&self, _expected: usize) -> Vec<Delivered> {
        self.0
            .events()
            .await
            .unwrap()
            .into_iter()
            .map(|stored| Delivered {
                source: stored.event.source,
                detail_type: stored.event.detail_type,
                detail: stored.event.detail,
            })
            .collect()
    }
}

/// A rule on the bus matching `source`, delivering to an SQS queue.
struct RuleToSqs {
    sqs: aws_sdk_sqs::Client,
    queue_url: String,
}

#[async_trait]
impl Probe for RuleToSqs {
    async fn delivered(&self, expected: usize) -> Vec<Delivered> {
        let mut delivered = Vec::new();
        let mut empty_polls = 0;
        while delivered.len() < expected && empty_polls < 3 {
            let output = self
                .sqs
                .receive_message()
                .queue_url(&self.queue_url)
                .max_number_of_messages(10)
                .wait_time_seconds(1)
                .send()
                .await
                .unwrap();
            let messages = output.messages.unwrap_or_default();
            if messages.is_empty() {
                empty_polls += 1;
            }
            for message in messages {
                // The EventBridge envelope: {"version", "id", "detail-type", "source", ...}.
                let envelope: serde_json::Value =
                    serde_json::from_str(message.body().unwrap_or_default()).unwrap();
                delivered.push(Delivered {
                    source: envelope["source"].as_str().unwrap().to_owned(),
                    detail_type: envelope["detail-type"].as_str().unwrap().to_owned(),
                    detail: envelope["detail"].clone(),
                });
            }
        }
        delivered
    }
}

const SOURCE: &str = "music.contract";

async fn eventbridge(sdk: &aws_config::SdkConfig) -> (EventBridgePublisher, RuleToSqs) {
    let events = aws_sdk_eventbridge::Client::new(sdk);
    let sqs = aws_sdk_sqs::Client::new(sdk);
    let bus = unique("music");
    events.create_event_bus().name(&bus).send().await.unwrap();
    let queue_url = crate::helpers::queue(sdk, "alerts").await;
    let queue_arn = sqs
        .get_queue_attributes()
        .queue_url(&queue_url)
        .attribute_names(aws_sdk_sqs::types::QueueAttributeName::QueueArn)
        .send()
        .await
        .unwrap()
        .attributes
        .unwrap()
        .remove(&aws_sdk_sqs::types::QueueAttributeName::QueueArn)
        .unwrap();
    let rule = unique("to-sqs");
    events
        .put_rule()
        .name(&rule)
        .event_bus_name(&bus)
        .event_pattern(serde_json::json!({"source": [SOURCE]}).to_string())
        .send()
        .await
        .unwrap();
    events
        .put_targets()
        .rule(&rule)
        .event_bus_name(&bus)
        .targets(
            Target::builder()
                .id("queue")
                .arn(queue_arn)
                .build()
                .unwrap(),
        )
        .send()
        .await
        .unwrap();
    (
        EventBridgePublisher::new(events, bus),
        RuleToSqs { sqs, queue_url },
    )
}

mod published_events_are_all_delivered {
    use backbone::local::LocalBus;

    #[tokio::test]
    async fn local() {
        let bus = LocalBus::new(crate::helpers::local_db());
        super::published_events_are_all_delivered(&bus, &super::LocalProbe(bus.clone())).await;
    }

    /// The EventBridge rule with an SQS target receives what the adapter publishes.
    #[tokio::test]
    async fn eventbridge_rule_to_sqs() {
        let sdk = crate::require_moto!();
        let (publisher, probe) = super::eventbridge(&sdk).await;
        super::published_events_are_all_delivered(&publisher, &probe).await;
    }
}

async fn published_events_are_all_delivered(publisher: &dyn EventPublisher, probe: &dyn Probe) {
    // 23 events: three PutEvents calls on EventBridge.
    let events: Vec<BusEvent> = (0..23)
        .map(|i| BusEvent {
            source: SOURCE.into(),
            detail_type: if i % 2 == 0 {
                "ArtistAlert"
            } else {
                "MetricAnomaly"
            }
            .into(),
            detail: serde_json::json!({"artist": format!("a{i}"), "n": i, "z": 1.5}),
            time: Utc::now(),
            trace_header: Some(
                "Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8;Sampled=1".into(),
            ),
        })
        .collect();
    publisher.publish(&events).await.unwrap();
    publisher.publish(&[]).await.unwrap();

    let mut delivered = probe.delivered(events.len()).await;
    assert_eq!(delivered.len(), events.len());
    delivered.sort_by_key(|d| d.detail["n"].as_i64().unwrap());
    for (event, got) in events.iter().zip(&delivered) {
        assert_eq!(got.source, event.source);
        assert_eq!(got.detail_type, event.detail_type);
        assert_eq!(got.detail, event.detail);
    }
}
