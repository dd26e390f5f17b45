//! Faults the emulator cannot produce (throttling, partial batch failures), served by a
//! scripted HTTP responder on loopback: the real SDK clients talk to it, so the adapters'
//! error mapping and resubmission are tested through the wire, with the SDK's own retries off.

use std::sync::{Arc, Mutex};

use aws_config::retry::RetryConfig;
use aws_config::{BehaviorVersion, Region, SdkConfig};
use backbone::aws::{DynamoStore, EventBridgePublisher, SqsQueues};
use backbone::error::PortError;
use backbone::ports::{BusEvent, EventPublisher, ItemKey, OutgoingMessage, Queues, Store};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// A loopback server answering each request with the next scripted `(status, JSON body)`
/// (a 500 once the script runs out), keeping the request bodies for inspection.
struct Scripted {
    sdk: SdkConfig,
    requests: Arc<Mutex<Vec<serde_json::Value>>>,
}

impl Scripted {
    async fn start(script: Vec<(u16, String)>) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let endpoint = format!("http://{}", listener.local_addr().unwrap());
        let requests = Arc::new(Mutex::new(Vec::new()));
        let log = requests.clone();
        let script = Arc::new(Mutex::new(script.into_iter()));
        tokio::spawn(async move {
            while let Ok((socket, _)) = listener.accept().await {
                let (log, script) = (log.clone(), script.clone());
                tokio::spawn(serve(socket, log, script));
            }
        });
        let sdk = aws_config::defaults(BehaviorVersion::latest())
            .region(Region::new("us-east-1"))
            .credentials_provider(aws_sdk_dynamodb::config::Credentials::new(
                "testing", "testing", None, None, "faults",
            ))
            .endpoint_url(endpoint)
            // Only the adapters' own retries: each scripted answer is seen once.
            .retry_config(RetryConfig::disabled())
            .load()
            .await;
        Self { sdk, requests }
    }

    fn requests(&self) -> Vec<serde_json::Value> {
        self.requests.lock().unwrap().clone()
    }
}

type Script = Arc<Mutex<std::vec::IntoIter<(u16, String)>>>;

async fn serve(mut socket: TcpStream, log: Arc<Mutex<Vec<serde_json::Value>>>, script: Script) {
    let mut buffer = Vec::new();
    loop {
        // Headers, then a Content-Length body (the SDK always sends one for JSON protocols).
        let header_end = loop {
            if let Some(at) = buffer.windows(4).position(|w| w == b"\r\n\r\n") {
                break at + 4;
            }
            let mut chunk = [0u8; 8192];
            match socket.read(&mut chunk).await {
                Ok(0) | Err(_) => return,
                Ok(n) => buffer.extend_from_slice(&chunk[..n]),
            }
        };
        let headers = String::from_utf8_lossy(&buffer[..header_end]).to_ascii_lowercase();
        let length: usize = headers
            .lines()
            .find_map(|line| line.strip_prefix("content-length:"))
            .map_or(0, |v| v.trim().parse().unwrap());
        while buffer.len() < header_end + length {
            let mut chunk = [0u8; 8192];
            match socket.read(&mut chunk).await {
                Ok(0) | Err(_) => return,
                Ok(n) => buffer.extend_from_slice(&chunk[..n]),
            }
        }
        let body: Vec<u8> = buffer
            .drain(..header_end + length)
            .skip(header_end)
            .collect();
        log.lock()
            .unwrap()
            .push(serde_json::from_slice(&body).unwrap_or(serde_json::Value::Null));
        let (status, payload) = script
            .lock()
            .unwrap()
            .next()
            .unwrap_or((500, r#"{"__type":"InternalFailure"}"#.to_owned()));
        let response = format!(
            "HTTP/1.1 {status} Scripted\r\ncontent-type: application/x-amz-json-1.0\r\ncontent-length: {}\r\n\r\n{payload}",
            payload.len()
        );
        if socket.write_all(response.as_bytes()).await.is_err() {
            return;
        }
    }
}

fn messages(n: usize) -> Vec<OutgoingMessage> {
    (0..n)
        .map(|i| OutgoingMessage {
            body: format!("{{\"n\":{i}}}"),
            attributes: Default::default(),
            group_id: None,
            dedup_id: None,
            trace_header: None,
        })
        .collect()
}

fn ok_entry(id: &str) -> serde_json::Value {
    serde_json::json!({"Id": id, "MessageId": format!("m-{id}"), "MD5OfMessageBody": "0"})
}

#[tokio::test]
async fn dynamodb_throttling_is_transient_and_missing_table_permanent() {
    let server = Scripted::start(vec![
        (
            400,
            r#"{"__type":"com.amazonaws.dynamodb.v20120810#ProvisionedThroughputExceededException","message":"Rate exceeded"}"#.into(),
        ),
        (
            400,
            r#"{"__type":"com.amazonaws.dynamodb.v20120810#ThrottlingException","message":"Rate exceeded"}"#.into(),
        ),
        (
            400,
            r#"{"__type":"com.amazonaws.dynamodb.v20120810#ResourceNotFoundException","message":"no table"}"#.into(),
        ),
        (503, r#"{"__type":"ServiceUnavailable"}"#.into()),
    ])
    .await;
    let store = DynamoStore::new(aws_sdk_dynamodb::Client::new(&server.sdk), "t");
    let key = ItemKey::new("a", "b");
    for expected in ["transient", "transient", "permanent", "transient"] {
        let err = store.get(&key).await.unwrap_err();
        let class = match err {
            PortError::Transient { .. } => "transient",
            PortError::Permanent { .. } => "permanent",
            PortError::Conflict { .. } => "conflict",
        };
        assert_eq!(class, expected, "{err:?}");
        assert!(backbone::error::chain(&err).starts_with("store.get failed"));
    }
}

#[tokio::test]
async fn sqs_failed_batch_entries_are_resubmitted_alone() {
    let first = serde_json::json!({
        "Successful": [ok_entry("0"), ok_entry("2")],
        "Failed": [{"Id": "1", "SenderFault": false, "Code": "InternalError", "Message": "try again"}],
    });
    let second = serde_json::json!({"Successful": [ok_entry("1")], "Failed": []});
    let server = Scripted::start(vec![(200, first.to_string()), (200, second.to_string())]).await;
    let queues = SqsQueues::new(
        aws_sdk_sqs::Client::new(&server.sdk),
        "http://q/work",
        "http://q/dlq",
    );
    queues.send(&messages(3)).await.unwrap();
    let requests = server.requests();
    assert_eq!(requests.len(), 2);
    assert_eq!(requests[0]["Entries"].as_array().unwrap().len(), 3);
    let resent = requests[1]["Entries"].as_array().unwrap();
    assert_eq!(resent.len(), 1);
    assert_eq!(resent[0]["MessageBody"], "{\"n\":1}");
}

#[tokio::test]
async fn sqs_entries_that_keep_failing_are_an_error_not_dropped() {
    let failing = serde_json::json!({
        "Successful": [],
        "Failed": [{"Id": "0", "SenderFault": false, "Code": "InternalError"}],
    });
    let server = Scripted::start(vec![(200, failing.to_string()); 10]).await;
    let queues = SqsQueues::new(
        aws_sdk_sqs::Client::new(&server.sdk),
        "http://q/work",
        "http://q/dlq",
    );
    let err = queues.send(&messages(1)).await.unwrap_err();
    assert!(matches!(err, PortError::Transient { .. }), "{err:?}");
    assert_eq!(server.requests().len(), 5, "bounded resubmissions");

    // An entry refused for what it is never passes: reported at once.
    let refused = serde_json::json!({
        "Successful": [],
        "Failed": [{"Id": "0", "SenderFault": true, "Code": "InvalidMessageContents", "Message": "bad"}],
    });
    let server = Scripted::start(vec![(200, refused.to_string())]).await;
    let queues = SqsQueues::new(
        aws_sdk_sqs::Client::new(&server.sdk),
        "http://q/work",
        "http://q/dlq",
    );
    let err = queues.send(&messages(1)).await.unwrap_err();
    assert!(matches!(err, PortError::Permanent { .. }), "{err:?}");
    assert!(backbone::error::chain(&err).contains("InvalidMessageContents"));
}

fn events(n: usize) -> Vec<BusEvent> {
    (0..n)
        .map(|i| BusEvent {
            source: "music.test".into(),
            detail_type: "Test".into(),
            detail: serde_json::json!({ "n": i }),
            time: chrono::Utc::now(),
            trace_header: None,
        })
        .collect()
}

#[tokio::test]
async fn eventbridge_partial_failure_is_not_success() {
    let partial = serde_json::json!({
        "FailedEntryCount": 1,
        "Entries": [{"EventId": "e0"}, {"ErrorCode": "ThrottlingException", "ErrorMessage": "slow"}, {"EventId": "e2"}],
    });
    let done = serde_json::json!({"FailedEntryCount": 0, "Entries": [{"EventId": "e1"}]});
    let server = Scripted::start(vec![(200, partial.to_string()), (200, done.to_string())]).await;
    let publisher = EventBridgePublisher::new(aws_sdk_eventbridge::Client::new(&server.sdk), "bus");
    publisher.publish(&events(3)).await.unwrap();
    let requests = server.requests();
    assert_eq!(requests.len(), 2);
    let resent = requests[1]["Entries"].as_array().unwrap();
    assert_eq!(resent.len(), 1);
    assert_eq!(resent[0]["Detail"], "{\"n\":1}");
    assert_eq!(resent[0]["EventBusName"], "bus");

    // Failing entries are resubmitted a bounded number of times, then reported.
    let server = Scripted::start(vec![(200, partial.to_string()); 10]).await;
    let publisher = EventBridgePublisher::new(aws_sdk_eventbridge::Client::new(&server.sdk), "bus");
    let err = publisher.publish(&events(3)).await.unwrap_err();
    assert!(matches!(err, PortError::Transient { .. }), "{err:?}");
    assert_eq!(server.requests().len(), 5);

    // An entry refused for its content is reported at once.
    let malformed = serde_json::json!({
        "FailedEntryCount": 1,
        "Entries": [{"ErrorCode": "MalformedDetail", "ErrorMessage": "Detail is malformed."}],
    });
    let server = Scripted::start(vec![(200, malformed.to_string())]).await;
    let publisher = EventBridgePublisher::new(aws_sdk_eventbridge::Client::new(&server.sdk), "bus");
    let err = publisher.publish(&events(1)).await.unwrap_err();
    assert!(matches!(err, PortError::Permanent { .. }), "{err:?}");
}

#[tokio::test]
async fn idempotency_lock_reads_the_blocker_when_the_failure_carries_no_item() {
    use backbone::aws::DynamoIdempotencyStore;
    use backbone::ports::{
        IdempotencyRecord, IdempotencyStatus, IdempotencyStore, PutInProgressError,
    };

    let failed = r#"{"__type":"com.amazonaws.dynamodb.v20120810#ConditionalCheckFailedException","message":"The conditional request failed"}"#;
    let blocker = serde_json::json!({"Item": {
        "id": {"S": "task#k"}, "status": {"S": "COMPLETED"}, "expiration": {"N": "1800000000"},
        "validation": {"S": "h"}, "data": {"S": "\"result\""}
    }});
    let server = Scripted::start(vec![
        // Condition failed without ALL_OLD's item: the adapter reads it.
        (400, failed.into()),
        (200, blocker.to_string()),
        // Condition failed, and the blocker was deleted before the read: the put is retried.
        (400, failed.into()),
        (200, "{}".into()),
        (200, "{}".into()),
    ])
    .await;
    let store = DynamoIdempotencyStore::new(aws_sdk_dynamodb::Client::new(&server.sdk), "idem");
    let now = chrono::Utc::now();
    let record = IdempotencyRecord {
        key: "task#k".into(),
        status: IdempotencyStatus::InProgress,
        expires_at: now + chrono::Duration::hours(1),
        in_progress_expires_at: Some(now + chrono::Duration::seconds(30)),
        payload_hash: "h".into(),
        result: None,
        lease: "lease".into(),
    };
    match store.put_in_progress(&record, now).await {
        Err(PutInProgressError::Exists(existing)) => {
            assert_eq!(existing.status, IdempotencyStatus::Completed);
            assert_eq!(existing.result.as_deref(), Some("\"result\""));
        }
        other => panic!("expected the blocking record, got {other:?}"),
    }
    store.put_in_progress(&record, now).await.unwrap();
    let requests = server.requests();
    assert_eq!(requests.len(), 5);
    assert_eq!(
        requests[0]["ReturnValuesOnConditionCheckFailure"],
        "ALL_OLD"
    );
    assert!(
        requests[0]["ConditionExpression"]
            .as_str()
            .unwrap()
            .contains("#in_progress_expiration <= :now_ms")
    );
    assert_eq!(requests[1]["ConsistentRead"], true);
}
